//! Sender identity: From display name, Subject and From domain against the
//! protected brands.

use super::{Engine, Facts};
use crate::auth::{dmarc_or_dkim_pass, AuthResults};
use crate::domain::registrable;
use crate::rule::{Finding, RuleDef, RuleId};
use mail_parser::Message;

pub const BRAND_NAME_FOREIGN_DOMAIN: RuleId = "BRAND_NAME_FOREIGN_DOMAIN";
pub const BRAND_SUBJECT_FOREIGN_DOMAIN: RuleId = "BRAND_SUBJECT_FOREIGN_DOMAIN";
pub const DISPLAY_NAME_ADDRESS_MISMATCH: RuleId = "DISPLAY_NAME_ADDRESS_MISMATCH";
pub const DUPLICATE_FROM: RuleId = "DUPLICATE_FROM";
pub const NO_FROM_ADDRESS: RuleId = "NO_FROM_ADDRESS";

/// Every rule this module emits.
#[rustfmt::skip]
pub static RULES: &[RuleDef] = &[
    RuleDef::new(BRAND_NAME_FOREIGN_DOMAIN, "sender", 6.0, "From display name names a protected brand, but the From domain is not one of the brand's domains"),
    RuleDef::new(BRAND_SUBJECT_FOREIGN_DOMAIN, "sender", 4.0, "Subject names a protected brand, the From domain is not one of the brand's, and the display name does not already claim it"),
    RuleDef::new(DISPLAY_NAME_ADDRESS_MISMATCH, "sender", 3.0, "From display name contains an e-mail address whose domain differs from the real From domain"),
    RuleDef::new(DUPLICATE_FROM, "sender", 3.0, "More than one From header field (RFC 5322 allows one): clients disagree on which to show"),
    RuleDef::new(NO_FROM_ADDRESS, "sender", 1.0, "Message has no parseable From address"),
];

/// Longest display name or Subject looked at: RFC 5322 lines end at 998
/// characters; anything longer is hostile and the start is what a reader sees.
const MAX_NAME_CHARS: usize = 998;

fn bounded(s: &str) -> String {
    s.chars().take(MAX_NAME_CHARS).collect()
}

