//! impostor: a milter that detects brand impersonation.
//!
//! The daemon is a thin shell ([`milter`]) around pure analysis
//! ([`analysis::analyze`]); the `check` and `scan` CLIs call the same function.

pub mod action;
pub mod analysis;
pub mod banner;
pub mod batch;
pub mod brand;
pub mod cli;
pub mod config;
pub mod dns;
pub mod logging;
pub mod metrics;
pub mod milter;
pub mod privdrop;
pub mod quarantine;
pub mod verdict;

use analysis::Engine;
use config::{Config, SocketSpec};
use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};
use verdict::{Action, Verdict};

/// State shared by all connections of one daemon.
#[derive(Debug)]
pub struct Shared {
    engine: RwLock<Arc<Engine>>,
    /// Messages between MAIL FROM and end of message.
    pub in_flight: Arc<AtomicUsize>,
    /// Messages per action (index = position in [`Action::ALL`]); fail-mode verdicts counted apart.
    pub by_action: [AtomicU64; 5],
    pub fail_mode_verdicts: AtomicU64,
    pub metrics: Arc<metrics::Metrics>,
}

impl Shared {
    pub fn new(engine: Arc<Engine>) -> Arc<Shared> {
        Arc::new(Shared {
            engine: RwLock::new(engine),
            in_flight: Arc::new(AtomicUsize::new(0)),
            by_action: Default::default(),
            fail_mode_verdicts: AtomicU64::new(0),
            metrics: Arc::new(metrics::Metrics::new()),
        })
    }

    /// The current engine (config + precomputed matchers).
    pub fn engine(&self) -> Arc<Engine> {
        self.engine.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Replaces the engine (reload). Socket settings need a restart.
    pub fn replace(&self, engine: Arc<Engine>) {
        *self.engine.write().unwrap_or_else(|e| e.into_inner()) = engine;
    }

    /// Counts a verdict in the shutdown summary and the metrics.
    pub fn count(&self, v: &Verdict, elapsed: Duration) {
        if v.error.is_some() {
            self.fail_mode_verdicts.fetch_add(1, Ordering::Relaxed);
            self.metrics.fail_mode.inc();
        }
        let action = v.effective_action();
        let i = Action::ALL.iter().position(|a| *a == action).unwrap_or(0);
        self.by_action[i].fetch_add(1, Ordering::Relaxed);
        self.metrics.messages.get_or_create(&metrics::ActionLabel { action: action.as_str().into() }).inc();
        for r in &v.rules {
            self.metrics.findings.get_or_create(&metrics::RuleLabel { rule: r.id.into() }).inc();
        }
        self.metrics.analysis_seconds.observe(elapsed.as_secs_f64());
    }
}

/// A bound milter socket. Accepted TCP connections get TCP_NODELAY; the
/// listening socket can be closed for draining while sessions go on.
#[derive(Debug, Clone)]
pub struct MilterListener {
    inner: Arc<Mutex<Option<Inner>>>,
    unix_path: Option<PathBuf>,
    active: Arc<AtomicUsize>,
    max_connections: Arc<AtomicUsize>,
    refused: Arc<AtomicU64>,
    accept_errors: Arc<AtomicU64>,
    backoff: Backoff,
}

/// How long accepting pauses after accept() failed for want of file descriptors or memory:
/// long enough not to spin, short enough that the MTA barely notices.
pub(crate) const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Failed or refused connections handled at once within one poll before the task yields to others.
const ACCEPT_RETRIES: usize = 64;

/// The pause after a resource error. Each clone has its own (only the one indymilter polls ever sleeps).
#[derive(Debug, Default)]
struct Backoff(Option<std::pin::Pin<Box<tokio::time::Sleep>>>);

impl Clone for Backoff {
    fn clone(&self) -> Backoff {
        Backoff(None)
    }
}

/// What to do about a failed accept().
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AcceptError {
    /// The one pending connection failed (aborted, reset, a network error
    /// Linux passes on from it, a signal): accept the next one at once.
    Retry,
    /// The process or system is out of file descriptors, socket buffers or memory:
    /// pause [`ACCEPT_BACKOFF`], then accept again (connections wait in the backlog).
    Backoff,
    /// The listening socket itself is broken.
    Fatal,
}

impl AcceptError {
    pub(crate) fn of(e: &io::Error) -> AcceptError {
        match e.raw_os_error() {
            Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM) => AcceptError::Backoff,
            // accept(2): "Linux accept() passes already-pending network errors on the new socket as an error code";
            // EPERM: a firewall rule forbade the connection
            Some(
                libc::ECONNABORTED
                | libc::ECONNRESET
                | libc::EINTR
                | libc::EPROTO
                | libc::EPERM
                | libc::ETIMEDOUT
                | libc::ENETDOWN
                | libc::ENETUNREACH
                | libc::EHOSTDOWN
                | libc::EHOSTUNREACH
                | libc::ENONET
                | libc::ENOPROTOOPT
                | libc::EOPNOTSUPP,
            ) => AcceptError::Retry,
            _ => match e.kind() {
                io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset | io::ErrorKind::Interrupted => AcceptError::Retry,
                _ => AcceptError::Fatal,
            },
        }
    }
}

