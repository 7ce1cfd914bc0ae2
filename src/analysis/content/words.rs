//! Whole-word phrase lookup over normalised text: every phrase that starts at
//! a word, found with one hash lookup per word instead of a byte automaton.
//!
//! The lure phrases and ask words ([`super::phrases`], [`super::asks`]) are
//! word sequences matched at word starts of the normalised text (words
//! separated by single spaces). A byte-level Aho–Corasick DFA over ~4,000
//! such phrases is several MiB of transition table, touched at every byte:
//! under load it is mostly cache misses. Here each phrase is filed under its
//! first word (or, for a one-word prefix phrase like `suspend*`, under
//! itself); a word of the text is hashed once and the few phrases filed
//! under it are compared byte by byte.
//!
//! [`WordIndex::find`] reports exactly the matches an overlapping
//! Aho–Corasick search for `" phrase"` reports over `" text "` (keeping those
//! that end at a space unless the phrase is a prefix), in the same order: by
//! end offset, then longest first, then by phrase number. A whole phrase
//! marked `trailing_space` is ordered as the pattern `" phrase "` (the ask
//! words' automaton). Unit tests hold it to both automata.

use rustc_hash::FxHashMap;

/// One phrase: its normalised bytes (single spaces) and whether its last word may continue.
#[derive(Debug, Clone)]
struct Pat {
    norm: Box<[u8]>,
    prefix: bool,
    /// Ordered as the pattern `" phrase "` (whole phrases only).
    trailing_space: bool,
}

/// The phrases that start with one (whole) word, in phrase order.
#[derive(Debug, Clone, Default)]
struct First {
    /// That word alone.
    alone: Vec<u32>,
    /// Second word (whole) → the phrases of two or more words with it.
    by_second: FxHashMap<Box<[u8]>, Vec<u32>>,
    /// Two words, the second a prefix (`account suspend*`).
    prefix_second: Vec<u32>,
}

/// The phrases of one kind, filed by first word.
#[derive(Debug, Clone)]
pub struct WordIndex {
    pats: Vec<Pat>,
    /// First word (whole) → the phrases starting with it, filed by their second word.
    by_first: FxHashMap<Box<[u8]>, First>,
    /// One-word prefix phrases: the word → phrases, in phrase order.
    by_prefix: FxHashMap<Box<[u8]>, Vec<u32>>,
    /// The distinct lengths of the one-word prefix phrases, ascending.
    prefix_lens: Vec<usize>,
    /// Per [`bucket`] of a word's first two bytes: bit `l` set when a phrase's first
    /// (whole) word of length `l` (31 for longer) falls in it. Most words of a text
    /// are not looked up at all.
    first_mask: Box<[u32; BUCKETS]>,
    /// The same for the one-word prefix phrases: which prefix lengths to try.
    prefix_mask: Box<[u32; BUCKETS]>,
}

const BUCKETS: usize = 4096;

/// The filter bucket of a word (its first two bytes).
fn bucket(w: &[u8]) -> usize {
    let (a, b) = (w[0] as usize, w.get(1).copied().unwrap_or(0) as usize);
    (a.wrapping_mul(31) ^ b.wrapping_mul(131)) % BUCKETS
}

fn len_bit(l: usize) -> u32 {
    1 << l.min(31)
}

/// The end of the word starting at `i` (the next space, or the end). Words are short: a plain loop beats a vectorised search.
fn word_end(b: &[u8], i: usize) -> usize {
    b[i..].iter().position(|&c| c == b' ').map_or(b.len(), |p| i + p)
}

/// A phrase found: its number and the byte offset of its first letter in the text searched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WordMatch {
    pub id: usize,
    pub start: usize,
    /// Offset just past the phrase's last byte.
    pub end: usize,
}

