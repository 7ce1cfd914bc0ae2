//! The text a reader sees in an HTML document, its links and its forms.
//!
//! HTML is parsed with html5ever (via `scraper`), the parser browsers'
//! behaviour is specified by, so broken markup reads as a mail client shows it.
//! Block elements and `<br>` end a word; `<script>`, `<style>`, `<head>`,
//! `<template>` are not read; text the reader does not see (display:none,
//! zero size, transparent, same colour as the background, off-screen …, see
//! `Look`) is kept apart as hidden text, quoted blocks (`<blockquote type=cite>`,
//! `gmail_quote`, after a forward separator) as quoted text.

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

static TITLE: std::sync::LazyLock<scraper::Selector> =
    std::sync::LazyLock::new(|| scraper::Selector::parse("head > title, title").unwrap_or_else(|_| unreachable!("static selector")));

/// An element that starts quoted text: `<blockquote type=cite>`, Gmail's `gmail_quote`
/// (not its `gmail_attr` line alone), Outlook's `divRplyFwdMsg`, Apple Mail's `AppleOriginalContents`.
fn is_quote<E: ElementView + ?Sized>(el: &E) -> bool {
    if el.name() == "blockquote" && el.attr("type").is_some_and(|t| t.eq_ignore_ascii_case("cite")) {
        return true;
    }
    let class = el.attr("class").unwrap_or("");
    let id = el.attr("id").unwrap_or("");
    class.split_whitespace().any(|c| c == "gmail_quote" || c == "moz-forward-container" || c == "yahoo_quoted")
        || id == "divRplyFwdMsg"
        || id == "appendonsend"
        || class.contains("AppleOriginalContents")
}

/// An image a reader hardly sees or that is an icon: width or height under 40 px.
fn tiny_image<E: ElementView + ?Sized>(el: &E) -> bool {
    let dim = |a: &str| el.attr(a).and_then(|v| v.trim().trim_end_matches("px").parse::<f64>().ok());
    dim("width").is_some_and(|w| w < 40.0) || dim("height").is_some_and(|h| h < 40.0)
}

/// A text node that starts an Outlook-style reply or forward header block.
fn outlook_header(t: &str) -> bool {
    super::quoted::is_separator(t.trim())
}

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
    /// Text the reader does not see (see [`Look`]): how it was hidden and its bytes, per way.
    pub hidden: Vec<(&'static str, usize)>,
    /// The hidden text itself, at most 4 KiB (matched for brands and lures, never logged).
    pub hidden_text: String,
    /// The document's `<title>`, whitespace collapsed, at most 200 bytes.
    pub title: Option<String>,
    /// `alt` text of visible images, at most 20.
    pub image_alts: Vec<String>,
    /// Visible images inside a link (`<a href><img></a>`) or with an image map (`usemap`), not tiny (icons, pixels).
    pub linked_images: usize,
    /// Quoted text: `<blockquote type=cite>`, Gmail's `gmail_quote`, Outlook's reply header and what follows it.
    pub quoted: String,
}

/// A colour as CSS gives it: an RGB value, or transparent (alpha 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Colour {
    Rgb(u8, u8, u8),
    Transparent,
}

