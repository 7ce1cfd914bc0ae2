//! The text a reader sees, and its normalisation against obfuscation.
//!
//! HTML is parsed with html5ever (via `scraper`), the parser browsers'
//! behaviour is specified by, so broken markup reads as a mail client shows it.
//! Block elements and `<br>` end a word; `<script>`, `<style>`, `<head>`,
//! `<template>` and elements hidden with `display:none` or `hidden` are not
//! read.

use super::{Limits, Link, LinkSource};
use scraper::node::Node;
use scraper::Html;
use unicode_normalization::char::is_combining_mark;
use unicode_normalization::UnicodeNormalization;

/// Characters that render as nothing or reorder text: zero-width spaces and
/// joiners, soft hyphen, word joiner, BOM, bidi controls, variation selectors,
/// combining grapheme joiner, Mongolian vowel separator.
pub fn is_invisible(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{034F}' | '\u{180E}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{2069}' | '\u{FE00}'..='\u{FE0F}' | '\u{FEFF}')
}

/// Zero-width characters between two letters ("pa\u{200B}ss"): filter evasion.
/// Soft hyphens (real hyphenation hints) and joiners next to non-Latin
/// letters (Persian, Indic, emoji sequences) do not count.
pub fn zero_width_in_words(s: &str) -> usize {
    // U+200B–U+200D and U+2060 encode as E2 xx xx, U+FEFF as EF BB BF
    if memchr::memchr2(0xE2, 0xEF, s.as_bytes()).is_none() {
        return 0;
    }
    let chars: Vec<char> = s.chars().collect();
    let mut n = 0;
    for (i, c) in chars.iter().enumerate() {
        if matches!(c, '\u{200B}'..='\u{200D}' | '\u{2060}' | '\u{FEFF}') {
            let before = chars[..i].iter().rev().find(|c| !is_invisible(**c));
            let after = chars[i + 1..].iter().find(|c| !is_invisible(**c));
            if before.is_some_and(|c| c.is_ascii_alphabetic()) && after.is_some_and(|c| c.is_ascii_alphabetic()) {
                n += 1;
            }
        }
    }
    n
}

/// Folds one lowercase non-ASCII character to ASCII where it is a Latin
/// letter with accents or a confusable of one (UTS #39 skeleton); other
/// letters (Greek words, CJK) are kept.
fn fold_non_ascii(c: char, out: &mut String) {
    match c {
        'ß' => return out.push_str("ss"),
        'æ' => return out.push_str("ae"),
        'œ' => return out.push_str("oe"),
        'ø' => return out.push('o'),
        'ł' => return out.push('l'),
        'đ' | 'ð' => return out.push('d'),
        'ı' => return out.push('i'),
        _ => {}
    }
    let stripped: String = c.to_string().nfd().filter(|c| !is_combining_mark(*c)).collect();
    if !stripped.is_empty() && stripped.chars().all(|c| c.is_ascii_alphanumeric()) {
        return out.push_str(&stripped);
    }
    let skel: String = unicode_security::confusable_detection::skeleton(&c.to_string())
        .filter(|c| !is_combining_mark(*c))
        .flat_map(char::to_lowercase)
        .collect();
    if !skel.is_empty() && skel.len() <= 2 && skel.chars().all(|c| c.is_ascii_alphanumeric()) {
        out.push_str(&skel);
    } else if c.is_alphanumeric() {
        out.push(c);
    } else {
        out.push(' ');
    }
}

/// Normalises text for phrase matching: NFKC, invisible characters removed,
/// lowercase, accents and confusables folded to ASCII, `@`/`$` and digits
/// used as letters inside a word read as letters (`p@ssw0rd`), everything
/// that is not a letter or digit a word break, runs of four or more
/// single-letter words joined (`p a s s w o r d`). Output: words separated by
/// one space.
///
/// One pass over the text plus one over its words; ASCII text (most mail)
/// is folded byte by byte without decoding characters.
pub fn normalize(s: &str) -> String {
    normalize_both(s).0
}

/// [`normalize`], and the same text with its spaces removed (for phrases
/// matched across stray spaces, see [`super::phrases::COMPACT_MIN`]).
pub fn normalize_both(s: &str) -> (String, String) {
    // NFKC of ASCII is ASCII, and ASCII holds no invisible character: skip the normaliser
    let pre: std::borrow::Cow<str> = if s.is_ascii() {
        std::borrow::Cow::Borrowed(s)
    } else if unicode_normalization::is_nfkc_quick(s.chars())
        == unicode_normalization::IsNormalized::Yes
    {
        if s.chars().any(is_invisible) {
            std::borrow::Cow::Owned(s.chars().filter(|c| !is_invisible(*c)).collect())
        } else {
            std::borrow::Cow::Borrowed(s)
        }
    } else {
        std::borrow::Cow::Owned(s.nfkc().filter(|c| !is_invisible(*c)).collect())
    };
    let folded = if pre.is_ascii() {
        fold_ascii(pre.as_bytes())
    } else {
        let mut f = String::with_capacity(pre.len() + 1);
        fold_unicode(&pre, &mut f);
        f
    };
    join_words(&folded)
}

