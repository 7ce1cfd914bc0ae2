//! The configuration file as written: serde structs with `deny_unknown_fields`
//! and a default for every key, before validation ([`super::Config`]).

use crate::rule::Action;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// How addresses appear in logs. `domain` (default) keeps only the domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum LogAddresses {
    Domain,
    Full,
    None,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
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

/// Bounds on the content analysis of one message, one key per field of
/// `analysis::content::Limits` (which `analysis::Engine` builds from them). A
/// bound that is reached shows as `CONTENT_LIMIT_REACHED`: the message was
/// only partly read. Reloaded with the configuration (SIGHUP).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ContentConfig {
    /// MIME parts examined, attached messages included.
    pub max_parts: usize,
    /// Visible text kept, in bytes (before normalisation).
    pub max_text_bytes: usize,
    /// Bytes of each HTML part parsed.
    pub max_html_bytes: usize,
    /// Elements open at once in an HTML document built into a tree; the rest is read as plain text.
    pub max_html_depth: usize,
    /// Tags (start and end) of an HTML document built into a tree; the rest is read as plain text.
    pub max_html_tags: usize,
    /// URLs kept per message.
    pub max_links: usize,
    /// Largest image decoded for QR codes; also the bytes of a PDF or archive inspected.
    pub max_image_bytes: usize,
    /// Largest image (width × height) decoded for QR codes.
    pub max_image_pixels: u64,
    /// Images decoded for QR codes per message.
    pub max_qr_images: usize,
    /// QR finder pattern candidates an image may hold to be decoded (a code has three).
    pub max_qr_finders: usize,
    /// Milliseconds spent decoding images for QR codes per message.
    pub max_qr_time_ms: u64,
    /// Nesting of attached messages followed.
    pub max_depth: usize,
    /// Phone-number candidates of the visible text judged against libphonenumber's metadata,
    /// when a brand-claiming message's calls to action are gathered.
    pub max_phone_candidates: usize,
}