/// `body_text`: the message's first text body (`Message::body_text(0)`), for the sign-off.
pub fn check(
    engine: &Engine,
    msg: &Message,
    body_text: Option<&str>,
    auth: Option<&AuthResults>,
    out: &mut Vec<Finding>,
    facts: &mut Facts,
) {
    let brands = &engine.brands;
    let subject = bounded(msg.subject().unwrap_or(""));
    let from_fields = msg.headers().iter().filter(|h| matches!(h.name, mail_parser::HeaderName::From)).count();
    if from_fields > 1 {
        out.push(Finding::new(DUPLICATE_FROM, format!("{from_fields} From header fields")));
    }
    facts.subject = Some(subject.clone());
    // Malformed From headers ("Brand team ,_<x@evil>") parse as several
    // entries: the address is the first entry that has one, the display name
    // is every name in the header.
    let entries: Vec<_> = msg.from().map(|a| a.iter().collect()).unwrap_or_default();
    let name = bounded(&entries.iter().filter_map(|a| a.name()).map(str::trim).filter(|n| !n.is_empty()).collect::<Vec<_>>().join(" "));
    // A display name that names a brand over no usable address ("Facebook" <>) claims the brand
    // from nowhere: the claim stands, the address cannot authenticate it.
    let claim_without_domain = |what: String, out: &mut Vec<Finding>, facts: &mut Facts| {
        if let Some(hit) = brands.named_in(&name) {
            let b = &brands.brands[hit.brand];
            facts.brand.get_or_insert(b.name.clone());
            facts.claim(hit.brand, "display name");
            out.push(Finding::new(BRAND_NAME_FOREIGN_DOMAIN, format!("{name:?}: names {}, {what}", b.name)));
        }
    };
    let Some(address) = entries.iter().filter_map(|a| a.address()).map(|a| a.trim().to_ascii_lowercase()).find(|a| a.contains('@')) else {
        out.push(Finding::new(NO_FROM_ADDRESS, format!("no From address (display name {name:?})")));
        claim_without_domain("no From address".into(), out, facts);
        return;
    };
    let Some(host) = address.rsplit_once('@').map(|(_, d)| d.trim_end_matches('.').to_string()).filter(|d| !d.is_empty()) else {
        out.push(Finding::new(NO_FROM_ADDRESS, format!("From {address:?} has no domain")));
        claim_without_domain(format!("From {address:?} has no domain"), out, facts);
        return;
    };
    let domain = registrable(&host).unwrap_or_else(|| host.clone());
    facts.from_domain = Some(host.clone());
    let owner = brands.owner_of(&host);
    vouch(engine, &host, owner, auth, facts);

    // A claim by the brand itself, one of its authenticated senders, or the
    // organisation's own authenticated mail is not "foreign".
    let foreign = |b: usize, facts: &Facts| owner != Some(b) && !facts.vouched.contains(&b) && !facts.org_authenticated;
    // The body speaks as the brand ("The OpenAI Team" as a sign-off): a claim, not a mention.
    let signed = body_text.and_then(|text| brands.signed_as(text, 600));
    let name_hit = brands.named_in(&name);
    let subject_hit = brands.named_in(&subject);
    for hit in [&name_hit, &subject_hit, &signed].into_iter().flatten() {
        facts.brand.get_or_insert(brands.brands[hit.brand].name.clone());
    }
    // One claim counts once, however many places repeat it: the display name's
    // finding lists the Subject and the sign-off; the Subject alone is its own finding.
    // "OpenAI via Docusign" <dse@docusign.net> with a DMARC pass for docusign.net: the
    // platform named after "via" really sent it, for one of its accounts that goes by
    // the brand's name. Whoever owns that account is unknown, so the name still counts
    // (BRAND_NAME_FOREIGN_DOMAIN), but it is no claim to *be* the brand: the reader is
    // told the carrier, and the carrier authenticates (no IMPERSONATION claim place).
    let relayed = name_hit.is_some() && via_authenticated_platform(&name, &host, auth);
    if let Some(hit) = &name_hit {
        let b = &brands.brands[hit.brand];
        if foreign(hit.brand, facts) {
            if !relayed {
                facts.claim(hit.brand, "display name");
            }
            let mut also = Vec::new();
            if subject_hit.as_ref().is_some_and(|s| s.brand == hit.brand) {
                let shown: String = subject.chars().take(80).collect();
                also.push(format!("Subject {shown:?}"));
            }
            if signed.as_ref().is_some_and(|s| s.brand == hit.brand) {
                also.push("body sign-off".to_string());
            }
            let also = if also.is_empty() { String::new() } else { format!("; also claimed in {}", also.join(", ")) };
            let via = if relayed { format!(" (an account of {domain}, which authenticates)") } else { String::new() };
            out.push(Finding::new(
                BRAND_NAME_FOREIGN_DOMAIN,
                format!("{name:?} <{address}>: names {}, domain {domain}{via}{also}", b.name),
            ));
        } else if owner == Some(hit.brand) {
            // the brand's own domain: a claim that its DMARC must back (authn)
            facts.claim(hit.brand, "display name");
        }
    }
    if let Some(hit) = &subject_hit {
        let b = &brands.brands[hit.brand];
        let counted = name_hit.as_ref().is_some_and(|n| n.brand == hit.brand);
        if foreign(hit.brand, facts) && !(counted && relayed) {
            // a place of the claim for the composite judgement, but one finding per claim
            facts.place(hit.brand, "Subject", false);
        }
        if foreign(hit.brand, facts) && !counted {
            let shown: String = subject.chars().take(80).collect();
            out.push(Finding::new(BRAND_SUBJECT_FOREIGN_DOMAIN, format!("Subject {shown:?}: names {}, From domain {domain}", b.name)));
        }
    }
    if let Some(hit) = &signed {
        if (foreign(hit.brand, facts) && !relayed) || owner == Some(hit.brand) {
            facts.claim(hit.brand, "body sign-off");
        }
    }
    // "support@openai.com" <x@evil.example>: an address in the display name
    // that is not the real one.
    for word in name.split(|c: char| c.is_whitespace() || matches!(c, '<' | '>' | '(' | ')' | '"' | '\'' | ',')) {
        if let Some((_, d)) = word.rsplit_once('@') {
            let d = d.trim_end_matches('.').to_ascii_lowercase();
            if d.contains('.') && registrable(&d).is_some_and(|r| r != domain) {
                out.push(Finding::new(DISPLAY_NAME_ADDRESS_MISMATCH, format!("display name shows {word}, real address <{address}>")));
                break;
            }
        }
    }
}

