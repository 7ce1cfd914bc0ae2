//! Lure phrases: one data file per language, all matched in one pass over
//! the words of the normalised text ([`super::words`]), and once more, for
//! long phrases, over the text with its spaces removed ([`super::compact`]).
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

use super::asks::{Asks, Class, Word};
use super::compact::CompactIndex;
use super::normalise::normalize;
use super::words::{WordIndex, WordMatch};
use std::path::Path;

/// Phrases at least this long (letters and digits, spaces removed) are also
/// matched against the text with all spaces removed.
pub const COMPACT_MIN: usize = 14;
const _: () = assert!(COMPACT_MIN >= super::compact::WINDOW);

/// A kind of lure (an intent). Each is one rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    /// Asks for an API key, secret key or access token.
    ApiKey,
    /// Asks for a password or to log in to "verify" an account.
    Password,
    /// Asks for an MFA / 2FA / verification / one-time code.
    MfaCode,
    /// Threatens the account (suspended, limited, locked) or presses for time.
    AccountThreat,
    /// Refers to a security incident, data breach, third-party vendor (context, weight 0).
    Incident,
    /// Payment, fee or invoice problem; card or billing details asked.
    Payment,
    /// Prize, giveaway, airdrop, credits or gift-card bait.
    Reward,
    /// Parcel held, delivery failed, customs or shipping fee to pay.
    Delivery,
    /// A new sign-in or device alert.
    NewSignin,
    /// Call this number / call us (callback phishing).
    Callback,
    /// Crypto wallet: recovery (seed) phrase, private key, wallet sync.
    Wallet,
    /// Tax refund, tax authority or other government pretext.
    Tax,
    /// A shared document, fax, voicemail or e-signature envelope to open.
    SharedDocument,
}

impl Family {
    pub const NAMES: [&'static str; 13] = [
        "api_key",
        "password",
        "mfa_code",
        "account_threat",
        "incident",
        "payment",
        "reward",
        "delivery",
        "new_signin",
        "callback",
        "wallet",
        "tax",
        "shared_document",
    ];
    pub const ALL: [Family; 13] = [
        Family::ApiKey,
        Family::Password,
        Family::MfaCode,
        Family::AccountThreat,
        Family::Incident,
        Family::Payment,
        Family::Reward,
        Family::Delivery,
        Family::NewSignin,
        Family::Callback,
        Family::Wallet,
        Family::Tax,
        Family::SharedDocument,
    ];

    pub fn parse(s: &str) -> Option<Family> {
        Self::NAMES.iter().position(|n| *n == s).map(|i| Self::ALL[i])
    }
    pub fn name(self) -> &'static str {
        Self::NAMES[Self::ALL.iter().position(|f| *f == self).unwrap_or(0)]
    }
    /// The family asks for a secret (the part of a lure that does damage).
    pub fn is_credential(self) -> bool {
        matches!(self, Family::ApiKey | Family::Password | Family::MfaCode | Family::Wallet)
    }
}

/// A phrase or an ask found in a message.
#[derive(Debug, Clone, PartialEq)]
pub struct PhraseHit {
    pub family: Family,
    pub lang: String,
    /// The phrase as written in the data file; for an ask, its object.
    pub phrase: String,
    /// For an ask ([`super::asks`]): the request verb, as written in the data file.
    pub verb: Option<String>,
}

impl PhraseHit {
    /// `"confirm your password" (en)`, or for an ask `ask: "confirmer" … "mot de passe" (fr)`.
    pub fn evidence(&self) -> String {
        match &self.verb {
            Some(v) => format!("ask: {v:?} … {:?} ({})", self.phrase, self.lang),
            None => format!("{:?} ({})", self.phrase, self.lang),
        }
    }
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
    /// The normalised phrases (ids `0..entries.len()`), then the ask words, matched at word starts.
    words: WordIndex,
    /// Over compact phrases (spaces removed); `compact_ids[i]` is the entry.
    compact: CompactIndex,
    compact_ids: Vec<usize>,
    asks: Asks,
}

