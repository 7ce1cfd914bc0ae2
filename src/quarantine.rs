//! Quarantine review for Postfix: impostor's verdicts on the messages in the
//! hold queue, and release / delete. Thin wrappers around Postfix's own tools
//! (`postqueue -j`, `postcat -q`, `postsuper -H` / `-d`); nothing else touches
//! the queue.

use serde::Serialize;
use std::process::Command;

/// One held message, with impostor's verdict headers.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Held {
    pub queue_id: String,
    pub arrival_time: i64,
    pub sender: String,
    pub recipients: Vec<String>,
    pub verdict: Option<String>,
    pub score: Option<String>,
    pub rules: Option<String>,
    pub from: Option<String>,
    pub subject: Option<String>,
}

/// Where Postfix lives: `-c DIR` for a non-default instance.
#[derive(Debug, Clone, Default)]
pub struct Postfix {
    pub config_dir: Option<String>,
}

impl Postfix {
    fn cmd(&self, prog: &str) -> Command {
        let mut c = Command::new(prog);
        if let Some(d) = &self.config_dir {
            c.args(["-c", d]);
        }
        c
    }

    fn run(&self, prog: &str, args: &[&str]) -> Result<String, String> {
        self.run_bytes(prog, args).map(|b| String::from_utf8_lossy(&b).into_owned())
    }

    fn run_bytes(&self, prog: &str, args: &[&str]) -> Result<Vec<u8>, String> {
        let out = self.cmd(prog).args(args).output().map_err(|e| format!("{prog}: {e} (is Postfix installed?)"))?;
        if !out.status.success() {
            let shown: Vec<&str> = args.iter().take(4).copied().collect();
            let more = if args.len() > 4 { format!(" … ({} arguments)", args.len()) } else { String::new() };
            return Err(format!("{prog} {}{more}: {}", shown.join(" "), String::from_utf8_lossy(&out.stderr).trim()));
        }
        Ok(out.stdout)
    }

    /// The hold queue as `postqueue -j` lists it (one pass), without reading any message.
    pub fn held(&self) -> Result<Vec<Held>, String> {
        let json = self.run("postqueue", &["-j"])?;
        let mut held = Vec::new();
        for line in json.lines().filter(|l| !l.trim().is_empty()) {
            let v: serde_json::Value = serde_json::from_str(line).map_err(|e| format!("postqueue -j: {e}"))?;
            if v["queue_name"] != "hold" {
                continue;
            }
            held.push(Held {
                queue_id: v["queue_id"].as_str().unwrap_or_default().to_string(),
                arrival_time: v["arrival_time"].as_i64().unwrap_or(0),
                sender: v["sender"].as_str().unwrap_or_default().to_string(),
                recipients: v["recipients"]
                    .as_array()
                    .map(|r| r.iter().filter_map(|x| x["address"].as_str().map(str::to_string)).collect())
                    .unwrap_or_default(),
                verdict: None,
                score: None,
                rules: None,
                from: None,
                subject: None,
            });
        }
        held.sort_by_key(|h| h.arrival_time);
        Ok(held)
    }

    /// A held message as queued, header and body (`postcat -bhq ID`).
    pub fn message(&self, id: &str) -> Result<Vec<u8>, String> {
        check_id(id)?;
        self.run_bytes("postcat", &["-bhq", id])
    }

    /// Many messages in one `postcat -q ID…` run: (id, header and body) for each that is still queued.
    /// Its output marks each message with `*** MESSAGE CONTENTS hold/ID ***` … `*** HEADER EXTRACTED
    /// hold/ID ***`; the markers name the queue id, which a sender cannot know in advance. When one
    /// id is gone (released meanwhile) the run fails: then each is read alone.
    pub fn messages(&self, ids: &[String]) -> Result<Vec<(String, Vec<u8>)>, String> {
        for id in ids {
            check_id(id)?;
        }
        let mut args = vec!["-q"];
        args.extend(ids.iter().map(String::as_str));
        match self.run_bytes("postcat", &args) {
            Ok(out) => Ok(split_postcat(&out)),
            Err(_) => Ok(ids.iter().filter_map(|id| self.message(id).ok().map(|m| (id.clone(), m))).collect()),
        }
    }

