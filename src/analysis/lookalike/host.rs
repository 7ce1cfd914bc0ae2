//! Host names: the input host normalised (IDNA, IP literals and garbage refused), configured domains as ASCII, and
//! the Public Suffix List split into registrable label and public suffix.

use std::net::IpAddr;

/// A configured domain as lowercase ASCII (punycode), without a trailing dot.
pub(super) fn ascii_domain(d: &str) -> Option<String> {
    let d = d.trim().trim_end_matches('.').to_lowercase();
    if d.is_empty() {
        return None;
    }
    if d.is_ascii() {
        return Some(d);
    }
    idna::domain_to_ascii(&d).ok()
}

/// (registrable label, public suffix) of an ASCII domain.
pub(super) fn split_registrable(ascii: &str) -> Option<(&str, &str)> {
    let n = suffix_label_count(ascii);
    let labels: Vec<&str> = ascii.split('.').collect();
    if labels.len() <= n {
        return None;
    }
    let reg = labels.len() - n - 1;
    let suffix_start = labels[..=reg].iter().map(|l| l.len() + 1).sum::<usize>();
    Some((labels[reg], &ascii[suffix_start..]))
}

fn suffix_label_count(ascii: &str) -> usize {
    match psl::suffix(ascii.as_bytes()) {
        Some(s) => s.as_bytes().iter().filter(|&&b| b == b'.').count() + 1,
        None => 1,
    }
}

/// A normalised host: lowercase Unicode form for matching, ASCII form for the PSL and owned
/// lookups.
pub(super) struct Host {
    pub(super) unicode: String,
    pub(super) ascii: String,
    pub(super) suffix_labels: usize,
}

impl Host {
    pub(super) fn parse(input: &str) -> Option<Host> {
        let t = input.trim().trim_end_matches('.');
        let t = t.strip_prefix('[').and_then(|x| x.strip_suffix(']')).unwrap_or(t);
        if t.is_empty() || t.len() > 253 {
            return None;
        }
        if t.parse::<IpAddr>().is_ok() {
            return None;
        }
        // Host names only: letters, digits, hyphen, underscore, dot (and non-ASCII letters,
        // which IDNA checks). Anything else is a parsing artefact, not a domain.
        if t.bytes().any(|b| b.is_ascii() && !(b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))) {
            return None;
        }
        let (unicode, ascii) = if t.is_ascii() && !has_ace(t) {
            let l = t.to_ascii_lowercase();
            (l.clone(), l)
        } else {
            let lower = t.to_lowercase();
            let (u, _) = idna::domain_to_unicode(&lower);
            let u = if u.is_empty() { lower } else { u };
            let a = idna::domain_to_ascii(&u).unwrap_or_else(|_| u.clone());
            (u, a)
        };
        let mut suffix_labels = suffix_label_count(&ascii);
        if ascii.split('.').count() != unicode.split('.').count() {
            suffix_labels = 1;
        }
        Some(Host { unicode, ascii, suffix_labels })
    }
}

fn has_ace(s: &str) -> bool {
    s.as_bytes().windows(4).any(|w| w.eq_ignore_ascii_case(b"xn--"))
}
