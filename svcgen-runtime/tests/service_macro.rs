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
