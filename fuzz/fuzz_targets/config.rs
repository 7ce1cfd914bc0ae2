//! Fuzz target: config loading (`Config::from_toml_str`, as `impostor config check`
//! and SIGHUP reload use it) and building an engine from whatever it accepts.
//! A bad config must be an error, never a panic; an accepted one must build an
//! engine that can analyse a message.
use impostor::analysis::{analyze, Engine, Envelope, MessageInput};
use impostor::config::Config;

const MSG: &[u8] = b"From: \"OpenAI Billing\" <billing@example.net>\r\nSubject: OpenAI invoice\r\n\r\nPay now at https://openai-billing.example/login\r\n";

fn main() {
    let envelope = Envelope {
        mail_from: Some("bounce@example.net".into()),
        ..Default::default()
    };
    afl::fuzz!(|data: &[u8]| {
        let Ok(text) = std::str::from_utf8(data) else {
            return;
        };
        // a configuration must load, or fail with a message; an engine built from it must analyse
        if let Some(engine) = Config::from_toml_str(text, "fuzz.toml").ok().and_then(|c| Engine::new(c).ok()) {
            let input = MessageInput {
                envelope: &envelope,
                raw: MSG,
                truncated: false,
                headers_truncated: false,
                auth: None,
            };
            let _ = analyze(&engine, &input);
        }
    });
}
