//! Verdict → what the MTA is asked to do. Pure: the milter glue carries it out.

use crate::auth::{AuthResults, Upstream};
use crate::config::{Config, QuarantineFallback};
use crate::verdict::{fmt_score, Action, Verdict};

pub const HEADER_VERDICT: &str = "X-Impostor-Verdict";
pub const HEADER_SCORE: &str = "X-Impostor-Score";
pub const HEADER_RULES: &str = "X-Impostor-Rules";
/// Incoming headers with this prefix are removed: only impostor writes them.
pub const OWN_HEADER_PREFIX: &str = "x-impostor-";

#[derive(Debug, Clone, PartialEq)]
pub enum SubjectChange {
    /// Replace the first Subject header.
    Replace(String),
    /// The message had no Subject: add one.
    Add(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub code: String,
    pub xcode: String,
    pub text: String,
}

/// The end-of-message actions the MTA agreed to (negotiated per connection).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MtaCaps {
    pub add_header: bool,
    pub change_header: bool,
    pub quarantine: bool,
    pub replace_body: bool,
}

impl MtaCaps {
    /// Everything impostor can use (what offline `check` assumes).
    pub const ALL: MtaCaps = MtaCaps { add_header: true, change_header: true, quarantine: true, replace_body: true };
}

impl Default for MtaCaps {
    fn default() -> Self {
        MtaCaps::ALL
    }
}

/// The incoming header fields the plan must know of, collected by the milter
/// session as they arrive.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Incoming {
    /// The first Subject header's raw value.
    pub subject: Option<String>,
    /// `X-Impostor-*` headers: (name as received, 1-based index among headers of that name).
    pub own_headers: Vec<(String, i32)>,
    /// `Authentication-Results` headers: (1-based index, authserv-id).
    pub auth_results: Vec<(i32, String)>,
    /// More than [`MAX_REMOVABLE`] of the two: they cannot all be removed.
    pub removable_overflow: bool,
}

/// At most this many `X-Impostor-*` and `Authentication-Results` headers of
/// one message are removed: each removal is one milter action, and the MTA
/// edits its queue file for each. A message with more is rejected: no
/// legitimate mail carries a thousand of them, and leaving some behind would
/// let forgeries through.
pub const MAX_REMOVABLE: usize = 1000;

/// The message body, for the banner (None when the analysis did not finish).
#[derive(Debug, Clone, Copy)]
pub struct Body<'a> {
    /// Header block and body as received.
    pub raw: &'a [u8],
    /// The body was cut at `milter.max_body_bytes`: no banner then.
    pub truncated: bool,
    /// Where the banner goes, when the analysis found out ([`crate::analysis::Facts::banner_sites`]);
    /// None: the body is parsed for it.
    pub sites: Option<&'a crate::banner::Sites>,
}

/// Everything done to one message at end of message, in this order.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// Headers to delete: (name, index), highest index first per name.
    pub remove_headers: Vec<(String, i32)>,
    /// Our own `Authentication-Results`, inserted at the top.
    pub own_ar: Option<String>,
    pub add_headers: Vec<(&'static str, String)>,
    pub subject: Option<SubjectChange>,
    /// The new body with the banner (tagged mail, `tag.banner`).
    pub body: Option<Vec<u8>>,
    pub quarantine: Option<String>,
    /// Final disposition: accept (headers etc. applied), reject or tempfail.
    pub disposition: Action,
    pub reply: Option<Reply>,
    /// Why part of the verdict could not be carried out as decided (the MTA
    /// lacks an action, the banner failed); logged with the verdict.
    pub fallback: Option<String>,
}

fn reject_reply(config: &Config) -> Reply {
    Reply { code: config.reject.code.clone(), xcode: config.reject.xcode.clone(), text: config.reject.text.clone() }
}

impl Reply {
    /// impostor's one temporary-failure reply: `451 4.7.1`.
    pub fn tempfail() -> Reply {
        Reply { code: "451".into(), xcode: "4.7.1".into(), text: "impostor: temporary failure, please try again later".into() }
    }
}

