//! Link rules: where a link really goes, against what it shows.
//!
//! A host that a protected brand owns (its `domains` and `legitimate_domains`)
//! never produces a finding; nor does one of its `senders` (e.g. its ESP
//! click-trackers) in a message that authenticates as the brand. Each rule reports
//! its first offending link, with a count of the others.

use super::*;
use crate::domain::registrable;

static SHORTENERS: std::sync::LazyLock<Vec<&'static str>> =
    std::sync::LazyLock::new(|| data_list(include_str!("../../../data/shorteners.txt")));

/// The host is a known URL shortener: `data/shorteners.txt`, or a `shortener`
/// line of the local lists (`intel.ioc_file`).
pub fn is_shortener(host: &str, local: &crate::intel::Ioc) -> bool {
    if local.is_shortener(host) {
        return true;
    }
    let reg = registrable(host).unwrap_or_else(|| host.to_string());
    SHORTENERS.iter().any(|s| *s == host || *s == reg)
}

static FREE_HOSTING: std::sync::LazyLock<Vec<&'static str>> =
    std::sync::LazyLock::new(|| data_list(include_str!("../../../data/free-hosting.txt")));

/// One label of a free-hosting entry against a host label: `*` any, `s3*` a prefix.
fn label_matches(pattern: &str, label: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => label.starts_with(prefix),
        None => pattern == label,
    }
}

/// One free-hosting entry, split once: `*.` lead (the pattern anywhere below the top), its labels, a path prefix.
struct HostingEntry {
    entry: &'static str,
    lead: bool,
    labels: Vec<&'static str>,
    path: Option<&'static str>,
}

static HOSTING_ENTRIES: std::sync::LazyLock<Vec<HostingEntry>> = std::sync::LazyLock::new(|| {
    FREE_HOSTING
        .iter()
        .map(|&entry| {
            let (h, path) = entry.split_once('/').map_or((entry, None), |(h, p)| (h, Some(p)));
            let (lead, pat) = match h.strip_prefix("*.") {
                Some(rest) => (true, rest),
                None => (false, h),
            };
            HostingEntry { entry, lead, labels: pat.split('.').collect(), path }
        })
        .collect()
});

/// The free-hosting entry (data/free-hosting.txt) the URL's host (and path) falls under, if any.
pub fn free_hosting(host: &str, url: &str) -> Option<&'static str> {
    let labels: Vec<&str> = host.split('.').collect();
    let rest = url.split_once("://").map(|(_, r)| r).and_then(|r| r.split_once('/')).map_or("", |(_, rest)| rest);
    HOSTING_ENTRIES
        .iter()
        .find(|e| {
            let pl = &e.labels;
            // `*.ipfs.*`: the pattern anywhere below the top; otherwise the host's last labels
            let matched = if e.lead {
                labels.len() > pl.len() && labels.windows(pl.len()).skip(1).any(|w| w.iter().zip(pl).all(|(l, p)| label_matches(p, l)))
            } else {
                labels.len() >= pl.len() && labels[labels.len() - pl.len()..].iter().zip(pl).all(|(l, p)| label_matches(p, l))
            };
            // the service's own home page (`https://www.wix.com/`) is no one's site: the bare host needs a path
            let bare = !e.lead && (labels.len() == pl.len() || labels.len() == pl.len() + 1 && labels[0] == "www");
            matched
                && e.path.is_none_or(|p| rest.starts_with(p))
                && !(bare && e.path.is_none() && rest.trim_start_matches(['?', '#']).is_empty())
        })
        .map(|e| e.entry)
}

fn org(host: &str) -> String {
    registrable(host).unwrap_or_else(|| host.to_string())
}

fn is_ip(host: &str) -> bool {
    host.starts_with('[') || host.parse::<std::net::Ipv4Addr>().is_ok()
}

