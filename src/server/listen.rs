//! The accept loop: HTTP/1.1 connections served by hyper with connection hygiene that
//! `axum::serve` does not offer.
//!
//! - At most `--max-connections` connections at once; past it a new connection gets a short
//!   `503` (`Connection: close`) and is closed, while the open ones go on.
//! - `--header-timeout`: a connection must deliver a request's headers within this long of its
//!   first byte (or of being opened), else it is closed (half-open and slowloris connections).
//! - `--idle-timeout`: a keep-alive connection with no new request for this long is closed; so
//!   is one whose client stops reading a response (no byte accepted for this long).
//!
//! A request's body and its response are not timed: multi-GB uploads and downloads that keep
//! moving are never cut. Each request gets `ConnectInfo<SocketAddr>`; sockets get `TCP_NODELAY`.
//! On shutdown the listener closes, idle connections close, and open requests are finished.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::Request;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tokio::time::{Instant, Sleep};
use tower::ServiceExt;

/// Connection limits (from `ServeConfig`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// Connections served at once.
    pub max_connections: usize,
    /// Time to deliver a request's headers.
    pub header_timeout: Duration,
    /// Time a keep-alive connection may wait for its next request, or a response for its reader.
    pub idle_timeout: Duration,
}

/// Connections open now.
static OPEN: AtomicU64 = AtomicU64::new(0);
/// Connections refused with a 503 (or dropped) because the limit was reached.
static REFUSED: AtomicU64 = AtomicU64::new(0);
/// Connections closed by the header or idle timeout.
static TIMED_OUT: AtomicU64 = AtomicU64::new(0);

/// Prometheus lines for the connection counters.
pub(crate) fn render_metrics() -> String {
    format!(
        "# HELP frameserver_connections_open Client connections open.\n# TYPE frameserver_connections_open gauge\nframeserver_connections_open {}\n\
         # HELP frameserver_connections_refused_total Connections refused with a 503 because --max-connections were open.\n# TYPE frameserver_connections_refused_total counter\nframeserver_connections_refused_total {}\n\
         # HELP frameserver_connections_timed_out_total Connections closed by --header-timeout or --idle-timeout.\n# TYPE frameserver_connections_timed_out_total counter\nframeserver_connections_timed_out_total {}\n",
        OPEN.load(Ordering::Relaxed),
        REFUSED.load(Ordering::Relaxed),
        TIMED_OUT.load(Ordering::Relaxed),
    )
}

/// 503 answers being written at once; past it a refused connection is closed without one.
const MAX_REFUSING: usize = 64;
/// How long a refused connection is given to read its 503.
const REFUSE_LINGER: Duration = Duration::from_secs(1);

