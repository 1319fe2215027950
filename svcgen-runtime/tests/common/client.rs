//! Clients for tests that need more than the harness's helpers: an HTTP
//! client that keeps its connection (thousands of requests without a new
//! port each) and shows the answer's headers, and a gRPC fetch on a shared
//! channel.

use std::net::SocketAddr;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper::{HeaderMap, Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use svcgen_runtime::testing::{with_task_id, WAIT};
use tokio::task::JoinHandle;
use tonic::transport::Channel;

use super::Fixture;
use svcgen_runtime::Definition;

/// An HTTP answer.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Reply {
    /// The `detail` of an error answer.
    pub fn detail(&self) -> &str {
        self.body["detail"]
            .as_str()
            .unwrap_or_else(|| panic!("no detail in {}: {}", self.status, self.body))
    }

    /// The `Retry-After` header, in seconds.
    pub fn retry_after(&self) -> Option<u64> {
        let value = self.headers.get("retry-after")?;
        value.to_str().ok()?.parse().ok()
    }
}

/// One HTTP/1.1 connection to the control port, reused request after
/// request.
pub struct Client {
    sender: SendRequest<Full<Bytes>>,
    connection: JoinHandle<()>,
}

impl Client {
    pub async fn connect(addr: SocketAddr) -> Client {
        let stream = tokio::net::TcpStream::connect(addr)
            .await
            .expect("connect to the HTTP control port");
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .expect("HTTP handshake");
        let connection = tokio::spawn(async move {
            let _ = connection.await;
        });
        Client { sender, connection }
    }

    /// Sends one request, with a JSON body when `body` is given.
    pub async fn send(&mut self, method: Method, path: &str, body: Option<&Value>) -> Reply {
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header("host", "127.0.0.1");
        if body.is_some() {
            request = request.header("content-type", "application/json");
        }
        let body = body.map(Value::to_string).unwrap_or_default();
        let request = request
            .body(Full::new(Bytes::from(body)))
            .expect("a valid request");
        let exchange = async {
            self.sender.ready().await?;
            let response = self.sender.send_request(request).await?;
            let (parts, body) = response.into_parts();
            let bytes = body.collect().await?.to_bytes();
            Ok::<_, hyper::Error>((parts, bytes))
        };
        let (parts, bytes) = tokio::time::timeout(WAIT, exchange)
            .await
            .unwrap_or_else(|_| panic!("{path} did not answer within {WAIT:?}"))
            .unwrap_or_else(|err| panic!("{path}: {err}"));
        let body = serde_json::from_slice(&bytes).unwrap_or_else(|_| {
            panic!(
                "{path} answered {} with a non-JSON body: {:?}",
                parts.status,
                String::from_utf8_lossy(&bytes)
            )
        });
        Reply {
            status: parts.status,
            headers: parts.headers,
            body,
        }
    }

    /// `POST /control/execute` with `body`.
    pub async fn execute(&mut self, body: &Value) -> Reply {
        self.send(Method::POST, "/control/execute", Some(body))
            .await
    }

    pub async fn status(&mut self, poll_id: &str) -> Reply {
        let path = format!("/control/status/{poll_id}");
        self.send(Method::GET, &path, None).await
    }

    pub async fn output(&mut self, poll_id: &str) -> Reply {
        let path = format!("/control/output/{poll_id}");
        self.send(Method::GET, &path, None).await
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        self.connection.abort();
    }
}

/// Calls the fixture's rpc `rpc` on `channel` with `x-task-id: poll_id`.
pub async fn fetch<M>(channel: &Channel, rpc: &str, poll_id: &str) -> Result<M, tonic::Status>
where
    M: prost::Message + Default + Send + 'static,
{
    fetch_as(channel, rpc, poll_id, None).await
}

/// [`fetch`], with the metadata `authorization: <authorization>` when it
/// is given.
pub async fn fetch_as<M>(
    channel: &Channel,
    rpc: &str,
    poll_id: &str,
    authorization: Option<&str>,
) -> Result<M, tonic::Status>
where
    M: prost::Message + Default + Send + 'static,
{
    let mut grpc = tonic::client::Grpc::new(channel.clone());
    grpc.ready()
        .await
        .map_err(|err| tonic::Status::unavailable(err.to_string()))?;
    let mut request = with_task_id((), poll_id);
    if let Some(authorization) = authorization {
        let value = authorization.parse().expect("printable ASCII");
        request.metadata_mut().insert("authorization", value);
    }
    let path = format!("/{}/{rpc}", Fixture::GRPC_SERVICE);
    let path = tonic::codegen::http::uri::PathAndQuery::try_from(path).expect("a path");
    let codec = tonic_prost::ProstCodec::<(), M>::default();
    let call = grpc.unary(request, path, codec);
    tokio::time::timeout(WAIT, call)
        .await
        .unwrap_or_else(|_| panic!("{rpc} did not answer within {WAIT:?}"))
        .map(tonic::Response::into_inner)
}
