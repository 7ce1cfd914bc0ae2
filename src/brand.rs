//! Brand profiles: the names a brand goes by and the domains it really uses.
//!
//! Name matching is tolerant of case, spacing, separators, leetspeak and
//! Unicode homoglyphs ("OpenAI", "Open AI", "Open-AI", "OpenAl", "0penAI",
//! "O p e n A I", "ОpenAI" with a Cyrillic О), but only at word boundaries:
//! "OpenAirInterface" does not name OpenAI.

use crate::config::Brand;
use crate::fold::{is_invisible, leet_digit};
use unicode_normalization::UnicodeNormalization;

/// Folds one character for brand-name comparison: confusable skeleton (UTS #39),
/// then the digits and symbols used as letters. `i`, `l`, `1`, `|` all fold to
/// `l` so that "OpenAl" and "opena1" name OpenAI.
fn fold_char(c: char, out: &mut String) {
    if c.is_ascii() {
        out.push_str(&ascii_fold_table()[c as usize]);
    } else {
        fold_char_slow(c, out)
    }
}

/// `fold_char` of every ASCII character, computed once with the general path
/// (so the results are identical): the common case costs a table lookup.
fn ascii_fold_table() -> &'static [String; 128] {
    static T: std::sync::OnceLock<[String; 128]> = std::sync::OnceLock::new();
    T.get_or_init(|| {
        std::array::from_fn(|i| {
            let mut s = String::new();
            fold_char_slow(i as u8 as char, &mut s);
            s
        })
    })
}

fn fold_char_slow(c: char, out: &mut String) {
    let lower: String = c.to_lowercase().collect();
    for s in unicode_security::confusable_detection::skeleton(&lower) {
        // the skeleton is NFD: dropping combining marks folds accents (é → e)
        if unicode_normalization::char::is_combining_mark(s) {
            continue;
        }
        for l in s.to_lowercase() {
            out.push(match l {
                // `1` folds to `l` here and to `i` in the text normaliser, on purpose: see `leet_digit`
                'i' | '1' | '|' | '!' | 'ı' => 'l',
                '@' => 'a',
                '$' => 's',
                other => leet_digit(other).unwrap_or(other),
            });
        }
    }
}

/// Splits text into folded word tokens. Letter-like symbols (`@`, `$`, `|`, `!`)
/// count as letters inside a word.
pub fn fold_tokens(text: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    let mut cur = String::new();
    // NFKC of ASCII is ASCII, and ASCII has no invisible characters
    let chars: Vec<char> = if text.is_ascii() { text.chars().collect() } else { text.nfkc().filter(|c| !is_invisible(*c)).collect() };
    for (i, &c) in chars.iter().enumerate() {
        // '@' inside an address ("noreply@openai.com") separates words; in
        // "P@yPal" it stands for a letter.
        let address_at = c == '@' && chars[i + 1..].iter().take_while(|c| !c.is_whitespace() && **c != '>').any(|c| *c == '.');
        if c.is_alphanumeric() || (matches!(c, '@' | '$' | '|' | '!') && !cur.is_empty() && !address_at) {
            fold_char(c, &mut cur);
        } else if !cur.is_empty() {
            tokens.push(std::mem::take(&mut cur));
        }
    }
    if !cur.is_empty() {
        tokens.push(cur);
    }
    tokens
}

/// A name folded to one comparison key ("Open AI" → "openal").
pub fn fold_key(name: &str) -> String {
    fold_tokens(name).concat()
}

/// How many of the last non-empty lines a sign-off may be on.
pub const SIGNATURE_LINES: usize = 6;
/// A line with more words than this is a sentence, not a sign-off.
const MAX_SIGNATURE_TOKENS: usize = 10;

/// All brands, with their folded names, for fast lookups.
#[derive(Debug, Clone)]
pub struct BrandSet {
    pub brands: Vec<Brand>,
    /// (folded key, brand index, the name as configured)
    keys: Vec<(String, usize, String)>,
}

/// A brand named in a piece of text.
#[derive(Debug, Clone, PartialEq)]
pub struct NameHit {
    pub brand: usize,
    /// The configured name or alias that matched.
    pub name: String,
}

impl BrandSet {
    pub fn new(brands: Vec<Brand>) -> BrandSet {
        let mut keys = Vec::new();
        for (i, b) in brands.iter().enumerate() {
            for n in b.names() {
                let k = fold_key(&n);
                // very short keys ("ai") would match ordinary words
                if k.chars().count() >= 3 && !keys.iter().any(|(x, j, _)| *x == k && *j == i) {
                    keys.push((k, i, n));
                }
            }
        }
        BrandSet { brands, keys }
    }

