//! The HTTP control interface the orchestrator drives: execute, status,
//! output and health, with `{"detail": ...}` errors (see [`crate::contract`]).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{middleware, Json, Router};
use serde_json::json;

use crate::app::App;
use crate::auth;
use crate::context::TaskContext;
use crate::definition::{Definition, MethodKind};
use crate::ids::{short, MAX_ID_BYTES};
use crate::runner;
use crate::tasks::{unknown_task, DedupeKey, Overload, Refusal, Start, TaskView};
use crate::wire::{ExecuteRequest, ExecuteResponse, OutputResponse, StatusResponse, TaskStatus};
use crate::GET_LAST_RESULT;

/// The `Retry-After` of an execute refused during a shutdown, in seconds:
/// by then another replica (or this one, restarted) takes the work.
const SHUTTING_DOWN_RETRY_AFTER: u64 = 5;

pub(crate) fn router<D: Definition>(app: Arc<App<D>>) -> Router {
    let body_limit = DefaultBodyLimit::max(app.config.max_body_bytes);
    let control = Router::new()
        .route("/control/execute", post(execute::<D>))
        .route("/control/status/{task_id}", get(status::<D>))
        .route("/control/output/{task_id}", get(output::<D>))
        .route_layer(middleware::from_fn_with_state(
            auth::ApiKey::of(&app.config),
            auth::require_key,
        ));
    Router::new()
        .route("/health", get(health))
        .merge(control)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(body_limit)
        .with_state(app)
}

async fn health() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

async fn execute<D: Definition>(
    State(app): State<Arc<App<D>>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<ExecuteResponse>, ApiError> {
    // A shutdown has begun: start nothing, whatever was asked.
    if app.draining.is_cancelled() {
        return Err(ApiError {
            retry_after: Some(SHUTTING_DOWN_RETRY_AFTER),
            ..ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "shutting down")
        });
    }
    let body =
        body.map_err(|rejection| ApiError::new(rejection.status(), rejection.body_text()))?;
    let request = parse_execute(&headers, &body)?;
    if request.method == GET_LAST_RESULT {
        let Some(task_id) = app.store.record_latest(&request.task_id)? else {
            return Ok(Json(ExecuteResponse::Failed {
                error: format!(
                    "{GET_LAST_RESULT} has no result to point at: no task has completed yet"
                ),
            }));
        };
        return Ok(Json(ExecuteResponse::Complete {
            output: app.output_reference(&task_id, GET_LAST_RESULT),
            task_id,
        }));
    }
    let method = app
        .methods
        .get(&request.method)
        .ok_or_else(|| unknown_method(&app, &request.method))?
        .clone();
    let key = DedupeKey {
        workflow_id: request.workflow_id.clone(),
        task_id: request.task_id.clone(),
        method: request.method.clone(),
    };
    let (task_id, progress, cancel) = match app.store.start(key, &method.rpc, &app.shutdown) {
        Start::Joined(task_id) => return Ok(Json(ExecuteResponse::Running { task_id })),
        Start::Refused(refusal) => return Err(refusal.into()),
        Start::Started {
            task_id,
            progress,
            cancel,
        } => (task_id, progress, cancel),
    };
    tracing::info!(
        task_id,
        method = method.name,
        workflow_id = %short(&request.workflow_id),
        "task started"
    );
    let ctx = TaskContext {
        task_id: task_id.clone(),
        workflow_id: request.workflow_id,
        method: request.method,
        inputs: request.inputs.unwrap_or_default(),
        parameters: request.parameters.unwrap_or_default(),
        state: app.state.clone(),
        progress,
        cancel,
        max_message_bytes: app.config.max_message_bytes,
        upstreams: app.upstreams.clone(),
    };
    let response = match method.kind {
        MethodKind::Long => {
            runner::spawn(app.clone(), &method, ctx, None);
            ExecuteResponse::Running { task_id }
        }
        MethodKind::Quick => {
            // The runner enforces the deadline, so the task ends even if
            // this request is dropped half-way.
            let deadline = Some(app.config.quick_deadline);
            // The answer is the outcome the runner recorded, not a new
            // look at the store: the result may expire in between.
            match runner::spawn(app.clone(), &method, ctx, deadline).await {
                Ok(Ok(())) => ExecuteResponse::Complete {
                    output: app.output_reference(&task_id, &method.rpc),
                    task_id,
                },
                Ok(Err(error)) => ExecuteResponse::Failed { error },
                // The runner recorded a failure as it unwound.
                Err(_) => ExecuteResponse::Failed {
                    error: runner::RUNNER_LOST.to_string(),
                },
            }
        }
    };
    Ok(Json(response))
}

