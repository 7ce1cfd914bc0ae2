//! Authentication: SPF, DKIM and DMARC results (our own, through mail-auth,
//! or trusted upstream `Authentication-Results`), and the rule that a message
//! claiming a brand must carry a DMARC-aligned pass for one of its domains.
//!
//! DNS failures are never "fail": a timeout or SERVFAIL is `temperror`, shown
//! as the zero-weight `DNS_TEMPERROR` finding; `dns.on_error` decides whether
//! the MTA is asked to retry.

use super::{Envelope, Facts};
use crate::brand::BrandSet;
use crate::domain::registrable;
use crate::rule::{Finding, RuleDef, RuleId};
use mail_auth::{
    dmarc::verify::DmarcParameters, spf::verify::SpfParameters, AuthenticatedMessage, DkimResult, DmarcResult,
    MessageAuthenticator, SpfResult,
};
use serde::Serialize;
use std::fmt;

pub const SPF_FAIL: RuleId = "SPF_FAIL";
pub const SPF_SOFTFAIL: RuleId = "SPF_SOFTFAIL";
pub const DKIM_FAIL: RuleId = "DKIM_FAIL";
pub const DMARC_FAIL: RuleId = "DMARC_FAIL";
pub const BRAND_DOMAIN_DMARC_FAIL: RuleId = "BRAND_DOMAIN_DMARC_FAIL";
pub const BRAND_CLAIM_UNAUTHENTICATED: RuleId = "BRAND_CLAIM_UNAUTHENTICATED";
pub const ENVELOPE_FROM_MISMATCH: RuleId = "ENVELOPE_FROM_MISMATCH";
pub const DNS_TEMPERROR: RuleId = "DNS_TEMPERROR";

/// Every rule this module emits.
#[rustfmt::skip]
pub static RULES: &[RuleDef] = &[
    RuleDef::new(SPF_FAIL, "auth", 2.0, "SPF fail: the client is not allowed to send for the MAIL FROM (or HELO) domain"),
    RuleDef::new(SPF_SOFTFAIL, "auth", 1.0, "SPF softfail: the domain says the client is probably not allowed to send for it"),
    RuleDef::new(DKIM_FAIL, "auth", 1.5, "A DKIM signature failed verification and none passed"),
    RuleDef::new(DMARC_FAIL, "auth", 3.0, "DMARC fail for the From domain (the published policy is in the evidence)"),
    RuleDef::new(BRAND_DOMAIN_DMARC_FAIL, "auth", 10.0, "From is a protected brand's domain but the message has no DMARC-aligned pass for it"),
    RuleDef::new(BRAND_CLAIM_UNAUTHENTICATED, "auth", 3.0, "Message claims a brand (display name, lookalike From, body sign-off) without an aligned pass for any of its domains"),
    RuleDef::new(ENVELOPE_FROM_MISMATCH, "auth", 0.5, "MAIL FROM and header From are in different organisational domains (weak context)"),
    RuleDef::new(DNS_TEMPERROR, "auth", 0.0, "A DNS lookup for SPF/DKIM/DMARC failed temporarily (timeout, SERVFAIL); see dns.on_error"),
];

/// One method's result, in RFC 8601 words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthResult {
    Pass,
    Fail,
    SoftFail,
    Neutral,
    None,
    TempError,
    PermError,
    Policy,
}

impl AuthResult {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthResult::Pass => "pass",
            AuthResult::Fail => "fail",
            AuthResult::SoftFail => "softfail",
            AuthResult::Neutral => "neutral",
            AuthResult::None => "none",
            AuthResult::TempError => "temperror",
            AuthResult::PermError => "permerror",
            AuthResult::Policy => "policy",
        }
    }

    pub fn parse(s: &str) -> Option<AuthResult> {
        Some(match s.to_ascii_lowercase().as_str() {
            "pass" => AuthResult::Pass,
            "fail" | "hardfail" => AuthResult::Fail,
            "softfail" => AuthResult::SoftFail,
            "neutral" => AuthResult::Neutral,
            "none" => AuthResult::None,
            "temperror" => AuthResult::TempError,
            "permerror" => AuthResult::PermError,
            "policy" => AuthResult::Policy,
            _ => return None,
        })
    }
}

