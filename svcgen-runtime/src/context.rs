//! What a handler gets ([`TaskContext`]) and what it may return
//! ([`HandlerError`]): the stable API between the runtime and a project's
//! `src/methods/`. Handler files are written once and then belong to the
//! user, so nothing here may change in a way that breaks them.

use std::fmt;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use tokio_util::sync::CancellationToken;

use crate::upstream::Upstreams;
use crate::wire::DataReference;

/// Everything a handler knows about the task it runs. `S` is the project's
/// shared state; a project names this type `TaskContext` without the
/// parameter (`src/svcgen.rs` defines the alias).
pub struct TaskContext<S> {
    pub(crate) task_id: String,
    pub(crate) workflow_id: String,
    pub(crate) method: String,
    pub(crate) inputs: Vec<DataReference>,
    pub(crate) parameters: Map<String, Value>,
    pub(crate) state: Arc<S>,
    pub(crate) progress: Progress,
    pub(crate) cancel: CancellationToken,
    pub(crate) max_message_bytes: usize,
    /// The upstream protos and channels, shared by every task.
    pub(crate) upstreams: Arc<Upstreams>,
}

impl TaskContext<()> {
    /// This context with the shared state `state`.
    pub(crate) fn with_state<S>(self, state: Arc<S>) -> TaskContext<S> {
        TaskContext {
            task_id: self.task_id,
            workflow_id: self.workflow_id,
            method: self.method,
            inputs: self.inputs,
            parameters: self.parameters,
            state,
            progress: self.progress,
            cancel: self.cancel,
            max_message_bytes: self.max_message_bytes,
            upstreams: self.upstreams,
        }
    }
}

impl<S> TaskContext<S> {
    /// The poll id of this task: what the orchestrator polls and what
    /// downstream services send as `x-task-id`.
    pub fn task_id(&self) -> &str {
        &self.task_id
    }

    /// The orchestrator's workflow id.
    pub fn workflow_id(&self) -> &str {
        &self.workflow_id
    }

    /// The method name this task was started with.
    pub fn method(&self) -> &str {
        &self.method
    }

    /// Where the upstream results are: usually `protocol: "grpc"`, `uri`
    /// the upstream's gRPC address and `format` the rpc to call, with the
    /// upstream poll id in `metadata.task_id` (see [`DataReference::task_id`]).
    pub fn inputs(&self) -> &[DataReference] {
        &self.inputs
    }

    /// The free-form `parameters` object of the execute request (often empty).
    pub fn parameters(&self) -> &Map<String, Value> {
        &self.parameters
    }

