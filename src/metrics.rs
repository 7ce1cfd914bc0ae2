//! Prometheus metrics (`[metrics] listen`, series prefixed `impostor_`) and
//! the small HTTP endpoint that serves them. Loopback by default.

use prometheus_client::encoding::{text::encode, EncodeLabelSet};
use prometheus_client::metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram};
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ActionLabel {
    pub action: String,
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
    /// Messages by the action carried out (monitor mode: accept).
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
        let mut registry = Registry::with_prefix("impostor");
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
        registry.register("messages", "Messages by action carried out", messages.clone());
        registry.register("fail_mode", "Messages whose verdict came from the fail mode (internal error)", fail_mode.clone());
        registry.register("findings", "Findings by rule id", findings.clone());
        registry.register("analysis_seconds", "End of message to verdict, seconds", analysis_seconds.clone());
        registry.register("dns_checks", "Messages authenticated over DNS", dns_checks.clone());
        registry.register("dns_errors", "Authentications with a temporary DNS error", dns_errors.clone());
        registry.register("dns_timeouts", "Authentications cut off by the DNS time budget", dns_timeouts.clone());
        registry.register("connections", "MTA connections accepted", connections.clone());
        registry.register("connections_active", "MTA connections open", connections_active.clone());
        registry.register("reloads", "Configuration reloads by result", reloads.clone());
        Metrics {
            registry,
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
        }
    }

    /// The OpenMetrics text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = encode(&mut out, &self.registry);
        out
    }

    pub fn reload(&self, ok: bool) {
        self.reloads.get_or_create(&ResultLabel { result: if ok { "ok" } else { "failed" }.into() }).inc();
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
        ("200 OK", "application/openmetrics-text; version=1.0.0; charset=utf-8", metrics.render())
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
        m.messages.get_or_create(&ActionLabel { action: "quarantine".into() }).inc();
        m.findings.get_or_create(&RuleLabel { rule: "DMARC_FAIL".into() }).inc();
        m.reload(false);
        let text = m.render();
        assert!(text.contains("impostor_messages_total{action=\"quarantine\"} 1"), "{text}");
        assert!(text.contains("impostor_findings_total{rule=\"DMARC_FAIL\"} 1"), "{text}");
        assert!(text.contains("impostor_reloads_total{result=\"failed\"} 1"), "{text}");
        assert!(text.contains("impostor_analysis_seconds_bucket"), "{text}");
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