/// `"<name> via <Platform>"` where Platform is the From's own organisation
/// (`docusign` for `docusign.net`) and the From passes DMARC or aligned DKIM:
/// the display-name convention of platforms that send for their accounts
/// (e-signature, groups, lists rewriting From for DMARC).
fn via_authenticated_platform(name: &str, host: &str, auth: Option<&AuthResults>) -> bool {
    let Some((_, platform)) = name.to_lowercase().rsplit_once(" via ").map(|(a, p)| (a.to_string(), p.trim().to_string())) else {
        return false;
    };
    let org = registrable(host).unwrap_or_else(|| host.to_string());
    let label = org.split('.').next().unwrap_or("");
    !label.is_empty()
        && crate::brand::fold_key(&platform) == crate::brand::fold_key(label)
        && auth.is_some_and(|a| dmarc_or_dkim_pass(a, host))
}

/// Which brands the From authenticates as (`Facts::vouched`), and whether it
/// is the organisation's own authenticated mail. Only a DMARC pass or a DKIM
/// pass aligned with the From domain counts (SPF alone does not: a shared
/// platform's MAIL FROM is everyone's); without results (offline) nothing does.
fn vouch(engine: &Engine, host: &str, owner: Option<usize>, auth: Option<&AuthResults>, facts: &mut Facts) {
    let Some(auth) = auth else { return };
    if !dmarc_or_dkim_pass(auth, host) {
        return;
    }
    let how = |what: &str| {
        let by =
            if auth.dmarc.as_ref().is_some_and(|d| d.result == crate::auth::AuthResult::Pass) { "dmarc=pass" } else { "aligned dkim=pass" };
        format!("From {host} {what}, {by}")
    };
    for (i, b) in engine.brands.brands.iter().enumerate() {
        if owner == Some(i) {
            facts.vouched.push(i);
            facts.vouched_evidence.get_or_insert_with(|| how(&format!("is a {} domain", b.name)));
        } else if b.sends_via(host) {
            facts.vouched.push(i);
            facts.vouched_evidence.get_or_insert_with(|| how(&format!("is a {} sender", b.name)));
        }
    }
    let org = &engine.config.org.domains;
    let h = host.trim_end_matches('.').to_ascii_lowercase();
    if org.iter().any(|o| h == *o || h.ends_with(&format!(".{o}"))) {
        facts.org_authenticated = true;
    }
}

#[cfg(test)]
mod tests {
    use crate::analysis::{analyze, Engine, Envelope, MessageInput};
    use crate::config::Config;
    use crate::verdict::Action;

    fn run(headers: &str) -> (Action, Vec<&'static str>) {
        let engine = Engine::new(Config::default()).unwrap();
        let raw = format!("{headers}\r\n\r\nHello.\r\n");
        let env = Envelope::default();
        let (v, _) =
            analyze(&engine, &MessageInput { envelope: &env, raw: raw.as_bytes(), truncated: false, headers_truncated: false, auth: None });
        (v.action, v.rule_ids())
    }

