//! A small service definition for the runtime's own tests: what a
//! generated project's `src/svcgen.rs` provides, written by hand, with
//! prost messages instead of a compiled proto; and [`Harness`], the fixture
//! started with test-only probe methods whose behaviour the test steers.

#![allow(dead_code)] // each test file uses part of it

pub mod blob;
pub mod client;

use std::ops::Deref;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use hyper::StatusCode;
use prost::Message;
use prost_types::field_descriptor_proto::{Label, Type};
use prost_types::{
    DescriptorProto, FieldDescriptorProto, FileDescriptorProto, FileDescriptorSet,
    MethodDescriptorProto, OneofDescriptorProto, ServiceDescriptorProto,
};
use serde_json::{json, Value};
use svcgen_runtime::testing::TestService;
use svcgen_runtime::{
    upstream, BoxError, Config, Definition, HandlerError, MethodKind, Methods, TaskContext,
};
use tokio::sync::Semaphore;
use tonic::transport::Channel;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
use tonic_reflection::pb::v1::ServerReflectionRequest;

/// `message ProduceResponse { string value = 1; uint32 steps = 2; }`
#[derive(Clone, PartialEq, prost::Message)]
pub struct ProduceResponse {
    #[prost(string, tag = "1")]
    pub value: String,
    #[prost(uint32, tag = "2")]
    pub steps: u32,
}

impl prost::Name for ProduceResponse {
    const NAME: &'static str = "ProduceResponse";
    const PACKAGE: &'static str = "fixture.v1";
}

/// `message LastResult { string task_id = 1; string method = 2; oneof result { ProduceResponse produce = 3; } }`
#[derive(Clone, PartialEq, prost::Message)]
pub struct LastResult {
    #[prost(string, tag = "1")]
    pub task_id: String,
    #[prost(string, tag = "2")]
    pub method: String,
    #[prost(oneof = "Output", tags = "3")]
    pub result: Option<Output>,
}

/// The `result` oneof of [`LastResult`].
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum Output {
    #[prost(message, tag = "3")]
    Produce(ProduceResponse),
}

/// State shared by the fixture's tasks.
#[derive(Debug, Default)]
pub struct State {
    pub greeting: String,
}

/// The fixture service: one long method `Produce`.
pub struct Fixture;

/// The rpc whose response the fixture's methods produce.
pub const RPC: &str = "Produce";

impl Definition for Fixture {
    type State = State;
    type Output = Output;
    const GRPC_SERVICE: &'static str = "fixture.v1.Fixture";
    const FILE_DESCRIPTOR_SET: &'static [u8] = &[];
    const DEFAULT_HTTP_PORT: u16 = 8080;
    const DEFAULT_GRPC_PORT: u16 = 50051;
    const DEFAULT_GRPC_HOST: &'static str = "fixture";

    fn file_descriptor_set() -> &'static [u8] {
        static SET: LazyLock<Vec<u8>> = LazyLock::new(|| fixture_proto().encode_to_vec());
        &SET
    }

    fn methods() -> Methods<Self> {
        let mut methods = Methods::new();
        methods.add(RPC, MethodKind::Long, |ctx| async move {
            produce(ctx).await.map(Output::Produce)
        });
        methods
    }

    fn rpc_of(output: &Output) -> &'static str {
        match output {
            Output::Produce(_) => RPC,
        }
    }

    fn encode(output: &Output, buf: &mut Vec<u8>) {
        output.encode(buf)
    }

    async fn init_state(_config: &Config) -> Result<State, BoxError> {
        Ok(State {
            greeting: "hello".to_string(),
        })
    }
}

/// The fixture's handler: `value` (a parameter, default the task id) after
/// `steps` steps.
async fn produce(ctx: TaskContext<State>) -> Result<ProduceResponse, HandlerError> {
    let steps: u32 = ctx.parameter("steps")?.unwrap_or(2);
    for step in 1..=steps {
        ctx.set_step(step, steps);
    }
    let value = ctx
        .parameter::<String>("value")?
        .unwrap_or_else(|| format!("{} {}", ctx.state().greeting, ctx.task_id()));
    Ok(ProduceResponse { value, steps })
}

