//! Configuration: TOML (via the `config` crate) → serde structs with
//! `deny_unknown_fields` → validated, immutable [`Config`].
//!
//! Every key has a default, so an empty file (or a file that only adds
//! `[[brand]]` tables) is a valid configuration. Errors name the file, the key
//! and the value.

mod brand;

pub use brand::{builtin_brands, Brand};
use crate::rule::{Action, RuleDef};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Where `serve`, `check` and `scan` look when no `-c` is given.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/impostor/impostor.toml";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{file}: {message}")]
    Invalid { file: String, message: String },
    #[error("{file}: cannot read: {source}")]
    Read { file: String, source: std::io::Error },
}

fn invalid(file: &str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid { file: file.to_string(), message: message.into() }
}

impl ConfigError {
    /// An invalid setting in `file`; `message` names the key and value.
    pub fn invalid(file: &str, message: impl Into<String>) -> ConfigError {
        invalid(file, message)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FailMode {
    Tempfail,
    Accept,
}

impl FailMode {
    pub fn action(self) -> Action {
        match self {
            FailMode::Tempfail => Action::Tempfail,
            FailMode::Accept => Action::Accept,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// How addresses appear in logs. `domain` (default) keeps only the domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogAddresses {
    Domain,
    Full,
    None,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MilterConfig {
    /// `inet:HOST:PORT` or `unix:PATH`.
    pub socket: String,
    /// Octal permission bits of a unix socket.
    pub socket_mode: String,
    /// Group owning a unix socket (empty: the daemon's group).
    pub socket_group: String,
    pub max_connections: usize,
    /// Seconds of silence from the MTA before a connection is closed.
    pub connection_timeout: u64,
    /// Seconds in-flight messages get to finish on SIGTERM/SIGINT.
    pub shutdown_timeout: u64,
    /// Body bytes analysed per message; the rest is passed through unread.
    pub max_body_bytes: usize,
    /// Header fields kept for analysis per message (the rest pass unread).
    pub max_headers: usize,
    /// Header bytes kept for analysis per message.
    pub max_header_bytes: usize,
    /// Threads serving MTA connections (0: half the CPUs, at least one). Restart to change.
    pub worker_threads: usize,
    /// Milliseconds the content analysis of one message may take; past it the
    /// message gets the fail mode with `ANALYSIS_TIMEOUT`.
    pub analysis_timeout_ms: u64,
}

impl Default for MilterConfig {
    fn default() -> Self {
        MilterConfig {
            socket: "inet:127.0.0.1:7357".into(),
            socket_mode: "0660".into(),
            socket_group: String::new(),
            max_connections: 200,
            connection_timeout: 300,
            shutdown_timeout: 30,
            max_body_bytes: 10 * 1024 * 1024,
            max_headers: 10_000,
            max_header_bytes: 1024 * 1024,
            worker_threads: 0,
            analysis_timeout_ms: 5000,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Thresholds {
    pub tag: f64,
    pub quarantine: f64,
    pub reject: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds { tag: 5.0, quarantine: 10.0, reject: 15.0 }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TagConfig {
    /// Prefix added to the Subject of tagged mail; empty: Subject untouched.
    pub subject_prefix: String,
    /// Prepend a short warning paragraph to the text and HTML bodies of tagged mail.
    pub banner: bool,
}

impl Default for TagConfig {
    fn default() -> Self {
        TagConfig { subject_prefix: "[Suspected impersonation]".into(), banner: false }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QuarantineConfig {
    /// Reason given to the MTA (Postfix logs it with the hold).
    pub reason: String,
    /// What a quarantine verdict becomes when the MTA does not offer the
    /// quarantine action (old milter protocol versions).
    pub fallback: QuarantineFallback,
}

impl Default for QuarantineConfig {
    fn default() -> Self {
        QuarantineConfig { reason: "impostor: suspected brand impersonation".into(), fallback: QuarantineFallback::Reject }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum QuarantineFallback {
    /// Reject with `reject.code`/`xcode`/`text`: the message is not delivered, the sender is told.
    Reject,
    /// Deliver it tagged (Subject prefix and headers).
    Tag,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RejectConfig {
    pub code: String,
    pub xcode: String,
    pub text: String,
}

impl Default for RejectConfig {
    fn default() -> Self {
        RejectConfig {
            code: "550".into(),
            xcode: "5.7.1".into(),
            text: "Message rejected: suspected brand impersonation".into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    pub format: LogFormat,
    pub addresses: LogAddresses,
    /// tracing filter, e.g. `info` or `impostor=debug`. `RUST_LOG` overrides it.
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig { format: LogFormat::Text, addresses: LogAddresses::Domain, level: "info".into() }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DnsOnError {
    /// Ask the MTA to retry when a failed lookup could change the verdict.
    Tempfail,
    /// Decide with what is known; the temperror shows as a zero-weight finding.
    Continue,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DnsConfig {
    /// `IP` or `IP:PORT` of recursive resolvers; empty: the system resolver (/etc/resolv.conf).
    pub nameservers: Vec<String>,
    /// Milliseconds per query attempt.
    pub timeout_ms: u64,
    pub attempts: usize,
    /// Milliseconds all of one message's lookups (SPF, DKIM, DMARC) may take together.
    pub budget_ms: u64,
    /// Answers kept in the resolver cache.
    pub cache_size: u64,
    pub on_error: DnsOnError,
}

/// The end-of-message reply must come before the MTA gives up on the milter:
/// 30 s in the shipped Sendmail snippet (`R:30s`), 60 s in the Postfix one.
pub const MAX_DNS_BUDGET_MS: u64 = 30_000;

impl Default for DnsConfig {
    fn default() -> Self {
        DnsConfig { nameservers: Vec::new(), timeout_ms: 2000, attempts: 2, budget_ms: 2500, cache_size: 4096, on_error: DnsOnError::Tempfail }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Check SPF, DKIM and DMARC (needs DNS).
    pub enabled: bool,
    /// authserv-id of our Authentication-Results header; empty: this host's name.
    pub authserv_id: String,
    /// Add an Authentication-Results header with our results.
    pub add_header: bool,
    /// authserv-ids whose Authentication-Results headers are trusted (OpenDKIM,
    /// OpenDMARC, rspamd running before us, or the receiver of archived mail).
    pub trusted_authserv_ids: Vec<String>,
    /// Networks (CIDR) of the upstream relays that write those headers. When
    /// set, their headers are read only on mail from these clients (and
    /// removed from any other client's mail), and they stand in for our own
    /// checks. When empty, they are read only when impostor does no checks
    /// of its own (`auth.enabled = false`, or offline).
    pub trusted_relays: Vec<ipnet::IpNet>,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            enabled: true,
            authserv_id: String::new(),
            add_header: true,
            trusted_authserv_ids: Vec::new(),
            trusted_relays: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct RulesConfig {
    /// Rule ids that never fire.
    pub disabled: Vec<String>,
    /// Rule ids in monitor mode: shown in headers and logs, not counted.
    pub monitor: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AllowConfig {
    /// Sender domains allowed only when DMARC or an aligned DKIM signature passes for them.
    pub domains: Vec<String>,
    /// Client networks (CIDR) whose mail is not analysed, e.g. internal relays.
    pub client_networks: Vec<ipnet::IpNet>,
    /// Skip authenticated submission (`{auth_authen}` set).
    pub skip_authenticated: bool,
    /// Recipients exempt from filtering (e.g. the abuse mailbox); a message is
    /// skipped when all its recipients are exempt.
    pub recipients: Vec<String>,
}

impl Default for AllowConfig {
    fn default() -> Self {
        AllowConfig { domains: Vec::new(), client_networks: Vec::new(), skip_authenticated: true, recipients: Vec::new() }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// `HOST:PORT` of the Prometheus endpoint (`/metrics`); empty: off.
    pub listen: String,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig { listen: "127.0.0.1:9357".into() }
    }
}

/// Per-brand overrides: stricter thresholds or weights for mail that claims this brand.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct BrandOverrides {
    pub actions: Option<Thresholds>,
    pub scores: BTreeMap<String, f64>,
}

/// A `[[brand]]` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BrandConfig {
    pub name: String,
    #[serde(default)]
    pub aliases: Vec<String>,
    #[serde(default)]
    pub domains: Vec<String>,
    /// Domains legitimately used for the brand (ESPs, click trackers): never findings.
    #[serde(default)]
    pub legitimate_domains: Vec<String>,
    /// Thresholds and weights for mail that names this brand.
    #[serde(default, skip_serializing_if = "is_default_overrides")]
    pub overrides: BrandOverrides,
}

fn is_default_overrides(o: &BrandOverrides) -> bool {
    *o == BrandOverrides::default()
}

/// The configuration file as written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawConfig {
    /// Unprivileged account to switch to after binding the sockets (when started as root).
    pub user: String,
    pub monitor: bool,
    pub fail_mode: FailMode,
    pub builtin_brands: bool,
    pub milter: MilterConfig,
    pub actions: Thresholds,
    pub tag: TagConfig,
    pub quarantine: QuarantineConfig,
    pub reject: RejectConfig,
    pub log: LogConfig,
    pub dns: DnsConfig,
    pub auth: AuthConfig,
    pub allow: AllowConfig,
    pub metrics: MetricsConfig,
    pub rules: RulesConfig,
    /// Weight per rule id; rules not listed keep their registry default.
    pub scores: BTreeMap<String, f64>,
    /// Upper bound of the summed weights of one rule group (e.g. `auth = 12.0`).
    pub group_caps: BTreeMap<String, f64>,
    pub brand: Vec<BrandConfig>,
}

impl Default for RawConfig {
    fn default() -> Self {
        RawConfig {
            user: String::new(),
            monitor: false,
            fail_mode: FailMode::Tempfail,
            builtin_brands: true,
            milter: MilterConfig::default(),
            actions: Thresholds::default(),
            tag: TagConfig::default(),
            quarantine: QuarantineConfig::default(),
            reject: RejectConfig::default(),
            log: LogConfig::default(),
            dns: DnsConfig::default(),
            auth: AuthConfig::default(),
            allow: AllowConfig::default(),
            metrics: MetricsConfig::default(),
            rules: RulesConfig::default(),
            scores: BTreeMap::new(),
            group_caps: BTreeMap::new(),
            brand: Vec::new(),
        }
    }
}

/// A parsed `milter.socket`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SocketSpec {
    Inet(String),
    Unix(PathBuf),
}

impl SocketSpec {
    pub fn parse(s: &str) -> Result<SocketSpec, String> {
        if let Some(rest) = s.strip_prefix("inet:") {
            // inet:HOST:PORT, also accept Sendmail's inet:PORT@HOST
            let addr = match rest.split_once('@') {
                Some((port, host)) => format!("{host}:{port}"),
                None => rest.to_string(),
            };
            let (host, port) = addr.rsplit_once(':').ok_or("expected inet:HOST:PORT")?;
            port.parse::<u16>().map_err(|_| format!("invalid port {port:?}"))?;
            if host.is_empty() {
                return Err("missing host in inet:HOST:PORT".into());
            }
            Ok(SocketSpec::Inet(addr))
        } else if let Some(path) = s.strip_prefix("unix:").or_else(|| s.strip_prefix("local:")) {
            if path.is_empty() {
                return Err("missing path in unix:PATH".into());
            }
            Ok(SocketSpec::Unix(PathBuf::from(path)))
        } else {
            Err("expected inet:HOST:PORT or unix:PATH".into())
        }
    }
}

/// The validated, immutable configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub user: String,
    pub monitor: bool,
    pub fail_mode: FailMode,
    pub milter: MilterConfig,
    pub socket: SocketSpec,
    pub socket_mode: u32,
    pub actions: Thresholds,
    pub tag: TagConfig,
    pub quarantine: QuarantineConfig,
    pub reject: RejectConfig,
    pub log: LogConfig,
    pub dns: DnsConfig,
    /// Resolvers parsed from `dns.nameservers`.
    pub nameservers: Vec<std::net::SocketAddr>,
    pub auth: AuthConfig,
    /// `auth.authserv_id`, or the host name when empty.
    pub authserv_id: String,
    pub allow: AllowConfig,
    pub metrics: MetricsConfig,
    pub rules: RulesConfig,
    pub scores: BTreeMap<String, f64>,
    pub group_caps: BTreeMap<String, f64>,
    /// Built-in brands (unless `builtin_brands = false`) followed by the file's `[[brand]]` tables.
    pub brands: Vec<Brand>,
    /// The file as written (with defaults filled in), for `config show`.
    pub raw: RawConfig,
    /// Where it came from (`<default>` for the embedded default).
    pub source: String,
}

impl Default for Config {
    fn default() -> Self {
        Config::validate(RawConfig::default(), "<default>").expect("default config is valid")
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
        let built = config::Config::builder()
            .add_source(config::File::from_str(text, config::FileFormat::Toml))
            .build()
            .map_err(|e| invalid(file, e.to_string()))?;
        let mut raw: RawConfig = built.try_deserialize().map_err(|e| invalid(file, e.to_string()))?;
        overrides.apply(&mut raw, file)?;
        Config::validate(raw, file)
    }

    /// Things that are valid but probably not what the admin wants
    /// (`config check` prints them, `serve` logs them at start).
    pub fn warnings(&self) -> Vec<String> {
        let a = &self.auth;
        let mut out = Vec::new();
        if self.dns.budget_ms < self.dns.timeout_ms {
            out.push(format!(
                "dns.budget_ms ({}) is below dns.timeout_ms ({}): a lookup is cut at the budget and never retried",
                self.dns.budget_ms, self.dns.timeout_ms
            ));
        }
        if let Some(t) = a.trusted_authserv_ids.iter().find(|t| t.eq_ignore_ascii_case(&self.authserv_id)) {
            out.push(format!(
                "auth.trusted_authserv_ids: {t:?} is also impostor's own authserv-id (auth.authserv_id, default the host name, \
                 which is OpenDKIM's default too): impostor removes incoming Authentication-Results with its own id as \
                 forgeries, so that upstream's results are deleted, not used. Give impostor its own auth.authserv_id"
            ));
        }
        if !a.trusted_authserv_ids.is_empty() && a.trusted_relays.is_empty() {
            if a.enabled {
                out.push(
                    "auth.trusted_authserv_ids is set but auth.trusted_relays is empty: on SMTP mail impostor's own checks decide \
                     and the upstream's headers are only kept (they are used offline). Set auth.trusted_relays to the upstream's \
                     networks to use them, or auth.enabled = false to rely on an earlier milter"
                        .to_string(),
                );
            } else {
                out.push(
                    "auth.trusted_authserv_ids with auth.enabled = false and no auth.trusted_relays: those headers are trusted \
                     on mail from any client, so the milter or MTA that writes them must delete incoming copies of its own id \
                     (OpenDKIM does not)"
                        .to_string(),
                );
            }
        }
        out
    }

    pub fn validate(raw: RawConfig, file: &str) -> Result<Config, ConfigError> {
        let socket = SocketSpec::parse(&raw.milter.socket)
            .map_err(|e| invalid(file, format!("milter.socket: {:?}: {e}", raw.milter.socket)))?;
        let socket_mode = u32::from_str_radix(raw.milter.socket_mode.trim_start_matches("0o"), 8)
            .ok()
            .filter(|m| *m <= 0o777)
            .ok_or_else(|| invalid(file, format!("milter.socket_mode: {:?} is not an octal mode like \"0660\"", raw.milter.socket_mode)))?;
        if raw.milter.worker_threads > 1024 {
            return Err(invalid(file, format!("milter.worker_threads: {} is more than 1024 (0 = half the CPUs)", raw.milter.worker_threads)));
        }
        if raw.milter.max_connections == 0 {
            return Err(invalid(file, "milter.max_connections: 0 must be at least 1"));
        }
        if raw.milter.analysis_timeout_ms == 0 || raw.milter.analysis_timeout_ms > 600_000 {
            return Err(invalid(file, format!("milter.analysis_timeout_ms: {} must be between 1 and 600000", raw.milter.analysis_timeout_ms)));
        }
        if raw.milter.connection_timeout == 0 {
            return Err(invalid(file, "milter.connection_timeout: 0 must be at least 1 second"));
        }
        let a = &raw.actions;
        for (key, v) in [("tag", a.tag), ("quarantine", a.quarantine), ("reject", a.reject)] {
            if !v.is_finite() {
                return Err(invalid(file, format!("actions.{key}: {v} is not a number")));
            }
        }
        if a.quarantine <= a.tag {
            return Err(invalid(file, format!("actions.quarantine: {} must be above actions.tag ({})", a.quarantine, a.tag)));
        }
        if a.reject <= a.quarantine {
            return Err(invalid(file, format!("actions.reject: {} must be above actions.quarantine ({})", a.reject, a.quarantine)));
        }
        // rule ids and groups are checked against the rule catalogue by verdict::Policy::build
        for (id, w) in &raw.scores {
            if !w.is_finite() {
                return Err(invalid(file, format!("scores.{id}: {w} is not a number")));
            }
        }
        for (group, cap) in &raw.group_caps {
            if !cap.is_finite() || *cap < 0.0 {
                return Err(invalid(file, format!("group_caps.{group}: {cap} must be a non-negative number")));
            }
        }
        if !raw.metrics.listen.is_empty() && raw.metrics.listen.parse::<std::net::SocketAddr>().is_err() {
            return Err(invalid(file, format!("metrics.listen: {:?} must be HOST:PORT (an IP address) or \"\" to turn metrics off", raw.metrics.listen)));
        }
        for d in &raw.allow.domains {
            if crate::domain::normalize_domain(d).is_none() {
                return Err(invalid(file, format!("allow.domains: {d:?} is not a domain name")));
            }
        }
        let r = &raw.reject;
        if r.code.len() != 3 || !r.code.starts_with('5') || !r.code.chars().all(|c| c.is_ascii_digit()) {
            return Err(invalid(file, format!("reject.code: {:?} must be a 5xx SMTP reply code", r.code)));
        }
        let x: Vec<&str> = r.xcode.split('.').collect();
        if x.len() != 3 || x[0] != "5" || !x.iter().all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit())) {
            return Err(invalid(file, format!("reject.xcode: {:?} must be an enhanced status code like \"5.7.1\"", r.xcode)));
        }
        if r.text.contains(['\r', '\n']) || r.text.trim().is_empty() {
            return Err(invalid(file, format!("reject.text: {:?} must be one non-empty line", r.text)));
        }
        if raw.tag.subject_prefix.contains(['\r', '\n']) {
            return Err(invalid(file, "tag.subject_prefix: must be one line"));
        }
        if raw.quarantine.reason.contains(['\r', '\n']) || raw.quarantine.reason.trim().is_empty() {
            return Err(invalid(file, format!("quarantine.reason: {:?} must be one non-empty line", raw.quarantine.reason)));
        }
        let nameservers = raw
            .dns
            .nameservers
            .iter()
            .map(|n| parse_nameserver(n).ok_or_else(|| invalid(file, format!("dns.nameservers: {n:?} is not IP or IP:PORT"))))
            .collect::<Result<Vec<_>, _>>()?;
        if raw.dns.timeout_ms == 0 || raw.dns.attempts == 0 {
            return Err(invalid(file, "dns.timeout_ms and dns.attempts must be at least 1"));
        }
        if raw.dns.budget_ms == 0 || raw.dns.budget_ms > MAX_DNS_BUDGET_MS {
            return Err(invalid(file, format!("dns.budget_ms: {} must be from 1 to {MAX_DNS_BUDGET_MS}", raw.dns.budget_ms)));
        }
        let authserv_id = if raw.auth.authserv_id.is_empty() { hostname() } else { raw.auth.authserv_id.clone() };
        if authserv_id.contains([';', ' ', '\t', '\r', '\n']) {
            return Err(invalid(file, format!("auth.authserv_id: {authserv_id:?} must be a single token (a host name)")));
        }
        let mut brands = if raw.builtin_brands { builtin_brands() } else { Vec::new() };
        for (i, b) in raw.brand.iter().enumerate() {
            let brand = Brand::from_config(b).map_err(|e| invalid(file, format!("brand[{i}].{e}")))?;
            if let Some(t) = &b.overrides.actions {
                if t.quarantine <= t.tag || t.reject <= t.quarantine {
                    return Err(invalid(file, format!("brand[{i}].overrides.actions: tag {} < quarantine {} < reject {} must increase", t.tag, t.quarantine, t.reject)));
                }
            }
            if let Some((id, w)) = b.overrides.scores.iter().find(|(_, w)| !w.is_finite()) {
                return Err(invalid(file, format!("brand[{i}].overrides.scores.{id}: {w} is not a number")));
            }
            if brands.iter().any(|x| x.name.eq_ignore_ascii_case(&brand.name)) {
                return Err(invalid(file, format!("brand[{i}].name: {:?} is defined twice", brand.name)));
            }
            brands.push(brand);
        }
        Ok(Config {
            user: raw.user.clone(),
            monitor: raw.monitor,
            fail_mode: raw.fail_mode,
            milter: raw.milter.clone(),
            socket,
            socket_mode,
            actions: raw.actions.clone(),
            tag: raw.tag.clone(),
            quarantine: raw.quarantine.clone(),
            reject: raw.reject.clone(),
            log: raw.log.clone(),
            dns: raw.dns.clone(),
            nameservers,
            auth: raw.auth.clone(),
            authserv_id,
            allow: AllowConfig {
                domains: raw.allow.domains.iter().map(|d| d.to_ascii_lowercase()).collect(),
                recipients: raw.allow.recipients.iter().map(|r| r.to_ascii_lowercase()).collect(),
                ..raw.allow.clone()
            },
            metrics: raw.metrics.clone(),
            rules: raw.rules.clone(),
            scores: raw.scores.clone(),
            group_caps: raw.group_caps.clone(),
            brands,
            raw,
            source: file.to_string(),
        })
    }

    /// The effective configuration as TOML (`impostor config show`), with the
    /// weight of every rule of `catalog`, not only the overridden ones.
    pub fn to_toml<'a>(&self, catalog: impl Iterator<Item = &'a RuleDef>) -> String {
        let mut raw = self.raw.clone();
        for r in catalog {
            raw.scores.entry(r.id.to_string()).or_insert(r.default_weight);
        }
        raw.brand = self
            .brands
            .iter()
            .map(|b| BrandConfig {
                name: b.name.clone(),
                aliases: b.aliases.clone(),
                domains: b.domains.clone(),
                legitimate_domains: b.legitimate_domains.clone(),
                overrides: b.overrides.clone(),
            })
            .collect();
        let mut out = format!("# effective configuration (from {})\n", self.source);
        out.push_str(&toml::to_string_pretty(&raw).unwrap_or_else(|e| format!("# cannot render: {e}\n")));
        out
    }
}

/// Settings given on the command line (`serve --socket --nameserver
/// --dry-run`, `check`/`scan --nameserver`), applied over the file's.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Overrides {
    pub socket: Option<String>,
    pub nameservers: Vec<String>,
    pub monitor: bool,
}

impl Overrides {
    /// Applies the overrides to the file's settings; a bad value is named by its flag.
    pub fn apply(&self, raw: &mut RawConfig, file: &str) -> Result<(), ConfigError> {
        if let Some(s) = &self.socket {
            SocketSpec::parse(s).map_err(|e| invalid(file, format!("--socket {s:?}: {e}")))?;
            raw.milter.socket = s.clone();
        }
        if !self.nameservers.is_empty() {
            if let Some(n) = self.nameservers.iter().find(|n| parse_nameserver(n).is_none()) {
                return Err(invalid(file, format!("--nameserver {n:?}: expected IP or IP:PORT")));
            }
            raw.dns.nameservers = self.nameservers.clone();
        }
        if self.monitor {
            raw.monitor = true;
        }
        Ok(())
    }
}

/// `IP` (port 53) or `IP:PORT` / `[IPv6]:PORT`.
pub fn parse_nameserver(s: &str) -> Option<std::net::SocketAddr> {
    if let Ok(ip) = s.parse::<std::net::IpAddr>() {
        return Some(std::net::SocketAddr::new(ip, 53));
    }
    s.parse().ok()
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

    #[test]
    fn brand_only_file_adds_to_builtin() {
        let c = Config::from_toml_str(
            "[[brand]]\nname = \"ExampleBank\"\naliases = [\"Example Bank\"]\ndomains = [\"examplebank.com\"]\n",
            "b.toml",
        )
        .unwrap();
        let names: Vec<_> = c.brands.iter().map(|b| b.name.as_str()).collect();
        assert_eq!(names, ["OpenAI", "ExampleBank"]);
        assert_eq!(c.actions, Thresholds::default());
    }

    #[test]
    fn builtin_brands_can_be_turned_off() {
        let c = Config::from_toml_str(
            "builtin_brands = false\n[[brand]]\nname = \"Acme\"\ndomains = [\"acme.example\"]\n",
            "b.toml",
        )
        .unwrap();
        assert_eq!(c.brands.len(), 1);
        assert_eq!(c.brands[0].name, "Acme");
    }

    #[test]
    fn thresholds_out_of_order_name_file_key_value() {
        let e = Config::from_toml_str("[actions]\nreject = 8\n", "impostor.toml").unwrap_err().to_string();
        assert_eq!(e, "impostor.toml: actions.reject: 8 must be above actions.quarantine (10)");
    }

    #[test]
    fn unknown_key_is_an_error() {
        let e = Config::from_toml_str("[actions]\ntga = 3\n", "x.toml").unwrap_err().to_string();
        assert!(e.starts_with("x.toml: ") && e.contains("tga"), "{e}");
    }

    #[test]
    fn worker_threads_is_bounded() {
        let c = Config::from_toml_str("[milter]\nworker_threads = 1\n", "x.toml").unwrap();
        assert_eq!(c.milter.worker_threads, 1);
        let e = Config::from_toml_str("[milter]\nworker_threads = 5000\n", "x.toml")
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "x.toml: milter.worker_threads: 5000 is more than 1024 (0 = half the CPUs)"
        );
    }

    #[test]
    fn wrong_type_names_the_key() {
        let e = Config::from_toml_str("fail_mode = \"explode\"\n", "x.toml").unwrap_err().to_string();
        assert!(e.contains("fail_mode") && e.contains("explode"), "{e}");
    }

    #[test]
    fn rule_weights_keep_their_ids_as_written() {
        // whether an id exists is the policy's question (verdict::Policy::build), not the file's
        let c = Config::from_toml_str("[scores]\nLOOKALIKE_FROM_DOMAIN = 7.5\n", "x.toml").unwrap();
        assert_eq!(c.scores.get("LOOKALIKE_FROM_DOMAIN"), Some(&7.5));
        let e = Config::from_toml_str("[scores]\nLOOKALIKE_FROM_DOMAIN = nan\n", "x.toml").unwrap_err().to_string();
        assert_eq!(e, "x.toml: scores.LOOKALIKE_FROM_DOMAIN: NaN is not a number");
    }

    #[test]
    fn bad_socket_names_key_and_value() {
        let e = Config::from_toml_str("[milter]\nsocket = \"tcp:1\"\n", "x.toml").unwrap_err().to_string();
        assert!(e.starts_with("x.toml: milter.socket: \"tcp:1\""), "{e}");
    }

    #[test]
    fn nameservers_parse_with_and_without_port() {
        let c = Config::from_toml_str("[dns]\nnameservers = [\"127.0.0.1:5353\", \"::1\"]\n", "x.toml").unwrap();
        assert_eq!(c.nameservers, ["127.0.0.1:5353".parse().unwrap(), "[::1]:53".parse().unwrap()]);
        let e = Config::from_toml_str("[dns]\nnameservers = [\"localhost\"]\n", "x.toml").unwrap_err().to_string();
        assert_eq!(e, "x.toml: dns.nameservers: \"localhost\" is not IP or IP:PORT");
    }

    #[test]
    fn dns_budget_is_at_most_30_s_and_warns_below_one_query_timeout() {
        assert_eq!(Config::default().dns.budget_ms, 2500);
        let c = Config::from_toml_str("[dns]\ntimeout_ms = 500\nbudget_ms = 500\n", "x.toml").unwrap();
        assert_eq!(c.dns.budget_ms, 500);
        assert!(c.warnings().is_empty(), "{:?}", c.warnings());
        let e = Config::from_toml_str("[dns]\nbudget_ms = 30001\n", "x.toml").unwrap_err().to_string();
        assert_eq!(e, "x.toml: dns.budget_ms: 30001 must be from 1 to 30000");
        let e = Config::from_toml_str("[dns]\nbudget_ms = 0\n", "x.toml").unwrap_err().to_string();
        assert_eq!(e, "x.toml: dns.budget_ms: 0 must be from 1 to 30000");
        // an older config with a long query timeout still loads: the budget wins, and config check says so
        let c = Config::from_toml_str("[dns]\ntimeout_ms = 5000\n", "x.toml").unwrap();
        assert_eq!(c.warnings(), vec!["dns.budget_ms (2500) is below dns.timeout_ms (5000): a lookup is cut at the budget and never retried"]);
    }

    #[test]
    fn authserv_id_equal_to_a_trusted_id_warns() {
        let c = Config::from_toml_str("[auth]\nauthserv_id = \"mx.example\"\ntrusted_authserv_ids = [\"MX.example\"]\ntrusted_relays = [\"192.0.2.0/24\"]\n", "x.toml").unwrap();
        let w = c.warnings();
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].starts_with("auth.trusted_authserv_ids: \"MX.example\" is also impostor's own authserv-id"), "{w:?}");
        let c = Config::from_toml_str("[auth]\ntrusted_authserv_ids = [\"mx.up.example\"]\n", "x.toml").unwrap();
        assert!(c.warnings()[0].contains("auth.trusted_relays is empty"), "{:?}", c.warnings());
        let c = Config::from_toml_str("[auth]\nenabled = false\ntrusted_authserv_ids = [\"mx.up.example\"]\n", "x.toml").unwrap();
        assert!(c.warnings()[0].contains("must delete incoming copies"), "{:?}", c.warnings());
    }

    #[test]
    fn command_line_overrides_are_validated_with_the_file() {
        let o = Overrides { socket: Some("unix:/run/x.sock".into()), nameservers: vec!["127.0.0.1:5353".into()], monitor: true };
        let c = Config::from_toml_str_with("[dns]\nnameservers = [\"192.0.2.1\"]\n", "x.toml", &o).unwrap();
        assert_eq!(c.socket, SocketSpec::Unix("/run/x.sock".into()));
        assert_eq!((c.nameservers.len(), c.monitor), (1, true));
        // what `config show` prints is what runs
        let shown = c.to_toml(std::iter::empty());
        assert!(shown.contains("127.0.0.1:5353") && shown.contains("monitor = true"), "{shown}");
        let bad = Overrides { socket: Some("tcp:1".into()), ..Default::default() };
        let e = Config::from_toml_str_with("", "x.toml", &bad).unwrap_err().to_string();
        assert!(e.starts_with("x.toml: --socket \"tcp:1\": "), "{e}");
        let bad = Overrides { nameservers: vec!["resolver".into()], ..Default::default() };
        let e = Config::from_toml_str_with("", "x.toml", &bad).unwrap_err().to_string();
        assert_eq!(e, "x.toml: --nameserver \"resolver\": expected IP or IP:PORT");
    }

    #[test]
    fn socket_specs() {
        assert_eq!(SocketSpec::parse("inet:7357@127.0.0.1").unwrap(), SocketSpec::Inet("127.0.0.1:7357".into()));
        assert_eq!(SocketSpec::parse("unix:/run/i.sock").unwrap(), SocketSpec::Unix("/run/i.sock".into()));
        assert!(SocketSpec::parse("inet:127.0.0.1").is_err());
    }

    #[test]
    fn shown_config_loads_back_to_the_same() {
        let c = Config::default();
        let shown = c.to_toml([crate::rule::RuleDef::new("BRAND_NAME_FOREIGN_DOMAIN", "sender", 6.0, "")].iter());
        // the shown config repeats the built-in brand, so load it without builtins
        let again = Config::from_toml_str(&format!("builtin_brands = false\n{}", shown.replace("builtin_brands = true\n", "")), "shown.toml").unwrap();
        assert_eq!(again.brands, c.brands);
        assert_eq!(again.actions, c.actions);
        assert_eq!(again.scores.get("BRAND_NAME_FOREIGN_DOMAIN"), Some(&6.0), "every weight is shown");
    }
}
