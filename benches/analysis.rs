//! Time of `analysis::analyze` per message, for representative messages built here
//! (no corpus): a plain 2 KB text message, a 50 KB HTML newsletter
//! (multipart/alternative with many links), a 1 MB message with attachments
//! (PDF-like and PNG-like base64 parts), and a 3 KB brand-impersonation lure
//! (display name, lookalike link, credential wording) that exercises every rule family.
//!
//! The engine is built once, as the daemon does (`Engine::new(Config::default())?`,
//! no DNS: auth None), so the figures are the CPU cost of the analysis alone,
//! without the milter protocol or SPF/DKIM/DMARC.
//!
//! Run: `cargo bench --bench analysis` (add `-- --quick` for a short run).
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use impostor::analysis::{analyze, Engine, Envelope, MessageInput};
use impostor::config::Config;

const WORDS: &[&str] = &[
    "the",
    "quarterly",
    "report",
    "is",
    "attached",
    "and",
    "please",
    "review",
    "before",
    "Friday",
    "meeting",
    "notes",
    "from",
    "our",
    "team",
    "project",
    "schedule",
    "budget",
    "update",
    "customer",
    "feedback",
    "thanks",
    "regards",
    "invoice",
    "shipment",
    "warehouse",
    "delivery",
    "agenda",
    "minutes",
    "draft",
    "version",
    "final",
    "comments",
];

/// Deterministic filler text of about `len` bytes, wrapped at 72 columns, CRLF line ends.
fn text(len: usize, seed: usize) -> String {
    let mut out = String::with_capacity(len + 80);
    let mut line = 0;
    let mut i = seed;
    while out.len() < len {
        let w = WORDS[(i * 7 + i / 3) % WORDS.len()];
        i += 1;
        if line + w.len() + 1 > 72 {
            out.push_str("\r\n");
            line = 0;
        } else if line > 0 {
            out.push(' ');
            line += 1;
        }
        out.push_str(w);
        line += w.len();
    }
    out.push_str("\r\n");
    out
}

/// Base64 of `len` pseudo-random bytes, 76 columns.
fn base64_blob(len: usize, seed: u64) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut x = seed | 1;
    let chars = len.div_ceil(3) * 4;
    let mut out = String::with_capacity(chars + chars / 38);
    for i in 0..chars {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.push(A[(x & 63) as usize] as char);
        if i % 76 == 75 {
            out.push_str("\r\n");
        }
    }
    out.push_str("\r\n");
    out
}

fn headers(from: &str, subject: &str, content_type: &str) -> String {
    format!(
        "Return-Path: <bounce@mail.example.org>\r\n\
         Received: from mail.example.org (mail.example.org [198.51.100.20])\r\n\tby mx.rcpt.example (Postfix) with ESMTPS id 4Xyz1;\r\n\tTue, 24 Nov 2026 09:12:44 +0000 (UTC)\r\n\
         From: {from}\r\nTo: Bob Lee <bob@rcpt.example>\r\nSubject: {subject}\r\n\
         Date: Tue, 24 Nov 2026 09:12:44 +0000\r\nMessage-ID: <20261124091244.4711@mail.example.org>\r\n\
         MIME-Version: 1.0\r\nContent-Type: {content_type}\r\n"
    )
}

fn plain_2k() -> Vec<u8> {
    let mut m = headers("Alice Martin <alice@example.org>", "Lunch on Friday", "text/plain; charset=utf-8");
    m.push_str("Content-Transfer-Encoding: 7bit\r\n\r\n");
    m.push_str(&text(2048 - m.len(), 1));
    m.into_bytes()
}