impl fmt::Display for AuthResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// SPF or DKIM result for one identity.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MethodResult {
    pub result: AuthResult,
    /// SPF: the checked domain (MAIL FROM or HELO). DKIM: `d=`.
    pub domain: String,
    /// DKIM selector, SPF identity ("mailfrom"/"helo"), or a reason.
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DmarcSummary {
    pub result: AuthResult,
    /// RFC5322.From domain.
    pub domain: String,
    /// Published policy: none, quarantine, reject, or "" without a record.
    pub policy: String,
}

/// Authentication results for one message.
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct AuthResults {
    /// "impostor" for our own checks, else the trusted authserv-id the results came from.
    pub source: String,
    pub spf: Option<MethodResult>,
    pub dkim: Vec<MethodResult>,
    pub dmarc: Option<DmarcSummary>,
    /// Lookups that failed temporarily (timeout, SERVFAIL).
    pub temperror: Vec<String>,
}

pub const OWN_SOURCE: &str = "impostor";

fn spf_result(r: SpfResult) -> AuthResult {
    match r {
        SpfResult::Pass => AuthResult::Pass,
        SpfResult::Fail => AuthResult::Fail,
        SpfResult::SoftFail => AuthResult::SoftFail,
        SpfResult::Neutral => AuthResult::Neutral,
        SpfResult::TempError => AuthResult::TempError,
        SpfResult::PermError => AuthResult::PermError,
        SpfResult::None => AuthResult::None,
    }
}

fn dkim_result(r: &DkimResult) -> (AuthResult, String) {
    match r {
        DkimResult::Pass => (AuthResult::Pass, String::new()),
        // a body that no longer matches its signed hash was altered: fail, as OpenDKIM reports it
        DkimResult::Neutral(e @ mail_auth::Error::Dkim(mail_auth::dkim::DkimError::FailedBodyHashMatch)) => {
            (AuthResult::Fail, format!("body hash did not verify ({e})"))
        }
        DkimResult::Neutral(e) => (AuthResult::Neutral, e.to_string()),
        DkimResult::Fail(e) => (AuthResult::Fail, e.to_string()),
        DkimResult::PermError(e) => (AuthResult::PermError, e.to_string()),
        DkimResult::TempError(e) => (AuthResult::TempError, e.to_string()),
        DkimResult::None => (AuthResult::None, String::new()),
    }
}

fn dmarc_result(r: &DmarcResult) -> AuthResult {
    match r {
        DmarcResult::Pass => AuthResult::Pass,
        DmarcResult::Fail(_) => AuthResult::Fail,
        DmarcResult::TempError(_) => AuthResult::TempError,
        DmarcResult::PermError(_) => AuthResult::PermError,
        DmarcResult::None => AuthResult::None,
    }
}