/// Parses `#rgb`, `#rrggbb`, `rgb(r,g,b)`, `rgba(r,g,b,a)`, `transparent` and a few named colours (lowercase, no spaces).
fn colour(v: &str) -> Option<Colour> {
    let v = v.trim_end_matches("!important");
    if v == "transparent" {
        return Some(Colour::Transparent);
    }
    if let Some(h) = v.strip_prefix('#') {
        let h: String = h.chars().take_while(|c| c.is_ascii_hexdigit()).collect();
        let d = |s: &str| u8::from_str_radix(s, 16).ok();
        return match h.len() {
            3 | 4 => {
                let c: Vec<u8> = h.chars().filter_map(|c| d(&format!("{c}{c}"))).collect();
                if h.len() == 4 && c[3] == 0 {
                    return Some(Colour::Transparent);
                }
                Some(Colour::Rgb(c[0], c[1], c[2]))
            }
            6 | 8 => {
                if h.len() == 8 && d(&h[6..8]) == Some(0) {
                    return Some(Colour::Transparent);
                }
                Some(Colour::Rgb(d(&h[0..2])?, d(&h[2..4])?, d(&h[4..6])?))
            }
            _ => None,
        };
    }
    if let Some(args) = v.strip_prefix("rgba(").or_else(|| v.strip_prefix("rgb(")) {
        let args: Vec<&str> = args.trim_end_matches(')').split([',', '/', ' ']).filter(|a| !a.is_empty()).collect();
        let n = |a: &str| -> Option<u8> {
            if let Some(p) = a.strip_suffix('%') {
                p.parse::<f64>().ok().map(|p| (p.clamp(0.0, 100.0) * 2.55).round() as u8)
            } else {
                a.parse::<f64>().ok().map(|x| x.clamp(0.0, 255.0).round() as u8)
            }
        };
        if let Some(a) = args.get(3) {
            let alpha = a.strip_suffix('%').map_or_else(|| a.parse::<f64>().ok(), |p| p.parse::<f64>().ok().map(|p| p / 100.0));
            if alpha.is_some_and(|x| x <= 0.0) {
                return Some(Colour::Transparent);
            }
        }
        return Some(Colour::Rgb(n(args.first()?)?, n(args.get(1)?)?, n(args.get(2)?)?));
    }
    Some(match v {
        "white" => Colour::Rgb(255, 255, 255),
        "black" => Colour::Rgb(0, 0, 0),
        "red" => Colour::Rgb(255, 0, 0),
        "blue" => Colour::Rgb(0, 0, 255),
        "green" => Colour::Rgb(0, 128, 0),
        "yellow" => Colour::Rgb(255, 255, 0),
        "gray" | "grey" => Colour::Rgb(128, 128, 128),
        "silver" => Colour::Rgb(192, 192, 192),
        _ => return None,
    })
}

/// Two colours a reader cannot tell apart (each channel within 8 of the other).
fn same_colour(a: Colour, b: Colour) -> bool {
    match (a, b) {
        (Colour::Rgb(r1, g1, b1), Colour::Rgb(r2, g2, b2)) => r1.abs_diff(r2) <= 8 && g1.abs_diff(g2) <= 8 && b1.abs_diff(b2) <= 8,
        _ => false,
    }
}