    /// The first brand named in `text`: a run of whole words whose folded
    /// concatenation equals a brand name.
    pub fn named_in(&self, text: &str) -> Option<NameHit> {
        let tokens = fold_tokens(text);
        for start in 0..tokens.len() {
            let mut acc = String::new();
            for tok in &tokens[start..] {
                acc.push_str(tok);
                if let Some((_, b, n)) = self.keys.iter().find(|(k, _, _)| *k == acc) {
                    return Some(NameHit { brand: *b, name: n.clone() });
                }
                if !self.keys.iter().any(|(k, _, _)| k.starts_with(acc.as_str())) {
                    break;
                }
            }
        }
        None
    }

    /// Whether the text is signed as a brand: a signature line — one of the
    /// last [`SIGNATURE_LINES`] non-empty, unquoted lines of the last
    /// `tail_chars` characters — that is a brand name next to a role word
    /// ("The OpenAI Team", "OpenAI Support", "El equipo de OpenAI",
    /// "L'équipe OpenAI"), preceded at most by a closing ("Thanks,", "Best
    /// regards", an article) and followed at most by another role word. A brand
    /// and a role word inside a sentence ("contact OpenAI support if in
    /// doubt") or far from the end is a mention, not a sign-off.
    pub fn signed_as(&self, text: &str, tail_chars: usize) -> Option<NameHit> {
        const AFTER: &[&str] = &[
            "team",
            "support",
            "security",
            "billing",
            "accounts",
            "account team",
            "trust",
            "safety",
            "notifications",
            "help center",
            "platform team",
            "equipe",
            "team di",
        ];
        const BEFORE: &[&str] = &[
            "equipo de",
            "equipo",
            "soporte de",
            "l equipe",
            "equipe",
            "equipe do",
            "equipe da",
            "team di",
            "il team di",
            "das",
            "ihr",
            "support",
            "servicio de",
            "service client",
            "the",
        ];
        // what may stand before the signature on its line: closings and articles
        const CLOSING: &[&str] = &[
            "the",
            "your",
            "from",
            "thanks",
            "thank",
            "you",
            "best",
            "kind",
            "warm",
            "regards",
            "sincerely",
            "cheers",
            "yours",
            "truly",
            "el",
            "la",
            "le",
            "les",
            "il",
            "lo",
            "das",
            "ihr",
            "o",
            "a",
            "de",
            "saludos",
            "atentamente",
            "gracias",
            "cordialmente",
            "un",
            "cordiales",
            "cordialement",
            "merci",
            "bien",
            "salutations",
            "mit",
            "freundlichen",
            "grussen",
            "grusse",
            "viele",
            "atenciosamente",
            "obrigado",
            "obrigada",
            "cordiali",
            "saluti",
            "grazie",
            "met",
            "vriendelijke",
            "groet",
            "groeten",
        ];
        let start = text.char_indices().rev().nth(tail_chars.saturating_sub(1)).map_or(0, |(i, _)| i);
        let tail = &text[start..];
        /// Role phrases after and before the brand, each folded into tokens, and the folded closings.
        type Roles = (Vec<Vec<String>>, Vec<Vec<String>>, Vec<String>);
        static ROLES: std::sync::OnceLock<Roles> = std::sync::OnceLock::new();
        let (after, before, closing) = ROLES.get_or_init(|| {
            let fold_list = |l: &[&str]| -> Vec<Vec<String>> { l.iter().map(|w| fold_tokens(w)).collect() };
            (fold_list(AFTER), fold_list(BEFORE), CLOSING.iter().map(|w| fold_key(w)).collect())
        });
        let lines = tail.lines().rev().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('>')).take(SIGNATURE_LINES);
        for line in lines {
            let tokens = fold_tokens(line);
            if tokens.is_empty() || tokens.len() > MAX_SIGNATURE_TOKENS {
                continue;
            }
            if let Some(hit) = self.signature_line(&tokens, after, before, closing) {
                return Some(hit);
            }
        }
        None
    }

    /// One line's tokens as `[closing…] [role] brand [role…]`, with at least one role.
    fn signature_line(&self, tokens: &[String], after: &[Vec<String>], before: &[Vec<String>], closing: &[String]) -> Option<NameHit> {
        let is_role_word = |t: &String| after.iter().any(|w| w.len() == 1 && w[0] == *t);
        for start in 0..tokens.len() {
            let mut acc = String::new();
            for (end, tok) in tokens.iter().enumerate().skip(start) {
                acc.push_str(tok);
                if let Some((_, b, n)) = self.keys.iter().find(|(k, _, _)| *k == acc) {
                    let next = &tokens[end + 1..];
                    let prev = &tokens[..start];
                    let role_after = after.iter().filter(|w| next.len() >= w.len() && next[..w.len()] == w[..]).map(Vec::len).max();
                    // "the" alone before the brand is not enough: it needs a role word after
                    let role_before = before
                        .iter()
                        .filter(|w| w.len() != 1 || w[0] != "the")
                        .filter(|w| prev.len() >= w.len() && prev[prev.len() - w.len()..] == w[..])
                        .map(Vec::len)
                        .max();
                    if role_after.is_some() || role_before.is_some() {
                        let lead = &prev[..prev.len() - role_before.unwrap_or(0)];
                        let trail = &next[role_after.unwrap_or(0)..];
                        if lead.iter().all(|t| closing.contains(t)) && trail.iter().all(is_role_word) {
                            return Some(NameHit { brand: *b, name: n.clone() });
                        }
                    }
                }
                if !self.keys.iter().any(|(k, _, _)| k.starts_with(acc.as_str())) {
                    break;
                }
            }
        }
        None
    }

    /// The brand that owns `domain` (its domains or legitimate domains).
    pub fn owner_of(&self, domain: &str) -> Option<usize> {
        self.brands.iter().position(|b| b.owns(domain))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::builtin_brands;
    use crate::domain::registrable;

    fn set() -> BrandSet {
        BrandSet::new(builtin_brands())
    }

    #[test]
    fn names_the_brand_despite_spacing_case_and_leet() {
        let s = set();
        for t in [
            "OpenAI",
            "openai security",
            "Open AI Team",
            "Open-AI Billing",
            "OpenAl Support",
            "0penAI",
            "opena1",
            "O p e n A I",
            "\u{041e}penAI", // Cyrillic capital O
            "Open\u{200B}AI",
            "ＯｐｅｎＡＩ", // fullwidth
            "Your ChatGPT subscription",
            "Chat GPT Plus",
            "OpenAI's API",
            "noreply@openai.com",
        ] {
            assert!(s.named_in(t).is_some(), "{t:?} should name OpenAI");
        }
    }

    #[test]
    fn word_boundaries_prevent_false_matches() {
        let s = set();
        for t in [
            "OpenAirInterface",
            "OpenAI\u{FE0F}rInterface", // a variation selector is invisible: this reads "OpenAIrInterface"
            "[USRP-users] OpenAirInterface with B210",
            "Opening hours",
            "open air concert",
            "Chatgptx",
            "reopenai",
            "",
        ] {
            assert!(s.named_in(t).is_none(), "{t:?} should not name OpenAI");
        }
    }

    #[test]
    fn sign_offs_speak_as_the_brand_in_several_languages() {
        let s = set();
        for t in [
            "Thanks,\nThe OpenAI Team",
            "Best regards,\nOpenAI Support",
            "Atentamente,\nEl equipo de OpenAI",
            "Cordialement,\nL'équipe OpenAI",
            "Mit freundlichen Grüßen\nIhr OpenAI Team",
            "Atenciosamente,\nEquipe OpenAI",
            "Cordiali saluti,\nIl team di OpenAI",
            "— 0penAI Security",
            "Best regards,\nOpenAI Sup\u{034F}port", // the combining grapheme joiner is invisible
        ] {
            assert!(s.signed_as(t, 600).is_some(), "{t:?} is signed as OpenAI");
        }
    }

    #[test]
    fn mentions_are_not_sign_offs() {
        let s = set();
        for t in [
            "I tried the OpenAI API yesterday.",
            "OpenAirInterface team meeting",
            "Regards, Bob (ex-OpenAI)",
            "The OpenAI",
            // brand and role word inside a sentence, near the end
            "If in doubt, contact OpenAI support directly.\nBob",
            "Remember: the OpenAI security team will never ask for your password.\n\nIT Security",
            "Please forward it to us; OpenAI Security says so too.",
            // quoted text is the forwarded sender's, not this one's
            "See below.\n> Thanks,\n> The OpenAI Team",
        ] {
            assert!(s.signed_as(t, 600).is_none(), "{t:?} is no sign-off");
        }
        // a sign-off above more than SIGNATURE_LINES further lines is not at the end
        let early = format!("The OpenAI Team\n{}", "a line\n".repeat(SIGNATURE_LINES));
        assert!(s.signed_as(&early, 600).is_none());
        // a sign-off far from the end is outside the tail
        let long = format!("The OpenAI Team\n{}", "x ".repeat(1000));
        assert!(s.signed_as(&long, 600).is_none());
    }

    #[test]
    fn ownership_covers_subdomains_only() {
        let b = &builtin_brands()[0];
        assert!(b.owns("openai.com"));
        assert!(b.owns("tm.openai.com"));
        assert!(b.owns("OpenAI.com."));
        assert!(!b.owns("notopenai.com"));
        assert!(!b.owns("openai.com.evil.io"));
    }

    #[test]
    fn registrable_uses_the_public_suffix_list() {
        assert_eq!(registrable("mail.openai-help.co.uk").as_deref(), Some("openai-help.co.uk"));
        assert_eq!(registrable("openai.com.evil.io").as_deref(), Some("evil.io"));
    }
}
