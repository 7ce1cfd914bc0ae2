//! Attachments: what they are (by name and by content), never executed.
//!
//! Archives are listed from their central directory only (no decompression);
//! PDFs are scanned for plain `/URI` entries (object streams compressed with
//! FlateDecode are not inflated); OLE2 Office files are searched for a VBA
//! project stream name. All of it within `limits.max_image_bytes` bytes.

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
    }
}

/// Appends the `/URI (...)` targets of a PDF; true when the PDF was larger than the scanned bound.
pub fn pdf_uris(name: &str, bytes: &[u8], limits: &Limits, out: &mut Vec<Link>) -> bool {
    let b = &bytes[..bytes.len().min(limits.max_image_bytes)];
    let mut i = 0;
    while let Some(p) = b[i..].windows(4).position(|w| w == b"/URI") {
        let mut j = i + p + 4;
        while j < b.len() && b[j].is_ascii_whitespace() {
            j += 1;
        }
        if b.get(j) == Some(&b'(') {
            let mut s = Vec::new();
            let mut k = j + 1;
            while k < b.len() && b[k] != b')' && s.len() < 2000 {
                if b[k] == b'\\' && k + 1 < b.len() {
                    k += 1;
                }
                s.push(b[k]);
                k += 1;
            }
            if let Some(l) = Link::parse(&String::from_utf8_lossy(&s), LinkSource::Pdf(name.to_string()), None) {
                if out.len() < limits.max_links && !out.contains(&l) {
                    out.push(l);
                }
            }
            i = k;
        } else {
            i = j;
        }
    }
    bytes.len() > b.len()
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
