//! Content, links and attachments: what the message says and where it sends
//! the reader.
//!
//! [`extract`] reads every text and HTML part (attached messages and HTML
//! attachments included), every URL (HTML `href`/`src`/`action`, plain-text
//! URLs, QR codes in images, `/URI` entries in PDFs) and classifies
//! attachments, with bounded work ([`Limits`]). [`check`] turns that into
//! findings: lure phrases per family and language ([`Phrases`]), deceptive
//! links, dangerous attachments, and Reply-To / display-name tricks.
//! Nothing is ever fetched: no URL is followed.

pub mod asks;
pub mod attachments;
mod compact;
pub mod html;
mod html_model;
pub mod links;
pub mod normalise;
pub mod phones;
pub mod phrases;
pub mod qr;
pub mod quoted;
mod urls;
pub mod words;

pub use attachments::{AttachmentInfo, AttachmentKind};
pub use phrases::{Family, PhraseHit, Phrases};
use urls::truncate;

use crate::brand::BrandSet;
use crate::domain::{dotted_domain_of, registrable};
use crate::fold::is_invisible;
use crate::rule::Finding;
use crate::rule::RuleDef;
use mail_parser::{Message, MimeHeaders, PartType};

/// Bounds on the work done for one message. A bound that is reached is
/// reported in [`Content::limits_hit`] and as `CONTENT_LIMIT_REACHED` (weight 0).
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// MIME parts examined, attached messages included.
    pub max_parts: usize,
    /// Visible text kept, in bytes (before normalisation).
    pub max_text_bytes: usize,
    /// Bytes of each HTML part parsed.
    pub max_html_bytes: usize,
    /// Elements open at once in an HTML document built into a tree (see [`html::nesting_cut`]); the rest is read as plain text.
    pub max_html_depth: usize,
    /// Tags (start and end) of an HTML document built into a tree; the rest is read as plain text.
    pub max_html_tags: usize,
    /// URLs kept per message.
    pub max_links: usize,
    /// Largest image decoded for QR codes; also the bytes of a PDF or archive inspected.
    pub max_image_bytes: usize,
    /// Largest image (width × height) decoded for QR codes.
    pub max_image_pixels: u64,
    /// Images decoded for QR codes per message.
    pub max_qr_images: usize,
    /// QR finder pattern candidates in an image decoded for QR codes (see [`qr::finder_candidates`]).
    pub max_qr_finders: usize,
    /// Time spent decoding images for QR codes per message, checked between steps (see [`qr`]).
    pub max_qr_time: std::time::Duration,
    /// Nesting of attached messages followed.
    pub max_depth: usize,
    /// Phone-number candidates judged per text ([`phones::find_at_most`]), read on demand ([`Content::first_phone`]).
    pub max_phone_candidates: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_parts: 100,
            max_text_bytes: 256 * 1024,
            max_html_bytes: 1024 * 1024,
            max_html_depth: 512,
            max_html_tags: 40_000,
            max_links: 500,
            max_image_bytes: 2 * 1024 * 1024,
            max_image_pixels: 4_000_000,
            max_qr_images: 4,
            max_qr_finders: 24,
            max_qr_time: std::time::Duration::from_millis(250),
            max_depth: 3,
            max_phone_candidates: 50,
        }
    }
}

/// Where a URL was found.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum LinkSource {
    /// `<a href>`, `<area href>`, `<meta http-equiv=refresh>`.
    Href,
    /// `src` of `<img>`, `<iframe>`, `<script>` … (not clickable).
    Src,
    /// `<form action>`.
    FormAction,
    /// A URL written in plain text.
    PlainText,
    /// Decoded from a QR code in the named image.
    Qr(String),
    /// A `/URI` entry in the named PDF.
    Pdf(String),
}

impl LinkSource {
    /// A reader can follow it (click, scan, type).
    pub fn clickable(&self) -> bool {
        !matches!(self, LinkSource::Src)
    }
    /// Prefix for evidence: `QR code in image.png: `.
    pub fn evidence_prefix(&self) -> String {
        match self {
            LinkSource::Qr(n) => format!("QR code in {n}: "),
            LinkSource::Pdf(n) => format!("in PDF {n}: "),
            LinkSource::FormAction => "form action ".into(),
            _ => String::new(),
        }
    }
}

/// A URL found in the message.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Link {
    /// The URL as found (whitespace removed; `www.` URLs get `http://`), at most 2,000 bytes.
    pub url: String,
    /// Host, lowercased, IDN in ASCII (punycode, as `url` and `Brand::owns` use it);
    /// IP literals as text (`192.0.2.1`, `[2001:db8::1]`). None for `data:`/`javascript:`.
    pub host: Option<String>,
    pub source: LinkSource,
    /// Visible text of an `<a>`, whitespace collapsed.
    pub anchor_text: Option<String>,
    /// Found in forwarded or quoted content (an attached `message/rfc822`, a quoted HTML block):
    /// judged by the rules about the host itself, not by those that need the outer message's brand claim.
    pub forwarded: bool,
}

