//! The task store: every task's state, the dedupe rule, poll ids, the latest
//! results, and the bounded retention of finished tasks.
//!
//! Results are stored encoded (see [`Encoded`]): the store does not need
//! the project's types, and every reader is served the same bytes.
//!
//! One mutex guards it all; every critical section is a few map operations
//! and never awaits, so contention stays negligible next to handler work.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use prost::bytes::Bytes;
// Tokio's clock, so that a test with a paused clock drives retention.
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::context::Progress;
use crate::wire::TaskStatus;

/// The orchestrator's identity of a task: a repeated execute with the same
/// key while the task runs joins it instead of starting another.
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
    pub(crate) fn method(&self) -> &'static str {
        self.result.rpc
    }
}

/// What a task is doing, as seen by status and output queries.
pub(crate) struct TaskView {
    pub(crate) method: String,
    /// The rpc a downstream service calls for this task's result.
    pub(crate) rpc: String,
    pub(crate) status: TaskStatus,
    pub(crate) progress: u8,
    pub(crate) message: Option<String>,
    pub(crate) error: Option<String>,
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
}

/// Why a result could not be handed out.
pub(crate) enum Lookup {
    /// No such task (never existed, forgotten, or of another method).
    NotFound(String),
    /// The task exists but has no result: still running, or failed.
    NotReady(String),
}

pub(crate) struct TaskStore {
    inner: Mutex<Inner>,
    retention: Duration,
    max_finished: usize,
    /// A few characters that differ between runs of the process, so that a
    /// poll id from before a restart answers 404 instead of another task.
    run_id: String,
}

#[derive(Default)]
struct Inner {
    next_seq: u64,
    tasks: HashMap<String, Task>,
    running: HashMap<DedupeKey, String>,
    /// Finished task ids, oldest first, for eviction.
    finished: VecDeque<(Instant, String)>,
    /// Kept even after their task is forgotten: one result per method.
    latest_by_method: HashMap<&'static str, Finished>,
    latest: Option<Finished>,
}

struct Task {
    method: String,
    rpc: String,
    key: Option<DedupeKey>,
    progress: Progress,
    cancel: CancellationToken,
    state: State,
}

enum State {
    Running,
    Complete(Finished),
    /// A `GetLastResult` execute: the latest result when it ran, or, when
    /// none had completed yet, whatever is latest when it is fetched.
    Latest(Option<Finished>),
    Failed(String),
}

/// Longest orchestrator task id kept as the readable prefix of a poll id.
const MAX_PREFIX: usize = 100;

impl TaskStore {
    pub(crate) fn new(retention: Duration, max_finished: usize) -> TaskStore {
        TaskStore {
            inner: Mutex::new(Inner::default()),
            retention,
            max_finished,
            run_id: run_id(),
        }
    }

    /// Joins the running task with `key`, or records a new one whose result
    /// `rpc` serves and whose cancellation is a child of `parent` (the
    /// service's shutdown).
    pub(crate) fn start(&self, key: DedupeKey, rpc: &str, parent: &CancellationToken) -> Start {
        let mut inner = self.lock();
        if let Some(task_id) = inner.running.get(&key) {
            return Start::Joined(task_id.clone());
        }
        let task_id = self.next_id(&mut inner, &key.task_id);
        let progress = Progress::default();
        let cancel = parent.child_token();
        inner.running.insert(key.clone(), task_id.clone());
        inner.tasks.insert(
            task_id.clone(),
            Task {
                method: key.method.clone(),
                rpc: rpc.to_string(),
                key: Some(key),
                progress: progress.clone(),
                cancel: cancel.clone(),
                state: State::Running,
            },
        );
        Start::Started {
            task_id,
            progress,
            cancel,
        }
    }

    /// Records a completed `GetLastResult` task pointing at the latest
    /// result, and returns its poll id.
    pub(crate) fn record_latest(&self, method: &str, orchestrator_task_id: &str) -> String {
        let mut inner = self.lock();
        let task_id = self.next_id(&mut inner, orchestrator_task_id);
        let progress = Progress::default();
        progress.set(100);
        let snapshot = inner.latest.clone();
        inner.tasks.insert(
            task_id.clone(),
            Task {
                method: method.to_string(),
                rpc: method.to_string(),
                key: None,
                progress,
                cancel: CancellationToken::new(),
                state: State::Latest(snapshot),
            },
        );
        inner.finished.push_back((Instant::now(), task_id.clone()));
        self.evict(&mut inner);
        task_id
    }

