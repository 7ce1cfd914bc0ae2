//! Hostile input with bounded cost (issue 8): every case must reach a verdict,
//! with the expected limit finding where a cap applies, without a panic, and
//! (through the daemon) without the message being dropped.
//!
//! Two paths:
//! * in-process: the pure `impostor::analysis::analyze` (what `impostor check`
//!   and the milter's end-of-message call), on the raw message, and on what the
//!   milter's own header store (`MessageState`) keeps of it; each case asserts
//!   its finding or limit, a verdict within a guard bound, and for bombs what
//!   analysis kept and its peak heap (see "In-process analysis" below);
//! * daemon: `impostor::run` on 127.0.0.1:0 driven by indymilter-test playing
//!   the MTA, so the milter-layer caps (`milter.max_headers`,
//!   `max_header_bytes`, `max_body_bytes`) and the protocol path are exercised.
//!
//! Each case prints how long it took and its peak heap (run with
//! `cargo test --test hostile -- --nocapture` to see them).
//! `tests/fixtures/fuzz-regressions/` holds the fuzzers' minimised corpora and
//! inputs they once crashed or hung on (fuzz/, see scripts/fuzz.sh); they are
//! replayed here (`fuzz_regressions`).

use impostor::analysis::content::{self, Content, Limits, ATTACHMENT_ARCHIVE, CONTENT_LIMIT_REACHED};
use impostor::analysis::sender::{BRAND_NAME_FOREIGN_DOMAIN, BRAND_SUBJECT_FOREIGN_DOMAIN, DUPLICATE_FROM, NO_FROM_ADDRESS};
use impostor::analysis::{analyze, Engine, Envelope, MessageInput};
use impostor::analysis::{HEADERS_TRUNCATED, MESSAGE_UNPARSEABLE};
use impostor::config::Config;
use impostor::milter::session::{InFlight, MessageState};
use impostor::verdict::Action;
use indymilter_test::{EomAction, Status, TestConnection};
use mail_parser::MessageParser;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
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
        body.push_str(&format!("--b{i}\r\nContent-Type: multipart/mixed; boundary=\"b{}\"\r\n\r\n", i + 1));
    }
    body.push_str(&format!(
        "--b{depth}\r\nContent-Type: text/plain\r\n\r\nSign in to your OpenAI account: https://openai-help.example/\r\n--b{depth}--\r\n"
    ));
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

/// multipart/mixed: a text part, then each (content type, file name, data) as a base64 attachment.
fn attachments(list: &[(&str, &str, &[u8])]) -> Vec<u8> {
    let h = format!("{FROM}Subject: Your invoice\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"zz\"\r\n");
    let mut body = b"--zz\r\nContent-Type: text/plain\r\n\r\nSee attached.\r\n".to_vec();
    for (content_type, name, data) in list {
        body.extend_from_slice(
            format!("--zz\r\nContent-Type: {content_type}; name=\"{name}\"\r\nContent-Disposition: attachment; filename=\"{name}\"\r\nContent-Transfer-Encoding: base64\r\n\r\n")
                .as_bytes(),
        );
        body.extend_from_slice(&base64_lines(data));
    }
    body.extend_from_slice(b"--zz--\r\n");
    msg(&h, &body)
}

fn attachment(content_type: &str, name: &str, data: &[u8]) -> Vec<u8> {
    attachments(&[(content_type, name, data)])
}

/// "zip bomb"-like: a large, extremely compressible attachment (all zeros).
fn zeros_attachment(decoded: usize) -> Vec<u8> {
    attachment("application/zip", "invoice.zip", &vec![0u8; decoded])
}

/// `bytes` of HTML: 1,000 unclosed divs first (inside the max_html_bytes, 1 MiB, that analysis parses, so the tree
/// really is that deep), then tables of links to lookalike hosts.
fn huge_html(bytes: usize) -> Vec<u8> {
    let h = format!("{FROM}Subject: Your invoice\r\nMIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n");
    let mut body = String::from("<html><body>");
    body.push_str(&"<div>".repeat(1_000));
    let mut i = 0;
    while body.len() < bytes {
        body.push_str(&format!(
            "<div><table><tr><td><a href=\"https://openai-{i}.example/login?x={i}\">OpenAI sign in</a><img src=\"cid:x{i}\"></td></tr></table></div>\n"
        ));
        i += 1;
    }
    body.push_str("</body></html>\r\n");
    msg(&h, body.as_bytes())
}

/// An HTML body of `bytes` of unclosed `<div>` tags, then a lure.
fn unclosed_divs(bytes: usize) -> Vec<u8> {
    let h = format!("{FROM}Subject: Your invoice\r\nMIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n");
    let body = format!("<html><body>{}Sign in to your OpenAI account</body></html>\r\n", "<div>".repeat(bytes / 5));
    msg(&h, body.as_bytes())
}

/// CRC-32 (IEEE) of a PNG chunk's type and data, so a decoder reads the header instead of rejecting it.
fn crc32(data: &[u8]) -> u32 {
    let mut c = !0u32;
    for &b in data {
        c ^= b as u32;
        for _ in 0..8 {
            c = if c & 1 != 0 { 0xEDB8_8320 ^ (c >> 1) } else { c >> 1 };
        }
    }
    !c
}

