//! What guards the sign-in: the throttle policy, who the client is (the
//! peer, or what a trusted proxy says it saw), and a bound on concurrent
//! password hashing (argon2id costs 19 MiB and tens of milliseconds a run,
//! so unbounded concurrent attempts are a memory and CPU attack).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use tokio::sync::Semaphore;

/// Failures allowed per account and per client address within the window.
pub const MAX_FAILURES: i64 = 10;
/// The sliding window the failures are counted in.
pub const WINDOW_SECS: i64 = 15 * 60;
/// How long a sign-in waits for a hashing slot before answering "busy".
pub const HASHING_WAIT_SECS: u64 = 10;

/// Injected in the app state (one per application, never global).
#[derive(Debug, Clone)]
pub struct SignInGuard {
    /// One permit per concurrent argon2 verification.
    pub hashing: Arc<Semaphore>,
    pub hashing_limit: usize,
    /// Proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Arc<[IpAddr]>,
}

impl SignInGuard {
    /// As many concurrent hashes as the machine has cores: more would only
    /// queue inside the CPU while holding their memory.
    pub fn new(trusted_proxies: Vec<IpAddr>) -> Self {
        let limit = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        SignInGuard {
            hashing: Arc::new(Semaphore::new(limit)),
            hashing_limit: limit,
            trusted_proxies: trusted_proxies.into(),
        }
    }

    /// The client's address: the peer's, unless the peer is a trusted proxy;
    /// then the right-most `X-Forwarded-For` entry that is not itself a
    /// trusted proxy (entries to its left were written by the client and
    /// prove nothing).
    pub fn client_addr(&self, peer: SocketAddr, forwarded_for: Option<&str>) -> IpAddr {
        let trusted = |ip: &IpAddr| self.trusted_proxies.contains(&canonical(*ip));
        let peer = canonical(peer.ip());
        if !trusted(&peer) {
            return peer;
        }
        let Some(header) = forwarded_for else {
            return peer;
        };
        let mut client = peer;
        for entry in header.rsplit(',') {
            let Some(ip) = parse_forwarded(entry) else {
                // Garbage from here leftwards: stop at what we know.
                break;
            };
            client = ip;
            if !trusted(&ip) {
                break;
            }
        }
        client
    }
}

/// IPv4-mapped IPv6 addresses (`::ffff:1.2.3.4`) are the IPv4 address.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

/// One `X-Forwarded-For` entry: an IP, possibly with a port (`1.2.3.4:5`,
/// `[::1]:5`).
fn parse_forwarded(entry: &str) -> Option<IpAddr> {
    let e = entry.trim();
    if let Ok(ip) = e.parse::<IpAddr>() {
        return Some(canonical(ip));
    }
    e.parse::<SocketAddr>().ok().map(|s| canonical(s.ip()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard(trusted: &[&str]) -> SignInGuard {
        SignInGuard::new(trusted.iter().map(|t| t.parse().unwrap()).collect())
    }

    fn peer(s: &str) -> SocketAddr {
        SocketAddr::new(s.parse().unwrap(), 4000)
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_forwards() {
        let g = guard(&[]);
        assert_eq!(
            g.client_addr(peer("203.0.113.9"), Some("10.0.0.1")),
            "203.0.113.9".parse::<IpAddr>().unwrap()
        );
    }

    #[test]
    fn a_trusted_proxy_is_believed_for_the_last_hop_only() {
        let g = guard(&["10.0.0.2", "10.0.0.3"]);
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        // The client forged the first entry; our proxies appended the rest.
        assert_eq!(
            g.client_addr(peer("10.0.0.2"), Some("1.1.1.1, 198.51.100.7, 10.0.0.3")),
            ip("198.51.100.7")
        );
        assert_eq!(g.client_addr(peer("10.0.0.2"), None), ip("10.0.0.2"));
        assert_eq!(
            g.client_addr(peer("10.0.0.2"), Some("198.51.100.7:5123")),
            ip("198.51.100.7")
        );
        assert_eq!(
            g.client_addr(peer("10.0.0.2"), Some("junk, 198.51.100.7")),
            ip("198.51.100.7")
        );
        assert_eq!(
            g.client_addr(peer("10.0.0.2"), Some("junk")),
            ip("10.0.0.2")
        );
        assert_eq!(
            g.client_addr(peer("::ffff:10.0.0.2"), Some("192.0.2.1")),
            ip("192.0.2.1")
        );
    }

    #[test]
    fn hashing_is_bounded_by_the_cores() {
        let g = guard(&[]);
        assert!(g.hashing_limit >= 1);
        assert_eq!(g.hashing.available_permits(), g.hashing_limit);
    }
}
