//! The offline `check` and `scan` commands: the same analysis as the daemon,
//! over .eml files.

use crate::analysis::{analyze_guarded, Engine, Envelope, MessageInput};
use crate::auth::{AuthResult, AuthResults, MethodResult};
use crate::domain::registrable;
use crate::verdict::{fmt_score, Action, Verdict};
use rayon::prelude::*;
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

/// One result, as printed by `check --json` and each line of `scan --json`.
#[derive(Debug, Serialize)]
pub struct FileResult<'a> {
    pub file: String,
    #[serde(flatten)]
    pub verdict: &'a Verdict,
    /// The authentication the verdict used.
    pub auth: &'a AuthReport,
}

/// One SPF, DKIM or DMARC result as `check` shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MethodReport {
    pub result: AuthResult,
    /// SPF: the checked domain; DKIM: `d=`; DMARC: the From domain.
    pub domain: String,
    /// DKIM selector (`s=`), when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub selector: Option<String>,
    /// SPF: "mailfrom" or "helo"; DMARC: the published policy; DKIM/compauth: a reason.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub detail: String,
    /// The domain is in the From domain's organisational domain (relaxed alignment).
    pub aligned: bool,
    /// The result is a DNS temporary error: unknown, not a fail.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub temperror: bool,
}

/// The `"auth"` object of `check --json` / `scan --json`: the results the
/// verdict used and where they came from.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuthReport {
    /// "impostor" (own checks over DNS), the trusted authserv-id, "microsoft365",
    /// or "none" (offline without trusted upstream results: authentication unknown).
    pub source: String,
    /// Human words for the source.
    pub origin: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from_domain: Option<String>,
    pub spf: Option<MethodReport>,
    pub dkim: Vec<MethodReport>,
    pub dmarc: Option<MethodReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compauth: Option<MethodReport>,
    /// Lookups that failed temporarily (timeout, SERVFAIL, budget exceeded).
    pub temperror: Vec<String>,
}

impl AuthReport {
    pub fn new(auth: Option<&AuthResults>, from_domain: Option<&str>) -> AuthReport {
        let org = |d: &str| registrable(d).unwrap_or_else(|| d.to_ascii_lowercase());
        let aligned = |d: &str| !d.is_empty() && from_domain.is_some_and(|f| org(f) == org(d));
        let method = |m: &MethodResult, dkim: bool| {
            let (selector, detail) = if dkim {
                let rest = m.detail.strip_prefix("s=").unwrap_or(&m.detail);
                match (m.detail.starts_with("s="), rest.split_once(": ")) {
                    (true, Some((s, why))) => (Some(s.to_string()), why.to_string()),
                    (true, None) => (Some(rest.to_string()), String::new()),
                    _ => (None, m.detail.clone()),
                }
            } else {
                (None, m.detail.clone())
            };
            MethodReport {
                result: m.result,
                domain: m.domain.clone(),
                selector,
                detail,
                aligned: aligned(&m.domain),
                temperror: m.result == AuthResult::TempError,
            }
        };
        let Some(a) = auth else {
            return AuthReport {
                source: "none".into(),
                origin: "not checked: offline and no trusted upstream results (see --nameserver, auth.trusted_authserv_ids)".into(),
                from_domain: from_domain.map(str::to_string),
                spf: None,
                dkim: Vec::new(),
                dmarc: None,
                compauth: None,
                temperror: Vec::new(),
            };
        };
        let origin = match a.source.as_str() {
            crate::auth::OWN_SOURCE => "impostor's own SPF/DKIM/DMARC checks over DNS".to_string(),
            crate::auth::MICROSOFT_SOURCE => "trusted upstream: Microsoft 365 Authentication-Results (auth.microsoft_upstream)".to_string(),
            id => format!("trusted upstream: Authentication-Results of {id} (auth.trusted_authserv_ids)"),
        };
        AuthReport {
            source: a.source.clone(),
            origin,
            from_domain: from_domain.map(str::to_string),
            spf: a.spf.as_ref().map(|m| method(m, false)),
            dkim: a.dkim.iter().map(|m| method(m, true)).collect(),
            dmarc: a.dmarc.as_ref().map(|d| MethodReport {
                result: d.result,
                domain: d.domain.clone(),
                selector: None,
                detail: if d.policy.is_empty() { String::new() } else { format!("p={}", d.policy) },
                aligned: aligned(&d.domain),
                temperror: d.result == AuthResult::TempError,
            }),
            compauth: a.compauth.as_ref().map(|m| method(m, false)),
            temperror: a.temperror.clone(),
        }
    }

