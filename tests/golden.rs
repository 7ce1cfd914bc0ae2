//! Golden cases in the Stalwart style: `tests/fixtures/golden/**.eml` plus
//! `cases.toml` (envelope, expected action and rule ids). Every case runs
//! through the same `analyze` the daemon uses; all divergences are reported
//! at once.

use impostor::analysis::{analyze, Engine, Envelope, MessageInput};
use impostor::config::Config;
use serde::Deserialize;
use std::path::Path;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    case: Vec<Case>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    file: String,
    #[serde(default)]
    mail_from: Option<String>,
    #[serde(default)]
    client_ip: Option<std::net::IpAddr>,
    #[serde(default)]
    helo: Option<String>,
    /// Extra TOML config for this case (e.g. another brand).
    #[serde(default)]
    config: Option<String>,
    action: String,
    rules: Vec<String>,
    technique: String,
    #[serde(default)]
    comment: String,
}

#[test]
fn golden_cases() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/golden");
    let text = std::fs::read_to_string(dir.join("cases.toml")).expect("cases.toml");
    let manifest: Manifest = toml::from_str(&text).expect("cases.toml parses");
    assert!(!manifest.case.is_empty(), "cases.toml lists no case");
    let mut diffs = Vec::new();
    for case in &manifest.case {
        let config = Config::from_toml_str(case.config.as_deref().unwrap_or(""), &case.file).expect("case config");
        let engine = Engine::new(config).expect("case policy");
        let raw = std::fs::read(dir.join(&case.file)).unwrap_or_else(|e| panic!("{}: {e}", case.file));
        let env = Envelope {
            client_ip: case.client_ip,
            helo: case.helo.clone(),
            mail_from: case.mail_from.clone(),
            rcpt_to: vec!["jean.dupont@rcpt.example".into()],
            ..Default::default()
        };
        let (v, _) = analyze(&engine, &MessageInput { envelope: &env, raw: &raw, truncated: false, headers_truncated: false, auth: None });
        let mut got: Vec<String> = v.rule_ids().iter().map(|s| s.to_string()).collect();
        got.dedup();
        let mut want = case.rules.clone();
        got.sort();
        want.sort();
        if v.action.as_str() != case.action || got != want {
            diffs.push(format!(
                "{} [{}]: expected {} {:?}, got {} {:?} (score {})\n    {}",
                case.file, case.technique, case.action, want, v.action, got, v.score, case.comment
            ));
        }
    }
    // every .eml in the tree must be in the manifest
    let listed: Vec<&str> = manifest.case.iter().map(|c| c.file.as_str()).collect();
    for entry in walk(&dir) {
        let rel = entry.strip_prefix(&dir).unwrap().to_string_lossy().into_owned();
        if !listed.contains(&rel.as_str()) {
            diffs.push(format!("{rel}: not listed in cases.toml"));
        }
    }
    assert!(diffs.is_empty(), "{} of {} cases diverged:\n{}", diffs.len(), manifest.case.len(), diffs.join("\n"));
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else if p.extension().is_some_and(|x| x == "eml") {
            out.push(p);
        }
    }
    out
}
