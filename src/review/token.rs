//! The access tokens of the review page: `review.token_file`, one `NAME:TOKEN` per line
//! (`#` comments and empty lines ignored). NAME is who the action log names.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// One accepted token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub name: String,
    pub secret: String,
}

/// `n` random bytes as lowercase hex (from the kernel's generator).
pub fn random_hex(n: usize) -> Result<String, String> {
    let mut buf = vec![0u8; n];
    let mut f = std::fs::File::open("/dev/urandom").map_err(|e| format!("/dev/urandom: {e}"))?;
    std::io::Read::read_exact(&mut f, &mut buf).map_err(|e| format!("/dev/urandom: {e}"))?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= 64 && name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.@".contains(c))
}

/// Reads the token file; refuses one that group or others may read, and one without a token.
pub fn load(path: &Path) -> Result<Vec<Token>, String> {
    let shown = path.display();
    let meta =
        std::fs::metadata(path).map_err(|e| format!("review.token_file: {shown}: {e} (create it with `impostor review --init-token`)"))?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(format!("review.token_file: {shown}: mode {mode:04o} lets group or others read it; chmod 0600 {shown}"));
    }
    let text = std::fs::read_to_string(path).map_err(|e| format!("review.token_file: {shown}: {e}"))?;
    parse(&text).map_err(|e| format!("review.token_file: {shown}: {e}"))
}

/// The tokens of a token file's text.
pub fn parse(text: &str) -> Result<Vec<Token>, String> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (name, secret) = line.split_once(':').ok_or_else(|| format!("line {}: must be NAME:TOKEN", i + 1))?;
        if !valid_name(name) {
            return Err(format!("line {}: name {name:?} must be letters, digits, - _ . @", i + 1));
        }
        if secret.len() < 32 {
            return Err(format!("line {}: the token of {name:?} is shorter than 32 characters", i + 1));
        }
        out.push(Token { name: name.to_string(), secret: secret.to_string() });
    }
    if out.is_empty() {
        return Err("no token in it (add one with `impostor review --init-token`)".into());
    }
    Ok(out)
}

/// `impostor review --init-token [--name NAME]`: adds a new token to the file (created with mode
/// 0600, as is its directory when missing, 0700) and returns it.
pub fn init(path: &Path, name: &str) -> Result<String, String> {
    let shown = path.display();
    if !valid_name(name) {
        return Err(format!("--name {name:?}: must be letters, digits, - _ . @"));
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty() && !d.exists()) {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| format!("review.token_file: {}: {e}", dir.display()))?;
    }
    if let Ok(text) = std::fs::read_to_string(path) {
        if parse(&text).unwrap_or_default().iter().any(|t| t.name == name) {
            return Err(format!("review.token_file: {shown}: a token named {name:?} exists; pick another --name"));
        }
    }
    let secret = random_hex(32)?;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| format!("review.token_file: {shown}: {e}"))?;
    // an existing file keeps its owner; its mode is made 0600 too
    f.set_permissions(std::fs::Permissions::from_mode(0o600)).map_err(|e| format!("review.token_file: {shown}: {e}"))?;
    writeln!(f, "{name}:{secret}").map_err(|e| format!("review.token_file: {shown}: {e}"))?;
    Ok(secret)
}

/// Compares two secrets in time that depends only on their lengths.
pub fn same(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_token_creates_a_0600_file_and_load_reads_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/review.tokens");
        let t = init(&path, "alice").unwrap();
        assert_eq!(t.len(), 64);
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        let t2 = init(&path, "bob").unwrap();
        let tokens = load(&path).unwrap();
        assert_eq!(tokens, vec![Token { name: "alice".into(), secret: t }, Token { name: "bob".into(), secret: t2 }]);
        assert!(init(&path, "alice").unwrap_err().contains("exists"));
    }

    #[test]
    fn a_token_file_others_can_read_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t");
        std::fs::write(&path, format!("a:{}\n", "x".repeat(40))).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = load(&path).unwrap_err();
        assert!(e.contains("review.token_file") && e.contains("0644"), "{e}");
    }

    #[test]
    fn short_or_malformed_tokens_are_errors() {
        assert!(parse("a:short\n").unwrap_err().contains("shorter"));
        assert!(parse("nocolon\n").unwrap_err().contains("NAME:TOKEN"));
        assert!(parse("# only a comment\n").unwrap_err().contains("no token"));
        assert!(same("abc", "abc") && !same("abc", "abd") && !same("abc", "ab"));
    }
}
