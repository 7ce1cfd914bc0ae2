//! The one shared DNS resolver (hickory, inside mail-auth's authenticator):
//! configurable nameservers, timeout, attempts and cache.

use crate::config::Config;
use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig, ResolverOpts};
use mail_auth::{MessageAuthenticator, ResolverCache, Txt};
use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Parsed TXT records (SPF policies, DKIM keys, DMARC policies) by name, until
/// their DNS TTL runs out: mail-auth's own cache hook, so that a sender's DKIM
/// key and policies are parsed once, not for each of its messages (hickory
/// caches the raw answer; this keeps what mail-auth makes of it). At most
/// `dns.cache_size` names; past that, expired ones go, then all.
pub struct TxtCache {
    map: Mutex<HashMap<Box<str>, (Txt, Instant)>>,
    cap: usize,
}

impl TxtCache {
    pub fn new(cap: u64) -> TxtCache {
        TxtCache { map: Mutex::new(HashMap::new()), cap: usize::try_from(cap).unwrap_or(usize::MAX).max(1) }
    }

    pub fn len(&self) -> usize {
        self.map.lock().map_or(0, |m| m.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl ResolverCache<Box<str>, Txt> for TxtCache {
    fn get<Q>(&self, name: &Q) -> Option<Txt>
    where
        Box<str>: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let mut m = self.map.lock().ok()?;
        match m.get(name) {
            Some((v, until)) if *until > Instant::now() => Some(v.clone()),
            Some(_) => {
                m.remove(name);
                None
            }
            None => None,
        }
    }

    fn remove<Q>(&self, name: &Q) -> Option<Txt>
    where
        Box<str>: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.map.lock().ok()?.remove(name).map(|(v, _)| v)
    }

    fn insert(&self, key: Box<str>, value: Txt, valid_until: Instant) {
        let Ok(mut m) = self.map.lock() else { return };
        if m.len() >= self.cap {
            let now = Instant::now();
            m.retain(|_, (_, until)| *until > now);
            if m.len() >= self.cap {
                m.clear();
            }
        }
        m.insert(key, (value, valid_until));
    }
}

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
