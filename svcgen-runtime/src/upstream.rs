//! Reaching upstream services: a task's inputs point at the gRPC services,
//! and the tasks, whose results it consumes.
//!
//! Handlers normally need one line,
//! [`ctx.fetch(&ctx.inputs()[0])`](crate::TaskContext::fetch), which finds
//! the rpc from the protos the project compiled, keeps one channel per
//! upstream address, streams large results from svcgen producers, retries
//! while the upstream is unavailable and sends the headers the upstream
//! expects. [`connect`] and
//! [`TaskContext::upstream_request`](crate::TaskContext::upstream_request)
//! are the building blocks for calling a generated client by hand:
//!
//! ```ignore
//! let input = &ctx.inputs()[0];
//! let channel = svcgen_runtime::upstream::connect(input).await?;
//! let mut client = ProducerClient::new(channel)
//!     .max_decoding_message_size(ctx.max_message_bytes());
//! let request = ctx.upstream_request(ProduceRequest::default(), input)?;
//! let produced = client.produce(request).await?.into_inner();
//! ```
//!
//! ([`request`] builds the same request without the service's
//! `SERVICE_API_KEY`: enough for upstreams without a key, or with
//! `DATA_PORT_AUTH=off`.)

use std::collections::HashMap;
use std::error::Error;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::body::{Body as HttpBody, Frame, SizeHint};
use prost::bytes::{Buf, Bytes};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tonic::body::Body;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::codegen::http::uri::PathAndQuery;
use tonic::codegen::{http, BoxFuture, Service};
use tonic::metadata::errors::InvalidMetadataValue;
use tonic::metadata::{Ascii, MetadataMap, MetadataValue};
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Status};

use crate::config::Config;
use crate::context::HandlerError;
use crate::data::TASK_ID_HEADER;
use crate::descriptors::{DescriptorIndex, Route};
use crate::stream::{self, FetchCodec, FetchRequest};
use crate::wire::DataReference;

/// How long connecting to an upstream service may take in [`connect`].
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long one connection attempt of a fetch may take.
const ATTEMPT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The wait before the second attempt of a fetch; it doubles after every
/// attempt, up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(100);

/// The longest wait between two attempts of a fetch.
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// How long an address that answered `UNIMPLEMENTED` to the streaming rpc
/// is fetched from with the unary rpc only, before streaming is tried
/// again (the producer may have been replaced by a svcgen service).
const UNARY_ONLY_FOR: Duration = Duration::from_secs(600);

/// The HTTP/2 receive windows of upstream channels: large enough that a
/// result flows at loopback speed instead of waiting for window updates
/// every few hundred KiB. (hyper's defaults are 2 MiB per stream and
/// 5 MiB per connection.)
const STREAM_WINDOW: u32 = 8 * 1024 * 1024;
const CONNECTION_WINDOW: u32 = 16 * 1024 * 1024;

/// The largest HTTP/2 frame upstream channels accept: a piece of a
/// streamed result in one frame, where the default 16 KiB would take 64
/// (and as many writes on the producer's side). Measured: about +20% on
/// loopback for 256 MiB.
const MAX_FRAME: u32 = 1024 * 1024;

/// Connects to the gRPC service `input` points at (`protocol` `grpc`,
/// `uri` `host:port`).
pub async fn connect(input: &DataReference) -> Result<Channel, HandlerError> {
    let endpoint = endpoint(input)?;
    endpoint
        .connect_timeout(CONNECT_TIMEOUT)
        .connect()
        .await
        .map_err(|err| HandlerError::new(format!("connecting to {}: {err}", input.uri)))
}

/// Wraps `message` in a request for the upstream task `input` names: its
/// `metadata.task_id` is sent as the `x-task-id` header, so the upstream
/// answers with exactly that task's result. It carries no key: an upstream
/// whose data port requires one needs
/// [`TaskContext::upstream_request`](crate::TaskContext::upstream_request).
pub fn request<T>(message: T, input: &DataReference) -> Result<tonic::Request<T>, HandlerError> {
    let mut request = tonic::Request::new(message);
    if let Some(task_id) = input.task_id() {
        let value = MetadataValue::try_from(task_id).map_err(|_| {
            HandlerError::new(format!(
                "upstream task id {task_id:?} is not printable ASCII"
            ))
        })?;
        request.metadata_mut().insert(TASK_ID_HEADER, value);
    }
    Ok(request)
}