    /// Messages in the hold queue, oldest first, with impostor's verdict headers: one
    /// `postqueue -j` pass ([`Postfix::held`]), then the messages in batches of 200 per `postcat -q`
    /// run ([`Postfix::messages`]).
    pub fn list(&self) -> Result<Vec<Held>, String> {
        let mut held = self.held()?;
        for chunk in held.chunks_mut(200) {
            let ids: Vec<String> = chunk.iter().map(|h| h.queue_id.clone()).collect();
            let msgs: std::collections::HashMap<String, Vec<u8>> = self.messages(&ids)?.into_iter().collect();
            for h in chunk.iter_mut() {
                let Some(raw) = msgs.get(&h.queue_id) else { continue };
                for (name, value) in crate::auth::header_fields(raw) {
                    let slot = match name.to_ascii_lowercase().as_str() {
                        "x-impostor-verdict" => &mut h.verdict,
                        "x-impostor-score" => &mut h.score,
                        "x-impostor-rules" => &mut h.rules,
                        "from" => &mut h.from,
                        "subject" => &mut h.subject,
                        _ => continue,
                    };
                    slot.get_or_insert(value);
                }
            }
        }
        Ok(held)
    }

    /// The message's header block (`postcat -hq`).
    pub fn headers(&self, id: &str) -> Result<String, String> {
        check_id(id)?;
        let raw = self.run("postcat", &["-hq", id])?;
        // postcat prints "*** HEADER EXTRACTED ... ***" banners
        Ok(raw.lines().filter(|l| !l.starts_with("*** ")).collect::<Vec<_>>().join("\n") + "\n")
    }

    /// Releases a held message for delivery (`postsuper -H`). It is delivered
    /// as it was held: with its X-Impostor-* verdict headers.
    pub fn release(&self, id: &str) -> Result<(), String> {
        check_id(id)?;
        self.ensure_held(id)?;
        self.run("postsuper", &["-H", id])?;
        // deliver now rather than at the next queue run
        let _ = self.run("postqueue", &["-i", id]);
        Ok(())
    }

    /// Deletes a held message (`postsuper -d ID hold`).
    pub fn delete(&self, id: &str) -> Result<(), String> {
        check_id(id)?;
        self.ensure_held(id)?;
        self.run("postsuper", &["-d", id, "hold"])?;
        Ok(())
    }

    fn ensure_held(&self, id: &str) -> Result<(), String> {
        if self.held()?.iter().any(|h| h.queue_id == id) {
            Ok(())
        } else {
            Err(format!("{id}: not in the hold queue"))
        }
    }
}

/// Splits `postcat -q ID…` output into (queue id, message contents).
pub fn split_postcat(out: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut res = Vec::new();
    let mut cur: Option<(String, Vec<u8>)> = None;
    for line in out.split_inclusive(|b| *b == b'\n') {
        let text = line.strip_suffix(b"\n").unwrap_or(line);
        if let Some(rest) = text.strip_prefix(b"*** MESSAGE CONTENTS ").and_then(|r| r.strip_suffix(b" ***")) {
            let path = String::from_utf8_lossy(rest);
            let id = path.rsplit('/').next().unwrap_or("").to_string();
            cur = Some((id, Vec::new()));
            continue;
        }
        if let Some((id, body)) = &mut cur {
            if text.starts_with(b"*** HEADER EXTRACTED ") && text.ends_with(format!("/{id} ***").as_bytes()) {
                res.extend(cur.take());
                continue;
            }
            body.extend_from_slice(line);
        }
    }
    res
}

/// Postfix queue ids are alphanumeric; refuse anything else before it reaches a command line.
fn check_id(id: &str) -> Result<(), String> {
    if !id.is_empty() && id.len() <= 64 && id.chars().all(|c| c.is_ascii_alphanumeric()) {
        Ok(())
    } else {
        Err(format!("{id:?} is not a Postfix queue id"))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn queue_ids_are_checked_before_use() {
        assert!(super::check_id("4dXk2B0Zq1z").is_ok());
        assert!(super::check_id("ALL").is_ok());
        assert!(super::check_id("-d").is_err());
        assert!(super::check_id("x y").is_err());
        assert!(super::check_id("").is_err());
    }

    #[test]
    fn postcat_batches_split_on_markers_that_name_the_queue_id() {
        let out = b"*** ENVELOPE RECORDS hold/AAA ***\nsender: a@b\n*** MESSAGE CONTENTS hold/AAA ***\nSubject: one\n\n*** HEADER EXTRACTED hold/BBB ***\nbody\n*** HEADER EXTRACTED hold/AAA ***\n*** MESSAGE FILE END hold/AAA ***\n*** ENVELOPE RECORDS hold/BBB ***\n*** MESSAGE CONTENTS hold/BBB ***\nSubject: two\n\nx\n*** HEADER EXTRACTED hold/BBB ***\n";
        let got = super::split_postcat(out);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].0, "AAA");
        // a body line imitating another message's marker stays body
        assert_eq!(got[0].1, b"Subject: one\n\n*** HEADER EXTRACTED hold/BBB ***\nbody\n".to_vec());
        assert_eq!(got[1], ("BBB".to_string(), b"Subject: two\n\nx\n".to_vec()));
    }
}