/// A well-formed PNG whose header claims 100000 x 100000 pixels, its IDAT chunk `junk` bytes of noise: a decoder
/// reads the size from the header (chunk CRCs valid) and would then have to allocate 10^10 pixels.
fn giant_png_bytes(junk: usize) -> Vec<u8> {
    fn chunk(png: &mut Vec<u8>, kind: &[u8], data: &[u8]) {
        png.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let start = png.len();
        png.extend_from_slice(kind);
        png.extend_from_slice(data);
        let crc = crc32(&png[start..]);
        png.extend_from_slice(&crc.to_be_bytes());
    }
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&100_000u32.to_be_bytes());
    ihdr.extend_from_slice(&100_000u32.to_be_bytes());
    ihdr.extend_from_slice(b"\x08\x06\0\0\0");
    chunk(&mut png, b"IHDR", &ihdr);
    let mut x: u32 = 12345;
    let noise: Vec<u8> = (0..junk)
        .map(|_| {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            (x >> 16) as u8
        })
        .collect();
    chunk(&mut png, b"IDAT", &noise);
    chunk(&mut png, b"IEND", b"");
    png
}

fn giant_png(junk: usize) -> Vec<u8> {
    attachment("image/png", "qr.png", &giant_png_bytes(junk))
}

/// Attached messages (message/rfc822) nested `depth` deep, a lure in the innermost one.
fn nested_messages(depth: usize) -> Vec<u8> {
    let mut m = Vec::new();
    for i in 0..depth {
        m.extend_from_slice(
            format!("{FROM}Subject: forwarded {i}\r\nMIME-Version: 1.0\r\nContent-Type: message/rfc822\r\n\r\n").as_bytes(),
        );
    }
    m.extend_from_slice(
        format!("{FROM}Subject: bottom\r\n\r\nSign in to your OpenAI account: https://openai-help.example/\r\n").as_bytes(),
    );
    m
}

fn invalid_images() -> Vec<u8> {
    let h = format!("{FROM}Subject: scan the code\r\nMIME-Version: 1.0\r\nContent-Type: multipart/related; boundary=\"ii\"\r\n");
    let mut body = Vec::new();
    for (ct, data) in [
        ("image/jpeg", b"\xff\xd8\xff\xe0\0\x10JFIF\0truncated".to_vec()),
        ("image/gif", b"GIF89a\xff\xff\xff\xff".to_vec()),
        ("image/png", b"not a png at all".to_vec()),
        ("image/svg+xml", b"<svg><script>alert(1)</script>".to_vec()),
    ] {
        body.extend_from_slice(format!("--ii\r\nContent-Type: {ct}\r\nContent-Transfer-Encoding: base64\r\n\r\n").as_bytes());
        body.extend_from_slice(&base64_lines(&data));
    }
    body.extend_from_slice(b"--ii\r\nContent-Type: image/png\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!not base64!!!\r\n--ii--\r\n");
    msg(&h, &body)
}

fn bad_charsets() -> Vec<u8> {
    let mut m = b"From: \"Open\xffAI \xc3\x28Billing\" <billing@example.net>\r\n".to_vec();
    m.extend_from_slice(b"Subject: =?x-klingon?B?T3BlbkFJ?= =?utf-8?Q?inv=FF=FEoice?= =?iso-2022-jp?B?GyRCJSIlaxsoQg==?= \xfe\xfe\r\n");
    m.extend_from_slice(b"Reply-To: =?utf-7?B?K0FHRS0=?= <x@example.net>\r\n");
    m.extend_from_slice(b"MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=\"cc\"\r\n\r\n");
    m.extend_from_slice(b"--cc\r\nContent-Type: text/plain; charset=x-unknown-charset\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nOpen=FF=C3=28AI sign in =\r\n\xff\xfe\xfd\r\n");
    m.extend_from_slice(b"--cc\r\nContent-Type: text/html; charset=\"utf-16\"\r\n\r\n\xff\xfe<\0h\0t\0m\0l\0>\0\xd8\0\r\n");
    m.extend_from_slice(
        b"--cc\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n/////w==\r\n--cc--\r\n",
    );
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
//
// Each case runs `analyze` on its own thread with a 2 MiB stack (a tokio blocking thread's), and asserts:
// * the finding or limit the case exists for (rule id, and the limit named in CONTENT_LIMIT_REACHED's evidence);
// * time: a verdict within GUARD, a generous bound that turns a hang into a failure, not a speed target
//   (the slowest case takes well under a second in a debug build);
// * memory, where the case is a bomb: what analysis kept (text, links, attachments, from `content::extract`, the
//   same code and limits analysis uses) within its limits, and the peak heap `analyze` held, measured by the
//   counting allocator below, within a bound proportional to the input.

/// A verdict must come within this, or the case counts as a hang.
const GUARD: Duration = Duration::from_secs(60);

/// Per-thread heap accounting: a counting wrapper of the system allocator. `analyze` runs on one thread (no
/// rayon, no threads of its own), so the peak of that thread's live heap while it runs is the most analysis held
/// at once. Per thread, so the other tests running in parallel do not disturb it, as they would VmHWM (the
/// process-wide peak RSS of /proc/self/status).
struct CountingAlloc;

thread_local! {
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

fn track(delta: isize) {
    let _ = LIVE.try_with(|live| {
        let now = live.get() + delta;
        live.set(now);
        let _ = PEAK.try_with(|peak| peak.set(peak.get().max(now)));
    });
}

unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            track(layout.size() as isize);
        }
        p
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            track(layout.size() as isize);
        }
        p
    }
    unsafe fn dealloc(&self, p: *mut u8, layout: Layout) {
        unsafe { System.dealloc(p, layout) };
        track(-(layout.size() as isize));
    }
    unsafe fn realloc(&self, p: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let q = unsafe { System.realloc(p, layout, new_size) };
        if !q.is_null() {
            track(new_size as isize - layout.size() as isize);
        }
        q
    }
}

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

