//! The gRPC data interface: every method's rpc and `GetLastResult`, served
//! from the stored results and selected by the `x-task-id` request header
//! (see [`crate::contract`]).
//!
//! The runtime serves the project's proto service itself, by path
//! (`/<package>.<Service>/<rpc>`), instead of through the server trait
//! tonic generates for the project: results are stored encoded, so an rpc
//! answers with the stored bytes of its response message and
//! `GetLastResult` puts the same bytes in its envelope, with no decoding
//! and no copy of the result per reader (see `frames`). Request messages
//! are ignored (the task is named by the header): they are read, not
//! decoded, and one larger than `GRPC_MAX_REQUEST_BYTES` is refused before
//! it is buffered.
//!
//! A unary answer is one gRPC message, at most `GRPC_MAX_MESSAGE_BYTES`;
//! a larger result is refused with `RESOURCE_EXHAUSTED`. Results of any
//! size are streamed in pieces by the runtime's own rpc (see `stream`),
//! which shares the lookup below.

use std::convert::Infallible;
use std::future::ready;
use std::sync::Arc;
use std::task::{Context, Poll};

use prost::bytes::Bytes;
use tonic::body::Body;
use tonic::codegen::{http, Body as HttpBody, BoxFuture, Service, StdError};
use tonic::Status;

use crate::frames::{read_request, respond, Answer};
use crate::tasks::{Finished, Lookup, TaskStore};
use crate::GET_LAST_RESULT;

/// The request header that names the task whose result is wanted.
pub const TASK_ID_HEADER: &str = "x-task-id";

/// Serves every rpc of the project's proto service.
#[derive(Clone)]
pub(crate) struct DataService {
    store: Arc<TaskStore>,
    /// The rpcs that serve a method's results (every rpc but `GetLastResult`).
    rpcs: Arc<[String]>,
    /// `GRPC_MAX_MESSAGE_BYTES`: the largest answer.
    max_message_bytes: usize,
    /// `GRPC_MAX_REQUEST_BYTES`: the largest request read.
    max_request_bytes: usize,
}

impl DataService {
    pub(crate) fn new(
        store: Arc<TaskStore>,
        rpcs: Arc<[String]>,
        max_message_bytes: usize,
        max_request_bytes: usize,
    ) -> Self {
        DataService {
            store,
            rpcs,
            max_message_bytes,
            max_request_bytes,
        }
    }

    /// The answer to a call of the rpc that serves `wanted`.
    async fn answer<B>(self, wanted: Wanted, request: http::Request<B>) -> Result<Answer, Status>
    where
        B: HttpBody,
        B::Error: Into<StdError>,
    {
        let (parts, body) = request.into_parts();
        read_request(body, self.max_request_bytes).await?;
        let reply = wanted.lookup(&self.store, requested_task_id(&parts.headers)?)?;
        // The 4-byte length prefix of a gRPC message bounds it too.
        let limit = self.max_message_bytes.min(u32::MAX as usize);
        if reply.len() > limit {
            return Err(Status::resource_exhausted(format!(
                "the result is {} bytes, more than this service's GRPC_MAX_MESSAGE_BYTES ({}) \
                 allows in one message: raise it here and the caller's receive limit, \
                 or fetch it in pieces with {}",
                reply.len(),
                limit,
                crate::stream::FETCH_RPC,
            )));
        }
        let mut answer = Answer::default();
        let (head, tail) = reply.into_head_and_tail();
        answer.push(&head, tail);
        Ok(answer)
    }
}

impl<B> Service<http::Request<B>> for DataService
where
    B: HttpBody + Send + 'static,
    B::Error: Into<StdError> + Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let rpc = request.uri().path().rsplit('/').next().unwrap_or_default();
        let Some(wanted) = Wanted::find(&self.rpcs, rpc) else {
            let status = Status::unimplemented(format!("this service has no rpc {rpc:?}"));
            return respond(ready(Err(status)));
        };
        respond(self.clone().answer(wanted, request))
    }
}

/// Which result an rpc call asks for.
pub(crate) enum Wanted {
    /// A method's rpc: that method's result.
    Rpc(String),
    /// `GetLastResult`: any method's result, in the `LastResult` envelope.
    LastResult,
}

impl Wanted {
    /// What the rpc named `rpc` (without its service) serves, when this
    /// service has it; `rpcs` are the rpcs of its methods.
    pub(crate) fn find(rpcs: &[String], rpc: &str) -> Option<Wanted> {
        if rpc == GET_LAST_RESULT {
            Some(Wanted::LastResult)
        } else {
            let known = rpcs.iter().find(|known| known.as_str() == rpc)?;
            Some(Wanted::Rpc(known.clone()))
        }
    }

