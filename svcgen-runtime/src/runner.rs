//! Runs one task: the handler on its own tokio task, its panic or error
//! turned into a failed task, its deadline enforced, its result encoded and
//! recorded.

use std::any::Any;
use std::sync::Arc;

use tokio::task::JoinHandle;

use crate::app::App;
use crate::config::Deadline;
use crate::context::TaskContext;
use crate::definition::BoundMethod;
use crate::tasks::{TaskStore, CANCELLED};

/// The error of a task whose handler panicked: the panic's own message,
/// which may say anything, goes to the log only.
pub(crate) const PANICKED: &str = "handler panicked (its message is in the service's log)";

/// The error of a task whose runner stopped before recording an outcome
/// (the project's `encode` panicked, or the runtime is going away).
pub(crate) const RUNNER_LOST: &str =
    "the task stopped before its outcome was recorded (see the service's log)";

/// Starts `method` for the task described by `ctx`, failing it once
/// `deadline` passes. The returned handle completes when the outcome is
/// recorded, whether or not anyone still waits for it, with the outcome
/// recorded: `Ok` for a result, else the task's error.
///
/// When the task is cancelled (deadline, `POST /control/cancel`, shutdown)
/// the handler future is dropped at its next `.await`; blocking work sees
/// `ctx.is_cancelled()` turn true and should return early.
pub(crate) fn spawn(
    app: Arc<App>,
    method: &BoundMethod,
    ctx: TaskContext<()>,
    deadline: Option<Deadline>,
) -> JoinHandle<Result<(), String>> {
    let task_id = ctx.task_id.clone();
    let cancel = ctx.cancel.clone();
    let method_name = method.name.clone();
    let mut handler = app.handlers.spawn((method.run)(ctx));
    // Should this runner stop before it records an outcome, its guard
    // fails the task: no task stays `running` for ever.
    let guard = Unfinished {
        store: app.store.clone(),
        task_id: Some(task_id.clone()),
    };
    tokio::spawn(async move {
        let expired = async {
            match deadline {
                Some(deadline) => {
                    tokio::time::sleep(deadline.after).await;
                    deadline
                }
                None => std::future::pending().await,
            }
        };
        let outcome = tokio::select! {
            joined = &mut handler => match joined {
                Ok(Ok(unencoded)) => Ok(unencoded()),
                Ok(Err(err)) => Err(err.message().to_string()),
                Err(join) if join.is_panic() => {
                    let panic = panic_message(join.into_panic());
                    tracing::error!(task_id, method = method_name, panic, "handler panicked");
                    Err(PANICKED.to_string())
                }
                Err(_) => Err("task was cancelled".to_string()),
            },
            () = cancel.cancelled() => {
                handler.abort();
                // Cancelled by a request (recorded already) or by the
                // shutdown.
                Err(if app.shutdown.is_cancelled() {
                    "task was cancelled: the service is shutting down"
                } else {
                    CANCELLED
                }
                .to_string())
            }
            Deadline { after, setting } = expired => {
                cancel.cancel();
                handler.abort();
                Err(format!(
                    "{method_name} did not finish within its {}s deadline ({setting})",
                    after.as_secs_f64()
                ))
            }
        };
        let recorded = app.store.finish(&task_id, outcome);
        guard.disarm();
        match &recorded {
            Ok(()) => tracing::info!(task_id, method = method_name, "task complete"),
            Err(error) => tracing::warn!(task_id, method = method_name, error, "task failed"),
        }
        recorded
    })
}

/// Fails its task when dropped: held by a runner until it has recorded
/// the task's outcome, so that a runner that panics or is dropped leaves
/// no task running.
struct Unfinished {
    store: Arc<TaskStore>,
    /// `None` once the outcome is recorded.
    task_id: Option<String>,
}

impl Unfinished {
    fn disarm(mut self) {
        self.task_id = None;
    }
}

impl Drop for Unfinished {
    fn drop(&mut self) {
        if let Some(task_id) = self.task_id.take() {
            tracing::error!(task_id, "{RUNNER_LOST}");
            let _ = self.store.finish(&task_id, Err(RUNNER_LOST.to_string()));
        }
    }
}

