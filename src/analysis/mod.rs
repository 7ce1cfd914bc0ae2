//! Pure analysis: a message snapshot in, findings out. The milter session and
//! the `check`/`scan` CLIs call [`analyze`] alike, so what an operator sees
//! offline is what the daemon does.

pub mod authn;
pub mod content;
pub mod domains;
pub mod impersonation;
pub mod lookalike;
pub mod sender;

use crate::brand::BrandSet;
use crate::config::Config;
pub use crate::message::Envelope;
use crate::rule::{Finding, RuleDef, RuleId};
use crate::verdict::{self, Verdict};
use std::sync::Arc;

pub const ALLOWLISTED: RuleId = "ALLOWLISTED";
pub const ALLOWLIST_UNAUTHENTICATED: RuleId = "ALLOWLIST_UNAUTHENTICATED";
pub const BODY_TRUNCATED: RuleId = "BODY_TRUNCATED";
pub const HEADERS_TRUNCATED: RuleId = "HEADERS_TRUNCATED";
pub const MESSAGE_UNPARSEABLE: RuleId = "MESSAGE_UNPARSEABLE";
pub const ANALYSIS_TIMEOUT: RuleId = "ANALYSIS_TIMEOUT";
pub const REMOVABLE_HEADERS_LIMIT: RuleId = "REMOVABLE_HEADERS_LIMIT";

/// Every rule of the allow and limits families (emitted here, by the allowlists, and by the milter for its own limits).
#[rustfmt::skip]
pub static RULES: &[RuleDef] = &[
    RuleDef::new(ALLOWLISTED, "allow", 0.0, "Skipped by an allowlist: trusted client network, authenticated submission, exempt recipient, or an allowed domain that authenticated"),
    RuleDef::new(ALLOWLIST_UNAUTHENTICATED, "allow", 0.0, "From domain is allowlisted but did not authenticate (no DMARC or aligned DKIM pass): the allowlist was ignored"),
    RuleDef::new(BODY_TRUNCATED, "limits", 0.0, "Message body exceeded milter.max_body_bytes; only the first part was analysed"),
    RuleDef::new(HEADERS_TRUNCATED, "limits", 0.0, "More header fields or header bytes than milter.max_headers / max_header_bytes; the rest were not analysed"),
    RuleDef::new(MESSAGE_UNPARSEABLE, "limits", 0.0, "Message could not be parsed as MIME; header-only checks were skipped"),
    RuleDef::new(ANALYSIS_TIMEOUT, "limits", 0.0, "Content analysis took longer than milter.analysis_timeout_ms; the fail mode decided"),
    RuleDef::new(REMOVABLE_HEADERS_LIMIT, "limits", 0.0, "More than 1000 X-Impostor-* or Authentication-Results header fields, too many to remove: the message is rejected"),
];

/// Every rule impostor can report, each declared next to the code that
/// emits it: the one catalogue behind `impostor rules`, `docs/rules.md`, the
/// sample config and the policy (weights, groups, unknown-id errors).
pub fn catalog() -> impl Iterator<Item = &'static RuleDef> + Clone {
    sender::RULES
        .iter()
        .chain(domains::RULES)
        .chain(authn::RULES)
        .chain(content::RULES)
        .chain(impersonation::RULES)
        .chain(crate::intel::RULES)
        .chain(RULES)
}

/// Everything analysis looks at for one message.
#[derive(Debug, Clone, Copy)]
pub struct MessageInput<'a> {
    pub envelope: &'a Envelope,
    /// Header block and (possibly truncated) body, as received.
    pub raw: &'a [u8],
    /// The body was cut at `milter.max_body_bytes`.
    pub truncated: bool,
    /// Header fields beyond `milter.max_headers` / `max_header_bytes` were dropped.
    pub headers_truncated: bool,
    /// SPF/DKIM/DMARC results (own checks or trusted upstream); None when unknown (offline).
    pub auth: Option<&'a crate::auth::AuthResults>,
}

