//! The hold queue behind a trait ([`Queue`]; [`crate::quarantine::Postfix`] in production), and
//! the cache of what the list view shows per held message ([`Summary`]), keyed by queue id and
//! arrival time: one `postqueue -j` pass per list request, and only messages not yet seen are
//! read (in batches of [`BATCH`] per `postcat` run) and analysed.

use crate::analysis::{Engine, Envelope};
use crate::quarantine::{Held, Postfix};
use rayon::prelude::*;
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

/// Messages read per `postcat -q` run.
pub const BATCH: usize = 200;
/// Rows per list page.
pub const PAGE_SIZE: usize = 50;

/// What the review page needs of the MTA's hold queue.
pub trait Queue: Send + Sync + 'static {
    /// The held messages (envelope only).
    fn held(&self) -> Result<Vec<Held>, String>;
    /// Header and body of these held messages; ids no longer held are left out.
    fn messages(&self, ids: &[String]) -> Result<Vec<(String, Vec<u8>)>, String>;
    fn release(&self, id: &str) -> Result<(), String>;
    fn delete(&self, id: &str) -> Result<(), String>;
}

impl Queue for Postfix {
    fn held(&self) -> Result<Vec<Held>, String> {
        Postfix::held(self)
    }
    fn messages(&self, ids: &[String]) -> Result<Vec<(String, Vec<u8>)>, String> {
        Postfix::messages(self, ids)
    }
    fn release(&self, id: &str) -> Result<(), String> {
        Postfix::release(self, id)
    }
    fn delete(&self, id: &str) -> Result<(), String> {
        Postfix::delete(self, id)
    }
}

/// One row of the list view.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub queue_id: String,
    pub arrival_time: i64,
    /// The From header's domain (the envelope sender's when From has none), lowercase.
    pub sender_domain: String,
    /// The envelope sender (MAIL FROM).
    pub sender: String,
    pub recipients: Vec<String>,
    pub subject: String,
    /// `X-Impostor-Verdict` as held (`quarantine`), or empty for a message impostor did not hold.
    pub verdict: String,
    /// `X-Impostor-Score` as held.
    pub score: Option<f64>,
    /// Rule ids of `X-Impostor-Rules` as held.
    pub rules: Vec<String>,
    /// The brand the message claims (offline analysis of the held copy with the current configuration).
    pub brand: Option<String>,
}

/// The envelope of a held message, for the offline analysis.
pub fn envelope(h: &Held) -> Envelope {
    envelope_of(&h.queue_id, &h.sender, &h.recipients)
}

/// The envelope of a held message as far as the queue records it (no client address).
pub fn envelope_of(queue_id: &str, sender: &str, recipients: &[String]) -> Envelope {
    Envelope {
        mail_from: Some(sender.to_string()),
        rcpt_to: recipients.to_vec(),
        queue_id: Some(queue_id.to_string()),
        ..Default::default()
    }
}

fn domain_of(addr: &str) -> String {
    addr.rsplit_once('@').map(|(_, d)| d).unwrap_or("").trim_end_matches('>').to_ascii_lowercase()
}

/// Builds the list row of one held message from its queued copy.
pub fn summarize(engine: &Engine, h: &Held, raw: &[u8]) -> Summary {
    let mut verdict = String::new();
    let mut score = None;
    let mut rules = Vec::new();
    for (name, value) in crate::auth::header_fields(raw) {
        match name.to_ascii_lowercase().as_str() {
            "x-impostor-verdict" if verdict.is_empty() => verdict = value.trim().to_string(),
            "x-impostor-score" if score.is_none() => score = value.trim().parse::<f64>().ok(),
            "x-impostor-rules" if rules.is_empty() => {
                rules = value
                    .split(',')
                    .filter_map(|r| r.trim().split('=').next().map(str::to_string))
                    .filter(|r| !r.is_empty() && r != "none")
                    .collect()
            }
            _ => {}
        }
    }
    let parsed = mail_parser::MessageParser::default().parse_headers(raw);
    let subject = parsed.as_ref().and_then(|m| m.subject()).unwrap_or("").to_string();
    let from = parsed.as_ref().and_then(|m| m.from()).and_then(|a| a.first()).and_then(|a| a.address()).map(domain_of);
    if let Some(m) = parsed {
        crate::message::drop_flat(m);
    }
    let sender_domain = from.filter(|d| !d.is_empty()).unwrap_or_else(|| domain_of(&h.sender));
    let v = crate::cli::check_bytes(engine, raw, &envelope(h), None);
    Summary {
        queue_id: h.queue_id.clone(),
        arrival_time: h.arrival_time,
        sender_domain,
        sender: h.sender.clone(),
        recipients: h.recipients.clone(),
        subject,
        verdict,
        score,
        rules,
        brand: v.brand,
    }
}