    /// The text block of `check`.
    pub fn text(&self) -> String {
        let mut s = format!("\n  auth:   {}", self.origin);
        let line = |name: &str, m: &MethodReport| {
            let mut l = format!("\n    {name:<8} {:<10} {}", m.result.as_str(), if m.domain.is_empty() { "-" } else { &m.domain });
            if let Some(sel) = &m.selector {
                l.push_str(&format!(" s={sel}"));
            }
            if !m.detail.is_empty() {
                l.push_str(&format!(" ({})", m.detail));
            }
            if m.temperror {
                l.push_str("  DNS temporary error: unknown, not a fail");
            } else if name != "compauth" && !m.domain.is_empty() {
                l.push_str(if m.aligned { "  aligned with From" } else { "  not aligned with From" });
            }
            l
        };
        if self.source == "none" {
            return s;
        }
        match &self.spf {
            Some(m) => s.push_str(&line("spf", m)),
            None => s.push_str("\n    spf      none       (no client address)"),
        }
        if self.dkim.is_empty() {
            s.push_str("\n    dkim     none       (no signature)");
        }
        for m in &self.dkim {
            s.push_str(&line("dkim", m));
        }
        match &self.dmarc {
            Some(m) => s.push_str(&line("dmarc", m)),
            None => s.push_str("\n    dmarc    none"),
        }
        if let Some(m) = &self.compauth {
            s.push_str(&line("compauth", m));
        }
        for t in &self.temperror {
            s.push_str(&format!("\n    temperror: {t}"));
        }
        s
    }
}

/// Reads one message and analyses it like the daemon would. With a runtime
/// and an online engine, SPF/DKIM/DMARC are checked over DNS first.
/// `-` is standard input.
pub fn check_file(engine: &Engine, path: &Path, envelope: &Envelope, rt: Option<&tokio::runtime::Handle>) -> Result<Verdict, String> {
    check_file_auth(engine, path, envelope, rt).map(|(v, _)| v)
}

/// A verdict and the authentication it used, or why the file could not be read.
type Checked = Result<(Verdict, AuthReport), String>;

/// [`check_file`], with the authentication the verdict used.
pub fn check_file_auth(engine: &Engine, path: &Path, envelope: &Envelope, rt: Option<&tokio::runtime::Handle>) -> Checked {
    let raw = if path == Path::new("-") {
        let mut buf = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut buf).map_err(|e| format!("standard input: cannot read: {e}"))?;
        buf
    } else {
        std::fs::read(path).map_err(|e| format!("{}: cannot read: {e}", path.display()))?
    };
    Ok(check_bytes_auth(engine, &raw, envelope, rt))
}

/// [`check_file`] on a message already read.
pub fn check_bytes(engine: &Engine, raw: &[u8], envelope: &Envelope, rt: Option<&tokio::runtime::Handle>) -> Verdict {
    check_bytes_auth(engine, raw, envelope, rt).0
}

/// [`check_bytes`], with the authentication the verdict used.
pub fn check_bytes_auth(engine: &Engine, raw: &[u8], envelope: &Envelope, rt: Option<&tokio::runtime::Handle>) -> (Verdict, AuthReport) {
    let cap = engine.config.milter.max_body_bytes;
    let (raw, truncated) = cap_body(raw, cap);
    let auth = match rt {
        Some(rt) => rt.block_on(engine.auth.authenticate(envelope, &raw, truncated, &engine.auth.upstream(envelope, &raw))),
        // offline: the trusted upstream's results stand in (as analyze does), and are shown
        None => engine.auth.upstream(envelope, &raw).results,
    };
    let input = MessageInput { envelope, raw: &raw, truncated, headers_truncated: false, auth: auth.as_ref() };
    let (v, facts) = analyze_guarded(engine, &input);
    let report = AuthReport::new(auth.as_ref(), facts.from_domain.as_deref());
    (v, report)
}