impl Link {
    /// Parses a URL as found in a message. Relative URLs, `mailto:`, `tel:`,
    /// `cid:` and fragments are not links and give None.
    pub fn parse(raw: &str, source: LinkSource, anchor_text: Option<String>) -> Option<Link> {
        // most URLs have nothing to remove: no copy then
        let cleaned: std::borrow::Cow<str> = if raw.bytes().all(|b| b.is_ascii_graphic()) {
            std::borrow::Cow::Borrowed(raw)
        } else {
            std::borrow::Cow::Owned(raw.chars().filter(|c| !c.is_whitespace() && !c.is_control() && !is_invisible(*c)).collect())
        };
        let s = truncate(&cleaned, 2000);
        let lower = s.to_ascii_lowercase();
        if lower.starts_with("data:") || lower.starts_with("javascript:") || lower.starts_with("vbscript:") {
            let url: String = s.chars().take(120).collect();
            return Some(Link { url, host: None, source, anchor_text, forwarded: false });
        }
        let full = if lower.starts_with("www.") {
            format!("http://{s}")
        } else if lower.starts_with("//") {
            format!("http:{s}")
        } else if lower.starts_with("http://") || lower.starts_with("https://") || lower.starts_with("ftp://") {
            s.to_string()
        } else {
            return None;
        };
        let u = url::Url::parse(&full).ok()?;
        let host = match u.host()? {
            url::Host::Domain(d) => d.trim_end_matches('.').to_ascii_lowercase(),
            url::Host::Ipv4(ip) => ip.to_string(),
            url::Host::Ipv6(ip) => format!("[{ip}]"),
        };
        Some(Link { url: full, host: Some(host), source, anchor_text, forwarded: false })
    }
}

/// What a message shows its reader.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Content {
    /// Normalised visible text (subject, text parts, HTML parts and HTML
    /// attachments, attached messages), see [`normalise::normalize`].
    pub text: String,
    /// `text` without its spaces.
    pub compact: String,
    pub links: Vec<Link>,
    pub attachments: Vec<AttachmentInfo>,
    /// The limits reached (`"max_parts (100)"` …): the message was only partly read.
    pub limits_hit: Vec<String>,
    /// `<input type=password>` in the message body (not in attachments).
    pub body_password_fields: usize,
    /// Zero-width characters (U+200B–U+200D, U+2060, U+FEFF) found between two letters of the text.
    pub zero_width_in_words: usize,
    /// Addresses of `mailto:` links in HTML (at most 20): where "reply to this address" sends the reader.
    pub mailto: Vec<String>,
    /// Normalised quoted and forwarded text (`>` lines, `<blockquote type=cite>`, `gmail_quote`, text after a
    /// "Forwarded message" / "Original Message" separator or an Outlook header block, attached messages):
    /// not the sender's own ask, so not in `text`.
    pub quoted_text: String,
    /// Text of the HTML that the reader does not see, per way it was hidden ("font-size 0 or 1px", …): bytes.
    pub hidden: Vec<(&'static str, usize)>,
    /// Normalised hidden text (at most 4 KiB per HTML part before normalisation); matched, never logged.
    pub hidden_text: String,
    /// The HTML `<title>` of the body (first HTML part with one).
    pub title: Option<String>,
    /// `alt` text of visible images of the body, at most 20.
    pub image_alts: Vec<String>,
    /// Visible images of the body inside a link or with an image map, not tiny.
    pub linked_images: usize,
    /// The visible text before normalisation, read again only for [`Content::first_phone`].
    raw_text: String,
    /// `limits.max_phone_candidates`, for [`Content::first_phone`].
    phone_candidates: usize,
    /// [`Content::first_phone`] and whether the candidates ran out, once asked.
    first_phone: std::sync::OnceLock<(Option<String>, bool)>,
}

impl Content {
    /// The first phone number of the visible text, E.164 ([`phones::find`]): a number to call is a
    /// call to action. Read when first asked: only a message that claims a brand is asked, and
    /// judging a number (libphonenumber's metadata, region by region) costs more than the rest of
    /// the text's reading.
    pub fn first_phone(&self) -> Option<&str> {
        self.phones_read().0.as_deref()
    }

    /// After [`Content::first_phone`]: the limit reached, when `max_phone_candidates` candidates were
    /// judged without a number (the rest of the text was not read for one).
    pub fn phone_limit_hit(&self) -> Option<String> {
        let (phone, hit) = self.first_phone.get()?;
        (phone.is_none() && *hit)
            .then(|| format!("max_phone_candidates ({}): the rest of the text was not read for phone numbers", self.phone_candidates))
    }

    fn phones_read(&self) -> &(Option<String>, bool) {
        self.first_phone.get_or_init(|| {
            let (found, hit) = phones::find_at_most(&self.raw_text, 1, self.phone_candidates);
            (found.into_iter().next(), hit)
        })
    }
}

struct Walk<'l> {
    limits: &'l Limits,
    content: Content,
    /// Hashes of `content.links`, for de-duplication.
    link_hashes: std::collections::HashSet<u64>,
    raw_text: String,
    /// Quoted and forwarded text, before normalisation.
    raw_quoted: String,
    /// Hidden text, before normalisation.
    raw_hidden: String,
    /// Inside an attached message: its text is quoted, its links forwarded.
    forwarded: bool,
    /// A forward separator or an attached message was seen.
    saw_forward: bool,
    /// Bytes PDF streams may still inflate to in this message (starts at `limits.max_image_bytes`).
    pdf_budget: usize,
    parts: usize,
    qr_images: usize,
    /// Set when the first image is decoded for QR codes: then + `limits.max_qr_time`.
    qr_deadline: Option<std::time::Instant>,
}

