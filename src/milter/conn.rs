//! One accepted MTA connection: TCP quick-ack re-armed after every read, and
//! modification actions held back to go out with the final reply.

use super::batch;
use super::listener::ConnSlot;
use std::io;
use std::task::{Context, Poll};
use tokio::net::{TcpStream, UnixStream};

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

impl<S: std::os::fd::AsRawFd> MilterConn<S> {
    /// A new connection holding `slot`; on TCP, quick-ack mode is armed at once.
    pub(crate) fn new(stream: S, tcp: bool, slot: ConnSlot) -> MilterConn<S> {
        let c = MilterConn { stream, tcp, batch: Default::default(), _slot: slot };
        c.quickack();
        c
    }
}

/// The two kinds of milter connection.
pub type MilterTcp = MilterConn<TcpStream>;
pub type MilterUnix = MilterConn<UnixStream>;

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
    fn poll_write(self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
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

#[cfg(test)]
mod tests {
    use super::super::batch::tests::packet;
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Through the real connection type: a flushed header action stays
    /// unsent until the final reply is flushed, then both arrive in order.
    #[tokio::test]
    async fn actions_reach_the_mta_with_the_final_reply() {
        let (ours, mut mta) = tokio::io::duplex(1 << 20);
        let active = Arc::new(AtomicUsize::new(1));
        let mut conn = MilterConn { stream: ours, tcp: false, batch: Default::default(), _slot: ConnSlot(active.clone()) };
        let action = packet(b'h', b"X-Impostor-Verdict\0tag\0");
        conn.write_all(&action).await.unwrap();
        conn.flush().await.unwrap();
        let mut buf = [0u8; 64];
        let early = tokio::time::timeout(std::time::Duration::from_millis(50), mta.read(&mut buf)).await;
        assert!(early.is_err(), "the action was sent before the reply");
        let reply = packet(b'c', b"");
        conn.write_all(&reply).await.unwrap();
        conn.flush().await.unwrap();
        let mut got = vec![0u8; action.len() + reply.len()];
        mta.read_exact(&mut got).await.unwrap();
        assert_eq!(got, [action, reply].concat());
        drop(conn);
        assert_eq!(active.load(Ordering::SeqCst), 0, "the connection slot is released");
    }
}
