//! The HTTP control interface the orchestrator drives: execute, status,
//! output and health, with `{"detail": ...}` errors (see [`crate::contract`]);
//! and for operators, cancel and the task list.

use std::convert::Infallible;
use std::future::{ready, Ready};
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, Request, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::future::RouteFuture;
use axum::routing::{get, post};
use axum::{middleware, Json, Router};
use futures_util::future::Either;
use hyper::body::Incoming;
use serde::Serialize;
use serde_json::json;
use tonic::codegen::Service as _;

use crate::app::App;
use crate::auth;
use crate::context::TaskContext;
use crate::definition::MethodKind;
use crate::ids::{short, MAX_ID_BYTES};
use crate::runner;
use crate::tasks::{
    unknown_task, Cancel, DedupeKey, Overload, Refusal, Start, TaskView, CANCELLED,
};
use crate::wire::{
    timestamp, CancelResponse, ExecuteRequest, ExecuteResponse, OutputResponse, TaskEntry,
    TaskList, TaskStatus,
};
use crate::GET_LAST_RESULT;

/// The `Retry-After` of an execute refused during a shutdown, in seconds:
/// by then another replica (or this one, restarted) takes the work.
const SHUTTING_DOWN_RETRY_AFTER: u64 = 5;

/// How many tasks `GET /control/tasks` lists unless `limit` says otherwise.
const DEFAULT_LIST_LIMIT: usize = 100;

/// The most tasks one `GET /control/tasks` lists.
const MAX_LIST_LIMIT: usize = 1000;

fn router(app: Arc<App>) -> Router {
    let control = Router::new()
        .route("/control/execute", post(execute))
        .route("/control/status/{task_id}", get(status))
        .route("/control/output/{task_id}", get(output))
        .route("/control/cancel/{task_id}", post(cancel))
        .route("/control/tasks", get(tasks))
        .route_layer(middleware::from_fn_with_state(
            app.key.clone(),
            auth::require_key,
        ));
    Router::new()
        .route("/health", get(health))
        .merge(control)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(app)
}

/// The path of `GET /control/status/{poll_id}` up to the id.
const STATUS_PREFIX: &str = "/control/status/";

/// The control port's service. `GET /control/status/{poll_id}`, which an
/// orchestrator polls over and over for every task, is answered here
/// directly; every other request goes through the router. Both give the
/// same answer to a status request (auth first, then the task or a 404):
/// the direct way only skips the router's work per request (matching, a
/// boxed route service, the auth middleware's future).
#[derive(Clone)]
pub(crate) struct ControlService {
    app: Arc<App>,
    router: Router,
}

impl ControlService {
    pub(crate) fn new(app: Arc<App>) -> Self {
        ControlService {
            router: router(app.clone()),
            app,
        }
    }
}

impl hyper::service::Service<Request<Incoming>> for ControlService {
    type Response = Response;
    type Error = Infallible;
    type Future = Either<Ready<Result<Response, Infallible>>, RouteFuture<Infallible>>;

    fn call(&self, request: Request<Incoming>) -> Self::Future {
        if let Some(task_id) = plain_status_id(&request) {
            let response = if auth::admits(self.app.key.as_deref(), request.headers()) {
                status_of(&self.app, task_id)
            } else {
                auth::unauthorized()
            };
            return Either::Left(ready(Ok(response)));
        }
        // The router is always ready (`poll_ready` is a no-op).
        Either::Right(self.router.clone().call(request))
    }
}

/// The poll id of a `GET /control/status/{poll_id}` whose id the router
/// would pass on unchanged: one non-empty path segment without percent
/// escapes. Anything else (HEAD, an escaped or empty id, more segments)
/// is left to the router.
fn plain_status_id<B>(request: &Request<B>) -> Option<&str> {
    if request.method() != Method::GET {
        return None;
    }
    let task_id = request.uri().path().strip_prefix(STATUS_PREFIX)?;
    let plain = !task_id.is_empty() && !task_id.contains(['/', '%']);
    plain.then_some(task_id)
}

