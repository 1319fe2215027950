//! Large results in pieces: the runtime's own server-streaming rpc,
//! `svcgen.runtime.v1.Results/Fetch`, served on the gRPC port beside the
//! project's service, and the client side [`TaskContext::fetch`] uses.
//!
//! A unary answer is one gRPC message: sender and receiver must both allow
//! its whole size (`GRPC_MAX_MESSAGE_BYTES`), and tonic copies it whole
//! into a frame buffer. `Fetch` answers with the same bytes, the encoded
//! response message of the rpc asked for, cut into pieces of
//! [`PIECE_BYTES`], each a slice of the stored result (see `tasks::Encoded`)
//! sent as it is (see `frames`): the result is held once however many
//! read it, and any gRPC client reads the pieces with its default limits.
//!
//! The rpc is not in the project's proto, nor in reflection: only svcgen
//! services call it, and a producer that does not have it (one from the
//! Python templates, or an older svcgen service) answers `UNIMPLEMENTED`,
//! upon which the caller uses the unary rpc. Its messages, encoded by hand
//! here (no `.proto` is compiled into the runtime):
//!
//! ```proto
//! syntax = "proto3";
//! package svcgen.runtime.v1;
//!
//! service Results {
//!   rpc Fetch(FetchRequest) returns (stream FetchResponse);
//! }
//!
//! message FetchRequest {
//!   // The unary rpc whose result is wanted: `<package>.<Service>/<Rpc>`
//!   // (the path of the unary call without its leading `/`), or `<Rpc>`.
//!   string rpc = 1;
//! }
//!
//! message FetchResponse {
//!   // In the first message only: the length of the whole result.
//!   optional uint64 total_bytes = 1;
//!   // In every later message: the next piece, at most 1 MiB.
//!   bytes data = 2;
//! }
//! ```
//!
//! The task is chosen by the `x-task-id` request metadata exactly as for
//! the unary rpc, with the same status codes (see [`crate::contract`]).
//!
//! [`TaskContext::fetch`]: crate::TaskContext::fetch

use std::convert::Infallible;
use std::future::ready;
use std::sync::Arc;
use std::task::{Context, Poll};

use prost::bytes::{Buf, Bytes};
use prost::encoding::{
    decode_key, decode_varint, encode_key, encode_varint, skip_field, DecodeContext, WireType,
};
use prost::Message;
use tonic::body::Body;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder, Streaming};
use tonic::codegen::http::uri::PathAndQuery;
use tonic::codegen::{http, Body as HttpBody, BoxFuture, Service, StdError};
use tonic::Status;

use crate::data::{requested_task_id, Reply, Wanted};
use crate::frames::{read_request, respond, Answer};
use crate::tasks::TaskStore;

/// The name of the runtime's own service, for `concat!`.
macro_rules! results_service {
    () => {
        "svcgen.runtime.v1.Results"
    };
}

/// The runtime's own service, in a package no project uses.
pub(crate) const SERVICE: &str = results_service!();

/// The streaming rpc, as `<service>/<rpc>`.
pub(crate) const FETCH_RPC: &str = concat!(results_service!(), "/Fetch");

/// The HTTP/2 path of the streaming rpc, `/<service>/<rpc>`.
const FETCH_PATH: &str = concat!("/", results_service!(), "/Fetch");

/// The most result bytes one `FetchResponse` carries: 1 MiB. Large
/// enough that the per-message costs (a gRPC frame header, a protobuf key,
/// a wake-up of each side) vanish next to copying the bytes, which they do
/// at 256 messages for 256 MiB; small enough that a reader holds little at
/// a time, that the first bytes leave at once, and that any gRPC client
/// reads it under its default 4 MiB receive limit.
pub(crate) const PIECE_BYTES: usize = 1024 * 1024;

/// The largest `FetchResponse` the client side reads: gRPC's usual 4 MiB,
/// room for pieces larger than this version sends.
pub(crate) const MAX_PIECE_MESSAGE_BYTES: usize = 4 * 1024 * 1024;

/// `FetchRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct FetchRequest {
    /// `<package>.<Service>/<Rpc>`, or `<Rpc>`.
    #[prost(string, tag = "1")]
    pub(crate) rpc: String,
}

/// A `FetchResponse` as the client reads it: the announced length, or a
/// piece of the result (the server sends them in separate messages).
#[derive(Debug, Default)]
pub(crate) struct Piece {
    pub(crate) total_bytes: Option<u64>,
    pub(crate) data: Bytes,
}