/// The endpoint of a `grpc` input: its `uri`, with `http://` added when it
/// has no scheme, and receive windows and frames sized for large results.
fn endpoint(input: &DataReference) -> Result<Endpoint, HandlerError> {
    if !input.protocol.eq_ignore_ascii_case("grpc") {
        return Err(HandlerError::new(format!(
            "input {} has protocol {:?}, not grpc",
            input.uri, input.protocol
        )));
    }
    let uri = if input.uri.contains("://") {
        input.uri.clone()
    } else {
        format!("http://{}", input.uri)
    };
    let endpoint = Endpoint::from_shared(uri)
        .map_err(|err| HandlerError::new(format!("input uri {:?}: {err}", input.uri)))?;
    Ok(endpoint
        .initial_stream_window_size(STREAM_WINDOW)
        .initial_connection_window_size(CONNECTION_WINDOW)
        .max_frame_size(MAX_FRAME))
}

/// What [`TaskContext::fetch`](crate::TaskContext::fetch) needs, shared by
/// every task of a service: the descriptor index, one channel per upstream
/// address, and the settings of the calls.
pub(crate) struct Upstreams {
    index: DescriptorIndex,
    /// Keyed by the endpoint uri (`http://host:port`).
    links: Mutex<HashMap<String, Link>>,
    /// `authorization: Bearer <key>` (`SERVICE_API_KEY`), built once;
    /// `Err` for a key no header can carry, which every fetch reports.
    bearer: Option<Result<MetadataValue<Ascii>, InvalidMetadataValue>>,
    /// How long a fetch may wait for an answer, and then for each piece of
    /// it (`UPSTREAM_TIMEOUT_SECS`).
    budget: Duration,
    /// The largest unary answer (`GRPC_MAX_MESSAGE_BYTES`).
    max_message_bytes: usize,
    /// Whether results are streamed when the upstream can
    /// (`UPSTREAM_STREAMING`).
    streaming: bool,
    /// The largest streamed result (`UPSTREAM_MAX_RESULT_BYTES`).
    max_result_bytes: usize,
}

/// One upstream address.
struct Link {
    /// Connects on first use and reconnects by itself.
    channel: Channel,
    /// When the address last answered `UNIMPLEMENTED` to the streaming
    /// rpc while its unary rpc answered.
    unary_only_since: Option<Instant>,
}

/// Why a call of an upstream failed.
enum Failure {
    /// The upstream answered with an error other than `UNAVAILABLE`.
    Refused(Status),
    /// No answer within the budget: the attempts made and the last error.
    GaveUp {
        attempts: u32,
        took: Duration,
        last_error: String,
    },
    /// The answer started, then nothing arrived for the whole budget.
    Stalled { received: u64 },
}

impl Upstreams {
    pub(crate) fn new(index: DescriptorIndex, config: &Config) -> Upstreams {
        Upstreams {
            index,
            links: Mutex::new(HashMap::new()),
            bearer: config
                .api_key
                .as_ref()
                .map(|key| MetadataValue::try_from(format!("Bearer {key}"))),
            budget: config.upstream_timeout,
            max_message_bytes: config.max_message_bytes,
            streaming: config.upstream_streaming,
            max_result_bytes: config.upstream_max_result_bytes,
        }
    }

