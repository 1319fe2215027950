//! The task store: every task's state, the dedupe rule, the admission
//! limits, the latest results, and the retention of finished tasks.
//!
//! Memory is bounded by what is let in, never by dropping finished work:
//! a new task is refused while `MAX_RUNNING_TASKS` tasks run, or while the
//! finished tasks within their retention hold `MAX_RESULT_STORE_BYTES`. A
//! finished task's result stays readable for the whole retention period,
//! however many tasks finish after it. Then the task leaves a tombstone:
//! its method, status and error, no result and none of the orchestrator's
//! ids, so that status still answers and a request for the result learns
//! that it expired, for one more retention period.
//!
//! Results are stored encoded (see [`Encoded`]): the store does not need
//! the project's types, and every reader is served the same bytes.
//!
//! One mutex guards it all; every critical section is a few map operations
//! and never awaits, so contention stays negligible next to handler work.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use prost::bytes::Bytes;
// Tokio's clock, so that a test with a paused clock drives retention.
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::context::Progress;
use crate::ids::{self, short};
use crate::wire::{StatusResponse, TaskStatus};
use crate::GET_LAST_RESULT;

/// What a finished task's record costs in the result budget besides its
/// result (or error) bytes: an estimate of the record's own memory.
pub(crate) const RECORD_BYTES: usize = 256;

/// The most `GetLastResult` executes kept within their retention. They hold
/// no result of their own, so they are not charged to the result budget;
/// past this many a new one is refused (503), none is forgotten early.
pub(crate) const MAX_LATEST_RECORDS: usize = 100_000;

/// The most tombstones kept; past this many the oldest go first.
pub(crate) const MAX_TOMBSTONES: usize = 100_000;

/// The longest error a tombstone keeps, in bytes.
const MAX_TOMBSTONE_ERROR: usize = 1024;

/// The error of a task cancelled by `POST /control/cancel/{poll_id}`.
pub(crate) const CANCELLED: &str = "cancelled";

/// Collections this large or smaller are never shrunk: too small to matter.
const SHRINK_FLOOR: usize = 1024;

/// What `Retry-After` says when too many tasks run: about one poll of the
/// orchestrator.
const RUNNING_RETRY_AFTER: Duration = Duration::from_secs(5);

/// The orchestrator's identity of a task: a repeated execute with the same
/// key while the task runs joins it instead of starting another. Held only
/// while the task runs.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct DedupeKey {
    pub(crate) workflow_id: String,
    pub(crate) task_id: String,
    pub(crate) method: String,
}

/// A handler's result, encoded once when its task completes.
#[derive(Clone)]
pub(crate) struct Encoded {
    /// The rpc that serves it: the method whose response it is.
    pub(crate) rpc: &'static str,
    /// The result as the `LastResult.result` oneof field: tag, length and
    /// the response message (see [`Definition::encode`](crate::Definition::encode)).
    pub(crate) field: Bytes,
}

/// A completed result and the task that produced it.
#[derive(Clone)]
pub(crate) struct Finished {
    pub(crate) task_id: Arc<str>,
    pub(crate) result: Encoded,
}

impl Finished {
    /// The rpc that serves this result (the method whose response it is).
    pub(crate) fn rpc(&self) -> &'static str {
        self.result.rpc
    }
}

/// What a task is doing, as seen by output queries (status queries get a
/// [`StatusResponse`], see [`TaskStore::status`]).
pub(crate) struct TaskView {
    /// The rpc a downstream service calls for this task's result.
    pub(crate) rpc: String,
    pub(crate) status: TaskStatus,
    pub(crate) error: Option<String>,
    /// A tombstone: the task finished longer than the retention period
    /// ago, and its result (if it had one) is gone.
    pub(crate) expired: bool,
}

/// One task as `GET /control/tasks` lists it.
pub(crate) struct TaskSummary {
    pub(crate) task_id: String,
    pub(crate) method: String,
    /// The orchestrator's workflow id, shortened as in log lines.
    pub(crate) workflow_id: String,
    pub(crate) status: TaskStatus,
    pub(crate) progress: u8,
    pub(crate) started_at: SystemTime,
    pub(crate) finished_at: Option<SystemTime>,
}

/// The outcome of [`TaskStore::cancel`].
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Cancel {
    /// The task was running and is now failed with [`CANCELLED`].
    Cancelled,
    /// The task had already finished this way: nothing changed.
    AlreadyFinished(TaskStatus),
    /// No such task.
    Unknown,
}

/// The outcome of [`TaskStore::start`].
pub(crate) enum Start {
    /// A task with the same key is running: poll this id.
    Joined(String),
    /// A new task was recorded; the caller must run it and call `finish`.
    Started {
        task_id: String,
        progress: Progress,
        cancel: CancellationToken,
    },
    /// Nothing was started.
    Refused(Refusal),
}

/// Why new work was refused, and when to try again.
#[derive(Debug)]
pub(crate) struct Refusal {
    pub(crate) kind: Overload,
    pub(crate) detail: String,
    /// Whole seconds, at least 1.
    pub(crate) retry_after: u64,
}