impl WordIndex {
    /// `phrases`: (normalised phrase, prefix, trailing_space) in phrase-number order. Empty phrases are never found.
    pub fn new<'a>(phrases: impl IntoIterator<Item = (&'a str, bool, bool)>) -> WordIndex {
        let mut ix = WordIndex {
            pats: Vec::new(),
            by_first: FxHashMap::default(),
            by_prefix: FxHashMap::default(),
            prefix_lens: Vec::new(),
            first_mask: Box::new([0; BUCKETS]),
            prefix_mask: Box::new([0; BUCKETS]),
        };
        for (i, (norm, prefix, trailing_space)) in phrases.into_iter().enumerate() {
            let id = u32::try_from(i).unwrap_or(u32::MAX);
            let b = norm.as_bytes();
            ix.pats.push(Pat { norm: b.into(), prefix, trailing_space });
            if b.is_empty() {
                continue;
            }
            let (first, rest) = match memchr::memchr(b' ', b) {
                Some(sp) => (&b[..sp], Some(&b[sp + 1..])),
                None if prefix => {
                    ix.by_prefix.entry(b.into()).or_default().push(id);
                    if !ix.prefix_lens.contains(&b.len()) {
                        ix.prefix_lens.push(b.len());
                    }
                    if b.len() == 1 {
                        // a word's second byte is free: every bucket
                        ix.prefix_mask.iter_mut().for_each(|m| *m |= len_bit(1));
                    } else {
                        ix.prefix_mask[bucket(b)] |= len_bit(b.len());
                    }
                    continue;
                }
                None => (b, None),
            };
            let f = ix.by_first.entry(first.into()).or_default();
            match rest {
                None => f.alone.push(id),
                Some(rest) => match memchr::memchr(b' ', rest) {
                    Some(sp) => f.by_second.entry(rest[..sp].into()).or_default().push(id),
                    None if prefix => f.prefix_second.push(id),
                    None => f.by_second.entry(rest.into()).or_default().push(id),
                },
            }
            ix.first_mask[bucket(first)] |= len_bit(first.len());
        }
        ix.prefix_lens.sort_unstable();
        ix
    }

    /// Every phrase starting at a word of `text` (words separated by spaces):
    /// a whole phrase ends at a space or the text's end, a prefix phrase
    /// anywhere. Ordered by end, then longest first, then by phrase number.
    pub fn find(&self, text: &str) -> Vec<WordMatch> {
        let b = text.as_bytes();
        let mut out: Vec<WordMatch> = Vec::new();
        let mut i = 0;
        while i < b.len() {
            if b[i] == b' ' {
                i += 1;
                continue;
            }
            let e = word_end(b, i);
            let word = &b[i..e];
            let k = bucket(word);
            if self.first_mask[k] & len_bit(word.len()) == 0 {
                // no phrase starts with a word like this one
            } else if let Some(f) = self.by_first.get(word) {
                out.extend(f.alone.iter().map(|&id| WordMatch { id: id as usize, start: i, end: e }));
                // the next word, right after one space
                let n = e + 1;
                if n < b.len() && b[e] == b' ' && b[n] != b' ' {
                    let ne = word_end(b, n);
                    let seconds = f.by_second.get(&b[n..ne]).map_or(&[][..], Vec::as_slice);
                    for &id in seconds.iter().chain(&f.prefix_second) {
                        let p = &self.pats[id as usize];
                        let end = i + p.norm.len();
                        if b[i..].starts_with(&p.norm) && (p.prefix || end == b.len() || b[end] == b' ') {
                            out.push(WordMatch { id: id as usize, start: i, end });
                        }
                    }
                }
            }
            let lens = self.prefix_mask[k];
            for &l in &self.prefix_lens {
                if l > word.len() {
                    break;
                }
                if lens & len_bit(l) == 0 {
                    continue;
                }
                if let Some(ids) = self.by_prefix.get(&word[..l]) {
                    out.extend(ids.iter().map(|&id| WordMatch { id: id as usize, start: i, end: i + l }));
                }
            }
            i = e;
        }
        // by end, longest first, by phrase number: the order an overlapping automaton reports them in
        let key = |m: &WordMatch| {
            let p = &self.pats[m.id];
            (m.end + usize::from(p.trailing_space && !p.prefix), m.start, m.id)
        };
        out.sort_unstable_by_key(key);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aho_corasick::{AhoCorasickBuilder, MatchKind};

    /// The automaton this index replaces: `" phrase"` over `" text "`, overlapping, whole last word unless prefix.
    fn oracle(phrases: &[(&str, bool)], text: &str, trailing_space: bool) -> Vec<WordMatch> {
        let pats: Vec<String> =
            phrases.iter().map(|(p, prefix)| if trailing_space && !prefix { format!(" {p} ") } else { format!(" {p}") }).collect();
        let ac = AhoCorasickBuilder::new().match_kind(MatchKind::Standard).build(&pats).unwrap();
        let hay = format!(" {text} ");
        let mut out = Vec::new();
        for m in ac.find_overlapping_iter(&hay) {
            let (_, prefix) = phrases[m.pattern().as_usize()];
            if phrases[m.pattern().as_usize()].0.is_empty() {
                continue;
            }
            // offsets in `text`: the automaton's match starts at the space before the phrase
            let end = m.end() - 1 - usize::from(trailing_space && !prefix);
            if trailing_space || prefix || hay.as_bytes().get(m.end()) == Some(&b' ') {
                out.push(WordMatch { id: m.pattern().as_usize(), start: m.start(), end });
            }
        }
        out
    }

    const PHRASES: &[(&str, bool)] = &[
        ("verify your password", false),
        ("verify", false),
        ("suspend", true),
        ("account suspend", true),
        ("your account", false),
        ("account", false),
        ("your", false),
        ("password", false),
        ("pass", true),
        ("code", false),
        ("zip code", false),
        ("mot de passe", false),
        ("de pass", true),
        ("verify", false),
        ("a", true),
        ("ab", true),
        ("abc", true),
        ("abc", false),
        ("ab cd", false),
        ("", false),
        ("é", true),
        ("été suspendu", false),
    ];

    #[test]
    fn finds_what_the_automaton_finds_in_its_order() {
        let texts = [
            "",
            "verify your password",
            "please verify your password now verify",
            "your account suspended your account suspend",
            "accounts suspend password passwords passe pass",
            "send the zip code and the code",
            "votre mot de passe mot de passer de passes",
            "a ab abc abcd ab cd ab cde",
            "été suspendu été suspendue étés é",
            "verify  your password",
            " verify ",
        ];
        for trailing in [false, true] {
            let ix = WordIndex::new(PHRASES.iter().map(|&(p, x)| (p, x, trailing)));
            for t in texts {
                assert_eq!(ix.find(t), oracle(PHRASES, t, trailing), "{t:?} trailing_space={trailing}");
            }
        }
    }

    #[test]
    fn generated_texts_match_the_automaton() {
        // texts made of the phrases' words, cut words and stray words, in every order a small generator gives
        let mut vocab: Vec<String> = PHRASES.iter().flat_map(|(p, _)| p.split(' ').map(str::to_string)).filter(|w| !w.is_empty()).collect();
        vocab.extend(["passw", "suspen", "ver", "youraccount", "x", "é", "ét", "cd", "zip"].map(String::from));
        vocab.sort();
        vocab.dedup();
        let ixs = [false, true].map(|t| WordIndex::new(PHRASES.iter().map(|&(p, x)| (p, x, t))));
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..3000 {
            let n = (seed % 12) as usize;
            let mut words = Vec::new();
            for _ in 0..n {
                words.push(vocab[(crate::analysis::content::tests::xorshift(&mut seed) % vocab.len() as u64) as usize].as_str());
            }
            seed = seed.wrapping_add(0x9e37_79b9);
            let t = words.join(" ");
            for (ix, trailing) in ixs.iter().zip([false, true]) {
                assert_eq!(ix.find(&t), oracle(PHRASES, &t, trailing), "{t:?} trailing_space={trailing}");
            }
        }
    }
}
