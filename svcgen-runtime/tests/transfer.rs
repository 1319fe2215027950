//! Large results between services: service A makes a 256 MiB result,
//! service B fetches it with `ctx.fetch` and returns its checksum, which
//! must be the one computed here from the seed. Through the runtime's
//! streaming rpc, through the unary rpc with raised limits, and from
//! producers that only have the unary rpc or that answer slowly.

mod common;

use std::convert::Infallible;
use std::future::{ready, Ready};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use common::blob::{checksum, digest, expected_checksum, make, pattern, Blob, DigestResponse};
use common::blob::{MakeResponse, MAKE};
use common::{FetchRequest, FetchResponse, FETCH_PATH};
use prost::Message;
use svcgen_runtime::testing::TestService;
use svcgen_runtime::{CancellationToken, Config, DataReference, Definition};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::body::Body;
use tonic::codegen::{http, Body as HttpBody, BoxFuture, Service, StdError};
use tonic::server::{Grpc, ServerStreamingService, UnaryService};
use tonic::service::Routes;
use tonic::transport::server::TcpIncoming;
use tonic::{Request, Response, Status};
use tonic_prost::ProstCodec;

const MIB: usize = 1024 * 1024;

/// The size of the large transfers: 256 MiB, and a few bytes more so that
/// the last piece and the last word are partial.
const LARGE: usize = 256 * MIB + 5;

/// Only one large transfer at a time: each holds several copies of its
/// result (the producer's, the consumer's buffer and decoded message).
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Limits raised for 256 MiB in one message: 300 MiB.
fn raised(config: Config) -> Config {
    Config {
        max_message_bytes: 300 * MIB,
        ..config
    }
}

/// Streaming off: `ctx.fetch` calls the unary rpc only.
fn unary_only() -> Config {
    Config {
        upstream_streaming: false,
        ..Config::default()
    }
}

/// Asserts that `digest` is that of `size` bytes from `seed`.
fn assert_digest(digest: &Result<DigestResponse, String>, seed: u64, size: usize) {
    let digest = digest.as_ref().expect("the consumer completes");
    assert_eq!(digest.length, size as u64, "length");
    assert_eq!(digest.checksum, expected_checksum(seed, size), "checksum");
}