/// Configuration plus everything precomputed from it at load time.
pub struct Engine {
    pub config: Config,
    /// Weights, thresholds and overrides resolved against the rule catalogue.
    pub policy: verdict::Policy,
    pub brands: BrandSet,
    /// The lookalike matcher, built once per brand set.
    pub lookalike: lookalike::LookalikeMatcher,
    /// Lure phrases of every language, matched in one pass.
    pub phrases: Arc<content::Phrases>,
    /// Bounds on the content analysis of one message: the `[content]` keys (`config.content`).
    pub content_limits: content::Limits,
    /// SPF/DKIM/DMARC for this configuration: the resolver (None offline) and the trusted upstreams.
    pub auth: crate::auth::Authenticator,
    /// The local IOC blocklist (`intel.ioc_file`), read with the configuration.
    pub ioc: crate::intel::Ioc,
}

/// The built-in phrase sets, compiled once per process.
fn builtin_phrases() -> Arc<content::Phrases> {
    static P: std::sync::OnceLock<Arc<content::Phrases>> = std::sync::OnceLock::new();
    P.get_or_init(|| Arc::new(content::Phrases::builtin())).clone()
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").field("config", &self.config.source).field("online", &self.auth.is_online()).finish()
    }
}

impl Engine {
    /// An engine without DNS: authentication comes only from trusted
    /// recorded results. Fails when the configuration names a rule id or
    /// group the catalogue does not know.
    pub fn new(config: Config) -> Result<Arc<Engine>, crate::config::ConfigError> {
        let auth = crate::auth::Authenticator::offline(&config);
        Engine::build(config, auth).map(Arc::new)
    }

    /// An engine that checks SPF/DKIM/DMARC itself (when `auth.enabled`).
    /// The daemon builds its engines here (start and every reload), and warms them up ([`Engine::warm_up`]).
    pub fn online(config: Config) -> Result<Arc<Engine>, String> {
        let auth = crate::auth::Authenticator::online(&config)?;
        let engine = Engine::build(config, auth).map(Arc::new).map_err(|e| e.to_string())?;
        engine.warm_up();
        Ok(engine)
    }

    /// Analyses one built-in message that reaches every lazily built table (the
    /// phone number metadata, the word list of the lookalike segmenter, the
    /// HTML selectors, the data lists), so the daemon's first real message does
    /// not pay for them: about 60 ms, most of it the phone number metadata.
    pub fn warm_up(&self) {
        let envelope = Envelope {
            client_ip: Some(std::net::IpAddr::from([192, 0, 2, 1])),
            helo: Some("warm-up.invalid".into()),
            mail_from: Some("warm-up@openai-support.invalid".into()),
            rcpt_to: vec!["postmaster@localhost.invalid".into()],
            ..Default::default()
        };
        let input = MessageInput { envelope: &envelope, raw: WARM_UP_MESSAGE, truncated: false, headers_truncated: false, auth: None };
        let started = std::time::Instant::now();
        let _ = analyze_guarded(self, &input);
        tracing::debug!(elapsed_ms = started.elapsed().as_millis() as u64, "analysis tables built");
    }

    fn build(config: Config, auth: crate::auth::Authenticator) -> Result<Engine, crate::config::ConfigError> {
        let policy = verdict::Policy::build(&config, catalog())?;
        let brands = BrandSet::new(config.brands.clone());
        let lookalike = lookalike::LookalikeMatcher::new(&config.brands);
        let c = &config.content;
        // every field named, none defaulted: a new limit needs its `[content]` key
        let content_limits = content::Limits {
            max_parts: c.max_parts,
            max_text_bytes: c.max_text_bytes,
            max_html_bytes: c.max_html_bytes,
            max_html_depth: c.max_html_depth,
            max_html_tags: c.max_html_tags,
            max_links: c.max_links,
            max_image_bytes: c.max_image_bytes,
            max_image_pixels: c.max_image_pixels,
            max_qr_images: c.max_qr_images,
            max_qr_finders: c.max_qr_finders,
            max_qr_time: std::time::Duration::from_millis(c.max_qr_time_ms),
            max_depth: c.max_depth,
            max_phone_candidates: c.max_phone_candidates,
        };
        let ioc =
            crate::intel::Ioc::load(&config.raw.intel.ioc_file).map_err(|e| crate::config::ConfigError::invalid(&config.source, e))?;
        let phrases = match config.raw.intel.phrases_dir.as_str() {
            "" => builtin_phrases(),
            dir => Arc::new(
                content::Phrases::load_dir(std::path::Path::new(dir))
                    .map_err(|e| crate::config::ConfigError::invalid(&config.source, format!("intel.phrases_dir: {e}")))?,
            ),
        };
        Ok(Engine { config, policy, brands, lookalike, phrases, content_limits, auth, ioc })
    }
}

