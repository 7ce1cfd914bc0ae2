//! The milter shell: indymilter callbacks that collect the message, call the
//! pure analysis, and carry out the plan. Glue only.



use crate::action::{self, MtaCaps, SubjectChange};
use crate::analysis::{self, Envelope, MessageInput};
use crate::logging;
use crate::verdict::{Action, Verdict};
use super::Shared;
use indymilter::{
    Actions, Callbacks, Context, ContextActions, EomContext, MacroStage, NegotiateContext, ProtoOpts, SetErrorReply,
    SocketInfo, Status,
};
use super::session::{self, InFlight, MessageState, Session};
use std::ffi::{CStr, CString};
use std::sync::Arc;

fn macro_str(macros: &indymilter::Macros, name: &CStr) -> Option<String> {
    macros.get(name).map(|v| v.to_string_lossy().into_owned()).filter(|v| !v.is_empty())
}

fn strip_brackets(arg: &CStr) -> String {
    let s = arg.to_string_lossy();
    s.trim().trim_start_matches('<').trim_end_matches('>').to_string()
}

/// Builds the callbacks for one running daemon.
pub fn callbacks(shared: Arc<Shared>) -> Callbacks<Session> {
    let s_conn = shared.clone();
    let s_mail = shared.clone();
    let s_body = shared.clone();
    let s_header = shared.clone();
    let s_eom = shared.clone();
    let s_neg = shared;
    Callbacks::new()
        .on_negotiate(move |cx, actions, opts| Box::pin(negotiate(s_neg.clone(), cx, actions, opts)))
        .on_connect(move |cx, hostname, info| Box::pin(connect(s_conn.clone(), cx, hostname, info)))
        .on_helo(|cx, helo| {
            Box::pin(async move {
                if let Some(s) = cx.data.as_mut() {
                    s.helo = Some(helo.to_string_lossy().into_owned());
                }
                reply(cx, ProtoOpts::NOREPLY_HELO)
            })
        })
        .on_mail(move |cx, args| Box::pin(mail(s_mail.clone(), cx, args)))
        .on_rcpt(|cx, args| {
            Box::pin(async move {
                if let Some(m) = cx.data.as_mut().and_then(|s| s.message.as_mut()) {
                    if let Some(a) = args.first() {
                        m.envelope.rcpt_to.push(strip_brackets(a));
                    }
                }
                reply(cx, ProtoOpts::NOREPLY_RCPT)
            })
        })
        .on_header(move |cx, name, value| {
            let mc = &s_header.engine().config.milter;
            let (max_h, max_b) = (mc.max_headers, mc.max_header_bytes);
            Box::pin(async move {
                if let Some(m) = cx.data.as_mut().and_then(|s| s.message.as_mut()) {
                    m.add_header(name.as_bytes(), value.as_bytes(), max_h, max_b);
                }
                reply(cx, ProtoOpts::NOREPLY_HEADER)
            })
        })
        .on_eoh(|cx| {
            Box::pin(async move {
                if let Some(m) = cx.data.as_mut().and_then(|s| s.message.as_mut()) {
                    m.end_of_headers();
                }
                reply(cx, ProtoOpts::NOREPLY_EOH)
            })
        })
        .on_body(move |cx, chunk| {
            let cap = s_body.engine().config.milter.max_body_bytes;
            Box::pin(async move {
                let Some(s) = cx.data.as_mut() else { return Status::Continue };
                let skip_ok = s.skip_ok;
                let under_cap = s.message.as_mut().is_none_or(|m| m.add_body(&chunk, cap));
                // over the cap: the rest of the body need not be sent
                if !under_cap && skip_ok {
                    Status::Skip
                } else {
                    Status::Continue
                }
            })
        })
        .on_eom(move |cx| Box::pin(eom(s_eom.clone(), cx)))
        .on_abort(|cx| {
            Box::pin(async move {
                if let Some(s) = cx.data.as_mut() {
                    s.message = None;
                }
                Status::Continue
            })
        })
        .on_close(|cx| {
            Box::pin(async move {
                cx.data = None;
                Status::Continue
            })
        })
}

