//! Accepting connections on either port: at most `MAX_CONNECTIONS` open at
//! once, TCP_NODELAY, an idle timeout, and accept errors (out of file
//! descriptors, say) logged and backed off instead of spun on.
//!
//! Why here and not in the servers: hyper and tonic accept whatever their
//! listener yields, keep every connection for as long as the peer likes,
//! and retry a failing `accept` at once. A flood of idle or half-open
//! connections would then take every file descriptor, and the accept loop
//! a whole core, while /health timed out and nothing said why.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};

/// The first pause after a failed `accept`; it doubles up to [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_millis(10);

/// The longest pause after failed `accept`s.
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// How often, at most, a port logs that it turned connections away.
const FULL_LOG_EVERY: Duration = Duration::from_secs(10);

/// One port's listener and its connection cap.
pub(crate) struct Acceptor {
    listener: TcpListener,
    /// One permit per open connection.
    permits: Arc<Semaphore>,
    max: usize,
    /// `None`: connections may stay idle (HTTP/1, whose idle keep-alive
    /// connections hyper's header timeout closes).
    idle: Option<Duration>,
    /// "control" or "data", for log lines.
    port: &'static str,
    backoff: Duration,
    /// Connections turned away since the last log line about it, and when
    /// that line was written.
    refused: u64,
    refused_logged: Option<Instant>,
}

/// What [`Acceptor::accept`] got.
pub(crate) enum Accepted {
    /// A connection within the cap.
    Open(Conn),
    /// A connection beyond the cap: answer it briefly (or not) and drop it.
    OverCap(TcpStream),
}

impl Acceptor {
    /// Accepts on `listener`, which must belong to the runtime that calls
    /// [`accept`](Self::accept).
    pub(crate) fn new(
        listener: TcpListener,
        max: usize,
        idle: Option<Duration>,
        port: &'static str,
    ) -> Acceptor {
        Acceptor {
            listener,
            permits: Arc::new(Semaphore::new(max)),
            max,
            idle,
            port,
            backoff: MIN_BACKOFF,
            refused: 0,
            refused_logged: None,
        }
    }

    /// The next connection. Errors of one connection (reset before it was
    /// accepted) are skipped; errors of the listener itself (no file
    /// descriptors left) are logged and retried after a pause that doubles
    /// while they last, so that they cost neither a core nor a log flood.
    pub(crate) async fn accept(&mut self) -> Accepted {
        loop {
            match self.listener.accept().await {
                Ok((stream, _)) => {
                    self.backoff = MIN_BACKOFF;
                    if let Err(err) = stream.set_nodelay(true) {
                        tracing::debug!(port = self.port, "could not set TCP_NODELAY: {err}");
                    }
                    return match self.permits.clone().try_acquire_owned() {
                        Ok(permit) => Accepted::Open(Conn::new(stream, permit, self.idle)),
                        Err(_) => {
                            self.note_refused();
                            Accepted::OverCap(stream)
                        }
                    };
                }
                Err(err) if is_per_connection(&err) => continue,
                Err(err) => {
                    tracing::warn!(
                        port = self.port,
                        error = %err,
                        pause = ?self.backoff,
                        "accepting connections failed (out of file descriptors?); pausing"
                    );
                    tokio::time::sleep(self.backoff).await;
                    self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }

    /// Waits until every connection this acceptor let in has closed.
    pub(crate) async fn closed(&self) {
        let all = u32::try_from(self.max).unwrap_or(u32::MAX);
        let _ = self.permits.acquire_many(all).await;
    }

    fn note_refused(&mut self) {
        self.refused += 1;
        let due = self
            .refused_logged
            .is_none_or(|at| at.elapsed() >= FULL_LOG_EVERY);
        if due {
            tracing::warn!(
                port = self.port,
                open = self.max,
                refused = self.refused,
                "connection limit reached (MAX_CONNECTIONS): turning new connections away"
            );
            self.refused = 0;
            self.refused_logged = Some(Instant::now());
        }
    }
}

/// Errors that concern the one connection being accepted, not the listener.
fn is_per_connection(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionRefused
            | io::ErrorKind::Interrupted
    )
}

/// An accepted connection: holds its place under the cap until dropped,
/// and fails a read once nothing has been received for the idle timeout.
pub(crate) struct Conn {
    stream: TcpStream,
    _permit: OwnedSemaphorePermit,
    idle: Option<Idle>,
}

/// The idle timer of a [`Conn`]. The timer is not reset on every read (a
/// timer-wheel operation per read); when it fires, it is moved to the last
/// read plus the timeout, and fires for real only if nothing came since.
struct Idle {
    after: Duration,
    last_read: Instant,
    timer: Pin<Box<Sleep>>,
}

impl Conn {
    fn new(stream: TcpStream, permit: OwnedSemaphorePermit, idle: Option<Duration>) -> Conn {
        let idle = idle.map(|after| Idle {
            after,
            last_read: Instant::now(),
            timer: Box::pin(tokio::time::sleep(after)),
        });
        Conn {
            stream,
            _permit: permit,
            idle,
        }
    }

    /// The peer's address, when the socket still knows it.
    pub(crate) fn peer_addr(&self) -> Option<SocketAddr> {
        self.stream.peer_addr().ok()
    }
}

impl Idle {
    /// Whether the connection has been idle for the whole timeout.
    fn expired(&mut self, cx: &mut Context<'_>) -> bool {
        loop {
            if self.timer.as_mut().poll(cx).is_pending() {
                return false;
            }
            let due = self.last_read + self.after;
            if due <= Instant::now() {
                return true;
            }
            self.timer.as_mut().reset(due);
        }
    }
}

impl AsyncRead for Conn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let before = buf.filled().len();
        match Pin::new(&mut this.stream).poll_read(cx, buf) {
            Poll::Ready(result) => {
                if let Some(idle) = &mut this.idle {
                    if buf.filled().len() > before {
                        idle.last_read = Instant::now();
                    }
                }
                Poll::Ready(result)
            }
            Poll::Pending => {
                if this.idle.as_mut().is_some_and(|idle| idle.expired(cx)) {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "connection idle for longer than IDLE_CONNECTION_TIMEOUT_SECS",
                    )));
                }
                Poll::Pending
            }
        }
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// The timer of one HTTP/1 connection, for hyper's deadline on each
/// request's headers (`REQUEST_HEADER_TIMEOUT_SECS`).
///
/// hyper asks for a new sleep for every request and drops it once the
/// headers are in: with tokio's own sleeps, that is a timer-wheel insert
/// and removal per request. Here the connection keeps one tokio sleep,
/// armed lazily: a request's sleep that finds it armed for an earlier
/// deadline leaves it be, and when it fires for a deadline that is no
/// longer anyone's, it is moved to the current request's (as [`Idle`]
/// does for reads). A header deadline still ends where tokio would end it:
/// when a sleep until that deadline completes.
#[derive(Default)]
pub(crate) struct HeaderTimer {
    armed: Arc<Mutex<Option<Armed>>>,
}