#[test]
fn the_expected_checksum_is_the_checksum_of_the_pattern() {
    for len in [0, 1, 7, 8, 9, 1000, 4099] {
        assert_eq!(
            expected_checksum(42, len),
            checksum(&pattern(42, len)),
            "{len} bytes"
        );
    }
    assert_ne!(checksum(&pattern(1, 64)), checksum(&pattern(2, 64)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_256_mib_result_streams_from_a_to_b_within_default_limits() {
    let _one = ONE_AT_A_TIME.lock().await;
    let producer = TestService::start::<Blob>().await;
    let consumer = TestService::start::<Blob>().await;
    let input = make(&producer, 7, LARGE).await;
    // Both keep the default 64 MiB message limit: only the streaming rpc
    // can carry this.
    assert_digest(&digest(&consumer, &input).await, 7, LARGE);

    // The same result in one unary message: refused by the producer,
    // before it copies anything, with the setting to raise.
    let unary = TestService::start_with::<Blob>(unary_only(), Blob::methods()).await;
    let error = digest(&unary, &input).await.expect_err("over 64 MiB");
    let expected = format!(
        "fetching blob.v1.Blob/Make from {} failed: RESOURCE_EXHAUSTED: the result is {} bytes, \
         more than this service's GRPC_MAX_MESSAGE_BYTES (67108864)",
        input.uri,
        1 + prost::encoding::encoded_len_varint(LARGE as u64) + LARGE
    );
    assert!(error.starts_with(&expected), "{error}");
    unary.stop().await;
    consumer.stop().await;
    producer.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_streaming_off_256_mib_go_unary_once_both_sides_raise_their_limit() {
    let _one = ONE_AT_A_TIME.lock().await;
    let producer =
        TestService::start_with::<Blob>(raised(Config::default()), Blob::methods()).await;
    let consumer = TestService::start_with::<Blob>(raised(unary_only()), Blob::methods()).await;
    let input = make(&producer, 11, LARGE).await;
    assert_digest(&digest(&consumer, &input).await, 11, LARGE);

    // Raised on the producer only: the consumer's limit says so.
    let default = TestService::start_with::<Blob>(unary_only(), Blob::methods()).await;
    let error = digest(&default, &input).await.expect_err("over 64 MiB");
    assert!(
        error.contains("OUT_OF_RANGE")
            && error.contains("decoded message length too large")
            && error.contains("this service's GRPC_MAX_MESSAGE_BYTES is 67108864"),
        "{error}"
    );
    default.stop().await;
    consumer.stop().await;
    producer.stop().await;
}

#[tokio::test]
async fn a_producer_without_the_streaming_rpc_is_fetched_unary_and_remembered() {
    let made = MakeResponse {
        data: pattern(3, 100_000),
    };
    let producer = Fake::start(Behaviour::UnaryOnly(made)).await;
    let consumer = TestService::start::<Blob>().await;
    // A Python producer's reference: no task id.
    let input = producer.reference();
    for _ in 0..2 {
        assert_digest(&digest(&consumer, &input).await, 3, 100_000);
    }
    assert_eq!(
        producer.calls(),
        [FETCH_PATH, "/blob.v1.Blob/Make", "/blob.v1.Blob/Make"],
        "streaming asked once, then the unary rpc only"
    );

    // A service without the rpc at all says nothing about streaming.
    let elsewhere = Fake::start(Behaviour::Nothing).await;
    for _ in 0..2 {
        let error = digest(&consumer, &elsewhere.reference())
            .await
            .expect_err("no Make");
        assert!(
            error.ends_with("UNIMPLEMENTED: Method not found!"),
            "{error}"
        );
    }
    let make = "/blob.v1.Blob/Make";
    assert_eq!(elsewhere.calls(), [FETCH_PATH, make, FETCH_PATH, make]);
    consumer.stop().await;
    producer.stop();
    elsewhere.stop();
}

#[tokio::test]
async fn a_slow_stream_that_keeps_moving_outlasts_the_timeout_and_a_stalled_one_fails() {
    let result = MakeResponse {
        data: pattern(5, 4000),
    }
    .encode_to_vec();
    let pieces: Vec<FetchResponse> = std::iter::once(FetchResponse {
        total_bytes: Some(result.len() as u64),
        data: Vec::new(),
    })
    .chain(result.chunks(1000).map(|chunk| FetchResponse {
        total_bytes: None,
        data: chunk.to_vec(),
    }))
    .collect();
    let config = Config {
        upstream_timeout: Duration::from_millis(800),
        ..Config::default()
    };
    let consumer = TestService::start_with::<Blob>(config, Blob::methods()).await;

    // A piece every 400 ms: 2 s in all, more than twice the timeout.
    let slow = Fake::start(Behaviour::Stream {
        pieces: pieces.clone(),
        every: Duration::from_millis(400),
        then_stall: false,
    })
    .await;
    let started = std::time::Instant::now();
    assert_digest(&digest(&consumer, &slow.reference()).await, 5, 4000);
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(1600), "took {took:?}");

    // Two pieces, then nothing.
    let stalled = Fake::start(Behaviour::Stream {
        pieces: pieces[..3].to_vec(),
        every: Duration::from_millis(100),
        then_stall: true,
    })
    .await;
    let error = digest(&consumer, &stalled.reference())
        .await
        .expect_err("stalled");
    assert!(
        error.contains("the answer stopped after")
            && error.contains("nothing arrived for 0.8s (UPSTREAM_TIMEOUT_SECS)"),
        "{error}"
    );
    consumer.stop().await;
    slow.stop();
    stalled.stop();
}

#[tokio::test]
async fn a_stream_too_large_or_short_of_its_total_fails_the_fetch() {
    let result = MakeResponse {
        data: pattern(5, 4000),
    }
    .encode_to_vec();
    let total = FetchResponse {
        total_bytes: Some(result.len() as u64),
        data: Vec::new(),
    };
    let half = FetchResponse {
        total_bytes: None,
        data: result[..2000].to_vec(),
    };
    let config = Config {
        upstream_max_result_bytes: 4003,
        ..Config::default()
    };
    let consumer = TestService::start_with::<Blob>(config, Blob::methods()).await;
    let short = Fake::start(Behaviour::Stream {
        pieces: vec![total.clone(), half],
        every: Duration::ZERO,
        then_stall: false,
    })
    .await;
    let error = digest(&consumer, &short.reference())
        .await
        .expect_err("short");
    assert!(
        error.ends_with("DATA_LOSS: the stream ended after 2000 of the 4003 bytes it announced"),
        "{error}"
    );
    let large = FetchResponse {
        total_bytes: Some(4004),
        data: Vec::new(),
    };
    let large = Fake::start(Behaviour::Stream {
        pieces: vec![large],
        every: Duration::ZERO,
        then_stall: true,
    })
    .await;
    let error = digest(&consumer, &large.reference())
        .await
        .expect_err("large");
    assert!(
        error.ends_with(
            "RESOURCE_EXHAUSTED: the result is 4004 bytes, \
             more than UPSTREAM_MAX_RESULT_BYTES (4003) of this service"
        ),
        "{error}"
    );
    consumer.stop().await;
    short.stop();
    large.stop();
}

/// How a [`Fake`] producer answers.
#[derive(Clone)]
enum Behaviour {
    /// Every call is `UNIMPLEMENTED`.
    Nothing,
    /// `blob.v1.Blob/Make` answers this message; everything else,
    /// the streaming rpc included, is `UNIMPLEMENTED` (a Python producer).
    UnaryOnly(MakeResponse),
    /// The streaming rpc answers these messages, one `every` period (the
    /// first at once), then ends or, `then_stall`, sends nothing more.
    Stream {
        pieces: Vec<FetchResponse>,
        every: Duration,
        then_stall: bool,
    },
}

/// A gRPC server on loopback that is not a svcgen service, and the paths
/// it was called on.
struct Fake {
    addr: SocketAddr,
    calls: Arc<Mutex<Vec<String>>>,
    shutdown: CancellationToken,
}

impl Fake {
    async fn start(behaviour: Behaviour) -> Fake {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("its address");
        let calls = Arc::new(Mutex::new(Vec::new()));
        let service = FakeService {
            behaviour,
            calls: calls.clone(),
        };
        let mut routes = Routes::default();
        let router = std::mem::take(routes.axum_router_mut());
        *routes.axum_router_mut() = router.route_service("/{*path}", service);
        let shutdown = CancellationToken::new();
        let stop = shutdown.clone();
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_routes(routes)
                .serve_with_incoming_shutdown(TcpIncoming::from(listener), async move {
                    stop.cancelled().await
                }),
        );
        Fake {
            addr,
            calls,
            shutdown,
        }
    }

    /// A reference to its `Make` result, as a Python producer writes it
    /// (no task id).
    fn reference(&self) -> DataReference {
        DataReference {
            protocol: "grpc".to_string(),
            uri: self.addr.to_string(),
            format: MAKE.to_string(),
            schema_uri: None,
            size_bytes: None,
            checksum: None,
            metadata: None,
        }
    }

    fn calls(&self) -> Vec<String> {
        self.calls.lock().expect("the calls").clone()
    }

    fn stop(self) {
        self.shutdown.cancel();
    }
}

#[derive(Clone)]
struct FakeService {
    behaviour: Behaviour,
    calls: Arc<Mutex<Vec<String>>>,
}

impl<B> Service<http::Request<B>> for FakeService
where
    B: HttpBody + Send + 'static,
    B::Error: Into<StdError> + Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let path = request.uri().path().to_string();
        self.calls.lock().expect("the calls").push(path.clone());
        match (&self.behaviour, path.as_str()) {
            (Behaviour::UnaryOnly(made), "/blob.v1.Blob/Make") => {
                let mut grpc = Grpc::new(ProstCodec::<MakeResponse, ()>::default())
                    .max_encoding_message_size(usize::MAX);
                let answer = Answer(made.clone());
                Box::pin(async move { Ok(grpc.unary(answer, request).await) })
            }
            (Behaviour::Stream { .. }, FETCH_PATH) => {
                let mut grpc = Grpc::new(ProstCodec::<FetchResponse, FetchRequest>::default());
                let answer = Pieces(self.behaviour.clone());
                Box::pin(async move { Ok(grpc.server_streaming(answer, request).await) })
            }
            _ => {
                let status = Status::unimplemented("Method not found!");
                Box::pin(ready(Ok(status.into_http())))
            }
        }
    }
}

