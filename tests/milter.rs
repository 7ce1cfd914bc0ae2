//! Milter protocol tests: the real daemon (`impostor::run`) on 127.0.0.1:0,
//! driven by indymilter-test playing the MTA.

use indymilter_test::{EomAction, Status, TestConnection};
use std::net::SocketAddr;
use std::time::Duration;

mod common;
use common::Daemon;

async fn open(addr: SocketAddr) -> TestConnection {
    let mut conn = TestConnection::open(addr).await.unwrap();
    let st = conn.connect("mx.client.example", ([203, 0, 113, 7], 40000)).await.unwrap();
    assert_eq!(st, Status::Noreply);
    assert_eq!(conn.helo("mx.client.example").await.unwrap(), Status::Noreply);
    conn
}

/// Sends one message; returns the end-of-message actions and status.
async fn send(conn: &mut TestConnection, headers: &[(&str, &str)], body: &str) -> (indymilter_test::EomActions, Status) {
    // envelope sender in the From domain, so ENVELOPE_FROM_MISMATCH stays out of the way
    let from_domain = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("From"))
        .and_then(|(_, v)| v.rsplit_once('@'))
        .map(|(_, d)| d.trim_end_matches('>').to_string())
        .unwrap_or_else(|| "client.example".into());
    assert_eq!(conn.mail([format!("<bounce@{from_domain}>")]).await.unwrap(), Status::Noreply);
    assert_eq!(conn.rcpt(["<jean@rcpt.example>"]).await.unwrap(), Status::Noreply);
    for (n, v) in headers {
        assert_eq!(conn.header(*n, *v).await.unwrap(), Status::Noreply);
    }
    assert_eq!(conn.eoh().await.unwrap(), Status::Noreply);
    if !body.is_empty() {
        conn.body(body.as_bytes().to_vec()).await.unwrap();
    }
    conn.eom().await.unwrap()
}

fn added(actions: &indymilter_test::EomActions, name: &str) -> Vec<String> {
    actions
        .actions
        .iter()
        .filter_map(|a| match a {
            EomAction::AddHeader { name: n, value } if n.to_str().unwrap() == name => Some(value.to_string_lossy().into_owned()),
            _ => None,
        })
        .collect()
}

const TAG: &[(&str, &str)] = &[("From", "\"OpenAI Billing\" <billing@example.net>"), ("Subject", "Your invoice")];
// (the brand repeated in the Subject is the same claim: it does not add to the display name's)
const QUARANTINE: &[(&str, &str)] =
    &[("From", "\"OpenAI Security\" <security@openai-notice.com>"), ("Subject", "OpenAI: unusual sign-in to your account")];
const REJECT: &[(&str, &str)] = &[
    ("From", "\"OpenAI Security\" <security@openai-help.net>"),
    ("Reply-To", "openai.help.desk@gmail.com"),
    ("Subject", "OpenAI API key revoked"),
];
const CLEAN: &[(&str, &str)] = &[("From", "Alice <alice@example.org>"), ("Subject", "Lunch on Friday")];

#[tokio::test]
async fn display_name_claims_brand_is_tagged_with_subject_prefix() {
    let d = Daemon::start("").await;
    let mut conn = open(d.addr).await;
    let (actions, status) = send(&mut conn, TAG, "Hello.\r\n").await;
    assert_eq!(status, Status::Continue);
    assert_eq!(added(&actions, "X-Impostor-Verdict"), ["tag"]);
    assert_eq!(added(&actions, "X-Impostor-Score"), ["6.0"]);
    assert_eq!(added(&actions, "X-Impostor-Rules"), ["BRAND_NAME_FOREIGN_DOMAIN=6.0"]);
    assert!(actions.has_change_header("Subject", 1, "[Suspected impersonation] Your invoice"));
    assert!(!actions.actions.iter().any(|a| matches!(a, EomAction::Quarantine { .. })));
    conn.close().await.unwrap();
    d.stop().await;
}