/// Which limit refused new work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Overload {
    /// `MAX_RUNNING_TASKS` tasks are running (HTTP 429).
    Running,
    /// The result budget, or the room for `GetLastResult` records, is used
    /// up until finished tasks expire; or no poll id could be minted
    /// (HTTP 503).
    Full,
}

/// Why a result could not be handed out.
pub(crate) enum Lookup {
    /// No such task (never existed, forgotten, or of another method), or
    /// its result expired.
    NotFound(String),
    /// The task exists but has no result: still running, or failed.
    NotReady(String),
}

/// The store's limits (see [`crate::contract`], section 5).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// How long a finished task keeps its result; its tombstone is kept as
    /// long again.
    pub(crate) retention: Duration,
    /// The most tasks running at once.
    pub(crate) max_running: usize,
    /// The result budget: new tasks are refused while finished tasks
    /// within their retention hold this many bytes.
    pub(crate) max_stored_bytes: usize,
    /// The most `GetLastResult` records within their retention.
    pub(crate) max_latest_records: usize,
    /// The most tombstones.
    pub(crate) max_tombstones: usize,
}

impl Limits {
    /// The limits `config` sets, and the fixed ones.
    pub(crate) fn of(config: &Config) -> Limits {
        Limits {
            retention: config.task_retention,
            max_running: config.max_running_tasks,
            max_stored_bytes: config.max_result_store_bytes,
            max_latest_records: MAX_LATEST_RECORDS,
            max_tombstones: MAX_TOMBSTONES,
        }
    }
}

pub(crate) struct TaskStore {
    inner: Mutex<Inner>,
    limits: Limits,
}

#[derive(Default)]
struct Inner {
    tasks: HashMap<String, Task>,
    /// The running tasks, by dedupe key.
    running: HashMap<DedupeKey, String>,
    /// Finished tasks within their retention, oldest first.
    finished: VecDeque<(Instant, String)>,
    /// Every task of `tasks` by when it started (a sequence number): the
    /// order of the task list, newest first.
    by_start: BTreeMap<u64, String>,
    next_seq: u64,
    /// What the finished tasks within their retention are charged.
    stored_bytes: usize,
    /// How many of them are `GetLastResult` records.
    latest_records: usize,
    /// Tasks past their retention, by poll id.
    tombstones: HashMap<String, Tombstone>,
    /// Tombstones by the time their task finished, oldest first.
    buried: VecDeque<(Instant, String)>,
    /// Kept even after their task is forgotten: one result per method.
    latest_by_method: HashMap<&'static str, Finished>,
    latest: Option<Finished>,
    /// Set when eviction shrank a collection; taken by [`TaskStore::sweep`].
    shrunk: bool,
}

struct Task {
    method: String,
    rpc: String,
    state: State,
    /// Its key in `by_start`.
    seq: u64,
    /// The orchestrator's workflow id as [`short`] shows it (at most 64
    /// characters): for the task list, after the full ids have gone.
    workflow: Box<str>,
    started_at: SystemTime,
    finished_at: Option<SystemTime>,
}

enum State {
    Running {
        key: DedupeKey,
        progress: Progress,
        cancel: CancellationToken,
    },
    Complete {
        finished: Finished,
        message: Option<String>,
        /// What it is charged in the result budget.
        charge: usize,
    },
    Failed {
        error: String,
        progress: u8,
        message: Option<String>,
        charge: usize,
    },
    /// A `GetLastResult` execute: the latest result when it ran.
    Latest(Finished),
}

/// What is left of a task after its retention: no result, no orchestrator
/// ids.
struct Tombstone {
    method: String,
    rpc: String,
    status: TaskStatus,
    progress: u8,
    /// At most [`MAX_TOMBSTONE_ERROR`] bytes.
    error: Option<String>,
}

impl TaskStore {
    pub(crate) fn new(limits: Limits) -> TaskStore {
        TaskStore {
            inner: Mutex::new(Inner::default()),
            limits,
        }
    }

    /// Evicts what has expired, and says whether the store gave memory
    /// back since the last sweep (the caller then has the allocator return
    /// it: see [`crate::memory`]). Called periodically, so that memory
    /// comes back after a burst even when no request touches the store.
    pub(crate) fn sweep(&self) -> bool {
        std::mem::take(&mut self.lock().shrunk)
    }

    /// How many tasks are running (what a shutdown waits for).
    pub(crate) fn running(&self) -> usize {
        self.lock().running.len()
    }

