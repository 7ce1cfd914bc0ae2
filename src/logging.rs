//! Log setup and the one-line-per-message record. No bodies, and addresses
//! only as configured (`log.addresses`, default: domain only).

use crate::analysis::{Envelope, Facts};
use crate::config::{Config, LogAddresses, LogFormat, LogOutput};
use crate::verdict::{fmt_score, Verdict};
use std::time::Duration;

/// Initialises tracing to `log.output`: standard error, or the syslog socket
/// with `log.facility`. `RUST_LOG` overrides `log.level`.
pub fn init(config: &Config) {
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&config.log.level));
    use std::io::IsTerminal;
    let sink = Sink::new(&config.log);
    let ansi = matches!(sink.dest, Dest::Stderr { journal: false }) && std::io::stderr().is_terminal();
    // syslog and the journal stamp each line themselves
    let timed = matches!(sink.dest, Dest::Stderr { journal: false });
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(sink).with_ansi(ansi);
    let _ = match (config.log.format, timed) {
        (LogFormat::Json, true) => builder.json().flatten_event(true).try_init(),
        (LogFormat::Json, false) => builder.json().flatten_event(true).without_time().try_init(),
        (LogFormat::Text, true) => builder.try_init(),
        (LogFormat::Text, false) => builder.without_time().try_init(),
    };
}

/// Syslog severity (RFC 5424) of a tracing level: error 3, warning 4, info 6, debug 7.
pub fn severity(level: &tracing::Level) -> u8 {
    match *level {
        tracing::Level::ERROR => 3,
        tracing::Level::WARN => 4,
        tracing::Level::INFO => 6,
        _ => 7,
    }
}

#[derive(Clone)]
enum Dest {
    /// `journal`: stderr is the journal's stream (systemd sets `JOURNAL_STREAM`), and each
    /// line starts with its priority, `<6>`, as sd-daemon(3) describes.
    Stderr { journal: bool },
    /// RFC 3164 datagrams, `<22>impostor[PID]: line`, to the syslog daemon's socket.
    Syslog { socket: std::sync::Arc<std::os::unix::net::UnixDatagram>, path: std::path::PathBuf, facility: u8 },
}

/// Where log lines go: the writer of the tracing subscriber, one line per event.
#[derive(Clone)]
pub struct Sink {
    dest: Dest,
    json: bool,
}

impl Sink {
    pub fn new(log: &crate::config::LogConfig) -> Sink {
        let json = log.format == LogFormat::Json;
        let stderr = Dest::Stderr { journal: std::env::var_os("JOURNAL_STREAM").is_some() && !is_tty() };
        let dest = match log.output {
            LogOutput::Stderr => stderr,
            LogOutput::Syslog => match std::os::unix::net::UnixDatagram::unbound() {
                Ok(s) => {
                    Dest::Syslog { socket: std::sync::Arc::new(s), path: log.syslog_socket.clone().into(), facility: log.facility.code() }
                }
                Err(e) => {
                    eprintln!("impostor: log.output = \"syslog\": cannot open a datagram socket ({e}); logging to stderr");
                    stderr
                }
            },
        };
        Sink { dest, json }
    }
}

fn is_tty() -> bool {
    use std::io::IsTerminal;
    std::io::stderr().is_terminal()
}

/// One event's line, sent when the formatter is done with it (on drop).
pub struct Line {
    sink: Sink,
    severity: u8,
    buf: Vec<u8>,
}

