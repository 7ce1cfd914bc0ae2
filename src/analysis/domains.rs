//! The lookalike matcher applied to every domain a message presents as its
//! sender: From, Reply-To, Sender, Return-Path / MAIL FROM, HELO, Message-ID
//! and DKIM d=. (Link hosts are the links family's.) A brand-owned or
//! legitimate domain is never a finding, nor is one of a brand's `senders`
//! when the message authenticates as that brand (`Facts::vouched`).

use super::{Engine, Envelope, Facts};
use crate::analysis::lookalike::{DomainClass, LookalikeMatch};
use crate::domain::dotted_domain_of;
use crate::rule::{Finding, RuleDef, RuleId};
use mail_parser::Message;

pub const LOOKALIKE_FROM_DOMAIN: RuleId = "LOOKALIKE_FROM_DOMAIN";
pub const LOOKALIKE_REPLY_TO: RuleId = "LOOKALIKE_REPLY_TO";
pub const LOOKALIKE_ENVELOPE_SENDER: RuleId = "LOOKALIKE_ENVELOPE_SENDER";
pub const LOOKALIKE_HELO: RuleId = "LOOKALIKE_HELO";
pub const LOOKALIKE_MESSAGE_ID: RuleId = "LOOKALIKE_MESSAGE_ID";
pub const LOOKALIKE_DKIM_DOMAIN: RuleId = "LOOKALIKE_DKIM_DOMAIN";
pub const SENDER_DOMAIN_INVALID: RuleId = "SENDER_DOMAIN_INVALID";
pub const BRAND_CLAIM_INVALID_DOMAIN: RuleId = "BRAND_CLAIM_INVALID_DOMAIN";

/// Every rule this module emits.
#[rustfmt::skip]
pub static RULES: &[RuleDef] = &[
    RuleDef::new(LOOKALIKE_FROM_DOMAIN, "lookalike", 5.0, "From domain imitates a protected brand's domain (homoglyph, typo, hyphenation, combosquat, subdomain, TLD swap)"),
    RuleDef::new(LOOKALIKE_REPLY_TO, "lookalike", 4.0, "Reply-To domain imitates a protected brand's domain: replies go to the impostor"),
    RuleDef::new(LOOKALIKE_ENVELOPE_SENDER, "lookalike", 3.0, "MAIL FROM, Return-Path or Sender domain imitates a protected brand's domain"),
    RuleDef::new(LOOKALIKE_HELO, "lookalike", 2.0, "The client's HELO name imitates a protected brand's domain"),
    RuleDef::new(LOOKALIKE_MESSAGE_ID, "lookalike", 1.5, "The Message-ID domain imitates a protected brand's domain"),
    RuleDef::new(LOOKALIKE_DKIM_DOMAIN, "lookalike", 2.0, "A DKIM signature's d= domain imitates a protected brand's domain"),
    RuleDef::new(SENDER_DOMAIN_INVALID, "sender", 1.0, "The From, Reply-To or MAIL FROM domain is not an Internet name: no public suffix, an IP literal, or an invalid host name"),
    RuleDef::new(BRAND_CLAIM_INVALID_DOMAIN, "sender", 3.0, "The message claims a brand from a From, Reply-To or MAIL FROM domain that is not an Internet name (no public suffix, IP literal, invalid), or from no address at all"),
];

/// `host ~ imitates (technique[, technique]: detail)`.
pub fn evidence(m: &LookalikeMatch) -> String {
    let t = m.techniques.iter().map(|t| t.as_str()).collect::<Vec<_>>().join(", ");
    let d = m.detail.strip_prefix(&format!("{t}: ")).unwrap_or(&m.detail);
    format!("{} ~ {} ({t}: {d})", m.domain, m.imitates)
}

/// The lookalike match for `host`, if any. A mailbox provider's own domain (data/freemail.txt:
/// outlook.com, verizon.net) is an established domain, never a lookalike of its provider's brand
/// domain (outlook.com is not a TLD swap of microsoft.com); what the brand name in its display
/// name means is the sender rules' business.
pub fn lookalike(engine: &Engine, host: &str) -> Option<LookalikeMatch> {
    match engine.lookalike.check(host) {
        DomainClass::Lookalike(m) if !crate::analysis::content::is_freemail(host, &engine.ioc) => Some(m),
        _ => None,
    }
}

