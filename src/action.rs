//! Verdict → what the MTA is asked to do. Pure: the milter glue carries it out.

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

/// Everything done to one message at end of message.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub add_headers: Vec<(&'static str, String)>,
    pub subject: Option<SubjectChange>,
    pub quarantine: Option<String>,
    /// Final disposition: accept (headers etc. applied), reject or tempfail.
    pub disposition: Action,
    pub reply: Option<Reply>,
    /// Why part of the verdict could not be carried out as decided (the MTA
    /// lacks an action); logged with the verdict.
    pub fallback: Option<String>,
}

fn reject_reply(config: &Config) -> Reply {
    Reply { code: config.reject.code.clone(), xcode: config.reject.xcode.clone(), text: config.reject.text.clone() }
}

/// Builds the plan for an MTA that offers `caps`. `subject` is the raw value
/// of the message's first Subject header. A quarantine on an MTA without the
/// quarantine action becomes `quarantine.fallback` (reject or tag); headers
/// the MTA does not let us add or change are left out.
pub fn plan(config: &Config, verdict: &Verdict, subject: Option<&str>, caps: MtaCaps) -> Plan {
    let add_headers = if caps.add_header {
        vec![(HEADER_VERDICT, verdict.header_value()), (HEADER_SCORE, fmt_score(verdict.score)), (HEADER_RULES, verdict.rules_header())]
    } else {
        Vec::new()
    };
    let mut p = Plan { add_headers, subject: None, quarantine: None, disposition: Action::Accept, reply: None, fallback: None };
    let mut action = verdict.effective_action();
    if action == Action::Quarantine && !caps.quarantine {
        action = match config.quarantine.fallback {
            QuarantineFallback::Reject => Action::Reject,
            QuarantineFallback::Tag => Action::Tag,
        };
        p.fallback = Some(format!("the MTA offers no quarantine: {action} instead (quarantine.fallback)"));
    }
    match action {
        Action::Accept => {}
        Action::Tag if !caps.change_header && subject.is_some() || !caps.add_header && subject.is_none() => {
            p.fallback.get_or_insert_with(|| "the MTA lets no header change: Subject not tagged".into());
        }
        Action::Tag => {
            let prefix = config.tag.subject_prefix.trim();
            if !prefix.is_empty() {
                p.subject = Some(match subject {
                    Some(s) if s.trim_start().starts_with(prefix) => return p,
                    Some(s) => SubjectChange::Replace(format!("{prefix} {}", s.trim_start())),
                    None => SubjectChange::Add(prefix.to_string()),
                });
            }
        }
        Action::Quarantine => p.quarantine = Some(config.quarantine.reason.clone()),
        Action::Reject => {
            p.disposition = Action::Reject;
            p.reply = Some(reject_reply(config));
        }
        Action::Tempfail => {
            p.disposition = Action::Tempfail;
            p.reply = Some(Reply {
                code: "451".into(),
                xcode: "4.7.1".into(),
                text: TEMPFAIL_TEXT.into(),
            });
        }
    }
    p
}

/// The text of impostor's 451 replies.
pub const TEMPFAIL_TEXT: &str = "impostor: temporary failure, please try again later";