const BUILTIN: &[(&str, &str)] = &[
    ("en", include_str!("../../../data/phrases/en.txt")),
    ("es", include_str!("../../../data/phrases/es.txt")),
    ("fr", include_str!("../../../data/phrases/fr.txt")),
    ("de", include_str!("../../../data/phrases/de.txt")),
    ("pt", include_str!("../../../data/phrases/pt.txt")),
    ("it", include_str!("../../../data/phrases/it.txt")),
    ("nl", include_str!("../../../data/phrases/nl.txt")),
];

fn parse_file(lang: &str, file: &str, text: &str, out: &mut Vec<Entry>, words: &mut Vec<Word>) -> Result<(), String> {
    for (i, line) in text.lines().enumerate() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        let Some((fam, phrase)) = line.split_once('\t') else {
            return Err(format!("{file}:{}: expected family<TAB>phrase, got {line:?}", i + 1));
        };
        match Class::parse(fam.trim()) {
            Ok(Some(class)) => {
                words.push(Word::new(class, lang, phrase.trim()).map_err(|e| format!("{file}:{}: {e}", i + 1))?);
                continue;
            }
            Ok(None) => {}
            Err(e) => return Err(format!("{file}:{}: {e}", i + 1)),
        }
        let family = Family::parse(fam.trim())
            .ok_or_else(|| format!("{file}:{}: unknown family {:?} (one of {}, or an ask word kind: verb, give, verb_end, give_end, object:<family>, weak_object:<family>, negation, condition)", i + 1, fam.trim(), Family::NAMES.join(", ")))?;
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
        let (entries, words) = Self::builtin_parts();
        Phrases::build(entries, words)
    }

    fn builtin_parts() -> (Vec<Entry>, Vec<Word>) {
        let (mut entries, mut words) = (Vec::new(), Vec::new());
        for (lang, text) in BUILTIN {
            // The shipped files are checked by a unit test; a bad line cannot reach a release.
            if let Err(e) = parse_file(lang, &format!("data/phrases/{lang}.txt"), text, &mut entries, &mut words) {
                debug_assert!(false, "{e}");
            }
        }
        (entries, words)
    }

    /// The built-in phrases plus every `*.txt` file in `dir` (the file stem is the language).
    pub fn load_dir(dir: &Path) -> Result<Phrases, String> {
        let (mut entries, mut words) = Self::builtin_parts();
        let rd = std::fs::read_dir(dir).map_err(|e| format!("{}: cannot read: {e}", dir.display()))?;
        let mut files: Vec<_> = rd.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.extension().is_some_and(|x| x == "txt")).collect();
        files.sort();
        for p in files {
            let text = std::fs::read_to_string(&p).map_err(|e| format!("{}: cannot read: {e}", p.display()))?;
            let lang = p.file_stem().and_then(|s| s.to_str()).unwrap_or("custom").to_string();
            parse_file(&lang, &p.display().to_string(), &text, &mut entries, &mut words)?;
        }
        Ok(Phrases::build(entries, words))
    }

    fn build(entries: Vec<Entry>, words: Vec<Word>) -> Phrases {
        let asks = Asks::build(words);
        let words = WordIndex::new(entries.iter().map(|e| (e.norm.as_str(), e.prefix, false)).chain(asks.index_entries()));
        let mut compact_pats = Vec::new();
        let mut compact_ids = Vec::new();
        for (i, e) in entries.iter().enumerate() {
            let c: String = e.norm.chars().filter(|c| *c != ' ').collect();
            if c.chars().count() >= COMPACT_MIN {
                compact_pats.push(c);
                compact_ids.push(i);
            }
        }
        // COMPACT_MIN letters are at least COMPACT_MIN >= compact::WINDOW bytes
        let compact = CompactIndex::new(&compact_pats).expect("compact phrases are long enough");
        Phrases { words, compact, compact_ids, entries, asks }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The ask words (verbs, objects, negations) of every language.
    pub fn asks(&self) -> &Asks {
        &self.asks
    }

    /// Every distinct phrase found in `normalized_text` (the output of
    /// [`normalize`]), in order of first occurrence, then every ask ([`super::asks`]).
    pub fn find(&self, normalized_text: &str) -> Vec<PhraseHit> {
        let compact: String = normalized_text.chars().filter(|c| *c != ' ').collect();
        self.find_both(normalized_text, &compact)
    }

    /// [`Phrases::find`] with the compact text (spaces removed) already made,
    /// as [`super::normalise::normalize_both`] gives it.
    pub fn find_both(&self, normalized_text: &str, compact: &str) -> Vec<PhraseHit> {
        let mut seen = vec![false; self.entries.len()];
        let mut hits = Vec::new();
        // the same words in two languages' files ("mixpanel") are one hit
        let mut found: Vec<usize> = Vec::new();
        let entries = &self.entries;
        let mut push = |hits: &mut Vec<PhraseHit>, id: usize| {
            let e = &entries[id];
            if !found.iter().any(|j| entries[*j].family == e.family && entries[*j].norm == e.norm) {
                found.push(id);
                hits.push(PhraseHit { family: e.family, lang: e.lang.clone(), phrase: e.phrase.clone(), verb: None });
            }
        };
        // the words in " text ", where the asks count them
        let hay = format!(" {normalized_text} ");
        let found = self.words.find(&hay);
        let n = self.entries.len();
        for m in found.iter().filter(|m| m.id < n) {
            if !seen[m.id] {
                seen[m.id] = true;
                push(&mut hits, m.id);
            }
        }
        if !self.compact.is_empty() {
            for m in self.compact.find(compact) {
                let id = self.compact_ids[m.id];
                if !seen[id] {
                    seen[id] = true;
                    push(&mut hits, id);
                }
            }
        }
        let asks = found.iter().filter(|m| m.id >= n).map(|m| WordMatch { id: m.id - n, ..*m });
        for a in self.asks.find(&hay, asks) {
            hits.push(PhraseHit { family: a.family, lang: a.lang, phrase: a.object, verb: Some(a.verb) });
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

    /// The shipped compact phrases: the index finds what an overlapping DFA finds, in its order, over
    /// every phrase file run together and over texts cut and pasted from the phrases.
    #[test]
    fn compact_search_matches_the_automaton_on_the_shipped_phrases() {
        use crate::analysis::content::compact::tests::{automaton, overlapping};
        use crate::analysis::content::tests::xorshift;
        let p = Phrases::builtin();
        let pats = p.compact.patterns();
        assert!(pats.len() > 1000, "{} compact phrases", pats.len());
        let ac = automaton(pats);
        let oracle = |t: &str| overlapping(&ac, t);
        let got = |t: &str| p.compact.find(t);
        let all: String = BUILTIN.iter().map(|(_, text)| normalize(text)).collect::<String>().chars().filter(|c| *c != ' ').collect();
        let want = oracle(&all);
        assert!(want.len() > pats.len(), "{} matches", want.len());
        assert_eq!(got(&all), want);
        let strs: Vec<String> = pats.iter().map(|b| String::from_utf8(b.to_vec()).unwrap()).collect();
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = || xorshift(&mut seed);
        for _ in 0..2000 {
            let mut t = String::new();
            for _ in 0..next() % 6 {
                let s = &strs[(next() % strs.len() as u64) as usize];
                let cs: Vec<char> = s.chars().collect();
                let (a, b) = ((next() % 4) as usize, (next() % 4) as usize);
                t.extend(&cs[a.min(cs.len())..cs.len() - b.min(cs.len() - a.min(cs.len()))]);
            }
            assert_eq!(got(&t), oracle(&t), "{t:?}");
        }
    }

    /// Over a mail corpus, the compact texts `check` searches: same matches as the DFA, and what each
    /// search costs (printed, not asserted):
    /// `IMPOSTOR_PHRASE_CORPUS=DIR[:DIR…] cargo test --release --lib corpus_compact -- --ignored --nocapture`.
    #[test]
    #[ignore = "needs IMPOSTOR_PHRASE_CORPUS"]
    fn corpus_compact_search_matches_the_automaton() {
        use crate::analysis::content::compact::tests::{automaton, overlapping};
        let dirs = std::env::var("IMPOSTOR_PHRASE_CORPUS").expect("IMPOSTOR_PHRASE_CORPUS=DIR[:DIR…]");
        let mut texts = Vec::new();
        let mut stack: Vec<std::path::PathBuf> = dirs.split(':').map(Into::into).collect();
        while let Some(dir) = stack.pop() {
            for e in std::fs::read_dir(&dir).unwrap().flatten() {
                let path = e.path();
                if path.is_dir() {
                    stack.push(path);
                } else if let Some(msg) =
                    std::fs::read(&path).ok().and_then(|raw| mail_parser::MessageParser::default().parse(&raw).map(|m| m.into_owned()))
                {
                    texts.push(super::super::extract(&msg, &super::super::Limits::default()).compact);
                }
            }
        }
        let p = Phrases::builtin();
        let ac = automaton(p.compact.patterns());
        let (mut n, mut bytes) = (0, 0);
        for t in &texts {
            let want = overlapping(&ac, t);
            assert_eq!(p.compact.find(t), want);
            n += want.len();
            bytes += t.len();
        }
        let time = |f: &dyn Fn(&str) -> usize| {
            let t = std::time::Instant::now();
            let k: usize = (0..5).map(|_| texts.iter().map(|x| f(x)).sum::<usize>()).sum();
            (t.elapsed() / 5, k / 5)
        };
        let (dfa, a) = time(&|t| ac.find_overlapping_iter(t).count());
        let (index, b) = time(&|t| p.compact.find(t).len());
        assert_eq!(a, b);
        eprintln!("{} messages, {bytes} bytes of compact text, {n} matches: DFA {dfa:?}, index {index:?}", texts.len());
    }

    #[test]
    fn shipped_phrase_files_parse() {
        let (mut v, mut w) = (Vec::new(), Vec::new());
        for (lang, text) in BUILTIN {
            parse_file(lang, lang, text, &mut v, &mut w).unwrap();
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
        let (mut v, mut w) = (Vec::new(), Vec::new());
        let e = parse_file("xx", "xx.txt", "# ok\npassword\tverify your password\nbogus\tsomething here\n", &mut v, &mut w).unwrap_err();
        assert!(e.starts_with("xx.txt:3: unknown family \"bogus\""), "{e}");
        let e = parse_file("xx", "xx.txt", "no tab here\n", &mut v, &mut w).unwrap_err();
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

/// Every intent family in every shipped language: one realistic sentence per cell that must
/// find the family in that language, and legitimate sentences that must find nothing.
#[cfg(test)]
mod intent_tests {
    use super::*;

    #[rustfmt::skip]
    const CELLS: &[(&str, &str, &str)] = &[
        ("api_key", "en", "Reply to this message with your organization API key so we can restore access."),
        ("api_key", "es", "Por favor, envíenos su clave API para reactivar el servicio."),
        ("api_key", "fr", "Veuillez nous transmettre votre clé API avant la fin de la journée."),
        ("api_key", "de", "Bitte senden Sie uns Ihren API-Schlüssel zur Überprüfung."),
        ("api_key", "pt", "Envie-nos sua chave de API para reativar o acesso."),
        ("api_key", "it", "Inviaci la tua chiave API per riattivare il servizio."),
        ("api_key", "nl", "Stuur ons uw API-sleutel om de toegang te herstellen."),
        ("password", "en", "To keep your mailbox, please type your current password on the next page."),
        ("password", "es", "Le rogamos que confirme su contraseña antes del viernes."),
        ("password", "fr", "Veuillez confirmer votre mot de passe pour continuer à utiliser le service."),
        ("password", "de", "Um Ihr Konto zu behalten, müssen Sie Ihr Passwort erneut bestätigen."),
        ("password", "pt", "Por favor, confirme a sua senha para manter o acesso à conta."),
        ("password", "it", "Ti chiediamo di confermare la tua password entro oggi."),
        ("password", "nl", "Om uw mailbox te behouden dient u uw wachtwoord te bevestigen."),
        ("mfa_code", "en", "Reply to this email with the code we just texted you."),
        ("mfa_code", "es", "Responde a este correo con el código que te enviamos por SMS."),
        ("mfa_code", "fr", "Merci de nous communiquer le code reçu par SMS."),
        ("mfa_code", "de", "Bitte teilen Sie uns den Bestätigungscode mit, den Sie per SMS erhalten haben."),
        ("mfa_code", "pt", "Informe o código que enviamos por SMS respondendo a este e-mail."),
        ("mfa_code", "it", "Rispondi a questa email con il codice che ti abbiamo inviato via SMS."),
        ("mfa_code", "nl", "Beantwoord deze e-mail met de code die u per sms heeft ontvangen."),
        ("account_threat", "en", "Your account access has been limited until you complete the review."),
        ("account_threat", "es", "Hemos limitado su cuenta por motivos de seguridad."),
        ("account_threat", "fr", "Votre compte a été limité suite à une activité inhabituelle."),
        ("account_threat", "de", "Ihr Konto wurde vorübergehend eingeschränkt."),
        ("account_threat", "pt", "Sua conta foi limitada por motivos de segurança."),
        ("account_threat", "it", "Il tuo account è stato limitato per motivi di sicurezza."),
        ("account_threat", "nl", "Uw account is tijdelijk beperkt vanwege verdachte activiteit."),
        ("incident", "en", "We are writing about a security incident at one of our vendors."),
        ("incident", "es", "Le informamos de un incidente de seguridad en un proveedor externo."),
        ("incident", "fr", "Suite à une violation de données chez un prestataire tiers, nous vous écrivons."),
        ("incident", "de", "Bei einem externen Dienstleister kam es zu einem Sicherheitsvorfall."),
        ("incident", "pt", "Houve um incidente de segurança em um fornecedor terceirizado."),
        ("incident", "it", "Si è verificato un incidente di sicurezza presso un fornitore esterno."),
        ("incident", "nl", "Er heeft een beveiligingsincident plaatsgevonden bij een externe leverancier."),
        ("payment", "en", "Please update the card details on file for your subscription."),
        ("payment", "es", "Actualice los datos de su tarjeta para evitar la interrupción del servicio."),
        ("payment", "fr", "Votre paiement a été refusé, mettez à jour votre moyen de paiement."),
        ("payment", "de", "Bitte aktualisieren Sie Ihre Kreditkartendaten, um eine Unterbrechung zu vermeiden."),
        ("payment", "pt", "Seu pagamento foi recusado. Atualize os dados do cartão."),
        ("payment", "it", "Il pagamento è stato rifiutato: aggiorna i dati della carta."),
        ("payment", "nl", "Uw betaling is mislukt. Werk uw betaalgegevens bij."),
        ("reward", "en", "You have been selected: claim your $500 reward before Friday."),
        ("reward", "es", "¡Felicidades! Has ganado una tarjeta de regalo de 500 €."),
        ("reward", "fr", "Félicitations, vous avez gagné une carte cadeau de 300 €."),
        ("reward", "de", "Herzlichen Glückwunsch, Sie haben gewonnen: ein Gutschein über 500 €."),
        ("reward", "pt", "Parabéns! Você ganhou um cartão presente de R$ 500."),
        ("reward", "it", "Congratulazioni, hai vinto un buono regalo da 500 €."),
        ("reward", "nl", "Gefeliciteerd, u heeft gewonnen: een cadeaukaart van € 500."),
        ("delivery", "en", "Your parcel is held at customs; a customs fee of $2.99 is due."),
        ("delivery", "es", "Su paquete está retenido en la aduana. Pague la tasa de aduana de 1,99 €."),
        ("delivery", "fr", "Votre colis est retenu en douane : des frais de douane de 2,99 € sont à régler."),
        ("delivery", "de", "Ihr Paket wird vom Zoll zurückgehalten. Bitte begleichen Sie die Zollgebühren von 2,99 €."),
        ("delivery", "pt", "Sua encomenda está retida na alfândega. Pague a taxa de importação de R$ 19,90."),
        ("delivery", "it", "Il tuo pacco è in giacenza: paga le spese di spedizione di 1,99 €."),
        ("delivery", "nl", "Uw pakket wordt vastgehouden door de douane. Betaal de douanekosten van € 2,99."),
        ("new_signin", "en", "We detected a new sign-in to your account from Windows in Lagos."),
        ("new_signin", "es", "Detectamos un nuevo inicio de sesión en su cuenta desde un dispositivo Android."),
        ("new_signin", "fr", "Nous avons détecté une nouvelle connexion à votre compte depuis un nouvel appareil."),
        ("new_signin", "de", "Wir haben eine neue Anmeldung bei Ihrem Konto von einem neuen Gerät festgestellt."),
        ("new_signin", "pt", "Detectamos um novo acesso à sua conta a partir de um dispositivo desconhecido."),
        ("new_signin", "it", "Abbiamo rilevato un nuovo accesso al tuo account da un nuovo dispositivo."),
        ("new_signin", "nl", "We hebben een nieuwe aanmelding bij uw account gedetecteerd vanaf een nieuw apparaat."),
        ("callback", "en", "If you did not authorize this charge, call our billing department at +1 888 555 0100."),
        ("callback", "es", "Si no reconoce este cargo, llame al número 900 123 456 de inmediato."),
        ("callback", "fr", "Si vous n'êtes pas à l'origine de cet achat, appelez le numéro suivant : 01 86 76 12 34."),
        ("callback", "de", "Wenn Sie diesen Kauf nicht getätigt haben, rufen Sie uns umgehend unter 0800 123 4567 an."),
        ("callback", "pt", "Se você não reconhece esta compra, ligue imediatamente para 0800 591 2345."),
        ("callback", "it", "Se non riconosci questo addebito, chiama il numero verde 800 123 456."),
        ("callback", "nl", "Als u deze aankoop niet heeft gedaan, bel dan direct het onderstaande nummer."),
        ("wallet", "en", "To keep your funds safe, enter your 12-word recovery phrase below."),
        ("wallet", "es", "Introduzca su frase de recuperación de 12 palabras para sincronizar la billetera."),
        ("wallet", "fr", "Saisissez votre phrase de récupération pour synchroniser votre portefeuille."),
        ("wallet", "de", "Um Ihre Wallet zu synchronisieren, geben Sie Ihre Wiederherstellungsphrase ein."),
        ("wallet", "pt", "Digite sua frase de recuperação para validar sua carteira."),
        ("wallet", "it", "Inserisci la tua frase di recupero per sincronizzare il portafoglio."),
        ("wallet", "nl", "Voer uw herstelzin in om uw wallet te synchroniseren."),
        ("tax", "en", "You are eligible for a tax refund of $812.40 from the IRS."),
        ("tax", "es", "La Agencia Tributaria le informa: tiene derecho a un reembolso de 312,50 €."),
        ("tax", "fr", "La DGFiP vous informe que vous avez droit à un remboursement d'impôt de 289 €."),
        ("tax", "de", "Das Bundeszentralamt für Steuern: Sie haben Anspruch auf eine Steuererstattung."),
        ("tax", "pt", "Receita Federal: seu CPF está irregular. Regularize seu CPF até sexta-feira."),
        ("tax", "it", "Agenzia delle Entrate: hai diritto a un rimborso fiscale di 320 €."),
        ("tax", "nl", "De Belastingdienst: u heeft recht op een teruggave van € 412."),
        ("shared_document", "en", "Daniel shared a document with you: Q4 payroll.pdf"),
        ("shared_document", "es", "Carlos ha compartido un documento con usted: Nóminas 2025.pdf"),
        ("shared_document", "fr", "Marie a partagé un document avec vous : Contrat 2025.pdf"),
        ("shared_document", "de", "Thomas hat ein Dokument mit Ihnen geteilt: Gehaltsabrechnung.pdf"),
        ("shared_document", "pt", "Ana compartilhou um documento com você: Contrato.pdf"),
        ("shared_document", "it", "Luca ha condiviso un documento con te: Busta paga.pdf"),
        ("shared_document", "nl", "Jan heeft een document met u gedeeld: Loonstrook.pdf"),
    ];

    static PHRASES: std::sync::LazyLock<Phrases> = std::sync::LazyLock::new(Phrases::builtin);

    fn hits(text: &str) -> Vec<PhraseHit> {
        PHRASES.find(&normalize(text))
    }

    #[test]
    fn every_family_is_found_in_every_language() {
        let p = &*PHRASES;
        let mut missing = Vec::new();
        for f in Family::ALL {
            for (lang, _) in BUILTIN {
                let Some((_, _, text)) = CELLS.iter().find(|(fam, l, _)| *fam == f.name() && l == lang) else {
                    missing.push(format!("no test sentence for {} ({lang})", f.name()));
                    continue;
                };
                let h = p.find(&normalize(text));
                if !h.iter().any(|h| h.family == f && h.lang == *lang) {
                    missing.push(format!("{} ({lang}) not found in {text:?}: {h:?}", f.name()));
                }
            }
        }
        assert!(missing.is_empty(), "{}", missing.join("\n"));
    }

    #[test]
    fn asks_are_found_as_verb_and_object() {
        for (text, family, ev) in [
            ("responde a este correo con el código", Family::MfaCode, r#"ask: "responde" … "código" (es)"#),
            ("Veuillez confirmer votre mot de passe", Family::Password, r#"ask: "confirmer" … "mot de passe" (fr)"#),
            ("reply to this email with the code we just texted you", Family::MfaCode, r#"ask: "reply" … "code we just texted" (en)"#),
            ("Bitte den Code hier eingeben", Family::MfaCode, r#"ask: "eingeben" … "code" (de)"#),
            ("Verify ownership of your organization before Monday", Family::Password, r#"ask: "verify" … "ownership" (en)"#),
        ] {
            let h = hits(text);
            assert!(
                h.iter().any(|h| h.family == family && h.evidence() == ev),
                "{text:?}: {:?}",
                h.iter().map(|h| h.evidence()).collect::<Vec<_>>()
            );
        }
    }

    #[test]
    fn negated_asks_are_not_asks() {
        for text in [
            "We will never ask you to share your password or verification code.",
            "Nunca te pediremos que compartas tu contraseña.",
            "Nous ne vous demanderons jamais de communiquer votre mot de passe.",
            "Ne partagez jamais ce code avec qui que ce soit.",
            "Teilen Sie diesen Code niemandem mit.",
            "Geben Sie Ihr Passwort niemals weiter.",
            "Não compartilhe este código com ninguém.",
            "Non condividere mai il codice con nessuno.",
            "Deel deze code nooit met anderen.",
            "Do not reply to this email. The code for your order is on the website.",
        ] {
            let h = hits(text);
            assert!(!h.iter().any(|h| h.family.is_credential()), "{text:?}: {:?}", h.iter().map(|h| h.evidence()).collect::<Vec<_>>());
        }
    }

    #[test]
    fn a_condition_does_not_negate() {
        for (text, family) in [
            ("If you do not confirm your password within 24 hours, your mailbox will be closed.", Family::Password),
            ("Si vous ne confirmez pas votre mot de passe, votre compte sera fermé.", Family::Password),
            ("Se não confirmar a sua senha hoje, a conta será bloqueada.", Family::Password),
        ] {
            assert!(hits(text).iter().any(|h| h.family == family && h.verb.is_some()), "{text:?}: {:?}", hits(text));
        }
    }

    #[test]
    fn legitimate_sentences_find_nothing() {
        for text in [
            "Your package has been delivered.",
            "The invoice is attached.",
            "Thanks, the invoice for November is attached as a PDF.",
            "Please review the code in the pull request before Friday.",
            "Enter your ZIP code at checkout to see delivery options.",
            "Use the promo code WINTER at checkout.",
            "Su pedido ha sido entregado.",
            "Votre colis a été livré ce matin.",
            "Ihr Paket wurde zugestellt.",
            "Sua encomenda foi entregue.",
            "Il tuo pacco è stato consegnato.",
            "Uw pakket is bezorgd.",
            "The meeting notes are in the shared drive.",
            "See you at the conference in Lisbon.",
        ] {
            let h = hits(text);
            assert!(h.is_empty(), "{text:?}: {:?}", h.iter().map(|h| (h.family, h.evidence())).collect::<Vec<_>>());
        }
    }
}