#[derive(Debug)]
enum Inner {
    Tcp(TcpListener),
    Unix(UnixListener),
}

impl MilterListener {
    fn new(inner: Inner, unix_path: Option<PathBuf>) -> MilterListener {
        MilterListener {
            inner: Arc::new(Mutex::new(Some(inner))),
            unix_path,
            active: Arc::new(AtomicUsize::new(0)),
            max_connections: Arc::new(AtomicUsize::new(usize::MAX)),
            refused: Arc::new(AtomicU64::new(0)),
            accept_errors: Arc::new(AtomicU64::new(0)),
            backoff: Backoff::default(),
        }
    }

    /// The listening socket, also after a panic elsewhere poisoned the lock (the socket itself is fine).
    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Inner>> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Binds `spec`. A stale unix socket file is removed first; the new one gets `mode` and `group`.
    pub async fn bind(spec: &SocketSpec, mode: u32, group: &str) -> io::Result<MilterListener> {
        match spec {
            SocketSpec::Inet(addr) => {
                let l = TcpListener::bind(addr).await?;
                Ok(MilterListener::new(Inner::Tcp(l), None))
            }
            SocketSpec::Unix(path) => {
                remove_stale_socket(path)?;
                let l = UnixListener::bind(path)?;
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
                if !group.is_empty() {
                    chgrp(path, group)?;
                }
                Ok(MilterListener::new(Inner::Unix(l), Some(path.clone())))
            }
        }
    }

    /// The bound TCP address (tests bind port 0).
    pub fn local_addr(&self) -> Option<std::net::SocketAddr> {
        match self.lock().as_ref()? {
            Inner::Tcp(l) => l.local_addr().ok(),
            Inner::Unix(_) => None,
        }
    }

    /// Stops accepting: closes the listening socket (and removes a unix socket file).
    pub fn close(&self) {
        *self.lock() = None;
        if let Some(p) = &self.unix_path {
            let _ = std::fs::remove_file(p);
        }
    }
}