fn html_50k() -> Vec<u8> {
    let mut m =
        headers("Example Store News <news@shop.example.com>", "Our November deals are here", "multipart/alternative; boundary=\"alt-b1\"");
    m.push_str("\r\n--alt-b1\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 7bit\r\n\r\n");
    m.push_str(&text(8 * 1024, 2));
    m.push_str("\r\n--alt-b1\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: 7bit\r\n\r\n");
    m.push_str("<html><head><style>td{font-family:Arial}</style></head><body><table>\r\n");
    let mut i = 0;
    while m.len() < 50 * 1024 {
        m.push_str(&format!(
            "<tr><td><a href=\"https://click.shop.example.com/t/{i}?u=8812&amp;c=nov\"><img src=\"https://img.shop.example.com/p/{i}.jpg\" alt=\"item {i}\" width=\"120\"></a></td>\r\n<td><p>{}</p></td></tr>\r\n",
            text(300, i).replace("\r\n", " ")
        ));
        i += 1;
    }
    m.push_str("</table><p><a href=\"https://shop.example.com/unsubscribe\">Unsubscribe</a></p></body></html>\r\n--alt-b1--\r\n");
    m.into_bytes()
}

fn attachments_1m() -> Vec<u8> {
    let mut m =
        headers("Carol Diaz <carol@partner.example.net>", "Signed contract and site photos", "multipart/mixed; boundary=\"mix-b2\"");
    m.push_str("\r\n--mix-b2\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n");
    m.push_str(&text(3 * 1024, 3));
    m.push_str("\r\n--mix-b2\r\nContent-Type: application/pdf; name=\"contract.pdf\"\r\nContent-Disposition: attachment; filename=\"contract.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\n");
    m.push_str(&base64_blob(450 * 1024, 7));
    for n in 0..3 {
        m.push_str(&format!("\r\n--mix-b2\r\nContent-Type: image/png; name=\"site-{n}.png\"\r\nContent-Disposition: attachment; filename=\"site-{n}.png\"\r\nContent-Transfer-Encoding: base64\r\n\r\n"));
        m.push_str(&base64_blob(100 * 1024, 11 + n));
    }
    m.push_str("\r\n--mix-b2--\r\n");
    m.into_bytes()
}

fn lure_3k() -> Vec<u8> {
    let mut m = headers("\"OpenAI Billing\" <billing@openai-help.net>", "OpenAI: your API key was suspended", "text/html; charset=utf-8");
    m.push_str("Content-Transfer-Encoding: 7bit\r\n\r\n<html><body><p>Dear customer,</p>\r\n");
    m.push_str("<p>Your API key was suspended after unusual activity. To restore access, verify your account and confirm your billing details within 24 hours:</p>\r\n");
    m.push_str("<p><a href=\"https://0penai-login.com/verify?id=88213\">https://platform.openai.com/account/billing</a></p>\r\n<p>");
    m.push_str(&text(2200, 5).replace("\r\n", " "));
    m.push_str("</p><p>The OpenAI Team</p></body></html>\r\n");
    m.into_bytes()
}

fn bench(c: &mut Criterion) {
    let engine = Engine::new(Config::default()).unwrap();
    let env = Envelope {
        client_ip: Some("203.0.113.7".parse().unwrap()),
        client_name: None,
        helo: Some("mail.example.org".into()),
        mail_from: Some("bounce@mail.example.org".into()),
        rcpt_to: vec!["bob@rcpt.example".into()],
        queue_id: Some("4Xyz1".into()),
        auth_authen: None,
    };
    let cases: [(&str, Vec<u8>); 4] =
        [("plain_2k", plain_2k()), ("html_50k", html_50k()), ("attachments_1m", attachments_1m()), ("lure_3k", lure_3k())];
    let mut g = c.benchmark_group("analyze");
    for (name, raw) in &cases {
        let input = MessageInput { envelope: &env, raw, truncated: false, headers_truncated: false, auth: None };
        // print the verdict once, so a reader sees what each case exercises
        let (v, _) = analyze(&engine, &input);
        eprintln!("analysis/{name}: {} bytes, action {} score {} rules {:?}", raw.len(), v.action.as_str(), v.score, v.rule_ids());
        g.throughput(Throughput::Bytes(raw.len() as u64));
        g.bench_function(*name, |b| b.iter(|| black_box(analyze(&engine, black_box(&input)))));
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