/// A CSS length in px (`0`, `1px`, `0.5pt`, `-9999px`, `0em`); None for other units or keywords.
fn px(v: &str) -> Option<f64> {
    let v = v.trim_end_matches("!important");
    let (num, unit) = v.split_at(v.find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-' || c == '+')).unwrap_or(v.len()));
    let n: f64 = num.parse().ok()?;
    match unit {
        "" | "px" => Some(n),
        "pt" => Some(n * 4.0 / 3.0),
        "em" | "rem" => Some(n * 16.0),
        "%" if n == 0.0 => Some(0.0),
        _ => None,
    }
}

/// Rendering state of an open element, inherited by its content.
#[derive(Debug, Clone, Copy, Default)]
struct Look {
    /// The element and all its content are not rendered (display:none, `hidden`, opacity:0,
    /// mso-hide:all, off-screen, a zero-size box with overflow hidden): how.
    gone: Option<&'static str>,
    /// font-size of at most 1px (a descendant may set it again).
    tiny: bool,
    /// visibility:hidden (a descendant may set visibility:visible).
    invisible: bool,
    /// Inherited text colour (inline `color` or `<font color>`).
    colour: Option<Colour>,
    /// Background of the nearest ancestor with an inline background (`background(-color)` or `bgcolor`).
    background: Option<Colour>,
}

impl Look {
    /// How the text of this element is hidden from the reader, if it is.
    fn text_hidden(&self) -> Option<&'static str> {
        if let Some(g) = self.gone {
            return Some(g);
        }
        if self.tiny {
            return Some("font-size 0 or 1px");
        }
        if self.invisible {
            return Some("visibility:hidden");
        }
        match (self.colour, self.background) {
            (Some(Colour::Transparent), _) => Some("transparent colour"),
            (Some(c), Some(b)) if same_colour(c, b) => Some("same colour as background"),
            _ => None,
        }
    }

    /// The look of `el`'s content, inside `self`.
    fn child<E: ElementView + ?Sized>(&self, el: &E) -> Look {
        let mut l = *self;
        if l.gone.is_some() {
            return l;
        }
        if el.attr("hidden").is_some() {
            l.gone = Some("hidden attribute");
            return l;
        }
        if let Some(c) = el.attr("bgcolor").and_then(|c| colour(&c.trim().to_ascii_lowercase())) {
            l.background = Some(c);
        }
        if el.name() == "font" {
            if let Some(c) = el.attr("color").and_then(|c| colour(&c.trim().to_ascii_lowercase())) {
                l.colour = Some(c);
            }
            if el.attr("size").is_some_and(|s| s.trim() == "0") {
                l.tiny = true;
            }
        }
        let Some(style) = el.attr("style") else { return l };
        let style = style.to_ascii_lowercase();
        let (mut abs, mut off, mut zero_w, mut zero_h, mut clip) = (false, false, false, false, false);
        for decl in style.split(';') {
            let Some((k, v)) = decl.split_once(':') else { continue };
            let k = k.trim();
            let spaced = v.trim();
            let v: String = v.chars().filter(|c| !c.is_whitespace()).collect();
            let v = v.as_str();
            match k {
                "display" if v.starts_with("none") => l.gone = Some("display:none"),
                "mso-hide" if v.starts_with("all") => l.gone = Some("mso-hide:all"),
                "opacity" if v.trim_end_matches("!important").parse::<f64>().is_ok_and(|o| o <= 0.01) => l.gone = Some("opacity:0"),
                "visibility" => l.invisible = v.starts_with("hidden") || v.starts_with("collapse"),
                "font-size" => {
                    if let Some(n) = px(v) {
                        l.tiny = n <= 1.0;
                    }
                }
                "color" => {
                    if let Some(c) = colour(v) {
                        l.colour = Some(c);
                    }
                }
                "background" | "background-color" => {
                    // `background: #fff url(…)`: the first word that is a colour
                    if let Some(c) = colour(v).or_else(|| spaced.split_whitespace().find_map(colour)) {
                        l.background = Some(c);
                    }
                }
                "position" => abs = v.starts_with("absolute") || v.starts_with("fixed"),
                "left" | "top" | "right" | "margin-left" | "margin-top" => off |= px(v).is_some_and(|n| n <= -500.0),
                "text-indent" if px(v).is_some_and(|n| n <= -500.0) => l.gone = Some("off-screen (text-indent)"),
                "width" | "max-width" => zero_w |= px(v).is_some_and(|n| n <= 1.0),
                "height" | "max-height" => zero_h |= px(v).is_some_and(|n| n <= 1.0),
                "overflow" => clip = v.starts_with("hidden") || v.starts_with("clip"),
                _ => {}
            }
        }
        if l.gone.is_none() {
            if (abs || style.contains("margin")) && off {
                l.gone = Some("off-screen (negative position)");
            } else if clip && (zero_w || zero_h) {
                l.gone = Some("zero-size box");
            }
        }
        l
    }
}

/// What [`Walk`] reads of an element: its (lowercase) name and attributes.
pub(super) trait ElementView {
    fn name(&self) -> &str;
    fn attr(&self, name: &str) -> Option<&str>;
}

impl ElementView for scraper::node::Element {
    fn name(&self) -> &str {
        scraper::node::Element::name(self)
    }
    fn attr(&self, name: &str) -> Option<&str> {
        scraper::node::Element::attr(self, name)
    }
}

/// Parses an HTML document (at most `limits.max_html_bytes` of it) and returns
/// its visible text (raw, not normalised), links and form facts.
///
/// Only the part before [`nesting_cut`] is built into a tree; the rest, if
/// any, is read as plain text ([`plain_rest`]), so a lure after a nesting bomb
/// is still read, though not its links, and hidden text is not told apart.
///
/// The tree is read in one pass over the tokens ([`super::html_model`]) where
/// that pass can tell it is the tree html5ever builds; a document with markup
/// it does not model (mis-nested formatting, content a table moves out of it,
/// SVG, `<select>` …) is parsed by html5ever instead. Both feed the same
/// [`Walk`], and tests hold the two equal.
pub fn html(source: &str, limits: &Limits) -> HtmlOut {
    read(source, limits, true, true, true).unwrap_or_default()
}

