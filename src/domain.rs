//! Domain names: normalisation (IDNA, case, trailing dot), the registrable
//! domain per the Public Suffix List, and the domain of an address. A leaf.

pub fn is_hostname(d: &str) -> bool {
    !d.is_empty()
        && d.len() <= 253
        && d.split('.').all(|l| {
            !l.is_empty() && l.len() <= 63 && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

/// Lowercases and converts a Unicode domain to its ASCII (punycode) form.
pub fn normalize_domain(d: &str) -> Option<String> {
    let d = d.trim().trim_end_matches('.').to_lowercase();
    let ascii = idna::domain_to_ascii(&d).ok()?;
    is_hostname(&ascii).then_some(ascii)
}

/// The registrable domain (public suffix + one label) of a host, per the Public Suffix List.
pub fn registrable(host: &str) -> Option<String> {
    let h = host.trim().trim_end_matches('.').to_ascii_lowercase();
    psl::domain_str(&h).map(str::to_string)
}

/// The lowercased domain of an e-mail address (`user@Example.COM` → `example.com`),
/// without angle brackets or a trailing dot.
pub fn domain_of(address: &str) -> Option<String> {
    let a = address.trim().trim_start_matches('<').trim_end_matches('>');
    let (_, d) = a.rsplit_once('@')?;
    let d = d.trim().trim_end_matches('.').to_ascii_lowercase();
    (!d.is_empty()).then_some(d)
}
