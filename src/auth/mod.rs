//! Authentication: SPF, DKIM and DMARC results, from our own checks
//! (mail-auth over the shared resolver, [`resolver`]) or from a trusted
//! upstream's `Authentication-Results`, and our own header. All the I/O of an
//! authentication is here; the rules that judge the results are in
//! `crate::analysis::authn`.
//!
//! DNS failures are never "fail": a timeout or SERVFAIL is `temperror`, shown
//! as the zero-weight `DNS_TEMPERROR` finding; `dns.on_error` decides whether
//! the MTA is asked to retry.

pub mod resolver;

use crate::config::Config;
use crate::domain::registrable;
use crate::message::Envelope;
use mail_auth::{
    dmarc::verify::DmarcParameters, spf::verify::SpfParameters, AuthenticatedMessage, DkimResult, DmarcResult, MessageAuthenticator,
    Parameters, SpfResult,
};
use serde::Serialize;
use std::fmt;
use std::sync::Arc;

/// How one engine authenticates messages: its resolver (None offline or with
/// `auth.enabled = false`), its trusted upstreams and its DNS budget.
pub struct Authenticator {
    resolver: Option<Arc<MessageAuthenticator>>,
    /// Parsed TXT records of the online checks ([`resolver::TxtCache`]).
    txt_cache: Arc<resolver::TxtCache>,
    trusted_ids: Vec<String>,
    trusted_relays: Vec<ipnet::IpNet>,
    /// `auth.microsoft_upstream`: read Microsoft 365's Authentication-Results (no authserv-id).
    microsoft: bool,
    /// Host names of this MTA in `Received … by` (our hostname, our authserv-id).
    own_hosts: Vec<String>,
    budget: std::time::Duration,
}

impl fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authenticator").field("online", &self.resolver.is_some()).field("trusted_ids", &self.trusted_ids).finish()
    }
}

impl Authenticator {
    /// Offline: results come only from trusted upstream headers.
    pub fn offline(config: &Config) -> Authenticator {
        let a = &config.auth;
        Authenticator {
            resolver: None,
            txt_cache: Arc::new(resolver::TxtCache::new(config.dns.cache_size)),
            trusted_ids: a.trusted_authserv_ids.clone(),
            trusted_relays: a.trusted_relays.clone(),
            microsoft: a.microsoft_upstream,
            own_hosts: vec![crate::config::hostname(), config.authserv_id.clone()],
            budget: std::time::Duration::from_millis(config.dns.budget_ms),
        }
    }

    /// Checks SPF, DKIM and DMARC itself when `auth.enabled`.
    pub fn online(config: &Config) -> Result<Authenticator, String> {
        let resolver = if config.auth.enabled { Some(resolver::authenticator(config)?) } else { None };
        Ok(Authenticator { resolver, ..Authenticator::offline(config) })
    }

    pub fn is_online(&self) -> bool {
        self.resolver.is_some()
    }

    /// The trusted upstream's `Authentication-Results` block of a message
    /// ([`upstream_block`]). With `auth.trusted_relays` set, only mail from
    /// those clients has one: on anyone else's, every header with a trusted
    /// id is a forgery (mail without a client address — local submission,
    /// offline checks — is judged by position alone).
    pub fn upstream(&self, env: &Envelope, raw: &[u8]) -> Upstream {
        let relays = &self.trusted_relays;
        let from_relay = env.client_ip.is_none_or(|ip| relays.is_empty() || relays.iter().any(|n| n.contains(&ip)));
        if !from_relay {
            return Upstream::default();
        }
        let own: Vec<&str> = self.own_hosts.iter().map(String::as_str).collect();
        let named = upstream_block(raw, &self.trusted_ids, &own);
        if named.results.is_some() || !self.microsoft {
            return named;
        }
        // Microsoft 365 only from a declared relay (validation requires auth.trusted_relays with it)
        if env.client_ip.is_some() && relays.is_empty() {
            return named;
        }
        microsoft_block(raw, &own)
    }