/// The document after the steps both parsers share: inline data stripped, truncated, the nesting cut
/// found; then the part within the caps is read (in one pass, or by html5ever: `tree`) and the rest
/// as plain text.
/// `one_pass`: try the one-pass reading first. Both readings read the document with the frequent
/// references decoded ([`predecode`], when `predecoded`): the tokenizers' own lookup of a named
/// reference tries the names one by one, and a newsletter has hundreds of `&nbsp;`.
fn read(source: &str, limits: &Limits, one_pass: bool, predecoded: bool, tree: bool) -> Option<HtmlOut> {
    let stripped = strip_inline_data(source);
    let truncated = truncate(&stripped, limits.max_html_bytes);
    // the cut is found (and reported) in the document as written; references hold no tag
    let cut = nesting_cut(truncated, limits.max_html_depth, limits.max_html_tags);
    let src = if predecoded { predecode(truncated) } else { std::borrow::Cow::Borrowed(truncated) };
    if one_pass && cut.is_none() {
        if let Some(w) = super::html_model::walk(&src, limits) {
            return Some(w.finish(None));
        }
        if !tree {
            return None;
        }
    }
    let changed = matches!(src, std::borrow::Cow::Owned(_));
    let split = cut.map_or(src.len(), |(at, _)| if changed { predecoded_offset(truncated, at) } else { at });
    let (tree_part, rest) = src.split_at(split);
    let walked = match (one_pass && cut.is_some()).then(|| super::html_model::walk(tree_part, limits)).flatten() {
        Some(w) => w,
        None if tree => tree_walk(tree_part, limits),
        None => return None,
    };
    let mut out = walked.finish(cut);
    if !rest.is_empty() {
        let room = limits.max_text_bytes.saturating_sub(out.text.len());
        out.password_inputs += plain_rest(rest, room, &mut out.text);
    }
    Some(out)
}

/// html5ever's reading with the [`predecode`] step or without (tests hold the two equal).
#[cfg(test)]
fn html_opts(source: &str, limits: &Limits, predecoded: bool) -> HtmlOut {
    read(source, limits, false, predecoded, true).unwrap_or_default()
}

/// [`html`] through html5ever's tree only (tests compare it with the one-pass reading).
#[cfg(test)]
pub(super) fn html_tree(source: &str, limits: &Limits) -> HtmlOut {
    read(source, limits, false, true, true).unwrap_or_default()
}

/// [`html`] through the one-pass reading only; None where it defers to html5ever.
#[cfg(test)]
pub(super) fn html_one_pass(source: &str, limits: &Limits) -> Option<HtmlOut> {
    read(source, limits, true, true, false)
}

/// html5ever's tree of `tree_part`, walked.
fn tree_walk<'l>(tree_part: &str, limits: &'l Limits) -> Walk<'l> {
    let doc = Html::parse_document(tree_part);
    let mut w = Walk::new(limits);
    if let Some(t) = doc.select(&TITLE).next() {
        w.title(&t.text().collect::<Vec<_>>().join(" "));
    }
    for edge in doc.tree.root().traverse() {
        match edge {
            ego_tree::iter::Edge::Open(node) => match node.value() {
                Node::Element(el) => {
                    // A search or subscribe box is not a credential form: only forms with a password or e-mail field count.
                    let asks = (el.name() == "form")
                        .then(|| scraper::ElementRef::wrap(node).is_some_and(|f| f.select(&SECRET_INPUT).next().is_some()));
                    w.open(el, asks);
                }
                Node::Text(t) => w.text(&t.text),
                _ => {}
            },
            ego_tree::iter::Edge::Close(node) => {
                if let Node::Element(el) = node.value() {
                    w.close(el.name());
                }
            }
        }
    }
    w
}

/// A place in a [`Walk`]'s output (see [`Walk::mark`]).
#[derive(Debug, Clone, Copy)]
pub(super) struct Mark {
    text: usize,
    quoted: usize,
    links: usize,
    alts: usize,
    looks: usize,
}

/// A form whose credential fields are not known yet (the one-pass reading sees them after its start tag).
struct PendingForm {
    depth: usize,
    /// Where its action goes in `links`, and the action.
    at: usize,
    action: String,
    asks: bool,
}

/// Reads a document's elements and text in tree order (element open, its content, element close)
/// into an [`HtmlOut`]: visible, hidden and quoted text, links, forms, images.
pub(super) struct Walk<'l> {
    out: HtmlOut,
    limits: &'l Limits,
    skip_depth: usize,
    /// the look of each open element (the root's first)
    looks: Vec<Look>,
    /// depth of the open quote (blockquote type=cite, gmail_quote, after an Outlook header), 0 when none
    quote_depth: usize,
    /// (depth in `looks`, href, text collected so far) for open <a> elements
    anchors: Vec<(usize, String, String)>,
    forms: Vec<PendingForm>,
    /// A pending form's action would have met the link cap: the one-pass reading cannot say where (it defers to html5ever).
    pub(super) unsure: bool,
}

