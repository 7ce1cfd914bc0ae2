//! Trusted upstream `Authentication-Results` through the milter: the real
//! daemon, indymilter-test as the MTA, and a loopback dnsmasq answering for
//! openai.com (SPF -all for strangers, DMARC p=reject), so impostor's own
//! checks give real results. An attacker writes headers with the upstream's
//! authserv-id into the message; only what the upstream itself added counts.

use indymilter_test::{EomAction, EomActions, Status, TestConnection};
use std::net::SocketAddr;

mod common;
use common::{dns, Daemon};

const GENUINE: &str = "mx.trusted.example; spf=fail smtp.mailfrom=openai.com; dkim=none; dmarc=fail (p=reject) header.from=openai.com";
const FORGED: &str =
    "mx.trusted.example; spf=pass smtp.mailfrom=openai.com; dkim=pass header.d=openai.com header.s=s1; dmarc=pass header.from=openai.com";
const UPSTREAM_RECEIVED: &str = "from attacker.example (attacker.example [203.0.113.9]) by mx.trusted.example (Postfix) with ESMTP id 4dXk; Wed, 2 Dec 2026 06:00:00 +0000";
const SENDER_RECEIVED: &str = "from [10.0.0.2] by relay.attacker.example with SMTP; Wed, 2 Dec 2026 05:59:00 +0000";
const MESSAGE: &[(&str, &str)] = &[
    ("From", "\"OpenAI Security\" <security@openai.com>"),
    ("To", "jean@rcpt.example"),
    ("Subject", "Unusual activity on your API account"),
    ("Message-ID", "<1@openai.com>"),
];
const BODY: &str = "Hello Jean, we saw suspicious activity from Chrome in Lyon. Confirm your API key within 24 hours.\r\n";
const ATTACKER: [u8; 4] = [203, 0, 113, 7];
const RELAY: [u8; 4] = [198, 51, 100, 25];
const TRUSTED: &str = "[auth]\nauthserv_id = \"mx.rcpt.example\"\ntrusted_authserv_ids = [\"mx.trusted.example\"]\n";

fn openai_zone() -> dns::Dns {
    dns::start(&[("openai.com", "v=spf1 ip4:192.0.2.10 -all".to_string()), ("_dmarc.openai.com", "v=DMARC1; p=reject".to_string())])
}

/// Sends MESSAGE from `client` with `extra` headers on top (in order).
async fn send(addr: SocketAddr, client: [u8; 4], extra: &[(&str, &str)]) -> (EomActions, Status) {
    let mut conn = TestConnection::open(addr).await.unwrap();
    conn.connect("client.example", (client, 40000)).await.unwrap();
    conn.helo("client.example").await.unwrap();
    conn.mail(["<security@openai.com>"]).await.unwrap();
    conn.rcpt(["<jean@rcpt.example>"]).await.unwrap();
    for (n, v) in extra.iter().chain(MESSAGE) {
        conn.header(*n, *v).await.unwrap();
    }
    conn.eoh().await.unwrap();
    conn.body(BODY.as_bytes().to_vec()).await.unwrap();
    let r = conn.eom().await.unwrap();
    conn.close().await.unwrap();
    r
}

fn header(a: &EomActions, name: &str) -> String {
    a.actions
        .iter()
        .find_map(|x| match x {
            EomAction::AddHeader { name: n, value } if n.to_str().unwrap() == name => Some(value.to_string_lossy().into_owned()),
            _ => None,
        })
        .unwrap_or_default()
}

/// The 1-based indexes of the Authentication-Results headers deleted.
fn deleted_ar(a: &EomActions) -> Vec<i32> {
    a.actions
        .iter()
        .filter_map(|x| match x {
            EomAction::DeleteHeader { name, index } if name.to_str().unwrap() == "Authentication-Results" => Some(*index),
            _ => None,
        })
        .collect()
}

fn verdict(a: &EomActions, status: &Status) -> String {
    match status {
        Status::Reject { .. } => "reject".into(),
        _ => header(a, "X-Impostor-Verdict"),
    }
}

#[tokio::test]
async fn forged_upstream_result_alone_does_not_switch_off_our_own_checks() {
    let zone = openai_zone();
    let d = Daemon::start_with_dns(&format!("monitor = true\n{TRUSTED}"), zone.port).await;
    let (plain, _) = send(d.addr, ATTACKER, &[]).await;
    let (forged, _) = send(d.addr, ATTACKER, &[("Authentication-Results", FORGED)]).await;
    let rules = header(&forged, "X-Impostor-Rules");
    assert!(rules.contains("BRAND_DOMAIN_DMARC_FAIL") && rules.contains("SPF_FAIL"), "our own checks decide: {rules}");
    assert_eq!(header(&forged, "X-Impostor-Verdict"), header(&plain, "X-Impostor-Verdict"), "the forged header changes nothing");
    assert_eq!(header(&forged, "X-Impostor-Score"), header(&plain, "X-Impostor-Score"));
    assert!(forged.has_insert_header(0, "Authentication-Results", indymilter_test::any()), "our own results are added");
    d.stop().await;
}

