//! Lure phrases: one data file per language, all matched in one Aho–Corasick
//! pass over the normalised text.
//!
//! File format (`data/phrases/<lang>.txt`, UTF-8):
//! ```text
//! # comment (<TAB> is one tab character)
//! family<TAB>phrase
//! password<TAB>verify your password
//! api_key<TAB>api key will be revoked
//! account_threat<TAB>suspend*
//! ```
//! `family` is one of [`Family::NAMES`]. A phrase is normalised exactly like
//! message text ([`super::normalise::normalize`]), so accents, case, punctuation and
//! homoglyphs do not matter. A phrase matches whole words; a trailing `*`
//! lets the last word continue (`suspend*` matches "suspended"). Phrases of
//! [`COMPACT_MIN`] letters or more also match with the spaces removed, which
//! catches words split by stray spaces (`con t a suspensa`).

use super::normalise::normalize;
use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use std::path::Path;

/// Phrases at least this long (letters and digits, spaces removed) are also
/// matched against the text with all spaces removed.
pub const COMPACT_MIN: usize = 14;

/// A kind of lure. Each is one rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    /// Asks for an API key, secret key, access token or wallet recovery phrase.
    ApiKey,
    /// Asks for a password or to log in to "verify" an account.
    Password,
    /// Asks for an MFA / 2FA / verification / one-time code.
    MfaCode,
    /// Threatens the account or presses for time.
    AccountThreat,
    /// Refers to a security incident, data breach, third-party vendor.
    Incident,
    /// Payment or billing failure.
    Payment,
    /// Prize, giveaway, airdrop or gift-card bait.
    Reward,
}

impl Family {
    pub const NAMES: [&'static str; 7] = ["api_key", "password", "mfa_code", "account_threat", "incident", "payment", "reward"];
    pub const ALL: [Family; 7] =
        [Family::ApiKey, Family::Password, Family::MfaCode, Family::AccountThreat, Family::Incident, Family::Payment, Family::Reward];

    pub fn parse(s: &str) -> Option<Family> {
        Self::NAMES.iter().position(|n| *n == s).map(|i| Self::ALL[i])
    }
    pub fn name(self) -> &'static str {
        Self::NAMES[Self::ALL.iter().position(|f| *f == self).unwrap_or(0)]
    }
    /// The family asks for a secret (the part of a lure that does damage).
    pub fn is_credential(self) -> bool {
        matches!(self, Family::ApiKey | Family::Password | Family::MfaCode)
    }
}

/// A phrase found in a message.
#[derive(Debug, Clone, PartialEq)]
pub struct PhraseHit {
    pub family: Family,
    pub lang: String,
    /// The phrase as written in the data file.
    pub phrase: String,
}

#[derive(Debug, Clone)]
struct Entry {
    family: Family,
    lang: String,
    phrase: String,
    /// `phrase` normalised.
    norm: String,
    prefix: bool,
}

/// All languages' phrases, compiled once.
#[derive(Debug, Clone)]
pub struct Phrases {
    entries: Vec<Entry>,
    /// Over " normalised phrase" (leading space = word start).
    spaced: AhoCorasick,
    /// Over compact phrases (spaces removed); `compact_ids[i]` is the entry.
    compact: AhoCorasick,
    compact_ids: Vec<usize>,
}

const BUILTIN: &[(&str, &str)] = &[
    ("en", include_str!("../../../data/phrases/en.txt")),
    ("es", include_str!("../../../data/phrases/es.txt")),
    ("fr", include_str!("../../../data/phrases/fr.txt")),
    ("de", include_str!("../../../data/phrases/de.txt")),
    ("pt", include_str!("../../../data/phrases/pt.txt")),
    ("it", include_str!("../../../data/phrases/it.txt")),
];

fn parse_file(lang: &str, file: &str, text: &str, out: &mut Vec<Entry>) -> Result<(), String> {
    for (i, line) in text.lines().enumerate() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        let Some((fam, phrase)) = line.split_once('\t') else {
            return Err(format!("{file}:{}: expected family<TAB>phrase, got {line:?}", i + 1));
        };
        let family = Family::parse(fam.trim())
            .ok_or_else(|| format!("{file}:{}: unknown family {:?} (one of {})", i + 1, fam.trim(), Family::NAMES.join(", ")))?;
        let phrase = phrase.trim();
        let prefix = phrase.ends_with('*');
        let norm = normalize(phrase.trim_end_matches('*'));
        if norm.chars().filter(|c| *c != ' ').count() < 4 {
            return Err(format!("{file}:{}: phrase {phrase:?} is too short (at least 4 letters)", i + 1));
        }
        out.push(Entry { family, lang: lang.to_string(), phrase: phrase.trim_end_matches('*').to_string(), norm, prefix });
    }
    Ok(())
}

