//! The milter shell: indymilter callbacks that collect the message, call the
//! pure analysis, and carry out the plan. Glue only.

use super::session::{InFlight, MessageState, Session};
use super::Shared;
use crate::action::{self, MtaCaps, SubjectChange};
use crate::analysis::{self, Envelope, MessageInput};
use crate::logging;
use crate::verdict::{Action, Verdict};
use indymilter::{
    Actions, Callbacks, Context, ContextActions, EomContext, MacroStage, NegotiateContext, ProtoOpts, SetErrorReply, SocketInfo, Status,
};
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
                let (skip_ok, noreply) = (s.skip_ok, s.noreply.contains(ProtoOpts::NOREPLY_BODY));
                let under_cap = s.message.as_mut().is_none_or(|m| m.add_body(&chunk, cap));
                if noreply {
                    // the MTA sends the whole body without waiting; past the cap it is dropped here
                    Status::Noreply
                } else if !under_cap && skip_ok {
                    // over the cap: the rest of the body need not be sent
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
/// reply (fewer round trips per message). With the body stage among them the
/// MTA sends header, body and end of message in one go (Postfix buffers
/// no-reply events and flushes when it waits for a reply): one round trip
/// per message instead of two, and none per 64 KiB chunk of a large body.
/// The price: over `milter.max_body_bytes` the MTA still sends the rest of
/// the body (dropped here) instead of skipping it; an MTA that does not offer
/// no-reply body chunks is answered Skip there as before.
const NOREPLY_STAGES: ProtoOpts = ProtoOpts::NOREPLY_CONNECT
    .union(ProtoOpts::NOREPLY_HELO)
    .union(ProtoOpts::NOREPLY_MAIL)
    .union(ProtoOpts::NOREPLY_RCPT)
    .union(ProtoOpts::NOREPLY_HEADER)
    .union(ProtoOpts::NOREPLY_EOH)
    .union(ProtoOpts::NOREPLY_BODY);

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
fn analyse(engine: &analysis::Engine, msg: &MessageState, auth: Option<&crate::auth::AuthResults>) -> (Verdict, analysis::Facts) {
    let input =
        MessageInput { envelope: &msg.envelope, raw: &msg.raw, truncated: msg.truncated, headers_truncated: msg.headers_truncated, auth };
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
    raw.len() <= INLINE_ANALYSIS_MAX_BYTES && !names_decoded_type(raw)
}

/// Whether `hay` contains `image/` or `application/` in any case. Found from
/// the slashes (rarer in mail than the words' first letters, `a` and `i`).
fn names_decoded_type(hay: &[u8]) -> bool {
    let before = |i: usize, word: &[u8]| i >= word.len() && hay[i - word.len()..i].eq_ignore_ascii_case(word);
    memchr::memchr_iter(b'/', hay).any(|i| before(i, b"image") || before(i, b"application"))
}

/// A verdict impostor reaches without scoring: a limit of its own (`rule`,
/// with evidence), decided as `action` (the fail mode for a timeout).
fn limit_verdict(config: &crate::config::Config, action: Option<Action>, why: &str, rule: &'static str, evidence: String) -> Verdict {
    let mut v = Verdict::failed(config, why);
    if let Some(a) = action {
        v.action = a;
        v.monitor = false;
        v.error = None;
        v.decided_by = format!("milter: {why}");
    }
    v.rules.push(crate::verdict::ScoredFinding { id: rule, score: 0.0, evidence, monitor: false });
    v
}

/// The message's verdict: upstream and own authentication (async), then the
/// pure analysis — on this thread for a small message without decoded parts
/// ([`analyse_inline`]), else on the blocking pool under
/// `milter.analysis_timeout_ms`. Returns the message too, unless the analysis
/// did not finish (then the verdict is the fail mode's).
async fn judge(
    shared: &Shared,
    engine: &Arc<analysis::Engine>,
    msg: MessageState,
    qid: &str,
) -> (Verdict, analysis::Facts, Option<MessageState>, Option<crate::auth::AuthResults>, crate::auth::Upstream) {
    let config = &engine.config;
    if msg.incoming.removable_overflow {
        let evidence = format!("more than {} X-Impostor-* or Authentication-Results header fields", action::MAX_REMOVABLE);
        let v = limit_verdict(config, Some(Action::Reject), "too many headers to remove", analysis::REMOVABLE_HEADERS_LIMIT, evidence);
        return (v, Default::default(), Some(msg), None, Default::default());
    }
    let upstream = engine.auth.upstream(&msg.envelope, &msg.raw);
    let auth = engine.auth.authenticate(&msg.envelope, &msg.raw, msg.truncated, &upstream).await;
    if let Some(a) = auth.as_ref().filter(|a| a.source == crate::auth::OWN_SOURCE) {
        shared.metrics.count_dns(&a.temperror);
    }
    if analyse_inline(&msg.raw) {
        let (v, f) = analyse(engine, &msg, auth.as_ref());
        return (v, f, Some(msg), auth, upstream);
    }
    let task_engine = engine.clone();
    let limit_ms = config.milter.analysis_timeout_ms;
    let mut task = tokio::task::spawn_blocking(move || {
        let (v, f) = analyse(&task_engine, &msg, auth.as_ref());
        (v, f, msg, auth)
    });
    match tokio::time::timeout(std::time::Duration::from_millis(limit_ms), &mut task).await {
        Ok(Ok((v, f, msg, auth))) => (v, f, Some(msg), auth, upstream),
        Ok(Err(e)) => {
            tracing::error!(queue_id = %qid, "analysis task failed: {e}");
            (Verdict::failed(config, "internal error"), Default::default(), None, None, upstream)
        }
        Err(_) => {
            // the task runs on to its end on its own thread (the decoders are bounded);
            // this connection's message gets the fail mode now
            tracing::error!(queue_id = %qid, "analysis ran past {limit_ms} ms");
            let evidence = format!("content analysis took longer than {limit_ms} ms (milter.analysis_timeout_ms)");
            (
                limit_verdict(config, None, "analysis timeout", analysis::ANALYSIS_TIMEOUT, evidence),
                Default::default(),
                None,
                None,
                upstream,
            )
        }
    }
}

/// End of message: judge, log and count, plan, carry out. Glue only.
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
    let envelope = msg.envelope.clone();
    let incoming = std::mem::take(&mut msg.incoming);
    let started = std::time::Instant::now();
    let (verdict, facts, msg, auth, upstream) = judge(&shared, &engine, msg, &qid).await;
    logging::log_verdict(&engine.config, Some(&envelope), &qid, &verdict, &facts, started.elapsed());
    shared.count(&verdict, started.elapsed());
    let body = msg.as_ref().map(|m| action::Body { raw: &m.raw, truncated: m.truncated, sites: facts.banner_sites.as_ref() });
    let plan = action::plan(&engine.config, &verdict, &incoming, body, auth.as_ref(), &upstream, caps);
    if let Some(why) = &plan.fallback {
        tracing::info!(queue_id = %qid, "{why}");
    }
    if let Err(e) = carry_out(cx, &plan).await {
        // the MTA connection is failing: ask for a retry, or let the message through as the fail mode says
        tracing::error!(queue_id = %qid, "cannot apply milter actions: {e}");
        if engine.config.fail_mode.action() == Action::Tempfail {
            let r = action::Reply::tempfail();
            let _ = cx.reply.set_error_reply(&r.code, Some(&r.xcode), [r.text.as_str()]);
            return Status::Tempfail;
        }
        return Status::Continue;
    }
    if let (Some(r), Action::Reject | Action::Tempfail) = (&plan.reply, plan.disposition) {
        if let Err(e) = cx.reply.set_error_reply(&r.code, Some(&r.xcode), [r.text.as_str()]) {
            tracing::error!(queue_id = %qid, "invalid reply: {e}");
        }
    }
    match plan.disposition {
        Action::Reject => Status::Reject,
        Action::Tempfail => Status::Tempfail,
        _ => Status::Continue,
    }
}

