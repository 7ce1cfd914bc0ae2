//! CPU bombs (security issue: one small message stops all mail): a PNG tiled
//! with QR finder patterns, and deeply nested HTML. Each must finish fast and
//! be reported as `CONTENT_LIMIT_REACHED`.
//!
//! The generators are public for other tests and for the Postfix end-to-end
//! run: `cargo test --test bombs -- --ignored write_bomb_messages` writes
//! `target/bomb-qr.eml` and `target/bomb-nested.eml`;
//! `cargo test --release --test bombs -- --ignored --nocapture bomb_timings`
//! prints how long each takes.
//!
//! The only timing assertions are generous guards (a thread given 20 s) that
//! turn a hang into a failure.

use impostor::analysis::content::html::{self, NestingLimit};
use impostor::analysis::content::{qr, Limits};
use impostor::analysis::{analyze, Engine, Envelope, MessageInput};
use impostor::config::Config;
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------------------------
// Generators

/// A `size`×`size` greyscale PNG tiled with QR finder patterns: per tile of
/// 8×8 modules of `module` pixels, a dark 7×7 ring, a light ring, a dark 3×3
/// core, and one light module between tiles. A real QR code has three.
/// `qr_finder_bomb_png(500, 1)` holds 3,906 (a few hundred bytes).
pub fn qr_finder_bomb_png(size: u32, module: u32) -> Vec<u8> {
    let img = image::GrayImage::from_fn(size, size, |x, y| {
        let (mx, my) = ((x / module) % 8, (y / module) % 8);
        let dark = mx < 7 && my < 7 && mx.min(my).min(6 - mx).min(6 - my) != 1;
        image::Luma([if dark { 0 } else { 255 }])
    });
    let mut png = Vec::new();
    use image::codecs::png::{CompressionType, FilterType, PngEncoder};
    let enc = PngEncoder::new_with_quality(&mut png, CompressionType::Best, FilterType::Adaptive);
    img.write_with_encoder(enc).expect("encode PNG");
    png
}

/// `n` nested `<div>` (opened, never closed), then `after`.
pub fn nested_divs(n: usize, after: &str) -> String {
    format!("<html><body>{}{after}</body></html>", "<div>".repeat(n))
}

fn message(headers: &str, body: &str) -> Vec<u8> {
    format!(
        "From: \"OpenAI Security\" <security@mail-notify.example>\r\nTo: jean@rcpt.example\r\nSubject: Action required\r\n\
             Date: Mon, 24 Nov 2025 09:12:00 +0000\r\nMessage-ID: <bomb@mail-notify.example>\r\nMIME-Version: 1.0\r\n{headers}\r\n{body}"
    )
    .into_bytes()
}

/// A message with [`qr_finder_bomb_png`]`(500, 1)` attached as image.png.
pub fn qr_bomb_message() -> Vec<u8> {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(qr_finder_bomb_png(500, 1));
    let lines: Vec<&str> = b64.as_bytes().chunks(76).map(|l| std::str::from_utf8(l).unwrap_or_default()).collect();
    message(
        "Content-Type: multipart/mixed; boundary=\"b1\"\r\n",
        &format!(
            "--b1\r\nContent-Type: text/plain\r\n\r\nScan the code.\r\n--b1\r\nContent-Type: image/png; name=\"image.png\"\r\n\
             Content-Disposition: inline; filename=\"image.png\"\r\nContent-Transfer-Encoding: base64\r\n\r\n{}\r\n--b1--\r\n",
            lines.join("\r\n")
        ),
    )
}

/// A text/html message of [`nested_divs`]`(n, …)` with a password lure after the divs.
pub fn nested_div_message(n: usize) -> Vec<u8> {
    message("Content-Type: text/html; charset=utf-8\r\n", &nested_divs(n, "Confirm your password within 24 hours.\r\n"))
}

// ---------------------------------------------------------------------------------------------
// Helpers

/// Runs `f` on its own thread; None when it has not returned after `limit`
/// (the thread is left running: this turns a hang into a test failure).
fn within<T: Send + 'static>(limit: Duration, f: impl FnOnce() -> T + Send + 'static) -> Option<(T, Duration)> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let t = Instant::now();
        let r = f();
        let _ = tx.send((r, t.elapsed()));
    });
    rx.recv_timeout(limit).ok()
}

const GUARD: Duration = Duration::from_secs(20);

/// `analyze` on `raw`, within [`GUARD`]: (rule, evidence) pairs.
fn analyse(raw: Vec<u8>) -> Vec<(&'static str, String)> {
    let (v, took) = within(GUARD, move || {
        let e = Engine::new(Config::from_toml_str("", "bombs.toml").expect("config")).expect("policy");
        let env = Envelope {
            mail_from: Some("bounce@mail-notify.example".into()),
            rcpt_to: vec!["jean@rcpt.example".into()],
            ..Default::default()
        };
        analyze(&e, &MessageInput { envelope: &env, raw: &raw, truncated: false, headers_truncated: false, auth: None }).0
    })
    .expect("analysis did not finish in 20 s");
    println!("analysed in {:.1} ms: {:?}", took.as_secs_f64() * 1e3, v.rule_ids());
    v.rules.iter().map(|r| (r.id, r.evidence.clone())).collect()
}