    /// Fetches the `T` that `input` refers to (see
    /// [`TaskContext::fetch`](crate::TaskContext::fetch)), giving up when
    /// `cancel` fires.
    pub(crate) async fn fetch<T>(
        &self,
        input: &DataReference,
        cancel: &CancellationToken,
    ) -> Result<T, HandlerError>
    where
        T: prost::Message + prost::Name + Default,
    {
        let endpoint = endpoint(input)?;
        let wanted = T::full_name();
        let route = self.index.resolve(&input.format, &wanted).map_err(|err| {
            HandlerError::new(format!(
                "input {} (format `{}`): {err}",
                input.uri, input.format
            ))
        })?;
        let rpc = route.rpc();
        let what = format!("fetching {rpc} from {}", input.uri);
        let path = PathAndQuery::try_from(format!("/{rpc}"))
            .map_err(|err| HandlerError::new(format!("{what}: not a valid path: {err}")))?;
        let metadata = self.metadata(input)?;
        let address = endpoint.uri().to_string();
        let channel = self.channel(&address, endpoint);
        let call = Call {
            channel,
            metadata,
            started: Instant::now(),
            what: &what,
        };
        let answer = tokio::select! {
            biased;
            () = cancel.cancelled() => {
                return Err(HandlerError::new(format!("task was cancelled while {what}")));
            }
            answer = self.answer(&call, &address, &route, &rpc, path) => {
                answer.map_err(|failure| self.report(failure, &what))?
            }
        };
        let message = match &route {
            Route::Rpc { .. } => answer,
            Route::LastResult { envelope, .. } => envelope
                .take(answer)
                .map_err(|err| HandlerError::new(format!("{what}: {err}")))?,
        };
        T::decode(message)
            .map_err(|err| HandlerError::new(format!("{what}: decoding a {wanted}: {err}")))
    }

    /// The encoded answer of `route`'s rpc (`rpc`, at `path`: see
    /// [`Route::rpc`]): streamed when streaming is on, the route is a
    /// method's rpc and the address is not known to lack the streaming
    /// rpc; else, or when the upstream answers the streaming rpc with
    /// `UNIMPLEMENTED`, from the unary rpc.
    async fn answer(
        &self,
        call: &Call<'_>,
        address: &str,
        route: &Route,
        rpc: &str,
        path: PathAndQuery,
    ) -> Result<Bytes, Failure> {
        let unary = |watched| {
            unary(
                watched,
                path.clone(),
                call.metadata.clone(),
                self.max_message_bytes,
            )
        };
        if !(self.streaming && matches!(route, Route::Rpc { .. }) && self.streams(address)) {
            return self.call(call, unary).await;
        }
        let request = FetchRequest {
            rpc: rpc.to_string(),
        };
        let streamed = self
            .call(call, |watched| {
                streamed(
                    watched,
                    request.clone(),
                    call.metadata.clone(),
                    self.max_result_bytes,
                )
            })
            .await;
        match streamed {
            Err(Failure::Refused(status)) if status.code() == Code::Unimplemented => {}
            streamed => return streamed,
        }
        let answer = self.call(call, unary).await;
        // An rpc the upstream does not have at all says nothing about
        // streaming; any other answer does.
        if !matches!(&answer, Err(Failure::Refused(status)) if status.code() == Code::Unimplemented)
        {
            tracing::info!(
                "{}: the upstream has no {}; its unary rpcs are used for {}s",
                call.what,
                stream::FETCH_RPC,
                UNARY_ONLY_FOR.as_secs()
            );
            self.lock_links()
                .entry(address.to_string())
                .and_modify(|link| link.unary_only_since = Some(Instant::now()));
        }
        answer
    }

    /// `message` in a request for the upstream task `input` names, with
    /// the metadata of a fetch (see [`TaskContext::upstream_request`](crate::TaskContext::upstream_request)).
    pub(crate) fn request<T>(
        &self,
        message: T,
        input: &DataReference,
    ) -> Result<tonic::Request<T>, HandlerError> {
        let metadata = self.metadata(input)?;
        Ok(tonic::Request::from_parts(
            metadata,
            Default::default(),
            message,
        ))
    }