/// Applies the milter's body cap to a whole message, as the daemon would see it.
fn cap_body(raw: &[u8], cap: usize) -> (Vec<u8>, bool) {
    let header_end = find_header_end(raw).unwrap_or(raw.len());
    let body_len = raw.len() - header_end;
    if body_len <= cap {
        (raw.to_vec(), false)
    } else {
        (raw[..header_end + cap].to_vec(), true)
    }
}

/// The end of the header block: just after the first blank line, CRLF or bare LF.
fn find_header_end(raw: &[u8]) -> Option<usize> {
    let lf = memchr::memmem::find(raw, b"\n\n").map(|p| p + 2);
    // searched only before the LF blank line ends, a CRLF one found is the first
    let crlf = memchr::memmem::find(&raw[..lf.unwrap_or(raw.len())], b"\r\n\r\n").map(|p| p + 4);
    crlf.or(lf)
}

/// Human-readable explanation of a verdict and the authentication it used.
pub fn explain_with_auth(file: &str, v: &Verdict, auth: &AuthReport) -> String {
    let mut s = explain(file, v);
    s.push_str(&auth.text());
    s
}

/// `check --explain`: every finding with its rule's description, group,
/// default and counted weight and evidence; the thresholds and which one decided;
/// the authentication used.
pub fn explain_detail(engine: &Engine, file: &str, v: &Verdict, auth: &AuthReport) -> String {
    let mut s = format!("{file}\n  action: {}\n  score:  {}", v.header_value(), fmt_score(v.score));
    if let Some(b) = &v.brand {
        s.push_str(&format!("\n  brand:  {b}"));
    }
    if v.rules.is_empty() {
        s.push_str("\n  findings: none");
    }
    for r in &v.rules {
        let def = crate::analysis::catalog().find(|d| d.id == r.id);
        let (group, default, desc) = def.map(|d| (d.group, d.default_weight, d.description)).unwrap_or(("?", 0.0, ""));
        let counted = if r.monitor { "monitor: shown, not counted".to_string() } else { format!("counted {:+.1}", r.score) };
        s.push_str(&format!("\n  {}  [group {group}, default weight {}, {counted}]", r.id, fmt_score(default)));
        s.push_str(&format!("\n      rule:     {desc}"));
        s.push_str(&format!("\n      evidence: {}", r.evidence));
    }
    let t = &engine.config.actions;
    s.push_str(&format!(
        "\n  thresholds: tag {} / quarantine {} / reject {} (a brand's [brand.actions] may override)",
        fmt_score(t.tag),
        fmt_score(t.quarantine),
        fmt_score(t.reject)
    ));
    s.push_str(&format!("\n  decided by: {}", v.decided_by));
    s.push_str(&auth.text());
    s
}

/// Human-readable explanation of a verdict.
pub fn explain(file: &str, v: &Verdict) -> String {
    let mut s = format!("{file}\n  action: {}", v.header_value());
    s.push_str(&format!("\n  score:  {}", fmt_score(v.score)));
    if let Some(b) = &v.brand {
        s.push_str(&format!("\n  brand:  {b}"));
    }
    if v.rules.is_empty() {
        s.push_str("\n  rules:  none");
    }
    for r in &v.rules {
        let m = if r.monitor { " (monitor: not counted)" } else { "" };
        s.push_str(&format!("\n  {:<32} {:>+6.1}  {}{m}", r.id, r.score, r.evidence));
    }
    s.push_str(&format!("\n  decided by: {}", v.decided_by));
    s
}

/// One message for `scan`: a file, or one message of an mbox file.
#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    File(PathBuf),
    /// The `index`th message (from 1) of the mbox `path`, already split out and unescaped.
    Mbox {
        path: PathBuf,
        index: usize,
        raw: Vec<u8>,
    },
}

impl Item {
    /// How the message is named in scan's output: the file, or `mbox#N`.
    pub fn name(&self) -> String {
        match self {
            Item::File(p) => p.display().to_string(),
            Item::Mbox { path, index, .. } => format!("{}#{index}", path.display()),
        }
    }
}

