//! What a generated project gives the runtime: one [`Definition`], written
//! by svcgen into the project's `src/svcgen.rs`, and the method table
//! ([`Methods`]) it returns.
//!
//! The trait is the only seam between the two crates, so the runtime never
//! names a module of the project: it learns the result type, the shared
//! state and the handlers through it.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use prost::bytes::Bytes;

use crate::config::Config;
use crate::context::{HandlerError, TaskContext};
use crate::tasks::Encoded;

/// The error type a project's `State::init` may return.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Everything the runtime needs to know about a generated service.
pub trait Definition: Sized + Send + Sync + 'static {
    /// State shared by every task, built once at start-up (`src/state.rs`).
    type State: Send + Sync + 'static;

    /// Any method's result: the `result` oneof of the proto's `LastResult`.
    type Output: Send + 'static;

    /// The proto service, qualified by its package: `demo_svc.DemoSvc`.
    const GRPC_SERVICE: &'static str;

    /// The encoded `FileDescriptorSet` of the proto, served by reflection.
    /// [`TaskContext::fetch`] also finds rpcs in it: a service may consume
    /// the results of another instance of its own kind.
    const FILE_DESCRIPTOR_SET: &'static [u8];

    /// The encoded `FileDescriptorSet` of the upstream protos the project
    /// compiled (their services, rpcs and messages), in which
    /// [`TaskContext::fetch`] finds the rpc that returns the type asked
    /// for. Empty by default: a service without upstreams.
    const UPSTREAM_FILE_DESCRIPTOR_SET: &'static [u8] = &[];

    /// HTTP control port when neither `PORT` nor [`Config::http_port`] sets one.
    const DEFAULT_HTTP_PORT: u16;

    /// gRPC data port when neither `GRPC_PORT` nor [`Config::grpc_port`] sets one.
    const DEFAULT_GRPC_PORT: u16;

    /// Host put in output references when neither `GRPC_HOST` nor
    /// [`Config::grpc_host`] sets one: the name other services reach this
    /// one by (its compose or Kubernetes service name).
    const DEFAULT_GRPC_HOST: &'static str;

    /// The methods `/control/execute` runs, with their handlers.
    fn methods() -> Methods<Self>;

    /// The rpc whose response `output` is (the method's name).
    fn rpc_of(output: &Self::Output) -> &'static str;

    /// Appends `output` to `buf` encoded as the `LastResult.result` oneof
    /// field: its tag, its length, then the response message.
    fn encode(output: &Self::Output, buf: &mut Vec<u8>);

    /// Builds the shared state before the service starts listening.
    fn init_state(config: &Config) -> impl Future<Output = Result<Self::State, BoxError>> + Send;

    /// The service's own descriptor set, as the runtime reads it:
    /// [`Self::FILE_DESCRIPTOR_SET`]. Override only to supply bytes built
    /// at run time (tests that describe a proto with `prost-types`).
    fn file_descriptor_set() -> &'static [u8] {
        Self::FILE_DESCRIPTOR_SET
    }

    /// The upstream descriptor set, as the runtime reads it:
    /// [`Self::UPSTREAM_FILE_DESCRIPTOR_SET`]. Override only to supply
    /// bytes built at run time (tests).
    fn upstream_file_descriptor_set() -> &'static [u8] {
        Self::UPSTREAM_FILE_DESCRIPTOR_SET
    }
}

/// A running handler, boxed so that methods of different types share a table.
pub type HandlerFuture<O> = Pin<Box<dyn Future<Output = Result<O, HandlerError>> + Send>>;

type Handler<D> = Arc<
    dyn Fn(TaskContext<<D as Definition>::State>) -> HandlerFuture<<D as Definition>::Output>
        + Send
        + Sync,
>;

/// How `/control/execute` runs a method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MethodKind {
    /// Answers `running` at once; the orchestrator polls until it completes.
    Long,
    /// Runs within the execute request and answers `complete` (or `failed`
    /// once the quick-method deadline passes).
    Quick,
}

/// One registered method.
pub(crate) struct Method<D: Definition> {
    pub(crate) name: String,
    /// The rpc that serves this method's results: its own name, except for
    /// test probes that produce another method's response.
    pub(crate) rpc: String,
    pub(crate) kind: MethodKind,
    pub(crate) handler: Handler<D>,
}

impl<D: Definition> Clone for Method<D> {
    fn clone(&self) -> Self {
        Method {
            name: self.name.clone(),
            rpc: self.rpc.clone(),
            kind: self.kind,
            handler: self.handler.clone(),
        }
    }
}

/// The methods a service runs, in registration order.
pub struct Methods<D: Definition> {
    methods: Vec<Method<D>>,
}