/// The connection's tokio sleep and the deadline it is set to.
struct Armed {
    sleep: Pin<Box<Sleep>>,
    until: Instant,
}

/// A sleep of [`HeaderTimer`]: until `deadline`, on the connection's timer.
struct HeaderSleep {
    deadline: Instant,
    armed: Arc<Mutex<Option<Armed>>>,
}

impl hyper::rt::Timer for HeaderTimer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn hyper::rt::Sleep>> {
        self.sleep_until((Instant::now() + duration).into_std())
    }

    fn sleep_until(&self, deadline: std::time::Instant) -> Pin<Box<dyn hyper::rt::Sleep>> {
        Box::pin(HeaderSleep {
            deadline: Instant::from_std(deadline),
            armed: self.armed.clone(),
        })
    }

    fn reset(&self, sleep: &mut Pin<Box<dyn hyper::rt::Sleep>>, new_deadline: std::time::Instant) {
        match sleep.as_mut().downcast_mut_pin::<HeaderSleep>() {
            Some(mut sleep) => sleep.deadline = Instant::from_std(new_deadline),
            None => *sleep = self.sleep_until(new_deadline),
        }
    }

    fn now(&self) -> std::time::Instant {
        Instant::now().into_std()
    }
}

impl hyper::rt::Sleep for HeaderSleep {}

impl Future for HeaderSleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let deadline = self.deadline;
        let mut armed = self
            .armed
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let armed = armed.get_or_insert_with(|| Armed {
            sleep: Box::pin(tokio::time::sleep_until(deadline)),
            until: deadline,
        });
        // Armed later than this deadline (only a reset to an earlier one
        // does that): arm it earlier.
        if armed.until > deadline {
            armed.sleep.as_mut().reset(deadline);
            armed.until = deadline;
        }
        loop {
            if armed.sleep.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            if armed.until == deadline {
                return Poll::Ready(());
            }
            // It fired for an earlier request's deadline: on to this one.
            armed.sleep.as_mut().reset(deadline);
            armed.until = deadline;
        }
    }
}

impl tonic::transport::server::Connected for Conn {
    type ConnectInfo = tonic::transport::server::TcpConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.stream.connect_info()
    }
}