impl Walk<'_> {
    fn hit(&mut self, what: String) {
        if !self.content.limits_hit.contains(&what) {
            self.content.limits_hit.push(what);
        }
    }

    fn push_text(&mut self, t: &str) {
        let room = self.limits.max_text_bytes.saturating_sub(self.raw_text.len());
        if t.len() > room {
            self.raw_text.push_str(truncate(t, room));
            self.hit(format!("max_text_bytes ({})", self.limits.max_text_bytes));
        } else {
            self.raw_text.push_str(t);
        }
        self.raw_text.push('\n');
    }

    fn push_quoted(&mut self, t: &str) {
        if t.trim().is_empty() {
            return;
        }
        self.saw_forward = true;
        let room = self.limits.max_text_bytes.saturating_sub(self.raw_quoted.len());
        self.raw_quoted.push_str(truncate(t, room));
        self.raw_quoted.push('\n');
    }

    /// Text of a text part: the sender's own, or quoted (see [`quoted::split`]); all quoted inside an attached message.
    fn push_own_or_quoted(&mut self, t: &str) {
        if self.forwarded {
            self.push_quoted(t);
            return;
        }
        let (own, q) = quoted::split(t);
        self.push_text(&own);
        self.push_quoted(&q);
    }

    fn push_links(&mut self, links: Vec<Link>) {
        for mut l in links {
            l.forwarded |= self.forwarded;
            if self.content.links.len() >= self.limits.max_links {
                self.hit(format!("max_links ({})", self.limits.max_links));
                return;
            }
            // a newsletter has hundreds of links: look up a hash, not every link so far
            let key = {
                use std::hash::{Hash, Hasher};
                let mut h = std::collections::hash_map::DefaultHasher::new();
                l.hash(&mut h);
                h.finish()
            };
            if !self.link_hashes.insert(key) && self.content.links.contains(&l) {
                continue;
            }
            self.content.links.push(l);
        }
    }

    fn message(&mut self, msg: &Message, depth: usize) {
        if let (Some(s), true) = (msg.subject(), depth > 0) {
            // the top-level subject is pushed by `extract`
            self.push_quoted(s);
        }
        for part in &msg.parts {
            self.parts += 1;
            if self.parts > self.limits.max_parts {
                self.hit(format!("max_parts ({})", self.limits.max_parts));
                return;
            }
            let name = part.attachment_name().map(str::to_string);
            let ctype = part
                .content_type()
                .map(|c| format!("{}/{}", c.ctype(), c.subtype().unwrap_or("")).to_ascii_lowercase())
                .unwrap_or_default();
            let disposition_attachment = part.content_disposition().is_some_and(|d| d.is_attachment());
            let lname = name.as_deref().unwrap_or("").to_ascii_lowercase();
            let html_name = [".htm", ".html", ".shtml", ".xhtml", ".svg"].iter().any(|x| lname.ends_with(x));
            match &part.body {
                PartType::Text(t) if html_name => self.html_attachment(name.as_deref().unwrap_or("attachment.html"), &ctype, t),
                PartType::Text(t) => {
                    let mut links = Vec::new();
                    urls::plain_urls(truncate(t, self.limits.max_text_bytes), self.limits, &mut links);
                    self.push_links(links);
                    self.push_own_or_quoted(t);
                }
                PartType::Html(h) if html_name || disposition_attachment => {
                    self.html_attachment(name.as_deref().unwrap_or("attachment.html"), &ctype, h)
                }
                PartType::Html(h) => {
                    if h.len() > self.limits.max_html_bytes {
                        self.hit(format!("max_html_bytes ({})", self.limits.max_html_bytes));
                    }
                    let mut o = html::html(h, self.limits);
                    self.html_cut("HTML body", &o);
                    self.content.body_password_fields += o.password_inputs;
                    self.html_facts(&o);
                    for m in std::mem::take(&mut o.mailto) {
                        if self.content.mailto.len() < 20 && !self.content.mailto.contains(&m) {
                            self.content.mailto.push(m);
                        }
                    }
                    self.push_links(o.links);
                    if self.forwarded {
                        self.push_quoted(&o.text);
                    } else {
                        self.push_text(&o.text);
                    }
                    self.push_quoted(&o.quoted);
                }
                PartType::Binary(b) | PartType::InlineBinary(b) => {
                    let name = name.unwrap_or_else(|| format!("part {}", self.parts));
                    self.binary(&name, &ctype, b);
                }
                PartType::Message(m) => {
                    if depth + 1 > self.limits.max_depth {
                        self.hit(format!("max_depth ({})", self.limits.max_depth));
                    } else {
                        let outer = self.forwarded;
                        self.forwarded = true;
                        self.saw_forward = true;
                        self.message(m, depth + 1);
                        self.forwarded = outer;
                    }
                }
                PartType::Multipart(_) => {}
            }
        }
    }

    /// Reports the nesting or tag cap of [`html::nesting_cut`] when it cut `what` short.
    fn html_cut(&mut self, what: &str, o: &html::HtmlOut) {
        match o.cut {
            Some((at, html::NestingLimit::Depth)) => self.hit(format!(
                "max_html_depth ({}): {what} nested deeper at byte {at}, the rest read as plain text",
                self.limits.max_html_depth
            )),
            Some((at, html::NestingLimit::Tags)) => {
                self.hit(format!("max_html_tags ({}): {what} has more tags, from byte {at} read as plain text", self.limits.max_html_tags))
            }
            None => {}
        }
    }

    /// Hidden text, title, image alt text and linked images of an HTML part of the message itself.
    fn html_facts(&mut self, o: &html::HtmlOut) {
        for (how, n) in &o.hidden {
            match self.content.hidden.iter_mut().find(|h| h.0 == *how) {
                Some(h) => h.1 += n,
                None => self.content.hidden.push((how, *n)),
            }
        }
        if self.raw_hidden.len() < 16 * 1024 {
            self.raw_hidden.push_str(&o.hidden_text);
            self.raw_hidden.push('\n');
        }
        if self.forwarded {
            return;
        }
        if self.content.title.is_none() {
            self.content.title.clone_from(&o.title);
        }
        for a in &o.image_alts {
            if self.content.image_alts.len() < 20 && !self.content.image_alts.contains(a) {
                self.content.image_alts.push(a.clone());
            }
        }
        self.content.linked_images += o.linked_images;
    }

    fn html_attachment(&mut self, name: &str, ctype: &str, source: &str) {
        let o = html::html(source, self.limits);
        self.html_cut(name, &o);
        let mut info = attachments::html_attachment(name, ctype, source, &o);
        let svg = ctype.contains("svg") || name.to_ascii_lowercase().ends_with(".svg");
        info.svg_script = svg && attachments::svg_script(name, ctype, source.as_bytes());
        self.content.attachments.push(info);
        self.push_links(o.links);
        if self.forwarded {
            self.push_quoted(&o.text);
        } else {
            self.push_text(&o.text);
        }
    }

    fn binary(&mut self, name: &str, ctype: &str, bytes: &[u8]) {
        let lname = name.to_ascii_lowercase();
        let svg = ctype == "image/svg+xml" || lname.ends_with(".svg") || lname.ends_with(".svgz");
        if !svg && attachments::sniff_html(bytes) {
            // HTML under another declared type or name: read as the HTML attachment it is
            let head = &bytes[..bytes.len().min(self.limits.max_html_bytes)];
            let text = String::from_utf8_lossy(head);
            let declared = if ctype.is_empty() { "no type".to_string() } else { format!("declared {ctype}") };
            self.html_attachment(name, &declared, &text);
            return;
        }
        if svg {
            let mut info = attachments::classify(name, ctype, bytes, self.limits);
            info.svg_script = attachments::svg_script(name, ctype, bytes);
            if info.svg_script {
                let head = &bytes[..bytes.len().min(self.limits.max_html_bytes)];
                let mut links = Vec::new();
                urls::plain_urls(&String::from_utf8_lossy(head), self.limits, &mut links);
                // XML namespace names (`http://www.w3.org/2000/svg`) are not links
                links.retain(|l| l.host.as_deref() != Some("www.w3.org"));
                self.push_links(links);
            }
            self.content.attachments.push(info);
            return;
        }
        let image = ctype.starts_with("image/") || [".png", ".jpg", ".jpeg", ".gif"].iter().any(|x| lname.ends_with(x));
        let info = attachments::classify(name, ctype, bytes, self.limits);
        // an archive or Office container is looked into (entry names, macro streams) only in its first max_image_bytes
        let container = matches!(info.kind, AttachmentKind::Archive | AttachmentKind::MacroOffice)
            || bytes.starts_with(b"PK\x03\x04")
            || bytes.starts_with(&[0xD0, 0xCF, 0x11, 0xE0]);
        if container && !image && bytes.len() > self.limits.max_image_bytes {
            self.hit(format!("max_image_bytes ({}) for {name}: only its first bytes inspected", self.limits.max_image_bytes));
        }
        if info.kind == AttachmentKind::Pdf {
            let mut links = Vec::new();
            for what in attachments::pdf_uris(name, bytes, self.limits, &mut self.pdf_budget, &mut links) {
                self.hit(what);
            }
            self.push_links(links);
        }
        if image && ctype != "image/svg+xml" {
            if bytes.len() > self.limits.max_image_bytes {
                self.hit(format!("max_image_bytes ({})", self.limits.max_image_bytes));
            } else if self.qr_images >= self.limits.max_qr_images {
                self.hit(format!("max_qr_images ({})", self.limits.max_qr_images));
            } else {
                self.qr_images += 1;
                let deadline = *self.qr_deadline.get_or_insert_with(|| std::time::Instant::now() + self.limits.max_qr_time);
                match qr::decode(bytes, self.limits, deadline) {
                    Ok(texts) => {
                        let links = texts.iter().filter_map(|t| Link::parse(t, LinkSource::Qr(name.to_string()), None)).collect();
                        self.push_links(links);
                    }
                    Err(qr::Skipped::TooLarge(px)) => {
                        self.hit(format!("max_image_pixels ({}): {name} has {px}", self.limits.max_image_pixels))
                    }
                    Err(qr::Skipped::TooManyFinders(n)) => self
                        .hit(format!("max_qr_finders ({}): {name} has {n} QR finder candidates, not decoded", self.limits.max_qr_finders)),
                    Err(qr::Skipped::OutOfTime(step)) => self
                        .hit(format!("max_qr_time ({} ms): {name} not decoded, out of time {step}", self.limits.max_qr_time.as_millis())),
                    Err(qr::Skipped::Unreadable) => {}
                }
            }
        }
        self.content.attachments.push(info);
    }
}