/// Carries out the plan's header and body edits, in order.
async fn carry_out(cx: &mut EomContext<Session>, plan: &action::Plan) -> Result<(), indymilter::ActionError> {
    for (name, idx) in &plan.remove_headers {
        cx.actions.change_header(name.as_str(), *idx, None::<CString>).await?;
    }
    if let Some(ar) = &plan.own_ar {
        cx.actions.insert_header(0, "Authentication-Results", ar.as_str()).await?;
    }
    for (name, value) in &plan.add_headers {
        cx.actions.add_header(*name, value.as_str()).await?;
    }
    match &plan.subject {
        Some(SubjectChange::Replace(s)) => cx.actions.change_header("Subject", 1, Some(s.as_str())).await?,
        Some(SubjectChange::Add(s)) => cx.actions.add_header("Subject", s.as_str()).await?,
        None => {}
    }
    if let Some(body) = &plan.body {
        for chunk in body.chunks(60 * 1024) {
            cx.actions.replace_body(chunk).await?;
        }
    }
    if let Some(reason) = &plan.quarantine {
        cx.actions.quarantine(reason.as_str()).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The first-letter search it replaced, as the oracle.
    fn contains_ignore_case(hay: &[u8], needle: &[u8]) -> bool {
        hay.windows(needle.len()).any(|w| w.eq_ignore_ascii_case(needle))
    }

    #[test]
    fn decoded_types_are_found_in_any_case_and_only_whole() {
        let cases: &[&[u8]] = &[
            b"Content-Type: image/png",
            b"Content-Type: IMAGE/PNG",
            b"content-type: Application/PDF",
            b"image/",
            b"/image/",
            b"mage/ and pplication/ are not",
            b"images/ no, imag/e no",
            b"text/plain; a/b c/d",
            b"",
            b"/",
            b"xapplication/",
            b"\xff\xfeimage/",
        ];
        for hay in cases {
            let want = contains_ignore_case(hay, b"image/") || contains_ignore_case(hay, b"application/");
            assert_eq!(names_decoded_type(hay), want, "{:?}", String::from_utf8_lossy(hay));
        }
        assert!(analyse_inline(b"Subject: hi\r\n\r\nplain text with a/b and i/o\r\n"));
        assert!(!analyse_inline(b"Content-Type: multipart/mixed\r\n\r\n--b\r\nContent-Type: Image/JPEG\r\n\r\n"));
        assert!(!analyse_inline(&vec![b'x'; INLINE_ANALYSIS_MAX_BYTES + 1]), "too large");
    }
}
