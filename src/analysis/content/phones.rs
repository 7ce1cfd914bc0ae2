//! Phone numbers in the visible text: what "call us immediately at +1 888 …"
//! sends the reader to, for the composite judgement (a phone number in
//! brand-claiming mail is a call to action).
//!
//! A cheap scan finds candidate digit runs (digits with the separators people
//! write in numbers: space, `-`, `.`, `/`, parentheses, a leading `+`); the
//! [`phonenumber`] crate (libphonenumber's metadata) decides whether one is a
//! number. A candidate counts only with phone-like context, so dates, order
//! numbers, ZIP codes and prices do not:
//! - it starts with `+` or `00` (international format) and is valid as such; or
//! - a phone word (`tel`, `phone`, `call`, `llame`, `appelez`, `anrufen`,
//!   `ligue`, `chiami`, `bel` …, see [`PHONE_WORDS`]) ends within 30 bytes
//!   before it, and it is valid in one of [`REGIONS`] (first valid wins); or
//! - it is written in North American grouping (`(888) 555-0100`,
//!   `1-888-555-0100`, `888.555.0100`) and is valid in the US.
//!
//! Runs that read as dates (`2025-11-24`, `24/11/2025`, `24.11.2025`), follow a
//! currency sign or `#` / `no.`, or touch letters (`INV-2025-0001`) are never
//! candidates. Numbers are returned in E.164 (`+18885550100`), de-duplicated,
//! at most [`MAX_PHONES`].
//!
//! Judging a candidate is the costly step (the metadata's regular expressions, region by region,
//! compiled on first use and kept in the crate's cache of 100): at most `max_judged` candidates
//! per text are judged (`content.max_phone_candidates`, default [`MAX_JUDGED`]), so text written
//! full of phone-like numbers costs a bounded amount.

use phonenumber::country::Id;

/// Numbers kept per message.
pub const MAX_PHONES: usize = 10;

/// Candidates judged against the metadata per text by default (`content.max_phone_candidates`);
/// the rest of the text is not read for numbers.
pub const MAX_JUDGED: usize = 50;

/// Regions tried, in order, for a number written without its country code.
pub const REGIONS: &[Id] = &[
    Id::US,
    Id::GB,
    Id::FR,
    Id::DE,
    Id::ES,
    Id::IT,
    Id::PT,
    Id::BR,
    Id::NL,
    Id::BE,
    Id::CH,
    Id::AT,
    Id::MX,
    Id::AR,
    Id::CO,
    Id::AU,
    Id::IN,
];

/// Words that announce a phone number (lowercase, accents kept as written in mail; matched as word starts).
pub const PHONE_WORDS: &[&str] = &[
    "tel",
    "tél",
    "phone",
    "call",
    "ring",
    "mobile",
    "cell",
    "hotline",
    "helpline",
    "whatsapp",
    "sms",
    "text us",
    "toll-free",
    "toll free",
    "número",
    "numero",
    "nummer",
    "telefon",
    "teléfono",
    "telefono",
    "telefone",
    "téléphone",
    "telefoon",
    "llame",
    "llámenos",
    "llamar",
    "llama",
    "appel",
    "appelez",
    "anruf",
    "rufen",
    "ligue",
    "ligar",
    "liga",
    "chiam",
    "bel ",
    "bellen",
    "contact",
    "kontakt",
    "contato",
    "contatto",
    "contacto",
    "fono",
];

/// The phone numbers in `text` (raw visible text, before normalisation), E.164, at most [`MAX_PHONES`].
pub fn find(text: &str) -> Vec<String> {
    find_at_most(text, MAX_PHONES, MAX_JUDGED).0
}

/// The first `n` phone numbers of the text, judging at most `max_judged` candidates, and whether
/// a further candidate was left unjudged because `max_judged` had been judged.
pub fn find_at_most(text: &str, n: usize, max_judged: usize) -> (Vec<String>, bool) {
    let mut out: Vec<String> = Vec::new();
    let b = text.as_bytes();
    // most text has no digit run long enough: look only where digits are
    let (mut i, mut judged) = (0, 0);
    while i < b.len() && out.len() < n.min(MAX_PHONES) {
        let Some(off) = memchr_digit_or_plus(&b[i..]) else { break };
        let start = i + off;
        let (end, digits) = run(b, start);
        i = end.max(start + 1);
        if !(7..=15).contains(&digits) {
            continue;
        }
        let cand = text[start..end].trim_end_matches([' ', '-', '.', '/', '(']);
        let Some(how) = candidate(text, start, cand) else { continue };
        if judged == max_judged {
            return (out, true);
        }
        judged += 1;
        if let Some(e164) = how.judge(cand) {
            if !out.contains(&e164) {
                out.push(e164);
            }
        }
    }
    (out, false)
}

