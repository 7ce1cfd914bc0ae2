//! Attachments: what they are (by name and by content), never executed.
//!
//! Archives are listed from their central directory only (no decompression);
//! PDFs are scanned for `/URI` entries (literal and hex strings), in the file
//! and in its FlateDecode streams, inflated within a per-message budget; OLE2
//! Office files are searched for a VBA project stream name; HTML under another
//! declared type is sniffed ([`sniff_html`]), SVG is searched for script
//! ([`svg_script`]). All of it within `limits.max_image_bytes` bytes.

use super::html::HtmlOut;
use super::*;

/// What an attachment is, from its name and its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttachmentKind {
    Executable,
    MacroOffice,
    Archive,
    DiskImageOrShortcut,
    Html,
    Pdf,
    Image,
    Other,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AttachmentInfo {
    pub name: String,
    pub content_type: String,
    pub size: usize,
    pub kind: AttachmentKind,
    /// An executable or script named inside an archive.
    pub inner_executable: Option<String>,
    /// HTML attachment with a password field.
    pub login_form: bool,
    /// HTML attachment that decodes script data into a page or file.
    pub smuggling: bool,
    /// SVG image with script (`<script`, an `on…=` event handler, a `javascript:` URL).
    pub svg_script: bool,
}

/// The bytes are an HTML document whatever the declared type or name: after a
/// BOM and white space (and comments), `<!doctype html`, `<html`, `<head`, `<body`, `<script`, `<form`, `<meta`, `<iframe`.
pub fn sniff_html(bytes: &[u8]) -> bool {
    let mut b = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    for _ in 0..8 {
        let start = b.iter().position(|c| !c.is_ascii_whitespace()).unwrap_or(b.len());
        b = &b[start..];
        if b.starts_with(b"<!--") {
            match memchr::memmem::find(b, b"-->") {
                Some(e) if e < 4096 => b = &b[e + 3..],
                _ => return false,
            }
        } else {
            break;
        }
    }
    let head: Vec<u8> = b.iter().take(16).map(u8::to_ascii_lowercase).collect();
    [&b"<!doctype html"[..], b"<html", b"<head", b"<body", b"<script", b"<form", b"<meta", b"<iframe"].iter().any(|p| head.starts_with(p))
}

/// An SVG (by name, type or content) that carries script: `<script`, an event handler (`onload=` …) or a `javascript:` URL.
pub fn svg_script(name: &str, ctype: &str, bytes: &[u8]) -> bool {
    let head = &bytes[..bytes.len().min(2 * 1024 * 1024)];
    let lower = head.to_ascii_lowercase();
    let svg = ctype.eq_ignore_ascii_case("image/svg+xml")
        || name.to_ascii_lowercase().ends_with(".svg")
        || memchr::memmem::find(&lower[..lower.len().min(4096)], b"<svg").is_some();
    if !svg {
        return false;
    }
    if memchr::memmem::find(&lower, b"<script").is_some() || memchr::memmem::find(&lower, b"javascript:").is_some() {
        return true;
    }
    // an event handler attribute: whitespace, `on` + letters, `=`
    let mut i = 0;
    while let Some(p) = memchr::memmem::find(&lower[i..], b"on") {
        let at = i + p;
        i = at + 2;
        if at == 0 || !lower[at - 1].is_ascii_whitespace() {
            continue;
        }
        let n = lower[at + 2..].iter().take_while(|c| c.is_ascii_alphabetic()).count();
        if (3..=20).contains(&n) && lower.get(at + 2 + n..).is_some_and(|r| r.iter().find(|c| !c.is_ascii_whitespace()) == Some(&b'=')) {
            return true;
        }
    }
    false
}

const EXEC: &[&str] = &[
    "exe",
    "scr",
    "com",
    "pif",
    "bat",
    "cmd",
    "js",
    "jse",
    "vbs",
    "vbe",
    "wsf",
    "wsh",
    "hta",
    "ps1",
    "psm1",
    "msi",
    "msp",
    "jar",
    "cpl",
    "reg",
    "dll",
    "application",
    "appx",
    "msix",
    "msc",
    "gadget",
    "inf",
    "sct",
    "chm",
    "url",
    "xll",
    "elf",
];
const MACRO: &[&str] = &["docm", "dotm", "xlsm", "xltm", "xlam", "pptm", "potm", "ppam", "ppsm", "sldm", "xlsb"];
const ARCHIVE: &[&str] = &["zip", "rar", "7z", "gz", "tgz", "bz2", "xz", "tar", "cab", "ace", "arj", "lzh", "z", "zipx"];
const DISK: &[&str] = &["iso", "img", "vhd", "vhdx", "lnk", "dmg"];
const OOXML: &[&str] = &["docx", "xlsx", "pptx", "dotx", "xltx", "potx", "ppsx", "odt", "ods", "odp", "epub", "jar", "apk"];