fn panic_message(payload: Box<dyn Any + Send>) -> String {
    if let Some(message) = payload.downcast_ref::<&str>() {
        message.to_string()
    } else if let Some(message) = payload.downcast_ref::<String>() {
        message.clone()
    } else {
        "(no message)".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::time::Duration;

    use serde_json::Map;
    use tokio::time::Instant;
    use tokio_util::sync::CancellationToken;

    use crate::config::Config;
    use crate::definition::{BoxError, Definition, MethodKind, Methods};
    use crate::descriptors::DescriptorIndex;
    use crate::tasks::{DedupeKey, Limits, Start, TaskStore};
    use crate::upstream::Upstreams;
    use crate::wire::TaskStatus;
    use crate::HandlerError;

    /// The `result` oneof of a one-method service.
    #[derive(Clone, PartialEq, prost::Oneof)]
    enum Out {
        #[prost(uint32, tag = "3")]
        Count(u32),
    }

    struct Tiny;

    impl Definition for Tiny {
        type State = ();
        type Output = Out;
        const GRPC_SERVICE: &'static str = "tiny.v1.Tiny";
        const FILE_DESCRIPTOR_SET: &'static [u8] = &[];
        const DEFAULT_HTTP_PORT: u16 = 8080;
        const DEFAULT_GRPC_PORT: u16 = 50051;
        const DEFAULT_GRPC_HOST: &'static str = "tiny";

        fn methods() -> Methods<Self> {
            let mut methods = Methods::new();
            methods.add("Hang", MethodKind::Quick, |_ctx| {
                std::future::pending::<Result<Out, HandlerError>>()
            });
            methods.add("Count", MethodKind::Quick, |_ctx| async {
                tokio::time::sleep(Duration::from_secs(19)).await;
                Ok(Out::Count(19))
            });
            methods.add("Boom", MethodKind::Quick, |_ctx| async {
                if true {
                    panic!("secret=hunter2 in a panic message");
                }
                Ok(Out::Count(0))
            });
            methods.add("BadEncode", MethodKind::Long, |_ctx| async {
                Ok(Out::Count(UNENCODABLE))
            });
            methods
        }

        fn rpc_of(_output: &Out) -> &'static str {
            "Count"
        }

        fn encode(output: &Out, buf: &mut Vec<u8>) {
            assert!(*output != Out::Count(UNENCODABLE), "cannot encode");
            output.encode(buf)
        }

        async fn init_state(_config: &Config) -> Result<(), BoxError> {
            Ok(())
        }
    }

    const DEADLINE: Deadline = Deadline {
        after: Duration::from_secs(20),
        setting: "QUICK_METHOD_TIMEOUT_SECS",
    };

    /// A result the project's `encode` panics on.
    const UNENCODABLE: u32 = 13;

    fn app() -> Arc<App> {
        Arc::new(App {
            config: Config::default(),
            key: None,
            methods: Tiny::methods().bind(Arc::new(())),
            grpc_service: Tiny::GRPC_SERVICE,
            file_descriptor_set: Tiny::FILE_DESCRIPTOR_SET,
            store: Arc::new(TaskStore::new(Limits::of(&Config::default()))),
            grpc_uri: "tiny:50051".to_string(),
            draining: CancellationToken::new(),
            shutdown: CancellationToken::new(),
            upstreams: Arc::new(Upstreams::new(
                DescriptorIndex::default(),
                &Config::default(),
            )),
            handlers: tokio::runtime::Handle::current(),
        })
    }

    /// What [`run`] saw.
    struct Ran {
        task_id: String,
        cancel: CancellationToken,
        took: Duration,
        /// What the runner's handle gave: `None` when the runner panicked.
        recorded: Option<Result<(), String>>,
    }

    /// Records a new task of `method` in the store, its result served by
    /// `rpc`, and returns the context its handler gets.
    fn start(app: &Arc<App>, method: &str, rpc: &str) -> TaskContext<()> {
        let key = DedupeKey {
            workflow_id: "wf".to_string(),
            task_id: method.to_string(),
            method: method.to_string(),
        };
        let Start::Started {
            task_id,
            progress,
            cancel,
        } = app.store.start(key, rpc, &app.shutdown)
        else {
            panic!("a fresh key joined a running task");
        };
        TaskContext {
            task_id,
            workflow_id: "wf".to_string(),
            method: method.to_string(),
            inputs: Vec::new(),
            parameters: Map::new(),
            state: Arc::new(()),
            progress,
            cancel,
            max_message_bytes: 1024,
            upstreams: app.upstreams.clone(),
        }
    }

    /// Runs `method` with [`DEADLINE`] until its outcome is recorded.
    async fn run(app: &Arc<App>, method: &str) -> Ran {
        let ctx = start(app, method, method);
        let (task_id, cancel) = (ctx.task_id.clone(), ctx.cancel.clone());
        let name = method;
        let method = app.methods.get(name).expect("a method of Tiny").clone();
        let started = Instant::now();
        // Bounded, should the deadline not be enforced (the clock is paused:
        // no real time passes).
        let runner = spawn(app.clone(), &method, ctx, Some(DEADLINE));
        let recorded = tokio::time::timeout(2 * DEADLINE.after, runner)
            .await
            .unwrap_or_else(|_| panic!("{name} still running after {:?}", 2 * DEADLINE.after))
            .ok();
        Ran {
            task_id,
            cancel,
            took: started.elapsed(),
            recorded,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_quick_handler_that_never_finishes_fails_at_its_deadline() {
        let app = app();
        let Ran {
            task_id,
            cancel,
            took,
            recorded,
        } = run(&app, "Hang").await;
        assert!(
            (DEADLINE.after..DEADLINE.after + Duration::from_secs(1)).contains(&took),
            "failed after {took:?}"
        );
        let view = app.store.view(&task_id).expect("the task is recorded");
        assert_eq!(view.status, TaskStatus::Failed);
        let error = view.error.unwrap_or_default();
        assert_eq!(
            error,
            "Hang did not finish within its 20s deadline (QUICK_METHOD_TIMEOUT_SECS)"
        );
        assert_eq!(recorded, Some(Err(error)), "the outcome recorded");
        assert!(
            cancel.is_cancelled(),
            "the handler's token was not cancelled"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_quick_handler_that_returns_in_time_completes_with_its_result() {
        let app = app();
        let Ran {
            task_id,
            took,
            recorded,
            ..
        } = run(&app, "Count").await;
        assert_eq!(recorded, Some(Ok(())), "the outcome recorded");
        assert!(
            (Duration::from_secs(19)..DEADLINE.after).contains(&took),
            "recorded after {took:?}, not when the handler returned after 19s"
        );
        let status = app.store.status(&task_id).expect("the task is recorded");
        assert_eq!(
            (status.status, status.progress, status.error.as_deref()),
            (TaskStatus::Complete, 100, None)
        );
        let Ok(finished) = app.store.result(Some(&task_id), "Count") else {
            panic!("no Count result for {task_id}");
        };
        let mut expected = Vec::new();
        Out::Count(19).encode(&mut expected);
        assert_eq!(
            &finished.result.field[..],
            &expected[..],
            "the encoded result"
        );
    }

    /// A writer that keeps what is logged, for one test.
    #[derive(Clone, Default)]
    struct Captured(Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            let mut kept = self.0.lock().unwrap_or_else(|p| p.into_inner());
            kept.extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_panic_is_logged_and_the_task_error_only_says_the_handler_panicked() {
        let log = Captured::default();
        let writer = log.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        let _logging = tracing::subscriber::set_default(subscriber);
        let app = app();
        let Ran {
            task_id, recorded, ..
        } = run(&app, "Boom").await;
        assert_eq!(recorded, Some(Err(PANICKED.to_string())));
        let view = app.store.view(&task_id).expect("the task is recorded");
        assert_eq!(
            (view.status, view.error.as_deref()),
            (TaskStatus::Failed, Some(PANICKED))
        );
        let logged = String::from_utf8_lossy(&log.0.lock().expect("the log")).to_string();
        let line = logged
            .lines()
            .find(|line| line.contains("handler panicked"))
            .unwrap_or_else(|| panic!("no panic line in {logged:?}"));
        assert!(
            line.contains("secret=hunter2 in a panic message") && line.contains(&task_id),
            "{line}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_handler_that_ignores_the_shutdown_fails_its_task_when_the_service_cancels() {
        let app = app();
        let ctx = start(&app, "Hang", "Count");
        let (task_id, cancel) = (ctx.task_id.clone(), ctx.cancel.clone());
        let method = app.methods.get("Hang").expect("a method of Tiny").clone();
        // A long method: no deadline, only the shutdown ends it.
        let runner = spawn(app.clone(), &method, ctx, None);
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(app.store.running(), 1);
        app.shutdown.cancel();
        let recorded = tokio::time::timeout(Duration::from_secs(1), runner)
            .await
            .expect("the runner stops at once")
            .expect("the runner did not panic");
        let error = "task was cancelled: the service is shutting down";
        assert_eq!(recorded, Err(error.to_string()));
        let view = app.store.view(&task_id).expect("the task is recorded");
        assert_eq!(
            (view.status, view.error.as_deref()),
            (TaskStatus::Failed, Some(error))
        );
        assert!(cancel.is_cancelled());
        assert_eq!(app.store.running(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_runner_that_panics_fails_its_task_instead_of_leaving_it_running() {
        let app = app();
        let Ran {
            task_id, recorded, ..
        } = run(&app, "BadEncode").await;
        assert_eq!(recorded, None, "the runner itself panicked");
        let view = app.store.view(&task_id).expect("the task is recorded");
        assert_eq!(
            (view.status, view.error.as_deref()),
            (TaskStatus::Failed, Some(RUNNER_LOST))
        );
        let again = DedupeKey {
            workflow_id: "wf".to_string(),
            task_id: "BadEncode".to_string(),
            method: "BadEncode".to_string(),
        };
        let start = app.store.start(again, "Count", &app.shutdown);
        assert!(
            matches!(start, Start::Started { .. }),
            "the dedupe key of the failed task is free again"
        );
    }
}