/// [`Engine::warm_up`]'s message: HTML with a link, a form, a phone number and a
/// lure, from a combosquat of a brand-like name, with a plain-text alternative.
const WARM_UP_MESSAGE: &[u8] = b"From: \"Support Team\" <warm-up@openai-support.invalid>\r\n\
Reply-To: help@gmail.com\r\nTo: <postmaster@localhost.invalid>\r\nSubject: Your account: unusual sign-in\r\n\
Message-ID: <warm-up@impostor.invalid>\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/alternative; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\
We noticed an unusual sign-in. Call +1 415 555 0100 or confirm your API key at https://openai-support.invalid/verify\r\n\
--b\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<html><head><title>Account</title></head><body>\
<p style=\"display:none\">hidden</p><p>If this wasn't you, <a href=\"https://bit.ly/x\">sign in</a>.</p>\
<form action=\"https://openai-support.invalid/login\"><input type=\"password\"></form><img alt=\"logo\" src=\"cid:x\"></body></html>\r\n\
--b--\r\n";

/// Facts about the message that later stages (logs, actions) need.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    /// Host part of the From address, lowercased.
    pub from_domain: Option<String>,
    pub subject: Option<String>,
    /// Brand the message names anywhere (display name, subject, From domain).
    pub brand: Option<String>,
    /// Brand the message claims to be (display name, lookalike From domain,
    /// body sign-off): a claim, not a mere mention.
    pub claimed_brand: Option<usize>,
    /// How it claims it, for evidence ("display name", "From domain").
    pub claim_evidence: Option<String>,
    /// Brands this message authenticates as: its From is the brand's domain or
    /// one of the brand's `senders`, with a DMARC or aligned DKIM pass for it.
    /// Only then do the brand's `senders` count (as link hosts, Reply-To, the
    /// From itself); offline (no results) this is empty. See docs/brands.md.
    pub vouched: Vec<usize>,
    /// How the first vouched brand authenticated, for evidence.
    pub vouched_evidence: Option<String>,
    /// The From is one of `[org] domains` and passes DMARC or aligned DKIM:
    /// the organisation's own mail, never "foreign" to a brand it names.
    pub org_authenticated: bool,
    /// Every place the message claims or names a brand as its sender, strong and weak, for the
    /// composite judgement (`impersonation`).
    pub claims: Vec<impersonation::ClaimPlace>,
    /// Where the banner of tagged mail would go (`tag.banner` on), read off
    /// the analysis's parse so that the banner needs no second one.
    pub banner_sites: Option<crate::banner::Sites>,
}

impl Facts {
    /// The message claims `brand` at a strong place (display name, lookalike From) or by its
    /// body sign-off: sets the claimed brand (the first claim wins) and records the place.
    pub fn claim(&mut self, brand: usize, how: &'static str) {
        if self.claimed_brand.is_none() {
            self.claimed_brand = Some(brand);
            self.claim_evidence = Some(how.to_string());
        }
        let strong = how != "body sign-off";
        self.place(brand, how, strong);
    }

    /// Records a place the message claims `brand` without making it the claimed brand
    /// (Subject, lookalike Reply-To): context for the composite judgement.
    pub fn place(&mut self, brand: usize, place: &'static str, strong: bool) {
        let p = impersonation::ClaimPlace { brand, place, strong };
        if !self.claims.contains(&p) {
            self.claims.push(p);
        }
    }
}

