//! The text a reader sees in an HTML document, its links and its forms.
//!
//! HTML is parsed with html5ever (via `scraper`), the parser browsers'
//! behaviour is specified by, so broken markup reads as a mail client shows it.
//! Block elements and `<br>` end a word; `<script>`, `<style>`, `<head>`,
//! `<template>` and elements hidden with `display:none` or `hidden` are not
//! read.

use super::urls::strip_inline_data;
use super::{truncate, Limits, Link, LinkSource};
use scraper::node::Node;
use scraper::Html;

const BLOCK: &[&str] = &[
    "address",
    "article",
    "aside",
    "blockquote",
    "br",
    "center",
    "dd",
    "div",
    "dl",
    "dt",
    "fieldset",
    "figcaption",
    "figure",
    "footer",
    "form",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "header",
    "hr",
    "li",
    "main",
    "nav",
    "ol",
    "option",
    "p",
    "pre",
    "section",
    "table",
    "tbody",
    "td",
    "tfoot",
    "th",
    "thead",
    "title",
    "tr",
    "ul",
    "button",
    "img",
];
const SKIP: &[&str] = &["script", "style", "head", "template", "noscript", "svg", "xml"];

static SECRET_INPUT: std::sync::LazyLock<scraper::Selector> = std::sync::LazyLock::new(|| {
    scraper::Selector::parse("input[type=password i], input[type=email i]").unwrap_or_else(|_| unreachable!("static selector"))
});

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
                            if let Some(m) = el.attr("href").and_then(|h| {
                                h.trim().get(..7).filter(|p| p.eq_ignore_ascii_case("mailto:")).map(|_| h.trim()[7..].to_string())
                            }) {
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
    "area", "base", "basefont", "bgsound", "br", "col", "embed", "frame", "hr", "image", "img", "input", "keygen", "link", "meta", "param",
    "source", "track", "wbr",
];
/// Elements whose end tag may be left out: an end tag of an element below them closes them too.
const IMPLIED: &[&str] = &[
    "dd", "dt", "li", "optgroup", "option", "p", "rb", "rp", "rt", "rtc", "caption", "colgroup", "tbody", "td", "tfoot", "th", "thead",
    "tr",
];
/// Start tags that end SVG or MathML content (html5ever `step_foreign`; `font` only with color, face or size).
const BREAKOUT: &[&str] = &[
    "b",
    "big",
    "blockquote",
    "body",
    "br",
    "center",
    "code",
    "dd",
    "div",
    "dl",
    "dt",
    "em",
    "embed",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "head",
    "hr",
    "i",
    "img",
    "li",
    "listing",
    "menu",
    "meta",
    "nobr",
    "ol",
    "p",
    "pre",
    "ruby",
    "s",
    "small",
    "span",
    "strong",
    "strike",
    "sub",
    "sup",
    "table",
    "tt",
    "u",
    "ul",
    "var",
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
    "address",
    "article",
    "aside",
    "blockquote",
    "center",
    "details",
    "dialog",
    "dir",
    "div",
    "dl",
    "fieldset",
    "figcaption",
    "figure",
    "footer",
    "form",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "header",
    "hgroup",
    "listing",
    "main",
    "menu",
    "nav",
    "ol",
    "p",
    "pre",
    "section",
    "summary",
    "table",
    "ul",
    "xmp",
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
fn plain_rest(html: &str, room: usize, text: &mut String) -> usize {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::content::normalise::normalize;

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