fn memchr_digit_or_plus(b: &[u8]) -> Option<usize> {
    b.iter().position(|c| c.is_ascii_digit() || *c == b'+' || *c == b'(')
}

/// The end of the candidate run starting at `start` and the digits in it.
fn run(b: &[u8], start: usize) -> (usize, usize) {
    let mut j = start;
    let mut digits = 0;
    let mut prev_sep = false;
    while j < b.len() {
        let c = b[j];
        if c.is_ascii_digit() {
            digits += 1;
            prev_sep = false;
        } else if (c == b'+' && j == start) || matches!(c, b'(' | b')') {
            prev_sep = false;
        } else if matches!(c, b' ' | b'-' | b'.' | b'/') {
            // one separator between groups; two in a row end the number
            if prev_sep {
                break;
            }
            prev_sep = true;
        } else {
            break;
        }
        j += 1;
    }
    (j, digits)
}

/// How a candidate is judged against the metadata.
enum Judge {
    /// Written with its country code (`+…`, `00…`).
    International,
    /// After a phone word: valid in one of [`REGIONS`], the first wins.
    Regions,
    /// North American grouping: valid in the US.
    NorthAmerican,
}

impl Judge {
    fn judge(&self, cand: &str) -> Option<String> {
        match self {
            Judge::International => {
                let s = if let Some(rest) = cand.strip_prefix("00") { format!("+{rest}") } else { cand.to_string() };
                parse_valid(None, &s)
            }
            Judge::Regions => REGIONS.iter().find_map(|r| parse_valid(Some(*r), cand)),
            Judge::NorthAmerican => parse_valid(Some(Id::US), cand),
        }
    }
}

/// How `cand` (at `start` of `text`) is to be judged, or None when its context says it is no
/// phone number (cheap: no metadata is read).
fn candidate(text: &str, start: usize, cand: &str) -> Option<Judge> {
    let b = text.as_bytes();
    let before = &text[..start];
    // touching a letter or a digit-ish joiner: part of an identifier (INV-2025-0001, A12345678)
    if let Some(&p) = before.as_bytes().last() {
        if p.is_ascii_alphanumeric() || matches!(p, b'-' | b'_' | b'/' | b'.' | b'#' | b'$' | b'=' | b'&' | b'%' | b',') {
            return None;
        }
    }
    let after = b.get(start + cand.len()).copied();
    if after.is_some_and(|a| a.is_ascii_alphanumeric() || matches!(a, b'%' | b'@' | b'_' | b'=')) {
        return None;
    }
    if text[start + cand.len()..].trim_start().starts_with(['€', '£', '¥']) {
        return None;
    }
    let tail: String = before.chars().rev().take(30).collect::<Vec<_>>().into_iter().rev().collect::<String>().to_lowercase();
    let t = tail.trim_end_matches([' ', '.', ':', '\t']);
    if t.ends_with(['€', '£', '$', '¥', '#']) || is_date(cand) {
        return None;
    }
    let intl = cand.starts_with('+') || (cand.starts_with("00") && !cand.starts_with("000"));
    if intl {
        return Some(Judge::International);
    }
    // "Order no. 4412 8871 22", "Kundennr. 12345678", "n° 0142685300": a reference, not a number to call
    let reference = ["no", "nr", "n°", "nº", "num", "ref", "id"].iter().any(|w| t.ends_with(w) && word_at(t, w));
    let worded = !reference && PHONE_WORDS.iter().any(|w| word_at(&tail, w));
    if worded {
        return Some(Judge::Regions);
    }
    if nanp_grouping(cand) {
        return Some(Judge::NorthAmerican);
    }
    None
}

/// `w` occurs in `tail` at a word start.
fn word_at(tail: &str, w: &str) -> bool {
    tail.match_indices(w).any(|(i, _)| i == 0 || !tail[..i].chars().next_back().is_some_and(char::is_alphabetic))
}

fn parse_valid(region: Option<Id>, s: &str) -> Option<String> {
    let n = phonenumber::parse(region, s).ok()?;
    if !phonenumber::is_valid(&n) {
        return None;
    }
    Some(n.format().mode(phonenumber::Mode::E164).to_string())
}

/// Digit groups of `s` (separators and parentheses dropped).
fn groups(s: &str) -> Vec<&str> {
    s.split(|c: char| !c.is_ascii_digit()).filter(|g| !g.is_empty()).collect()
}