pub fn check(engine: &Engine, env: &Envelope, msg: &Message, out: &mut Vec<Finding>, facts: &mut Facts) {
    let mut seen: Vec<(&'static str, String)> = Vec::new();
    // one lookalike domain counts once: the other identities are checked only
    // when they are in another organisational domain than From
    let from_org = facts.from_domain.as_deref().and_then(crate::domain::registrable);
    let vouched = facts.vouched.clone();
    let mut probe = |rule: &'static str, host: Option<String>, what: &str, out: &mut Vec<Finding>, facts: &mut Facts| {
        let Some(host) = host else { return };
        if seen.iter().any(|(r, h)| *r == rule && *h == host) {
            return;
        }
        if rule != LOOKALIKE_FROM_DOMAIN && from_org.is_some() && crate::domain::registrable(&host) == from_org {
            return;
        }
        seen.push((rule, host.clone()));
        // a sender of a brand this message authenticates as (the brand's
        // Intercom workspace as Reply-To, its ESP's bounce domain): not an imitation
        if vouched.iter().any(|b| engine.brands.brands[*b].sends_via(&host)) {
            return;
        }
        if let Some(m) = lookalike(engine, &host) {
            if let Some(b) = engine.brands.brands.iter().position(|b| b.name == m.brand) {
                facts.brand.get_or_insert(m.brand.clone());
                if rule == LOOKALIKE_FROM_DOMAIN {
                    facts.claim(b, "lookalike From domain");
                } else if rule == LOOKALIKE_REPLY_TO {
                    facts.place(b, "lookalike Reply-To domain", true);
                }
            }
            out.push(Finding::new(rule, format!("{what} {}", evidence(&m))).scaled(m.strength.factor()));
        }
    };
    probe(LOOKALIKE_FROM_DOMAIN, facts.from_domain.clone(), "From", out, facts);
    if let Some(rt) = msg.reply_to() {
        for a in rt.iter().take(10) {
            probe(LOOKALIKE_REPLY_TO, a.address().and_then(dotted_domain_of), "Reply-To", out, facts);
        }
    }
    if let Some(s) = msg.sender().and_then(|a| a.first()) {
        probe(LOOKALIKE_ENVELOPE_SENDER, s.address().and_then(dotted_domain_of), "Sender", out, facts);
    }
    probe(LOOKALIKE_ENVELOPE_SENDER, env.mail_from.as_deref().and_then(dotted_domain_of), "MAIL FROM", out, facts);
    if let Some(rp) = msg.return_path().as_text() {
        probe(LOOKALIKE_ENVELOPE_SENDER, dotted_domain_of(rp), "Return-Path", out, facts);
    }
    let helo = env.helo.as_deref().map(|h| h.trim_end_matches('.').to_ascii_lowercase()).filter(|h| h.contains('.') && !h.starts_with('['));
    probe(LOOKALIKE_HELO, helo, "HELO", out, facts);
    probe(LOOKALIKE_MESSAGE_ID, msg.message_id().and_then(dotted_domain_of), "Message-ID", out, facts);
    // DKIM-Signature d= tags, straight from the header block
    let raw_headers = msg.raw_message();
    for value in crate::auth::header_values(raw_headers, "DKIM-Signature").take(10) {
        let d = value
            .split(';')
            .filter_map(|t| t.trim().split_once('='))
            .find(|(k, _)| k.trim() == "d")
            .map(|(_, v)| v.trim().to_ascii_lowercase());
        probe(LOOKALIKE_DKIM_DOMAIN, d, "DKIM d=", out, facts);
    }
    validity(engine, env, msg, out, facts);
}

/// From, Reply-To and MAIL FROM domains that are not Internet names (`naoresponder@correios`,
/// `user@[192.0.2.7]`): no mail system of a real organisation sends from them, and nothing sent
/// from them can authenticate. Weighs more when the message claims a brand, and then a From with
/// no address at all counts too.
fn validity(engine: &Engine, env: &Envelope, msg: &Message, out: &mut Vec<Finding>, facts: &Facts) {
    let mut bad: Vec<String> = Vec::new();
    let mut check = |what: &str, address: &str| {
        let Some(d) = crate::domain::domain_of(address) else { return };
        if let Some(why) = crate::domain::invalid_sender_domain(&d) {
            let item = format!("{what} {d} {why}");
            if !bad.contains(&item) && bad.len() < 3 {
                bad.push(item);
            }
        }
    };
    let from: Vec<&str> = msg.from().map(|a| a.iter().filter_map(|x| x.address()).collect()).unwrap_or_default();
    for a in from.iter().take(3) {
        check("From", a);
    }
    if let Some(rt) = msg.reply_to() {
        for a in rt.iter().filter_map(|x| x.address()).take(5) {
            check("Reply-To", a);
        }
    }
    if let Some(mf) = env.mail_from.as_deref().filter(|m| !m.trim().is_empty() && m.trim() != "<>") {
        check("MAIL FROM", mf);
    }
    // the brand claimed or named as the sender anywhere (Subject included): then it weighs more
    let claimed = facts.claims.first().map(|p| p.brand);
    if claimed.is_some() && from.iter().all(|a| crate::domain::domain_of(a).is_none()) {
        bad.insert(0, "From has no address with a domain".into());
    }
    if bad.is_empty() {
        return;
    }
    match claimed {
        Some(b) => {
            out.push(Finding::new(BRAND_CLAIM_INVALID_DOMAIN, format!("claims {}: {}", engine.brands.brands[b].name, bad.join("; "))))
        }
        None => out.push(Finding::new(SENDER_DOMAIN_INVALID, bad.join("; "))),
    }
}