/// `@` between letters reads as `a`, unless the word is an address (a `.`
/// follows before the next space). `rest` is the text after the `@`.
fn at_is_letter(rest: &[u8]) -> bool {
    // the whitespace of `char::is_whitespace` that ends the word early enough:
    // ASCII spaces and controls; a non-ASCII space only makes the word longer
    !rest
        .iter()
        .take_while(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\x0B' | b'\x0C' | b'\r'))
        .any(|b| *b == b'.')
}

/// ASCII folded for phrase matching: lowercase letters and digits kept, everything else a space.
static FOLD_ASCII: [u8; 256] = {
    let mut t = [b' '; 256];
    let mut c = 0;
    while c < 128 {
        let b = c as u8;
        t[c] = if b.is_ascii_lowercase() || b.is_ascii_digit() {
            b
        } else if b.is_ascii_uppercase() {
            b.to_ascii_lowercase()
        } else {
            b' '
        };
        c += 1;
    }
    t
};

fn fold_ascii(b: &[u8]) -> String {
    let mut v: Vec<u8> = b.iter().map(|&c| FOLD_ASCII[c as usize]).collect();
    // `@` and `$` between letters read as letters (rare: look only where they are)
    let alpha = |i: usize| b.get(i).is_some_and(u8::is_ascii_alphabetic);
    for i in memchr::memchr2_iter(b'@', b'$', b) {
        if i > 0 && alpha(i - 1) && alpha(i + 1) {
            if b[i] == b'$' {
                v[i] = b's';
            } else if at_is_letter(&b[i + 1..]) {
                v[i] = b'a';
            }
        }
    }
    // every byte of `v` comes from FOLD_ASCII or is a letter: ASCII
    String::from_utf8(v).unwrap_or_else(|_| unreachable!("folded ASCII is UTF-8"))
}

fn fold_unicode(s: &str, out: &mut String) {
    // folding a character (NFD + skeleton) is costly: once per distinct character
    let mut cache: std::collections::HashMap<char, String> = std::collections::HashMap::new();
    let mut prev_letter = false;
    let mut it = s.char_indices().peekable();
    while let Some((i, c)) = it.next() {
        let next_letter = it.peek().is_some_and(|(_, n)| n.is_alphabetic());
        if c.is_ascii() {
            match c.to_ascii_lowercase() {
                l @ ('a'..='z' | '0'..='9') => out.push(l),
                '@' if prev_letter && next_letter && at_is_letter(&s.as_bytes()[i + 1..]) => {
                    out.push('a')
                }
                '$' if prev_letter && next_letter => out.push('s'),
                _ => out.push(' '),
            }
        } else {
            let f = cache.entry(c).or_insert_with(|| {
                let mut f = String::new();
                for l in c.to_lowercase() {
                    fold_non_ascii(l, &mut f);
                }
                f
            });
            out.push_str(f);
        }
        prev_letter = c.is_alphabetic();
    }
}

/// Splits folded text into words, reads leetspeak inside words, joins runs of
/// four or more single-letter words, and writes the words with one space between.
fn join_words(folded: &str) -> (String, String) {
    // One byte loop writing both outputs by index (no per-word copy call); a
    // word is fixed up in place when it ends: leetspeak is a same-length ASCII
    // substitution, and a run of single letters loses its spaces.
    let b = folded.as_bytes();
    let mut out = vec![0u8; b.len() + 1];
    let mut compact = vec![0u8; b.len()];
    let (mut o, mut k) = (0usize, 0usize);
    // current word: start in `out` and in `compact`, whether it has a digit
    let (mut ws, mut cs, mut digit, mut in_word) = (0usize, 0usize, false, false);
    // the run of single-letter words before the current word: start in `out`, length
    let (mut rs, mut run) = (0usize, 0usize);
    let mut end_word = |out: &mut Vec<u8>,
                        o: &mut usize,
                        compact: &mut Vec<u8>,
                        ws: usize,
                        cs: usize,
                        digit: bool| {
        let w = &out[ws..*o];
        let single = match w.len() {
            1 => w[0].is_ascii_alphabetic(),
            2..=4 => std::str::from_utf8(w).is_ok_and(|w| {
                let mut it = w.chars();
                matches!((it.next(), it.next()), (Some(c), None) if c.is_alphabetic())
            }),
            _ => false,
        };
        if single {
            if run == 0 {
                rs = ws;
            }
            run += 1;
            return;
        }
        if digit {
            unleet_in_place(&mut out[ws..*o]);
            compact[cs..cs + (*o - ws)].copy_from_slice(&out[ws..*o]);
        }
        if run >= 4 {
            // "p a s s word" -> "pass word": drop the spaces inside the run
            let to = drop_spaces(out, rs, ws - 1);
            out.copy_within(ws - 1..*o, to);
            *o = to + (*o - ws + 1);
        }
        run = 0;
    };
    for &c in b {
        if c == b' ' {
            if in_word {
                in_word = false;
                end_word(&mut out, &mut o, &mut compact, ws, cs, digit);
            }
            continue;
        }
        if !in_word {
            in_word = true;
            digit = false;
            if o > 0 {
                out[o] = b' ';
                o += 1;
            }
            ws = o;
            cs = k;
        }
        digit |= c.is_ascii_digit();
        out[o] = c;
        o += 1;
        compact[k] = c;
        k += 1;
    }
    if in_word {
        end_word(&mut out, &mut o, &mut compact, ws, cs, digit);
    }
    if run >= 4 {
        o = drop_spaces(&mut out, rs, o);
    }
    out.truncate(o);
    compact.truncate(k);
    // words are whole UTF-8 sequences of `folded` (split at ASCII spaces), and
    // unleet only swaps ASCII digits for ASCII letters
    let s = |v: Vec<u8>| String::from_utf8(v).unwrap_or_else(|_| unreachable!("words of a str"));
    (s(out), s(compact))
}

/// Removes the spaces of `buf[start..end]` by moving its other bytes left;
/// returns where they now end.
fn drop_spaces(buf: &mut [u8], start: usize, end: usize) -> usize {
    let mut to = start;
    for from in start..end {
        if buf[from] != b' ' {
            buf[to] = buf[from];
            to += 1;
        }
    }
    to
}

/// Digits between ASCII letters read as the letters they imitate, in place,
/// for a word with at least three ASCII letters (`passw0rd`, `l0gin`).
fn unleet_in_place(w: &mut [u8]) {
    if w.iter().filter(|b| b.is_ascii_alphabetic()).count() < 3 {
        return;
    }
    for i in 1..w.len().saturating_sub(1) {
        if w[i - 1].is_ascii_alphabetic() && w[i + 1].is_ascii_alphabetic() {
            w[i] = match w[i] {
                b'0' => b'o',
                b'1' => b'i',
                b'3' => b'e',
                b'4' => b'a',
                b'5' => b's',
                b'7' => b't',
                other => other,
            };
        }
    }
}

/// The normaliser as first written (a character vector, three passes); kept
/// to check the faster [`normalize`] against.
#[cfg(test)]
pub(crate) fn normalize_reference(s: &str) -> String {
    // NFKC of ASCII is ASCII, and ASCII holds no invisible character: skip the normaliser
    let chars: Vec<char> = if s.is_ascii() {
        s.chars().collect()
    } else if unicode_normalization::is_nfkc_quick(s.chars()) == unicode_normalization::IsNormalized::Yes {
        s.chars().filter(|c| !is_invisible(*c)).collect()
    } else {
        s.nfkc().filter(|c| !is_invisible(*c)).collect()
    };
    let mut folded = String::with_capacity(chars.len());
    let mut cache: std::collections::HashMap<char, String> = std::collections::HashMap::new();
    let letter = |i: usize| chars.get(i).is_some_and(|c| c.is_alphabetic());
    for (i, &c) in chars.iter().enumerate() {
        if c.is_ascii() {
            let l = c.to_ascii_lowercase();
            let between = || i > 0 && letter(i - 1) && letter(i + 1);
            match l {
                'a'..='z' | '0'..='9' => folded.push(l),
                // '@' between letters reads as 'a', unless it is an address ("jo@example.com")
                '@' if between() && !chars[i + 1..].iter().take_while(|c| !c.is_whitespace()).any(|c| *c == '.') => folded.push('a'),
                '$' if between() => folded.push('s'),
                _ => folded.push(' '),
            }
        } else {
            // folding a character (NFD + skeleton) is costly: once per distinct character
            let f = cache.entry(c).or_insert_with(|| {
                let mut f = String::new();
                for l in c.to_lowercase() {
                    fold_non_ascii(l, &mut f);
                }
                f
            });
            folded.push_str(f);
        }
    }
    let words: Vec<std::borrow::Cow<str>> = folded.split(' ').filter(|w| !w.is_empty()).map(unleet).collect();
    // join letter-spaced runs ("p a s s w o r d")
    let single = |w: &str| {
        let mut it = w.chars();
        matches!((it.next(), it.next()), (Some(c), None) if c.is_alphabetic())
    };
    let mut out = String::with_capacity(folded.len());
    let mut i = 0;
    while i < words.len() {
        let mut j = i;
        while j < words.len() && single(&words[j]) {
            j += 1;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        if j - i >= 4 {
            for w in &words[i..j] {
                out.push_str(w);
            }
            i = j;
        } else {
            out.push_str(&words[i]);
            i += 1;
        }
    }
    out
}

/// Digits between letters read as the letters they imitate (`passw0rd`, `l0gin`);
/// the reference for [`unleet_in_place`].
#[cfg(test)]
fn unleet(w: &str) -> std::borrow::Cow<'_, str> {
    if !w.bytes().any(|b| b.is_ascii_digit()) || w.bytes().filter(|b| b.is_ascii_alphabetic()).count() < 3 {
        return std::borrow::Cow::Borrowed(w);
    }
    let b: Vec<char> = w.chars().collect();
    let mut s = String::with_capacity(w.len());
    for (i, &c) in b.iter().enumerate() {
        let between = i > 0 && b[i - 1].is_ascii_alphabetic() && b.get(i + 1).is_some_and(|c| c.is_ascii_alphabetic());
        s.push(match c {
            '0' if between => 'o',
            '1' if between => 'i',
            '3' if between => 'e',
            '4' if between => 'a',
            '5' if between => 's',
            '7' if between => 't',
            other => other,
        });
    }
    std::borrow::Cow::Owned(s)
}

const BLOCK: &[&str] = &[
    "address", "article", "aside", "blockquote", "br", "center", "dd", "div", "dl", "dt", "fieldset", "figcaption", "figure",
    "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "li", "main", "nav", "ol", "option", "p", "pre",
    "section", "table", "tbody", "td", "tfoot", "th", "thead", "title", "tr", "ul", "button", "img",
];
const SKIP: &[&str] = &["script", "style", "head", "template", "noscript", "svg", "xml"];

static SECRET_INPUT: std::sync::LazyLock<scraper::Selector> = std::sync::LazyLock::new(|| {
    scraper::Selector::parse("input[type=password i], input[type=email i]").unwrap_or_else(|_| unreachable!("static selector"))
});

/// Replaces long base64 runs (`data:` images, embedded fonts) by nothing, so
/// a megabyte of inline image does not push the text out of `max_html_bytes`.
pub fn strip_inline_data(s: &str) -> std::borrow::Cow<'_, str> {
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

/// What one HTML document yields.
#[derive(Debug, Default)]
pub struct HtmlOut {
    pub text: String,
    pub links: Vec<Link>,
    /// `<input type=password>` count.
    pub password_inputs: usize,
    /// Number of `<form>` elements.
    pub forms: usize,
    /// Addresses of `mailto:` links.
    pub mailto: Vec<String>,
    /// The nesting or tag cap cut the tree short (see [`nesting_cut`]): where, and which.
    pub cut: Option<(usize, NestingLimit)>,
}

fn hidden(el: &scraper::node::Element) -> bool {
    if el.attr("hidden").is_some() {
        return true;
    }
    el.attr("style").is_some_and(|s| {
        let s: String = s.chars().filter(|c| !c.is_whitespace()).collect::<String>().to_ascii_lowercase();
        s.contains("display:none") || s.contains("visibility:hidden")
    })
}

/// Parses an HTML document (at most `limits.max_html_bytes` of it) and returns
/// its visible text (raw, not normalised), links and form facts.
///
/// Only the part before [`nesting_cut`] is built into a tree; the rest, if
/// any, is read as plain text ([`plain_rest`]), so a lure after a nesting bomb
/// is still read, though not its links, and hidden text is not told apart.
pub fn html(source: &str, limits: &Limits) -> HtmlOut {
    let stripped = strip_inline_data(source);
    let src = truncate(&stripped, limits.max_html_bytes);
    let cut = nesting_cut(src, limits.max_html_depth, limits.max_html_tags);
    let (tree_part, rest) = src.split_at(cut.map_or(src.len(), |(at, _)| at));
    let doc = Html::parse_document(tree_part);
    let mut out = HtmlOut { cut, ..HtmlOut::default() };
    let mut skip_depth = 0usize;
    // (node id, href, text collected so far) for open <a> elements
    let mut anchors: Vec<(ego_tree::NodeId, String, String)> = Vec::new();
    for edge in doc.tree.root().traverse() {
        match edge {
            ego_tree::iter::Edge::Open(node) => match node.value() {
                Node::Element(el) => {
                    let name = el.name();
                    if skip_depth > 0 || SKIP.contains(&name) || hidden(el) {
                        skip_depth += 1;
                        continue;
                    }
                    if BLOCK.contains(&name) {
                        out.text.push('\n');
                        for a in anchors.iter_mut() {
                            a.2.push(' ');
                        }
                    }
                    let mut push = |url: &str, source: LinkSource| {
                        if out.links.len() < limits.max_links {
                            if let Some(l) = Link::parse(url, source, None) {
                                out.links.push(l);
                            }
                        }
                    };
                    match name {
                        "a" | "area" => {
                            if let Some(m) = el.attr("href").and_then(|h| h.trim().get(..7).filter(|p| p.eq_ignore_ascii_case("mailto:")).map(|_| h.trim()[7..].to_string())) {
                                let addr = m.split(['?', ',']).next().unwrap_or("").trim().to_ascii_lowercase();
                                if addr.contains('@') && out.mailto.len() < 20 && !out.mailto.contains(&addr) {
                                    out.mailto.push(addr);
                                }
                            }
                            if let Some(h) = el.attr("href") {
                                anchors.push((node.id(), h.to_string(), String::new()));
                            }
                        }
                        "form" => {
                            out.forms += 1;
                            // A search or subscribe box is not a credential form: only forms with a password or e-mail field count.
                            let asks = scraper::ElementRef::wrap(node).is_some_and(|f| f.select(&SECRET_INPUT).next().is_some());
                            if let (Some(a), true) = (el.attr("action"), asks) {
                                push(a, LinkSource::FormAction);
                            }
                        }
                        "input" if el.attr("type").is_some_and(|t| t.trim().eq_ignore_ascii_case("password")) => {
                            out.password_inputs += 1;
                        }
                        "meta" if el.attr("http-equiv").is_some_and(|h| h.eq_ignore_ascii_case("refresh")) => {
                            if let Some((c, p)) = el.attr("content").and_then(|c| c.to_ascii_lowercase().find("url=").map(|p| (c, p))) {
                                push(c[p + 4..].trim().trim_matches(|c| c == '\'' || c == '"'), LinkSource::Href);
                            }
                        }
                        _ => {}
                    }
                    if let Some(s) = el.attr("src") {
                        // data: images are ordinary inline images
                        if !s.trim_start().get(..5).is_some_and(|p| p.eq_ignore_ascii_case("data:")) {
                            push(s, LinkSource::Src);
                        }
                    }
                    if name == "img" {
                        if let Some(alt) = el.attr("alt") {
                            out.text.push_str(alt);
                        }
                    }
                }
                Node::Text(t) if skip_depth == 0 => {
                    if out.text.len() < limits.max_text_bytes {
                        out.text.push_str(t);
                    }
                    for a in anchors.iter_mut() {
                        if a.2.len() < 1000 {
                            a.2.push_str(t);
                        }
                    }
                }
                _ => {}
            },
            ego_tree::iter::Edge::Close(node) => {
                if let Node::Element(el) = node.value() {
                    if skip_depth > 0 {
                        skip_depth -= 1;
                        continue;
                    }
                    if BLOCK.contains(&el.name()) {
                        out.text.push('\n');
                    }
                    if anchors.last().is_some_and(|a| a.0 == node.id()) {
                        let (_, href, text) = anchors.pop().unwrap_or_else(|| unreachable!());
                        if out.links.len() < limits.max_links {
                            let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
                            if let Some(l) = Link::parse(&href, LinkSource::Href, Some(text)) {
                                out.links.push(l);
                            }
                        }
                    }
                }
            }
        }
    }
    if !rest.is_empty() {
        let room = limits.max_text_bytes.saturating_sub(out.text.len());
        out.password_inputs += plain_rest(rest, room, &mut out.text);
    }
    out
}

/// Which cap [`nesting_cut`] applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NestingLimit {
    /// More elements open than `limits.max_html_depth`.
    Depth,
    /// More tags (start and end) than `limits.max_html_tags`.
    Tags,
}