/// Runs every signal family over the message and returns the findings.
pub fn findings(engine: &Engine, input: &MessageInput) -> (Vec<Finding>, Facts) {
    let mut out = Vec::new();
    let mut facts = Facts::default();
    if input.truncated {
        out.push(Finding::new(
            BODY_TRUNCATED,
            format!("body cut at {} bytes (milter.max_body_bytes)", engine.config.milter.max_body_bytes),
        ));
    }
    if input.headers_truncated {
        let m = &engine.config.milter;
        out.push(Finding::new(
            HEADERS_TRUNCATED,
            format!("more than {} header fields or {} header bytes; the rest were not analysed", m.max_headers, m.max_header_bytes),
        ));
    }
    let mut shown = None;
    match crate::message::parser().parse(input.raw) {
        Some(msg) => {
            // the first text body (HTML converted by mail-parser): the sign-off, and the banner's language
            let body_text = msg.body_text(0);
            sender::check(engine, &msg, body_text.as_deref(), input.auth, &mut out, &mut facts);
            domains::check(engine, input.envelope, &msg, &mut out, &mut facts);
            let look = |h: &str| domains::lookalike(engine, h).map(|m| (m.brand.clone(), domains::evidence(&m)));
            shown =
                Some(content::check(&msg, &engine.brands, &facts, &engine.phrases, &look, &engine.content_limits, &engine.ioc, &mut out));
            if engine.config.tag.banner {
                facts.banner_sites = crate::banner::sites(input.raw, &msg, body_text.as_deref());
            }
            crate::message::drop_flat(msg);
        }
        None => out.push(Finding::new(MESSAGE_UNPARSEABLE, "no header block could be parsed")),
    }
    if !engine.ioc.is_empty() {
        let envelope_domain = input.envelope.mail_from.as_deref().and_then(crate::domain::domain_of);
        let senders: Vec<&str> = facts.from_domain.iter().chain(envelope_domain.iter()).map(String::as_str).collect();
        let links = shown.iter().flat_map(|c| c.links.iter()).map(|l| (l.url.as_str(), l.host.as_deref()));
        engine.ioc.check(&senders, links, &mut out);
    }
    authn::check(&engine.brands, input.envelope, input.raw, input.auth, &facts, &mut out);
    impersonation::check(&engine.brands, &facts, shown.as_ref(), input.auth, &mut out);
    (out, facts)
}

/// Allowlists decided from the envelope alone: trusted client networks,
/// authenticated submission, exempt recipients.
pub fn envelope_allowlisted(config: &Config, env: &Envelope) -> Option<String> {
    let allow = &config.allow;
    if let Some(ip) = env.client_ip {
        if let Some(net) = allow.client_networks.iter().find(|n| n.contains(&ip)) {
            return Some(format!("client {ip} in allow.client_networks {net}"));
        }
    }
    if allow.skip_authenticated && env.auth_authen.is_some() {
        return Some("authenticated submission ({auth_authen} set)".into());
    }
    if !env.rcpt_to.is_empty()
        && !allow.recipients.is_empty()
        && env.rcpt_to.iter().all(|r| allow.recipients.iter().any(|a| a.eq_ignore_ascii_case(r)))
    {
        return Some("every recipient is in allow.recipients".into());
    }
    None
}

fn allowlisted(config: &Config, reason: String) -> Verdict {
    Verdict {
        action: verdict::Action::Accept,
        score: 0.0,
        rules: vec![verdict::ScoredFinding { id: ALLOWLISTED, score: 0.0, evidence: reason, monitor: false }],
        monitor: config.monitor,
        brand: None,
        error: None,
        decided_by: "allowlist".into(),
    }
}

/// The `allow.domains` entry covering `domain`, if any.
fn allowed_domain<'a>(config: &'a Config, domain: &str) -> Option<&'a str> {
    config.allow.domains.iter().find(|a| domain == a.as_str() || domain.ends_with(&format!(".{a}"))).map(String::as_str)
}

