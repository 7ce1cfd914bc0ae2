//! The optional warning banner on tagged mail (`tag.banner = true`): a short
//! paragraph prepended to the text and HTML bodies, in the message's language
//! where it can be told, like Microsoft's safety tips. Pure: raw message in,
//! new body out (the milter replaces the body). Attached messages and
//! attachments are left alone; a part whose encoding or charset cannot take
//! the banner safely is skipped.

use base64::Engine as _;
use mail_parser::{Encoding, MessageParser, MimeHeaders, PartType};

/// The banner texts, by language. `{brand}` is replaced by the brand's name.
const BANNERS: &[(&str, &str)] = &[
    ("en", "Caution: this message mentions {brand} but shows signs of impersonation. Do not send passwords, API keys or verification codes, and do not open its links or attachments unless you have checked them another way."),
    ("es", "Precaución: este mensaje menciona {brand} pero muestra indicios de suplantación. No envíe contraseñas, claves API ni códigos de verificación, y no abra sus enlaces ni adjuntos sin comprobarlos por otra vía."),
    ("fr", "Attention : ce message mentionne {brand} mais présente des signes d'usurpation. N'envoyez ni mot de passe, ni clé API, ni code de vérification, et n'ouvrez ni ses liens ni ses pièces jointes sans les avoir vérifiés autrement."),
    ("de", "Vorsicht: Diese Nachricht nennt {brand}, zeigt aber Anzeichen eines Identitätsbetrugs. Senden Sie keine Passwörter, API-Schlüssel oder Bestätigungscodes und öffnen Sie Links oder Anhänge nur nach anderweitiger Prüfung."),
    ("pt", "Atenção: esta mensagem menciona {brand}, mas apresenta sinais de falsificação. Não envie senhas, chaves de API nem códigos de verificação, e não abra os seus links ou anexos sem confirmá-los por outro meio."),
    ("it", "Attenzione: questo messaggio cita {brand} ma mostra segni di impersonificazione. Non inviare password, chiavi API o codici di verifica e non aprire link o allegati senza averli verificati in altro modo."),
];

/// Frequent short words per language: enough to tell these six apart.
const STOPWORDS: &[(&str, &[&str])] = &[
    ("en", &["the", "and", "your", "you", "to", "of", "is", "please", "account"]),
    ("es", &["el", "los", "que", "su", "usted", "de", "por", "para", "cuenta"]),
    ("fr", &["le", "les", "vous", "votre", "de", "des", "est", "pour", "compte"]),
    ("de", &["der", "die", "und", "sie", "ihr", "ihre", "ist", "nicht", "konto"]),
    ("pt", &["o", "os", "que", "você", "seu", "sua", "não", "para", "conta"]),
    ("it", &["il", "che", "di", "tuo", "tua", "non", "per", "è", "account"]),
];

/// The language of `text` among those with a banner, or "en".
pub fn detect_language(text: &str) -> &'static str {
    let lower = text.chars().take(8192).collect::<String>().to_lowercase();
    let words: Vec<&str> = lower.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).collect();
    let mut best = ("en", 0usize);
    for (lang, list) in STOPWORDS {
        let n = words.iter().filter(|w| list.contains(w)).count();
        if n > best.1 {
            best = (lang, n);
        }
    }
    best.0
}

