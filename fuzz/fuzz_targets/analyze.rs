//! Fuzz target: message parsing + analysis (the same `analyze` the milter calls).
//!
//! Input: the first byte picks flags (body truncated, headers truncated, which
//! engine), the rest is the raw message (header block + body) as the milter
//! hands it to analysis. Any panic, abort, or hang is a finding.
use impostor::analysis::{analyze, Engine, Envelope, MessageInput};
use impostor::config::Config;
use std::sync::{Arc, OnceLock};

fn engines() -> &'static [Arc<Engine>; 2] {
    static E: OnceLock<[Arc<Engine>; 2]> = OnceLock::new();
    E.get_or_init(|| {
        let default = Engine::new(Config::from_toml_str("", "fuzz.toml").expect("default config")).expect("default policy");
        // a second brand set with more names, domains and keywords (deploy/brands-example.toml)
        let brands = include_str!("../../deploy/brands-example.toml");
        let extra = Config::from_toml_str(brands, "brands-example.toml")
            .ok()
            .and_then(|c| Engine::new(c).ok())
            .unwrap_or_else(|| default.clone());
        [default, extra]
    })
}

fn main() {
    let envelope = Envelope {
        client_ip: Some("203.0.113.7".parse().unwrap()),
        client_name: Some("mx.client.example".into()),
        helo: Some("mx.client.example".into()),
        mail_from: Some("bounce@example.net".into()),
        rcpt_to: vec!["jean@rcpt.example".into()],
        queue_id: Some("FUZZ".into()),
        auth_authen: None,
    };
    afl::fuzz!(|data: &[u8]| {
        let (flags, raw) = match data.split_first() {
            Some((f, r)) => (*f, r),
            None => (0, data),
        };
        let engine = &engines()[(flags >> 2 & 1) as usize];
        let input = MessageInput {
            envelope: &envelope,
            raw,
            truncated: flags & 1 != 0,
            headers_truncated: flags & 2 != 0,
            auth: None,
        };
        let (verdict, _facts) = analyze(engine, &input);
        // the verdict must render (header values, log line)
        let _ = verdict.rule_ids();
        let _ = format!("{:?}", verdict.action);
    });
}