/// Runs `f`; returns its result and the most heap this thread held at once meanwhile, beyond what it held before.
fn peak_heap<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let base = LIVE.with(Cell::get);
    PEAK.with(|p| p.set(base));
    let r = f();
    (r, (PEAK.with(Cell::get) - base).max(0) as usize)
}

const MIB: usize = 1 << 20;

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

/// What one in-process analysis gave.
struct Outcome {
    name: String,
    action: Action,
    /// (rule id, evidence), in the verdict's order.
    rules: Vec<(&'static str, String)>,
    took: Duration,
    /// Peak heap of `analyze`, see [`CountingAlloc`].
    heap: usize,
    /// What content extraction kept, with the engine's limits.
    content: Content,
    limits: Limits,
}

impl Outcome {
    fn ids(&self) -> Vec<&'static str> {
        self.rules.iter().map(|r| r.0).collect()
    }
    fn has(&self, id: &str) -> bool {
        self.rules.iter().any(|r| r.0 == id)
    }
    /// The evidence of rule `id`; fails the test when the rule is missing.
    fn evidence(&self, id: &str) -> &str {
        match self.rules.iter().find(|r| r.0 == id) {
            Some(r) => &r.1,
            None => panic!("{}: expected {id}, got {:?}", self.name, self.ids()),
        }
    }
    fn expect(&self, id: &str) -> &Self {
        self.evidence(id);
        self
    }
    fn expect_not(&self, id: &str) -> &Self {
        assert!(!self.has(id), "{}: {id} not expected, got {:?}", self.name, self.rules);
        self
    }
    /// CONTENT_LIMIT_REACHED names `limit` (e.g. "max_parts (100)").
    fn expect_limit(&self, limit: &str) -> &Self {
        let ev = self.evidence(CONTENT_LIMIT_REACHED);
        assert!(ev.contains(limit), "{}: CONTENT_LIMIT_REACHED should name {limit:?}, evidence {ev:?}", self.name);
        assert!(self.content.limits_hit.iter().any(|l| l.contains(limit)), "{}: {:?}", self.name, self.content.limits_hit);
        self
    }
    /// Peak heap of `analyze` at most `bound` bytes.
    fn expect_heap_at_most(&self, bound: usize) -> &Self {
        assert!(self.heap <= bound, "{}: analysis held {} bytes of heap at its peak, bound {bound}", self.name, self.heap);
        self
    }
    /// What content extraction kept is within the limits: text, links (attachments are counted by max_parts).
    fn expect_kept_within_limits(&self) -> &Self {
        let (c, l) = (&self.content, &self.limits);
        // normalisation can only shorten or keep what was pushed (max_text_bytes), plus one '\n' per pushed piece
        assert!(c.text.len() <= l.max_text_bytes + l.max_parts + 1, "{}: kept {} bytes of text", self.name, c.text.len());
        assert!(c.links.len() <= l.max_links, "{}: kept {} links", self.name, c.links.len());
        assert!(c.attachments.len() <= l.max_parts, "{}: kept {} attachments", self.name, c.attachments.len());
        self
    }
}

#[derive(Clone, Copy, Default)]
struct Flags {
    /// The body was cut at milter.max_body_bytes.
    truncated: bool,
    /// Header fields were dropped at milter.max_headers / max_header_bytes.
    headers_truncated: bool,
}

/// Runs `f` on its own thread with a 2 MiB stack (a tokio blocking thread's); fails the test when it panics
/// (naming `name`) or gives no result within GUARD.
fn guarded<T: Send + 'static>(name: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    let worker = std::thread::Builder::new()
        .name(name.to_string())
        .stack_size(2 << 20)
        .spawn(move || {
            let _ = tx.send(f());
        })
        .unwrap();
    match rx.recv_timeout(GUARD) {
        Ok(r) => r,
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => panic!("{name}: no result within {GUARD:?} (a hang)"),
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
            let e = worker.join().expect_err("the thread ended without a result");
            let why = e.downcast_ref::<String>().cloned().or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()));
            panic!("{name}: panicked: {}", why.unwrap_or_default())
        }
    }
}

/// Analyses `raw` in-process with the default configuration; prints size, time, heap, action and rules.
fn analyse(name: &str, raw: Vec<u8>) -> Outcome {
    analyse_with(name, raw, Flags::default())
}

