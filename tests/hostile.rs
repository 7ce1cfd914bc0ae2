//! Hostile input with bounded cost (issue 8): every case must reach a verdict,
//! with the expected limit finding where a cap applies, without a panic, and
//! (through the daemon) without the message being dropped.
//!
//! Two paths:
//! * in-process: the pure `impostor::analysis::analyze` (what `impostor check`
//!   and the milter's end-of-message call), on the raw message;
//! * daemon: `impostor::run` on 127.0.0.1:0 driven by indymilter-test playing
//!   the MTA, so the milter-layer caps (`milter.max_headers`,
//!   `max_header_bytes`, `max_body_bytes`) and the protocol path are exercised.
//!
//! No timing assertions: each case prints how long it took (run with
//! `cargo test --test hostile -- --nocapture` to see them).
//! `tests/fixtures/fuzz-regressions/` holds inputs the fuzzers (fuzz/, see
//! scripts/fuzz.sh) once crashed or hung on; they are replayed here.

use impostor::analysis::{analyze, Engine, Envelope, MessageInput};
use impostor::config::Config;
use indymilter_test::{EomAction, Status, TestConnection};
use std::ffi::CString;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------------------------
// Message generators

const FROM: &str = "From: \"OpenAI Billing\" <billing@example.net>\r\n";
const CLEAN_FROM: &str = "From: Alice <alice@example.org>\r\n";

fn msg(headers: &str, body: &[u8]) -> Vec<u8> {
    let mut m = headers.as_bytes().to_vec();
    m.extend_from_slice(b"\r\n");
    m.extend_from_slice(body);
    m
}

fn many_headers(n: usize) -> Vec<u8> {
    let mut h = String::from(FROM);
    h.push_str("Subject: Your invoice\r\n");
    for i in 0..n {
        h.push_str(&format!("X-Filler-{i}: value {i}\r\n"));
    }
    msg(&h, b"Hello.\r\n")
}

fn long_header_line(bytes: usize) -> Vec<u8> {
    let mut h = String::from(FROM);
    h.push_str("Subject: ");
    // a realistic worst case: brand words and URLs repeated, no folding
    while h.len() < bytes {
        h.push_str("OpenAI billing https://openai-help.example/login ");
    }
    h.push_str("\r\n");
    msg(&h, b"Hello.\r\n")
}

/// multipart/mixed nested `depth` levels deep, a text part at the bottom.
fn nested_mime(depth: usize) -> Vec<u8> {
    let mut body = String::new();
    for i in 0..depth {
        body.push_str(&format!(
            "--b{i}\r\nContent-Type: multipart/mixed; boundary=\"b{}\"\r\n\r\n",
            i + 1
        ));
    }
    body.push_str(&format!("--b{depth}\r\nContent-Type: text/plain\r\n\r\nSign in to your OpenAI account: https://openai-help.example/\r\n--b{depth}--\r\n"));
    for i in (0..depth).rev() {
        body.push_str(&format!("--b{i}--\r\n"));
    }
    let h = format!("{FROM}Subject: nested\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b0\"\r\n");
    msg(&h, body.as_bytes())
}

fn base64_lines(data: &[u8]) -> Vec<u8> {
    use base64::Engine as _;
    let enc = base64::engine::general_purpose::STANDARD.encode(data);
    let mut out = Vec::with_capacity(enc.len() + enc.len() / 38);
    for line in enc.as_bytes().chunks(76) {
        out.extend_from_slice(line);
        out.extend_from_slice(b"\r\n");
    }
    out
}

fn attachment(content_type: &str, name: &str, data: &[u8]) -> Vec<u8> {
    let h = format!("{FROM}Subject: Your invoice\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"zz\"\r\n");
    let mut body = b"--zz\r\nContent-Type: text/plain\r\n\r\nSee attached.\r\n--zz\r\n".to_vec();
    body.extend_from_slice(
        format!("Content-Type: {content_type}; name=\"{name}\"\r\nContent-Disposition: attachment; filename=\"{name}\"\r\nContent-Transfer-Encoding: base64\r\n\r\n")
            .as_bytes(),
    );
    body.extend_from_slice(&base64_lines(data));
    body.extend_from_slice(b"--zz--\r\n");
    msg(&h, &body)
}

/// "zip bomb"-like: a large, extremely compressible attachment (all zeros).
fn zeros_attachment(decoded: usize) -> Vec<u8> {
    attachment("application/zip", "invoice.zip", &vec![0u8; decoded])
}