    /// The request metadata of a fetch: `x-task-id` when the input names
    /// the upstream task, the bearer key when one is configured.
    fn metadata(&self, input: &DataReference) -> Result<MetadataMap, HandlerError> {
        let mut metadata = request((), input)?.into_parts().0;
        if let Some(bearer) = &self.bearer {
            let value = bearer
                .as_ref()
                .map_err(|_| HandlerError::new("SERVICE_API_KEY is not printable ASCII"))?;
            metadata.insert("authorization", value.clone());
        }
        Ok(metadata)
    }

    /// The channel to `address`, created (unconnected) from `endpoint` on
    /// first use.
    fn channel(&self, address: &str, endpoint: Endpoint) -> Channel {
        if let Some(link) = self.lock_links().get(address) {
            return link.channel.clone();
        }
        let channel = endpoint
            .connect_timeout(ATTEMPT_CONNECT_TIMEOUT)
            .connect_lazy();
        // Another task may have got there first: keep the first channel.
        let mut links = self.lock_links();
        let link = links.entry(address.to_string()).or_insert(Link {
            channel,
            unary_only_since: None,
        });
        link.channel.clone()
    }

    /// Whether `address` is worth asking for a stream: it has not
    /// recently answered that it has none.
    fn streams(&self, address: &str) -> bool {
        let links = self.lock_links();
        let since = links.get(address).and_then(|link| link.unary_only_since);
        since.is_none_or(|since| since.elapsed() >= UNARY_ONLY_FOR)
    }

    fn lock_links(&self) -> std::sync::MutexGuard<'_, HashMap<String, Link>> {
        // The map is consistent after any panic: changes are single steps.
        self.links.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// How many upstream channels are open.
    #[cfg(test)]
    pub(crate) fn channel_count(&self) -> usize {
        self.lock_links().len()
    }

    /// Makes `attempt`s until one answers: `UNAVAILABLE` (the upstream is
    /// not up yet, or restarting) is retried with exponential backoff
    /// while the budget since the fetch began lasts; other codes fail at
    /// once. An attempt may run past the budget while its answer keeps
    /// arriving: it fails when nothing arrived for a whole budget.
    async fn call<F, A>(&self, call: &Call<'_>, mut attempt: F) -> Result<Bytes, Failure>
    where
        F: FnMut(Watched) -> A,
        A: Future<Output = Result<Bytes, Status>>,
    {
        let mut backoff = FIRST_BACKOFF;
        let mut attempts = 0_u32;
        let last_error = loop {
            attempts += 1;
            let received = Arc::new(Received::default());
            let watched = Watched {
                channel: call.channel.clone(),
                received: received.clone(),
            };
            let error = match self.watch(call.started, &received, attempt(watched)).await {
                Ok(Ok(answer)) => return Ok(answer),
                Ok(Err(status)) if status.code() == Code::Unavailable => describe(&status),
                Ok(Err(status)) => return Err(Failure::Refused(status)),
                Err(Some(received)) => return Err(Failure::Stalled { received }),
                Err(None) => break "no answer within UPSTREAM_TIMEOUT_SECS".to_string(),
            };
            let left = self.budget.saturating_sub(call.started.elapsed());
            if left.is_zero() {
                break error;
            }
            let what = call.what;
            if attempts == 1 {
                tracing::info!(error, "{what}: the upstream is unavailable; retrying");
            } else {
                tracing::debug!(attempts, error, "{what}: still unavailable");
            }
            tokio::time::sleep(backoff.min(left)).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
            if call.started.elapsed() >= self.budget {
                break error;
            }
        };
        Err(Failure::GaveUp {
            attempts,
            took: call.started.elapsed(),
            last_error,
        })
    }

    /// Runs `attempt` until it ends, or until nothing has arrived for the
    /// budget: counted from `started` until the answer begins, then from
    /// the last piece of it received. A timeout is `Err(None)` before the
    /// answer began, else `Err(Some(bytes received))`.
    async fn watch<A: Future>(
        &self,
        started: Instant,
        received: &Received,
        attempt: A,
    ) -> Result<A::Output, Option<u64>> {
        tokio::pin!(attempt);
        let mut deadline = started + self.budget;
        loop {
            tokio::select! {
                output = &mut attempt => return Ok(output),
                () = tokio::time::sleep_until(deadline) => match received.last() {
                    None => return Err(None),
                    Some((at, received)) => {
                        if at + self.budget <= Instant::now() {
                            return Err(Some(received));
                        }
                        deadline = at + self.budget;
                    }
                },
            }
        }
    }

    /// The one-line error of a failed fetch.
    fn report(&self, failure: Failure, what: &str) -> HandlerError {
        match failure {
            Failure::Refused(status) => {
                let mut error = format!("{what} failed: {}", describe(&status));
                if status
                    .message()
                    .contains("decoded message length too large")
                {
                    error.push_str(&format!(
                        " (this service's GRPC_MAX_MESSAGE_BYTES is {}: raise it, and the \
                         upstream's, for results this large)",
                        self.max_message_bytes
                    ));
                }
                if status.code() == Code::Unauthenticated {
                    error.push_str(match self.bearer {
                        Some(_) => {
                            " (the upstream does not accept this service's SERVICE_API_KEY: \
                             the services of a workflow share one key)"
                        }
                        None => {
                            " (this service has no SERVICE_API_KEY to send: give it the \
                             upstream's key)"
                        }
                    });
                }
                HandlerError::new(error)
            }
            Failure::GaveUp {
                attempts,
                took,
                last_error,
            } => {
                let attempts = match attempts {
                    1 => "1 attempt".to_string(),
                    n => format!("{n} attempts"),
                };
                HandlerError::new(format!(
                    "{what} failed after {attempts} in {:.1}s: {last_error}",
                    took.as_secs_f64()
                ))
            }
            Failure::Stalled { received } => HandlerError::new(format!(
                "{what} failed: the answer stopped after {received} bytes: nothing arrived \
                 for {}s (UPSTREAM_TIMEOUT_SECS)",
                self.budget.as_secs_f64()
            )),
        }
    }
}

/// What every attempt of one fetch shares.
struct Call<'a> {
    channel: Channel,
    metadata: MetadataMap,
    /// When the fetch began: the budget for an answer counts from here.
    started: Instant,
    /// `fetching <rpc> from <uri>`, for log lines.
    what: &'a str,
}