/// Stages whose callback always continues: the MTA need not wait for a
/// reply (fewer round trips per message). The body stage keeps replying,
/// since it answers Skip over the body cap.
const NOREPLY_STAGES: ProtoOpts = ProtoOpts::NOREPLY_CONNECT
    .union(ProtoOpts::NOREPLY_HELO)
    .union(ProtoOpts::NOREPLY_MAIL)
    .union(ProtoOpts::NOREPLY_RCPT)
    .union(ProtoOpts::NOREPLY_HEADER)
    .union(ProtoOpts::NOREPLY_EOH);

/// Continue, or Noreply when the MTA agreed not to wait at this stage.
fn reply(cx: &Context<Session>, stage: ProtoOpts) -> Status {
    if cx.data.as_ref().is_some_and(|s| s.noreply.contains(stage)) {
        Status::Noreply
    } else {
        Status::Continue
    }
}

/// Asks for the actions the configuration needs, and only those the MTA
/// offers (old protocol versions offer no quarantine; `milter_protocol = 2`
/// in Postfix). What is missing is logged once per connection, and the plan
/// falls back ([`action::plan`]).
async fn negotiate(shared: Arc<Shared>, cx: &mut NegotiateContext<Session>, mta_actions: Actions, mta_opts: ProtoOpts) -> Status {
    let mut wanted = Actions::ADD_HEADER | Actions::CHANGE_HEADER | Actions::QUARANTINE;
    if shared.engine().config.tag.banner {
        wanted |= Actions::REPLACE_BODY;
    }
    let granted = wanted & mta_actions;
    cx.requested_actions = granted;
    if granted != wanted {
        tracing::warn!(
            offered = ?mta_actions,
            missing = ?wanted.difference(granted),
            "the MTA does not offer every milter action impostor uses: quarantine becomes quarantine.fallback, \
             headers it cannot add or change are left out (raise milter_protocol to 6)"
        );
    }
    // Steps we have no callback for are skipped only where the MTA can skip
    // them (protocol 2 has no NO_DATA / NO_UNKNOWN: it sends them, and they
    // are answered Continue); no-reply stages only where offered.
    cx.requested_opts = (cx.requested_opts & mta_opts) | (mta_opts & (ProtoOpts::NO_UNKNOWN | NOREPLY_STAGES));
    // macro lists may be requested only from an MTA that offers it (protocol 6)
    if mta_actions.contains(Actions::REQUEST_MACROS) {
        let want = |s: &str| CString::new(s).expect("static macro list");
        cx.requested_macros.insert(MacroStage::Connect, want("j {client_addr} {client_name}"));
        cx.requested_macros.insert(MacroStage::Mail, want("i {auth_authen} {mail_addr}"));
        cx.requested_macros.insert(MacroStage::Eoh, want("i"));
        cx.requested_macros.insert(MacroStage::Eom, want("i"));
    }
    cx.data = Some(Session {
        skip_ok: cx.requested_opts.contains(ProtoOpts::SKIP),
        noreply: cx.requested_opts & NOREPLY_STAGES,
        caps: MtaCaps {
            add_header: granted.contains(Actions::ADD_HEADER),
            change_header: granted.contains(Actions::CHANGE_HEADER),
            quarantine: granted.contains(Actions::QUARANTINE),
            replace_body: granted.contains(Actions::REPLACE_BODY),
        },
        ..Default::default()
    });
    Status::Continue
}

async fn connect(shared: Arc<Shared>, cx: &mut Context<Session>, hostname: CString, info: SocketInfo) -> Status {
    let client_ip = match info {
        SocketInfo::Inet(addr) => Some(addr.ip()),
        _ => None,
    };
    let s = cx.data.get_or_insert_with(Session::default);
    s.client_ip = client_ip;
    s.client_name = Some(hostname.to_string_lossy().into_owned()).filter(|h| !h.is_empty());
    s.helo = None;
    s.message = None;
    if s.connection.is_none() {
        s.connection = Some(crate::metrics::ConnectionGuard::new(&shared.metrics));
    }
    reply(cx, ProtoOpts::NOREPLY_CONNECT)
}

