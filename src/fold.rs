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
