//! The corpus side of the CLI: Maildir and mbox input for `scan`, `check -`, `rules --json`, and the
//! printing commands ending quietly on a broken pipe.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn impostor() -> Command {
    Command::new(env!("CARGO_BIN_EXE_impostor"))
}

fn golden(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/golden").join(p)
}

const PHISH: &str = "sender/combosquat_sender_domain.eml";
const CLAIM: &str = "sender/display_name_and_subject_claim_brand.eml";

/// The action `check --offline --json` gives one file.
fn action_of(file: &Path) -> String {
    let out = impostor().args(["check", "--offline", "--json"]).arg(file).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v["action"].as_str().unwrap().to_string()
}

/// `scan --json` over `path`: (file, action) per message, and the exit code.
fn scan(path: &Path) -> (Vec<(String, String)>, Option<i32>, String) {
    let out = impostor().args(["scan", "--json"]).arg(path).output().unwrap();
    let rows = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (v["file"].as_str().unwrap().to_string(), v["action"].as_str().unwrap().to_string())
        })
        .collect();
    (rows, out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn scan_reads_a_maildir() {
    let dir = tempfile::tempdir().unwrap();
    let md = dir.path().join("Maildir");
    for sub in ["cur", "new", "tmp"] {
        std::fs::create_dir_all(md.join(sub)).unwrap();
    }
    // Maildir file names have no .eml
    std::fs::copy(golden(PHISH), md.join("cur/1700000000.M1P1.host:2,S")).unwrap();
    std::fs::copy(golden(CLAIM), md.join("new/1700000001.M2P1.host")).unwrap();
    // still being delivered: not a message yet
    std::fs::copy(golden(PHISH), md.join("tmp/1700000002.M3P1.host")).unwrap();
    let (rows, code, err) = scan(&md);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert!(rows[0].0.ends_with("cur/1700000000.M1P1.host:2,S") && rows[1].0.ends_with("new/1700000001.M2P1.host"), "{rows:?}");
    assert_eq!(rows[0].1, action_of(&golden(PHISH)));
    assert_eq!(rows[1].1, action_of(&golden(CLAIM)));
    assert!(err.contains("scanned 2 messages"), "{err}");
    // the README's own example: the cur/ folder alone
    let (rows, code, _) = scan(&md.join("cur"));
    assert_eq!((rows.len(), code), (1, Some(0)), "{rows:?}");
}

#[test]
fn scan_reads_an_mbox() {
    let dir = tempfile::tempdir().unwrap();
    let mbox = dir.path().join("Inbox");
    let mut f = std::fs::File::create(&mbox).unwrap();
    for (i, p) in [PHISH, CLAIM].iter().enumerate() {
        writeln!(f, "From sender{i}@example.net Thu Nov 14 10:00:0{i} 2024").unwrap();
        let text = std::fs::read_to_string(golden(p)).unwrap();
        // mboxrd quoting of body lines that start with From
        let quoted: String = text.lines().map(|l| if l.starts_with("From ") { format!(">{l}\n") } else { format!("{l}\n") }).collect();
        f.write_all(quoted.as_bytes()).unwrap();
        writeln!(f).unwrap();
    }
    drop(f);
    let (rows, code, err) = scan(&mbox);
    assert_eq!(code, Some(0), "{err}");
    let names: Vec<&str> = rows.iter().map(|r| r.0.as_str()).collect();
    assert_eq!(names, [format!("{}#1", mbox.display()), format!("{}#2", mbox.display())], "{rows:?}");
    assert_eq!(rows[0].1, action_of(&golden(PHISH)));
    assert_eq!(rows[1].1, action_of(&golden(CLAIM)));
    // found in a directory walk too, without an extension
    let (rows, code, _) = scan(dir.path());
    assert_eq!((rows.len(), code), (2, Some(0)), "{rows:?}");
}

#[test]
fn scan_of_a_folder_without_messages_says_so_and_fails() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("notes.txt"), "not mail\n").unwrap();
    let (rows, code, err) = scan(dir.path());
    assert!(rows.is_empty());
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("no message found"), "{err}");
}

