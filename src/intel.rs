//! Local intelligence without a rebuild: an IOC blocklist of sender domains,
//! link hosts and URLs, named by `[intel] ioc_file` and read with the
//! configuration, so `kill -HUP` reloads it (and a file that does not parse is
//! rejected like a bad configuration: the old lists stay).
//!
//! The format, one entry a line, `#` starts a comment:
//! ```text
//! sender-domain  evil-invoices.example     # the From or envelope sender domain, subdomains included
//! link-host      login-portal.example      # a link's host, subdomains included
//! url            https://cdn.example/a/pay.html   # one URL exactly (scheme and host case-insensitive)
//! freemail       mail.example-isp.net      # one more mailbox provider (data/freemail.txt), subdomains included
//! shortener      go.example-short.link     # one more URL shortener (data/shorteners.txt), subdomains included
//! ```
//! `freemail` and `shortener` lines are no indicators: they extend the
//! compiled-in lists that rules consult (REPLY_TO_FREEMAIL_BRAND_CLAIM,
//! LINK_SHORTENER, the lookalike exemption of mailbox providers).

use crate::rule::{Finding, RuleDef, RuleId};
use std::collections::HashSet;

pub const IOC_SENDER_DOMAIN: RuleId = "IOC_SENDER_DOMAIN";
pub const IOC_LINK_HOST: RuleId = "IOC_LINK_HOST";
pub const IOC_URL: RuleId = "IOC_URL";

#[rustfmt::skip]
pub static RULES: &[RuleDef] = &[
    RuleDef::new(IOC_SENDER_DOMAIN, "ioc", 10.0, "From or envelope sender domain is on the local IOC blocklist (intel.ioc_file, sender-domain)"),
    RuleDef::new(IOC_LINK_HOST, "ioc", 10.0, "A link's host is on the local IOC blocklist (intel.ioc_file, link-host)"),
    RuleDef::new(IOC_URL, "ioc", 12.0, "A link is a URL on the local IOC blocklist (intel.ioc_file, url)"),
];

/// The IOC blocklist. Empty when `intel.ioc_file` is not set.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Ioc {
    sender_domains: HashSet<String>,
    link_hosts: HashSet<String>,
    urls: HashSet<String>,
    freemail: HashSet<String>,
    shorteners: HashSet<String>,
}

/// `Https://Phish.Example/a/` → `https://phish.example/a`: the form URLs are compared in.
fn normal_url(u: &str) -> Option<String> {
    let parsed = url::Url::parse(u).ok()?;
    Some(parsed.as_str().trim_end_matches('/').to_string())
}

fn normal_domain(d: &str) -> Option<String> {
    let d = d.trim().trim_end_matches('.').to_ascii_lowercase();
    let ascii = idna::domain_to_ascii(&d).ok()?;
    (ascii.contains('.') && !ascii.contains(['/', '@', ':'])).then_some(ascii)
}

/// The entry of `set` that `host` is or is a subdomain of.
fn covered<'a>(set: &'a HashSet<String>, host: &str) -> Option<&'a str> {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    let mut rest = host.as_str();
    loop {
        if let Some(hit) = set.get(rest) {
            return Some(hit);
        }
        rest = rest.split_once('.')?.1;
    }
}

impl Ioc {
    /// Reads `path` ("" is no list). Errors name the line and the entry.
    pub fn load(path: &str) -> Result<Ioc, String> {
        if path.is_empty() {
            return Ok(Ioc::default());
        }
        let text = std::fs::read_to_string(path).map_err(|e| format!("intel.ioc_file: {path:?}: cannot read: {e}"))?;
        Ioc::parse(&text).map_err(|e| format!("intel.ioc_file: {path}:{e}"))
    }