/// The probes' names: not rpcs of the fixture, so they never clash.
pub const PROBE: &str = "SvcgenProbe";
/// A quick probe (answers within the execute request).
pub const QUICK_PROBE: &str = "SvcgenQuickProbe";
/// A probe whose results no rpc of this service serves.
pub const OTHER_PROBE: &str = "SvcgenOtherProbe";
/// A probe that fetches its input from upstream, as a downstream service does.
pub const CHAIN_PROBE: &str = "SvcgenChainProbe";

/// The fixture, running with the probe methods besides its own.
pub struct Harness {
    service: TestService,
    /// Each permit added releases one probe waiting with `"hold": true`.
    pub gate: Arc<Semaphore>,
}

impl Harness {
    /// Starts the fixture and its probes with the default configuration.
    pub async fn start() -> Harness {
        Harness::start_with(Config::default()).await
    }

    /// Starts the fixture and its probes with `config`.
    pub async fn start_with(config: Config) -> Harness {
        let gate = Arc::new(Semaphore::new(0));
        let mut methods = Fixture::methods();
        let long_gate = gate.clone();
        methods.add_served_by(PROBE, RPC, MethodKind::Long, move |ctx| {
            probe(ctx, long_gate.clone())
        });
        let quick_gate = gate.clone();
        methods.add_served_by(QUICK_PROBE, RPC, MethodKind::Quick, move |ctx| {
            probe(ctx, quick_gate.clone())
        });
        let other_gate = gate.clone();
        methods.add_served_by(OTHER_PROBE, "SvcgenNoRpc", MethodKind::Long, move |ctx| {
            probe(ctx, other_gate.clone())
        });
        methods.add_served_by(CHAIN_PROBE, RPC, MethodKind::Long, chain);
        let service = TestService::start_with::<Fixture>(config, methods).await;
        Harness { service, gate }
    }

    /// Executes `method` as task `task_id` of the workflow run
    /// `workflow_id`, without inputs; the answer must be a 200.
    pub async fn execute_as(
        &self,
        workflow_id: &str,
        task_id: &str,
        method: &str,
        parameters: Value,
    ) -> Value {
        let body = json!({
            "method": method,
            "workflow_id": workflow_id,
            "task_id": task_id,
            "inputs": [],
            "parameters": parameters,
        });
        let (status, answer) = self.post_json("/control/execute", &body).await;
        assert_eq!(
            status,
            StatusCode::OK,
            "execute {method} as {task_id} answered {answer}"
        );
        answer
    }

    /// Stops the service.
    pub async fn stop(self) {
        self.service.stop().await;
    }
}

impl Deref for Harness {
    type Target = TestService;

    fn deref(&self) -> &TestService {
        &self.service
    }
}

/// A probe handler steered by its parameters: `steps` progress steps of
/// `step_ms` each, then, when `hold` is true, a wait for one permit of
/// `gate`, then `fail` (an error message) or `panic`. Its result is its own
/// poll id as `value` and `steps`.
async fn probe(ctx: TaskContext<State>, gate: Arc<Semaphore>) -> Result<Output, HandlerError> {
    let steps: u32 = ctx.parameter("steps")?.unwrap_or(3);
    let step_ms: u64 = ctx.parameter("step_ms")?.unwrap_or(10);
    for step in 1..=steps {
        tokio::time::sleep(Duration::from_millis(step_ms)).await;
        ctx.set_step(step, steps);
    }
    if ctx.parameter::<bool>("hold")?.unwrap_or(false) {
        gate.acquire()
            .await
            .map_err(|err| HandlerError::new(err.to_string()))?
            .forget();
    }
    if let Some(message) = ctx.parameter::<String>("fail")? {
        return Err(HandlerError::new(message));
    }
    if ctx.parameter::<bool>("panic")?.unwrap_or(false) {
        panic!("probe asked to panic");
    }
    Ok(Output::Produce(ProduceResponse {
        value: ctx.task_id().to_string(),
        steps,
    }))
}