    /// Joins the running task with `key`, or records a new one whose result
    /// `rpc` serves and whose cancellation is a child of `parent` (the
    /// service's shutdown), unless a limit refuses it. A join is never
    /// refused.
    pub(crate) fn start(&self, key: DedupeKey, rpc: &str, parent: &CancellationToken) -> Start {
        let mut inner = self.lock();
        if let Some(task_id) = inner.running.get(&key) {
            return Start::Joined(task_id.clone());
        }
        let limits = &self.limits;
        if inner.running.len() >= limits.max_running {
            return Start::Refused(Refusal {
                kind: Overload::Running,
                detail: format!(
                    "{} tasks are running, the most this service runs at once \
                     (MAX_RUNNING_TASKS); nothing was started: retry when some have finished",
                    inner.running.len()
                ),
                retry_after: RUNNING_RETRY_AFTER.as_secs(),
            });
        }
        if inner.stored_bytes >= limits.max_stored_bytes {
            let retry_after = self.retry_after(&inner);
            return Start::Refused(Refusal {
                kind: Overload::Full,
                detail: format!(
                    "finished tasks hold {} bytes, this service's result budget \
                     (MAX_RESULT_STORE_BYTES={}); nothing was started: results are kept \
                     {}s (TASK_RETENTION_SECS) after their task finishes, retry in {retry_after}s",
                    inner.stored_bytes,
                    limits.max_stored_bytes,
                    limits.retention.as_secs_f64(),
                ),
                retry_after,
            });
        }
        let task_id = match self.mint(&inner, &key.task_id) {
            Ok(task_id) => task_id,
            Err(refusal) => return Start::Refused(refusal),
        };
        let progress = Progress::default();
        let cancel = parent.child_token();
        inner.running.insert(key.clone(), task_id.clone());
        let task = Task {
            method: key.method.clone(),
            rpc: rpc.to_string(),
            workflow: short(&key.workflow_id).into(),
            state: State::Running {
                key,
                progress: progress.clone(),
                cancel: cancel.clone(),
            },
            seq: 0,
            started_at: SystemTime::now(),
            finished_at: None,
        };
        inner.insert(task_id.clone(), task);
        Start::Started {
            task_id,
            progress,
            cancel,
        }
    }

    /// Records a completed `GetLastResult` task pointing at the latest
    /// result, and returns its poll id; `None` when no task has completed
    /// yet. It is not charged to the result budget, but at most
    /// [`Limits::max_latest_records`] of them are kept within retention.
    pub(crate) fn record_latest(
        &self,
        orchestrator_task_id: &str,
        workflow_id: &str,
    ) -> Result<Option<String>, Refusal> {
        let mut inner = self.lock();
        let Some(snapshot) = inner.latest.clone() else {
            return Ok(None);
        };
        if inner.latest_records >= self.limits.max_latest_records {
            let retry_after = self.retry_after(&inner);
            return Err(Refusal {
                kind: Overload::Full,
                detail: format!(
                    "{} {GET_LAST_RESULT} tasks are kept, the most this service keeps within \
                     their retention; retry in {retry_after}s",
                    inner.latest_records
                ),
                retry_after,
            });
        }
        let task_id = self.mint(&inner, orchestrator_task_id)?;
        let now = SystemTime::now();
        let task = Task {
            method: GET_LAST_RESULT.to_string(),
            rpc: GET_LAST_RESULT.to_string(),
            state: State::Latest(snapshot),
            seq: 0,
            workflow: short(workflow_id).into(),
            started_at: now,
            finished_at: Some(now),
        };
        inner.insert(task_id.clone(), task);
        inner.latest_records += 1;
        inner.finished.push_back((Instant::now(), task_id.clone()));
        Ok(Some(task_id))
    }

    /// Records how a task ended and returns the outcome recorded. Only the
    /// first outcome counts: a later one changes nothing and gets the first
    /// back.
    pub(crate) fn finish(
        &self,
        task_id: &str,
        outcome: Result<Encoded, String>,
    ) -> Result<(), String> {
        let mut inner = self.lock();
        inner.finish(task_id, outcome)
    }

    /// Cancels a running task: it fails with [`CANCELLED`] at once, its
    /// dedupe key is free, and its handler sees `ctx.is_cancelled()` (the
    /// runner then drops it at its next `.await`).
    pub(crate) fn cancel(&self, task_id: &str) -> Cancel {
        let mut inner = self.lock();
        let status = match (inner.tasks.get(task_id), inner.tombstones.get(task_id)) {
            (Some(task), _) => task.state.status(),
            (None, Some(tombstone)) => tombstone.status,
            (None, None) => return Cancel::Unknown,
        };
        if status != TaskStatus::Running {
            return Cancel::AlreadyFinished(status);
        }
        let _ = inner.finish(task_id, Err(CANCELLED.to_string()));
        Cancel::Cancelled
    }

    /// The tasks within their retention, newest first: at most `limit`,
    /// only those with `status` when given.
    pub(crate) fn list(&self, limit: usize, status: Option<TaskStatus>) -> Vec<TaskSummary> {
        let inner = self.lock();
        inner
            .by_start
            .values()
            .rev()
            .filter_map(|task_id| Some((task_id, inner.tasks.get(task_id)?)))
            .filter(|(_, task)| status.is_none_or(|status| task.state.status() == status))
            .take(limit)
            .map(|(task_id, task)| TaskSummary {
                task_id: task_id.clone(),
                method: task.method.clone(),
                workflow_id: task.workflow.to_string(),
                status: task.state.status(),
                progress: task.state.progress(),
                started_at: task.started_at,
                finished_at: task.finished_at,
            })
            .collect()
    }

    /// State of one task, or `None` for an unknown or forgotten id.
    pub(crate) fn view(&self, task_id: &str) -> Option<TaskView> {
        let inner = self.lock();
        if let Some(tombstone) = inner.tombstones.get(task_id) {
            return Some(TaskView {
                rpc: tombstone.rpc.clone(),
                status: tombstone.status,
                error: tombstone.error.clone(),
                expired: true,
            });
        }
        let task = inner.tasks.get(task_id)?;
        Some(TaskView {
            rpc: task.rpc.clone(),
            status: task.state.status(),
            error: task.state.error().map(str::to_string),
            expired: false,
        })
    }