/// A domain shown in link text ("www.paypal.com", "https://platform.openai.com/login"), if any.
fn shown_domain(text: &str) -> Option<String> {
    for word in text.split_whitespace() {
        if !word.contains('.') || word.contains('@') {
            continue;
        }
        let w = word.trim_matches(|c: char| !c.is_alphanumeric());
        let lower = w.to_ascii_lowercase();
        let rest = lower.split_once("://").map(|(_, r)| r).unwrap_or(&lower);
        let host = rest.split(['/', '?', '#', ':']).next().unwrap_or("");
        let ok = host.contains('.')
            && host.split('.').all(|l| !l.is_empty() && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
            && host.rsplit('.').next().is_some_and(|tld| tld.len() >= 2 && tld.chars().all(|c| c.is_ascii_alphabetic()));
        if ok && psl::suffix(host.as_bytes()).is_some_and(|s| s.is_known()) {
            return Some(host.to_string());
        }
    }
    None
}

#[derive(Default)]
struct Once {
    found: Vec<(&'static str, String, usize)>,
}

impl Once {
    fn add(&mut self, rule: &'static str, evidence: String) {
        match self.found.iter_mut().find(|f| f.0 == rule) {
            Some(f) => f.2 += 1,
            None => self.found.push((rule, evidence, 0)),
        }
    }
    fn emit(self, out: &mut Vec<Finding>) {
        for (rule, ev, more) in self.found {
            let ev = if more > 0 { format!("{ev} (+{more} more)") } else { ev };
            out.push(Finding::new(rule, ev));
        }
    }
}

fn short(url: &str) -> String {
    if url.chars().count() > 100 {
        format!("{}…", url.chars().take(100).collect::<String>())
    } else {
        url.to_string()
    }
}

/// The URL a redirector link carries in its query (`?url=https%3A%2F%2F…`), one level deep.
pub fn embedded(link: &Link) -> Option<Link> {
    link.host.as_ref()?;
    // only a query that mentions http (plain or percent-encoded) can carry a URL
    let (_, query) = link.url.split_once('?')?;
    if !query.as_bytes().windows(4).any(|w| w.eq_ignore_ascii_case(b"http")) {
        return None;
    }
    let u = url::Url::parse(&link.url).ok()?;
    for (_, v) in u.query_pairs() {
        let l = v.to_ascii_lowercase();
        if l.starts_with("http://") || l.starts_with("https://") {
            return Link::parse(&v, link.source.clone(), link.anchor_text.clone())
                .filter(|i| i.host != link.host)
                .map(|i| Link { forwarded: link.forwarded, ..i });
        }
    }
    None
}

/// Judges every link of a message.
///
/// `vouched`: the brands the message authenticates as (`Facts::vouched`);
/// their `senders` (click-trackers, invoice hosts) count as their own hosts.
pub fn check(
    content: &Content,
    brands: &BrandSet,
    claimed_brand: Option<usize>,
    vouched: &[usize],
    lookalike: LookalikeFn,
    local: &crate::intel::Ioc,
    out: &mut Vec<Finding>,
) {
    let mut f = Once::default();
    let claimed = claimed_brand.and_then(|b| brands.brands.get(b).map(|br| (b, br)));
    // a redirector's destination (`?url=https://…`) is judged too
    let mut all: Vec<Link> = Vec::with_capacity(content.links.len());
    for link in &content.links {
        all.push(link.clone());
        if let Some(inner) = embedded(link) {
            all.push(inner);
        }
    }
    // what depends only on the host, once per distinct host (links repeat hosts)
    struct HostFacts {
        owned: bool,
        lookalike: Option<String>,
        shortener: bool,
    }
    let mut hosts: std::collections::HashMap<&str, HostFacts> = std::collections::HashMap::new();
    for link in &all {
        let pre = link.source.evidence_prefix();
        let Some(host) = link.host.as_deref() else {
            if link.source.clickable() && link.source != LinkSource::PlainText {
                f.add(LINK_SCRIPT_OR_DATA_URL, format!("{pre}{}", short(&link.url)));
            }
            continue;
        };
        let facts = hosts.entry(host).or_insert_with(|| {
            let owned = brands.owner_of(host).is_some() || vouched.iter().any(|b| brands.brands[*b].sends_via(host));
            HostFacts {
                owned,
                lookalike: if owned { None } else { lookalike(host).map(|(_, ev)| ev) },
                shortener: !owned && is_shortener(host, local),
            }
        });
        if facts.owned {
            continue;
        }
        let (is_lookalike, shortener) = (facts.lookalike.is_some(), facts.shortener);
        if let Some(ev) = &facts.lookalike {
            f.add(LINK_LOOKALIKE_HOST, format!("{pre}{}: {ev}", short(&link.url)));
        }
        if !link.source.clickable() {
            continue;
        }
        if matches!(link.source, LinkSource::Qr(_)) {
            f.add(QR_CODE_LINK, format!("{pre}{}", short(&link.url)));
        }
        if link.source == LinkSource::FormAction {
            f.add(FORM_EXTERNAL_ACTION, format!("form posts to {}", short(&link.url)));
        }
        // parsed only where needed: userinfo needs an '@', the path rule a claimed brand
        let parsed = if claimed.is_some() || link.url.contains('@') { url::Url::parse(&link.url).ok() } else { None };
        if let Some(u) = &parsed {
            if !u.username().is_empty() || u.password().is_some() {
                f.add(LINK_USERINFO, format!("{pre}{} shows {:?} but goes to {host}", short(&link.url), u.username()));
            }
        }
        if is_ip(host) {
            f.add(LINK_IP_HOST, format!("{pre}{}", short(&link.url)));
        }
        if host.split('.').any(|l| l.starts_with("xn--")) {
            let (uni, _) = idna::domain_to_unicode(host);
            f.add(LINK_PUNYCODE_HOST, format!("{pre}{host} ({uni})"));
        }
        if shortener {
            f.add(LINK_SHORTENER, format!("{pre}{}", short(&link.url)));
        }
        // the rules below judge the link against the outer message's brand claim: not a forwarded message's links
        if link.forwarded {
            continue;
        }
        if let (Some((_, br)), Some(entry)) = (claimed, free_hosting(host, &link.url)) {
            f.add(LINK_FREE_HOSTING, format!("{pre}{} is on {entry} (free hosting), message claims {}", short(&link.url), br.name));
        }
        if let Some(text) = link.anchor_text.as_deref() {
            let dest = embedded(link).and_then(|l| l.host).unwrap_or_default();
            if let (Some(shown), Some(_)) = (shown_domain(text), claimed) {
                if org(&shown) != org(host) && org(&shown) != org(&dest) {
                    if brands.owner_of(&shown).is_some() {
                        f.add(LINK_DISPLAYED_BRAND_DOMAIN, format!("text shows {shown}, link goes to {host}"));
                    } else {
                        f.add(LINK_DISPLAYED_DOMAIN_MISMATCH, format!("text shows {shown}, link goes to {host}"));
                    }
                }
            } else if let Some((b, br)) = claimed {
                if brands.named_in(text).is_some_and(|h| h.brand == b) {
                    f.add(LINK_BRAND_TEXT_FOREIGN_HREF, format!("text {:?} names {}, link goes to {host}", short(text), br.name));
                }
            }
        }
        if let (Some((b, br)), Some(u)) = (claimed, &parsed) {
            let tail = format!("{} {}", u.path(), u.query().unwrap_or(""));
            let words: String = tail.chars().map(|c| if c.is_alphanumeric() { c } else { ' ' }).collect();
            if !is_lookalike && brands.named_in(&words).is_some_and(|h| h.brand == b) {
                f.add(LINK_BRAND_IN_PATH, format!("{pre}{} names {} on {host}", short(&link.url), br.name));
            }
        }
    }
    f.emit(out);
}