/// Reads what the message shows: text, links, attachments. Bounded by `limits`.
pub fn extract(msg: &Message, limits: &Limits) -> Content {
    let mut w = Walk {
        limits,
        content: Content::default(),
        link_hashes: Default::default(),
        raw_text: String::new(),
        raw_quoted: String::new(),
        raw_hidden: String::new(),
        forwarded: false,
        saw_forward: false,
        pdf_budget: limits.max_image_bytes,
        parts: 0,
        qr_images: 0,
        qr_deadline: None,
    };
    // the subject first, as the reader sees it; a forward's subject is the forwarded subject (moved to the quoted text below)
    let subject = msg.subject().unwrap_or("");
    if !subject.is_empty() {
        w.push_text(subject);
    }
    let subject_len = w.raw_text.len();
    w.message(msg, 0);
    if w.saw_forward && quoted::forward_subject(subject) {
        let s: String = w.raw_text.drain(..subject_len).collect();
        w.push_quoted(&s);
    }
    w.content.quoted_text = normalise::normalize(&w.raw_quoted);
    w.content.hidden_text = normalise::normalize(&w.raw_hidden);
    w.content.zero_width_in_words = normalise::zero_width_in_words(&w.raw_text);
    (w.content.text, w.content.compact) = normalise::normalize_both(&w.raw_text);
    w.content.raw_text = w.raw_text;
    w.content.phone_candidates = limits.max_phone_candidates;
    w.content
}

