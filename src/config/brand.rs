//! Brand profiles as configured: the names a brand goes by, the domains it
//! owns and those used on its behalf, and its overrides. The matching is in
//! `crate::brand`.

use super::{BrandConfig, BrandOverrides};
use crate::domain::{normalize_domain, registrable};

#[derive(Clone, Debug, PartialEq)]
pub struct Brand {
    /// Display name, e.g. "OpenAI".
    pub name: String,
    /// Other names, e.g. "ChatGPT".
    pub aliases: Vec<String>,
    /// Registrable domains the brand owns (subdomains included).
    pub domains: Vec<String>,
    /// Further domains the brand owns outright whose name is no brand word
    /// (`chat.com`): like `domains`, never findings, without authentication.
    pub legitimate_domains: Vec<String>,
    /// Shared platforms that send for the brand (invoices, notifications,
    /// support, recruiting) or host its tracked links. An entry covers its
    /// subdomains. Unlike `legitimate_domains` it counts only for a message
    /// that authenticates (DMARC or aligned DKIM pass) as the brand or as the
    /// sender itself: anyone can open an account on a platform.
    pub senders: Vec<String>,
    /// Stricter (or looser) thresholds and weights for mail that names this brand.
    pub overrides: BrandOverrides,
}

/// The built-in OpenAI profile. Why each domain is here:
/// - `openai.com`: corporate site, `platform.openai.com`, `help.openai.com`, and the
///   sender domain of account, billing and security mail (`noreply@tm.openai.com`,
///   `noreply@email.openai.com`).
/// - `chatgpt.com`: the ChatGPT product (since 2024) and its notification mail.
/// - `oaistatic.com`: OpenAI's static-asset CDN, linked from ChatGPT pages and mail.
/// - `oaiusercontent.com`: user-content host for ChatGPT files and images.
/// - `sora.com`: the Sora product site.
///
/// Legitimate (owned, but not a brand word): `chat.com`, which OpenAI bought
/// and redirects to ChatGPT — listing it in `domains` would make "chat" a
/// brand token.
///
/// Senders (shared platforms, bound to authentication; evidence for each in
/// docs/brands.md): `stripe.com` (invoices and receipts as "OpenAI, LLC"),
/// `github.com` (notifications about openai/… repositories), `mandrillapp.com`
/// and `sendgrid.net` (OpenAI's own mail and its click-trackers),
/// `openai.intercom-mail.com` (OpenAI's Intercom workspace: support replies),
/// `ashbyhq.com` (OpenAI's applicant tracking, jobs.ashbyhq.com/openai).
pub fn builtin_brands() -> Vec<Brand> {
    vec![Brand {
        name: "OpenAI".into(),
        aliases: vec!["ChatGPT".into()],
        domains: vec!["openai.com".into(), "chatgpt.com".into(), "oaistatic.com".into(), "oaiusercontent.com".into(), "sora.com".into()],
        legitimate_domains: vec!["chat.com".into()],
        senders: ["stripe.com", "github.com", "mandrillapp.com", "sendgrid.net", "openai.intercom-mail.com", "ashbyhq.com"]
            .map(String::from)
            .to_vec(),
        overrides: Default::default(),
    }]
}

impl Brand {
    pub fn from_config(b: &BrandConfig) -> Result<Brand, String> {
        if b.name.trim().is_empty() {
            return Err("name: must not be empty".into());
        }
        if !b.name.chars().any(char::is_alphanumeric) {
            return Err(format!("name: {:?} has no letters or digits", b.name));
        }
        let norm = |key: &str, list: &[String]| -> Result<Vec<String>, String> {
            list.iter().map(|d| normalize_domain(d).ok_or_else(|| format!("{key}: {d:?} is not a domain name"))).collect()
        };
        if b.domains.is_empty() {
            return Err(format!("domains: brand {:?} needs at least one domain it owns", b.name));
        }
        Ok(Brand {
            name: b.name.trim().to_string(),
            aliases: b.aliases.clone(),
            domains: norm("domains", &b.domains)?,
            legitimate_domains: norm("legitimate_domains", &b.legitimate_domains)?,
            senders: norm("senders", &b.senders)?,
            overrides: b.overrides.clone(),
        })
    }

    /// True when `domain` is one of the brand's domains, a subdomain of one, or listed as legitimate.
    pub fn owns(&self, domain: &str) -> bool {
        let d = domain.trim_end_matches('.').to_ascii_lowercase();
        self.domains.iter().chain(&self.legitimate_domains).any(|own| under(&d, own))
    }

    /// True when `domain` is one of the brand's `senders` or a subdomain of one.
    /// Being listed alone exempts nothing: see `crate::analysis::Facts::vouched`.
    pub fn sends_via(&self, domain: &str) -> bool {
        let d = domain.trim_end_matches('.').to_ascii_lowercase();
        self.senders.iter().any(|s| under(&d, s))
    }

    /// The names this brand goes by: name, aliases, and the first label of each owned domain.
    pub fn names(&self) -> Vec<String> {
        let mut v = vec![self.name.clone()];
        v.extend(self.aliases.iter().cloned());
        for d in &self.domains {
            if let Some(label) = registrable(d).and_then(|r| r.split('.').next().map(str::to_string)) {
                v.push(label);
            }
        }
        v
    }
}

/// `d` is `parent` or a subdomain of it (both lowercase, no trailing dot).
fn under(d: &str, parent: &str) -> bool {
    d == parent || (d.len() > parent.len() && d.ends_with(parent) && d.as_bytes()[d.len() - parent.len() - 1] == b'.')
}
