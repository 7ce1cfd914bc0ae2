//! Rules as data: the id, group, default weight and description every
//! detector declares next to the code that emits it ([`RuleDef`]), what a
//! detector reports ([`Finding`]), and the five actions. A leaf: it depends on
//! nothing else in the crate. `crate::analysis::catalog()` is the one list of
//! every rule.

use serde::Serialize;
use std::fmt;

/// A rule's stable id: it appears in headers, logs, JSON and config.
pub type RuleId = &'static str;

/// A registered rule. Weights are overridden in `[scores]`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RuleDef {
    pub id: RuleId,
    pub group: &'static str,
    pub default_weight: f64,
    pub description: &'static str,
}

impl RuleDef {
    pub const fn new(id: RuleId, group: &'static str, default_weight: f64, description: &'static str) -> RuleDef {
        RuleDef { id, group, default_weight, description }
    }
}

/// What a detector reports: a rule id and evidence a human can check. The
/// score is applied from the policy (`crate::verdict::Policy`), times `scale`.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    pub rule: RuleId,
    pub evidence: String,
    /// Factor on the rule's weight, 1.0 unless the detector grades its own evidence (a
    /// combosquat with a keyword weighs more than one with an arbitrary word).
    pub scale: f64,
}

impl Finding {
    pub fn new(rule: RuleId, evidence: impl Into<String>) -> Self {
        Finding { rule, evidence: evidence.into(), scale: 1.0 }
    }

    /// The same finding with its weight multiplied by `scale` (clamped to 0–1).
    pub fn scaled(mut self, scale: f64) -> Self {
        self.scale = scale.clamp(0.0, 1.0);
        self
    }
}

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
    pub const ALL: [Action; 5] = [Action::Accept, Action::Tag, Action::Quarantine, Action::Reject, Action::Tempfail];
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
