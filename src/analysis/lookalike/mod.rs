//! Lookalike domain matcher: given any host name seen in a message, say whether and how it
//! imitates a protected brand's domain.
//!
//! The matcher is built once per brand set ([`LookalikeMatcher::new`]) and is pure: no I/O, no
//! DNS, no shared state, so the milter, the `check`/`lookalike` CLIs and the tests all see the
//! same answer.
//!
//! # How a domain is decided
//!
//! 1. **Normalise the host.** Trim, drop a trailing dot, lowercase; IP literals are ignored.
//!    Hosts that contain non-ASCII or `xn--` labels go through IDNA (UTS #46) so both
//!    `xn--penai-…` and `оpenai.com` arrive as the same Unicode string.
//! 2. **Owned or legitimate?** If the host equals, or is a subdomain of, any domain a brand owns
//!    or lists in `legitimate_domains`, the answer is [`DomainClass::Owned`] and nothing else is
//!    checked: a brand's own or partner domains are never a finding.
//! 3. **Split with the Public Suffix List** into subdomain labels, the registrable label and the
//!    public suffix (`openai` + `com.br`; `login` + `openai` + `github.io`).
//! 4. **Fold to a skeleton.** Every label is mapped to a confusable skeleton: lowercase → UTS #39
//!    skeleton (`unicode-security`, which is case-sensitive, hence lowercase before and after) →
//!    combining marks dropped → Latin letters with diacritics, strokes, hooks and small capitals
//!    that UTS #39 leaves alone (`ə`, `ꞑ`, `ø`, `ᴛ`) to their base letter → ASCII look-alike
//!    folding: single glyphs (`0`→`o`, `1`/`i`/`|`→`l`), the pair `rn`→`m` (UTS #39 itself maps
//!    `m` to `rn`) and look-alike classes (`c`→`e`, `q`→`g`, `v`→`u`, `n`→`m`, `b`→`d`,
//!    `3`→`e`, `4`→`a`, `5`→`s`, `7`→`t`, `6`/`8`→`d`, `9`→`g`). Brand tokens are folded the
//!    same way, so "looks the same" becomes "is the same string": `0penai`, `opena1`, `оpenai`
//!    (Cyrillic о) and `openal` all fold to `opemal`, as does `openai`. Multi-letter
//!    look-alikes that would also eat real letter pairs in input (`cl`→`d`, `lc`→`k`, `nn`→`m`,
//!    `vv`→`w`) are instead expanded into the brand tokens at build time
//!    (`GLYPH_EXPANSIONS`).
//! 5. **Registrable label against brand tokens** (the first label of every owned domain, the
//!    brand name and its aliases, lowercase alphanumeric), in this order:
//!    * one hash lookup of the hyphen-free skeleton in a precomputed table holding every brand
//!      token skeleton and all its Damerau–Levenshtein-1 variants. Distance 0 gives
//!      [`Technique::TldSwap`] (label identical, suffix not owned: `openai.co`,
//!      `openai.com.br`), [`Technique::Hyphenation`] (`open-ai.com`) or
//!      [`Technique::Homoglyph`] (`0penai.com`, IDN). Distance 1 gives [`Technique::Typo`];
//!      the detail names the edit (omission, repetition, insertion, keyboard-adjacent or
//!      bit-flip or vowel-swap replacement, transposition);
//!    * for long tokens (≥ 9 characters) a bounded DL-2 comparison (`exampelbnak.com`);
//!    * combosquat: an Aho–Corasick pass finds brand-token skeletons inside the label; what is
//!      left around the token must either be whole words from a built-in keyword list (support,
//!      security, login, soporte, sécurité, konto, …, digits) with or without separators
//!      (`openaisupport`, `myopenai-login`), or — for tokens of 6+ characters only — be
//!      separated from the token by hyphens (`platform-openai`, `chat-openai`), or — for
//!      tokens of 6+ characters that are not common words — be whatever the label's cheapest
//!      word segmentation (`segment.rs`, a unigram Viterbi over the wordfreq list in
//!      `data/wordfreq.txt`, brand tokens as extra words) leaves around the token as its own
//!      segment (`openai|gaming`, `use|openai`, `chatgpt|4|all`). A word that merely contains
//!      the token letters (`open|air|interface`) matches none of these. A combosquat with
//!      other words than keywords is graded ([`Strength`]).
//!
//!    Brand tokens also include tokens derived from the brand's own domain labels (`oai` from
//!    `oaistatic`, `oaiusercontent`); they form keyword combosquats only.
//! 6. **Subdomain tricks** when the registrable label did not match: a subdomain label that is a
//!    brand token (or its homoglyph, or a token+keyword/hyphen combosquat) under a foreign
//!    registrable domain (`openai.com.secure-login.io`, `openai.evil.io`,
//!    `openai-login.evil.io`), or a brand token split across labels (`open.ai.com`).
//!
//! # False-positive safeguards
//!
//! * Tokens of 1–2 characters are ignored. Tokens of 3–4 characters only match exactly
//!   (TLD swap, homoglyph, hyphenation) or with keywords; they never get typo matches and
//!   never match under a hyphen with an arbitrary word.
//! * Typo matches (one edit) on tokens of 5–6 characters count only under a suffix the brand
//!   uses for that token: `openair.com` is a typo of `openai.com`, `openair.org` (typo *and*
//!   TLD change, and a real organisation) is not. Tokens of 7+ characters get typo matches
//!   under any suffix, tokens of 9+ characters two edits (same length only: `samplebank` is
//!   not `examplebank`).
//! * Combosquat needs a token boundary (hyphen, label start/end), pure keywords around the
//!   token, or the token as a segment of the label's best word segmentation; `opening.com`,
//!   `opentable.com`, `openairinterface.org`, `openair-festival.de` do not match.
//! * Deliberate findings: `openal.org` *is* reported (homoglyph: `l` for `i` is a classic
//!   lookalike and dnstwist generates it); a site that legitimately needs it is listed in the
//!   brand's `legitimate_domains`.

