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
pub const LOOKALIKE_REPLY_TO: &str = "LOOKALIKE_REPLY_TO";
pub const LOOKALIKE_ENVELOPE_SENDER: &str = "LOOKALIKE_ENVELOPE_SENDER";
pub const LOOKALIKE_HELO: &str = "LOOKALIKE_HELO";
pub const LOOKALIKE_MESSAGE_ID: &str = "LOOKALIKE_MESSAGE_ID";
pub const LOOKALIKE_DKIM_DOMAIN: &str = "LOOKALIKE_DKIM_DOMAIN";
pub const DISPLAY_NAME_ADDRESS_MISMATCH: &str = "DISPLAY_NAME_ADDRESS_MISMATCH";
pub const BODY_TRUNCATED: &str = "BODY_TRUNCATED";
pub const MESSAGE_UNPARSEABLE: &str = "MESSAGE_UNPARSEABLE";
pub const NO_FROM_ADDRESS: &str = "NO_FROM_ADDRESS";
pub const SPF_FAIL: &str = "SPF_FAIL";
pub const SPF_SOFTFAIL: &str = "SPF_SOFTFAIL";
pub const DKIM_FAIL: &str = "DKIM_FAIL";
pub const DMARC_FAIL: &str = "DMARC_FAIL";
pub const BRAND_DOMAIN_DMARC_FAIL: &str = "BRAND_DOMAIN_DMARC_FAIL";
pub const BRAND_CLAIM_UNAUTHENTICATED: &str = "BRAND_CLAIM_UNAUTHENTICATED";
pub const ENVELOPE_FROM_MISMATCH: &str = "ENVELOPE_FROM_MISMATCH";
pub const DNS_TEMPERROR: &str = "DNS_TEMPERROR";
pub const ALLOWLISTED: &str = "ALLOWLISTED";
pub const HEADERS_TRUNCATED: &str = "HEADERS_TRUNCATED";
pub const DUPLICATE_FROM: &str = "DUPLICATE_FROM";
pub const ALLOWLIST_UNAUTHENTICATED: &str = "ALLOWLIST_UNAUTHENTICATED";
pub const ANALYSIS_TIMEOUT: &str = "ANALYSIS_TIMEOUT";
pub const REMOVABLE_HEADERS_LIMIT: &str = "REMOVABLE_HEADERS_LIMIT";

/// Every registered rule: the core families here, then the content, links and
/// attachments families (`crate::analysis::content::RULES`).
pub fn all() -> impl Iterator<Item = &'static RuleDef> {
    RULES.iter().chain(crate::analysis::content::RULES.iter())
}