impl<D: Definition> Default for Methods<D> {
    fn default() -> Self {
        Methods {
            methods: Vec::new(),
        }
    }
}

impl<D: Definition> Clone for Methods<D> {
    fn clone(&self) -> Self {
        Methods {
            methods: self.methods.clone(),
        }
    }
}

impl<D: Definition> Methods<D> {
    /// An empty table.
    pub fn new() -> Self {
        Methods::default()
    }

    /// Registers `handler` under `name`, replacing a method of that name.
    /// Its results are served by the rpc of the same name.
    pub fn add<F, Fut>(&mut self, name: &str, kind: MethodKind, handler: F) -> &mut Self
    where
        F: Fn(TaskContext<D::State>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<D::Output, HandlerError>> + Send + 'static,
    {
        self.add_served_by(name, name, kind, handler)
    }

    /// Registers `handler` under `name`, its results served by the rpc
    /// `rpc` (whose response type the handler must produce). Tests use this
    /// for probe methods that are not in the proto.
    pub fn add_served_by<F, Fut>(
        &mut self,
        name: &str,
        rpc: &str,
        kind: MethodKind,
        handler: F,
    ) -> &mut Self
    where
        F: Fn(TaskContext<D::State>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<D::Output, HandlerError>> + Send + 'static,
    {
        self.methods.retain(|method| method.name != name);
        self.methods.push(Method {
            name: name.to_string(),
            rpc: rpc.to_string(),
            kind,
            handler: Arc::new(move |ctx| Box::pin(handler(ctx))),
        });
        self
    }

    /// The registered method names, in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.methods.iter().map(|method| method.name.as_str())
    }

    /// The methods with their handlers bound to the shared `state`: the
    /// form the runtime's servers and runner take, one type whatever the
    /// project (see [`BoundMethods`]).
    pub(crate) fn bind(self, state: Arc<D::State>) -> BoundMethods {
        let methods = self
            .methods
            .into_iter()
            .map(|method| {
                let handler = method.handler;
                let state = state.clone();
                let run: BoundHandler = Arc::new(move |ctx: TaskContext<()>| {
                    let running = handler(ctx.with_state(state.clone()));
                    Box::pin(async move {
                        let output = running.await?;
                        Ok(Box::new(move || encode::<D>(&output)) as Unencoded)
                    })
                });
                BoundMethod {
                    name: method.name,
                    rpc: method.rpc,
                    kind: method.kind,
                    run,
                }
            })
            .collect();
        BoundMethods { methods }
    }
}

/// A handler's output, encoded when called: the runner calls it, so that
/// a project's `encode` that panics fails the task like any runner fault.
pub(crate) type Unencoded = Box<dyn FnOnce() -> Encoded + Send>;

/// A handler bound to the shared state. It takes the task's context
/// without the state (the binding adds it) and gives the output to encode.
pub(crate) type BoundHandler = Arc<
    dyn Fn(TaskContext<()>) -> Pin<Box<dyn Future<Output = Result<Unencoded, HandlerError>> + Send>>
        + Send
        + Sync,
>;

/// A registered method whose handler is bound (see [`Methods::bind`]).
#[derive(Clone)]
pub(crate) struct BoundMethod {
    pub(crate) name: String,
    /// The rpc that serves this method's results.
    pub(crate) rpc: String,
    pub(crate) kind: MethodKind,
    pub(crate) run: BoundHandler,
}

/// The methods a running service serves. Nothing in it names the
/// project's types: the servers, the control plane and the runner are
/// compiled once, in this crate, rather than again in every project for
/// its own [`Definition`] (that was most of the code a project's crate
/// compiled, on every cold build).
pub(crate) struct BoundMethods {
    methods: Vec<BoundMethod>,
}

impl BoundMethods {
    pub(crate) fn get(&self, name: &str) -> Option<&BoundMethod> {
        self.methods.iter().find(|method| method.name == name)
    }

    /// The registered method names, in order.
    pub(crate) fn names(&self) -> impl Iterator<Item = &str> {
        self.methods.iter().map(|method| method.name.as_str())
    }

    /// The rpcs that serve the registered methods' results.
    pub(crate) fn rpcs(&self) -> impl Iterator<Item = &str> {
        self.methods.iter().map(|method| method.rpc.as_str())
    }
}

/// Encodes a handler's output once, for every reader of the result.
fn encode<D: Definition>(output: &D::Output) -> Encoded {
    let mut field = Vec::new();
    D::encode(output, &mut field);
    // The buffer grew by doubling: keep only the result (every reader
    // gets a slice of this one copy).
    field.shrink_to_fit();
    Encoded {
        rpc: D::rpc_of(output),
        field: Bytes::from(field),
    }
}