/// Fetches the `Produce` result its first input names from the service the
/// input points at, with the input's `x-task-id` (and the service's key,
/// when it has one), and returns it as is.
async fn chain(ctx: TaskContext<State>) -> Result<Output, HandlerError> {
    let input = ctx
        .inputs()
        .first()
        .ok_or_else(|| HandlerError::new("no input"))?;
    let channel = upstream::connect(input).await?;
    let mut grpc =
        tonic::client::Grpc::new(channel).max_decoding_message_size(ctx.max_message_bytes());
    grpc.ready().await?;
    let path = format!("/{}/{RPC}", Fixture::GRPC_SERVICE);
    let path = tonic::codegen::http::uri::PathAndQuery::try_from(path)
        .map_err(|err| HandlerError::new(err.to_string()))?;
    let request = ctx.upstream_request((), input)?;
    let codec = tonic_prost::ProstCodec::<(), ProduceResponse>::default();
    let response = grpc.unary(request, path, codec).await?.into_inner();
    Ok(Output::Produce(response))
}

/// `svcgen.runtime.v1.FetchRequest`, as the contract describes it.
#[derive(Clone, PartialEq, prost::Message)]
pub struct FetchRequest {
    #[prost(string, tag = "1")]
    pub rpc: String,
}

/// `svcgen.runtime.v1.FetchResponse`, as the contract describes it.
#[derive(Clone, PartialEq, prost::Message)]
pub struct FetchResponse {
    #[prost(uint64, optional, tag = "1")]
    pub total_bytes: Option<u64>,
    #[prost(bytes = "vec", tag = "2")]
    pub data: Vec<u8>,
}

/// The path of the runtime's streaming rpc.
pub const FETCH_PATH: &str = "/svcgen.runtime.v1.Results/Fetch";

/// What a call of the streaming rpc answered.
#[derive(Debug)]
pub struct Streamed {
    /// The messages, in order.
    pub messages: Vec<FetchResponse>,
}

impl Streamed {
    /// The data of every message, concatenated.
    pub fn data(&self) -> Vec<u8> {
        self.messages.iter().flat_map(|m| m.data.clone()).collect()
    }
}

/// Calls `svcgen.runtime.v1.Results/Fetch` of `service` for `rpc`, with
/// `x-task-id` when `poll_id` is given, and reads the whole answer.
pub async fn stream(
    service: &TestService,
    rpc: &str,
    poll_id: Option<&str>,
) -> Result<Streamed, tonic::Status> {
    stream_as(service, rpc, poll_id, None).await
}

/// [`stream`], with the metadata `authorization: <authorization>` when
/// it is given.
pub async fn stream_as(
    service: &TestService,
    rpc: &str,
    poll_id: Option<&str>,
    authorization: Option<&str>,
) -> Result<Streamed, tonic::Status> {
    let mut grpc = tonic::client::Grpc::new(service.channel().await);
    grpc.ready()
        .await
        .map_err(|err| tonic::Status::unavailable(err.to_string()))?;
    let message = FetchRequest {
        rpc: rpc.to_string(),
    };
    let mut request = match poll_id {
        Some(poll_id) => svcgen_runtime::testing::with_task_id(message, poll_id),
        None => tonic::Request::new(message),
    };
    if let Some(authorization) = authorization {
        let value = authorization.parse().expect("printable ASCII");
        request.metadata_mut().insert("authorization", value);
    }
    let path = tonic::codegen::http::uri::PathAndQuery::from_static(FETCH_PATH);
    let codec = tonic_prost::ProstCodec::<FetchRequest, FetchResponse>::default();
    let read = async {
        let mut answer = grpc
            .server_streaming(request, path, codec)
            .await?
            .into_inner();
        let mut messages = Vec::new();
        while let Some(message) = answer.message().await? {
            messages.push(message);
        }
        Ok(Streamed { messages })
    };
    tokio::time::timeout(svcgen_runtime::testing::WAIT, read)
        .await
        .unwrap_or_else(|_| {
            panic!(
                "streaming {rpc} took over {:?}",
                svcgen_runtime::testing::WAIT
            )
        })
}

