//! The real `impostor serve` process: reload on SIGHUP (a broken config keeps
//! the old one), Prometheus metrics, JSON logs for a SIEM, exit 0 on SIGTERM.

use indymilter_test::{EomAction, Status, TestConnection};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

struct Proc {
    child: Child,
    stderr: std::sync::mpsc::Receiver<String>,
    /// stderr lines up to "impostor listening"
    before_ready: std::cell::RefCell<Vec<String>>,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Proc {
    fn signal(&self, sig: &str) {
        assert!(Command::new("kill").args(["-s", sig, &self.child.id().to_string()]).status().unwrap().success());
    }

    /// Waits for a stderr line containing `needle`; returns it.
    fn wait_log(&self, needle: &str) -> String {
        self.wait_log_lines(needle).pop().unwrap_or_default()
    }

    /// The stderr lines up to and including the first containing `needle` (within 10 s).
    fn wait_log_lines(&self, needle: &str) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut seen = Vec::new();
        while Instant::now() < deadline {
            if let Ok(line) = self.stderr.recv_timeout(Duration::from_millis(100)) {
                let done = line.contains(needle);
                seen.push(line);
                if done {
                    return seen;
                }
            }
        }
        panic!("no log line containing {needle:?} within 10 s: {seen:#?}");
    }
}

fn start(config: &std::path::Path) -> Proc {
    let mut child = Command::new(env!("CARGO_BIN_EXE_impostor"))
        .args(["serve", "-c"])
        .arg(config)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let err = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let p = Proc { child, stderr: rx, before_ready: Default::default() };
    let lines = p.wait_log_lines("impostor listening");
    *p.before_ready.borrow_mut() = lines;
    p
}

fn config(dir: &std::path::Path, milter: u16, metrics: u16, extra: &str) -> std::path::PathBuf {
    let path = dir.join("impostor.toml");
    let text = format!(
        "{extra}\n[milter]\nsocket = \"inet:127.0.0.1:{milter}\"\n[metrics]\nlisten = \"127.0.0.1:{metrics}\"\n[auth]\nenabled = false\n[log]\nformat = \"json\"\n"
    );
    std::fs::write(&path, text).unwrap();
    path
}

async fn verdict(addr: SocketAddr) -> String {
    let mut conn = TestConnection::open(addr).await.unwrap();
    conn.connect("mx.client.example", ([203, 0, 113, 7], 40000)).await.unwrap();
    conn.mail(["<bounce@example.net>"]).await.unwrap();
    conn.rcpt(["<jean@rcpt.example>"]).await.unwrap();
    conn.header("From", "\"OpenAI Billing\" <billing@example.net>").await.unwrap();
    conn.header("Subject", "Your invoice").await.unwrap();
    conn.eoh().await.unwrap();
    conn.body(b"Pay.\r\n".to_vec()).await.unwrap();
    let (actions, status) = conn.eom().await.unwrap();
    conn.close().await.unwrap();
    assert_eq!(status, Status::Continue);
    actions
        .actions
        .iter()
        .find_map(|a| match a {
            EomAction::AddHeader { name, value } if name.to_str().unwrap() == "X-Impostor-Verdict" => {
                Some(value.to_string_lossy().into_owned())
            }
            _ => None,
        })
        .expect("X-Impostor-Verdict added")
}