#[tokio::test]
async fn brand_name_and_subject_from_foreign_domain_is_quarantined() {
    let d = Daemon::start("").await;
    let mut conn = open(d.addr).await;
    let (actions, status) = send(&mut conn, QUARANTINE, "Hello.\r\n").await;
    assert_eq!(status, Status::Continue);
    assert!(actions.has_quarantine("impostor: suspected brand impersonation"));
    assert_eq!(added(&actions, "X-Impostor-Verdict"), ["quarantine"]);
    assert_eq!(added(&actions, "X-Impostor-Rules"), ["BRAND_NAME_FOREIGN_DOMAIN=6.0, LOOKALIKE_FROM_DOMAIN=5.0, LURE_ACCOUNT_THREAT=1.5"]);
    conn.close().await.unwrap();
    d.stop().await;
}

#[tokio::test]
async fn combosquat_sender_is_rejected_with_550() {
    let d = Daemon::start("").await;
    let mut conn = open(d.addr).await;
    let (actions, status) = send(&mut conn, REJECT, "Hello.\r\n").await;
    let Status::Reject { message: Some(m) } = status else { panic!("expected reject with message, got {status:?}") };
    assert_eq!(m.to_str().unwrap(), "550 5.7.1 Message rejected: suspected brand impersonation");
    assert!(added(&actions, "X-Impostor-Verdict").is_empty());
    conn.close().await.unwrap();
    d.stop().await;
}

#[tokio::test]
async fn configured_reject_text_is_used() {
    let d = Daemon::start("[reject]\ntext = \"Go away, impostor\"\nxcode = \"5.7.0\"\n").await;
    let mut conn = open(d.addr).await;
    let (_, status) = send(&mut conn, REJECT, "x\r\n").await;
    assert_eq!(status, Status::Reject { message: Some(c"550 5.7.0 Go away, impostor".into()) });
    conn.close().await.unwrap();
    d.stop().await;
}

#[tokio::test]
async fn monitor_mode_only_adds_headers() {
    let d = Daemon::start("monitor = true").await;
    let mut conn = open(d.addr).await;
    let (actions, status) = send(&mut conn, REJECT, "x\r\n").await;
    assert_eq!(status, Status::Continue);
    assert_eq!(added(&actions, "X-Impostor-Verdict"), ["accept (monitor: would reject)"]);
    assert_eq!(added(&actions, "X-Impostor-Score"), ["21.0"]);
    assert!(!actions.actions.iter().any(|a| matches!(a, EomAction::Quarantine { .. } | EomAction::ChangeHeader { .. })));
    conn.close().await.unwrap();
    d.stop().await;
}

#[tokio::test]
async fn two_messages_on_one_connection_get_their_own_verdicts() {
    let d = Daemon::start("").await;
    let mut conn = open(d.addr).await;
    let (a1, _) = send(&mut conn, QUARANTINE, "x\r\n").await;
    assert_eq!(added(&a1, "X-Impostor-Verdict"), ["quarantine"]);
    let (a2, s2) = send(&mut conn, CLEAN, "See you.\r\n").await;
    assert_eq!(s2, Status::Continue);
    assert_eq!(added(&a2, "X-Impostor-Verdict"), ["accept"]);
    assert_eq!(added(&a2, "X-Impostor-Rules"), ["none"]);
    assert!(!a2.actions.iter().any(|a| matches!(a, EomAction::Quarantine { .. })));
    conn.close().await.unwrap();
    d.stop().await;
}

#[tokio::test]
async fn aborted_message_leaves_no_state_behind() {
    let d = Daemon::start("").await;
    let mut conn = open(d.addr).await;
    conn.mail(["<a@client.example>"]).await.unwrap();
    conn.rcpt(["<jean@rcpt.example>"]).await.unwrap();
    conn.header("From", "\"OpenAI\" <x@evil.example>").await.unwrap();
    conn.abort().await.unwrap();
    let (a, _) = send(&mut conn, CLEAN, "hi\r\n").await;
    assert_eq!(added(&a, "X-Impostor-Verdict"), ["accept"]);
    conn.close().await.unwrap();
    // and a reconnect works
    let mut conn = open(d.addr).await;
    let (a, _) = send(&mut conn, TAG, "hi\r\n").await;
    assert_eq!(added(&a, "X-Impostor-Verdict"), ["tag"]);
    conn.close().await.unwrap();
    d.stop().await;
}