    #[test]
    fn display_name_claims_brand_from_foreign_domain() {
        let (a, r) = run("From: \"OpenAI Billing\" <billing@example.net>\r\nSubject: Your invoice");
        assert_eq!((a, r), (Action::Tag, vec!["BRAND_NAME_FOREIGN_DOMAIN"]));
    }

    #[test]
    fn display_name_and_subject_claim_brand() {
        let (a, r) = run("From: \"OpenAI Security\" <security@mail-notify.example>\r\nSubject: OpenAI: unusual sign-in");
        // one claim counts once: the Subject is evidence of the display-name finding, not a second finding;
        // the subject's wording is also an account-threat lure (content family)
        assert_eq!((a, r), (Action::Tag, vec!["BRAND_NAME_FOREIGN_DOMAIN", "LURE_ACCOUNT_THREAT"]));
    }

    #[test]
    fn combosquat_sender_domain_with_brand_name_is_held() {
        let (a, r) = run("From: \"OpenAI Security\" <security@openai-help.net>\r\nSubject: OpenAI API key revoked");
        // 6 (name, Subject counted once) + 5 (lookalike From): the composite of claim × call to action decides reject
        assert_eq!(a, Action::Quarantine);
        assert_eq!(r, vec!["BRAND_NAME_FOREIGN_DOMAIN", "LOOKALIKE_FROM_DOMAIN"]);
    }

    #[test]
    fn brand_as_subdomain_of_foreign_domain() {
        let (_, r) = run("From: Support <help@openai.com.secure-login.io>\r\nSubject: hi");
        assert_eq!(r, vec!["LOOKALIKE_FROM_DOMAIN"]);
    }

    #[test]
    fn real_brand_domain_is_not_a_finding() {
        let (a, r) = run("From: \"OpenAI\" <noreply@tm.openai.com>\r\nSubject: Your OpenAI API usage");
        assert_eq!((a, r), (Action::Accept, vec![]));
    }

    #[test]
    fn homoglyph_display_name_is_caught() {
        let (a, _) = run("From: =?utf-8?b?0J5wZW5BSQ==?= <x@example.net>\r\nSubject: notice");
        assert_eq!(a, Action::Tag);
    }

    #[test]
    fn openairinterface_mailing_list_is_clean() {
        let (a, r) = run("From: \"Jane via USRP-users\" <usrp-users@lists.ettus.com>\r\nSubject: [USRP-users] OpenAirInterface with X310");
        assert_eq!((a, r), (Action::Accept, vec![]));
    }

    #[test]
    fn address_in_display_name_differs_from_real_one() {
        let (_, r) = run("From: \"support@paypal.com\" <x@evil.example>\r\nSubject: hi");
        assert_eq!(r, vec!["DISPLAY_NAME_ADDRESS_MISMATCH"]);
    }

    #[test]
    fn malformed_from_with_stray_comma_still_yields_name_and_address() {
        let (a, r) = run("From: OpenAI account team ,_<no-reply@access-accsecurity.com>\r\nSubject: hi");
        assert_eq!((a, r), (Action::Tag, vec!["BRAND_NAME_FOREIGN_DOMAIN"]));
    }

    #[test]
    fn duplicate_from_is_a_signal() {
        let (_, r) = run("From: alice@example.org\r\nFrom: \"OpenAI\" <x@evil.example>\r\nSubject: hi");
        assert!(r.contains(&"DUPLICATE_FROM"), "{r:?}");
    }

    #[test]
    fn megabyte_subject_is_bounded() {
        let subject = format!("OpenAI {}", "A".repeat(2_000_000));
        let (_, r) = run(&format!("From: x@evil.example\r\nSubject: {subject}"));
        assert!(r.contains(&"BRAND_SUBJECT_FOREIGN_DOMAIN"), "{r:?}");
    }

