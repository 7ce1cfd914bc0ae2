//! `impostor check` shows the authentication it used: the binary run against
//! a loopback dnsmasq (tests/common/dns.rs) with the `--nameserver` flag (the
//! daemon's resolver path, `dns.nameservers` overridden), messages DKIM-signed
//! by an independent signer (dkimpy's `dkimsign`, package python3-dkim).

use std::path::Path;
use std::process::Command;

mod common;
use common::dkim;
use common::dns::{self, free_udp_port};

const BRAND_IP: &str = "192.0.2.10";
const STRANGER_IP: &str = "203.0.113.7";
const CONFIG: &str = "builtin_brands = false\n[dns]\ntimeout_ms = 500\nbudget_ms = 1500\nattempts = 1\non_error = \"continue\"\n[auth]\nauthserv_id = \"mx.test\"\n[[brand]]\nname = \"ExampleBrand\"\ndomains = [\"brand.example\"]\n";

fn message(from: &str) -> String {
    format!("From: {from}\r\nTo: jean@rcpt.example\r\nSubject: Your invoice\r\nDate: Mon, 24 Nov 2025 10:00:00 +0100\r\nMessage-ID: <inv-1@test>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\nYour invoice is attached.\r\n")
}

/// Runs `impostor check` with `args`; returns the parsed JSON (with `--json`) or the text.
fn check(dir: &Path, port: u16, file: &Path, ip: &str, mail_from: &str, extra: &[&str]) -> String {
    let config = dir.join("impostor.toml");
    std::fs::write(&config, CONFIG).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_impostor"))
        .arg("check")
        .arg("-c")
        .arg(&config)
        .args(["--nameserver", &format!("127.0.0.1:{port}"), "--client-ip", ip, "--helo", "mx.sender.example", "--mail-from", mail_from])
        .args(extra)
        .arg(file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn check_json_has_the_auth_it_used_from_live_dns() {
    let dir = tempfile::tempdir().unwrap();
    let public = dkim::rsa_key(dir.path());
    let zone = dns::start(&[
        ("brand.example", format!("v=spf1 ip4:{BRAND_IP} -all")),
        ("_dmarc.brand.example", "v=DMARC1; p=reject".to_string()),
        ("s1._domainkey.brand.example", format!("v=DKIM1; k=rsa; p={public}")),
        ("esp.example", format!("v=spf1 ip4:{STRANGER_IP} -all")),
    ]);
    let signed = dir.path().join("signed.eml");
    std::fs::write(&signed, dkim::sign(&message("Billing <billing@brand.example>"), "brand.example", &dir.path().join("dkim.key")))
        .unwrap();

    // signed by the brand, sent through an ESP with its own bounce domain: SPF passes for the ESP, not aligned
    let out = check(dir.path(), zone.port, &signed, STRANGER_IP, "bounce@esp.example", &["--json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let a = &v["auth"];
    assert_eq!(a["source"], "impostor", "{a}");
    assert_eq!(
        (a["spf"]["result"].as_str(), a["spf"]["domain"].as_str(), a["spf"]["aligned"].as_bool()),
        (Some("pass"), Some("esp.example"), Some(false)),
        "{a}"
    );
    let d = &a["dkim"][0];
    assert_eq!(
        (d["result"].as_str(), d["domain"].as_str(), d["selector"].as_str(), d["aligned"].as_bool()),
        (Some("pass"), Some("brand.example"), Some("s1"), Some(true)),
        "{a}"
    );
    assert_eq!(
        (a["dmarc"]["result"].as_str(), a["dmarc"]["domain"].as_str(), a["dmarc"]["aligned"].as_bool()),
        (Some("pass"), Some("brand.example"), Some(true)),
        "{a}"
    );
    assert_eq!(v["action"], "accept", "{v}");

    // the same message from a stranger claiming the brand's bounce domain: SPF fails, DKIM still passes
    let out = check(dir.path(), zone.port, &signed, STRANGER_IP, "bounce@brand.example", &[]);
    assert!(out.contains("auth:   impostor's own SPF/DKIM/DMARC checks over DNS"), "{out}");
    assert!(out.contains("spf      fail       brand.example (mailfrom)  aligned with From"), "{out}");
    assert!(out.contains("dkim     pass       brand.example s=s1  aligned with From"), "{out}");

    // an unsigned spoof of the brand's domain: DMARC fails, shown with the policy
    let spoof = dir.path().join("spoof.eml");
    std::fs::write(&spoof, message("Billing <billing@brand.example>")).unwrap();
    let v: serde_json::Value =
        serde_json::from_str(&check(dir.path(), zone.port, &spoof, STRANGER_IP, "bounce@esp.example", &["--json"])).unwrap();
    assert_eq!((v["auth"]["dmarc"]["result"].as_str(), v["auth"]["dmarc"]["detail"].as_str()), (Some("fail"), Some("p=reject")), "{v}");
    assert!(v["auth"]["dkim"].as_array().unwrap().is_empty());
    assert!(v["rules"].as_array().unwrap().iter().any(|r| r["id"] == "BRAND_DOMAIN_DMARC_FAIL"), "{v}");
}

#[test]
fn check_states_a_dns_temperror_as_such() {
    let dir = tempfile::tempdir().unwrap();
    let spoof = dir.path().join("spoof.eml");
    std::fs::write(&spoof, message("Billing <billing@brand.example>")).unwrap();
    // nothing listens on this port: every lookup times out
    let port = free_udp_port();
    let v: serde_json::Value =
        serde_json::from_str(&check(dir.path(), port, &spoof, STRANGER_IP, "bounce@esp.example", &["--json"])).unwrap();
    let a = &v["auth"];
    assert_eq!(a["source"], "impostor");
    assert_eq!((a["spf"]["result"].as_str(), a["spf"]["temperror"].as_bool()), (Some("temperror"), Some(true)), "{a}");
    assert!(!a["temperror"].as_array().unwrap().is_empty(), "{a}");
    let ids: Vec<&str> = v["rules"].as_array().unwrap().iter().filter_map(|r| r["id"].as_str()).collect();
    // no DMARC verdict: not the DMARC-fail rule, but the message itself shows the spoof
    assert!(
        ids.contains(&"DNS_TEMPERROR") && ids.contains(&"BRAND_DOMAIN_UNSIGNED") && !ids.contains(&"BRAND_DOMAIN_DMARC_FAIL"),
        "{ids:?}"
    );
    let text = check(dir.path(), port, &spoof, STRANGER_IP, "bounce@esp.example", &["--explain"]);
    assert!(text.contains("DNS temporary error: unknown, not a fail"), "{text}");
    assert!(
        text.contains("BRAND_DOMAIN_UNSIGNED  [group auth, default weight 5.0, counted +5.0]") && text.contains("thresholds: tag 5.0"),
        "{text}"
    );
}