/// Runs SPF (MAIL FROM, or HELO for the null sender), DKIM (every signature)
/// and DMARC over one shared resolver. With a truncated body DKIM body hashes
/// cannot be checked: signatures are reported `neutral`, never `fail`.
///
/// DKIM and SPF look up different names: they run together, then DMARC, which
/// needs both. All of it shares one deadline, `budget` from now (`dns.budget_ms`).
/// What finished by then is kept; what did not is `temperror`, named in one
/// "authentication checks exceeded dns.budget_ms" entry. mail-auth verifies a
/// message's DKIM signatures in one call: they finish or run out together.
pub async fn authenticate(auth: &MessageAuthenticator, env: &Envelope, raw: &[u8], truncated: bool, budget: std::time::Duration) -> AuthResults {
    let mut out = AuthResults { source: OWN_SOURCE.into(), ..Default::default() };
    let Some(msg) = AuthenticatedMessage::parse(raw) else {
        return out;
    };
    let deadline = tokio::time::Instant::now() + budget;
    let helo = env.helo.clone().unwrap_or_default();
    let mail_from = env.mail_from.clone().unwrap_or_default();
    let host = crate::config::hostname();
    let by_mail_from = mail_from.contains('@');
    let mut unfinished: Vec<String> = Vec::new();

    let dkim = async {
        if truncated {
            Some(Vec::new())
        } else {
            tokio::time::timeout_at(deadline, auth.verify_dkim(&msg)).await.ok()
        }
    };
    let spf = async {
        let ip = env.client_ip?;
        let params = if by_mail_from {
            SpfParameters::verify_mail_from(ip, &helo, &host, &mail_from)
        } else {
            SpfParameters::verify_ehlo(ip, &helo, &host)
        };
        Some(tokio::time::timeout_at(deadline, auth.verify_spf(params)).await.ok())
    };
    let (dkim_out, spf) = tokio::join!(dkim, spf);

    if truncated {
        for h in &msg.dkim_headers {
            out.dkim.push(MethodResult {
                result: AuthResult::Neutral,
                domain: h.header.d.clone(),
                detail: "body truncated at milter.max_body_bytes; not verified".into(),
            });
        }
    }
    let dkim_finished = dkim_out.is_some();
    if !dkim_finished {
        unfinished.push("dkim".into());
        for h in &msg.dkim_headers {
            let detail = format!("s={}: not verified within dns.budget_ms", h.header.s);
            out.dkim.push(MethodResult { result: AuthResult::TempError, domain: h.header.d.clone(), detail });
        }
    }
    let dkim_out = dkim_out.unwrap_or_default();
    for d in &dkim_out {
        let (result, reason) = dkim_result(d.result());
        let (domain, selector) = d.signature().map(|s| (s.d.clone(), s.s.clone())).unwrap_or_default();
        if result == AuthResult::TempError {
            out.temperror.push(format!("dkim {selector}._domainkey.{domain}: {reason}"));
        }
        let detail = if reason.is_empty() { format!("s={selector}") } else { format!("s={selector}: {reason}") };
        out.dkim.push(MethodResult { result, domain, detail });
    }

    let mf_domain = mail_from.rsplit_once('@').map(|(_, d)| d.to_string()).unwrap_or_else(|| helo.clone());
    let spf = spf.map(|o| {
        let finished = o.is_some();
        // not finished: temperror, which mail-auth's DMARC takes as unknown, never as a fail
        let o = o.unwrap_or_else(|| mail_auth::SpfOutput::new(mf_domain.clone()).with_result(SpfResult::TempError));
        let result = spf_result(o.result());
        if !finished {
            unfinished.push(format!("spf {}", o.domain()));
        } else if result == AuthResult::TempError {
            out.temperror.push(format!("spf {}", o.domain()));
        }
        out.spf = Some(MethodResult {
            result,
            domain: o.domain().to_string(),
            detail: if by_mail_from { "mailfrom".into() } else { "helo".into() },
        });
        o
    });

    if let Some(spf) = &spf {
        match tokio::time::timeout_at(deadline, auth.verify_dmarc(DmarcParameters::new(&msg, &dkim_out, &mf_domain, spf))).await {
            Ok(d) => {
                let result = if truncated && dmarc_result(&d.spf_result()) != AuthResult::Pass && d.dmarc_record().is_some() {
                    // DKIM could not be checked: DMARC can only pass through SPF; otherwise unknown.
                    AuthResult::None
                } else {
                    match dmarc_result(&d.result()) {
                        // DKIM ran out of budget: a pass of its own could have decided; unknown, not fail
                        AuthResult::Fail if !dkim_finished => AuthResult::TempError,
                        r => r,
                    }
                };
                if result == AuthResult::TempError {
                    out.temperror.push(format!("dmarc _dmarc.{}", d.domain()));
                }
                let policy = match d.dmarc_record().map(|_| d.policy()) {
                    Some(mail_auth::dmarc::Policy::Reject) => "reject",
                    Some(mail_auth::dmarc::Policy::Quarantine) => "quarantine",
                    Some(mail_auth::dmarc::Policy::None) => "none",
                    _ => "",
                };
                if !d.domain().is_empty() {
                    out.dmarc = Some(DmarcSummary { result, domain: d.domain().to_string(), policy: policy.into() });
                }
            }
            Err(_) => {
                // (without one From domain mail-auth answers at once: no lookup to run out of time)
                let domain = msg.from.first().and_then(|f| f.rsplit_once('@')).map(|(_, d)| d.to_ascii_lowercase()).unwrap_or_default();
                unfinished.push(format!("dmarc _dmarc.{domain}"));
                if !domain.is_empty() {
                    out.dmarc = Some(DmarcSummary { result: AuthResult::TempError, domain, policy: String::new() });
                }
            }
        }
    }
    if !unfinished.is_empty() {
        out.temperror.push(format!(
            "authentication checks exceeded dns.budget_ms ({} ms): {} not finished",
            budget.as_millis(),
            unfinished.join(", ")
        ));
    }
    out
}