fn analyse_with(name: &str, raw: Vec<u8>, flags: Flags) -> Outcome {
    let len = raw.len();
    let label = name.to_string();
    let o = guarded(name, move || {
        let e = engine("");
        let env = envelope();
        let run = |raw: &[u8]| {
            let input =
                MessageInput { envelope: &env, raw, truncated: flags.truncated, headers_truncated: flags.headers_truncated, auth: None };
            analyze(&e, &input).0
        };
        // once on a small message, so lazily built tables are not counted as this case's heap
        run(&msg(FROM, b"Sign in to https://openai-help.example/\r\n"));
        let t = Instant::now();
        let (v, heap) = peak_heap(|| run(&raw));
        let took = t.elapsed();
        let content = MessageParser::default()
            .parse(&raw[..])
            .map(|m| {
                let c = content::extract(&m, &e.content_limits);
                impostor::message::drop_flat(m);
                c
            })
            .unwrap_or_default();
        let rules = v.rules.iter().map(|r| (r.id, r.evidence.clone())).collect();
        Outcome { name: label, action: v.action, rules, took, heap, content, limits: e.content_limits.clone() }
    });
    println!(
        "hostile in-process {name}: {len} bytes, {:.1} ms, peak heap {:.1} MiB, {} {:?}",
        o.took.as_secs_f64() * 1e3,
        o.heap as f64 / MIB as f64,
        o.action,
        o.ids()
    );
    o
}

/// What the milter passes to analysis for `raw`: header fields through `MessageState::add_header` (the milter's
/// own store, capped at milter.max_headers and max_header_bytes), then the body up to max_body_bytes.
/// Returns that message, the flags analysis gets, and how many header fields were kept.
fn as_the_milter_keeps(raw: &[u8], toml: &str) -> (Vec<u8>, Flags, usize) {
    let m = Config::from_toml_str(toml, "hostile.toml").expect("config").milter;
    let inflight = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut state = MessageState::new(envelope(), InFlight::new(&inflight));
    let (fields, body) = split(raw);
    for (n, v) in &fields {
        state.add_header(n, v, m.max_headers, m.max_header_bytes);
    }
    state.end_of_headers();
    let kept = state.raw.windows(2).filter(|w| w == b"\r\n").count() - 1;
    state.add_body(body, m.max_body_bytes);
    let flags = Flags { truncated: state.truncated, headers_truncated: state.headers_truncated };
    (std::mem::take(&mut state.raw), flags, kept)
}

#[test]
fn thousands_of_headers() {
    let raw = many_headers(20_000);
    // every field analysed, as `impostor check` does (it applies no header cap): the claim in From is still found
    let all = analyse("20000 headers, all analysed", raw.clone());
    // memory: mail_parser keeps a few hundred bytes per header field (5.7 MiB seen for these 558 KB)
    all.expect(BRAND_NAME_FOREIGN_DOMAIN).expect_not(HEADERS_TRUNCATED).expect_heap_at_most(16 * raw.len() + 4 * MIB);
    // as the daemon keeps them: milter.max_headers = 10,000 (default) reached, the rest dropped and reported
    let (kept, flags, fields) = as_the_milter_keeps(&raw, "");
    assert!(flags.headers_truncated, "20,002 fields must exceed the default max_headers 10,000");
    assert_eq!(fields, 10_000, "the milter keeps exactly max_headers fields");
    let capped = analyse_with("20000 headers, milter max_headers 10000", kept, flags);
    capped.expect(BRAND_NAME_FOREIGN_DOMAIN);
    let ev = capped.evidence(HEADERS_TRUNCATED);
    assert!(ev.contains("10000 header fields"), "HEADERS_TRUNCATED evidence names the cap: {ev:?}");
}

#[test]
fn megabyte_header_line() {
    let raw = long_header_line(2 * MIB);
    // analysed whole: the Subject is text, cut at max_text_bytes (256 KiB); its brand is still seen
    let whole = analyse("2 MiB Subject line", raw.clone());
    // (the display name claims the same brand: one claim, the Subject is in its evidence)
    whole.expect_limit("max_text_bytes (262144)").expect_kept_within_limits();
    assert!(whole.evidence(BRAND_NAME_FOREIGN_DOMAIN).contains("also claimed in Subject"), "{:?}", whole.rules);
    whole.expect_heap_at_most(2 * raw.len() + 4 * MIB); // 2.0 MiB seen: about one copy of the line
                                                        // as the daemon keeps it: 2 MiB is over milter.max_header_bytes (1 MiB, default), so the Subject is dropped
    let (kept, flags, fields) = as_the_milter_keeps(&raw, "");
    assert!(flags.headers_truncated && fields == 1, "only From fits in max_header_bytes; kept {fields} fields");
    let capped = analyse_with("2 MiB Subject line, milter max_header_bytes 1 MiB", kept, flags);
    capped.expect(HEADERS_TRUNCATED).expect(BRAND_NAME_FOREIGN_DOMAIN).expect_not(BRAND_SUBJECT_FOREIGN_DOMAIN);
    assert!(!capped.evidence(BRAND_NAME_FOREIGN_DOMAIN).contains("Subject"), "{:?}", capped.rules);
    assert!(capped.evidence(HEADERS_TRUNCATED).contains("1048576 header bytes"), "{:?}", capped.rules);
}

#[test]
fn mime_nesting_100_deep() {
    // 100 multipart levels are 101 parts before the text: max_parts (100) stops the walk
    let raw = nested_mime(100);
    let o = analyse("MIME nested 100 deep", raw.clone());
    o.expect(BRAND_NAME_FOREIGN_DOMAIN)
        .expect_limit("max_parts (100)")
        .expect_kept_within_limits()
        .expect_heap_at_most(32 * raw.len() + 4 * MIB);
    // attached messages (message/rfc822) nested 100 deep: max_depth (3) stops following them
    let raw = nested_messages(100);
    let o = analyse("attached messages nested 100 deep", raw.clone());
    o.expect(BRAND_NAME_FOREIGN_DOMAIN)
        .expect_limit("max_depth (3)")
        .expect_kept_within_limits()
        .expect_heap_at_most(32 * raw.len() + 4 * MIB);
}