/// Elements without content: no end tag, nothing nests in them.
const VOID: &[&str] = &[
    "area", "base", "basefont", "bgsound", "br", "col", "embed", "frame", "hr", "image", "img", "input", "keygen", "link", "meta",
    "param", "source", "track", "wbr",
];
/// Elements whose end tag may be left out: an end tag of an element below them closes them too.
const IMPLIED: &[&str] = &[
    "dd", "dt", "li", "optgroup", "option", "p", "rb", "rp", "rt", "rtc", "caption", "colgroup", "tbody", "td", "tfoot", "th", "thead", "tr",
];
/// Start tags that end SVG or MathML content (html5ever `step_foreign`; `font` only with color, face or size).
const BREAKOUT: &[&str] = &[
    "b", "big", "blockquote", "body", "br", "center", "code", "dd", "div", "dl", "dt", "em", "embed", "h1", "h2", "h3", "h4", "h5", "h6",
    "head", "hr", "i", "img", "li", "listing", "menu", "meta", "nobr", "ol", "p", "pre", "ruby", "s", "small", "span", "strong", "strike",
    "sub", "sup", "table", "tt", "u", "ul", "var",
];
/// SVG elements whose content is HTML again.
const SVG_INTEGRATION: &[&str] = &["foreignobject", "desc", "title"];
/// MathML elements whose content is HTML again (`annotation-xml` only with an HTML encoding: unsure).
const MATH_INTEGRATION: &[&str] = &["mi", "mo", "mn", "ms", "mtext"];