fn huge_html(bytes: usize) -> Vec<u8> {
    let h = format!("{FROM}Subject: Your invoice\r\nMIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n");
    let mut body = String::from("<html><body>");
    let mut i = 0;
    while body.len() < bytes {
        body.push_str(&format!(
            "<div><table><tr><td><a href=\"https://openai-{i}.example/login?x={i}\">OpenAI sign in</a><img src=\"cid:x{i}\"></td></tr></table></div>\n"
        ));
        i += 1;
    }
    body.push_str(&"<div>".repeat(10_000)); // deep unclosed tags
    body.push_str("</body></html>\r\n");
    msg(&h, body.as_bytes())
}

/// A PNG header claiming 100000 x 100000 pixels followed by junk: what a QR decoder would choke on.
fn giant_png(junk: usize) -> Vec<u8> {
    let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
    png.extend_from_slice(&100_000u32.to_be_bytes());
    png.extend_from_slice(&100_000u32.to_be_bytes());
    png.extend_from_slice(b"\x08\x06\0\0\0\0\0\0\0");
    let mut x: u32 = 12345;
    png.extend((0..junk).map(|_| {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
        (x >> 16) as u8
    }));
    attachment("image/png", "qr.png", &png)
}

fn invalid_images() -> Vec<u8> {
    let h = format!("{FROM}Subject: scan the code\r\nMIME-Version: 1.0\r\nContent-Type: multipart/related; boundary=\"ii\"\r\n");
    let mut body = Vec::new();
    for (ct, data) in [
        (
            "image/jpeg",
            b"\xff\xd8\xff\xe0\0\x10JFIF\0truncated".to_vec(),
        ),
        ("image/gif", b"GIF89a\xff\xff\xff\xff".to_vec()),
        ("image/png", b"not a png at all".to_vec()),
        ("image/svg+xml", b"<svg><script>alert(1)</script>".to_vec()),
    ] {
        body.extend_from_slice(
            format!("--ii\r\nContent-Type: {ct}\r\nContent-Transfer-Encoding: base64\r\n\r\n")
                .as_bytes(),
        );
        body.extend_from_slice(&base64_lines(&data));
    }
    body.extend_from_slice(b"--ii\r\nContent-Type: image/png\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!not base64!!!\r\n--ii--\r\n");
    msg(&h, &body)
}

fn bad_charsets() -> Vec<u8> {
    let mut m = b"From: \"Open\xffAI \xc3\x28Billing\" <billing@example.net>\r\n".to_vec();
    m.extend_from_slice(b"Subject: =?x-klingon?B?T3BlbkFJ?= =?utf-8?Q?inv=FF=FEoice?= =?iso-2022-jp?B?GyRCJSIlaxsoQg==?= \xfe\xfe\r\n");
    m.extend_from_slice(b"Reply-To: =?utf-7?B?K0FHRS0=?= <x@example.net>\r\n");
    m.extend_from_slice(
        b"MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=\"cc\"\r\n\r\n",
    );
    m.extend_from_slice(b"--cc\r\nContent-Type: text/plain; charset=x-unknown-charset\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nOpen=FF=C3=28AI sign in =\r\n\xff\xfe\xfd\r\n");
    m.extend_from_slice(b"--cc\r\nContent-Type: text/html; charset=\"utf-16\"\r\n\r\n\xff\xfe<\0h\0t\0m\0l\0>\0\xd8\0\r\n");
    m.extend_from_slice(b"--cc\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n/////w==\r\n--cc--\r\n");
    m
}

fn nul_bytes() -> Vec<u8> {
    let mut m = b"From: \"Open\0AI\" <billing@example.net>\r\nSubject: inv\0oice\0\r\nX-Nul: \0\0\0\r\n\r\n".to_vec();
    m.extend_from_slice(&[0u8; 4096]);
    m.extend_from_slice(b"\r\nSign in to OpenAI\0 now\r\n\0");
    m
}

fn duplicate_from() -> Vec<u8> {
    msg("From: Alice <alice@example.org>\r\nFrom: \"OpenAI\" <billing@example.net>\r\nSubject: hello\r\n", b"Hi.\r\n")
}

// ---------------------------------------------------------------------------------------------
// In-process analysis

fn engine(toml: &str) -> Arc<Engine> {
    Engine::new(Config::from_toml_str(toml, "hostile.toml").expect("config")).expect("policy")
}

fn envelope() -> Envelope {
    Envelope {
        client_ip: Some("203.0.113.7".parse().unwrap()),
        helo: Some("mx.client.example".into()),
        mail_from: Some("bounce@example.net".into()),
        rcpt_to: vec!["jean@rcpt.example".into()],
        ..Default::default()
    }
}

