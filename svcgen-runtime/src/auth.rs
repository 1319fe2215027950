//! Bearer-key auth when `SERVICE_API_KEY` is set: on `/control/*` (an axum
//! middleware, [`require_key`]) and on the gRPC data port ([`RequireKey`],
//! around the project's service and the runtime's streaming rpc) unless
//! `DATA_PORT_AUTH=off`. `/health`, the gRPC health service and reflection
//! stay open: probes need health, and reflection shows only the schema
//! (the project's proto), never a result.
//!
//! **The comparison** reveals neither where the first wrong byte is nor
//! the key's length. The key is copied at start-up into a zeroed
//! buffer of [`MAX_API_KEY_BYTES`] (4096); the token a caller sends is
//! copied into another, and the two buffers are compared whole with
//! `subtle`, together with the two lengths. The time taken depends only on
//! the length of what the caller sent, which the caller knows. (Comparing
//! SHA-256 digests would do as well without a length cap, but no SHA-256
//! is in the dependency graph, and `subtle` is; keys longer than the
//! buffer are refused at start-up, see [`crate::config::Config::api_key`].)

use std::convert::Infallible;
use std::future::ready;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;
use tonic::body::Body;
use tonic::codegen::{http, BoxFuture, Service};
use tonic::Status;

use crate::config::{Config, MAX_API_KEY_BYTES};
use crate::control::ApiError;

/// The buffer a key is compared in, as 8-byte words.
const WORDS: usize = MAX_API_KEY_BYTES / 8;

/// The `detail` of a 401 on the control port.
const HTTP_DETAIL: &str =
    "missing or invalid bearer token: send Authorization: Bearer <SERVICE_API_KEY>";

/// The message of an `UNAUTHENTICATED` status on the data port.
const GRPC_DETAIL: &str =
    "missing or invalid bearer token: send the metadata authorization: Bearer <SERVICE_API_KEY>";

/// The configured key, ready to be compared (see the module docs).
pub(crate) struct ApiKey {
    padded: [u64; WORDS],
    len: u64,
}

impl ApiKey {
    /// The key of `config` (`SERVICE_API_KEY`), if auth is on.
    pub(crate) fn of(config: &Config) -> Option<Arc<ApiKey>> {
        config
            .api_key
            .as_deref()
            .map(|key| Arc::new(ApiKey::new(key)))
    }

    /// `key`, padded. An empty key, or one longer than the buffer (the
    /// configuration refuses both), matches nothing: auth fails closed.
    fn new(key: &str) -> ApiKey {
        match pad(key.as_bytes()).filter(|_| !key.is_empty()) {
            Some(padded) => ApiKey {
                padded,
                len: key.len() as u64,
            },
            None => ApiKey {
                padded: [0; WORDS],
                len: u64::MAX,
            },
        }
    }

    /// Whether `token` is the key.
    fn matches(&self, token: &str) -> bool {
        let Some(padded) = pad(token.as_bytes()) else {
            return false;
        };
        let same = padded[..].ct_eq(&self.padded[..]) & (token.len() as u64).ct_eq(&self.len);
        same.into()
    }

    /// Whether `headers` (HTTP headers, or gRPC metadata) carry
    /// `authorization: Bearer <key>`; the scheme in any case.
    pub(crate) fn admits(&self, headers: &HeaderMap) -> bool {
        let token = headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map_or("", |(_, token)| token.trim());
        self.matches(token)
    }
}

/// `bytes` in a zeroed buffer of [`MAX_API_KEY_BYTES`]; `None` when they
/// do not fit.
fn pad(bytes: &[u8]) -> Option<[u64; WORDS]> {
    if bytes.len() > MAX_API_KEY_BYTES {
        return None;
    }
    let mut padded = [0_u64; WORDS];
    for (word, chunk) in padded.iter_mut().zip(bytes.chunks(8)) {
        let mut le = [0_u8; 8];
        le[..chunk.len()].copy_from_slice(chunk);
        *word = u64::from_le_bytes(le);
    }
    Some(padded)
}

/// Rejects the request with 401 unless it carries `Authorization: Bearer
/// <SERVICE_API_KEY>` (`key` is `None` when auth is off). The key is never
/// logged.
pub(crate) async fn require_key(
    State(key): State<Option<Arc<ApiKey>>>,
    request: Request,
    next: Next,
) -> Response {
    if admits(key.as_deref(), request.headers()) {
        return next.run(request).await;
    }
    unauthorized()
}

/// Whether a control request with `headers` may pass: always when auth is
/// off (`key` is `None`).
pub(crate) fn admits(key: Option<&ApiKey>, headers: &HeaderMap) -> bool {
    key.is_none_or(|key| key.admits(headers))
}

/// The control port's 401: a `{"detail": ...}` body and
/// `WWW-Authenticate: Bearer`.
pub(crate) fn unauthorized() -> Response {
    let mut response = ApiError::new(StatusCode::UNAUTHORIZED, HTTP_DETAIL).into_response();
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    response
}

/// A gRPC service of the data port behind the key: a call whose metadata
/// does not carry `authorization: Bearer <SERVICE_API_KEY>` is answered
/// `UNAUTHENTICATED` without reaching it. Without a key (auth off, or
/// `DATA_PORT_AUTH=off`) every call passes.
#[derive(Clone)]
pub(crate) struct RequireKey<S> {
    inner: S,
    key: Option<Arc<ApiKey>>,
}

impl<S> RequireKey<S> {
    pub(crate) fn new(inner: S, key: Option<Arc<ApiKey>>) -> Self {
        RequireKey { inner, key }
    }
}

impl<S, B> Service<http::Request<B>> for RequireKey<S>
where
    S: Service<
        http::Request<B>,
        Response = http::Response<Body>,
        Error = Infallible,
        Future = BoxFuture<http::Response<Body>, Infallible>,
    >,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        match &self.key {
            Some(key) if !key.admits(request.headers()) => {
                let status = Status::unauthenticated(GRPC_DETAIL);
                Box::pin(ready(Ok(status.into_http())))
            }
            _ => self.inner.call(request),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bearer(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(value).expect("a header value"),
        );
        headers
    }

    #[test]
    fn only_the_whole_key_is_admitted() {
        let key = ApiKey::new("s3cret-key-0123456789");
        assert!(key.admits(&bearer("Bearer s3cret-key-0123456789")));
        assert!(key.admits(&bearer("bEARER  s3cret-key-0123456789 ")));
        for wrong in [
            "Bearer s3cret-key-012345678",
            "Bearer s3cret-key-01234567890",
            "Bearer ",
            "Basic s3cret-key-0123456789",
            "s3cret-key-0123456789",
        ] {
            assert!(!key.admits(&bearer(wrong)), "{wrong:?}");
        }
        assert!(!key.admits(&HeaderMap::new()), "no header");
        let at_most = "k".repeat(MAX_API_KEY_BYTES);
        assert!(ApiKey::new(&at_most).matches(&at_most));
        assert!(!ApiKey::new(&at_most).matches(&format!("{at_most}k")));
        let too_long = format!("{at_most}k");
        assert!(
            !ApiKey::new(&too_long).matches(&too_long),
            "a key longer than the buffer matches nothing"
        );
        assert!(!ApiKey::new("").matches(""), "an empty key matches nothing");
    }
}