impl<'l> Walk<'l> {
    pub(super) fn new(limits: &'l Limits) -> Self {
        Walk {
            out: HtmlOut::default(),
            limits,
            skip_depth: 0,
            looks: vec![Look::default()],
            quote_depth: 0,
            anchors: Vec::new(),
            forms: Vec::new(),
            unsure: false,
        }
    }

    /// Where the walk is: what content put here later would go before (see [`Walk::splice`]).
    pub(super) fn mark(&self) -> Mark {
        Mark {
            text: self.out.text.len(),
            quoted: self.out.quoted.len(),
            links: self.out.links.len(),
            alts: self.out.image_alts.len(),
            looks: self.looks.len(),
        }
    }

    /// Walks what `f` opens, reads and closes as if it came at `m` (content the parser moves before
    /// a table, read after the table's start): its text, links and image alts go before what came
    /// since `m`, in the look of the element that was open there. False where that cannot be told
    /// exactly (the content is hidden or quoted, an open link would collect its text, a cap is near):
    /// the caller defers to html5ever then. `m` moves past what was put in.
    pub(super) fn splice(&mut self, m: &mut Mark, f: impl FnOnce(&mut Self)) -> bool {
        if self.skip_depth > 0 {
            // skipped where the table is: skipped before it too
            f(self);
            return true;
        }
        let room = |w: &Self| {
            w.out.text.len() + w.out.quoted.len() < w.limits.max_text_bytes / 2
                && w.out.links.len() < w.limits.max_links
                && w.out.image_alts.len() < 10
        };
        if self.quote_depth > 0 || !self.anchors.is_empty() || !self.forms.is_empty() || m.looks > self.looks.len() || !room(self) {
            return false;
        }
        let hidden = (self.out.hidden.clone(), self.out.hidden_text.len(), self.out.mailto.len(), self.out.password_inputs, self.out.forms);
        let text = self.out.text.split_off(m.text);
        let quoted = self.out.quoted.split_off(m.quoted);
        let links = self.out.links.split_off(m.links);
        let alts = self.out.image_alts.split_off(m.alts);
        let looks = self.looks.split_off(m.looks);
        f(self);
        let same = self.quote_depth == 0
            && self.anchors.is_empty()
            && self.forms.is_empty()
            && self.looks.len() == m.looks
            && self.skip_depth == 0
            && hidden
                == (self.out.hidden.clone(), self.out.hidden_text.len(), self.out.mailto.len(), self.out.password_inputs, self.out.forms);
        *m = Mark { looks: m.looks, ..self.mark() };
        self.out.text.push_str(&text);
        self.out.quoted.push_str(&quoted);
        self.out.links.extend(links);
        self.out.image_alts.extend(alts);
        self.looks.extend(looks);
        same && room(self)
    }

    /// The document's `<title>` text.
    pub(super) fn title(&mut self, t: &str) {
        let t = t.split_whitespace().collect::<Vec<_>>().join(" ");
        if !t.is_empty() {
            self.out.title = Some(truncate(&t, 200).to_string());
        }
    }

    fn finish(self, cut: Option<(usize, NestingLimit)>) -> HtmlOut {
        HtmlOut { cut, ..self.out }
    }

    fn push_link(&mut self, url: &str, source: LinkSource) {
        // one over the cap, so that `Walk::push_links` sees it was reached and says so
        if self.out.links.len() <= self.limits.max_links {
            if let Some(l) = Link::parse(url, source, None) {
                self.out.links.push(l);
            }
        }
    }