async fn mail(shared: Arc<Shared>, cx: &mut Context<Session>, args: Vec<CString>) -> Status {
    let queue_id = macro_str(&cx.macros, c"i");
    let auth_authen = macro_str(&cx.macros, c"{auth_authen}");
    let session = cx.data.get_or_insert_with(Session::default);
    let envelope = Envelope {
        client_ip: session.client_ip,
        client_name: session.client_name.clone(),
        helo: session.helo.clone(),
        mail_from: args.first().map(|a| strip_brackets(a)),
        rcpt_to: Vec::new(),
        queue_id,
        auth_authen,
    };
    session.message = Some(MessageState::new(envelope, InFlight::new(&shared.in_flight)));
    reply(cx, ProtoOpts::NOREPLY_MAIL)
}

/// The pure analysis of a collected message (panics caught: fail mode).
fn analyse(
    engine: &analysis::Engine,
    msg: &MessageState,
    auth: Option<&analysis::auth::AuthResults>,
) -> (Verdict, analysis::Facts) {
    let input = MessageInput {
        envelope: &msg.envelope,
        raw: &msg.raw,
        truncated: msg.truncated,
        headers_truncated: msg.headers_truncated,
        auth,
    };
    analysis::analyze_guarded(engine, &input)
}

/// Messages up to this size are analysed on the async worker (see [`eom`]).
const INLINE_ANALYSIS_MAX_BYTES: usize = 64 * 1024;

/// Whether a message is analysed on the connection's own thread: small, and
/// with no part that a decoder opens (images, archives, documents), so its
/// analysis is bounded by its size and costs about as much as handing it to
/// the blocking pool and back (a futex wake and two context switches).
/// Everything else goes to the blocking pool under a hard deadline, so that a
/// decoder bomb cannot stall other connections.
fn analyse_inline(raw: &[u8]) -> bool {
    raw.len() <= INLINE_ANALYSIS_MAX_BYTES
        && !contains_ignore_case(raw, b"image/")
        && !contains_ignore_case(raw, b"application/")
}

fn contains_ignore_case(hay: &[u8], needle: &[u8]) -> bool {
    // the needles are lowercase ASCII: look for both spellings of the first letter
    let (first, rest) = (needle[0], &needle[1..]);
    memchr::memchr2_iter(first, first.to_ascii_uppercase(), hay)
        .any(|i| hay.get(i + 1..i + needle.len()).is_some_and(|w| w.eq_ignore_ascii_case(rest)))
}

/// The verdict of a message whose analysis ran past `milter.analysis_timeout_ms`.
fn timed_out(config: &crate::config::Config, ms: u64) -> Verdict {
    let mut v = Verdict::failed(config, "analysis timeout");
    v.rules.push(crate::verdict::ScoredFinding {
        id: crate::analysis::ANALYSIS_TIMEOUT,
        score: 0.0,
        evidence: format!("content analysis took longer than {ms} ms (milter.analysis_timeout_ms)"),
        monitor: false,
    });
    v
}