/// Serves `app` on `listener` until `shutdown` resolves, then waits for open requests to end.
pub(crate) async fn serve<S>(
    listener: TcpListener,
    app: S,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()>
where
    S: tower::Service<Request<Body>, Response = axum::response::Response, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    // (`acquire_many` below counts in u32.)
    let max = limits
        .max_connections
        .clamp(1, Semaphore::MAX_PERMITS.min(u32::MAX as usize));
    let slots = Arc::new(Semaphore::new(max));
    let refusing = Arc::new(Semaphore::new(MAX_REFUSING));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut shutdown = std::pin::pin!(shutdown);
    let mut accept_errors = 0u64;
    loop {
        let (stream, peer) = tokio::select! {
            _ = &mut shutdown => break,
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    // Out of file descriptors (or a connection reset before accept): back off
                    // briefly instead of spinning.
                    accept_errors += 1;
                    if accept_errors.is_power_of_two() {
                        tracing::warn!("accept failed ({accept_errors} times so far): {e}");
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            REFUSED.fetch_add(1, Ordering::Relaxed);
            if let Ok(permit) = Arc::clone(&refusing).try_acquire_owned() {
                tokio::spawn(async move {
                    refuse(stream, max).await;
                    drop(permit);
                });
            }
            continue;
        };
        let app = app.clone();
        let mut stop = stop_rx.clone();
        tokio::spawn(async move {
            OPEN.fetch_add(1, Ordering::Relaxed);
            let activity = Arc::new(Activity::default());
            let io = TokioIo::new(TimedIo::new(stream, Arc::clone(&activity), limits));
            let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                let mut req = req.map(Body::new);
                req.extensions_mut().insert(ConnectInfo(peer));
                activity.request_started();
                let activity = Arc::clone(&activity);
                let call = app.clone().oneshot(req);
                async move {
                    let response = call.await?;
                    Ok::<_, Infallible>(
                        response.map(|b| Body::new(WatchedBody { inner: b, activity })),
                    )
                }
            });
            let mut builder = hyper::server::conn::http1::Builder::new();
            // The header timeout is done by `TimedIo` (hyper's would also cut idle keep-alive
            // connections at the header timeout).
            builder.header_read_timeout(None).keep_alive(true);
            let conn = builder.serve_connection(io, service);
            let mut conn = std::pin::pin!(conn);
            let mut stopping = false;
            loop {
                tokio::select! {
                    r = conn.as_mut() => {
                        if let Err(e) = r {
                            tracing::debug!(%peer, "connection ended: {e}");
                        }
                        break;
                    }
                    _ = stop.wait_for(|s| *s), if !stopping => {
                        stopping = true;
                        conn.as_mut().graceful_shutdown();
                    }
                }
            }
            OPEN.fetch_sub(1, Ordering::Relaxed);
            drop(slot);
        });
    }
    drop(listener);
    let _ = stop_tx.send(true);
    // Every connection holds a slot: having them all back means every connection has ended.
    let _ = slots.acquire_many(max as u32).await;
    Ok(())
}

/// Answers a connection past the limit with a 503, then closes it once the client has read it
/// (or after [`REFUSE_LINGER`]): closing at once with its request unread would reset the
/// connection and could destroy the answer before the client reads it.
async fn refuse(mut stream: TcpStream, max: usize) {
    let reason = format!(
        "Service Unavailable: the server's limit of {max} open connections is reached; try again shortly.\n"
    );
    let response = format!(
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nRetry-After: 1\r\nConnection: close\r\n\r\n{reason}",
        reason.len()
    );
    let _ = tokio::time::timeout(REFUSE_LINGER, async {
        stream.write_all(response.as_bytes()).await?;
        stream.shutdown().await?;
        let mut sink = [0u8; 4096];
        while stream.read(&mut sink).await? > 0 {}
        io::Result::Ok(())
    })
    .await;
}

/// What a connection is doing, shared by its IO (which enforces the timeouts) and its service
/// (which knows where requests begin and end).
#[derive(Default)]
struct Activity(Mutex<Phase>);

#[derive(Default)]
struct Phase {
    /// A request is being handled or its response sent: no header or idle timeout.
    busy: bool,
    /// Requests answered on this connection.
    answered: u64,
    /// When the connection went idle (opened, or its last response ended).
    idle_since: Option<Instant>,
    /// When the first byte of the next request arrived.
    head_started: Option<Instant>,
    /// The connection's task, to wake when the deadline changes.
    waker: Option<Waker>,
}

impl Activity {
    fn phase(&self) -> std::sync::MutexGuard<'_, Phase> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn request_started(&self) {
        let mut p = self.phase();
        p.busy = true;
        p.head_started = None;
    }

    fn response_ended(&self) {
        let mut p = self.phase();
        p.busy = false;
        p.answered += 1;
        p.idle_since = Some(Instant::now());
        if let Some(w) = p.waker.take() {
            w.wake();
        }
    }

    fn bytes_read(&self) {
        let mut p = self.phase();
        if !p.busy && p.head_started.is_none() {
            p.head_started = Some(Instant::now());
        }
    }

    /// When a read waiting now must give up, if ever; remembers `waker`.
    fn read_deadline(&self, limits: &Limits, opened: Instant, waker: &Waker) -> Option<Instant> {
        let mut p = self.phase();
        // Kept while busy too: the read pending now is the one to wake when the response ends.
        if !p.waker.as_ref().is_some_and(|w| w.will_wake(waker)) {
            p.waker = Some(waker.clone());
        }
        if p.busy {
            return None;
        }
        Some(match (p.head_started, p.answered) {
            (Some(t), _) => t + limits.header_timeout,
            (None, 0) => opened + limits.header_timeout,
            (None, _) => p.idle_since.unwrap_or(opened) + limits.idle_timeout,
        })
    }
}