/// `2025-11-24`, `24/11/2025`, `24.11.2025`, `11/24/25 …` at the start of the run.
fn is_date(s: &str) -> bool {
    let g = groups(s);
    let num = |x: &str| x.parse::<u32>().unwrap_or(0);
    let date = |a: &str, b: &str, c: &str| {
        (a.len() == 4 && (1900..=2100).contains(&num(a)) && b.len() <= 2 && (1..=12).contains(&num(b)) && c.len() <= 2)
            || (a.len() <= 2 && b.len() <= 2 && (c.len() == 4 || c.len() == 2) && (1..=31).contains(&num(a)) && (1..=31).contains(&num(b)))
    };
    let sep_ok = s.contains(['-', '/', '.']);
    sep_ok && g.len() >= 3 && date(g[0], g[1], g[2])
}

/// `(888) 555-0100`, `888-555-0100`, `1-888-555-0100`, `888.555.0100`, `1 888 555 0100`.
fn nanp_grouping(s: &str) -> bool {
    let g = groups(s);
    let lens: Vec<usize> = g.iter().map(|x| x.len()).collect();
    lens == [3, 3, 4] || (lens == [1, 3, 3, 4] && g[0] == "1")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn international_number_is_found() {
        assert_eq!(find("Call us immediately at +1 888 555 0100 to stop the charge."), vec!["+18885550100"]);
        assert_eq!(find("Ligue para +55 11 98765-4321 agora"), vec!["+5511987654321"]);
        assert_eq!(find("WhatsApp: 0044 20 7946 0018"), vec!["+442079460018"]);
    }

    #[test]
    fn north_american_grouping_is_found_without_a_word() {
        assert_eq!(find("If this was not you: (888) 555-0199."), vec!["+18885550199"]);
        assert_eq!(find("Support 1-888-555-0123"), vec!["+18885550123"]);
    }

    #[test]
    fn national_number_needs_a_phone_word() {
        assert_eq!(find("Appelez le 01 42 68 53 00 avant vendredi"), vec!["+33142685300"]);
        assert_eq!(find("Rufen Sie uns unter 030 901820 an"), vec!["+4930901820"]);
        // the same digits with no phone word are not taken
        assert!(find("Reference 01 42 68 53 00").is_empty());
    }

    #[test]
    fn dates_order_numbers_zip_codes_and_prices_are_not_phones() {
        for t in [
            "Invoice date 2025-11-24, due 2025-12-24",
            "Order #1234567890 has shipped",
            "Order no. 4412 8871 22",
            "Ship to 90210 Beverly Hills, CA 90210-1234",
            "Total: $1,234,567.00",
            "Amount 1 234 567,00 €",
            "Invoice INV-2025-000123",
            "Rendez-vous le 24.11.2025 à 10:30",
            "Tracking 1Z999AA10123456784",
            "tel. 24/11/2025",
            "see https://example.com/track/18885550100",
        ] {
            assert!(find(t).is_empty(), "{t}: {:?}", find(t));
        }
    }

    #[test]
    fn numbers_are_capped_and_deduplicated() {
        let mut t = String::new();
        for i in 0..30 {
            t.push_str(&format!("call +1 888 555 01{i:02}\n"));
        }
        t.push_str("call +1 888 555 0100\n");
        let p = find(&t);
        assert_eq!(p.len(), MAX_PHONES);
        assert_eq!(p[0], "+18885550100");
    }

    #[test]
    fn judged_candidates_are_capped() {
        // numbers no region holds valid, each after a phone word: judged, and counted
        let invalid = |k: usize| (0..k).map(|i| format!("call 0000 {i:03} 0000\n")).collect::<String>();
        let valid = "call +1 888 555 0142\n";
        assert_eq!(find(&format!("{}{valid}", invalid(MAX_JUDGED - 1))), ["+18885550142"]);
        assert!(find(&format!("{}{valid}", invalid(MAX_JUDGED))).is_empty());
        // what is no candidate (a date, an order number) is not counted
        let dates = (0..200).map(|i| format!("on 2025-11-{:02}, order no. 4412 8871 {i:02}\n", i % 28 + 1)).collect::<String>();
        assert_eq!(find(&format!("{dates}{valid}")), ["+18885550142"]);
        assert_eq!(find_at_most(&format!("{valid}call +44 20 7946 0958\n"), 1, MAX_JUDGED), (vec!["+18885550142".to_string()], false));
        // the cap is reported, and configurable
        assert_eq!(find_at_most(&format!("{}{valid}", invalid(3)), 1, 3), (vec![], true));
        assert_eq!(find_at_most(&format!("{}{valid}", invalid(3)), 1, 4), (vec!["+18885550142".to_string()], false));
        assert_eq!(find_at_most(&invalid(3), 1, 3), (vec![], false));
    }
}
