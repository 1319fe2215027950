//! Chained services: a consumer's handler fetches its inputs with
//! `ctx.fetch`, from the fixture (the producer) and from another consumer,
//! resolving the rpc from the protos it knows.

mod common;

use std::sync::LazyLock;
use std::time::{Duration, Instant};

use common::{field, fixture_proto, message, proto_file, Fixture, ProduceResponse, RPC};
use hyper::StatusCode;
use prost::Message;
use prost_types::field_descriptor_proto::Type;
use prost_types::{FieldDescriptorProto, FileDescriptorSet, OneofDescriptorProto};
use serde_json::{json, Value};
use svcgen_runtime::testing::{poll_id, Method, TestService};
use svcgen_runtime::{
    BoxError, Config, DataReference, Definition, HandlerError, MethodKind, Methods, TaskContext,
};

/// `message ConsumeResponse { repeated string values = 1; }`: the values
/// of the results a consumer task fetched, in input order.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ConsumeResponse {
    #[prost(string, repeated, tag = "1")]
    pub values: Vec<String>,
}

impl prost::Name for ConsumeResponse {
    const NAME: &'static str = "ConsumeResponse";
    const PACKAGE: &'static str = "consumer.v1";
}

/// The `result` oneof of the consumer's `LastResult`.
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum ConsumerOutput {
    #[prost(message, tag = "3")]
    Consume(ConsumeResponse),
}

/// The consumer's proto: `consumer.v1.Consumer` with `Consume` and
/// `GetLastResult`.
fn consumer_proto() -> FileDescriptorSet {
    let last_result = prost_types::DescriptorProto {
        oneof_decl: vec![OneofDescriptorProto {
            name: Some("result".to_string()),
            options: None,
        }],
        ..message(
            "LastResult",
            vec![
                field("task_id", 1, Type::String, None),
                field("method", 2, Type::String, None),
                FieldDescriptorProto {
                    oneof_index: Some(0),
                    ..field(
                        "consume",
                        3,
                        Type::Message,
                        Some(".consumer.v1.ConsumeResponse"),
                    )
                },
            ],
        )
    };
    let values = FieldDescriptorProto {
        label: Some(prost_types::field_descriptor_proto::Label::Repeated as i32),
        ..field("values", 1, Type::String, None)
    };
    proto_file(
        "consumer.v1",
        "Consumer",
        &[
            ("Consume", "ConsumeRequest", "ConsumeResponse"),
            ("GetLastResult", "Empty", "LastResult"),
        ],
        vec![
            message("ConsumeRequest", vec![]),
            message("ConsumeResponse", vec![values]),
            message("Empty", vec![]),
            last_result,
        ],
    )
}

/// The rpc that serves every consumer result.
const CONSUME: &str = "Consume";
/// Fetches its first input as a `ConsumeResponse`, whatever it is.
const MISTYPED: &str = "Mistyped";
/// Fetches its first input as a `ProduceResponse` and its second as a
/// `ConsumeResponse`.
const MERGE: &str = "Merge";

/// A service whose upstream is the fixture: what svcgen generates for a
/// project after `svcgen add-upstream fixture.proto`.
struct Consumer;

impl Definition for Consumer {
    type State = ();
    type Output = ConsumerOutput;
    const GRPC_SERVICE: &'static str = "consumer.v1.Consumer";
    const FILE_DESCRIPTOR_SET: &'static [u8] = &[];
    const DEFAULT_HTTP_PORT: u16 = 8080;
    const DEFAULT_GRPC_PORT: u16 = 50051;
    const DEFAULT_GRPC_HOST: &'static str = "consumer";

    fn file_descriptor_set() -> &'static [u8] {
        static SET: LazyLock<Vec<u8>> = LazyLock::new(|| consumer_proto().encode_to_vec());
        &SET
    }

    fn upstream_file_descriptor_set() -> &'static [u8] {
        static SET: LazyLock<Vec<u8>> = LazyLock::new(|| fixture_proto().encode_to_vec());
        &SET
    }

    fn methods() -> Methods<Self> {
        let mut methods = Methods::new();
        methods.add(CONSUME, MethodKind::Long, |ctx| async move {
            consume(ctx).await.map(ConsumerOutput::Consume)
        });
        methods.add_served_by(MISTYPED, CONSUME, MethodKind::Long, |ctx| async move {
            let input = ctx
                .inputs()
                .first()
                .ok_or_else(|| HandlerError::new("no input"))?;
            let fetched: ConsumeResponse = ctx.fetch(input).await?;
            Ok(ConsumerOutput::Consume(fetched))
        });
        methods.add_served_by(MERGE, CONSUME, MethodKind::Long, |ctx| async move {
            merge(ctx).await.map(ConsumerOutput::Consume)
        });
        methods
    }

    fn rpc_of(_output: &ConsumerOutput) -> &'static str {
        CONSUME
    }

    fn encode(output: &ConsumerOutput, buf: &mut Vec<u8>) {
        output.encode(buf)
    }

    async fn init_state(_config: &Config) -> Result<(), BoxError> {
        Ok(())
    }
}