/// Builds the complete plan for an MTA that offers `caps`:
/// - forged `X-Impostor-*` headers go, on every accepted message; so do
///   `Authentication-Results` with our own authserv-id or with a trusted id
///   outside the upstream's block (`upstream`), and ours is added (`auth`, our
///   own results);
/// - the verdict headers, the Subject tag and the banner of tagged mail;
/// - quarantine, or reject / tempfail with their reply. A quarantine on an
///   MTA without the quarantine action becomes `quarantine.fallback`; headers
///   the MTA does not let us add or change are left out;
/// - a message with more removable headers than [`MAX_REMOVABLE`] is
///   rejected, in monitor mode too.
pub fn plan(
    config: &Config,
    verdict: &Verdict,
    incoming: &Incoming,
    body: Option<Body>,
    auth: Option<&AuthResults>,
    upstream: &Upstream,
    caps: MtaCaps,
) -> Plan {
    let mut p = Plan {
        remove_headers: Vec::new(),
        own_ar: None,
        add_headers: Vec::new(),
        subject: None,
        body: None,
        quarantine: None,
        disposition: Action::Accept,
        reply: None,
        fallback: None,
    };
    if incoming.removable_overflow {
        p.disposition = Action::Reject;
        p.reply = Some(Reply {
            text: format!("impostor: more than {MAX_REMOVABLE} X-Impostor-* or Authentication-Results header fields"),
            ..reject_reply(config)
        });
        return p;
    }
    let mut action = verdict.effective_action();
    if action == Action::Quarantine && !caps.quarantine {
        action = match config.quarantine.fallback {
            QuarantineFallback::Reject => Action::Reject,
            QuarantineFallback::Tag => Action::Tag,
        };
        p.fallback = Some(format!("the MTA offers no quarantine: {action} instead (quarantine.fallback)"));
    }
    match action {
        Action::Reject => {
            p.disposition = Action::Reject;
            p.reply = Some(reject_reply(config));
            return p;
        }
        Action::Tempfail => {
            p.disposition = Action::Tempfail;
            p.reply = Some(Reply::tempfail());
            return p;
        }
        _ => {}
    }
    if caps.change_header {
        p.remove_headers.extend(incoming.own_headers.iter().rev().cloned());
        let our_id = config.authserv_id.to_ascii_lowercase();
        let trusted = &config.auth.trusted_authserv_ids;
        let forged = |(i, id): &&(i32, String)| {
            *id == our_id || trusted.iter().any(|t| t.eq_ignore_ascii_case(id)) && !upstream.block.contains(&(*i as usize))
        };
        p.remove_headers.extend(incoming.auth_results.iter().filter(forged).rev().map(|(i, _)| ("Authentication-Results".to_string(), *i)));
    }
    if caps.add_header {
        p.own_ar = auth
            .filter(|a| a.source == crate::auth::OWN_SOURCE && config.auth.add_header)
            .map(|a| crate::auth::ar_header(&config.authserv_id, a));
        p.add_headers = vec![
            (HEADER_VERDICT, verdict.header_value()),
            (HEADER_SCORE, fmt_score(verdict.score)),
            (HEADER_RULES, verdict.rules_header()),
        ];
    }
    match action {
        Action::Tag => {
            let subject = incoming.subject.as_deref();
            let prefix = config.tag.subject_prefix.trim();
            if !caps.change_header && subject.is_some() || !caps.add_header && subject.is_none() {
                p.fallback.get_or_insert_with(|| "the MTA lets no header change: Subject not tagged".into());
            } else if !prefix.is_empty() {
                p.subject = match subject {
                    Some(s) if s.trim_start().starts_with(prefix) => None,
                    Some(s) => Some(SubjectChange::Replace(format!("{prefix} {}", s.trim_start()))),
                    None => Some(SubjectChange::Add(prefix.to_string())),
                };
            }
            if let Some(b) = body.filter(|b| config.tag.banner && caps.replace_body && !b.truncated) {
                let brand = verdict.brand.as_deref().unwrap_or("a trusted brand");
                let banner = || match b.sites {
                    Some(sites) => crate::banner::apply_sites(b.raw, sites, brand),
                    None => crate::banner::apply(b.raw, brand),
                };
                match std::panic::catch_unwind(banner) {
                    Ok(new) => p.body = new,
                    Err(_) => p.fallback = Some("the banner could not be added (internal error); delivered without it".into()),
                }
            }
        }
        Action::Quarantine => p.quarantine = Some(config.quarantine.reason.clone()),
        _ => {}
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rule::Finding;
    use crate::verdict::{score, Policy};

    fn plan_for(c: &Config, v: &Verdict, subject: Option<&str>, caps: MtaCaps) -> Plan {
        let incoming = Incoming { subject: subject.map(str::to_string), ..Default::default() };
        plan(c, v, &incoming, None, None, &Upstream::default(), caps)
    }

    fn verdict(c: &Config, rules: &[&'static str]) -> Verdict {
        let policy = Policy::build(c, crate::analysis::catalog()).unwrap();
        score(&policy, rules.iter().map(|r| Finding::new(r, "e")).collect(), None)
    }

    #[test]
    fn tag_prefixes_subject_once() {
        let c = Config::default();
        let v = verdict(&c, &["BRAND_NAME_FOREIGN_DOMAIN"]);
        let p = plan_for(&c, &v, Some("Your invoice"), MtaCaps::ALL);
        assert_eq!(p.subject, Some(SubjectChange::Replace("[Suspected impersonation] Your invoice".into())));
        assert_eq!(p.disposition, Action::Accept);
        let again = plan_for(&c, &v, Some("[Suspected impersonation] Your invoice"), MtaCaps::ALL);
        assert_eq!(again.subject, None);
        assert_eq!(plan_for(&c, &v, None, MtaCaps::ALL).subject, Some(SubjectChange::Add("[Suspected impersonation]".into())));
    }

    #[test]
    fn reject_uses_configured_reply() {
        let c = Config::default();
        let v = verdict(&c, &["BRAND_NAME_FOREIGN_DOMAIN", "BRAND_SUBJECT_FOREIGN_DOMAIN", "LOOKALIKE_FROM_DOMAIN"]);
        let p = plan_for(&c, &v, None, MtaCaps::ALL);
        assert_eq!(p.disposition, Action::Reject);
        assert!(p.add_headers.is_empty() && p.remove_headers.is_empty(), "a rejected message is not edited: {p:?}");
        assert_eq!(p.reply.unwrap().code, "550");
    }

    #[test]
    fn quarantine_keeps_message_with_reason() {
        let c = Config::default();
        let v = verdict(&c, &["BRAND_NAME_FOREIGN_DOMAIN", "BRAND_SUBJECT_FOREIGN_DOMAIN"]);
        let p = plan_for(&c, &v, None, MtaCaps::ALL);
        assert_eq!(p.quarantine.as_deref(), Some("impostor: suspected brand impersonation"));
        assert_eq!(p.disposition, Action::Accept);
    }

    #[test]
    fn monitor_only_adds_headers() {
        let c = Config::from_toml_str("monitor = true", "t.toml").unwrap();
        let v = verdict(&c, &["BRAND_NAME_FOREIGN_DOMAIN", "BRAND_SUBJECT_FOREIGN_DOMAIN", "LOOKALIKE_FROM_DOMAIN"]);
        let p = plan_for(&c, &v, Some("x"), MtaCaps::ALL);
        assert_eq!((p.disposition, p.quarantine, p.subject), (Action::Accept, None, None));
        assert_eq!(p.add_headers[0].1, "accept (monitor: would reject)");
    }

    #[test]
    fn quarantine_without_the_mta_action_falls_back_to_the_configured_alternative() {
        let no_quarantine = MtaCaps { quarantine: false, ..MtaCaps::ALL };
        let c = Config::default();
        let v = verdict(&c, &["BRAND_NAME_FOREIGN_DOMAIN", "BRAND_SUBJECT_FOREIGN_DOMAIN"]);
        assert_eq!(v.action, Action::Quarantine);
        let p = plan_for(&c, &v, Some("x"), no_quarantine);
        assert_eq!((p.disposition, p.quarantine.as_deref()), (Action::Reject, None));
        assert_eq!(p.reply.unwrap().code, "550");
        assert!(p.fallback.unwrap().contains("reject instead"));
        let tag = Config::from_toml_str("[quarantine]\nfallback = \"tag\"\n", "t.toml").unwrap();
        let p = plan_for(&tag, &v, Some("x"), no_quarantine);
        assert_eq!((p.disposition, p.quarantine.as_deref()), (Action::Accept, None));
        assert_eq!(p.subject, Some(SubjectChange::Replace("[Suspected impersonation] x".into())));
        assert!(p.fallback.unwrap().contains("tag instead"));
    }

    #[test]
    fn headers_the_mta_does_not_allow_are_left_out() {
        let c = Config::default();
        let v = verdict(&c, &["BRAND_NAME_FOREIGN_DOMAIN"]);
        let p = plan_for(&c, &v, Some("x"), MtaCaps { add_header: false, change_header: false, ..MtaCaps::ALL });
        assert!(p.add_headers.is_empty() && p.subject.is_none(), "{p:?}");
        assert!(p.fallback.is_some());
    }

    #[test]
    fn forged_headers_are_removed_and_ours_added_on_accepted_mail_only() {
        let c = Config::from_toml_str("[auth]\nauthserv_id = \"mx.ours.example\"\ntrusted_authserv_ids = [\"mx.up.example\"]\n", "t.toml")
            .unwrap();
        let incoming = Incoming {
            own_headers: vec![("X-Impostor-Verdict".into(), 1), ("x-impostor-verdict".into(), 2)],
            auth_results: vec![
                (1, "mx.up.example".into()),
                (2, "mx.ours.example".into()),
                (3, "mx.up.example".into()),
                (4, "other.example".into()),
            ],
            ..Default::default()
        };
        let upstream = Upstream { results: None, block: vec![1] };
        let own = AuthResults { source: crate::auth::OWN_SOURCE.into(), ..Default::default() };
        let clean = verdict(&c, &[]);
        let p = plan(&c, &clean, &incoming, None, Some(&own), &upstream, MtaCaps::ALL);
        let removed: Vec<(&str, i32)> = p.remove_headers.iter().map(|(n, i)| (n.as_str(), *i)).collect();
        assert_eq!(
            removed,
            vec![("x-impostor-verdict", 2), ("X-Impostor-Verdict", 1), ("Authentication-Results", 3), ("Authentication-Results", 2)],
            "ours and the upstream's outside its block, highest index first"
        );
        assert!(p.own_ar.unwrap().starts_with("mx.ours.example;"));
        let rejected = verdict(&c, &["BRAND_NAME_FOREIGN_DOMAIN", "BRAND_SUBJECT_FOREIGN_DOMAIN", "LOOKALIKE_FROM_DOMAIN"]);
        let p = plan(&c, &rejected, &incoming, None, Some(&own), &upstream, MtaCaps::ALL);
        assert_eq!((p.disposition, p.remove_headers.len(), p.own_ar), (Action::Reject, 0, None));
    }

    #[test]
    fn too_many_removable_headers_are_rejected_even_in_monitor_mode() {
        let c = Config::from_toml_str("monitor = true", "t.toml").unwrap();
        let incoming = Incoming { removable_overflow: true, ..Default::default() };
        let p = plan(&c, &verdict(&c, &[]), &incoming, None, None, &Upstream::default(), MtaCaps::ALL);
        assert_eq!(p.disposition, Action::Reject);
        assert_eq!(p.reply.unwrap().text, "impostor: more than 1000 X-Impostor-* or Authentication-Results header fields");
    }

    #[test]
    fn tagged_mail_gets_the_banner_unless_truncated() {
        let c = Config::from_toml_str("[tag]\nbanner = true\n", "t.toml").unwrap();
        let raw = b"From: a@b.example\r\nSubject: x\r\nContent-Type: text/plain\r\n\r\nHello.\r\n";
        let v = verdict(&c, &["BRAND_NAME_FOREIGN_DOMAIN"]);
        let inc = Incoming { subject: Some("x".into()), ..Default::default() };
        let p = plan(&c, &v, &inc, Some(Body { raw, truncated: false, sites: None }), None, &Upstream::default(), MtaCaps::ALL);
        assert!(String::from_utf8(p.body.unwrap()).unwrap().contains("Hello."));
        let p = plan(&c, &v, &inc, Some(Body { raw, truncated: true, sites: None }), None, &Upstream::default(), MtaCaps::ALL);
        assert!(p.body.is_none());
        let no_body = MtaCaps { replace_body: false, ..MtaCaps::ALL };
        assert!(plan(&c, &v, &inc, Some(Body { raw, truncated: false, sites: None }), None, &Upstream::default(), no_body).body.is_none());
    }

    #[test]
    fn the_banner_from_the_analysis_sites_is_the_banner_from_a_second_parse() {
        let c = Config::from_toml_str("[tag]\nbanner = true\n", "t.toml").unwrap();
        let raw = b"From: a@b.example\r\nSubject: x\r\nMIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=\"b\"\r\n\r\n\
--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nBonjour, votre compte est bloqu\xc3\xa9.\r\n--b\r\n\
Content-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\nPGh0bWw+PGJvZHk+Qm9uam91cjwvYm9keT48L2h0bWw+\r\n--b--\r\n";
        let v = verdict(&c, &["BRAND_NAME_FOREIGN_DOMAIN"]);
        let inc = Incoming { subject: Some("x".into()), ..Default::default() };
        let msg = crate::message::parser().parse(&raw[..]).unwrap();
        let sites = crate::banner::sites(raw, &msg, msg.body_text(0).as_deref()).unwrap();
        let body = |sites| Some(Body { raw, truncated: false, sites });
        let once = plan(&c, &v, &inc, body(Some(&sites)), None, &Upstream::default(), MtaCaps::ALL).body.unwrap();
        let twice = plan(&c, &v, &inc, body(None), None, &Upstream::default(), MtaCaps::ALL).body.unwrap();
        assert_eq!(String::from_utf8_lossy(&once), String::from_utf8_lossy(&twice));
        assert!(String::from_utf8_lossy(&once).contains("PGh0bWw+"), "the HTML part is re-encoded, not dropped");
    }
}