#[tokio::test]
async fn forged_verdict_headers_are_removed() {
    let d = Daemon::start("").await;
    let mut conn = open(d.addr).await;
    let headers = [
        ("X-Impostor-Verdict", "accept"),
        ("From", "Alice <alice@example.org>"),
        ("x-impostor-verdict", "accept"),
        ("X-Impostor-Score", "-100"),
        ("Subject", "hello"),
    ];
    let (a, _) = send(&mut conn, &headers, "hi\r\n").await;
    assert!(a.has_delete_header("X-Impostor-Verdict", 1));
    assert!(a.has_delete_header("x-impostor-verdict", 2));
    assert!(a.has_delete_header("X-Impostor-Score", 1));
    // deletions come highest index first, before impostor's own headers
    let pos = |name: &str, idx: i32| {
        a.actions
            .iter()
            .position(|x| matches!(x, EomAction::DeleteHeader { name: n, index } if n.to_str().unwrap() == name && *index == idx))
            .unwrap()
    };
    assert!(pos("x-impostor-verdict", 2) < pos("X-Impostor-Verdict", 1));
    let own = a.actions.iter().position(|x| matches!(x, EomAction::AddHeader { .. })).unwrap();
    assert!(pos("X-Impostor-Verdict", 1) < own);
    assert_eq!(added(&a, "X-Impostor-Verdict"), ["accept"]);
    conn.close().await.unwrap();
    d.stop().await;
}

#[tokio::test]
async fn oversized_body_is_truncated_not_dropped() {
    let d = Daemon::start("[milter]\nmax_body_bytes = 16\n").await;
    let mut conn = open(d.addr).await;
    conn.mail(["<a@example.net>"]).await.unwrap();
    conn.rcpt(["<jean@rcpt.example>"]).await.unwrap();
    for (n, v) in TAG {
        conn.header(*n, *v).await.unwrap();
    }
    conn.eoh().await.unwrap();
    // no-reply body chunks negotiated: the MTA sends the whole body, the part past the cap is dropped
    assert_eq!(conn.body(vec![b'x'; 4096]).await.unwrap(), Status::Noreply);
    assert_eq!(conn.body(vec![b'y'; 4096]).await.unwrap(), Status::Noreply);
    let (a, status) = conn.eom().await.unwrap();
    assert_eq!(status, Status::Continue);
    assert_eq!(added(&a, "X-Impostor-Rules"), ["BODY_TRUNCATED=0.0, BRAND_NAME_FOREIGN_DOMAIN=6.0"]);
    conn.close().await.unwrap();

    // an MTA that waits for every body chunk (protocol 2) is asked to skip the rest instead
    let mut conn = open_v2(d.addr).await;
    assert_eq!(conn.mail(["<a@example.net>"]).await.unwrap(), Status::Continue);
    assert_eq!(conn.rcpt(["<jean@rcpt.example>"]).await.unwrap(), Status::Continue);
    for (n, v) in TAG {
        assert_eq!(conn.header(*n, *v).await.unwrap(), Status::Continue);
    }
    assert_eq!(conn.eoh().await.unwrap(), Status::Continue);
    assert_eq!(conn.body(b"short".to_vec()).await.unwrap(), Status::Continue, "under the cap");
    assert_eq!(conn.body(vec![b'x'; 4096]).await.unwrap(), Status::Skip, "impostor asks the MTA to skip the rest of the body");
    let (a, status) = conn.eom().await.unwrap();
    assert_eq!(status, Status::Continue);
    assert_eq!(added(&a, "X-Impostor-Rules"), ["BODY_TRUNCATED=0.0, BRAND_NAME_FOREIGN_DOMAIN=6.0"]);
    conn.close().await.unwrap();
    d.stop().await;
}

