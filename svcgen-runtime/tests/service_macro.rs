//! `svcgen_runtime::service!`, as a generated project's `src/svcgen.rs`
//! uses it: the table becomes a working `Definition`.

mod common;

use common::{LastResult, Output, ProduceResponse};
use serde_json::json;
use svcgen_runtime::testing::TestService;
use svcgen_runtime::{BoxError, Config, Definition, HandlerError, TaskContext};

/// A project's `src/state.rs`, reduced to what the macro needs.
pub struct State {
    prefix: String,
}

impl State {
    pub async fn init(_config: &Config) -> Result<State, BoxError> {
        Ok(State {
            prefix: "made by".to_string(),
        })
    }
}

/// The handler: its response names the shared state and the method.
async fn make(ctx: TaskContext<State>) -> Result<ProduceResponse, HandlerError> {
    let steps = ctx.parameter::<u32>("steps")?.unwrap_or(1);
    Ok(ProduceResponse {
        value: format!("{} {}", ctx.state().prefix, ctx.method()),
        steps,
    })
}

svcgen_runtime::service! {
    /// The service under test.
    pub struct Made {
        state: State,
        output: common::Output,
        grpc_service: "made.v1.Made",
        file_descriptor_set: &[],
        default_http_port: 8081,
        default_grpc_port: 50052,
        default_grpc_host: "made",
        methods: [
            "Produce": Quick => make as Produce,
        ],
    }
}

#[tokio::test]
async fn the_table_becomes_a_definition_that_serves_its_methods() {
    assert_eq!(Made::GRPC_SERVICE, "made.v1.Made");
    assert_eq!(
        (
            Made::DEFAULT_HTTP_PORT,
            Made::DEFAULT_GRPC_PORT,
            Made::DEFAULT_GRPC_HOST
        ),
        (8081, 50052, "made")
    );
    let names: Vec<String> = Made::methods().names().map(str::to_string).collect();
    assert_eq!(names, ["Produce"]);

    let service = TestService::start::<Made>().await;
    let answer = service.execute("Produce", json!({"steps": 4})).await;
    assert_eq!(answer["status"], "complete", "a quick method: {answer}");
    let id = svcgen_runtime::testing::poll_id(&answer);
    let response: ProduceResponse = service.fetch("Produce", &id).await.expect("fetch");
    let expected = ProduceResponse {
        value: "made by Produce".to_string(),
        steps: 4,
    };
    assert_eq!(response, expected);
    let last: LastResult = service.fetch("GetLastResult", &id).await.expect("last");
    assert_eq!(
        (last.method.as_str(), last.result),
        ("Produce", Some(Output::Produce(expected)))
    );
    service.stop().await;
}

svcgen_runtime::service! {
    /// The same service with upstream protos, whose bytes are not a
    /// descriptor set.
    pub struct WithUpstreams {
        state: State,
        output: common::Output,
        grpc_service: "made.v1.Made",
        file_descriptor_set: &[],
        upstream_file_descriptor_set: &[0xff, 0xff],
        default_http_port: 8081,
        default_grpc_port: 50052,
        default_grpc_host: "made",
        methods: [
            "Produce": Quick => make as Produce,
        ],
    }
}

#[tokio::test]
async fn upstream_protos_are_optional_and_checked_at_start_up() {
    assert!(
        Made::UPSTREAM_FILE_DESCRIPTOR_SET.is_empty(),
        "none by default"
    );
    assert_eq!(WithUpstreams::UPSTREAM_FILE_DESCRIPTOR_SET, [0xff, 0xff]);
    assert_eq!(WithUpstreams::upstream_file_descriptor_set(), [0xff, 0xff]);
    let config = Config {
        host: [127, 0, 0, 1].into(),
        http_port: Some(0),
        grpc_port: Some(0),
        ..Config::default()
    };
    let Err(err) = svcgen_runtime::run::<WithUpstreams>(config).await else {
        panic!("a service with a malformed upstream descriptor set started");
    };
    let err = err.to_string();
    assert!(
        err.starts_with("UPSTREAM_FILE_DESCRIPTOR_SET is not an encoded FileDescriptorSet"),
        "{err}"
    );
}