fn one_of(name: &str, set: &[&str]) -> bool {
    set.iter().any(|s| s.eq_ignore_ascii_case(name))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Ns {
    Html,
    Svg,
    Math,
}

/// One element open in [`nesting_cut`]'s model of the parser's stack.
struct Open<'a> {
    name: &'a str,
    ns: Ns,
}

impl Open<'_> {
    /// An SVG or MathML element that the parser's HTML rules treat as "special" (they stop at it).
    fn special_foreign(&self) -> bool {
        match self.ns {
            Ns::Html => false,
            Ns::Svg => one_of(self.name, SVG_INTEGRATION),
            Ns::Math => one_of(self.name, MATH_INTEGRATION) || self.name.eq_ignore_ascii_case("annotation-xml"),
        }
    }
}

/// How the parser reads the next tag, as far as the model knows.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Context {
    Html,
    /// Inside SVG or MathML: `/>` closes, HTML-only tags end it.
    Foreign,
    /// In `annotation-xml`: either. Read as HTML, but without skipping text-only content.
    Unsure,
}

fn context(stack: &[Open]) -> Context {
    match stack.last() {
        Some(o) if o.ns == Ns::Math && o.name.eq_ignore_ascii_case("annotation-xml") => Context::Unsure,
        Some(o) if o.ns != Ns::Html && !o.special_foreign() => Context::Foreign,
        _ => Context::Html,
    }
}

