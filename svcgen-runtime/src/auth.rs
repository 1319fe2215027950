//! Bearer-token auth for `/control/*` when `SERVICE_API_KEY` is set.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

use crate::app::App;
use crate::control::ApiError;
use crate::definition::Definition;

/// Rejects the request with 401 unless it carries `Authorization: Bearer
/// <SERVICE_API_KEY>`. The comparison takes the same time wherever the
/// first wrong byte is, and the key is never logged.
pub(crate) async fn require_key<D: Definition>(
    State(app): State<Arc<App<D>>>,
    request: Request,
    next: Next,
) -> Response {
    let Some(expected) = app.config.api_key.as_deref() else {
        return next.run(request).await;
    };
    let provided = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map_or("", |(_, token)| token.trim());
    if bool::from(provided.as_bytes().ct_eq(expected.as_bytes())) {
        return next.run(request).await;
    }
    let mut response = ApiError::new(
        StatusCode::UNAUTHORIZED,
        "missing or invalid bearer token: send Authorization: Bearer <SERVICE_API_KEY>",
    )
    .into_response();
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    response
}