/// Every message under `paths`: a file as given (an mbox when it starts with a `From ` line), directories
/// walked for `*.eml`, Maildir folders (every file in `cur/` and `new/`) and mbox files (`*.mbox`, or
/// any file that starts with a `From ` line). An error when nothing yields a message.
pub fn collect_files(paths: &[PathBuf]) -> Result<Vec<Item>, String> {
    let mut out = Vec::new();
    for p in paths {
        let meta = std::fs::metadata(p).map_err(|e| format!("{}: {e}", p.display()))?;
        if meta.is_dir() {
            let maildir = matches!(p.file_name().and_then(|n| n.to_str()), Some("cur" | "new"));
            walk(p, maildir, &mut out).map_err(|e| format!("{}: {e}", p.display()))?;
        } else if starts_with_from_line(p) {
            push_mbox(p, &mut out)?;
        } else {
            out.push(Item::File(p.clone()));
        }
    }
    if out.is_empty() {
        let names = paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ");
        return Err(format!("no message found in {names} (looked for *.eml files, Maildir cur/ and new/, mbox files)"));
    }
    Ok(out)
}

/// `maildir`: `dir` is a Maildir's `cur/` or `new/`, where every file is a message.
fn walk(dir: &Path, maildir: bool, out: &mut Vec<Item>) -> std::io::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    let is_maildir_root = entries.iter().any(|e| e.file_name() == "cur") && entries.iter().any(|e| e.file_name() == "new");
    for e in entries {
        let p = e.path();
        let name = e.file_name();
        let name = name.to_string_lossy();
        if e.file_type()?.is_dir() {
            // a Maildir's tmp/ holds messages still being delivered
            if is_maildir_root && name == "tmp" {
                continue;
            }
            walk(&p, is_maildir_root && (name == "cur" || name == "new"), out)?;
        } else if (maildir && !name.starts_with('.')) || p.extension().is_some_and(|x| x.eq_ignore_ascii_case("eml")) {
            out.push(Item::File(p));
        } else if p.extension().is_some_and(|x| x.eq_ignore_ascii_case("mbox")) || starts_with_from_line(&p) {
            push_mbox(&p, out).map_err(std::io::Error::other)?;
        }
    }
    Ok(())
}

fn starts_with_from_line(p: &Path) -> bool {
    let mut head = [0u8; 5];
    std::fs::File::open(p).and_then(|mut f| std::io::Read::read_exact(&mut f, &mut head)).is_ok() && &head == b"From "
}

fn push_mbox(p: &Path, out: &mut Vec<Item>) -> Result<(), String> {
    let data = std::fs::read(p).map_err(|e| format!("{}: cannot read: {e}", p.display()))?;
    for (i, raw) in split_mbox(&data).into_iter().enumerate() {
        out.push(Item::Mbox { path: p.to_path_buf(), index: i + 1, raw });
    }
    Ok(())
}

/// Splits an mbox into its messages: each starts at a `From ` line at the start of the file or after an
/// empty line; the `From ` line itself is dropped and `>From ` quoting (mboxrd, one `>` less) undone.
pub fn split_mbox(data: &[u8]) -> Vec<Vec<u8>> {
    let mut messages: Vec<Vec<u8>> = Vec::new();
    let mut current: Option<Vec<u8>> = None;
    let mut previous_blank = true;
    for line in data.split_inclusive(|&b| b == b'\n') {
        let content = line.strip_suffix(b"\n").unwrap_or(line);
        let content = content.strip_suffix(b"\r").unwrap_or(content);
        if previous_blank && line.starts_with(b"From ") {
            if let Some(m) = current.take() {
                messages.push(m);
            }
            current = Some(Vec::new());
            previous_blank = false;
            continue;
        }
        previous_blank = content.is_empty();
        let Some(m) = current.as_mut() else { continue };
        let quoted = line.iter().take_while(|&&b| b == b'>').count();
        if quoted > 0 && line.get(quoted..).is_some_and(|r| r.starts_with(b"From ")) {
            m.extend_from_slice(line.get(1..).unwrap_or_default());
        } else {
            m.extend_from_slice(line);
        }
    }
    if let Some(m) = current {
        messages.push(m);
    }
    // the empty line before a separator (and at the end) belongs to the mbox, not the message
    for m in &mut messages {
        if m.ends_with(b"\r\n\r\n") {
            m.truncate(m.len() - 2);
        } else if m.ends_with(b"\n\n") {
            m.truncate(m.len() - 1);
        }
    }
    messages.retain(|m| !m.iter().all(|b| b.is_ascii_whitespace()));
    messages
}

