//! Per-connection and per-message state, with the body byte cap.

use crate::action::{Incoming, MAX_REMOVABLE, OWN_HEADER_PREFIX};
use crate::analysis::Envelope;
use std::collections::HashMap;
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
    /// End-of-message actions the MTA agreed to (negotiated).
    pub caps: crate::action::MtaCaps,
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
    /// The Subject, `X-Impostor-*` and `Authentication-Results` headers the plan needs.
    pub incoming: Incoming,
    /// Headers seen so far per lowercased `X-Impostor-*` name (the next index).
    own_per_name: HashMap<String, i32>,
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
            incoming: Incoming::default(),
            own_per_name: HashMap::new(),
            body_len: 0,
            truncated: false,
            headers_truncated: false,
            _inflight: inflight,
        }
    }

    /// Records a header field. Forged X-Impostor-* and Authentication-Results
    /// headers are always indexed (to be removed), up to [`MAX_REMOVABLE`]
    /// of them; the field itself is kept for analysis only within
    /// `max_headers` and `max_bytes`, and once one field is dropped every
    /// later one is too, so what is kept is the top of the header block.
    pub fn add_header(&mut self, name: &[u8], value: &[u8], max_headers: usize, max_bytes: usize) {
        self.header_count += 1;
        let own =
            name.len() >= OWN_HEADER_PREFIX.len() && name[..OWN_HEADER_PREFIX.len()].eq_ignore_ascii_case(OWN_HEADER_PREFIX.as_bytes());
        if own || name.eq_ignore_ascii_case(b"authentication-results") {
            let inc = &mut self.incoming;
            if inc.own_headers.len() + inc.auth_results.len() >= MAX_REMOVABLE {
                inc.removable_overflow = true;
            } else if own {
                let name_str = String::from_utf8_lossy(name).into_owned();
                // index among headers of the same (case-insensitive) name
                let idx = self.own_per_name.entry(name_str.to_ascii_lowercase()).or_insert(0);
                *idx += 1;
                inc.own_headers.push((name_str, *idx));
            } else {
                let idx = inc.auth_results.len() as i32 + 1;
                inc.auth_results.push((idx, crate::auth::authserv_id(&String::from_utf8_lossy(value))));
            }
        } else if self.incoming.subject.is_none() && name.eq_ignore_ascii_case(b"subject") {
            self.incoming.subject = Some(String::from_utf8_lossy(value).into_owned());
        }
        if self.headers_truncated || self.header_count > max_headers || self.raw.len() + name.len() + value.len() + 4 > max_bytes {
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
            m.incoming.own_headers,
            vec![("X-Impostor-Verdict".into(), 1), ("x-impostor-verdict".into(), 2), ("X-Impostor-Score".into(), 1)]
        );
    }

    #[test]
    fn many_forged_headers_are_indexed_in_linear_time_and_capped() {
        let c = Arc::new(AtomicUsize::new(0));
        let mut m = MessageState::new(Envelope::default(), InFlight::new(&c));
        let t = std::time::Instant::now();
        for i in 0..100_000 {
            let name: &[u8] = if i % 2 == 0 { b"X-Impostor-Verdict" } else { b"X-IMPOSTOR-RULES" };
            m.add_header(name, b"accept", 10_000, 1 << 20);
        }
        // a guard against the quadratic rescan (42 s for 100,000 before), not a speed target
        assert!(t.elapsed() < std::time::Duration::from_secs(5), "{:?}", t.elapsed());
        assert_eq!(m.incoming.own_headers.len(), MAX_REMOVABLE);
        assert!(m.incoming.removable_overflow);
        assert_eq!(m.incoming.own_headers[MAX_REMOVABLE - 1], ("X-IMPOSTOR-RULES".into(), (MAX_REMOVABLE / 2) as i32));
    }

    #[test]
    fn header_truncation_keeps_the_top_of_the_block() {
        let c = Arc::new(AtomicUsize::new(0));
        let mut m = MessageState::new(Envelope::default(), InFlight::new(&c));
        m.add_header(b"Received", b"from a by b", 100, 64);
        m.add_header(b"X-Big", &[b'x'; 100], 100, 64);
        m.add_header(b"Authentication-Results", b"mx.example; dkim=pass", 100, 64);
        assert!(m.headers_truncated);
        assert_eq!(m.raw, b"Received: from a by b\r\n", "nothing below the dropped field is kept");
        assert_eq!(m.incoming.auth_results, vec![(1, "mx.example".to_string())], "but it is still indexed for removal");
    }
}
