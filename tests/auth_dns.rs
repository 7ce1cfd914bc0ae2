//! Authentication against a real DNS server on loopback (dnsmasq serving test
//! zones), with messages DKIM-signed at test time by an independent signer
//! (dkimpy's `dkimsign`). `tests/run.sh` installs dnsmasq-base, python3-dkim
//! and openssl.

use impostor::analysis::{analyze, Engine, Envelope, MessageInput};
use impostor::auth::AuthResult;
use impostor::config::Config;
use impostor::verdict::{Action, Verdict};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;

mod common;
use common::dkim;
use common::dns::{self, free_udp_port, Dns};

const BRAND_IP: &str = "192.0.2.10";
const LOOKALIKE_IP: &str = "198.51.100.20";
const STRANGER_IP: &str = "203.0.113.7";

struct Keys {
    dir: tempfile::TempDir,
    public_b64: String,
}

impl Keys {
    fn private(&self) -> PathBuf {
        self.dir.path().join("dkim.key")
    }
}

fn keys() -> Keys {
    let dir = tempfile::tempdir().unwrap();
    let public_b64 = dkim::rsa_key(dir.path());
    Keys { dir, public_b64 }
}

/// dnsmasq on loopback with the test zones.
fn start_dns(public_b64: &str) -> Dns {
    let dkim = format!("v=DKIM1; k=rsa; p={public_b64}");
    dns::start(&[
        ("brand.example", format!("v=spf1 ip4:{BRAND_IP} -all")),
        ("_dmarc.brand.example", "v=DMARC1; p=reject".to_string()),
        ("s1._domainkey.brand.example", dkim.clone()),
        ("brand-support.example", format!("v=spf1 ip4:{LOOKALIKE_IP} -all")),
        ("_dmarc.brand-support.example", "v=DMARC1; p=none".to_string()),
        ("s1._domainkey.brand-support.example", dkim.clone()),
        ("shop.example", format!("v=spf1 ip4:{STRANGER_IP} -all")),
    ])
}

fn message(from: &str, subject: &str, body: &str) -> String {
    format!(
        "From: {from}\r\nTo: jean@rcpt.example\r\nSubject: {subject}\r\nDate: Mon, 24 Nov 2025 10:00:00 +0100\r\nMessage-ID: <{}@test>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\n{body}\r\n",
        subject.len()
    )
}

fn engine(port: u16, extra: &str) -> Arc<Engine> {
    let toml = format!(
        "builtin_brands = false\n{extra}\n[dns]\nnameservers = [\"127.0.0.1:{port}\"]\ntimeout_ms = 1000\nattempts = 1\n[auth]\nauthserv_id = \"mx.test\"\n[[brand]]\nname = \"ExampleBrand\"\ndomains = [\"brand.example\"]\n"
    );
    Engine::online(Config::from_toml_str(&toml, "auth-test.toml").unwrap()).unwrap()
}

fn run(engine: &Engine, raw: &str, ip: &str, mail_from: &str) -> (Verdict, Option<impostor::auth::AuthResults>) {
    let env = Envelope {
        client_ip: Some(ip.parse::<IpAddr>().unwrap()),
        helo: Some("mx.sender.example".into()),
        mail_from: Some(mail_from.into()),
        ..Default::default()
    };
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let auth = rt.block_on(engine.auth.authenticate(&env, raw.as_bytes(), false, &engine.auth.upstream(&env, raw.as_bytes())));
    let (v, _) = analyze(
        engine,
        &MessageInput { envelope: &env, raw: raw.as_bytes(), truncated: false, headers_truncated: false, auth: auth.as_ref() },
    );
    (v, auth)
}

fn ids(v: &Verdict) -> Vec<&'static str> {
    let mut r = v.rule_ids();
    r.sort();
    r
}

