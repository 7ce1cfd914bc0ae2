//! Configuration: TOML (parsed by `toml`, whose errors give the line) → serde structs with
//! `deny_unknown_fields` → validated, immutable [`Config`].
//!
//! Every key has a default, so an empty file (or a file that only adds
//! `[[brand]]` tables) is a valid configuration. Errors name the file, the key
//! and the value.
//!
//! `raw.rs` holds the file as written, `validate.rs` the checked [`Config`],
//! `socket.rs` the socket and resolver addresses, `brand.rs` the brand
//! profiles; every item is re-exported here, as `crate::config::X`.

mod brand;
mod locate;
mod raw;
mod socket;
mod validate;

pub use brand::{builtin_brands, Brand};
pub use raw::{AllowConfig, AuthConfig, BrandConfig, BrandOverrides, ContentConfig, DnsConfig, DnsOnError, FailMode, LogAddresses};
pub use raw::{IntelConfig, LogOutput, SyslogFacility};
pub use raw::{
    LogConfig, LogFormat, MetricsConfig, MilterConfig, OrgConfig, QuarantineConfig, QuarantineFallback, RawConfig, RejectConfig,
};
pub use raw::{ReviewConfig, RulesConfig, TagConfig, Thresholds, MAX_DNS_BUDGET_MS};
pub use socket::{parse_nameserver, SocketSpec};
use std::path::Path;
pub use validate::{Config, Overrides};

/// Where `serve`, `check` and `scan` look when no `-c` is given.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/impostor/impostor.toml";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// `line` is where the key is in the file, when it is there (not for defaults or flags).
    #[error("{file}{}: {message}", line.map(|l| format!(":{l}")).unwrap_or_default())]
    Invalid { file: String, line: Option<usize>, message: String },
    #[error("{file}: cannot read: {source}")]
    Read { file: String, source: std::io::Error },
}

fn invalid(file: &str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid { file: file.to_string(), line: None, message: message.into() }
}

impl ConfigError {
    /// An invalid setting in `file`; `message` names the key and value.
    pub fn invalid(file: &str, message: impl Into<String>) -> ConfigError {
        invalid(file, message)
    }

    /// Adds the line of the key that the message starts with (`actions.reject: …`,
    /// `brand[2].domains: …`), found in `text`, the file as written.
    pub fn located(self, text: &str) -> ConfigError {
        match self {
            ConfigError::Invalid { file, line: None, message } => {
                let line = message.split_once(": ").and_then(|(key, _)| locate::key_line(text, key));
                ConfigError::Invalid { file, line, message }
            }
            other => other,
        }
    }

    /// [`ConfigError::located`] in the file named by `file`, if it can be read
    /// (errors found after loading, e.g. rule ids checked against the catalogue).
    pub fn located_in_file(self, file: &str) -> ConfigError {
        match std::fs::read_to_string(file) {
            Ok(text) => self.located(&text),
            Err(_) => self,
        }
    }
}

impl Config {
    /// Loads a TOML file. Errors name the file, key and value.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        Config::load_with(Some(path), &Overrides::default())
    }

    /// Loads `path` if given, else the default path if it exists, else the embedded default.
    pub fn load_default_or(path: Option<&Path>) -> Result<Config, ConfigError> {
        Config::load_with(path, &Overrides::default())
    }

    /// Like [`Config::load_default_or`], with command-line overrides applied to
    /// the file's settings *before* validation: what is validated is what runs,
    /// and `config show` of the result is the daemon's configuration.
    pub fn load_with(path: Option<&Path>, overrides: &Overrides) -> Result<Config, ConfigError> {
        let path = match path {
            Some(p) => Some(p),
            None if Path::new(DEFAULT_CONFIG_PATH).exists() => Some(Path::new(DEFAULT_CONFIG_PATH)),
            None => None,
        };
        let Some(path) = path else {
            let mut raw = RawConfig::default();
            overrides.apply(&mut raw, "<default>")?;
            return Config::validate(raw, "<default>");
        };
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read { file: file.clone(), source: e })?;
        Config::from_toml_str_with(&text, &file, overrides)
    }

    pub fn from_toml_str(text: &str, file: &str) -> Result<Config, ConfigError> {
        Config::from_toml_str_with(text, file, &Overrides::default())
    }

    pub fn from_toml_str_with(text: &str, file: &str, overrides: &Overrides) -> Result<Config, ConfigError> {
        // toml itself, not the `config` crate: its errors carry the span of the bad key or
        // value, and it does not turn a number into a string (`subject_prefix = 5`)
        let mut raw: RawConfig = toml::from_str(text).map_err(|e| locate::de_error(file, text, &e))?;
        overrides.apply(&mut raw, file)?;
        Config::validate(raw, file).map_err(|e| e.located(text))
    }
}

/// Threads for the daemon's runtime: `milter.worker_threads`, or for 0 half
/// the CPUs (at least one). impostor runs beside its MTA, which needs CPU for
/// every message too; with as many threads as CPUs the two fight over the
/// cores and every wake-up crosses CPUs (docs/performance.md).
pub fn worker_threads(configured: usize) -> usize {
    if configured > 0 {
        return configured;
    }
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    (cpus / 2).max(1)
}

/// This host's name, for the default authserv-id.
pub fn hostname() -> String {
    // read once per process: the SPF check asks for it with every message
    static NAME: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    NAME.get_or_init(read_hostname).clone()
}

fn read_hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: buf is valid for its length; gethostname NUL-terminates on success.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    let name = if rc == 0 {
        let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
        String::from_utf8_lossy(&buf[..end]).into_owned()
    } else {
        String::new()
    };
    if name.is_empty() || name.contains([';', ' ']) {
        "impostor".into()
    } else {
        name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_is_the_default() {
        let c = Config::from_toml_str("", "empty.toml").unwrap();
        assert_eq!(c.raw, RawConfig::default());
        assert_eq!(c.socket, SocketSpec::Inet("127.0.0.1:7357".into()));
        assert_eq!(c.brands[0].name, "OpenAI");
    }
}
