//! Starting and stopping a service: binds both listeners, serves HTTP
//! control and gRPC data on a runtime of their own, and shuts both down
//! together.
//!
//! Why a runtime of their own: handlers run on the service's main runtime
//! (where `main` and `init_state` ran, with whatever clients they built),
//! and a handler that blocks its thread (CPU-heavy work or a blocking call
//! not moved to `spawn_blocking`) stalls every task of that runtime. The
//! servers, the task runners (deadlines, cancellation, outcomes) and the
//! task store live on separate threads, so /health, status, output and the
//! data port keep answering whatever the handlers do.

use std::collections::HashMap;
use std::fmt;
use std::future::{poll_fn, Future};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Context;

use futures_util::task::AtomicWaker;

use hyper_util::rt::TokioIo;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::{Handle, Runtime};
use tokio::task::JoinHandle;
use tokio::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use tonic::service::Routes;
use tonic_health::pb::health_server::{Health, HealthServer};
use tonic_health::server::HealthReporter;
use tonic_health::ServingStatus;

pub use crate::shutdown::SHUTDOWN_GRACE;

use crate::app::App;
use crate::auth::{ApiKey, RequireKey};
use crate::config::{check_api_key, Config};
use crate::control;
use crate::data::DataService;
use crate::definition::{BoundMethods, Definition, Methods};
use crate::descriptors::DescriptorIndex;
use crate::listen::{Accepted, Acceptor, HeaderTimer};
use crate::memory;
use crate::shutdown;
use crate::stream::{self, ResultsService};
use crate::tasks::{Limits, TaskStore};
use crate::upstream::Upstreams;

/// Starts the service `D` with its own methods.
pub async fn run<D: Definition>(config: Config) -> Result<RunningService, StartError> {
    run_with::<D>(config, D::methods()).await
}

/// Starts the service `D` with the methods of `methods` (tests add probe
/// methods this way). Both listeners are bound before this returns, so the
/// service answers as soon as the caller has the handle.
pub async fn run_with<D: Definition>(
    config: Config,
    methods: Methods<D>,
) -> Result<RunningService, StartError> {
    let project = Project {
        grpc_service: D::GRPC_SERVICE,
        file_descriptor_set: D::file_descriptor_set(),
        upstream_file_descriptor_set: D::upstream_file_descriptor_set(),
        default_http_port: D::DEFAULT_HTTP_PORT,
        default_grpc_port: D::DEFAULT_GRPC_PORT,
        default_grpc_host: D::DEFAULT_GRPC_HOST,
    };
    let names: Vec<&str> = methods.names().collect();
    let (config, index) = prepare(config, &names, &project)?;
    let state = D::init_state(&config)
        .await
        .map_err(|err| StartError(format!("building shared state: {err}")))?;
    launch(config, methods.bind(Arc::new(state)), index, project).await
}

/// What the runtime takes from a project's [`Definition`] besides its
/// methods and state, so that starting it is compiled once, here, rather
/// than again in every project.
struct Project {
    grpc_service: &'static str,
    file_descriptor_set: &'static [u8],
    upstream_file_descriptor_set: &'static [u8],
    default_http_port: u16,
    default_grpc_port: u16,
    default_grpc_host: &'static str,
}

/// Checks `config` against the project (a key that is not blank, method
/// deadlines only for its `methods`) and reads its descriptor sets, before
/// any of its code runs.
fn prepare(
    mut config: Config,
    methods: &[&str],
    project: &Project,
) -> Result<(Config, DescriptorIndex), StartError> {
    // A `Config` built by hand gets the checks of one read from the
    // environment: a blank key must not turn auth off.
    config.api_key = config
        .api_key
        .as_deref()
        .map(check_api_key)
        .transpose()
        .map_err(|err| StartError(err.to_string()))?;
    if let Some((unknown, _)) = config
        .method_deadlines
        .iter()
        .find(|(method, _)| !methods.contains(&method.as_str()))
    {
        return Err(StartError(format!(
            "METHOD_TIMEOUT_SECS names `{unknown}`, which this service does not have; \
             its methods: {}",
            methods.join(", ")
        )));
    }
    let index = DescriptorIndex::from_encoded(&[
        (
            "the service's FILE_DESCRIPTOR_SET",
            project.file_descriptor_set,
        ),
        (
            "UPSTREAM_FILE_DESCRIPTOR_SET",
            project.upstream_file_descriptor_set,
        ),
    ])
    .map_err(StartError)?;
    Ok((config, index))
}