use std::collections::{HashMap, HashSet};

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};

use crate::config::Brand;

mod combo;
mod edit;
mod fold;
mod host;
mod segment;

use combo::KEYWORDS;
use edit::dl1_variants;
use fold::{fold, glyph_expansions};
use host::{ascii_domain, split_registrable, Host};

/// The verdict on one host name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DomainClass {
    /// Nothing resembling a protected brand.
    NoMatch,
    /// Brand-owned or listed as legitimate for the brand: never a finding.
    Owned { brand: String },
    /// Imitates a brand domain.
    Lookalike(LookalikeMatch),
}

/// Evidence for a lookalike verdict.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LookalikeMatch {
    /// Brand display name.
    pub brand: String,
    /// Lowercased, Unicode-decoded registrable domain (or the whole host for subdomain tricks).
    pub domain: String,
    /// The brand domain imitated, e.g. `openai.com`.
    pub imitates: String,
    /// Every technique recognised, most specific first.
    pub techniques: Vec<Technique>,
    /// The folded skeleton the match was made on.
    pub normalized: String,
    /// Human evidence, e.g. `combosquat: "support"` or `typo: omission of 'a'`.
    pub detail: String,
    /// How strongly the label's shape points at the brand; [`Strength::factor`] scales the
    /// weight of the rule that reports it.
    pub strength: Strength,
}

/// How strongly a match points at the brand. Every technique is [`Strength::Full`] except a
/// combosquat with other words than keywords (found by word segmentation, or separated by
/// hyphens), graded by what the rest of the label is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Strength {
    /// Homoglyph, typo, hyphenation, TLD swap, subdomain, a combosquat with a keyword.
    Full,
    /// Brand token plus digits or random letters: `openai24h`, `openaipnmnxb`.
    DigitsOrRandom,
    /// Brand token plus other words only: `openaigaming`, `useopenai`.
    OtherWords,
}

impl Strength {
    /// Factor on the reporting rule's weight: 1.0, 0.8, 0.6.
    pub fn factor(self) -> f64 {
        match self {
            Strength::Full => 1.0,
            Strength::DigitsOrRandom => 0.8,
            Strength::OtherWords => 0.6,
        }
    }
}

/// How a domain imitates a brand; `as_str()` names are stable (rule evidence, JSON output).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Technique {
    /// Confusable characters: IDN homographs (Cyrillic `о`), ASCII look-alikes (`0`, `rn`).
    Homoglyph,
    /// One edit (two for long tokens): omission, insertion, repetition, replacement
    /// (keyboard-adjacent, bit flip, vowel swap), transposition. The detail names the edit.
    Typo,
    /// Hyphens inserted into the brand token: `open-ai.com`.
    Hyphenation,
    /// Brand token plus other words: `openai-support.com`, `platform-openai.com`.
    Combosquat,
    /// Brand token as a subdomain of a foreign domain, or split by dots: `openai.com.evil.io`.
    Subdomain,
    /// Brand label under a public suffix the brand does not own: `openai.co`.
    TldSwap,
}

impl Technique {
    /// Stable snake_case name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Technique::Homoglyph => "homoglyph",
            Technique::Typo => "typo",
            Technique::Hyphenation => "hyphenation",
            Technique::Combosquat => "combosquat",
            Technique::Subdomain => "subdomain",
            Technique::TldSwap => "tld_swap",
        }
    }
}

