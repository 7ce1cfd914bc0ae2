//! The registrable label against brand tokens by edit distance: distance 0 (TLD swap, hyphenation, homoglyph), typos
//! (DL-1 from the precomputed variants, bounded DL-2 for long tokens), and the edit named in the evidence.

use super::fold::{fold, homoglyph_detail, strip_hyphens, FOLDED_ALPHABET};
use super::{Hit, LookalikeMatcher, Strength, Technique, Token, DL2_MIN_LEN, TYPO_ANY_SUFFIX_MIN_LEN, TYPO_MIN_LEN};

impl LookalikeMatcher {
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

    pub(super) fn match_registrable(&self, label: &str, suffix: &str) -> Option<Hit> {
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
                    return Some(Hit { token: ti as usize, techniques: tech, normalized: f.s, detail, strength: Strength::Full });
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

    fn typo_hit(&self, ti: usize, label_nohyph: &str, hyphenated: bool, normalized: String, dist: usize) -> Hit {
        let t = &self.tokens[ti];
        let mut tech = vec![Technique::Typo];
        let raw_dist = if label_nohyph.is_ascii() { osa_distance(label_nohyph, &t.raw, 3) } else { 3 };
        let detail = if dist == 1 && raw_dist == 1 {
            format!("typo: {}", describe_edit(label_nohyph, &t.raw))
        } else if dist == 2 && raw_dist == 2 {
            format!("typo: {raw_dist} edits, \"{label_nohyph}\" for \"{}\"", t.raw)
        } else {
            tech.push(Technique::Homoglyph);
            format!("typo+homoglyph: \"{label_nohyph}\" for \"{}\"", t.raw)
        };
        if hyphenated {
            tech.push(Technique::Hyphenation);
        }
        Hit { token: ti, techniques: tech, normalized, detail, strength: Strength::Full }
    }
}

/// Every string at Damerau–Levenshtein (optimal string alignment) distance 1 from `s` over
/// [`FOLDED_ALPHABET`].
pub(super) fn dl1_variants(s: &str) -> Vec<String> {
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
            let mut v = (d[(i - 1) * w + j] + 1).min(d[i * w + j - 1] + 1).min(d[(i - 1) * w + j - 1] + cost);
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
    KEYBOARD_ROWS.iter().enumerate().find_map(|(r, row)| row.find(c).map(|col| (r as i32, col as i32)))
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
    let first = s.iter().zip(&b).position(|(x, y)| x != y).unwrap_or(s.len().min(b.len()));
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
        if prev.is_some_and(|p| keyboard_adjacent(p, c)) || next.is_some_and(|n| keyboard_adjacent(n, c)) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn osa_counts_two_transpositions_as_two() {
        assert_eq!(osa_distance("exampeldmak", "exampledamk", 2), 2);
    }
}
