//! Authentication rules: what SPF, DKIM and DMARC results (from
//! `crate::auth`) say about a message, and the rule that a message claiming a
//! brand must carry a DMARC-aligned pass for one of its domains.

use super::Facts;
use crate::auth::{aligned_pass, header_fields, received_from, AuthResult, AuthResults, OWN_SOURCE};
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
pub const BRAND_DOMAIN_UNSIGNED: RuleId = "BRAND_DOMAIN_UNSIGNED";

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
    RuleDef::new(BRAND_DOMAIN_UNSIGNED, "auth", 5.0, "From is a protected brand's domain, no DKIM signature is by it, and the envelope (MAIL FROM / Return-Path, or a HELO of the brand from another host) is foreign; counted only when DMARC could not be checked"),
    RuleDef::new(DNS_TEMPERROR, "auth", 0.0, "A DNS lookup for SPF/DKIM/DMARC failed temporarily (timeout, SERVFAIL); see dns.on_error"),
];

/// Authentication rules. `auth` is None when no results are known (offline):
/// then nothing is concluded from authentication.
pub fn check(brands: &BrandSet, env: &Envelope, raw: &[u8], auth: Option<&AuthResults>, facts: &Facts, out: &mut Vec<Finding>) {
    // Without a DMARC verdict (offline, or a lookup failed), a brand-domain
    // From that the message itself shows to be sent by someone else still counts.
    let dmarc_known = auth.is_some_and(|a| a.temperror.is_empty());
    let passed = match (auth, facts.from_domain.as_deref()) {
        (Some(a), Some(from)) => aligned_pass(a, from),
        _ => false,
    };
    if !dmarc_known && !passed {
        if let Some(f) = unsigned_brand_domain(brands, env, raw, facts.from_domain.as_deref()) {
            out.push(f);
        }
    }
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

/// The value of tag `tag` in a DKIM-Signature (`d=`, `s=`), lowercased.
fn dkim_tag(value: &str, tag: &str) -> Option<String> {
    value.split(';').find_map(|t| {
        let (k, v) = t.split_once('=')?;
        (k.trim().eq_ignore_ascii_case(tag)).then(|| v.split_whitespace().collect::<String>().to_ascii_lowercase())
    })
}

/// BRAND_DOMAIN_UNSIGNED: From is on a brand's domain, no DKIM-Signature of
/// the message is by that brand, and the message shows who really sent it:
/// a MAIL FROM (or Return-Path) outside the brand, or a HELO naming the
/// brand's domain in the topmost Received from a host whose reverse name is
/// not the brand's. All of it is in the message: no DNS needed.
fn unsigned_brand_domain(brands: &BrandSet, env: &Envelope, raw: &[u8], from: Option<&str>) -> Option<Finding> {
    let from = from?;
    let b = brands.owner_of(from)?;
    let brand = &brands.brands[b];
    let fields = header_fields(raw);
    let ds: Vec<String> =
        fields.iter().filter(|(n, _)| n.eq_ignore_ascii_case("DKIM-Signature")).filter_map(|(_, v)| dkim_tag(v, "d")).collect();
    if ds.iter().any(|d| brand.owns(d)) {
        return None;
    }
    let signed = if ds.is_empty() { "no DKIM signature".to_string() } else { format!("DKIM only by d={}", ds.join(",")) };
    let return_path = || {
        fields
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("Return-Path"))
            .map(|(_, v)| v.trim_matches(|c| c == '<' || c == '>' || c == ' ').to_string())
    };
    let mail_from = env.mail_from.clone().filter(|m| m.contains('@')).or_else(return_path).filter(|m| m.contains('@'));
    if let Some(mf) = mail_from {
        let mfd = mf.rsplit_once('@').map(|(_, d)| d.to_ascii_lowercase()).unwrap_or_default();
        if !mfd.is_empty() && !brand.owns(&mfd) && registrable(&mfd) != registrable(from) {
            return Some(Finding::new(
                BRAND_DOMAIN_UNSIGNED,
                format!("From {from} is a {} domain with {signed}, sent with MAIL FROM domain {mfd} (DMARC not checked)", brand.name),
            ));
        }
    }
    // the SMTP client as the MTA saw it (HELO and its reverse name), else the topmost Received's from-clause
    let received = fields.iter().find(|(n, _)| n.eq_ignore_ascii_case("Received")).map(|(_, v)| v.as_str());
    let (helo, rdns) = match &env.helo {
        Some(h) => (h.to_ascii_lowercase(), env.client_name.clone().map(|n| n.to_ascii_lowercase())),
        None => {
            let v = received?;
            let rdns = v.split_once('(').and_then(|(_, after)| {
                after.split(|c: char| c.is_whitespace() || c == ')' || c == '[').next().map(|h| h.to_ascii_lowercase())
            });
            (received_from(v)?, rdns)
        }
    };
    if !brand.owns(&helo) {
        return None;
    }
    match rdns {
        Some(r) if !r.is_empty() && !brand.owns(&r) => Some(Finding::new(
            BRAND_DOMAIN_UNSIGNED,
            format!("From {from} is a {} domain with {signed}, HELO {helo} from host {r} (DMARC not checked)", brand.name),
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{DmarcSummary, MethodResult};
    use crate::config::builtin_brands;

    fn run(env: &Envelope, raw: &str, auth: Option<&AuthResults>) -> Vec<Finding> {
        let brands = BrandSet::new(builtin_brands());
        let from =
            raw.lines().find_map(|l| l.strip_prefix("From: ")).and_then(|f| f.rsplit_once('@')).map(|(_, d)| d.trim_end_matches('>'));
        let facts = Facts { from_domain: from.map(str::to_string), ..Default::default() };
        let mut out = Vec::new();
        check(&brands, env, raw.as_bytes(), auth, &facts, &mut out);
        out
    }

    fn unsigned(out: &[Finding]) -> Option<&Finding> {
        out.iter().find(|f| f.rule == BRAND_DOMAIN_UNSIGNED)
    }

    const SPOOF: &str = "Received: from mail.shop.example (mail.shop.example [203.0.113.7]) by mx.rcpt.example; Wed, 2 Dec 2026 06:00:00 +0000\r\nDKIM-Signature: v=1; a=rsa-sha256; d=shop.example; s=s1; h=from; bh=x; b=y\r\nFrom: noreply@tm.openai.com\r\n\r\nx\r\n";
    const SIGNED: &str = "DKIM-Signature: v=1; a=rsa-sha256; d=tm.openai.com; s=mte1; h=from; bh=x; b=y\r\nDKIM-Signature: v=1; d=mandrillapp.com; s=mte1; bh=x; b=y\r\nFrom: noreply@tm.openai.com\r\n\r\nx\r\n";

    fn env(mail_from: &str) -> Envelope {
        Envelope { mail_from: Some(mail_from.into()), ..Default::default() }
    }

    #[test]
    fn brand_domain_with_a_foreign_envelope_and_no_brand_signature_counts_offline() {
        let out = run(&env("bounce@shop.example"), SPOOF, None);
        let f = unsigned(&out).expect("offline spoof of the brand's own domain");
        assert!(
            f.evidence.contains("tm.openai.com") && f.evidence.contains("d=shop.example") && f.evidence.contains("shop.example"),
            "{f:?}"
        );
        // no signature at all, Return-Path foreign (no envelope known)
        let raw = "Return-Path: <x@attacker.example>\r\nFrom: security@openai.com\r\n\r\nx\r\n";
        assert!(unsigned(&run(&Envelope::default(), raw, None)).unwrap().evidence.contains("no DKIM signature"));
    }

    #[test]
    fn a_signature_by_the_brand_or_an_own_envelope_is_not_a_spoof() {
        assert!(unsigned(&run(&env("bounce@mandrillapp.com"), SIGNED, None)).is_none(), "signed by tm.openai.com");
        assert!(unsigned(&run(&env("bounce@em.openai.com"), SPOOF.replace("mail.shop", "x").as_str(), None)).is_none());
        // not a brand domain: nothing
        let raw = SPOOF.replace("tm.openai.com", "shop.example");
        assert!(unsigned(&run(&env("bounce@other.example"), &raw, None)).is_none());
    }

    #[test]
    fn helo_of_the_brand_from_another_host() {
        let e = Envelope { helo: Some("mail.openai.com".into()), client_name: Some("unknown".into()), ..Default::default() };
        let raw = "From: security@openai.com\r\n\r\nx\r\n";
        assert!(unsigned(&run(&e, raw, None)).unwrap().evidence.contains("HELO mail.openai.com from host unknown"));
        let e = Envelope { helo: Some("mail.openai.com".into()), client_name: Some("mx1.openai.com".into()), ..Default::default() };
        assert!(unsigned(&run(&e, raw, None)).is_none());
        // offline, from the topmost Received
        let raw = "Received: from mail.openai.com (vps-12.hoster.example [198.51.100.3]) by mx.rcpt.example; Wed, 2 Dec 2026 06:00:00 +0000\r\nFrom: security@openai.com\r\n\r\nx\r\n";
        assert!(unsigned(&run(&Envelope::default(), raw, None)).unwrap().evidence.contains("from host vps-12.hoster.example"));
    }

    #[test]
    fn live_dmarc_settles_it() {
        let pass = AuthResults {
            source: OWN_SOURCE.into(),
            dmarc: Some(DmarcSummary { result: AuthResult::Pass, domain: "tm.openai.com".into(), policy: "reject".into() }),
            ..Default::default()
        };
        let out = run(&env("bounce@shop.example"), SPOOF, Some(&pass));
        assert!(unsigned(&out).is_none() && !out.iter().any(|f| f.rule == BRAND_DOMAIN_DMARC_FAIL), "{out:?}");
        // a known DMARC fail: the strong rule, not the weak one
        let fail = AuthResults {
            dmarc: Some(DmarcSummary { result: AuthResult::Fail, domain: "tm.openai.com".into(), policy: "reject".into() }),
            ..pass.clone()
        };
        let out = run(&env("bounce@shop.example"), SPOOF, Some(&fail));
        assert!(unsigned(&out).is_none() && out.iter().any(|f| f.rule == BRAND_DOMAIN_DMARC_FAIL), "{out:?}");
        // DNS failed: the structure counts
        let temp = AuthResults {
            spf: Some(MethodResult { result: AuthResult::TempError, domain: "shop.example".into(), detail: "mailfrom".into() }),
            dmarc: Some(DmarcSummary { result: AuthResult::TempError, domain: "tm.openai.com".into(), policy: String::new() }),
            temperror: vec!["dmarc _dmarc.tm.openai.com".into()],
            ..pass
        };
        let out = run(&env("bounce@shop.example"), SPOOF, Some(&temp));
        assert!(unsigned(&out).is_some() && !out.iter().any(|f| f.rule == BRAND_DOMAIN_DMARC_FAIL), "{out:?}");
    }
}