fn html_within_guard(html: String) -> html::HtmlOut {
    within(GUARD, move || html::html(&html, &Limits::default())).expect("html::html did not finish in 20 s").0
}

// ---------------------------------------------------------------------------------------------
// QR

#[test]
fn qr_finder_pattern_bomb_is_bounded() {
    let png = qr_finder_bomb_png(500, 1);
    let (r, _) = within(GUARD, move || qr::decode(&png, &Limits::default(), Instant::now() + Duration::from_secs(3600)))
        .expect("qr::decode did not finish in 20 s");
    // 62 columns of whole patterns, 63 rows (the last cut by the edge, still a ring around a core)
    assert_eq!(r, Err(qr::Skipped::TooManyFinders(62 * 63)));
}

#[test]
fn qr_finder_pattern_bomb_message_reports_the_limit() {
    let f = analyse(qr_bomb_message());
    let limit = f.iter().find(|f| f.0 == "CONTENT_LIMIT_REACHED").expect("limit finding");
    assert!(limit.1.contains("max_qr_finders (24): image.png has 3906 QR finder candidates, not decoded"), "{}", limit.1);
}

#[test]
fn finder_patterns_up_to_the_limit_are_still_searched() {
    // 24 patterns (4 rows of 6): searched, none is a QR code
    let png = qr_finder_bomb_png(8 * 6, 1);
    let img = image::load_from_memory(&png).expect("png").to_luma8();
    let mut cut = image::GrayImage::from_pixel(48, 32, image::Luma([255]));
    image::imageops::replace(&mut cut, &image::imageops::crop_imm(&img, 0, 0, 48, 32).to_image(), 0, 0);
    let dark = |x: usize, y: usize| cut.get_pixel(x as u32, y as u32)[0] < 128;
    assert_eq!(qr::finder_candidates(48, 32, dark), 24);
    let mut png = Vec::new();
    cut.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png).expect("encode");
    let (r, _) =
        within(GUARD, move || qr::decode(&png, &Limits::default(), Instant::now() + Duration::from_secs(3600))).expect("decode in 20 s");
    assert_eq!(r, Ok(vec![]));
}

// ---------------------------------------------------------------------------------------------
// Nested HTML

#[test]
fn nested_div_bomb_13000_is_bounded() {
    let h = nested_divs(13_000, "Confirm your password");
    assert!(h.len() < 70_000);
    let o = html_within_guard(h);
    assert!(matches!(o.cut, Some((_, NestingLimit::Depth))), "{:?}", o.cut);
    // the text after the cut is still read, as plain text
    assert!(o.text.contains("Confirm your password"), "{:?}", o.text.trim());
}

#[test]
fn nested_div_bomb_100000_is_bounded() {
    let o = html_within_guard(nested_divs(100_000, "Confirm your password"));
    // <html> and <body> count: the div that opens the 513th element is cut
    let at = "<html><body>".len() + 5 * 510;
    assert_eq!(o.cut, Some((at, NestingLimit::Depth)));
    assert!(o.text.contains("Confirm your password"));
}

#[test]
fn misnested_span_div_bomb_is_bounded() {
    // the parser ignores </span> here (a <div> is open above it): the nesting grows by two per repeat
    let o = html_within_guard(format!("<body>{}x", "<span><div></span>".repeat(50_000)));
    assert!(matches!(o.cut, Some((_, NestingLimit::Depth))), "{:?}", o.cut);
}

#[test]
fn misnested_p_div_bomb_is_bounded() {
    // <div> closes the <p>, and </p> then closes nothing: one more <div> open per repeat
    let o = html_within_guard(format!("<body>{}x", "<p><div></p>".repeat(50_000)));
    assert!(matches!(o.cut, Some((_, NestingLimit::Depth))), "{:?}", o.cut);
}

#[test]
fn tag_flood_is_capped() {
    let o = html_within_guard(format!("<body>{}Confirm your password", "<b>x</b>".repeat(30_000)));
    assert!(matches!(o.cut, Some((_, NestingLimit::Tags))), "{:?}", o.cut);
    assert!(o.text.contains("Confirm your password"));
}

#[test]
fn text_after_300_nested_divs_is_read() {
    let (open, close) = ("<div>".repeat(300), "</div>".repeat(300));
    let h = format!("<body>{open}<p style='display:none'>hidden</p>deep{close}<a href='https://evil.example/'>after</a></body>");
    let o = html_within_guard(h);
    assert_eq!(o.cut, None);
    assert!(o.text.contains("deep") && o.text.contains("after") && !o.text.contains("hidden"), "{:?}", o.text.trim());
    assert_eq!(o.links.len(), 1);
}

#[test]
fn nested_div_message_reports_the_limit() {
    let f = analyse(nested_div_message(13_000));
    let limit = f.iter().find(|f| f.0 == "CONTENT_LIMIT_REACHED").expect("limit finding");
    assert!(limit.1.contains("max_html_depth (512): HTML body nested deeper at byte"), "{}", limit.1);
    assert!(f.iter().any(|f| f.0 == "LURE_PASSWORD"), "{f:?}");
}