#[tokio::test]
async fn shutdown_lets_in_flight_message_finish_and_refuses_new_connections() {
    let d = Daemon::start("").await;
    let addr = d.addr;
    // an MTA that waits for the reply to each body chunk, so that the test knows impostor has the message
    let mut conn = TestConnection::configure()
        .available_opts(indymilter::ProtoOpts::all().difference(indymilter::ProtoOpts::NOREPLY_BODY))
        .open_tcp(addr)
        .await
        .unwrap();
    conn.connect("mx.client.example", ([203, 0, 113, 7], 40000)).await.unwrap();
    conn.mail(["<a@client.example>"]).await.unwrap();
    conn.rcpt(["<jean@rcpt.example>"]).await.unwrap();
    conn.header("From", "\"OpenAI Billing\" <billing@example.net>").await.unwrap();
    conn.eoh().await.unwrap();
    // the body stage waits for a reply: impostor has seen the message start
    assert_eq!(conn.body(b"Hello.\r\n".to_vec()).await.unwrap(), Status::Continue);
    let Daemon { stop, task, .. } = d;
    let _ = stop.unwrap().send(());
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(tokio::net::TcpStream::connect(addr).await.is_err(), "listening socket closed while draining");
    assert!(!task.is_finished(), "daemon waits for the in-flight message");
    let (a, _) = conn.eom().await.unwrap();
    assert_eq!(added(&a, "X-Impostor-Verdict"), ["tag"]);
    tokio::time::timeout(Duration::from_secs(5), task).await.expect("daemon exits after drain").unwrap().unwrap();
}

#[tokio::test]
async fn own_authentication_results_added_and_forged_ones_removed() {
    let d = Daemon::start_online("[auth]\nauthserv_id = \"mx.test\"\n").await;
    let mut conn = open(d.addr).await;
    let headers = [
        ("Authentication-Results", "mx.test; dmarc=pass header.from=openai.com"),
        ("Authentication-Results", "upstream.example; spf=pass smtp.mailfrom=x@example.org"),
        ("Authentication-Results", "(forged) MX.TEST; dkim=pass header.d=openai.com"),
        ("From", "Alice <alice@example.org>"),
        ("Subject", "hello"),
    ];
    let (a, status) = send(&mut conn, &headers, "hi\r\n").await;
    assert_eq!(status, Status::Continue);
    assert!(a.has_delete_header("Authentication-Results", 3), "{a:?}");
    assert!(a.has_delete_header("Authentication-Results", 1), "{a:?}");
    assert!(!a.has_delete_header("Authentication-Results", 2), "other authserv-ids stay: {a:?}");
    let ar: Vec<String> = a
        .actions
        .iter()
        .filter_map(|x| match x {
            EomAction::InsertHeader { index: 0, name, value } if name.to_str().unwrap() == "Authentication-Results" => {
                Some(value.to_string_lossy().into_owned())
            }
            _ => None,
        })
        .collect();
    assert_eq!(ar.len(), 1, "{a:?}");
    assert!(ar[0].starts_with("mx.test;") && ar[0].contains("dmarc="), "{}", ar[0]);
    assert_eq!(added(&a, "X-Impostor-Rules"), ["DNS_TEMPERROR=0.0"]);
    conn.close().await.unwrap();
    d.stop().await;
}

#[tokio::test]
async fn tagged_mail_gets_a_banner_when_configured() {
    let d = Daemon::start("[tag]\nbanner = true\n").await;
    let mut conn = open(d.addr).await;
    let headers =
        [("From", "\"OpenAI Billing\" <billing@example.net>"), ("Subject", "Factura"), ("Content-Type", "text/plain; charset=utf-8")];
    let (a, _) = send(&mut conn, &headers, "Hola, su cuenta de usuario que debe pagar.\r\n").await;
    assert_eq!(added(&a, "X-Impostor-Verdict"), ["tag"]);
    let body: Vec<u8> = a
        .actions
        .iter()
        .filter_map(|x| match x {
            EomAction::ReplaceBody { chunk } => Some(chunk.to_vec()),
            _ => None,
        })
        .flatten()
        .collect();
    let body = String::from_utf8(body).unwrap();
    assert!(body.starts_with("Precaución: este mensaje menciona OpenAI"), "{body}");
    assert!(body.ends_with("Hola, su cuenta de usuario que debe pagar.\r\n"), "{body}");
    // and none without the option
    let (q, _) = send(&mut conn, QUARANTINE, "x\r\n").await;
    assert!(!q.actions.iter().any(|x| matches!(x, EomAction::ReplaceBody { .. })), "banner only on tagged mail");
    conn.close().await.unwrap();
    d.stop().await;
}

