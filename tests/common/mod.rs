//! The real daemon (`impostor::run`) on 127.0.0.1:0 for milter-level tests.
#![allow(dead_code)] // not every test file uses every helper

pub mod dkim;
pub mod dns;

use impostor::analysis::Engine;
use impostor::config::{Config, SocketSpec};
use impostor::{MilterListener, Shared};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::sync::oneshot;

pub struct Daemon {
    pub addr: SocketAddr,
    pub stop: Option<oneshot::Sender<()>>,
    /// Sends a new engine to the running daemon, as SIGHUP does.
    pub reload: tokio::sync::mpsc::Sender<Arc<Engine>>,
    pub task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Daemon {
    /// Offline (no DNS checks), with `toml` as the configuration.
    pub async fn start(toml: &str) -> Daemon {
        let config = Config::from_toml_str(toml, "test.toml").expect("test config");
        Daemon::with_engine(Engine::new(config).expect("test policy")).await
    }

    /// With DNS checks on, against the resolver at 127.0.0.1:`port`.
    pub async fn start_with_dns(toml: &str, port: u16) -> Daemon {
        let toml = format!("{toml}\n[dns]\nnameservers = [\"127.0.0.1:{port}\"]\ntimeout_ms = 1000\nattempts = 1\n");
        let config = Config::from_toml_str(&toml, "test.toml").expect("test config");
        Daemon::with_engine(Engine::online(config).unwrap()).await
    }

    /// With DNS checks on, against a resolver port where nothing answers.
    pub async fn start_online(toml: &str) -> Daemon {
        let port = std::net::UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let toml =
            format!("{toml}\n[dns]\nnameservers = [\"127.0.0.1:{port}\"]\ntimeout_ms = 200\nattempts = 1\non_error = \"continue\"\n");
        let config = Config::from_toml_str(&toml, "test.toml").expect("test config");
        Daemon::with_engine(Engine::online(config).unwrap()).await
    }

    async fn with_engine(engine: Arc<Engine>) -> Daemon {
        let listener = MilterListener::bind(&SocketSpec::Inet("127.0.0.1:0".into()), 0o660, "").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = oneshot::channel::<()>();
        let (reload, reload_rx) = tokio::sync::mpsc::channel(1);
        let task = tokio::spawn(impostor::run(listener, Shared::new(engine), reload_rx, async {
            let _ = rx.await;
        }));
        Daemon { addr, stop: Some(tx), reload, task }
    }

    /// Reloads the running daemon with `toml` (offline engine), in process.
    pub async fn reload_with(&self, toml: &str) {
        let config = Config::from_toml_str(toml, "reload.toml").expect("reload config");
        self.reload.send(Engine::new(config).expect("reload policy")).await.expect("daemon running");
        // the daemon takes it on its own task: wait until it is in place
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }

    pub async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        self.task.await.unwrap().unwrap();
    }
}
