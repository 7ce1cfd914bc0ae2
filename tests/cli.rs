//! The offline CLIs: exit codes, JSON shape, and that they match the daemon's analysis.

use std::path::Path;
use std::process::Command;

fn impostor() -> Command {
    Command::new(env!("CARGO_BIN_EXE_impostor"))
}

/// The golden manifest's (file, action) pairs under `family/`: what scan must report for that folder.
fn golden_actions(family: &str) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/golden/cases.toml")).unwrap();
    let v: toml::Value = toml::from_str(&text).unwrap();
    v["case"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["file"].as_str().unwrap().starts_with(&format!("{family}/")))
        .map(|c| (c["file"].as_str().unwrap().to_string(), c["action"].as_str().unwrap().to_string()))
        .collect()
}

fn golden(p: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/golden").join(p).display().to_string()
}

#[test]
fn check_explains_a_combosquat_reject() {
    let out = impostor().args(["check", "--offline", &golden("sender/combosquat_sender_domain.eml")]).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("action: reject"), "{text}");
    assert!(text.contains("score:  24.0"), "{text}");
    assert!(text.contains("LOOKALIKE_FROM_DOMAIN") && text.contains("openai-help.net"), "{text}");
}

#[test]
fn check_json_has_the_scan_fields() {
    let out =
        impostor().args(["check", "--offline", "--json", &golden("sender/display_name_and_subject_claim_brand.eml")]).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // one claim counted once (display name, repeated in the Subject), no call to action: tag
    assert_eq!(v["action"], "tag");
    assert_eq!(v["score"], 9.0);
    assert_eq!(v["monitor"], false);
    assert_eq!(v["rules"][0]["id"], "BRAND_NAME_FOREIGN_DOMAIN");
    assert!(v["rules"][0]["evidence"].as_str().unwrap().contains("account-notice.example"));
    assert!(v["file"].as_str().unwrap().ends_with("display_name_and_subject_claim_brand.eml"));
    assert_eq!(v["auth"]["source"], "none", "{v}");
}

#[test]
fn check_json_shows_trusted_upstream_results_offline() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.toml");
    std::fs::write(&cfg, "[auth]\ntrusted_authserv_ids = [\"mx.rcpt.example\"]\n").unwrap();
    let out = impostor()
        .args(["check", "--offline", "--json", "-c", cfg.to_str().unwrap(), &golden("auth/brand_domain_spoof_fails_dmarc.eml")])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let a = &v["auth"];
    assert_eq!(a["source"], "mx.rcpt.example", "{a}");
    assert_eq!((a["dmarc"]["result"].as_str(), a["dmarc"]["aligned"].as_bool()), (Some("fail"), Some(true)), "{a}");
    assert!(a["origin"].as_str().unwrap().contains("trusted upstream"), "{a}");
}

#[test]
fn monitor_config_reports_would_be_action_in_json() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("m.toml");
    std::fs::write(&cfg, "monitor = true\n").unwrap();
    let out = impostor()
        .args(["check", "--offline", "--json", "-c", cfg.to_str().unwrap(), &golden("sender/combosquat_sender_domain.eml")])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((v["action"].as_str(), v["monitor"].as_bool()), (Some("reject"), Some(true)));
}

#[test]
fn scan_prints_pure_json_lines_and_summary_on_stderr() {
    let out = impostor().args(["scan", "--json", &golden("sender")]).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<serde_json::Value> = stdout.lines().map(|l| serde_json::from_str(l).expect("JSON line")).collect();
    let n = golden_actions("sender").len();
    assert!(n >= 14);
    assert_eq!(lines.len(), n);
    assert!(lines.iter().any(|l| l["action"] == "reject"));
    // offline, no trusted upstream: the auth object says authentication was not checked
    assert!(lines.iter().all(|l| l["auth"]["source"] == "none" && l["auth"]["spf"].is_null()), "{stdout}");
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains(&format!("scanned {n} messages (0 unreadable)")), "{stderr}");
    let rejects = lines.iter().filter(|l| l["action"] == "reject").count();
    assert!(stderr.contains(&format!("reject {rejects:>7}")), "{stderr}");
}

