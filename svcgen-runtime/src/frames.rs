//! gRPC framing, written by hand for the data interface, so that an
//! answer goes out as the stored bytes of a result, not a copy of them.
//!
//! tonic's server codecs encode every message into a buffer of their own:
//! for a result of hundreds of MiB, a copy as large as the result, made
//! before the first byte leaves. The data interface's messages are all
//! encoded already (see `tasks::Encoded`), so [`Answer`] sends each one as
//! its 5-byte gRPC prefix (and the few bytes of protobuf around it) then
//! slices of the stored [`Bytes`], which HTTP/2 writes out as they are;
//! the `grpc-status` trailer ends it. [`read_request`] reads the one
//! request message of a call, refusing it from its prefix when it is
//! larger than the limit (`GRPC_MAX_REQUEST_BYTES`), before buffering it;
//! like tonic, it reads the request to its end before the answer starts.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::future::Future;
use std::pin::{pin, Pin};
use std::task::{Context, Poll};

use http_body_util::BodyExt;
use hyper::body::{Frame, SizeHint};
use prost::bytes::{Buf, BufMut, Bytes, BytesMut};
use tonic::body::Body;
use tonic::codegen::{http, Body as HttpBody, BoxFuture, StdError};
use tonic::Status;

/// The prefix of every gRPC message: a compression flag and the length.
const PREFIX_BYTES: usize = 5;

/// Reads the request of a call with one message (unary and
/// server-streaming rpcs) to its end: the message's bytes, or
/// `RESOURCE_EXHAUSTED` as soon as its prefix announces more than `limit`
/// bytes (or more than that arrives). No message at all reads as an empty
/// one (every field at its default).
pub(crate) async fn read_request<B>(body: B, limit: usize) -> Result<Bytes, Status>
where
    B: HttpBody,
    B::Error: Into<StdError>,
{
    let too_large = |len: usize| {
        Status::resource_exhausted(format!(
            "the request message is {len} bytes, more than this service's \
             GRPC_MAX_REQUEST_BYTES ({limit})"
        ))
    };
    let mut body = pin!(body);
    let mut received = BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|err| Status::from_error(err.into()))?;
        if let Ok(data) = frame.into_data() {
            received.put(data);
        }
        if let Some((compressed, len)) = prefix(&received) {
            if compressed {
                return Err(Status::unimplemented(
                    "compressed requests are not supported",
                ));
            }
            if len > limit {
                return Err(too_large(len));
            }
            if received.len() > PREFIX_BYTES + limit {
                return Err(too_large(received.len() - PREFIX_BYTES));
            }
        }
    }
    match prefix(&received) {
        None if received.is_empty() => Ok(Bytes::new()),
        Some((_, len)) if received.len() >= PREFIX_BYTES + len => {
            received.advance(PREFIX_BYTES);
            Ok(received.split_to(len).freeze())
        }
        _ => Err(Status::internal("the request ended inside its message")),
    }
}

/// The compression flag and length of the message `received` starts with,
/// once its prefix has arrived.
fn prefix(received: &[u8]) -> Option<(bool, usize)> {
    let prefix: &[u8; PREFIX_BYTES] = received.get(..PREFIX_BYTES)?.try_into().ok()?;
    let len = u32::from_be_bytes([prefix[1], prefix[2], prefix[3], prefix[4]]);
    Some((prefix[0] != 0, len as usize))
}

/// What a call of the data port's services gets: the messages of
/// `answer`, or its error status alone (`Service::call` of `data` and
/// `stream`).
pub(crate) fn respond(
    answer: impl Future<Output = Result<Answer, Status>> + Send + 'static,
) -> BoxFuture<http::Response<Body>, Infallible> {
    Box::pin(async move {
        Ok(match answer.await {
            Ok(answer) => answer.into_response(),
            Err(status) => status.into_http(),
        })
    })
}

/// The body of a successful answer: its messages, then `grpc-status: 0`.
#[derive(Default)]
pub(crate) struct Answer {
    /// The data still to send, in order: prefixes and stored slices.
    data: VecDeque<Bytes>,
    /// Whether the trailers went out.
    ended: bool,
}

