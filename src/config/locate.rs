//! Where a key is in the file as written: the line numbers of configuration
//! errors (`impostor.toml:12: actions.reject: 8 must be above …`).
//!
//! A line-based reading of TOML, enough for the files impostor reads: table
//! headers (`[actions]`, `[[brand]]`, `[brand.overrides.scores]`), `key = value`
//! lines and dotted keys (`actions.reject = 8`).

use super::ConfigError;

/// The table path a header line opens: `[actions]` → `actions`, the third
/// `[[brand]]` → `brand[2]`, `[brand.overrides]` under it → `brand[2].overrides`.
fn header(line: &str, brands: &mut usize) -> Option<String> {
    let t = line.trim();
    if let Some(name) = t.strip_prefix("[[").and_then(|r| r.split_once("]]")).map(|(n, _)| clean_key(n)) {
        if name == "brand" {
            *brands += 1;
            return Some(format!("brand[{}]", *brands - 1));
        }
        return Some(name);
    }
    let name = clean_key(t.strip_prefix('[')?.split_once(']')?.0);
    match name.strip_prefix("brand.") {
        Some(rest) if *brands > 0 => Some(format!("brand[{}].{rest}", *brands - 1)),
        _ => Some(name),
    }
}

/// `"a" . b` → `a.b`
fn clean_key(k: &str) -> String {
    k.split('.').map(|p| p.trim().trim_matches('"').trim_matches('\'')).collect::<Vec<_>>().join(".")
}

/// The key of a `key = value` line, if the line is one.
fn line_key(line: &str) -> Option<String> {
    let t = line.trim_start();
    if t.starts_with('#') || t.starts_with('[') {
        return None;
    }
    let (k, _) = t.split_once('=')?;
    let k = clean_key(k);
    (!k.is_empty() && !k.contains(' ')).then_some(k)
}

fn join(table: &str, key: &str) -> String {
    if table.is_empty() {
        key.to_string()
    } else {
        format!("{table}.{key}")
    }
}

/// The 1-based line of `dotted` (`actions.reject`, `brand[1].domains`, `scores.X`) in `text`.
pub(super) fn key_line(text: &str, dotted: &str) -> Option<usize> {
    let mut table = String::new();
    let mut brands = 0;
    for (n, line) in text.lines().enumerate() {
        if let Some(t) = header(line, &mut brands) {
            if t == dotted {
                return Some(n + 1);
            }
            table = t;
        } else if let Some(k) = line_key(line) {
            if join(&table, &k) == dotted {
                return Some(n + 1);
            }
        }
    }
    None
}

/// The full key (`log.format`) owning line `index` (0-based): the nearest
/// `key =` line at or above it (a value may span lines) under its table.
fn key_at(lines: &[&str], index: usize) -> Option<String> {
    let mut brands = 0;
    let mut table = String::new();
    let mut key = None;
    for line in lines.iter().take(index + 1) {
        if let Some(t) = header(line, &mut brands) {
            table = t;
            key = None;
        } else if let Some(k) = line_key(line) {
            key = Some(k);
        }
    }
    Some(join(&table, &key?))
}

/// A deserialisation error of toml as `file:LINE: key: value: message`.
pub(super) fn de_error(file: &str, text: &str, e: &toml::de::Error) -> ConfigError {
    let message = e.message().trim().to_string();
    let Some(span) = e.span().filter(|s| s.start <= text.len()) else {
        return ConfigError::Invalid { file: file.into(), line: None, message };
    };
    let start = span.start;
    let line_index = text[..start].matches('\n').count();
    let lines: Vec<&str> = text.lines().collect();
    let this_line = lines.get(line_index).copied().unwrap_or("");
    let mut out = String::new();
    if let Some(key) = key_at(&lines, line_index) {
        out.push_str(&key);
        out.push_str(": ");
    }
    // the value as written, when the span is a value on one line (not a key or a whole table)
    let value = text.get(span.clone()).unwrap_or("");
    let line_start = start - text[..start].rfind('\n').map_or(0, |i| i + 1);
    let on_value = this_line.get(..line_start).is_some_and(|before| before.contains('=') || !this_line.contains('='));
    if !value.is_empty() && !value.contains('\n') && on_value && !message.contains(value.trim_matches('"')) {
        out.push_str(value);
        out.push_str(": ");
    }
    out.push_str(&message);
    ConfigError::Invalid { file: file.into(), line: Some(line_index + 1), message: out }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_keys_under_tables_brands_and_dotted() {
        let text = "user = \"x\"\n[actions]\ntag = 1\nreject = 2\n[[brand]]\nname = \"A\"\n[[brand]]\nname = \"B\"\n[brand.overrides.scores]\nX = 1\n";
        assert_eq!(key_line(text, "user"), Some(1));
        assert_eq!(key_line(text, "actions.reject"), Some(4));
        assert_eq!(key_line(text, "brand[1].name"), Some(8));
        assert_eq!(key_line(text, "brand[1].overrides.scores.X"), Some(10));
        assert_eq!(key_line("actions . reject = 3\n", "actions.reject"), Some(1));
        assert_eq!(key_line(text, "dns.budget_ms"), None);
    }
}
