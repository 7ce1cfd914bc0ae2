//! impostor command line: flags, signals, socket bind; nothing else.

use clap::{Parser, Subcommand};
use impostor::analysis::{Engine, Envelope};
use impostor::config::{Config, Overrides, SocketSpec};
use impostor::{cli, logging, verdict, MilterListener, Shared};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "impostor",
    version,
    about = "Milter that detects brand impersonation (lookalike domains, unauthenticated brand claims, credential lures)"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the milter daemon.
    Serve {
        /// Config file (default: /etc/impostor/impostor.toml if it exists, else the built-in default).
        #[arg(short, long)]
        config: Option<PathBuf>,
        /// Listen here instead of milter.socket: inet:HOST:PORT or unix:PATH.
        #[arg(long)]
        socket: Option<String>,
        /// Monitor mode: add headers with the would-be action, never act.
        #[arg(long)]
        dry_run: bool,
        /// DNS resolver IP:PORT (repeatable); overrides dns.nameservers.
        #[arg(long = "nameserver", value_name = "IP:PORT")]
        nameservers: Vec<String>,
    },
    /// Analyse one message file and explain the verdict.
    Check {
        #[arg(short, long)]
        config: Option<PathBuf>,
        /// SMTP client address to assume.
        #[arg(long)]
        client_ip: Option<std::net::IpAddr>,
        /// HELO name to assume.
        #[arg(long)]
        helo: Option<String>,
        /// Envelope sender (MAIL FROM) to assume.
        #[arg(long)]
        mail_from: Option<String>,
        /// One JSON object with the same fields as a `scan --json` line.
        #[arg(long)]
        json: bool,
        /// No DNS lookups: authentication only from trusted recorded results.
        #[arg(long, conflicts_with = "nameservers")]
        offline: bool,
        /// DNS resolver IP:PORT (repeatable); overrides dns.nameservers.
        #[arg(long = "nameserver", value_name = "IP:PORT")]
        nameservers: Vec<String>,
        /// Print each finding with its rule description, group, weights and evidence, the thresholds and which one decided.
        #[arg(long)]
        explain: bool,
        /// The message file; `-` reads standard input.
        message: PathBuf,
    },
    /// Analyse many messages in parallel: .eml files, Maildir folders (cur/, new/), mbox files.
    Scan {
        #[arg(short, long)]
        config: Option<PathBuf>,
        /// One JSON object per message on stdout; summary on stderr.
        #[arg(long)]
        json: bool,
        /// No DNS lookups (the default for scan).
        #[arg(long, conflicts_with = "online")]
        offline: bool,
        /// Resolve DNS like the daemon.
        #[arg(long)]
        online: bool,
        /// DNS resolver IP:PORT (repeatable, implies --online); overrides dns.nameservers.
        #[arg(long = "nameserver", value_name = "IP:PORT", conflicts_with = "offline")]
        nameservers: Vec<String>,
        /// The corpus is phish or ham: print a confusion summary and the worst misses.
        #[arg(long, value_enum)]
        expect: Option<cli::Expect>,
        /// Analyse every message under this other configuration too and print the verdicts that change.
        #[arg(long, value_name = "OTHER.toml", conflicts_with = "expect")]
        compare: Option<PathBuf>,
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Validate or print the configuration.
    Config {
        #[command(subcommand)]
        cmd: ConfigCmd,
    },
    /// Print a shell completion script: `impostor completions bash > /etc/bash_completion.d/impostor`.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// List every rule id with its group, default weight and description.
    Rules {
        /// A JSON array of {id, group, weight, description}.
        #[arg(long)]
        json: bool,
    },
    /// Say whether and how each domain imitates a protected brand.
    Lookalike {
        #[arg(short, long)]
        config: Option<PathBuf>,
        /// One JSON object per domain.
        #[arg(long)]
        json: bool,
        #[arg(required = true)]
        domains: Vec<String>,
    },
    /// Review Postfix's hold queue: impostor's verdicts, release, delete.
    Quarantine {
        /// Postfix configuration directory of a non-default instance (postqueue -c DIR).
        #[arg(long, global = true)]
        postfix_config: Option<String>,
        #[command(subcommand)]
        cmd: QuarantineCmd,
    },
    /// Serve the quarantine review page (docs/review.md): the hold queue in the browser.
    Review {
        #[arg(short, long)]
        config: Option<PathBuf>,
        /// Add a token to review.token_file (created with mode 0600), print it and exit.
        #[arg(long)]
        init_token: bool,
        /// The name the new token logs as (with --init-token).
        #[arg(long, default_value = "admin", requires = "init_token")]
        name: String,
        /// Postfix configuration directory of a non-default instance (postqueue -c DIR).
        #[arg(long)]
        postfix_config: Option<String>,
    },
}