async fn eom(shared: Arc<Shared>, cx: &mut EomContext<Session>) -> Status {
    let engine = shared.engine();
    let caps = cx.data.as_ref().map(|s| s.caps).unwrap_or_default();
    let Some(mut msg) = cx.data.as_mut().and_then(|s| s.message.take()) else {
        // MTA sent end of message without a transaction: nothing to judge.
        return Status::Continue;
    };
    if msg.envelope.queue_id.is_none() {
        msg.envelope.queue_id = macro_str(&cx.macros, c"i");
    }
    let qid = msg.envelope.queue_id.clone().unwrap_or_else(|| "-".into());
    let started = std::time::Instant::now();

    if msg.removable_overflow {
        let mut v = Verdict::failed(&engine.config, "too many headers to remove");
        v.action = Action::Reject;
        v.monitor = false;
        v.decided_by = "milter: more X-Impostor-* / Authentication-Results headers than can be removed".into();
        v.rules.push(crate::verdict::ScoredFinding {
            id: crate::analysis::REMOVABLE_HEADERS_LIMIT,
            score: 0.0,
            evidence: format!("more than {} X-Impostor-* or Authentication-Results header fields", session::MAX_REMOVABLE),
            monitor: false,
        });
        logging::log_verdict(&engine.config, Some(&msg.envelope), &qid, &v, &Default::default(), started.elapsed());
        shared.count(&v, started.elapsed());
        return finish(cx, &qid, &action::too_many_removable(&engine.config));
    }

    // The trusted upstream's Authentication-Results, DNS-based authentication
    // (async), then the pure analysis (CPU work, see below). A panic inside is
    // caught and mapped to the fail mode.
    let upstream = engine.upstream(&msg.envelope, &msg.raw);
    let auth = engine.authenticate(&msg.envelope, &msg.raw, msg.truncated, &upstream).await;
    if let Some(a) = auth.as_ref().filter(|a| a.source == analysis::auth::OWN_SOURCE) {
        let m = &shared.metrics;
        m.dns_checks.inc();
        if !a.temperror.is_empty() {
            m.dns_errors.inc();
        }
        if a.temperror.iter().any(|t| t.starts_with("authentication checks exceeded")) {
            m.dns_timeouts.inc();
        }
    }
    let (verdict, facts, msg, auth) = if analyse_inline(&msg.raw) {
        let (v, f) = analyse(&engine, &msg, auth.as_ref());
        (v, f, msg, auth)
    } else {
        let task_engine = engine.clone();
        let limit_ms = engine.config.milter.analysis_timeout_ms;
        let forged = msg.forged.clone();
        let mut task = tokio::task::spawn_blocking(move || {
            let (v, f) = analyse(&task_engine, &msg, auth.as_ref());
            (v, f, msg, auth)
        });
        let failed = match tokio::time::timeout(std::time::Duration::from_millis(limit_ms), &mut task).await {
            Ok(Ok(r)) => Ok(r),
            Ok(Err(e)) => Err((format!("analysis task failed: {e}"), Verdict::failed(&engine.config, "internal error"))),
            // the task runs on to its end on its own thread (the decoders are bounded);
            // this connection's message gets the fail mode now
            Err(_) => Err((format!("analysis ran past {limit_ms} ms"), timed_out(&engine.config, limit_ms))),
        };
        match failed {
            Ok(r) => r,
            Err((why, v)) => {
                tracing::error!(queue_id = %qid, "{why}");
                logging::log_verdict(&engine.config, None, &qid, &v, &Default::default(), started.elapsed());
                shared.count(&v, started.elapsed());
                return apply_failure(cx, caps, &forged, &v).await;
            }
        }
    };
    logging::log_verdict(&engine.config, Some(&msg.envelope), &qid, &verdict, &facts, started.elapsed());
    shared.count(&verdict, started.elapsed());

    let plan = action::plan(&engine.config, &verdict, msg.subject.as_deref(), caps);
    if let Some(why) = &plan.fallback {
        tracing::info!(queue_id = %qid, "{why}");
    }
    let own_ar = auth
        .as_ref()
        .filter(|a| a.source == analysis::auth::OWN_SOURCE && engine.config.auth.add_header)
        .map(|a| analysis::auth::ar_header(&engine.config.authserv_id, a));
    // Authentication-Results to remove: any with our own authserv-id, and any
    // with a trusted id that is not in the upstream's own block (a forgery)
    let our_id = engine.config.authserv_id.to_ascii_lowercase();
    let trusted = &engine.config.auth.trusted_authserv_ids;
    let forged_ar: Vec<i32> = msg
        .auth_results
        .iter()
        .filter(|(i, id)| {
            *id == our_id || trusted.iter().any(|t| t.eq_ignore_ascii_case(id)) && !upstream.block.contains(&(*i as usize))
        })
        .map(|(i, _)| *i)
        .collect();
    // the optional banner on tagged mail (never on a truncated body: we do not have all of it)
    let banner = if plan.disposition == Action::Accept
        && verdict.effective_action() == Action::Tag
        && engine.config.tag.banner
        && caps.replace_body
        && !msg.truncated
    {
        let brand = verdict.brand.as_deref().unwrap_or("a trusted brand");
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| crate::banner::apply(&msg.raw, brand))) {
            Ok(b) => b,
            Err(_) => {
                tracing::error!(queue_id = %qid, "the banner could not be added (internal error); message delivered without it");
                None
            }
        }
    } else {
        None
    };
    if let Err(e) = carry_out(cx, &msg, &plan, &forged_ar, own_ar.as_deref(), caps).await {
        tracing::error!(queue_id = %qid, "cannot apply milter actions: {e}");
        let v = Verdict::failed(&engine.config, "milter action failed");
        return apply_failure(cx, caps, &msg.forged, &v).await;
    }
    if let Some(body) = banner {
        for chunk in body.chunks(60 * 1024) {
            if let Err(e) = cx.actions.replace_body(chunk).await {
                tracing::warn!(queue_id = %qid, "cannot add the banner: {e}");
                break;
            }
        }
    }
    finish(cx, &qid, &plan)
}