/// A response body that tells the connection when the response has ended (sent or dropped).
struct WatchedBody {
    inner: Body,
    activity: Arc<Activity>,
}

impl http_body::Body for WatchedBody {
    type Data = bytes::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for WatchedBody {
    fn drop(&mut self) {
        self.activity.response_ended();
    }
}

/// A TCP stream that fails reads past the header or idle deadline and writes that make no
/// progress for the idle timeout.
struct TimedIo {
    inner: TcpStream,
    activity: Arc<Activity>,
    limits: Limits,
    opened: Instant,
    read_timer: Pin<Box<Sleep>>,
    write_timer: Pin<Box<Sleep>>,
    /// Since when writes have been refused by a full socket buffer.
    write_stalled: Option<Instant>,
}

impl TimedIo {
    fn new(inner: TcpStream, activity: Arc<Activity>, limits: Limits) -> Self {
        let now = Instant::now();
        TimedIo {
            inner,
            activity,
            limits,
            opened: now,
            read_timer: Box::pin(tokio::time::sleep_until(now + limits.header_timeout)),
            write_timer: Box::pin(tokio::time::sleep_until(now + limits.idle_timeout)),
            write_stalled: None,
        }
    }

    fn timed_out(what: &str) -> io::Error {
        TIMED_OUT.fetch_add(1, Ordering::Relaxed);
        io::Error::new(io::ErrorKind::TimedOut, what.to_owned())
    }

    fn poll_write_progress(
        &mut self,
        cx: &mut Context<'_>,
        r: Poll<io::Result<usize>>,
    ) -> Poll<io::Result<usize>> {
        match r {
            Poll::Pending => {
                let since = *self.write_stalled.get_or_insert_with(Instant::now);
                let deadline = since + self.limits.idle_timeout;
                if self.write_timer.deadline() != deadline {
                    self.write_timer.as_mut().reset(deadline);
                }
                if self.write_timer.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(Err(Self::timed_out(
                        "the client stopped reading the response",
                    )));
                }
                Poll::Pending
            }
            done => {
                self.write_stalled = None;
                done
            }
        }
    }
}

impl AsyncRead for TimedIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    this.activity.bytes_read();
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => {
                let Some(deadline) =
                    this.activity
                        .read_deadline(&this.limits, this.opened, cx.waker())
                else {
                    return Poll::Pending;
                };
                if this.read_timer.deadline() != deadline {
                    this.read_timer.as_mut().reset(deadline);
                }
                if this.read_timer.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(Err(Self::timed_out(
                        "no complete request headers in time, or idle too long",
                    )));
                }
                Poll::Pending
            }
        }
    }
}

impl AsyncWrite for TimedIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.poll_write_progress(cx, r)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.poll_write_progress(cx, r)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Warns when the open-file limit is below `--max-connections` (the limit could not be
/// reached: accepts would fail first). Linux only; silent elsewhere.
pub(crate) fn check_fd_limit(max_connections: usize) {
    let Ok(limits) = std::fs::read_to_string("/proc/self/limits") else {
        return;
    };
    let soft = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|v| v.parse::<usize>().ok());
    if let Some(soft) = soft {
        // The database, logs, media files and exports need descriptors too.
        if soft < max_connections.saturating_add(256) {
            tracing::warn!(
                "the open-file limit ({soft}) is too low for --max-connections {max_connections}: raise it (ulimit -n) or lower --max-connections"
            );
        }
    }
}
