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
//!      separated from the token by hyphens (`platform-openai`, `chat-openai`). A word that
//!      merely contains the token letters (`openairinterface`) matches neither rule.
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
//! * Combosquat needs a token boundary (hyphen, label start/end) or pure keywords around the
//!   token; `opening.com`, `opentable.com`, `openairinterface.org` do not match.
//! * Deliberate findings: `openal.org` *is* reported (homoglyph: `l` for `i` is a classic
//!   lookalike and dnstwist generates it); a site that legitimately needs it is listed in the
//!   brand's `legitimate_domains`.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use unicode_normalization::char::is_combining_mark;
use unicode_security::MixedScript;

use crate::config::Brand;

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

/// Words that, next to a brand token, make a combosquat even without separators. English plus
/// Spanish, French, German, Portuguese and Italian equivalents (accents are folded away).
#[rustfmt::skip]
const KEYWORDS: &[&str] = &[
    // English: support and service
    "support", "help", "helpdesk", "desk", "service", "services", "care", "customer", "customers",
    "contact", "team", "teams", "staff", "admin", "administrator", "info", "notice", "notices",
    "notification", "notifications", "alert", "alerts", "news", "update", "updates", "status",
    // security and account
    "security", "secure", "safety", "trust", "verify", "verification", "verified", "validate",
    "validation", "confirm", "confirmation", "auth", "authentication", "login", "logon", "signin",
    "sign", "signup", "register", "account", "accounts", "user", "users", "id", "sso", "password",
    "reset", "recovery", "recover", "unlock", "locked", "suspended", "access", "portal", "session",
    "identity", "protect", "protection", "fraud", "compliance", "legal", "policy", "privacy",
    // money
    "billing", "bill", "bills", "invoice", "invoices", "payment", "payments", "pay", "refund",
    "refunds", "renew", "renewal", "subscription", "subscriptions", "plan", "plans", "checkout",
    "wallet", "card", "cards", "credit", "bank", "banking", "finance", "tax", "reward", "rewards",
    "bonus", "gift", "promo", "offer", "offers", "deal", "deals", "discount",
    // product and platform
    "api", "apis", "platform", "dev", "developer", "developers", "docs", "cloud", "app", "apps",
    "web", "online", "official", "site", "store", "shop", "download", "downloads", "mail", "email",
    "inbox", "webmail", "cdn", "static", "assets", "files", "file", "share", "drive", "plus", "pro",
    "premium", "free", "trial", "enterprise", "business", "edu", "labs", "lab", "research", "ai",
    "gpt", "chat", "bot", "bots", "agent", "agents", "assistant", "prompt", "prompts", "token",
    "tokens", "key", "keys", "model", "models", "invite", "invites", "hr", "jobs", "job", "career",
    "careers", "recruit", "recruiting", "hiring", "partner", "partners", "member", "members",
    "membership", "community", "forum", "event", "events", "survey", "feedback", "ticket",
    "tickets", "case", "claim", "claims", "message", "messages", "mobile", "auth0", "oauth",
    "connect", "link", "links", "go", "get", "my", "the", "your", "our", "new", "now", "best",
    "top", "real", "hq", "inc", "corp", "llc", "ltd", "group", "global", "intl", "world", "com",
    "net", "org", "co", "io", "us", "uk", "eu", "usa", "www", "http", "https",
    // Spanish
    "soporte", "ayuda", "seguridad", "seguro", "facturacion", "factura", "facturas", "pago",
    "pagos", "cuenta", "cuentas", "acceso", "verificar", "verificacion", "equipo", "servicio",
    "servicios", "cliente", "clientes", "atencion", "iniciar", "sesion", "actualizar",
    "actualizacion", "oficial", "mi", "es", "mx", "ar",
    // French
    "securite", "assistance", "aide", "facturation", "facture", "factures", "paiement", "compte",
    "comptes", "connexion", "verifier", "equipe", "client", "clients", "mise", "jour", "officiel",
    "mon", "fr", "abonnement", "remboursement",
    // German
    "sicherheit", "hilfe", "konto", "rechnung", "rechnungen", "zahlung", "anmelden", "anmeldung",
    "verifizieren", "bestaetigen", "bestatigen", "bestaetigung", "kundendienst", "kunden", "dienst",
    "kundenservice", "mein", "de", "at", "ch", "abo",
    // Portuguese
    "suporte", "ajuda", "seguranca", "cobranca", "fatura", "faturas", "pagamento", "pagamentos",
    "conta", "contas", "acessar", "atendimento", "minha", "meu", "br", "pt",
    // Italian
    "supporto", "assistenza", "aiuto", "sicurezza", "fatturazione", "fattura", "conto", "accesso",
    "accedi", "verifica", "squadra", "servizio", "servizi", "clienti", "it",
];

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

/// Characters that can appear in a folded skeleton (see [`fold`]); DL-1 variants use these.
const FOLDED_ALPHABET: &[char] = &[
    'a', 'd', 'e', 'f', 'g', 'h', 'j', 'k', 'l', 'm', 'o', 'p', 'r', 's', 't', 'u', 'w', 'x', 'y',
    'z', '2',
];

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
}