/// Unfolded header fields of a raw message.
pub fn header_fields(raw: &[u8]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for line in raw.split(|b| *b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            break;
        }
        if line[0] == b' ' || line[0] == b'\t' {
            if let Some(last) = out.last_mut() {
                last.1.push(' ');
                last.1.push_str(String::from_utf8_lossy(line).trim());
            }
            continue;
        }
        if let Some(colon) = line.iter().position(|b| *b == b':') {
            let name = String::from_utf8_lossy(&line[..colon]).trim().to_string();
            let value = String::from_utf8_lossy(&line[colon + 1..]).trim().to_string();
            out.push((name, value));
        }
    }
    out
}

/// Removes RFC 5322 comments `( … )` (nested) outside quoted strings.
fn strip_comments(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let (mut depth, mut quoted, mut escaped) = (0usize, false, false);
    for c in s.chars() {
        if escaped {
            escaped = false;
            if depth == 0 {
                out.push(c);
            }
            continue;
        }
        match c {
            '\\' => {
                escaped = true;
                if depth == 0 {
                    out.push(c);
                }
            }
            '"' if depth == 0 => {
                quoted = !quoted;
                out.push(c);
            }
            '(' if !quoted => depth += 1,
            ')' if !quoted && depth > 0 => depth -= 1,
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out
}

/// The authserv-id of an Authentication-Results value.
pub fn authserv_id(value: &str) -> String {
    let v = strip_comments(value);
    v.split(';').next().unwrap_or("").split_whitespace().next().unwrap_or("").to_ascii_lowercase()
}

/// The host a `Received` header names after `by`, lowercased (comments removed).
pub fn received_by(value: &str) -> Option<String> {
    let v = strip_comments(value);
    let mut words = v.split_whitespace();
    while let Some(w) = words.next() {
        if w.eq_ignore_ascii_case("by") {
            return words.next().map(|h| h.trim_end_matches(';').to_ascii_lowercase());
        }
    }
    None
}

/// What a trusted upstream recorded: the results of its block of
/// `Authentication-Results` headers, and where that block is.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Upstream {
    /// Results read from the block; None when the message has no trusted block.
    pub results: Option<AuthResults>,
    /// 1-based positions, among all `Authentication-Results` headers of the
    /// message, of the headers in the block. Every other header with a
    /// trusted authserv-id is not the upstream's and is removed.
    pub block: Vec<usize>,
}

/// Finds the headers a trusted upstream itself added: the topmost contiguous
/// run of `Authentication-Results` headers with a trusted authserv-id, above
/// the first `Received` header that this host did not write (`own_hosts`:
/// names in its `by` clause; Postfix does not show a milter its own Received,
/// Sendmail does). Anything deeper was in the message when the upstream
/// received it, so anyone could have written it: it is not read (this is how
/// authentication_milter treats headers it did not add). The upstream must
/// still remove incoming copies of its own authserv-id: a copy directly
/// below its own header, with nothing in between, cannot be told apart.
pub fn upstream_block(raw: &[u8], trusted: &[String], own_hosts: &[&str]) -> Upstream {
    let mut out = Upstream::default();
    if trusted.is_empty() {
        return out;
    }
    let is_trusted = |id: &str| trusted.iter().any(|t| t.eq_ignore_ascii_case(id));
    // Searching: no block yet; InBlock: inside the run; Done: nothing more is read
    #[derive(PartialEq)]
    enum State {
        Searching,
        InBlock,
        Done,
    }
    let mut state = State::Searching;
    let mut ar_index = 0usize;
    for (name, value) in header_fields(raw) {
        if name.eq_ignore_ascii_case("Authentication-Results") {
            ar_index += 1;
            let id = authserv_id(&value);
            if !is_trusted(&id) {
                if state == State::InBlock {
                    state = State::Done;
                }
                continue;
            }
            if state == State::Done {
                continue;
            }
            state = State::InBlock;
            out.block.push(ar_index);
            read_results(out.results.get_or_insert_with(|| AuthResults { source: id.clone(), ..Default::default() }), &id, &value);
            continue;
        }
        match state {
            State::InBlock => state = State::Done,
            State::Searching if name.eq_ignore_ascii_case("Received") => {
                let own = received_by(&value).is_some_and(|by| own_hosts.iter().any(|h| h.eq_ignore_ascii_case(&by)));
                if !own {
                    state = State::Done;
                }
            }
            _ => {}
        }
    }
    out
}

/// Adds the resinfo of one trusted `Authentication-Results` value to `res`:
/// the first SPF and DMARC result of the block, and every DKIM result.
fn read_results(res: &mut AuthResults, id: &str, value: &str) {
    let clean = strip_comments(value);
    for resinfo in clean.split(';').skip(1) {
        let mut words = resinfo.split_whitespace();
        let Some((method, result)) = words.next().and_then(|w| w.split_once('=')) else { continue };
        let Some(result) = AuthResult::parse(result.trim_matches('"')) else { continue };
        let props: Vec<(String, String)> = words
            .filter_map(|w| w.split_once('=').map(|(k, v)| (k.to_ascii_lowercase(), v.trim_matches('"').to_ascii_lowercase())))
            .collect();
        let prop = |k: &str| props.iter().find(|(p, _)| p == k).map(|(_, v)| v.clone());
        let dom = |v: String| v.rsplit_once('@').map(|(_, d)| d.to_string()).unwrap_or(v);
        match method.to_ascii_lowercase().as_str() {
            "spf" if res.spf.is_none() => {
                let domain = prop("smtp.mailfrom").map(dom).or_else(|| prop("smtp.helo")).unwrap_or_default();
                res.spf = Some(MethodResult { result, domain, detail: "trusted".into() });
            }
            "dkim" => {
                let domain = prop("header.d").or_else(|| prop("header.i").map(dom)).unwrap_or_default();
                let detail = prop("header.s").map(|s| format!("s={s}")).unwrap_or_default();
                res.dkim.push(MethodResult { result, domain, detail });
            }
            "dmarc" if res.dmarc.is_none() => {
                let domain = prop("header.from").map(dom).unwrap_or_default();
                let policy = value
                    .split_once("p=")
                    .map(|(_, r)| r.chars().take_while(|c| c.is_ascii_alphabetic()).collect::<String>().to_ascii_lowercase())
                    .unwrap_or_default();
                res.dmarc = Some(DmarcSummary { result, domain, policy });
            }
            _ => {}
        }
        if result == AuthResult::TempError {
            res.temperror.push(format!("{method} (reported by {id})"));
        }
    }
}

/// A domain (or DKIM selector) as an RFC 8601 property value: its ASCII
/// form when it is a syntactically valid name, else None. The values come
/// from the sender (MAIL FROM, HELO, From, a signature's `d=`/`s=`): a `;`
/// or a space in one would let the sender write results of its own into our
/// header (`header.from=x.example;dkim=pass header.d=openai.com`).
fn pvalue(v: &str) -> Option<String> {
    let ascii = if v.is_ascii() { v.to_ascii_lowercase() } else { idna::domain_to_ascii(v).ok()? };
    let ok = !ascii.is_empty()
        && ascii.len() <= 253
        && ascii.split('.').all(|l| !l.is_empty() && l.len() <= 63)
        && ascii.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'));
    ok.then_some(ascii)
}

/// `" key=value"`, or a comment when the value is not a valid name.
fn prop(key: &str, v: &str) -> String {
    match pvalue(v) {
        Some(p) => format!(" {key}={p}"),
        None if v.is_empty() => String::new(),
        None => format!(" ({key} not a valid domain name)"),
    }
}

/// Our `Authentication-Results` header value (RFC 8601). Every property value
/// is a valid domain name (see [`pvalue`]), so a parser downstream reads
/// exactly our results.
pub fn ar_header(authserv_id: &str, r: &AuthResults) -> String {
    let mut parts = vec![authserv_id.to_string()];
    match &r.spf {
        Some(s) if s.detail == "helo" => parts.push(format!("spf={}{}", s.result, prop("smtp.helo", &s.domain))),
        Some(s) => parts.push(format!("spf={}{}", s.result, prop("smtp.mailfrom", &s.domain))),
        None => parts.push("spf=none".into()),
    }
    if r.dkim.is_empty() {
        parts.push("dkim=none".into());
    }
    for d in &r.dkim {
        let sel = d.detail.strip_prefix("s=").and_then(|s| s.split(':').next()).unwrap_or("");
        parts.push(format!("dkim={}{}{}", d.result, prop("header.d", &d.domain), prop("header.s", sel)));
    }
    match &r.dmarc {
        Some(d) if !d.policy.is_empty() => parts.push(format!("dmarc={} (p={}){}", d.result, d.policy, prop("header.from", &d.domain))),
        Some(d) => parts.push(format!("dmarc={}{}", d.result, prop("header.from", &d.domain))),
        None => parts.push("dmarc=none".into()),
    }
    // folded with a bare LF: the MTA writes its own line ends (libmilter convention)
    parts.join(";\n\t")
}

/// True when `from_domain` has an aligned pass: DMARC pass for it, or a DKIM
/// or SPF pass whose domain shares its organisational (registrable) domain.
pub fn aligned_pass(r: &AuthResults, from_domain: &str) -> bool {
    let org = registrable(from_domain).unwrap_or_else(|| from_domain.to_string());
    let same_org = |d: &str| registrable(d).unwrap_or_else(|| d.to_string()) == org;
    r.dmarc.as_ref().is_some_and(|d| d.result == AuthResult::Pass && same_org(&d.domain))
        || r.dkim.iter().any(|d| d.result == AuthResult::Pass && same_org(&d.domain))
        || r.spf.as_ref().is_some_and(|s| s.result == AuthResult::Pass && same_org(&s.domain))
}

/// DMARC pass for `from_domain`, or a DKIM pass aligned with it (SPF alone
/// does not count): what a sender-domain allowlist requires.
pub fn dmarc_or_dkim_pass(r: &AuthResults, from_domain: &str) -> bool {
    let org = registrable(from_domain).unwrap_or_else(|| from_domain.to_string());
    let same_org = |d: &str| registrable(d).unwrap_or_else(|| d.to_string()) == org;
    r.dmarc.as_ref().is_some_and(|d| d.result == AuthResult::Pass && same_org(&d.domain))
        || r.dkim.iter().any(|d| d.result == AuthResult::Pass && same_org(&d.domain))
}

/// Authentication rules. `auth` is None when no results are known (offline):
/// then nothing is concluded from authentication.
pub fn check(brands: &BrandSet, env: &Envelope, auth: Option<&AuthResults>, facts: &Facts, out: &mut Vec<Finding>) {
    // Envelope vs header From: weak context, known without DNS.
    if let (Some(mf), Some(from)) = (env.mail_from.as_deref(), facts.from_domain.as_deref()) {
        if let Some((_, mfd)) = mf.rsplit_once('@') {
            let (a, b) = (registrable(mfd), registrable(from));
            if a.is_some() && b.is_some() && a != b {
                out.push(Finding::new(
                    ENVELOPE_FROM_MISMATCH,
                    format!("MAIL FROM domain {} differs from From domain {}", a.unwrap_or_default(), b.unwrap_or_default()),
                ));
            }
        }
    }
    let Some(auth) = auth else { return };
    let src = if auth.source == OWN_SOURCE { String::new() } else { format!(" (from {})", auth.source) };
    if !auth.temperror.is_empty() {
        out.push(Finding::new(DNS_TEMPERROR, format!("{}{src}", auth.temperror.join(", "))));
    }
    if let Some(spf) = &auth.spf {
        match spf.result {
            AuthResult::Fail => out.push(Finding::new(SPF_FAIL, format!("spf=fail {} ({}){src}", spf.domain, spf.detail))),
            AuthResult::SoftFail => {
                out.push(Finding::new(SPF_SOFTFAIL, format!("spf=softfail {} ({}){src}", spf.domain, spf.detail)))
            }
            _ => {}
        }
    }
    if !auth.dkim.iter().any(|d| d.result == AuthResult::Pass) {
        if let Some(d) = auth.dkim.iter().find(|d| d.result == AuthResult::Fail) {
            out.push(Finding::new(DKIM_FAIL, format!("dkim=fail d={} {}{src}", d.domain, d.detail)));
        }
    }
    if let Some(d) = &auth.dmarc {
        if d.result == AuthResult::Fail {
            let p = if d.policy.is_empty() { "no policy".to_string() } else { format!("p={}", d.policy) };
            out.push(Finding::new(DMARC_FAIL, format!("dmarc=fail header.from={} ({p}){src}", d.domain)));
        }
    }
    let Some(from) = facts.from_domain.as_deref() else { return };
    // Without an aligned pass and with a lookup that failed temporarily,
    // nothing can be concluded about the brand: no brand rule (dns.on_error decides).
    if !auth.temperror.is_empty() && !aligned_pass(auth, from) {
        return;
    }
    let from_owner = brands.owner_of(from);
    if let Some(b) = from_owner {
        if !aligned_pass(auth, from) {
            let dm = auth.dmarc.as_ref().map(|d| d.result.as_str()).unwrap_or("none");
            out.push(Finding::new(
                BRAND_DOMAIN_DMARC_FAIL,
                format!("From {from} is a {} domain but has no aligned pass (dmarc={dm}){src}", brands.brands[b].name),
            ));
            return;
        }
    }
    if let Some(claimed) = facts.claimed_brand {
        let authenticated = from_owner == Some(claimed) && aligned_pass(auth, from);
        if !authenticated {
            out.push(Finding::new(
                BRAND_CLAIM_UNAUTHENTICATED,
                format!(
                    "claims {} ({}) without an aligned pass for any {} domain; From {from}{src}",
                    brands.brands[claimed].name,
                    facts.claim_evidence.as_deref().unwrap_or("claim"),
                    brands.brands[claimed].name
                ),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const AR: &str = "Authentication-Results: mx.example.test;\r\n\tdkim=pass (2048-bit key) header.d=openai.com header.s=s1 header.b=abc;\r\n\tspf=pass smtp.mailfrom=bounce@em.openai.com;\r\n\tdmarc=pass (p=reject dis=none) header.from=openai.com\r\nAuthentication-Results: evil.example; dmarc=pass header.from=openai-help.net\r\nFrom: a@openai.com\r\n\r\nbody\r\n";

    fn trusted(raw: &str, ids: &[&str]) -> Upstream {
        let ids: Vec<String> = ids.iter().map(|s| s.to_string()).collect();
        upstream_block(raw.as_bytes(), &ids, &["mta.rcpt.example"])
    }

    #[test]
    fn trusted_authserv_results_are_read() {
        let u = trusted(AR, &["mx.example.test"]);
        assert_eq!(u.block, vec![1]);
        let r = u.results.unwrap();
        assert_eq!(r.source, "mx.example.test");
        assert_eq!(r.dkim[0], MethodResult { result: AuthResult::Pass, domain: "openai.com".into(), detail: "s=s1".into() });
        assert_eq!(r.spf.as_ref().unwrap().domain, "em.openai.com");
        let d = r.dmarc.unwrap();
        assert_eq!((d.result, d.domain.as_str(), d.policy.as_str()), (AuthResult::Pass, "openai.com", "reject"));
    }

    #[test]
    fn untrusted_authserv_ids_are_ignored() {
        assert_eq!(trusted(AR, &["other.example"]), Upstream::default());
        // evil.example's header directly follows the first one: the run of A-R headers is unbroken
        let u = trusted(AR, &["evil.example"]);
        assert_eq!(u.block, vec![2]);
        assert_eq!(u.results.unwrap().dmarc.unwrap().domain, "openai-help.net");
        assert_eq!(trusted(AR, &[]), Upstream::default());
    }

    const GENUINE: &str = "Authentication-Results: mx.trusted.example; spf=fail smtp.mailfrom=openai.com; dkim=none; dmarc=fail header.from=openai.com\r\n";
    const FORGED: &str = "Authentication-Results: mx.trusted.example; dkim=pass header.d=openai.com header.s=s1; dmarc=pass header.from=openai.com\r\n";
    const UPSTREAM_RECEIVED: &str = "Received: from attacker.example (attacker.example [203.0.113.9])\r\n\tby mx.trusted.example (Postfix) with ESMTP id 1;\r\n\tWed, 2 Dec 2026 06:00:00 +0000\r\n";

    #[test]
    fn forged_result_below_the_upstreams_received_is_not_read() {
        let raw = format!("{GENUINE}{UPSTREAM_RECEIVED}{FORGED}From: security@openai.com\r\n\r\nbody\r\n");
        let u = trusted(&raw, &["mx.trusted.example"]);
        assert_eq!(u.block, vec![1], "only the topmost header is the upstream's");
        let r = u.results.unwrap();
        assert!(r.dkim.iter().all(|d| d.result != AuthResult::Pass), "{r:?}");
        assert_eq!(r.dmarc.unwrap().result, AuthResult::Fail);
    }

    #[test]
    fn forged_result_between_received_headers_is_not_read() {
        let raw = format!(
            "{UPSTREAM_RECEIVED}{FORGED}Received: from x by relay.attacker.example; Wed, 2 Dec 2026 05:00:00 +0000\r\n{FORGED}From: security@openai.com\r\n\r\nbody\r\n"
        );
        let u = trusted(&raw, &["mx.trusted.example"]);
        assert_eq!(u, Upstream::default(), "a header below any foreign Received is the sender's");
    }

    #[test]
    fn own_received_headers_do_not_end_the_search() {
        // Sendmail shows its milters its own Received header: the upstream's block is below it
        let raw = format!(
            "Received: from mx.trusted.example by mta.rcpt.example (8.17/8.17) id 1;\r\n\tWed, 2 Dec 2026 06:00:01 +0000\r\n{GENUINE}{UPSTREAM_RECEIVED}{FORGED}From: a@openai.com\r\n\r\nx\r\n"
        );
        let u = trusted(&raw, &["mx.trusted.example"]);
        assert_eq!(u.block, vec![1]);
        assert_eq!(u.results.unwrap().dmarc.unwrap().result, AuthResult::Fail);
    }

    #[test]
    fn a_block_ends_at_the_first_other_header() {
        let raw = format!("{GENUINE}X-Spam: no\r\n{FORGED}From: a@openai.com\r\n\r\nx\r\n");
        assert_eq!(trusted(&raw, &["mx.trusted.example"]).block, vec![1]);
        // two headers of the upstream in a row are one block: every DKIM result counts, the first DMARC wins
        let two = format!("{GENUINE}{FORGED}From: a@openai.com\r\n\r\nx\r\n");
        let u = trusted(&two, &["mx.trusted.example"]);
        assert_eq!(u.block, vec![1, 2]);
        assert_eq!(u.results.unwrap().dmarc.unwrap().result, AuthResult::Fail);
    }

    #[test]
    fn received_by_names_the_receiving_host() {
        assert_eq!(received_by(UPSTREAM_RECEIVED.trim_start_matches("Received:")).as_deref(), Some("mx.trusted.example"));
        assert_eq!(received_by("from a (comment by evil.example) by MX.Example.Org; date").as_deref(), Some("mx.example.org"));
        assert_eq!(received_by("from a with local"), None);
    }

    #[test]
    fn authserv_id_ignores_comments() {
        assert_eq!(authserv_id(" (comment) MX.Example.Test 1; spf=pass"), "mx.example.test");
    }

    #[test]
    fn alignment_is_relaxed_to_the_registrable_domain() {
        let r = trusted(AR, &["mx.example.test"]).results.unwrap();
        assert!(aligned_pass(&r, "openai.com"));
        assert!(aligned_pass(&r, "tm.openai.com"));
        assert!(!aligned_pass(&r, "openai-help.net"));
    }

    #[test]
    fn ar_header_is_rfc8601_shaped() {
        let r = trusted(AR, &["mx.example.test"]).results.unwrap();
        let h = ar_header("impostor.test", &r);
        assert!(h.starts_with("impostor.test;\n\tspf=pass smtp.mailfrom=em.openai.com;\n\tdkim=pass header.d=openai.com header.s=s1;"), "{h}");
        assert!(h.ends_with("dmarc=pass (p=reject) header.from=openai.com"), "{h}");
    }

    #[test]
    fn sender_text_cannot_add_results_to_our_header() {
        let payload = "x.example;dkim=pass header.d=openai.com";
        let r = AuthResults {
            source: OWN_SOURCE.into(),
            spf: Some(MethodResult { result: AuthResult::None, domain: payload.into(), detail: "helo".into() }),
            dkim: vec![MethodResult { result: AuthResult::Fail, domain: payload.into(), detail: "s=a;dkim=pass".into() }],
            dmarc: Some(DmarcSummary { result: AuthResult::Fail, domain: payload.into(), policy: String::new() }),
            temperror: Vec::new(),
        };
        let h = ar_header("mx.rcpt.example", &r);
        assert!(!h.contains("dkim=pass") && !h.contains("openai.com"), "{h}");
        // what a parser downstream reads back is exactly our three results
        let back = upstream_block(format!("Authentication-Results: {h}\r\n\r\n").as_bytes(), &["mx.rcpt.example".into()], &[]);
        let back = back.results.unwrap();
        assert_eq!(back.spf.unwrap().result, AuthResult::None);
        assert_eq!(back.dkim.iter().map(|d| d.result).collect::<Vec<_>>(), vec![AuthResult::Fail]);
        assert_eq!(back.dmarc.unwrap().result, AuthResult::Fail);
    }

    #[test]
    fn valid_and_international_names_are_kept() {
        assert_eq!(pvalue("Mail.Example.COM").as_deref(), Some("mail.example.com"));
        assert_eq!(pvalue("s1_2024").as_deref(), Some("s1_2024"));
        assert_eq!(pvalue("bücher.example").as_deref(), Some("xn--bcher-kva.example"));
        for bad in ["a b.example", "a;b", "a\"b", "a..b", "a\r\nX: y", ""] {
            assert_eq!(pvalue(bad), None, "{bad:?}");
        }
    }
}