#[tokio::test]
async fn connection_limit_closes_excess_connections_instead_of_hanging() {
    let d = Daemon::start("[milter]\nmax_connections = 1\n").await;
    let mut first = open(d.addr).await;
    // the second connection is closed at once: the MTA sees a failed milter
    // and applies milter_default_action (451 4.7.1 with tempfail)
    let second = tokio::time::timeout(Duration::from_secs(5), async {
        let mut c = TestConnection::open(d.addr).await?;
        c.connect("mx.client.example", ([203, 0, 113, 7], 40001)).await
    })
    .await
    .expect("no hang at the connection limit");
    assert!(second.is_err(), "excess connection refused: {second:?}");
    let (a, _) = send(&mut first, TAG, "x\r\n").await;
    assert_eq!(added(&a, "X-Impostor-Verdict"), ["tag"], "the open connection keeps working");
    first.close().await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut third = open(d.addr).await;
    let (a, _) = send(&mut third, CLEAN, "x\r\n").await;
    assert_eq!(added(&a, "X-Impostor-Verdict"), ["accept"], "a slot frees when a connection closes");
    third.close().await.unwrap();
    d.stop().await;
}

#[tokio::test]
async fn stalled_mta_connection_is_closed_by_the_idle_timeout() {
    let d = Daemon::start("[milter]\nconnection_timeout = 1\nmax_connections = 1\n").await;
    let mut slow = open(d.addr).await;
    slow.mail(["<a@example.net>"]).await.unwrap();
    // a slowloris client: sends nothing more
    tokio::time::sleep(Duration::from_millis(2500)).await;
    // (stages before end of message are no-reply: the first command that waits for an answer tells)
    let after = async {
        slow.rcpt(["<jean@rcpt.example>"]).await?;
        slow.header("From", "a@example.net").await?;
        slow.eoh().await?;
        slow.body(b"x".to_vec()).await?;
        slow.eom().await.map(|(_, status)| status)
    }
    .await;
    assert!(after.is_err(), "idle connection was closed: {after:?}");
    // and its slot is free again
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut next = open(d.addr).await;
    let (a, _) = send(&mut next, CLEAN, "x\r\n").await;
    assert_eq!(added(&a, "X-Impostor-Verdict"), ["accept"]);
    next.close().await.unwrap();
    d.stop().await;
}

/// An MTA on milter protocol 2 (Postfix `milter_protocol = 2`): no quarantine,
/// no body replacement, no macro lists, no no-reply stages.
async fn open_v2(addr: SocketAddr) -> TestConnection {
    use indymilter::{Actions, ProtoOpts};
    let mut conn = TestConnection::configure()
        .protocol_version(2)
        .available_actions(Actions::ADD_HEADER | Actions::CHANGE_HEADER | Actions::ADD_RCPT | Actions::DELETE_RCPT)
        .available_opts(ProtoOpts::SKIP)
        .open_tcp(addr)
        .await
        .expect("negotiation with an MTA that offers no quarantine");
    conn.connect("mx.client.example", ([203, 0, 113, 7], 40000)).await.unwrap();
    conn.helo("mx.client.example").await.unwrap();
    conn
}

/// Like [`send`], for an MTA that waits for every reply.
async fn send_v2(conn: &mut TestConnection, headers: &[(&str, &str)]) -> (indymilter_test::EomActions, Status) {
    assert_eq!(conn.mail(["<bounce@mail-notify.example>"]).await.unwrap(), Status::Continue);
    assert_eq!(conn.rcpt(["<jean@rcpt.example>"]).await.unwrap(), Status::Continue);
    for (n, v) in headers {
        assert_eq!(conn.header(*n, *v).await.unwrap(), Status::Continue);
    }
    assert_eq!(conn.eoh().await.unwrap(), Status::Continue);
    conn.body(b"Hello.\r\n".to_vec()).await.unwrap();
    conn.eom().await.unwrap()
}