/// The final reply of a plan.
fn finish(cx: &mut EomContext<Session>, qid: &str, plan: &action::Plan) -> Status {
    match plan.disposition {
        Action::Reject | Action::Tempfail => {
            if let Some(r) = &plan.reply {
                if let Err(e) = cx.reply.set_error_reply(&r.code, Some(&r.xcode), [r.text.as_str()]) {
                    tracing::error!(queue_id = %qid, "invalid reply: {e}");
                }
            }
            if plan.disposition == Action::Reject {
                Status::Reject
            } else {
                Status::Tempfail
            }
        }
        _ => Status::Continue,
    }
}

async fn carry_out(
    cx: &mut EomContext<Session>,
    msg: &MessageState,
    plan: &action::Plan,
    forged_ar: &[i32],
    own_ar: Option<&str>,
    caps: MtaCaps,
) -> Result<(), indymilter::ActionError> {
    // Remove forged X-Impostor-* headers, highest index first per name.
    if caps.change_header {
        for (name, idx) in msg.forged.iter().rev() {
            cx.actions.change_header(name.as_str(), *idx, None::<CString>).await?;
        }
    }
    if plan.disposition != Action::Accept {
        return Ok(());
    }
    // Authentication-Results claiming to be ours, or a trusted upstream's
    // outside its block, came from outside: remove them.
    if caps.change_header {
        for idx in forged_ar.iter().rev() {
            cx.actions.change_header("Authentication-Results", *idx, None::<CString>).await?;
        }
    }
    if let Some(ar) = own_ar.filter(|_| caps.add_header) {
        cx.actions.insert_header(0, "Authentication-Results", ar).await?;
    }
    for (name, value) in &plan.add_headers {
        cx.actions.add_header(*name, value.as_str()).await?;
    }
    match &plan.subject {
        Some(SubjectChange::Replace(s)) => cx.actions.change_header("Subject", 1, Some(s.as_str())).await?,
        Some(SubjectChange::Add(s)) => cx.actions.add_header("Subject", s.as_str()).await?,
        None => {}
    }
    if let Some(reason) = &plan.quarantine {
        cx.actions.quarantine(reason.as_str()).await?;
    }
    Ok(())
}

/// The fail mode: tempfail the message, or accept it visibly marked (with
/// forged `X-Impostor-*` headers removed, as on every accepted message).
async fn apply_failure(cx: &mut EomContext<Session>, caps: MtaCaps, forged: &[(String, i32)], v: &Verdict) -> Status {
    if v.action == Action::Tempfail {
        let _ = cx.reply.set_error_reply("451", Some("4.7.1"), [action::TEMPFAIL_TEXT]);
        Status::Tempfail
    } else {
        if caps.change_header {
            for (name, idx) in forged.iter().rev() {
                let _ = cx.actions.change_header(name.as_str(), *idx, None::<CString>).await;
            }
        }
        if caps.add_header {
            let _ = cx.actions.add_header(action::HEADER_VERDICT, v.header_value()).await;
            let _ = cx.actions.add_header(action::HEADER_RULES, v.rules_header()).await;
        }
        Status::Continue
    }
}
