//! Per-connection and per-message state, with the body byte cap.

use crate::action::OWN_HEADER_PREFIX;
use crate::analysis::Envelope;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// Counts a message as in flight from MAIL FROM until end of message, abort or close.
#[derive(Debug)]
pub struct InFlight(Arc<AtomicUsize>);

impl InFlight {
    pub fn new(counter: &Arc<AtomicUsize>) -> InFlight {
        counter.fetch_add(1, Ordering::SeqCst);
        InFlight(counter.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// One MTA connection.
#[derive(Debug, Default)]
pub struct Session {
    pub client_ip: Option<IpAddr>,
    pub client_name: Option<String>,
    pub helo: Option<String>,
    /// The MTA accepts SMFIS_SKIP (stop sending body chunks).
    pub skip_ok: bool,
    /// Stages at which the MTA does not wait for a reply (negotiated).
    pub noreply: indymilter::ProtoOpts,
    /// Counts the connection in the metrics while the session lives.
    pub connection: Option<crate::metrics::ConnectionGuard>,
    pub message: Option<MessageState>,
}

/// One message (MAIL FROM .. end of message).
#[derive(Debug)]
pub struct MessageState {
    pub envelope: Envelope,
    /// Header block as received, reassembled as `Name: value\r\n`.
    pub raw: Vec<u8>,
    pub header_count: usize,
    /// First Subject header's value.
    pub subject: Option<String>,
    /// Incoming `X-Impostor-*` headers: (name as received, 1-based index among headers of that name).
    pub forged: Vec<(String, i32)>,
    /// Incoming Authentication-Results headers: (1-based index, authserv-id).
    pub auth_results: Vec<(i32, String)>,
    pub body_len: usize,
    pub truncated: bool,
    /// Header fields beyond milter.max_headers / max_header_bytes were not kept.
    pub headers_truncated: bool,
    _inflight: InFlight,
}

impl MessageState {
    pub fn new(envelope: Envelope, inflight: InFlight) -> MessageState {
        MessageState {
            envelope,
            // most mail is a few tens of KiB: fewer regrowths of the buffer
            raw: Vec::with_capacity(32 * 1024),
            header_count: 0,
            subject: None,
            forged: Vec::new(),
            auth_results: Vec::new(),
            body_len: 0,
            truncated: false,
            headers_truncated: false,
            _inflight: inflight,
        }
    }

    /// Records a header field. Forged X-Impostor-* and Authentication-Results
    /// headers are always indexed (to be removed); the field itself is kept
    /// for analysis only within `max_headers` and `max_bytes`.
    pub fn add_header(&mut self, name: &[u8], value: &[u8], max_headers: usize, max_bytes: usize) {
        self.header_count += 1;
        let name_str = String::from_utf8_lossy(name).into_owned();
        let lower = name_str.to_ascii_lowercase();
        if lower.starts_with(OWN_HEADER_PREFIX) {
            // index among headers of the same (case-insensitive) name
            let idx = self.forged.iter().filter(|(n, _)| n.eq_ignore_ascii_case(&name_str)).count() as i32 + 1;
            self.forged.push((name_str, idx));
        } else if lower == "authentication-results" {
            let idx = self.auth_results.len() as i32 + 1;
            self.auth_results.push((idx, crate::analysis::auth::authserv_id(&String::from_utf8_lossy(value))));
        } else if lower == "subject" && self.subject.is_none() {
            self.subject = Some(String::from_utf8_lossy(value).into_owned());
        }
        if self.header_count > max_headers || self.raw.len() + name.len() + value.len() + 4 > max_bytes {
            self.headers_truncated = true;
            return;
        }
        self.raw.extend_from_slice(name);
        self.raw.extend_from_slice(b": ");
        self.raw.extend_from_slice(value);
        self.raw.extend_from_slice(b"\r\n");
    }

    pub fn end_of_headers(&mut self) {
        self.raw.extend_from_slice(b"\r\n");
    }

    /// Appends body bytes up to `cap`. Returns false once the cap is reached
    /// (the rest of the body need not be sent).
    pub fn add_body(&mut self, chunk: &[u8], cap: usize) -> bool {
        let room = cap.saturating_sub(self.body_len);
        let take = room.min(chunk.len());
        self.raw.extend_from_slice(&chunk[..take]);
        self.body_len += take;
        if take < chunk.len() {
            self.truncated = true;
        }
        !self.truncated
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_is_capped_and_marked_truncated() {
        let c = Arc::new(AtomicUsize::new(0));
        let mut m = MessageState::new(Envelope::default(), InFlight::new(&c));
        assert_eq!(c.load(Ordering::SeqCst), 1);
        m.add_header(b"Subject", b"hi", 100, 1000);
        m.end_of_headers();
        assert!(m.add_body(b"12345", 8));
        assert!(!m.add_body(b"6789", 8));
        assert!(m.truncated);
        assert!(m.raw.ends_with(b"\r\n\r\n12345678"));
        drop(m);
        assert_eq!(c.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn forged_own_headers_are_indexed_per_name() {
        let c = Arc::new(AtomicUsize::new(0));
        let mut m = MessageState::new(Envelope::default(), InFlight::new(&c));
        m.add_header(b"X-Impostor-Verdict", b"accept", 100, 1000);
        m.add_header(b"x-impostor-verdict", b"accept", 1, 1000);
        m.add_header(b"X-Impostor-Score", b"0", 1, 1000);
        assert!(m.headers_truncated, "over max_headers");
        assert_eq!(m.header_count, 3);
        assert_eq!(
            m.forged,
            vec![("X-Impostor-Verdict".into(), 1), ("x-impostor-verdict".into(), 2), ("X-Impostor-Score".into(), 1)]
        );
    }
}
