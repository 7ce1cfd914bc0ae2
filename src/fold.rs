//! Character folding shared by brand-name matching ([`crate::brand`]) and the
//! text normaliser (`analysis::content::normalise`). A leaf: it uses no other
//! module of the crate, so both can use it without a module cycle.

/// Characters that render as nothing or reorder text: zero-width spaces and
/// joiners, soft hyphen, word joiner, BOM, bidi controls, variation selectors,
/// combining grapheme joiner, Mongolian vowel separator.
pub fn is_invisible(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{034F}' | '\u{180E}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{2069}' | '\u{FE00}'..='\u{FE0F}' | '\u{FEFF}')
}

/// The letter a digit stands for inside a word (`passw0rd`, `s3cure`, `p4ss`),
/// where brand names and the text normaliser agree: `0`→`o`, `3`→`e`, `4`→`a`,
/// `5`→`s`, `7`→`t`.
///
/// `1` is left to each on purpose. Brand-name keys fold it with `i`, `l`, `|`
/// and `!` to `l` (their alphabet has no `i`, so "OpenAI", "OpenAl" and
/// "opena1" are one key); the normaliser must give real words to phrase
/// matching and reads it as `i` ("l0g1n" → "login"). The lookalike skeleton of
/// domain labels (`analysis::lookalike::fold`) is a third table, separate on
/// purpose: it folds to classes of look-alikes (`1`→`l`, `6`/`8`→`d`, `9`→`g`,
/// `rn`→`m`, `c`→`e` …), which would break words and brand names.
pub fn leet_digit(d: char) -> Option<char> {
    match d {
        '0' => Some('o'),
        '3' => Some('e'),
        '4' => Some('a'),
        '5' => Some('s'),
        '7' => Some('t'),
        _ => None,
    }
}