pub fn banner_text(lang: &str, brand: &str) -> String {
    let t = BANNERS.iter().find(|(l, _)| *l == lang).map(|(_, t)| *t).unwrap_or(BANNERS[0].1);
    t.replace("{brand}", brand)
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn html_banner(text: &str) -> String {
    format!(
        "<div style=\"border:2px solid #b00020;background:#fff4f4;color:#000;padding:8px;margin:0 0 12px 0;font-family:sans-serif;font-size:14px\">&#9888; {}</div>\r\n",
        html_escape(text)
    )
}

/// Quoted-printable encoding of a banner (soft line breaks at 76).
fn qp(s: &str) -> String {
    let mut out = String::new();
    let mut line = 0;
    for b in s.bytes() {
        let enc = if (b.is_ascii_graphic() && b != b'=') || b == b' ' { (b as char).to_string() } else { format!("={b:02X}") };
        if line + enc.len() > 75 {
            out.push_str("=\r\n");
            line = 0;
        }
        line += enc.len();
        out.push_str(&enc);
    }
    out
}

/// Base64 as mailers write it: padding optional, stray trailing bits ignored.
const LENIENT_BASE64: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    base64::engine::GeneralPurposeConfig::new()
        .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

/// The offset just after the first `<body ...>` tag in `html`, found in the bytes (ASCII case-insensitively), so that it is
/// right whatever the charset: an 8-bit byte is one byte here, not a 3-byte replacement character. None without a tag.
fn after_body_tag(html: &[u8]) -> Option<usize> {
    // to_ascii_lowercase keeps every byte where it was: offsets into `lower` are offsets into `html`
    let lower = html.to_ascii_lowercase();
    let mut from = 0;
    while let Some(i) = lower.get(from..).and_then(|rest| memchr::memmem::find(rest, b"<body")) {
        let name_end = from.checked_add(i)?.checked_add(5)?;
        // `<body>`, `<body attr...>`, `<body/>`; not `<bodyx>`
        match lower.get(name_end) {
            Some(b'>' | b'/' | b' ' | b'\t' | b'\r' | b'\n' | b'\x0c') => {
                let gt = memchr::memchr(b'>', lower.get(name_end..)?)?;
                return name_end.checked_add(gt)?.checked_add(1);
            }
            Some(_) => from = name_end,
            None => return None,
        }
    }
    None
}

/// `html` with `block` inserted after its `<body ...>` tag, or at the start without one.
fn insert_after_body_tag(html: &[u8], block: &[u8]) -> Vec<u8> {
    let at = after_body_tag(html).unwrap_or(0);
    let (head, tail) = html.split_at(at.min(html.len()));
    [head, block, tail].concat()
}

/// Where a banner goes in one message: the displayed text and HTML parts, with
/// their byte ranges in the raw message, read off the analysis's own parse so
/// that tagged mail is not parsed a second time ([`sites`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sites {
    body_start: usize,
    /// The start of the first text body, for the banner's language (detected only when a banner is added).
    sample: String,
    parts: Vec<Site>,
}

#[derive(Debug, Clone, PartialEq)]
struct Site {
    start: usize,
    end: usize,
    is_html: bool,
    /// The part's charset is UTF-8 or ASCII (else the English, ASCII banner).
    utf8: bool,
    encoding: Encoding,
}

/// The new body (everything after the header block) with the banner in each
/// displayed text and HTML part, or None when no part could take it.
///
/// Never panics, whatever `raw` holds: offsets come from the parser and are
/// checked against `raw` before use; the HTML is searched as bytes.
pub fn apply(raw: &[u8], brand: &str) -> Option<Vec<u8>> {
    let msg = MessageParser::default().parse(raw)?;
    let sites = sites(raw, &msg, msg.body_text(0).as_deref());
    crate::message::drop_flat(msg);
    apply_sites(raw, &sites?, brand)
}

/// The banner's sites in `msg`, the parse of `raw`; `body_text` is `msg.body_text(0)`.
pub fn sites(raw: &[u8], msg: &mail_parser::Message, body_text: Option<&str>) -> Option<Sites> {
    let body_start = usize::try_from(msg.root_part().offset_body).ok()?;
    if body_start > raw.len() {
        return None;
    }
    let sample: String = body_text.map(|t| t.chars().take(8192).collect()).unwrap_or_default();
    let mut sites = Sites { body_start, sample, parts: Vec::new() };
    let mut ids: Vec<usize> = msg.text_body.iter().chain(msg.html_body.iter()).map(|i| *i as usize).collect();
    ids.sort_unstable();
    ids.dedup();
    for id in ids {
        let Some(part) = msg.parts.get(id) else { continue };
        let is_html = match &part.body {
            PartType::Text(_) => false,
            PartType::Html(_) => true,
            _ => continue,
        };
        let (Ok(start), Ok(end)) = (usize::try_from(part.offset_body), usize::try_from(part.offset_end)) else { continue };
        if start < body_start || start > end || end > raw.len() {
            continue;
        }
        let charset = part.content_type().and_then(|c| c.attribute("charset")).unwrap_or("us-ascii").to_ascii_lowercase();
        let utf8 = matches!(charset.as_str(), "utf-8" | "utf8" | "us-ascii" | "ascii");
        sites.parts.push(Site { start, end, is_html, utf8, encoding: part.encoding });
    }
    Some(sites)
}

