//! The rule registry: every rule id impostor can report, its group, default
//! weight and a one-line description. Weights are overridden in `[scores]`.

/// A registered rule. `id` is stable: it appears in headers, logs, JSON and config.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RuleDef {
    pub id: &'static str,
    pub group: &'static str,
    pub default_weight: f64,
    pub description: &'static str,
}

pub const BRAND_NAME_FOREIGN_DOMAIN: &str = "BRAND_NAME_FOREIGN_DOMAIN";
pub const BRAND_SUBJECT_FOREIGN_DOMAIN: &str = "BRAND_SUBJECT_FOREIGN_DOMAIN";
pub const LOOKALIKE_FROM_DOMAIN: &str = "LOOKALIKE_FROM_DOMAIN";
pub const DISPLAY_NAME_ADDRESS_MISMATCH: &str = "DISPLAY_NAME_ADDRESS_MISMATCH";
pub const BODY_TRUNCATED: &str = "BODY_TRUNCATED";
pub const MESSAGE_UNPARSEABLE: &str = "MESSAGE_UNPARSEABLE";
pub const NO_FROM_ADDRESS: &str = "NO_FROM_ADDRESS";

pub static RULES: &[RuleDef] = &[
    RuleDef {
        id: BRAND_NAME_FOREIGN_DOMAIN,
        group: "sender",
        default_weight: 6.0,
        description: "From display name names a protected brand, but the From domain is not one of the brand's domains",
    },
    RuleDef {
        id: BRAND_SUBJECT_FOREIGN_DOMAIN,
        group: "sender",
        default_weight: 4.0,
        description: "Subject names a protected brand, but the From domain is not one of the brand's domains",
    },
    RuleDef {
        id: LOOKALIKE_FROM_DOMAIN,
        group: "lookalike",
        default_weight: 5.0,
        description: "From domain imitates a protected brand's domain (brand token in a foreign domain, typo, homoglyph)",
    },
    RuleDef {
        id: DISPLAY_NAME_ADDRESS_MISMATCH,
        group: "sender",
        default_weight: 3.0,
        description: "From display name contains an e-mail address whose domain differs from the real From domain",
    },
    RuleDef {
        id: NO_FROM_ADDRESS,
        group: "sender",
        default_weight: 1.0,
        description: "Message has no parseable From address",
    },
    RuleDef {
        id: BODY_TRUNCATED,
        group: "limits",
        default_weight: 0.0,
        description: "Message body exceeded milter.max_body_bytes; only the first part was analysed",
    },
    RuleDef {
        id: MESSAGE_UNPARSEABLE,
        group: "limits",
        default_weight: 0.0,
        description: "Message could not be parsed as MIME; header-only checks were skipped",
    },
];

/// Looks up a rule by id.
pub fn rule(id: &str) -> Option<&'static RuleDef> {
    RULES.iter().find(|r| r.id == id)
}