    /// An element starts. `form_asks`: for a `<form>`, whether it holds a password or e-mail
    /// field, when the caller knows (None: the fields are told as they come, by their own `open`).
    pub(super) fn open<E: ElementView + ?Sized>(&mut self, el: &E, form_asks: Option<bool>) {
        let name = el.name();
        if name == "input"
            && !self.forms.is_empty()
            && el.attr("type").is_some_and(|t| t.eq_ignore_ascii_case("password") || t.eq_ignore_ascii_case("email"))
        {
            for f in self.forms.iter_mut() {
                f.asks = true;
            }
        }
        if self.skip_depth > 0 || SKIP.contains(&name) {
            self.skip_depth += 1;
            return;
        }
        let parent = self.looks.last().copied().unwrap_or_default();
        let look = parent.child(el);
        self.looks.push(look);
        if self.quote_depth > 0 {
            self.quote_depth += 1;
        } else if is_quote(el) {
            self.quote_depth = 1;
        }
        if look.gone.is_some() {
            return;
        }
        let block = BLOCK.contains(&name);
        if block {
            let t = if self.quote_depth > 0 { &mut self.out.quoted } else { &mut self.out.text };
            t.push('\n');
            for a in self.anchors.iter_mut() {
                a.2.push(' ');
            }
        }
        match name {
            "a" | "area" => {
                if let Some(m) = el
                    .attr("href")
                    .and_then(|h| h.trim().get(..7).filter(|p| p.eq_ignore_ascii_case("mailto:")).map(|_| h.trim()[7..].to_string()))
                {
                    let addr = m.split(['?', ',']).next().unwrap_or("").trim().to_ascii_lowercase();
                    if addr.contains('@') && self.out.mailto.len() < 20 && !self.out.mailto.contains(&addr) {
                        self.out.mailto.push(addr);
                    }
                }
                if let Some(h) = el.attr("href") {
                    self.anchors.push((self.looks.len(), h.to_string(), String::new()));
                }
            }
            "form" => {
                self.out.forms += 1;
                match (el.attr("action"), form_asks) {
                    (Some(a), Some(true)) => self.push_link(a, LinkSource::FormAction),
                    (Some(a), None) => self.forms.push(PendingForm {
                        depth: self.looks.len(),
                        at: self.out.links.len(),
                        action: a.to_string(),
                        asks: false,
                    }),
                    _ => {}
                }
            }
            "input" if el.attr("type").is_some_and(|t| t.trim().eq_ignore_ascii_case("password")) => {
                self.out.password_inputs += 1;
            }
            "meta" if el.attr("http-equiv").is_some_and(|h| h.eq_ignore_ascii_case("refresh")) => {
                if let Some((c, p)) = el.attr("content").and_then(|c| c.to_ascii_lowercase().find("url=").map(|p| (c, p))) {
                    self.push_link(c[p + 4..].trim().trim_matches(|c| c == '\'' || c == '"'), LinkSource::Href);
                }
            }
            _ => {}
        }
        if let Some(s) = el.attr("src") {
            // data: images are ordinary inline images
            if !s.trim_start().get(..5).is_some_and(|p| p.eq_ignore_ascii_case("data:")) {
                self.push_link(s, LinkSource::Src);
            }
        }
        if name == "img" {
            let linked = !self.anchors.is_empty() || el.attr("usemap").is_some();
            if linked && !tiny_image(el) && self.quote_depth == 0 {
                self.out.linked_images += 1;
            }
            if let Some(alt) = el.attr("alt") {
                let t = if self.quote_depth > 0 { &mut self.out.quoted } else { &mut self.out.text };
                t.push_str(alt);
                let alt = alt.split_whitespace().collect::<Vec<_>>().join(" ");
                if !alt.is_empty() && self.out.image_alts.len() < 20 && !self.out.image_alts.contains(&alt) {
                    self.out.image_alts.push(truncate(&alt, 200).to_string());
                }
            }
        }
    }

    /// A text node.
    pub(super) fn text(&mut self, t: &str) {
        if self.skip_depth > 0 {
            return;
        }
        let look = self.looks.last().copied().unwrap_or_default();
        if let Some(how) = look.text_hidden() {
            let n = t.trim().len();
            if n > 0 {
                match self.out.hidden.iter_mut().find(|h| h.0 == how) {
                    Some(h) => h.1 += n,
                    None => self.out.hidden.push((how, n)),
                }
                if self.out.hidden_text.len() < 4096 {
                    self.out.hidden_text.push_str(truncate(t, 4096 - self.out.hidden_text.len()));
                    self.out.hidden_text.push(' ');
                }
            }
            return;
        }
        let target = if self.quote_depth > 0 { &mut self.out.quoted } else { &mut self.out.text };
        if target.len() < self.limits.max_text_bytes {
            target.push_str(t);
        }
        if self.quote_depth == 0 && outlook_header(t) {
            // an Outlook reply header ("-----Original Message-----", "From: … Sent: …"): the rest of the document is quoted
            self.quote_depth = self.looks.len().saturating_sub(1).max(1);
        }
        for a in self.anchors.iter_mut() {
            if a.2.len() < 1000 {
                a.2.push_str(t);
            }
        }
    }