    #[test]
    fn missing_from_is_reported_not_dropped() {
        let (a, r) = run("Subject: no from here");
        assert_eq!((a, r), (Action::Accept, vec!["NO_FROM_ADDRESS"]));
    }

    /// With a trusted upstream's results (the real code path) and extra config.
    fn run_auth(toml: &str, ar: &str, headers: &str, body: &str) -> (Action, Vec<&'static str>, Vec<String>) {
        let toml = format!("[auth]\ntrusted_authserv_ids = [\"mx.rcpt.example\"]\n{toml}");
        let engine = Engine::new(Config::from_toml_str(&toml, "t.toml").unwrap()).unwrap();
        let ar = if ar.is_empty() { String::new() } else { format!("Authentication-Results: mx.rcpt.example; {ar}\r\n") };
        let raw = format!("{ar}{headers}\r\n\r\n{body}\r\n");
        let env = Envelope::default();
        let (v, _) =
            analyze(&engine, &MessageInput { envelope: &env, raw: raw.as_bytes(), truncated: false, headers_truncated: false, auth: None });
        (v.action, v.rule_ids(), v.rules.iter().map(|r| r.evidence.clone()).collect())
    }

    const STRIPE: &str = "From: \"OpenAI, LLC\" <invoice+statements@stripe.com>\r\nSubject: Your receipt from OpenAI, LLC #2231-4410";
    const STRIPE_PASS: &str = "spf=pass smtp.mailfrom=bounces.stripe.com; dkim=pass header.d=stripe.com; dmarc=pass header.from=stripe.com";

    #[test]
    fn one_claim_counts_once_and_lists_where_it_is_repeated() {
        let (a, r, ev) = run_auth(
            "",
            "",
            "From: \"OpenAI\" <dse@docusign.example>\r\nSubject: OpenAI sent you a document",
            "Hello.\r\n\r\nThe OpenAI Team",
        );
        // one claim finding (the shared-document wording is the content rules' business)
        assert_eq!((a, r.iter().filter(|id| id.starts_with("BRAND_")).count()), (Action::Tag, 1), "{r:?} {ev:?}");
        assert_eq!(r[0], "BRAND_NAME_FOREIGN_DOMAIN", "{ev:?}");
        assert!(ev[0].ends_with("also claimed in Subject \"OpenAI sent you a document\", body sign-off"), "{ev:?}");
        // a Subject that names another brand than the display name is its own finding
        let engine =
            Engine::new(Config::from_toml_str("[[brand]]\nname = \"PayPal\"\ndomains = [\"paypal.com\"]\n", "t").unwrap()).unwrap();
        let raw = "From: \"OpenAI\" <x@evil.example>\r\nSubject: PayPal receipt\r\n\r\nHello.\r\n";
        let env = Envelope::default();
        let (v, _) =
            analyze(&engine, &MessageInput { envelope: &env, raw: raw.as_bytes(), truncated: false, headers_truncated: false, auth: None });
        assert_eq!(v.rule_ids(), vec!["BRAND_NAME_FOREIGN_DOMAIN", "BRAND_SUBJECT_FOREIGN_DOMAIN"]);
    }

    #[test]
    fn an_authenticated_brand_sender_is_not_foreign() {
        let (a, r, _) = run_auth("", STRIPE_PASS, STRIPE, "Receipt");
        assert_eq!((a, r), (Action::Accept, vec![]));
        // aligned DKIM alone is enough
        let (_, r, _) = run_auth("", "dkim=pass header.d=stripe.com; dmarc=none header.from=stripe.com", STRIPE, "Receipt");
        assert!(r.is_empty(), "{r:?}");
    }

