//! The one shared DNS resolver (hickory, inside mail-auth's authenticator):
//! configurable nameservers, timeout, attempts and cache.

use crate::config::Config;
use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig, ResolverOpts};
use mail_auth::MessageAuthenticator;
use std::sync::Arc;
use std::time::Duration;

/// Builds the authenticator. With no `dns.nameservers` the system resolver
/// configuration (/etc/resolv.conf) is used.
pub fn authenticator(config: &Config) -> Result<Arc<MessageAuthenticator>, String> {
    let (rconf, mut opts) = if config.nameservers.is_empty() {
        hickory_resolver::system_conf::read_system_conf().map_err(|e| format!("system resolver configuration: {e}"))?
    } else {
        let servers = config
            .nameservers
            .iter()
            .map(|sa| {
                let mut udp = ConnectionConfig::udp();
                udp.port = sa.port();
                let mut tcp = ConnectionConfig::tcp();
                tcp.port = sa.port();
                NameServerConfig::new(sa.ip(), true, vec![udp, tcp])
            })
            .collect();
        (ResolverConfig::from_parts(None, vec![], servers), ResolverOpts::default())
    };
    opts.timeout = Duration::from_millis(config.dns.timeout_ms);
    // dns.attempts counts tries; hickory's `attempts` are retries after the first one
    opts.attempts = config.dns.attempts.saturating_sub(1);
    opts.cache_size = config.dns.cache_size;
    // NXDOMAIN/NODATA without an SOA is cached for this long too, not at all by default
    opts.negative_min_ttl = Some(Duration::from_secs(config.dns.negative_cache_secs));
    opts.edns0 = true;
    MessageAuthenticator::new(rconf, opts).map(Arc::new).map_err(|e| format!("DNS resolver: {e}"))
}