#[tokio::test]
async fn forged_upstream_result_from_a_client_that_is_not_the_relay_is_removed() {
    let zone = openai_zone();
    let d = Daemon::start_with_dns(&format!("monitor = true\n{TRUSTED}trusted_relays = [\"198.51.100.0/24\"]\n"), zone.port).await;
    let (a, _) = send(d.addr, ATTACKER, &[("Authentication-Results", FORGED)]).await;
    let rules = header(&a, "X-Impostor-Rules");
    assert!(rules.contains("BRAND_DOMAIN_DMARC_FAIL") && rules.contains("SPF_FAIL"), "{rules}");
    assert!(a.has_insert_header(0, "Authentication-Results", indymilter_test::any()), "our own checks ran: {:?}", a.actions);
    assert_eq!(deleted_ar(&a), vec![1], "a trusted id on a non-relay client's mail is a forgery: {:?}", a.actions);
    d.stop().await;
}

#[tokio::test]
async fn forged_upstream_result_below_the_genuine_one_is_ignored_and_removed() {
    let zone = openai_zone();
    let d = Daemon::start_with_dns(&format!("{TRUSTED}trusted_relays = [\"198.51.100.0/24\"]\n"), zone.port).await;
    let genuine_only = [("Authentication-Results", GENUINE), ("Received", UPSTREAM_RECEIVED)];
    let (g, gs) = send(d.addr, RELAY, &genuine_only).await;
    let both = [("Authentication-Results", GENUINE), ("Received", UPSTREAM_RECEIVED), ("Authentication-Results", FORGED)];
    let (a, s) = send(d.addr, RELAY, &both).await;
    // the upstream said DMARC fails for a brand domain: that stands, whatever the sender wrote below
    assert_eq!(verdict(&g, &gs), "reject", "{gs:?} {:?}", g.actions);
    assert_eq!(verdict(&a, &s), "reject", "{s:?} {:?}", a.actions);
    d.stop().await;
    // monitor mode shows the rules and the header edits of the same messages
    let d = Daemon::start_with_dns(&format!("monitor = true\n{TRUSTED}trusted_relays = [\"198.51.100.0/24\"]\n"), zone.port).await;
    let (a, _) = send(d.addr, RELAY, &both).await;
    let rules = header(&a, "X-Impostor-Rules");
    assert!(rules.contains("BRAND_DOMAIN_DMARC_FAIL") && !rules.contains("DKIM"), "the upstream's results, not the forged pass: {rules}");
    assert_eq!(deleted_ar(&a), vec![2], "{:?}", a.actions);
    assert!(!a.actions.iter().any(|x| matches!(x, EomAction::InsertHeader { .. })), "no own A-R: the upstream's results were used");
    d.stop().await;
}

#[tokio::test]
async fn forged_upstream_results_interleaved_with_received_headers_are_removed() {
    let zone = openai_zone();
    let d = Daemon::start_with_dns(&format!("monitor = true\n{TRUSTED}trusted_relays = [\"198.51.100.0/24\"]\n"), zone.port).await;
    let headers = [
        ("Authentication-Results", GENUINE),
        ("Received", UPSTREAM_RECEIVED),
        ("Authentication-Results", FORGED),
        ("Received", SENDER_RECEIVED),
        ("Authentication-Results", FORGED),
    ];
    let (a, _) = send(d.addr, RELAY, &headers).await;
    assert!(header(&a, "X-Impostor-Rules").contains("BRAND_DOMAIN_DMARC_FAIL"), "{:?}", a.actions);
    assert_eq!(deleted_ar(&a), vec![3, 2], "highest index first: {:?}", a.actions);
    d.stop().await;
}

#[tokio::test]
async fn an_earlier_milters_results_are_used_when_impostor_checks_nothing_itself() {
    // OpenDKIM/OpenDMARC in the same MTA before impostor, auth.enabled = false: position alone decides
    let d = Daemon::start(&format!("monitor = true\n{TRUSTED}enabled = false\n")).await;
    let (a, _) = send(d.addr, ATTACKER, &[("Authentication-Results", GENUINE), ("Received", UPSTREAM_RECEIVED)]).await;
    assert!(header(&a, "X-Impostor-Rules").contains("BRAND_DOMAIN_DMARC_FAIL="), "{:?}", a.actions);
    assert!(deleted_ar(&a).is_empty(), "the earlier milter's header is kept: {:?}", a.actions);
    d.stop().await;
}