    /// One parameter decoded into `T`; `Ok(None)` when absent, an error
    /// naming the parameter when it has the wrong shape.
    pub fn parameter<T: DeserializeOwned>(&self, name: &str) -> Result<Option<T>, HandlerError> {
        match self.parameters.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(value) => T::deserialize(value)
                .map(Some)
                .map_err(|err| HandlerError::new(format!("parameter `{name}`: {err}"))),
        }
    }

    /// The shared state built once at start-up (see `src/state.rs`).
    pub fn state(&self) -> &S {
        &self.state
    }

    /// Reports progress in whole percent (clamped to 100; never goes back).
    pub fn set_progress(&self, percent: u8) {
        self.progress.set(percent);
    }

    /// Reports progress together with a short message shown in the status.
    pub fn set_progress_message(&self, percent: u8, message: impl Into<String>) {
        self.progress.set_with_message(percent, message);
    }

    /// Reports that `step` of `steps` are done, as whole percent and the
    /// message `step {step}/{steps}` (see [`Progress::set_step`]).
    pub fn set_step(&self, step: u32, steps: u32) {
        self.progress.set_step(step, steps);
    }

    /// A handle for reporting progress from another thread, e.g. inside
    /// `tokio::task::spawn_blocking`.
    pub fn progress(&self) -> Progress {
        self.progress.clone()
    }

    /// True once the task should stop: its deadline passed or the service
    /// is shutting down. Cheap: check it between steps of blocking work.
    pub fn is_cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }

    /// Completes when the task should stop; use it in `tokio::select!`.
    pub async fn cancelled(&self) {
        self.cancel.cancelled().await
    }

    /// A cloneable cancellation handle, for blocking threads.
    pub fn cancellation(&self) -> CancellationToken {
        self.cancel.clone()
    }

    /// Fetches the upstream result `input` points at, as a `T`: the
    /// response message of the producer's rpc, generated (with
    /// [`prost::Name`]) from the producer's proto in this project.
    ///
    /// ```
    /// # use svcgen_runtime::{HandlerError, TaskContext};
    /// # #[derive(Clone, PartialEq, prost::Message)]
    /// # pub struct ProduceResponse {
    /// #     #[prost(string, tag = "1")]
    /// #     pub value: String,
    /// # }
    /// # impl prost::Name for ProduceResponse {
    /// #     const NAME: &'static str = "ProduceResponse";
    /// #     const PACKAGE: &'static str = "producer.v1";
    /// # }
    /// async fn consume(ctx: TaskContext<()>) -> Result<String, HandlerError> {
    ///     let produced: ProduceResponse = ctx.fetch(&ctx.inputs()[0]).await?;
    ///     Ok(produced.value)
    /// }
    /// ```
    ///
    /// `input` must have `protocol` `grpc` and `uri` `host:port`. The rpc
    /// is found in the protos the project compiled (its own and its
    /// upstreams', see [`Definition`](crate::Definition)): the rpc named by
    /// `format` that returns `T`; else, when no rpc has that name or it is
    /// `GetLastResult`, the `GetLastResult` whose envelope has a oneof case
    /// of type `T`, from which the case is taken. An rpc of that name
    /// returning another type is an error naming both types.
    ///
    /// The request is empty, with `x-task-id: <metadata.task_id>` when the
    /// input has one (the result of exactly that upstream task; without it
    /// the upstream answers its latest result) and `authorization: Bearer
    /// <SERVICE_API_KEY>` when a key is configured. One channel per
    /// upstream address is kept for every task.
    ///
    /// A method's rpc is fetched through the runtime's streaming rpc
    /// (`svcgen.runtime.v1.Results/Fetch`, every svcgen service has it): the
    /// result arrives in 1 MiB pieces, may be as large as
    /// [`Config::upstream_max_result_bytes`](crate::Config::upstream_max_result_bytes)
    /// (`UPSTREAM_MAX_RESULT_BYTES`, 1 GiB), and is decoded once. An
    /// upstream without it (a producer from the Python templates) answers
    /// `UNIMPLEMENTED`; the unary rpc is then called, and used alone for
    /// that address for the next 10 minutes. A unary answer (that fallback,
    /// `GetLastResult`, or `UPSTREAM_STREAMING=off`) may be as large as
    /// [`Self::max_message_bytes`], which both sides must raise for larger
    /// results.
    ///
    /// `UNAVAILABLE` (the upstream is not up yet) is retried with backoff
    /// until [`Config::upstream_timeout`](crate::Config::upstream_timeout)
    /// (`UPSTREAM_TIMEOUT_SECS`) has passed since the fetch began; any
    /// other error fails at once. Once the answer has begun, the same
    /// timeout bounds each pause in it, not the whole transfer: a large
    /// result that keeps arriving is never cut. When the task is cancelled
    /// the fetch returns at once with an error.
    pub async fn fetch<T>(&self, input: &DataReference) -> Result<T, HandlerError>
    where
        T: prost::Message + prost::Name + Default + Send + 'static,
    {
        self.upstreams.fetch(input, &self.cancel).await
    }

    /// `message` in a request for the upstream task `input` names, for a
    /// generated client called by hand: with the metadata
    /// [`fetch`](Self::fetch) sends, `x-task-id: <metadata.task_id>` when
    /// the input has one and `authorization: Bearer <SERVICE_API_KEY>` when
    /// a key is configured (a svcgen upstream requires it on its data port
    /// when it has a key). [`upstream::request`](crate::upstream::request)
    /// is the same without the key.
    pub fn upstream_request<T>(
        &self,
        message: T,
        input: &DataReference,
    ) -> Result<tonic::Request<T>, HandlerError> {
        self.upstreams.request(message, input)
    }

    /// The largest gRPC message this service sends or accepts
    /// (`GRPC_MAX_MESSAGE_BYTES`, default 64 MiB): give it to clients of
    /// upstream services, e.g.
    /// `Client::new(channel).max_decoding_message_size(ctx.max_message_bytes())`.
    pub fn max_message_bytes(&self) -> usize {
        self.max_message_bytes
    }
}