/// The list rows by queue id, kept across requests.
#[derive(Default)]
pub struct Cache {
    rows: Mutex<HashMap<String, Arc<Summary>>>,
    /// One refresh at a time: a second one waits and then finds the rows the first one read.
    refreshing: Mutex<()>,
}

impl Cache {
    /// The hold queue now: one `held()` pass, then the messages not cached yet (or whose
    /// arrival time changed: a queue id reused) are read and analysed. Oldest first.
    pub fn refresh(&self, queue: &dyn Queue, engine: &Engine) -> Result<Vec<Arc<Summary>>, String> {
        let _one = self.refreshing.lock().unwrap_or_else(|e| e.into_inner());
        let held = queue.held()?;
        let missing: Vec<&Held> = {
            let rows = self.rows.lock().unwrap_or_else(|e| e.into_inner());
            held.iter().filter(|h| rows.get(&h.queue_id).is_none_or(|r| r.arrival_time != h.arrival_time)).collect()
        };
        let by_id: HashMap<&str, &Held> = missing.iter().map(|h| (h.queue_id.as_str(), *h)).collect();
        let mut fresh = Vec::new();
        for chunk in missing.chunks(BATCH) {
            let ids: Vec<String> = chunk.iter().map(|h| h.queue_id.clone()).collect();
            let msgs = queue.messages(&ids)?;
            fresh.par_extend(msgs.par_iter().filter_map(|(id, raw)| by_id.get(id.as_str()).map(|h| Arc::new(summarize(engine, h, raw)))));
        }
        let mut rows = self.rows.lock().unwrap_or_else(|e| e.into_inner());
        for s in fresh {
            rows.insert(s.queue_id.clone(), s);
        }
        let live: std::collections::HashSet<&str> = held.iter().map(|h| h.queue_id.as_str()).collect();
        rows.retain(|id, _| live.contains(id.as_str()));
        Ok(held.iter().filter_map(|h| rows.get(&h.queue_id).cloned()).collect())
    }

    /// The cached row of one message.
    pub fn get(&self, id: &str) -> Option<Arc<Summary>> {
        self.rows.lock().unwrap_or_else(|e| e.into_inner()).get(id).cloned()
    }

    /// Forgets one message (after it was released or deleted).
    pub fn forget(&self, id: &str) {
        self.rows.lock().unwrap_or_else(|e| e.into_inner()).remove(id);
    }
}

/// Sort order of the list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Sort {
    /// Newest first.
    #[default]
    Time,
    /// Oldest first.
    Oldest,
    /// Highest score first.
    Score,
}

/// The list view's query: filters, sort, page (1-based).
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize)]
#[serde(default)]
pub struct Filter {
    pub brand: String,
    pub rule: String,
    pub domain: String,
    pub sort: Sort,
    pub page: usize,
    /// Shown once after an action (`released 4dXk…`).
    pub notice: String,
}

/// One page of the list.
#[derive(Debug, Clone, PartialEq)]
pub struct Selection {
    pub rows: Vec<Arc<Summary>>,
    /// Rows that pass the filters.
    pub matched: usize,
    /// Held messages in all.
    pub total: usize,
    pub page: usize,
    pub pages: usize,
    /// Every brand and rule id among the held messages, for the filter menus.
    pub brands: Vec<String>,
    pub rule_ids: Vec<String>,
}

