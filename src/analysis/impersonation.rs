//! The composite impersonation judgement: **claim × authentication × call to action**.
//!
//! A phishing message that imitates a brand does three things at once: it
//! *claims* to be the brand, it *cannot authenticate* as the brand (it is not
//! sent by the brand's mail servers), and it asks the reader to *act* (follow
//! a link, open an attachment, scan a code, call a number, reply with a
//! secret). Each alone is common in legitimate mail; together they are the
//! shape of impersonation whatever the brand, language or pretext. This
//! module judges the three factors over what the other detectors found and
//! reports each as a finding with evidence (weight 0 by default: context), and
//! the composite as its own rule, tuned like every other:
//!
//! - [`IMPERSONATION`]: a **strong** claim (the brand in the display name, a
//!   lookalike From or Reply-To domain) or a **moderate** one (two weaker
//!   places: Subject, body sign-off, HTML title, image alt text or file name,
//!   attachment name), not authenticated as the brand, with a call to action.
//!   It stands in for `BRAND_CLAIM_UNAUTHENTICATED` (the same claim is not
//!   counted twice), so the verdict is the same offline and live.
//! - [`BRAND_SPOOF_CALL_TO_ACTION`]: From is the brand's own domain, the
//!   message has no aligned DMARC pass for it (`BRAND_DOMAIN_DMARC_FAIL`), and
//!   it carries a call to action: with the defaults this reaches `reject`.
//!
//! "Not authenticated as the brand": a From domain the brand does not own
//! can never authenticate as the brand, so that is known without DNS. A From
//! on the brand's own domain is judged only from authentication results (own
//! checks or a trusted upstream); offline or on a DNS temperror nothing is
//! concluded here.

use super::content::{AttachmentKind, Content, LinkSource};
use super::{authn, content, Facts};
use crate::auth::AuthResults;
use crate::brand::BrandSet;
use crate::rule::{Finding, RuleDef, RuleId};

pub const IMPERSONATION: RuleId = "IMPERSONATION";
pub const BRAND_SPOOF_CALL_TO_ACTION: RuleId = "BRAND_SPOOF_CALL_TO_ACTION";
pub const IMPERSONATION_CLAIM: RuleId = "IMPERSONATION_CLAIM";
pub const IMPERSONATION_AUTH: RuleId = "IMPERSONATION_AUTH";
pub const CALL_TO_ACTION: RuleId = "CALL_TO_ACTION";

/// Every rule this module emits.
#[rustfmt::skip]
pub static RULES: &[RuleDef] = &[
    RuleDef::new(IMPERSONATION, "impersonation", 6.0, "Composite: the message claims a brand (strong claim, or two weaker places), is not authenticated as the brand, and asks the reader to act (link, form, attachment, QR code, phone number, reply)"),
    RuleDef::new(BRAND_SPOOF_CALL_TO_ACTION, "impersonation", 5.0, "Composite: From is a protected brand's own domain without an aligned DMARC pass, and the message asks the reader to act"),
    RuleDef::new(IMPERSONATION_CLAIM, "impersonation", 0.0, "Factor: where and how strongly the message claims to be a brand (context for IMPERSONATION)"),
    RuleDef::new(IMPERSONATION_AUTH, "impersonation", 0.0, "Factor: the brand claim's authentication (aligned pass, none, fail, temperror, or a From the brand does not own)"),
    RuleDef::new(CALL_TO_ACTION, "impersonation", 0.0, "Factor: what the message asks the reader to do (links to hosts the brand does not own, forms, attachments, QR codes, phone numbers, replies)"),
];

/// One place a message claims a brand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimPlace {
    /// Index into the brand set.
    pub brand: usize,
    /// "display name", "lookalike From domain", "Subject", "body sign-off" …
    pub place: &'static str,
    /// A strong place claims on its own; weak places need company.
    pub strong: bool,
}

/// How strongly a message claims one brand.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Strength {
    /// One weak place: a mention, not a claim.
    Weak,
    /// Two or more weak places, one of them speaking as the brand ([`SPEAKS_AS`]).
    Moderate,
    /// A strong place.
    Strong,
}

impl Strength {
    pub fn as_str(self) -> &'static str {
        match self {
            Strength::Weak => "weak",
            Strength::Moderate => "moderate",
            Strength::Strong => "strong",
        }
    }
}