/// Binds both ports and starts the servers of a service whose state is
/// built. The future is boxed here so that its body, and everything the
/// servers run, is compiled in this crate: an `async fn` is compiled where
/// it is awaited, which would be every project's crate (the code of this
/// file, of `listen` and of `control` took most of a project's build).
fn launch(
    config: Config,
    methods: BoundMethods,
    index: DescriptorIndex,
    project: Project,
) -> Pin<Box<dyn Future<Output = Result<RunningService, StartError>> + Send>> {
    Box::pin(start(config, methods, index, project))
}

async fn start(
    config: Config,
    methods: BoundMethods,
    index: DescriptorIndex,
    project: Project,
) -> Result<RunningService, StartError> {
    let http_port = config.http_port.unwrap_or(project.default_http_port);
    let grpc_port = config.grpc_port.unwrap_or(project.default_grpc_port);
    let http_listener = bind(&config, http_port, "HTTP control")?;
    let grpc_listener = bind(&config, grpc_port, "gRPC data")?;
    let http_addr = local_addr(&http_listener)?;
    let grpc_addr = local_addr(&grpc_listener)?;
    let plane = ServePlane::new()?;
    memory::tune();

    let grpc_host = config
        .grpc_host
        .as_deref()
        .unwrap_or(project.default_grpc_host);
    let auth = config.auth_summary();
    let grace = config.shutdown_grace;
    let draining = CancellationToken::new();
    let shutdown = CancellationToken::new();
    let stop_servers = CancellationToken::new();
    let store = Arc::new(TaskStore::new(Limits::of(&config)));
    let app = Arc::new(App {
        grpc_uri: format!("{grpc_host}:{}", grpc_addr.port()),
        upstreams: Arc::new(Upstreams::new(index, &config)),
        store: store.clone(),
        key: ApiKey::of(&config),
        config,
        methods,
        grpc_service: project.grpc_service,
        file_descriptor_set: project.file_descriptor_set,
        draining: draining.clone(),
        shutdown: shutdown.clone(),
        handlers: Handle::current(),
    });

    let (health_reporter, health) = tonic_health::server::health_reporter();
    health_reporter
        .set_service_status(project.grpc_service, ServingStatus::Serving)
        .await;
    let serve = plane.handle();
    let http = serve_http(http_listener, app.clone(), stop_servers.clone());
    let http = serve.spawn(drain_after(http, draining.clone()));
    let grpc = serve_grpc(grpc_listener, app, health, stop_servers.clone());
    let grpc = serve.spawn(drain_after(grpc, draining.clone()));
    serve.spawn(memory::sweep(store.clone(), stop_servers.clone()));
    tracing::info!(%http_addr, %grpc_addr, "listening");
    tracing::info!("{auth}");
    Ok(RunningService {
        http_addr,
        grpc_addr,
        grpc_service: project.grpc_service,
        grace,
        health: health_reporter,
        store,
        draining,
        shutdown,
        stop_servers,
        servers: vec![http, grpc],
        _plane: plane,
    })
}

/// A started service: its bound addresses and the way to stop it.
pub struct RunningService {
    http_addr: SocketAddr,
    grpc_addr: SocketAddr,
    /// The project's gRPC service, whose health turns `NOT_SERVING`.
    grpc_service: &'static str,
    /// `SHUTDOWN_GRACE_SECS`.
    grace: Duration,
    health: HealthReporter,
    store: Arc<TaskStore>,
    /// Cancelled when a shutdown begins (or a server fails).
    draining: CancellationToken,
    /// Cancelled when the grace period is over: cancels every task.
    shutdown: CancellationToken,
    /// Cancelled when the servers are to stop.
    stop_servers: CancellationToken,
    servers: Vec<JoinHandle<Result<(), String>>>,
    /// Where the servers run; dropped last.
    _plane: ServePlane,
}

impl RunningService {
    /// Where the HTTP control interface listens.
    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// Where the gRPC data interface listens.
    pub fn grpc_addr(&self) -> SocketAddr {
        self.grpc_addr
    }