impl std::fmt::Display for Technique {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Label length (in characters) from which two edits count as a typo.
const DL2_MIN_LEN: usize = 9;
/// Label length from which a typo counts under a suffix the brand does not use for that token.
const TYPO_ANY_SUFFIX_MIN_LEN: usize = 7;
/// Shortest token that gets typo matches at all.
const TYPO_MIN_LEN: usize = 5;
/// Shortest token that forms a combosquat with an arbitrary hyphen-separated word.
const ANY_WORD_MIN_LEN: usize = 6;
/// Shortest token matched as a subdomain of a foreign domain.
const SUBDOMAIN_MIN_LEN: usize = 5;
/// Shortest token considered at all.
const TOKEN_MIN_LEN: usize = 3;

#[derive(Debug)]
struct BrandInfo {
    name: String,
}

#[derive(Debug)]
struct Token {
    brand: usize,
    /// Normalised token, e.g. `openai`.
    raw: String,
    /// Its skeleton, e.g. `opemal`.
    folded: String,
    /// Characters in `raw`.
    len: usize,
    /// The brand domain it imitates.
    imitates: String,
    /// Public suffixes the brand owns with this label (`com` for `openai.com`).
    suffixes: Vec<String>,
    /// Derived from a domain label rather than taken whole (`oai` from `oaistatic`): it forms
    /// combosquats only (no TLD swap, homoglyph or typo match of the label alone).
    derived: bool,
    /// Long enough and rare enough as a word to form a combosquat with arbitrary words found by
    /// segmentation (`openai|gaming`).
    any_word: bool,
}

/// Matches host names against a set of protected brands. Build once per configuration.
#[derive(Debug)]
pub struct LookalikeMatcher {
    brands: Vec<BrandInfo>,
    tokens: Vec<Token>,
    /// Owned and legitimate domains (ASCII, lowercase) → brand index.
    owned: HashMap<String, usize>,
    /// Skeleton → (token index, edit distance) for every token skeleton and its DL-1 variants.
    variants: HashMap<String, Vec<(u32, u8)>>,
    /// Tokens long enough for DL-2 matching.
    long_tokens: Vec<usize>,
    /// Aho–Corasick over distinct token skeletons; pattern id → tokens with that skeleton.
    token_ac: Option<AhoCorasick>,
    pattern_tokens: Vec<Vec<usize>>,
    /// Folded keywords and the longest one, in bytes.
    keywords: HashSet<String>,
    max_keyword: usize,
}

/// A match found on one label, before it is turned into a [`LookalikeMatch`].
struct Hit {
    token: usize,
    techniques: Vec<Technique>,
    normalized: String,
    detail: String,
    strength: Strength,
}

impl LookalikeMatcher {
    /// Builds the matcher: tokens, their skeletons and DL-1 variants, the keyword set and the
    /// Aho–Corasick automaton over token skeletons.
    pub fn new(brands: &[Brand]) -> Self {
        let mut infos = Vec::new();
        let mut tokens: Vec<Token> = Vec::new();
        let mut owned = HashMap::new();
        for (bi, brand) in brands.iter().enumerate() {
            infos.push(BrandInfo { name: brand.name.clone() });
            let mut brand_tokens: Vec<Token> = Vec::new();
            for d in brand.domains.iter().chain(brand.legitimate_domains.iter()) {
                if let Some(ascii) = ascii_domain(d) {
                    owned.entry(ascii).or_insert(bi);
                }
            }
            let first_domain = brand.domains.iter().filter_map(|d| ascii_domain(d)).next().unwrap_or_default();
            for d in &brand.domains {
                let Some(ascii) = ascii_domain(d) else {
                    continue;
                };
                let Some((label, suffix)) = split_registrable(&ascii) else {
                    continue;
                };
                let raw = normalize_token(&idna::domain_to_unicode(label).0);
                add_token(&mut brand_tokens, bi, raw, &ascii, Some(suffix.to_string()), false);
            }
            let names: Vec<String> = std::iter::once(&brand.name).chain(brand.aliases.iter()).map(|a| normalize_token(a)).collect();
            for name in &names {
                add_token(&mut brand_tokens, bi, name.clone(), &first_domain, None, false);
            }
            for d in &brand.domains {
                let Some(ascii) = ascii_domain(d) else {
                    continue;
                };
                let Some((label, _)) = split_registrable(&ascii) else {
                    continue;
                };
                if names.iter().any(|n| n == label) {
                    continue;
                }
                if let Some(token) = segment::derived_token(label) {
                    add_token(&mut brand_tokens, bi, token.to_string(), &ascii, None, true);
                }
            }
            tokens.extend(brand_tokens);
        }

        let mut variants: HashMap<String, Vec<(u32, u8)>> = HashMap::new();
        for (ti, t) in tokens.iter().enumerate().filter(|(_, t)| !t.derived) {
            let mut push = |v: String, d: u8| {
                let e = variants.entry(v).or_default();
                if let Some(x) = e.iter_mut().find(|(i, _)| *i == ti as u32) {
                    x.1 = x.1.min(d);
                } else {
                    e.push((ti as u32, d));
                }
            };
            for skeleton in glyph_expansions(&t.raw) {
                if t.len >= TYPO_MIN_LEN {
                    for v in dl1_variants(&skeleton) {
                        push(v, 1);
                    }
                }
                push(skeleton, 0);
            }
        }
        for list in variants.values_mut() {
            list.sort_by_key(|&(_, d)| d);
        }
        let long_tokens = (0..tokens.len()).filter(|&i| tokens[i].len >= DL2_MIN_LEN).collect();

        let mut patterns: Vec<String> = Vec::new();
        let mut pattern_tokens: Vec<Vec<usize>> = Vec::new();
        for (ti, t) in tokens.iter().enumerate() {
            match patterns.iter().position(|p| *p == t.folded) {
                Some(p) => pattern_tokens[p].push(ti),
                None => {
                    patterns.push(t.folded.clone());
                    pattern_tokens.push(vec![ti]);
                }
            }
        }
        let token_ac = AhoCorasickBuilder::new().match_kind(MatchKind::Standard).build(&patterns).ok().filter(|_| !patterns.is_empty());

        let keywords: HashSet<String> = KEYWORDS.iter().map(|k| fold(k).s).collect();
        let max_keyword = keywords.iter().map(|k| k.len()).max().unwrap_or(0);
        LookalikeMatcher { brands: infos, tokens, owned, variants, long_tokens, token_ac, pattern_tokens, keywords, max_keyword }
    }