#[test]
fn mime_nesting_10000_deep() {
    // on a 2 MiB stack (analyse's thread): no stack overflow, and the limits still apply
    let raw = nested_mime(10_000);
    let o = analyse("MIME nested 10000 deep", raw.clone());
    // memory: mail_parser keeps every part's headers (12.6 MiB seen for these 707 KB), content reads 100 parts
    o.expect(BRAND_NAME_FOREIGN_DOMAIN)
        .expect_limit("max_parts (100)")
        .expect_kept_within_limits()
        .expect_heap_at_most(32 * raw.len() + 4 * MIB);
}

/// Attached messages (message/rfc822, not encoded) nested 30,000 deep, a 3.6 MB message (under the default
/// max_body_bytes, 10 MiB), on a 2 MiB stack (a tokio blocking thread's, where the daemon analyses messages over
/// 64 KiB). mail_parser parses any depth iteratively, but its tree drops recursively, one frame set per level: this
/// aborted the process until analysis and the banner dropped the parsed message flat (`message::drop_flat`).
#[test]
fn attached_messages_30000_deep_do_not_overflow_the_stack() {
    let raw = nested_messages(30_000);
    let o = analyse("attached messages nested 30000 deep", raw.clone());
    o.expect(BRAND_NAME_FOREIGN_DOMAIN).expect_limit("max_depth (3)").expect_kept_within_limits();
}

#[test]
fn zip_bomb_like_base64() {
    // 8 MiB decoded from 11 MB of base64: analysis holds the decoded attachment once, not a multiple of it
    let raw = zeros_attachment(8 * MIB);
    let o = analyse("8 MiB of zeros as base64 attachment", raw.clone());
    o.expect(ATTACHMENT_ARCHIVE).expect(BRAND_NAME_FOREIGN_DOMAIN).expect_kept_within_limits();
    o.expect_heap_at_most(8 * MIB + 4 * MIB); // 8.2 MiB seen
    assert_eq!(o.content.attachments.iter().map(|a| a.size).collect::<Vec<_>>(), vec![8 * MIB], "the decoded attachment, once");
}

/// An archive larger than max_image_bytes (2 MiB) is inspected only in its first 2 MiB (`attachments::classify` cuts
/// it): a zip whose executable entry comes after 2 MiB of padding passes as a plain archive, so the cut is said
/// (CONTENT_LIMIT_REACHED), as for a PDF or an image.
#[test]
fn archive_over_max_image_bytes_reports_the_limit() {
    let o = analyse("8 MiB of zeros as a zip attachment", zeros_attachment(8 * MIB));
    o.expect_limit("max_image_bytes (2097152)");
}

#[test]
fn huge_html_page() {
    // 4 MB of HTML: 1 MiB parsed (max_html_bytes), 1,000 unclosed divs deep inside it, 500 links kept (max_links)
    let raw = huge_html(4 * MIB);
    let o = analyse("4 MB HTML, 30k links, 1k unclosed divs", raw.clone());
    // the tree is built only down to max_html_depth (1,000 unclosed divs); the rest is read as plain text, so the lookalike links after
    // the cut are not seen as links (the cost of bounding html5ever's work: docs/content.md)
    o.expect(BRAND_NAME_FOREIGN_DOMAIN).expect_limit("max_html_bytes (1048576)").expect_limit("max_html_depth (512)");
    // memory: bounded by what is parsed (max_html_bytes), not by the 4 MB: 19.6 MiB seen for the 1 MiB DOM
    o.expect_kept_within_limits().expect_heap_at_most(40 * o.limits.max_html_bytes);
    // about 7,700 distinct links in the parsed MiB: max_links (500) kept
    // with the depth cut at byte 2,562 no anchor is in the tree any more: at most max_links are ever kept
    assert!(o.content.links.len() <= o.limits.max_links, "{} links kept", o.content.links.len());
}

/// max_links is applied inside each part as well as over the message: a single part with more than 500 links must
/// say so (it once did not: the per-part collectors stopped at the cap, so the walk never saw it reached).
#[test]
fn one_part_over_max_links_reports_the_limit() {
    // (the collectors of each part keep one link over the cap, so the walk sees the cap reached)
    let h = format!("{FROM}Subject: links\r\nMIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n");
    let anchors: String = (0..600).map(|i| format!("<p><a href=\"https://openai-{i}.example/login\">OpenAI sign in</a></p>\n")).collect();
    let html = analyse("HTML part with 600 links", msg(&h, format!("<html><body>{anchors}</body></html>\r\n").as_bytes()));
    let text_urls: String = (0..600).map(|i| format!("https://openai-{i}.example/login\r\n")).collect();
    let plain = analyse("text part with 600 URLs", msg(&format!("{FROM}Subject: links\r\n"), text_urls.as_bytes()));
    let reported = |o: &Outcome| o.rules.iter().any(|(id, ev)| *id == CONTENT_LIMIT_REACHED && ev.contains("max_links (500)"));
    assert_eq!(
        (reported(&html), reported(&plain)),
        (true, true),
        "max_links (500) reached in (HTML, text) part: kept {} and {} links, rules {:?} and {:?}",
        html.content.links.len(),
        plain.content.links.len(),
        html.ids(),
        plain.ids()
    );
}

