//! Scoring: findings → weighted score → action. [`Policy::build`] turns the
//! configuration's weights, disabled and monitored rules, group caps and
//! per-brand overrides into lookups over the rule catalogue once per load
//! (rejecting unknown rule ids); [`score`] applies them to one message.

use crate::config::{Config, ConfigError, Thresholds};
pub use crate::rule::Action;
use crate::rule::{Finding, RuleDef, RuleId};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, HashSet};

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
            .map(
                |r| {
                    if r.monitor {
                        format!("{}={}(monitor)", r.id, fmt_score(r.score))
                    } else {
                        format!("{}={}", r.id, fmt_score(r.score))
                    }
                },
            )
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

/// A brand's overrides: thresholds and weights for mail that names it.
#[derive(Debug, Clone, Default)]
struct BrandPolicy {
    thresholds: Option<Thresholds>,
    weights: HashMap<RuleId, f64>,
}

/// Weights, groups, disabled and monitored rules, group caps and per-brand
/// overrides, resolved against the rule catalogue.
#[derive(Debug, Clone)]
pub struct Policy {
    weights: HashMap<RuleId, f64>,
    groups: HashMap<RuleId, &'static str>,
    disabled: HashSet<RuleId>,
    monitored: HashSet<RuleId>,
    group_caps: HashMap<&'static str, f64>,
    thresholds: Thresholds,
    brands: HashMap<String, BrandPolicy>,
    monitor: bool,
}

impl Policy {
    /// Resolves `config` against `catalog`. A rule id or group the catalogue
    /// does not know is an error naming the file, key and value.
    pub fn build(config: &Config, catalog: impl Iterator<Item = &'static RuleDef>) -> Result<Policy, ConfigError> {
        // checked after loading: the line comes from the file as it is now
        Policy::build_unlocated(config, catalog).map_err(|e| e.located_in_file(&config.source))
    }

    fn build_unlocated(config: &Config, catalog: impl Iterator<Item = &'static RuleDef>) -> Result<Policy, ConfigError> {
        let file = &config.source;
        let defs: HashMap<&str, &'static RuleDef> = catalog.map(|r| (r.id, r)).collect();
        let id = |key: &str, name: &str, value: String| -> Result<RuleId, ConfigError> {
            defs.get(name)
                .map(|r| r.id)
                .ok_or_else(|| ConfigError::invalid(file, format!("{key}{value}: unknown rule id (see `impostor rules`)")))
        };
        let mut weights: HashMap<RuleId, f64> = defs.values().map(|r| (r.id, r.default_weight)).collect();
        for (name, w) in &config.scores {
            weights.insert(id(&format!("scores.{name}"), name, format!(": {w}"))?, *w);
        }
        let list = |key: &str, names: &[String]| -> Result<HashSet<RuleId>, ConfigError> {
            names.iter().map(|n| id(key, n, format!(": {n:?}"))).collect()
        };
        let disabled = list("rules.disabled", &config.rules.disabled)?;
        let monitored = list("rules.monitor", &config.rules.monitor)?;
        let mut group_caps = HashMap::new();
        for (group, cap) in &config.group_caps {
            let Some(g) = defs.values().map(|r| r.group).find(|g| g == group) else {
                return Err(ConfigError::invalid(file, format!("group_caps.{group}: {cap}: unknown rule group")));
            };
            group_caps.insert(g, *cap);
        }
        let mut brands = HashMap::new();
        // built-in brands come first in config.brands; errors count the file's [[brand]] tables
        let first_from_file = config.brands.len() - config.raw.brand.len();
        for (i, b) in config.brands.iter().enumerate() {
            let i = i.saturating_sub(first_from_file);
            let mut bw = HashMap::new();
            for (name, w) in &b.overrides.scores {
                bw.insert(id(&format!("brand[{i}].overrides.scores.{name}"), name, format!(": {w}"))?, *w);
            }
            brands.insert(b.name.clone(), BrandPolicy { thresholds: b.overrides.actions.clone(), weights: bw });
        }
        Ok(Policy {
            groups: defs.values().map(|r| (r.id, r.group)).collect(),
            weights,
            disabled,
            monitored,
            group_caps,
            thresholds: config.actions.clone(),
            brands,
            monitor: config.monitor,
        })
    }

    /// The weight of a rule: `[scores]` if set, else its catalogue default.
    pub fn weight(&self, rule: &str) -> f64 {
        self.weights.get(rule).copied().unwrap_or(0.0)
    }
}