    /// Classifies one host name (any case, punycode or Unicode, trailing dot allowed).
    pub fn check(&self, domain: &str) -> DomainClass {
        let Some(host) = Host::parse(domain) else {
            return DomainClass::NoMatch;
        };
        if let Some(bi) = self.owner(&host.ascii) {
            return DomainClass::Owned { brand: self.brands[bi].name.clone() };
        }
        if self.tokens.is_empty() {
            return DomainClass::NoMatch;
        }
        let labels: Vec<&str> = host.unicode.split('.').collect();
        let n = labels.len();
        if n <= host.suffix_labels {
            return DomainClass::NoMatch;
        }
        let reg = n - host.suffix_labels - 1;
        let suffix = labels[reg + 1..].join(".");
        if let Some(hit) = self.match_registrable(labels[reg], &suffix) {
            let registrable = labels[reg..].join(".");
            return self.finish(hit, registrable);
        }
        if let Some(hit) = self.match_subdomain(&labels, reg) {
            return self.finish(hit, host.unicode.clone());
        }
        DomainClass::NoMatch
    }

    fn finish(&self, hit: Hit, domain: String) -> DomainClass {
        let t = &self.tokens[hit.token];
        DomainClass::Lookalike(LookalikeMatch {
            brand: self.brands[t.brand].name.clone(),
            domain,
            imitates: t.imitates.clone(),
            techniques: hit.techniques,
            normalized: hit.normalized,
            detail: hit.detail,
            strength: hit.strength,
        })
    }

