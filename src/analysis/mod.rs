//! Pure analysis: a message snapshot in, findings out. The milter session and
//! the `check`/`scan` CLIs call [`analyze`] alike, so what an operator sees
//! offline is what the daemon does.

pub mod sender;

use crate::brand::BrandSet;
use crate::config::Config;
use crate::verdict::{self, rules, Finding, Verdict};
use mail_parser::MessageParser;
use serde::Serialize;
use std::net::IpAddr;
use std::sync::Arc;

/// SMTP envelope and connection data as the MTA reported them.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Envelope {
    pub client_ip: Option<IpAddr>,
    pub client_name: Option<String>,
    pub helo: Option<String>,
    /// MAIL FROM address without angle brackets; empty for the null sender.
    pub mail_from: Option<String>,
    pub rcpt_to: Vec<String>,
    pub queue_id: Option<String>,
    /// `{auth_authen}`: the SASL login of an authenticated submission.
    pub auth_authen: Option<String>,
}

/// Everything analysis looks at for one message.
#[derive(Debug, Clone, Copy)]
pub struct MessageInput<'a> {
    pub envelope: &'a Envelope,
    /// Header block and (possibly truncated) body, as received.
    pub raw: &'a [u8],
    /// The body was cut at `milter.max_body_bytes`.
    pub truncated: bool,
}

/// Configuration plus everything precomputed from it at load time.
#[derive(Debug)]
pub struct Engine {
    pub config: Config,
    pub brands: BrandSet,
}

impl Engine {
    pub fn new(config: Config) -> Arc<Engine> {
        let brands = BrandSet::new(config.brands.clone());
        Arc::new(Engine { config, brands })
    }
}

/// Facts about the message that later stages (logs, actions) need.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    pub from_domain: Option<String>,
    pub subject: Option<String>,
    pub brand: Option<String>,
}

/// Runs every signal family over the message and returns the findings.
pub fn findings(engine: &Engine, input: &MessageInput) -> (Vec<Finding>, Facts) {
    let mut out = Vec::new();
    let mut facts = Facts::default();
    if input.truncated {
        out.push(Finding::new(
            rules::BODY_TRUNCATED,
            format!("body cut at {} bytes (milter.max_body_bytes)", engine.config.milter.max_body_bytes),
        ));
    }
    match MessageParser::default().parse(input.raw) {
        Some(msg) => sender::check(engine, &msg, &mut out, &mut facts),
        None => out.push(Finding::new(rules::MESSAGE_UNPARSEABLE, "no header block could be parsed")),
    }
    (out, facts)
}

/// Analyses and scores one message.
pub fn analyze(engine: &Engine, input: &MessageInput) -> (Verdict, Facts) {
    let (found, facts) = findings(engine, input);
    let verdict = verdict::score(&engine.config, found, facts.brand.clone());
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