    /// The element `name` ends (the innermost open one).
    pub(super) fn close(&mut self, name: &str) {
        if self.skip_depth > 0 {
            self.skip_depth -= 1;
            return;
        }
        let depth = self.looks.len();
        let look = self.looks.pop().unwrap_or_default();
        self.quote_depth = self.quote_depth.saturating_sub(1);
        if look.gone.is_some() {
            return;
        }
        if BLOCK.contains(&name) {
            let t = if self.quote_depth > 0 { &mut self.out.quoted } else { &mut self.out.text };
            t.push('\n');
        }
        if self.anchors.last().is_some_and(|a| a.0 == depth) {
            let (_, href, text) = self.anchors.pop().unwrap_or_else(|| unreachable!());
            // one over the cap, so that `Walk::push_links` sees it was reached and says so
            if self.out.links.len() <= self.limits.max_links {
                let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
                if let Some(l) = Link::parse(&href, LinkSource::Href, Some(text)) {
                    self.out.links.push(l);
                }
            }
        }
        if name == "form" && self.forms.last().is_some_and(|f| f.depth == depth) {
            let f = self.forms.pop().unwrap_or_else(|| unreachable!());
            if f.asks {
                if self.out.links.len() >= self.limits.max_links {
                    // where the cap fell depends on the link html5ever's reading puts first
                    self.unsure = true;
                } else if let Some(l) = Link::parse(&f.action, LinkSource::FormAction, None) {
                    self.out.links.insert(f.at, l);
                }
            }
        }
    }
}

/// Named character references replaced before parsing: frequent in mail (a
/// newsletter has hundreds of `&nbsp;`), and each costs html5ever a hash
/// lookup per letter. Only references with their `;` and to characters that
/// mean nothing to the parser (no `&`, `<`, `>`, quotes), so the parse is the
/// same wherever the parser decodes references (text, RCDATA, attribute
/// values; `&nbsp;` there is exactly U+00A0).
const PREDECODED: &[(&str, &str)] = &[
    ("nbsp;", "\u{a0}"),
    ("zwnj;", "\u{200c}"),
    ("zwj;", "\u{200d}"),
    ("shy;", "\u{ad}"),
    ("copy;", "\u{a9}"),
    ("reg;", "\u{ae}"),
    ("trade;", "\u{2122}"),
    ("middot;", "\u{b7}"),
    ("bull;", "\u{2022}"),
    ("hellip;", "\u{2026}"),
    ("mdash;", "\u{2014}"),
    ("ndash;", "\u{2013}"),
    ("lsquo;", "\u{2018}"),
    ("rsquo;", "\u{2019}"),
    ("ldquo;", "\u{201c}"),
    ("rdquo;", "\u{201d}"),
    ("euro;", "\u{20ac}"),
];

/// Where the parser does *not* decode references and impostor reads the text
/// (raw text elements it does not skip, CDATA in SVG/MathML): a document with
/// one of these is parsed as it is.
const RAW_TEXT_OPENERS: &[&[u8]] = &[b"<xmp", b"<iframe", b"<noembed", b"<noframes", b"<plaintext", b"<![cdata["];

/// `src` with the [`PREDECODED`] references replaced by their characters, or
/// `src` itself when it has none or has one of [`RAW_TEXT_OPENERS`].
fn predecode(src: &str) -> std::borrow::Cow<'_, str> {
    let b = src.as_bytes();
    let hit = |from: usize| memchr::memchr_iter(b'&', &b[from..]).map(|p| from + p).find(|&i| reference_at(b, i).is_some());
    let Some(first) = hit(0) else { return std::borrow::Cow::Borrowed(src) };
    let lower_has =
        |needle: &[u8]| memchr::memchr_iter(b'<', b).any(|i| b.get(i..i + needle.len()).is_some_and(|w| w.eq_ignore_ascii_case(needle)));
    if RAW_TEXT_OPENERS.iter().any(|n| lower_has(n)) {
        return std::borrow::Cow::Borrowed(src);
    }
    let mut out = String::with_capacity(src.len());
    let mut at = 0;
    let mut next = Some(first);
    while let Some(i) = next {
        let Some((len, ch)) = reference_at(b, i) else { break };
        // `&` and the reference's ASCII letters and `;` are char boundaries
        out.push_str(&src[at..i]);
        out.push_str(ch);
        at = i + 1 + len;
        next = hit(at);
    }
    out.push_str(&src[at..]);
    std::borrow::Cow::Owned(out)
}

/// Where byte `at` of `src` (not inside a reference) is in [`predecode`]`(src)`.
fn predecoded_offset(src: &str, at: usize) -> usize {
    let b = &src.as_bytes()[..at];
    let shrink: usize =
        memchr::memchr_iter(b'&', b).filter_map(|i| reference_at(src.as_bytes(), i)).map(|(len, ch)| 1 + len - ch.len()).sum();
    at - shrink
}