/// One unary call: the response message's bytes, undecoded.
async fn unary(
    watched: Watched,
    path: PathAndQuery,
    metadata: MetadataMap,
    max_message_bytes: usize,
) -> Result<Bytes, Status> {
    let mut grpc = ready(watched, max_message_bytes).await?;
    let request = tonic::Request::from_parts(metadata, Default::default(), ());
    grpc.unary(request, path, RawCodec)
        .await
        .map(tonic::Response::into_inner)
}

/// One call of the streaming rpc: the pieces of the response message,
/// assembled.
async fn streamed(
    watched: Watched,
    request: FetchRequest,
    metadata: MetadataMap,
    max_result_bytes: usize,
) -> Result<Bytes, Status> {
    let mut grpc = ready(watched, stream::MAX_PIECE_MESSAGE_BYTES).await?;
    let request = tonic::Request::from_parts(metadata, Default::default(), request);
    let pieces = grpc
        .server_streaming(request, stream::fetch_path(), FetchCodec)
        .await?
        .into_inner();
    stream::assemble(pieces, max_result_bytes).await
}

/// A client of `watched` that reads messages of up to `max_message_bytes`,
/// once its channel is ready (`UNAVAILABLE` when it cannot connect).
async fn ready(
    watched: Watched,
    max_message_bytes: usize,
) -> Result<tonic::client::Grpc<Watched>, Status> {
    let mut grpc = tonic::client::Grpc::new(watched).max_decoding_message_size(max_message_bytes);
    grpc.ready()
        .await
        .map_err(|err| Status::unavailable(with_root_cause(err.to_string(), &err)))?;
    Ok(grpc)
}

/// How much of the answer of one attempt has arrived, and when it last
/// moved.
#[derive(Default)]
struct Received {
    last: Mutex<Option<(Instant, u64)>>,
}