/// A skeleton plus, for every byte of it, the byte offset of the source character in the label.
struct Folded {
    s: String,
    /// `off.len() == s.len() + 1`; the last entry is the label length.
    off: Vec<usize>,
}

impl Folded {
    /// The original label text behind skeleton bytes `start..end`.
    fn raw<'a>(&self, label: &'a str, start: usize, end: usize) -> &'a str {
        label.get(self.off[start]..self.off[end]).unwrap_or("")
    }
}

impl LookalikeMatcher {
    /// Builds the matcher: tokens, their skeletons and DL-1 variants, the keyword set and the
    /// Aho–Corasick automaton over token skeletons.
    pub fn new(brands: &[Brand]) -> Self {
        let mut infos = Vec::new();
        let mut tokens: Vec<Token> = Vec::new();
        let mut owned = HashMap::new();
        for (bi, brand) in brands.iter().enumerate() {
            infos.push(BrandInfo {
                name: brand.name.clone(),
            });
            let mut brand_tokens: Vec<Token> = Vec::new();
            for d in brand.domains.iter().chain(brand.legitimate_domains.iter()) {
                if let Some(ascii) = ascii_domain(d) {
                    owned.entry(ascii).or_insert(bi);
                }
            }
            let first_domain = brand
                .domains
                .iter()
                .filter_map(|d| ascii_domain(d))
                .next()
                .unwrap_or_default();
            for d in &brand.domains {
                let Some(ascii) = ascii_domain(d) else {
                    continue;
                };
                let Some((label, suffix)) = split_registrable(&ascii) else {
                    continue;
                };
                let raw = normalize_token(&idna::domain_to_unicode(label).0);
                add_token(&mut brand_tokens, bi, raw, &ascii, Some(suffix.to_string()));
            }
            for alias in std::iter::once(&brand.name).chain(brand.aliases.iter()) {
                add_token(
                    &mut brand_tokens,
                    bi,
                    normalize_token(alias),
                    &first_domain,
                    None,
                );
            }
            tokens.extend(brand_tokens);
        }

        let mut variants: HashMap<String, Vec<(u32, u8)>> = HashMap::new();
        for (ti, t) in tokens.iter().enumerate() {
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
        let long_tokens = (0..tokens.len())
            .filter(|&i| tokens[i].len >= DL2_MIN_LEN)
            .collect();

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
        let token_ac = AhoCorasickBuilder::new()
            .match_kind(MatchKind::Standard)
            .build(&patterns)
            .ok()
            .filter(|_| !patterns.is_empty());

        let keywords: HashSet<String> = KEYWORDS.iter().map(|k| fold(k).s).collect();
        let max_keyword = keywords.iter().map(|k| k.len()).max().unwrap_or(0);
        LookalikeMatcher {
            brands: infos,
            tokens,
            owned,
            variants,
            long_tokens,
            token_ac,
            pattern_tokens,
            keywords,
            max_keyword,
        }
    }

    /// Classifies one host name (any case, punycode or Unicode, trailing dot allowed).
    pub fn check(&self, domain: &str) -> DomainClass {
        let Some(host) = Host::parse(domain) else {
            return DomainClass::NoMatch;
        };
        if let Some(bi) = self.owner(&host.ascii) {
            return DomainClass::Owned {
                brand: self.brands[bi].name.clone(),
            };
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

    /// Typo gate: token length and whether the suffix is one the brand uses for this token.
    fn typo_allowed(&self, t: &Token, suffix: &str, dist: usize) -> bool {
        if t.len < TYPO_MIN_LEN {
            return false;
        }
        if dist >= 2 {
            return t.len >= DL2_MIN_LEN;
        }
        t.len >= TYPO_ANY_SUFFIX_MIN_LEN || t.suffixes.iter().any(|s| s == suffix)
    }

    fn match_registrable(&self, label: &str, suffix: &str) -> Option<Hit> {
        let f = fold(label);
        let stripped = strip_hyphens(&f.s);
        let label_nohyph = strip_hyphens(label);
        let hyphenated = label.contains('-');

        // Exact, homoglyph, hyphenation and DL-1 typo: one hash lookup.
        if let Some(list) = self.variants.get(stripped.as_ref()) {
            for &(ti, d) in list {
                let t = &self.tokens[ti as usize];
                if d == 0 {
                    let mut tech = Vec::new();
                    let detail;
                    if label == t.raw {
                        detail = format!("tld swap: {label}.{suffix} for {}", t.imitates);
                    } else if label_nohyph == t.raw {
                        tech.push(Technique::Hyphenation);
                        detail = format!("hyphenation: \"{label}\" for \"{}\"", t.raw);
                    } else {
                        tech.push(Technique::Homoglyph);
                        if hyphenated {
                            tech.push(Technique::Hyphenation);
                        }
                        detail = homoglyph_detail(&label_nohyph, &t.raw);
                    }
                    if !t.suffixes.iter().any(|s| s == suffix) {
                        tech.push(Technique::TldSwap);
                    }
                    return Some(Hit {
                        token: ti as usize,
                        techniques: tech,
                        normalized: f.s,
                        detail,
                    });
                }
                if self.typo_allowed(t, suffix, 1) {
                    return Some(self.typo_hit(ti as usize, &label_nohyph, hyphenated, f.s, 1));
                }
            }
        }

        // DL-2 for long tokens.
        let slen = stripped.chars().count();
        if slen + 2 >= DL2_MIN_LEN {
            for &ti in &self.long_tokens {
                let t = &self.tokens[ti];
                let tl = t.folded.chars().count();
                // Two edits only as substitutions/transpositions: two omissions or insertions
                // turn long brand tokens into ordinary words (`samplebank` for `examplebank`).
                if slen != tl || !self.typo_allowed(t, suffix, 2) {
                    continue;
                }
                if osa_distance(&stripped, &t.folded, 2) <= 2 {
                    return Some(self.typo_hit(ti, &label_nohyph, hyphenated, f.s, 2));
                }
            }
        }

        self.match_combo(label, &f, false)
    }

    fn typo_hit(
        &self,
        ti: usize,
        label_nohyph: &str,
        hyphenated: bool,
        normalized: String,
        dist: usize,
    ) -> Hit {
        let t = &self.tokens[ti];
        let mut tech = vec![Technique::Typo];
        let raw_dist = if label_nohyph.is_ascii() {
            osa_distance(label_nohyph, &t.raw, 3)
        } else {
            3
        };
        let detail = if dist == 1 && raw_dist == 1 {
            format!("typo: {}", describe_edit(label_nohyph, &t.raw))
        } else if dist == 2 && raw_dist == 2 {
            format!(
                "typo: {raw_dist} edits, \"{label_nohyph}\" for \"{}\"",
                t.raw
            )
        } else {
            tech.push(Technique::Homoglyph);
            format!("typo+homoglyph: \"{label_nohyph}\" for \"{}\"", t.raw)
        };
        if hyphenated {
            tech.push(Technique::Hyphenation);
        }
        Hit {
            token: ti,
            techniques: tech,
            normalized,
            detail,
        }
    }

    /// Brand token inside a longer label, with keywords or a hyphen boundary around it. With
    /// `subdomain` the stricter subdomain length floor applies.
    fn match_combo(&self, label: &str, f: &Folded, subdomain: bool) -> Option<Hit> {
        let ac = self.token_ac.as_ref()?;
        for m in ac.find_overlapping_iter(f.s.as_str()) {
            let (s, e) = (m.start(), m.end());
            if s == 0 && e == f.s.len() {
                continue;
            }
            let left = &f.s[..s];
            let right = &f.s[e..];
            let boundary = (left.is_empty() || left.ends_with('-'))
                && (right.is_empty() || right.starts_with('-'));
            let words_left = self.segment(f, label, 0, s);
            let words_right = self.segment(f, label, e, f.s.len());
            for &ti in &self.pattern_tokens[m.pattern().as_usize()] {
                let t = &self.tokens[ti];
                let floor = if subdomain {
                    SUBDOMAIN_MIN_LEN
                } else {
                    TOKEN_MIN_LEN
                };
                if t.len < floor {
                    continue;
                }
                let keywords_ok = match (&words_left, &words_right) {
                    (Some(_), Some(_)) => t.len >= 4 || boundary,
                    _ => false,
                };
                let any_word_ok = boundary && t.len >= ANY_WORD_MIN_LEN;
                if !keywords_ok && !any_word_ok {
                    continue;
                }
                // Hyphen matches name the whole words; keyword matches name the keywords.
                let words: Vec<&str> = if !any_word_ok {
                    words_left
                        .iter()
                        .chain(words_right.iter())
                        .flatten()
                        .map(|&(a, b)| f.raw(label, a, b))
                        .collect()
                } else {
                    let mut w = split_words(label, f, 0, s);
                    w.extend(split_words(label, f, e, f.s.len()));
                    w
                };
                let core = f.raw(label, s, e);
                let mut tech = vec![Technique::Combosquat];
                if strip_hyphens(core) != t.raw {
                    tech.push(Technique::Homoglyph);
                }
                let quoted: Vec<String> = words.iter().map(|w| format!("\"{w}\"")).collect();
                let mut detail = format!("combosquat: {}", quoted.join(" + "));
                if tech.contains(&Technique::Homoglyph) {
                    detail.push_str(&format!(" around \"{core}\" for \"{}\"", t.raw));
                }
                return Some(Hit {
                    token: ti,
                    techniques: tech,
                    normalized: f.s.clone(),
                    detail,
                });
            }
        }
        if subdomain {
            return None;
        }
        self.match_hyphen_parts(label, f)
    }

    /// Hyphen-separated parts: the token split by hyphens among other words
    /// (`open-ai-support`), or one part being a DL-1 typo of a 6+ character token next to
    /// keywords (`opeanai-login`).
    fn match_hyphen_parts(&self, label: &str, f: &Folded) -> Option<Hit> {
        if !f.s.contains('-') {
            return None;
        }
        let mut parts: Vec<(usize, usize)> = Vec::new();
        let mut start = 0;
        for (i, c) in f.s.char_indices() {
            if c == '-' {
                if i > start {
                    parts.push((start, i));
                }
                start = i + 1;
            }
        }
        if start < f.s.len() {
            parts.push((start, f.s.len()));
        }
        for i in 0..parts.len() {
            let mut joined = String::new();
            for j in i..parts.len() {
                joined.push_str(&f.s[parts[j].0..parts[j].1]);
                let Some(list) = self.variants.get(&joined) else {
                    continue;
                };
                let (first, last) = (parts[i].0, parts[j].1);
                if first == 0 && last == f.s.len() {
                    // The whole label: hyphenation and typos were decided on the full label.
                    continue;
                }
                let others_are_keywords = self.segment(f, label, 0, first).is_some()
                    && self.segment(f, label, last, f.s.len()).is_some();
                for &(ti, d) in list {
                    let t = &self.tokens[ti as usize];
                    let core = f.raw(label, first, last);
                    let mut tech = vec![Technique::Combosquat];
                    if d == 0
                        && j > i
                        && t.len >= TOKEN_MIN_LEN
                        && (others_are_keywords || t.len >= ANY_WORD_MIN_LEN)
                    {
                        tech.push(Technique::Hyphenation);
                        if strip_hyphens(core) != t.raw {
                            tech.push(Technique::Homoglyph);
                        }
                    } else if d == 1 && t.len >= ANY_WORD_MIN_LEN && others_are_keywords {
                        tech.push(Technique::Typo);
                        if j > i {
                            tech.push(Technique::Hyphenation);
                        }
                    } else {
                        continue;
                    }
                    let words: Vec<String> = split_words(label, f, 0, first)
                        .into_iter()
                        .chain(split_words(label, f, last, f.s.len()))
                        .map(|w| format!("\"{w}\""))
                        .collect();
                    let detail = format!(
                        "combosquat: {} around \"{core}\" for \"{}\"",
                        words.join(" + "),
                        t.raw
                    );
                    return Some(Hit {
                        token: ti as usize,
                        techniques: tech,
                        normalized: f.s.clone(),
                        detail,
                    });
                }
            }
        }
        None
    }

    fn match_subdomain(&self, labels: &[&str], reg: usize) -> Option<Hit> {
        let foreign = labels[reg..].join(".");
        for &label in labels[..reg].iter().rev() {
            if label.is_empty() {
                continue;
            }
            let f = fold(label);
            let stripped = strip_hyphens(&f.s);
            if let Some(list) = self.variants.get(stripped.as_ref()) {
                for &(ti, d) in list {
                    let t = &self.tokens[ti as usize];
                    if d != 0 || t.len < SUBDOMAIN_MIN_LEN {
                        continue;
                    }
                    let mut tech = vec![Technique::Subdomain];
                    if strip_hyphens(label) != t.raw {
                        tech.push(Technique::Homoglyph);
                    } else if label != t.raw {
                        tech.push(Technique::Hyphenation);
                    }
                    let detail = format!("subdomain: \"{label}\" under foreign domain {foreign}");
                    return Some(Hit {
                        token: ti as usize,
                        techniques: tech,
                        normalized: f.s,
                        detail,
                    });
                }
            }
            if let Some(mut hit) = self.match_combo(label, &f, true) {
                hit.techniques.insert(0, Technique::Subdomain);
                hit.detail = format!(
                    "subdomain: \"{label}\" under foreign domain {foreign}; {}",
                    hit.detail
                );
                return Some(hit);
            }
        }
        // Token split by dots: open.ai.com, chat.gpt.com.
        for start in 0..reg {
            let joined: String = labels[start..=reg].concat();
            let f = fold(&joined);
            if let Some(list) = self.variants.get(strip_hyphens(&f.s).as_ref()) {
                if let Some(&(ti, _)) = list
                    .iter()
                    .find(|&&(ti, d)| d == 0 && self.tokens[ti as usize].len >= SUBDOMAIN_MIN_LEN)
                {
                    let shown = labels[start..=reg].join(".");
                    let t = &self.tokens[ti as usize];
                    let detail = format!("subdomain: \"{shown}\" splits \"{}\" with dots", t.raw);
                    return Some(Hit {
                        token: ti as usize,
                        techniques: vec![Technique::Subdomain],
                        normalized: f.s,
                        detail,
                    });
                }
            }
        }
        None
    }

    /// Segments skeleton bytes `start..end` (hyphens are free separators) into keywords and
    /// digit runs; `None` if impossible. The empty range segments trivially.
    fn segment(
        &self,
        f: &Folded,
        label: &str,
        start: usize,
        end: usize,
    ) -> Option<Vec<(usize, usize)>> {
        let b = f.s.as_bytes();
        if start >= end {
            return Some(Vec::new());
        }
        if !f.s.is_char_boundary(start) || !f.s.is_char_boundary(end) {
            return None;
        }
        // back[i] = Some(previous position) once position i is reachable.
        let mut back: Vec<Option<usize>> = vec![None; end - start + 1];
        back[0] = Some(start);
        for i in start..end {
            if back[i - start].is_none() {
                continue;
            }
            if b[i] == b'-' {
                back[i + 1 - start].get_or_insert(i);
                continue;
            }
            let raw_digits = f.raw(label, i, i + 1).bytes().all(|c| c.is_ascii_digit());
            if raw_digits {
                let mut j = i;
                while j < end
                    && f.raw(label, j, j + 1).bytes().all(|c| c.is_ascii_digit())
                    && b[j] != b'-'
                {
                    j += 1;
                    back[j - start].get_or_insert(i);
                }
            }
            for len in 2..=self.max_keyword.min(end - i) {
                if let Some(w) = f.s.get(i..i + len) {
                    if self.keywords.contains(w) {
                        back[i + len - start].get_or_insert(i);
                    }
                }
            }
        }
        back[end - start]?;
        let mut words = Vec::new();
        let mut pos = end;
        while pos > start {
            let prev = back[pos - start]?;
            if !(pos - prev == 1 && b[prev] == b'-') {
                words.push((prev, pos));
            }
            pos = prev;
        }
        words.reverse();
        Some(words)
    }
}

/// Raw text of the hyphen-separated words in skeleton range `start..end`.
fn split_words<'a>(label: &'a str, f: &Folded, start: usize, end: usize) -> Vec<&'a str> {
    if start >= end {
        return Vec::new();
    }
    f.raw(label, start, end)
        .split('-')
        .filter(|w| !w.is_empty())
        .collect()
}

fn add_token(
    list: &mut Vec<Token>,
    brand: usize,
    raw: String,
    imitates: &str,
    suffix: Option<String>,
) {
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
    list.push(Token {
        brand,
        raw,
        folded,
        len,
        imitates: imitates.to_string(),
        suffixes: suffix.into_iter().collect(),
    });
}

/// Lowercase alphanumerics only: `"Chat GPT"` → `chatgpt`.
fn normalize_token(s: &str) -> String {
    s.chars()
        .flat_map(char::to_lowercase)
        .filter(|c| c.is_alphanumeric())
        .collect()
}

/// A configured domain as lowercase ASCII (punycode), without a trailing dot.
fn ascii_domain(d: &str) -> Option<String> {
    let d = d.trim().trim_end_matches('.').to_lowercase();
    if d.is_empty() {
        return None;
    }
    if d.is_ascii() {
        return Some(d);
    }
    idna::domain_to_ascii(&d).ok()
}

/// (registrable label, public suffix) of an ASCII domain.
fn split_registrable(ascii: &str) -> Option<(&str, &str)> {
    let n = suffix_label_count(ascii);
    let labels: Vec<&str> = ascii.split('.').collect();
    if labels.len() <= n {
        return None;
    }
    let reg = labels.len() - n - 1;
    let suffix_start = labels[..=reg].iter().map(|l| l.len() + 1).sum::<usize>();
    Some((labels[reg], &ascii[suffix_start..]))
}

fn suffix_label_count(ascii: &str) -> usize {
    match psl::suffix(ascii.as_bytes()) {
        Some(s) => s.as_bytes().iter().filter(|&&b| b == b'.').count() + 1,
        None => 1,
    }
}

/// A normalised host: lowercase Unicode form for matching, ASCII form for the PSL and owned
/// lookups.
struct Host {
    unicode: String,
    ascii: String,
    suffix_labels: usize,
}

impl Host {
    fn parse(input: &str) -> Option<Host> {
        let t = input.trim().trim_end_matches('.');
        let t = t
            .strip_prefix('[')
            .and_then(|x| x.strip_suffix(']'))
            .unwrap_or(t);
        if t.is_empty() || t.len() > 253 {
            return None;
        }
        if t.parse::<IpAddr>().is_ok() {
            return None;
        }
        // Host names only: letters, digits, hyphen, underscore, dot (and non-ASCII letters,
        // which IDNA checks). Anything else is a parsing artefact, not a domain.
        if t.bytes().any(|b| {
            b.is_ascii() && !(b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
        }) {
            return None;
        }
        let (unicode, ascii) = if t.is_ascii() && !has_ace(t) {
            let l = t.to_ascii_lowercase();
            (l.clone(), l)
        } else {
            let lower = t.to_lowercase();
            let (u, _) = idna::domain_to_unicode(&lower);
            let u = if u.is_empty() { lower } else { u };
            let a = idna::domain_to_ascii(&u).unwrap_or_else(|_| u.clone());
            (u, a)
        };
        let mut suffix_labels = suffix_label_count(&ascii);
        if ascii.split('.').count() != unicode.split('.').count() {
            suffix_labels = 1;
        }
        Some(Host {
            unicode,
            ascii,
            suffix_labels,
        })
    }
}

fn has_ace(s: &str) -> bool {
    s.as_bytes()
        .windows(4)
        .any(|w| w.eq_ignore_ascii_case(b"xn--"))
}

fn strip_hyphens(s: &str) -> std::borrow::Cow<'_, str> {
    if s.contains('-') {
        std::borrow::Cow::Owned(s.replace('-', ""))
    } else {
        std::borrow::Cow::Borrowed(s)
    }
}

/// Folds a label to its confusable skeleton; see the module documentation for the passes.
fn fold(label: &str) -> Folded {
    // Pass 0 + 1: lowercase, UTS #39 skeleton for non-ASCII, single-glyph folding.
    let mut chars: Vec<(char, usize)> = Vec::with_capacity(label.len());
    for (off, c) in label.char_indices() {
        if c.is_ascii() {
            chars.push((fold_glyph(c.to_ascii_lowercase()), off));
            continue;
        }
        for lc in c.to_lowercase() {
            let direct = fold_latin_lookalike(lc);
            if direct != lc {
                chars.push((fold_glyph(direct), off));
                continue;
            }
            let mut buf = [0u8; 4];
            for sc in unicode_security::skeleton(lc.encode_utf8(&mut buf)) {
                for l in sc.to_lowercase() {
                    if !is_combining_mark(l) {
                        chars.push((fold_glyph(fold_latin_lookalike(l)), off));
                    }
                }
            }
        }
    }
    // Pass 2: glyph pairs; pass 3: look-alike classes.
    let mut s = String::with_capacity(chars.len());
    let mut offs = Vec::with_capacity(chars.len() + 1);
    let mut i = 0;
    while i < chars.len() {
        let (c, off) = chars[i];
        let next = chars.get(i + 1).map(|x| x.0);
        let pair = match (c, next) {
            ('r', Some('n')) => Some('m'),
            _ => None,
        };
        let (out, step) = match pair {
            Some(p) => (p, 2),
            None => (c, 1),
        };
        let out = fold_class(out);
        s.push(out);
        for _ in 0..out.len_utf8() {
            offs.push(off);
        }
        i += step;
    }
    offs.push(label.len());
    Folded { s, off: offs }
}

fn fold_glyph(c: char) -> char {
    match c {
        '0' => 'o',
        '1' | 'i' | '|' | '!' => 'l',
        _ => c,
    }
}

/// Latin letters with diacritics, strokes and hooks, small capitals and the like that UTS #39
/// leaves alone (`ə`, `ꞑ`, `ø`, `ł`, `ᴛ`); the set registries allow and dnstwist uses.
fn fold_latin_lookalike(c: char) -> char {
    if c.is_ascii() {
        return c;
    }
    LATIN_LOOKALIKES
        .iter()
        .find(|(set, _)| set.contains(c))
        .map_or(c, |&(_, base)| base)
}

/// (look-alike characters, the ASCII character they pass for); dnstwist's and the IDN
/// registries' Latin glyph tables plus small capitals.
const LATIN_LOOKALIKES: &[(&str, char)] = &[
    ("ƻ", '2'),
    ("àáâãäåāăąǎȧɑəạᴀ", 'a'),
    ("èéêëēĕėęěȩɇḛẹᴇ", 'e'),
    ("òóôõöøōŏőơȯᴏọỏ", 'o'),
    ("ŕŗřȑȓɍɼɽɾʀṙṛṟ", 'r'),
    ("ʒ", '3'),
    ("ƽ", '5'),
    ("ƅɓʙḃḅḇ", 'b'),
    ("çćĉċčƈᴄ", 'c'),
    ("ďđɖɗḋḍḏḑḓᴅ", 'd'),
    ("ƒḟꜰ", 'f'),
    ("ĝğġģǥǧǵɡɢ", 'g'),
    ("ĥħȟɦḣḥḧḩḫẖⱨ", 'h'),
    ("ìíîïĩīĭįıǐȋɨɩɪỉị", 'l'),
    ("ĵǰɉʝᴊ", 'j'),
    ("ķĸǩᴋḳḵⱪ", 'k'),
    ("ĺļľłɫʟ", 'l'),
    ("ɱᴍḿṁṃ", 'm'),
    ("ñńņňŋǹṅṇṉꞑɴ", 'n'),
    ("ƥƿṕṗᴘ", 'p'),
    ("ʠ", 'q'),
    ("śŝşšșʂṡṣꜱ", 's'),
    ("ţťŧƫțṫṭᴛ", 't'),
    ("ùúûüũūŭůűųưǔȕȗʉᴜụ", 'u'),
    ("ᴠᶌṽṿⱱⱴ", 'v'),
    ("ŵᴡẁẃẅẇẉẘⱳ", 'w'),
    ("ẋẍ", 'x'),
    ("ýÿŷƴȳɏʏẏỵỿ", 'y'),
    ("źżžƶʐᴢẓẕⱬ", 'z'),
];

fn fold_class(c: char) -> char {
    match c {
        'c' => 'e',
        'q' => 'g',
        'v' => 'u',
        'n' => 'm',
        'b' => 'd',
        '3' => 'e',
        '4' => 'a',
        '5' => 's',
        '7' => 't',
        '6' | '8' => 'd',
        '9' => 'g',
        _ => c,
    }
}

/// Multi-character ASCII look-alikes (`d`→`cl`, `k`→`lc`, `m`→`nn`, `w`→`vv`, …). They are
/// applied to brand tokens at build time, one at a time, rather than folded out of input,
/// because folding `cl`→`d` in input would also eat real letter pairs (`openci`, `examplcbank`).
const GLYPH_EXPANSIONS: &[(char, &str)] = &[
    ('b', "lb"),
    ('b', "cl"),
    ('d', "cl"),
    ('d', "dl"),
    ('h', "lh"),
    ('k', "lc"),
    ('m', "nn"),
    ('m', "rr"),
    ('w', "vv"),
];

/// Skeletons of `token` and of every single multi-character glyph expansion of it.
fn glyph_expansions(token: &str) -> Vec<String> {
    let mut out = vec![fold(token).s];
    for (i, c) in token.char_indices() {
        for &(from, to) in GLYPH_EXPANSIONS {
            if c == from {
                let expanded = format!("{}{}{}", &token[..i], to, &token[i + c.len_utf8()..]);
                let f = fold(&expanded).s;
                if !out.contains(&f) {
                    out.push(f);
                }
            }
        }
    }
    out
}

/// Every string at Damerau–Levenshtein (optimal string alignment) distance 1 from `s` over
/// [`FOLDED_ALPHABET`].
fn dl1_variants(s: &str) -> Vec<String> {
    let c: Vec<char> = s.chars().collect();
    let mut out = Vec::new();
    let build = |v: &[char]| v.iter().collect::<String>();
    for i in 0..c.len() {
        let mut v = c.clone();
        v.remove(i);
        out.push(build(&v));
        if i + 1 < c.len() {
            let mut v = c.clone();
            v.swap(i, i + 1);
            out.push(build(&v));
        }
        for &a in FOLDED_ALPHABET {
            if a != c[i] {
                let mut v = c.clone();
                v[i] = a;
                out.push(build(&v));
            }
        }
    }
    for i in 0..=c.len() {
        for &a in FOLDED_ALPHABET {
            let mut v = c.clone();
            v.insert(i, a);
            out.push(build(&v));
        }
    }
    out.retain(|v| v != s);
    out
}

/// Optimal-string-alignment distance, giving up (returning `max + 1`) beyond `max`.
fn osa_distance(a: &str, b: &str, max: usize) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    if a.len().abs_diff(b.len()) > max {
        return max + 1;
    }
    let w = b.len() + 1;
    let mut d = vec![0usize; (a.len() + 1) * w];
    for (j, cell) in d.iter_mut().take(w).enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        d[i * w] = i;
        let mut row_min = usize::MAX;
        for j in 1..w {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[(i - 1) * w + j] + 1)
                .min(d[i * w + j - 1] + 1)
                .min(d[(i - 1) * w + j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[(i - 2) * w + j - 2] + 1);
            }
            d[i * w + j] = v;
            row_min = row_min.min(v);
        }
        if row_min > max {
            return max + 1;
        }
    }
    d[a.len() * w + b.len()].min(max + 1)
}