#[test]
fn check_dash_reads_standard_input() {
    let from_file = impostor().args(["check", "--offline", "--json"]).arg(golden(PHISH)).output().unwrap();
    let mut child = impostor().args(["check", "--offline", "--json", "-"]).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(&std::fs::read(golden(PHISH)).unwrap()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let mut a: serde_json::Value = serde_json::from_slice(&from_file.stdout).unwrap();
    let mut b: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(b["file"], "-");
    a["file"] = "".into();
    b["file"] = "".into();
    assert_eq!(a, b, "stdin and file verdicts differ");
    assert_eq!(a["action"], "reject");
}

#[test]
fn rules_json_lists_the_catalogue() {
    let out = impostor().args(["rules", "--json"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let v: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    let plain = impostor().arg("rules").output().unwrap();
    assert_eq!(v.len(), String::from_utf8(plain.stdout).unwrap().lines().count());
    let ids: std::collections::HashSet<&str> = v.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), v.len(), "duplicate ids");
    let l = v.iter().find(|r| r["id"] == "LOOKALIKE_FROM_DOMAIN").expect("LOOKALIKE_FROM_DOMAIN listed");
    assert!(
        l["weight"].as_f64().unwrap() > 0.0 && !l["group"].as_str().unwrap().is_empty() && !l["description"].as_str().unwrap().is_empty()
    );
}

/// The command's stdout is a pipe whose reading end is closed before it writes (like `| head` that has quit).
fn on_broken_pipe(args: &[&str]) {
    let mut child = impostor().args(args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(101), "{args:?} panicked: {err}");
    assert!(!err.contains("panicked"), "{args:?}: {err}");
}

#[test]
fn printing_commands_end_quietly_on_a_broken_pipe() {
    on_broken_pipe(&["rules"]);
    on_broken_pipe(&["rules", "--json"]);
    let phish = golden(PHISH).display().to_string();
    on_broken_pipe(&["check", "--offline", &phish]);
    on_broken_pipe(&["check", "--offline", "--json", &phish]);
    on_broken_pipe(&["scan", &phish]);
}

/// impostor(8) documents every subcommand `impostor --help` lists, in the synopsis and as a section.
#[test]
fn man_page_lists_every_subcommand() {
    let help = String::from_utf8(impostor().arg("--help").output().unwrap().stdout).unwrap();
    let commands: Vec<&str> = help
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .collect();
    assert!(commands.len() >= 7 && commands.contains(&"lookalike"), "{commands:?}");
    let man = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/man/impostor.8")).unwrap();
    for c in commands {
        assert!(man.contains(&format!(".B impostor {c}\n")), "impostor(8) SYNOPSIS lacks `impostor {c}`");
        assert!(man.contains(&format!(".SS \"{c}")), "impostor(8) COMMANDS has no section for {c}");
    }
}

#[test]
fn scan_compare_shows_the_verdicts_another_config_changes() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = dir.path().join("corpus");
    std::fs::create_dir(&corpus).unwrap();
    std::fs::copy(golden(CLAIM), corpus.join("claim.eml")).unwrap();
    std::fs::write(corpus.join("ham.eml"), "From: Jean <jean@partner.example>\r\nSubject: lunch\r\n\r\nThursday?\r\n").unwrap();
    let base = dir.path().join("base.toml");
    std::fs::write(&base, "").unwrap();
    let other = dir.path().join("other.toml");
    std::fs::write(&other, "[scores]\nBRAND_NAME_FOREIGN_DOMAIN = 11.0\n[rules]\ndisabled = [\"LURE_NEW_SIGNIN\"]\n").unwrap();

    let out = impostor().args(["scan", "--json", "-c"]).arg(&base).arg("--compare").arg(&other).arg(&corpus).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let rows: Vec<serde_json::Value> = String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    // only the message whose verdict changes is listed; the ham is the same under both
    assert_eq!(rows.len(), 1, "{rows:?}");
    let c = &rows[0];
    assert!(c["file"].as_str().unwrap().ends_with("claim.eml"), "{c}");
    assert_eq!((c["before"].as_str(), c["after"].as_str()), (Some(action_of(&golden(CLAIM)).as_str()), Some("quarantine")), "{c}");
    assert!(c["score_after"].as_f64() > c["score_before"].as_f64(), "{c}");
    assert_eq!(c["removed"], serde_json::json!(["LURE_NEW_SIGNIN"]), "{c}");
    assert_eq!(c["added"], serde_json::json!([]), "{c}");
    let summary = String::from_utf8_lossy(&out.stderr);
    assert!(summary.contains("compared 2 messages") && summary.contains("1 changed, 1 of them in action"), "{summary}");
    assert!(summary.contains("tag        -> quarantine 1"), "{summary}");

    // the text form: one line per change, +added -removed rules
    let out = impostor().args(["scan", "-c"]).arg(&base).arg("--compare").arg(&other).arg(&corpus).output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let line = text.lines().find(|l| l.contains("claim.eml")).expect("a line for claim.eml");
    assert!(line.starts_with("tag        -> quarantine") && line.ends_with("-LURE_NEW_SIGNIN"), "{line}");
    assert!(!text.contains("ham.eml"), "{text}");
}

#[test]
fn completions_are_valid_scripts_that_know_the_subcommands() {
    let script = |shell: &str| {
        let out = impostor().args(["completions", shell]).output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    let bash = script("bash");
    // bash parses it (-n: syntax only)
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("impostor.bash");
    std::fs::write(&file, &bash).unwrap();
    let parsed = Command::new("bash").arg("-n").arg(&file).output().unwrap();
    assert!(parsed.status.success(), "bash -n: {}", String::from_utf8_lossy(&parsed.stderr));
    assert!(bash.contains("complete -F _impostor") && bash.contains("quarantine") && bash.contains("--compare"), "{bash}");
    let zsh = script("zsh");
    assert!(zsh.starts_with("#compdef impostor") && zsh.contains("lookalike"), "{zsh}");
    let fish = script("fish");
    assert!(fish.contains("complete -c impostor") && fish.contains("completions"), "{fish}");
    assert!(!impostor().args(["completions", "tcsh"]).output().unwrap().status.success());
}
