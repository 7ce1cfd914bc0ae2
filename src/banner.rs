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

/// The new body (everything after the header block) with the banner in each
/// displayed text and HTML part, or None when no part could take it.
pub fn apply(raw: &[u8], brand: &str) -> Option<Vec<u8>> {
    let msg = MessageParser::default().parse(raw)?;
    let body_start = msg.root_part().offset_body as usize;
    let sample: String = msg.body_text(0).map(|t| t.chars().take(8192).collect()).unwrap_or_default();
    let lang = detect_language(&sample);
    let mut ids: Vec<usize> = msg.text_body.iter().chain(msg.html_body.iter()).map(|i| *i as usize).collect();
    ids.sort_unstable();
    ids.dedup();
    // (start, end, replacement) edits on the raw message, non-overlapping
    let mut edits: Vec<(usize, usize, Vec<u8>)> = Vec::new();
    for id in ids {
        let Some(part) = msg.parts.get(id) else { continue };
        let (is_html, decoded) = match &part.body {
            PartType::Text(t) => (false, t.as_ref()),
            PartType::Html(t) => (true, t.as_ref()),
            _ => continue,
        };
        let (start, end) = (part.offset_body as usize, part.offset_end as usize);
        if start < body_start || end > raw.len() || start > end {
            continue;
        }
        let charset = part.content_type().and_then(|c| c.attribute("charset")).unwrap_or("us-ascii").to_ascii_lowercase();
        let utf8 = matches!(charset.as_str(), "utf-8" | "utf8" | "us-ascii" | "ascii");
        // a non-UTF-8 part gets the English (ASCII) banner
        let text = if utf8 { banner_text(lang, brand) } else { banner_text("en", brand) };
        let block = if is_html { html_banner(&text) } else { format!("{text}\r\n\r\n") };
        match part.encoding {
            Encoding::None | Encoding::QuotedPrintable => {
                let ins = if is_html {
                    // after <body ...> when there is one
                    let lower = String::from_utf8_lossy(&raw[start..end]).to_ascii_lowercase();
                    lower.find("<body").and_then(|b| lower[b..].find('>').map(|e| start + b + e + 1)).unwrap_or(start)
                } else {
                    start
                };
                let bytes = if part.encoding == Encoding::QuotedPrintable { qp(&block).into_bytes() } else { block.into_bytes() };
                let bytes = if part.encoding == Encoding::QuotedPrintable && !bytes.ends_with(b"\r\n") {
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
                let new_text = if is_html {
                    let lower = decoded.to_ascii_lowercase();
                    match lower.find("<body").and_then(|b| lower[b..].find('>').map(|e| b + e + 1)) {
                        Some(at) => format!("{}{}{}", &decoded[..at], block, &decoded[at..]),
                        None => format!("{block}{decoded}"),
                    }
                } else {
                    format!("{block}{decoded}")
                };
                let b64 = base64::engine::general_purpose::STANDARD.encode(new_text.as_bytes());
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
    let mut out = Vec::with_capacity(raw.len() + 1024);
    let mut pos = body_start;
    for (s, e, bytes) in edits {
        if s < pos {
            continue;
        }
        out.extend_from_slice(&raw[pos..s]);
        out.extend_from_slice(&bytes);
        pos = e;
    }
    out.extend_from_slice(&raw[pos..]);
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

    #[test]
    fn language_detection() {
        assert_eq!(detect_language("Hola, su cuenta de usuario que está suspendida"), "es");
        assert_eq!(detect_language("Sehr geehrte Kundin, Ihr Konto ist nicht aktiv und die Daten"), "de");
        assert_eq!(detect_language("Please confirm your account and the key"), "en");
        assert_eq!(detect_language(""), "en");
    }
}