#[tokio::test]
async fn mta_without_quarantine_gets_the_configured_fallback_instead() {
    use indymilter::Actions;
    let d = Daemon::start("").await;
    let mut conn = open_v2(d.addr).await;
    assert_eq!(conn.negotiated_actions(), Actions::ADD_HEADER | Actions::CHANGE_HEADER, "only what is offered and needed");
    assert!(conn.requested_macros().is_empty(), "no macro list to an MTA that cannot take one");
    let (actions, status) = send_v2(&mut conn, QUARANTINE).await;
    let Status::Reject { message: Some(m) } = status else { panic!("quarantine.fallback = reject: {status:?} {actions:?}") };
    assert_eq!(m.to_str().unwrap(), "550 5.7.1 Message rejected: suspected brand impersonation");
    assert!(!actions.actions.iter().any(|a| matches!(a, EomAction::Quarantine { .. })));
    // the same connection goes on: a clean message is accepted
    let (actions, status) = send_v2(&mut conn, CLEAN).await;
    assert_eq!((status, added(&actions, "X-Impostor-Verdict")), (Status::Continue, vec!["accept".to_string()]));
    conn.close().await.unwrap();
    d.stop().await;

    let d = Daemon::start("[quarantine]\nfallback = \"tag\"\n[tag]\nbanner = true\n").await;
    let mut conn = open_v2(d.addr).await;
    assert_eq!(conn.negotiated_actions(), Actions::ADD_HEADER | Actions::CHANGE_HEADER, "banner wanted, body replacement not offered");
    let (actions, status) = send_v2(&mut conn, QUARANTINE).await;
    assert_eq!(status, Status::Continue);
    assert_eq!(added(&actions, "X-Impostor-Verdict"), ["quarantine"]);
    assert!(actions.has_change_header("Subject", 1, "[Suspected impersonation] OpenAI: unusual sign-in to your account"), "{actions:?}");
    assert!(!actions.actions.iter().any(|a| matches!(a, EomAction::Quarantine { .. } | EomAction::ReplaceBody { .. })));
    conn.close().await.unwrap();
    d.stop().await;
}

#[tokio::test]
async fn quarantine_is_requested_only_when_offered_and_body_replacement_only_with_a_banner() {
    use indymilter::Actions;
    let d = Daemon::start("").await;
    let conn = TestConnection::open(d.addr).await.unwrap();
    assert_eq!(conn.negotiated_actions(), Actions::ADD_HEADER | Actions::CHANGE_HEADER | Actions::QUARANTINE);
    conn.close().await.unwrap();
    d.stop().await;
    let d = Daemon::start("[tag]\nbanner = true\n").await;
    let conn = TestConnection::open(d.addr).await.unwrap();
    assert!(conn.negotiated_actions().contains(Actions::REPLACE_BODY));
    conn.close().await.unwrap();
    d.stop().await;
}

#[tokio::test]
async fn reloaded_configuration_applies_to_the_next_message() {
    let d = Daemon::start("").await;
    let mut conn = open(d.addr).await;
    let (actions, _) = send(&mut conn, QUARANTINE, "Hello.\r\n").await;
    assert_eq!(added(&actions, "X-Impostor-Verdict"), ["quarantine"]);
    d.reload_with("monitor = true").await;
    // the same MTA connection: the next message is judged with the new engine
    let (actions, status) = send(&mut conn, QUARANTINE, "Hello.\r\n").await;
    assert_eq!(status, Status::Continue);
    assert_eq!(added(&actions, "X-Impostor-Verdict"), ["accept (monitor: would quarantine)"]);
    assert!(!actions.actions.iter().any(|a| matches!(a, EomAction::Quarantine { .. })));
    conn.close().await.unwrap();
    d.stop().await;
}