#[cfg(test)]
mod tests {
    use crate::analysis::{analyze, Engine, Envelope, MessageInput};
    use crate::config::Config;

    fn rules_for(headers: &str, env: Envelope) -> Vec<(String, String)> {
        let engine = Engine::new(Config::default()).unwrap();
        let raw = format!("{headers}\r\n\r\nHello.\r\n");
        let input = MessageInput { envelope: &env, raw: raw.as_bytes(), truncated: false, headers_truncated: false, auth: None };
        analyze(&engine, &input).0.rules.into_iter().map(|r| (r.id.to_string(), r.evidence)).collect()
    }

    #[test]
    fn reply_to_lookalike_sends_replies_to_the_impostor() {
        let r = rules_for("From: Alice <alice@example.org>\r\nReply-To: billing@0penai.com\r\nSubject: hi", Envelope::default());
        assert_eq!(r.len(), 1, "{r:?}");
        assert_eq!(r[0].0, "LOOKALIKE_REPLY_TO");
        assert!(r[0].1.contains("0penai.com ~ openai.com (homoglyph"), "{}", r[0].1);
    }

    #[test]
    fn envelope_helo_message_id_and_dkim_domains_are_checked() {
        let env =
            Envelope { mail_from: Some("bounce@openai-mailer.com".into()), helo: Some("mail.opena1.com".into()), ..Default::default() };
        let r = rules_for(
            "DKIM-Signature: v=1; a=rsa-sha256; d=openai-security.net; s=s1; h=from; bh=x; b=y\r\nMessage-ID: <123@chatgpt-login.com>\r\nFrom: Alice <alice@example.org>\r\nSubject: hi",
            env,
        );
        let ids: Vec<&str> = r.iter().map(|(i, _)| i.as_str()).collect();
        for want in ["LOOKALIKE_ENVELOPE_SENDER", "LOOKALIKE_HELO", "LOOKALIKE_MESSAGE_ID", "LOOKALIKE_DKIM_DOMAIN"] {
            assert!(ids.contains(&want), "{want} missing in {r:?}");
        }
    }

    #[test]
    fn the_from_lookalike_counts_once_across_identities() {
        let env =
            Envelope { mail_from: Some("bounce@openai-help.net".into()), helo: Some("mx.openai-help.net".into()), ..Default::default() };
        let r =
            rules_for("From: x <x@openai-help.net>\r\nReply-To: y@openai-help.net\r\nMessage-ID: <1@openai-help.net>\r\nSubject: hi", env);
        let ids: Vec<&str> = r.iter().map(|(i, _)| i.as_str()).collect();
        assert_eq!(ids, ["LOOKALIKE_FROM_DOMAIN"], "{r:?}");
    }

    #[test]
    fn brand_owned_and_legitimate_domains_are_never_findings() {
        let env = Envelope { mail_from: Some("bounce@em.openai.com".into()), helo: Some("mail.chat.com".into()), ..Default::default() };
        let r = rules_for(
            "From: OpenAI <noreply@tm.openai.com>\r\nReply-To: help@chatgpt.com\r\nMessage-ID: <1@openai.com>\r\nSubject: hi",
            env,
        );
        assert!(r.is_empty(), "{r:?}");
    }

    #[test]
    fn a_brand_sender_as_reply_to_counts_only_when_the_message_authenticates_as_the_brand() {
        let engine =
            Engine::new(Config::from_toml_str("[auth]\ntrusted_authserv_ids = [\"mx.rcpt.example\"]\n", "t.toml").unwrap()).unwrap();
        let ids = |ar: &str, from: &str| -> Vec<&'static str> {
            let raw = format!(
                "Authentication-Results: mx.rcpt.example; {ar}\r\nFrom: {from}\r\nReply-To: reply+1@openai.intercom-mail.com\r\nSubject: Re: your question\r\n\r\nHi.\r\n"
            );
            let env = Envelope::default();
            let input = MessageInput { envelope: &env, raw: raw.as_bytes(), truncated: false, headers_truncated: false, auth: None };
            analyze(&engine, &input).0.rule_ids()
        };
        let pass = "dkim=pass header.d=openai.com; dmarc=pass header.from=openai.com";
        assert!(ids(pass, "Maya <support@openai.com>").is_empty());
        // the From does not pass: nothing vouches for OpenAI's Intercom workspace
        assert!(ids("dmarc=fail header.from=openai.com", "Maya <support@openai.com>").contains(&"LOOKALIKE_REPLY_TO"));
        // an unrelated authenticated sender gains nothing from naming OpenAI's workspace
        assert!(ids("dmarc=pass header.from=example.org", "Alice <alice@example.org>").contains(&"LOOKALIKE_REPLY_TO"));
    }
}
