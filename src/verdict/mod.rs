//! Scoring: findings → weighted score → action, by the thresholds in config.

pub mod rules;

use crate::config::Config;
use serde::Serialize;
use std::fmt;

/// The five action names used everywhere: headers, logs, JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Accept,
    Tag,
    Quarantine,
    Reject,
    Tempfail,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Accept => "accept",
            Action::Tag => "tag",
            Action::Quarantine => "quarantine",
            Action::Reject => "reject",
            Action::Tempfail => "tempfail",
        }
    }
    pub const ALL: [Action; 5] = [
        Action::Accept,
        Action::Tag,
        Action::Quarantine,
        Action::Reject,
        Action::Tempfail,
    ];
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an analysis module reports: a rule id and evidence a human can check.
/// The score is applied by [`score`] from the config.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    pub rule: &'static str,
    pub evidence: String,
}

impl Finding {
    pub fn new(rule: &'static str, evidence: impl Into<String>) -> Self {
        Finding { rule, evidence: evidence.into() }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScoredFinding {
    pub id: &'static str,
    /// The weight counted (for a monitored rule: the weight it would have had).
    pub score: f64,
    pub evidence: String,
    /// The rule is in `rules.monitor`: shown, not counted.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub monitor: bool,
}

/// The outcome for one message.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verdict {
    /// The action decided by the score (in monitor mode: the would-be action).
    pub action: Action,
    pub score: f64,
    pub rules: Vec<ScoredFinding>,
    /// Monitor mode: only headers are added, the action is not carried out.
    pub monitor: bool,
    /// Brand the message was judged against, when one was named.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub brand: Option<String>,
    /// Set when the verdict comes from the fail mode (internal error), not from analysis.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Which threshold decided, e.g. `score 13.0 >= quarantine 10.0`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub decided_by: String,
}

impl Verdict {
    /// The action the MTA is actually asked to carry out.
    pub fn effective_action(&self) -> Action {
        if self.monitor && self.error.is_none() {
            Action::Accept
        } else {
            self.action
        }
    }

    /// Value of the `X-Impostor-Verdict` header.
    pub fn header_value(&self) -> String {
        if let Some(err) = &self.error {
            return format!("{} (fail mode: {})", self.action, err);
        }
        if self.monitor && self.action != Action::Accept {
            format!("accept (monitor: would {})", self.action)
        } else {
            self.action.to_string()
        }
    }

    /// `RULE=score, …` or `none`.
    pub fn rules_header(&self) -> String {
        if self.rules.is_empty() {
            return "none".to_string();
        }
        self.rules
            .iter()
            .map(|r| if r.monitor { format!("{}={}(monitor)", r.id, fmt_score(r.score)) } else { format!("{}={}", r.id, fmt_score(r.score)) })
            .collect::<Vec<_>>()
            .join(", ")
    }

    pub fn rule_ids(&self) -> Vec<&'static str> {
        self.rules.iter().map(|r| r.id).collect()
    }

    /// Verdict for a message whose analysis failed internally: the fail mode decides.
    pub fn failed(config: &Config, error: impl Into<String>) -> Verdict {
        Verdict {
            action: config.fail_mode.action(),
            score: 0.0,
            rules: Vec::new(),
            monitor: config.monitor,
            brand: None,
            error: Some(error.into()),
            decided_by: "fail_mode".into(),
        }
    }
}

/// Formats a score with one decimal (`6.0`, `-1.5`).
pub fn fmt_score(s: f64) -> String {
    format!("{:.1}", s)
}

