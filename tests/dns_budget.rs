//! DNS timing against a resolver on loopback that receives every query and
//! never answers: a silent socket is the honest outage (no ICMP
//! port-unreachable, so hickory cannot fail fast).

use impostor::analysis::{Engine, Envelope};
use impostor::config::Config;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A UDP "resolver" on 127.0.0.1 that records each query (arrival time, name)
/// and answers none. Its thread stops on drop.
struct FakeDns {
    addr: SocketAddr,
    queries: Arc<Mutex<Vec<(Instant, String)>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FakeDns {
    fn start() -> FakeDns {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
        let addr = sock.local_addr().unwrap();
        let queries = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (q, s) = (queries.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let mut buf = [0u8; 1500];
            while !s.load(Ordering::Relaxed) {
                let Ok((n, _)) = sock.recv_from(&mut buf) else { continue };
                let Some((name, _)) = qname(&buf[..n]) else { continue };
                q.lock().unwrap().push((Instant::now(), name));
            }
        });
        FakeDns { addr, queries, stop, thread: Some(thread) }
    }

    /// How many queries for `name` came.
    fn count(&self, name: &str) -> usize {
        self.queries.lock().unwrap().iter().filter(|(_, n)| n == name).count()
    }
}

impl Drop for FakeDns {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.thread.take().unwrap().join();
    }
}

/// The question name (lowercase, no final dot) and where the question ends.
fn qname(p: &[u8]) -> Option<(String, usize)> {
    let (mut i, mut labels) = (12, Vec::new());
    loop {
        let len = *p.get(i)? as usize;
        i += 1;
        if len == 0 {
            break;
        }
        labels.push(String::from_utf8_lossy(p.get(i..i + len)?).to_ascii_lowercase());
        i += len;
    }
    Some((labels.join("."), i + 4)).filter(|(_, end)| *end <= p.len())
}

const CLIENT_IP: [u8; 4] = [203, 0, 113, 7];
/// relaxed body hash of "Hi\r\n": the signature gets as far as its key lookup.
const BH: &str = "j+uJ1+KwQjMpdNiCngwvlv2FTzZnzkokoCYASnN36NE=";

fn dkim_signature(domain: &str) -> String {
    format!("v=1; a=rsa-sha256; c=relaxed/relaxed; d={domain}; s=s1; h=from:subject; bh={BH}; b=AAAA")
}

/// A message naming no brand and one naming the built-in brand (OpenAI), each DKIM-signed by its From domain.
fn headers(brand: bool) -> Vec<(&'static str, String)> {
    let (from, subject, domain) = if brand {
        ("\"OpenAI Billing\" <billing@example.net>", "Your invoice", "example.net")
    } else {
        ("Alice <alice@example.org>", "Lunch on Friday", "example.org")
    };
    vec![("DKIM-Signature", dkim_signature(domain)), ("From", from.into()), ("Subject", subject.into())]
}

fn raw(brand: bool) -> String {
    let mut r: String = headers(brand).iter().map(|(n, v)| format!("{n}: {v}\r\n")).collect();
    r.push_str("\r\nHi\r\n");
    r
}

fn envelope(mail_from: &str) -> Envelope {
    Envelope {
        client_ip: Some(CLIENT_IP.into()),
        helo: Some("mx.client.example".into()),
        mail_from: Some(mail_from.into()),
        ..Default::default()
    }
}

/// The configuration under test: the resolver, and `extra` [dns] keys.
fn config(dns: &FakeDns, extra: &str) -> Config {
    let toml = format!("[auth]\nauthserv_id = \"mx.test\"\n[dns]\nnameservers = [\"{}\"]\n{extra}", dns.addr);
    Config::from_toml_str(&toml, "dns-budget.toml").unwrap()
}

#[test]
fn attempts_is_the_number_of_tries_per_query() {
    let dns = FakeDns::start();
    let c = config(&dns, "timeout_ms = 300\nattempts = 2\n");
    let engine = Engine::online(c).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let (raw, env) = (raw(false), envelope("bounce@example.org"));
    let a = rt.block_on(engine.authenticate(&env, raw.as_bytes(), false)).unwrap();
    assert!(!a.temperror.iter().any(|t| t.contains("exceeded")), "each lookup gave up on its own, within the overall bound: {a:?}");
    for name in ["s1._domainkey.example.org", "example.org", "_dmarc.example.org"] {
        assert_eq!(dns.count(name), 2, "tries for {name}");
    }
}