fn remove_stale_socket(path: &Path) -> io::Result<()> {
    use std::os::unix::fs::FileTypeExt;
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_socket() => {
            if std::os::unix::net::UnixStream::connect(path).is_ok() {
                return Err(io::Error::new(io::ErrorKind::AddrInUse, format!("{}: another process is listening", path.display())));
            }
            std::fs::remove_file(path)
        }
        Ok(_) => Err(io::Error::new(io::ErrorKind::AlreadyExists, format!("{}: exists and is not a socket", path.display()))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

fn chgrp(path: &Path, group: &str) -> io::Result<()> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let g = CString::new(group).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "group name"))?;
    // SAFETY: getgrnam returns a pointer into static storage or null; we read gr_gid immediately.
    let gid = unsafe {
        let gr = libc::getgrnam(g.as_ptr());
        if gr.is_null() {
            return Err(io::Error::new(io::ErrorKind::NotFound, format!("milter.socket_group: no group {group:?}")));
        }
        (*gr).gr_gid
    };
    let p = CString::new(path.as_os_str().as_bytes()).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path"))?;
    // SAFETY: valid NUL-terminated path; uid -1 leaves the owner unchanged.
    if unsafe { libc::chown(p.as_ptr(), u32::MAX, gid) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// An accepted milter connection holding one of `milter.max_connections` slots.
///
/// On TCP it re-arms TCP_QUICKACK after every read: TCP_NODELAY stops our
/// small replies from waiting for an ACK, but when Postfix writes several
/// commands back to back (stages it need not wait for) Linux's delayed ACK on
/// *our* side holds its next segment ~40 ms. Quick-ack mode is cleared by the
/// kernel after a while, so it is set again after each read.
#[derive(Debug)]
pub struct MilterConn<S> {
    stream: S,
    tcp: bool,
    /// Modification actions held back until the final reply (see [`batch`]).
    batch: batch::ActionBatch,
    _slot: ConnSlot,
}

/// The two kinds of milter connection.
pub type MilterTcp = MilterConn<TcpStream>;
pub type MilterUnix = MilterConn<UnixStream>;

/// One of `milter.max_connections` connection slots, released on drop.
#[derive(Debug)]
pub struct ConnSlot(Arc<AtomicUsize>);

impl Drop for ConnSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl<S: std::os::fd::AsRawFd> MilterConn<S> {
    fn quickack(&self) {
        if !self.tcp {
            return;
        }
        let one: libc::c_int = 1;
        // SAFETY: valid socket fd owned by self.stream; option value is a c_int of the right size.
        unsafe {
            libc::setsockopt(
                self.stream.as_raw_fd(),
                libc::IPPROTO_TCP,
                libc::TCP_QUICKACK,
                (&one as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            );
        }
    }
}

impl<S: tokio::io::AsyncRead + std::os::fd::AsRawFd + Unpin> tokio::io::AsyncRead for MilterConn<S> {
    fn poll_read(self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut tokio::io::ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let r = std::pin::Pin::new(&mut this.stream).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) {
            this.quickack();
        }
        r
    }
}

impl<S: tokio::io::AsyncWrite + Unpin> MilterConn<S> {
    /// Writes what the batch holds to the socket.
    fn poll_send(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !self.batch.is_empty() {
            match std::pin::Pin::new(&mut self.stream).poll_write(cx, self.batch.unsent()) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(n)) => self.batch.advance(n),
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
        Poll::Ready(Ok(()))
    }
}

/// Writes go to the [`batch::ActionBatch`]; a flush sends them unless they are
/// only modification actions, which wait for the reply that follows.
impl<S: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for MilterConn<S> {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        // a large batch is written out before more is taken
        if this.batch.must_send() {
            match this.poll_send(cx) {
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(())) => {}
            }
        }
        this.batch.push(buf);
        Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.batch.must_send() {
            // only modification actions so far: they go out with the reply that follows
            return Poll::Ready(Ok(()));
        }
        match this.poll_send(cx) {
            Poll::Ready(Ok(())) => std::pin::Pin::new(&mut this.stream).poll_flush(cx),
            other => other,
        }
    }
    fn poll_shutdown(self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match this.poll_send(cx) {
            Poll::Ready(Ok(())) => std::pin::Pin::new(&mut this.stream).poll_shutdown(cx),
            other => other,
        }
    }
}

impl MilterListener {
    /// Takes a connection slot, or None when `max_connections` are open.
    fn slot(&self) -> Option<ConnSlot> {
        let n = self.active.fetch_add(1, Ordering::SeqCst);
        if n >= self.max_connections.load(Ordering::Relaxed) {
            self.active.fetch_sub(1, Ordering::SeqCst);
            None
        } else {
            Some(ConnSlot(self.active.clone()))
        }
    }

    /// Open milter connections.
    pub fn active(&self) -> usize {
        self.active.load(Ordering::SeqCst)
    }

    pub fn set_max_connections(&self, n: usize) {
        self.max_connections.store(n, Ordering::Relaxed);
    }

    /// Logs a failed accept(), at most one warning per 100 (a descriptor shortage fails every attempt until it ends).
    fn accept_failed(&self, e: &io::Error, what: AcceptError) {
        if what == AcceptError::Retry {
            tracing::debug!("accept: the pending connection failed, next: {e}");
            return;
        }
        let n = self.accept_errors.fetch_add(1, Ordering::Relaxed);
        if n % 100 == 0 {
            tracing::warn!(
                errors_so_far = n + 1,
                open_connections = self.active(),
                backoff_ms = ACCEPT_BACKOFF.as_millis() as u64,
                "cannot accept MTA connections: {e}; pausing, then accepting again (they wait in the listen backlog; raise LimitNOFILE?)"
            );
        }
    }

    fn refuse(&self) {
        let n = self.refused.fetch_add(1, Ordering::Relaxed);
        // one warning per 100 refusals is enough in a flood
        if n % 100 == 0 {
            tracing::warn!(
                max_connections = self.max_connections.load(Ordering::Relaxed),
                refused_so_far = n + 1,
                "connection limit reached: closing new MTA connection (the MTA applies milter_default_action, e.g. 451 4.7.1)"
            );
        }
    }
}