/// What a corpus is expected to be, for `scan --expect`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Expect {
    Phish,
    Ham,
}

/// The confusion summary of `scan --expect`: how many reached each action,
/// and the worst misses (phish accepted, ham flagged) with their rules.
pub fn expect_report(expect: Expect, results: &[(String, Result<Verdict, String>)]) -> String {
    let ok: Vec<(&String, &Verdict)> = results.iter().filter_map(|(f, r)| r.as_ref().ok().map(|v| (f, v))).collect();
    let n = ok.len().max(1) as f64;
    let count = |a: Action| ok.iter().filter(|(_, v)| v.action == a).count();
    let flagged = ok.iter().filter(|(_, v)| v.action != Action::Accept).count();
    let mut s = format!("expected {}: {} messages", if expect == Expect::Phish { "phish" } else { "ham" }, ok.len());
    for a in Action::ALL {
        s.push_str(&format!("\n  {:<12} {:>6}  {:>6.2}%", a.as_str(), count(a), 100.0 * count(a) as f64 / n));
    }
    let mut misses: Vec<&(&String, &Verdict)> = match expect {
        Expect::Phish => {
            s.push_str(&format!("\n  detected (tag or above): {} of {} ({:.1}%)", flagged, ok.len(), 100.0 * flagged as f64 / n));
            ok.iter().filter(|(_, v)| v.action == Action::Accept).collect()
        }
        Expect::Ham => {
            s.push_str(&format!("\n  false positives (tag or above): {} of {} ({:.2}%)", flagged, ok.len(), 100.0 * flagged as f64 / n));
            ok.iter().filter(|(_, v)| v.action != Action::Accept).collect()
        }
    };
    // phish: the misses closest to the threshold first; ham: the worst false positives first
    misses.sort_by(|a, b| b.1.score.partial_cmp(&a.1.score).unwrap_or(std::cmp::Ordering::Equal));
    let label = if expect == Expect::Phish { "top false negatives" } else { "top false positives" };
    if !misses.is_empty() {
        s.push_str(&format!("\n  {label}:"));
    }
    for (f, v) in misses.iter().take(10) {
        let rules = v.rules.iter().map(|r| format!("{}={}", r.id, fmt_score(r.score))).collect::<Vec<_>>().join(",");
        s.push_str(&format!(
            "\n    {:<10} {:>6}  {f}  {}",
            v.action.as_str(),
            fmt_score(v.score),
            if rules.is_empty() { "-".into() } else { rules }
        ));
    }
    s
}