#[test]
fn unreadable_input_exits_1_with_a_clear_message() {
    let out = impostor().args(["check", "--offline", "/nonexistent/x.eml"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("/nonexistent/x.eml: cannot read"), "{err}");
}

#[test]
fn invalid_config_exits_1_naming_file_key_value() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("impostor.toml");
    std::fs::write(&cfg, "[actions]\nreject = 8\n").unwrap();
    let out = impostor().args(["config", "check", "-c", cfg.to_str().unwrap()]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("impostor.toml:2: actions.reject: 8 must be above actions.quarantine (10)"), "{err}");
    let ok = impostor().args(["config", "check", "-c", cfg.to_str().unwrap().replace("impostor.toml", "").as_str()]).output().unwrap();
    assert_eq!(ok.status.code(), Some(1));
}

#[test]
fn config_show_prints_every_rule_weight() {
    let out = impostor().args(["config", "show", "-c", "/dev/null"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    for r in impostor::analysis::catalog() {
        assert!(text.contains(&format!("{} = ", r.id)), "{text}");
    }
    assert!(text.contains("socket = \"inet:127.0.0.1:7357\""));
}

#[test]
fn rules_lists_the_registry() {
    let out = impostor().arg("rules").output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.lines().count(), impostor::analysis::catalog().count());
    assert!(text.contains("BRAND_NAME_FOREIGN_DOMAIN"));
}

#[test]
fn scan_expect_prints_confusion_summary_and_misses() {
    let out = impostor().args(["scan", "--expect", "phish", &golden("sender")]).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    // the summary agrees with the per-message verdicts of `scan --json` over the same folder
    let json = impostor().args(["scan", "--json", &golden("sender")]).output().unwrap();
    let actions: Vec<String> = String::from_utf8(json.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["action"].as_str().unwrap().to_string())
        .collect();
    let (n, flagged) = (actions.len(), actions.iter().filter(|a| *a != "accept").count());
    assert!(n >= 14 && flagged > 0 && flagged < n, "{actions:?}");
    assert!(text.contains(&format!("expected phish: {n} messages")), "{text}");
    let pct = format!("{:.1}%", 100.0 * flagged as f64 / n as f64);
    assert!(text.contains(&format!("detected (tag or above): {flagged} of {n} ({pct})")), "{text}");
    assert!(text.contains("top false negatives:") && text.contains("subject_mentions_brand_newsletter.eml"), "{text}");
    let out = impostor().args(["scan", "--expect", "ham", &golden("sender")]).output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains(&format!("false positives (tag or above): {flagged} of {n}")), "{text}");
    // worst false positive first
    let fp = text.split("top false positives:").nth(1).unwrap();
    assert!(fp.lines().nth(1).unwrap().trim_start().starts_with("reject"), "{fp}");
}

#[test]
fn explain_names_the_deciding_threshold() {
    let out =
        impostor().args(["check", "--offline", "--explain", &golden("sender/display_name_and_subject_claim_brand.eml")]).output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("decided by: score 9.0 >= tag 5.0"), "{text}");
}

#[test]
fn lookalike_command_names_brand_technique_and_skeleton() {
    let out = impostor().args(["lookalike", "--json", "--", "0penai.com", "platform.openai.com", "openairinterface.org"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let lines: Vec<serde_json::Value> = String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0]["brand"], "OpenAI");
    assert_eq!(lines[0]["techniques"][0], "homoglyph");
    assert!(lines[0]["normalized"].is_string());
    assert_eq!((lines[1]["brand"].is_null(), lines[1]["owned_by"].as_str()), (true, Some("OpenAI")));
    assert!(lines[2]["brand"].is_null() && lines[2].get("owned_by").is_none());
}
