//! Throughput of `LookalikeMatcher::check` against the OpenAI profile plus ten more brands,
//! over a mix that is mostly ordinary (no-match) hosts, as in real mail.
//!
//! Run: `cargo bench --bench lookalike`; checks/s = domains per iteration / time per iteration.
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};

use impostor::{analysis::lookalike::LookalikeMatcher, config::Brand};

fn brand(name: &str, aliases: &[&str], domains: &[&str]) -> Brand {
    Brand {
        name: name.to_string(),
        aliases: aliases.iter().map(|s| s.to_string()).collect(),
        domains: domains.iter().map(|s| s.to_string()).collect(),
        legitimate_domains: vec![],
        senders: vec![],
        overrides: Default::default(),
    }
}

fn brands() -> Vec<Brand> {
    let mut brands = impostor::config::builtin_brands();
    brands.extend([
        brand("ExampleBank", &[], &["examplebank.com"]),
        brand("PayPal", &[], &["paypal.com"]),
        brand("Microsoft", &["Office365"], &["microsoft.com", "office.com", "live.com"]),
        brand("DocuSign", &[], &["docusign.com", "docusign.net"]),
        brand("Dropbox", &[], &["dropbox.com"]),
        brand("Coinbase", &[], &["coinbase.com"]),
        brand("Netflix", &[], &["netflix.com"]),
        brand("LinkedIn", &[], &["linkedin.com"]),
        brand("Salesforce", &[], &["salesforce.com"]),
        brand("Acme Corp", &["AcmeCorp"], &["acme-corp.example"]),
    ]);
    brands
}

const MIX: &[&str] = &[
    // ordinary hosts (most of real traffic)
    "gmail.com",
    "mail.google.com",
    "github.com",
    "lists.sourceforge.net",
    "www.python.org",
    "news.ycombinator.com",
    "example.org",
    "t.co",
    "bit.ly",
    "click.mailchimp.com",
    "em.sendgrid.net",
    "www.nytimes.com",
    "images.example.co.uk",
    "opentable.com",
    "opening.com",
    "openairinterface.org",
    "cdn.jsdelivr.net",
    "s3.amazonaws.com",
    "spamassassin.apache.org",
    "xent.com",
    "www.linux.ie",
    "example.com.",
    "WWW.EXAMPLE.NET",
    "yahoo.co.jp",
    // owned
    "openai.com",
    "platform.openai.com",
    "email.chatgpt.com",
    "paypal.com",
    // lookalikes
    "0penai.com",
    "opena1.com",
    "xn--penai-iye.com",
    "openai-support.com",
    "platform-openai.com",
    "openai.com.secure-login.io",
    "paypa1.com",
    "micros0ft-login.com",
    "chatgtp.com",
    "openai.co",
    // any-word combosquats and open-air look-alikes (word segmentation)
    "openaigaming.com",
    "useopenai.com",
    "chatgpt4all.io",
    "openairmuseum.de",
    "openair-festival.de",
    "oai-security.com",
];

fn bench(c: &mut Criterion) {
    let m = LookalikeMatcher::new(&brands());
    let mut g = c.benchmark_group("lookalike");
    g.throughput(Throughput::Elements(MIX.len() as u64));
    g.bench_function("check_mix", |b| {
        b.iter(|| {
            for d in MIX {
                black_box(m.check(black_box(d)));
            }
        })
    });
    let ordinary = &MIX[..24];
    g.throughput(Throughput::Elements(ordinary.len() as u64));
    g.bench_function("check_no_match", |b| {
        b.iter(|| {
            for d in ordinary {
                black_box(m.check(black_box(d)));
            }
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