/// html5ever's time grows with the square of the open elements (for every `<div>` it closes a `<p>` "in button scope",
/// a scan of the whole stack): 40,000 unclosed divs (200 KB) took 66 s. `html::nesting_cut` builds the tree only down
/// to max_html_depth (512) and reads the rest as plain text, so 1 MiB of them (210,000) gets its verdict, lure included.
#[test]
fn unclosed_html_tags_within_max_html_bytes_are_bounded_in_time() {
    let o = analyse("1 MiB of unclosed <div>", unclosed_divs(MIB));
    o.expect(BRAND_NAME_FOREIGN_DOMAIN);
}

#[test]
fn giant_and_invalid_images() {
    // over max_image_bytes (2 MiB): not decoded at all
    let o = analyse("PNG claiming 100000x100000, 4 MiB junk", giant_png(4 * MIB));
    o.expect(BRAND_NAME_FOREIGN_DOMAIN).expect_limit("max_image_bytes (2097152)").expect_heap_at_most(4 * MIB + 4 * MIB); // the decoded 4 MiB, once
                                                                                                                          // small enough to be read: its header says 10^10 pixels, over max_image_pixels (4,000,000), so it is not decoded
    let o = analyse("PNG claiming 100000x100000, 64 KiB junk", giant_png(64 << 10));
    o.expect_limit("max_image_pixels (4000000): qr.png has 10000000000").expect_heap_at_most(4 * MIB); // no 10^10-pixel buffer
                                                                                                       // six images: four are looked at for QR codes (max_qr_images), each refused by max_image_pixels
    let png = &giant_png_bytes(0);
    let six: Vec<(&str, String, &[u8])> = (0..6).map(|i| ("image/png", format!("qr{i}.png"), &png[..])).collect();
    let six: Vec<(&str, &str, &[u8])> = six.iter().map(|(c, n, d)| (*c, n.as_str(), *d)).collect();
    let o = analyse("six giant PNG headers", attachments(&six));
    o.expect_limit("max_qr_images (4)").expect_limit("qr3.png has 10000000000");
    let ev = o.evidence(CONTENT_LIMIT_REACHED);
    assert!(!ev.contains("qr4.png") && !ev.contains("qr5.png"), "only four images decoded: {ev:?}");
    // broken images: skipped as unreadable, no limit reached, every part still read and the message judged
    let o = analyse("truncated/invalid JPEG, GIF, PNG, SVG, bad base64", invalid_images());
    o.expect(BRAND_NAME_FOREIGN_DOMAIN).expect_not(CONTENT_LIMIT_REACHED);
    let kinds: Vec<_> = o.content.attachments.iter().map(|a| (a.content_type.as_str(), a.kind)).collect();
    let image = content::AttachmentKind::Image;
    assert_eq!(
        kinds,
        [("image/jpeg", image), ("image/gif", image), ("image/png", image), ("image/svg+xml", image)],
        "the four decodable parts classified"
    );
    // the part whose base64 does not decode is kept as text by mail_parser, and read as such
    assert!(o.content.text.contains("not base64"), "{:?}", o.content.text);
}

#[test]
fn invalid_utf8_and_unknown_charsets() {
    let o = analyse("invalid UTF-8, unknown charsets, broken encoded words", bad_charsets());
    // the brand in a display name with invalid UTF-8 around it is still seen
    let ev = o.evidence(BRAND_NAME_FOREIGN_DOMAIN);
    assert!(ev.contains("names OpenAI"), "{ev:?}");
    o.expect_not(CONTENT_LIMIT_REACHED).expect_not(MESSAGE_UNPARSEABLE);
    // every part was decoded to text somehow: the quoted-printable one with invalid bytes and an unknown charset too
    assert!(o.content.text.contains("sign in"), "text of the quoted-printable part kept: {:?}", o.content.text);
}

#[test]
fn nul_bytes_in_headers_and_body() {
    let o = analyse("NUL bytes in headers and body", nul_bytes());
    let ev = o.evidence(BRAND_NAME_FOREIGN_DOMAIN);
    assert!(ev.contains("names OpenAI"), "a NUL inside the display name does not hide the brand: {ev:?}");
    // the text after 4,096 NULs still reaches analysis
    assert!(o.content.text.contains("sign in to openai"), "{:?}", o.content.text);
}

#[test]
fn duplicate_from_is_a_signal() {
    let o = analyse("two From headers", duplicate_from());
    assert_eq!(o.evidence(DUPLICATE_FROM), "2 From header fields");
}

