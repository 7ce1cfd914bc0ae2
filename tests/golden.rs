//! Golden cases in the Stalwart style: `tests/fixtures/golden/**.eml` plus
//! `cases.toml`, which gives each message its envelope, an optional config,
//! and the verdict expected from it: action, total score, rule ids, and every
//! finding with its weight and evidence, one per line. Every case runs through
//! the same `analyze` the daemon uses; all divergences are reported at once,
//! as are `.eml` files the manifest does not list.
//!
//! Bless mode: `IMPOSTOR_BLESS=1 cargo test --test golden` rewrites
//! `action`, `score`, `rules` and `findings` of every case from the current
//! results and keeps everything else: file, envelope (`mail_from`,
//! `client_ip`, `helo`), `config`, `technique`, `comment`, the order of the
//! cases and full-line `#` comments. It writes nothing, and fails, when a case
//! cannot run or an `.eml` is unlisted. A weight change is then one command
//! and a diff to review. Without the variable the test only compares.
//!
//! Adding a case:
//! 1. drop the message under `tests/fixtures/golden/<family>/` (sender,
//!    lookalike, auth, content, or a new directory);
//! 2. add a `[[case]]` to `cases.toml` with `file` (relative to
//!    `tests/fixtures/golden/`), `mail_from`, `client_ip`, `helo`, `config`
//!    if the case needs one, `technique` and `comment`;
//! 3. run `IMPOSTOR_BLESS=1 cargo test --test golden`;
//! 4. review `git diff tests/fixtures/golden/cases.toml`: the new case's
//!    verdict, and nothing else changed.

use impostor::analysis::{analyze, Engine, Envelope, MessageInput};
use impostor::config::Config;
use impostor::verdict::Verdict;
use serde::Deserialize;
use std::fmt::Write as _;
use std::path::Path;

#[derive(Deserialize, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
struct Manifest {
    #[serde(default)]
    case: Vec<Case>,
}

/// One `[[case]]`. The expectations are optional so that a new case can be
/// blessed; when comparing, a missing one is a divergence.
#[derive(Deserialize, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
struct Case {
    file: String,
    mail_from: Option<String>,
    /// Kept as written; parsed when the case runs.
    client_ip: Option<String>,
    helo: Option<String>,
    /// Extra TOML config for this case (e.g. another brand).
    config: Option<String>,
    action: Option<String>,
    score: Option<f64>,
    /// Rule ids that fired, sorted, each once (a summary of `findings`).
    rules: Option<Vec<String>>,
    technique: String,
    comment: Option<String>,
    /// Every finding in verdict order, with the weight it counted.
    findings: Option<Vec<Finding>>,
}

#[derive(Deserialize, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
struct Finding {
    rule: String,
    score: f64,
    /// In `rules.monitor`: shown, not counted (`score` is the would-be weight).
    #[serde(default)]
    monitor: bool,
    evidence: String,
}

/// What a case produced.
struct Outcome {
    action: String,
    score: f64,
    rules: Vec<String>,
    findings: Vec<Finding>,
}

impl Outcome {
    fn of(v: &Verdict) -> Outcome {
        let findings: Vec<Finding> = v
            .rules
            .iter()
            .map(|r| Finding { rule: r.id.to_string(), score: r.score, monitor: r.monitor, evidence: r.evidence.clone() })
            .collect();
        let rules = sorted_ids(findings.iter().map(|f| f.rule.clone()));
        Outcome { action: v.action.as_str().to_string(), score: v.score, rules, findings }
    }
}

fn sorted_ids(ids: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut ids: Vec<String> = ids.into_iter().collect();
    ids.sort();
    ids.dedup();
    ids
}

fn bless_requested() -> bool {
    std::env::var_os("IMPOSTOR_BLESS").is_some_and(|v| !v.is_empty() && v != "0")
}