const KEYBOARD_ROWS: [&str; 4] = ["1234567890", "qwertyuiop", "asdfghjkl", "zxcvbnm"];

fn key_pos(c: char) -> Option<(i32, i32)> {
    KEYBOARD_ROWS
        .iter()
        .enumerate()
        .find_map(|(r, row)| row.find(c).map(|col| (r as i32, col as i32)))
}

/// Neighbours on a QWERTY keyboard (rows are staggered by half a key).
fn keyboard_adjacent(a: char, b: char) -> bool {
    match (key_pos(a), key_pos(b)) {
        (Some((ra, ca)), Some((rb, cb))) => match rb - ra {
            0 => (ca - cb).abs() == 1,
            1 => cb == ca || cb == ca - 1,
            -1 => cb == ca || cb == ca + 1,
            _ => false,
        },
        _ => false,
    }
}

fn is_vowel(c: char) -> bool {
    matches!(c, 'a' | 'e' | 'i' | 'o' | 'u' | 'y')
}

/// Names a single edit turning `brand` into `seen` (both at OSA distance 1).
fn describe_edit(seen: &str, brand: &str) -> String {
    let s: Vec<char> = seen.chars().collect();
    let b: Vec<char> = brand.chars().collect();
    let first = s
        .iter()
        .zip(&b)
        .position(|(x, y)| x != y)
        .unwrap_or(s.len().min(b.len()));
    if s.len() + 1 == b.len() {
        return format!("omission of '{}'", b[first]);
    }
    if s.len() == b.len() + 1 {
        let c = s[first];
        let prev = first.checked_sub(1).map(|i| s[i]);
        let next = s.get(first + 1).copied();
        if prev == Some(c) || next == Some(c) {
            return format!("repetition of '{c}'");
        }
        if prev.is_some_and(|p| keyboard_adjacent(p, c))
            || next.is_some_and(|n| keyboard_adjacent(n, c))
        {
            return format!("insertion of '{c}' (keyboard-adjacent)");
        }
        return format!("insertion of '{c}'");
    }
    if first + 1 < s.len() && s[first] == b[first + 1] && s[first + 1] == b[first] {
        return format!("transposition of '{}{}'", b[first], b[first + 1]);
    }
    let (x, y) = (b[first], s[first]);
    let kind = if is_vowel(x) && is_vowel(y) {
        "vowel swap"
    } else if (x as u32 ^ y as u32).count_ones() == 1 {
        "bit flip"
    } else if keyboard_adjacent(x, y) {
        "keyboard-adjacent replacement"
    } else {
        "replacement"
    };
    format!("{kind} '{x}'→'{y}'")
}

