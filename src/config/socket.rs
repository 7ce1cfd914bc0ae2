//! `milter.socket` and `dns.nameservers` entries, parsed.

use std::path::PathBuf;

/// A parsed `milter.socket`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SocketSpec {
    Inet(String),
    Unix(PathBuf),
}

impl SocketSpec {
    pub fn parse(s: &str) -> Result<SocketSpec, String> {
        if let Some(rest) = s.strip_prefix("inet:") {
            // inet:HOST:PORT, also accept Sendmail's inet:PORT@HOST
            let addr = match rest.split_once('@') {
                Some((port, host)) => format!("{host}:{port}"),
                None => rest.to_string(),
            };
            let (host, port) = addr.rsplit_once(':').ok_or("expected inet:HOST:PORT")?;
            port.parse::<u16>().map_err(|_| format!("invalid port {port:?}"))?;
            if host.is_empty() {
                return Err("missing host in inet:HOST:PORT".into());
            }
            Ok(SocketSpec::Inet(addr))
        } else if let Some(path) = s.strip_prefix("unix:").or_else(|| s.strip_prefix("local:")) {
            if path.is_empty() {
                return Err("missing path in unix:PATH".into());
            }
            Ok(SocketSpec::Unix(PathBuf::from(path)))
        } else {
            Err("expected inet:HOST:PORT or unix:PATH".into())
        }
    }
}

/// `IP` (port 53) or `IP:PORT` / `[IPv6]:PORT`.
pub fn parse_nameserver(s: &str) -> Option<std::net::SocketAddr> {
    if let Ok(ip) = s.parse::<std::net::IpAddr>() {
        return Some(std::net::SocketAddr::new(ip, 53));
    }
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_specs() {
        assert_eq!(SocketSpec::parse("inet:7357@127.0.0.1").unwrap(), SocketSpec::Inet("127.0.0.1:7357".into()));
        assert_eq!(SocketSpec::parse("unix:/run/i.sock").unwrap(), SocketSpec::Unix("/run/i.sock".into()));
        assert!(SocketSpec::parse("inet:127.0.0.1").is_err());
    }
}
