//! null-milter: a milter that reads every event and decides nothing — the floor any milter costs
//! an MTA. It negotiates what impostor negotiates (no replies to connect, helo, mail, rcpt,
//! headers, end of headers and body chunks; the same macro lists) and answers `Continue` at end of
//! message, so `scripts/bench-postfix.sh NULL=1` can put "Postfix + a milter that does nothing"
//! beside "Postfix + impostor": the difference is what impostor's own work costs.
//!
//! Usage: null-milter unix:/path/to.sock | inet:127.0.0.1:PORT   (loopback only; runs until SIGTERM
//! or SIGINT; one thread, a current-thread runtime, as impostor's default on two CPUs;
//! NULL_MILTER_RUNTIME=multi for a multi-thread runtime with one worker)

use indymilter::{Actions, Callbacks, Config, MacroStage, ProtoOpts, Status};
use std::ffi::CString;

/// impostor's `NOREPLY_STAGES` (src/milter/callbacks.rs), repeated on purpose: the benchmark tools
/// do not link the daemon crate, and the floor must negotiate what impostor negotiates.
const NOREPLY: ProtoOpts = ProtoOpts::NOREPLY_CONNECT
    .union(ProtoOpts::NOREPLY_HELO)
    .union(ProtoOpts::NOREPLY_MAIL)
    .union(ProtoOpts::NOREPLY_RCPT)
    .union(ProtoOpts::NOREPLY_HEADER)
    .union(ProtoOpts::NOREPLY_EOH)
    .union(ProtoOpts::NOREPLY_BODY);

/// Continue, or Noreply where the MTA agreed not to wait (the session data holds what was granted).
fn reply(granted: Option<&ProtoOpts>, stage: ProtoOpts) -> Status {
    if granted.is_some_and(|g| g.contains(stage)) {
        Status::Noreply
    } else {
        Status::Continue
    }
}

fn callbacks() -> Callbacks<ProtoOpts> {
    Callbacks::new()
        .on_negotiate(|cx, mta_actions, mta_opts| {
            Box::pin(async move {
                cx.requested_actions = Actions::ADD_HEADER | Actions::CHANGE_HEADER | Actions::QUARANTINE;
                cx.requested_opts = mta_opts & (ProtoOpts::NO_UNKNOWN | NOREPLY);
                if mta_actions.contains(Actions::REQUEST_MACROS) {
                    let want = |s: &str| CString::new(s).expect("static macro list");
                    cx.requested_macros.insert(MacroStage::Connect, want("j {client_addr} {client_name}"));
                    cx.requested_macros.insert(MacroStage::Mail, want("i {auth_authen} {mail_addr}"));
                    cx.requested_macros.insert(MacroStage::Eoh, want("i"));
                    cx.requested_macros.insert(MacroStage::Eom, want("i"));
                }
                cx.data = Some(cx.requested_opts & NOREPLY);
                Status::Continue
            })
        })
        .on_connect(|cx, _, _| Box::pin(async move { reply(cx.data.as_ref(), ProtoOpts::NOREPLY_CONNECT) }))
        .on_helo(|cx, _| Box::pin(async move { reply(cx.data.as_ref(), ProtoOpts::NOREPLY_HELO) }))
        .on_mail(|cx, _| Box::pin(async move { reply(cx.data.as_ref(), ProtoOpts::NOREPLY_MAIL) }))
        .on_rcpt(|cx, _| Box::pin(async move { reply(cx.data.as_ref(), ProtoOpts::NOREPLY_RCPT) }))
        .on_header(|cx, _, _| Box::pin(async move { reply(cx.data.as_ref(), ProtoOpts::NOREPLY_HEADER) }))
        .on_eoh(|cx| Box::pin(async move { reply(cx.data.as_ref(), ProtoOpts::NOREPLY_EOH) }))
        .on_body(|cx, _| Box::pin(async move { reply(cx.data.as_ref(), ProtoOpts::NOREPLY_BODY) }))
        .on_eom(|_| Box::pin(async { Status::Continue }))
}

fn main() {
    let spec = std::env::args().nth(1).unwrap_or_default();
    // impostor's default on two CPUs: one thread, a current-thread runtime; NULL_MILTER_RUNTIME=multi
    // for a multi-thread runtime with one worker (impostor's runtime before 2026-12-03)
    let rt = if std::env::var("NULL_MILTER_RUNTIME").as_deref() == Ok("multi") {
        tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()
    } else {
        tokio::runtime::Builder::new_current_thread().enable_all().build()
    }
    .expect("tokio runtime");
    let r = rt.block_on(async {
        let shutdown = async {
            let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
            tokio::select! { _ = term.recv() => {}, _ = tokio::signal::ctrl_c() => {} }
        };
        let config = Config { max_connections: 1000, ..Default::default() };
        if let Some(path) = spec.strip_prefix("unix:") {
            let _ = std::fs::remove_file(path);
            let l = tokio::net::UnixListener::bind(path)?;
            std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o666))?;
            indymilter::run(l, callbacks(), config, shutdown).await
        } else if let Some(addr) = spec.strip_prefix("inet:") {
            let addr: std::net::SocketAddr =
                addr.parse().map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("{addr}: {e}")))?;
            if !addr.ip().is_loopback() {
                return Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("{addr}: loopback addresses only")));
            }
            let l = tokio::net::TcpListener::bind(addr).await?;
            indymilter::run(l, callbacks(), config, shutdown).await
        } else {
            Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("usage: null-milter unix:PATH | inet:127.0.0.1:PORT (got {spec:?})"),
            ))
        }
    });
    if let Err(e) = r {
        eprintln!("null-milter: {spec}: {e}");
        std::process::exit(1);
    }
}