/// The cap on the HTML handed to the tree builder: the byte offset of the
/// first tag at which more than `max_depth` elements are open or more than
/// `max_tags` tags (start and end) have been seen, and which limit; None when
/// the whole document is within both. One pass, no allocation per tag.
///
/// Why: html5ever's tree builder walks its stack of open elements for most
/// tags (is a `p` in button scope, where does this end tag match), so its
/// cost is tags × depth: 13,000 nested `<div>` took 0.3 s, 50,000 took 6 s,
/// and the 1 MiB HTML limit admits 200,000. With the depth and the tag count
/// capped, a document costs at most about `max_tags × max_depth` steps.
///
/// The depth is a model of the parser's stack, erring deep: every start tag
/// of a non-void element opens one (SVG/MathML self-closing tags excepted); an
/// end tag closes its element only where the parser's would (the element is
/// open with nothing above it but elements whose end tag may be left out, or
/// SVG/MathML content); a `p`, `li`, `dd`/`dt`, `option`, cell or row start
/// tag closes one of its kind when it is the current element. Elements the
/// parser closes in other ways stay open here, so markup that confuses the
/// parser (`<span><div></span>` repeated) counts deeper, never shallower.
/// The content of text-only elements (`<script>`, `<style>`, `<title>`,
/// `<textarea>` …) is skipped as the tokenizer does, except inside SVG/MathML
/// or a `<select>`, where it is scanned as markup, which can only count more.
pub fn nesting_cut(html: &str, max_depth: usize, max_tags: usize) -> Option<(usize, NestingLimit)> {
    let b = html.as_bytes();
    let mut stack: Vec<Open> = Vec::new();
    let mut tags = 0usize;
    let mut i = 0;
    while let Some(p) = memchr::memchr(b'<', &b[i..]) {
        let at = i + p;
        let rest = &b[at + 1..];
        if rest.starts_with(b"!--") {
            let text_only_open = stack.iter().any(|o| o.ns == Ns::Html && one_of(o.name, TEXT_ONLY));
            let mut end = at + 4 + comment_len(&b[at + 4..]);
            if text_only_open {
                // this may be text of a <script> or <title>, which an end tag ends: read markup again from the first `</`
                end = memchr::memmem::find(&b[at + 4..end], b"</").map_or(end, |q| at + 4 + q);
            }
            i = end;
            continue;
        }
        if matches!(rest.first(), Some(b'!' | b'?')) || rest.first() == Some(&b'/') && !rest.get(1).is_some_and(u8::is_ascii_alphabetic) {
            // bogus comment (or `</>`): up to the next `>`
            i = memchr::memchr(b'>', rest).map_or(b.len(), |q| at + 2 + q);
            continue;
        }
        let end_tag = rest.first() == Some(&b'/');
        let name_at = at + 1 + end_tag as usize;
        if !b.get(name_at).is_some_and(u8::is_ascii_alphabetic) {
            i = at + 1;
            continue;
        }
        let name_len = b[name_at..].iter().position(|c| matches!(c, b'\t' | b'\n' | b'\x0C' | b'\r' | b' ' | b'/' | b'>'));
        let name_end = name_at + name_len.unwrap_or(b.len() - name_at);
        // the name is ASCII up to a delimiter: a char boundary
        let name = &html[name_at..name_end];
        let Some((tag_end, self_closing)) = tag_end(b, name_end) else { break };
        i = tag_end;
        tags += 1;
        if tags > max_tags {
            return Some((at, NestingLimit::Tags));
        }
        if end_tag {
            if context(&stack) == Context::Foreign && (name.eq_ignore_ascii_case("p") || name.eq_ignore_ascii_case("br")) {
                pop_foreign(&mut stack);
            }
            close(&mut stack, name);
            continue;
        }
        if context(&stack) == Context::Foreign
            && (one_of(name, BREAKOUT) || name.eq_ignore_ascii_case("font") && font_breaks_out(&b[name_end..tag_end]))
        {
            pop_foreign(&mut stack);
        }
        let cx = context(&stack);
        // inside SVG or MathML every element takes its parent's namespace, even <svg> or <math>
        let ns = if cx == Context::Foreign {
            stack.last().map_or(Ns::Html, |o| o.ns)
        } else if name.eq_ignore_ascii_case("svg") {
            Ns::Svg
        } else if name.eq_ignore_ascii_case("math") {
            Ns::Math
        } else {
            Ns::Html
        };
        if cx == Context::Foreign {
            if !self_closing {
                stack.push(Open { name, ns });
            }
        } else if ns != Ns::Html || !one_of(name, VOID) {
            // the current element this start tag closes (the parser closes at least that)
            let closes: &[&str] = if ns != Ns::Html {
                &[]
            } else if one_of(name, &["dd", "dt"]) {
                &["dd", "dt"]
            } else if one_of(name, &["td", "th", "tr"]) {
                &["td", "th"]
            } else if name.eq_ignore_ascii_case("option") {
                &["option"]
            } else if name.eq_ignore_ascii_case("li") || one_of(name, CLOSES_P) {
                &["li", "p"][usize::from(!name.eq_ignore_ascii_case("li"))..]
            } else {
                &[]
            };
            if stack.last().is_some_and(|o| o.ns == Ns::Html && one_of(o.name, closes)) {
                stack.pop();
            }
            // a cell or row directly in a table: the parser opens the rows and body it implies
            let top = stack.last().filter(|o| o.ns == Ns::Html).map_or("", |o| o.name);
            if one_of(name, &["td", "th", "tr"]) && top.eq_ignore_ascii_case("table") {
                stack.push(Open { name: "tbody", ns });
            }
            if one_of(name, &["td", "th"]) && one_of(stack.last().map_or("", |o| o.name), &["tbody", "thead", "tfoot"]) {
                stack.push(Open { name: "tr", ns });
            }
            stack.push(Open { name, ns });
        }
        if stack.len() > max_depth {
            return Some((at, NestingLimit::Depth));
        }
    }
    None
}