/// The path of `Fetch`.
pub(crate) fn fetch_path() -> PathAndQuery {
    PathAndQuery::from_static(FETCH_PATH)
}

/// Serves `svcgen.runtime.v1.Results`: `Fetch`, from the stored results.
#[derive(Clone)]
pub(crate) struct ResultsService {
    store: Arc<TaskStore>,
    /// The project's service, `<package>.<Service>`.
    service: &'static str,
    /// The rpcs that serve a method's results.
    rpcs: Arc<[String]>,
    /// `GRPC_MAX_REQUEST_BYTES`.
    max_request_bytes: usize,
}

impl ResultsService {
    pub(crate) fn new(
        store: Arc<TaskStore>,
        service: &'static str,
        rpcs: Arc<[String]>,
        max_request_bytes: usize,
    ) -> Self {
        ResultsService {
            store,
            service,
            rpcs,
            max_request_bytes,
        }
    }

    /// The pieces of the result a `Fetch` call asks for; the status the
    /// unary rpc would answer when there is none.
    async fn answer<B>(self, request: http::Request<B>) -> Result<Answer, Status>
    where
        B: HttpBody,
        B::Error: Into<StdError>,
    {
        let (parts, body) = request.into_parts();
        let message = read_request(body, self.max_request_bytes).await?;
        let asked = FetchRequest::decode(message)
            .map_err(|err| Status::invalid_argument(format!("not a FetchRequest: {err}")))?
            .rpc;
        let rpc = match asked.rsplit_once('/') {
            Some((service, rpc)) if service == self.service => rpc,
            Some(_) => "",
            None => asked.as_str(),
        };
        let wanted = Wanted::find(&self.rpcs, rpc).ok_or_else(|| {
            let service = self.service;
            Status::unimplemented(format!("this service ({service}) has no rpc {asked:?}"))
        })?;
        let reply = wanted.lookup(&self.store, requested_task_id(&parts.headers)?)?;
        Ok(pieces(reply))
    }
}

impl<B> Service<http::Request<B>> for ResultsService
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
        if request.uri().path() != FETCH_PATH {
            let path = request.uri().path();
            let status = Status::unimplemented(format!("{SERVICE} has no rpc {path:?}"));
            return respond(ready(Err(status)));
        }
        respond(self.clone().answer(request))
    }
}

/// The messages of `reply`: its length, then slices of at most
/// [`PIECE_BYTES`] of it, each sent as it is stored.
fn pieces(reply: Reply) -> Answer {
    let mut answer = Answer::default();
    let mut total = Vec::new();
    prost::encoding::uint64::encode(1, &(reply.len() as u64), &mut total);
    answer.push(&total, Bytes::new());
    let (head, tail) = reply.into_head_and_tail();
    for mut part in [Bytes::from(head), tail] {
        while !part.is_empty() {
            let data = part.split_to(part.len().min(PIECE_BYTES));
            let mut key_and_len = Vec::with_capacity(8);
            encode_key(2, WireType::LengthDelimited, &mut key_and_len);
            encode_varint(data.len() as u64, &mut key_and_len);
            answer.push(&key_and_len, data);
        }
    }
    answer
}

/// Assembles the answer of a `Fetch` call: the announced length must be
/// at most `max_result_bytes` (else `RESOURCE_EXHAUSTED`, before anything
/// is allocated), and the pieces must add up to it exactly.
pub(crate) async fn assemble(
    mut pieces: Streaming<Piece>,
    max_result_bytes: usize,
) -> Result<Bytes, Status> {
    let first = pieces
        .message()
        .await?
        .ok_or_else(|| Status::data_loss("the stream ended before its first message"))?;
    let total = first
        .total_bytes
        .ok_or_else(|| Status::data_loss("the stream's first message has no total_bytes"))?;
    let total = usize::try_from(total)
        .ok()
        .filter(|total| *total <= max_result_bytes)
        .ok_or_else(|| {
            Status::resource_exhausted(format!(
                "the result is {total} bytes, more than UPSTREAM_MAX_RESULT_BYTES \
                 ({max_result_bytes}) of this service"
            ))
        })?;
    let mut result = Vec::with_capacity(total);
    let mut data = first.data;
    loop {
        if data.len() > total - result.len() {
            return Err(Status::data_loss(format!(
                "the stream sent more than the {total} bytes it announced"
            )));
        }
        result.extend_from_slice(&data);
        match pieces.message().await? {
            Some(piece) => data = piece.data,
            None => break,
        }
    }
    if result.len() != total {
        return Err(Status::data_loss(format!(
            "the stream ended after {} of the {total} bytes it announced",
            result.len()
        )));
    }
    Ok(Bytes::from(result))
}