impl Received {
    /// Records that `bytes` more arrived (0 for the response headers).
    fn advance(&self, bytes: usize) {
        let mut last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
        let received = last.map_or(0, |(_, received)| received);
        *last = Some((Instant::now(), received + bytes as u64));
    }

    fn last(&self) -> Option<(Instant, u64)> {
        *self.last.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A channel whose answers record what they [`Received`].
#[derive(Clone)]
struct Watched {
    channel: Channel,
    received: Arc<Received>,
}

impl Service<http::Request<Body>> for Watched {
    type Response = http::Response<WatchedBody>;
    type Error = tonic::transport::Error;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.channel.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let response = self.channel.call(request);
        let received = self.received.clone();
        Box::pin(async move {
            let response = response.await?;
            received.advance(0);
            Ok(response.map(|body| WatchedBody { body, received }))
        })
    }
}

/// A response body that records the arrival of each frame.
struct WatchedBody {
    body: Body,
    received: Arc<Received>,
}

impl HttpBody for WatchedBody {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let polled = Pin::new(&mut self.body).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled {
            self.received
                .advance(frame.data_ref().map_or(0, Bytes::len));
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// `CODE: message: root cause`, e.g. `UNAVAILABLE: tcp connect error:
/// Connection refused (os error 111)`.
fn describe(status: &Status) -> String {
    let head = format!("{}: {}", code_name(status.code()), status.message());
    match status.source() {
        Some(source) => with_root_cause(head, source),
        None => head,
    }
}

/// `text: <the innermost cause of err>`, unless `text` already says it.
/// (The layers in between repeat each other: "transport error", "tcp
/// connect error".)
fn with_root_cause(text: String, err: &dyn Error) -> String {
    let mut root = err;
    while let Some(cause) = root.source() {
        root = cause;
    }
    let cause = root.to_string();
    if text.contains(&cause) {
        text
    } else {
        format!("{text}: {cause}")
    }
}

/// The code as gRPC documents it: `NOT_FOUND`.
fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

/// Sends an empty message (zero bytes: every proto message decodes from
/// it) and keeps the answer's bytes, to be decoded once the caller knows
/// where the wanted message is in them.
struct RawCodec;

impl Codec for RawCodec {
    type Encode = ();
    type Decode = Bytes;
    type Encoder = EmptyEncoder;
    type Decoder = BytesDecoder;

    fn encoder(&mut self) -> EmptyEncoder {
        EmptyEncoder
    }

    fn decoder(&mut self) -> BytesDecoder {
        BytesDecoder
    }
}

struct EmptyEncoder;

impl Encoder for EmptyEncoder {
    type Item = ();
    type Error = Status;

