//! The validated, immutable [`Config`]: [`Config::validate`] checks a
//! [`RawConfig`] (errors name the file, the key and the value), `warnings` the
//! valid but doubtful settings, [`Overrides`] the command line's settings.

use super::{builtin_brands, hostname, invalid, parse_nameserver, Brand, ConfigError, SocketSpec};
use super::{AllowConfig, AuthConfig, BrandConfig, ContentConfig, DnsConfig, FailMode, LogConfig, MetricsConfig, MilterConfig};
use super::{OrgConfig, QuarantineConfig, RawConfig, RejectConfig, RulesConfig, TagConfig, Thresholds, MAX_DNS_BUDGET_MS};
use crate::rule::RuleDef;
use std::collections::BTreeMap;

/// The validated, immutable configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub user: String,
    pub monitor: bool,
    pub fail_mode: FailMode,
    pub milter: MilterConfig,
    pub socket: SocketSpec,
    pub socket_mode: u32,
    /// Bounds on the content analysis of one message (`analysis::content::Limits`).
    pub content: ContentConfig,
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
    /// `[org] domains`, normalised.
    pub org: OrgConfig,
    pub metrics: MetricsConfig,
    /// `[review]`; `listen` is an IP:PORT, loopback unless `allow_remote`.
    pub review: super::ReviewConfig,
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
        if self.content.max_qr_time_ms >= self.milter.analysis_timeout_ms {
            out.push(format!(
                "content.max_qr_time_ms ({}) is not below milter.analysis_timeout_ms ({}): a message with slow images is cut \
                 by the analysis timeout (ANALYSIS_TIMEOUT, the fail mode decides) before the QR budget stops decoding",
                self.content.max_qr_time_ms, self.milter.analysis_timeout_ms
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
        // a shared platform in legitimate_domains is an unconditional allowlist of everyone's mail on it
        let shared: Vec<&String> = self.brands.iter().flat_map(|b| &b.senders).collect();
        for b in &self.brands {
            for d in &b.legitimate_domains {
                if let Some(s) = shared.iter().find(|s| d == **s || d.ends_with(&format!(".{s}"))) {
                    out.push(format!(
                        "brand {:?}: legitimate_domains lists {d}, a shared platform ({s} is a brand sender): anyone with an account there \
                         would be exempt; move it to senders, which count only with a DMARC or aligned DKIM pass",
                        b.name
                    ));
                }
            }
        }
        out
    }

    pub fn validate(raw: RawConfig, file: &str) -> Result<Config, ConfigError> {
        let socket =
            SocketSpec::parse(&raw.milter.socket).map_err(|e| invalid(file, format!("milter.socket: {:?}: {e}", raw.milter.socket)))?;
        let socket_mode = u32::from_str_radix(raw.milter.socket_mode.trim_start_matches("0o"), 8)
            .ok()
            .filter(|m| *m <= 0o777)
            .ok_or_else(|| invalid(file, format!("milter.socket_mode: {:?} is not an octal mode like \"0660\"", raw.milter.socket_mode)))?;
        if raw.milter.worker_threads > 1024 {
            return Err(invalid(
                file,
                format!("milter.worker_threads: {} is more than 1024 (0 = half the CPUs)", raw.milter.worker_threads),
            ));
        }
        if raw.auth.microsoft_upstream && raw.auth.trusted_relays.is_empty() {
            return Err(invalid(
                file,
                "auth.microsoft_upstream: true needs auth.trusted_relays (Microsoft's Authentication-Results has no authserv-id: \
                 only the relay's address tells the real one from a sender's copy); list Microsoft 365's outbound networks there",
            ));
        }
        if raw.milter.max_connections == 0 {
            return Err(invalid(file, "milter.max_connections: 0 must be at least 1"));
        }
        if raw.milter.analysis_timeout_ms == 0 || raw.milter.analysis_timeout_ms > 600_000 {
            return Err(invalid(
                file,
                format!("milter.analysis_timeout_ms: {} must be between 1 and 600000", raw.milter.analysis_timeout_ms),
            ));
        }
        if raw.milter.connection_timeout == 0 {
            return Err(invalid(file, "milter.connection_timeout: 0 must be at least 1 second"));
        }
        for (key, v, max) in content_bounds(&raw.content) {
            if v == 0 || v > max {
                return Err(invalid(file, format!("content.{key}: {v} must be from 1 to {max}")));
            }
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
            return Err(invalid(
                file,
                format!("metrics.listen: {:?} must be HOST:PORT (an IP address) or \"\" to turn metrics off", raw.metrics.listen),
            ));
        }
        raw.review.check().map_err(|e| invalid(file, e))?;
        for d in &raw.allow.domains {
            if crate::domain::normalize_domain(d).is_none() {
                return Err(invalid(file, format!("allow.domains: {d:?} is not a domain name")));
            }
        }
        let org_domains = raw
            .org
            .domains
            .iter()
            .map(|d| crate::domain::normalize_domain(d).ok_or_else(|| invalid(file, format!("org.domains: {d:?} is not a domain name"))))
            .collect::<Result<Vec<_>, _>>()?;
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
        if raw.dns.negative_cache_secs > 3600 {
            return Err(invalid(file, format!("dns.negative_cache_secs: {} must be from 0 to 3600", raw.dns.negative_cache_secs)));
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
                    return Err(invalid(
                        file,
                        format!(
                            "brand[{i}].overrides.actions: tag {} < quarantine {} < reject {} must increase",
                            t.tag, t.quarantine, t.reject
                        ),
                    ));
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
            content: raw.content.clone(),
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
            org: OrgConfig { domains: org_domains },
            metrics: raw.metrics.clone(),
            review: raw.review.clone(),
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
                senders: b.senders.clone(),
                overrides: b.overrides.clone(),
            })
            .collect();
        // every brand in effect is listed, the built-in ones included: loading the shown file
        // must not add them a second time
        raw.builtin_brands = false;
        let mut out = format!("# effective configuration (from {})\n", self.source);
        out.push_str(&toml::to_string_pretty(&raw).unwrap_or_else(|e| format!("# cannot render: {e}\n")));
        out
    }
}

