//! Prometheus metrics (`[metrics] listen`, series prefixed `impostor_`) and
//! the small HTTP endpoint that serves them. Loopback by default.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{text::encode, DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::info::Info;
use prometheus_client::metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram};
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ActionLabel {
    pub action: String,
    /// "true" when the message was only monitored: `action` is then the would-be action, not carried out.
    pub monitor: String,
}

impl ActionLabel {
    /// The label of a message whose verdict is `action`; `monitor` when only monitored.
    pub fn new(action: crate::rule::Action, monitor: bool) -> ActionLabel {
        ActionLabel { action: action.as_str().into(), monitor: monitor.to_string() }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct VersionLabel {
    pub version: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RuleLabel {
    pub rule: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabel {
    pub result: String,
}

/// Every series impostor exports.
pub struct Metrics {
    registry: Registry,
    /// Messages by action: carried out (`monitor="false"`) or, in monitor mode, the would-be action (`monitor="true"`).
    pub messages: Family<ActionLabel, Counter>,
    /// Messages whose verdict came from the fail mode (internal error).
    pub fail_mode: Counter,
    /// Findings by rule id.
    pub findings: Family<RuleLabel, Counter>,
    /// Seconds from end of message to verdict (authentication + analysis).
    pub analysis_seconds: Histogram,
    /// Messages whose SPF/DKIM/DMARC were checked over DNS.
    pub dns_checks: Counter,
    /// Checks with at least one temporary DNS error.
    pub dns_errors: Counter,
    /// Checks cut off by the overall DNS time budget.
    pub dns_timeouts: Counter,
    pub connections: Counter,
    pub connections_active: Gauge<i64, std::sync::atomic::AtomicI64>,
    /// Configuration reloads by result (ok / failed).
    pub reloads: Family<ResultLabel, Counter>,
    /// Unix time of the start or of the last successful reload, seconds.
    pub last_reload: Gauge<f64, AtomicU64>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// Counts one authentication over DNS and its temporary errors (`temperror`
    /// entries; a budget cut-off starts with "authentication checks exceeded").
    pub fn count_dns(&self, temperror: &[String]) {
        self.dns_checks.inc();
        if !temperror.is_empty() {
            self.dns_errors.inc();
        }
        if temperror.iter().any(|t| t.starts_with("authentication checks exceeded")) {
            self.dns_timeouts.inc();
        }
    }

    pub fn new() -> Metrics {
        let mut root = Registry::default();
        root.register_collector(Box::new(ProcessCollector));
        let registry = root.sub_registry_with_prefix("impostor");
        let messages = Family::<ActionLabel, Counter>::default();
        let fail_mode = Counter::<u64, AtomicU64>::default();
        let findings = Family::<RuleLabel, Counter>::default();
        let buckets = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];
        let analysis_seconds = Histogram::new(buckets);
        let dns_checks = Counter::default();
        let dns_errors = Counter::default();
        let dns_timeouts = Counter::default();
        let connections = Counter::default();
        let connections_active = Gauge::default();
        let reloads = Family::<ResultLabel, Counter>::default();
        registry.register(
            "messages",
            "Messages by action: carried out, or the would-be action when only monitored (label monitor true)",
            messages.clone(),
        );
        registry.register("fail_mode", "Messages whose verdict came from the fail mode (internal error)", fail_mode.clone());
        registry.register("findings", "Findings by rule id", findings.clone());
        registry.register("analysis_seconds", "End of message to verdict, seconds", analysis_seconds.clone());
        registry.register("dns_checks", "Messages authenticated over DNS", dns_checks.clone());
        registry.register("dns_errors", "Authentications with a temporary DNS error", dns_errors.clone());
        registry.register("dns_timeouts", "Authentications cut off by the DNS time budget", dns_timeouts.clone());
        registry.register("connections", "MTA connections accepted", connections.clone());
        registry.register("connections_active", "MTA connections open", connections_active.clone());
        registry.register("reloads", "Configuration reloads by result", reloads.clone());
        let last_reload = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "last_reload_timestamp_seconds",
            "Unix time the configuration was last loaded (start or successful reload)",
            last_reload.clone(),
        );
        registry.register("build", "Build information", Info::new(VersionLabel { version: env!("CARGO_PKG_VERSION").into() }));
        // every labelled series exists from the start, at zero
        for action in crate::rule::Action::ALL {
            for monitor in [false, true] {
                let _ = messages.get_or_create(&ActionLabel::new(action, monitor));
            }
        }
        for r in crate::analysis::catalog() {
            let _ = findings.get_or_create(&RuleLabel { rule: r.id.into() });
        }
        for result in ["ok", "failed"] {
            let _ = reloads.get_or_create(&ResultLabel { result: result.into() });
        }
        last_reload.set(now_unix());
        Metrics {
            registry: root,
            messages,
            fail_mode,
            findings,
            analysis_seconds,
            dns_checks,
            dns_errors,
            dns_timeouts,
            connections,
            connections_active,
            reloads,
            last_reload,
        }
    }

    /// The OpenMetrics text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = encode(&mut out, &self.registry);
        out
    }

    /// The classic Prometheus text exposition (format 0.0.4).
    pub fn render_classic(&self) -> String {
        to_classic(&self.render())
    }

    pub fn reload(&self, ok: bool) {
        self.reloads.get_or_create(&ResultLabel { result: if ok { "ok" } else { "failed" }.into() }).inc();
        if ok {
            self.last_reload.set(now_unix());
        }
    }
}

fn now_unix() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

/// Rewrites an OpenMetrics exposition as the classic text format 0.0.4: counter families are named
/// with their `_total` samples, `info` becomes a gauge named `_info`, `unknown` becomes `untyped`, and
/// the `# UNIT` and `# EOF` lines go.
pub fn to_classic(openmetrics: &str) -> String {
    let mut kinds: std::collections::HashMap<&str, &str> = std::collections::HashMap::new();
    for line in openmetrics.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            if let Some((name, kind)) = rest.split_once(' ') {
                kinds.insert(name, kind);
            }
        }
    }
    let rename = |name: &str| -> String {
        match kinds.get(name).copied() {
            Some("counter") => format!("{name}_total"),
            Some("info") => format!("{name}_info"),
            _ => name.to_string(),
        }
    };
    let mut out = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap_or((rest, "untyped"));
            let kind = match kind {
                "info" => "gauge",
                "unknown" => "untyped",
                k => k,
            };
            out.push_str(&format!("# TYPE {} {kind}\n", rename(name)));
        } else if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').unwrap_or((rest, ""));
            out.push_str(&format!("# HELP {} {help}\n", rename(name)));
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// Whether a request head asks for OpenMetrics in its `Accept` header.
pub fn wants_openmetrics(head: &str) -> bool {
    head.lines().any(|l| {
        l.split_once(':').is_some_and(|(k, v)| {
            k.trim().eq_ignore_ascii_case("accept") && v.to_ascii_lowercase().contains("application/openmetrics-text")
        })
    })
}