/// A task's progress: whole percent plus an optional message. Cloneable and
/// usable from any thread.
#[derive(Clone, Default)]
pub struct Progress {
    inner: Arc<ProgressInner>,
}

#[derive(Default)]
struct ProgressInner {
    percent: AtomicU8,
    message: Mutex<Option<String>>,
}

impl Progress {
    /// Sets progress to `percent` (at most 100). Lower values than the
    /// current one are ignored: the orchestrator rejects decreasing progress.
    pub fn set(&self, percent: u8) {
        self.inner
            .percent
            .fetch_max(percent.min(100), Ordering::Relaxed);
    }

    /// Sets progress and the message shown beside it.
    pub fn set_with_message(&self, percent: u8, message: impl Into<String>) {
        self.set(percent);
        *self.lock_message() = Some(message.into());
    }

    /// Reports that `step` of `steps` are done: `step * 100 / steps`
    /// percent, at most 99 (100 means the task has returned, which the
    /// runtime reports itself), with the message `step {step}/{steps}`.
    /// `steps == 0` counts as done.
    pub fn set_step(&self, step: u32, steps: u32) {
        let percent = match steps {
            0 => 99,
            _ => (u64::from(step.min(steps)) * 100 / u64::from(steps)).min(99),
        };
        // At most 99, so the conversion cannot fail.
        self.set_with_message(
            u8::try_from(percent).unwrap_or(99),
            format!("step {step}/{steps}"),
        );
    }

    /// The current percent.
    pub fn get(&self) -> u8 {
        self.inner.percent.load(Ordering::Relaxed)
    }

    /// The last message set, if any.
    pub fn message(&self) -> Option<String> {
        self.lock_message().clone()
    }

    fn lock_message(&self) -> std::sync::MutexGuard<'_, Option<String>> {
        // A panic while holding this lock cannot leave a half-written String.
        self.inner
            .message
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Why a handler failed. Its message becomes the task's `error`.
///
/// Any `std::error::Error` converts into it, so `?` works on I/O, parse and
/// client errors; use [`HandlerError::new`] for your own messages, and for
/// error types that are not `std::error::Error` (`anyhow::Error`,
/// `Box<dyn Error>`): `.map_err(|err| HandlerError::new(format!("{err:#}")))?`.
pub struct HandlerError {
    message: String,
}

impl HandlerError {
    /// An error with this message.
    pub fn new(message: impl Into<String>) -> HandlerError {
        HandlerError {
            message: message.into(),
        }
    }

    /// The message reported to the orchestrator.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl<E: std::error::Error> From<E> for HandlerError {
    fn from(err: E) -> HandlerError {
        // Keep the whole cause chain on one line: "reading x: not found".
        let mut message = err.to_string();
        let mut source = err.source();
        while let Some(cause) = source {
            message.push_str(": ");
            message.push_str(&cause.to_string());
            source = cause.source();
        }
        HandlerError { message }
    }
}

impl fmt::Display for HandlerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl fmt::Debug for HandlerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HandlerError({:?})", self.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_never_decreases_and_is_clamped() {
        let progress = Progress::default();
        progress.set(40);
        progress.set(10);
        assert_eq!(progress.get(), 40);
        progress.set(250);
        assert_eq!(progress.get(), 100);
    }

    #[test]
    fn steps_become_whole_percent_below_100_with_a_message() {
        let progress = Progress::default();
        progress.set_step(1, 3);
        assert_eq!(
            (progress.get(), progress.message()),
            (33, Some("step 1/3".into()))
        );
        progress.set_step(3, 3);
        assert_eq!(progress.get(), 99, "100 is left for the runtime");
        let done = Progress::default();
        done.set_step(0, 0);
        assert_eq!(done.get(), 99);
        let past = Progress::default();
        past.set_step(9, 2);
        assert_eq!((past.get(), past.message()), (99, Some("step 9/2".into())));
    }

    #[test]
    fn errors_keep_their_cause_chain_on_one_line() {
        #[derive(Debug)]
        struct Outer(std::io::Error);
        impl fmt::Display for Outer {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("reading model.bin")
            }
        }
        impl std::error::Error for Outer {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }
        let err = HandlerError::from(Outer(std::io::Error::other("not found")));
        assert_eq!(err.message(), "reading model.bin: not found");
    }
}