    /// What `GET /control/status/{task_id}` answers, or `None` for an
    /// unknown or forgotten id.
    pub(crate) fn status(&self, task_id: &str) -> Option<StatusResponse> {
        let inner = self.lock();
        if let Some(tombstone) = inner.tombstones.get(task_id) {
            return Some(StatusResponse {
                status: tombstone.status,
                progress: tombstone.progress,
                error: tombstone.error.clone(),
                message: None,
                method: tombstone.method.clone(),
            });
        }
        let task = inner.tasks.get(task_id)?;
        Some(StatusResponse {
            status: task.state.status(),
            progress: task.state.progress(),
            error: task.state.error().map(str::to_string),
            message: task.state.message(),
            method: task.method.clone(),
        })
    }

    /// The result the rpc `rpc` serves for the task `task_id`, or its latest
    /// result when no id is given.
    pub(crate) fn result(&self, task_id: Option<&str>, rpc: &str) -> Result<Finished, Lookup> {
        let inner = self.lock();
        let Some(task_id) = task_id else {
            return inner
                .latest_by_method
                .get(rpc)
                .cloned()
                .ok_or_else(|| Lookup::NotFound(format!("no {rpc} task has completed yet")));
        };
        let other = || Lookup::NotFound(format!("task {} is not a {rpc} task", short(task_id)));
        let Some(task) = inner.tasks.get(task_id) else {
            return Err(self.gone(&inner, task_id, Some(rpc)));
        };
        if task.rpc != rpc && !matches!(task.state, State::Latest(_)) {
            return Err(other());
        }
        let finished = task.state.finished(task_id)?;
        if finished.rpc() != rpc {
            return Err(other());
        }
        Ok(finished)
    }

    /// The result of the task `task_id` whatever its method, or the latest
    /// result of any method when no id is given.
    pub(crate) fn last_result(&self, task_id: Option<&str>) -> Result<Finished, Lookup> {
        let inner = self.lock();
        let Some(task_id) = task_id else {
            return inner
                .latest
                .clone()
                .ok_or_else(|| Lookup::NotFound("no task has completed yet".to_string()));
        };
        match inner.tasks.get(task_id) {
            Some(task) => task.state.finished(task_id),
            None => Err(self.gone(&inner, task_id, None)),
        }
    }

    /// Why an id that names no live task has no result: its tombstone, or
    /// nothing at all.
    fn gone(&self, inner: &Inner, task_id: &str, rpc: Option<&str>) -> Lookup {
        let Some(tombstone) = inner.tombstones.get(task_id) else {
            return Lookup::NotFound(unknown_task(task_id));
        };
        match rpc {
            Some(rpc) if tombstone.rpc != rpc && tombstone.rpc != GET_LAST_RESULT => {
                Lookup::NotFound(format!("task {task_id} is not a {rpc} task"))
            }
            _ if tombstone.status == TaskStatus::Failed => Lookup::NotReady(format!(
                "task {task_id} failed: {}",
                tombstone.error.as_deref().unwrap_or_default()
            )),
            _ => Lookup::NotFound(self.expired(task_id)),
        }
    }

    /// The explanation for a result that expired.
    pub(crate) fn expired(&self, task_id: &str) -> String {
        format!(
            "the result of task {task_id} expired: results are kept {}s \
             (TASK_RETENTION_SECS) after their task finishes",
            self.limits.retention.as_secs_f64()
        )
    }

    /// A fresh poll id for the orchestrator's `task_id`, unlike any this
    /// store knows.
    fn mint(&self, inner: &Inner, task_id: &str) -> Result<String, Refusal> {
        // 128 random bits: a second attempt is already beyond belief.
        let mut last = String::new();
        for _ in 0..4 {
            match ids::poll_id(task_id) {
                Ok(id) if !inner.tasks.contains_key(&id) && !inner.tombstones.contains_key(&id) => {
                    return Ok(id)
                }
                Ok(id) => last = format!("poll id {id} was minted twice"),
                Err(err) => last = err,
            }
        }
        tracing::error!(error = last, "no poll id could be minted");
        Err(Refusal {
            kind: Overload::Full,
            detail: format!("nothing was started: {last}"),
            retry_after: 1,
        })
    }

    /// Whole seconds, at least 1, until the oldest finished task expires.
    fn retry_after(&self, inner: &Inner) -> u64 {
        let wait = inner.finished.front().map_or(Duration::ZERO, |(at, _)| {
            (*at + self.limits.retention).saturating_duration_since(Instant::now())
        });
        wait.as_secs_f64().ceil().max(1.0) as u64
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Critical sections never panic half-way, so a poisoned lock still
        // holds consistent data.
        let mut inner = self
            .inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        self.evict(&mut inner);
        inner
    }