impl Default for ContentConfig {
    fn default() -> Self {
        ContentConfig {
            max_parts: 100,
            max_text_bytes: 256 * 1024,
            max_html_bytes: 1024 * 1024,
            max_html_depth: 512,
            max_html_tags: 40_000,
            max_links: 500,
            max_image_bytes: 2 * 1024 * 1024,
            max_image_pixels: 4_000_000,
            max_qr_images: 4,
            max_qr_finders: 24,
            max_qr_time_ms: 250,
            max_depth: 3,
            max_phone_candidates: 50,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
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

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
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

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum QuarantineFallback {
    /// Reject with `reject.code`/`xcode`/`text`: the message is not delivered, the sender is told.
    Reject,
    /// Deliver it tagged (Subject prefix and headers).
    Tag,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct RejectConfig {
    pub code: String,
    pub xcode: String,
    pub text: String,
}

impl Default for RejectConfig {
    fn default() -> Self {
        RejectConfig { code: "550".into(), xcode: "5.7.1".into(), text: "Message rejected: suspected brand impersonation".into() }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    pub format: LogFormat,
    pub addresses: LogAddresses,
    /// tracing filter, e.g. `info` or `impostor=debug`. `RUST_LOG` overrides it.
    pub level: String,
    /// Where log lines go: standard error (the journal under systemd) or syslog.
    pub output: LogOutput,
    /// Syslog facility of `output = "syslog"`: `mail` puts verdicts in mail.log beside Postfix.
    pub facility: SyslogFacility,
    /// Datagram socket of the syslog daemon.
    pub syslog_socket: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            format: LogFormat::Text,
            addresses: LogAddresses::Domain,
            level: "info".into(),
            output: LogOutput::Stderr,
            facility: SyslogFacility::Mail,
            syslog_socket: "/dev/log".into(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum LogOutput {
    Stderr,
    Syslog,
}

/// The syslog facilities a daemon may log under (RFC 5424 codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum SyslogFacility {
    Mail,
    Daemon,
    User,
    Local0,
    Local1,
    Local2,
    Local3,
    Local4,
    Local5,
    Local6,
    Local7,
}

impl SyslogFacility {
    pub fn code(self) -> u8 {
        match self {
            SyslogFacility::User => 1,
            SyslogFacility::Mail => 2,
            SyslogFacility::Daemon => 3,
            SyslogFacility::Local0 => 16,
            SyslogFacility::Local1 => 17,
            SyslogFacility::Local2 => 18,
            SyslogFacility::Local3 => 19,
            SyslogFacility::Local4 => 20,
            SyslogFacility::Local5 => 21,
            SyslogFacility::Local6 => 22,
            SyslogFacility::Local7 => 23,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum DnsOnError {
    /// Ask the MTA to retry when a failed lookup could change the verdict.
    Tempfail,
    /// Decide with what is known; the temperror shows as a zero-weight finding.
    Continue,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
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
    /// Seconds a "no such name / no such record" answer is kept at least. An
    /// answer with an SOA is kept for the SOA's negative TTL (RFC 2308) or this,
    /// whichever is longer; one without an SOA (some forwarders and appliances
    /// send those) for this long, instead of being asked again by every
    /// message. 0 (the default, as RFC 2308 says): only as the SOA says, none
    /// without one.
    pub negative_cache_secs: u64,
    pub on_error: DnsOnError,
}

/// The end-of-message reply must come before the MTA gives up on the milter:
/// 30 s in the shipped Sendmail snippet (`R:30s`), 60 s in the Postfix one.
pub const MAX_DNS_BUDGET_MS: u64 = 30_000;

impl Default for DnsConfig {
    fn default() -> Self {
        DnsConfig {
            nameservers: Vec::new(),
            timeout_ms: 2000,
            attempts: 2,
            budget_ms: 2500,
            cache_size: 4096,
            negative_cache_secs: 0,
            on_error: DnsOnError::Tempfail,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
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
    /// Read Microsoft 365 / Exchange Online Protection's `Authentication-Results`
    /// (which carries no authserv-id) on mail from `trusted_relays` (required).
    pub microsoft_upstream: bool,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            enabled: true,
            authserv_id: String::new(),
            add_header: true,
            trusted_authserv_ids: Vec::new(),
            trusted_relays: Vec::new(),
            microsoft_upstream: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct RulesConfig {
    /// Rule ids that never fire.
    pub disabled: Vec<String>,
    /// Rule ids in monitor mode: shown in headers and logs, not counted.
    pub monitor: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
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

/// `[org]`: the organisation that runs impostor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct OrgConfig {
    /// The organisation's own sender domains (subdomains included). Mail from
    /// them that passes DMARC or an aligned DKIM signature is never "foreign"
    /// to a brand claim (an advisory that names the brand, a colleague's
    /// forward); unauthenticated, they count for nothing.
    pub domains: Vec<String>,
}

/// `[intel]`: local lists read with the configuration (reloaded on SIGHUP), see `crate::intel`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct IntelConfig {
    /// IOC blocklist: `sender-domain`, `link-host` and `url` lines; empty: none.
    pub ioc_file: String,
    /// A directory of extra lure phrase files (`LANG.txt`, `family<TAB>phrase` lines,
    /// the format of `data/phrases/`), added to the built-in ones; empty: none.
    pub phrases_dir: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
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

/// `impostor review`: the quarantine review web page (its own process; docs/review.md).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ReviewConfig {
    /// `IP:PORT` the review page listens on.
    pub listen: String,
    /// Let `listen` be a non-loopback address (put TLS in front of it).
    pub allow_remote: bool,
    /// File of access tokens, `NAME:TOKEN` per line (`impostor review --init-token` writes it, mode 0600).
    pub token_file: String,
    /// Where "report false positive" / "confirm phish" write the message and its verdict (`ham/`, `phish/`).
    pub feedback_dir: String,
}

impl Default for ReviewConfig {
    fn default() -> Self {
        ReviewConfig {
            listen: "127.0.0.1:9358".into(),
            allow_remote: false,
            token_file: "/etc/impostor/review.tokens".into(),
            feedback_dir: "/var/lib/impostor/feedback".into(),
        }
    }
}

impl ReviewConfig {
    /// The checks `Config::validate` runs (it adds the file name): `listen` is an IP:PORT, on
    /// loopback unless `allow_remote`.
    pub fn check(&self) -> Result<(), String> {
        let r = self;
        let addr: std::net::SocketAddr =
            r.listen.parse().map_err(|_| format!("review.listen: {:?} must be IP:PORT (e.g. \"127.0.0.1:9358\")", r.listen))?;
        if !addr.ip().is_loopback() && !r.allow_remote {
            return Err(format!(
                "review.listen: {:?} is not a loopback address; the review page shows held mail: set review.allow_remote = true \
                 to serve it to other hosts (and put TLS in front of it)",
                r.listen
            ));
        }
        if r.token_file.trim().is_empty() {
            return Err("review.token_file: must name a file".into());
        }
        if r.feedback_dir.trim().is_empty() {
            return Err("review.feedback_dir: must name a directory".into());
        }
        Ok(())
    }
}

/// Per-brand overrides: stricter thresholds or weights for mail that claims this brand.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct BrandOverrides {
    pub actions: Option<Thresholds>,
    pub scores: BTreeMap<String, f64>,
}

/// A `[[brand]]` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BrandConfig {
    pub name: String,
    #[serde(default)]
    pub aliases: Vec<String>,
    #[serde(default)]
    pub domains: Vec<String>,
    /// Further domains the brand owns outright whose name is not a brand word
    /// (e.g. `chat.com`): like `domains`, never findings, no authentication needed.
    #[serde(default)]
    pub legitimate_domains: Vec<String>,
    /// Shared platforms that send for the brand (invoices, notifications, support,
    /// recruiting) or host its tracked links, e.g. `stripe.com`, `mandrillapp.com`.
    /// They count only when DMARC or an aligned DKIM signature passes: see docs/brands.md.
    #[serde(default)]
    pub senders: Vec<String>,
    /// Thresholds and weights for mail that names this brand.
    #[serde(default, skip_serializing_if = "is_default_overrides")]
    pub overrides: BrandOverrides,
}

fn is_default_overrides(o: &BrandOverrides) -> bool {
    *o == BrandOverrides::default()
}

/// The configuration file as written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct RawConfig {
    /// Unprivileged account to switch to after binding the sockets (when started as root).
    pub user: String,
    pub monitor: bool,
    pub fail_mode: FailMode,
    pub builtin_brands: bool,
    pub milter: MilterConfig,
    pub content: ContentConfig,
    pub actions: Thresholds,
    pub tag: TagConfig,
    pub quarantine: QuarantineConfig,
    pub reject: RejectConfig,
    pub log: LogConfig,
    pub dns: DnsConfig,
    pub auth: AuthConfig,
    pub allow: AllowConfig,
    pub org: OrgConfig,
    pub intel: IntelConfig,
    pub metrics: MetricsConfig,
    pub review: ReviewConfig,
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
            content: ContentConfig::default(),
            actions: Thresholds::default(),
            tag: TagConfig::default(),
            quarantine: QuarantineConfig::default(),
            reject: RejectConfig::default(),
            log: LogConfig::default(),
            dns: DnsConfig::default(),
            auth: AuthConfig::default(),
            allow: AllowConfig::default(),
            org: OrgConfig::default(),
            intel: IntelConfig::default(),
            metrics: MetricsConfig::default(),
            review: ReviewConfig::default(),
            rules: RulesConfig::default(),
            scores: BTreeMap::new(),
            group_caps: BTreeMap::new(),
            brand: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::Config;

    #[test]
    fn unknown_key_is_an_error() {
        let e = Config::from_toml_str("[actions]\ntga = 3\n", "x.toml").unwrap_err().to_string();
        assert!(e.starts_with("x.toml:2: ") && e.contains("tga"), "{e}");
    }

    #[test]
    fn wrong_type_names_the_key() {
        let e = Config::from_toml_str("fail_mode = \"explode\"\n", "x.toml").unwrap_err().to_string();
        assert!(e.contains("fail_mode") && e.contains("explode"), "{e}");
    }
}
