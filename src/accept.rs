//! What to do when accept() fails, shared by the milter listener and the
//! metrics endpoint: skip a connection that failed on its own, pause when the
//! process is out of descriptors or memory, end only when the socket is broken.

use std::io;
use std::time::Duration;

/// How long accepting pauses after accept() failed for want of file descriptors or memory:
/// long enough not to spin, short enough that the MTA barely notices.
pub const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// What to do about a failed accept().
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AcceptError {
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
    pub fn of(e: &io::Error) -> AcceptError {
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

#[cfg(test)]
mod tests {
    use super::*;

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