/// Whether a host is a lookalike of a protected brand; supplied by the core.
/// Returns (brand name, evidence like "openai-support.com ~ openai.com (combosquat)").
pub type LookalikeFn<'a> = &'a dyn Fn(&str) -> Option<(String, String)>;

pub const LURE_API_KEY: &str = "LURE_API_KEY";
pub const LURE_PASSWORD: &str = "LURE_PASSWORD";
pub const LURE_MFA_CODE: &str = "LURE_MFA_CODE";
pub const LURE_ACCOUNT_THREAT: &str = "LURE_ACCOUNT_THREAT";
pub const LURE_INCIDENT: &str = "LURE_INCIDENT";
pub const LURE_PAYMENT: &str = "LURE_PAYMENT";
pub const LURE_REWARD: &str = "LURE_REWARD";
pub const LURE_DELIVERY: &str = "LURE_DELIVERY";
pub const LURE_NEW_SIGNIN: &str = "LURE_NEW_SIGNIN";
pub const LURE_CALLBACK: &str = "LURE_CALLBACK";
pub const LURE_WALLET: &str = "LURE_WALLET";
pub const LURE_TAX: &str = "LURE_TAX";
pub const LURE_SHARED_DOCUMENT: &str = "LURE_SHARED_DOCUMENT";
pub const TEXT_ZERO_WIDTH_OBFUSCATION: &str = "TEXT_ZERO_WIDTH_OBFUSCATION";
pub const CREDENTIAL_LURE_BRAND_CLAIM: &str = "CREDENTIAL_LURE_BRAND_CLAIM";
pub const REPLY_TO_FREEMAIL_BRAND_CLAIM: &str = "REPLY_TO_FREEMAIL_BRAND_CLAIM";
pub const MAILTO_LOOKALIKE: &str = "MAILTO_LOOKALIKE";
pub const REPLY_TO_OUTSIDE_BRAND: &str = "REPLY_TO_OUTSIDE_BRAND";
pub const FROM_NAME_HIDDEN_CHARACTERS: &str = "FROM_NAME_HIDDEN_CHARACTERS";
pub const LINK_DISPLAYED_DOMAIN_MISMATCH: &str = "LINK_DISPLAYED_DOMAIN_MISMATCH";
pub const LINK_DISPLAYED_BRAND_DOMAIN: &str = "LINK_DISPLAYED_BRAND_DOMAIN";
pub const LINK_BRAND_TEXT_FOREIGN_HREF: &str = "LINK_BRAND_TEXT_FOREIGN_HREF";
pub const LINK_LOOKALIKE_HOST: &str = "LINK_LOOKALIKE_HOST";
pub const LINK_BRAND_IN_PATH: &str = "LINK_BRAND_IN_PATH";
pub const LINK_USERINFO: &str = "LINK_USERINFO";
pub const LINK_IP_HOST: &str = "LINK_IP_HOST";
pub const LINK_PUNYCODE_HOST: &str = "LINK_PUNYCODE_HOST";
pub const LINK_SHORTENER: &str = "LINK_SHORTENER";
pub const LINK_SCRIPT_OR_DATA_URL: &str = "LINK_SCRIPT_OR_DATA_URL";
pub const FORM_EXTERNAL_ACTION: &str = "FORM_EXTERNAL_ACTION";
pub const FORM_PASSWORD_FIELD: &str = "FORM_PASSWORD_FIELD";
pub const QR_CODE_LINK: &str = "QR_CODE_LINK";
pub const ATTACHMENT_EXECUTABLE: &str = "ATTACHMENT_EXECUTABLE";
pub const ATTACHMENT_MACRO_OFFICE: &str = "ATTACHMENT_MACRO_OFFICE";
pub const ATTACHMENT_ARCHIVE: &str = "ATTACHMENT_ARCHIVE";
pub const ATTACHMENT_DISK_IMAGE_OR_SHORTCUT: &str = "ATTACHMENT_DISK_IMAGE_OR_SHORTCUT";
pub const ATTACHMENT_HTML: &str = "ATTACHMENT_HTML";
pub const ATTACHMENT_HTML_LOGIN_FORM: &str = "ATTACHMENT_HTML_LOGIN_FORM";
pub const ATTACHMENT_HTML_SMUGGLING: &str = "ATTACHMENT_HTML_SMUGGLING";
pub const CONTENT_LIMIT_REACHED: &str = "CONTENT_LIMIT_REACHED";
pub const TEXT_HIDDEN_CONTENT: &str = "TEXT_HIDDEN_CONTENT";
pub const BODY_IMAGE_ONLY_LINK: &str = "BODY_IMAGE_ONLY_LINK";
pub const LINK_FREE_HOSTING: &str = "LINK_FREE_HOSTING";
pub const ATTACHMENT_SVG_SCRIPT: &str = "ATTACHMENT_SVG_SCRIPT";
pub const FORWARDED_LURE: &str = "FORWARDED_LURE";