/// The new body with the banner at `sites` (from [`sites`] over this same `raw`).
pub fn apply_sites(raw: &[u8], sites: &Sites, brand: &str) -> Option<Vec<u8>> {
    let body_start = sites.body_start;
    if body_start > raw.len() {
        return None;
    }
    let lang = detect_language(&sites.sample);
    // (start, end, replacement) edits on the raw message, non-overlapping
    let mut edits: Vec<(usize, usize, Vec<u8>)> = Vec::new();
    for &Site { start, end, is_html, utf8, encoding } in &sites.parts {
        let Some(encoded) = raw.get(start..end) else { continue };
        // a non-UTF-8 part gets the English (ASCII) banner
        let text = if utf8 { banner_text(lang, brand) } else { banner_text("en", brand) };
        let block = if is_html { html_banner(&text) } else { format!("{text}\r\n\r\n") };
        match encoding {
            Encoding::None | Encoding::QuotedPrintable => {
                // after <body ...> when there is one (`<body` and `>` are the same in QP)
                let ins = if is_html { after_body_tag(encoded).and_then(|at| start.checked_add(at)).unwrap_or(start) } else { start };
                let bytes = if encoding == Encoding::QuotedPrintable { qp(&block).into_bytes() } else { block.into_bytes() };
                let bytes = if encoding == Encoding::QuotedPrintable && !bytes.ends_with(b"\r\n") {
                    [bytes, b"=\r\n".to_vec()].concat()
                } else {
                    bytes
                };
                edits.push((ins, ins, bytes));
            }
            Encoding::Base64 => {
                if !utf8 {
                    continue;
                }
                // the part's own bytes, not the parser's (lossy) text: what is re-encoded is what was sent, plus the banner;
                // base64 the parser had to guess at is left alone
                let compact: Vec<u8> = encoded.iter().copied().filter(|b| !b.is_ascii_whitespace()).collect();
                let Ok(decoded) = LENIENT_BASE64.decode(&compact) else { continue };
                let new_bytes =
                    if is_html { insert_after_body_tag(&decoded, block.as_bytes()) } else { [block.as_bytes(), &decoded].concat() };
                let b64 = base64::engine::general_purpose::STANDARD.encode(&new_bytes);
                let mut wrapped = Vec::with_capacity(b64.len() + b64.len() / 38);
                for chunk in b64.as_bytes().chunks(76) {
                    wrapped.extend_from_slice(chunk);
                    wrapped.extend_from_slice(b"\r\n");
                }
                // keep whatever line break ended the original encoded block
                edits.push((start, end, wrapped));
            }
        }
    }
    if edits.is_empty() {
        return None;
    }
    edits.sort_by_key(|e| e.0);
    let mut out = Vec::with_capacity(raw.len().saturating_add(1024));
    let mut pos = body_start;
    let mut applied = 0;
    for (s, e, bytes) in edits {
        // overlapping or out of range: left out (the ranges were checked above; this keeps the copy panic-free)
        let Some(kept) = raw.get(pos..s) else { continue };
        if e < s || e > raw.len() {
            continue;
        }
        out.extend_from_slice(kept);
        out.extend_from_slice(&bytes);
        pos = e;
        applied += 1;
    }
    if applied == 0 {
        return None;
    }
    out.extend_from_slice(raw.get(pos..).unwrap_or_default());
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body_of(raw: &[u8], new_body: &[u8]) -> String {
        let header_end = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        let full = [&raw[..header_end], new_body].concat();
        let msg = MessageParser::default().parse(&full).unwrap();
        format!("{}\n---\n{}", msg.body_text(0).unwrap_or_default(), msg.body_html(0).unwrap_or_default())
    }

    #[test]
    fn plain_text_gets_banner_in_the_message_language() {
        let raw = b"From: a@b.example\r\nSubject: x\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nBonjour, votre compte est suspendu. Saisissez le code pour le compte.\r\n";
        let body = apply(raw, "OpenAI").unwrap();
        let text = body_of(raw, &body);
        assert!(text.starts_with("Attention : ce message mentionne OpenAI"), "{text}");
        assert!(text.contains("Bonjour, votre compte"), "{text}");
    }

    #[test]
    fn multipart_text_and_html_both_get_it_and_attachments_do_not() {
        let raw = concat!(
            "From: a@b.example\r\nSubject: x\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"B1\"\r\n\r\n",
            "--B1\r\nContent-Type: multipart/alternative; boundary=\"B2\"\r\n\r\n",
            "--B2\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nPlease verify your account =E2=80=94 the team.\r\n",
            "--B2\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n",
            "PGh0bWw+PGJvZHk+PHA+UGxlYXNlIHZlcmlmeSB5b3VyIGFjY291bnQuPC9wPjwvYm9keT48L2h0bWw+\r\n",
            "--B2--\r\n",
            "--B1\r\nContent-Type: text/plain; name=\"notes.txt\"\r\nContent-Disposition: attachment; filename=\"notes.txt\"\r\n\r\nattachment text\r\n",
            "--B1--\r\n"
        )
        .as_bytes();
        let body = apply(raw, "OpenAI").unwrap();
        let header_end = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        let full = [&raw[..header_end], &body[..]].concat();
        let msg = MessageParser::default().parse(&full).unwrap();
        let text = msg.body_text(0).unwrap();
        assert!(text.starts_with("Caution: this message mentions OpenAI"), "{text}");
        assert!(text.contains("Please verify your account — the team."), "{text}");
        let html = msg.body_html(0).unwrap();
        assert!(html.contains("<body><div style=") && html.contains("Caution: this message mentions OpenAI"), "{html}");
        assert!(html.contains("<p>Please verify your account.</p>"), "{html}");
        let att = msg.attachment(0).unwrap();
        assert_eq!(att.contents(), b"attachment text");
    }

    /// The body of `raw` (after the blank line ending the header block).
    fn raw_body(raw: &[u8]) -> &[u8] {
        &raw[raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4..]
    }

    fn latin1_html(before_body: &[u8]) -> Vec<u8> {
        let head: &[u8] = b"From: a@b.example\r\nSubject: x\r\nMIME-Version: 1.0\r\n\
            Content-Type: text/html; charset=iso-8859-1\r\nContent-Transfer-Encoding: 8bit\r\n\r\n";
        let html: &[u8] = b"<html><head><title>Caf\xe9 cr\xe8me \xe0 la carte</title></head>";
        [head, html, before_body, b"<body bgcolor=\"#fff\"><p>R\xe9sum\xe9 \xe9t\xe9</p></body></html>\r\n"].concat()
    }

    /// What `apply` must return for an HTML part without transfer encoding: the banner right after `<body ...>`, every other
    /// byte as it was.
    fn banner_after_body_tag(raw: &[u8]) -> Vec<u8> {
        let body = raw_body(raw);
        let tag = b"<body bgcolor=\"#fff\">";
        let at = body.windows(tag.len()).position(|w| w == tag).unwrap() + tag.len();
        [&body[..at], html_banner(&banner_text("en", "OpenAI")).as_bytes(), &body[at..]].concat()
    }

    #[test]
    fn latin1_html_banner_lands_after_the_body_tag() {
        let raw = latin1_html(b"");
        let out = apply(&raw, "OpenAI").expect("the HTML part takes the banner");
        assert_eq!(String::from_utf8_lossy(&out), String::from_utf8_lossy(&banner_after_body_tag(&raw)));
    }

    #[test]
    fn invalid_utf8_before_body_tag_does_not_panic() {
        let raw = latin1_html(&[0xffu8; 3000]);
        let out = apply(&raw, "OpenAI").expect("the HTML part takes the banner");
        assert!(out == banner_after_body_tag(&raw), "banner misplaced or bytes changed");
    }

    /// A small deterministic generator (xorshift64*), so a failure can be replayed from its case number.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
        fn pick<T: Copy>(&mut self, items: &[T]) -> T {
            items[self.below(items.len())]
        }
        fn bytes(&mut self, n: usize) -> Vec<u8> {
            (0..n).map(|_| self.next() as u8).collect()
        }
    }

    /// A hostile body fragment: 8-bit and invalid UTF-8 bytes, tag pieces, QP and base64 debris, boundary lines, huge lines.
    fn fragment(r: &mut Rng, boundary: &str) -> Vec<u8> {
        match r.below(16) {
            0 => {
                let n = r.below(64);
                r.bytes(n)
            }
            1 => vec![0xe9; r.below(4000)],
            2 => vec![0xff; r.below(4000)],
            3 => r.pick(&["<body>", "<BODY bgcolor=\"#fff\">", "<body", "<Body\r\n class=x>", "<bodyx>", "<body/>", ">", "</body>"]).into(),
            4 => r.pick::<&[u8]>(&[b"=", b"=\r\n", b"=ZZ", b"=E9", b"=C3=A9", b"=\xe9\r\n", b"==", b"=0D=0A"]).into(),
            5 => r
                .pick::<&[u8]>(&[b"PGh0bWw+PGJvZHk+", b"QUJD", b"QUJ", b"!!!!", b"====", b"PGJvZHk+aGk8L2JvZHk+\r\n", b"\xe9\xe9=="])
                .into(),
            6 => format!("\r\n--{boundary}\r\n").into_bytes(),
            7 => format!("\r\n--{boundary}--\r\n").into_bytes(),
            8 => r.pick(&["\r\n--bogus\r\n", "\r\n--\r\n", "\r\n----\r\n", "\n--B1\n"]).into(),
            9 => vec![b'a'; r.below(30_000)],
            10 => r
                .pick(&[
                    "Content-Type: text/html; charset=iso-8859-1\r\n\r\n",
                    "Content-Transfer-Encoding: base64\r\n\r\n",
                    "Content-Type: text/plain\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n",
                ])
                .into(),
            11 => "Caf\u{e9} cr\u{e8}me, votre compte \u{2014} \u{1f600}".into(),
            12 => b"\r\n".to_vec(),
            13 => b"\r\n\r\n".to_vec(),
            14 => vec![b'\r'; r.below(100)],
            _ => b"Please verify your account.".to_vec(),
        }
    }

    fn hostile_message(r: &mut Rng) -> Vec<u8> {
        if r.below(10) == 0 {
            // bytes only, header block and all
            let n = r.below(5000);
            return r.bytes(n);
        }
        let boundary = r.pick(&["B1", "B2", "", "\"\"", "=_x", "a b", "\u{e9}"]).to_string();
        let ctype = match r.below(6) {
            0 => "text/plain".to_string(),
            1 => "text/html".to_string(),
            2 => format!("multipart/alternative; boundary=\"{boundary}\""),
            3 => format!("multipart/mixed; boundary={boundary}"),
            4 => "multipart/alternative".to_string(),
            _ => r.pick(&["message/rfc822", "text/html; charset", "application/octet-stream", "text/"]).to_string(),
        };
        let charset = r.pick(&["utf-8", "iso-8859-1", "windows-1252", "us-ascii", "x-bogus", "utf-16"]);
        let cte = r.pick(&["", "7bit", "8bit", "quoted-printable", "base64", "x-uuencode", "binary"]);
        let mut m =
            format!("From: a@b.example\r\nSubject: x\r\nMIME-Version: 1.0\r\nContent-Type: {ctype}; charset={charset}\r\n").into_bytes();
        if !cte.is_empty() {
            m.extend_from_slice(format!("Content-Transfer-Encoding: {cte}\r\n").as_bytes());
        }
        m.extend_from_slice(b"\r\n");
        for _ in 0..r.below(24) {
            let f = fragment(r, &boundary);
            m.extend_from_slice(&f);
        }
        if r.below(4) == 0 {
            // truncated anywhere, even inside the header block
            let cut = r.below(m.len() + 1);
            m.truncate(cut);
        }
        m
    }

    /// `body` without every banner `apply` can insert (any language, HTML or text, raw or QP-encoded); how many were cut.
    fn without_banners(mut body: Vec<u8>) -> (Vec<u8>, usize) {
        let mut blocks: Vec<Vec<u8>> = Vec::new();
        for (lang, _) in BANNERS {
            let text = banner_text(lang, "OpenAI");
            for block in [html_banner(&text), format!("{text}\r\n\r\n")] {
                blocks.push(format!("{}=\r\n", qp(&block)).into_bytes());
                blocks.push(qp(&block).into_bytes());
                blocks.push(block.into_bytes());
            }
        }
        let mut cut = 0;
        for b in &blocks {
            while let Some(i) = memchr::memmem::find(&body, b) {
                body.drain(i..i + b.len());
                cut += 1;
            }
        }
        (body, cut)
    }

    /// On any input `apply` returns instead of panicking; when it edits a message without base64 (which is re-encoded whole), the
    /// result is the original body plus banners: every original byte kept, in order.
    #[test]
    fn hostile_bodies_never_panic_and_keep_every_byte() {
        let mut r = Rng(0x9e37_79b9_7f4a_7c15);
        let mut edited = 0;
        for case in 0..2000 {
            let raw = hostile_message(&mut r);
            let Some(out) = apply(&raw, "OpenAI") else { continue };
            edited += 1;
            let body_start = MessageParser::default().parse(&raw).unwrap().root_part().offset_body as usize;
            let body = &raw[body_start..];
            if memchr::memmem::find(&raw.to_ascii_lowercase(), b"base64").is_some() {
                assert!(out != body, "case {case}: Some without an edit");
                continue;
            }
            let (rest, cut) = without_banners(out);
            assert!(cut >= 1, "case {case}: no banner in the result");
            assert!(rest == body, "case {case}: original bytes changed or lost");
        }
        assert!(edited > 400, "the generator should make many messages that take the banner, made {edited}");
    }

    #[test]
    fn language_detection() {
        assert_eq!(detect_language("Hola, su cuenta de usuario que está suspendida"), "es");
        assert_eq!(detect_language("Sehr geehrte Kundin, Ihr Konto ist nicht aktiv und die Daten"), "de");
        assert_eq!(detect_language("Please confirm your account and the key"), "en");
        assert_eq!(detect_language(""), "en");
    }
}
