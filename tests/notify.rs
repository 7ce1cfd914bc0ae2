//! `Type=notify`: the real `impostor serve` sends READY=1 to $NOTIFY_SOCKET once its sockets are bound.

use std::net::TcpListener;
use std::os::unix::net::UnixDatagram;
use std::process::{Command, Stdio};
use std::time::Duration;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[test]
fn serve_notifies_readiness_once_listening() {
    let dir = tempfile::tempdir().unwrap();
    let notify = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&notify).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    let (milter, metrics) = (free_port(), free_port());
    let config = dir.path().join("impostor.toml");
    std::fs::write(
        &config,
        format!("[milter]\nsocket = \"inet:127.0.0.1:{milter}\"\n[metrics]\nlisten = \"127.0.0.1:{metrics}\"\n[auth]\nenabled = false\n"),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_impostor"))
        .args(["serve", "-c"])
        .arg(&config)
        .env("NOTIFY_SOCKET", &notify)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut buf = [0u8; 4096];
    let got = sock.recv(&mut buf);
    // readiness means the MTA and the scraper can connect now
    let milter_up = std::net::TcpStream::connect(("127.0.0.1", milter)).is_ok();
    let metrics_up = std::net::TcpStream::connect(("127.0.0.1", metrics)).is_ok();
    let _ = Command::new("kill").args(["-s", "TERM", &child.id().to_string()]).status();
    let status = child.wait().unwrap();
    let n = got.expect("no notification within 15 s");
    let msg = String::from_utf8_lossy(&buf[..n]);
    assert!(msg.lines().any(|l| l == "READY=1"), "{msg:?}");
    assert!(milter_up && metrics_up, "READY=1 before the sockets were bound (milter {milter_up}, metrics {metrics_up})");
    assert_eq!(status.code(), Some(0));
}