impl MilterListener {
    /// One accept() on the listening socket, with the connection limit applied:
    /// Ready(None) means the connection was refused and the next one can be taken at once.
    fn poll_accept_once(&self, cx: &mut Context<'_>) -> Poll<Option<io::Result<<Self as indymilter::Listener>::Io>>> {
        let mut guard = self.lock();
        match guard.as_mut() {
            // Closed for draining: accept nothing more. No waker is registered, and none is needed: nothing
            // will become acceptable again, and indymilter's run (the only poller) ends through the shutdown
            // future it polls in the same select!, which `run` completes once draining is over.
            None => Poll::Pending,
            Some(Inner::Tcp(l)) => match TcpListener::poll_accept(l, cx) {
                Poll::Ready(Ok((s, _))) => {
                    drop(guard);
                    let Some(slot) = self.slot() else {
                        // over the limit: close at once, a clear failure for the MTA, not a hang
                        drop(s);
                        self.refuse();
                        return Poll::Ready(None);
                    };
                    // Nagle + delayed ACK stall every message ~40 ms on TCP without this.
                    if let Err(e) = s.set_nodelay(true) {
                        tracing::warn!("cannot set TCP_NODELAY: {e}");
                    }
                    let s = MilterConn { stream: s, tcp: true, batch: Default::default(), _slot: slot };
                    s.quickack();
                    Poll::Ready(Some(Ok(indymilter::EitherStream::Tcp(s))))
                }
                Poll::Ready(Err(e)) => Poll::Ready(Some(Err(e))),
                Poll::Pending => Poll::Pending,
            },
            Some(Inner::Unix(l)) => match UnixListener::poll_accept(l, cx) {
                Poll::Ready(Ok((s, _))) => {
                    drop(guard);
                    let Some(slot) = self.slot() else {
                        drop(s);
                        self.refuse();
                        return Poll::Ready(None);
                    };
                    let s = MilterConn { stream: s, tcp: false, batch: Default::default(), _slot: slot };
                    Poll::Ready(Some(Ok(indymilter::EitherStream::Unix(s))))
                }
                Poll::Ready(Err(e)) => Poll::Ready(Some(Err(e))),
                Poll::Pending => Poll::Pending,
            },
        }
    }
}

/// indymilter's run ends on the first `Err` from here, taking the daemon with it: only a broken listening
/// socket is an error. A failed connection is skipped, and a shortage of descriptors or memory pauses
/// accepting for [`ACCEPT_BACKOFF`] (the waker is registered through the sleep) instead.
impl indymilter::Listener for MilterListener {
    type Io = indymilter::EitherStream<MilterTcp, MilterUnix>;