    #[test]
    fn a_listed_sender_without_dmarc_or_dkim_counts_for_nothing() {
        // offline: no results, no exemption
        assert_eq!(run(STRIPE).1, vec!["BRAND_NAME_FOREIGN_DOMAIN"]);
        // SPF alone, or a DKIM pass by another domain, does not vouch for the From
        for ar in [
            "spf=pass smtp.mailfrom=stripe.com; dkim=none; dmarc=fail header.from=stripe.com",
            "dkim=pass header.d=mailer.example; dmarc=fail header.from=stripe.com",
        ] {
            let (a, r, _) = run_auth("", ar, STRIPE, "Receipt");
            assert!(a >= Action::Tag && r.contains(&"BRAND_NAME_FOREIGN_DOMAIN"), "{ar}: {a:?} {r:?}");
        }
        // a lookalike of the sender passing its own DMARC is just another foreign domain
        let from = "From: \"OpenAI, LLC\" <invoice+statements@stripe-billing.com>\r\nSubject: Your invoice from OpenAI";
        let (_, r, _) = run_auth("", "dkim=pass header.d=stripe-billing.com; dmarc=pass header.from=stripe-billing.com", from, "Pay");
        assert!(r.contains(&"BRAND_NAME_FOREIGN_DOMAIN") && r.contains(&"BRAND_CLAIM_UNAUTHENTICATED"), "{r:?}");
    }

    #[test]
    fn the_organisations_own_authenticated_mail_is_never_foreign() {
        let org = "[org]\ndomains = [\"rcpt.example\"]\n";
        let from = "From: \"IT Security\" <security@rcpt.example>\r\nSubject: Warning: fake \"OpenAI Security\" mails";
        let pass = "dkim=pass header.d=rcpt.example; dmarc=pass header.from=rcpt.example";
        assert_eq!(run_auth(org, pass, from, "Do not click.").1, Vec::<&str>::new());
        // unauthenticated, the org's own domain is the most spoofed of all: no exemption
        assert_eq!(run_auth(org, "dmarc=fail header.from=rcpt.example", from, "x").1, vec!["BRAND_SUBJECT_FOREIGN_DOMAIN", "DMARC_FAIL"]);
        // without [org], the same authenticated mail is foreign to the claim
        assert_eq!(run_auth("", pass, from, "x").1, vec!["BRAND_SUBJECT_FOREIGN_DOMAIN"]);
    }

    #[test]
    fn a_brand_named_as_an_account_of_an_authenticated_platform_is_tagged_not_held() {
        let from = "From: \"OpenAI via Docusign\" <dse_NA4@docusign.net>\r\nSubject: Complete with Docusign: OpenAI Order Form.pdf";
        let body = "Alex Chen sent you a document to review and sign.\r\nhttps://na4.docusign.net/Signing/EmailStart.aspx?a=1";
        let pass = "dkim=pass header.d=docusign.net; dmarc=pass header.from=docusign.net";
        let (a, r, ev) = run_auth("", pass, from, body);
        assert_eq!((a, r[0]), (Action::Tag, "BRAND_NAME_FOREIGN_DOMAIN"), "{ev:?}");
        assert!(!r.contains(&"IMPERSONATION") && !r.contains(&"BRAND_CLAIM_UNAUTHENTICATED"), "{r:?}");
        assert!(ev[0].contains("an account of docusign.net, which authenticates"), "{ev:?}");
        // the same display name from a domain that is not the named platform, or that does not authenticate, is a claim
        let fake =
            "From: \"OpenAI via Docusign\" <dse@docusign-envelopes.example>\r\nSubject: Complete with Docusign: OpenAI Order Form.pdf";
        let (a, _, _) = run_auth("", "dmarc=pass header.from=docusign-envelopes.example", fake, body);
        assert!(a >= Action::Quarantine, "{a:?}");
        let (a, _, _) = run_auth("", "dmarc=fail header.from=docusign.net", from, body);
        assert!(a >= Action::Quarantine, "{a:?}");
    }
}