/// Every input fetched as the fixture's `ProduceResponse`: their values.
async fn consume(ctx: TaskContext<()>) -> Result<ConsumeResponse, HandlerError> {
    let mut values = Vec::new();
    for input in ctx.inputs() {
        let produced: ProduceResponse = ctx.fetch(input).await?;
        values.push(produced.value);
    }
    Ok(ConsumeResponse { values })
}

/// Fan-in of two types: a producer's result and another consumer's.
async fn merge(ctx: TaskContext<()>) -> Result<ConsumeResponse, HandlerError> {
    let [produced, consumed] = ctx.inputs() else {
        return Err(HandlerError::new("Merge takes two inputs"));
    };
    let produced: ProduceResponse = ctx.fetch(produced).await?;
    let consumed: ConsumeResponse = ctx.fetch(consumed).await?;
    let mut values = vec![produced.value];
    values.extend(consumed.values);
    Ok(ConsumeResponse { values })
}

/// The producer, with two completed `Produce` tasks (values `first` and
/// `second`, in that order), and their output references.
async fn producer() -> (TestService, DataReference, DataReference) {
    let producer = TestService::start::<Fixture>().await;
    let mut references = Vec::new();
    for value in ["first", "second"] {
        let id = producer
            .run_to_completion(RPC, json!({"value": value}))
            .await;
        let reference = producer.output_reference(&id).await;
        assert_eq!(reference.task_id(), Some(id.as_str()), "{reference:?}");
        references.push(reference);
    }
    let second = references.pop().expect("two references");
    let first = references.pop().expect("two references");
    (producer, first, second)
}

/// Runs `method` of `consumer` with `inputs` and returns its final status.
async fn run(consumer: &TestService, method: &str, inputs: &[DataReference]) -> (String, Value) {
    let answer = consumer
        .execute_with_inputs(method, inputs, json!({}))
        .await;
    let id = poll_id(&answer);
    let done = consumer.wait_until_done(&id).await;
    (id, done)
}

/// Runs `method` of `consumer` with `inputs`, which must complete, and
/// returns the values it fetched (read back over gRPC).
async fn values(consumer: &TestService, method: &str, inputs: &[DataReference]) -> Vec<String> {
    let (id, done) = run(consumer, method, inputs).await;
    assert_eq!(
        done["status"], "complete",
        "{method} with {inputs:?}: {done}"
    );
    let result: ConsumeResponse = consumer.fetch(CONSUME, &id).await.expect("the result");
    result.values
}

/// Runs `method` of `consumer` with `inputs`, which must fail, and returns
/// the error.
async fn failure(consumer: &TestService, method: &str, inputs: &[DataReference]) -> String {
    let (_, done) = run(consumer, method, inputs).await;
    assert_eq!(done["status"], "failed", "{method} with {inputs:?}: {done}");
    done["error"].as_str().expect("an error").to_string()
}

#[tokio::test]
async fn each_consumer_task_gets_exactly_the_producer_task_it_was_chained_to() {
    let (producer, first, second) = producer().await;
    let consumer = TestService::start::<Consumer>().await;
    assert_eq!(values(&consumer, CONSUME, &[first]).await, ["first"]);
    assert_eq!(values(&consumer, CONSUME, &[second]).await, ["second"]);
    consumer.stop().await;
    producer.stop().await;
}

#[tokio::test]
async fn without_a_task_id_the_consumer_gets_the_latest_result() {
    let (producer, first, _) = producer().await;
    let consumer = TestService::start::<Consumer>().await;
    let python_style = DataReference {
        metadata: None,
        ..first
    };
    assert_eq!(
        values(&consumer, CONSUME, &[python_style]).await,
        ["second"]
    );
    consumer.stop().await;
    producer.stop().await;
}

