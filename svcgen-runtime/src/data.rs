//! The gRPC data interface: every method's rpc and `GetLastResult`, served
//! from the stored results and selected by the `x-task-id` request header
//! (see [`crate::contract`]).
//!
//! The runtime serves the project's proto service itself, by path
//! (`/<package>.<Service>/<rpc>`), instead of through the server trait
//! tonic generates for the project: results are stored encoded, so an rpc
//! answers with the stored bytes of its response message and
//! `GetLastResult` puts the same bytes in its envelope, with no decoding
//! and no per-reader copy of the result. Request messages are ignored (the
//! task is named by the header), so their bytes are skipped, not decoded.

use std::convert::Infallible;
use std::future::{ready, Ready};
use std::sync::Arc;
use std::task::{Context, Poll};

use prost::bytes::{Buf, BufMut, Bytes};
use tonic::body::Body;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::codegen::{http, Body as HttpBody, BoxFuture, Service, StdError};
use tonic::server::{Grpc, UnaryService};
use tonic::{Request, Response, Status};

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
    max_message_bytes: usize,
}

impl DataService {
    pub(crate) fn new(store: Arc<TaskStore>, rpcs: Vec<String>, max_message_bytes: usize) -> Self {
        DataService {
            store,
            rpcs: rpcs.into(),
            max_message_bytes,
        }
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
        let wanted = if rpc == GET_LAST_RESULT {
            Wanted::LastResult
        } else if let Some(known) = self.rpcs.iter().find(|known| known.as_str() == rpc) {
            Wanted::Rpc(known.clone())
        } else {
            let status = Status::unimplemented(format!("this service has no rpc {rpc:?}"));
            return Box::pin(ready(Ok(status.into_http())));
        };
        let fetch = Fetch {
            store: self.store.clone(),
            wanted,
        };
        let mut grpc = Grpc::new(ResultCodec)
            .max_decoding_message_size(self.max_message_bytes)
            .max_encoding_message_size(self.max_message_bytes);
        Box::pin(async move { Ok(grpc.unary(fetch, request).await) })
    }
}

/// Which result an rpc call asks for.
enum Wanted {
    /// A method's rpc: that method's result.
    Rpc(String),
    /// `GetLastResult`: any method's result, in the `LastResult` envelope.
    LastResult,
}

/// One rpc call: looks the result up and answers with its bytes.
struct Fetch {
    store: Arc<TaskStore>,
    wanted: Wanted,
}

impl UnaryService<()> for Fetch {
    type Response = Reply;
    type Future = Ready<Result<Response<Reply>, Status>>;

    fn call(&mut self, request: Request<()>) -> Self::Future {
        ready(self.answer(&request).map(Response::new))
    }
}

impl Fetch {
    fn answer(&self, request: &Request<()>) -> Result<Reply, Status> {
        let task_id = requested_task_id(request)?;
        match &self.wanted {
            Wanted::Rpc(rpc) => {
                let finished = self.store.result(task_id, rpc).map_err(lookup_status)?;
                response_message(&finished.result.field).map(Reply::Message)
            }
            Wanted::LastResult => {
                let finished = self.store.last_result(task_id).map_err(lookup_status)?;
                Ok(last_result(&finished))
            }
        }
    }
}

/// An encoded answer, written into the response frame as it is.
enum Reply {
    /// A method's response message.
    Message(Bytes),
    /// A `LastResult`: its `task_id` and `method` fields, then the oneof field.
    LastResult { head: Vec<u8>, field: Bytes },
}

/// `LastResult { task_id = 1; method = 2; oneof result }`, encoded the way
/// prost encodes it: fields in tag order, the oneof field as stored.
fn last_result(finished: &Finished) -> Reply {
    let mut head = Vec::with_capacity(finished.task_id.len() + 32);
    prost::encoding::string::encode(1, &finished.task_id.to_string(), &mut head);
    prost::encoding::string::encode(2, &finished.method().to_string(), &mut head);
    Reply::LastResult {
        head,
        field: finished.result.field.clone(),
    }
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

fn requested_task_id<T>(request: &Request<T>) -> Result<Option<&str>, Status> {
    match request.metadata().get(TASK_ID_HEADER) {
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

/// Encodes [`Reply`]s as they are and skips request messages unread.
struct ResultCodec;

impl Codec for ResultCodec {
    type Encode = Reply;
    type Decode = ();
    type Encoder = ReplyEncoder;
    type Decoder = SkipDecoder;

    fn encoder(&mut self) -> Self::Encoder {
        ReplyEncoder
    }

    fn decoder(&mut self) -> Self::Decoder {
        SkipDecoder
    }
}

struct ReplyEncoder;

impl Encoder for ReplyEncoder {
    type Item = Reply;
    type Error = Status;

    fn encode(&mut self, item: Reply, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        match item {
            Reply::Message(message) => dst.put(message),
            Reply::LastResult { head, field } => {
                dst.put_slice(&head);
                dst.put(field);
            }
        }
        Ok(())
    }
}

struct SkipDecoder;

impl Decoder for SkipDecoder {
    type Item = ();
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<()>, Status> {
        src.advance(src.remaining());
        Ok(Some(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