/// Elements whose content the tokenizer reads as text, up to their end tag (`plaintext`: to the end).
/// [`nesting_cut`] reads it as markup all the same, the parser may not have opened them.
const TEXT_ONLY: &[&str] = &["script", "style", "title", "textarea", "xmp", "iframe", "noembed", "noframes", "noscript", "plaintext"];

/// Start tags that close an open `p` (as html5ever's "close a p element in button scope").
const CLOSES_P: &[&str] = &[
    "address", "article", "aside", "blockquote", "center", "details", "dialog", "dir", "div", "dl", "fieldset", "figcaption", "figure",
    "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hgroup", "listing", "main", "menu", "nav", "ol", "p", "pre",
    "section", "summary", "table", "ul", "xmp",
];

/// Leaves SVG/MathML content: closes its elements up to an integration point or HTML.
fn pop_foreign(stack: &mut Vec<Open>) {
    while context(stack) == Context::Foreign {
        stack.pop();
    }
}

/// `</name>` in [`nesting_cut`]: closes the element where the parser would at least.
fn close(stack: &mut Vec<Open>, name: &str) {
    if name.eq_ignore_ascii_case("body") || name.eq_ignore_ascii_case("html") {
        // the parser only changes mode
        return;
    }
    let mut k = stack.len();
    while k > 0 {
        k -= 1;
        let o = &stack[k];
        if o.name.eq_ignore_ascii_case(name) {
            stack.truncate(k);
            return;
        }
        let passes = if o.ns == Ns::Html { one_of(o.name, IMPLIED) } else { !o.special_foreign() };
        if !passes {
            return;
        }
    }
}