#[tokio::test]
async fn an_rpc_no_proto_declares_is_read_from_the_get_last_result_envelope() {
    let (producer, first, _) = producer().await;
    let consumer = TestService::start::<Consumer>().await;
    let renamed = DataReference {
        format: "produce_output".to_string(),
        ..first.clone()
    };
    assert_eq!(
        values(&consumer, CONSUME, &[renamed]).await,
        ["first"],
        "the envelope of exactly the task chained to"
    );
    let latest = DataReference {
        format: "produce_output".to_string(),
        metadata: None,
        ..first
    };
    assert_eq!(values(&consumer, CONSUME, &[latest]).await, ["second"]);

    let answer = producer.execute("GetLastResult", json!({})).await;
    assert_eq!(answer["status"], "complete", "{answer}");
    let last = producer.output_reference(&poll_id(&answer)).await;
    assert_eq!(last.format, "GetLastResult");
    assert_eq!(values(&consumer, CONSUME, &[last]).await, ["second"]);
    consumer.stop().await;
    producer.stop().await;
}

#[tokio::test]
async fn fetching_a_type_the_rpc_does_not_return_fails_naming_both_types() {
    let (producer, first, _) = producer().await;
    let consumer = TestService::start::<Consumer>().await;
    let error = failure(&consumer, MISTYPED, &[first]).await;
    assert!(
        error.contains("fixture.v1.Fixture/Produce returns fixture.v1.ProduceResponse")
            && error.contains("not consumer.v1.ConsumeResponse"),
        "{error}"
    );
    consumer.stop().await;
    producer.stop().await;
}

#[tokio::test]
async fn a_task_the_upstream_does_not_have_fails_at_once_with_its_code() {
    let (producer, first, _) = producer().await;
    let consumer = TestService::start::<Consumer>().await;
    let mut gone = first.clone();
    gone.metadata
        .as_mut()
        .expect("metadata")
        .insert("task_id".to_string(), json!("task_up.gone.1"));
    let error = failure(&consumer, CONSUME, &[gone]).await;
    let expected = format!(
        "fetching fixture.v1.Fixture/Produce from {} failed: NOT_FOUND:",
        first.uri
    );
    assert!(error.starts_with(&expected), "{error}");
    assert!(error.contains("task_up.gone.1"), "{error}");
    let s3 = DataReference {
        protocol: "s3".to_string(),
        ..first
    };
    let error = failure(&consumer, CONSUME, &[s3]).await;
    assert!(error.contains("not grpc"), "{error}");
    consumer.stop().await;
    producer.stop().await;
}

#[tokio::test]
async fn an_unreachable_upstream_fails_the_task_within_its_budget_and_health_still_answers() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
        listener.local_addr().expect("its address").port()
    };
    let config = Config {
        upstream_timeout: Duration::from_secs(2),
        ..Config::default()
    };
    let consumer = TestService::start_with::<Consumer>(config, Consumer::methods()).await;
    let uri = format!("127.0.0.1:{port}");
    let down = DataReference {
        protocol: "grpc".to_string(),
        uri: uri.clone(),
        format: RPC.to_string(),
        schema_uri: None,
        size_bytes: None,
        checksum: None,
        metadata: Some(
            json!({"task_id": "task_up.k3f9.1"})
                .as_object()
                .cloned()
                .unwrap_or_default(),
        ),
    };
    let started = Instant::now();
    let answer = consumer
        .execute_with_inputs(CONSUME, &[down], json!({}))
        .await;
    let id = poll_id(&answer);
    let (status, health) = consumer.http(Method::GET, "/health", None, &[]).await;
    assert_eq!(
        (status, health),
        (StatusCode::OK, json!({"status": "ok"})),
        "while fetching"
    );
    let done = consumer.wait_until_done(&id).await;
    let took = started.elapsed();
    assert_eq!(done["status"], "failed", "{done}");
    assert!(
        took < Duration::from_secs(10),
        "failed after {took:?} with a 2 s budget"
    );
    let error = done["error"].as_str().unwrap_or_default();
    let expected = format!("fetching fixture.v1.Fixture/Produce from {uri} failed after ");
    assert!(
        error.starts_with(&expected)
            && error.contains("attempts in ")
            && error.contains("UNAVAILABLE"),
        "{error}"
    );
    let (status, _) = consumer.http(Method::GET, "/health", None, &[]).await;
    assert_eq!(status, StatusCode::OK, "after the failed fetch");
    consumer.stop().await;
}

