//! Holds back milter modification actions until the reply that follows them.
//!
//! At end of message a milter sends its modification actions (add, insert or
//! change a header, quarantine, replace the body …), which get no answer, and
//! then one final reply. indymilter writes and flushes each of them on its
//! own: one `sendto` per action, and the MTA wakes up to read each one. The
//! MTA acts only once it has the final reply, so sending the actions together
//! with it changes nothing for the MTA and saves it and us several system
//! calls and wake-ups per message.
//!
//! [`ActionBatch`] follows the packet framing of the outgoing stream
//! (4-byte length, 1-byte command, data) and tells when a flush must really
//! reach the socket: when a packet other than a modification action was
//! written, or when much is pending.

/// Milter response codes that never get an answer and are always followed
/// by a final reply: add/delete recipient, add recipient with args, replace
/// body, change sender, add/insert/change header, quarantine.
const DEFERRABLE: &[u8] = b"+-2behimq";

/// Above this many pending bytes a flush is carried out anyway.
const MAX_PENDING: usize = 256 * 1024;

/// The outgoing bytes not yet sent, and the framing state of the stream.
#[derive(Debug, Default)]
pub struct ActionBatch {
    pending: Vec<u8>,
    /// Bytes at the start of `pending` already written to the socket.
    sent: usize,
    /// Header bytes (length and command) of the current packet seen so far.
    header: [u8; 5],
    header_len: usize,
    /// Data bytes of the current packet still to come.
    remaining: usize,
    /// A packet that must not wait (a reply) was written since the last send.
    urgent: bool,
}

impl ActionBatch {
    /// Takes bytes written by the protocol layer.
    pub fn push(&mut self, mut buf: &[u8]) {
        self.pending.extend_from_slice(buf);
        while !buf.is_empty() {
            if self.header_len < 5 {
                self.header[self.header_len] = buf[0];
                self.header_len += 1;
                buf = &buf[1..];
                if self.header_len == 5 {
                    let len = u32::from_be_bytes([self.header[0], self.header[1], self.header[2], self.header[3]]) as usize;
                    self.remaining = len.saturating_sub(1);
                    if !DEFERRABLE.contains(&self.header[4]) {
                        self.urgent = true;
                    }
                    if self.remaining == 0 {
                        self.header_len = 0;
                    }
                }
            } else {
                let n = self.remaining.min(buf.len());
                self.remaining -= n;
                buf = &buf[n..];
                if self.remaining == 0 {
                    self.header_len = 0;
                }
            }
        }
    }

    /// A flush must reach the socket now.
    pub fn must_send(&self) -> bool {
        self.urgent || self.unsent().len() >= MAX_PENDING
    }

    /// Bytes not yet written to the socket.
    pub fn unsent(&self) -> &[u8] {
        &self.pending[self.sent..]
    }

    /// `n` more bytes were written to the socket.
    pub fn advance(&mut self, n: usize) {
        self.sent += n;
        if self.sent >= self.pending.len() {
            self.pending.clear();
            self.sent = 0;
            self.urgent = false;
        }
    }

    /// Nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.unsent().is_empty()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// One milter packet: length, command, data.
    pub(crate) fn packet(kind: u8, data: &[u8]) -> Vec<u8> {
        let mut v = ((data.len() + 1) as u32).to_be_bytes().to_vec();
        v.push(kind);
        v.extend_from_slice(data);
        v
    }

    #[test]
    fn actions_wait_for_the_final_reply() {
        let mut b = ActionBatch::default();
        b.push(&packet(b'h', b"X-Impostor-Verdict\0accept\0"));
        b.push(&packet(b'i', b"\0\0\0\0Authentication-Results\0x\0"));
        b.push(&packet(b'q', b"reason\0"));
        assert!(!b.must_send());
        b.push(&packet(b'c', b""));
        assert!(b.must_send());
        let all = b.unsent().len();
        b.advance(all - 3);
        assert!(b.must_send(), "part of the batch is still unsent");
        b.advance(3);
        assert!(b.is_empty() && !b.must_send());
    }

    #[test]
    fn framing_survives_writes_split_anywhere() {
        let mut stream = packet(b'm', b"\0\0\0\x01Subject\0[tag] hi\0");
        stream.extend(packet(b'h', &[b'a'; 300]));
        stream.extend(packet(b'r', b""));
        for cut in 0..stream.len() {
            let mut b = ActionBatch::default();
            b.push(&stream[..cut]);
            // the reply's command byte is the last byte of the stream
            assert_eq!(b.must_send(), cut == stream.len(), "cut at {cut}");
            b.push(&stream[cut..]);
            assert!(b.must_send());
            assert_eq!(b.unsent(), &stream[..]);
        }
    }

    #[test]
    fn negotiation_and_other_replies_are_urgent() {
        for kind in [b'O', b'a', b'c', b'd', b'r', b't', b'y', b's', b'p'] {
            let mut b = ActionBatch::default();
            b.push(&packet(kind, b"\0\0\0\x06"));
            assert!(b.must_send(), "{}", kind as char);
        }
    }

    #[test]
    fn a_large_batch_is_sent_without_waiting() {
        let mut b = ActionBatch::default();
        for _ in 0..5 {
            b.push(&packet(b'b', &[b'x'; 60 * 1024]));
        }
        assert!(b.must_send());
    }
}