const fn r(id: &'static str, group: &'static str, default_weight: f64, description: &'static str) -> RuleDef {
    RuleDef::new(id, group, default_weight, description)
}

/// Every rule this module can emit.
pub static RULES: &[RuleDef] = &[
    r(LURE_API_KEY, "content", 2.5, "Text asks for an API key, secret key or access token (phrase or verb + object, language in the evidence)"),
    r(LURE_PASSWORD, "content", 2.0, "Text asks for a password or to sign in to verify or keep an account"),
    r(LURE_MFA_CODE, "content", 2.5, "Text asks for an MFA / 2FA / verification / one-time code"),
    r(LURE_ACCOUNT_THREAT, "content", 1.5, "Text threatens the account (suspended, limited, locked) or presses for time (within 24 hours, unusual activity)"),
    r(LURE_INCIDENT, "content", 0.0, "Text names a security incident, data breach or third-party vendor (context only: a mention is not a lure)"),
    r(LURE_PAYMENT, "content", 1.5, "Text reports a failed payment, unpaid invoice or fee, or asks for card or billing details"),
    r(LURE_REWARD, "content", 2.0, "Text baits with a prize, giveaway, credits, crypto airdrop or gift card"),
    r(LURE_DELIVERY, "content", 1.5, "Text says a parcel is held or undeliverable, or asks for a customs or shipping fee"),
    r(LURE_NEW_SIGNIN, "content", 1.5, "Text alerts to a new sign-in or a new device on the account"),
    r(LURE_CALLBACK, "content", 1.5, "Text asks the reader to call a number (callback phishing)"),
    r(LURE_WALLET, "content", 2.5, "Text asks for a crypto wallet's recovery (seed) phrase or private key, or to verify or sync the wallet"),
    r(LURE_TAX, "content", 1.5, "Text uses a tax refund, tax authority or government pretext"),
    r(LURE_SHARED_DOCUMENT, "content", 1.0, "Text announces a shared document, fax, voicemail or e-signature envelope to open"),
    r(TEXT_ZERO_WIDTH_OBFUSCATION, "content", 2.0, "Zero-width characters hidden inside words of the text (filter evasion)"),
    r(CREDENTIAL_LURE_BRAND_CLAIM, "content", 3.0, "Message claims a brand from outside its domains and asks for a password, code, key or wallet recovery phrase"),
    r(REPLY_TO_FREEMAIL_BRAND_CLAIM, "sender", 4.0, "Message claims a brand but replies (Reply-To or a mailto: link) go to a freemail mailbox (data/freemail.txt)"),
    r(MAILTO_LOOKALIKE, "sender", 4.0, "A mailto: link in the text sends replies to a lookalike of a protected brand's domain (Reply-To itself is the core's LOOKALIKE_REPLY_TO)"),
    r(REPLY_TO_OUTSIDE_BRAND, "sender", 3.5, "From is a protected brand's own domain but replies (Reply-To or a mailto: link) go to a domain the brand does not use"),
    r(FROM_NAME_HIDDEN_CHARACTERS, "sender", 3.0, "From display name contains zero-width or bidi control characters, or a word mixing scripts"),
    r(LINK_DISPLAYED_DOMAIN_MISMATCH, "links", 1.5, "In a message claiming a brand, link text shows one domain and the link goes to another registrable domain"),
    r(LINK_DISPLAYED_BRAND_DOMAIN, "links", 4.0, "Link text shows a protected brand's domain, the link goes elsewhere"),
    r(LINK_BRAND_TEXT_FOREIGN_HREF, "links", 2.0, "In a message claiming a brand, link text names the brand but the link leaves its domains"),
    r(LINK_LOOKALIKE_HOST, "links", 4.0, "A link (or image, form, QR code, PDF link) goes to a lookalike of a protected brand's domain"),
    r(LINK_BRAND_IN_PATH, "links", 2.0, "In a message claiming a brand, a link to a foreign host carries the brand name in its path or query"),
    r(LINK_USERINFO, "links", 4.0, "Link hides its host behind userinfo (https://platform.openai.com@evil.example/)"),
    r(LINK_IP_HOST, "links", 2.0, "Link goes to an IP address instead of a domain"),
    r(LINK_PUNYCODE_HOST, "links", 1.5, "Link goes to an internationalised (punycode) host name"),
    r(LINK_SHORTENER, "links", 1.0, "Link goes through a URL shortener that hides its destination (data/shorteners.txt)"),
    r(LINK_SCRIPT_OR_DATA_URL, "links", 3.0, "Link or form uses a data: or javascript: URL"),
    r(FORM_EXTERNAL_ACTION, "links", 3.0, "HTML form with a password or e-mail field posts to an external host"),
    r(FORM_PASSWORD_FIELD, "links", 3.0, "HTML body of the message contains a password field"),
    r(QR_CODE_LINK, "links", 1.5, "An image carries a QR code with a URL (the link rules also judge that URL)"),
    r(ATTACHMENT_EXECUTABLE, "attachments", 5.0, "Executable or script attached (or inside an attached archive): exe, scr, js, vbs, hta, ps1 …"),
    r(ATTACHMENT_MACRO_OFFICE, "attachments", 4.0, "Macro-enabled Office document attached (docm/xlsm, or a document with a VBA project)"),
    r(ATTACHMENT_ARCHIVE, "attachments", 1.0, "Archive attached (zip, rar, 7z …); its names are checked for executables"),
    r(ATTACHMENT_DISK_IMAGE_OR_SHORTCUT, "attachments", 4.0, "Disk image or Windows shortcut attached (iso, img, vhd, lnk)"),
    r(ATTACHMENT_HTML, "attachments", 2.0, "HTML or SVG document attached"),
    r(ATTACHMENT_HTML_LOGIN_FORM, "attachments", 4.0, "Attached HTML contains a login form (password field)"),
    r(ATTACHMENT_HTML_SMUGGLING, "attachments", 4.0, "Attached HTML assembles a file or page from encoded script data (HTML smuggling)"),
    r(CONTENT_LIMIT_REACHED, "limits", 0.0, "A content limit was reached; the message was only partly read"),
    r(TEXT_HIDDEN_CONTENT, "content", 1.0, "HTML hides text naming a brand or a lure from the reader (font-size 0, same colour as background, off-screen …) while the sender is not the brand"),
    r(BODY_IMAGE_ONLY_LINK, "content", 1.5, "The body shows almost no text, only a linked image (or image map): the words are in a picture filters cannot read"),
    r(LINK_FREE_HOSTING, "links", 1.5, "In a message claiming a brand, a link goes to free hosting, a form or site builder, IPFS or a storage bucket (data/free-hosting.txt)"),
    r(ATTACHMENT_SVG_SCRIPT, "attachments", 4.0, "An SVG image attached or inline carries script (<script>, an on…= handler, a javascript: URL)"),
    r(FORWARDED_LURE, "content", 0.0, "Quoted or forwarded text (not the sender's own) contains lure phrases: context, e.g. a report to an abuse mailbox"),
];