    /// Turns finished tasks past their retention into tombstones, and
    /// forgets tombstones past another retention period or beyond their
    /// count limit. Running tasks are never touched.
    fn evict(&self, inner: &mut Inner) {
        let now = Instant::now();
        let retention = self.limits.retention;
        let before = (inner.finished.len(), inner.buried.len());
        while let Some(&(finished_at, _)) = inner.finished.front() {
            if now.duration_since(finished_at) <= retention {
                break;
            }
            let Some((finished_at, task_id)) = inner.finished.pop_front() else {
                break;
            };
            if let Some(task) = inner.tasks.remove(&task_id) {
                inner.by_start.remove(&task.seq);
                inner.bury(task_id, finished_at, task);
            }
        }
        let kept = retention.saturating_mul(2);
        while let Some(&(finished_at, _)) = inner.buried.front() {
            let expired = now.duration_since(finished_at) > kept;
            if !expired && inner.tombstones.len() <= self.limits.max_tombstones {
                break;
            }
            if let Some((_, task_id)) = inner.buried.pop_front() {
                inner.tombstones.remove(&task_id);
            }
        }
        if (inner.finished.len(), inner.buried.len()) != before {
            inner.shrink();
        }
    }
}

impl Inner {
    /// Gives back the capacity a burst left in the maps and queues, once
    /// they are less than a quarter full: they keep twice what they hold.
    fn shrink(&mut self) {
        fn mostly_empty(len: usize, capacity: usize) -> bool {
            capacity > SHRINK_FLOOR && len < capacity / 4
        }
        let mut shrunk = false;
        macro_rules! shrink {
            ($($collection:ident),*) => {$(
                if mostly_empty(self.$collection.len(), self.$collection.capacity()) {
                    let keep = self.$collection.len() * 2;
                    self.$collection.shrink_to(keep);
                    shrunk = true;
                }
            )*};
        }
        shrink!(tasks, running, finished, tombstones, buried);
        self.shrunk |= shrunk;
    }

    /// Adds a task, the newest.
    fn insert(&mut self, task_id: String, mut task: Task) {
        task.seq = self.next_seq;
        self.next_seq += 1;
        self.by_start.insert(task.seq, task_id.clone());
        self.tasks.insert(task_id, task);
    }

    /// Records how a task ended (see [`TaskStore::finish`]).
    fn finish(&mut self, task_id: &str, outcome: Result<Encoded, String>) -> Result<(), String> {
        let Some(task) = self.tasks.get_mut(task_id) else {
            return Err(format!("task {task_id} is no longer known"));
        };
        let State::Running { progress, .. } = &task.state else {
            return task.state.outcome();
        };
        let message = progress.message();
        let percent = progress.get();
        let message_bytes = message.as_ref().map_or(0, String::len);
        let (state, recorded) = match outcome {
            Ok(result) => {
                let finished = Finished {
                    task_id: Arc::from(task_id),
                    result,
                };
                self.latest_by_method
                    .insert(finished.rpc(), finished.clone());
                self.latest = Some(finished.clone());
                let charge = RECORD_BYTES + finished.result.field.len() + message_bytes;
                let state = State::Complete {
                    finished,
                    message,
                    charge,
                };
                (state, Ok(()))
            }
            Err(error) => {
                let charge = RECORD_BYTES + error.len() + message_bytes;
                let state = State::Failed {
                    error: error.clone(),
                    progress: percent,
                    message,
                    charge,
                };
                (state, Err(error))
            }
        };
        self.stored_bytes += state.charge();
        // The running state holds the orchestrator's ids: they go with it.
        task.finished_at = Some(SystemTime::now());
        if let State::Running { key, cancel, .. } = std::mem::replace(&mut task.state, state) {
            cancel.cancel();
            self.running.remove(&key);
        }
        self.finished
            .push_back((Instant::now(), task_id.to_string()));
        recorded
    }

    /// Replaces a finished task past its retention by its tombstone.
    fn bury(&mut self, task_id: String, finished_at: Instant, task: Task) {
        self.stored_bytes = self.stored_bytes.saturating_sub(task.state.charge());
        let (status, progress, error) = match task.state {
            State::Latest(_) => {
                self.latest_records = self.latest_records.saturating_sub(1);
                (TaskStatus::Complete, 100, None)
            }
            State::Complete { .. } => (TaskStatus::Complete, 100, None),
            State::Failed {
                error, progress, ..
            } => (TaskStatus::Failed, progress, Some(bounded(error))),
            // Never in `finished`; kept as it is should it ever be.
            State::Running { .. } => {
                self.by_start.insert(task.seq, task_id.clone());
                self.tasks.insert(task_id, task);
                return;
            }
        };
        let tombstone = Tombstone {
            method: task.method,
            rpc: task.rpc,
            status,
            progress,
            error,
        };
        self.buried.push_back((finished_at, task_id.clone()));
        self.tombstones.insert(task_id, tombstone);
    }
}

impl State {
    fn status(&self) -> TaskStatus {
        match self {
            State::Running { .. } => TaskStatus::Running,
            State::Complete { .. } | State::Latest(_) => TaskStatus::Complete,
            State::Failed { .. } => TaskStatus::Failed,
        }
    }

    fn progress(&self) -> u8 {
        match self {
            State::Running { progress, .. } => progress.get(),
            State::Complete { .. } | State::Latest(_) => 100,
            State::Failed { progress, .. } => *progress,
        }
    }