fn homoglyph_detail(seen: &str, brand: &str) -> String {
    let s: Vec<char> = seen.chars().collect();
    let b: Vec<char> = brand.chars().collect();
    let script = if seen.is_ascii() {
        ""
    } else if seen.is_single_script() {
        ", whole-script confusable"
    } else {
        ", mixed-script"
    };
    if s.len() == b.len() {
        let pairs: Vec<String> = s
            .iter()
            .zip(&b)
            .filter(|(x, y)| x != y)
            .map(|(x, y)| {
                if x.is_ascii() {
                    format!("'{x}' for '{y}'")
                } else {
                    format!("'{x}' (U+{:04X}) for '{y}'", *x as u32)
                }
            })
            .collect();
        format!("homoglyph: {}{script}", pairs.join(", "))
    } else {
        format!("homoglyph: \"{seen}\" for \"{brand}\"{script}")
    }
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
        assert!(
            m.techniques.contains(&t),
            "{d}: expected {t}, got {:?} ({})",
            m.techniques,
            m.detail
        );
        m
    }

    fn assert_no_match(d: &str) {
        let c = matcher().check(d);
        assert_eq!(c, DomainClass::NoMatch, "{d}");
    }

    #[test]
    fn owned_domains_and_subdomains_are_owned() {
        let m = matcher();
        for d in [
            "openai.com",
            "OpenAI.COM.",
            "platform.openai.com",
            "chatgpt.com",
            "mail.examplebank.com",
        ] {
            assert!(matches!(m.check(d), DomainClass::Owned { .. }), "{d}");
        }
    }

    #[test]
    fn legitimate_esp_domain_is_owned_not_a_finding() {
        assert_eq!(
            matcher().check("x.openaimail.example-esp.net"),
            DomainClass::Owned {
                brand: "OpenAI".into()
            }
        );
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
    fn osa_counts_two_transpositions_as_two() {
        assert_eq!(osa_distance("exampeldmak", "exampledamk", 2), 2);
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
            overrides: Default::default(),
        }]);
        assert_eq!(m.check("soro.com"), DomainClass::NoMatch);
        assert_eq!(m.check("sora-anything.com"), DomainClass::NoMatch);
        assert!(matches!(
            m.check("sora-login.com"),
            DomainClass::Lookalike(_)
        ));
        assert!(matches!(m.check("sora.net"), DomainClass::Lookalike(_)));
    }

    #[test]
    fn ip_literals_and_garbage_do_not_match() {
        for d in [
            "",
            ".",
            "127.0.0.1",
            "[::1]",
            "com",
            "github.io",
            "-",
            "a..b",
        ] {
            assert_no_match(d);
        }
    }

    #[test]
    fn fold_is_case_insensitive_and_idempotent_on_brand_tokens() {
        assert_eq!(fold("OpenAI").s, fold("openai").s);
        assert_eq!(fold(&fold("openai").s).s, fold("openai").s);
    }

    #[test]
    fn technique_names_are_stable_snake_case() {
        assert_eq!(Technique::TldSwap.as_str(), "tld_swap");
        assert_eq!(Technique::Homoglyph.as_str(), "homoglyph");
    }

    fn fixture_lines(text: &str) -> impl Iterator<Item = &str> {
        text.lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
    }

    #[test]
    fn fixture_positives_all_match_with_expected_techniques() {
        let m = matcher();
        let text = include_str!("../../tests/fixtures/lookalike/positives.txt");
        let mut failures = Vec::new();
        let mut total = 0;
        for line in fixture_lines(text) {
            total += 1;
            let (domain, expected) = line.split_once('\t').unwrap_or((line, ""));
            match m.check(domain) {
                DomainClass::Lookalike(lm) => {
                    for want in expected.split(',').map(str::trim).filter(|w| !w.is_empty()) {
                        if !lm.techniques.iter().any(|t| t.as_str() == want) {
                            failures.push(format!(
                                "{domain}: missing {want}, got {:?} ({})",
                                lm.techniques, lm.detail
                            ));
                        }
                    }
                }
                other => failures.push(format!("{domain}: {other:?}")),
            }
        }
        assert!(total >= 40, "only {total} positives");
        assert!(
            failures.is_empty(),
            "{} of {total} positives diverged:\n{}",
            failures.len(),
            failures.join("\n")
        );
    }

    #[test]
    fn fixture_negatives_never_match() {
        let m = matcher();
        let text = include_str!("../../tests/fixtures/lookalike/negatives.txt");
        let mut failures = Vec::new();
        let mut total = 0;
        for domain in fixture_lines(text) {
            total += 1;
            if let DomainClass::Lookalike(lm) = m.check(domain) {
                failures.push(format!("{domain}: {:?} ({})", lm.techniques, lm.detail));
            }
        }
        assert!(total >= 60, "only {total} negatives");
        assert!(
            failures.is_empty(),
            "{} of {total} negatives matched:\n{}",
            failures.len(),
            failures.join("\n")
        );
    }
}
