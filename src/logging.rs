//! Log setup and the one-line-per-message record. No bodies, and addresses
//! only as configured (`log.addresses`, default: domain only).

use crate::analysis::{Envelope, Facts};
use crate::config::{Config, LogAddresses, LogFormat};
use crate::verdict::{fmt_score, Verdict};
use std::time::Duration;

/// Initialises tracing to stderr. `RUST_LOG` overrides `log.level`.
pub fn init(config: &Config) {
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&config.log.level));
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(std::io::stderr().is_terminal());
    let _ = match config.log.format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

/// An address as it may appear in logs.
pub fn redact(addr: &str, mode: LogAddresses) -> String {
    match mode {
        LogAddresses::Full => addr.to_string(),
        LogAddresses::None => "-".to_string(),
        LogAddresses::Domain => match addr.rsplit_once('@') {
            Some((_, d)) => format!("@{d}"),
            None if addr.is_empty() => "<>".to_string(),
            None => "-".to_string(),
        },
    }
}

pub fn log_verdict(config: &Config, env: Option<&Envelope>, queue_id: &str, v: &Verdict, facts: &Facts, elapsed: Duration) {
    let mode = config.log.addresses;
    let mail_from = env.and_then(|e| e.mail_from.as_deref()).map(|a| redact(a, mode)).unwrap_or_else(|| "-".into());
    let from_domain = match mode {
        LogAddresses::None => "-".to_string(),
        _ => facts.from_domain.clone().unwrap_or_else(|| "-".into()),
    };
    let client = env.and_then(|e| e.client_ip).map(|i| i.to_string()).unwrap_or_else(|| "-".into());
    let rules = v.rules.iter().map(|r| format!("{}={}", r.id, fmt_score(r.score))).collect::<Vec<_>>().join(",");
    let fail = v.error.as_deref().unwrap_or("");
    tracing::info!(
        queue_id,
        action = v.action.as_str(),
        monitor = v.monitor,
        score = v.score,
        rules = rules.as_str(),
        brand = v.brand.as_deref().unwrap_or("-"),
        client = client.as_str(),
        mail_from = mail_from.as_str(),
        from_domain = from_domain.as_str(),
        fail_mode = fail,
        ms = elapsed.as_secs_f64() * 1000.0,
        "verdict"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_domain_only_by_default() {
        assert_eq!(redact("jean@example.fr", LogAddresses::Domain), "@example.fr");
        assert_eq!(redact("", LogAddresses::Domain), "<>");
        assert_eq!(redact("jean@example.fr", LogAddresses::Full), "jean@example.fr");
        assert_eq!(redact("jean@example.fr", LogAddresses::None), "-");
    }
}