    fn poll_accept(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<Self::Io>> {
        let mut retries = 0;
        loop {
            if let Some(sleep) = self.backoff.0.as_mut() {
                if sleep.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                self.backoff.0 = None;
            }
            match self.poll_accept_once(cx) {
                Poll::Ready(Some(Ok(s))) => return Poll::Ready(Ok(s)),
                Poll::Ready(Some(Err(e))) => {
                    let what = AcceptError::of(&e);
                    self.accept_failed(&e, what);
                    match what {
                        AcceptError::Fatal => return Poll::Ready(Err(e)),
                        AcceptError::Backoff => self.backoff.0 = Some(Box::pin(tokio::time::sleep(ACCEPT_BACKOFF))),
                        AcceptError::Retry => {}
                    }
                }
                // refused over the limit: the next one
                Poll::Ready(None) => {}
                Poll::Pending => return Poll::Pending,
            }
            retries += 1;
            if retries >= ACCEPT_RETRIES && self.backoff.0.is_none() {
                // a flood of failing or refused connections: let other tasks run, then go on
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
        }
    }
}

/// Runs the milter on `listener` until `shutdown` completes; then stops
/// accepting, lets in-flight messages finish (up to `milter.shutdown_timeout`)
/// and returns.
pub async fn run(listener: MilterListener, shared: Arc<Shared>, shutdown: impl Future<Output = ()> + Send + 'static) -> io::Result<()> {
    let engine = shared.engine();
    let mc = &engine.config.milter;
    listener.set_max_connections(mc.max_connections);
    let config = indymilter::Config {
        // our listener enforces the limit by closing excess connections at once;
        // indymilter's own limit (which stops accepting, so the MTA hangs) stays above it
        max_connections: mc.max_connections.saturating_add(64),
        actions: indymilter::Actions::ADD_HEADER | indymilter::Actions::CHANGE_HEADER | indymilter::Actions::QUARANTINE | indymilter::Actions::REPLACE_BODY,
        connection_timeout: Duration::from_secs(mc.connection_timeout),
    };
    let grace = Duration::from_secs(mc.shutdown_timeout);
    let callbacks = milter::callbacks(shared.clone());
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let drain_listener = listener.clone();
    let drain_shared = shared.clone();
    let drainer = async move {
        shutdown.await;
        drain_listener.close();
        let n = drain_shared.in_flight.load(Ordering::SeqCst);
        tracing::info!(in_flight = n, "shutting down: no new connections; draining in-flight messages");
        let deadline = tokio::time::Instant::now() + grace;
        while drain_shared.in_flight.load(Ordering::SeqCst) > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let left = drain_shared.in_flight.load(Ordering::SeqCst);
        if left > 0 {
            tracing::warn!(in_flight = left, "shutdown grace period over; the MTA will apply its default action to these");
        }
        let _ = stop_tx.send(());
    };
    tokio::spawn(drainer);
    let result = indymilter::run(listener.clone(), callbacks, config, async {
        let _ = stop_rx.await;
    })
    .await;
    listener.close();
    result
}

/// Loads config for the daemon and returns the engine and a listener spec. Kept here so tests can reuse it.
pub fn engine_from(config: Config) -> Arc<Engine> {
    Engine::new(config)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::tests::packet;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Through the real connection type: a flushed header action stays
    /// unsent until the final reply is flushed, then both arrive in order.
    #[tokio::test]
    async fn actions_reach_the_mta_with_the_final_reply() {
        let (ours, mut mta) = tokio::io::duplex(1 << 20);
        let active = Arc::new(AtomicUsize::new(1));
        let mut conn = MilterConn {
            stream: ours,
            tcp: false,
            batch: Default::default(),
            _slot: ConnSlot(active.clone()),
        };
        let action = packet(b'h', b"X-Impostor-Verdict\0tag\0");
        conn.write_all(&action).await.unwrap();
        conn.flush().await.unwrap();
        let mut buf = [0u8; 64];
        let early =
            tokio::time::timeout(std::time::Duration::from_millis(50), mta.read(&mut buf)).await;
        assert!(early.is_err(), "the action was sent before the reply");
        let reply = packet(b'c', b"");
        conn.write_all(&reply).await.unwrap();
        conn.flush().await.unwrap();
        let mut got = vec![0u8; action.len() + reply.len()];
        mta.read_exact(&mut got).await.unwrap();
        assert_eq!(got, [action, reply].concat());
        drop(conn);
        assert_eq!(
            active.load(Ordering::SeqCst),
            0,
            "the connection slot is released"
        );
    }

    /// A listener whose lock a panic poisoned (held across the panic by another thread).
    async fn poisoned_listener() -> (MilterListener, std::net::SocketAddr) {
        let l = MilterListener::bind(&SocketSpec::Inet("127.0.0.1:0".into()), 0o660, "").await.unwrap();
        let addr = l.local_addr().unwrap();
        let inner = l.inner.clone();
        let _ = std::thread::spawn(move || {
            let _guard = inner.lock();
            panic!("poisoning the listener lock (expected in this test)");
        })
        .join();
        assert!(l.inner.is_poisoned());
        (l, addr)
    }

    /// Before: a poisoned lock made poll_accept return Pending with no waker, and the daemon silently stopped accepting.
    #[tokio::test]
    async fn accept_goes_on_after_the_listener_lock_is_poisoned() {
        let (mut l, addr) = poisoned_listener().await;
        let accept = tokio::time::timeout(Duration::from_secs(5), indymilter::Listener::accept(&mut l));
        let (accepted, client) = tokio::join!(accept, TcpStream::connect(addr));
        client.unwrap();
        assert!(matches!(accepted, Ok(Ok(indymilter::EitherStream::Tcp(_)))), "no connection accepted");
        assert_eq!(l.local_addr(), Some(addr));
    }

    /// Before: close() did nothing on a poisoned lock, so draining went on accepting.
    #[tokio::test]
    async fn close_stops_accepting_after_the_listener_lock_is_poisoned() {
        let (l, addr) = poisoned_listener().await;
        l.close();
        let e = TcpStream::connect(addr).await.expect_err("the listening socket is closed");
        assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused);
    }

    #[test]
    fn accept_errors_back_off_retry_or_end() {
        let of = |n| AcceptError::of(&io::Error::from_raw_os_error(n));
        for n in [libc::EMFILE, libc::ENFILE, libc::ENOBUFS, libc::ENOMEM] {
            assert_eq!(of(n), AcceptError::Backoff, "errno {n}");
        }
        for n in [libc::ECONNABORTED, libc::EINTR, libc::EPROTO, libc::EPERM, libc::ENETUNREACH] {
            assert_eq!(of(n), AcceptError::Retry, "errno {n}");
        }
        for n in [libc::EBADF, libc::EINVAL, libc::ENOTSOCK] {
            assert_eq!(of(n), AcceptError::Fatal, "errno {n}");
        }
    }
}