/// Max element depth of html5ever's tree; the least `max_depth` that `nesting_cut` lets through.
fn depths(h: &str) -> (usize, usize) {
    let doc = scraper::Html::parse_document(h);
    let real = doc.tree.root().descendants().map(|n| n.ancestors().filter(|a| a.value().is_element()).count()).max().unwrap_or(0);
    let (mut lo, mut hi) = (0, h.len());
    while lo < hi {
        let mid = (lo + hi) / 2;
        if html::nesting_cut(h, mid, usize::MAX).is_none() {
            hi = mid
        } else {
            lo = mid + 1
        }
    }
    (real, lo)
}

#[test]
fn nesting_model_is_not_shallower_than_the_parser() {
    // random tag soup, and short random patterns repeated: the model must not count shallower
    // than html5ever builds (it opens html and body; tables imply tbody and tr)
    const VOCAB: &[&str] = &[
        "<div>",
        "</div>",
        "<span>",
        "</span>",
        "<p>",
        "</p>",
        "<li>",
        "</li>",
        "<ul>",
        "</ul>",
        "<b>",
        "</b>",
        "<i>",
        "</i>",
        "<a href=x>",
        "</a>",
        "<table>",
        "</table>",
        "<tr>",
        "</tr>",
        "<td>",
        "</td>",
        "<option>",
        "</option>",
        "<select>",
        "</select>",
        "<svg>",
        "</svg>",
        "<math>",
        "</math>",
        "<path/>",
        "<g>",
        "</g>",
        "<foreignObject>",
        "</foreignObject>",
        "<template>",
        "</template>",
        "<dd>",
        "<dt>",
        "</dd>",
        "<button>",
        "</button>",
        "<form>",
        "</form>",
        "<br>",
        "</br>",
        "x",
        " ",
        "<rb>",
        "<ruby>",
        "</ruby>",
        "<font color=red>",
        "<font>",
        "</font>",
        "<h1>",
        "</h1>",
        "<h2>",
        "<body>",
        "</body>",
        "</html>",
        "<x>",
        "</x>",
        "<div/>",
        "<span/>",
        "<style>",
        "</style>",
        "<!--",
        "-->",
        "<caption>",
        "<col>",
        "<colgroup>",
        "<tbody>",
        "<mi>",
        "<desc>",
        "<title>",
        "</title>",
        "<nobr>",
        "<frameset>",
        "<textarea>",
        "</textarea>",
        "<head>",
        "<plaintext>",
        "<marquee>",
        "</marquee>",
        "<object>",
        "</object>",
        "<applet>",
        "<em>",
        "<script>",
        "</script>",
        "<a title='>'>",
        "<annotation-xml>",
        "<mtext>",
        "<![CDATA[",
        "]]>",
        "<!-->",
        "--!>",
        "<?x>",
        "</ x>",
    ];
    let mut seed = 0x9E3779B97F4A7C15u64;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for round in 0..600 {
        let repeat = round % 2 == 1;
        let n = if repeat { 1 + round % 7 } else { 20 + round % 300 };
        let mut toks: Vec<&str> = (0..n).map(|_| VOCAB[(next() % VOCAB.len() as u64) as usize]).collect();
        if repeat {
            toks = toks.repeat(60);
        }
        let h = toks.concat();
        let (real, model) = depths(&h);
        assert!(real <= 2 * model + 4, "html5ever {real} deep, model {model}: {h}");
    }
}

// ---------------------------------------------------------------------------------------------
// For the Postfix end-to-end run, and figures

#[test]
#[ignore]
fn write_bomb_messages() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target");
    std::fs::write(dir.join("bomb-qr.eml"), qr_bomb_message()).expect("write bomb-qr.eml");
    std::fs::write(dir.join("bomb-nested.eml"), nested_div_message(100_000)).expect("write bomb-nested.eml");
    println!("wrote {0}/bomb-qr.eml and {0}/bomb-nested.eml", dir.display());
}

#[test]
#[ignore]
fn bomb_timings() {
    let png = qr_finder_bomb_png(500, 1);
    println!("QR bomb: {} bytes of PNG, message {} bytes", png.len(), qr_bomb_message().len());
    let t = Instant::now();
    let r = qr::decode(&png, &Limits::default(), Instant::now() + Duration::from_secs(3600));
    println!("qr::decode: {:.2} ms, {r:?}", t.elapsed().as_secs_f64() * 1e3);
    for n in [1_000, 5_000, 13_000, 50_000, 100_000, 210_000] {
        let h = nested_divs(n, "x");
        let t = Instant::now();
        let o = html::html(&h, &Limits::default());
        println!("{n} nested divs ({} bytes): html::html {:.2} ms, cut {:?}", h.len(), t.elapsed().as_secs_f64() * 1e3, o.cut);
    }
    for raw in [qr_bomb_message(), nested_div_message(13_000), nested_div_message(100_000)] {
        analyse(raw);
    }
}