/// Rules of the sender, lookalike, auth, allow and limits families.
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
        description: "From domain imitates a protected brand's domain (homoglyph, typo, hyphenation, combosquat, subdomain, TLD swap)",
    },
    RuleDef {
        id: LOOKALIKE_REPLY_TO,
        group: "lookalike",
        default_weight: 4.0,
        description: "Reply-To domain imitates a protected brand's domain: replies go to the impostor",
    },
    RuleDef {
        id: LOOKALIKE_ENVELOPE_SENDER,
        group: "lookalike",
        default_weight: 3.0,
        description: "MAIL FROM, Return-Path or Sender domain imitates a protected brand's domain",
    },
    RuleDef {
        id: LOOKALIKE_HELO,
        group: "lookalike",
        default_weight: 2.0,
        description: "The client's HELO name imitates a protected brand's domain",
    },
    RuleDef {
        id: LOOKALIKE_MESSAGE_ID,
        group: "lookalike",
        default_weight: 1.5,
        description: "The Message-ID domain imitates a protected brand's domain",
    },
    RuleDef {
        id: LOOKALIKE_DKIM_DOMAIN,
        group: "lookalike",
        default_weight: 2.0,
        description: "A DKIM signature's d= domain imitates a protected brand's domain",
    },
    RuleDef {
        id: DISPLAY_NAME_ADDRESS_MISMATCH,
        group: "sender",
        default_weight: 3.0,
        description: "From display name contains an e-mail address whose domain differs from the real From domain",
    },
    RuleDef {
        id: DUPLICATE_FROM,
        group: "sender",
        default_weight: 3.0,
        description: "More than one From header field (RFC 5322 allows one): clients disagree on which to show",
    },
    RuleDef {
        id: NO_FROM_ADDRESS,
        group: "sender",
        default_weight: 1.0,
        description: "Message has no parseable From address",
    },
    RuleDef {
        id: SPF_FAIL,
        group: "auth",
        default_weight: 2.0,
        description: "SPF fail: the client is not allowed to send for the MAIL FROM (or HELO) domain",
    },
    RuleDef {
        id: SPF_SOFTFAIL,
        group: "auth",
        default_weight: 1.0,
        description: "SPF softfail: the domain says the client is probably not allowed to send for it",
    },
    RuleDef {
        id: DKIM_FAIL,
        group: "auth",
        default_weight: 1.5,
        description: "A DKIM signature failed verification and none passed",
    },
    RuleDef {
        id: DMARC_FAIL,
        group: "auth",
        default_weight: 3.0,
        description: "DMARC fail for the From domain (the published policy is in the evidence)",
    },
    RuleDef {
        id: BRAND_DOMAIN_DMARC_FAIL,
        group: "auth",
        default_weight: 10.0,
        description: "From is a protected brand's domain but the message has no DMARC-aligned pass for it",
    },
    RuleDef {
        id: BRAND_CLAIM_UNAUTHENTICATED,
        group: "auth",
        default_weight: 3.0,
        description: "Message claims a brand (display name, lookalike From, body sign-off) without an aligned pass for any of its domains",
    },
    RuleDef {
        id: ENVELOPE_FROM_MISMATCH,
        group: "auth",
        default_weight: 0.5,
        description: "MAIL FROM and header From are in different organisational domains (weak context)",
    },
    RuleDef {
        id: DNS_TEMPERROR,
        group: "auth",
        default_weight: 0.0,
        description: "A DNS lookup for SPF/DKIM/DMARC failed temporarily (timeout, SERVFAIL); see dns.on_error",
    },
    RuleDef {
        id: ALLOWLISTED,
        group: "allow",
        default_weight: 0.0,
        description: "Skipped by an allowlist: trusted client network, authenticated submission, exempt recipient, or an allowed domain that authenticated",
    },
    RuleDef {
        id: ALLOWLIST_UNAUTHENTICATED,
        group: "allow",
        default_weight: 0.0,
        description: "From domain is allowlisted but did not authenticate (no DMARC or aligned DKIM pass): the allowlist was ignored",
    },
    RuleDef {
        id: BODY_TRUNCATED,
        group: "limits",
        default_weight: 0.0,
        description: "Message body exceeded milter.max_body_bytes; only the first part was analysed",
    },
    RuleDef {
        id: HEADERS_TRUNCATED,
        group: "limits",
        default_weight: 0.0,
        description: "More header fields or header bytes than milter.max_headers / max_header_bytes; the rest were not analysed",
    },
    RuleDef {
        id: MESSAGE_UNPARSEABLE,
        group: "limits",
        default_weight: 0.0,
        description: "Message could not be parsed as MIME; header-only checks were skipped",
    },
    RuleDef {
        id: ANALYSIS_TIMEOUT,
        group: "limits",
        default_weight: 0.0,
        description: "Content analysis took longer than milter.analysis_timeout_ms; the fail mode decided",
    },
    RuleDef {
        id: REMOVABLE_HEADERS_LIMIT,
        group: "limits",
        default_weight: 0.0,
        description: "More than 1000 X-Impostor-* or Authentication-Results header fields, too many to remove: the message is rejected",
    },
];

/// Looks up a rule by id.
pub fn rule(id: &str) -> Option<&'static RuleDef> {
    all().find(|r| r.id == id)
}