#[test]
fn golden_cases() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/golden");
    let path = dir.join("cases.toml");
    let text = std::fs::read_to_string(&path).expect("cases.toml");
    let manifest: Manifest = toml::from_str(&text).unwrap_or_else(|e| panic!("cases.toml does not parse: {e}"));
    assert!(!manifest.case.is_empty(), "cases.toml lists no case");
    let bless = bless_requested();

    let mut diffs = Vec::new();
    let mut outcomes = Vec::new();
    for case in &manifest.case {
        match run(&dir, case) {
            Ok(got) => {
                if !bless {
                    if let Some(d) = compare(case, &got) {
                        diffs.push(d);
                    }
                }
                outcomes.push(got);
            }
            Err(e) => diffs.push(format!("{} [{}]: {e}", case.file, case.technique)),
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

    if bless {
        assert!(diffs.is_empty(), "not blessed, {} problem(s) in {} cases:\n{}", diffs.len(), manifest.case.len(), diffs.join("\n"));
        let blessed: Vec<Case> = manifest.case.iter().zip(&outcomes).map(|(c, o)| blessed(c, o)).collect();
        let new_text = render(&comments_by_case(&text, blessed.len()), &blessed);
        // what we write must read back as exactly what we meant
        let back: Manifest = toml::from_str(&new_text).unwrap_or_else(|e| panic!("blessed cases.toml does not parse: {e}\n{new_text}"));
        assert!(back.case == blessed, "blessed cases.toml does not read back as written");
        if new_text != text {
            std::fs::write(&path, &new_text).expect("write cases.toml");
            eprintln!("golden: blessed {} cases into {}; review `git diff`", blessed.len(), path.display());
        } else {
            eprintln!("golden: {} cases, cases.toml unchanged", blessed.len());
        }
        return;
    }
    assert!(
        diffs.is_empty(),
        "{} of {} cases diverged:\n{}\nIf the new results are intended: IMPOSTOR_BLESS=1 cargo test --test golden, then review git diff.",
        diffs.len(),
        manifest.case.len(),
        diffs.join("\n")
    );
}

fn run(dir: &Path, case: &Case) -> Result<Outcome, String> {
    let config = Config::from_toml_str(case.config.as_deref().unwrap_or(""), &case.file).map_err(|e| format!("config: {e:#}"))?;
    let client_ip = match &case.client_ip {
        Some(ip) => Some(ip.parse().map_err(|e| format!("client_ip {ip:?}: {e}"))?),
        None => None,
    };
    let raw = std::fs::read(dir.join(&case.file)).map_err(|e| format!("{}: {e}", case.file))?;
    let engine = Engine::new(config).map_err(|e| e.to_string())?;
    let env = Envelope {
        client_ip,
        helo: case.helo.clone(),
        mail_from: case.mail_from.clone(),
        rcpt_to: vec!["jean.dupont@rcpt.example".into()],
        ..Default::default()
    };
    let (v, _) = analyze(&engine, &MessageInput { envelope: &env, raw: &raw, truncated: false, headers_truncated: false, auth: None });
    Ok(Outcome::of(&v))
}

/// The divergence report for one case, or None when it matches exactly.
fn compare(case: &Case, got: &Outcome) -> Option<String> {
    let mut out = Vec::new();
    match &case.action {
        Some(a) if *a == got.action => {}
        Some(a) => out.push(format!("    action: expected {a}, got {}", got.action)),
        None => out.push(format!("    action: none expected, got {}", got.action)),
    }
    match case.score {
        Some(s) if s == got.score => {}
        Some(s) => out.push(format!("    score: expected {}, got {}", toml_float(s), toml_float(got.score))),
        None => out.push(format!("    score: none expected, got {}", toml_float(got.score))),
    }
    match &case.rules {
        Some(r) if sorted_ids(r.iter().cloned()) == got.rules => {}
        Some(r) => out.push(format!("    rules: expected {}, got {}", toml_str_array(r), toml_str_array(&got.rules))),
        None => out.push(format!("    rules: none expected, got {}", toml_str_array(&got.rules))),
    }
    match &case.findings {
        Some(f) if *f == got.findings => {}
        None if got.findings.is_empty() => out.push("    findings: none expected, got []".into()),
        want => {
            let want: Vec<String> = want.iter().flatten().map(finding_line).collect();
            let got: Vec<String> = got.findings.iter().map(finding_line).collect();
            out.push(format!("    findings (- expected, + got):\n{}", line_diff(&want, &got).join("\n")));
        }
    }
    if out.is_empty() {
        return None;
    }
    let comment = case.comment.as_deref().filter(|c| !c.is_empty()).map(|c| format!(" ({c})")).unwrap_or_default();
    Some(format!("{} [{}]{comment}:\n{}", case.file, case.technique, out.join("\n")))
}

/// Lines of `want` and `got` aligned on their longest common subsequence.
fn line_diff(want: &[String], got: &[String]) -> Vec<String> {
    let (n, m) = (want.len(), got.len());
    let mut lcs = vec![vec![0usize; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[i][j] = if want[i] == got[j] { lcs[i + 1][j + 1] + 1 } else { lcs[i + 1][j].max(lcs[i][j + 1]) };
        }
    }
    let (mut i, mut j, mut out) = (0, 0, Vec::new());
    while i < n || j < m {
        if i < n && j < m && want[i] == got[j] {
            out.push(format!("        {}", want[i]));
            (i, j) = (i + 1, j + 1);
        } else if i < n && (j == m || lcs[i + 1][j] >= lcs[i][j + 1]) {
            out.push(format!("      - {}", want[i]));
            i += 1;
        } else {
            out.push(format!("      + {}", got[j]));
            j += 1;
        }
    }
    if out.is_empty() {
        out.push("        (none)".into());
    }
    out
}

/// The case with its expectations replaced by what it produced.
fn blessed(case: &Case, got: &Outcome) -> Case {
    Case {
        action: Some(got.action.clone()),
        score: Some(got.score),
        rules: Some(got.rules.clone()),
        findings: Some(got.findings.clone()),
        ..case.clone()
    }
}

// ---- writing cases.toml ----------------------------------------------------

/// Full-line `#` comments of the manifest, by position: `[k]` holds those
/// written before the k-th `[[case]]`, the last entry those after the last case.
fn comments_by_case(text: &str, cases: usize) -> Vec<Vec<String>> {
    let mut out = vec![Vec::new()];
    let mut in_multiline: Option<&str> = None;
    for line in text.lines() {
        if let Some(delim) = in_multiline {
            if line.matches(delim).count() % 2 == 1 {
                in_multiline = None;
            }
            continue;
        }
        let t = line.trim();
        if t.starts_with('#') {
            out.last_mut().unwrap().push(t.to_string());
        } else if t.split('#').next().unwrap().chars().filter(|c| !c.is_whitespace()).collect::<String>() == "[[case]]" {
            out.push(Vec::new());
        } else {
            in_multiline = ["'''", "\"\"\""].into_iter().find(|d| line.matches(d).count() % 2 == 1);
        }
    }
    assert_eq!(out.len(), cases + 1, "cases.toml: found {} `[[case]]` headers for {cases} cases; bless needs one per line", out.len() - 1);
    out
}

/// The manifest text: cases in order, fields in a fixed order, one finding
/// per line, a blank line between cases, comments where they were.
fn render(comments: &[Vec<String>], cases: &[Case]) -> String {
    let mut s = String::new();
    for (k, case) in cases.iter().enumerate() {
        if k > 0 {
            s.push('\n');
        }
        for c in &comments[k] {
            writeln!(s, "{c}").unwrap();
        }
        if k == 0 && !comments[0].is_empty() {
            s.push('\n');
        }
        render_case(&mut s, case);
    }
    if let Some(trailer) = comments.get(cases.len()).filter(|c| !c.is_empty()) {
        s.push('\n');
        for c in trailer {
            writeln!(s, "{c}").unwrap();
        }
    }
    s
}

fn render_case(s: &mut String, c: &Case) {
    s.push_str("[[case]]\n");
    writeln!(s, "file = {}", toml_str(&c.file)).unwrap();
    for (key, value) in [("mail_from", &c.mail_from), ("client_ip", &c.client_ip), ("helo", &c.helo)] {
        if let Some(v) = value {
            writeln!(s, "{key} = {}", toml_str(v)).unwrap();
        }
    }
    if let Some(config) = &c.config {
        writeln!(s, "config = {}", toml_config(config)).unwrap();
    }
    if let Some(a) = &c.action {
        writeln!(s, "action = {}", toml_str(a)).unwrap();
    }
    if let Some(score) = c.score {
        writeln!(s, "score = {}", toml_float(score)).unwrap();
    }
    if let Some(r) = &c.rules {
        writeln!(s, "rules = {}", toml_str_array(r)).unwrap();
    }
    writeln!(s, "technique = {}", toml_str(&c.technique)).unwrap();
    if let Some(comment) = &c.comment {
        writeln!(s, "comment = {}", toml_str(comment)).unwrap();
    }
    match c.findings.as_deref() {
        None => {}
        Some([]) => s.push_str("findings = []\n"),
        Some(findings) => {
            s.push_str("findings = [\n");
            for f in findings {
                writeln!(s, "    {},", finding_line(f)).unwrap();
            }
            s.push_str("]\n");
        }
    }
}

fn finding_line(f: &Finding) -> String {
    let monitor = if f.monitor { ", monitor = true" } else { "" };
    format!("{{ rule = {}, score = {}{monitor}, evidence = {} }}", toml_str(&f.rule), toml_float(f.score), toml_str(&f.evidence))
}

fn toml_str_array(items: &[String]) -> String {
    format!("[{}]", items.iter().map(|i| toml_str(i)).collect::<Vec<_>>().join(", "))
}

/// Shortest text that parses back to the same f64 (`5.0`, `12.5`, `1e-7`).
fn toml_float(x: f64) -> String {
    if x.is_nan() {
        "nan".into()
    } else if x.is_infinite() {
        (if x > 0.0 { "inf" } else { "-inf" }).into()
    } else {
        format!("{x:?}")
    }
}

/// A short config stays on one line (`"[auth]\nx = 1\n"`); one of three lines
/// or more becomes a multi-line literal string when it can be written as one.
fn toml_config(config: &str) -> String {
    let literal_ok = !config.contains("'''") && !config.chars().any(|c| c != '\n' && invisible(c));
    if config.matches('\n').count() >= 3 && literal_ok {
        format!("'''\n{config}'''")
    } else {
        toml_str(config)
    }
}

/// A TOML basic string. Controls and invisible characters (zero-width, bidi,
/// soft hyphen, …) are written as `\uXXXX` so that a diff shows them.
fn toml_str(v: &str) -> String {
    let mut s = String::with_capacity(v.len() + 2);
    s.push('"');
    for c in v.chars() {
        match c {
            '"' => s.push_str("\\\""),
            '\\' => s.push_str("\\\\"),
            '\n' => s.push_str("\\n"),
            '\t' => s.push_str("\\t"),
            '\r' => s.push_str("\\r"),
            c if invisible(c) && (c as u32) <= 0xFFFF => write!(s, "\\u{:04X}", c as u32).unwrap(),
            c if invisible(c) => write!(s, "\\U{:08X}", c as u32).unwrap(),
            c => s.push(c),
        }
    }
    s.push('"');
    s
}

fn invisible(c: char) -> bool {
    matches!(c as u32,
        0x00..=0x1F | 0x7F..=0x9F | 0xA0 | 0xAD | 0x34F | 0x61C | 0x115F | 0x1160 | 0x17B4 | 0x17B5 | 0x180B..=0x180F
        | 0x2000..=0x200F | 0x2028..=0x202F | 0x205F..=0x206F | 0x2800 | 0x3000 | 0x3164 | 0xFE00..=0xFE0F | 0xFEFF | 0xFFA0
        | 0xFFF0..=0xFFFB | 0x1D173..=0x1D17A | 0xE0000..=0xE0FFF)
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

// ---- the writer itself -----------------------------------------------------

#[test]
fn strings_and_floats_read_back() {
    let tricky = "a \"quoted\" \\ back\tslash\nline, soft\u{AD}hyphen, zero\u{200B}width, rtl\u{202E}, tag\u{E0041}, bell\u{7}, é Оp";
    let written = toml_str(tricky);
    assert!(!written.contains('\u{200B}') && written.contains("\\u200B") && written.contains("\\U000E0041"), "{written}");
    assert!(written.contains("é Оp"), "printable Unicode stays readable: {written}");
    let scores = [5.0, -1.5, 0.1 + 0.2, 12.25, 1e-7, 0.0];
    let config = toml_config("[a]\nb = 1\n[c]\nd = \"x\"\n");
    assert!(config.starts_with("'''\n[a]\n"), "{config}");
    let text = format!("s = {written}\nf = [{}]\nc = {config}\n", scores.map(toml_float).join(", "));
    #[derive(Deserialize)]
    struct T {
        s: String,
        f: Vec<f64>,
        c: String,
    }
    let t: T = toml::from_str(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(t.s, tricky);
    assert_eq!(t.f, scores);
    assert_eq!(t.c, "[a]\nb = 1\n[c]\nd = \"x\"\n");
    assert_eq!(toml_config("[auth]\nx = 1\n"), "\"[auth]\\nx = 1\\n\"");
}

#[test]
fn render_keeps_comments_order_and_reads_back() {
    let text = r#"# head

[[case]]
file = "b.eml"
technique = "t"
# before a

[[case]]
file = "a.eml"
config = '''
# not a comment
x = 1
'''
technique = "u"
comment = ""
# tail
"#;
    let m: Manifest = toml::from_str(text).unwrap();
    let comments = comments_by_case(text, m.case.len());
    assert_eq!(comments, vec![vec!["# head".to_string()], vec!["# before a".to_string()], vec!["# tail".to_string()]]);
    let got = Outcome {
        action: "tag".into(),
        score: 5.5,
        rules: vec!["R".into()],
        findings: vec![
            Finding { rule: "R".into(), score: 5.5, monitor: false, evidence: "x ~ \"y\"".into() },
            Finding { rule: "R".into(), score: 0.0, monitor: true, evidence: "z".into() },
        ],
    };
    let cases: Vec<Case> = m.case.iter().map(|c| blessed(c, &got)).collect();
    let out = render(&comments, &cases);
    let findings = r#"findings = [
    { rule = "R", score = 5.5, evidence = "x ~ \"y\"" },
    { rule = "R", score = 0.0, monitor = true, evidence = "z" },
]
"#;
    let want = format!(
        r##"# head

[[case]]
file = "b.eml"
action = "tag"
score = 5.5
rules = ["R"]
technique = "t"
{findings}
# before a
[[case]]
file = "a.eml"
config = "# not a comment\nx = 1\n"
action = "tag"
score = 5.5
rules = ["R"]
technique = "u"
comment = ""
{findings}
# tail
"##
    );
    assert_eq!(out, want);
    let back: Manifest = toml::from_str(&out).unwrap_or_else(|e| panic!("{e}\n{out}"));
    assert_eq!(back.case, cases);
    assert_eq!(render(&comments_by_case(&out, cases.len()), &back.case), out, "a second render is a no-op");
    assert!(compare(&back.case[0], &got).is_none());
    let mut other = got;
    other.findings[0].evidence = "changed".into();
    let d = compare(&back.case[0], &other).expect("an evidence change diverges");
    let want = r#"b.eml [t]:
    findings (- expected, + got):
      - { rule = "R", score = 5.5, evidence = "x ~ \"y\"" }
      + { rule = "R", score = 5.5, evidence = "changed" }
        { rule = "R", score = 0.0, monitor = true, evidence = "z" }"#;
    assert_eq!(d, want);
}