    /// The handler's last progress message.
    fn message(&self) -> Option<String> {
        match self {
            State::Running { progress, .. } => progress.message(),
            State::Complete { message, .. } | State::Failed { message, .. } => message.clone(),
            State::Latest(_) => None,
        }
    }

    /// Why the task failed.
    fn error(&self) -> Option<&str> {
        match self {
            State::Failed { error, .. } => Some(error),
            State::Running { .. } | State::Complete { .. } | State::Latest(_) => None,
        }
    }

    /// What the task is charged in the result budget.
    fn charge(&self) -> usize {
        match self {
            State::Complete { charge, .. } | State::Failed { charge, .. } => *charge,
            State::Running { .. } | State::Latest(_) => 0,
        }
    }

    /// The outcome of a finished task, as [`TaskStore::finish`] reports it.
    fn outcome(&self) -> Result<(), String> {
        match self {
            State::Failed { error, .. } => Err(error.clone()),
            State::Running { .. } => Err("the task is still running".to_string()),
            State::Complete { .. } | State::Latest(_) => Ok(()),
        }
    }

    /// The result of the task `task_id` in this state.
    fn finished(&self, task_id: &str) -> Result<Finished, Lookup> {
        match self {
            State::Complete { finished, .. } | State::Latest(finished) => Ok(finished.clone()),
            State::Running { .. } => {
                Err(Lookup::NotReady(format!("task {task_id} is still running")))
            }
            State::Failed { error, .. } => {
                Err(Lookup::NotReady(format!("task {task_id} failed: {error}")))
            }
        }
    }
}

/// The detail for an id that names no task, live or tombstone (a status
/// or output query, a data rpc).
pub(crate) fn unknown_task(task_id: &str) -> String {
    format!(
        "no task {} (unknown, or finished long enough ago to be forgotten)",
        short(task_id)
    )
}