#[test]
fn degenerate_inputs() {
    let continuation = {
        let mut m = b"From: \"OpenAI\" <x@example.net>\r\nSubject: a\r\n".to_vec();
        m.extend_from_slice(&b" x\r\n".repeat(100_000));
        m.extend_from_slice(b"\r\nbody");
        m
    };
    // (name, input, the rules expected, exactly, and the action)
    let cases: [(&str, Vec<u8>, &[&str], Action); 7] = [
        ("empty", Vec::new(), &[MESSAGE_UNPARSEABLE], Action::Accept),
        ("only CRLFs", b"\r\n".repeat(10_000), &[NO_FROM_ADDRESS], Action::Accept),
        // a header without its line end is not a header field: no From
        ("no header/body separator", b"From: a@b.example".to_vec(), &[NO_FROM_ADDRESS], Action::Accept),
        ("header without colon", b"no colon here\r\n\r\nbody".to_vec(), &[NO_FROM_ADDRESS], Action::Accept),
        // a bare CR is not a line end (RFC 5322): From's value runs to the end and holds no address
        ("bare CR line ends", b"From: \"OpenAI\" <x@example.net>\rSubject: a\r\rbody".to_vec(), &[NO_FROM_ADDRESS], Action::Accept),
        ("100k continuation lines", continuation, &[BRAND_NAME_FOREIGN_DOMAIN], Action::Tag),
        (
            "boundary never closed",
            b"Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\n--x\r\n--x\r\n".to_vec(),
            &[NO_FROM_ADDRESS],
            Action::Accept,
        ),
    ];
    for (name, raw, expected, action) in cases {
        let o = analyse(name, raw);
        assert_eq!((o.ids(), o.action), (expected.to_vec(), action), "{name}: {:?}", o.rules);
    }
}

/// Replays tests/fixtures/fuzz-regressions/: the fuzzers' minimised corpora (`cargo afl cmin` of each queue) and
/// any crash or hang once fixed, named `<target>-<sha1>.bin` as scripts/fuzz.sh names them. `pending/` (crashes
/// whose fix has not landed yet) is not replayed. Each input as its fuzz target runs it (fuzz/fuzz_targets/):
/// * `analyze-*`: first byte = flags (bit 0 body truncated, bit 1 headers truncated, bit 2 the second engine, with
///   deploy/brands-example.toml), the rest the raw message: a verdict within GUARD, with a finite score;
/// * `config-*`: a config file for `Config::from_toml_str`: accepted (and then it builds an engine that analyses a
///   message), or an error whose message names the file;
/// * `banner-*`: a raw message for `banner::apply(raw, "OpenAI")`: returns without a panic, within GUARD.
///
/// Every target must have at least one input: an empty directory fails.
#[test]
fn fuzz_regressions() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fuzz-regressions");
    let mut entries: Vec<_> =
        std::fs::read_dir(&dir).expect("tests/fixtures/fuzz-regressions").flatten().map(|e| e.path()).filter(|p| p.is_file()).collect();
    entries.sort();
    let mut replayed = std::collections::BTreeMap::from([("analyze", 0), ("config", 0), ("banner", 0)]);
    for path in entries {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let Some(target) = replayed.keys().copied().find(|t| name.starts_with(&format!("{t}-")) && name.ends_with(".bin")) else {
            assert!(name == "README", "{name}: not named <analyze|config|banner>-<sha1>.bin");
            continue;
        };
        let data = std::fs::read(&path).unwrap();
        let label = format!("fuzz regression {name}");
        let t = Instant::now();
        let result = match target {
            "analyze" => guarded(&label, move || {
                let (flags, raw) = data.split_first().map(|(f, r)| (*f, r.to_vec())).unwrap_or((0, Vec::new()));
                let e = if flags & 4 != 0 { engine(include_str!("../deploy/brands-example.toml")) } else { engine("") };
                let env = envelope();
                let input =
                    MessageInput { envelope: &env, raw: &raw, truncated: flags & 1 != 0, headers_truncated: flags & 2 != 0, auth: None };
                let v = analyze(&e, &input).0;
                assert!(v.score.is_finite(), "score {}", v.score);
                format!("{} {:?}", v.action, v.rule_ids())
            }),
            "config" => {
                let text = String::from_utf8_lossy(&data).into_owned();
                let file = name.clone();
                guarded(&label, move || match Config::from_toml_str(&text, &file).and_then(Engine::new) {
                    Ok(e) => {
                        let env = envelope();
                        let raw =
                            msg(&format!("{FROM}Subject: OpenAI invoice\r\n"), b"Pay now at https://openai-billing.example/login\r\n");
                        let input = MessageInput { envelope: &env, raw: &raw, truncated: false, headers_truncated: false, auth: None };
                        format!("accepted, {}", analyze(&e, &input).0.action)
                    }
                    Err(err) => {
                        let m = err.to_string();
                        assert!(m.contains(&file), "a config error must name the file: {m:?}");
                        format!("rejected: {}", m.chars().take(100).collect::<String>())
                    }
                })
            }
            _ => guarded(&label, move || match impostor::banner::apply(&data, "OpenAI") {
                Some(body) => format!("banner added, {} bytes of body", body.len()),
                None => "no banner".to_string(),
            }),
        };
        println!("{label}: {result} in {:.1} ms", t.elapsed().as_secs_f64() * 1e3);
        *replayed.get_mut(target).unwrap() += 1;
    }
    println!("fuzz regressions replayed: {replayed:?}");
    for (target, n) in replayed {
        assert!(n > 0, "tests/fixtures/fuzz-regressions/ holds no {target}-*.bin input: nothing replayed for fuzz target {target}");
    }
}

// ---------------------------------------------------------------------------------------------
// Through the daemon (milter protocol, caps applied by the milter layer)

mod common;
use common::Daemon;

/// Splits a raw message into header fields (unfolded, as an MTA hands them over) and body.
type Fields = Vec<(Vec<u8>, Vec<u8>)>;