impl Answer {
    /// Appends one message made of `head` (a few bytes, copied) followed
    /// by `tail` (sent as it is). Its length must fit the 4-byte prefix:
    /// callers bound it far lower.
    pub(crate) fn push(&mut self, head: &[u8], tail: Bytes) {
        let len = u32::try_from(head.len() + tail.len()).unwrap_or(u32::MAX);
        let mut prefix = Vec::with_capacity(PREFIX_BYTES + head.len());
        prefix.push(0);
        prefix.extend_from_slice(&len.to_be_bytes());
        prefix.extend_from_slice(head);
        self.data.push_back(Bytes::from(prefix));
        if !tail.is_empty() {
            self.data.push_back(tail);
        }
    }

    /// The HTTP response that sends this answer.
    pub(crate) fn into_response(self) -> http::Response<Body> {
        let mut response = http::Response::new(Body::new(self));
        response.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/grpc"),
        );
        response
    }
}

impl HttpBody for Answer {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        if let Some(data) = self.data.pop_front() {
            return Poll::Ready(Some(Ok(Frame::data(data))));
        }
        if self.ended {
            return Poll::Ready(None);
        }
        self.ended = true;
        let mut trailers = http::HeaderMap::new();
        trailers.insert("grpc-status", http::HeaderValue::from_static("0"));
        Poll::Ready(Some(Ok(Frame::trailers(trailers))))
    }

    fn is_end_stream(&self) -> bool {
        self.ended
    }

    fn size_hint(&self) -> SizeHint {
        let len: usize = self.data.iter().map(Bytes::len).sum();
        let mut hint = SizeHint::new();
        hint.set_lower(len as u64);
        hint
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use http_body_util::{Full, StreamBody};

    /// Every frame of `answer`: the data concatenated, and the trailers.
    async fn sent(answer: Answer) -> (Vec<u8>, http::HeaderMap) {
        let collected = answer.collect().await.expect("no error");
        let trailers = collected.trailers().cloned().expect("trailers");
        (collected.to_bytes().to_vec(), trailers)
    }

    #[tokio::test]
    async fn messages_are_prefixed_and_sent_as_they_are_then_status_ok() {
        let stored = Bytes::from_static(b"result");
        let mut answer = Answer::default();
        answer.push(&[0x0a], stored.clone());
        answer.push(&[0x08, 0x01], Bytes::new());
        assert_eq!(answer.data[1].as_ptr(), stored.as_ptr(), "not copied");
        let (data, trailers) = sent(answer).await;
        assert_eq!(
            data,
            [
                &[0, 0, 0, 0, 7, 0x0a][..],
                b"result",
                &[0, 0, 0, 0, 2, 0x08, 0x01]
            ]
            .concat()
        );
        assert_eq!(trailers["grpc-status"], "0");
    }

    #[tokio::test]
    async fn a_request_is_read_across_frames_and_refused_from_its_prefix() {
        let frames: Vec<Result<Frame<Bytes>, std::io::Error>> = vec![
            Ok(Frame::data(Bytes::from_static(&[0, 0, 0]))),
            Ok(Frame::data(Bytes::from_static(&[0, 3, b'a', b'b']))),
            Ok(Frame::data(Bytes::from_static(b"c"))),
        ];
        let body = StreamBody::new(tokio_stream::iter(frames));
        let message = read_request(body, 3).await.expect("3 bytes");
        assert_eq!(&message[..], b"abc");

        let big = Full::new(Bytes::from_static(&[0, 0, 1, 0, 0]));
        let err = read_request(big, 1024).await.expect_err("65536 bytes");
        assert_eq!(err.code(), tonic::Code::ResourceExhausted, "{err:?}");
        assert!(err.message().contains("GRPC_MAX_REQUEST_BYTES"), "{err:?}");
        let compressed = Full::new(Bytes::from_static(&[1, 0, 0, 0, 0]));
        let err = read_request(compressed, 1024)
            .await
            .expect_err("compressed");
        assert_eq!(err.code(), tonic::Code::Unimplemented, "{err:?}");
        let none = read_request(Full::new(Bytes::new()), 1024).await;
        assert!(none.expect("no message").is_empty());
        let flood = Full::new(Bytes::from([&[0, 0, 0, 0, 1][..], &[0; 2000]].concat()));
        let err = read_request(flood, 1024).await.expect_err("2001 bytes");
        assert_eq!(err.code(), tonic::Code::ResourceExhausted, "{err:?}");
        let cut = Full::new(Bytes::from_static(&[0, 0, 0, 0, 9, 1]));
        let err = read_request(cut, 1024).await.expect_err("cut short");
        assert_eq!(err.code(), tonic::Code::Internal, "{err:?}");
    }
}
