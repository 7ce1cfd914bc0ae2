//! Combosquats (a brand token with keywords or hyphen-separated words around it, or split by hyphens), the keyword
//! list, and the subdomain tricks (a brand token under a foreign domain, or split by dots).

use super::fold::{fold, strip_hyphens, Folded};
use super::segment::{segment, Kind};
use super::{Hit, LookalikeMatcher, Strength, Technique, ANY_WORD_MIN_LEN, SUBDOMAIN_MIN_LEN, TOKEN_MIN_LEN};

/// Words that, next to a brand token, make a combosquat even without separators. English plus
/// Spanish, French, German, Portuguese and Italian equivalents (accents are folded away).
#[rustfmt::skip]
pub(super) const KEYWORDS: &[&str] = &[
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

impl LookalikeMatcher {
    /// Brand token inside a longer label, with keywords or a hyphen boundary around it. With
    /// `subdomain` the stricter subdomain length floor applies.
    pub(super) fn match_combo(&self, label: &str, f: &Folded, subdomain: bool) -> Option<Hit> {
        let ac = self.token_ac.as_ref()?;
        // Occurrences of any-word tokens, for segmentation: (raw start, raw end, token).
        let mut occurrences: Vec<(usize, usize, usize)> = Vec::new();
        for m in ac.find_overlapping_iter(f.s.as_str()) {
            let (s, e) = (m.start(), m.end());
            if s == 0 && e == f.s.len() {
                continue;
            }
            for &ti in &self.pattern_tokens[m.pattern().as_usize()] {
                if self.tokens[ti].any_word {
                    occurrences.push((f.raw_offset(s), f.raw_offset(e), ti));
                }
            }
            let left = &f.s[..s];
            let right = &f.s[e..];
            let boundary = (left.is_empty() || left.ends_with('-')) && (right.is_empty() || right.starts_with('-'));
            let words_left = self.segment(f, label, 0, s);
            let words_right = self.segment(f, label, e, f.s.len());
            for &ti in &self.pattern_tokens[m.pattern().as_usize()] {
                let t = &self.tokens[ti];
                let floor = if subdomain { SUBDOMAIN_MIN_LEN } else { TOKEN_MIN_LEN };
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
                    words_left.iter().chain(words_right.iter()).flatten().map(|&(a, b)| f.raw(label, a, b)).collect()
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
                let strength = if keywords_ok { Strength::Full } else { self.hyphen_words_strength(&words) };
                return Some(Hit { token: ti, techniques: tech, normalized: f.s.clone(), detail, strength });
            }
        }
        if !occurrences.is_empty() {
            if let Some(hit) = self.match_segmented(label, f, &occurrences) {
                return Some(hit);
            }
        }
        if subdomain {
            return None;
        }
        self.match_hyphen_parts(label, f)
    }

    /// Strength of a combosquat with hyphen-separated words that are not all keywords: full if
    /// one of them is a keyword, else digits or random letters if one is no listed word, else
    /// other words.
    fn hyphen_words_strength(&self, words: &[&str]) -> Strength {
        let list = super::segment::words();
        if words.iter().any(|w| self.keywords.contains(&fold(w).s)) {
            Strength::Full
        } else if words.iter().any(|w| !list.all_words(&w.to_lowercase()) && list.zipf(&w.to_lowercase()).is_none()) {
            Strength::DigitsOrRandom
        } else {
            Strength::OtherWords
        }
    }

    /// A brand token joined to arbitrary words, digits or random letters: the label's cheapest
    /// word segmentation (see `segment`) has the token as one of its segments.
    fn match_segmented(&self, label: &str, f: &Folded, occurrences: &[(usize, usize, usize)]) -> Option<Hit> {
        let segments = segment(label, occurrences);
        let brand = segments.iter().find_map(|s| match s.kind {
            Kind::Brand(ti) => Some((s.start, s.end, ti)),
            _ => None,
        })?;
        let (start, end, ti) = brand;
        let t = &self.tokens[ti];
        let parts: Vec<&str> = segments.iter().map(|s| &label[s.start..s.end]).collect();
        let mut keyword = false;
        let mut random = false;
        for s in segments.iter().filter(|s| !matches!(s.kind, Kind::Brand(_))) {
            let text = &label[s.start..s.end];
            if self.keywords.contains(&fold(text).s) {
                keyword = true;
            } else if matches!(s.kind, Kind::Digits | Kind::Unknown) {
                random = true;
            }
        }
        let (rest, strength) = if keyword {
            ("with a keyword", Strength::Full)
        } else if random {
            ("with digits or random letters", Strength::DigitsOrRandom)
        } else {
            ("with other words", Strength::OtherWords)
        };
        let core = &label[start..end];
        let mut tech = vec![Technique::Combosquat];
        let mut detail = format!("combosquat: {} ({rest})", parts.join("|"));
        if strip_hyphens(core) != t.raw {
            tech.push(Technique::Homoglyph);
            detail.push_str(&format!(" around \"{core}\" for \"{}\"", t.raw));
        }
        Some(Hit { token: ti, techniques: tech, normalized: f.s.clone(), detail, strength })
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
                let others_are_keywords = self.segment(f, label, 0, first).is_some() && self.segment(f, label, last, f.s.len()).is_some();
                for &(ti, d) in list {
                    let t = &self.tokens[ti as usize];
                    let core = f.raw(label, first, last);
                    let mut tech = vec![Technique::Combosquat];
                    if d == 0 && j > i && t.len >= TOKEN_MIN_LEN && (others_are_keywords || t.len >= ANY_WORD_MIN_LEN) {
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
                    let detail = format!("combosquat: {} around \"{core}\" for \"{}\"", words.join(" + "), t.raw);
                    return Some(Hit { token: ti as usize, techniques: tech, normalized: f.s.clone(), detail, strength: Strength::Full });
                }
            }
        }
        None
    }

    pub(super) fn match_subdomain(&self, labels: &[&str], reg: usize) -> Option<Hit> {
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
                    return Some(Hit { token: ti as usize, techniques: tech, normalized: f.s, detail, strength: Strength::Full });
                }
            }
            if let Some(mut hit) = self.match_combo(label, &f, true) {
                hit.techniques.insert(0, Technique::Subdomain);
                hit.detail = format!("subdomain: \"{label}\" under foreign domain {foreign}; {}", hit.detail);
                return Some(hit);
            }
        }
        // Token split by dots: open.ai.com, chat.gpt.com.
        for start in 0..reg {
            let joined: String = labels[start..=reg].concat();
            let f = fold(&joined);
            if let Some(list) = self.variants.get(strip_hyphens(&f.s).as_ref()) {
                if let Some(&(ti, _)) = list.iter().find(|&&(ti, d)| d == 0 && self.tokens[ti as usize].len >= SUBDOMAIN_MIN_LEN) {
                    let shown = labels[start..=reg].join(".");
                    let t = &self.tokens[ti as usize];
                    let detail = format!("subdomain: \"{shown}\" splits \"{}\" with dots", t.raw);
                    return Some(Hit {
                        token: ti as usize,
                        techniques: vec![Technique::Subdomain],
                        normalized: f.s,
                        detail,
                        strength: Strength::Full,
                    });
                }
            }
        }
        None
    }

    /// Segments skeleton bytes `start..end` (hyphens are free separators) into keywords and
    /// digit runs; `None` if impossible. The empty range segments trivially.
    fn segment(&self, f: &Folded, label: &str, start: usize, end: usize) -> Option<Vec<(usize, usize)>> {
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
                while j < end && f.raw(label, j, j + 1).bytes().all(|c| c.is_ascii_digit()) && b[j] != b'-' {
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
    f.raw(label, start, end).split('-').filter(|w| !w.is_empty()).collect()
}