/// Weak places where the message speaks *as* the brand (its signature, its logo, its file),
/// unlike the Subject and the HTML title, which a newsletter *about* the brand fills too (and
/// usually with the same words). A moderate claim needs one of them.
const SPEAKS_AS: &[&str] = &["body sign-off", "image alt text", "image file name", "attachment name"];

/// The brand claimed most strongly, with the strength and its places.
fn strongest_claim(places: &[ClaimPlace]) -> Option<(usize, Strength, Vec<&'static str>)> {
    let mut best: Option<(usize, Strength, Vec<&'static str>)> = None;
    // each brand once, in the order first claimed (the first claimed wins a tie)
    let mut brands: Vec<usize> = Vec::new();
    for p in places {
        if !brands.contains(&p.brand) {
            brands.push(p.brand);
        }
    }
    for b in brands {
        let of: Vec<&ClaimPlace> = places.iter().filter(|p| p.brand == b).collect();
        let mut names: Vec<&'static str> = Vec::new();
        for p in &of {
            if !names.contains(&p.place) {
                names.push(p.place);
            }
        }
        let strength = if of.iter().any(|p| p.strong) {
            Strength::Strong
        } else if names.len() >= 2 && names.iter().any(|n| SPEAKS_AS.contains(n)) {
            Strength::Moderate
        } else {
            Strength::Weak
        };
        if best.as_ref().is_none_or(|(_, s, _)| strength > *s) {
            best = Some((b, strength, names));
        }
    }
    best
}

/// Claim places found in what the message shows: a brand named in the HTML
/// title, in image alt text or image file names, or in an attachment's name.
pub fn content_claims(brands: &BrandSet, content: &Content, out: &mut Vec<ClaimPlace>) {
    if let Some(hit) = content.title.as_deref().and_then(|t| brands.named_in(t)) {
        out.push(ClaimPlace { brand: hit.brand, place: "HTML title", strong: false });
    }
    if let Some(hit) = content.image_alts.iter().take(20).find_map(|a| brands.named_in(a)) {
        out.push(ClaimPlace { brand: hit.brand, place: "image alt text", strong: false });
    }
    for a in content.attachments.iter().take(20) {
        // "OpenAI_Invoice.pdf", "paypal-secure.html": the name read as words
        let words = a.name.replace(['_', '-', '.', '+'], " ");
        if let Some(hit) = brands.named_in(&words) {
            let place = if a.kind == AttachmentKind::Image { "image file name" } else { "attachment name" };
            out.push(ClaimPlace { brand: hit.brand, place, strong: false });
        }
    }
}

/// What the message asks the reader to do, outside the claimed brand's
/// domains: up to a few items of evidence, empty when nothing.
pub fn calls_to_action(brands: &BrandSet, brand: usize, content: &Content, found: &[Finding]) -> Vec<String> {
    let b = &brands.brands[brand];
    let mut out = Vec::new();
    let mut hosts: Vec<&str> = Vec::new();
    // a forwarded message's links are what was forwarded, not this sender's ask
    for l in content.links.iter().filter(|l| l.source.clickable() && !l.forwarded) {
        let Some(host) = l.host.as_deref() else {
            continue;
        };
        if b.owns(host) || hosts.contains(&host) {
            continue;
        }
        hosts.push(host);
        let how = match &l.source {
            LinkSource::FormAction => "form posting to",
            LinkSource::Qr(_) => "QR code to",
            LinkSource::Pdf(_) => "link in a PDF to",
            LinkSource::PlainText => "URL to",
            _ => "link to",
        };
        if hosts.len() <= 3 {
            out.push(format!("{how} {host}"));
        }
    }
    if hosts.len() > 3 {
        out.push(format!("{} more hosts", hosts.len() - 3));
    }
    let attached: Vec<&str> = content
        .attachments
        .iter()
        .filter(|a| !matches!(a.kind, AttachmentKind::Image | AttachmentKind::Other) || a.name.to_ascii_lowercase().ends_with(".svg"))
        .map(|a| a.name.as_str())
        .take(2)
        .collect();
    if !attached.is_empty() {
        out.push(format!("attachment {}", attached.join(", ")));
    }
    if let Some(p) = content.first_phone() {
        out.push(format!("phone number {p}"));
    }
    if let Some(m) = content.mailto.iter().find(|m| crate::domain::domain_of(m).is_none_or(|d| !b.owns(&d))) {
        out.push(format!("reply to <{m}>"));
    }
    // an ask for a secret, or replies steered away from the sender
    const ASKS: &[RuleId] = &[
        content::LURE_PASSWORD,
        content::LURE_API_KEY,
        content::LURE_MFA_CODE,
        content::LURE_WALLET,
        content::LURE_CALLBACK,
        content::REPLY_TO_FREEMAIL_BRAND_CLAIM,
        content::REPLY_TO_OUTSIDE_BRAND,
    ];
    if let Some(f) = found.iter().find(|f| ASKS.contains(&f.rule)) {
        out.push(format!("{} ({})", f.rule, shorten(&f.evidence, 80)));
    }
    out
}

/// Adds the factor findings and the composite rule for one message.
pub fn check(brands: &BrandSet, facts: &Facts, content: Option<&Content>, auth: Option<&AuthResults>, out: &mut Vec<Finding>) {
    let mut places = facts.claims.clone();
    if let Some(c) = content {
        content_claims(brands, c, &mut places);
    }
    let empty = Content::default();
    let content = content.unwrap_or(&empty);
    let from = facts.from_domain.as_deref();

    // From on the brand's own domain without an aligned pass: a spoof of the domain itself.
    // (BRAND_DOMAIN_UNSIGNED: offline or on a temperror, the structural form of the same spoof)
    if out.iter().any(|f| f.rule == authn::BRAND_DOMAIN_DMARC_FAIL || f.rule == authn::BRAND_DOMAIN_UNSIGNED) {
        if let Some(owner) = from.and_then(|d| brands.owner_of(d)) {
            let cta = calls_to_action(brands, owner, content, out);
            note_phone_limit(content, out);
            if !cta.is_empty() {
                out.push(Finding::new(CALL_TO_ACTION, cta.join("; ")));
                out.push(Finding::new(
                    BRAND_SPOOF_CALL_TO_ACTION,
                    format!("From {} is {}'s but not authenticated, and asks: {}", from.unwrap_or(""), brands.brands[owner].name, cta[0]),
                ));
            }
        }
        return;
    }

    let Some((brand, strength, where_)) = strongest_claim(&places) else {
        return;
    };
    let b = &brands.brands[brand];
    // From on the brand's own domain: authenticated (the brand speaks), or judged by
    // BRAND_DOMAIN_DMARC_FAIL above (live), or unknown (offline, temperror: nothing concluded)
    if from.is_some_and(|d| b.owns(d)) {
        return;
    }
    let auth_state = match from {
        Some(d) => format!("From {d} is not one of {}'s domains: it cannot authenticate as {}", b.name, b.name),
        None => format!("From has no domain: it cannot authenticate as {}", b.name),
    };
    if strength == Strength::Weak {
        return;
    }
    let cta = calls_to_action(brands, brand, content, out);
    note_phone_limit(content, out);
    if cta.is_empty() {
        return;
    }
    // the factors are shown when the composite fires: they say why
    out.push(Finding::new(IMPERSONATION_CLAIM, format!("{} claim of {}: {}", strength.as_str(), b.name, where_.join(", "))));
    let dmarc = auth.and_then(|a| a.dmarc.as_ref()).map(|d| format!(" (dmarc={} for {})", d.result.as_str(), d.domain)).unwrap_or_default();
    out.push(Finding::new(IMPERSONATION_AUTH, format!("{auth_state}{dmarc}")));
    out.push(Finding::new(CALL_TO_ACTION, cta.join("; ")));
    // the composite stands in for the claim-not-authenticated rule: one claim counts once
    out.retain(|f| f.rule != authn::BRAND_CLAIM_UNAUTHENTICATED);
    out.push(Finding::new(
        IMPERSONATION,
        format!("{} claim of {} ({}), not authenticated as {}, asks: {}", strength.as_str(), b.name, where_.join(", "), b.name, cta[0]),
    ));
}

/// The phone-number bound, when reading the calls to action reached it: in `CONTENT_LIMIT_REACHED`
/// with the other limits of the message (one finding).
fn note_phone_limit(content: &Content, out: &mut Vec<Finding>) {
    let Some(hit) = content.phone_limit_hit() else { return };
    match out.iter_mut().find(|f| f.rule == content::CONTENT_LIMIT_REACHED) {
        Some(f) => {
            f.evidence.push_str(", ");
            f.evidence.push_str(&hit);
        }
        None => out.push(Finding::new(content::CONTENT_LIMIT_REACHED, hit)),
    }
}

/// At most `n` characters of `s`, with an ellipsis when cut.
fn shorten(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(n).collect::<String>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::{analyze, Engine, Envelope, MessageInput};
    use crate::auth::{AuthResult, DmarcSummary};
    use crate::config::Config;
    use crate::verdict::Action;

    fn run(raw: &str, auth: Option<&AuthResults>) -> (Action, Vec<&'static str>) {
        let engine = Engine::new(Config::default()).unwrap();
        let env = Envelope::default();
        let (v, _) =
            analyze(&engine, &MessageInput { envelope: &env, raw: raw.as_bytes(), truncated: false, headers_truncated: false, auth });
        (v.action, v.rule_ids())
    }

    fn dmarc_pass(domain: &str) -> AuthResults {
        let dmarc = DmarcSummary { result: AuthResult::Pass, domain: domain.into(), policy: "reject".into() };
        AuthResults { source: crate::auth::OWN_SOURCE.into(), dmarc: Some(dmarc), ..Default::default() }
    }

    const CLAIM: &str = "From: \"OpenAI\" <team@alerts.example>\r\nSubject: Update\r\nContent-Type: text/plain\r\n\r\nHello,\r\n";

    #[test]
    fn strong_claim_with_a_foreign_link_is_held_and_counts_once() {
        let raw = format!("{CLAIM}Please review: https://review-session.example/x\r\n");
        let (action, ids) = run(&raw, None);
        assert_eq!(action, Action::Quarantine, "{ids:?}");
        assert!(ids.contains(&IMPERSONATION) && ids.contains(&CALL_TO_ACTION) && ids.contains(&IMPERSONATION_CLAIM), "{ids:?}");
        // live: the unauthenticated claim rule is subsumed, the verdict does not change
        let auth = dmarc_pass("alerts.example");
        let (live, ids) = run(&raw, Some(&auth));
        assert_eq!(live, Action::Quarantine, "{ids:?}");
        assert!(!ids.contains(&authn::BRAND_CLAIM_UNAUTHENTICATED), "{ids:?}");
    }

    #[test]
    fn a_link_to_the_brands_own_domain_is_not_a_call_to_action() {
        let (action, ids) = run(&format!("{CLAIM}See https://platform.openai.com/settings\r\n"), None);
        assert_eq!(action, Action::Tag, "{ids:?}");
        assert!(!ids.contains(&IMPERSONATION), "{ids:?}");
    }

    #[test]
    fn one_weak_place_is_a_mention_not_a_claim() {
        let raw = "From: Newsletter <news@weekly.example>\r\nSubject: What OpenAI shipped this week\r\n\r\nRead more: https://weekly.example/a\r\n";
        let (_, ids) = run(raw, None);
        assert!(!ids.contains(&IMPERSONATION), "{ids:?}");
    }

    #[test]
    fn the_brand_authenticated_on_its_own_domain_is_not_judged() {
        let raw = "From: \"OpenAI\" <noreply@tm.openai.com>\r\nSubject: Update\r\n\r\nSee https://status-provider.example/x\r\n";
        let auth = dmarc_pass("tm.openai.com");
        let (action, ids) = run(raw, Some(&auth));
        assert_eq!(action, Action::Accept, "{ids:?}");
    }

    #[test]
    fn brand_in_html_title_and_image_alt_is_a_moderate_claim() {
        let raw = "From: Accounts <accounts@notice-center.example>\r\nSubject: Notice\r\nContent-Type: text/html\r\n\r\n\
            <html><head><title>OpenAI account notice</title></head><body><img src=\"https://cdn.notice-center.example/l.png\" alt=\"OpenAI\" width=200 height=60>\
            <p>Please review the notice on your account today.</p><a href=\"https://notice-center.example/r\">Review</a></body></html>\r\n";
        let (_, ids) = run(raw, None);
        assert!(ids.contains(&IMPERSONATION), "{ids:?}");
    }

    #[test]
    fn claim_strength_orders_strong_over_moderate_over_weak() {
        let p = |place, strong| ClaimPlace { brand: 0, place, strong };
        assert_eq!(strongest_claim(&[p("Subject", false)]).map(|c| c.1), Some(Strength::Weak));
        assert_eq!(strongest_claim(&[p("Subject", false), p("body sign-off", false)]).map(|c| c.1), Some(Strength::Moderate));
        // a newsletter about the brand: its Subject and title say the same thing
        assert_eq!(strongest_claim(&[p("Subject", false), p("HTML title", false)]).map(|c| c.1), Some(Strength::Weak));
        assert_eq!(strongest_claim(&[p("Subject", false), p("display name", true)]).map(|c| c.1), Some(Strength::Strong));
        assert_eq!(strongest_claim(&[]), None);
    }
}
