//! Asks as structure: a request verb applied to a secret or action object
//! within a short window of words, unless negated.
//!
//! The word classes come from the same phrase files as the lure phrases
//! (`data/phrases/<lang>.txt`, see [`super::phrases`]), one word or short
//! phrase a line, normalised like the text:
//!
//! | kind | meaning |
//! |---|---|
//! | `verb` | a request verb in imperative, polite or infinitive form (`update`, `mettre à jour`, `aktualisieren`) |
//! | `give` | a verb that hands over or proves a secret (`reply`, `enter`, `confirm`, `send us`); takes weak objects too |
//! | `verb_end`, `give_end` | the same, and the verb may also *follow* its object (German and Dutch put the infinitive last: `um Ihr Passwort zu bestätigen`) |
//! | `…:<families>` | any verb kind may name the families it applies to: `verb:callback` (`call`), `verb:reward,tax` (`claim`), `give:data` (`data` = api_key, password, mfa_code, wallet, payment, delivery, tax); without, every family |
//! | `object:<family>` | what is asked for (`password`, `mot de passe`, `seed phrase`); the ask counts for that family |
//! | `weak_object:<family>` | an object only a `give` verb makes an ask (`code`: "send us the code", but not "review the code") |
//! | `object:none` | a longer object that is not one (`zip code`, `promo code`): a match inside it is dropped |
//! | `negation` | a word that negates a nearby verb (`never`, `nunca`, `jamais`, `nicht`) |
//! | `condition` | a word that makes a following negation conditional (`if`, `si`, `wenn`): "if you do not confirm" is still an ask |
//!
//! An ask is a verb and an object of the same language where the object
//! starts at most [`WINDOW`] words after the verb ends, or, for `*_end`
//! verbs, ends at most [`BACK_WINDOW`] words before the verb. Of objects that
//! overlap, the longest wins. The ask is negated when a negation word of
//! that language stands within [`NEG_BEFORE`] words before the verb, between
//! verb and object, or within [`NEG_AFTER`] words after both (German and
//! Dutch negate after the object: `teilen Sie diesen Code nicht`), unless a
//! condition word stands within [`COND_WINDOW`] words before the negation.
//!
//! The normalised text has no punctuation left, so the window does not stop
//! at a sentence end; it is short for that reason.
//!
//! All words of all languages are looked up in one [`super::words::WordIndex`]
//! with the lure phrases (each word knows its class), once per word of the
//! normalised text.

use super::normalise::normalize;
use super::phrases::Family;
use super::words::WordMatch;

/// Words allowed between the end of the verb and the start of its object.
pub const WINDOW: usize = 6;
/// Words allowed between the end of the object and a `*_end` verb after it.
pub const BACK_WINDOW: usize = 3;
/// A negation this many words before the verb negates it.
pub const NEG_BEFORE: usize = 4;
/// A negation this many words after the verb and object negates it.
pub const NEG_AFTER: usize = 2;
/// A condition word this many words before a negation makes it conditional.
pub const COND_WINDOW: usize = 4;

/// The class of an ask word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// `families`: a bit per [`Family::ALL`] index; 0 = every family.
    Verb {
        give: bool,
        end: bool,
        families: u16,
    },
    /// `None`: a longer object that is not one.
    Object {
        family: Option<Family>,
        weak: bool,
    },
    Negation,
    Condition,
}

impl Class {
    /// The class of a line kind (`verb`, `object:password` …); None if the kind is not an ask word.
    pub fn parse(kind: &str) -> Result<Option<Class>, String> {
        let (base, fams) = kind.split_once(':').unwrap_or((kind, ""));
        let verb = match base {
            "verb" => Some((false, false)),
            "verb_end" => Some((false, true)),
            "give" => Some((true, false)),
            "give_end" => Some((true, true)),
            _ => None,
        };
        if let Some((give, end)) = verb {
            return Ok(Some(Class::Verb { give, end, families: family_bits(fams)? }));
        }
        Ok(Some(match kind {
            "negation" => Class::Negation,
            "condition" => Class::Condition,
            _ => {
                let (weak, fam) = if let Some(f) = kind.strip_prefix("object:") {
                    (false, f)
                } else if let Some(f) = kind.strip_prefix("weak_object:") {
                    (true, f)
                } else {
                    return Ok(None);
                };
                let family = if fam == "none" {
                    None
                } else {
                    Some(Family::parse(fam).ok_or_else(|| format!("unknown family {fam:?} in {kind:?}"))?)
                };
                Class::Object { family, weak }
            }
        }))
    }
}

/// The families a verb applies to, as bits: `""` = all, `"reward,tax"`, `"data"` (the families
/// whose object is data handed over: [`DATA`]).
fn family_bits(list: &str) -> Result<u16, String> {
    let mut bits = 0u16;
    for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let fams: Vec<Family> = if name == "data" {
            DATA.to_vec()
        } else {
            vec![Family::parse(name).ok_or_else(|| format!("unknown family {name:?} (a family name or \"data\")"))?]
        };
        for f in fams {
            bits |= bit(f);
        }
    }
    Ok(bits)
}

fn bit(f: Family) -> u16 {
    1 << Family::ALL.iter().position(|x| *x == f).unwrap_or(0)
}

