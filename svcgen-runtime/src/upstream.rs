//! Reaching upstream services: a task's inputs point at the gRPC services,
//! and the tasks, whose results it consumes.
//!
//! Handlers normally need one line,
//! [`ctx.fetch(&ctx.inputs()[0])`](crate::TaskContext::fetch), which finds
//! the rpc from the protos the project compiled, keeps one channel per
//! upstream address, retries while the upstream is unavailable and sends
//! the headers the upstream expects. [`connect`] and [`request`] are the
//! building blocks for calling a generated client by hand:
//!
//! ```ignore
//! let input = &ctx.inputs()[0];
//! let channel = svcgen_runtime::upstream::connect(input).await?;
//! let mut client = ProducerClient::new(channel)
//!     .max_decoding_message_size(ctx.max_message_bytes());
//! let request = svcgen_runtime::upstream::request(ProduceRequest::default(), input)?;
//! let produced = client.produce(request).await?.into_inner();
//! ```

use std::collections::HashMap;
use std::error::Error;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use prost::bytes::{Buf, Bytes};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::codegen::http::uri::PathAndQuery;
use tonic::metadata::{MetadataMap, MetadataValue};
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Status};

use crate::config::Config;
use crate::context::HandlerError;
use crate::data::TASK_ID_HEADER;
use crate::descriptors::{DescriptorIndex, Route};
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
/// answers with exactly that task's result.
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
/// has no scheme.
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
    Endpoint::from_shared(uri)
        .map_err(|err| HandlerError::new(format!("input uri {:?}: {err}", input.uri)))
}

/// What [`TaskContext::fetch`](crate::TaskContext::fetch) needs, shared by
/// every task of a service: the descriptor index, one channel per upstream
/// address, and the settings of the calls.
pub(crate) struct Upstreams {
    index: DescriptorIndex,
    /// Keyed by the endpoint uri (`http://host:port`). Each channel
    /// connects on first use and reconnects by itself.
    channels: Mutex<HashMap<String, Channel>>,
    /// Sent as `authorization: Bearer <key>` (`SERVICE_API_KEY`).
    api_key: Option<String>,
    /// How long one fetch may take, retries included (`UPSTREAM_TIMEOUT_SECS`).
    budget: Duration,
    max_message_bytes: usize,
}

impl Upstreams {
    pub(crate) fn new(index: DescriptorIndex, config: &Config) -> Upstreams {
        Upstreams {
            index,
            channels: Mutex::new(HashMap::new()),
            api_key: config.api_key.clone(),
            budget: config.upstream_timeout,
            max_message_bytes: config.max_message_bytes,
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
        let channel = self.channel(endpoint);
        let answer = tokio::select! {
            biased;
            () = cancel.cancelled() => {
                return Err(HandlerError::new(format!("task was cancelled while {what}")));
            }
            answer = self.call(channel, path, metadata, &what) => answer?,
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

    /// The request metadata of a fetch: `x-task-id` when the input names
    /// the upstream task, the bearer key when one is configured.
    fn metadata(&self, input: &DataReference) -> Result<MetadataMap, HandlerError> {
        let mut metadata = request((), input)?.into_parts().0;
        if let Some(key) = &self.api_key {
            let value = MetadataValue::try_from(format!("Bearer {key}"))
                .map_err(|_| HandlerError::new("SERVICE_API_KEY is not printable ASCII"))?;
            metadata.insert("authorization", value);
        }
        Ok(metadata)
    }

    /// The channel to `endpoint`'s address, created (unconnected) on first use.
    fn channel(&self, endpoint: Endpoint) -> Channel {
        let key = endpoint.uri().to_string();
        if let Some(channel) = self.lock_channels().get(&key) {
            return channel.clone();
        }
        let channel = endpoint
            .connect_timeout(ATTEMPT_CONNECT_TIMEOUT)
            .connect_lazy();
        // Another task may have got there first: keep the first channel.
        self.lock_channels().entry(key).or_insert(channel).clone()
    }

    fn lock_channels(&self) -> std::sync::MutexGuard<'_, HashMap<String, Channel>> {
        // The map is consistent after any panic: inserts are single steps.
        self.channels.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// How many upstream channels are open.
    #[cfg(test)]
    pub(crate) fn channel_count(&self) -> usize {
        self.lock_channels().len()
    }

    /// Calls `path` with an empty request until it answers, retrying
    /// `UNAVAILABLE` (the upstream is not up yet, or restarting) with
    /// exponential backoff for at most the budget; other codes fail at once.
    async fn call(
        &self,
        channel: Channel,
        path: PathAndQuery,
        metadata: MetadataMap,
        what: &str,
    ) -> Result<Bytes, HandlerError> {
        let started = Instant::now();
        let mut backoff = FIRST_BACKOFF;
        let mut attempts = 0_u32;
        let last_error = loop {
            attempts += 1;
            let left = self.budget.saturating_sub(started.elapsed());
            let request = tonic::Request::from_parts(metadata.clone(), Default::default(), ());
            let attempt = attempt(
                channel.clone(),
                path.clone(),
                request,
                self.max_message_bytes,
            );
            let error = match tokio::time::timeout(left, attempt).await {
                Ok(Ok(answer)) => return Ok(answer),
                Ok(Err(status)) if status.code() == Code::Unavailable => describe(&status),
                Ok(Err(status)) => {
                    return Err(HandlerError::new(format!(
                        "{what} failed: {}",
                        describe(&status)
                    )))
                }
                Err(_) => break "no answer within UPSTREAM_TIMEOUT_SECS".to_string(),
            };
            let left = self.budget.saturating_sub(started.elapsed());
            if left.is_zero() {
                break error;
            }
            if attempts == 1 {
                tracing::info!(error, "{what}: the upstream is unavailable; retrying");
            } else {
                tracing::debug!(attempts, error, "{what}: still unavailable");
            }
            tokio::time::sleep(backoff.min(left)).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
            if started.elapsed() >= self.budget {
                break error;
            }
        };
        let attempts = match attempts {
            1 => "1 attempt".to_string(),
            n => format!("{n} attempts"),
        };
        Err(HandlerError::new(format!(
            "{what} failed after {attempts} in {:.1}s: {last_error}",
            started.elapsed().as_secs_f64()
        )))
    }
}

/// One unary call: the response message's bytes, undecoded.
async fn attempt(
    channel: Channel,
    path: PathAndQuery,
    request: tonic::Request<()>,
    max_message_bytes: usize,
) -> Result<Bytes, Status> {
    let mut grpc = tonic::client::Grpc::new(channel).max_decoding_message_size(max_message_bytes);
    grpc.ready()
        .await
        .map_err(|err| Status::unavailable(with_root_cause(err.to_string(), &err)))?;
    grpc.unary(request, path, RawCodec)
        .await
        .map(tonic::Response::into_inner)
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