#[derive(Subcommand)]
enum QuarantineCmd {
    /// Held messages with impostor's verdict, score and rules.
    List {
        #[arg(long)]
        json: bool,
    },
    /// A held message's headers.
    Show { queue_id: String },
    /// Release a held message for delivery (postsuper -H).
    Release { queue_id: String },
    /// Delete a held message (postsuper -d).
    Delete { queue_id: String },
}

#[derive(Subcommand)]
enum ConfigCmd {
    /// Validate a config file; errors name the file, key and value.
    Check {
        #[arg(short, long)]
        config: Option<PathBuf>,
    },
    /// Print the effective configuration.
    Show {
        #[arg(short, long)]
        config: Option<PathBuf>,
    },
    /// Print a JSON Schema of the configuration file, generated from its types (for editors and CI linters).
    Schema,
}

fn load(path: Option<&Path>) -> Result<Config, String> {
    Config::load_default_or(path).map_err(|e| e.to_string())
}

/// Loads the configuration with `--nameserver` flags over `dns.nameservers`.
fn load_with_nameservers(path: Option<&Path>, ns: &[String]) -> Result<Config, String> {
    Config::load_with(path, &Overrides { nameservers: ns.to_vec(), ..Default::default() }).map_err(|e| e.to_string())
}

/// Logs a quarantine decision where the daemon's logs go (the default
/// configuration's `[log]`: mail.log with `output = "syslog"`), with who made it.
fn audit(action: &str, queue_id: &str) {
    if let Ok(c) = Config::load_default_or(None) {
        logging::init(&c);
    }
    // SAFETY: plain getter
    let uid = unsafe { libc::getuid() };
    let by = std::env::var("SUDO_USER").unwrap_or_default();
    tracing::info!(queue_id, action, uid, sudo_user = by.as_str(), "quarantine {action}");
}

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(|e| e.to_string())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if !matches!(cli.cmd, Cmd::Serve { .. }) {
        // the commands that print: `impostor rules | head` ends quietly when the reader goes, as other Unix tools do
        // (Rust ignores SIGPIPE, and println! then panics on the broken pipe)
        // SAFETY: restoring the default disposition of one signal before any thread starts
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        }
    }
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("impostor: {e}");
            ExitCode::from(1)
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode, String> {
    match cli.cmd {
        Cmd::Serve { config, socket, dry_run, nameservers } => serve(config, socket, dry_run, nameservers),
        Cmd::Check { config, client_ip, helo, mail_from, json, offline, nameservers, explain, message } => {
            let c = load_with_nameservers(config.as_deref(), &nameservers)?;
            let rt = runtime()?;
            let engine = if offline { Engine::new(c).map_err(|e| e.to_string())? } else { rt.block_on(async { Engine::online(c) })? };
            let env = Envelope { client_ip, helo, mail_from, ..Default::default() };
            let handle = (!offline).then(|| rt.handle().clone());
            let (v, auth) = cli::check_file_auth(&engine, &message, &env, handle.as_ref())?;
            let file = message.display().to_string();
            if json {
                let r = cli::FileResult { file, verdict: &v, auth: &auth };
                println!("{}", serde_json::to_string(&r).map_err(|e| e.to_string())?);
            } else if explain {
                println!("{}", cli::explain_detail(&engine, &file, &v, &auth));
            } else {
                println!("{}", cli::explain_with_auth(&file, &v, &auth));
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Scan { config, json, offline: _, online, nameservers, expect, compare, paths } => {
            let online = online || !nameservers.is_empty();
            let c = load_with_nameservers(config.as_deref(), &nameservers)?;
            let rt = runtime()?;
            let build = |c: Config| -> Result<_, String> {
                if online {
                    rt.block_on(async { Engine::online(c) })
                } else {
                    Engine::new(c).map_err(|e| e.to_string())
                }
            };
            let engine = build(c)?;
            let files = cli::collect_files(&paths)?;
            let handle = online.then(|| rt.handle().clone());
            let errors = match compare {
                Some(other) => {
                    let b = build(load_with_nameservers(Some(&other), &nameservers)?)?;
                    impostor::compare::compare(&engine, &b, &other.display().to_string(), &files, json, handle.as_ref())
                }
                None => cli::scan(&engine, &files, json, handle.as_ref(), expect),
            };
            Ok(if errors > 0 { ExitCode::from(1) } else { ExitCode::SUCCESS })
        }
        Cmd::Config { cmd: ConfigCmd::Check { config } } => {
            let c = load(config.as_deref())?;
            impostor::privdrop::check_accounts(&c.raw.user, &c.milter.socket_group)
                .map_err(|e| impostor::config::ConfigError::invalid(&c.source, e).located_in_file(&c.source).to_string())?;
            for w in c.warnings() {
                println!("{}: warning: {w}", c.source);
            }
            // the rule ids and groups it names are checked against the catalogue here
            let source = c.source.clone();
            Engine::new(c).map_err(|e| e.to_string())?;
            println!("{source}: ok");
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Config { cmd: ConfigCmd::Schema } => {
            let schema = schemars::schema_for!(impostor::config::RawConfig);
            println!("{}", serde_json::to_string_pretty(&schema).map_err(|e| e.to_string())?);
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Config { cmd: ConfigCmd::Show { config } } => {
            let c = load(config.as_deref())?;
            let engine = Engine::new(c).map_err(|e| e.to_string())?;
            print!("{}", engine.config.to_toml(impostor::analysis::catalog()));
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Quarantine { postfix_config, cmd } => {
            let pf = impostor::quarantine::Postfix { config_dir: postfix_config };
            match cmd {
                QuarantineCmd::List { json } => {
                    let held = pf.list()?;
                    for h in &held {
                        if json {
                            println!("{}", serde_json::to_string(h).map_err(|e| e.to_string())?);
                        } else {
                            println!(
                                "{:<14} {:<34} {:>6}  {}\n{:14} From: {}\n{:14} Subject: {}\n{:14} Rules: {}",
                                h.queue_id,
                                h.verdict.as_deref().unwrap_or("(no impostor verdict)"),
                                h.score.as_deref().unwrap_or("-"),
                                h.recipients.join(", "),
                                "",
                                h.from.as_deref().unwrap_or("-"),
                                "",
                                h.subject.as_deref().unwrap_or("-"),
                                "",
                                h.rules.as_deref().unwrap_or("-")
                            );
                        }
                    }
                    if !json {
                        println!("{} held message(s)", held.len());
                    }
                }
                QuarantineCmd::Show { queue_id } => print!("{}", pf.headers(&queue_id)?),
                QuarantineCmd::Release { queue_id } => {
                    pf.release(&queue_id)?;
                    audit("release", &queue_id);
                    println!("{queue_id}: released for delivery");
                }
                QuarantineCmd::Delete { queue_id } => {
                    pf.delete(&queue_id)?;
                    audit("delete", &queue_id);
                    println!("{queue_id}: deleted");
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Review { config, init_token, name, postfix_config } => {
            impostor::review::run_cli(config.as_deref(), init_token, &name, postfix_config)
        }
        Cmd::Lookalike { config, json, domains } => {
            use impostor::analysis::lookalike::{DomainClass, LookalikeMatcher};
            let c = load(config.as_deref())?;
            let m = LookalikeMatcher::new(&c.brands);
            for d in &domains {
                let class = m.check(d);
                if json {
                    let v = match &class {
                        DomainClass::NoMatch => serde_json::json!({"domain": d, "brand": null, "techniques": [], "normalized": null}),
                        DomainClass::Owned { brand } => {
                            serde_json::json!({"domain": d, "brand": null, "owned_by": brand, "techniques": [], "normalized": null})
                        }
                        DomainClass::Lookalike(l) => serde_json::json!({
                            "domain": d, "brand": l.brand, "imitates": l.imitates,
                            "techniques": l.techniques.iter().map(|t| t.as_str()).collect::<Vec<_>>(),
                            "normalized": l.normalized, "detail": l.detail,
                            "strength": l.strength, "weight_factor": l.strength.factor(),
                        }),
                    };
                    println!("{v}");
                } else {
                    match &class {
                        DomainClass::NoMatch => println!("{d}: no match"),
                        DomainClass::Owned { brand } => println!("{d}: owned by {brand} (never a finding)"),
                        DomainClass::Lookalike(l) => println!(
                            "{d}: {} ~ {} [{}] normalized {:?}: {}",
                            l.brand,
                            l.imitates,
                            l.techniques.iter().map(|t| t.as_str()).collect::<Vec<_>>().join(", "),
                            l.normalized,
                            l.detail
                        ),
                    }
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Completions { shell } => {
            use clap::CommandFactory;
            clap_complete::generate(shell, &mut Cli::command(), "impostor", &mut std::io::stdout());
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Rules { json: true } => {
            let rules: Vec<serde_json::Value> = impostor::analysis::catalog()
                .map(|r| serde_json::json!({"id": r.id, "group": r.group, "weight": r.default_weight, "description": r.description}))
                .collect();
            println!("{}", serde_json::to_string_pretty(&rules).map_err(|e| e.to_string())?);
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Rules { json: false } => {
            for r in impostor::analysis::catalog() {
                println!("{:<32} {:<10} {:>5.1}  {}", r.id, r.group, r.default_weight, r.description);
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn serve(path: Option<PathBuf>, socket: Option<String>, dry_run: bool, nameservers: Vec<String>) -> Result<ExitCode, String> {
    let overrides = Overrides { socket, nameservers, monitor: dry_run };
    let load_config = move || Config::load_with(path.as_deref(), &overrides).map_err(|e| e.to_string());
    let config = load_config()?;
    impostor::privdrop::check_accounts(&config.raw.user, &config.milter.socket_group)
        .map_err(|e| impostor::config::ConfigError::invalid(&config.source, e).located_in_file(&config.source).to_string())?;
    logging::init(&config);
    let workers = impostor::config::worker_threads(config.milter.worker_threads);
    // one thread: a current-thread runtime. The same single thread serves the connections either
    // way, but without the multi-thread scheduler's hand-overs (queues, worker wake-ups, the thread
    // blocked on this future) — a fifth less CPU per message for the protocol alone under Postfix
    // (docs/performance.md, null-milter). Blocking analyses still go to the blocking pool.
    let mut builder = if workers == 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(workers);
        b
    };
    let rt = builder.enable_all().build().map_err(|e| e.to_string())?;
    let result = rt.block_on(async move {
        let listener = MilterListener::bind(&config.socket, config.socket_mode, &config.milter.socket_group)
            .await
            .map_err(|e| format!("cannot listen on {:?}: {e}", config.socket))?;
        // SIGTERM/SIGINT handled from here on: a stop right after start (even during the engine's warm-up) is a clean one
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate()).map_err(|e| format!("SIGTERM handler: {e}"))?;
        let mut int = signal(SignalKind::interrupt()).map_err(|e| format!("SIGINT handler: {e}"))?;
        for w in config.warnings() {
            tracing::warn!("{}: {w}", config.source);
        }
        let shared = Shared::new(Engine::online(config.clone())?);
        if !config.metrics.listen.is_empty() {
            let l = tokio::net::TcpListener::bind(&config.metrics.listen)
                .await
                .map_err(|e| format!("metrics.listen {:?}: {e}", config.metrics.listen))?;
            tracing::info!(listen = %config.metrics.listen, "metrics at /metrics");
            tokio::spawn(impostor::metrics::serve(l, shared.metrics.clone()));
        }
        let socket_path = match &config.socket {
            SocketSpec::Unix(p) => Some(p.clone()),
            SocketSpec::Inet(_) => None,
        };
        let own: Vec<&std::path::Path> = socket_path.iter().map(|p| p.as_path()).collect();
        impostor::privdrop::drop_privileges(&config.user, &own)?;
        // SIGHUP: load and check the configuration here; a valid one goes to the daemon, an invalid one is logged
        let (reload_tx, reload_rx) = tokio::sync::mpsc::channel(1);
        let reload_metrics = shared.metrics.clone();
        // the handler is in place before readiness is announced: a reload right after start does not kill the daemon
        let hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup());
        tokio::spawn(async move {
            let Ok(mut hup) = hup else { return };
            while hup.recv().await.is_some() {
                match load_config().and_then(Engine::online) {
                    Ok(engine) => {
                        if reload_tx.send(engine).await.is_err() {
                            return;
                        }
                    }
                    Err(e) => {
                        reload_metrics.reload(false);
                        tracing::error!("reload rejected, keeping the old configuration: {e}")
                    }
                }
            }
        });
        let shutdown = async move {
            tokio::select! {
                _ = term.recv() => tracing::info!("SIGTERM received"),
                _ = int.recv() => tracing::info!("SIGINT received"),
            }
        };
        // "listening" once it is so: engine built and warm, privileges dropped, signals handled
        tracing::info!(
            socket = ?config.socket,
            config = %config.source,
            monitor = config.monitor,
            nameservers = ?config.dns.nameservers,
            auth = config.auth.enabled,
            brands = config.brands.len(),
            worker_threads = workers,
            version = env!("CARGO_PKG_VERSION"),
            "impostor listening"
        );
        // Type=notify: sockets bound, privileges dropped, signals handled; nothing happens without NOTIFY_SOCKET
        if let Err(e) = sd_notify::notify(&[sd_notify::NotifyState::Ready]) {
            tracing::warn!("cannot notify systemd of readiness: {e}");
        }
        // the accept loop is a task beside the sessions it spawns: with worker threads, on the thread
        // that blocks on this future every connection would cost two cross-thread wake-ups (listener
        // readiness seen by a worker, the new session handed back to one)
        tokio::spawn(impostor::run(listener, shared.clone(), reload_rx, shutdown))
            .await
            .map_err(|e| format!("milter task failed: {e}"))?
            .map_err(|e| format!("milter failed: {e}"))?;
        let counts: Vec<String> = verdict::Action::ALL
            .iter()
            .zip(shared.by_action.iter())
            .map(|(a, n)| format!("{a}={}", n.load(std::sync::atomic::Ordering::Relaxed)))
            .collect();
        tracing::info!(counts = counts.join(" "), "impostor stopped");
        Ok(ExitCode::SUCCESS)
    });
    // an analysis past its deadline may still run on a blocking thread: do not wait for it
    rt.shutdown_timeout(std::time::Duration::from_secs(1));
    result
}