    /// The brand owning `host` or one of its parent domains, if any.
    fn owner(&self, host: &str) -> Option<usize> {
        let mut rest = host;
        loop {
            if let Some(&b) = self.owned.get(rest) {
                return Some(b);
            }
            match rest.find('.') {
                Some(i) => rest = &rest[i + 1..],
                None => return None,
            }
        }
    }
}

fn add_token(list: &mut Vec<Token>, brand: usize, raw: String, imitates: &str, suffix: Option<String>, derived: bool) {
    let len = raw.chars().count();
    if len < TOKEN_MIN_LEN {
        return;
    }
    if let Some(t) = list.iter_mut().find(|t| t.raw == raw) {
        if let Some(s) = suffix {
            if !t.suffixes.contains(&s) {
                t.suffixes.push(s);
            }
        }
        return;
    }
    let folded = fold(&raw).s;
    let any_word = len >= ANY_WORD_MIN_LEN && segment::words().zipf(&raw).is_none_or(|z| z < segment::COMMON_WORD_ZIPF);
    list.push(Token { brand, raw, folded, len, imitates: imitates.to_string(), suffixes: suffix.into_iter().collect(), derived, any_word });
}

/// Lowercase alphanumerics only: `"Chat GPT"` → `chatgpt`.
fn normalize_token(s: &str) -> String {
    s.chars().flat_map(char::to_lowercase).filter(|c| c.is_alphanumeric()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The built-in OpenAI profile (with a test ESP as legitimate) plus ExampleBank.
    fn brands() -> Vec<Brand> {
        let mut openai = crate::config::builtin_brands().remove(0);
        openai.legitimate_domains.push("openaimail.example-esp.net".into());
        vec![
            openai,
            Brand {
                name: "ExampleBank".into(),
                aliases: vec![],
                domains: vec!["examplebank.com".into()],
                legitimate_domains: vec![],
                senders: vec![],
                overrides: Default::default(),
            },
        ]
    }

    fn matcher() -> LookalikeMatcher {
        LookalikeMatcher::new(&brands())
    }

    fn lookalike(d: &str) -> LookalikeMatch {
        match matcher().check(d) {
            DomainClass::Lookalike(m) => m,
            other => panic!("{d}: expected a lookalike, got {other:?}"),
        }
    }

    fn assert_technique(d: &str, t: Technique) -> LookalikeMatch {
        let m = lookalike(d);
        assert!(m.techniques.contains(&t), "{d}: expected {t}, got {:?} ({})", m.techniques, m.detail);
        m
    }

    fn assert_no_match(d: &str) {
        let c = matcher().check(d);
        assert_eq!(c, DomainClass::NoMatch, "{d}");
    }

    #[test]
    fn owned_domains_and_subdomains_are_owned() {
        let m = matcher();
        for d in ["openai.com", "OpenAI.COM.", "platform.openai.com", "chatgpt.com", "mail.examplebank.com"] {
            assert!(matches!(m.check(d), DomainClass::Owned { .. }), "{d}");
        }
    }

    #[test]
    fn legitimate_esp_domain_is_owned_not_a_finding() {
        assert_eq!(matcher().check("x.openaimail.example-esp.net"), DomainClass::Owned { brand: "OpenAI".into() });
    }

    #[test]
    fn cyrillic_o_homoglyph_matches_openai() {
        let m = assert_technique("оpenai.com", Technique::Homoglyph);
        assert_eq!(m.brand, "OpenAI");
        assert_eq!(m.imitates, "openai.com");
        assert_eq!(m.normalized, "opemal");
        assert!(m.detail.contains("U+043E"), "{}", m.detail);
        assert!(m.detail.contains("mixed-script"), "{}", m.detail);
    }

    #[test]
    fn punycode_homoglyph_is_decoded() {
        let m = assert_technique("xn--penai-iye.com", Technique::Homoglyph);
        assert_eq!(m.domain, "оpenai.com");
    }

    #[test]
    fn whole_script_cyrillic_homoglyph_matches() {
        let m = assert_technique("xn--80a6abfb63epr.com", Technique::Homoglyph);
        assert!(m.detail.contains("whole-script"), "{}", m.detail);
    }

    #[test]
    fn digit_zero_for_o_homoglyph_matches_openai() {
        assert_technique("0penai.com", Technique::Homoglyph);
    }

    #[test]
    fn digit_one_for_i_homoglyph_matches_openai() {
        assert_technique("opena1.com", Technique::Homoglyph);
    }

    #[test]
    fn rn_for_m_homoglyph_matches_examplebank() {
        assert_technique("exarnplebank.com", Technique::Homoglyph);
    }

    #[test]
    fn homoglyph_under_foreign_tld_is_also_tld_swap() {
        let m = assert_technique("0penai.net", Technique::Homoglyph);
        assert!(m.techniques.contains(&Technique::TldSwap));
    }

    #[test]
    fn omission_typo_matches_openai() {
        let m = assert_technique("opnai.com", Technique::Typo);
        assert_eq!(m.detail, "typo: omission of 'e'");
    }

    #[test]
    fn repetition_typo_matches_chatgpt() {
        let m = assert_technique("chatgptt.com", Technique::Typo);
        assert_eq!(m.detail, "typo: repetition of 't'");
    }

    #[test]
    fn transposition_typo_matches_openai() {
        let m = assert_technique("opeani.com", Technique::Typo);
        assert_eq!(m.detail, "typo: transposition of 'na'");
    }

    #[test]
    fn vowel_swap_typo_matches_openai() {
        let m = assert_technique("opanai.com", Technique::Typo);
        assert!(m.detail.contains("vowel swap"), "{}", m.detail);
    }

    #[test]
    fn keyboard_adjacent_replacement_typo_matches_chatgpt() {
        let m = assert_technique("chatgpy.com", Technique::Typo);
        assert!(m.detail.contains("keyboard-adjacent"), "{}", m.detail);
    }

    #[test]
    fn bit_flip_typo_matches_chatgpt() {
        // 'c' (0x63) → 'a' (0x61)
        let m = assert_technique("ahatgpt.com", Technique::Typo);
        assert!(m.detail.contains("bit flip"), "{}", m.detail);
    }

    #[test]
    fn two_edit_typo_matches_long_token() {
        assert_technique("exampelbnak.com", Technique::Typo);
    }

    #[test]
    fn typo_of_seven_letter_token_matches_under_any_suffix() {
        let m = assert_technique("chatgtp.net", Technique::Typo);
        assert_eq!(m.imitates, "chatgpt.com");
    }

    #[test]
    fn input_is_lowercased_and_trailing_dot_dropped() {
        let m = assert_technique("OPENAI-Support.COM.", Technique::Combosquat);
        assert_eq!(m.domain, "openai-support.com");
    }

    #[test]
    fn hyphenated_typo_without_other_words_is_not_a_combosquat() {
        assert_no_match("open-api.org");
    }

    #[test]
    fn two_edit_typo_does_not_match_short_token() {
        assert_no_match("opnei.com");
    }

    #[test]
    fn hyphenation_matches_openai() {
        let m = assert_technique("open-ai.com", Technique::Hyphenation);
        assert_eq!(m.techniques, vec![Technique::Hyphenation]);
    }

    #[test]
    fn tld_swap_matches_openai_co() {
        let m = assert_technique("openai.co", Technique::TldSwap);
        assert_eq!(m.techniques, vec![Technique::TldSwap]);
    }

    #[test]
    fn tld_swap_matches_second_level_suffix() {
        let m = assert_technique("openai.com.br", Technique::TldSwap);
        assert_eq!(m.domain, "openai.com.br");
    }

    #[test]
    fn combosquat_with_keyword_suffix_matches() {
        let m = assert_technique("openai-support.com", Technique::Combosquat);
        assert_eq!(m.detail, "combosquat: \"support\"");
    }

    #[test]
    fn combosquat_without_separator_matches() {
        let m = assert_technique("openaisecuritybilling.net", Technique::Combosquat);
        assert_eq!(m.detail, "combosquat: \"security\" + \"billing\"");
    }

    #[test]
    fn combosquat_with_any_hyphenated_word_matches() {
        assert_technique("platform-openai.com", Technique::Combosquat);
        assert_technique("chat-openai.com", Technique::Combosquat);
        assert_technique("foo-bar-openai-baz.org", Technique::Combosquat);
    }

    #[test]
    fn combosquat_in_spanish_french_german_matches() {
        assert_technique("soporte-openai.es", Technique::Combosquat);
        assert_technique("securiteopenai.fr", Technique::Combosquat);
        assert_technique("openaikonto.de", Technique::Combosquat);
    }

    #[test]
    fn combosquat_with_homoglyph_token_reports_both() {
        let m = assert_technique("0penai-login.com", Technique::Combosquat);
        assert!(m.techniques.contains(&Technique::Homoglyph));
    }

    #[test]
    fn combosquat_with_typo_token_and_keyword_matches() {
        let m = assert_technique("opeanai-login.com", Technique::Combosquat);
        assert!(m.techniques.contains(&Technique::Typo));
    }

    #[test]
    fn combosquat_with_split_token_matches() {
        let m = assert_technique("open-ai-support.com", Technique::Combosquat);
        assert!(m.techniques.contains(&Technique::Hyphenation));
    }

    #[test]
    fn brand_as_subdomain_of_foreign_domain_matches() {
        let m = assert_technique("openai.com.secure-login.io", Technique::Subdomain);
        assert_eq!(m.domain, "openai.com.secure-login.io");
        assert_technique("openai.evil.io", Technique::Subdomain);
        assert_technique("chatgpt-login.evil.io", Technique::Combosquat);
    }

    #[test]
    fn brand_split_by_dots_matches_as_subdomain() {
        assert_technique("open.ai.com", Technique::Subdomain);
        assert_technique("chat.gpt.com", Technique::Subdomain);
    }

    #[test]
    fn brand_under_private_suffix_is_tld_swap() {
        assert_technique("openai.github.io", Technique::TldSwap);
    }

    #[test]
    fn openairinterface_is_not_a_lookalike() {
        assert_no_match("openairinterface.org");
    }

    #[test]
    fn openair_org_is_not_a_lookalike_but_openair_com_is_a_typo() {
        assert_no_match("openair.org");
        assert_technique("openair.com", Technique::Typo);
    }

    #[test]
    fn opening_and_opentable_are_not_lookalikes() {
        assert_no_match("opening.com");
        assert_no_match("opentable.com");
        assert_no_match("openaire.eu");
    }

    #[test]
    fn combosquat_with_any_word_is_found_by_segmentation() {
        for (d, seg) in [
            ("openaigaming.com", "openai|gaming"),
            ("useopenai.com", "use|openai"),
            ("fakeopenai.net", "fake|openai"),
            ("openaimaster.online", "openai|master"),
            ("chatgpt4all.io", "chatgpt|4|all"),
            ("deepseekopenai.top", "deep|seek|openai"),
            ("openai24h.xyz", "openai|24|h"),
        ] {
            let m = assert_technique(d, Technique::Combosquat);
            assert!(m.detail.starts_with(&format!("combosquat: {seg} (")), "{d}: {}", m.detail);
            assert_eq!(m.brand, "OpenAI");
        }
    }

    #[test]
    fn open_air_is_not_openai() {
        for d in ["openairinterface.org", "openair-festival.de", "openairmuseum.de", "openair.de", "openaid.org", "openaire.eu"] {
            assert_no_match(d);
        }
    }

    #[test]
    fn segmentation_evidence_and_strength_name_what_the_rest_of_the_label_is() {
        let m = lookalike("openaigaming.com");
        assert!(m.detail.ends_with("(with other words)"));
        assert_eq!(m.strength, Strength::OtherWords);
        let m = lookalike("openaipnmnxb.top");
        assert!(m.detail.ends_with("(with digits or random letters)"));
        assert_eq!(m.strength, Strength::DigitsOrRandom);
        let m = lookalike("openaigamingsupport.com");
        assert!(m.detail.ends_with("(with a keyword)"));
        assert_eq!(m.strength, Strength::Full);
        assert_eq!(lookalike("openai-billing.com").strength, Strength::Full);
        // hyphen-separated words are graded the same way
        assert_eq!(lookalike("chatgpt-telegram.com").strength, Strength::OtherWords);
        assert_eq!(lookalike("chatgpt-zhong.love").strength, Strength::DigitsOrRandom);
        assert_eq!(lookalike("awesome-chatgpt-api.top").strength, Strength::Full);
        assert!(Strength::Full.factor() > Strength::DigitsOrRandom.factor());
        assert!(Strength::DigitsOrRandom.factor() > Strength::OtherWords.factor());
    }

    #[test]
    fn segmentation_keeps_homoglyph_evidence() {
        let m = assert_technique("0penaigaming.com", Technique::Combosquat);
        assert!(m.techniques.contains(&Technique::Homoglyph), "{:?}", m.techniques);
        assert!(m.detail.contains("0penai|gaming"), "{}", m.detail);
    }

    #[test]
    fn token_derived_from_brand_domains_forms_keyword_combosquats_only() {
        let m = matcher();
        let oai: Vec<&Token> = m.tokens.iter().filter(|t| t.raw == "oai").collect();
        assert_eq!(oai.len(), 1);
        assert!(oai[0].derived);
        assert_eq!(oai[0].imitates, "oaistatic.com");
        let l = assert_technique("oai-security.com", Technique::Combosquat);
        assert_eq!(l.imitates, "oaistatic.com");
        assert_technique("oai-login.net", Technique::Combosquat);
        // no TLD swap, no arbitrary word, no word that merely contains the letters
        for d in ["oai.org", "oai.net", "oai-gaming.com", "oaigaming.com", "goal.com", "koaisecurity.com", "oaisecurity.com"] {
            assert_no_match(d);
        }
    }

    #[test]
    fn builtin_profile_tokens_are_documented() {
        let m = LookalikeMatcher::new(&crate::config::builtin_brands());
        let mut tokens: Vec<String> = m.tokens.iter().map(|t| format!("{}{}", t.raw, if t.derived { " (derived)" } else { "" })).collect();
        tokens.sort();
        assert_eq!(tokens, ["chatgpt", "oai (derived)", "oaistatic", "oaiusercontent", "openai", "sora"]);
        let doc = include_str!("../../../docs/lookalike.md");
        for t in ["`openai`", "`chatgpt`", "`oaistatic`", "`oaiusercontent`", "`sora`", "`oai`"] {
            assert!(doc.contains(t), "docs/lookalike.md does not name token {t}");
        }
    }

    fn brand(name: &str, domains: &[&str]) -> Brand {
        Brand {
            name: name.into(),
            aliases: vec![],
            domains: domains.iter().map(|d| d.to_string()).collect(),
            legitimate_domains: vec![],
            senders: vec![],
            overrides: Default::default(),
        }
    }

    #[test]
    fn any_word_combosquat_works_for_other_brands() {
        let m = LookalikeMatcher::new(&[brand("PayPal", &["paypal.com", "paypalobjects.com"])]);
        for d in ["paypalsecure-login.com", "mypaypalwallet.net", "paypalrefunds24.xyz", "fastpaypal.shop"] {
            assert!(matches!(m.check(d), DomainClass::Lookalike(_)), "{d}");
        }
        let DomainClass::Lookalike(l) = m.check("fastpaypal.shop") else { unreachable!() };
        assert!(l.detail.starts_with("combosquat: fast|paypal"), "{}", l.detail);
        assert_eq!(m.check("paypalobjects.com"), DomainClass::Owned { brand: "PayPal".into() });
    }

    #[test]
    fn derived_token_of_another_brand_needs_a_keyword() {
        let m = LookalikeMatcher::new(&[brand("Microsoft", &["microsoft.com", "msftconnecttest.com"])]);
        assert!(m.tokens.iter().any(|t| t.raw == "msft" && t.derived));
        assert!(matches!(m.check("msft-verify.com"), DomainClass::Lookalike(_)));
        assert_eq!(m.check("msft.org"), DomainClass::NoMatch);
        assert!(matches!(m.check("microsoftgaming.com"), DomainClass::Lookalike(_)));
    }

    #[test]
    fn brand_that_is_a_common_word_gets_no_any_word_combosquat() {
        let m = LookalikeMatcher::new(&[brand("Target", &["target.com"])]);
        assert_eq!(m.check("targetpractice.com"), DomainClass::NoMatch);
        assert_eq!(m.check("ontarget.org"), DomainClass::NoMatch);
        assert!(matches!(m.check("target-login.com"), DomainClass::Lookalike(_)));
    }

    #[test]
    fn openal_org_is_reported_as_homoglyph() {
        assert_technique("openal.org", Technique::Homoglyph);
    }

    #[test]
    fn short_alias_gets_no_typo_matches() {
        let m = LookalikeMatcher::new(&[Brand {
            name: "Sora".into(),
            aliases: vec![],
            domains: vec!["sora.com".into()],
            legitimate_domains: vec![],
            senders: vec![],
            overrides: Default::default(),
        }]);
        assert_eq!(m.check("soro.com"), DomainClass::NoMatch);
        assert_eq!(m.check("sora-anything.com"), DomainClass::NoMatch);
        assert!(matches!(m.check("sora-login.com"), DomainClass::Lookalike(_)));
        assert!(matches!(m.check("sora.net"), DomainClass::Lookalike(_)));
    }

    #[test]
    fn ip_literals_and_garbage_do_not_match() {
        for d in ["", ".", "127.0.0.1", "[::1]", "com", "github.io", "-", "a..b"] {
            assert_no_match(d);
        }
    }

    #[test]
    fn technique_names_are_stable_snake_case() {
        assert_eq!(Technique::TldSwap.as_str(), "tld_swap");
        assert_eq!(Technique::Homoglyph.as_str(), "homoglyph");
    }

    fn fixture_lines(text: &str) -> impl Iterator<Item = &str> {
        text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#'))
    }

    #[test]
    fn fixture_positives_all_match_with_expected_techniques() {
        let m = matcher();
        let text = include_str!("../../../tests/fixtures/lookalike/positives.txt");
        let mut failures = Vec::new();
        let mut total = 0;
        for line in fixture_lines(text) {
            total += 1;
            let (domain, expected) = line.split_once('\t').unwrap_or((line, ""));
            match m.check(domain) {
                DomainClass::Lookalike(lm) => {
                    for want in expected.split(',').map(str::trim).filter(|w| !w.is_empty()) {
                        if !lm.techniques.iter().any(|t| t.as_str() == want) {
                            failures.push(format!("{domain}: missing {want}, got {:?} ({})", lm.techniques, lm.detail));
                        }
                    }
                }
                other => failures.push(format!("{domain}: {other:?}")),
            }
        }
        assert!(total >= 40, "only {total} positives");
        assert!(failures.is_empty(), "{} of {total} positives diverged:\n{}", failures.len(), failures.join("\n"));
    }

    #[test]
    fn fixture_negatives_never_match() {
        let m = matcher();
        let text = include_str!("../../../tests/fixtures/lookalike/negatives.txt");
        let mut failures = Vec::new();
        let mut total = 0;
        for domain in fixture_lines(text) {
            total += 1;
            if let DomainClass::Lookalike(lm) = m.check(domain) {
                failures.push(format!("{domain}: {:?} ({})", lm.techniques, lm.detail));
            }
        }
        assert!(total >= 60, "only {total} negatives");
        assert!(failures.is_empty(), "{} of {total} negatives matched:\n{}", failures.len(), failures.join("\n"));
    }
}