fn scrape(port: u16) -> String {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    assert!(out.starts_with("HTTP/1.1 200 OK"), "{out}");
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn reload_metrics_json_logs_and_clean_exit() {
    let dir = tempfile::tempdir().unwrap();
    let (mport, pport) = (free_port(), free_port());
    let addr: SocketAddr = format!("127.0.0.1:{mport}").parse().unwrap();
    let cfg = config(dir.path(), mport, pport, "");
    let p = start(&cfg);

    assert_eq!(verdict(addr).await, "tag");
    // one JSON object per message, for a SIEM
    let line = p.wait_log("\"verdict\"");
    let rec: serde_json::Value = serde_json::from_str(&line).expect("JSON log line");
    assert_eq!(rec["action"], "tag");
    assert_eq!(rec["rules"], serde_json::json!([{"id": "BRAND_NAME_FOREIGN_DOMAIN", "score": 6.0}]), "{line}");
    assert_eq!(rec["from_domain"], "example.net");
    assert_eq!(rec["mail_from"], "@example.net", "addresses are domain-only by default");

    let m = scrape(pport);
    assert!(m.contains("impostor_messages_total{action=\"tag\",monitor=\"false\"} 1"), "{m}");
    assert!(m.contains("impostor_findings_total{rule=\"BRAND_NAME_FOREIGN_DOMAIN\"} 1"), "{m}");
    assert!(m.contains("impostor_connections_total 1"), "{m}");

    // a heavier weight, reloaded without restart
    config(dir.path(), mport, pport, "[scores]\nBRAND_NAME_FOREIGN_DOMAIN = 11.0\n");
    p.signal("HUP");
    p.wait_log("configuration reloaded");
    assert_eq!(verdict(addr).await, "quarantine");

    // a broken config is rejected and the old one kept
    std::fs::write(&cfg, "[actions]\nreject = 1\n").unwrap();
    p.signal("HUP");
    let err = p.wait_log("reload rejected");
    assert!(err.contains("actions.reject"), "{err}");
    assert_eq!(verdict(addr).await, "quarantine");
    let m = scrape(pport);
    assert!(m.contains("impostor_reloads_total{result=\"ok\"} 1"), "{m}");
    assert!(m.contains("impostor_reloads_total{result=\"failed\"} 1"), "{m}");

    let mut p = p;
    p.signal("TERM");
    let status = p.child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
}

#[tokio::test(flavor = "multi_thread")]
async fn started_as_root_it_drops_to_the_configured_user() {
    if unsafe { geteuid() } != 0 {
        eprintln!("not root: privilege drop not exercised here (CI runs as root)");
        return;
    }
    // the default on this machine's CPUs, then a multi-threaded runtime (one thread is a
    // current-thread runtime; more are worker threads started before the drop)
    for workers in [1, 2] {
        let dir = tempfile::tempdir().unwrap();
        let (mport, pport) = (free_port(), free_port());
        let cfg = config(dir.path(), mport, pport, "user = \"nobody\"\n");
        let text = std::fs::read_to_string(&cfg).unwrap().replace("[milter]\n", &format!("[milter]\nworker_threads = {workers}\n"));
        std::fs::write(&cfg, text).unwrap();
        let p = start(&cfg);
        // "impostor listening" comes once the daemon is ready: after the drop
        assert!(p.before_ready.borrow().iter().any(|l| l.contains("dropped privileges")), "{:#?}", p.before_ready.borrow());
        assert!(
            p.before_ready
                .borrow()
                .iter()
                .any(|l| l.contains("impostor listening") && l.contains(&format!("\"worker_threads\":{workers}"))),
            "{:#?}",
            p.before_ready.borrow()
        );
        let addr: SocketAddr = format!("127.0.0.1:{mport}").parse().unwrap();
        assert_eq!(verdict(addr).await, "tag", "still serving after the drop");
        // every thread of the process runs as nobody, real and effective
        let tasks = std::fs::read_dir(format!("/proc/{}/task", p.child.id())).unwrap();
        let mut n = 0;
        for t in tasks.flatten() {
            let status = std::fs::read_to_string(t.path().join("status")).unwrap();
            let uid = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
            assert_eq!(uid.split_whitespace().skip(1).collect::<Vec<_>>(), ["65534"; 4], "{uid}");
            n += 1;
        }
        // one: the main thread is the runtime; more: the worker threads beside the main thread
        let least = if workers == 1 { 1 } else { workers + 1 };
        assert!(n >= least, "worker_threads = {workers}: {n} threads, expected at least {least}");
    }
}

extern "C" {
    fn geteuid() -> u32;
}

/// Datagrams received on `sock` within 10 s until one contains `needle`.
fn wait_datagram(sock: &std::os::unix::net::UnixDatagram, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut buf = vec![0u8; 65536];
    while Instant::now() < deadline {
        if let Ok(n) = sock.recv(&mut buf) {
            let d = String::from_utf8_lossy(&buf[..n]).into_owned();
            if d.contains(needle) {
                return d;
            }
        }
    }
    panic!("no syslog datagram containing {needle:?} within 10 s");
}

#[tokio::test(flavor = "multi_thread")]
async fn syslog_output_sends_verdicts_with_the_mail_facility() {
    let dir = tempfile::tempdir().unwrap();
    let (mport, pport) = (free_port(), free_port());
    let addr: SocketAddr = format!("127.0.0.1:{mport}").parse().unwrap();
    let log = dir.path().join("log.sock");
    let sock = std::os::unix::net::UnixDatagram::bind(&log).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    let cfg = dir.path().join("impostor.toml");
    std::fs::write(
        &cfg,
        format!(
            "[milter]\nsocket = \"inet:127.0.0.1:{mport}\"\n[metrics]\nlisten = \"127.0.0.1:{pport}\"\n[auth]\nenabled = false\n\
             [log]\noutput = \"syslog\"\nfacility = \"mail\"\nsyslog_socket = \"{}\"\n",
            log.display()
        ),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_impostor"))
        .args(["serve", "-c"])
        .arg(&cfg)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // mail facility (2) × 8 + info (6) = <22>
    let up = wait_datagram(&sock, "impostor listening");
    assert!(up.starts_with(&format!("<22>impostor[{}]: ", child.id())), "{up}");
    assert_eq!(verdict(addr).await, "tag");
    let v = wait_datagram(&sock, "verdict");
    assert!(v.starts_with("<22>impostor["), "{v}");
    assert!(v.contains("action=\"tag\"") || v.contains("action=tag"), "{v}");
    assert!(v.contains("BRAND_NAME_FOREIGN_DOMAIN=6.0") && v.contains("queue_id"), "{v}");
    assert!(!v.contains("billing@"), "addresses are domain-only: {v}");
    // a rejected reload is an error: <19> (mail × 8 + err 3)
    std::fs::write(&cfg, std::fs::read_to_string(&cfg).unwrap() + "[actions]\nreject = 1\n").unwrap();
    assert!(Command::new("kill").args(["-s", "HUP", &child.id().to_string()]).status().unwrap().success());
    let e = wait_datagram(&sock, "reload rejected");
    assert!(e.starts_with("<19>impostor["), "{e}");
    assert!(Command::new("kill").args(["-s", "TERM", &child.id().to_string()]).status().unwrap().success());
    assert_eq!(child.wait().unwrap().code(), Some(0));
}

#[tokio::test(flavor = "multi_thread")]
async fn ioc_file_is_reloaded_on_sighup() {
    let dir = tempfile::tempdir().unwrap();
    let (mport, pport) = (free_port(), free_port());
    let addr: SocketAddr = format!("127.0.0.1:{mport}").parse().unwrap();
    let ioc = dir.path().join("ioc.txt");
    std::fs::write(&ioc, "# local feed\nlink-host unrelated.example\n").unwrap();
    // 6.0 (display name claims OpenAI) + 5.0 for the IOC = quarantine
    let extra = format!("[intel]\nioc_file = \"{}\"\n[scores]\nIOC_SENDER_DOMAIN = 5.0\n", ioc.display());
    let cfg = config(dir.path(), mport, pport, &extra);
    let p = start(&cfg);
    assert_eq!(verdict(addr).await, "tag");
    let line = p.wait_log("\"verdict\"");
    assert!(!line.contains("IOC_"), "{line}");

    // the sender's domain goes on the list: reloaded with SIGHUP, no restart
    std::fs::write(&ioc, "# local feed\nlink-host unrelated.example\nsender-domain example.net\n").unwrap();
    p.signal("HUP");
    p.wait_log("configuration reloaded");
    assert_eq!(verdict(addr).await, "quarantine");
    let line = p.wait_log("\"verdict\"");
    let rec: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert!(rec["rules"].as_array().unwrap().iter().any(|r| r["id"] == "IOC_SENDER_DOMAIN" && r["score"] == 5.0), "{line}");

    // a broken list is rejected like a broken config: the old list stays
    std::fs::write(&ioc, "sender-domain example.net\nhost x.example\n").unwrap();
    p.signal("HUP");
    let err = p.wait_log("reload rejected");
    assert!(err.contains("intel.ioc_file") && err.contains("ioc.txt:2"), "{err}");
    assert_eq!(verdict(addr).await, "quarantine");
}