    /// Records how a task ended. Only the first outcome counts: a handler
    /// that finishes after its deadline failed it changes nothing.
    pub(crate) fn finish(&self, task_id: &str, outcome: Result<Encoded, String>) {
        let mut inner = self.lock();
        let Some(task) = inner.tasks.get_mut(task_id) else {
            return;
        };
        if !matches!(task.state, State::Running) {
            return;
        }
        task.cancel.cancel();
        let key = task.key.clone();
        let finished = match outcome {
            Ok(result) => {
                task.progress.set(100);
                let finished = Finished {
                    task_id: Arc::from(task_id),
                    result,
                };
                task.state = State::Complete(finished.clone());
                Some(finished)
            }
            Err(error) => {
                task.state = State::Failed(error);
                None
            }
        };
        if let Some(key) = key {
            inner.running.remove(&key);
        }
        inner
            .finished
            .push_back((Instant::now(), task_id.to_string()));
        if let Some(finished) = finished {
            inner
                .latest_by_method
                .insert(finished.method(), finished.clone());
            inner.latest = Some(finished);
        }
        self.evict(&mut inner);
    }

    /// Status of one task, or `None` for an unknown or forgotten id.
    pub(crate) fn view(&self, task_id: &str) -> Option<TaskView> {
        let inner = self.lock();
        let task = inner.tasks.get(task_id)?;
        let (status, error) = match &task.state {
            State::Running => (TaskStatus::Running, None),
            State::Complete(_) | State::Latest(_) => (TaskStatus::Complete, None),
            State::Failed(error) => (TaskStatus::Failed, Some(error.clone())),
        };
        Some(TaskView {
            method: task.method.clone(),
            rpc: task.rpc.clone(),
            status,
            progress: task.progress.get(),
            message: task.progress.message(),
            error,
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
        let task = inner.task(task_id)?;
        let other = || Lookup::NotFound(format!("task {task_id} is not a {rpc} task"));
        if task.rpc != rpc && !matches!(task.state, State::Latest(_)) {
            return Err(other());
        }
        let finished = inner.finished(task_id, task)?;
        if finished.method() != rpc {
            return Err(other());
        }
        Ok(finished)
    }

    /// The result of the task `task_id` whatever its method, or the latest
    /// result of any method when no id is given.
    pub(crate) fn last_result(&self, task_id: Option<&str>) -> Result<Finished, Lookup> {
        let inner = self.lock();
        match task_id {
            Some(task_id) => inner.finished(task_id, inner.task(task_id)?),
            None => inner
                .latest
                .clone()
                .ok_or_else(|| Lookup::NotFound("no task has completed yet".to_string())),
        }
    }

    fn next_id(&self, inner: &mut Inner, orchestrator_task_id: &str) -> String {
        inner.next_seq += 1;
        poll_id(orchestrator_task_id, &self.run_id, inner.next_seq)
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

    /// Forgets finished tasks past the retention period or the count limit.
    fn evict(&self, inner: &mut Inner) {
        let now = Instant::now();
        while let Some((finished_at, task_id)) = inner.finished.front() {
            let expired = now.duration_since(*finished_at) > self.retention;
            if !expired && inner.finished.len() <= self.max_finished {
                break;
            }
            let task_id = task_id.clone();
            inner.finished.pop_front();
            inner.tasks.remove(&task_id);
        }
    }
}

impl Inner {
    fn task(&self, task_id: &str) -> Result<&Task, Lookup> {
        self.tasks
            .get(task_id)
            .ok_or_else(|| Lookup::NotFound(format!("no task {task_id} (unknown or forgotten)")))
    }

    fn finished(&self, task_id: &str, task: &Task) -> Result<Finished, Lookup> {
        match &task.state {
            State::Complete(finished) | State::Latest(Some(finished)) => Ok(finished.clone()),
            State::Latest(None) => self
                .latest
                .clone()
                .ok_or_else(|| Lookup::NotFound("no task has completed yet".to_string())),
            State::Running => Err(Lookup::NotReady(format!("task {task_id} is still running"))),
            State::Failed(error) => {
                Err(Lookup::NotReady(format!("task {task_id} failed: {error}")))
            }
        }
    }
}

/// A new poll id: the orchestrator's task id (URL-safe characters only) for
/// readability, this run's id, and a sequence number that makes it unique
/// for the life of the process, e.g. `task_3f2a9c1d.k3f9.7`.
fn poll_id(task_id: &str, run_id: &str, seq: u64) -> String {
    let prefix: String = task_id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        .take(MAX_PREFIX)
        .collect();
    let prefix = if prefix.is_empty() { "task" } else { &prefix };
    format!("{prefix}.{run_id}.{seq}")
}

/// Four base-36 characters from the start time and process id.
fn run_id() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_nanos());
    let mut seed = (nanos as u64) ^ (u64::from(std::process::id()) << 32);
    (0..4)
        .map(|_| {
            let digit = (seed % 36) as u32;
            seed /= 36;
            char::from_digit(digit, 36).unwrap_or('0')
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Starts a task of `method` (served by the rpc of the same name) and
    /// returns its poll id.
    fn started(store: &TaskStore, task_id: &str, method: &str) -> String {
        let key = DedupeKey {
            workflow_id: "wf".to_string(),
            task_id: task_id.to_string(),
            method: method.to_string(),
        };
        match store.start(key, method, &CancellationToken::new()) {
            Start::Started { task_id, .. } => task_id,
            Start::Joined(joined) => panic!("{task_id} joined running task {joined}"),
        }
    }

    /// Starts and completes a task of `method`.
    fn completed(store: &TaskStore, task_id: &str, method: &'static str) -> String {
        let id = started(store, task_id, method);
        let result = Encoded {
            rpc: method,
            field: Bytes::from(id.clone().into_bytes()),
        };
        store.finish(&id, Ok(result));
        id
    }

    /// The task id of the latest result `rpc` serves.
    fn latest(store: &TaskStore, rpc: &str) -> Option<String> {
        let finished = store.result(None, rpc).ok()?;
        Some(finished.task_id.to_string())
    }

    #[tokio::test(start_paused = true)]
    async fn finished_tasks_are_forgotten_after_the_retention_period() {
        let store = TaskStore::new(Duration::from_secs(60), 100);
        let running = started(&store, "running", "Produce");
        let old = completed(&store, "old", "Produce");
        let failed = started(&store, "failed", "Produce");
        store.finish(&failed, Err("disk full".to_string()));
        tokio::time::advance(Duration::from_secs(30)).await;
        let recent = completed(&store, "recent", "Produce");

        tokio::time::advance(Duration::from_secs(31)).await;
        for id in [&old, &failed] {
            assert!(store.view(id).is_none(), "{id} kept 61 s after it finished");
        }
        for id in [&running, &recent] {
            assert!(store.view(id).is_some(), "{id} forgotten too early");
        }

        tokio::time::advance(Duration::from_secs(31)).await;
        assert!(
            store.view(&recent).is_none(),
            "{recent} kept 61 s after it finished"
        );
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
    async fn finished_tasks_beyond_the_count_limit_are_forgotten_oldest_first() {
        let store = TaskStore::new(Duration::from_secs(3600), 2);
        let running = started(&store, "running", "Produce");
        let other = completed(&store, "other", "Other");
        let first = completed(&store, "first", "Produce");
        let second = completed(&store, "second", "Produce");
        assert!(
            store.view(&other).is_none(),
            "{other} kept beyond the limit of 2"
        );
        for id in [&running, &first, &second] {
            assert!(store.view(id).is_some(), "{id} forgotten, limit 2");
        }
        let third = completed(&store, "third", "Produce");
        assert!(
            store.view(&first).is_none(),
            "{first} kept beyond the limit of 2"
        );
        assert!(
            store.view(&running).is_some(),
            "running task {running} forgotten"
        );
        assert_eq!(
            latest(&store, "Other"),
            Some(other),
            "Other's latest result"
        );
        assert_eq!(
            latest(&store, "Produce"),
            Some(third),
            "Produce's latest result"
        );
    }

    #[test]
    fn poll_ids_are_url_safe_bounded_and_keep_the_task_id() {
        assert_eq!(poll_id("task_3f2a9c1d", "k3f9", 7), "task_3f2a9c1d.k3f9.7");
        assert_eq!(poll_id("a/b c?", "k3f9", 1), "abc.k3f9.1");
        assert_eq!(poll_id("//", "k3f9", 2), "task.k3f9.2");
        let long = poll_id(&"x".repeat(500), &run_id(), u64::MAX);
        assert!(long.len() <= 128, "{} chars", long.len());
        assert!(long
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c)));
    }
}
