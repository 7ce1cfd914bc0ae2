//! The per-message DNS budget (`dns.budget_ms`) against a resolver on loopback
//! that receives every query and answers only what a test tells it to: a
//! silent socket is the honest outage (no ICMP port-unreachable, so hickory
//! cannot fail fast), at the default `dns.timeout_ms` and `dns.attempts`.

use impostor::analysis::{analyze, Engine, Envelope, MessageInput};
use impostor::auth::{self, AuthResult};
use impostor::config::{Config, SocketSpec};
use impostor::verdict::Action;
use impostor::{MilterListener, Shared};
use indymilter_test::{EomAction, Status, TestConnection};
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What the loopback resolver does with a query for a name.
#[derive(Clone, Copy)]
enum Answer {
    Drop,
    NxDomain,
    Txt(&'static str),
    /// A TXT answer sent 150 ms late (the server thread waits: later queries queue behind it).
    SlowTxt(&'static str),
}

/// A UDP "resolver" on 127.0.0.1 that records each query (arrival time, name)
/// and answers it with `policy`. Its thread stops on drop.
struct FakeDns {
    addr: SocketAddr,
    queries: Arc<Mutex<Vec<(Instant, String)>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FakeDns {
    fn start(policy: fn(&str) -> Answer) -> FakeDns {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
        let addr = sock.local_addr().unwrap();
        let queries = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (q, s) = (queries.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let mut buf = [0u8; 1500];
            while !s.load(Ordering::Relaxed) {
                let Ok((n, from)) = sock.recv_from(&mut buf) else { continue };
                let Some((name, qend)) = qname(&buf[..n]) else { continue };
                q.lock().unwrap().push((Instant::now(), name.clone()));
                let reply = match policy(&name) {
                    Answer::Drop => continue,
                    Answer::NxDomain => response(&buf[..n], qend, 3, None),
                    Answer::Txt(t) => response(&buf[..n], qend, 0, Some(t)),
                    Answer::SlowTxt(t) => {
                        std::thread::sleep(Duration::from_millis(150));
                        response(&buf[..n], qend, 0, Some(t))
                    }
                };
                let _ = sock.send_to(&reply, from);
            }
        });
        FakeDns { addr, queries, stop, thread: Some(thread) }
    }

    /// How many queries for `name` came.
    fn count(&self, name: &str) -> usize {
        self.queries.lock().unwrap().iter().filter(|(_, n)| n == name).count()
    }

    /// Arrival of the first query for `name`, if any came.
    fn first(&self, name: &str) -> Option<Instant> {
        self.queries.lock().unwrap().iter().find(|(_, n)| n == name).map(|(t, _)| *t)
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

/// A reply to `query`: its id and question, `rcode`, and one TXT answer if given.
fn response(query: &[u8], qend: usize, rcode: u8, txt: Option<&str>) -> Vec<u8> {
    let mut r = query[..2].to_vec();
    r.extend([0x84 | (query[2] & 0x01), 0x80 | rcode, 0, 1, 0, txt.is_some() as u8, 0, 0, 0, 0]);
    r.extend_from_slice(&query[12..qend]);
    if let Some(t) = txt {
        r.extend([0xc0, 0x0c, 0, 16, 0, 1, 0, 0, 0, 60]);
        r.extend(((t.len() + 1) as u16).to_be_bytes());
        r.push(t.len() as u8);
        r.extend(t.as_bytes());
    }
    r
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

/// The configuration under test: the resolver, and `extra` [dns] keys (none: the defaults).
fn config(dns: &FakeDns, extra: &str) -> Config {
    let toml = format!("[auth]\nauthserv_id = \"mx.test\"\n[dns]\nnameservers = [\"{}\"]\n{extra}", dns.addr);
    Config::from_toml_str(&toml, "dns-budget.toml").unwrap()
}

fn budget(c: &Config) -> Duration {
    Duration::from_millis(c.dns.budget_ms)
}

/// One message through the milter, as Postfix would send it; returns the
/// end-of-message reply, its actions, and the time from end of message to reply.
async fn milter_message(addr: SocketAddr, brand: bool) -> (Status, indymilter_test::EomActions, Duration) {
    let mut conn = TestConnection::open(addr).await.unwrap();
    assert_eq!(conn.connect("mx.client.example", (CLIENT_IP, 40000)).await.unwrap(), Status::Noreply);
    assert_eq!(conn.helo("mx.client.example").await.unwrap(), Status::Noreply);
    let domain = if brand { "example.net" } else { "example.org" };
    assert_eq!(conn.mail([format!("<bounce@{domain}>")]).await.unwrap(), Status::Noreply);
    assert_eq!(conn.rcpt(["<jean@rcpt.example>"]).await.unwrap(), Status::Noreply);
    for (n, v) in headers(brand) {
        assert_eq!(conn.header(n, v).await.unwrap(), Status::Noreply);
    }
    assert_eq!(conn.eoh().await.unwrap(), Status::Noreply);
    conn.body(b"Hi\r\n".to_vec()).await.unwrap();
    let t = Instant::now();
    let (actions, status) = conn.eom().await.unwrap();
    let took = t.elapsed();
    conn.close().await.unwrap();
    (status, actions, took)
}

fn added(actions: &indymilter_test::EomActions, name: &str) -> Vec<String> {
    actions
        .actions
        .iter()
        .filter_map(|a| match a {
            EomAction::AddHeader { name: n, value } if n.to_str().unwrap() == name => Some(value.to_string_lossy().into_owned()),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_resolver_holds_a_milter_message_no_longer_than_the_budget() {
    let dns = FakeDns::start(|_| Answer::Drop);
    let c = config(&dns, "");
    assert_eq!((c.dns.timeout_ms, c.dns.attempts, c.dns.on_error), (2000, 2, impostor::config::DnsOnError::Tempfail), "the defaults");
    let budget = budget(&c);
    let shared = Shared::new(Engine::online(c).unwrap());
    let listener = MilterListener::bind(&SocketSpec::Inet("127.0.0.1:0".into()), 0o660, "").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let (_reload, reload) = tokio::sync::mpsc::channel(1);
    let daemon = tokio::spawn(impostor::run(listener, shared.clone(), reload, async {
        let _ = stopped.await;
    }));

    let ((clean, clean_actions, clean_took), (brand, _, brand_took)) =
        tokio::join!(milter_message(addr, false), milter_message(addr, true));
    eprintln!("time to verdict with a silent resolver (budget {budget:?}): no brand {clean_took:?}, brand {brand_took:?}");

    assert_eq!(clean, Status::Continue, "a message naming no brand is accepted");
    assert_eq!(added(&clean_actions, "X-Impostor-Verdict"), ["accept"]);
    assert_eq!(added(&clean_actions, "X-Impostor-Rules"), ["DNS_TEMPERROR=0.0"]);
    let Status::Tempfail { message: Some(m) } = &brand else { panic!("brand message: expected a 451, got {brand:?}") };
    assert!(m.to_str().unwrap().starts_with("451 4.7.1 "), "{m:?}");
    for took in [clean_took, brand_took] {
        assert!(took <= budget + Duration::from_secs(1), "verdict after {took:?}: more than the budget {budget:?} + 1 s");
        // the lookups never fail on their own here: the budget is what ends them
        assert!(took + Duration::from_millis(100) >= budget, "verdict after {took:?}, before the budget {budget:?} ran out");
    }
    assert_eq!(shared.metrics.dns_timeouts.get(), 2, "both cut off by the budget");
    let _ = stop.send(());
    daemon.await.unwrap().unwrap();
    assert!(dns.first("example.org").is_some() && dns.first("s1._domainkey.example.org").is_some(), "the resolver was asked");
}

#[test]
fn dead_resolver_verdicts_carry_a_temperror_naming_the_budget() {
    let dns = FakeDns::start(|_| Answer::Drop);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let run = |toml: &str, brand: bool| {
        let c = config(&dns, toml);
        let budget = c.dns.budget_ms;
        let engine = Engine::online(c).unwrap();
        let (raw, env) = (raw(brand), envelope(if brand { "bounce@example.net" } else { "bounce@example.org" }));
        let t = Instant::now();
        let a = rt.block_on(engine.auth.authenticate(&env, raw.as_bytes(), false, &Default::default()));
        let took = t.elapsed();
        let input = MessageInput { envelope: &env, raw: raw.as_bytes(), truncated: false, headers_truncated: false, auth: a.as_ref() };
        (analyze(&engine, &input).0, budget, took)
    };
    for (brand, action) in [(false, Action::Accept), (true, Action::Tempfail)] {
        let (v, budget, took) = run("", brand);
        assert_eq!(v.action, action, "brand: {brand}: {v:?}");
        assert!(took <= Duration::from_millis(budget + 1000), "{took:?}");
        let t = v.rules.iter().find(|r| r.id == "DNS_TEMPERROR").unwrap_or_else(|| panic!("no DNS_TEMPERROR: {v:?}"));
        assert_eq!(t.score, 0.0);
        assert!(t.evidence.contains(&format!("dns.budget_ms ({budget} ms)")), "{}", t.evidence);
        assert!(!v.rule_ids().iter().any(|r| r.contains("FAIL")), "no fail from an outage: {v:?}");
    }
    // on_error = "continue": the brand message is judged on what is known
    let (v, _, _) = run("on_error = \"continue\"\n", true);
    assert_eq!(v.action, Action::Tag, "{v:?}");
    assert!(v.rule_ids().contains(&"DNS_TEMPERROR"), "{v:?}");
}

#[test]
fn dkim_and_spf_lookups_go_out_together() {
    // one attempt of 2 s: run one after the other, the SPF query would come 2 s after the DKIM key query
    let dns = FakeDns::start(|_| Answer::Drop);
    let c = config(&dns, "timeout_ms = 2000\nattempts = 1\n");
    let engine = Engine::online(c).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let (raw, env) = (raw(false), envelope("bounce@example.org"));
    let a = rt.block_on(engine.auth.authenticate(&env, raw.as_bytes(), false, &Default::default())).unwrap();
    let (dkim, spf) = (dns.first("s1._domainkey.example.org").expect("DKIM key query"), dns.first("example.org").expect("SPF query"));
    let gap = if dkim > spf { dkim - spf } else { spf - dkim };
    assert!(gap < Duration::from_millis(500), "DKIM and SPF queries {gap:?} apart: not concurrent");
    assert_eq!(a.spf.as_ref().map(|s| s.result), Some(AuthResult::TempError), "{a:?}");
    assert_eq!(a.dkim.iter().map(|d| d.result).collect::<Vec<_>>(), [AuthResult::TempError], "{a:?}");
}

#[test]
fn nxdomain_without_soa_is_kept_for_negative_cache_secs() {
    // a forwarder that answers NXDOMAIN with no SOA: by default (RFC 2308) not cached, so every message asks its
    // _dmarc and _domainkey names again; with dns.negative_cache_secs the answer is kept that long
    let dns = FakeDns::start(|_| Answer::NxDomain);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let (raw, env) = (raw(false), envelope("bounce@example.org"));
    let names = ["s1._domainkey.example.org", "_dmarc.example.org"];
    for (extra, per_message) in [("negative_cache_secs = 10\n", 0), ("", 1)] {
        let engine = Engine::online(config(&dns, extra)).unwrap();
        let before: Vec<usize> = names.iter().map(|n| dns.count(n)).collect();
        for _ in 0..3 {
            let a = rt.block_on(engine.auth.authenticate(&env, raw.as_bytes(), false, &Default::default())).unwrap();
            assert!(a.temperror.is_empty(), "NXDOMAIN is an answer, not a temporary error: {a:?}");
        }
        for (n, b) in names.iter().zip(before) {
            // the first message asks once; the next two ask again only without the negative cache
            assert_eq!(dns.count(n) - b, 1 + 2 * per_message, "queries for {n} with [dns] {extra:?}");
        }
    }
    assert!(Config::from_toml_str("[dns]\nnegative_cache_secs = 4000\n", "x.toml")
        .unwrap_err()
        .to_string()
        .contains("dns.negative_cache_secs: 4000"));
}

#[test]
fn parsed_policies_are_kept_for_their_ttl() {
    // SPF and DMARC records with a 60 s TTL: the second message of the sender reuses what the first parsed
    let dns = FakeDns::start(|name| match name {
        "example.org" => Answer::Txt("v=spf1 ip4:203.0.113.0/24 -all"),
        "_dmarc.example.org" => Answer::Txt("v=DMARC1; p=reject"),
        _ => Answer::NxDomain,
    });
    let engine = Engine::online(config(&dns, "")).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let (raw, env) = (raw(false), envelope("bounce@example.org"));
    let first = rt.block_on(engine.auth.authenticate(&env, raw.as_bytes(), false, &Default::default())).unwrap();
    assert_eq!(first.spf.as_ref().map(|s| s.result), Some(AuthResult::Pass), "{first:?}");
    assert_eq!(first.dmarc.as_ref().map(|d| d.result), Some(AuthResult::Pass), "{first:?}");
    assert_eq!(engine.auth.cached_records(), 2, "the SPF and DMARC records (the DKIM key is NXDOMAIN: not cached)");
    let second = rt.block_on(engine.auth.authenticate(&env, raw.as_bytes(), false, &Default::default())).unwrap();
    assert_eq!(format!("{first:?}"), format!("{second:?}"));
    assert_eq!(engine.auth.cached_records(), 2);
}

#[test]
fn concurrent_messages_of_one_sender_share_its_lookups() {
    // a cold cache and a slow resolver: six messages of one sender checked at the same time. Each name is
    // asked once: hickory (0.26, NameServerPool) shares a query in progress with every identical one sent
    // meanwhile; without that, every message would send its own query while the first is still out.
    let dns = FakeDns::start(|name| match name {
        "example.org" => Answer::SlowTxt("v=spf1 ip4:203.0.113.0/24 -all"),
        "_dmarc.example.org" => Answer::SlowTxt("v=DMARC1; p=reject"),
        "s1._domainkey.example.org" => Answer::SlowTxt("v=DKIM1; k=rsa; p="),
        _ => Answer::NxDomain,
    });
    let engine = Engine::online(config(&dns, "")).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let (raw, env, upstream) = (raw(false), envelope("bounce@example.org"), Default::default());
    let one = || engine.auth.authenticate(&env, raw.as_bytes(), false, &upstream);
    let all = rt.block_on(async { tokio::join!(one(), one(), one(), one(), one(), one()) });
    let all = [all.0, all.1, all.2, all.3, all.4, all.5].map(Option::unwrap);
    for a in &all {
        assert_eq!(a.spf.as_ref().map(|s| s.result), Some(AuthResult::Pass), "{a:?}");
        assert_eq!(a.dmarc.as_ref().map(|d| d.result), Some(AuthResult::Pass), "{a:?}");
        assert!(a.temperror.is_empty(), "{a:?}");
        assert_eq!(format!("{:?}", a.dkim), format!("{:?}", all[0].dkim), "the same DKIM result for every message");
    }
    for name in ["example.org", "_dmarc.example.org", "s1._domainkey.example.org"] {
        assert_eq!(dns.count(name), 1, "queries for {name} from six concurrent messages");
    }
}

/// With a short budget (two 400 ms attempts would outlast it), runs our own checks of the no-brand message.
fn partial(policy: fn(&str) -> Answer) -> (auth::AuthResults, FakeDns) {
    let dns = FakeDns::start(policy);
    let c = config(&dns, "timeout_ms = 400\nattempts = 2\nbudget_ms = 600\n");
    let engine = Engine::online(c).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let (raw, env) = (raw(false), envelope("bounce@example.org"));
    let a = rt.block_on(engine.auth.authenticate(&env, raw.as_bytes(), false, &Default::default())).unwrap();
    (a, dns)
}

fn budget_entry(a: &auth::AuthResults) -> &str {
    let e = a.temperror.iter().find(|t| t.starts_with("authentication checks exceeded dns.budget_ms"));
    e.unwrap_or_else(|| panic!("no budget temperror: {a:?}"))
}

#[test]
fn spf_answered_in_time_is_kept_when_dkim_runs_out_of_budget() {
    let (a, _dns) = partial(|n| if n == "example.org" { Answer::Txt("v=spf1 ip4:203.0.113.7 -all") } else { Answer::Drop });
    assert_eq!(a.spf.as_ref().map(|s| (s.result, s.domain.as_str())), Some((AuthResult::Pass, "example.org")), "{a:?}");
    assert_eq!(a.dkim.iter().map(|d| (d.result, d.domain.as_str())).collect::<Vec<_>>(), [(AuthResult::TempError, "example.org")], "{a:?}");
    // DMARC could not be looked up either: unknown, never fail
    assert_eq!(a.dmarc.as_ref().map(|d| d.result), Some(AuthResult::TempError), "{a:?}");
    let e = budget_entry(&a);
    assert!(e.contains("600 ms") && e.contains("dkim") && e.contains("dmarc") && !e.contains("spf"), "{e}");
}

#[test]
fn dkim_answered_in_time_is_kept_when_spf_runs_out_of_budget() {
    // the key does not exist: DKIM finishes (permerror) at once; SPF and DMARC get no answer
    let (a, dns) = partial(|n| if n == "s1._domainkey.example.org" { Answer::NxDomain } else { Answer::Drop });
    assert!(dns.first("s1._domainkey.example.org").is_some());
    assert_eq!(a.dkim.iter().map(|d| (d.result, d.domain.as_str())).collect::<Vec<_>>(), [(AuthResult::PermError, "example.org")], "{a:?}");
    assert_eq!(a.spf.as_ref().map(|s| (s.result, s.domain.as_str())), Some((AuthResult::TempError, "example.org")), "{a:?}");
    let e = budget_entry(&a);
    assert!(e.contains("spf example.org") && !e.contains("dkim"), "{e}");
}

#[test]
fn attempts_is_the_number_of_tries_per_query() {
    let dns = FakeDns::start(|_| Answer::Drop);
    let c = config(&dns, "timeout_ms = 300\nattempts = 2\n");
    let engine = Engine::online(c).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let (raw, env) = (raw(false), envelope("bounce@example.org"));
    let a = rt.block_on(engine.auth.authenticate(&env, raw.as_bytes(), false, &Default::default())).unwrap();
    assert!(!a.temperror.iter().any(|t| t.contains("exceeded")), "each lookup gave up on its own, within the overall bound: {a:?}");
    for name in ["s1._domainkey.example.org", "example.org", "_dmarc.example.org"] {
        assert_eq!(dns.count(name), 2, "tries for {name}");
    }
}