/// Analyses `raw` in-process; prints size, time, action and rules; returns the rule ids.
fn analyse(name: &str, raw: &[u8]) -> Vec<&'static str> {
    let e = engine("");
    let env = envelope();
    let t = Instant::now();
    let (v, _) = analyze(
        &e,
        &MessageInput {
            envelope: &env,
            raw,
            truncated: false,
            headers_truncated: false,
            auth: None,
        },
    );
    let took = t.elapsed();
    let rules = v.rule_ids();
    println!(
        "hostile in-process {name}: {} bytes, {:.1} ms, {} {:?}",
        raw.len(),
        took.as_secs_f64() * 1e3,
        v.action,
        rules
    );
    rules
}

#[test]
fn thousands_of_headers() {
    analyse("20000 headers", &many_headers(20_000));
}

#[test]
fn megabyte_header_line() {
    analyse("2 MB Subject line", &long_header_line(2 << 20));
}

#[test]
fn mime_nesting_100_deep() {
    analyse("MIME nested 100 deep", &nested_mime(100));
}

#[test]
fn mime_nesting_10000_deep() {
    // run on a thread with the default 2 MiB stack, like a test or a tokio blocking thread
    let raw = nested_mime(10_000);
    std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(move || analyse("MIME nested 10000 deep", &raw))
        .unwrap()
        .join()
        .expect("10,000-deep MIME nesting must not overflow the stack");
}

#[test]
fn zip_bomb_like_base64() {
    analyse(
        "8 MiB of zeros as base64 attachment",
        &zeros_attachment(8 << 20),
    );
}

#[test]
fn huge_html_page() {
    analyse(
        "4 MB HTML, 30k links, 10k unclosed divs",
        &huge_html(4 << 20),
    );
}

#[test]
fn giant_and_invalid_images() {
    analyse(
        "PNG claiming 100000x100000, 4 MiB junk",
        &giant_png(4 << 20),
    );
    analyse(
        "truncated/invalid JPEG, GIF, PNG, SVG, bad base64",
        &invalid_images(),
    );
}

#[test]
fn invalid_utf8_and_unknown_charsets() {
    analyse(
        "invalid UTF-8, unknown charsets, broken encoded words",
        &bad_charsets(),
    );
}

#[test]
fn nul_bytes_in_headers_and_body() {
    analyse("NUL bytes in headers and body", &nul_bytes());
}

#[test]
fn duplicate_from_is_a_signal() {
    let rules = analyse("two From headers", &duplicate_from());
    assert!(
        rules.contains(&"DUPLICATE_FROM"),
        "expected DUPLICATE_FROM, got {rules:?}"
    );
}

#[test]
fn degenerate_inputs() {
    for (name, raw) in [
        ("empty", Vec::new()),
        ("only CRLFs", b"\r\n".repeat(10_000)),
        ("no header/body separator", b"From: a@b.example".to_vec()),
        (
            "header without colon",
            b"no colon here\r\n\r\nbody".to_vec(),
        ),
        (
            "bare CR line ends",
            b"From: \"OpenAI\" <x@example.net>\rSubject: a\r\rbody".to_vec(),
        ),
        ("100k continuation lines", {
            let mut m = b"From: \"OpenAI\" <x@example.net>\r\nSubject: a\r\n".to_vec();
            m.extend_from_slice(&b" x\r\n".repeat(100_000));
            m.extend_from_slice(b"\r\nbody");
            m
        }),
        (
            "boundary never closed",
            b"Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\n--x\r\n--x\r\n".to_vec(),
        ),
    ] {
        analyse(name, &raw);
    }
}

/// Every input the fuzzers once crashed or hung on, replayed.
/// `analyze-*`: first byte = flags (bit 0 body truncated, bit 1 headers truncated, bit 2 second
/// engine with deploy/brands-example.toml), the rest the raw message (as fuzz/fuzz_targets/analyze.rs).
/// `config-*`: a config file for `Config::from_toml_str` (as fuzz/fuzz_targets/config.rs).
#[test]
fn fuzz_regressions() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fuzz-regressions");
    let brands = engine(include_str!("../deploy/brands-example.toml"));
    let default = engine("");
    let env = envelope();
    let mut n = 0;
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    entries.sort();
    for path in entries {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let data = std::fs::read(&path).unwrap();
        let t = Instant::now();
        if name.starts_with("analyze-") {
            let (flags, raw) = data
                .split_first()
                .map(|(f, r)| (*f, r))
                .unwrap_or((0, &data[..]));
            let e = if flags & 4 != 0 { &brands } else { &default };
            let input = MessageInput {
                envelope: &env,
                raw,
                truncated: flags & 1 != 0,
                headers_truncated: flags & 2 != 0,
                auth: None,
            };
            let (v, _) = analyze(e, &input);
            println!(
                "fuzz regression {name}: {} in {:.1} ms",
                v.action,
                t.elapsed().as_secs_f64() * 1e3
            );
        } else if name.starts_with("config-") {
            if let Ok(text) = std::str::from_utf8(&data) {
                let r = Config::from_toml_str(text, &name).map(Engine::new);
                println!(
                    "fuzz regression {name}: config {} in {:.1} ms",
                    if r.is_ok() { "accepted" } else { "rejected" },
                    t.elapsed().as_secs_f64() * 1e3
                );
            }
        } else {
            continue;
        }
        n += 1;
    }
    println!("fuzz regressions replayed: {n}");
}

