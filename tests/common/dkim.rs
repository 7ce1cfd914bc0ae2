//! DKIM keys and signatures from independent tools: openssl makes the key, dkimpy's `dkimsign`
//! signs, so impostor's verifier is checked against a signer it does not share code with.

use super::dns::need;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

/// Writes a 2048-bit RSA key to `dir/dkim.key`; returns the public key, base64 DER (the `p=` tag).
pub fn rsa_key(dir: &Path) -> String {
    need("openssl", "openssl");
    let key = dir.join("dkim.key");
    let st = Command::new("openssl").args(["genrsa", "-out"]).arg(&key).arg("2048").stderr(Stdio::null()).status().unwrap();
    assert!(st.success(), "openssl genrsa");
    let der = Command::new("openssl").args(["rsa", "-pubout", "-outform", "DER", "-in"]).arg(&key).stderr(Stdio::null()).output().unwrap();
    assert!(der.status.success(), "openssl rsa -pubout");
    let mut c = Command::new("base64").arg("-w0").stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
    c.stdin.take().unwrap().write_all(&der.stdout).unwrap();
    String::from_utf8(c.wait_with_output().unwrap().stdout).unwrap().trim().to_string()
}

/// Signs with dkimpy (`dkimsign SELECTOR DOMAIN KEYFILE`), selector `s1`, relaxed/relaxed.
pub fn sign(msg: &str, domain: &str, key: &Path) -> String {
    need("dkimsign", "python3-dkim");
    let mut child = Command::new("dkimsign")
        .args(["--hcanon", "relaxed", "--bcanon", "relaxed", "s1", domain])
        .arg(key)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(msg.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "dkimsign: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}