    /// Parses the file format above; an error is `LINE: message`.
    pub fn parse(text: &str) -> Result<Ioc, String> {
        let mut ioc = Ioc::default();
        for (n, line) in text.lines().enumerate() {
            let line = line.split_once('#').map_or(line, |(l, _)| l).trim();
            if line.is_empty() {
                continue;
            }
            let (kind, value) = line.split_once(char::is_whitespace).map(|(k, v)| (k, v.trim())).unwrap_or((line, ""));
            let bad = |what: &str| format!("{}: {value:?} is not {what}", n + 1);
            match kind {
                "sender-domain" => ioc.sender_domains.insert(normal_domain(value).ok_or_else(|| bad("a domain name"))?),
                "link-host" => ioc.link_hosts.insert(normal_domain(value).ok_or_else(|| bad("a host name"))?),
                "url" => ioc.urls.insert(normal_url(value).ok_or_else(|| bad("a URL"))?),
                "freemail" => ioc.freemail.insert(normal_domain(value).ok_or_else(|| bad("a domain name"))?),
                "shortener" => ioc.shorteners.insert(normal_domain(value).ok_or_else(|| bad("a host name"))?),
                other => {
                    return Err(format!(
                        "{}: {other:?}: unknown kind (expected sender-domain, link-host, url, freemail or shortener)",
                        n + 1
                    ));
                }
            };
        }
        Ok(ioc)
    }

    /// No indicator (sender domain, link host, URL): nothing for [`Ioc::check`] to find.
    pub fn is_empty(&self) -> bool {
        self.sender_domains.is_empty() && self.link_hosts.is_empty() && self.urls.is_empty()
    }

    /// `domain` is, or is under, a local `freemail` entry.
    pub fn is_freemail(&self, domain: &str) -> bool {
        !self.freemail.is_empty() && covered(&self.freemail, domain).is_some()
    }

    /// `host` is, or is under, a local `shortener` entry.
    pub fn is_shortener(&self, host: &str) -> bool {
        !self.shorteners.is_empty() && covered(&self.shorteners, host).is_some()
    }

    /// Entries per kind, for the log line at load.
    pub fn counts(&self) -> (usize, usize, usize) {
        (self.sender_domains.len(), self.link_hosts.len(), self.urls.len())
    }

    /// The findings for a message: its sender domains (From, envelope sender) and its links.
    pub fn check<'a>(&self, senders: &[&str], links: impl Iterator<Item = (&'a str, Option<&'a str>)>, out: &mut Vec<Finding>) {
        if self.is_empty() {
            return;
        }
        for s in senders {
            if let Some(hit) = covered(&self.sender_domains, s) {
                out.push(Finding::new(IOC_SENDER_DOMAIN, format!("sender domain {s} (IOC {hit})")));
                break;
            }
        }
        let (mut host_hit, mut url_hit) = (false, false);
        for (url, host) in links {
            if !url_hit && !self.urls.is_empty() && normal_url(url).is_some_and(|u| self.urls.contains(&u)) {
                let shown: String = url.chars().take(120).collect();
                out.push(Finding::new(IOC_URL, format!("link {shown}")));
                url_hit = true;
            }
            if !host_hit {
                if let Some(hit) = host.and_then(|h| covered(&self.link_hosts, h)) {
                    out.push(Finding::new(IOC_LINK_HOST, format!("link host {} (IOC {hit})", host.unwrap_or_default())));
                    host_hit = true;
                }
            }
            if host_hit && url_hit {
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_match_subdomains_and_exact_urls() {
        let ioc = Ioc::parse(
            "# feed of 2026-12-02\nsender-domain Evil-Invoices.example\nlink-host login-portal.example  # kit\nurl https://CDN.example/a/pay.html\n",
        )
        .unwrap();
        let mut out = Vec::new();
        ioc.check(
            &["mail.evil-invoices.example"],
            [("https://x.login-portal.example/", Some("x.login-portal.example")), ("https://cdn.example/a/pay.html/", Some("cdn.example"))]
                .into_iter(),
            &mut out,
        );
        let ids: Vec<_> = out.iter().map(|f| f.rule).collect();
        assert_eq!(ids, [IOC_SENDER_DOMAIN, IOC_LINK_HOST, IOC_URL], "{out:?}");
        let mut none = Vec::new();
        ioc.check(&["invoices.example"], [("https://cdn.example/a/other.html", Some("cdn.example"))].into_iter(), &mut none);
        assert!(none.is_empty(), "{none:?}");
    }

    #[test]
    fn a_bad_line_is_named() {
        assert_eq!(
            Ioc::parse("url https://a.example/\nhost b.example\n").unwrap_err(),
            "2: \"host\": unknown kind (expected sender-domain, link-host, url, freemail or shortener)"
        );
        assert_eq!(Ioc::parse("sender-domain not a domain\n").unwrap_err(), "1: \"not a domain\" is not a domain name");
    }
}