impl std::io::Write for Line {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// One line for stderr, newline included; with the journal's `<severity>`
/// prefix when stderr is the journal's stream.
fn stderr_line(text: &str, journal_severity: Option<u8>) -> String {
    let mut line = String::with_capacity(text.len() + 5);
    if let Some(sev) = journal_severity {
        line.push('<');
        line.push(char::from(b'0' + sev.min(7)));
        line.push('>');
    }
    line.push_str(text);
    line.push('\n');
    line
}

impl Drop for Line {
    fn drop(&mut self) {
        let text = String::from_utf8_lossy(&self.buf);
        let text = text.trim_end_matches('\n');
        if text.is_empty() {
            return;
        }
        let text = if self.sink.json { json_rules(text) } else { text.to_string() };
        use std::io::Write;
        match &self.sink.dest {
            Dest::Stderr { journal } => {
                // one write(2) per line: stderr is unbuffered, and `writeln!` would write the
                // text and the newline separately (two system calls; lines of concurrent
                // connections could interleave between them)
                let line = stderr_line(&text, journal.then_some(self.severity));
                let _ = std::io::stderr().lock().write_all(line.as_bytes());
            }
            Dest::Syslog { socket, path, facility } => {
                let pri = u16::from(*facility) * 8 + u16::from(self.severity);
                let datagram = format!("<{pri}>impostor[{}]: {text}", std::process::id());
                // a syslog daemon that is away (restarting) loses the line; the milter goes on
                let _ = socket.send_to(datagram.as_bytes(), path);
            }
        }
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Sink {
    type Writer = Line;
    fn make_writer(&'a self) -> Line {
        Line { sink: self.clone(), severity: 6, buf: Vec::new() }
    }
    fn make_writer_for(&'a self, meta: &tracing::Metadata<'_>) -> Line {
        Line { sink: self.clone(), severity: severity(meta.level()), buf: Vec::new() }
    }
}

/// In a JSON line, the `rules` field as logged (a JSON text in a string, as tracing
/// fields are plain values) becomes the array itself: `"rules":[{"id":…,"score":…}]`.
fn json_rules(line: &str) -> String {
    const KEY: &str = "\"rules\":";
    let Some(at) = line.find(KEY).map(|i| i + KEY.len()) else { return line.to_string() };
    let mut de = serde_json::Deserializer::from_str(&line[at..]).into_iter::<String>();
    let Some(Ok(inner)) = de.next() else { return line.to_string() };
    let end = at + de.byte_offset();
    if serde_json::from_str::<serde_json::Value>(&inner).map_or(true, |v| !v.is_array()) {
        return line.to_string();
    }
    format!("{}{inner}{}", &line[..at], &line[end..])
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
    let rules = if config.log.format == LogFormat::Json {
        // an array of {id, score} in the JSON line (see json_rules)
        let list: Vec<serde_json::Value> = v.rules.iter().map(|r| serde_json::json!({"id": r.id, "score": r.score})).collect();
        serde_json::Value::Array(list).to_string()
    } else {
        v.rules.iter().map(|r| format!("{}={}", r.id, fmt_score(r.score))).collect::<Vec<_>>().join(",")
    };
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
    fn stderr_lines_end_in_one_newline_with_the_journal_prefix_when_asked() {
        assert_eq!(stderr_line("verdict=accept", None), "verdict=accept\n");
        assert_eq!(stderr_line("verdict=reject", Some(4)), "<4>verdict=reject\n");
        assert_eq!(stderr_line("x", Some(6)), "<6>x\n");
    }

    #[test]
    fn addresses_are_domain_only_by_default() {
        assert_eq!(redact("jean@example.fr", LogAddresses::Domain), "@example.fr");
        assert_eq!(redact("", LogAddresses::Domain), "<>");
        assert_eq!(redact("jean@example.fr", LogAddresses::Full), "jean@example.fr");
        assert_eq!(redact("jean@example.fr", LogAddresses::None), "-");
    }

    #[test]
    fn json_rules_become_an_array_of_id_and_score() {
        let line = r#"{"level":"INFO","queue_id":"4ABC","rules":"[{\"id\":\"SPF_FAIL\",\"score\":2.5}]","brand":"-"}"#;
        let v: serde_json::Value = serde_json::from_str(&json_rules(line)).unwrap();
        assert_eq!(v["rules"], serde_json::json!([{"id": "SPF_FAIL", "score": 2.5}]));
        assert_eq!(v["brand"], "-");
        // a string that is no array stays a string
        let plain = r#"{"rules":"a=1","x":1}"#;
        assert_eq!(json_rules(plain), plain);
    }

    #[test]
    fn levels_map_to_syslog_severities() {
        assert_eq!(severity(&tracing::Level::ERROR), 3);
        assert_eq!(severity(&tracing::Level::WARN), 4);
        assert_eq!(severity(&tracing::Level::INFO), 6);
        assert_eq!(severity(&tracing::Level::DEBUG), 7);
    }
}