// Microsoft 365 / Exchange Online Protection in front of this MTA: its
// Authentication-Results has no authserv-id. Real layout (as Exchange Online
// writes it): Microsoft-internal Received hops, its Authentication-Results and
// Received-SPF, then the Received of the hop from the Internet into Microsoft.
const MS_TRUSTED: &str = "[auth]\nauthserv_id = \"mx.rcpt.example\"\nmicrosoft_upstream = true\ntrusted_relays = [\"198.51.100.0/24\"]\n";
const MS_INTERNAL: &str = "from AM4PEPF00025F9A.EURPRD83.prod.outlook.com (2603:10a6:20b:4b1::9) by DB9PR02CA0003.outlook.office365.com (2603:10a6:10:1d9::8) with Microsoft SMTP Server (version=TLS1_2, cipher=TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384) id 15.20.8230.7; Wed, 2 Dec 2026 06:00:01 +0000";
const MS_FAIL: &str = "spf=fail (sender IP is 203.0.113.9) smtp.mailfrom=openai.com; dkim=none (message not signed) header.d=none;dmarc=fail action=oreject header.from=openai.com;compauth=fail reason=000";
const MS_PASS: &str = "spf=pass (sender IP is 192.0.2.10) smtp.mailfrom=openai.com; dkim=pass (signature was verified) header.d=openai.com;dmarc=pass action=none header.from=openai.com;compauth=pass reason=100";
const MS_SPF: &str = "Fail (protection.outlook.com: domain of openai.com does not designate 203.0.113.9 as permitted sender) receiver=protection.outlook.com; client-ip=203.0.113.9; helo=attacker.example;";
const MS_ENTRY: &str = "from attacker.example (203.0.113.9) by AM4PEPF00025F9A.mail.protection.outlook.com (10.167.16.9) with Microsoft SMTP Server id 15.20.8230.7 via Frontend Transport; Wed, 2 Dec 2026 06:00:00 +0000";

#[tokio::test]
async fn microsoft_results_from_the_trusted_relay_are_used_and_a_deeper_forgery_ignored() {
    let zone = openai_zone();
    let d = Daemon::start_with_dns(&format!("monitor = true\n{MS_TRUSTED}"), zone.port).await;
    // Microsoft says DMARC fails; the sender wrote a passing copy below the hop into Microsoft
    let headers = [
        ("Received", MS_INTERNAL),
        ("Authentication-Results", MS_FAIL),
        ("Received-SPF", MS_SPF),
        ("Received", MS_ENTRY),
        ("Authentication-Results", MS_PASS),
    ];
    let (a, _) = send(d.addr, RELAY, &headers).await;
    let rules = header(&a, "X-Impostor-Rules");
    assert!(rules.contains("BRAND_DOMAIN_DMARC_FAIL") && rules.contains("DMARC_FAIL"), "Microsoft's verdict: {rules}");
    assert!(!a.actions.iter().any(|x| matches!(x, EomAction::InsertHeader { .. })), "no own checks: {:?}", a.actions);
    // Microsoft's pass from the relay stands in for our checks (SPF of the relay's IP would fail)
    let headers = [("Received", MS_INTERNAL), ("Authentication-Results", MS_PASS), ("Received", MS_ENTRY)];
    let (p, _) = send(d.addr, RELAY, &headers).await;
    let rules = header(&p, "X-Impostor-Rules");
    assert!(!rules.contains("BRAND_DOMAIN") && !rules.contains("SPF_FAIL"), "Microsoft's pass is used: {rules}");
    // only the forged copy below the entry hop: nothing of Microsoft's, our own checks decide
    let headers = [("Received", MS_INTERNAL), ("Received", MS_ENTRY), ("Authentication-Results", MS_PASS)];
    let (f, _) = send(d.addr, RELAY, &headers).await;
    let rules = header(&f, "X-Impostor-Rules");
    assert!(rules.contains("BRAND_DOMAIN_DMARC_FAIL") && rules.contains("SPF_FAIL"), "the deeper forgery is ignored: {rules}");
    d.stop().await;
}

#[tokio::test]
async fn microsoft_results_from_an_untrusted_client_are_not_read() {
    let zone = openai_zone();
    let d = Daemon::start_with_dns(&format!("monitor = true\n{MS_TRUSTED}"), zone.port).await;
    // the attacker connects directly and writes a Microsoft-format pass on top
    let headers = [("Received", MS_INTERNAL), ("Authentication-Results", MS_PASS), ("Received", MS_ENTRY)];
    let (a, _) = send(d.addr, ATTACKER, &headers).await;
    let rules = header(&a, "X-Impostor-Rules");
    assert!(rules.contains("BRAND_DOMAIN_DMARC_FAIL") && rules.contains("SPF_FAIL"), "our own checks decide: {rules}");
    assert!(a.has_insert_header(0, "Authentication-Results", indymilter_test::any()), "our own results are added: {:?}", a.actions);
    d.stop().await;
}