/// The length of a comment's text after `<!--`, its end included (`-->`, `--!>`, or `>` right away).
fn comment_len(b: &[u8]) -> usize {
    if b.first() == Some(&b'>') {
        return 1;
    }
    if b.starts_with(b"->") {
        return 2;
    }
    let mut j = 0;
    while let Some(p) = memchr::memchr(b'-', &b[j..]) {
        let d = j + p;
        if b[d..].starts_with(b"-->") {
            return d + 3;
        }
        if b[d..].starts_with(b"--!>") {
            return d + 4;
        }
        j = d + 1;
    }
    b.len()
}

/// After a tag's name at `from`: where the tag ends (after the first `>`, even
/// inside a quoted value: see [`nesting_cut`]) and whether it ends with `/>`.
/// None when the document ends first.
fn tag_end(b: &[u8], from: usize) -> Option<(usize, bool)> {
    let e = from + memchr::memchr(b'>', &b[from..])?;
    Some((e + 1, e > from && b[e - 1] == b'/'))
}

/// `<font>` with a color, face or size attribute ends SVG/MathML content.
fn font_breaks_out(attrs: &[u8]) -> bool {
    let a = attrs.to_ascii_lowercase();
    [&b"color"[..], b"face", b"size"].iter().any(|n| memchr::memmem::find(&a, n).is_some())
}

/// Where the text of a text-only element ends: at the first `</name` followed by white space, `/` or `>`
/// (the tokenizer ends there or, in an escaped `<script>`, later).
fn raw_text_end(b: &[u8], from: usize, name: &str) -> usize {
    let mut j = from;
    while let Some(p) = memchr::memmem::find(&b[j..], b"</") {
        let e = j + p + 2;
        let n = e + name.len();
        if b.get(e..n).is_some_and(|t| t.eq_ignore_ascii_case(name.as_bytes()))
            && b.get(n).is_some_and(|c| matches!(c, b'\t' | b'\n' | b'\x0C' | b'\r' | b' ' | b'/' | b'>'))
        {
            return e - 2;
        }
        j = e;
    }
    b.len()
}

/// The text of HTML past [`nesting_cut`], read without a tree: tags dropped
/// (each a word break), `<script>`/`<style>` content skipped, at most `room`
/// bytes appended to `text`. Returns the `<input type=password>` tags seen.
pub fn plain_rest(html: &str, room: usize, text: &mut String) -> usize {
    let b = html.as_bytes();
    let limit = text.len() + room;
    let mut passwords = 0;
    let mut i = 0;
    let push = |text: &mut String, s: &str| {
        if text.len() < limit {
            text.push_str(truncate(s, limit - text.len()));
        }
    };
    while let Some(p) = memchr::memchr(b'<', &b[i..]) {
        let at = i + p;
        push(text, &html[i..at]);
        let rest = &b[at + 1..];
        let name_at = at + 1 + (rest.first() == Some(&b'/')) as usize;
        if rest.starts_with(b"!--") {
            i = at + 4 + comment_len(&b[at + 4..]);
        } else if matches!(rest.first(), Some(b'!' | b'?' | b'/')) || b.get(name_at).is_some_and(u8::is_ascii_alphabetic) {
            let name_end = name_at + b[name_at..].iter().position(|c| !c.is_ascii_alphanumeric()).unwrap_or(b.len() - name_at);
            let Some((end, _)) = tag_end(b, name_end) else { break };
            let name = &html[name_at..name_end];
            if name.eq_ignore_ascii_case("input") && b[name_end..end].to_ascii_lowercase().windows(8).any(|w| w == b"password") {
                passwords += 1;
            }
            i = if rest.first() != Some(&b'/') && (name.eq_ignore_ascii_case("script") || name.eq_ignore_ascii_case("style")) {
                raw_text_end(b, end, name)
            } else {
                end
            };
            push(text, " ");
        } else {
            push(text, "<");
            i = at + 1;
        }
    }
    if i < b.len() {
        push(text, &html[i..]);
    }
    passwords
}

