//! Stopping: the signals that start a shutdown, how long it may take, and
//! the last resort that ends the process when blocking work would hold it.
//!
//! A service stops in one way whatever the cause (SIGINT, SIGTERM, a server
//! failing, or [`RunningService::shutdown`](crate::RunningService::shutdown)
//! from a test), in this order:
//!
//! 1. gRPC health answers `NOT_SERVING`, for the overall status (`""`) and
//!    for the project's service, and execute answers 503 `shutting down`
//!    (status, output, health and the data rpcs keep answering);
//! 2. running tasks get the grace period (`SHUTDOWN_GRACE_SECS`, default
//!    [`SHUTDOWN_GRACE`]) to finish;
//! 3. then the service's [`CancellationToken`] is cancelled: every running
//!    task's child token fires and the task fails with
//!    "task was cancelled: the service is shutting down";
//! 4. both servers stop together, closing what is still open once the
//!    grace period plus [`STOP_MARGIN`] has passed since the start.
//!
//! A handler that ignores its token cannot hold the shutdown: its task is
//! failed and forgotten. A blocking job (`spawn_blocking`) that ignores it
//! would still hold the process, since dropping a tokio runtime waits for
//! its blocking threads; [`RunningService::run_until_signal`](crate::RunningService::run_until_signal)
//! therefore ends the process itself ([`EXIT_MARGIN`]) when the `main` it
//! returned to has not. A second SIGINT or SIGTERM during the shutdown ends
//! the process at once, with 130 (SIGINT) or 143 (SIGTERM).

use std::time::Duration;

#[cfg(doc)]
use tokio_util::sync::CancellationToken;

/// The default grace period (`SHUTDOWN_GRACE_SECS`): how long a shutdown
/// lets running tasks finish before cancelling them.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// How long after the grace period the servers may take to close their
/// connections before they are dropped: a shutdown returns within the
/// grace period plus this.
pub(crate) const STOP_MARGIN: Duration = Duration::from_secs(1);

/// How long the process may take to exit once `run_until_signal` has
/// returned, before it is ended with `std::process::exit`: long enough for
/// `main` to log and return, short of what an orchestrator waits before
/// SIGKILL.
pub(crate) const EXIT_MARGIN: Duration = Duration::from_secs(1);

/// How often the drain looks whether every task has finished.
pub(crate) const DRAIN_POLL: Duration = Duration::from_millis(20);

/// The signal that was received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Signal {
    /// SIGINT (Ctrl-C).
    Interrupt,
    /// SIGTERM (`docker stop`, Kubernetes).
    Terminate,
}

impl Signal {
    /// The exit code of a process ended by a second signal: 128 plus the
    /// signal's number, as a shell reports a process killed by it.
    pub(crate) fn exit_code(self) -> i32 {
        match self {
            Signal::Interrupt => 130,
            Signal::Terminate => 143,
        }
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Signal::Interrupt => "SIGINT",
            Signal::Terminate => "SIGTERM",
        }
    }
}

/// SIGINT and SIGTERM, listened to from start to exit: once listened to,
/// a signal no longer ends the process by itself, so the same listeners
/// see the first signal (start a shutdown) and the second (exit at once).
pub(crate) struct Signals {
    #[cfg(unix)]
    interrupt: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    terminate: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    /// Starts listening. A signal that cannot be listened to is never
    /// received (and keeps its default action).
    pub(crate) fn new() -> Signals {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            Signals {
                interrupt: signal(SignalKind::interrupt()).ok(),
                terminate: signal(SignalKind::terminate()).ok(),
            }
        }
        #[cfg(not(unix))]
        Signals {}
    }

    /// Completes on the next SIGINT or SIGTERM.
    pub(crate) async fn recv(&mut self) -> Signal {
        #[cfg(unix)]
        {
            async fn next(signal: &mut Option<tokio::signal::unix::Signal>) {
                match signal {
                    Some(signal) => {
                        if signal.recv().await.is_none() {
                            std::future::pending::<()>().await;
                        }
                    }
                    None => std::future::pending::<()>().await,
                }
            }
            tokio::select! {
                () = next(&mut self.interrupt) => Signal::Interrupt,
                () = next(&mut self.terminate) => Signal::Terminate,
            }
        }
        #[cfg(not(unix))]
        {
            if tokio::signal::ctrl_c().await.is_err() {
                std::future::pending::<()>().await;
            }
            Signal::Interrupt
        }
    }
}

/// Ends the process with `code` unless it has exited by itself within
/// [`EXIT_MARGIN`]: armed as `run_until_signal` returns, so that a blocking
/// thread still running (which the runtime's drop would wait for) cannot
/// hold the process after the shutdown.
pub(crate) fn arm_exit_watchdog(code: i32) {
    let spawned = std::thread::Builder::new()
        .name("svcgen-exit-watchdog".to_string())
        .spawn(move || {
            std::thread::sleep(EXIT_MARGIN);
            tracing::warn!(
                "the process did not exit within {EXIT_MARGIN:?} of the shutdown \
                 (a blocking task ignores its cancellation); ending it now"
            );
            std::process::exit(code);
        });
    if let Err(err) = spawned {
        tracing::warn!("could not start the exit watchdog: {err}");
    }
}
