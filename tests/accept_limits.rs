//! The real `impostor serve` with 40 file descriptors (RLIMIT_NOFILE): a flood of milter and metrics
//! connections runs it out of descriptors. It must keep running, not spin while it waits, and serve the
//! MTA and the scraper again once the flood is gone (before: one EMFILE from accept() ended the daemon).

use indymilter_test::{EomAction, Status, TestConnection};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

/// Descriptors the daemon may open: 13 at startup, so the flood below exhausts them.
const NOFILE: libc::rlim_t = 40;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

struct Proc {
    child: Child,
    stderr: Receiver<String>,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Proc {
    fn start(config: &std::path::Path) -> Proc {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_impostor"));
        cmd.args(["serve", "-c"]).arg(config).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped());
        // SAFETY: setrlimit is async-signal-safe and touches nothing of the parent's.
        unsafe {
            cmd.pre_exec(|| {
                let lim = libc::rlimit { rlim_cur: NOFILE, rlim_max: NOFILE };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut child = cmd.spawn().unwrap();
        let err = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let p = Proc { child, stderr: rx };
        p.wait_log("metrics at /metrics");
        p
    }

    /// Waits for a stderr line containing `needle`; returns it. Fails at once if the daemon exits.
    fn wait_log(&self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut seen = Vec::new();
        while Instant::now() < deadline {
            if let Ok(line) = self.stderr.recv_timeout(Duration::from_millis(100)) {
                if line.contains(needle) {
                    return line;
                }
                seen.push(line);
            }
        }
        panic!("no log line containing {needle:?} within 10 s; log:\n{}", seen.join("\n"));
    }

    /// The log so far.
    fn log(&self) -> String {
        self.stderr.try_iter().collect::<Vec<_>>().join("\n")
    }

    fn assert_alive(&mut self, when: &str) {
        if let Some(status) = self.child.try_wait().unwrap() {
            panic!("the daemon exited {when} ({status}); log:\n{}", self.log());
        }
    }

    /// CPU time (user + system) used so far.
    fn cpu(&self) -> Duration {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap();
        // the fields after the ")" closing the command name: state is field 3, utime 14, stime 15
        let fields: Vec<&str> = stat.rsplit_once(')').unwrap().1.split_whitespace().collect();
        let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
        // SAFETY: sysconf has no preconditions.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as u64;
        Duration::from_millis(ticks * 1000 / hz)
    }
}

fn config(dir: &std::path::Path, milter: u16, metrics: u16) -> std::path::PathBuf {
    let path = dir.join("impostor.toml");
    let text =
        format!("[milter]\nsocket = \"inet:127.0.0.1:{milter}\"\n[metrics]\nlisten = \"127.0.0.1:{metrics}\"\n[auth]\nenabled = false\n");
    std::fs::write(&path, text).unwrap();
    path
}

/// One message through a real milter session; the verdict header the daemon adds.
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

fn scrape(port: u16) -> std::io::Result<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out)
}

#[tokio::test(flavor = "multi_thread")]
async fn accept_survives_fd_exhaustion() {
    let dir = tempfile::tempdir().unwrap();
    let (mport, pport) = (free_port(), free_port());
    let addr: SocketAddr = format!("127.0.0.1:{mport}").parse().unwrap();
    let mut p = Proc::start(&config(dir.path(), mport, pport));
    assert_eq!(verdict(addr).await, "tag", "serving before the flood");

    // the kernel completes these handshakes into the listen backlogs; the daemon runs out of descriptors accepting them
    let cpu_before = p.cpu();
    let flood_start = Instant::now();
    let mut flood: Vec<TcpStream> = (0..60).map(|_| TcpStream::connect(addr).unwrap()).collect();
    flood.extend((0..20).map(|_| TcpStream::connect(("127.0.0.1", pport)).unwrap()));
    let warning = p.wait_log("cannot accept MTA connections");
    assert!(warning.contains("Too many open files"), "{warning}");
    // the descriptors stay exhausted while the flood holds its connections open
    std::thread::sleep(Duration::from_secs(2));
    p.assert_alive("while out of descriptors");
    let (cpu, wall) = (p.cpu() - cpu_before, flood_start.elapsed());
    assert!(cpu < wall / 4, "spinning while out of descriptors: {cpu:?} CPU in {wall:?}");

    drop(flood);
    let v = tokio::time::timeout(Duration::from_secs(10), verdict(addr)).await.expect("a verdict within 10 s of the flood ending");
    assert_eq!(v, "tag", "serving after the flood");
    let deadline = Instant::now() + Duration::from_secs(10);
    let metrics = loop {
        match scrape(pport) {
            Ok(m) if m.starts_with("HTTP/1.1 200 OK") => break m,
            other if Instant::now() > deadline => panic!("no scrape answered after the flood: {other:?}"),
            _ => std::thread::sleep(Duration::from_millis(100)),
        }
    };
    assert!(metrics.contains("impostor_messages_total{action=\"tag\",monitor=\"false\"} 2"), "{metrics}");
    p.assert_alive("after the flood");
    let log = p.log();
    assert!(!log.contains("milter failed") && !log.contains("milter exited with error"), "{log}");

    // still the clean exit of an undamaged daemon
    assert!(Command::new("kill").args(["-s", "TERM", &p.child.id().to_string()]).status().unwrap().success());
    assert_eq!(p.child.wait().unwrap().code(), Some(0));
}
