//! Homoglyph folding: labels and brand tokens to their confusable skeleton (UTS #39, Latin look-alikes, ASCII glyph
//! pairs and classes), the glyph expansions of brand tokens, and the homoglyph evidence.

use unicode_normalization::char::is_combining_mark;
use unicode_security::MixedScript;

/// Characters that can appear in a folded skeleton (see [`fold`]); DL-1 variants use these.
pub(super) const FOLDED_ALPHABET: &[char] =
    &['a', 'd', 'e', 'f', 'g', 'h', 'j', 'k', 'l', 'm', 'o', 'p', 'r', 's', 't', 'u', 'w', 'x', 'y', 'z', '2'];

/// A skeleton plus, for every byte of it, the byte offset of the source character in the label.
pub(super) struct Folded {
    pub(super) s: String,
    /// `off.len() == s.len() + 1`; the last entry is the label length.
    off: Vec<usize>,
}

impl Folded {
    /// The original label text behind skeleton bytes `start..end`.
    pub(super) fn raw<'a>(&self, label: &'a str, start: usize, end: usize) -> &'a str {
        label.get(self.off[start]..self.off[end]).unwrap_or("")
    }

    /// The byte offset in the label of skeleton byte `i` (`i == s.len()` gives the label length).
    pub(super) fn raw_offset(&self, i: usize) -> usize {
        self.off[i]
    }
}

pub(super) fn strip_hyphens(s: &str) -> std::borrow::Cow<'_, str> {
    if s.contains('-') {
        std::borrow::Cow::Owned(s.replace('-', ""))
    } else {
        std::borrow::Cow::Borrowed(s)
    }
}

/// Folds a label to its confusable skeleton; see the `lookalike` module documentation for the passes.
pub(super) fn fold(label: &str) -> Folded {
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

/// Single glyphs, before the pair pass. Separate on purpose from the leet digits of brand names and of the text
/// normaliser (`crate::fold::leet_digit`): a domain skeleton folds to look-alike classes (`1`, `i`, `|`, `!` → `l`
/// here, `3 4 5 7 6 8 9` in [`fold_class`] after `rn` → `m`), which would break words and brand names.
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
    LATIN_LOOKALIKES.iter().find(|(set, _)| set.contains(c)).map_or(c, |&(_, base)| base)
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
const GLYPH_EXPANSIONS: &[(char, &str)] =
    &[('b', "lb"), ('b', "cl"), ('d', "cl"), ('d', "dl"), ('h', "lh"), ('k', "lc"), ('m', "nn"), ('m', "rr"), ('w', "vv")];

/// Skeletons of `token` and of every single multi-character glyph expansion of it.
pub(super) fn glyph_expansions(token: &str) -> Vec<String> {
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

pub(super) fn homoglyph_detail(seen: &str, brand: &str) -> String {
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
            .map(|(x, y)| if x.is_ascii() { format!("'{x}' for '{y}'") } else { format!("'{x}' (U+{:04X}) for '{y}'", *x as u32) })
            .collect();
        format!("homoglyph: {}{script}", pairs.join(", "))
    } else {
        format!("homoglyph: \"{seen}\" for \"{brand}\"{script}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fold_is_case_insensitive_and_idempotent_on_brand_tokens() {
        assert_eq!(fold("OpenAI").s, fold("openai").s);
        assert_eq!(fold(&fold("openai").s).s, fold("openai").s);
    }
}
