//! The milter socket: bind (unix socket mode, group, stale files), accept
//! with the connection limit, and back off on resource errors instead of
//! ending the daemon.

use super::conn::{MilterConn, MilterTcp, MilterUnix};
use crate::accept::{AcceptError, ACCEPT_BACKOFF};
use crate::config::SocketSpec;
use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use tokio::net::{TcpListener, UnixListener};

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

/// One of `milter.max_connections` connection slots, released on drop.
#[derive(Debug)]
pub struct ConnSlot(pub(crate) Arc<AtomicUsize>);

impl Drop for ConnSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
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
        if n.is_multiple_of(100) {
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
        if n.is_multiple_of(100) {
            tracing::warn!(
                max_connections = self.max_connections.load(Ordering::Relaxed),
                refused_so_far = n + 1,
                "connection limit reached: closing new MTA connection (the MTA applies milter_default_action, e.g. 451 4.7.1)"
            );
        }
    }
}

impl MilterListener {
    /// A connection slot, or None (counted and logged as a refusal) when `max_connections` are open.
    fn slot_or_refuse(&self) -> Option<ConnSlot> {
        let slot = self.slot();
        if slot.is_none() {
            self.refuse();
        }
        slot
    }

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
                    // over the limit: `s` is closed at once, a clear failure for the MTA, not a hang
                    let Some(slot) = self.slot_or_refuse() else { return Poll::Ready(None) };
                    // Nagle + delayed ACK stall every message ~40 ms on TCP without this.
                    if let Err(e) = s.set_nodelay(true) {
                        tracing::warn!("cannot set TCP_NODELAY: {e}");
                    }
                    let s = MilterConn::new(s, true, slot);
                    Poll::Ready(Some(Ok(indymilter::EitherStream::Tcp(s))))
                }
                Poll::Ready(Err(e)) => Poll::Ready(Some(Err(e))),
                Poll::Pending => Poll::Pending,
            },
            Some(Inner::Unix(l)) => match UnixListener::poll_accept(l, cx) {
                Poll::Ready(Ok((s, _))) => {
                    drop(guard);
                    let Some(slot) = self.slot_or_refuse() else { return Poll::Ready(None) };
                    let s = MilterConn::new(s, false, slot);
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tokio::net::TcpStream;

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
}