/// Analyses and scores one message.
pub fn analyze(engine: &Engine, input: &MessageInput) -> (Verdict, Facts) {
    if let Some(reason) = envelope_allowlisted(&engine.config, input.envelope) {
        return (allowlisted(&engine.config, reason), Facts::default());
    }
    // Without results of our own (offline: scan of archived mail), the
    // trusted upstream's stand in.
    let recorded;
    let with_recorded;
    let input = match input.auth {
        Some(_) => input,
        None => {
            recorded = engine.auth.upstream(input.envelope, input.raw).results;
            with_recorded = MessageInput { auth: recorded.as_ref(), ..*input };
            &with_recorded
        }
    };
    let (mut found, facts) = findings(engine, input);
    // Authenticated mail from the organisation's own domains ([org] domains, DMARC or aligned DKIM)
    // impersonates nobody: the lure phrases of a security advisory that warns staff are shown as
    // context, not counted.
    if facts.org_authenticated {
        for f in found.iter_mut().filter(|f| f.rule.starts_with("LURE_") || f.rule == content::CREDENTIAL_LURE_BRAND_CLAIM) {
            f.scale = 0.0;
            f.evidence.push_str(" (authenticated mail of the organisation: context)");
        }
    }
    // A sender-domain allowlist counts only when the domain authenticated:
    // a plain sender allowlist is how attackers get in.
    if let Some(from) = facts.from_domain.as_deref() {
        if let Some(allowed) = allowed_domain(&engine.config, from) {
            if input.auth.is_some_and(|a| crate::auth::dmarc_or_dkim_pass(a, from)) {
                let v = allowlisted(&engine.config, format!("From {from} is in allow.domains ({allowed}) and authenticated"));
                return (v, facts);
            }
            found.push(Finding::new(
                ALLOWLIST_UNAUTHENTICATED,
                format!("From {from} is in allow.domains ({allowed}) but has no DMARC or aligned DKIM pass; allowlist ignored"),
            ));
        }
    }
    let temperror = found.iter().any(|f| f.rule == authn::DNS_TEMPERROR);
    let mut verdict = verdict::score(&engine.policy, found, facts.brand.clone());
    // A failed lookup matters only when it could change the verdict: the
    // message names a brand, so its authentication decides. Then the MTA is
    // asked to retry (dns.on_error = "tempfail"); a reject stands.
    if temperror
        && facts.brand.is_some()
        && engine.config.dns.on_error == crate::config::DnsOnError::Tempfail
        && verdict.action < verdict::Action::Reject
    {
        verdict.action = verdict::Action::Tempfail;
        verdict.decided_by = "dns.on_error = tempfail: a DNS lookup failed and the message names a brand".into();
    }
    (verdict, facts)
}