struct Answer(MakeResponse);

impl UnaryService<()> for Answer {
    type Response = MakeResponse;
    type Future = Ready<Result<Response<MakeResponse>, Status>>;

    fn call(&mut self, _: Request<()>) -> Self::Future {
        ready(Ok(Response::new(self.0.clone())))
    }
}

struct Pieces(Behaviour);

impl ServerStreamingService<FetchRequest> for Pieces {
    type Response = FetchResponse;
    type ResponseStream = ReceiverStream<Result<FetchResponse, Status>>;
    type Future = Ready<Result<Response<Self::ResponseStream>, Status>>;

    fn call(&mut self, _: Request<FetchRequest>) -> Self::Future {
        let Behaviour::Stream {
            pieces,
            every,
            then_stall,
        } = self.0.clone()
        else {
            unreachable!("only streaming fakes stream");
        };
        let (sender, receiver) = mpsc::channel(1);
        tokio::spawn(async move {
            for (n, piece) in pieces.into_iter().enumerate() {
                if n > 0 {
                    tokio::time::sleep(every).await;
                }
                if sender.send(Ok(piece)).await.is_err() {
                    return;
                }
            }
            if then_stall {
                sender.closed().await;
            }
        });
        ready(Ok(Response::new(ReceiverStream::new(receiver))))
    }
}