/// Every `[content]` key with its value and its upper bound (the lower bound
/// is 1). The bounds keep each limit a limit: above them a message could hold
/// the analysis for seconds or hundreds of megabytes (HTML costs tags × depth,
/// QR decoding about finders³ tries and 8 bytes a pixel).
fn content_bounds(c: &ContentConfig) -> [(&'static str, u64, u64); 13] {
    [
        ("max_parts", c.max_parts as u64, 10_000),
        ("max_text_bytes", c.max_text_bytes as u64, 16 * 1024 * 1024),
        ("max_html_bytes", c.max_html_bytes as u64, 16 * 1024 * 1024),
        ("max_html_depth", c.max_html_depth as u64, 4096),
        ("max_html_tags", c.max_html_tags as u64, 1_000_000),
        ("max_links", c.max_links as u64, 100_000),
        ("max_image_bytes", c.max_image_bytes as u64, 64 * 1024 * 1024),
        ("max_image_pixels", c.max_image_pixels, 40_000_000),
        ("max_qr_images", c.max_qr_images as u64, 100),
        ("max_qr_finders", c.max_qr_finders as u64, 64),
        ("max_qr_time_ms", c.max_qr_time_ms, 60_000),
        ("max_depth", c.max_depth as u64, 16),
        ("max_phone_candidates", c.max_phone_candidates as u64, 1000),
    ]
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

#[cfg(test)]
mod tests {
    use super::*;

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
        let c =
            Config::from_toml_str("builtin_brands = false\n[[brand]]\nname = \"Acme\"\ndomains = [\"acme.example\"]\n", "b.toml").unwrap();
        assert_eq!(c.brands.len(), 1);
        assert_eq!(c.brands[0].name, "Acme");
    }

    #[test]
    fn a_shared_platform_in_legitimate_domains_is_warned_about() {
        let c = Config::from_toml_str(
            "[[brand]]\nname = \"Acme\"\ndomains = [\"acme.example\"]\nlegitimate_domains = [\"stripe.com\"]\n",
            "w.toml",
        )
        .unwrap();
        assert!(
            c.warnings().iter().any(|w| w.contains("legitimate_domains lists stripe.com") && w.contains("move it to senders")),
            "{:?}",
            c.warnings()
        );
        assert!(!Config::default().warnings().iter().any(|w| w.contains("legitimate_domains")));
    }

    #[test]
    fn senders_and_org_domains_are_normalised_and_checked() {
        let c = Config::from_toml_str(
            "[org]\ndomains = [\"Corp.Example.\"]\n[[brand]]\nname = \"Acme\"\ndomains = [\"acme.example\"]\nsenders = [\"Stripe.com\"]\n",
            "s.toml",
        )
        .unwrap();
        assert_eq!(c.org.domains, vec!["corp.example"]);
        assert_eq!(c.brands.last().unwrap().senders, vec!["stripe.com"]);
        assert!(c.brands.last().unwrap().sends_via("invoice.stripe.com") && !c.brands.last().unwrap().owns("stripe.com"));
        let e = Config::from_toml_str("[org]\ndomains = [\"not a domain\"]\n", "o.toml").unwrap_err().to_string();
        assert!(e.contains("org.domains") && e.contains("not a domain"), "{e}");
        let e = Config::from_toml_str("[[brand]]\nname = \"Acme\"\ndomains = [\"acme.example\"]\nsenders = [\"a b\"]\n", "b.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("brand[0].senders"), "{e}");
    }

    #[test]
    fn thresholds_out_of_order_name_file_key_value() {
        let e = Config::from_toml_str("[actions]\nreject = 8\n", "impostor.toml").unwrap_err().to_string();
        assert_eq!(e, "impostor.toml:2: actions.reject: 8 must be above actions.quarantine (10)");
    }

    #[test]
    fn worker_threads_is_bounded() {
        let c = Config::from_toml_str("[milter]\nworker_threads = 1\n", "x.toml").unwrap();
        assert_eq!(c.milter.worker_threads, 1);
        let e = Config::from_toml_str("[milter]\nworker_threads = 5000\n", "x.toml").unwrap_err().to_string();
        assert_eq!(e, "x.toml:2: milter.worker_threads: 5000 is more than 1024 (0 = half the CPUs)");
    }

    #[test]
    fn rule_weights_keep_their_ids_as_written() {
        // whether an id exists is the policy's question (verdict::Policy::build), not the file's
        let c = Config::from_toml_str("[scores]\nLOOKALIKE_FROM_DOMAIN = 7.5\n", "x.toml").unwrap();
        assert_eq!(c.scores.get("LOOKALIKE_FROM_DOMAIN"), Some(&7.5));
        let e = Config::from_toml_str("[scores]\nLOOKALIKE_FROM_DOMAIN = nan\n", "x.toml").unwrap_err().to_string();
        assert_eq!(e, "x.toml:2: scores.LOOKALIKE_FROM_DOMAIN: NaN is not a number");
    }

    #[test]
    fn bad_socket_names_key_and_value() {
        let e = Config::from_toml_str("[milter]\nsocket = \"tcp:1\"\n", "x.toml").unwrap_err().to_string();
        assert!(e.starts_with("x.toml:2: milter.socket: \"tcp:1\""), "{e}");
    }

    #[test]
    fn nameservers_parse_with_and_without_port() {
        let c = Config::from_toml_str("[dns]\nnameservers = [\"127.0.0.1:5353\", \"::1\"]\n", "x.toml").unwrap();
        assert_eq!(c.nameservers, ["127.0.0.1:5353".parse().unwrap(), "[::1]:53".parse().unwrap()]);
        let e = Config::from_toml_str("[dns]\nnameservers = [\"localhost\"]\n", "x.toml").unwrap_err().to_string();
        assert_eq!(e, "x.toml:2: dns.nameservers: \"localhost\" is not IP or IP:PORT");
    }

    #[test]
    fn dns_budget_is_at_most_30_s_and_warns_below_one_query_timeout() {
        assert_eq!(Config::default().dns.budget_ms, 2500);
        let c = Config::from_toml_str("[dns]\ntimeout_ms = 500\nbudget_ms = 500\n", "x.toml").unwrap();
        assert_eq!(c.dns.budget_ms, 500);
        assert!(c.warnings().is_empty(), "{:?}", c.warnings());
        let e = Config::from_toml_str("[dns]\nbudget_ms = 30001\n", "x.toml").unwrap_err().to_string();
        assert_eq!(e, "x.toml:2: dns.budget_ms: 30001 must be from 1 to 30000");
        let e = Config::from_toml_str("[dns]\nbudget_ms = 0\n", "x.toml").unwrap_err().to_string();
        assert_eq!(e, "x.toml:2: dns.budget_ms: 0 must be from 1 to 30000");
        // an older config with a long query timeout still loads: the budget wins, and config check says so
        let c = Config::from_toml_str("[dns]\ntimeout_ms = 5000\n", "x.toml").unwrap();
        assert_eq!(
            c.warnings(),
            vec!["dns.budget_ms (2500) is below dns.timeout_ms (5000): a lookup is cut at the budget and never retried"]
        );
    }

    #[test]
    fn authserv_id_equal_to_a_trusted_id_warns() {
        let c = Config::from_toml_str(
            "[auth]\nauthserv_id = \"mx.example\"\ntrusted_authserv_ids = [\"MX.example\"]\ntrusted_relays = [\"192.0.2.0/24\"]\n",
            "x.toml",
        )
        .unwrap();
        let w = c.warnings();
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].starts_with("auth.trusted_authserv_ids: \"MX.example\" is also impostor's own authserv-id"), "{w:?}");
        let e = Config::from_toml_str("[auth]\nmicrosoft_upstream = true\n", "x.toml").unwrap_err().to_string();
        assert!(e.contains("x.toml") && e.contains("auth.microsoft_upstream: true needs auth.trusted_relays"), "{e}");
        assert!(Config::from_toml_str("[auth]\nmicrosoft_upstream = true\ntrusted_relays = [\"40.92.0.0/15\"]\n", "x.toml").is_ok());
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
    fn shown_config_loads_back_to_the_same() {
        let c = Config::from_toml_str("[content]\nmax_links = 7\nmax_qr_time_ms = 100\n", "x.toml").unwrap();
        let shown = c.to_toml([crate::rule::RuleDef::new("BRAND_NAME_FOREIGN_DOMAIN", "sender", 6.0, "")].iter());
        // the shown config lists the built-in brands and says builtin_brands = false
        assert!(shown.contains("builtin_brands = false\n"), "{shown}");
        let again = Config::from_toml_str(&shown, "shown.toml").unwrap();
        assert_eq!(again.brands, c.brands);
        assert_eq!(again.actions, c.actions);
        assert_eq!(again.scores.get("BRAND_NAME_FOREIGN_DOMAIN"), Some(&6.0), "every weight is shown");
        assert!(shown.contains("[content]\n") && shown.contains("max_links = 7\n"), "{shown}");
        assert_eq!(again.content, c.content);
        assert_eq!(again.content.max_qr_time_ms, 100);
        assert_eq!((again.milter, again.dns, again.auth, again.allow), (c.milter, c.dns, c.auth, c.allow));
    }

    #[test]
    fn content_limits_default_to_the_analysis_defaults() {
        let c = Config::from_toml_str("[content]\nmax_links = 1\nmax_html_depth = 64\n", "x.toml").unwrap();
        assert_eq!((c.content.max_links, c.content.max_html_depth, c.content.max_parts), (1, 64, 100));
        assert_eq!(Config::default().content, ContentConfig::default());
    }

    #[test]
    fn content_qr_time_not_below_the_analysis_timeout_warns() {
        assert!(Config::default().warnings().is_empty(), "{:?}", Config::default().warnings());
        let c = Config::from_toml_str("[milter]\nanalysis_timeout_ms = 1000\n[content]\nmax_qr_time_ms = 1000\n", "x.toml").unwrap();
        let w = c.warnings();
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].starts_with("content.max_qr_time_ms (1000) is not below milter.analysis_timeout_ms (1000)"), "{w:?}");
    }

    /// Every `[content]` key: 0 and one above its bound are errors naming the
    /// file, the key and the value; the bound itself loads.
    macro_rules! content_bound {
        ($($key:ident: $max:literal,)*) => {
            mod content_bounds {
                use super::super::Config;
                $(
                    #[test]
                    fn $key() {
                        let key = stringify!($key);
                        for bad in [0u64, $max + 1] {
                            let e = Config::from_toml_str(&format!("[content]\n{key} = {bad}\n"), "impostor.toml").unwrap_err().to_string();
                            assert_eq!(e, format!("impostor.toml:2: content.{key}: {bad} must be from 1 to {}", $max));
                        }
                        let c = Config::from_toml_str(&format!("[content]\n{key} = {}\n", $max), "impostor.toml").unwrap();
                        assert!(c.to_toml(std::iter::empty()).contains(&format!("{key} = {}\n", $max)));
                    }
                )*
            }
        };
    }

    content_bound! {
        max_parts: 10_000,
        max_text_bytes: 16_777_216,
        max_html_bytes: 16_777_216,
        max_html_depth: 4096,
        max_html_tags: 1_000_000,
        max_links: 100_000,
        max_image_bytes: 67_108_864,
        max_image_pixels: 40_000_000,
        max_qr_images: 100,
        max_qr_finders: 64,
        max_qr_time_ms: 60_000,
        max_depth: 16,
        max_phone_candidates: 1000,
    }
}