impl Phrases {
    /// The phrases shipped with impostor (`data/phrases/*.txt`, compiled in).
    pub fn builtin() -> Phrases {
        let mut entries = Vec::new();
        for (lang, text) in BUILTIN {
            // The shipped files are checked by a unit test; a bad line cannot reach a release.
            if let Err(e) = parse_file(lang, &format!("data/phrases/{lang}.txt"), text, &mut entries) {
                debug_assert!(false, "{e}");
            }
        }
        Phrases::build(entries)
    }

    /// The built-in phrases plus every `*.txt` file in `dir` (the file stem is the language).
    pub fn load_dir(dir: &Path) -> Result<Phrases, String> {
        let mut entries = Phrases::builtin().entries;
        let rd = std::fs::read_dir(dir).map_err(|e| format!("{}: cannot read: {e}", dir.display()))?;
        let mut files: Vec<_> = rd.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.extension().is_some_and(|x| x == "txt")).collect();
        files.sort();
        for p in files {
            let text = std::fs::read_to_string(&p).map_err(|e| format!("{}: cannot read: {e}", p.display()))?;
            let lang = p.file_stem().and_then(|s| s.to_str()).unwrap_or("custom").to_string();
            parse_file(&lang, &p.display().to_string(), &text, &mut entries)?;
        }
        Ok(Phrases::build(entries))
    }

    fn build(entries: Vec<Entry>) -> Phrases {
        let spaced_pats: Vec<String> = entries.iter().map(|e| format!(" {}", e.norm)).collect();
        let mut compact_pats = Vec::new();
        let mut compact_ids = Vec::new();
        for (i, e) in entries.iter().enumerate() {
            let c: String = e.norm.chars().filter(|c| *c != ' ').collect();
            if c.chars().count() >= COMPACT_MIN {
                compact_pats.push(c);
                compact_ids.push(i);
            }
        }
        let build = |pats: &[String]| {
            AhoCorasickBuilder::new()
                .match_kind(MatchKind::Standard)
                // a DFA: more memory at build time, the fastest overlapping search
                .kind(Some(aho_corasick::AhoCorasickKind::DFA))
                // every spaced pattern starts with a space: a start-byte prefilter would stop at every word
                .prefilter(false)
                .build(pats)
                .expect("phrase automaton builds")
        };
        Phrases { spaced: build(&spaced_pats), compact: build(&compact_pats), compact_ids, entries }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Every distinct phrase found in `normalized_text` (the output of
    /// [`normalize`]), in order of first occurrence.
    pub fn find(&self, normalized_text: &str) -> Vec<PhraseHit> {
        let compact: String = normalized_text.chars().filter(|c| *c != ' ').collect();
        self.find_both(normalized_text, &compact)
    }

    /// [`Phrases::find`] with the compact text (spaces removed) already made,
    /// as [`super::normalise::normalize_both`] gives it.
    pub fn find_both(&self, normalized_text: &str, compact: &str) -> Vec<PhraseHit> {
        let hay = format!(" {normalized_text} ");
        let bytes = hay.as_bytes();
        let mut seen = vec![false; self.entries.len()];
        let mut hits = Vec::new();
        // the same words in two languages' files ("mixpanel") are one hit
        let mut found: Vec<usize> = Vec::new();
        let entries = &self.entries;
        let mut push = |hits: &mut Vec<PhraseHit>, id: usize| {
            let e = &entries[id];
            if !found.iter().any(|j| entries[*j].family == e.family && entries[*j].norm == e.norm) {
                found.push(id);
                hits.push(PhraseHit { family: e.family, lang: e.lang.clone(), phrase: e.phrase.clone() });
            }
        };
        for m in self.spaced.find_overlapping_iter(&hay) {
            let e = &self.entries[m.pattern().as_usize()];
            if seen[m.pattern().as_usize()] || !(e.prefix || bytes.get(m.end()) == Some(&b' ')) {
                continue;
            }
            seen[m.pattern().as_usize()] = true;
            push(&mut hits, m.pattern().as_usize());
        }
        if !self.compact_ids.is_empty() {
            for m in self.compact.find_overlapping_iter(compact) {
                let id = self.compact_ids[m.pattern().as_usize()];
                if !seen[id] {
                    seen[id] = true;
                    push(&mut hits, id);
                }
            }
        }
        hits
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fams(text: &str) -> Vec<(Family, String)> {
        let p = Phrases::builtin();
        p.find(&normalize(text)).into_iter().map(|h| (h.family, h.lang)).collect()
    }

    #[test]
    fn shipped_phrase_files_parse() {
        let mut v = Vec::new();
        for (lang, text) in BUILTIN {
            parse_file(lang, lang, text, &mut v).unwrap();
        }
        for f in Family::ALL {
            for (lang, _) in BUILTIN {
                assert!(v.iter().any(|e| e.family == f && e.lang == *lang), "{lang} has no {} phrase", f.name());
            }
        }
    }

    #[test]
    fn english_api_key_lure_is_found() {
        assert!(fams("Your API key will be revoked unless you verify your API account.").contains(&(Family::ApiKey, "en".into())));
    }

    #[test]
    fn spanish_api_key_lure_is_found() {
        assert!(fams("Por favor, confirme su clave API antes del viernes.").contains(&(Family::ApiKey, "es".into())));
    }

    #[test]
    fn french_verification_code_ask_is_found() {
        assert!(fams("Saisissez le code de vérification reçu par SMS").contains(&(Family::MfaCode, "fr".into())));
    }

    #[test]
    fn german_password_ask_is_found() {
        assert!(fams("Bitte bestätigen Sie Ihr Passwort").contains(&(Family::Password, "de".into())));
    }

    #[test]
    fn letter_spaced_password_is_found() {
        assert!(fams("Please v e r i f y  y o u r  p a s s w o r d now").iter().any(|(f, _)| *f == Family::Password));
    }

    #[test]
    fn words_split_by_stray_spaces_are_found() {
        assert!(fams("Sua con t a está sus pensa").iter().any(|(f, _)| *f == Family::AccountThreat));
    }

    #[test]
    fn homoglyph_and_zero_width_obfuscation_is_undone() {
        // Cyrillic а and е, a zero-width space and a soft hyphen
        assert!(fams("Vеrify your pass\u{200B}wоrd im\u{00AD}mediately").iter().any(|(f, _)| *f == Family::Password));
    }

    #[test]
    fn incident_lure_names_the_vendor() {
        assert!(fams("a security incident at Mixpanel, a third-party vendor").iter().any(|(f, _)| *f == Family::Incident));
    }

    #[test]
    fn ordinary_text_has_no_lure() {
        assert!(fams("Thanks for the patch, the password field in the form now validates on the server side.").is_empty());
        assert!(fams("Meeting moved to Thursday, agenda attached.").is_empty());
    }

    #[test]
    fn bad_phrase_file_names_file_and_line() {
        let mut v = Vec::new();
        let e = parse_file("xx", "xx.txt", "# ok\npassword\tverify your password\nbogus\tsomething here\n", &mut v).unwrap_err();
        assert!(e.starts_with("xx.txt:3: unknown family \"bogus\""), "{e}");
        let e = parse_file("xx", "xx.txt", "no tab here\n", &mut v).unwrap_err();
        assert!(e.starts_with("xx.txt:1:"), "{e}");
    }

    #[test]
    fn team_phrase_directory_extends_builtin() {
        let dir = std::env::temp_dir().join(format!("impostor-phrases-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("nl.txt"), "# Dutch\npassword\tbevestig uw wachtwoord\n").unwrap();
        let p = Phrases::load_dir(&dir).unwrap();
        let hits = p.find(&normalize("Bevestig uw wachtwoord vandaag"));
        assert_eq!(hits[0].lang, "nl");
        std::fs::write(dir.join("zz.txt"), "password\tok phrase\nwrong line\n").unwrap();
        let e = Phrases::load_dir(&dir).unwrap_err();
        assert!(e.contains("zz.txt:2:"), "{e}");
        std::fs::remove_dir_all(&dir).ok();
    }
}