// ---------------------------------------------------------------------------------------------
// Through the daemon (milter protocol, caps applied by the milter layer)

mod common;
use common::Daemon;

/// Splits a raw message into header fields (unfolded, as an MTA hands them over) and body.
type Fields = Vec<(Vec<u8>, Vec<u8>)>;

fn split(raw: &[u8]) -> (Fields, &[u8]) {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|p| (p + 2, p + 4))
        .unwrap_or((raw.len(), raw.len()));
    let mut fields: Fields = Vec::new();
    for line in raw[..end.0].split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            continue;
        }
        if (line[0] == b' ' || line[0] == b'\t') && !fields.is_empty() {
            let last = fields.last_mut().unwrap();
            last.1.extend_from_slice(b"\r\n");
            last.1.extend_from_slice(line);
            continue;
        }
        let colon = line.iter().position(|&b| b == b':').unwrap_or(line.len());
        let value = line.get(colon + 1..).unwrap_or(b"");
        let value = value.strip_prefix(b" ").unwrap_or(value);
        fields.push((line[..colon].to_vec(), value.to_vec()));
    }
    (fields, &raw[end.1.min(raw.len())..])
}

fn cstring(b: &[u8]) -> CString {
    // the milter protocol carries NUL-terminated strings: an MTA cannot pass a NUL inside a header
    CString::new(b.iter().copied().filter(|&c| c != 0).collect::<Vec<u8>>()).unwrap()
}

