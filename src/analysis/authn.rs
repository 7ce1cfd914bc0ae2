//! Authentication rules: what SPF, DKIM and DMARC results (from
//! `crate::auth`) say about a message, and the rule that a message claiming a
//! brand must carry a DMARC-aligned pass for one of its domains.

use super::Facts;
use crate::auth::{aligned_pass, AuthResult, AuthResults, OWN_SOURCE};
use crate::brand::BrandSet;
use crate::domain::registrable;
use crate::message::Envelope;
use crate::rule::{Finding, RuleDef, RuleId};

pub const SPF_FAIL: RuleId = "SPF_FAIL";
pub const SPF_SOFTFAIL: RuleId = "SPF_SOFTFAIL";
pub const DKIM_FAIL: RuleId = "DKIM_FAIL";
pub const DMARC_FAIL: RuleId = "DMARC_FAIL";
pub const BRAND_DOMAIN_DMARC_FAIL: RuleId = "BRAND_DOMAIN_DMARC_FAIL";
pub const BRAND_CLAIM_UNAUTHENTICATED: RuleId = "BRAND_CLAIM_UNAUTHENTICATED";
pub const ENVELOPE_FROM_MISMATCH: RuleId = "ENVELOPE_FROM_MISMATCH";
pub const DNS_TEMPERROR: RuleId = "DNS_TEMPERROR";

/// Every rule this module emits.
#[rustfmt::skip]
pub static RULES: &[RuleDef] = &[
    RuleDef::new(SPF_FAIL, "auth", 2.0, "SPF fail: the client is not allowed to send for the MAIL FROM (or HELO) domain"),
    RuleDef::new(SPF_SOFTFAIL, "auth", 1.0, "SPF softfail: the domain says the client is probably not allowed to send for it"),
    RuleDef::new(DKIM_FAIL, "auth", 1.5, "A DKIM signature failed verification and none passed"),
    RuleDef::new(DMARC_FAIL, "auth", 3.0, "DMARC fail for the From domain (the published policy is in the evidence)"),
    RuleDef::new(BRAND_DOMAIN_DMARC_FAIL, "auth", 10.0, "From is a protected brand's domain but the message has no DMARC-aligned pass for it"),
    RuleDef::new(BRAND_CLAIM_UNAUTHENTICATED, "auth", 3.0, "Message claims a brand (display name, lookalike From, body sign-off) without an aligned pass for any of its domains"),
    RuleDef::new(ENVELOPE_FROM_MISMATCH, "auth", 0.5, "MAIL FROM and header From are in different organisational domains (weak context)"),
    RuleDef::new(DNS_TEMPERROR, "auth", 0.0, "A DNS lookup for SPF/DKIM/DMARC failed temporarily (timeout, SERVFAIL); see dns.on_error"),
];

/// Authentication rules. `auth` is None when no results are known (offline):
/// then nothing is concluded from authentication.
pub fn check(brands: &BrandSet, env: &Envelope, auth: Option<&AuthResults>, facts: &Facts, out: &mut Vec<Finding>) {
    // Envelope vs header From: weak context, known without DNS.
    if let (Some(mf), Some(from)) = (env.mail_from.as_deref(), facts.from_domain.as_deref()) {
        if let Some((_, mfd)) = mf.rsplit_once('@') {
            let (a, b) = (registrable(mfd), registrable(from));
            if a.is_some() && b.is_some() && a != b {
                out.push(Finding::new(
                    ENVELOPE_FROM_MISMATCH,
                    format!("MAIL FROM domain {} differs from From domain {}", a.unwrap_or_default(), b.unwrap_or_default()),
                ));
            }
        }
    }
    let Some(auth) = auth else { return };
    let src = if auth.source == OWN_SOURCE { String::new() } else { format!(" (from {})", auth.source) };
    if !auth.temperror.is_empty() {
        out.push(Finding::new(DNS_TEMPERROR, format!("{}{src}", auth.temperror.join(", "))));
    }
    if let Some(spf) = &auth.spf {
        match spf.result {
            AuthResult::Fail => out.push(Finding::new(SPF_FAIL, format!("spf=fail {} ({}){src}", spf.domain, spf.detail))),
            AuthResult::SoftFail => out.push(Finding::new(SPF_SOFTFAIL, format!("spf=softfail {} ({}){src}", spf.domain, spf.detail))),
            _ => {}
        }
    }
    if !auth.dkim.iter().any(|d| d.result == AuthResult::Pass) {
        if let Some(d) = auth.dkim.iter().find(|d| d.result == AuthResult::Fail) {
            out.push(Finding::new(DKIM_FAIL, format!("dkim=fail d={} {}{src}", d.domain, d.detail)));
        }
    }
    if let Some(d) = &auth.dmarc {
        if d.result == AuthResult::Fail {
            let p = if d.policy.is_empty() { "no policy".to_string() } else { format!("p={}", d.policy) };
            out.push(Finding::new(DMARC_FAIL, format!("dmarc=fail header.from={} ({p}){src}", d.domain)));
        }
    }
    let Some(from) = facts.from_domain.as_deref() else { return };
    // Without an aligned pass and with a lookup that failed temporarily,
    // nothing can be concluded about the brand: no brand rule (dns.on_error decides).
    if !auth.temperror.is_empty() && !aligned_pass(auth, from) {
        return;
    }
    let from_owner = brands.owner_of(from);
    if let Some(b) = from_owner {
        if !aligned_pass(auth, from) {
            let dm = auth.dmarc.as_ref().map(|d| d.result.as_str()).unwrap_or("none");
            out.push(Finding::new(
                BRAND_DOMAIN_DMARC_FAIL,
                format!("From {from} is a {} domain but has no aligned pass (dmarc={dm}){src}", brands.brands[b].name),
            ));
            return;
        }
    }
    if let Some(claimed) = facts.claimed_brand {
        let authenticated = from_owner == Some(claimed) && aligned_pass(auth, from);
        if !authenticated {
            out.push(Finding::new(
                BRAND_CLAIM_UNAUTHENTICATED,
                format!(
                    "claims {} ({}) without an aligned pass for any {} domain; From {from}{src}",
                    brands.brands[claimed].name,
                    facts.claim_evidence.as_deref().unwrap_or("claim"),
                    brands.brands[claimed].name
                ),
            ));
        }
    }
}
