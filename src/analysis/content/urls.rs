//! URLs written in plain text, and what HTML and text are cut by before they
//! are read: long inline `data:` runs dropped, byte caps cut at a char boundary.

use super::{Limits, Link, LinkSource};

/// Replaces long base64 runs (`data:` images, embedded fonts) by nothing, so
/// a megabyte of inline image does not push the text out of `max_html_bytes`.
pub(super) fn strip_inline_data(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.contains("base64,") {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len().min(1 << 20));
    let mut rest = s;
    while let Some(p) = rest.find("base64,") {
        let (head, tail) = rest.split_at(p + 7);
        out.push_str(head);
        let run = tail.bytes().take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=' | b'\r' | b'\n' | b' ')).count();
        if run > 256 {
            rest = &tail[run..];
        } else {
            rest = tail;
        }
    }
    out.push_str(rest);
    std::borrow::Cow::Owned(out)
}

/// The longest prefix of `s` of at most `max` bytes that ends on a char boundary.
pub(super) fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Plain-text URLs (with a scheme, or starting with `www.`).
pub(super) fn plain_urls(text: &str, limits: &Limits, out: &mut Vec<Link>) {
    let mut finder = linkify::LinkFinder::new();
    finder.kinds(&[linkify::LinkKind::Url]);
    finder.url_must_have_scheme(false);
    for l in finder.links(text) {
        // one over the cap, so that `Walk::push_links` sees it was reached and says so
        if out.len() > limits.max_links {
            break;
        }
        let s = l.as_str();
        let lower = s.to_ascii_lowercase();
        if !(lower.contains("://") || lower.starts_with("www.")) {
            continue;
        }
        if let Some(link) = Link::parse(s, LinkSource::PlainText, None) {
            out.push(link);
        }
    }
}