/// The standard `process_*` series, read from `/proc/self` at each scrape (Linux; nothing elsewhere).
#[derive(Debug)]
struct ProcessCollector;

/// What [`ProcessCollector`] reads: resident bytes, CPU seconds, open descriptors, start time (Unix seconds).
#[derive(Debug, Default, PartialEq)]
pub struct ProcessStats {
    pub resident_bytes: Option<f64>,
    pub cpu_seconds: Option<f64>,
    pub open_fds: Option<f64>,
    pub max_fds: Option<f64>,
    pub start_time: Option<f64>,
}

impl ProcessStats {
    pub fn read() -> ProcessStats {
        let mut s = ProcessStats::default();
        // SAFETY: sysconf only reads a system constant
        let (tick, page) = unsafe { (libc::sysconf(libc::_SC_CLK_TCK), libc::sysconf(libc::_SC_PAGESIZE)) };
        if let Ok(stat) = std::fs::read_to_string("/proc/self/stat") {
            // the fields after the command name, which is in parentheses and may hold anything
            if let Some((_, rest)) = stat.rsplit_once(") ") {
                let f: Vec<&str> = rest.split_whitespace().collect();
                // rest starts at field 3 (state): utime 14, stime 15, starttime 22, rss 24
                let num = |i: usize| f.get(i - 3).and_then(|v| v.parse::<f64>().ok());
                if tick > 0 {
                    if let (Some(u), Some(st)) = (num(14), num(15)) {
                        s.cpu_seconds = Some((u + st) / tick as f64);
                    }
                    let btime = std::fs::read_to_string("/proc/stat")
                        .ok()
                        .and_then(|t| t.lines().find_map(|l| l.strip_prefix("btime ").and_then(|v| v.trim().parse::<f64>().ok())));
                    if let (Some(start), Some(b)) = (num(22), btime) {
                        s.start_time = Some(b + start / tick as f64);
                    }
                }
                if page > 0 {
                    s.resident_bytes = num(24).map(|r| r * page as f64);
                }
            }
        }
        if let Ok(dir) = std::fs::read_dir("/proc/self/fd") {
            s.open_fds = Some(dir.count() as f64);
        }
        if let Ok(limits) = std::fs::read_to_string("/proc/self/limits") {
            s.max_fds = limits
                .lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3))
                .and_then(|v| v.parse::<f64>().ok());
        }
        s
    }
}

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let s = ProcessStats::read();
        if let Some(v) = s.cpu_seconds {
            let c = ConstCounter::new(v);
            c.encode(encoder.encode_descriptor(
                "process_cpu_seconds",
                "Total user and system CPU time spent in seconds",
                None,
                c.metric_type(),
            )?)?;
        }
        let gauges = [
            ("process_resident_memory_bytes", "Resident memory size in bytes", s.resident_bytes),
            ("process_open_fds", "Number of open file descriptors", s.open_fds),
            ("process_max_fds", "Maximum number of open file descriptors", s.max_fds),
            ("process_start_time_seconds", "Start time of the process since unix epoch in seconds", s.start_time),
        ];
        for (name, help, v) in gauges {
            if let Some(v) = v {
                let g = ConstGauge::new(v);
                g.encode(encoder.encode_descriptor(name, help, None, g.metric_type())?)?;
            }
        }
        Ok(())
    }
}