/// The longest prefix of `s` of at most `max` bytes that ends on a char boundary.
pub fn truncate(s: &str, max: usize) -> &str {
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
pub fn plain_urls(text: &str, limits: &Limits, out: &mut Vec<Link>) {
    let mut finder = linkify::LinkFinder::new();
    finder.kinds(&[linkify::LinkKind::Url]);
    finder.url_must_have_scheme(false);
    for l in finder.links(text) {
        if out.len() >= limits.max_links {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The one-pass normaliser gives exactly what the first (three-pass) one gave.
    #[test]
    fn fast_normaliser_matches_the_reference() {
        const PIECES: &[&str] = &[
            "p@ss",
            "w0rd",
            " ",
            "  ",
            "a",
            " b",
            " c ",
            "d",
            "Vérifiez",
            "ß",
            "\u{200B}",
            "ＡＰＩ",
            "jo@example.com",
            "$",
            "u$er",
            "Ω",
            "Ωμέγα",
            "pаsswоrd",
            "\n",
            "\t",
            ".",
            "-",
            "1",
            "l0g1n",
            "@",
            "x@y",
            "é",
            "e\u{301}",
            "\u{FEFF}",
            "日本語",
            "K",
            "ﬁ",
            "Ⅻ",
            "\u{202E}",
            "@a.",
            "b@c d.",
            "\u{A0}",
            "Straße",
            "ǅ",
            "İ",
            "3",
            "4ever",
            "s3cur1ty",
        ];
        let mut seed = 0x2545F4914F6CDD1Du64;
        for n in 0..4000 {
            let mut s = String::new();
            for _ in 0..(n % 12) + 1 {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                s.push_str(PIECES[(seed % PIECES.len() as u64) as usize]);
            }
            assert_eq!(normalize(&s), normalize_reference(&s), "input {s:?}");
        }
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/golden");
        let mut files = 0;
        let mut paths = Vec::new();
        for e in std::fs::read_dir(&dir).expect("golden fixtures") {
            let p = e.expect("dir entry").path();
            if p.is_dir() {
                paths.extend(
                    std::fs::read_dir(&p)
                        .expect("golden family dir")
                        .map(|e| e.expect("dir entry").path()),
                );
            }
        }
        for p in paths {
            if p.extension().is_some_and(|x| x == "eml") {
                let raw = std::fs::read(&p).expect("read fixture");
                let msg = mail_parser::MessageParser::default()
                    .parse(&raw)
                    .expect("fixture parses");
                for part in &msg.parts {
                    let t = match &part.body {
                        mail_parser::PartType::Text(t) => t.to_string(),
                        mail_parser::PartType::Html(h) => html(h, &Limits::default()).text,
                        _ => continue,
                    };
                    assert_eq!(normalize(&t), normalize_reference(&t), "{}", p.display());
                }
                files += 1;
            }
        }
        assert!(files >= 50, "only {files} golden files");
    }

    #[test]
    fn normalisation_folds_accents_case_and_punctuation() {
        assert_eq!(normalize("Vérifiez   VOTRE mot-de-passe!"), "verifiez votre mot de passe");
        assert_eq!(normalize("Straße"), "strasse");
        assert_eq!(normalize("ＡＰＩ　ｋｅｙ"), "api key");
    }

    #[test]
    fn homoglyphs_fold_to_latin() {
        // Cyrillic о, а, е; Greek ο
        assert_eq!(normalize("pаsswоrd vеrificatiοn"), "password verification");
    }

    #[test]
    fn leetspeak_inside_words_is_read() {
        assert_eq!(normalize("p@ssw0rd l0gin"), "password login");
        assert_eq!(normalize("mail jo@example.com 2fa 24 hours"), "mail jo example com 2fa 24 hours");
    }

    #[test]
    fn letter_spacing_is_collapsed() {
        assert_eq!(normalize("p a s s w o r d reset"), "password reset");
        assert_eq!(normalize("a b c"), "a b c");
    }

    #[test]
    fn html_blocks_keep_word_boundaries_and_scripts_are_not_text() {
        let h = html(
            "<html><head><title>x</title><style>p{}</style></head><body><div>verify</div><div>account</div>\
             <script>var password=1</script><p style='display:none'>hidden words</p><a href='https://evil.example/x'>Sign <b>in</b></a></body></html>",
            &Limits::default(),
        );
        assert_eq!(normalize(&h.text), "verify account sign in");
        assert_eq!(h.links.len(), 1);
        assert_eq!(h.links[0].anchor_text.as_deref(), Some("Sign in"));
        assert_eq!(h.links[0].host.as_deref(), Some("evil.example"));
    }
}