/// The plan for a message with more `X-Impostor-*` / `Authentication-Results`
/// headers than can be removed (`REMOVABLE_HEADERS_LIMIT`): rejected, in
/// monitor mode too, since forgeries would otherwise reach the user.
pub fn too_many_removable(config: &Config) -> Plan {
    Plan {
        add_headers: Vec::new(),
        subject: None,
        quarantine: None,
        disposition: Action::Reject,
        reply: Some(Reply {
            text: format!("impostor: more than {} X-Impostor-* or Authentication-Results header fields", crate::milter::session::MAX_REMOVABLE),
            ..reject_reply(config)
        }),
        fallback: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rule::Finding;
    use crate::verdict::{score, Policy};

    fn verdict(c: &Config, rules: &[&'static str]) -> Verdict {
        let policy = Policy::build(c, crate::analysis::catalog()).unwrap();
        score(&policy, rules.iter().map(|r| Finding::new(r, "e")).collect(), None)
    }

    #[test]
    fn tag_prefixes_subject_once() {
        let c = Config::default();
        let v = verdict(&c, &["BRAND_NAME_FOREIGN_DOMAIN"]);
        let p = plan(&c, &v, Some("Your invoice"), MtaCaps::ALL);
        assert_eq!(p.subject, Some(SubjectChange::Replace("[Suspected impersonation] Your invoice".into())));
        assert_eq!(p.disposition, Action::Accept);
        let again = plan(&c, &v, Some("[Suspected impersonation] Your invoice"), MtaCaps::ALL);
        assert_eq!(again.subject, None);
        assert_eq!(plan(&c, &v, None, MtaCaps::ALL).subject, Some(SubjectChange::Add("[Suspected impersonation]".into())));
    }

    #[test]
    fn reject_uses_configured_reply() {
        let c = Config::default();
        let v = verdict(&c, &["BRAND_NAME_FOREIGN_DOMAIN", "BRAND_SUBJECT_FOREIGN_DOMAIN", "LOOKALIKE_FROM_DOMAIN"]);
        let p = plan(&c, &v, None, MtaCaps::ALL);
        assert_eq!(p.disposition, Action::Reject);
        assert_eq!(p.reply.unwrap().code, "550");
        assert_eq!(p.add_headers[0], (HEADER_VERDICT, "reject".to_string()));
    }

    #[test]
    fn quarantine_keeps_message_with_reason() {
        let c = Config::default();
        let v = verdict(&c, &["BRAND_NAME_FOREIGN_DOMAIN", "BRAND_SUBJECT_FOREIGN_DOMAIN"]);
        let p = plan(&c, &v, None, MtaCaps::ALL);
        assert_eq!(p.quarantine.as_deref(), Some("impostor: suspected brand impersonation"));
        assert_eq!(p.disposition, Action::Accept);
    }

    #[test]
    fn monitor_only_adds_headers() {
        let mut c = Config::default();
        c.monitor = true;
        let v = verdict(&c, &["BRAND_NAME_FOREIGN_DOMAIN", "BRAND_SUBJECT_FOREIGN_DOMAIN", "LOOKALIKE_FROM_DOMAIN"]);
        let p = plan(&c, &v, Some("x"), MtaCaps::ALL);
        assert_eq!((p.disposition, p.quarantine, p.subject), (Action::Accept, None, None));
        assert_eq!(p.add_headers[0].1, "accept (monitor: would reject)");
    }

    #[test]
    fn quarantine_without_the_mta_action_falls_back_to_the_configured_alternative() {
        let no_quarantine = MtaCaps { quarantine: false, ..MtaCaps::ALL };
        let c = Config::default();
        let v = verdict(&c, &["BRAND_NAME_FOREIGN_DOMAIN", "BRAND_SUBJECT_FOREIGN_DOMAIN"]);
        assert_eq!(v.action, Action::Quarantine);
        let p = plan(&c, &v, Some("x"), no_quarantine);
        assert_eq!((p.disposition, p.quarantine.as_deref()), (Action::Reject, None));
        assert_eq!(p.reply.unwrap().code, "550");
        assert!(p.fallback.unwrap().contains("reject instead"));
        let tag = Config::from_toml_str("[quarantine]\nfallback = \"tag\"\n", "t.toml").unwrap();
        let p = plan(&tag, &v, Some("x"), no_quarantine);
        assert_eq!((p.disposition, p.quarantine.as_deref()), (Action::Accept, None));
        assert_eq!(p.subject, Some(SubjectChange::Replace("[Suspected impersonation] x".into())));
        assert!(p.fallback.unwrap().contains("tag instead"));
    }

    #[test]
    fn headers_the_mta_does_not_allow_are_left_out() {
        let c = Config::default();
        let v = verdict(&c, &["BRAND_NAME_FOREIGN_DOMAIN"]);
        let p = plan(&c, &v, Some("x"), MtaCaps { add_header: false, change_header: false, ..MtaCaps::ALL });
        assert!(p.add_headers.is_empty() && p.subject.is_none(), "{p:?}");
        assert!(p.fallback.is_some());
    }
}
