//! The text normaliser: what phrase matching reads of a text, folded against
//! obfuscation (NFKC, invisible characters, case, accents and confusables,
//! leetspeak, letter spacing), and the zero-width characters hidden in words.

use crate::fold::{is_invisible, leet_digit};
use unicode_normalization::char::is_combining_mark;
use unicode_normalization::UnicodeNormalization;

/// Zero-width characters between two letters ("pa\u{200B}ss"): filter evasion.
/// Soft hyphens (real hyphenation hints) and joiners next to non-Latin
/// letters (Persian, Indic, emoji sequences) do not count.
pub(super) fn zero_width_in_words(s: &str) -> usize {
    // U+200B–U+200D and U+2060 encode as E2 xx xx, U+FEFF as EF BB BF
    if memchr::memchr2(0xE2, 0xEF, s.as_bytes()).is_none() {
        return 0;
    }
    let chars: Vec<char> = s.chars().collect();
    let mut n = 0;
    for (i, c) in chars.iter().enumerate() {
        if matches!(c, '\u{200B}'..='\u{200D}' | '\u{2060}' | '\u{FEFF}') {
            let before = chars[..i].iter().rev().find(|c| !is_invisible(**c));
            let after = chars[i + 1..].iter().find(|c| !is_invisible(**c));
            if before.is_some_and(|c| c.is_ascii_alphabetic()) && after.is_some_and(|c| c.is_ascii_alphabetic()) {
                n += 1;
            }
        }
    }
    n
}

/// Folds one lowercase non-ASCII character to ASCII where it is a Latin
/// letter with accents or a confusable of one (UTS #39 skeleton); other
/// letters (Greek words, CJK) are kept.
fn fold_non_ascii(c: char, out: &mut String) {
    match c {
        'ß' => return out.push_str("ss"),
        'æ' => return out.push_str("ae"),
        'œ' => return out.push_str("oe"),
        'ø' => return out.push('o'),
        'ł' => return out.push('l'),
        'đ' | 'ð' => return out.push('d'),
        'ı' => return out.push('i'),
        _ => {}
    }
    let stripped: String = c.to_string().nfd().filter(|c| !is_combining_mark(*c)).collect();
    if !stripped.is_empty() && stripped.chars().all(|c| c.is_ascii_alphanumeric()) {
        return out.push_str(&stripped);
    }
    let skel: String = unicode_security::confusable_detection::skeleton(&c.to_string())
        .filter(|c| !is_combining_mark(*c))
        .flat_map(char::to_lowercase)
        .collect();
    if !skel.is_empty() && skel.len() <= 2 && skel.chars().all(|c| c.is_ascii_alphanumeric()) {
        out.push_str(&skel);
    } else if c.is_alphanumeric() {
        out.push(c);
    } else {
        out.push(' ');
    }
}

/// Normalises text for phrase matching: NFKC, invisible characters removed,
/// lowercase, accents and confusables folded to ASCII, `@`/`$` and digits
/// used as letters inside a word read as letters (`p@ssw0rd`), everything
/// that is not a letter or digit a word break, runs of four or more
/// single-letter words joined (`p a s s w o r d`). Output: words separated by
/// one space.
///
/// One pass over the text plus one over its words; ASCII text (most mail)
/// is folded byte by byte without decoding characters.
pub fn normalize(s: &str) -> String {
    normalize_both(s).0
}

/// [`normalize`], and the same text with its spaces removed (for phrases
/// matched across stray spaces, see [`super::phrases::COMPACT_MIN`]).
pub(super) fn normalize_both(s: &str) -> (String, String) {
    // NFKC of ASCII is ASCII, and ASCII holds no invisible character: skip the normaliser
    let pre: std::borrow::Cow<str> = if s.is_ascii() {
        std::borrow::Cow::Borrowed(s)
    } else if unicode_normalization::is_nfkc_quick(s.chars()) == unicode_normalization::IsNormalized::Yes {
        if s.chars().any(is_invisible) {
            std::borrow::Cow::Owned(s.chars().filter(|c| !is_invisible(*c)).collect())
        } else {
            std::borrow::Cow::Borrowed(s)
        }
    } else {
        std::borrow::Cow::Owned(nfkc_visible(s))
    };
    let folded = if pre.is_ascii() {
        fold_ascii(pre.as_bytes())
    } else {
        let mut f = String::with_capacity(pre.len() + 1);
        fold_unicode(&pre, &mut f);
        f
    };
    join_words(&folded)
}