fn family_rule(f: Family) -> &'static str {
    match f {
        Family::ApiKey => LURE_API_KEY,
        Family::Password => LURE_PASSWORD,
        Family::MfaCode => LURE_MFA_CODE,
        Family::AccountThreat => LURE_ACCOUNT_THREAT,
        Family::Incident => LURE_INCIDENT,
        Family::Payment => LURE_PAYMENT,
        Family::Reward => LURE_REWARD,
        Family::Delivery => LURE_DELIVERY,
        Family::NewSignin => LURE_NEW_SIGNIN,
        Family::Callback => LURE_CALLBACK,
        Family::Wallet => LURE_WALLET,
        Family::Tax => LURE_TAX,
        Family::SharedDocument => LURE_SHARED_DOCUMENT,
    }
}

static FREEMAIL: std::sync::LazyLock<Vec<&'static str>> =
    std::sync::LazyLock::new(|| data_list(include_str!("../../../data/freemail.txt")));

/// A data file's entries: one lowercase domain a line, `#` comments.
pub(crate) fn data_list(text: &'static str) -> Vec<&'static str> {
    text.lines().map(|l| l.split('#').next().unwrap_or("").trim()).filter(|l| !l.is_empty()).collect()
}

/// The domain is a freemail provider (or a subdomain of one): `data/freemail.txt`,
/// or a `freemail` line of the local lists (`intel.ioc_file`).
pub fn is_freemail(domain: &str, local: &crate::intel::Ioc) -> bool {
    if local.is_freemail(domain) {
        return true;
    }
    let d = domain.trim_end_matches('.').to_ascii_lowercase();
    let reg = registrable(&d).unwrap_or_else(|| d.clone());
    FREEMAIL.iter().any(|f| *f == d || *f == reg)
}

/// All content, link, attachment and Reply-To/display-name findings for a message.
#[allow(clippy::too_many_arguments)]
pub fn check(
    msg: &Message,
    brands: &BrandSet,
    facts: &crate::analysis::Facts,
    phrases: &Phrases,
    lookalike: LookalikeFn,
    limits: &Limits,
    local: &crate::intel::Ioc,
    out: &mut Vec<Finding>,
) -> Content {
    let content = extract(msg, limits);
    let from_entries: Vec<_> = msg.from().map(|a| a.iter().collect()).unwrap_or_default();
    let from_domain = from_entries.iter().filter_map(|a| a.address()).find_map(dotted_domain_of);
    // the brand claimed (display name, lookalike From, sign-off) and those the message authenticates as
    let (claimed_brand, vouched) = (facts.claimed_brand, facts.vouched.as_slice());
    let claimed = claimed_brand.and_then(|b| brands.brands.get(b).map(|br| (b, br)));
    let claim_from_outside = claimed.is_some_and(|(_, b)| !from_domain.as_deref().is_some_and(|d| b.owns(d)));

    // Phrases and asks: one finding per family, quoting up to three of them.
    let hits = phrases.find_both(&content.text, &content.compact);
    for f in Family::ALL {
        let of: Vec<&PhraseHit> = hits.iter().filter(|h| h.family == f).collect();
        if !of.is_empty() {
            let ev: Vec<String> = of.iter().take(3).map(|h| h.evidence()).collect();
            out.push(Finding::new(family_rule(f), ev.join(", ")));
        }
    }
    if claim_from_outside {
        if let (Some((_, b)), Some(h)) = (claimed, hits.iter().find(|h| h.family.is_credential())) {
            out.push(Finding::new(
                CREDENTIAL_LURE_BRAND_CLAIM,
                format!(
                    "claims {} from {}, asks: {}",
                    b.name,
                    from_domain.as_deref().unwrap_or("no domain"),
                    h.evidence().trim_start_matches("ask: ")
                ),
            ));
        }
    }

    visibility(&content, brands, phrases, from_domain.as_deref(), claim_from_outside, out);

    if content.zero_width_in_words >= 3 {
        out.push(Finding::new(TEXT_ZERO_WIDTH_OBFUSCATION, format!("{} zero-width characters inside words", content.zero_width_in_words)));
    }

    // Reply-To
    let mut reply: Vec<(String, &str)> =
        msg.reply_to().map(|a| a.iter().filter_map(|x| x.address()).map(|a| (a.to_string(), "Reply-To")).collect()).unwrap_or_default();
    reply.extend(content.mailto.iter().map(|a| (a.clone(), "mailto: link")));
    for (addr, how) in &reply {
        let Some(d) = dotted_domain_of(addr) else { continue };
        if brands.owner_of(&d).is_some() {
            continue;
        }
        // a lookalike Reply-To is the core's LOOKALIKE_REPLY_TO; mailto: links are ours
        if let Some((_, ev)) = lookalike(&d) {
            if *how != "Reply-To" {
                out.push(Finding::new(MAILTO_LOOKALIKE, format!("{how} <{addr}>: {ev}")));
            }
            break;
        }
        let same_org = from_domain
            .as_deref()
            .is_some_and(|f| registrable(f).unwrap_or_else(|| f.to_string()) == registrable(&d).unwrap_or_else(|| d.clone()));
        if let Some((_, b)) = claimed {
            if is_freemail(&d, local) && !same_org {
                out.push(Finding::new(REPLY_TO_FREEMAIL_BRAND_CLAIM, format!("claims {}, {how} <{addr}> is a freemail mailbox", b.name)));
                break;
            }
            if !claim_from_outside && !same_org {
                out.push(Finding::new(
                    REPLY_TO_OUTSIDE_BRAND,
                    format!("From {} is {}'s, {how} <{addr}> is not", from_domain.as_deref().unwrap_or(""), b.name),
                ));
                break;
            }
        }
    }

    // Display name tricks
    let name = from_entries.iter().filter_map(|a| a.name()).collect::<Vec<_>>().join(" ");
    if let Some(why) = hidden_characters(&name) {
        out.push(Finding::new(FROM_NAME_HIDDEN_CHARACTERS, format!("display name {name:?}: {why}")));
    }

    links::check(&content, brands, claimed_brand, vouched, lookalike, local, out);
    attachments::check(&content, out);
    if !content.limits_hit.is_empty() {
        out.push(Finding::new(CONTENT_LIMIT_REACHED, content.limits_hit.join(", ")));
    }
    content
}

/// Words of normalised text below which a body with a linked image reads as image-only.
const IMAGE_ONLY_WORDS: usize = 12;

/// Hidden text, image-only bodies and forwarded lures.
fn visibility(
    content: &Content,
    brands: &BrandSet,
    phrases: &Phrases,
    from: Option<&str>,
    claim_from_outside: bool,
    out: &mut Vec<Finding>,
) {
    if !content.hidden_text.is_empty() {
        let named = brands.named_in(&content.hidden_text).map(|h| h.brand).filter(|b| !from.is_some_and(|d| brands.brands[*b].owns(d)));
        let compact: String = content.hidden_text.chars().filter(|c| *c != ' ').collect();
        let lure = if claim_from_outside { phrases.find_both(&content.hidden_text, &compact).into_iter().next() } else { None };
        if named.is_some() || lure.is_some() {
            let how: Vec<String> = content.hidden.iter().map(|(how, n)| format!("{n} bytes by {how}")).collect();
            let what = match (named, &lure) {
                (Some(b), _) => format!("names {}", brands.brands[b].name),
                (None, Some(h)) => format!("lure {:?} ({})", h.phrase, h.lang),
                _ => String::new(),
            };
            out.push(Finding::new(TEXT_HIDDEN_CONTENT, format!("hidden text {what}: {}", how.join(", "))));
        }
    }
    let own_words = content.text.split(' ').filter(|w| !w.is_empty()).count();
    if content.linked_images > 0 && content.linked_images <= 3 && own_words < IMAGE_ONLY_WORDS {
        out.push(Finding::new(
            BODY_IMAGE_ONLY_LINK,
            format!("{} linked image(s), {own_words} words of visible text (subject included)", content.linked_images),
        ));
    }
    if !content.quoted_text.is_empty() {
        let compact: String = content.quoted_text.chars().filter(|c| *c != ' ').collect();
        let hits = phrases.find_both(&content.quoted_text, &compact);
        if !hits.is_empty() {
            let mut quoted: Vec<String> = Vec::new();
            for h in &hits {
                let q = format!("{:?} ({})", h.phrase, h.lang);
                if !quoted.contains(&q) && quoted.len() < 3 {
                    quoted.push(q);
                }
            }
            out.push(Finding::new(FORWARDED_LURE, format!("quoted or forwarded text contains lure phrases: {}", quoted.join(", "))));
        }
    }
}

/// Zero-width/bidi characters, or a word mixing scripts (Latin with Cyrillic or Greek).
fn hidden_characters(name: &str) -> Option<String> {
    use unicode_security::MixedScript;
    if let Some(c) = name.chars().find(|c| is_invisible(*c)) {
        return Some(format!("invisible character U+{:04X}", c as u32));
    }
    for w in name.split(|c: char| !c.is_alphanumeric()) {
        if w.chars().count() >= 2 && !w.is_single_script() {
            return Some(format!("word {w:?} mixes scripts"));
        }
    }
    None
}

#[cfg(test)]
pub(crate) mod tests;
