//! `impostor review`: the hold queue in the browser (issue #17). Its own process, not the
//! milter's: it reads and changes Postfix's hold queue through [`crate::quarantine::Postfix`]
//! (the `impostor quarantine` commands' code), behind a [`Queue`] trait so the handlers can be
//! tested with a fake queue.
//!
//! - [`store`]: the queue behind a trait, and the per-queue-id cache of what the list shows
//! - [`token`]: the access tokens file (`review.token_file`) and `--init-token`
//! - [`web`]: the axum router: login, sessions, CSRF, the list, the message view, the actions
//! - [`page`]: the maud templates, defanging, the stylesheet

pub mod page;
pub mod store;
pub mod token;
pub mod web;
#[cfg(test)]
mod web_tests;

pub use store::{Queue, Summary};

/// `impostor review`: serves the page (or, with `init_token`, adds a token to the token file).
pub fn run_cli(
    config: Option<&std::path::Path>,
    init_token: bool,
    name: &str,
    postfix_config: Option<String>,
) -> Result<std::process::ExitCode, String> {
    let mut c = crate::config::Config::load_default_or(config).map_err(|e| e.to_string())?;
    // impostor's own Authentication-Results (auth.authserv_id) on a held copy were written by the
    // milter, which removes incoming ones with that id: the offline re-check may read them
    if !c.auth.trusted_authserv_ids.iter().any(|t| t.eq_ignore_ascii_case(&c.authserv_id)) {
        c.auth.trusted_authserv_ids.push(c.authserv_id.clone());
    }
    let r = c.review.clone();
    let token_file = std::path::PathBuf::from(&r.token_file);
    if init_token {
        let secret = token::init(&token_file, name)?;
        println!("{name}:{secret}");
        eprintln!("impostor: token {name:?} added to {} (mode 0600)", token_file.display());
        return Ok(std::process::ExitCode::SUCCESS);
    }
    crate::logging::init(&c);
    let tokens = token::load(&token_file)?;
    let source = c.source.clone();
    let engine = crate::analysis::Engine::new(c).map_err(|e| e.to_string())?;
    let queue = std::sync::Arc::new(crate::quarantine::Postfix { config_dir: postfix_config.clone() });
    let mut app = web::App::new(queue, engine, tokens, r.feedback_dir.clone().into())?;
    if !r.allow_remote {
        let port = r.listen.parse::<std::net::SocketAddr>().map(|a| a.port()).map_err(|e| format!("review.listen: {e}"))?;
        app.allowed_hosts = Some(web::loopback_hosts(port));
    }
    let app = std::sync::Arc::new(app);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().map_err(|e| e.to_string())?;
    rt.block_on(async move {
        let listener =
            tokio::net::TcpListener::bind(&r.listen).await.map_err(|e| format!("{source}: review.listen: {:?}: {e}", r.listen))?;
        tracing::info!(listen = %r.listen, config = %source, postfix_config = ?postfix_config, feedback_dir = %r.feedback_dir,
            "impostor review listening");
        // read and analyse the hold queue once now, not on the first reviewer's request
        let warm = app.clone();
        tokio::task::spawn_blocking(move || {
            let t = std::time::Instant::now();
            match warm.cache.refresh(warm.queue.as_ref(), &warm.engine) {
                Ok(rows) => tracing::info!(held = rows.len(), ms = t.elapsed().as_millis() as u64, "review: hold queue read"),
                Err(e) => tracing::warn!("review: cannot read the hold queue: {e}"),
            }
        });
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate()).map_err(|e| format!("SIGTERM handler: {e}"))?;
        let mut int = signal(SignalKind::interrupt()).map_err(|e| format!("SIGINT handler: {e}"))?;
        let shutdown = async move {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
            tracing::info!("impostor review stopping");
        };
        axum::serve(listener, web::router(app)).with_graceful_shutdown(shutdown).await.map_err(|e| format!("review: {e}"))
    })?;
    Ok(std::process::ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use crate::config::ReviewConfig;

    fn check_config(r: &ReviewConfig) -> Result<(), String> {
        r.check()
    }

    #[test]
    fn non_loopback_listen_needs_allow_remote() {
        let mut r = ReviewConfig { listen: "0.0.0.0:9358".into(), ..Default::default() };
        let e = check_config(&r).unwrap_err();
        assert!(e.contains("review.listen") && e.contains("0.0.0.0:9358") && e.contains("review.allow_remote = true"), "{e}");
        r.allow_remote = true;
        assert!(check_config(&r).is_ok());
        assert!(check_config(&ReviewConfig { listen: "[::1]:9358".into(), ..Default::default() }).is_ok());
        let e = check_config(&ReviewConfig { listen: "localhost:9358".into(), ..Default::default() }).unwrap_err();
        assert!(e.contains("must be IP:PORT"), "{e}");
    }

    #[test]
    fn config_file_error_names_file_key_and_value() {
        let e = crate::config::Config::from_toml_str("[review]\nlisten = \"192.0.2.1:9358\"\n", "impostor.toml").unwrap_err().to_string();
        assert!(e.starts_with("impostor.toml:2: review.listen: \"192.0.2.1:9358\""), "{e}");
    }
}