/// `impostor scan`: analyses every file in parallel, prints one result per
/// message in input order and a summary. Returns the number of unreadable files.
pub fn scan(engine: &Engine, files: &[Item], json: bool, rt: Option<&tokio::runtime::Handle>, expect: Option<Expect>) -> usize {
    let env = Envelope::default();
    let checked: Vec<(String, Checked)> = files
        .par_iter()
        .map(|item| {
            let v = match item {
                Item::File(p) => check_file_auth(engine, p, &env, rt),
                Item::Mbox { raw, .. } => Ok(check_bytes_auth(engine, raw, &env, rt)),
            };
            (item.name(), v)
        })
        .collect();
    let reports: Vec<Option<AuthReport>> = checked.iter().map(|(_, r)| r.as_ref().ok().map(|(_, a)| a.clone())).collect();
    let results: Vec<(String, Result<Verdict, String>)> = checked.into_iter().map(|(f, r)| (f, r.map(|(v, _)| v))).collect();
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut per_action: BTreeMap<&'static str, usize> = Action::ALL.iter().map(|a| (a.as_str(), 0)).collect();
    let mut per_rule: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mut errors = 0;
    for ((file, r), auth) in results.iter().zip(&reports) {
        match r {
            Ok(v) => {
                *per_action.entry(v.action.as_str()).or_default() += 1;
                let mut seen: Vec<&str> = Vec::new();
                for f in &v.rules {
                    if !seen.contains(&f.id) {
                        seen.push(f.id);
                        *per_rule.entry(f.id).or_default() += 1;
                    }
                }
                let line = if json {
                    let none = AuthReport::new(None, None);
                    serde_json::to_string(&FileResult { file: file.clone(), verdict: v, auth: auth.as_ref().unwrap_or(&none) })
                        .unwrap_or_default()
                } else {
                    let rules = v.rules.iter().map(|r| r.id).collect::<Vec<_>>().join(",");
                    format!("{:<10} {:>6} {file} {rules}", v.action.as_str(), fmt_score(v.score))
                };
                let _ = writeln!(out, "{line}");
            }
            Err(e) => {
                errors += 1;
                eprintln!("impostor: {e}");
            }
        }
    }
    let _ = out.flush();
    let mut summary = format!("scanned {} messages ({} unreadable)", results.len() - errors, errors);
    for (a, n) in &per_action {
        summary.push_str(&format!("\n  {a:<12} {n}"));
    }
    if !per_rule.is_empty() {
        summary.push_str("\n  rules (messages):");
        for (r, n) in &per_rule {
            summary.push_str(&format!("\n    {r:<32} {n}"));
        }
    }
    if let Some(e) = expect {
        summary.push('\n');
        summary.push_str(&expect_report(e, &results));
    }
    if json {
        eprintln!("{summary}");
    } else {
        let _ = writeln!(std::io::stdout(), "{summary}");
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The first blank line, found byte by byte: the reference for `find_header_end`.
    fn header_end_by_windows(raw: &[u8]) -> Option<usize> {
        let crlf = raw.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4);
        let lf = raw.windows(2).position(|w| w == b"\n\n").map(|p| p + 2);
        crlf.into_iter().chain(lf).min()
    }

    #[test]
    fn header_end_is_the_first_blank_line_of_either_kind() {
        assert_eq!(find_header_end(b"A: 1\r\nB: 2\r\n\r\nbody\n\n"), Some(14));
        assert_eq!(find_header_end(b"A: 1\nB: 2\n\nbody\r\n\r\n"), Some(11));
        assert_eq!(find_header_end(b"A: 1\r\n\nbody"), Some(7));
        assert_eq!(find_header_end(b"A: 1\r\nB: 2\r\n"), None);
        // every short text over the bytes that matter, against the byte-by-byte reference
        let alphabet = [b'\r', b'\n', b'a'];
        for len in 0..=7u32 {
            for n in 0..3usize.pow(len) {
                let text: Vec<u8> = (0..len).map(|i| alphabet[n / 3usize.pow(i) % 3]).collect();
                assert_eq!(find_header_end(&text), header_end_by_windows(&text), "{text:?}");
            }
        }
    }

    #[test]
    fn mbox_split_drops_separators_and_unquotes() {
        let mbox =
            b"From a@x Thu Nov 14 10:00:00 2024\nSubject: one\n\nbody\n\nFrom b@y Thu Nov 14 10:00:01 2024\r\nSubject: two\r\n\r\nbody\r\n";
        let m = split_mbox(mbox);
        assert_eq!(m.len(), 2, "{m:?}");
        assert_eq!(String::from_utf8_lossy(&m[0]), "Subject: one\n\nbody\n");
        assert_eq!(String::from_utf8_lossy(&m[1]), "Subject: two\r\n\r\nbody\r\n");
        let two = split_mbox(b"From a@x Thu\nSubject: one\n\nbody\n>From quoted\n>>From twice\nFrom mid-line is kept\n\n");
        assert_eq!(two.len(), 1);
        assert_eq!(String::from_utf8_lossy(&two[0]), "Subject: one\n\nbody\nFrom quoted\n>From twice\nFrom mid-line is kept\n");
        assert!(split_mbox(b"no separator at all\n").is_empty());
    }

    #[test]
    fn body_cap_keeps_headers_and_marks_truncation() {
        let raw = b"Subject: x\r\n\r\n0123456789";
        let (r, t) = cap_body(raw, 4);
        assert!(t);
        assert_eq!(r, b"Subject: x\r\n\r\n0123");
        let (r, t) = cap_body(raw, 100);
        assert!(!t);
        assert_eq!(r.len(), raw.len());
    }
}