fn split(raw: &[u8]) -> (Fields, &[u8]) {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n").map(|p| (p + 2, p + 4)).unwrap_or((raw.len(), raw.len()));
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
    assert_eq!(conn.connect("mx.client.example", ([203, 0, 113, 7], 40000)).await.unwrap(), Status::Noreply);
    assert_eq!(conn.helo("mx.client.example").await.unwrap(), Status::Noreply);
    assert_eq!(conn.mail(["<bounce@example.net>"]).await.unwrap(), Status::Noreply);
    assert_eq!(conn.rcpt(["<jean@rcpt.example>"]).await.unwrap(), Status::Noreply);
    let (fields, body) = split(raw);
    for (n, v) in &fields {
        let st = conn.header(cstring(n), cstring(v)).await.unwrap_or_else(|e| panic!("{name}: header: {e:?}"));
        assert_eq!(st, Status::Noreply, "{name}: header");
    }
    assert_eq!(conn.eoh().await.unwrap(), Status::Noreply);
    // body in 64 KiB chunks, as MTAs send it; stop when the milter says skip
    for chunk in body.chunks(65_535) {
        let st = conn.body(chunk.to_vec()).await.unwrap_or_else(|e| panic!("{name}: body: {e:?}"));
        if st == Status::Skip {
            break;
        }
        assert_eq!(st, Status::Noreply, "{name}: body (no-reply body chunks)");
    }
    let (actions, status) = conn.eom().await.unwrap_or_else(|e| panic!("{name}: no end-of-message reply (dropped): {e:?}"));
    let took = t.elapsed();
    let get = |h: &str| {
        actions
            .actions
            .iter()
            .find_map(|a| match a {
                EomAction::AddHeader { name: n, value } if n.to_str().unwrap() == h => Some(value.to_string_lossy().into_owned()),
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
        matches!(status, Status::Continue | Status::Accept | Status::Reject { .. } | Status::Tempfail { .. } | Status::Discard),
        "{name}: unexpected status {status:?}"
    );
    if status == Status::Continue || status == Status::Accept {
        assert!(!verdict.is_empty(), "{name}: accepted without an X-Impostor-Verdict header");
    }
    conn.close().await.unwrap();
    (status, rules)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daemon_caps_and_hostile_messages() {
    // small caps so every limit is hit quickly; defaults are 10,000 headers, 1 MiB headers, 10 MiB body
    let d = Daemon::start("[milter]\nmax_headers = 1000\nmax_header_bytes = 262144\nmax_body_bytes = 1048576\n").await;

    let (_, rules) = through_daemon(&d, "5000 headers (max_headers 1000)", &many_headers(5_000)).await;
    assert!(rules.contains("HEADERS_TRUNCATED"), "expected HEADERS_TRUNCATED, got '{rules}'");

    // one 300 KB header line: over max_header_bytes (Postfix itself cuts headers at header_size_limit, 100 KB)
    let (_, rules) = through_daemon(&d, "300 KB Subject line (max_header_bytes 256 KiB)", &long_header_line(300_000)).await;
    assert!(rules.contains("HEADERS_TRUNCATED"), "expected HEADERS_TRUNCATED, got '{rules}'");

    let (_, rules) = through_daemon(&d, "4 MiB zeros attachment (max_body_bytes 1 MiB)", &zeros_attachment(4 << 20)).await;
    assert!(rules.contains("BODY_TRUNCATED"), "expected BODY_TRUNCATED, got '{rules}'");

    let (_, rules) = through_daemon(&d, "4 MB HTML (max_body_bytes 1 MiB)", &huge_html(4 << 20)).await;
    assert!(rules.contains("BODY_TRUNCATED"), "expected BODY_TRUNCATED, got '{rules}'");

    let (_, rules) = through_daemon(&d, "giant PNG (max_body_bytes 1 MiB)", &giant_png(2 << 20)).await;
    assert!(rules.contains("BODY_TRUNCATED"), "expected BODY_TRUNCATED, got '{rules}'");

    through_daemon(&d, "MIME nested 100 deep", &nested_mime(100)).await;
    through_daemon(&d, "MIME nested 10000 deep (body cut at 1 MiB)", &nested_mime(10_000)).await;
    through_daemon(&d, "invalid images", &invalid_images()).await;
    through_daemon(&d, "invalid UTF-8 and unknown charsets", &bad_charsets()).await;
    through_daemon(&d, "NUL bytes (body; header NULs cannot cross the milter protocol)", &nul_bytes()).await;

    let (_, rules) = through_daemon(&d, "duplicate From", &duplicate_from()).await;
    assert!(rules.contains("DUPLICATE_FROM"), "expected DUPLICATE_FROM, got '{rules}'");

    // the daemon still serves an ordinary message afterwards
    let (status, _) = through_daemon(&d, "clean after all that", &msg(&format!("{CLEAN_FROM}Subject: Lunch\r\n"), b"Friday?\r\n")).await;
    assert_eq!(status, Status::Continue);
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daemon_default_caps_with_10000_deep_nesting_whole_body() {
    // default caps: the whole 10,000-deep message (about 0.5 MB) reaches analysis
    let d = Daemon::start("").await;
    let raw = nested_mime(10_000);
    tokio::time::timeout(Duration::from_secs(600), through_daemon(&d, "MIME nested 10000 deep, default caps", &raw))
        .await
        .expect("no verdict within 10 minutes");
    let (_, rules) = through_daemon(&d, "20000 headers, default max_headers 10000", &many_headers(20_000)).await;
    assert!(rules.contains("HEADERS_TRUNCATED"), "expected HEADERS_TRUNCATED, got '{rules}'");
    d.stop().await;
}
