//! Verdict → what the MTA is asked to do. Pure: the milter glue carries it out.

use crate::config::Config;
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

/// Everything done to one message at end of message.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub add_headers: Vec<(&'static str, String)>,
    pub subject: Option<SubjectChange>,
    pub quarantine: Option<String>,
    /// Final disposition: accept (headers etc. applied), reject or tempfail.
    pub disposition: Action,
    pub reply: Option<Reply>,
}

/// Builds the plan. `subject` is the raw value of the message's first Subject header.
pub fn plan(config: &Config, verdict: &Verdict, subject: Option<&str>) -> Plan {
    let add_headers = vec![
        (HEADER_VERDICT, verdict.header_value()),
        (HEADER_SCORE, fmt_score(verdict.score)),
        (HEADER_RULES, verdict.rules_header()),
    ];
    let mut p = Plan { add_headers, subject: None, quarantine: None, disposition: Action::Accept, reply: None };
    match verdict.effective_action() {
        Action::Accept => {}
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
            p.reply = Some(Reply {
                code: config.reject.code.clone(),
                xcode: config.reject.xcode.clone(),
                text: config.reject.text.clone(),
            });
        }
        Action::Tempfail => {
            p.disposition = Action::Tempfail;
            p.reply = Some(Reply {
                code: "451".into(),
                xcode: "4.7.1".into(),
                text: "impostor: temporary failure, please try again later".into(),
            });
        }
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verdict::{score, Finding};

    fn verdict(c: &Config, rules: &[&'static str]) -> Verdict {
        score(c, rules.iter().map(|r| Finding::new(r, "e")).collect(), None)
    }

    #[test]
    fn tag_prefixes_subject_once() {
        let c = Config::default();
        let v = verdict(&c, &["BRAND_NAME_FOREIGN_DOMAIN"]);
        let p = plan(&c, &v, Some("Your invoice"));
        assert_eq!(p.subject, Some(SubjectChange::Replace("[Suspected impersonation] Your invoice".into())));
        assert_eq!(p.disposition, Action::Accept);
        let again = plan(&c, &v, Some("[Suspected impersonation] Your invoice"));
        assert_eq!(again.subject, None);
        assert_eq!(plan(&c, &v, None).subject, Some(SubjectChange::Add("[Suspected impersonation]".into())));
    }

    #[test]
    fn reject_uses_configured_reply() {
        let c = Config::default();
        let v = verdict(&c, &["BRAND_NAME_FOREIGN_DOMAIN", "BRAND_SUBJECT_FOREIGN_DOMAIN", "LOOKALIKE_FROM_DOMAIN"]);
        let p = plan(&c, &v, None);
        assert_eq!(p.disposition, Action::Reject);
        assert_eq!(p.reply.unwrap().code, "550");
        assert_eq!(p.add_headers[0], (HEADER_VERDICT, "reject".to_string()));
    }

    #[test]
    fn quarantine_keeps_message_with_reason() {
        let c = Config::default();
        let v = verdict(&c, &["BRAND_NAME_FOREIGN_DOMAIN", "BRAND_SUBJECT_FOREIGN_DOMAIN"]);
        let p = plan(&c, &v, None);
        assert_eq!(p.quarantine.as_deref(), Some("impostor: suspected brand impersonation"));
        assert_eq!(p.disposition, Action::Accept);
    }

    #[test]
    fn monitor_only_adds_headers() {
        let mut c = Config::default();
        c.monitor = true;
        let v = verdict(&c, &["BRAND_NAME_FOREIGN_DOMAIN", "BRAND_SUBJECT_FOREIGN_DOMAIN", "LOOKALIKE_FROM_DOMAIN"]);
        let p = plan(&c, &v, Some("x"));
        assert_eq!((p.disposition, p.quarantine, p.subject), (Action::Accept, None, None));
        assert_eq!(p.add_headers[0].1, "accept (monitor: would reject)");
    }
}