/// Counts an open MTA connection while alive.
#[derive(Debug)]
pub struct ConnectionGuard(Arc<Metrics>);

impl ConnectionGuard {
    pub fn new(m: &Arc<Metrics>) -> ConnectionGuard {
        m.connections.inc();
        m.connections_active.inc();
        ConnectionGuard(m.clone())
    }
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.0.connections_active.dec();
    }
}

/// Scrape connections served at once; one beyond is closed at once. A Prometheus server needs one; the cap
/// keeps a flood of idle connections from taking the descriptors the milter needs to accept the MTA.
pub const MAX_CONNECTIONS: usize = 64;

/// Time a scrape connection has to send its request head and take the whole reply, then it is closed.
pub const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// Serves `GET /metrics` on `listener` until the task is dropped, with [`MAX_CONNECTIONS`] and [`IO_TIMEOUT`].
pub async fn serve(listener: tokio::net::TcpListener, metrics: Arc<Metrics>) {
    serve_with(listener, metrics, MAX_CONNECTIONS, IO_TIMEOUT).await
}

/// [`serve`] with its limits as parameters (tests use small ones).
pub async fn serve_with(listener: tokio::net::TcpListener, metrics: Arc<Metrics>, max_connections: usize, io_timeout: Duration) {
    let slots = Arc::new(tokio::sync::Semaphore::new(max_connections));
    let (mut errors, mut refused) = (0u64, 0u64);
    loop {
        let sock = match listener.accept().await {
            Ok((sock, _)) => sock,
            Err(e) => {
                if crate::accept::AcceptError::of(&e) != crate::accept::AcceptError::Retry {
                    // out of descriptors or memory (or worse): pause instead of failing again at once, in a busy loop
                    if errors % 100 == 0 {
                        tracing::warn!(errors_so_far = errors + 1, "metrics: cannot accept: {e}; pausing");
                    }
                    errors += 1;
                    tokio::time::sleep(crate::accept::ACCEPT_BACKOFF).await;
                }
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            if refused % 100 == 0 {
                tracing::warn!(max_connections, refused_so_far = refused + 1, "metrics: too many connections, closing new ones");
            }
            refused += 1;
            drop(sock);
            continue;
        };
        let metrics = metrics.clone();
        tokio::spawn(async move {
            // the whole exchange, request and reply, within io_timeout: a client that sends nothing or does not read is dropped
            let _ = tokio::time::timeout(io_timeout, answer(sock, &metrics)).await;
            drop(slot);
        });
    }
}

/// Reads one request head (at most 4 KiB) and writes the reply.
async fn answer(mut sock: tokio::net::TcpStream, metrics: &Metrics) {
    let mut buf = vec![0u8; 4096];
    let mut n = 0;
    while n < buf.len() {
        let Some(free) = buf.get_mut(n..) else { break };
        match sock.read(free).await {
            Ok(0) | Err(_) => break,
            Ok(k) => {
                n += k;
                let head = buf.get(..n).unwrap_or_default();
                if head.windows(4).any(|w| w == b"\r\n\r\n") || head.windows(2).any(|w| w == b"\n\n") {
                    break;
                }
            }
        }
    }
    let head = String::from_utf8_lossy(buf.get(..n).unwrap_or_default());
    let path = head.split_whitespace().nth(1).unwrap_or("");
    let (status, ctype, body) = if head.starts_with("GET ") && (path == "/metrics" || path.starts_with("/metrics?")) {
        if wants_openmetrics(&head) {
            ("200 OK", "application/openmetrics-text; version=1.0.0; charset=utf-8", metrics.render())
        } else {
            ("200 OK", "text/plain; version=0.0.4; charset=utf-8", metrics.render_classic())
        }
    } else {
        ("404 Not Found", "text/plain", "not found; try /metrics\n".to_string())
    };
    let resp = format!("HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
    let _ = sock.write_all(resp.as_bytes()).await;
    let _ = sock.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_are_prefixed_and_labelled() {
        let m = Metrics::new();
        m.messages.get_or_create(&ActionLabel::new(crate::rule::Action::Quarantine, false)).inc();
        m.findings.get_or_create(&RuleLabel { rule: "DMARC_FAIL".into() }).inc();
        m.reload(false);
        let text = m.render();
        assert!(text.contains("impostor_messages_total{action=\"quarantine\",monitor=\"false\"} 1"), "{text}");
        assert!(text.contains("impostor_findings_total{rule=\"DMARC_FAIL\"} 1"), "{text}");
        assert!(text.contains("impostor_reloads_total{result=\"failed\"} 1"), "{text}");
        assert!(text.contains("impostor_analysis_seconds_bucket"), "{text}");
    }

    fn verdict(action: crate::rule::Action, monitor: bool) -> crate::verdict::Verdict {
        crate::verdict::Verdict { action, score: 12.0, rules: vec![], monitor, brand: None, error: None, decided_by: String::new() }
    }

    #[test]
    fn monitor_mode_counts_the_would_be_action() {
        let engine = crate::analysis::Engine::new(crate::config::Config::from_toml_str("monitor = true", "t.toml").unwrap()).unwrap();
        let shared = crate::Shared::new(engine);
        shared.count(&verdict(crate::rule::Action::Reject, true), Duration::from_millis(1));
        shared.count(&verdict(crate::rule::Action::Tag, false), Duration::from_millis(1));
        let text = shared.metrics.render();
        assert!(text.contains("impostor_messages_total{action=\"reject\",monitor=\"true\"} 1"), "{text}");
        assert!(text.contains("impostor_messages_total{action=\"accept\",monitor=\"true\"} 0"), "{text}");
        assert!(text.contains("impostor_messages_total{action=\"accept\",monitor=\"false\"} 0"), "{text}");
        assert!(text.contains("impostor_messages_total{action=\"tag\",monitor=\"false\"} 1"), "{text}");
    }

    #[test]
    fn labelled_series_exist_at_zero_before_any_message() {
        let text = Metrics::new().render();
        for a in crate::rule::Action::ALL {
            for m in ["false", "true"] {
                let line = format!("impostor_messages_total{{action=\"{}\",monitor=\"{m}\"}} 0", a.as_str());
                assert!(text.contains(&line), "{line} missing:\n{text}");
            }
        }
        for r in crate::analysis::catalog() {
            assert!(text.contains(&format!("impostor_findings_total{{rule=\"{}\"}} 0", r.id)), "{} missing", r.id);
        }
        assert!(text.contains("impostor_reloads_total{result=\"ok\"} 0"), "{text}");
        assert!(text.contains("impostor_reloads_total{result=\"failed\"} 0"), "{text}");
    }

    fn sample(text: &str, name: &str) -> f64 {
        let line = text
            .lines()
            .find(|l| l.starts_with(name) && l.as_bytes().get(name.len()) == Some(&b' '))
            .unwrap_or_else(|| panic!("{name} missing:\n{text}"));
        line.rsplit(' ').next().unwrap().parse().unwrap()
    }

    #[test]
    fn build_info_reload_time_and_process_metrics() {
        let m = Metrics::new();
        let text = m.render_classic();
        let want = format!("impostor_build_info{{version=\"{}\"}} 1", env!("CARGO_PKG_VERSION"));
        assert!(text.contains(&want), "{text}");
        let now = now_unix();
        let start = sample(&text, "impostor_last_reload_timestamp_seconds");
        assert!((now - start).abs() < 60.0, "{start} vs {now}");
        std::thread::sleep(Duration::from_millis(20));
        m.reload(false);
        assert_eq!(sample(&m.render_classic(), "impostor_last_reload_timestamp_seconds"), start, "a failed reload moved the time");
        m.reload(true);
        assert!(sample(&m.render_classic(), "impostor_last_reload_timestamp_seconds") > start);
        if cfg!(target_os = "linux") {
            assert!(sample(&text, "process_resident_memory_bytes") > 1_000_000.0);
            assert!(sample(&text, "process_open_fds") >= 3.0);
            assert!(sample(&text, "process_max_fds") >= sample(&text, "process_open_fds"));
            assert!(sample(&text, "process_cpu_seconds_total") >= 0.0);
            let st = sample(&text, "process_start_time_seconds");
            assert!(st <= now + 1.0 && st > now - 86_400.0, "start time {st}, now {now}");
        }
    }

    /// The classic format: every sample belongs to the family named on its TYPE line, no OpenMetrics-only lines.
    #[test]
    fn classic_format_families_match_their_samples() {
        let m = Metrics::new();
        m.analysis_seconds.observe(0.01);
        let text = m.render_classic();
        assert!(!text.contains("# EOF") && !text.contains("# UNIT") && !text.contains(" info\n") && !text.contains(" unknown\n"), "{text}");
        let mut family = String::new();
        let mut kind = String::new();
        let mut seen = std::collections::HashSet::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (n, k) = rest.split_once(' ').unwrap();
                assert!(seen.insert(n.to_string()), "family {n} twice");
                assert!(["counter", "gauge", "histogram", "summary", "untyped"].contains(&k), "{line}");
                (family, kind) = (n.to_string(), k.to_string());
            } else if let Some(rest) = line.strip_prefix("# HELP ") {
                // HELP comes first: a new family
                let n = rest.split(' ').next().unwrap();
                assert!(!seen.contains(n), "HELP after TYPE for {n}");
            } else {
                let name = line.split(['{', ' ']).next().unwrap();
                let ok = match kind.as_str() {
                    "histogram" => {
                        [format!("{family}_bucket"), format!("{family}_sum"), format!("{family}_count")].contains(&name.to_string())
                    }
                    _ => name == family,
                };
                assert!(ok, "sample {name} under family {family} ({kind})");
                if kind == "counter" {
                    assert!(name.ends_with("_total"), "{name}");
                }
            }
        }
        assert!(seen.contains("impostor_messages_total") && seen.contains("impostor_build_info"), "{text}");
    }

    /// A listener on 127.0.0.1:0 whose connections get a small send buffer (the kernel then holds little of a reply).
    fn listener(send_buffer: Option<usize>) -> (tokio::net::TcpListener, std::net::SocketAddr) {
        let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        if let Some(n) = send_buffer {
            s.set_send_buffer_size(n).unwrap();
        }
        s.bind(&std::net::SocketAddr::from(([127, 0, 0, 1], 0)).into()).unwrap();
        s.listen(1024).unwrap();
        s.set_nonblocking(true).unwrap();
        let l = tokio::net::TcpListener::from_std(s.into()).unwrap();
        let addr = l.local_addr().unwrap();
        (l, addr)
    }

    /// Everything the server sends until it closes (a reset counts as the end).
    async fn read_all(s: &mut tokio::net::TcpStream) -> Vec<u8> {
        let mut out = Vec::new();
        let mut buf = vec![0u8; 65536];
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return out,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
    }

    async fn scrape(addr: std::net::SocketAddr) -> String {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
        String::from_utf8_lossy(&read_all(&mut s).await).into_owned()
    }

    async fn get(addr: std::net::SocketAddr, head: &str) -> String {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(head.as_bytes()).await.unwrap();
        String::from_utf8_lossy(&read_all(&mut s).await).into_owned()
    }

    #[tokio::test]
    async fn accept_header_chooses_the_format() {
        let (l, addr) = listener(None);
        let server = tokio::spawn(serve_with(l, Arc::new(Metrics::new()), 4, Duration::from_secs(5)));
        let plain = get(addr, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert!(plain.contains("Content-Type: text/plain; version=0.0.4"), "{plain}");
        assert!(plain.contains("# TYPE impostor_messages_total counter") && !plain.contains("# EOF"), "{plain}");
        // what Prometheus sends: OpenMetrics first, classic text as a fallback
        let om = get(
            addr,
            "GET /metrics HTTP/1.1\r\nHost: x\r\naccept: application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1\r\n\r\n",
        )
        .await;
        assert!(om.contains("Content-Type: application/openmetrics-text; version=1.0.0"), "{om}");
        assert!(om.contains("# TYPE impostor_messages counter") && om.trim_end().ends_with("# EOF"), "{om}");
        let text = get(addr, "GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: text/plain\r\n\r\n").await;
        assert!(text.contains("Content-Type: text/plain; version=0.0.4"), "{text}");
        server.abort();
    }

    #[tokio::test]
    async fn idle_connection_flood_beyond_the_cap_is_closed_at_once() {
        let (l, addr) = listener(None);
        let server = tokio::spawn(serve_with(l, Arc::new(Metrics::new()), 4, Duration::from_secs(60)));
        // four idle connections hold every slot (accepted in order)...
        let mut idle = Vec::new();
        for _ in 0..4 {
            idle.push(tokio::net::TcpStream::connect(addr).await.unwrap());
        }
        // ...and each one beyond is closed at once, not kept (with its descriptor) until a timeout
        for i in 0..16 {
            let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
            let end = tokio::time::timeout(Duration::from_secs(2), read_all(&mut s)).await;
            assert_eq!(end.as_deref(), Ok(&b""[..]), "connection {} beyond the cap was kept open", i + 1);
        }
        // the idle ones gone, a real scrape is answered
        drop(idle);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            let r = scrape(addr).await;
            if r.starts_with("HTTP/1.1 200 OK") {
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "no scrape answered once the idle connections closed: {r:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        server.abort();
    }

    #[tokio::test]
    async fn idle_connection_is_closed_after_the_timeout() {
        let (l, addr) = listener(None);
        let server = tokio::spawn(serve_with(l, Arc::new(Metrics::new()), 4, Duration::from_millis(300)));
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        let t = std::time::Instant::now();
        let end = tokio::time::timeout(Duration::from_secs(3), read_all(&mut s)).await;
        assert_eq!(end.as_deref(), Ok(&b""[..]), "an idle connection was kept open");
        assert!(t.elapsed() >= Duration::from_millis(250), "closed before the timeout: {:?}", t.elapsed());
        server.abort();
    }

    /// A client that sends its request and never reads the reply: the write is bounded by the timeout too.
    #[tokio::test]
    async fn slow_reader_is_cut_off_after_the_timeout() {
        let m = Metrics::new();
        // a reply of about 1 MB, far more than the two small socket buffers hold
        for i in 0..20_000 {
            m.findings.get_or_create(&RuleLabel { rule: format!("RULE_{i:05}") }).inc();
        }
        let full = m.render().len();
        let (l, addr) = listener(Some(4096));
        let server = tokio::spawn(serve_with(l, Arc::new(m), 4, Duration::from_millis(300)));
        let client = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        client.set_recv_buffer_size(4096).unwrap();
        client.connect(&addr.into()).unwrap();
        client.set_nonblocking(true).unwrap();
        let mut s = tokio::net::TcpStream::from_std(client.into()).unwrap();
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let got = tokio::time::timeout(Duration::from_secs(10), read_all(&mut s)).await.expect("the connection ends");
        assert!(got.starts_with(b"HTTP/1.1 200 OK"), "{:?}", String::from_utf8_lossy(&got[..got.len().min(200)]));
        assert!(got.len() < full, "the whole reply ({} bytes) went to a client that did not read for 5 timeouts", got.len());
        server.abort();
    }
}