async fn status<D: Definition>(
    State(app): State<Arc<App<D>>>,
    task_id: Result<Path<String>, PathRejection>,
) -> Result<Json<StatusResponse>, ApiError> {
    let view = find(&app, task_id)?.1;
    Ok(Json(StatusResponse {
        status: view.status,
        progress: view.progress,
        error: view.error,
        message: view.message,
        method: view.method,
    }))
}

async fn output<D: Definition>(
    State(app): State<Arc<App<D>>>,
    task_id: Result<Path<String>, PathRejection>,
) -> Result<Json<OutputResponse>, ApiError> {
    let (task_id, view) = find(&app, task_id)?;
    match view.status {
        TaskStatus::Complete if view.expired => {
            Err(ApiError::new(StatusCode::GONE, app.store.expired(&task_id)))
        }
        TaskStatus::Complete => Ok(Json(OutputResponse {
            output: app.output_reference(&task_id, &view.rpc),
        })),
        TaskStatus::Running => Err(ApiError::bad_request(format!(
            "task {task_id} is still running: poll /control/status/{task_id} until it is complete"
        ))),
        TaskStatus::Failed => Err(ApiError::bad_request(format!(
            "task {task_id} failed: {}",
            view.error.unwrap_or_default()
        ))),
    }
}

/// The task a status or output path names, or a 404.
fn find<D: Definition>(
    app: &App<D>,
    task_id: Result<Path<String>, PathRejection>,
) -> Result<(String, TaskView), ApiError> {
    let Path(task_id) =
        task_id.map_err(|rejection| ApiError::new(rejection.status(), rejection.body_text()))?;
    let view = app
        .store
        .view(&task_id)
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, unknown_task(&task_id)))?;
    Ok((task_id, view))
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "no such endpoint")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method not allowed: execute is POST, status, output and health are GET",
    )
}

/// Reads an execute body: 400 for anything that is not a JSON object sent
/// as JSON, 422 naming the first missing or mistyped field.
fn parse_execute(headers: &HeaderMap, body: &[u8]) -> Result<ExecuteRequest, ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("");
    let essence = content_type.split(';').next().unwrap_or("").trim();
    if !(essence.eq_ignore_ascii_case("application/json") || essence.ends_with("+json")) {
        return Err(ApiError::bad_request(
            "expected a JSON body with Content-Type: application/json",
        ));
    }
    let value: serde_json::Value = serde_json::from_slice(body)
        .map_err(|err| ApiError::bad_request(format!("body is not valid JSON: {err}")))?;
    if !value.is_object() {
        return Err(ApiError::bad_request("body must be a JSON object"));
    }
    let request: ExecuteRequest = serde_path_to_error::deserialize(value).map_err(|err| {
        let path = err.path().to_string();
        if path == "." {
            ApiError::unprocessable(err.into_inner().to_string())
        } else {
            ApiError::unprocessable(format!("field `{path}`: {}", err.into_inner()))
        }
    })?;
    for (field, value) in [
        ("method", &request.method),
        ("workflow_id", &request.workflow_id),
        ("task_id", &request.task_id),
    ] {
        if value.trim().is_empty() {
            return Err(ApiError::unprocessable(format!(
                "field `{field}` must be a non-empty string"
            )));
        }
        if value.len() > MAX_ID_BYTES {
            return Err(ApiError::unprocessable(format!(
                "field `{field}` is {} bytes long, more than the limit of {MAX_ID_BYTES} bytes",
                value.len()
            )));
        }
    }
    Ok(request)
}

fn unknown_method<D: Definition>(app: &App<D>, method: &str) -> ApiError {
    let known: Vec<&str> = app
        .methods
        .names()
        .chain(std::iter::once(GET_LAST_RESULT))
        .collect();
    ApiError::bad_request(format!(
        "unknown method `{}`; known methods: {}",
        short(method),
        known.join(", ")
    ))
}

/// An error answer: the status and a one-line `{"detail": ...}` body, with
/// a `Retry-After` header when trying again later may succeed.
#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    detail: String,
    /// Seconds, for `Retry-After`.
    retry_after: Option<u64>,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, detail: impl Into<String>) -> ApiError {
        ApiError {
            status,
            detail: detail.into(),
            retry_after: None,
        }
    }

    fn bad_request(detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, detail)
    }

    fn unprocessable(detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, detail)
    }
}

/// New work refused: 429 while too many tasks run, 503 while the store is
/// full; both say when to try again.
impl From<Refusal> for ApiError {
    fn from(refusal: Refusal) -> ApiError {
        let status = match refusal.kind {
            Overload::Running => StatusCode::TOO_MANY_REQUESTS,
            Overload::Full => StatusCode::SERVICE_UNAVAILABLE,
        };
        ApiError {
            retry_after: Some(refusal.retry_after),
            ..ApiError::new(status, refusal.detail)
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(json!({"detail": self.detail}))).into_response();
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}
