//! Starting and stopping a service: binds both listeners, serves HTTP
//! control and gRPC data on one runtime, and shuts both down together.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::serve::ListenerExt;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use tonic::service::Routes;
use tonic::transport::server::TcpIncoming;
use tonic_health::pb::health_server::{Health, HealthServer};
use tonic_health::server::HealthReporter;
use tonic_health::ServingStatus;

pub use crate::shutdown::SHUTDOWN_GRACE;

use crate::app::App;
use crate::auth::{ApiKey, RequireKey};
use crate::config::{check_api_key, Config};
use crate::control;
use crate::data::DataService;
use crate::definition::{Definition, Methods};
use crate::descriptors::DescriptorIndex;
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
    mut config: Config,
    methods: Methods<D>,
) -> Result<RunningService, StartError> {
    // A `Config` built by hand gets the checks of one read from the
    // environment: a blank key must not turn auth off.
    config.api_key = config
        .api_key
        .as_deref()
        .map(check_api_key)
        .transpose()
        .map_err(|err| StartError(err.to_string()))?;
    let index = DescriptorIndex::from_encoded(&[
        (
            "the service's FILE_DESCRIPTOR_SET",
            D::file_descriptor_set(),
        ),
        (
            "UPSTREAM_FILE_DESCRIPTOR_SET",
            D::upstream_file_descriptor_set(),
        ),
    ])
    .map_err(StartError)?;
    let state = D::init_state(&config)
        .await
        .map_err(|err| StartError(format!("building shared state: {err}")))?;
    let http_port = config.http_port.unwrap_or(D::DEFAULT_HTTP_PORT);
    let grpc_port = config.grpc_port.unwrap_or(D::DEFAULT_GRPC_PORT);
    let http_listener = bind(&config, http_port, "HTTP control").await?;
    let grpc_listener = bind(&config, grpc_port, "gRPC data").await?;
    let http_addr = local_addr(&http_listener)?;
    let grpc_addr = local_addr(&grpc_listener)?;

    let grpc_host = config.grpc_host.as_deref().unwrap_or(D::DEFAULT_GRPC_HOST);
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
        config,
        methods,
        state: Arc::new(state),
        draining: draining.clone(),
        shutdown: shutdown.clone(),
    });

    let (health_reporter, health) = tonic_health::server::health_reporter();
    health_reporter
        .set_service_status(D::GRPC_SERVICE, ServingStatus::Serving)
        .await;
    let http = tokio::spawn(serve_http(http_listener, app.clone(), stop_servers.clone()));
    let grpc = tokio::spawn(serve_grpc(grpc_listener, app, health, stop_servers.clone()));
    tracing::info!(%http_addr, %grpc_addr, "listening");
    tracing::info!("{auth}");
    Ok(RunningService {
        http_addr,
        grpc_addr,
        grpc_service: D::GRPC_SERVICE,
        grace,
        health: health_reporter,
        store,
        draining,
        shutdown,
        stop_servers,
        servers: vec![http, grpc],
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

async fn serve_http<D: Definition>(
    listener: TcpListener,
    app: Arc<App<D>>,
    stop: CancellationToken,
) -> Result<(), String> {
    let listener = listener.tap_io(|stream| {
        if let Err(err) = stream.set_nodelay(true) {
            tracing::debug!("could not set TCP_NODELAY on a control connection: {err}");
        }
    });
    let draining = app.draining.clone();
    let served = axum::serve(listener, control::router(app))
        .with_graceful_shutdown(async move { stop.cancelled().await })
        .await
        .map_err(|err| format!("HTTP control server failed: {err}"));
    // Should the server stop by itself, the service shuts down.
    draining.cancel();
    served
}

async fn serve_grpc<D: Definition>(
    listener: TcpListener,
    app: Arc<App<D>>,
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
        D::GRPC_SERVICE,
        rpcs,
        app.config.max_request_bytes,
    );

    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(D::file_descriptor_set())
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
    let key = ApiKey::of(&app.config).filter(|_| app.config.data_port_auth);
    let data = RequireKey::new(data, key.clone());
    let results = RequireKey::new(results, key);
    let mut routes = Routes::default();
    let router = std::mem::take(routes.axum_router_mut());
    *routes.axum_router_mut() = router
        .route_service(&format!("/{}/{{*rpc}}", D::GRPC_SERVICE), data)
        .route_service(&format!("/{}/{{*rpc}}", stream::SERVICE), results);
    let routes = routes
        .add_service(health)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha);

    let draining = app.draining.clone();
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    let served = tonic::transport::Server::builder()
        .add_routes(routes)
        .serve_with_incoming_shutdown(incoming, async move { stop.cancelled().await })
        .await
        .map_err(|err| format!("gRPC data server failed: {err}"));
    // Should the server stop by itself, the service shuts down.
    draining.cancel();
    served
}

async fn bind(config: &Config, port: u16, what: &str) -> Result<TcpListener, StartError> {
    let addr = SocketAddr::new(config.host, port);
    TcpListener::bind(addr)
        .await
        .map_err(|err| StartError(format!("binding the {what} port {addr}: {err}")))
}

fn local_addr(listener: &TcpListener) -> Result<SocketAddr, StartError> {
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