    /// The answer for the task `task_id` (`None`: the latest result):
    /// `NOT_FOUND` or `FAILED_PRECONDITION` when there is none (see
    /// [`crate::contract`]).
    pub(crate) fn lookup(&self, store: &TaskStore, task_id: Option<&str>) -> Result<Reply, Status> {
        match self {
            Wanted::Rpc(rpc) => {
                let finished = store.result(task_id, rpc).map_err(lookup_status)?;
                response_message(&finished.result.field).map(Reply::Message)
            }
            Wanted::LastResult => {
                let finished = store.last_result(task_id).map_err(lookup_status)?;
                Ok(last_result(&finished))
            }
        }
    }
}

/// An encoded answer: slices of the stored result and a few bytes around.
pub(crate) enum Reply {
    /// A method's response message.
    Message(Bytes),
    /// A `LastResult`: its `task_id` and `method` fields, then the oneof field.
    LastResult { head: Vec<u8>, field: Bytes },
}

impl Reply {
    /// The length of the encoded answer.
    pub(crate) fn len(&self) -> usize {
        match self {
            Reply::Message(message) => message.len(),
            Reply::LastResult { head, field } => head.len() + field.len(),
        }
    }

    /// The answer as the few bytes before the stored slice, and the slice.
    pub(crate) fn into_head_and_tail(self) -> (Vec<u8>, Bytes) {
        match self {
            Reply::Message(message) => (Vec::new(), message),
            Reply::LastResult { head, field } => (head, field),
        }
    }
}

/// `LastResult { task_id = 1; method = 2; oneof result }`, encoded the way
/// prost encodes it: fields in tag order, the oneof field as stored.
fn last_result(finished: &Finished) -> Reply {
    let mut head = Vec::with_capacity(finished.task_id.len() + 32);
    put_string(1, &finished.task_id, &mut head);
    put_string(2, finished.rpc(), &mut head);
    Reply::LastResult {
        head,
        field: finished.result.field.clone(),
    }
}

/// A string field, encoded as `prost::encoding::string::encode` does,
/// without a `String` to hold it.
fn put_string(tag: u32, value: &str, buf: &mut Vec<u8>) {
    prost::encoding::encode_key(tag, prost::encoding::WireType::LengthDelimited, buf);
    prost::encoding::encode_varint(value.len() as u64, buf);
    buf.extend_from_slice(value.as_bytes());
}

/// The response message inside a stored oneof field: what follows the
/// field's key and length.
fn response_message(field: &Bytes) -> Result<Bytes, Status> {
    let mut rest: &[u8] = field;
    let key = prost::encoding::decode_varint(&mut rest);
    let len = prost::encoding::decode_varint(&mut rest);
    match (key, len) {
        (Ok(_), Ok(len)) if usize::try_from(len).is_ok_and(|len| len == rest.len()) => {
            Ok(field.slice(field.len() - rest.len()..))
        }
        _ => Err(Status::internal(
            "a stored result is not a length-delimited field",
        )),
    }
}

/// The `x-task-id` of a request, if it has one.
pub(crate) fn requested_task_id(headers: &http::HeaderMap) -> Result<Option<&str>, Status> {
    match headers.get(TASK_ID_HEADER) {
        None => Ok(None),
        Some(value) => value.to_str().map(Some).map_err(|_| {
            Status::invalid_argument(format!("{TASK_ID_HEADER} must be printable ASCII"))
        }),
    }
}

fn lookup_status(lookup: Lookup) -> Status {
    match lookup {
        Lookup::NotFound(reason) => Status::not_found(reason),
        Lookup::NotReady(reason) => Status::failed_precondition(reason),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_string_field_is_encoded_as_prost_encodes_it() {
        for value in ["", "task_1.abc", &"é".repeat(100)] {
            let (mut ours, mut prosts) = (Vec::new(), Vec::new());
            put_string(2, value, &mut ours);
            prost::encoding::string::encode(2, &value.to_string(), &mut prosts);
            assert_eq!(ours, prosts, "{value:?}");
        }
    }

    #[test]
    fn the_response_message_is_what_follows_the_key_and_length() {
        // Field 3, wire type 2 (0x1a), length 2, then the message bytes.
        let field = Bytes::from_static(&[0x1a, 0x02, 0x08, 0x05]);
        assert_eq!(&response_message(&field).unwrap()[..], &[0x08, 0x05]);
        let empty = Bytes::from_static(&[0x1a, 0x00]);
        assert!(response_message(&empty).unwrap().is_empty());
        let truncated = Bytes::from_static(&[0x1a, 0x05, 0x08]);
        assert_eq!(
            response_message(&truncated).unwrap_err().code(),
            tonic::Code::Internal
        );
    }
}