    fn encode(&mut self, (): (), _: &mut EncodeBuf<'_>) -> Result<(), Status> {
        Ok(())
    }
}

struct BytesDecoder;

impl Decoder for BytesDecoder {
    type Item = Bytes;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Status> {
        Ok(Some(src.copy_to_bytes(src.remaining())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use serde_json::{json, Map};

    use crate::descriptors::tests::producer;

    /// `producer.v1.ProduceResponse`, as prost-build writes it with
    /// `enable_type_names()`.
    #[derive(Clone, PartialEq, prost::Message)]
    struct ProduceResponse {
        #[prost(string, tag = "1")]
        value: String,
    }

    impl prost::Name for ProduceResponse {
        const NAME: &'static str = "ProduceResponse";
        const PACKAGE: &'static str = "producer.v1";
    }

    fn upstreams(config: Config) -> Upstreams {
        let mut index = DescriptorIndex::default();
        index.add(&producer());
        Upstreams::new(index, &config)
    }

    fn input(uri: &str, task_id: Option<&str>) -> DataReference {
        DataReference {
            protocol: "gRPC".to_string(),
            uri: uri.to_string(),
            format: "Produce".to_string(),
            schema_uri: None,
            size_bytes: None,
            checksum: None,
            metadata: task_id.map(|id| {
                let mut metadata = Map::new();
                metadata.insert("task_id".to_string(), json!(id));
                metadata
            }),
        }
    }

    /// A loopback address nothing listens on.
    fn dead_address() -> String {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
        let port = listener.local_addr().expect("its address").port();
        format!("127.0.0.1:{port}")
    }

    #[test]
    fn the_request_names_the_task_and_carries_the_key_when_there_is_one() {
        let open = upstreams(Config::default());
        let metadata = open.metadata(&input("p:1", Some("t.1"))).expect("metadata");
        assert_eq!(
            metadata.get(TASK_ID_HEADER).map(|v| v.to_str().ok()),
            Some(Some("t.1"))
        );
        assert!(metadata.get("authorization").is_none());
        let keyed = upstreams(Config {
            api_key: Some("k3y".to_string()),
            ..Config::default()
        });
        let metadata = keyed.metadata(&input("p:1", None)).expect("metadata");
        assert!(
            metadata.get(TASK_ID_HEADER).is_none(),
            "a Python producer's input"
        );
        let bearer = metadata.get("authorization").and_then(|v| v.to_str().ok());
        assert_eq!(bearer, Some("Bearer k3y"));
    }

    #[tokio::test]
    async fn one_channel_is_kept_per_upstream_address() {
        let upstreams = upstreams(Config {
            upstream_timeout: Duration::from_millis(300),
            ..Config::default()
        });
        let cancel = CancellationToken::new();
        let dead = dead_address();
        for task_id in ["t.1", "t.2"] {
            let fetched = upstreams
                .fetch::<ProduceResponse>(&input(&dead, Some(task_id)), &cancel)
                .await;
            let err = fetched.expect_err("nothing listens there");
            let expected =
                format!("fetching producer.v1.Producer/Produce from {dead} failed after ");
            assert!(err.message().starts_with(&expected), "{err}");
        }
        assert_eq!(
            upstreams.channel_count(),
            1,
            "the same address: the same channel"
        );
        let with_scheme = format!("http://{dead}");
        let _ = upstreams
            .fetch::<ProduceResponse>(&input(&with_scheme, None), &cancel)
            .await;
        assert_eq!(
            upstreams.channel_count(),
            1,
            "`http://` is the default scheme"
        );
        let _ = upstreams
            .fetch::<ProduceResponse>(&input(&dead_address(), None), &cancel)
            .await;
        assert_eq!(upstreams.channel_count(), 2, "another address");

        let s3 = DataReference {
            protocol: "s3".to_string(),
            ..input("bucket/key", None)
        };
        let err = upstreams
            .fetch::<ProduceResponse>(&s3, &cancel)
            .await
            .expect_err("not grpc");
        assert!(err.message().contains("not grpc"), "{err}");
        assert_eq!(
            upstreams.channel_count(),
            2,
            "no channel for an input that is not grpc"
        );
    }

    #[tokio::test]
    async fn a_cancelled_task_stops_waiting_for_its_upstream() {
        let upstreams = upstreams(Config {
            upstream_timeout: Duration::from_secs(600),
            ..Config::default()
        });
        let cancel = CancellationToken::new();
        let canceller = cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            canceller.cancel();
        });
        let down = input(&dead_address(), None);
        let fetch = upstreams.fetch::<ProduceResponse>(&down, &cancel);
        let err = tokio::time::timeout(Duration::from_secs(20), fetch)
            .await
            .expect("the fetch returns once the task is cancelled")
            .expect_err("cancelled");
        assert!(
            err.message()
                .starts_with("task was cancelled while fetching"),
            "{err}"
        );
    }

    #[test]
    fn statuses_read_as_code_message_and_causes() {
        let io = std::io::Error::other("Connection refused (os error 111)");
        let mut status = Status::unavailable("tcp connect error");
        status.set_source(std::sync::Arc::new(io));
        assert_eq!(
            describe(&status),
            "UNAVAILABLE: tcp connect error: Connection refused (os error 111)"
        );
        assert_eq!(
            describe(&Status::not_found("no task x")),
            "NOT_FOUND: no task x"
        );
    }
}
