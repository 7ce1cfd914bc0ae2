//! Prometheus metrics (`[metrics] listen`, series prefixed `impostor_`) and
//! the small HTTP endpoint that serves them. Loopback by default.

use prometheus_client::encoding::{text::encode, EncodeLabelSet};
use prometheus_client::metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram};
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
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

/// Serves `GET /metrics` on `listener` until the task is dropped.
pub async fn serve(listener: tokio::net::TcpListener, metrics: Arc<Metrics>) {
    loop {
        let Ok((mut sock, _)) = listener.accept().await else { continue };
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            let mut n = 0;
            // read the request head (bounded, 5 s)
            let read = tokio::time::timeout(std::time::Duration::from_secs(5), async {
                while n < buf.len() {
                    match sock.read(&mut buf[n..]).await {
                        Ok(0) | Err(_) => break,
                        Ok(k) => {
                            n += k;
                            if buf[..n].windows(4).any(|w| w == b"\r\n\r\n") || buf[..n].windows(2).any(|w| w == b"\n\n") {
                                break;
                            }
                        }
                    }
                }
            })
            .await;
            if read.is_err() {
                return;
            }
            let head = String::from_utf8_lossy(&buf[..n]);
            let path = head.split_whitespace().nth(1).unwrap_or("");
            let (status, ctype, body) = if head.starts_with("GET ") && (path == "/metrics" || path.starts_with("/metrics?")) {
                ("200 OK", "application/openmetrics-text; version=1.0.0; charset=utf-8", metrics.render())
            } else {
                ("404 Not Found", "text/plain", "not found; try /metrics\n".to_string())
            };
            let resp = format!(
                "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = sock.write_all(resp.as_bytes()).await;
            let _ = sock.shutdown().await;
        });
    }
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
}