/// The client's codec of `Fetch`.
pub(crate) struct FetchCodec;

impl Codec for FetchCodec {
    type Encode = FetchRequest;
    type Decode = Piece;
    type Encoder = RequestEncoder;
    type Decoder = PieceDecoder;

    fn encoder(&mut self) -> RequestEncoder {
        RequestEncoder
    }

    fn decoder(&mut self) -> PieceDecoder {
        PieceDecoder
    }
}

/// Reads a piece without copying its data out of tonic's buffer.
pub(crate) struct PieceDecoder;

impl Decoder for PieceDecoder {
    type Item = Piece;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Piece>, Status> {
        decode_piece(src)
            .map(Some)
            .map_err(|err| Status::internal(format!("a FetchResponse does not decode: {err}")))
    }
}

fn decode_piece(src: &mut impl Buf) -> Result<Piece, String> {
    let malformed = |err: prost::DecodeError| err.to_string();
    let mut piece = Piece::default();
    while src.has_remaining() {
        let (tag, wire_type) = decode_key(src).map_err(malformed)?;
        match (tag, wire_type) {
            (1, WireType::Varint) => {
                piece.total_bytes = Some(decode_varint(src).map_err(malformed)?);
            }
            (2, WireType::LengthDelimited) => {
                let len = usize::try_from(decode_varint(src).map_err(malformed)?)
                    .ok()
                    .filter(|len| *len <= src.remaining())
                    .ok_or("data is longer than the message")?;
                piece.data = src.copy_to_bytes(len);
            }
            _ => skip_field(wire_type, tag, src, DecodeContext::default()).map_err(malformed)?,
        }
    }
    Ok(piece)
}

/// Encodes the [`FetchRequest`] of the client.
pub(crate) struct RequestEncoder;

impl Encoder for RequestEncoder {
    type Item = FetchRequest;
    type Error = Status;

    fn encode(&mut self, request: FetchRequest, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        request
            .encode(dst)
            .map_err(|err| Status::internal(format!("encoding a FetchRequest: {err}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use http_body_util::BodyExt;

    /// The messages `answer` sends, decoded as the client does.
    async fn sent(answer: Answer) -> Vec<Piece> {
        let mut data = answer.collect().await.expect("no error").to_bytes();
        let mut pieces = Vec::new();
        while data.has_remaining() {
            let _compressed = data.get_u8();
            let len = data.get_u32() as usize;
            pieces.push(decode_piece(&mut data.split_to(len)).expect("a FetchResponse"));
        }
        pieces
    }

    #[tokio::test]
    async fn a_result_is_announced_then_sent_in_slices() {
        let head = b"head".to_vec();
        let field = Bytes::from(vec![7_u8; 2 * PIECE_BYTES + 3]);
        let out = sent(pieces(Reply::LastResult { head, field })).await;
        assert_eq!(out[0].total_bytes, Some(2 * PIECE_BYTES as u64 + 7));
        assert!(out[0].data.is_empty());
        let lens: Vec<usize> = out[1..].iter().map(|piece| piece.data.len()).collect();
        assert_eq!(lens, [4, PIECE_BYTES, PIECE_BYTES, 3]);
        assert!(out[1..].iter().all(|piece| piece.total_bytes.is_none()));
        let empty = sent(pieces(Reply::Message(Bytes::new()))).await;
        assert_eq!(empty.len(), 1, "an empty result is its total alone");
        assert_eq!(empty[0].total_bytes, Some(0));
        assert_eq!(fetch_path().path(), format!("/{FETCH_RPC}"));
        assert!(FETCH_RPC.starts_with(SERVICE));
    }

    #[test]
    fn pieces_decode_as_they_were_encoded_and_unknown_fields_are_skipped() {
        let mut wire = Vec::new();
        prost::encoding::uint64::encode(1, &0, &mut wire);
        prost::encoding::string::encode(9, &"later".to_string(), &mut wire);
        prost::encoding::bytes::encode(2, &b"abc".to_vec(), &mut wire);
        let piece = decode_piece(&mut Bytes::from(wire)).expect("decodes");
        assert_eq!((piece.total_bytes, &piece.data[..]), (Some(0), &b"abc"[..]));
        let short = decode_piece(&mut Bytes::from_static(&[0x12, 0x05, 0x01]));
        assert!(short.is_err(), "a piece longer than the message");
    }
}