fn ext(name: &str) -> String {
    name.rsplit_once('.').map(|(_, e)| e.trim().to_ascii_lowercase()).unwrap_or_default()
}

fn find(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn utf16(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(u16::to_le_bytes).collect()
}

/// Classifies a binary attachment.
pub fn classify(name: &str, ctype: &str, bytes: &[u8], limits: &Limits) -> AttachmentInfo {
    let e = ext(name);
    let head = &bytes[..bytes.len().min(limits.max_image_bytes)];
    let mut info = AttachmentInfo {
        name: name.to_string(),
        content_type: ctype.to_string(),
        size: bytes.len(),
        kind: AttachmentKind::Other,
        inner_executable: None,
        login_form: false,
        smuggling: false,
        svg_script: false,
    };
    let zip = head.starts_with(b"PK\x03\x04");
    let ole = head.starts_with(&[0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1]);
    info.kind = if EXEC.contains(&e.as_str()) || head.starts_with(b"MZ") && head.len() > 64 || head.starts_with(b"\x7fELF") {
        AttachmentKind::Executable
    } else if MACRO.contains(&e.as_str()) {
        AttachmentKind::MacroOffice
    } else if DISK.contains(&e.as_str())
        || head.starts_with(&[0x4C, 0, 0, 0, 0x01, 0x14, 0x02, 0])
        || head.get(0x8001..0x8006) == Some(b"CD001")
    {
        AttachmentKind::DiskImageOrShortcut
    } else if ole && (find(head, &utf16("_VBA_PROJECT")) || find(head, &utf16("Macros"))) {
        AttachmentKind::MacroOffice
    } else if zip
        || ARCHIVE.contains(&e.as_str())
        || head.starts_with(b"Rar!")
        || head.starts_with(b"7z\xBC\xAF\x27\x1C")
        || head.starts_with(b"MSCF")
    {
        AttachmentKind::Archive
    } else if e == "pdf" || ctype == "application/pdf" || head.starts_with(b"%PDF") {
        AttachmentKind::Pdf
    } else if ctype.starts_with("image/") {
        AttachmentKind::Image
    } else {
        AttachmentKind::Other
    };
    if zip && info.kind == AttachmentKind::Archive {
        // OOXML and other zip-based documents: a VBA project inside means macros.
        let names = zip_names(head);
        if names.iter().any(|n| n.to_ascii_lowercase().ends_with("vbaproject.bin")) {
            info.kind = AttachmentKind::MacroOffice;
        } else if OOXML.contains(&e.as_str()) || names.iter().any(|n| n == "[Content_Types].xml" || n == "mimetype") {
            info.kind = AttachmentKind::Other;
        } else if let Some(inner) = names.iter().find(|n| {
            let ie = ext(n);
            EXEC.contains(&ie.as_str()) || DISK.contains(&ie.as_str()) || MACRO.contains(&ie.as_str())
        }) {
            info.inner_executable = Some(inner.clone());
        }
    }
    info
}

/// Entry names of a zip archive, from its central directory (at most 1,000).
pub fn zip_names(bytes: &[u8]) -> Vec<String> {
    match zip::ZipArchive::new(std::io::Cursor::new(bytes)) {
        Ok(a) => a.file_names().take(1000).filter_map(|n| n.ok().map(|n| n.into_owned())).collect(),
        // a truncated archive still has local headers: read their names
        Err(_) => local_zip_names(bytes),
    }
}

fn local_zip_names(b: &[u8]) -> Vec<String> {
    let mut names = Vec::new();
    let mut i = 0;
    while i + 30 <= b.len() && names.len() < 1000 {
        if &b[i..i + 4] == b"PK\x03\x04" {
            let n = u16::from_le_bytes([b[i + 26], b[i + 27]]) as usize;
            if let Some(raw) = b.get(i + 30..i + 30 + n) {
                names.push(String::from_utf8_lossy(raw).into_owned());
            }
            i += 30 + n;
        } else {
            i += 1;
        }
    }
    names
}

/// Describes an HTML attachment: login form, smuggling script.
pub fn html_attachment(name: &str, ctype: &str, source: &str, parsed: &HtmlOut) -> AttachmentInfo {
    let lower = source[..super::truncate(source, 2 * 1024 * 1024).len()].to_ascii_lowercase();
    let decodes = ["atob(", "fromcharcode", "unescape(", "decodeuricomponent(", "base64,"].iter().any(|p| lower.contains(p));
    let builds = [
        "new blob",
        "createobjecturl",
        "mssaveoropenblob",
        "document.write",
        "location.href",
        "location.replace",
        "window.location",
        ".innerhtml",
    ]
    .iter()
    .any(|p| lower.contains(p));
    AttachmentInfo {
        name: name.to_string(),
        content_type: ctype.to_string(),
        size: source.len(),
        kind: AttachmentKind::Html,
        inner_executable: None,
        login_form: parsed.password_inputs > 0,
        smuggling: decodes && builds,
        svg_script: false,
    }
}

/// Appends the `/URI` targets of a PDF: literal `(…)` and hex `<…>` strings, in
/// the file and inside its FlateDecode streams (object streams included), each
/// stream inflated to at most what is left of `budget` (per message; zip-bomb
/// safe). Returns the limits reached, for `CONTENT_LIMIT_REACHED`.
pub fn pdf_uris(name: &str, bytes: &[u8], limits: &Limits, budget: &mut usize, out: &mut Vec<Link>) -> Vec<String> {
    let mut hits = Vec::new();
    let b = &bytes[..bytes.len().min(limits.max_image_bytes)];
    if bytes.len() > b.len() {
        hits.push(format!("max_image_bytes ({}) for PDF {name}", limits.max_image_bytes));
    }
    scan_uris(name, b, limits, out);
    let mut i = 0;
    let mut cut = false;
    while let Some(p) = memchr::memmem::find(&b[i..], b"stream") {
        let at = i + p;
        i = at + 6;
        // `stream` after the dictionary, then EOL (not `endstream`)
        if at >= 3 && &b[at - 3..at] == b"end" {
            continue;
        }
        let mut s = at + 6;
        if b.get(s) == Some(&b'\r') {
            s += 1;
        }
        if b.get(s) != Some(&b'\n') {
            continue;
        }
        s += 1;
        let dict_from = memchr::memmem::rfind(&b[at.saturating_sub(2048)..at], b"<<").map_or(at, |d| at.saturating_sub(2048) + d);
        let dict = &b[dict_from..at];
        let end = memchr::memmem::find(&b[s..], b"endstream").map_or(b.len(), |e| s + e);
        i = end;
        if memchr::memmem::find(dict, b"/FlateDecode").is_none() && memchr::memmem::find(dict, b"/Fl ").is_none() {
            continue;
        }
        if *budget == 0 {
            cut = true;
            break;
        }
        use std::io::Read;
        let mut inflated = Vec::new();
        let mut z = flate2::read::ZlibDecoder::new(&b[s..end]).take(*budget as u64 + 1);
        // a damaged stream still yields what inflated before the damage
        let _ = z.read_to_end(&mut inflated);
        if inflated.len() > *budget {
            inflated.truncate(*budget);
            cut = true;
        }
        *budget -= inflated.len();
        scan_uris(name, &inflated, limits, out);
        if cut {
            break;
        }
    }
    if cut {
        hits.push(format!("max_image_bytes ({}) inflated from PDF streams, {name} cut", limits.max_image_bytes));
    }
    hits
}

/// `/URI (literal)` and `/URI <hex>` entries in PDF bytes.
fn scan_uris(name: &str, b: &[u8], limits: &Limits, out: &mut Vec<Link>) {
    let mut i = 0;
    while let Some(p) = memchr::memmem::find(&b[i..], b"/URI") {
        let mut j = i + p + 4;
        while j < b.len() && b[j].is_ascii_whitespace() {
            j += 1;
        }
        let mut s = Vec::new();
        let mut k = j + 1;
        match b.get(j) {
            Some(b'(') => {
                while k < b.len() && b[k] != b')' && s.len() < 2000 {
                    if b[k] == b'\\' && k + 1 < b.len() {
                        k += 1;
                    }
                    s.push(b[k]);
                    k += 1;
                }
            }
            Some(b'<') if b.get(j + 1) != Some(&b'<') => {
                let mut nibble: Option<u8> = None;
                while k < b.len() && b[k] != b'>' && s.len() < 2000 {
                    if let Some(d) = (b[k] as char).to_digit(16) {
                        match nibble.take() {
                            Some(h) => s.push(h << 4 | d as u8),
                            None => nibble = Some(d as u8),
                        }
                    }
                    k += 1;
                }
                if let Some(h) = nibble {
                    s.push(h << 4);
                }
            }
            _ => {
                i = j;
                continue;
            }
        }
        if let Some(l) = Link::parse(&String::from_utf8_lossy(&s), LinkSource::Pdf(name.to_string()), None) {
            if out.len() <= limits.max_links && !out.contains(&l) {
                out.push(l);
            }
        }
        i = k.min(b.len());
    }
}

/// Findings for attachments, one per rule (first attachment named, others counted).
pub fn check(content: &Content, out: &mut Vec<Finding>) {
    let mut found: Vec<(&'static str, String)> = Vec::new();
    let mut add = |rule: &'static str, ev: String| {
        if !found.iter().any(|f| f.0 == rule) {
            found.push((rule, ev));
        }
    };
    for a in &content.attachments {
        if a.svg_script {
            add(ATTACHMENT_SVG_SCRIPT, format!("{} ({}, {} bytes) carries script", a.name, a.content_type, a.size));
        }
        match a.kind {
            AttachmentKind::Executable => add(ATTACHMENT_EXECUTABLE, format!("{} ({}, {} bytes)", a.name, a.content_type, a.size)),
            AttachmentKind::MacroOffice => add(ATTACHMENT_MACRO_OFFICE, format!("{} ({})", a.name, a.content_type)),
            AttachmentKind::DiskImageOrShortcut => add(ATTACHMENT_DISK_IMAGE_OR_SHORTCUT, format!("{} ({})", a.name, a.content_type)),
            AttachmentKind::Archive => {
                add(ATTACHMENT_ARCHIVE, format!("{} ({})", a.name, a.content_type));
                if let Some(inner) = &a.inner_executable {
                    add(ATTACHMENT_EXECUTABLE, format!("{inner} inside {}", a.name));
                }
            }
            AttachmentKind::Html => {
                add(ATTACHMENT_HTML, format!("{} ({})", a.name, a.content_type));
                if a.login_form {
                    add(ATTACHMENT_HTML_LOGIN_FORM, format!("{} has a password field", a.name));
                }
                if a.smuggling {
                    add(ATTACHMENT_HTML_SMUGGLING, format!("{} decodes script data into the page", a.name));
                }
            }
            _ => {}
        }
    }
    if content.body_password_fields > 0 {
        add(FORM_PASSWORD_FIELD, format!("{} password field(s) in the message body", content.body_password_fields));
    }
    for (rule, ev) in found {
        out.push(Finding::new(rule, ev));
    }
}

#[cfg(test)]
mod sniff_tests {
    use super::*;

    #[test]
    fn html_is_sniffed_after_bom_space_and_comments() {
        assert!(sniff_html(b"\xEF\xBB\xBF  \r\n<!DOCTYPE html><html>"));
        assert!(sniff_html(b"<!-- x --><HTML><body>"));
        assert!(sniff_html(b"\n<script>document.write(atob('x'))</script>"));
        assert!(sniff_html(b"<form action=x>"));
        assert!(!sniff_html(b"%PDF-1.4 <html>"));
        assert!(!sniff_html(b"PK\x03\x04<html>"));
        assert!(!sniff_html(b"hello <html>"));
    }

    #[test]
    fn svg_with_script_or_handler() {
        assert!(svg_script("a.svg", "", b"<svg><script>location='https://x.example'</script></svg>"));
        assert!(svg_script("a.bin", "image/svg+xml", b"<svg onload = \"go()\"></svg>"));
        assert!(svg_script("x", "", b"<?xml?><svg><a href=\"javascript:go()\">x</a></svg>"));
        assert!(!svg_script(
            "logo.svg",
            "image/svg+xml",
            b"<svg width=\"10\"><path d=\"M0 0\" stroke=\"none\"/><text>Lonely one</text></svg>"
        ));
        assert!(!svg_script("a.png", "image/png", b"<script>"));
    }
}