    /// Runs until SIGINT/SIGTERM (or a server fails), then shuts down
    /// (see [`shutdown`](Self::shutdown)).
    ///
    /// A second SIGINT or SIGTERM during the shutdown ends the process at
    /// once, with exit code 130 (SIGINT) or 143 (SIGTERM). Once the
    /// shutdown is over this returns, and the process is given one second
    /// to exit: `main` returning drops the tokio runtime, which waits for
    /// every blocking thread, so a `spawn_blocking` job that ignores its
    /// cancellation would hold the process for as long as it runs. Should
    /// the process still be there after that second, it is ended with
    /// `std::process::exit` (code 0 after a clean shutdown, 1 after a
    /// server error), as a last resort. So do nothing slow in `main` after
    /// this returns.
    pub async fn run_until_signal(self) -> Result<(), StartError> {
        let mut signals = shutdown::Signals::new();
        let draining = self.draining.clone();
        tokio::select! {
            signal = signals.recv() => tracing::info!(
                signal = signal.name(),
                grace_secs = self.grace.as_secs_f64(),
                "shutdown signal received: draining (a second signal exits at once)"
            ),
            () = draining.cancelled() => {}
        }
        let result = tokio::select! {
            result = self.shutdown() => result,
            signal = signals.recv() => {
                tracing::warn!(signal = signal.name(), "second signal received: exiting now");
                std::process::exit(signal.exit_code());
            }
        };
        shutdown::arm_exit_watchdog(if result.is_ok() { 0 } else { 1 });
        result
    }

    /// Shuts the service down and returns within the grace period
    /// (`SHUTDOWN_GRACE_SECS`, default [`SHUTDOWN_GRACE`]) plus about a
    /// second, whatever the handlers do:
    ///
    /// 1. gRPC health turns `NOT_SERVING` (overall and the project's
    ///    service) and execute answers 503 `shutting down`; status, output
    ///    and the data rpcs keep answering;
    /// 2. running tasks get the grace period to finish;
    /// 3. those still running are cancelled and fail with "task was
    ///    cancelled: the service is shutting down";
    /// 4. both servers stop together, open requests and streams (a health
    ///    `Watch`) being cut once the grace period plus a second has passed.
    pub async fn shutdown(self) -> Result<(), StartError> {
        let started = Instant::now();
        let deadline = started + self.grace;
        // Tell health checkers first, so load balancers stop sending.
        for service in ["", self.grpc_service] {
            self.health
                .set_service_status(service, ServingStatus::NotServing)
                .await;
        }
        self.draining.cancel();
        let running = self.store.running();
        if running > 0 {
            tracing::info!(
                running,
                "waiting up to {:?} for running tasks to finish",
                self.grace
            );
        }
        while self.store.running() > 0 && Instant::now() < deadline {
            tokio::time::sleep_until(deadline.min(Instant::now() + shutdown::DRAIN_POLL)).await;
        }
        let left = self.store.running();
        if left > 0 {
            tracing::warn!(
                running = left,
                "tasks still running after the grace period: cancelling them"
            );
        }
        self.shutdown.cancel();
        self.stop_servers.cancel();

        // Both servers at once, within what is left of the grace period
        // plus the margin.
        let cut_off = deadline.max(Instant::now()) + shutdown::STOP_MARGIN;
        let mut result = Ok(());
        let mut servers = self.servers;
        let joined = tokio::time::timeout_at(cut_off, async {
            let mut outcomes = Vec::new();
            for server in &mut servers {
                outcomes.push(server.await);
            }
            outcomes
        })
        .await;
        match joined {
            Ok(outcomes) => {
                for outcome in outcomes {
                    match outcome {
                        Ok(Ok(())) => {}
                        Ok(Err(err)) => result = Err(StartError(err)),
                        Err(err) => result = Err(StartError(format!("server task failed: {err}"))),
                    }
                }
            }
            Err(_) => {
                tracing::warn!("open connections outlived the shutdown grace period; closing them");
                for server in &servers {
                    server.abort();
                }
            }
        }
        tracing::info!(took = ?started.elapsed(), "shut down");
        result
    }
}

/// The HTTP control server: HTTP/1.1 only (what the orchestrator speaks),
/// with a deadline for each request's headers that also closes idle
/// keep-alive connections (`REQUEST_HEADER_TIMEOUT_SECS`), and at most
/// `MAX_CONNECTIONS` connections, a new one beyond that getting a JSON 503.
async fn serve_http(
    listener: std::net::TcpListener,
    app: Arc<App>,
    stop: CancellationToken,
) -> Result<(), String> {
    let listener = TcpListener::from_std(listener)
        .map_err(|err| format!("HTTP control server failed: {err}"))?;
    let mut acceptor = Acceptor::new(listener, app.config.max_connections, None, "control");
    let mut http1 = hyper::server::conn::http1::Builder::new();
    http1.header_read_timeout(app.config.header_timeout);
    let service = control::ControlService::new(app.clone());
    let closer = Arc::new(Closer::default());
    loop {
        let accepted = tokio::select! {
            accepted = acceptor.accept() => accepted,
            () = stop.cancelled() => break,
        };
        let conn = match accepted {
            Accepted::Open(conn) => conn,
            Accepted::OverCap(stream) => {
                tokio::spawn(turn_away(stream));
                continue;
            }
        };
        let peer = conn.peer_addr();
        // A timer of its own (see `HeaderTimer`) for each connection.
        let connection = http1
            .clone()
            .timer(HeaderTimer::default())
            .serve_connection(TokioIo::new(conn), service.clone());
        let mut watch = closer.watch();
        tokio::spawn(async move {
            let mut connection = std::pin::pin!(connection);
            let mut closing = false;
            let served = poll_fn(|cx| {
                if !closing && watch.closing(cx) {
                    // Finish the request in flight, then close.
                    connection.as_mut().graceful_shutdown();
                    closing = true;
                }
                connection.as_mut().poll(cx)
            })
            .await;
            if let Err(err) = served {
                tracing::debug!(?peer, "control connection ended: {err}");
            }
        });
    }
    closer.close_all();
    // Stop listening, then wait for the open connections to finish.
    acceptor.closed().await;
    Ok(())
}