/// `s.nfkc()` without its invisible characters, with the normaliser run only
/// over the non-ASCII stretches: mail text is mostly ASCII with a no-break space
/// or a curly quote here and there, and normalising all of it cost more than
/// the rest of the folding. Exact: an ASCII character is a starter that never
/// composes with what precedes it, so the text splits before one without
/// changing its NFKC; only the ASCII character *before* a stretch can compose
/// (`e` + U+0301), so it goes in with the stretch.
fn nfkc_visible(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = String::with_capacity(s.len() + 16);
    let mut i = 0;
    while i < b.len() {
        let Some(n) = b[i..].iter().position(|c| !c.is_ascii()) else {
            out.push_str(&s[i..]);
            break;
        };
        let j = i + n;
        let start = if j > i { j - 1 } else { j };
        out.push_str(&s[i..start]);
        let k = b[j..].iter().position(u8::is_ascii).map_or(b.len(), |m| j + m);
        out.extend(s[start..k].nfkc().filter(|c| !is_invisible(*c)));
        i = k;
    }
    out
}

/// `@` between letters reads as `a`, unless the word is an address (a `.`
/// follows before the next space). `rest` is the text after the `@`.
fn at_is_letter(rest: &[u8]) -> bool {
    // the whitespace of `char::is_whitespace` that ends the word early enough:
    // ASCII spaces and controls; a non-ASCII space only makes the word longer
    !rest.iter().take_while(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\x0B' | b'\x0C' | b'\r')).any(|b| *b == b'.')
}

/// ASCII folded for phrase matching: lowercase letters and digits kept, everything else a space.
static FOLD_ASCII: [u8; 256] = {
    let mut t = [b' '; 256];
    let mut c = 0;
    while c < 128 {
        let b = c as u8;
        t[c] = if b.is_ascii_lowercase() || b.is_ascii_digit() {
            b
        } else if b.is_ascii_uppercase() {
            b.to_ascii_lowercase()
        } else {
            b' '
        };
        c += 1;
    }
    t
};

fn fold_ascii(b: &[u8]) -> String {
    let mut v: Vec<u8> = b.iter().map(|&c| FOLD_ASCII[c as usize]).collect();
    // `@` and `$` between letters read as letters (rare: look only where they are)
    let alpha = |i: usize| b.get(i).is_some_and(u8::is_ascii_alphabetic);
    for i in memchr::memchr2_iter(b'@', b'$', b) {
        if i > 0 && alpha(i - 1) && alpha(i + 1) {
            if b[i] == b'$' {
                v[i] = b's';
            } else if at_is_letter(&b[i + 1..]) {
                v[i] = b'a';
            }
        }
    }
    // every byte of `v` comes from FOLD_ASCII or is a letter: ASCII
    String::from_utf8(v).unwrap_or_else(|_| unreachable!("folded ASCII is UTF-8"))
}

fn fold_unicode(s: &str, out: &mut String) {
    // folding a character (NFD + skeleton) is costly: once per distinct character
    let mut cache: std::collections::HashMap<char, String> = std::collections::HashMap::new();
    let mut prev_letter = false;
    let mut it = s.char_indices().peekable();
    while let Some((i, c)) = it.next() {
        let next_letter = it.peek().is_some_and(|(_, n)| n.is_alphabetic());
        if c.is_ascii() {
            match c.to_ascii_lowercase() {
                l @ ('a'..='z' | '0'..='9') => out.push(l),
                '@' if prev_letter && next_letter && at_is_letter(&s.as_bytes()[i + 1..]) => out.push('a'),
                '$' if prev_letter && next_letter => out.push('s'),
                _ => out.push(' '),
            }
        } else {
            let f = cache.entry(c).or_insert_with(|| {
                let mut f = String::new();
                for l in c.to_lowercase() {
                    fold_non_ascii(l, &mut f);
                }
                f
            });
            out.push_str(f);
        }
        prev_letter = c.is_alphabetic();
    }
}

/// Splits folded text into words, reads leetspeak inside words, joins runs of
/// four or more single-letter words, and writes the words with one space between.
fn join_words(folded: &str) -> (String, String) {
    // One byte loop writing both outputs by index (no per-word copy call); a
    // word is fixed up in place when it ends: leetspeak is a same-length ASCII
    // substitution, and a run of single letters loses its spaces.
    let b = folded.as_bytes();
    let mut out = vec![0u8; b.len() + 1];
    let mut compact = vec![0u8; b.len()];
    let (mut o, mut k) = (0usize, 0usize);
    // current word: start in `out` and in `compact`, whether it has a digit
    let (mut ws, mut cs, mut digit, mut in_word) = (0usize, 0usize, false, false);
    // the run of single-letter words before the current word: start in `out`, length
    let (mut rs, mut run) = (0usize, 0usize);
    let mut end_word = |out: &mut Vec<u8>, o: &mut usize, compact: &mut Vec<u8>, ws: usize, cs: usize, digit: bool| {
        let w = &out[ws..*o];
        let single = match w.len() {
            1 => w[0].is_ascii_alphabetic(),
            2..=4 => std::str::from_utf8(w).is_ok_and(|w| {
                let mut it = w.chars();
                matches!((it.next(), it.next()), (Some(c), None) if c.is_alphabetic())
            }),
            _ => false,
        };
        if single {
            if run == 0 {
                rs = ws;
            }
            run += 1;
            return;
        }
        if digit {
            unleet_in_place(&mut out[ws..*o]);
            compact[cs..cs + (*o - ws)].copy_from_slice(&out[ws..*o]);
        }
        if run >= 4 {
            // "p a s s word" -> "pass word": drop the spaces inside the run
            let to = drop_spaces(out, rs, ws - 1);
            out.copy_within(ws - 1..*o, to);
            *o = to + (*o - ws + 1);
        }
        run = 0;
    };
    for &c in b {
        if c == b' ' {
            if in_word {
                in_word = false;
                end_word(&mut out, &mut o, &mut compact, ws, cs, digit);
            }
            continue;
        }
        if !in_word {
            in_word = true;
            digit = false;
            if o > 0 {
                out[o] = b' ';
                o += 1;
            }
            ws = o;
            cs = k;
        }
        digit |= c.is_ascii_digit();
        out[o] = c;
        o += 1;
        compact[k] = c;
        k += 1;
    }
    if in_word {
        end_word(&mut out, &mut o, &mut compact, ws, cs, digit);
    }
    if run >= 4 {
        o = drop_spaces(&mut out, rs, o);
    }
    out.truncate(o);
    compact.truncate(k);
    // words are whole UTF-8 sequences of `folded` (split at ASCII spaces), and
    // unleet only swaps ASCII digits for ASCII letters
    let s = |v: Vec<u8>| String::from_utf8(v).unwrap_or_else(|_| unreachable!("words of a str"));
    (s(out), s(compact))
}

/// Removes the spaces of `buf[start..end]` by moving its other bytes left;
/// returns where they now end.
fn drop_spaces(buf: &mut [u8], start: usize, end: usize) -> usize {
    let mut to = start;
    for from in start..end {
        if buf[from] != b' ' {
            buf[to] = buf[from];
            to += 1;
        }
    }
    to
}

/// Digits between ASCII letters read as the letters they imitate, in place,
/// for a word with at least three ASCII letters (`passw0rd`, `l0gin`).
fn unleet_in_place(w: &mut [u8]) {
    if w.iter().filter(|b| b.is_ascii_alphabetic()).count() < 3 {
        return;
    }
    for i in 1..w.len().saturating_sub(1) {
        if w[i - 1].is_ascii_alphabetic() && w[i + 1].is_ascii_alphabetic() {
            w[i] = match w[i] {
                // `1` reads as `i` here and as `l` in brand names, on purpose: see `leet_digit`
                b'1' => b'i',
                other => leet_digit(other as char).map_or(other, |l| l as u8),
            };
        }
    }
}

/// The normaliser as first written (a character vector, three passes); kept
/// to check the faster [`normalize`] against.
#[cfg(test)]
pub(crate) fn normalize_reference(s: &str) -> String {
    // NFKC of ASCII is ASCII, and ASCII holds no invisible character: skip the normaliser
    let chars: Vec<char> = if s.is_ascii() {
        s.chars().collect()
    } else if unicode_normalization::is_nfkc_quick(s.chars()) == unicode_normalization::IsNormalized::Yes {
        s.chars().filter(|c| !is_invisible(*c)).collect()
    } else {
        s.nfkc().filter(|c| !is_invisible(*c)).collect()
    };
    let mut folded = String::with_capacity(chars.len());
    let mut cache: std::collections::HashMap<char, String> = std::collections::HashMap::new();
    let letter = |i: usize| chars.get(i).is_some_and(|c| c.is_alphabetic());
    for (i, &c) in chars.iter().enumerate() {
        if c.is_ascii() {
            let l = c.to_ascii_lowercase();
            let between = || i > 0 && letter(i - 1) && letter(i + 1);
            match l {
                'a'..='z' | '0'..='9' => folded.push(l),
                // '@' between letters reads as 'a', unless it is an address ("jo@example.com")
                '@' if between() && !chars[i + 1..].iter().take_while(|c| !c.is_whitespace()).any(|c| *c == '.') => folded.push('a'),
                '$' if between() => folded.push('s'),
                _ => folded.push(' '),
            }
        } else {
            // folding a character (NFD + skeleton) is costly: once per distinct character
            let f = cache.entry(c).or_insert_with(|| {
                let mut f = String::new();
                for l in c.to_lowercase() {
                    fold_non_ascii(l, &mut f);
                }
                f
            });
            folded.push_str(f);
        }
    }
    let words: Vec<std::borrow::Cow<str>> = folded.split(' ').filter(|w| !w.is_empty()).map(unleet).collect();
    // join letter-spaced runs ("p a s s w o r d")
    let single = |w: &str| {
        let mut it = w.chars();
        matches!((it.next(), it.next()), (Some(c), None) if c.is_alphabetic())
    };
    let mut out = String::with_capacity(folded.len());
    let mut i = 0;
    while i < words.len() {
        let mut j = i;
        while j < words.len() && single(&words[j]) {
            j += 1;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        if j - i >= 4 {
            for w in &words[i..j] {
                out.push_str(w);
            }
            i = j;
        } else {
            out.push_str(&words[i]);
            i += 1;
        }
    }
    out
}

/// Digits between letters read as the letters they imitate (`passw0rd`, `l0gin`);
/// the reference for [`unleet_in_place`]. Its table is its own on purpose: the
/// reference shares no code with what it checks.
#[cfg(test)]
fn unleet(w: &str) -> std::borrow::Cow<'_, str> {
    if !w.bytes().any(|b| b.is_ascii_digit()) || w.bytes().filter(|b| b.is_ascii_alphabetic()).count() < 3 {
        return std::borrow::Cow::Borrowed(w);
    }
    let b: Vec<char> = w.chars().collect();
    let mut s = String::with_capacity(w.len());
    for (i, &c) in b.iter().enumerate() {
        let between = i > 0 && b[i - 1].is_ascii_alphabetic() && b.get(i + 1).is_some_and(|c| c.is_ascii_alphabetic());
        s.push(match c {
            '0' if between => 'o',
            '1' if between => 'i',
            '3' if between => 'e',
            '4' if between => 'a',
            '5' if between => 's',
            '7' if between => 't',
            other => other,
        });
    }
    std::borrow::Cow::Owned(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::content::html::html;
    use crate::analysis::content::Limits;

    /// The one-pass normaliser gives exactly what the first (three-pass) one gave.
    #[test]
    fn fast_normaliser_matches_the_reference() {
        const PIECES: &[&str] = &[
            "p@ss",
            "w0rd",
            " ",
            "  ",
            "a",
            " b",
            " c ",
            "d",
            "Vérifiez",
            "ß",
            "\u{200B}",
            "ＡＰＩ",
            "jo@example.com",
            "$",
            "u$er",
            "Ω",
            "Ωμέγα",
            "pаsswоrd",
            "\n",
            "\t",
            ".",
            "-",
            "1",
            "l0g1n",
            "@",
            "x@y",
            "é",
            "e\u{301}",
            "\u{FEFF}",
            "日本語",
            "K",
            "ﬁ",
            "Ⅻ",
            "\u{202E}",
            "@a.",
            "b@c d.",
            "\u{A0}",
            "Straße",
            "ǅ",
            "İ",
            "3",
            "4ever",
            "s3cur1ty",
        ];
        let mut seed = 0x2545F4914F6CDD1Du64;
        for n in 0..4000 {
            let mut s = String::new();
            for _ in 0..(n % 12) + 1 {
                s.push_str(PIECES[(crate::analysis::content::tests::xorshift(&mut seed) % PIECES.len() as u64) as usize]);
            }
            assert_eq!(normalize(&s), normalize_reference(&s), "input {s:?}");
        }
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/golden");
        let mut files = 0;
        let mut paths = Vec::new();
        for e in std::fs::read_dir(&dir).expect("golden fixtures") {
            let p = e.expect("dir entry").path();
            if p.is_dir() {
                paths.extend(std::fs::read_dir(&p).expect("golden family dir").map(|e| e.expect("dir entry").path()));
            }
        }
        for p in paths {
            if p.extension().is_some_and(|x| x == "eml") {
                let raw = std::fs::read(&p).expect("read fixture");
                let msg = mail_parser::MessageParser::default().parse(&raw).expect("fixture parses");
                for part in &msg.parts {
                    let t = match &part.body {
                        mail_parser::PartType::Text(t) => t.to_string(),
                        mail_parser::PartType::Html(h) => html(h, &Limits::default()).text,
                        _ => continue,
                    };
                    assert_eq!(normalize(&t), normalize_reference(&t), "{}", p.display());
                }
                files += 1;
            }
        }
        assert!(files >= 50, "only {files} golden files");
    }

    #[test]
    fn normalisation_folds_accents_case_and_punctuation() {
        assert_eq!(normalize("Vérifiez   VOTRE mot-de-passe!"), "verifiez votre mot de passe");
        assert_eq!(normalize("Straße"), "strasse");
        assert_eq!(normalize("ＡＰＩ　ｋｅｙ"), "api key");
    }

    #[test]
    fn homoglyphs_fold_to_latin() {
        // Cyrillic о, а, е; Greek ο
        assert_eq!(normalize("pаsswоrd vеrificatiοn"), "password verification");
    }

    #[test]
    fn leetspeak_inside_words_is_read() {
        assert_eq!(normalize("p@ssw0rd l0gin"), "password login");
        assert_eq!(normalize("mail jo@example.com 2fa 24 hours"), "mail jo example com 2fa 24 hours");
    }

    #[test]
    fn letter_spacing_is_collapsed() {
        assert_eq!(normalize("p a s s w o r d reset"), "password reset");
        assert_eq!(normalize("a b c"), "a b c");
    }

    #[test]
    fn nfkc_of_the_non_ascii_stretches_is_nfkc_of_the_whole() {
        // ASCII beside combining marks, compatibility forms, Hangul jamo, ligatures, no-break and invisible characters
        let alphabet: Vec<char> = "ae oO1.\u{301}\u{327}\u{308}\u{A0}\u{FB01}\u{FF21}\u{FF4F}\u{1100}\u{1161}\u{11A8}\u{200B}\u{FEFF}\u{2460}éñ\u{212B}\u{1E9B}\u{323}"
            .chars()
            .collect();
        let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..5000 {
            let mut t = String::new();
            crate::analysis::content::tests::xorshift(&mut seed);
            let len = (seed % 12) as usize;
            for k in 0..len {
                let r = seed.rotate_left(5 * k as u32 + 3);
                t.push(alphabet[(r % alphabet.len() as u64) as usize]);
            }
            let whole: String = t.nfkc().filter(|c| !is_invisible(*c)).collect();
            assert_eq!(nfkc_visible(&t), whole, "{t:?}");
        }
    }
}
