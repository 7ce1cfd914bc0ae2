//! Long phrases found anywhere in a text: the search over the text with its
//! spaces removed ([`super::phrases`]), where words have no boundaries left.
//!
//! The patterns are long (at least [`WINDOW`] bytes; the phrases searched this
//! way have [`super::phrases::COMPACT_MIN`] letters or more), so every
//! occurrence starts with one of a small set of 8-byte windows. At each offset
//! of the text the next 8 bytes are read as one integer, hashed, and tested
//! against a 64 Kibit filter of the patterns' first windows (8 KiB, resident in
//! the first-level cache); only where the filter answers (~2 % of offsets for
//! the shipped phrases) is a table of windows consulted and each pattern filed
//! there compared byte by byte. A byte-level Aho–Corasick DFA over the same
//! ~1,600 patterns is 5.9 MB of transitions, one random cache line per byte of
//! text: under an MTA's load, with the caches shared, most of those are misses.
//!
//! [`CompactIndex::find`] reports exactly what an overlapping Aho–Corasick
//! search (`MatchKind::Standard`) reports, in its order: by end offset, then
//! longest first, then by pattern number. Unit tests hold it to the automaton.

use rustc_hash::FxHashMap;

/// The bytes read at each offset; patterns must be at least this long.
pub const WINDOW: usize = 8;

const FILTER_BITS: u32 = 16;

/// Byte patterns (each at least [`WINDOW`] bytes), searched for anywhere in a text.
#[derive(Debug, Clone)]
pub struct CompactIndex {
    pats: Vec<Box<[u8]>>,
    /// Bit `hash(window)` set for each pattern's first window.
    filter: Box<[u64; 1 << (FILTER_BITS - 6)]>,
    /// First window → the patterns starting with it, in pattern order.
    by_window: FxHashMap<u64, Vec<u32>>,
}

/// A pattern found: its number and the offset just past its last byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompactMatch {
    pub id: usize,
    pub end: usize,
}

fn window(b: &[u8]) -> u64 {
    let mut w = [0u8; WINDOW];
    w.copy_from_slice(&b[..WINDOW]);
    u64::from_le_bytes(w)
}

fn slot(w: u64) -> usize {
    (w.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> (64 - FILTER_BITS)) as usize
}

impl CompactIndex {
    /// `pats` in pattern-number order. A pattern shorter than [`WINDOW`] bytes is an error
    /// (the caller's minimum length keeps the shipped and custom phrases above it).
    pub fn new<S: AsRef<[u8]>>(pats: &[S]) -> Result<CompactIndex, String> {
        let mut ix = CompactIndex { pats: Vec::new(), filter: Box::new([0; 1 << (FILTER_BITS - 6)]), by_window: FxHashMap::default() };
        for (i, p) in pats.iter().enumerate() {
            let p = p.as_ref();
            if p.len() < WINDOW {
                return Err(format!("pattern {:?} is shorter than {WINDOW} bytes", String::from_utf8_lossy(p)));
            }
            let w = window(p);
            let s = slot(w);
            ix.filter[s >> 6] |= 1 << (s & 63);
            ix.by_window.entry(w).or_default().push(u32::try_from(i).map_err(|_| "too many patterns".to_string())?);
            ix.pats.push(p.into());
        }
        Ok(ix)
    }

    pub fn is_empty(&self) -> bool {
        self.pats.is_empty()
    }

    #[cfg(test)]
    pub(super) fn patterns(&self) -> &[Box<[u8]>] {
        &self.pats
    }