/// Applies weights and thresholds: `rules.disabled` drops a finding,
/// `rules.monitor` shows it without counting, a rule's weight counts once per
/// message, `group_caps` bound each group's sum, and a named brand's
/// `overrides` replace weights and thresholds.
pub fn score(config: &Config, findings: Vec<Finding>, brand: Option<String>) -> Verdict {
    let overrides = brand.as_ref().and_then(|n| config.brands.iter().find(|b| &b.name == n)).map(|b| &b.overrides);
    let weight = |id: &str| overrides.and_then(|o| o.scores.get(id).copied()).unwrap_or_else(|| config.weight(id));
    let mut rules: Vec<ScoredFinding> = Vec::new();
    let mut group_sum: std::collections::BTreeMap<&str, f64> = Default::default();
    let mut total = 0.0;
    for f in findings {
        if config.rules.disabled.iter().any(|d| d == f.rule) {
            continue;
        }
        let first = !rules.iter().any(|r| r.id == f.rule);
        let mut w = if first { weight(f.rule) } else { 0.0 };
        if config.rules.monitor.iter().any(|m| m == f.rule) {
            rules.push(ScoredFinding { id: f.rule, score: w, evidence: f.evidence, monitor: true });
            continue;
        }
        let group = rules::rule(f.rule).map(|r| r.group).unwrap_or("");
        if let Some(cap) = config.group_caps.get(group) {
            let used = group_sum.entry(group).or_insert(0.0);
            if w > 0.0 {
                w = w.min((cap - *used).max(0.0));
            }
            *used += w;
        }
        total += w;
        rules.push(ScoredFinding { id: f.rule, score: w, evidence: f.evidence, monitor: false });
    }
    let total = (total * 100.0).round() / 100.0;
    let t = overrides.and_then(|o| o.actions.as_ref()).unwrap_or(&config.actions);
    let (action, decided_by) = if total >= t.reject {
        (Action::Reject, format!("score {} >= reject {}", fmt_score(total), fmt_score(t.reject)))
    } else if total >= t.quarantine {
        (Action::Quarantine, format!("score {} >= quarantine {}", fmt_score(total), fmt_score(t.quarantine)))
    } else if total >= t.tag {
        (Action::Tag, format!("score {} >= tag {}", fmt_score(total), fmt_score(t.tag)))
    } else {
        (Action::Accept, format!("score {} < tag {}", fmt_score(total), fmt_score(t.tag)))
    };
    let decided_by = match (overrides.and_then(|o| o.actions.as_ref()), &brand) {
        (Some(_), Some(b)) => format!("{decided_by} ({b} thresholds)"),
        _ => decided_by,
    };
    Verdict { action, score: total, rules, monitor: config.monitor, brand, error: None, decided_by }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn f(rule: &'static str) -> Finding {
        Finding::new(rule, "x")
    }

    #[test]
    fn scores_add_up_to_thresholds() {
        let c = Config::default();
        assert_eq!(score(&c, vec![], None).action, Action::Accept);
        let v = score(&c, vec![f(rules::BRAND_NAME_FOREIGN_DOMAIN)], None);
        assert_eq!((v.action, v.score), (Action::Tag, 6.0));
        let v = score(&c, vec![f(rules::BRAND_NAME_FOREIGN_DOMAIN), f(rules::BRAND_SUBJECT_FOREIGN_DOMAIN)], None);
        assert_eq!((v.action, v.score), (Action::Quarantine, 10.0));
        let v = score(
            &c,
            vec![f(rules::BRAND_NAME_FOREIGN_DOMAIN), f(rules::BRAND_SUBJECT_FOREIGN_DOMAIN), f(rules::LOOKALIKE_FROM_DOMAIN)],
            None,
        );
        assert_eq!((v.action, v.score), (Action::Reject, 15.0));
        assert_eq!(v.rules_header(), "BRAND_NAME_FOREIGN_DOMAIN=6.0, BRAND_SUBJECT_FOREIGN_DOMAIN=4.0, LOOKALIKE_FROM_DOMAIN=5.0");
    }

    #[test]
    fn a_rule_counts_once_per_message() {
        let c = Config::default();
        let v = score(&c, vec![f(rules::LOOKALIKE_FROM_DOMAIN), f(rules::LOOKALIKE_FROM_DOMAIN)], None);
        assert_eq!(v.score, 5.0);
        assert_eq!(v.rules.len(), 2);
        assert_eq!(v.rules[1].score, 0.0);
    }

    #[test]
    fn configured_weight_overrides_default() {
        let c = Config::from_toml_str("[scores]\nBRAND_SUBJECT_FOREIGN_DOMAIN = 12.0\n", "t.toml").unwrap();
        let v = score(&c, vec![f(rules::BRAND_SUBJECT_FOREIGN_DOMAIN)], None);
        assert_eq!((v.action, v.score), (Action::Quarantine, 12.0));
    }

    #[test]
    fn disabled_rules_vanish_and_monitored_rules_do_not_count() {
        let c = Config::from_toml_str(
            "[rules]\ndisabled = [\"BRAND_SUBJECT_FOREIGN_DOMAIN\"]\nmonitor = [\"LOOKALIKE_FROM_DOMAIN\"]\n",
            "t.toml",
        )
        .unwrap();
        let v = score(
            &c,
            vec![f(rules::BRAND_NAME_FOREIGN_DOMAIN), f(rules::BRAND_SUBJECT_FOREIGN_DOMAIN), f(rules::LOOKALIKE_FROM_DOMAIN)],
            None,
        );
        assert_eq!((v.action, v.score), (Action::Tag, 6.0));
        assert_eq!(v.rules_header(), "BRAND_NAME_FOREIGN_DOMAIN=6.0, LOOKALIKE_FROM_DOMAIN=5.0(monitor)");
    }

    #[test]
    fn group_cap_bounds_a_group() {
        let c = Config::from_toml_str("[group_caps]\nsender = 7.0\n", "t.toml").unwrap();
        let v = score(&c, vec![f(rules::BRAND_NAME_FOREIGN_DOMAIN), f(rules::BRAND_SUBJECT_FOREIGN_DOMAIN)], None);
        assert_eq!(v.score, 7.0);
        assert_eq!(v.rules[1].score, 1.0);
    }

    #[test]
    fn brand_overrides_make_own_brand_stricter() {
        let c = Config::from_toml_str(
            "[[brand]]\nname = \"Acme\"\ndomains = [\"acme.example\"]\n[brand.overrides.actions]\ntag = 2.0\nquarantine = 4.0\nreject = 9.0\n[brand.overrides.scores]\nBRAND_SUBJECT_FOREIGN_DOMAIN = 5.0\n",
            "t.toml",
        )
        .unwrap();
        let v = score(&c, vec![f(rules::BRAND_SUBJECT_FOREIGN_DOMAIN)], Some("Acme".into()));
        assert_eq!((v.action, v.score), (Action::Quarantine, 5.0));
        let v = score(&c, vec![f(rules::BRAND_SUBJECT_FOREIGN_DOMAIN)], Some("OpenAI".into()));
        assert_eq!((v.action, v.score), (Action::Accept, 4.0));
    }

    #[test]
    fn monitor_mode_reports_would_be_action() {
        let mut c = Config::default();
        c.monitor = true;
        let v = score(&c, vec![f(rules::BRAND_NAME_FOREIGN_DOMAIN), f(rules::BRAND_SUBJECT_FOREIGN_DOMAIN)], None);
        assert_eq!(v.action, Action::Quarantine);
        assert_eq!(v.effective_action(), Action::Accept);
        assert_eq!(v.header_value(), "accept (monitor: would quarantine)");
    }

    #[test]
    fn fail_mode_verdict_is_visible() {
        let c = Config::default();
        let v = Verdict::failed(&c, "analysis panicked");
        assert_eq!(v.effective_action(), Action::Tempfail);
        assert_eq!(v.header_value(), "tempfail (fail mode: analysis panicked)");
    }
}