/// The [`PREDECODED`] reference right after the `&` at `i`: its length (without the `&`) and character.
fn reference_at(b: &[u8], i: usize) -> Option<(usize, &'static str)> {
    let rest = &b[i + 1..];
    PREDECODED.iter().find(|(name, _)| rest.starts_with(name.as_bytes())).map(|(name, ch)| (name.len(), *ch))
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
pub(super) const CLOSES_P: &[&str] = &[
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
    "search",
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

    /// Replacing the frequent named references before parsing changes nothing html5ever would have
    /// made of them: text, hidden text, titles, alt text, attribute values (links, styles), and
    /// the places it does not decode (comments, raw text, near misses).
    #[test]
    fn predecoded_references_parse_as_html5ever_decodes_them() {
        let docs = [
            "<p>Dear&nbsp;customer,&nbsp;&nbsp;verify&zwnj;&nbsp;your&shy;account&hellip; &copy;&reg;&trade; &mdash;&ndash; &lsquo;x&rsquo; &ldquo;y&rdquo; &euro;5 &bull;&middot;</p>",
            "<html><head><title>Your&nbsp;account&nbsp;&mdash;&nbsp;OpenAI</title></head><body>x</body></html>",
            "<a href='https://e.example/?a=1&nbsp;b&copy;'>Sign&nbsp;in</a><img alt='Open&nbsp;AI&reg;' src='https://i.example/x.png' width=200>",
            "<div style='display:none'>hidden&nbsp;api&nbsp;key</div><span style='color:#fff;background:#fff'>white&nbsp;text</span>",
            "<p title=\"a&nbsp;b\" data-x=a&nbsp;b>unquoted&nbsp;value</p><!-- comment &nbsp; --><p>after</p>",
            "<style>p:after{content:'&nbsp;'}</style><script>var a='&nbsp;';</script><p>text&nbsp;</p>",
            "&amp;nbsp; &nbsp &nbspx; &NBSP; &nbsp;&nbsp; &#160; &#xa0;&nbsp; &&nbsp;; &nbsp;&amp;",
            "<textarea>area&nbsp;text</textarea><select><option>opt&nbsp;ion</option></select>",
            "<svg><title>svg&nbsp;title</title><text>svg&nbsp;text</text></svg><math><mi>m&nbsp;i</mi></math><p>p&nbsp;</p>",
            "<table><tr><td>cell&nbsp;one<td>cell&nbsp;two</table><form action='https://f.example/&nbsp;'><input type=password></form>",
            "<blockquote type=cite>quoted&nbsp;text</blockquote>-----Original Message-----&nbsp;<p>below</p>",
            "<xmp>raw&nbsp;text</xmp><p>x&nbsp;y</p>",
            "<iframe>frame&nbsp;text</iframe>&nbsp;",
            "<p>é&nbsp;ü&nbsp;日本&nbsp;</p>&nbsp;",
        ];
        let limits = Limits::default();
        for d in docs {
            assert_eq!(format!("{:?}", html_opts(d, &limits, true)), format!("{:?}", html_opts(d, &limits, false)), "{d:?}");
        }
        // and past the nesting cap, where the rest is read as plain text (the cut said in the document as written)
        let deep = format!("<p>a&nbsp;b&copy;</p>{}<p>deep&nbsp;text</p>", "<div>".repeat(limits.max_html_depth + 5));
        let (a, b) = (html_opts(&deep, &limits, true), html_opts(&deep, &limits, false));
        assert!(a.cut.is_some() && a.cut == b.cut, "the cut is where it was");
        assert_eq!(normalize(&a.text), normalize(&b.text.replace("&nbsp;", "\u{a0}")));
    }

    #[test]
    fn predecode_leaves_documents_without_references_alone() {
        assert!(matches!(predecode("<p>plain</p>"), std::borrow::Cow::Borrowed(_)));
        assert!(matches!(predecode("<p>a &amp; b</p>"), std::borrow::Cow::Borrowed(_)));
        assert!(matches!(predecode("<XMP>&nbsp;</XMP>"), std::borrow::Cow::Borrowed(_)));
        assert_eq!(predecode("a&nbsp;b&nbsp;&copy;").as_ref(), "a\u{a0}b\u{a0}\u{a9}");
    }
}
