//! `impostor scan --compare OTHER.toml`: which verdicts change between two
//! configurations over the same corpus, the question before a weight or
//! threshold change is deployed.

use crate::analysis::{Engine, Envelope};
use crate::cli::{check_bytes_auth, check_file_auth, Item};
use crate::verdict::{fmt_score, Verdict};
use rayon::prelude::*;
use std::collections::BTreeMap;
use std::io::Write;

/// One message whose verdict differs.
#[derive(Debug, serde::Serialize)]
pub struct Change {
    pub file: String,
    pub before: &'static str,
    pub after: &'static str,
    pub score_before: f64,
    pub score_after: f64,
    /// Rule ids that fire only under the other configuration, or only under this one.
    pub added: Vec<&'static str>,
    pub removed: Vec<&'static str>,
}

fn ids(v: &Verdict) -> Vec<&'static str> {
    let mut ids: Vec<&'static str> = v.rules.iter().map(|r| r.id).collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// The change between `a` (this configuration) and `b` (the other), if the action, the score or the rules differ.
pub fn change(file: String, a: &Verdict, b: &Verdict) -> Option<Change> {
    let (ra, rb) = (ids(a), ids(b));
    let added: Vec<_> = rb.iter().filter(|r| !ra.contains(r)).copied().collect();
    let removed: Vec<_> = ra.iter().filter(|r| !rb.contains(r)).copied().collect();
    let same = a.action == b.action && fmt_score(a.score) == fmt_score(b.score) && added.is_empty() && removed.is_empty();
    (!same).then(|| Change {
        file,
        before: a.action.as_str(),
        after: b.action.as_str(),
        score_before: a.score,
        score_after: b.score,
        added,
        removed,
    })
}

/// Both verdicts of one message, or why it could not be read.
type Pair = Result<(Verdict, Verdict), String>;

/// Analyses every message under both engines; prints each change (a JSON object per
/// line with `json`) and a summary. Returns the number of unreadable files.
pub fn compare(a: &Engine, b: &Engine, other: &str, files: &[Item], json: bool, rt: Option<&tokio::runtime::Handle>) -> usize {
    let env = Envelope::default();
    let run = |engine: &Engine, item: &Item| match item {
        Item::File(p) => check_file_auth(engine, p, &env, rt).map(|(v, _)| v),
        Item::Mbox { raw, .. } => Ok(check_bytes_auth(engine, raw, &env, rt).0),
    };
    let results: Vec<(String, Pair)> =
        files.par_iter().map(|item| (item.name(), run(a, item).and_then(|va| run(b, item).map(|vb| (va, vb))))).collect();
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let (mut errors, mut compared, mut changed, mut action_changed) = (0, 0, 0, 0);
    let mut transitions: BTreeMap<(&'static str, &'static str), usize> = BTreeMap::new();
    for (file, r) in results {
        let (va, vb) = match r {
            Ok(v) => v,
            Err(e) => {
                errors += 1;
                eprintln!("impostor: {e}");
                continue;
            }
        };
        compared += 1;
        let Some(c) = change(file, &va, &vb) else { continue };
        changed += 1;
        if c.before != c.after {
            action_changed += 1;
            *transitions.entry((c.before, c.after)).or_default() += 1;
        }
        let line = if json {
            serde_json::to_string(&c).unwrap_or_default()
        } else {
            let rules: Vec<String> = c.added.iter().map(|r| format!("+{r}")).chain(c.removed.iter().map(|r| format!("-{r}"))).collect();
            format!(
                "{:<10} -> {:<10} {:>6} -> {:<6} {}  {}",
                c.before,
                c.after,
                fmt_score(c.score_before),
                fmt_score(c.score_after),
                c.file,
                if rules.is_empty() { "-".to_string() } else { rules.join(" ") }
            )
        };
        let _ = writeln!(out, "{line}");
    }
    let _ = out.flush();
    let mut summary =
        format!("compared {compared} messages with {other} ({errors} unreadable): {changed} changed, {action_changed} of them in action");
    for ((from, to), n) in &transitions {
        summary.push_str(&format!("\n  {from:<10} -> {to:<10} {n}"));
    }
    if json {
        eprintln!("{summary}");
    } else {
        let _ = writeln!(std::io::stdout(), "{summary}");
    }
    errors
}
