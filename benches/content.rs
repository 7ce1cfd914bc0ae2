//! Time of the content family for a 50 KB HTML message built here (no corpus):
//! text extraction (HTML parse, visible text, links), normalisation, phrase
//! matching over all languages, and link analysis — `content::check` — plus
//! each stage alone. The message is parsed once outside the timed loop, as the
//! core does; the phrase automaton is built once, as the engine does.
//!
//! Run: `cargo bench --bench content` (add `-- --quick` for a short run).
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use impostor::analysis::content::{self, normalise, Limits, Phrases};
use impostor::brand::BrandSet;
use impostor::config::builtin_brands;
use mail_parser::MessageParser;

const WORDS: &[&str] = &[
    "the",
    "quarterly",
    "report",
    "is",
    "ready",
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
    "workspace",
    "invoice",
    "usage",
    "model",
    "organization",
    "members",
    "settings",
    "billing",
    "limits",
    "requests",
    "tokens",
];

/// A 50 KB HTML newsletter-style lure: paragraphs, tables, many links (own,
/// foreign, a shortener, a lookalike), and lure wording near the end.
fn html_message(target: usize) -> String {
    let mut body = String::from("<html><head><style>p{margin:0}</style></head><body><table>");
    let mut i = 0usize;
    while body.len() < target {
        body.push_str("<tr><td><p>");
        for _ in 0..40 {
            body.push_str(WORDS[(i * 7 + i / 3) % WORDS.len()]);
            body.push(' ');
            i += 1;
        }
        match i % 4 {
            0 => body.push_str(&format!("<a href=\"https://platform.openai.com/docs/{i}\">docs</a>")),
            1 => body.push_str(&format!("<a href=\"https://news.example/article/{i}?utm_source=mail\">www.news.example</a>")),
            2 => body.push_str(&format!("<a href=\"https://bit.ly/x{i}\">read more</a>")),
            _ => body.push_str(&format!("<img src=\"https://cdn.example/img/{i}.png\" alt=\"\">")),
        }
        body.push_str("</p></td></tr>\n");
    }
    body.push_str(
        "</table><p>Your API key will be revoked within 24 hours. Send us the verification code we just sent you.</p>\
         <p><a href=\"https://openai-platform-verify.com/keys\">https://platform.openai.com/api-keys</a></p></body></html>",
    );
    format!(
        "From: \"OpenAI Platform\" <no-reply@platform-notice.example>\r\nTo: jean@rcpt.example\r\nSubject: Action required\r\n\
         MIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n\r\n{body}\r\n"
    )
}

fn bench(c: &mut Criterion) {
    let raw = html_message(50 * 1024);
    let msg = MessageParser::default().parse(raw.as_bytes()).expect("bench message parses");
    let brands = BrandSet::new(builtin_brands());
    let phrases = Phrases::builtin();
    let limits = Limits::default();
    // stand-in for the core's lookalike matcher: brand name as a word of a foreign host
    let lookalike = |host: &str| -> Option<(String, String)> {
        if brands.owner_of(host).is_some() {
            return None;
        }
        brands.named_in(host).map(|h| (brands.brands[h.brand].name.clone(), format!("{host} ~ openai.com")))
    };
    let claims_openai = impostor::analysis::Facts { claimed_brand: Some(0), ..Default::default() };
    let mut g = c.benchmark_group("content_50k_html");
    g.throughput(Throughput::Bytes(raw.len() as u64));
    g.bench_function("check (extract + phrases + links)", |b| {
        b.iter(|| {
            let mut out = Vec::new();
            let content =
                content::check(black_box(&msg), &brands, &claims_openai, &phrases, &lookalike, &limits, &Default::default(), &mut out);
            black_box((content, out))
        })
    });
    g.bench_function("extract", |b| b.iter(|| black_box(content::extract(black_box(&msg), &limits))));
    let extracted = content::extract(&msg, &limits);
    g.bench_function("phrases.find", |b| b.iter(|| black_box(phrases.find(black_box(&extracted.text)))));
    g.bench_function("links::check", |b| {
        b.iter(|| {
            let mut out = Vec::new();
            content::links::check(black_box(&extracted), &brands, Some(0), &[], &lookalike, &Default::default(), &mut out);
            black_box(out)
        })
    });
    let html = msg.body_html(0).map(|h| h.into_owned()).unwrap_or_default();
    g.bench_function("text::normalize", |b| b.iter(|| black_box(normalise::normalize(black_box(&html)))));
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