/// The status gRPC health answers for `service` (`""`: the whole server).
pub async fn health(channel: Channel, service: &str) -> ServingStatus {
    let answer = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: service.to_string(),
        })
        .await
        .expect("health answers");
    ServingStatus::try_from(answer.into_inner().status).expect("a known status")
}

/// The services gRPC reflection lists, asked without a key.
pub async fn reflected_services(service: &TestService) -> Vec<String> {
    let mut reflection = ServerReflectionClient::new(service.channel().await);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let reply = reflection
        .server_reflection_info(tokio_stream::once(request))
        .await
        .expect("reflection answers")
        .into_inner()
        .message()
        .await
        .expect("a reflection reply")
        .expect("one reply");
    let Some(MessageResponse::ListServicesResponse(list)) = reply.message_response else {
        panic!("not a list of services: {reply:?}");
    };
    list.service
        .into_iter()
        .map(|service| service.name)
        .collect()
}

/// The fixture's proto, as `protoc` would describe it:
///
/// ```proto
/// package fixture.v1;
/// service Fixture {
///   rpc Produce(ProduceRequest) returns (ProduceResponse);
///   rpc GetLastResult(Empty) returns (LastResult);
/// }
/// message ProduceRequest {}
/// message ProduceResponse { string value = 1; uint32 steps = 2; }
/// message Empty {}
/// message LastResult {
///   string task_id = 1;
///   string method = 2;
///   oneof result { ProduceResponse produce = 3; }
/// }
/// ```
pub fn fixture_proto() -> FileDescriptorSet {
    let last_result = DescriptorProto {
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
                        "produce",
                        3,
                        Type::Message,
                        Some(".fixture.v1.ProduceResponse"),
                    )
                },
            ],
        )
    };
    proto_file(
        "fixture.v1",
        "Fixture",
        &[
            ("Produce", "ProduceRequest", "ProduceResponse"),
            ("GetLastResult", "Empty", "LastResult"),
        ],
        vec![
            message("ProduceRequest", vec![]),
            message(
                "ProduceResponse",
                vec![
                    field("value", 1, Type::String, None),
                    field("steps", 2, Type::Uint32, None),
                ],
            ),
            message("Empty", vec![]),
            last_result,
        ],
    )
}

/// A set of one proto3 file: `package` with one `service` whose rpcs are
/// `(name, request, response)`, messages of the package, and `messages`.
pub fn proto_file(
    package: &str,
    service: &str,
    rpcs: &[(&str, &str, &str)],
    messages: Vec<DescriptorProto>,
) -> FileDescriptorSet {
    let method = rpcs
        .iter()
        .map(|(name, input, output)| MethodDescriptorProto {
            name: Some(name.to_string()),
            input_type: Some(format!(".{package}.{input}")),
            output_type: Some(format!(".{package}.{output}")),
            ..MethodDescriptorProto::default()
        })
        .collect();
    let file = FileDescriptorProto {
        name: Some(format!("{}.proto", package.replace('.', "/"))),
        package: Some(package.to_string()),
        message_type: messages,
        service: vec![ServiceDescriptorProto {
            name: Some(service.to_string()),
            method,
            options: None,
        }],
        syntax: Some("proto3".to_string()),
        ..FileDescriptorProto::default()
    };
    FileDescriptorSet { file: vec![file] }
}

/// A message with `fields`.
pub fn message(name: &str, fields: Vec<FieldDescriptorProto>) -> DescriptorProto {
    DescriptorProto {
        name: Some(name.to_string()),
        field: fields,
        ..DescriptorProto::default()
    }
}

/// A singular field; `type_name` (`.package.Message`) for message fields.
pub fn field(name: &str, number: i32, kind: Type, type_name: Option<&str>) -> FieldDescriptorProto {
    FieldDescriptorProto {
        name: Some(name.to_string()),
        number: Some(number),
        label: Some(Label::Optional as i32),
        r#type: Some(kind as i32),
        type_name: type_name.map(str::to_string),
        json_name: None,
        ..FieldDescriptorProto::default()
    }
}