/// Tells every open control connection to finish its request in flight
/// and close, once the servers stop. A connection looks at an atomic flag
/// each time it is polled, and registers its waker in a slot of its own;
/// only the stop takes the lock over all of them. (Waiting on the stop
/// token instead would lock two mutexes shared by every connection on
/// each poll: the token's state and its `Notify`'s waiter list.)
#[derive(Default)]
struct Closer {
    closing: AtomicBool,
    open: Mutex<OpenConnections>,
}

#[derive(Default)]
struct OpenConnections {
    next: u64,
    wakers: HashMap<u64, Arc<AtomicWaker>>,
}

impl Closer {
    /// A watch for one new connection.
    fn watch(self: &Arc<Self>) -> Watch {
        let waker = Arc::new(AtomicWaker::new());
        let mut open = self.lock();
        let id = open.next;
        open.next += 1;
        open.wakers.insert(id, waker.clone());
        Watch {
            closer: self.clone(),
            id,
            waker,
            registered: false,
        }
    }

    /// Tells every connection, open or yet to be polled, to close.
    fn close_all(&self) {
        self.closing.store(true, Ordering::SeqCst);
        for waker in self.lock().wakers.values() {
            waker.wake();
        }
    }

    fn lock(&self) -> MutexGuard<'_, OpenConnections> {
        self.open
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// One connection's place in its [`Closer`], given up on drop.
struct Watch {
    closer: Arc<Closer>,
    id: u64,
    waker: Arc<AtomicWaker>,
    registered: bool,
}

impl Watch {
    /// Whether the connection is to close; if not, `cx` is woken when it
    /// is. Only the first call registers the waker: a connection is the
    /// whole future of a task of its own, and any waker that task's polls
    /// are given wakes that one task.
    fn closing(&mut self, cx: &Context<'_>) -> bool {
        if !self.registered {
            self.waker.register(cx.waker());
            self.registered = true;
        }
        self.closer.closing.load(Ordering::SeqCst)
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.closer.lock().wakers.remove(&self.id);
    }
}

/// Answers a control connection beyond `MAX_CONNECTIONS` with a 503 and
/// closes it, without reading its request: a client learns why at once.
async fn turn_away(mut stream: TcpStream) {
    const BODY: &str = r#"{"detail":"too many open connections (MAX_CONNECTIONS): retry shortly"}"#;
    let answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nretry-after: 1\r\nconnection: close\r\n\r\n{BODY}",
        BODY.len()
    );
    let write = async {
        stream.write_all(answer.as_bytes()).await?;
        stream.shutdown().await
    };
    let _ = tokio::time::timeout(Duration::from_secs(1), write).await;
}