#[test]
fn authentication_with_real_dns_and_independent_signer() {
    let k = keys();
    let dns = start_dns(&k.public_b64);
    let e = engine(dns.port, "");

    // 1. The brand's own mail, signed and sent from its SPF-listed IP: passes untouched.
    let signed = dkim::sign(
        &message("\"ExampleBrand\" <news@brand.example>", "Your ExampleBrand invoice", "Thanks."),
        "brand.example",
        &k.private(),
    );
    let (v, auth) = run(&e, &signed, BRAND_IP, "bounce@brand.example");
    let auth = auth.unwrap();
    assert_eq!(auth.dkim[0].result, AuthResult::Pass, "{auth:?}");
    assert_eq!(auth.spf.as_ref().unwrap().result, AuthResult::Pass, "{auth:?}");
    assert_eq!(auth.dmarc.as_ref().unwrap().result, AuthResult::Pass, "{auth:?}");
    assert_eq!((v.action, ids(&v)), (Action::Accept, vec![]), "{v:?}");
    let ar = impostor::auth::ar_header("mx.test", &auth);
    assert!(
        ar.contains("dkim=pass header.d=brand.example header.s=s1") && ar.contains("dmarc=pass (p=reject) header.from=brand.example"),
        "{ar}"
    );

    // 2. Same message with a tampered body from a stranger's IP: DKIM fail, SPF fail, DMARC fail on a brand domain.
    let tampered = signed.replace("Thanks.", "Thanks a lot.");
    let (v, auth) = run(&e, &tampered, STRANGER_IP, "bounce@brand.example");
    assert_eq!(auth.unwrap().dkim[0].result, AuthResult::Fail);
    assert_eq!(ids(&v), vec!["BRAND_DOMAIN_DMARC_FAIL", "DKIM_FAIL", "DMARC_FAIL", "SPF_FAIL"], "{v:?}");
    assert_eq!(v.action, Action::Reject);
    assert!(v.rules.iter().any(|r| r.id == "DMARC_FAIL" && r.evidence.contains("p=reject")));

    // 3. Unsigned spoof of the brand domain from its... nowhere: DMARC fail (the policy does not matter).
    let spoof = message("\"ExampleBrand Security\" <security@brand.example>", "Verify your account", "Hi");
    let (v, _) = run(&e, &spoof, STRANGER_IP, "security@brand.example");
    assert!(ids(&v).contains(&"BRAND_DOMAIN_DMARC_FAIL"), "{v:?}");
    assert!(v.action >= Action::Quarantine, "{v:?}");

    // 4. A lookalike domain with perfect SPF/DKIM/DMARC of its own: its pass does not help it.
    let look = dkim::sign(
        &message("\"ExampleBrand Support\" <help@brand-support.example>", "Hello", "See you soon."),
        "brand-support.example",
        &k.private(),
    );
    let (v, auth) = run(&e, &look, LOOKALIKE_IP, "bounce@brand-support.example");
    let auth = auth.unwrap();
    assert_eq!(auth.dmarc.as_ref().unwrap().result, AuthResult::Pass, "the lookalike authenticates as itself: {auth:?}");
    assert_eq!(ids(&v), vec!["BRAND_CLAIM_UNAUTHENTICATED", "BRAND_NAME_FOREIGN_DOMAIN", "LOOKALIKE_FROM_DOMAIN"], "{v:?}");
    assert_eq!(v.action, Action::Quarantine);

    // 5. Ordinary mail from an unrelated domain with SPF pass: nothing to say.
    let shop = message("Shop <orders@shop.example>", "Your order", "Shipped.");
    let (v, auth) = run(&e, &shop, STRANGER_IP, "orders@shop.example");
    assert_eq!(auth.unwrap().spf.unwrap().result, AuthResult::Pass);
    assert_eq!((v.action, ids(&v)), (Action::Accept, vec![]));
    drop(dns);
}

#[test]
fn dns_outage_is_temperror_never_fail() {
    // Nothing listens on this port: every lookup fails temporarily.
    let port = free_udp_port();
    let spoof = message("\"ExampleBrand Security\" <security@brand.example>", "Verify your account", "Hi");
    let shop = message("Shop <orders@shop.example>", "Your order", "Shipped.");

    let e = engine(port, "");
    let (v, _) = run(&e, &spoof, STRANGER_IP, "security@brand.example");
    assert_eq!(v.action, Action::Tempfail, "brand claim + DNS down + on_error=tempfail: {v:?}");
    assert!(ids(&v).contains(&"DNS_TEMPERROR"));
    assert!(!ids(&v).iter().any(|r| r.contains("FAIL")), "no fail from a DNS outage: {v:?}");
    let (v, _) = run(&e, &shop, STRANGER_IP, "orders@shop.example");
    assert_eq!(v.action, Action::Accept, "a message that claims no brand is not held up: {v:?}");
    assert_eq!(ids(&v), vec!["DNS_TEMPERROR"]);

    let toml = format!(
        "builtin_brands = false\n[dns]\nnameservers = [\"127.0.0.1:{port}\"]\ntimeout_ms = 500\nattempts = 1\non_error = \"continue\"\n[[brand]]\nname = \"ExampleBrand\"\ndomains = [\"brand.example\"]\n"
    );
    let e = Engine::online(Config::from_toml_str(&toml, "t.toml").unwrap()).unwrap();
    let (v, _) = run(&e, &spoof, STRANGER_IP, "security@brand.example");
    assert_ne!(v.action, Action::Tempfail, "on_error=continue decides with what is known: {v:?}");
    assert!(ids(&v).contains(&"DNS_TEMPERROR"));
}
