//! Reaching upstream services: a task's inputs point at the gRPC services,
//! and the tasks, whose results it consumes.
//!
//! ```ignore
//! let input = &ctx.inputs()[0];
//! let channel = svcgen_runtime::upstream::connect(input).await?;
//! let mut client = ProducerClient::new(channel)
//!     .max_decoding_message_size(ctx.max_message_bytes());
//! let request = svcgen_runtime::upstream::request(ProduceRequest::default(), input)?;
//! let produced = client.produce(request).await?.into_inner();
//! ```

use std::time::Duration;

use tonic::metadata::MetadataValue;
use tonic::transport::{Channel, Endpoint};

use crate::context::HandlerError;
use crate::data::TASK_ID_HEADER;
use crate::wire::DataReference;

/// How long connecting to an upstream service may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Connects to the gRPC service `input` points at (`protocol` `grpc`,
/// `uri` `host:port`).
pub async fn connect(input: &DataReference) -> Result<Channel, HandlerError> {
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