async fn serve_grpc(
    listener: std::net::TcpListener,
    app: Arc<App>,
    health: HealthServer<impl Health>,
    stop: CancellationToken,
) -> Result<(), String> {
    let rpcs: Arc<[String]> = app.methods.rpcs().map(str::to_string).collect();
    let data = DataService::new(
        app.store.clone(),
        rpcs.clone(),
        app.config.max_message_bytes,
        app.config.max_request_bytes,
    );
    let results = ResultsService::new(
        app.store.clone(),
        app.grpc_service,
        rpcs,
        app.config.max_request_bytes,
    );

    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(app.file_descriptor_set)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    let reflection_v1 = reflection()
        .build_v1()
        .map_err(|err| format!("building reflection service: {err}"))?;
    let reflection_v1alpha = reflection()
        .build_v1alpha()
        .map_err(|err| format!("building reflection service: {err}"))?;

    // The project's service is routed by path to the runtime's own
    // implementation (see `data`), and beside it the runtime's streaming
    // rpc (see `stream`), which reflection does not list: it is no part of
    // the project's proto. Both serve results, so both are behind the key
    // when data-port auth is on; health and reflection are not (see
    // `auth`). Unknown services answer UNIMPLEMENTED.
    let key = app.key.clone().filter(|_| app.config.data_port_auth);
    let data = RequireKey::new(data, key.clone());
    let results = RequireKey::new(results, key);
    let mut routes = Routes::default();
    let router = std::mem::take(routes.axum_router_mut());
    *routes.axum_router_mut() = router
        .route_service(&format!("/{}/{{*rpc}}", app.grpc_service), data)
        .route_service(&format!("/{}/{{*rpc}}", stream::SERVICE), results);
    let routes = routes
        .add_service(health)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha);

    let listener =
        TcpListener::from_std(listener).map_err(|err| format!("gRPC data server failed: {err}"))?;
    let acceptor = Acceptor::new(
        listener,
        app.config.max_connections,
        Some(app.config.idle_timeout),
        "data",
    );
    // Connections beyond the cap are closed at once: a gRPC client
    // retries with backoff.
    let incoming = futures_util::stream::unfold(acceptor, |mut acceptor| async move {
        loop {
            if let Accepted::Open(conn) = acceptor.accept().await {
                return Some((Ok::<_, std::io::Error>(conn), acceptor));
            }
        }
    });
    tonic::transport::Server::builder()
        .http2_keepalive_interval(Some(GRPC_KEEPALIVE_INTERVAL))
        .http2_keepalive_timeout(Some(GRPC_KEEPALIVE_TIMEOUT))
        .max_concurrent_streams(GRPC_MAX_CONCURRENT_STREAMS)
        .add_routes(routes)
        .serve_with_incoming_shutdown(incoming, async move { stop.cancelled().await })
        .await
        .map_err(|err| format!("gRPC data server failed: {err}"))
}

/// Runs `server` and, however it ends (stopped, failed while serving or
/// before it could serve), starts the shutdown: a service never goes on
/// with one of its two servers.
async fn drain_after(
    server: impl Future<Output = Result<(), String>>,
    draining: CancellationToken,
) -> Result<(), String> {
    let served = server.await;
    draining.cancel();
    served
}

/// How often the data port pings a connection's peer: a peer that does not
/// answer within [`GRPC_KEEPALIVE_TIMEOUT`] is gone, and one that answers is
/// not idle (see `IDLE_CONNECTION_TIMEOUT_SECS`).
const GRPC_KEEPALIVE_INTERVAL: Duration = Duration::from_secs(20);

/// How long the data port waits for a keepalive ping's answer.
const GRPC_KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(10);

/// The most requests one gRPC connection may have open at once.
const GRPC_MAX_CONCURRENT_STREAMS: u32 = 256;

/// Binds a port now, so that a busy port fails the start; the servers
/// register the socket with their own runtime.
fn bind(config: &Config, port: u16, what: &str) -> Result<std::net::TcpListener, StartError> {
    let addr = SocketAddr::new(config.host, port);
    let fail = |err: std::io::Error| StartError(format!("binding the {what} port {addr}: {err}"));
    let listener = std::net::TcpListener::bind(addr).map_err(fail)?;
    listener.set_nonblocking(true).map_err(fail)?;
    Ok(listener)
}

/// The runtime the servers run on, on threads of their own (see the
/// module's documentation). Dropping it stops whatever still runs there.
struct ServePlane(Option<Runtime>);

impl ServePlane {
    fn new() -> Result<ServePlane, StartError> {
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get().min(4));
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .thread_name("svcgen-serve")
            .enable_all()
            .build()
            .map(|runtime| ServePlane(Some(runtime)))
            .map_err(|err| StartError(format!("starting the servers' runtime: {err}")))
    }

    fn handle(&self) -> &Handle {
        match &self.0 {
            Some(runtime) => runtime.handle(),
            None => unreachable!("the runtime is only taken on drop"),
        }
    }
}

impl Drop for ServePlane {
    fn drop(&mut self) {
        // Not a blocking drop: this may run inside the main runtime.
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

fn local_addr(listener: &std::net::TcpListener) -> Result<SocketAddr, StartError> {
    listener
        .local_addr()
        .map_err(|err| StartError(format!("reading a bound address: {err}")))
}

/// Why the service could not start (or stopped with an error).
#[derive(Debug)]
pub struct StartError(String);

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for StartError {}