/// `error`, cut to at most [`MAX_TOMBSTONE_ERROR`] bytes (on a character
/// boundary, with `…` when cut).
fn bounded(mut error: String) -> String {
    if error.len() > MAX_TOMBSTONE_ERROR {
        let mut end = MAX_TOMBSTONE_ERROR - '…'.len_utf8();
        while !error.is_char_boundary(end) {
            end -= 1;
        }
        error.truncate(end);
        error.push('…');
    }
    error
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: Duration = Duration::from_secs(3600);

    fn limits(retention: Duration) -> Limits {
        Limits {
            retention,
            max_running: 1000,
            max_stored_bytes: 1 << 30,
            max_latest_records: MAX_LATEST_RECORDS,
            max_tombstones: MAX_TOMBSTONES,
        }
    }

    fn key(task_id: &str, method: &str) -> DedupeKey {
        DedupeKey {
            workflow_id: "wf".to_string(),
            task_id: task_id.to_string(),
            method: method.to_string(),
        }
    }

    /// Starts a task of `method` (served by the rpc of the same name) and
    /// returns its poll id.
    fn started(store: &TaskStore, task_id: &str, method: &str) -> String {
        match store.start(key(task_id, method), method, &CancellationToken::new()) {
            Start::Started { task_id, .. } => task_id,
            Start::Joined(joined) => panic!("{task_id} joined running task {joined}"),
            Start::Refused(refusal) => panic!("{task_id} refused: {refusal:?}"),
        }
    }

    /// A result of `len` bytes served by `method`'s rpc.
    fn encoded(method: &'static str, len: usize) -> Encoded {
        Encoded {
            rpc: method,
            field: Bytes::from(vec![7; len]),
        }
    }

    /// Starts and completes a task of `method`.
    fn completed(store: &TaskStore, task_id: &str, method: &'static str) -> String {
        let id = started(store, task_id, method);
        store
            .finish(&id, Ok(encoded(method, 10)))
            .expect("recorded as complete");
        id
    }

    /// The task id of the latest result `rpc` serves.
    fn latest(store: &TaskStore, rpc: &str) -> Option<String> {
        let finished = store.result(None, rpc).ok()?;
        Some(finished.task_id.to_string())
    }

    fn not_found(lookup: Result<Finished, Lookup>) -> String {
        match lookup {
            Err(Lookup::NotFound(reason)) => reason,
            Err(Lookup::NotReady(reason)) => panic!("not ready, not missing: {reason}"),
            Ok(finished) => panic!("a result of {}", finished.task_id),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn results_stay_for_the_retention_period_then_leave_a_tombstone() {
        let store = TaskStore::new(limits(Duration::from_secs(60)));
        let running = started(&store, "running", "Produce");
        let old = completed(&store, "old", "Produce");
        let failed = started(&store, "failed", "Produce");
        let error = store.finish(&failed, Err("disk full".to_string()));
        assert_eq!(error, Err("disk full".to_string()), "the recorded outcome");
        tokio::time::advance(Duration::from_secs(30)).await;
        let recent = completed(&store, "recent", "Produce");

        tokio::time::advance(Duration::from_secs(31)).await;
        let view = store.view(&old).expect("a tombstone answers output");
        assert_eq!((view.status, view.expired), (TaskStatus::Complete, true));
        let status = store.status(&old).expect("a tombstone answers status");
        assert_eq!(
            (status.status, status.progress, status.method.as_str()),
            (TaskStatus::Complete, 100, "Produce")
        );
        let gone = not_found(store.result(Some(&old), "Produce"));
        assert!(gone.contains("expired"), "{gone}");
        let gone = not_found(store.last_result(Some(&old)));
        assert!(gone.contains("expired"), "{gone}");
        let view = store.view(&failed).expect("a tombstone answers status");
        assert_eq!(
            (view.status, view.error.as_deref(), view.expired),
            (TaskStatus::Failed, Some("disk full"), true)
        );
        match store.result(Some(&failed), "Produce") {
            Err(Lookup::NotReady(reason)) => assert!(reason.contains("disk full"), "{reason}"),
            _ => panic!("a failed task's tombstone is not ready"),
        }
        let other = not_found(store.result(Some(&old), "Other"));
        assert!(other.contains("not a Other task"), "{other}");
        for id in [&running, &recent] {
            let view = store.view(id).expect("forgotten too early");
            assert!(!view.expired, "{id} expired too early");
        }
        let result = store.result(Some(&recent), "Produce");
        assert!(result.is_ok(), "{recent}'s result gone within retention");

        // A tombstone lasts another retention period.
        tokio::time::advance(Duration::from_secs(60)).await;
        for id in [&old, &failed] {
            assert!(store.view(id).is_none(), "{id}'s tombstone kept too long");
            let gone = not_found(store.last_result(Some(id)));
            assert!(gone.contains("unknown"), "{gone}");
        }
        assert!(store.view(&recent).is_some_and(|view| view.expired));
        let view = store
            .view(&running)
            .expect("a running task is never forgotten");
        assert_eq!(view.status, TaskStatus::Running);
        assert_eq!(
            latest(&store, "Produce"),
            Some(recent.clone()),
            "latest result"
        );
        let last = store
            .last_result(None)
            .ok()
            .map(|last| last.task_id.to_string());
        assert_eq!(last, Some(recent), "latest result of any method");
    }

    #[tokio::test(start_paused = true)]
    async fn no_finished_result_is_dropped_for_newer_ones() {
        let store = TaskStore::new(limits(HOUR));
        let ids: Vec<String> = (0..5000)
            .map(|n| completed(&store, &format!("t{n}"), "Produce"))
            .collect();
        for n in 0..2000 {
            assert!(store
                .record_latest(&format!("last{n}"), "w")
                .is_ok_and(|id| id.is_some()));
        }
        tokio::time::advance(HOUR - Duration::from_secs(1)).await;
        for id in &ids {
            let result = store.result(Some(id), "Produce");
            assert!(result.is_ok(), "{id} lost within its retention");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_result_budget_refuses_new_work_and_frees_as_results_expire() {
        let store = TaskStore::new(Limits {
            max_stored_bytes: 1000,
            ..limits(Duration::from_secs(60))
        });
        let held = started(&store, "held", "Produce");
        let big = started(&store, "big", "Produce");
        store
            .finish(&big, Ok(encoded("Produce", 2000)))
            .expect("complete");
        tokio::time::advance(Duration::from_secs(20)).await;
        let Start::Refused(refusal) =
            store.start(key("new", "Produce"), "Produce", &CancellationToken::new())
        else {
            panic!("started beyond the result budget");
        };
        assert_eq!(refusal.kind, Overload::Full);
        assert_eq!(refusal.retry_after, 40, "{refusal:?}");
        assert!(
            refusal.detail.contains("MAX_RESULT_STORE_BYTES=1000"),
            "{refusal:?}"
        );
        assert!(
            matches!(
                store.start(key("held", "Produce"), "Produce", &CancellationToken::new()),
                Start::Joined(id) if id == held
            ),
            "a repeat of a running task is joined, never refused"
        );
        assert!(
            store
                .record_latest("last", "w")
                .is_ok_and(|id| id.is_some()),
            "GetLastResult holds no result: not refused by the budget"
        );
        assert!(store.result(Some(&big), "Produce").is_ok(), "kept");
        store
            .finish(&held, Ok(encoded("Produce", 1)))
            .expect("a running task completes beyond the budget");

        tokio::time::advance(Duration::from_secs(41)).await;
        assert!(store.view(&big).is_some_and(|view| view.expired));
        started(&store, "new", "Produce");
    }

    #[tokio::test(start_paused = true)]
    async fn get_last_result_records_cost_no_budget_and_evict_nothing() {
        let store = TaskStore::new(Limits {
            max_stored_bytes: RECORD_BYTES + 10,
            max_latest_records: 3,
            ..limits(Duration::from_secs(60))
        });
        assert!(
            matches!(store.record_latest("early", "w"), Ok(None)),
            "no result yet: nothing to point at"
        );
        let produced = started(&store, "p", "Produce");
        store
            .finish(&produced, Ok(encoded("Produce", 9)))
            .expect("ok");
        let records: Vec<String> = (0..3)
            .map(|n| {
                store
                    .record_latest(&format!("last{n}"), "w")
                    .expect("room for three")
                    .expect("a result to point at")
            })
            .collect();
        let refused = store.record_latest("one more", "w").expect_err("a fourth");
        assert_eq!(refused.kind, Overload::Full, "{refused:?}");
        for id in &records {
            let last = store.last_result(Some(id)).ok().map(|f| f.task_id);
            assert_eq!(last.as_deref(), Some(produced.as_str()), "{id}");
        }
        assert!(store.result(Some(&produced), "Produce").is_ok());
        started(&store, "q", "Produce");
    }

    #[tokio::test(start_paused = true)]
    async fn running_tasks_beyond_the_limit_are_refused_until_one_finishes() {
        let store = TaskStore::new(Limits {
            max_running: 2,
            ..limits(HOUR)
        });
        let first = started(&store, "a", "Produce");
        started(&store, "b", "Produce");
        let Start::Refused(refusal) =
            store.start(key("c", "Produce"), "Produce", &CancellationToken::new())
        else {
            panic!("a third task started beyond the limit of 2");
        };
        assert_eq!((refusal.kind, refusal.retry_after), (Overload::Running, 5));
        assert!(refusal.detail.contains("MAX_RUNNING_TASKS"), "{refusal:?}");
        assert!(matches!(
            store.start(key("a", "Produce"), "Produce", &CancellationToken::new()),
            Start::Joined(id) if id == first
        ));
        store.finish(&first, Err("stopped".to_string())).ok();
        started(&store, "c", "Produce");
    }

    #[tokio::test(start_paused = true)]
    async fn tombstones_are_bounded_in_count_oldest_first() {
        let store = TaskStore::new(Limits {
            max_tombstones: 2,
            ..limits(Duration::from_secs(10))
        });
        let ids: Vec<String> = (0..4)
            .map(|n| completed(&store, &format!("t{n}"), "Produce"))
            .collect();
        tokio::time::advance(Duration::from_secs(11)).await;
        let kept: Vec<bool> = ids.iter().map(|id| store.view(id).is_some()).collect();
        assert_eq!(kept, [false, false, true, true]);
    }

    #[tokio::test(start_paused = true)]
    async fn finished_tasks_keep_none_of_the_orchestrators_ids() {
        let store = TaskStore::new(limits(Duration::from_secs(10)));
        let workflow = "w".repeat(200);
        let task = format!("task_{}", "t".repeat(200));
        let Start::Started { task_id, .. } = store.start(
            DedupeKey {
                workflow_id: workflow.clone(),
                task_id: task.clone(),
                method: "Produce".to_string(),
            },
            "Produce",
            &CancellationToken::new(),
        ) else {
            panic!("not started");
        };
        assert!(task_id.len() <= 128, "{task_id}");
        store
            .finish(&task_id, Err(format!("failed: {}", "e".repeat(5000))))
            .ok();
        {
            let inner = store.lock();
            assert!(inner.running.is_empty(), "the dedupe key outlived the task");
            let task = inner.tasks.get(&task_id).expect("kept");
            assert!(!matches!(task.state, State::Running { .. }));
        }
        tokio::time::advance(Duration::from_secs(11)).await;
        let inner = store.lock();
        assert!(inner.tasks.is_empty() && inner.stored_bytes == 0);
        let tombstone = inner.tombstones.get(&task_id).expect("a tombstone");
        let error = tombstone.error.as_deref().unwrap_or_default();
        assert!(error.len() <= MAX_TOMBSTONE_ERROR && error.ends_with('…'));
        for kept in [&tombstone.method, &tombstone.rpc] {
            assert!(!kept.contains(&workflow) && !kept.contains(&task), "{kept}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn after_a_burst_expires_the_store_gives_its_capacity_back() {
        let store = TaskStore::new(limits(Duration::from_secs(10)));
        assert!(!store.sweep(), "nothing to give back yet");
        for n in 0..5000 {
            completed(&store, &format!("t{n}"), "Produce");
        }
        let burst = store.lock().tasks.capacity();
        assert!(burst >= 5000, "{burst}");
        // Past the retention: every task becomes a tombstone.
        tokio::time::advance(Duration::from_secs(11)).await;
        assert!(store.sweep(), "the emptied task map was not shrunk");
        {
            let inner = store.lock();
            assert!(inner.tasks.is_empty() && inner.tombstones.len() == 5000);
            assert!(
                inner.tasks.capacity() <= SHRINK_FLOOR,
                "{}",
                inner.tasks.capacity()
            );
            assert!(inner.finished.capacity() <= SHRINK_FLOOR);
        }
        assert!(!store.sweep(), "said twice");
        // Past another retention: the tombstones go too.
        tokio::time::advance(Duration::from_secs(11)).await;
        assert!(store.sweep());
        let inner = store.lock();
        assert!(inner.tombstones.is_empty());
        assert!(inner.tombstones.capacity() <= SHRINK_FLOOR);
        assert!(inner.buried.capacity() <= SHRINK_FLOOR);
    }

    #[test]
    fn a_second_outcome_changes_nothing_and_gets_the_first_back() {
        let store = TaskStore::new(limits(HOUR));
        let id = completed(&store, "t", "Produce");
        assert_eq!(store.finish(&id, Err("late".to_string())), Ok(()));
        let view = store.view(&id).expect("kept");
        assert_eq!((view.status, view.error), (TaskStatus::Complete, None));
    }
}