/// Runs [`analyze`] and turns a panic into the configured fail mode, so one bad
/// message never takes the caller down.
pub fn analyze_guarded(engine: &Engine, input: &MessageInput) -> (Verdict, Facts) {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| analyze(engine, input))) {
        Ok(r) => r,
        Err(p) => {
            let msg = p
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| p.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            tracing::error!(queue_id = input.envelope.queue_id.as_deref().unwrap_or("-"), "analysis panicked: {msg}");
            (Verdict::failed(&engine.config, "internal error"), Facts::default())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verdict::Action;

    // one display-name claim from a foreign domain (6.0): tag when analysed
    const SPOOF: &str = "From: \"OpenAI Billing\" <billing@partner.example>\r\nSubject: OpenAI invoice\r\n\r\nPay now.\r\n";

    fn run(toml: &str, env: &Envelope, raw: &str) -> Verdict {
        let engine = Engine::new(Config::from_toml_str(toml, "t.toml").unwrap()).unwrap();
        analyze(&engine, &MessageInput { envelope: env, raw: raw.as_bytes(), truncated: false, headers_truncated: false, auth: None }).0
    }

    #[test]
    fn phone_numbers_are_read_for_the_calls_to_action_within_max_phone_candidates() {
        let env = Envelope { client_ip: Some("203.0.113.7".parse().unwrap()), ..Default::default() };
        // a callback lure claiming OpenAI whose number follows `decoys` numbers no region holds valid
        let msg = |decoys: usize| {
            let d: String = (0..decoys).map(|i| format!("call 0000 {i:03} 0000\r\n")).collect();
            format!(
                "From: \"OpenAI Billing\" <billing@invoice-desk.example>\r\nSubject: Your ChatGPT Team renewal\r\n\r\n\
                 We charged $499.00. If you did not authorize this charge, call our billing department.\r\n{d}\
                 call +1 888 555 0142\r\n\r\nOpenAI Billing\r\n"
            )
        };
        let cta = |v: &Verdict| v.rules.iter().find(|r| r.id == "CALL_TO_ACTION").map(|r| r.evidence.clone()).unwrap_or_default();
        let limit = |v: &Verdict| v.rules.iter().find(|r| r.id == "CONTENT_LIMIT_REACHED").map(|r| r.evidence.clone());
        let v = run("", &env, &msg(10));
        assert!(cta(&v).contains("phone number +18885550142"), "{}", cta(&v));
        assert_eq!(limit(&v), None);
        // past the default 50 judged candidates the number is not read, and the verdict says so
        let v = run("", &env, &msg(60));
        assert!(!cta(&v).contains("phone number"), "{}", cta(&v));
        assert_eq!(limit(&v).as_deref(), Some("max_phone_candidates (50): the rest of the text was not read for phone numbers"));
        // the key moves the bound
        let v = run("[content]\nmax_phone_candidates = 100\n", &env, &msg(60));
        assert!(cta(&v).contains("phone number +18885550142"), "{}", cta(&v));
        assert_eq!(limit(&v), None);
    }

    #[test]
    fn a_team_phrase_file_in_intel_phrases_dir_is_a_lure_finding() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("en.txt"), "# our own lure\npassword\tre-enter your corporate sso passphrase\n").unwrap();
        let toml = format!("[intel]\nphrases_dir = {:?}\n", dir.path().display().to_string());
        let env = Envelope { client_ip: Some("203.0.113.7".parse().unwrap()), ..Default::default() };
        let raw = "From: IT <it@partner.example>\r\nSubject: action needed\r\n\r\nPlease re-enter your corporate SSO passphrase today.\r\n";
        let v = run(&toml, &env, raw);
        let lure = v.rules.iter().find(|r| r.id == "LURE_PASSWORD").map(|r| r.evidence.clone());
        assert_eq!(lure.as_deref(), Some("\"re-enter your corporate sso passphrase\" (en)"), "{:?}", v.rule_ids());
        assert!(!run("", &env, raw).rule_ids().contains(&"LURE_PASSWORD"), "not a built-in phrase");
        // a bad line names the file and the line
        std::fs::write(dir.path().join("fr.txt"), "nonsense line\n").unwrap();
        let e = Engine::new(Config::from_toml_str(&toml, "t.toml").unwrap()).unwrap_err().to_string();
        assert!(e.contains("intel.phrases_dir") && e.contains("fr.txt:1"), "{e}");
    }

    #[test]
    fn local_freemail_and_shortener_entries_extend_the_compiled_lists() {
        let dir = tempfile::tempdir().unwrap();
        let ioc = dir.path().join("local.txt");
        std::fs::write(&ioc, "freemail  post.example-isp.net\nshortener go.example-short.link\n").unwrap();
        let toml = format!("[intel]\nioc_file = {:?}\n", ioc.display().to_string());
        let env = Envelope { client_ip: Some("203.0.113.7".parse().unwrap()), ..Default::default() };
        let raw = "From: \"OpenAI Billing\" <billing@partner.example>\r\nReply-To: desk@post.example-isp.net\r\n\
Subject: invoice\r\n\r\nPay here: https://go.example-short.link/x1\r\n";
        let with = run(&toml, &env, raw).rule_ids();
        let without = run("", &env, raw).rule_ids();
        for id in ["REPLY_TO_FREEMAIL_BRAND_CLAIM", "LINK_SHORTENER"] {
            assert!(with.contains(&id) && !without.contains(&id), "{id}: with the local list {with:?}, without {without:?}");
        }
        // entries that are no indicators find nothing by themselves
        assert!(!with.iter().any(|r| r.starts_with("IOC_")), "{with:?}");
    }

    #[test]
    fn warm_up_message_reaches_the_lazily_built_tables() {
        // the HTML walk (form, password field), the link lists (shortener), the
        // lookalike segmenter (combosquat word) and the phone number metadata
        let raw = std::str::from_utf8(WARM_UP_MESSAGE).unwrap();
        let env = Envelope { client_ip: Some("192.0.2.1".parse().unwrap()), ..Default::default() };
        let v = run("", &env, raw);
        for id in ["FORM_PASSWORD_FIELD", "LINK_SHORTENER", "LOOKALIKE_FROM_DOMAIN"] {
            assert!(v.rule_ids().contains(&id), "{id} missing: {:?}", v.rule_ids());
        }
        let cta = v.rules.iter().find(|r| r.id == "CALL_TO_ACTION").map(|r| r.evidence.clone()).unwrap_or_default();
        assert!(cta.contains("phone number +14155550100"), "{cta}");
        assert!(v.rules.iter().any(|r| r.id == "LOOKALIKE_FROM_DOMAIN" && r.evidence.contains("combosquat: \"support\"")));
    }

    #[test]
    fn trusted_client_network_is_not_analysed() {
        let env = Envelope { client_ip: Some("10.1.2.3".parse().unwrap()), ..Default::default() };
        let v = run("[allow]\nclient_networks = [\"10.0.0.0/8\"]\n", &env, SPOOF);
        assert_eq!((v.action, v.rule_ids()), (Action::Accept, vec!["ALLOWLISTED"]));
        let outside = Envelope { client_ip: Some("203.0.113.7".parse().unwrap()), ..Default::default() };
        assert_eq!(run("[allow]\nclient_networks = [\"10.0.0.0/8\"]\n", &outside, SPOOF).action, Action::Tag);
    }

    #[test]
    fn authenticated_submission_is_skipped_unless_configured() {
        let env = Envelope { auth_authen: Some("jean".into()), ..Default::default() };
        assert_eq!(run("", &env, SPOOF).rule_ids(), vec!["ALLOWLISTED"]);
        assert_eq!(run("[allow]\nskip_authenticated = false\n", &env, SPOOF).action, Action::Tag);
    }

    #[test]
    fn exempt_recipient_only_when_all_recipients_are_exempt() {
        let toml = "[allow]\nrecipients = [\"abuse@rcpt.example\"]\n";
        let one = Envelope { rcpt_to: vec!["Abuse@rcpt.example".into()], ..Default::default() };
        assert_eq!(run(toml, &one, SPOOF).rule_ids(), vec!["ALLOWLISTED"]);
        let mixed = Envelope { rcpt_to: vec!["abuse@rcpt.example".into(), "jean@rcpt.example".into()], ..Default::default() };
        assert_eq!(run(toml, &mixed, SPOOF).action, Action::Tag);
    }

    #[test]
    fn allowlisted_domain_counts_only_when_it_authenticates() {
        let toml = "[allow]\ndomains = [\"partner.example\"]\n[auth]\ntrusted_authserv_ids = [\"mx.rcpt.example\"]\n";
        let env = Envelope::default();
        let v = run(toml, &env, SPOOF);
        assert_eq!(v.action, Action::Tag, "{v:?}");
        assert!(v.rule_ids().contains(&"ALLOWLIST_UNAUTHENTICATED"));
        let spf_only = format!("Authentication-Results: mx.rcpt.example; spf=pass smtp.mailfrom=partner.example\r\n{SPOOF}");
        assert!(run(toml, &env, &spf_only).rule_ids().contains(&"ALLOWLIST_UNAUTHENTICATED"), "SPF alone does not unlock the allowlist");
        let dkim = format!("Authentication-Results: mx.rcpt.example; dkim=pass header.d=partner.example\r\n{SPOOF}");
        assert_eq!(run(toml, &env, &dkim).rule_ids(), vec!["ALLOWLISTED"]);
        let forged = format!("Authentication-Results: partner.example; dkim=pass header.d=partner.example\r\n{SPOOF}");
        assert!(run(toml, &env, &forged).rule_ids().contains(&"ALLOWLIST_UNAUTHENTICATED"), "untrusted A-R ignored");
    }
}

#[cfg(test)]
mod claim_tests {
    use super::*;

    #[test]
    fn body_sign_off_is_a_brand_claim_needing_authentication() {
        let engine =
            Engine::new(Config::from_toml_str("[auth]\ntrusted_authserv_ids = [\"mx.rcpt.example\"]\n", "t.toml").unwrap()).unwrap();
        let raw = "Authentication-Results: mx.rcpt.example; spf=pass smtp.mailfrom=notice.example; dmarc=pass header.from=notice.example\r\nFrom: Accounts <accounts@notice.example>\r\nSubject: Action required\r\n\r\nPlease confirm your API key.\r\n\r\nThe OpenAI Team\r\n";
        let env = Envelope::default();
        let (v, facts) =
            analyze(&engine, &MessageInput { envelope: &env, raw: raw.as_bytes(), truncated: false, headers_truncated: false, auth: None });
        assert_eq!(facts.claim_evidence.as_deref(), Some("body sign-off"));
        assert!(v.rule_ids().contains(&"BRAND_CLAIM_UNAUTHENTICATED"), "{v:?}");
    }
}