/// `data` in a verb's family list: what is handed over (a secret, card or address, tax data).
pub const DATA: [Family; 7] =
    [Family::ApiKey, Family::Password, Family::MfaCode, Family::Wallet, Family::Payment, Family::Delivery, Family::Tax];

/// One ask word as read from a file.
#[derive(Debug, Clone)]
pub struct Word {
    pub class: Class,
    pub lang: String,
    /// As written in the data file.
    pub text: String,
    pub norm: String,
    pub prefix: bool,
}

impl Word {
    pub fn new(class: Class, lang: &str, text: &str) -> Result<Word, String> {
        let prefix = text.ends_with('*');
        let t = text.trim_end_matches('*');
        let norm = normalize(t);
        if norm.is_empty() {
            return Err(format!("{text:?} has no letters"));
        }
        Ok(Word { class, lang: lang.to_string(), text: t.to_string(), norm, prefix })
    }
}

/// An ask found in a text.
#[derive(Debug, Clone, PartialEq)]
pub struct AskHit {
    pub family: Family,
    pub lang: String,
    pub verb: String,
    pub object: String,
}

/// The compiled ask words.
#[derive(Debug, Clone)]
pub struct Asks {
    words: Vec<Word>,
}

/// A word found: its entry and its word span `[a, b)`.
#[derive(Debug, Clone, Copy)]
struct Found {
    id: usize,
    a: usize,
    b: usize,
}

impl Asks {
    pub fn build(words: Vec<Word>) -> Asks {
        Asks { words }
    }

    pub fn words(&self) -> &[Word] {
        &self.words
    }

    /// The words for a [`super::words::WordIndex`]: (normalised, prefix, trailing_space),
    /// in the order of patterns `" word "` (`" word"` for a prefix), which the checks in
    /// [`Asks::find`] were written for.
    pub fn index_entries(&self) -> impl Iterator<Item = (&str, bool, bool)> {
        self.words.iter().map(|w| (w.norm.as_str(), w.prefix, true))
    }

    /// Every ask in `hay` (normalised text with a space added at each end), in text
    /// order, from `found`: the [`super::words::WordIndex`] matches of
    /// [`Asks::index_entries`] in `hay` (ids counted from the first word).
    pub fn find(&self, hay: &str, found: impl Iterator<Item = WordMatch>) -> Vec<AskHit> {
        let spaces: Vec<usize> = memchr::memchr_iter(b' ', hay.as_bytes()).collect();
        // the word index of the space at (or first space after) byte `pos` of `hay`
        let word_at = |pos: usize| spaces.partition_point(|s| *s < pos);
        let (mut verbs, mut objects, mut negs, mut conds) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for m in found {
            // from the space before the word to the space after it
            let f = Found { id: m.id, a: word_at(m.start - 1), b: word_at(m.end) };
            match self.words[m.id].class {
                Class::Verb { .. } => verbs.push(f),
                Class::Object { .. } => objects.push(f),
                Class::Negation => negs.push(f),
                Class::Condition => conds.push(f),
            }
        }
        if objects.is_empty() || verbs.is_empty() {
            return Vec::new();
        }
        // of overlapping objects the longest wins ("zip code" over "code")
        let all = objects.clone();
        objects.retain(|o| !all.iter().any(|x| x.a <= o.a && o.b <= x.b && (x.b - x.a) > (o.b - o.a)));
        let lang = |f: &Found| self.words[f.id].lang.as_str();
        let negated = |v: &Found, o: &Found| {
            let (lo, hi) = (v.a.min(o.a), v.b.max(o.b));
            negs.iter().filter(|n| lang(n) == lang(v)).any(|n| {
                let near = (n.b <= v.a && v.a - n.b <= NEG_BEFORE) || (n.a >= lo && n.b <= hi) || (n.a >= hi && n.a - hi < NEG_AFTER);
                let conditional = conds.iter().any(|c| lang(c) == lang(n) && c.b <= n.a && n.a - c.b <= COND_WINDOW);
                near && !conditional
            })
        };
        let mut out: Vec<AskHit> = Vec::new();
        for o in &objects {
            let Class::Object { family: Some(family), weak } = self.words[o.id].class else { continue };
            let mut best: Option<(&Found, usize)> = None;
            for v in verbs.iter().filter(|v| lang(v) == lang(o)) {
                let Class::Verb { give, end, families } = self.words[v.id].class else { continue };
                if (weak && !give) || (families != 0 && families & bit(family) == 0) {
                    continue;
                }
                let gap = if v.b <= o.a && o.a - v.b <= WINDOW {
                    o.a - v.b
                } else if end && o.b <= v.a && v.a - o.b <= BACK_WINDOW {
                    v.a - o.b
                } else {
                    continue;
                };
                if best.is_none_or(|(_, g)| gap < g) && !negated(v, o) {
                    best = Some((v, gap));
                }
            }
            if let Some((v, _)) = best {
                let hit = AskHit {
                    family,
                    lang: self.words[o.id].lang.clone(),
                    verb: self.words[v.id].text.clone(),
                    object: self.words[o.id].text.clone(),
                };
                // the same words in two languages' files ("open" … "document" in en and nl) are one ask
                let same = |h: &AskHit| h.family == hit.family && h.verb == hit.verb && h.object == hit.object;
                if !out.iter().any(same) {
                    out.push(hit);
                }
            }
        }
        out
    }
}
