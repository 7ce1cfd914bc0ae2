//! The milter daemon: the listener and its connections, per-connection and
//! per-message state, and the callbacks that are glue between the MTA and the
//! engine. [`run`] serves one listener until shutdown.

pub mod batch;
pub mod callbacks;
pub mod conn;
pub mod listener;
pub mod session;

pub use conn::{MilterConn, MilterTcp, MilterUnix};
pub use listener::MilterListener;

use crate::analysis::Engine;
use crate::metrics;
use crate::verdict::{Action, Verdict};
use std::future::Future;
use std::io;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// State shared by all connections of one daemon.
#[derive(Debug)]
pub struct Shared {
    engine: RwLock<Arc<Engine>>,
    /// Messages between MAIL FROM and end of message.
    pub in_flight: Arc<AtomicUsize>,
    /// Messages per action (index = position in [`Action::ALL`]); fail-mode verdicts counted apart.
    pub by_action: [AtomicU64; 5],
    pub fail_mode_verdicts: AtomicU64,
    pub metrics: Arc<metrics::Metrics>,
}

impl Shared {
    pub fn new(engine: Arc<Engine>) -> Arc<Shared> {
        Arc::new(Shared {
            engine: RwLock::new(engine),
            in_flight: Arc::new(AtomicUsize::new(0)),
            by_action: Default::default(),
            fail_mode_verdicts: AtomicU64::new(0),
            metrics: Arc::new(metrics::Metrics::new()),
        })
    }

    /// The current engine (config + precomputed matchers).
    pub fn engine(&self) -> Arc<Engine> {
        self.engine.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Replaces the engine (reload). Socket settings need a restart.
    pub fn replace(&self, engine: Arc<Engine>) {
        *self.engine.write().unwrap_or_else(|e| e.into_inner()) = engine;
    }

    /// Counts a verdict in the shutdown summary and the metrics.
    pub fn count(&self, v: &Verdict, elapsed: Duration) {
        if v.error.is_some() {
            self.fail_mode_verdicts.fetch_add(1, Ordering::Relaxed);
            self.metrics.fail_mode.inc();
        }
        let action = v.effective_action();
        let i = Action::ALL.iter().position(|a| *a == action).unwrap_or(0);
        self.by_action[i].fetch_add(1, Ordering::Relaxed);
        // monitor mode: the would-be action, labelled monitor="true"
        let monitored = v.monitor && v.error.is_none();
        let label = if monitored { metrics::ActionLabel::new(v.action, true) } else { metrics::ActionLabel::new(action, false) };
        self.metrics.messages.get_or_create(&label).inc();
        for r in &v.rules {
            self.metrics.findings.get_or_create(&metrics::RuleLabel { rule: r.id.into() }).inc();
        }
        self.metrics.analysis_seconds.observe(elapsed.as_secs_f64());
    }
}

/// Runs the milter on `listener` until `shutdown` completes; then stops
/// accepting, lets in-flight messages finish (up to `milter.shutdown_timeout`)
/// and returns.
///
/// A new engine (a configuration reloaded on SIGHUP) arrives over `reload`:
/// it serves every message that starts after it, while messages in flight
/// finish with the engine they started with. Settings that are bound at start
/// (socket, milter limits, logging, metrics) need a restart, and a warning
/// says so.
pub async fn run(
    listener: MilterListener,
    shared: Arc<Shared>,
    mut reload: tokio::sync::mpsc::Receiver<Arc<Engine>>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let engine = shared.engine();
    let reload_shared = shared.clone();
    let reloader = tokio::spawn(async move {
        while let Some(new) = reload.recv().await {
            let old = reload_shared.engine();
            let (o, n) = (&old.config, &new.config);
            if n.socket != o.socket || n.log != o.log || n.milter != o.milter || n.metrics != o.metrics {
                tracing::warn!("reload: milter, log or metrics settings changed; restart needed for those");
            }
            reload_shared.replace(new);
            reload_shared.metrics.reload(true);
            tracing::info!("configuration reloaded");
        }
    });
    let mc = &engine.config.milter;
    listener.set_max_connections(mc.max_connections);
    let config = indymilter::Config {
        // our listener enforces the limit by closing excess connections at once;
        // indymilter's own limit (which stops accepting, so the MTA hangs) stays above it
        max_connections: mc.max_connections.saturating_add(64),
        actions: indymilter::Actions::ADD_HEADER
            | indymilter::Actions::CHANGE_HEADER
            | indymilter::Actions::QUARANTINE
            | indymilter::Actions::REPLACE_BODY,
        connection_timeout: Duration::from_secs(mc.connection_timeout),
    };
    let grace = Duration::from_secs(mc.shutdown_timeout);
    let callbacks = callbacks::callbacks(shared.clone());
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let drain_listener = listener.clone();
    let drain_shared = shared.clone();
    let drainer = async move {
        shutdown.await;
        drain_listener.close();
        let n = drain_shared.in_flight.load(Ordering::SeqCst);
        tracing::info!(in_flight = n, "shutting down: no new connections; draining in-flight messages");
        let deadline = tokio::time::Instant::now() + grace;
        while drain_shared.in_flight.load(Ordering::SeqCst) > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let left = drain_shared.in_flight.load(Ordering::SeqCst);
        if left > 0 {
            tracing::warn!(in_flight = left, "shutdown grace period over; the MTA will apply its default action to these");
        }
        let _ = stop_tx.send(());
    };
    tokio::spawn(drainer);
    let result = indymilter::run(listener.clone(), callbacks, config, async {
        let _ = stop_rx.await;
    })
    .await;
    listener.close();
    reloader.abort();
    result
}
