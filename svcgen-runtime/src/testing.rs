//! A harness for end-to-end tests: starts a service on free loopback ports
//! and drives it the way the orchestrator and downstream services do.
//!
//! ```ignore
//! use svcgen_runtime::testing::TestService;
//!
//! #[tokio::test]
//! async fn train_model_completes() {
//!     let service = TestService::start::<my_service::svcgen::Service>().await;
//!     let poll_id = service.run_to_completion("TrainModel", json!({"steps": 2})).await;
//!     let response: TrainModelResponse = service.fetch("TrainModel", &poll_id).await.unwrap();
//!     assert_eq!(response.steps, 2);
//!     service.stop().await;
//! }
//! ```
//!
//! Every helper panics with a message naming what went wrong: it is meant
//! for tests, where a panic is a failure report. Every wait is bounded by
//! [`WAIT`]. When the service has a key (`SERVICE_API_KEY`), the helpers
//! send it as the orchestrator and consumers do, on both ports; only
//! [`TestService::http`] sends exactly the headers it is given.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::Request;
pub use hyper::{Method, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tonic::transport::Channel;

use crate::config::Config;
use crate::data::TASK_ID_HEADER;
use crate::definition::{Definition, Methods};
use crate::server::{run_with, RunningService};
use crate::wire::DataReference;

/// The longest any single wait of the harness lasts.
pub const WAIT: Duration = Duration::from_secs(20);

/// A service running on `127.0.0.1` with free ports, for one test.
pub struct TestService {
    service: RunningService,
    grpc_service: &'static str,
    method_names: Vec<String>,
    next_task: AtomicU64,
    /// `Bearer <key>`, when the service has a key.
    bearer: Option<String>,
}

impl TestService {
    /// Starts `D` with its own methods and the default configuration.
    pub async fn start<D: Definition>() -> TestService {
        TestService::start_with::<D>(Config::default(), D::methods()).await
    }

    /// Starts `D` with `config` (its host, ports and gRPC host replaced by
    /// loopback ones) and the methods of `methods`.
    pub async fn start_with<D: Definition>(config: Config, methods: Methods<D>) -> TestService {
        let method_names = methods.names().map(str::to_string).collect();
        let bearer = config
            .api_key
            .as_deref()
            .map(|key| format!("Bearer {}", key.trim()));
        let config = Config {
            host: [127, 0, 0, 1].into(),
            http_port: Some(0),
            grpc_port: Some(0),
            grpc_host: Some("127.0.0.1".to_string()),
            ..config
        };
        let service = run_with::<D>(config, methods)
            .await
            .unwrap_or_else(|err| panic!("the service did not start: {err}"));
        TestService {
            service,
            grpc_service: D::GRPC_SERVICE,
            method_names,
            next_task: AtomicU64::new(1),
            bearer,
        }
    }

    /// The names `/control/execute` accepts (besides `GetLastResult`), in
    /// registration order.
    pub fn methods(&self) -> &[String] {
        &self.method_names
    }

    /// Where the HTTP control interface listens.
    pub fn http_addr(&self) -> SocketAddr {
        self.service.http_addr()
    }

    /// Where the gRPC data interface listens.
    pub fn grpc_addr(&self) -> SocketAddr {
        self.service.grpc_addr()
    }

    /// Sends one HTTP/1.1 request and returns the status and the JSON body.
    pub async fn http(
        &self,
        method: Method,
        path: &str,
        body: Option<&str>,
        headers: &[(&str, &str)],
    ) -> (StatusCode, Value) {
        let stream = tokio::net::TcpStream::connect(self.http_addr())
            .await
            .expect("connect to the HTTP control port");
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .expect("HTTP handshake");
        let connection = tokio::spawn(connection);
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header("host", "127.0.0.1");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request
            .body(Full::new(Bytes::from(body.unwrap_or_default().to_string())))
            .expect("a valid HTTP request");
        let response = tokio::time::timeout(WAIT, sender.send_request(request))
            .await
            .unwrap_or_else(|_| panic!("{path} did not answer within {WAIT:?}"))
            .expect("an HTTP response");
        let status = response.status();
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("the response body")
            .to_bytes();
        connection.abort();
        let value = serde_json::from_slice(&bytes).unwrap_or_else(|_| {
            panic!(
                "{path} answered {status} with a non-JSON body: {:?}",
                String::from_utf8_lossy(&bytes)
            )
        });
        (status, value)
    }

    /// POSTs `body` as JSON to `path`, with the key when there is one.
    pub async fn post_json(&self, path: &str, body: &Value) -> (StatusCode, Value) {
        let mut headers = vec![("content-type", "application/json")];
        headers.extend(self.authorization());
        self.http(Method::POST, path, Some(&body.to_string()), &headers)
            .await
    }

    /// The `authorization` header the orchestrator sends, when the
    /// service has a key.
    fn authorization(&self) -> Option<(&'static str, &str)> {
        self.bearer
            .as_deref()
            .map(|bearer| ("authorization", bearer))
    }

    /// Starts `method` the way the orchestrator does (a fresh task id, no
    /// inputs) and returns the execute answer, which must be a 200.
    pub async fn execute(&self, method: &str, parameters: Value) -> Value {
        self.execute_with_inputs(method, &[], parameters).await
    }

    /// Starts `method` with `inputs`, such as the
    /// [`output_reference`](Self::output_reference)s of upstream tasks, the
    /// way the orchestrator chains services; returns the execute answer,
    /// which must be a 200.
    pub async fn execute_with_inputs(
        &self,
        method: &str,
        inputs: &[DataReference],
        parameters: Value,
    ) -> Value {
        let n = self.next_task.fetch_add(1, Ordering::Relaxed);
        let body = json!({
            "method": method,
            "workflow_id": "wf-test",
            "task_id": format!("task_{n}"),
            "inputs": inputs,
            "parameters": parameters,
        });
        let (status, answer) = self.post_json("/control/execute", &body).await;
        assert_eq!(status, StatusCode::OK, "execute {method} answered {answer}");
        answer
    }

    /// `GET /control/status/{poll_id}`.
    pub async fn status(&self, poll_id: &str) -> (StatusCode, Value) {
        let path = format!("/control/status/{poll_id}");
        let headers: Vec<_> = self.authorization().into_iter().collect();
        self.http(Method::GET, &path, None, &headers).await
    }

    /// `GET /control/output/{poll_id}`.
    pub async fn output(&self, poll_id: &str) -> (StatusCode, Value) {
        let path = format!("/control/output/{poll_id}");
        let headers: Vec<_> = self.authorization().into_iter().collect();
        self.http(Method::GET, &path, None, &headers).await
    }

    /// The output reference of a complete task (what the orchestrator
    /// hands the next service as an input); `/control/output/{poll_id}`
    /// must answer 200.
    pub async fn output_reference(&self, poll_id: &str) -> DataReference {
        let (status, body) = self.output(poll_id).await;
        assert_eq!(
            status,
            StatusCode::OK,
            "output of {poll_id} answered {body}"
        );
        serde_json::from_value(body["output"].clone())
            .unwrap_or_else(|err| panic!("output of {poll_id} is no reference ({err}): {body}"))
    }

    /// Polls until the task leaves `running` and returns its last status,
    /// checking on the way that progress is a whole number that never
    /// decreases, as the orchestrator does.
    pub async fn wait_until_done(&self, poll_id: &str) -> Value {
        let deadline = tokio::time::Instant::now() + WAIT;
        let mut last_progress = 0;
        loop {
            let (status, body) = self.status(poll_id).await;
            assert_eq!(
                status,
                StatusCode::OK,
                "status of {poll_id} answered {body}"
            );
            let progress = body["progress"]
                .as_u64()
                .unwrap_or_else(|| panic!("progress must be an integer: {body}"));
            assert!(
                progress <= 100 && progress >= last_progress,
                "progress of {poll_id} went {last_progress} -> {progress}"
            );
            last_progress = progress;
            if body["status"] != "running" {
                return body;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "task {poll_id} still running after {WAIT:?}: {body}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Executes `method`, waits until it completes (panicking with its
    /// error if it fails) and returns its poll id.
    pub async fn run_to_completion(&self, method: &str, parameters: Value) -> String {
        let answer = self.execute(method, parameters).await;
        let poll_id = poll_id(&answer);
        if answer["status"] == "failed" {
            panic!("{method} failed to start: {answer}");
        }
        let done = self.wait_until_done(&poll_id).await;
        assert_eq!(
            done["status"], "complete",
            "{method} task {poll_id}: {done}"
        );
        poll_id
    }

    /// A gRPC channel to the data interface.
    pub async fn channel(&self) -> Channel {
        let endpoint =
            Channel::from_shared(format!("http://{}", self.grpc_addr())).expect("a valid gRPC uri");
        tokio::time::timeout(WAIT, endpoint.connect())
            .await
            .unwrap_or_else(|_| panic!("gRPC connect took over {WAIT:?}"))
            .expect("gRPC connect")
    }

    /// Calls `rpc` of the service with an empty request, `x-task-id:
    /// poll_id`, and decodes the answer as `M` (the rpc's response type; for
    /// `GetLastResult`, the proto's `LastResult`).
    pub async fn fetch<M>(&self, rpc: &str, poll_id: &str) -> Result<M, tonic::Status>
    where
        M: prost::Message + Default + Send + 'static,
    {
        self.call(rpc, Some(poll_id)).await
    }

    /// Calls `rpc` with an empty request, with `x-task-id` when `poll_id`
    /// is given (without it the service answers with its latest result),
    /// and with the key when the service has one.
    pub async fn call<M>(&self, rpc: &str, poll_id: Option<&str>) -> Result<M, tonic::Status>
    where
        M: prost::Message + Default + Send + 'static,
    {
        let path = format!("/{}/{rpc}", self.grpc_service);
        let path = tonic::codegen::http::uri::PathAndQuery::try_from(path)
            .unwrap_or_else(|err| panic!("rpc {rpc:?} makes no valid path: {err}"));
        let mut grpc = tonic::client::Grpc::new(self.channel().await);
        grpc.ready()
            .await
            .map_err(|err| tonic::Status::unavailable(err.to_string()))?;
        let mut request = match poll_id {
            Some(poll_id) => with_task_id((), poll_id),
            None => tonic::Request::new(()),
        };
        if let Some(bearer) = &self.bearer {
            let value = bearer
                .parse()
                .unwrap_or_else(|_| panic!("SERVICE_API_KEY is not printable ASCII"));
            request.metadata_mut().insert("authorization", value);
        }
        let codec = tonic_prost::ProstCodec::<(), M>::default();
        let call = grpc.unary(request, path, codec);
        tokio::time::timeout(WAIT, call)
            .await
            .unwrap_or_else(|_| panic!("{rpc} did not answer within {WAIT:?}"))
            .map(tonic::Response::into_inner)
    }

    /// Stops the service and waits until it has.
    pub async fn stop(self) {
        tokio::time::timeout(WAIT, self.service.shutdown())
            .await
            .unwrap_or_else(|_| panic!("shutdown took over {WAIT:?}"))
            .expect("a clean shutdown");
    }
}

/// `message` with the request header `x-task-id: task_id`.
pub fn with_task_id<T>(message: T, task_id: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    let value = task_id
        .parse()
        .unwrap_or_else(|_| panic!("task id {task_id:?} is not printable ASCII"));
    request.metadata_mut().insert(TASK_ID_HEADER, value);
    request
}

/// The poll id (`task_id`) of an execute answer.
pub fn poll_id(answer: &Value) -> String {
    answer["task_id"]
        .as_str()
        .unwrap_or_else(|| panic!("no task_id in {answer}"))
        .to_string()
}