/// Sends one message through the daemon; returns (status, X-Impostor-Rules value, time).
/// Panics if the daemon drops the connection instead of answering (a dropped message).
async fn through_daemon(d: &Daemon, name: &str, raw: &[u8]) -> (Status, String) {
    let t = Instant::now();
    let mut conn = TestConnection::open(d.addr).await.unwrap();
    assert_eq!(
        conn.connect("mx.client.example", ([203, 0, 113, 7], 40000))
            .await
            .unwrap(),
        Status::Noreply
    );
    assert_eq!(
        conn.helo("mx.client.example").await.unwrap(),
        Status::Noreply
    );
    assert_eq!(
        conn.mail(["<bounce@example.net>"]).await.unwrap(),
        Status::Noreply
    );
    assert_eq!(
        conn.rcpt(["<jean@rcpt.example>"]).await.unwrap(),
        Status::Noreply
    );
    let (fields, body) = split(raw);
    for (n, v) in &fields {
        let st = conn
            .header(cstring(n), cstring(v))
            .await
            .unwrap_or_else(|e| panic!("{name}: header: {e:?}"));
        assert_eq!(st, Status::Noreply, "{name}: header");
    }
    assert_eq!(conn.eoh().await.unwrap(), Status::Noreply);
    // body in 64 KiB chunks, as MTAs send it; stop when the milter says skip
    for chunk in body.chunks(65_535) {
        let st = conn
            .body(chunk.to_vec())
            .await
            .unwrap_or_else(|e| panic!("{name}: body: {e:?}"));
        if st == Status::Skip {
            break;
        }
        assert_eq!(st, Status::Continue, "{name}: body");
    }
    let (actions, status) = conn
        .eom()
        .await
        .unwrap_or_else(|e| panic!("{name}: no end-of-message reply (dropped): {e:?}"));
    let took = t.elapsed();
    let get = |h: &str| {
        actions
            .actions
            .iter()
            .find_map(|a| match a {
                EomAction::AddHeader { name: n, value } if n.to_str().unwrap() == h => {
                    Some(value.to_string_lossy().into_owned())
                }
                _ => None,
            })
            .unwrap_or_default()
    };
    let (verdict, rules) = (get("X-Impostor-Verdict"), get("X-Impostor-Rules"));
    println!(
        "hostile daemon {name}: {} bytes, {} header fields, {:.1} ms, status {status:?}, verdict '{verdict}', rules '{rules}'",
        raw.len(),
        fields.len(),
        took.as_secs_f64() * 1e3
    );
    assert!(
        matches!(
            status,
            Status::Continue
                | Status::Accept
                | Status::Reject { .. }
                | Status::Tempfail { .. }
                | Status::Discard
        ),
        "{name}: unexpected status {status:?}"
    );
    if status == Status::Continue || status == Status::Accept {
        assert!(
            !verdict.is_empty(),
            "{name}: accepted without an X-Impostor-Verdict header"
        );
    }
    conn.close().await.unwrap();
    (status, rules)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daemon_caps_and_hostile_messages() {
    // small caps so every limit is hit quickly; defaults are 10,000 headers, 1 MiB headers, 10 MiB body
    let d = Daemon::start(
        "[milter]\nmax_headers = 1000\nmax_header_bytes = 262144\nmax_body_bytes = 1048576\n",
    )
    .await;

    let (_, rules) =
        through_daemon(&d, "5000 headers (max_headers 1000)", &many_headers(5_000)).await;
    assert!(
        rules.contains("HEADERS_TRUNCATED"),
        "expected HEADERS_TRUNCATED, got '{rules}'"
    );

    // one 300 KB header line: over max_header_bytes (Postfix itself cuts headers at header_size_limit, 100 KB)
    let (_, rules) = through_daemon(
        &d,
        "300 KB Subject line (max_header_bytes 256 KiB)",
        &long_header_line(300_000),
    )
    .await;
    assert!(
        rules.contains("HEADERS_TRUNCATED"),
        "expected HEADERS_TRUNCATED, got '{rules}'"
    );

    let (_, rules) = through_daemon(
        &d,
        "4 MiB zeros attachment (max_body_bytes 1 MiB)",
        &zeros_attachment(4 << 20),
    )
    .await;
    assert!(
        rules.contains("BODY_TRUNCATED"),
        "expected BODY_TRUNCATED, got '{rules}'"
    );

    let (_, rules) =
        through_daemon(&d, "4 MB HTML (max_body_bytes 1 MiB)", &huge_html(4 << 20)).await;
    assert!(
        rules.contains("BODY_TRUNCATED"),
        "expected BODY_TRUNCATED, got '{rules}'"
    );

    let (_, rules) =
        through_daemon(&d, "giant PNG (max_body_bytes 1 MiB)", &giant_png(2 << 20)).await;
    assert!(
        rules.contains("BODY_TRUNCATED"),
        "expected BODY_TRUNCATED, got '{rules}'"
    );

    through_daemon(&d, "MIME nested 100 deep", &nested_mime(100)).await;
    through_daemon(
        &d,
        "MIME nested 10000 deep (body cut at 1 MiB)",
        &nested_mime(10_000),
    )
    .await;
    through_daemon(&d, "invalid images", &invalid_images()).await;
    through_daemon(&d, "invalid UTF-8 and unknown charsets", &bad_charsets()).await;
    through_daemon(
        &d,
        "NUL bytes (body; header NULs cannot cross the milter protocol)",
        &nul_bytes(),
    )
    .await;

    let (_, rules) = through_daemon(&d, "duplicate From", &duplicate_from()).await;
    assert!(
        rules.contains("DUPLICATE_FROM"),
        "expected DUPLICATE_FROM, got '{rules}'"
    );

    // the daemon still serves an ordinary message afterwards
    let (status, _) = through_daemon(
        &d,
        "clean after all that",
        &msg(&format!("{CLEAN_FROM}Subject: Lunch\r\n"), b"Friday?\r\n"),
    )
    .await;
    assert_eq!(status, Status::Continue);
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daemon_default_caps_with_10000_deep_nesting_whole_body() {
    // default caps: the whole 10,000-deep message (about 0.5 MB) reaches analysis
    let d = Daemon::start("").await;
    let raw = nested_mime(10_000);
    tokio::time::timeout(
        Duration::from_secs(600),
        through_daemon(&d, "MIME nested 10000 deep, default caps", &raw),
    )
    .await
    .expect("no verdict within 10 minutes");
    let (_, rules) = through_daemon(
        &d,
        "20000 headers, default max_headers 10000",
        &many_headers(20_000),
    )
    .await;
    assert!(
        rules.contains("HEADERS_TRUNCATED"),
        "expected HEADERS_TRUNCATED, got '{rules}'"
    );
    d.stop().await;
}
