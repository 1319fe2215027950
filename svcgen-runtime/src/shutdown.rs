//! Stopping: the signal that starts a shutdown, and how long it may take.
//!
//! A service stops in one way whatever the cause (SIGINT, SIGTERM, a server
//! failing, or [`RunningService::shutdown`](crate::RunningService::shutdown)
//! from a test): one [`CancellationToken`] is cancelled, both servers stop
//! accepting, every running task's child token fires, and open requests get
//! [`SHUTDOWN_GRACE`] to finish.

use std::time::Duration;

#[cfg(doc)]
use tokio_util::sync::CancellationToken;

/// How long shutdown waits for open requests and streams.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Completes on SIGINT (Ctrl-C) or, on Unix, SIGTERM (what `docker stop`
/// and Kubernetes send).
pub(crate) async fn signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}