#[tokio::test]
async fn a_task_with_several_inputs_fetches_each_as_its_own_type() {
    let (producer, first, second) = producer().await;
    let consumer = TestService::start::<Consumer>().await;
    assert_eq!(
        values(&consumer, CONSUME, &[first.clone(), second.clone()]).await,
        ["first", "second"],
        "two results of one type, each from its own task"
    );

    // A second consumer reads the producer and the first consumer: the
    // consumer's own proto is indexed too.
    let (id, done) = run(&consumer, CONSUME, &[first]).await;
    assert_eq!(done["status"], "complete", "{done}");
    let consumed = consumer.output_reference(&id).await;
    let merger = TestService::start::<Consumer>().await;
    assert_eq!(
        values(&merger, MERGE, &[second, consumed]).await,
        ["second", "first"]
    );
    merger.stop().await;
    consumer.stop().await;
    producer.stop().await;
}

/// A service of `D` with the key `key` (and `config`'s other settings).
async fn keyed<D: Definition>(key: Option<&str>, config: Config) -> TestService {
    let config = Config {
        api_key: key.map(str::to_string),
        ..config
    };
    TestService::start_with::<D>(config, D::methods()).await
}

#[tokio::test]
async fn services_sharing_a_key_chain_with_data_port_auth_on() {
    let key = Some("workflow-key");
    let producer = keyed::<Fixture>(key, Config::default()).await;
    let id = producer
        .run_to_completion(RPC, json!({"value": "first"}))
        .await;
    let first = producer.output_reference(&id).await;
    // Streamed, unary (`UPSTREAM_STREAMING=off`) and from the
    // `GetLastResult` envelope (always unary): each carries the key.
    let streaming = keyed::<Consumer>(key, Config::default()).await;
    let unary_only = keyed::<Consumer>(
        key,
        Config {
            upstream_streaming: false,
            ..Config::default()
        },
    )
    .await;
    let envelope = DataReference {
        format: "produce_output".to_string(),
        ..first.clone()
    };
    for (consumer, input) in [
        (&streaming, &first),
        (&unary_only, &first),
        (&streaming, &envelope),
    ] {
        let fetched = values(consumer, CONSUME, std::slice::from_ref(input)).await;
        assert_eq!(fetched, ["first"], "{}", input.format);
    }
    // And one step further: a consumer of the consumer.
    let (id, done) = run(&streaming, CONSUME, &[first]).await;
    assert_eq!(done["status"], "complete", "{done}");
    let consumed = streaming.output_reference(&id).await;
    let second = producer
        .run_to_completion(RPC, json!({"value": "second"}))
        .await;
    let second = producer.output_reference(&second).await;
    assert_eq!(
        values(&unary_only, MERGE, &[second, consumed]).await,
        ["second", "first"]
    );
    unary_only.stop().await;
    streaming.stop().await;
    producer.stop().await;
}

#[tokio::test]
async fn a_consumer_without_the_producers_key_fails_at_once_saying_so() {
    let producer = keyed::<Fixture>(Some("workflow-key"), Config::default()).await;
    let id = producer
        .run_to_completion(RPC, json!({"value": "first"}))
        .await;
    let first = producer.output_reference(&id).await;
    let expected = format!(
        "fetching fixture.v1.Fixture/Produce from {} failed: UNAUTHENTICATED: \
         missing or invalid bearer token: send the metadata authorization: Bearer \
         <SERVICE_API_KEY> ",
        first.uri
    );
    for (key, streaming, hint) in [
        (
            Some("another-key"),
            true,
            "(the upstream does not accept this service's SERVICE_API_KEY: \
             the services of a workflow share one key)",
        ),
        (
            Some("another-key"),
            false,
            "(the upstream does not accept this service's SERVICE_API_KEY: \
             the services of a workflow share one key)",
        ),
        (
            None,
            true,
            "(this service has no SERVICE_API_KEY to send: give it the upstream's key)",
        ),
    ] {
        let config = Config {
            upstream_streaming: streaming,
            upstream_timeout: Duration::from_secs(30),
            ..Config::default()
        };
        let consumer = keyed::<Consumer>(key, config).await;
        let started = Instant::now();
        let error = failure(&consumer, CONSUME, std::slice::from_ref(&first)).await;
        assert!(
            error.starts_with(&expected) && error.ends_with(hint) && !error.contains('\n'),
            "{key:?}, streaming {streaming}: {error}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "not retried as if unavailable: {:?}",
            started.elapsed()
        );
        consumer.stop().await;
    }
    producer.stop().await;
}