/// Applies the policy: `rules.disabled` drops a finding, `rules.monitor`
/// shows it without counting, a rule's weight counts once per message,
/// `group_caps` bound each group's sum, and a named brand's `overrides`
/// replace weights and thresholds.
pub fn score(policy: &Policy, findings: Vec<Finding>, brand: Option<String>) -> Verdict {
    let overrides = brand.as_ref().and_then(|n| policy.brands.get(n));
    let weight = |id: &str| overrides.and_then(|o| o.weights.get(id).copied()).unwrap_or_else(|| policy.weight(id));
    let mut rules: Vec<ScoredFinding> = Vec::new();
    let mut group_sum: BTreeMap<&str, f64> = Default::default();
    let mut total = 0.0;
    for f in findings {
        debug_assert!(policy.weights.contains_key(f.rule), "{} is not in the rule catalogue", f.rule);
        if policy.disabled.contains(f.rule) {
            continue;
        }
        let first = !rules.iter().any(|r| r.id == f.rule);
        let mut w = if first { weight(f.rule) * f.scale } else { 0.0 };
        if policy.monitored.contains(f.rule) {
            rules.push(ScoredFinding { id: f.rule, score: w, evidence: f.evidence, monitor: true });
            continue;
        }
        let group = policy.groups.get(f.rule).copied().unwrap_or("");
        if let Some(cap) = policy.group_caps.get(group) {
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
    let brand_thresholds = overrides.and_then(|o| o.thresholds.as_ref());
    let t = brand_thresholds.unwrap_or(&policy.thresholds);
    let (action, decided_by) = if total >= t.reject {
        (Action::Reject, format!("score {} >= reject {}", fmt_score(total), fmt_score(t.reject)))
    } else if total >= t.quarantine {
        (Action::Quarantine, format!("score {} >= quarantine {}", fmt_score(total), fmt_score(t.quarantine)))
    } else if total >= t.tag {
        (Action::Tag, format!("score {} >= tag {}", fmt_score(total), fmt_score(t.tag)))
    } else {
        (Action::Accept, format!("score {} < tag {}", fmt_score(total), fmt_score(t.tag)))
    };
    let decided_by = match (brand_thresholds, &brand) {
        (Some(_), Some(b)) => format!("{decided_by} ({b} thresholds)"),
        _ => decided_by,
    };
    Verdict { action, score: total, rules, monitor: policy.monitor, brand, error: None, decided_by }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::catalog;
    use crate::analysis::domains::LOOKALIKE_FROM_DOMAIN;
    use crate::analysis::sender::{BRAND_NAME_FOREIGN_DOMAIN, BRAND_SUBJECT_FOREIGN_DOMAIN};
    use crate::config::Config;

    fn f(rule: &'static str) -> Finding {
        Finding::new(rule, "x")
    }

    fn policy(toml: &str) -> Policy {
        Policy::build(&Config::from_toml_str(toml, "t.toml").unwrap(), catalog()).unwrap()
    }

    fn error(toml: &str) -> String {
        Policy::build(&Config::from_toml_str(toml, "t.toml").unwrap(), catalog()).unwrap_err().to_string()
    }

    #[test]
    fn scaled_finding_scores_a_fraction_of_the_rule_weight() {
        let p = policy("");
        let v = score(&p, vec![Finding::new(LOOKALIKE_FROM_DOMAIN, "x").scaled(0.6)], None);
        assert!((v.rules[0].score - 3.0).abs() < 1e-9, "{}", v.rules[0].score);
        let v = score(&p, vec![f(LOOKALIKE_FROM_DOMAIN)], None);
        assert!((v.rules[0].score - 5.0).abs() < 1e-9);
    }

    #[test]
    fn unknown_rule_ids_are_errors_naming_file_key_and_value() {
        assert_eq!(error("[scores]\nNO_SUCH_RULE = 2.0\n"), "t.toml: scores.NO_SUCH_RULE: 2: unknown rule id (see `impostor rules`)");
        assert_eq!(error("[rules]\nmonitor = [\"NOPE\"]\n"), "t.toml: rules.monitor: \"NOPE\": unknown rule id (see `impostor rules`)");
        assert_eq!(error("[group_caps]\nnope = 1.0\n"), "t.toml: group_caps.nope: 1: unknown rule group");
        let e = error("[[brand]]\nname = \"Acme\"\ndomains = [\"acme.example\"]\n[brand.overrides.scores]\nNOPE = 1.0\n");
        assert_eq!(e, "t.toml: brand[0].overrides.scores.NOPE: 1: unknown rule id (see `impostor rules`)");
        // rule ids keep their case: a lowercase id is unknown
        assert!(error("[scores]\nlookalike_from_domain = 1.0\n").contains("scores.lookalike_from_domain"));
    }

    #[test]
    fn catalogue_ids_are_unique() {
        let mut ids: Vec<&str> = catalog().map(|r| r.id).collect();
        let n = ids.len();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), n, "a rule id is declared twice");
    }

    #[test]
    fn scores_add_up_to_thresholds() {
        let c = policy("");
        assert_eq!(score(&c, vec![], None).action, Action::Accept);
        let v = score(&c, vec![f(BRAND_NAME_FOREIGN_DOMAIN)], None);
        assert_eq!((v.action, v.score), (Action::Tag, 6.0));
        let v = score(&c, vec![f(BRAND_NAME_FOREIGN_DOMAIN), f(BRAND_SUBJECT_FOREIGN_DOMAIN)], None);
        assert_eq!((v.action, v.score), (Action::Quarantine, 10.0));
        let v = score(&c, vec![f(BRAND_NAME_FOREIGN_DOMAIN), f(BRAND_SUBJECT_FOREIGN_DOMAIN), f(LOOKALIKE_FROM_DOMAIN)], None);
        assert_eq!((v.action, v.score), (Action::Reject, 15.0));
        assert_eq!(v.rules_header(), "BRAND_NAME_FOREIGN_DOMAIN=6.0, BRAND_SUBJECT_FOREIGN_DOMAIN=4.0, LOOKALIKE_FROM_DOMAIN=5.0");
    }

    #[test]
    fn a_rule_counts_once_per_message() {
        let c = policy("");
        let v = score(&c, vec![f(LOOKALIKE_FROM_DOMAIN), f(LOOKALIKE_FROM_DOMAIN)], None);
        assert_eq!(v.score, 5.0);
        assert_eq!(v.rules.len(), 2);
        assert_eq!(v.rules[1].score, 0.0);
    }

    #[test]
    fn configured_weight_overrides_default() {
        let c = policy("[scores]\nBRAND_SUBJECT_FOREIGN_DOMAIN = 12.0\n");
        let v = score(&c, vec![f(BRAND_SUBJECT_FOREIGN_DOMAIN)], None);
        assert_eq!((v.action, v.score), (Action::Quarantine, 12.0));
    }

    #[test]
    fn disabled_rules_vanish_and_monitored_rules_do_not_count() {
        let c = policy("[rules]\ndisabled = [\"BRAND_SUBJECT_FOREIGN_DOMAIN\"]\nmonitor = [\"LOOKALIKE_FROM_DOMAIN\"]\n");
        let v = score(&c, vec![f(BRAND_NAME_FOREIGN_DOMAIN), f(BRAND_SUBJECT_FOREIGN_DOMAIN), f(LOOKALIKE_FROM_DOMAIN)], None);
        assert_eq!((v.action, v.score), (Action::Tag, 6.0));
        assert_eq!(v.rules_header(), "BRAND_NAME_FOREIGN_DOMAIN=6.0, LOOKALIKE_FROM_DOMAIN=5.0(monitor)");
    }

    #[test]
    fn group_cap_bounds_a_group() {
        let c = policy("[group_caps]\nsender = 7.0\n");
        let v = score(&c, vec![f(BRAND_NAME_FOREIGN_DOMAIN), f(BRAND_SUBJECT_FOREIGN_DOMAIN)], None);
        assert_eq!(v.score, 7.0);
        assert_eq!(v.rules[1].score, 1.0);
    }

    #[test]
    fn brand_overrides_make_own_brand_stricter() {
        let c = policy(
            "[[brand]]\nname = \"Acme\"\ndomains = [\"acme.example\"]\n[brand.overrides.actions]\ntag = 2.0\nquarantine = 4.0\nreject = 9.0\n[brand.overrides.scores]\nBRAND_SUBJECT_FOREIGN_DOMAIN = 5.0\n",
        );
        let v = score(&c, vec![f(BRAND_SUBJECT_FOREIGN_DOMAIN)], Some("Acme".into()));
        assert_eq!((v.action, v.score), (Action::Quarantine, 5.0));
        let v = score(&c, vec![f(BRAND_SUBJECT_FOREIGN_DOMAIN)], Some("OpenAI".into()));
        assert_eq!((v.action, v.score), (Action::Accept, 4.0));
    }

    #[test]
    fn monitor_mode_reports_would_be_action() {
        let c = policy("monitor = true");
        let v = score(&c, vec![f(BRAND_NAME_FOREIGN_DOMAIN), f(BRAND_SUBJECT_FOREIGN_DOMAIN)], None);
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