async fn health() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

async fn execute(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<ExecuteResponse>, ApiError> {
    // A shutdown has begun: start nothing, whatever was asked.
    if app.draining.is_cancelled() {
        return Err(ApiError {
            retry_after: Some(SHUTTING_DOWN_RETRY_AFTER),
            ..ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "shutting down")
        });
    }
    let body = read_body(&app, body).await?;
    let request = parse_execute(&headers, &body)?;
    // The request owns what it needs: the raw body goes now, not when a
    // quick task returns.
    drop(body);
    if request.method == GET_LAST_RESULT {
        let Some(task_id) = app
            .store
            .record_latest(&request.task_id, &request.workflow_id)?
        else {
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
        .ok_or_else(|| unknown_method(&app, &request.method))?;
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
        state: Arc::new(()),
        progress,
        cancel,
        max_message_bytes: app.config.max_message_bytes,
        upstreams: app.upstreams.clone(),
    };
    // The runner enforces the deadline, so a quick task ends even if this
    // request is dropped half-way.
    let deadline = app.config.deadline(&method.name, method.kind);
    let response = match method.kind {
        MethodKind::Long => {
            runner::spawn(app.clone(), method, ctx, deadline);
            ExecuteResponse::Running { task_id }
        }
        MethodKind::Quick => {
            // The answer is the outcome the runner recorded, not a new
            // look at the store: the result may expire in between.
            match runner::spawn(app.clone(), method, ctx, deadline).await {
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

async fn status(
    State(app): State<Arc<App>>,
    task_id: Result<Path<String>, PathRejection>,
) -> Response {
    match task_id {
        Ok(Path(task_id)) => status_of(&app, &task_id),
        Err(rejection) => ApiError::from_path(rejection).into_response(),
    }
}

/// The answer to `GET /control/status/{task_id}` (auth already checked).
fn status_of(app: &App, task_id: &str) -> Response {
    match app.store.status(task_id) {
        Some(status) => json_response(&status),
        None => ApiError::new(StatusCode::NOT_FOUND, unknown_task(task_id)).into_response(),
    }
}

/// `value` as an `application/json` 200, as [`Json`] answers it.
fn json_response(value: &impl Serialize) -> Response {
    let mut body = Vec::with_capacity(128);
    if serde_json::to_writer(&mut body, value).is_err() {
        // Json's own answer to a value it cannot write: a 500.
        return Json(value).into_response();
    }
    let mut response = Response::new(Body::from(body));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

async fn output(
    State(app): State<Arc<App>>,
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

/// Cancels a running task: it fails with `cancelled` at once, its handler
/// sees `ctx.is_cancelled()`, and a new execute with the same ids starts
/// afresh. 409 for a task that has already finished.
async fn cancel(
    State(app): State<Arc<App>>,
    task_id: Result<Path<String>, PathRejection>,
) -> Result<Json<CancelResponse>, ApiError> {
    let Path(task_id) = task_id.map_err(ApiError::from_path)?;
    match app.store.cancel(&task_id) {
        Cancel::Cancelled => {
            tracing::info!(task_id, "task cancelled on request");
            Ok(Json(CancelResponse {
                task_id,
                status: TaskStatus::Failed,
                error: CANCELLED.to_string(),
            }))
        }
        Cancel::AlreadyFinished(status) => Err(ApiError::new(
            StatusCode::CONFLICT,
            format!(
                "task {task_id} has already finished ({}): nothing to cancel",
                status.name()
            ),
        )),
        Cancel::Unknown => Err(ApiError::new(StatusCode::NOT_FOUND, unknown_task(&task_id))),
    }
}

/// The tasks within their retention, newest first: `?limit=N` (default
/// 100, at most 1000) and `?status=running|complete|failed`.
async fn tasks(State(app): State<Arc<App>>, uri: Uri) -> Result<Json<TaskList>, ApiError> {
    let mut limit = DEFAULT_LIST_LIMIT;
    let mut status = None;
    for pair in uri
        .query()
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
    {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        match name {
            "limit" => {
                limit = value
                    .parse()
                    .ok()
                    .filter(|n| (1..=MAX_LIST_LIMIT).contains(n))
                    .ok_or_else(|| {
                        ApiError::bad_request(format!(
                            "limit={} is not valid: expected 1 to {MAX_LIST_LIMIT}",
                            short(value)
                        ))
                    })?;
            }
            "status" => {
                status = Some(TaskStatus::parse(value).ok_or_else(|| {
                    ApiError::bad_request(format!(
                        "status={} is not valid: expected running, complete or failed",
                        short(value)
                    ))
                })?);
            }
            _ => {
                return Err(ApiError::bad_request(format!(
                    "unknown query parameter `{}`: expected limit or status",
                    short(name)
                )))
            }
        }
    }
    let tasks = app
        .store
        .list(limit, status)
        .into_iter()
        .map(|task| TaskEntry {
            task_id: task.task_id,
            method: task.method,
            workflow_id: task.workflow_id,
            status: task.status,
            progress: task.progress,
            started_at: timestamp(task.started_at),
            finished_at: task.finished_at.map(timestamp),
        })
        .collect();
    Ok(Json(TaskList { tasks }))
}

/// The task a status or output path names, or a 404.
fn find(
    app: &App,
    task_id: Result<Path<String>, PathRejection>,
) -> Result<(String, TaskView), ApiError> {
    let Path(task_id) = task_id.map_err(ApiError::from_path)?;
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
        "method not allowed: execute and cancel are POST; status, output, tasks and health are GET",
    )
}

/// The whole body, within `CONTROL_MAX_BODY_BYTES` (413) and
/// `REQUEST_BODY_TIMEOUT_SECS` (408): a client trickling its body cannot
/// hold a connection and its buffer for ever.
async fn read_body(app: &App, body: Body) -> Result<Bytes, ApiError> {
    let limit = app.config.max_body_bytes;
    let timeout = app.config.body_timeout;
    match tokio::time::timeout(timeout, axum::body::to_bytes(body, limit)).await {
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(err)) if is_too_large(&err) => Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "request body is larger than {limit} bytes (CONTROL_MAX_BODY_BYTES): \
                 pass large inputs by reference"
            ),
        )),
        Ok(Err(err)) => Err(ApiError::bad_request(format!(
            "could not read the request body: {err}"
        ))),
        Err(_) => Err(ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            format!(
                "the request body did not arrive within {}s (REQUEST_BODY_TIMEOUT_SECS)",
                timeout.as_secs_f64()
            ),
        )),
    }
}

fn is_too_large(err: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(err) = source {
        if err.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = err.source();
    }
    false
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
    // Parsed once, straight into the request type: no JSON tree of the
    // whole body is built beside it (inline inputs may be megabytes).
    if body.iter().find(|byte| !byte.is_ascii_whitespace()) != Some(&b'{') {
        return Err(ApiError::bad_request("body must be a JSON object"));
    }
    let mut json = serde_json::Deserializer::from_slice(body);
    let request: ExecuteRequest = serde_path_to_error::deserialize(&mut json).map_err(|err| {
        let path = err.path().to_string();
        match err.into_inner() {
            err if !err.is_data() => not_json(err),
            err if path == "." => ApiError::unprocessable(err.to_string()),
            err => ApiError::unprocessable(format!("field `{path}`: {err}")),
        }
    })?;
    json.end().map_err(not_json)?;
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

fn not_json(err: serde_json::Error) -> ApiError {
    ApiError::bad_request(format!("body is not valid JSON: {err}"))
}

fn unknown_method(app: &App, method: &str) -> ApiError {
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

    fn from_path(rejection: PathRejection) -> ApiError {
        ApiError::new(rejection.status(), rejection.body_text())
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