    /// Every occurrence of every pattern in `text`, overlapping ones included, ordered by
    /// end offset, then longest first, then by pattern number.
    pub fn find(&self, text: &str) -> Vec<CompactMatch> {
        let b = text.as_bytes();
        let mut out: Vec<(usize, usize, usize)> = Vec::new();
        for (i, win) in b.windows(WINDOW).enumerate() {
            let w = window(win);
            let s = slot(w);
            if self.filter[s >> 6] & (1 << (s & 63)) == 0 {
                continue;
            }
            let Some(ids) = self.by_window.get(&w) else { continue };
            for &id in ids {
                let p = &self.pats[id as usize];
                if b[i..].starts_with(p) {
                    out.push((i + p.len(), p.len(), id as usize));
                }
            }
        }
        out.sort_unstable_by_key(|&(end, len, id)| (end, std::cmp::Reverse(len), id));
        out.into_iter().map(|(end, _, id)| CompactMatch { id, end }).collect()
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::analysis::content::tests::xorshift;
    use aho_corasick::{AhoCorasick, AhoCorasickBuilder, AhoCorasickKind, MatchKind};

    /// The automaton this index replaces, over `pats`.
    pub(in crate::analysis::content) fn automaton<S: AsRef<[u8]>>(pats: &[S]) -> AhoCorasick {
        AhoCorasickBuilder::new().match_kind(MatchKind::Standard).kind(Some(AhoCorasickKind::DFA)).build(pats).unwrap()
    }

    /// What the automaton finds in `text`, as [`CompactIndex::find`] reports it.
    pub(in crate::analysis::content) fn overlapping(ac: &AhoCorasick, text: &str) -> Vec<CompactMatch> {
        ac.find_overlapping_iter(text).map(|m| CompactMatch { id: m.pattern().as_usize(), end: m.end() }).collect()
    }

    fn oracle(pats: &[&str], text: &str) -> Vec<CompactMatch> {
        overlapping(&automaton(pats), text)
    }

    const PATS: &[&str] = &[
        "verifyyouraccount",
        "youraccountsuspended",
        "accountsuspended",
        "verifyyour",
        "countsuspended",
        "verifyyouraccount",
        "suspendedtoday",
        "motdepasseexpire",
        "étésuspendu",
        "passwordexpired",
        "passwordexpiredtoday",
        "aaaaaaaa",
        "aaaaaaaaa",
        "abababababab",
    ];

    #[test]
    fn finds_what_the_automaton_finds_in_its_order() {
        let ix = CompactIndex::new(PATS).unwrap();
        let texts = [
            "",
            "short",
            "verifyyouraccount",
            "pleaseverifyyouraccountsuspendedtoday",
            "youraccountsuspendedyouraccountsuspended",
            "votremotdepasseexpireaétésuspendu",
            "passwordexpiredtodaypasswordexpired",
            "aaaaaaaaaaaaaaaaaaaaa",
            "abababababababababababab",
            "verifyyouraccoun",
            "éééééééééétésuspendu",
        ];
        for t in texts {
            assert_eq!(ix.find(t), oracle(PATS, t), "{t:?}");
        }
    }

    #[test]
    fn generated_texts_match_the_automaton() {
        // pieces of the patterns run together, cut and repeated, as compact text is
        let mut pieces: Vec<String> = Vec::new();
        for p in PATS {
            let cs: Vec<char> = p.chars().collect();
            for k in [0, 3, 6, cs.len() / 2] {
                pieces.push(cs[k.min(cs.len())..].iter().collect());
                pieces.push(cs[..cs.len() - k.min(cs.len())].iter().collect());
            }
        }
        pieces.extend(["a", "b", "x", "é", "ab", "zz"].map(String::from));
        let ix = CompactIndex::new(PATS).unwrap();
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..5000 {
            let n = (seed % 9) as usize;
            let mut t = String::new();
            for _ in 0..n {
                t.push_str(&pieces[(xorshift(&mut seed) % pieces.len() as u64) as usize]);
            }
            seed = seed.wrapping_add(0x2545_f491);
            assert_eq!(ix.find(&t), oracle(PATS, &t), "{t:?}");
        }
    }

    #[test]
    fn short_patterns_are_refused() {
        let e = CompactIndex::new(&["verify"]).unwrap_err();
        assert!(e.contains("\"verify\"") && e.contains("8 bytes"), "{e}");
    }
}