    /// Whether upstream results stand in for our own checks: when they come
    /// from a declared relay (behind which SPF cannot be checked), or when
    /// impostor checks nothing itself. Otherwise our own checks decide, and a
    /// forged upstream header gains nothing.
    pub fn upstream_replaces_own(&self) -> bool {
        !self.trusted_relays.is_empty() || self.resolver.is_none()
    }

    /// Authentication results for a message: the trusted upstream's (see
    /// [`Authenticator::upstream_replaces_own`]), else our own checks within
    /// `dns.budget_ms`, else None (offline).
    pub async fn authenticate(&self, env: &Envelope, raw: &[u8], truncated: bool, upstream: &Upstream) -> Option<AuthResults> {
        if let Some(t) = upstream.results.as_ref().filter(|_| self.upstream_replaces_own()) {
            return Some(t.clone());
        }
        let resolver = self.resolver.as_ref()?;
        // one budget for the whole chain, however many lookups it takes; what finished in time is kept
        Some(check_message(resolver, &self.txt_cache, env, raw, truncated, self.budget).await)
    }

    /// Names whose parsed TXT record is cached (for tests and metrics).
    pub fn cached_records(&self) -> usize {
        self.txt_cache.len()
    }
}

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
    /// Microsoft's composite authentication (`compauth=`), with its reason code as detail.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compauth: Option<MethodResult>,
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
pub async fn check_message(
    auth: &MessageAuthenticator,
    cache: &resolver::TxtCache,
    env: &Envelope,
    raw: &[u8],
    truncated: bool,
    budget: std::time::Duration,
) -> AuthResults {
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
            tokio::time::timeout_at(deadline, auth.verify_dkim(Parameters::new(&msg).with_txt_cache(cache))).await.ok()
        }
    };
    let spf = async {
        let ip = env.client_ip?;
        let params = if by_mail_from {
            SpfParameters::verify_mail_from(ip, &helo, &host, &mail_from)
        } else {
            SpfParameters::verify_ehlo(ip, &helo, &host)
        };
        Some(tokio::time::timeout_at(deadline, auth.verify_spf(Parameters::new(params).with_txt_cache(cache))).await.ok())
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
        match tokio::time::timeout_at(
            deadline,
            auth.verify_dmarc(Parameters::new(DmarcParameters::new(&msg, &dkim_out, &mf_domain, spf)).with_txt_cache(cache)),
        )
        .await
        {
            Ok(d) => {
                let result = if truncated && dmarc_result(d.spf_result()) != AuthResult::Pass && d.dmarc_record().is_some() {
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

/// The unfolded values of the header fields named `name` (any case), as
/// [`header_fields`] gives them, without copying the other fields.
pub fn header_values<'a>(raw: &'a [u8], name: &'a str) -> impl Iterator<Item = String> + 'a {
    let mut lines = raw.split(|b| *b == b'\n').map(|l| l.strip_suffix(b"\r").unwrap_or(l)).take_while(|l| !l.is_empty()).peekable();
    std::iter::from_fn(move || loop {
        let line = lines.next()?;
        if line[0] == b' ' || line[0] == b'\t' {
            continue;
        }
        let Some(colon) = line.iter().position(|b| *b == b':') else { continue };
        if !String::from_utf8_lossy(&line[..colon]).trim().eq_ignore_ascii_case(name) {
            continue;
        }
        let mut value = String::from_utf8_lossy(&line[colon + 1..]).trim().to_string();
        // continuation lines, and (as header_fields reads them) lines without a colon between them
        while let Some(next) = lines.next_if(|l| l[0] == b' ' || l[0] == b'\t' || !l.contains(&b':')) {
            if next[0] == b' ' || next[0] == b'\t' {
                value.push(' ');
                value.push_str(String::from_utf8_lossy(next).trim());
            }
        }
        return Some(value);
    })
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

/// The `source` of results read from Microsoft 365's header.
pub const MICROSOFT_SOURCE: &str = "microsoft365";

/// Whether a host name is inside Microsoft's mail network (Exchange Online,
/// EOP): `*.outlook.com`, `*.outlook.office365.com`.
fn microsoft_host(host: &str) -> bool {
    let h = host.trim_end_matches('.').to_ascii_lowercase();
    ["outlook.com", "outlook.office365.com", "office365.com"].iter().any(|d| h == *d || h.ends_with(&format!(".{d}")))
}

/// The host a `Received` header names after `from` (its first word), lowercased.
pub fn received_from(value: &str) -> Option<String> {
    let v = strip_comments(value);
    let mut words = v.split_whitespace();
    (words.next()?.eq_ignore_ascii_case("from")).then(|| words.next().map(|h| h.to_ascii_lowercase())).flatten()
}

/// Microsoft 365 / Exchange Online Protection's own `Authentication-Results`:
/// the header has no authserv-id (its value starts with `spf=`, `dkim=`, …).
/// Only the topmost such header above the first `Received` that Microsoft did
/// not write between its own hosts is read: that Received records the hop from
/// the Internet into Microsoft (`from mta.sender.example … by
/// X.outlook.com`), and everything below it came with the message, so anyone
/// could have written it. `Received` headers of this host (`own_hosts`) and
/// Microsoft-internal hops (`from A.outlook.com by B.outlook.com`) do not end
/// the search. `Authentication-Results-Original` and `ARC-Authentication-Results`
/// are other header names and never read.
pub fn microsoft_block(raw: &[u8], own_hosts: &[&str]) -> Upstream {
    let mut out = Upstream::default();
    let mut ar_index = 0usize;
    for (name, value) in header_fields(raw) {
        if name.eq_ignore_ascii_case("Authentication-Results") {
            ar_index += 1;
            let first = strip_comments(&value);
            let first = first.split(';').next().unwrap_or("").trim().to_string();
            // an authserv-id is a name with no '='; Microsoft's first part is already a resinfo
            if !first.contains('=') {
                continue;
            }
            let mut res = AuthResults { source: MICROSOFT_SOURCE.into(), ..Default::default() };
            read_results(&mut res, MICROSOFT_SOURCE, &format!("microsoft; {value}"));
            // Microsoft writes `header.d=none` for an unsigned message
            for d in res.dkim.iter_mut().filter(|d| d.domain == "none") {
                d.domain.clear();
            }
            out.block.push(ar_index);
            out.results = Some(res);
            return out;
        }
        if name.eq_ignore_ascii_case("Received") {
            let by = received_by(&value).unwrap_or_default();
            let own = own_hosts.iter().any(|h| h.eq_ignore_ascii_case(&by));
            let internal = microsoft_host(&by) && received_from(&value).is_some_and(|f| microsoft_host(&f));
            if !(internal || own) {
                return out;
            }
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
            "compauth" if res.compauth.is_none() => {
                let detail = prop("reason").map(|r| format!("reason={r}")).unwrap_or_default();
                res.compauth = Some(MethodResult { result, domain: String::new(), detail });
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
#[cfg(test)]
mod header_values_tests {
    use super::*;

    #[test]
    fn header_values_are_header_fields_of_that_name() {
        let raws: [&[u8]; 4] = [
            b"DKIM-Signature: v=1; d=a.example;\r\n\tb=xyz\r\nFrom: x@y\r\ndkim-signature:d=b.example\r\n\r\nDKIM-Signature: body",
            b"From: a\nno colon line\n folded\nDKIM-Signature : d=c\n  more\nbroken\n\ttail\nSubject: s\n",
            b" leading fold\nDKIM-Signature:\nX: \xff\xfe\n",
            b"",
        ];
        for raw in raws {
            for name in ["DKIM-Signature", "From", "Subject", "X", "Missing"] {
                let want: Vec<String> =
                    header_fields(raw).into_iter().filter(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v).collect();
                assert_eq!(header_values(raw, name).collect::<Vec<_>>(), want, "{name} in {:?}", String::from_utf8_lossy(raw));
            }
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

    const GENUINE: &str =
        "Authentication-Results: mx.trusted.example; spf=fail smtp.mailfrom=openai.com; dkim=none; dmarc=fail header.from=openai.com\r\n";
    const FORGED: &str =
        "Authentication-Results: mx.trusted.example; dkim=pass header.d=openai.com header.s=s1; dmarc=pass header.from=openai.com\r\n";
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
        assert!(
            h.starts_with("impostor.test;\n\tspf=pass smtp.mailfrom=em.openai.com;\n\tdkim=pass header.d=openai.com header.s=s1;"),
            "{h}"
        );
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
            compauth: None,
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

    const MS_AR: &str = "Authentication-Results: spf=fail (sender IP is 139.177.195.128)\r\n smtp.mailfrom=bank.example; dkim=fail (no key for signature)\r\n header.d=other.example;dmarc=fail action=none\r\n header.from=bank.example;compauth=fail reason=001\r\n";
    const MS_ENTRY: &str = "Received: from mail.sender.example (139.177.195.128) by\r\n AM4PEPF00025F9A.mail.protection.outlook.com (10.167.16.9) with Microsoft SMTP\r\n Server id 15.20.8230.7; Mon, 9 Dec 2024 09:09:44 +0000\r\n";
    const MS_INTERNAL: &str = "Received: from AM4PEPF00025F9A.EURPRD83.prod.outlook.com (2603:10a6:20b:4b1::9)\r\n by DB9PR02CA0003.outlook.office365.com (2603:10a6:10:1d9::8) with Microsoft SMTP\r\n Server; Mon, 9 Dec 2024 09:09:45 +0000\r\n";
    const MS_FORGED: &str = "Authentication-Results: spf=pass (sender IP is 139.177.195.128) smtp.mailfrom=bank.example; dkim=pass header.d=bank.example; dmarc=pass action=none header.from=bank.example; compauth=pass reason=100\r\n";

    #[test]
    fn microsoft_results_are_read_from_above_the_entry_hop() {
        let raw = format!("{MS_INTERNAL}{MS_AR}Received-SPF: Fail (protection.outlook.com: domain of bank.example does not designate 139.177.195.128 as permitted sender)\r\n{MS_ENTRY}{MS_FORGED}From: a@bank.example\r\n\r\nx\r\n");
        let u = microsoft_block(raw.as_bytes(), &["mta.rcpt.example"]);
        assert_eq!(u.block, vec![1]);
        let r = u.results.unwrap();
        assert_eq!(r.source, MICROSOFT_SOURCE);
        assert_eq!(r.spf.as_ref().map(|s| (s.result, s.domain.as_str())), Some((AuthResult::Fail, "bank.example")));
        assert_eq!(r.dkim, vec![MethodResult { result: AuthResult::Fail, domain: "other.example".into(), detail: String::new() }]);
        assert_eq!(r.dmarc.as_ref().map(|d| (d.result, d.domain.as_str())), Some((AuthResult::Fail, "bank.example")));
        assert_eq!(r.compauth.map(|c| (c.result, c.detail)), Some((AuthResult::Fail, "reason=001".to_string())));
    }

    #[test]
    fn microsoft_header_below_the_entry_hop_is_the_senders() {
        // no header of Microsoft's own: the only one is below the hop from the Internet
        let raw = format!("{MS_INTERNAL}{MS_ENTRY}{MS_FORGED}From: a@bank.example\r\n\r\nx\r\n");
        assert_eq!(microsoft_block(raw.as_bytes(), &[]), Upstream::default());
        // a Received of someone else on top (not Microsoft's, not ours) ends the search at once
        let raw = format!(
            "Received: from x.example by relay.other.example; Mon, 9 Dec 2024 09:09:45 +0000\r\n{MS_AR}From: a@bank.example\r\n\r\nx\r\n"
        );
        assert_eq!(microsoft_block(raw.as_bytes(), &[]), Upstream::default());
        // other header names are never read
        let raw = format!(
            "ARC-Authentication-Results: i=1; {}\r\nAuthentication-Results-Original: {}\r\nFrom: a@bank.example\r\n\r\nx\r\n",
            "mx.microsoft.com 1; spf=pass smtp.mailfrom=bank.example; dmarc=pass header.from=bank.example",
            "spf=pass smtp.mailfrom=bank.example; dmarc=pass header.from=bank.example"
        );
        assert_eq!(microsoft_block(raw.as_bytes(), &[]), Upstream::default());
        // a header with an authserv-id is not Microsoft's
        let raw = format!("{GENUINE}From: a@bank.example\r\n\r\nx\r\n");
        assert_eq!(microsoft_block(raw.as_bytes(), &[]).results, None);
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