/// Filters, sorts and pages the rows. `domain` matches the sender domain or a parent of it.
pub fn select(all: &[Arc<Summary>], f: &Filter) -> Selection {
    let brand = f.brand.trim();
    let rule = f.rule.trim();
    let domain = f.domain.trim().trim_start_matches('@').to_ascii_lowercase();
    let mut rows: Vec<Arc<Summary>> = all
        .iter()
        .filter(|s| brand.is_empty() || s.brand.as_deref().is_some_and(|b| b.eq_ignore_ascii_case(brand)))
        .filter(|s| rule.is_empty() || s.rules.iter().any(|r| r.eq_ignore_ascii_case(rule)))
        .filter(|s| domain.is_empty() || s.sender_domain == domain || s.sender_domain.ends_with(&format!(".{domain}")))
        .cloned()
        .collect();
    match f.sort {
        Sort::Time => rows.sort_by(|a, b| b.arrival_time.cmp(&a.arrival_time).then_with(|| a.queue_id.cmp(&b.queue_id))),
        Sort::Oldest => rows.sort_by(|a, b| a.arrival_time.cmp(&b.arrival_time).then_with(|| a.queue_id.cmp(&b.queue_id))),
        Sort::Score => rows.sort_by(|a, b| {
            let (x, y) = (a.score.unwrap_or(f64::NEG_INFINITY), b.score.unwrap_or(f64::NEG_INFINITY));
            y.total_cmp(&x).then_with(|| b.arrival_time.cmp(&a.arrival_time))
        }),
    }
    let matched = rows.len();
    let pages = matched.div_ceil(PAGE_SIZE).max(1);
    let page = f.page.clamp(1, pages);
    let rows: Vec<_> = rows.into_iter().skip((page - 1) * PAGE_SIZE).take(PAGE_SIZE).collect();
    let brands: BTreeSet<String> = all.iter().filter_map(|s| s.brand.clone()).collect();
    let rule_ids: BTreeSet<String> = all.iter().flat_map(|s| s.rules.iter().cloned()).collect();
    Selection {
        rows,
        matched,
        total: all.len(),
        page,
        pages,
        brands: brands.into_iter().collect(),
        rule_ids: rule_ids.into_iter().collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str, t: i64, score: f64, brand: Option<&str>, domain: &str, rules: &[&str]) -> Arc<Summary> {
        Arc::new(Summary {
            queue_id: id.into(),
            arrival_time: t,
            sender_domain: domain.into(),
            sender: format!("s@{domain}"),
            recipients: vec!["r@x.example".into()],
            subject: format!("s {id}"),
            verdict: "quarantine".into(),
            score: Some(score),
            rules: rules.iter().map(|r| r.to_string()).collect(),
            brand: brand.map(str::to_string),
        })
    }

    #[test]
    fn filters_sort_and_pages() {
        let mut all = Vec::new();
        for i in 0..120 {
            let brand = if i % 2 == 0 { Some("OpenAI") } else { Some("PayPal") };
            let rules: &[&str] = if i % 3 == 0 { &["LOOKALIKE_FROM_DOMAIN"] } else { &["BRAND_NAME_FOREIGN_DOMAIN"] };
            let domain = if i % 5 == 0 { "mail.evil.example" } else { "other.example" };
            all.push(row(&format!("ID{i:03}"), 1000 + i, (i % 17) as f64, brand, domain, rules));
        }
        let s = select(&all, &Filter::default());
        assert_eq!((s.total, s.matched, s.pages, s.page, s.rows.len()), (120, 120, 3, 1, 50));
        assert_eq!(s.rows[0].queue_id, "ID119", "newest first");
        let last = select(&all, &Filter { page: 9, ..Default::default() });
        assert_eq!((last.page, last.rows.len()), (3, 20), "a page past the end shows the last");
        let f =
            Filter { brand: "openai".into(), rule: "LOOKALIKE_FROM_DOMAIN".into(), domain: "evil.example".into(), ..Default::default() };
        let s = select(&all, &f);
        // even, multiple of 3 and of 5: multiples of 30
        assert_eq!(s.rows.iter().map(|r| r.queue_id.as_str()).collect::<Vec<_>>(), ["ID090", "ID060", "ID030", "ID000"]);
        let s = select(&all, &Filter { sort: Sort::Score, ..Default::default() });
        assert_eq!(s.rows[0].score, Some(16.0));
        assert!(s.rows.windows(2).all(|w| w[0].score >= w[1].score));
        assert_eq!(s.brands, ["OpenAI", "PayPal"]);
        assert_eq!(s.rule_ids, ["BRAND_NAME_FOREIGN_DOMAIN", "LOOKALIKE_FROM_DOMAIN"]);
        assert_eq!(
            select(&all, &Filter { domain: "vil.example".into(), ..Default::default() }).matched,
            0,
            "a parent domain, not a suffix"
        );
    }
}
