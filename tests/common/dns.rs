//! A real DNS server on loopback for tests: dnsmasq, authoritative for the
//! given TXT records, NXDOMAIN for every other name, nothing forwarded.
#![allow(dead_code)] // not every test file uses every helper

use std::net::UdpSocket;
use std::process::{Child, Command, Stdio};

/// Fails the test with the Debian package to install when `bin` is missing.
pub fn need(bin: &str, pkg: &str) {
    let found = Command::new("sh").args(["-c", &format!("command -v {bin}")]).output().map(|o| o.status.success()).unwrap_or(false);
    assert!(found, "{bin} not found: install the Debian package {pkg} (tests/run.sh does)");
}

/// dnsmasq on 127.0.0.1:`port`. Stopped (by PID) on drop.
pub struct Dns {
    child: Child,
    pub port: u16,
}

impl Drop for Dns {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

extern "C" {
    fn geteuid() -> u32;
}

/// Starts dnsmasq serving `records` (name, TXT value) on a free port.
pub fn start(records: &[(&str, String)]) -> Dns {
    need("dnsmasq", "dnsmasq-base");
    let port = free_udp_port();
    let mut cmd = Command::new("dnsmasq");
    cmd.args(["--keep-in-foreground", "--listen-address=127.0.0.1", "--bind-interfaces", "--no-resolv", "--no-hosts", "--no-poll"])
        .arg(format!("--port={port}"))
        .args(["--pid-file=", "--address=/#/", "--log-facility=-"]);
    // SAFETY: geteuid has no preconditions
    if unsafe { geteuid() } == 0 {
        cmd.arg("--user=nobody");
    }
    for (name, txt) in records {
        // a TXT string holds at most 255 bytes: long DKIM keys go in several strings
        let chunks: Vec<String> = txt.as_bytes().chunks(250).map(|c| String::from_utf8_lossy(c).into_owned()).collect();
        cmd.arg(format!("--txt-record={name},{}", chunks.join(",")));
    }
    let child = cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("start dnsmasq");
    let mut dns = Dns { child, port };
    // dnsmasq binds before it forks nothing (--keep-in-foreground); give it a moment and make sure it lives
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(dns.child.try_wait().unwrap().is_none(), "dnsmasq exited at start (port {port} taken?)");
    dns
}
