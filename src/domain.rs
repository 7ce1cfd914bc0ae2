//! Domain names: normalisation (IDNA, case, trailing dot), the registrable
//! domain per the Public Suffix List, and the domain of an address. A leaf.

pub fn is_hostname(d: &str) -> bool {
    !d.is_empty()
        && d.len() <= 253
        && d.split('.').all(|l| !l.is_empty() && l.len() <= 63 && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
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

/// What is wrong with a sender's domain as a name on the Internet, if anything: an IP literal,
/// not a valid host name, or no public suffix (`correios`, `amexpremiumid172528`, `x.notatld`).
/// Special-use names (RFC 2606/6761: `.example`, `.test`, `.invalid`, `.localhost`; and the
/// common internal `.local`, `.lan`, `.internal`, `.home.arpa`) are left alone: they are the
/// documentation and internal names of test setups and relays, not Internet senders.
pub fn invalid_sender_domain(domain: &str) -> Option<&'static str> {
    let d = domain.trim().trim_end_matches('.').to_ascii_lowercase();
    let bare = d.trim_start_matches('[').trim_end_matches(']');
    if d.starts_with('[')
        || bare.parse::<std::net::IpAddr>().is_ok()
        || bare.strip_prefix("ipv6:").is_some_and(|v| v.parse::<std::net::Ipv6Addr>().is_ok())
    {
        return Some("is an IP literal");
    }
    let Some(ascii) = normalize_domain(&d) else {
        return Some("is not a valid host name");
    };
    const SPECIAL: &[&str] = &["example", "test", "invalid", "localhost", "local", "lan", "internal", "home.arpa"];
    if SPECIAL.iter().any(|t| ascii == *t || ascii.ends_with(&format!(".{t}"))) {
        return None;
    }
    match psl::suffix(ascii.as_bytes()) {
        // a name that is itself a suffix (iki.fi, a private-section entry) is still an Internet name
        Some(s) if s.is_known() => None,
        _ => Some("has no public suffix"),
    }
}

/// The lowercased domain of an e-mail address (`user@Example.COM` → `example.com`),
/// after the last `@`, without white space, trailing dots or closing angle
/// brackets in any order (`<user@example.com.>`, `user@example.com> `).
pub fn domain_of(address: &str) -> Option<String> {
    let (_, d) = address.rsplit_once('@')?;
    let d = d.trim_start().trim_end_matches(|c: char| c == '.' || c == '>' || c.is_whitespace()).to_ascii_lowercase();
    (!d.is_empty()).then_some(d)
}

/// [`domain_of`] when it has a dot: None for `postmaster@localhost`. For the
/// domains compared with brands' and lookalikes' (Reply-To, Sender, MAIL FROM,
/// Message-ID …): a local name is neither registrable nor an imitation, and a
/// brand's Reply-To to one is not a reply "outside the brand".
pub fn dotted_domain_of(address: &str) -> Option<String> {
    domain_of(address).filter(|d| d.contains('.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domain_of_an_address_is_bare_and_lowercase() {
        for (a, want) in [
            ("user@Example.COM", Some("example.com")),
            ("<user@example.com>", Some("example.com")),
            (" user@example.com. ", Some("example.com")),
            ("user@example.com.>", Some("example.com")),
            ("user@example.com>.", Some("example.com")),
            ("user@ example.com >", Some("example.com")),
            ("a@b@example.com", Some("example.com")),
            ("postmaster@localhost", Some("localhost")),
            ("user", None),
            ("user@", None),
            ("<user@>", None),
        ] {
            assert_eq!(domain_of(a).as_deref(), want, "{a:?}");
        }
        assert_eq!(dotted_domain_of("postmaster@localhost"), None);
    }

    #[test]
    fn sender_domains_without_a_public_suffix_or_as_ip_literals_are_invalid() {
        for (d, want) in [
            ("correios", Some("has no public suffix")),
            ("amexpremiumid172528", Some("has no public suffix")),
            ("mail.notatld", Some("has no public suffix")),
            ("iki.fi", None),
            ("[192.0.2.7]", Some("is an IP literal")),
            ("192.0.2.7", Some("is an IP literal")),
            ("[IPv6:2001:db8::1]", Some("is an IP literal")),
            ("bad_name!.com", Some("is not a valid host name")),
            ("example.com", None),
            ("mail.example.co.uk", None),
            ("bücher.de", None),
            ("account-notice.example", None),
            ("relay.local", None),
        ] {
            assert_eq!(invalid_sender_domain(d), want, "{d:?}");
        }
        assert_eq!(dotted_domain_of("<bounce@Mail.Example.com>").as_deref(), Some("mail.example.com"));
    }
}
