//! Who a request comes from, and how often that client may call the expensive routes.
//!
//! Upstream keys its limiter on the `X-Forwarded-For` header, which the client writes: a new
//! header value on each request is a new, full allowance, so the limit bounds nothing. Here the
//! client is the **TCP peer** of the connection, which cannot be forged. A forwarded address is
//! believed only as far as the chain of proxies that wrote it is trusted (`--trusted-proxies`):
//!
//! 1. If the peer is not a trusted proxy, the client is the peer. Its `X-Forwarded-For` is
//!    ignored.
//! 2. Otherwise the `X-Forwarded-For` entries (all header lines, in order) are read from the
//!    right. Each entry was appended by the hop to its right, so the walk goes on only while
//!    the address just read is itself a trusted proxy. The client is the right-most address
//!    that is not a trusted proxy; if the walk meets an entry that is not an IP address, or the
//!    header runs out, the client is the last trusted hop reached.
//!
//! Clients are bucketed by address: an IPv4 address is one client, an IPv6 address counts by
//! its `/64` (one host usually owns a whole `/64`, so per-address buckets would hand it 2⁶⁴
//! allowances). IPv4-mapped IPv6 peers (dual-stack sockets) count as their IPv4 address.
//!
//! The limiter itself is a GCRA with throttled v2's arithmetic (upstream's headers and
//! numbers), one bucket per (route, client), stored as 64-bit keyed hashes in a map of at most
//! [`RATE_LIMIT_KEYS`] entries; see [`RateLimiter`] for the eviction rule.

use std::{
    collections::HashMap,
    hash::{BuildHasher, Hash, RandomState},
    net::{IpAddr, SocketAddr},
    str::FromStr,
    sync::Mutex,
    time::Instant,
};

use axum::http::{HeaderMap, HeaderName, HeaderValue, header};

/// Number of clients the rate limiter remembers (upstream's memstore size). At about 40 bytes
/// per entry the store stays under 4 MiB.
pub const RATE_LIMIT_KEYS: usize = 65536;

const X_RATELIMIT_LIMIT: HeaderName = HeaderName::from_static("x-ratelimit-limit");
const X_RATELIMIT_REMAINING: HeaderName = HeaderName::from_static("x-ratelimit-remaining");
const X_RATELIMIT_RESET: HeaderName = HeaderName::from_static("x-ratelimit-reset");
const X_FORWARDED_FOR: &str = "x-forwarded-for";

// ---------------------------------------------------------------------------------------------
// Trusted proxies and the client address

/// A `--trusted-proxies` entry is not an address or CIDR.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an IP address or CIDR (like 10.0.0.0/8 or fd00::/8)")]
pub struct CidrError(String);

/// An IP network: an address and a prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet {
    addr: IpAddr,
    prefix: u8,
}

impl IpNet {
    /// Whether `ip` is inside the network (IPv4-mapped IPv6 addresses count as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                prefix_eq(&net.octets(), &ip.octets(), self.prefix)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                prefix_eq(&net.octets(), &ip.octets(), self.prefix)
            }
            _ => false,
        }
    }
}

fn prefix_eq(a: &[u8], b: &[u8], prefix: u8) -> bool {
    let bits = usize::from(prefix);
    let (whole, rest) = (bits / 8, bits % 8);
    if a[..whole] != b[..whole] {
        return false;
    }
    if rest == 0 {
        return true;
    }
    let mask = 0xffu8 << (8 - rest);
    a[whole] & mask == b[whole] & mask
}

impl FromStr for IpNet {
    type Err = CidrError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let error = || CidrError(text.to_string());
        let (addr, prefix) = match text.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (text, None),
        };
        let addr = IpAddr::from_str(addr).map_err(|_| error())?.to_canonical();
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {
                p.parse::<u8>().map_err(|_| error())?
            }
            Some(_) => return Err(error()),
        };
        if prefix > max {
            return Err(error());
        }
        Ok(Self { addr, prefix })
    }
}

/// `--trusted-proxies`: the proxies whose `X-Forwarded-For` entries are believed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// Parses a comma-separated list of addresses and CIDRs; empty entries are skipped.
    pub fn parse(text: &str) -> Result<Self, CidrError> {
        text.split(',')
            .map(str::trim)
            .filter(|entry| !entry.is_empty())
            .map(IpNet::from_str)
            .collect::<Result<Vec<_>, _>>()
            .map(Self)
    }

    /// Whether no proxy is trusted.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|net| net.contains(ip))
    }

    /// The client of a request that arrived from `peer` with `headers` (see the module docs).
    pub fn client_address(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let mut client = peer.to_canonical();
        if !self.trusts(client) {
            return client;
        }
        let lines: Vec<&HeaderValue> = headers.get_all(X_FORWARDED_FOR).iter().collect();
        for line in lines.into_iter().rev() {
            let Ok(line) = line.to_str() else {
                return client;
            };
            for entry in line.rsplit(',') {
                let Some(hop) = forwarded_address(entry) else {
                    return client;
                };
                client = hop;
                if !self.trusts(client) {
                    return client;
                }
            }
        }
        client
    }
}

/// One `X-Forwarded-For` entry: an address, possibly with a port (`1.2.3.4:80`, `[::1]:80`).
fn forwarded_address(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim();
    IpAddr::from_str(entry)
        .ok()
        .or_else(|| SocketAddr::from_str(entry).ok().map(|a| a.ip()))
        .map(|ip| ip.to_canonical())
}

/// The rate-limit bucket of a client address: IPv4 whole, IPv6 by `/64`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClientBucket {
    /// One IPv4 address.
    V4([u8; 4]),
    /// The first 64 bits of an IPv6 address.
    V6([u8; 8]),
}

impl From<IpAddr> for ClientBucket {
    fn from(ip: IpAddr) -> Self {
        match ip.to_canonical() {
            IpAddr::V4(v4) => Self::V4(v4.octets()),
            IpAddr::V6(v6) => {
                let mut prefix = [0u8; 8];
                prefix.copy_from_slice(&v6.octets()[..8]);
                Self::V6(prefix)
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The limiter

/// The limiter's store failed (a poisoned lock); upstream answers `500 internal error`.
#[derive(Debug)]
pub struct StoreError;

/// The outcome of one check, with what the `X-RateLimit-*` headers report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// Whether the request may proceed.
    pub allowed: bool,
    pub(crate) limit: u64,
    pub(crate) remaining: u64,
    /// Nanoseconds until the client's allowance is whole again.
    pub(crate) reset_after: i128,
    /// Nanoseconds until the next request would be allowed (refusals only).
    pub(crate) retry_after: Option<i128>,
}

pub(crate) const NANOS_PER_SECOND: i128 = 1_000_000_000;
/// Emission interval used for a rate that is not positive: about a year.
const MAX_EMISSION_INTERVAL: i128 = 365 * 24 * 3600 * NANOS_PER_SECOND;

pub(crate) fn ceil_seconds(nanos: i128) -> u64 {
    if nanos <= 0 {
        return 0;
    }
    u64::try_from((nanos + NANOS_PER_SECOND - 1) / NANOS_PER_SECOND).unwrap_or(u64::MAX)
}

impl Decision {
    /// throttled's headers: limit, remaining, reset (seconds, rounded up) and, on refusal,
    /// `Retry-After` (seconds, rounded up).
    pub fn write_headers(&self, headers: &mut HeaderMap) {
        headers.insert(X_RATELIMIT_LIMIT, HeaderValue::from(self.limit));
        headers.insert(X_RATELIMIT_REMAINING, HeaderValue::from(self.remaining));
        headers.insert(
            X_RATELIMIT_RESET,
            HeaderValue::from(ceil_seconds(self.reset_after)),
        );
        if let Some(retry_after) = self.retry_after {
            headers.insert(
                header::RETRY_AFTER,
                HeaderValue::from(ceil_seconds(retry_after)),
            );
        }
    }
}

/// GCRA (generic cell rate algorithm) limiter with throttled v2's arithmetic: emission interval
/// `T = 1/rate`, tolerance `T × (burst + 1)`, one theoretical arrival time per key. Keys are
/// kept as 64-bit keyed hashes, so memory stays bounded whatever clients send; at `capacity`
/// keys, keys whose allowance is whole again are dropped first (forgetting them changes
/// nothing), then the eighth closest to it (those clients get a fresh allowance early, the
/// price of a bounded store). Eviction scans the map once per `capacity / 8` new clients.
pub struct RateLimiter {
    emission_interval: i128,
    tolerance: i128,
    limit: u64,
    capacity: usize,
    origin: Instant,
    hasher: RandomState,
    /// Key hash → theoretical arrival time, in nanoseconds since `origin`.
    pub(crate) store: Mutex<HashMap<u64, i128>>,
}

impl RateLimiter {
    /// A limiter of `rate` per second after a burst of `burst + 1`, remembering at most
    /// `capacity` clients. A rate that is not positive (or not finite) allows only the burst.
    pub fn new(rate: f64, burst: u32, capacity: usize) -> Self {
        let emission_interval = if rate.is_finite() && rate > 0.0 {
            // Float to integer casts saturate; the clamp keeps the interval sane.
            ((1e9 / rate).round() as i128).clamp(1, MAX_EMISSION_INTERVAL)
        } else {
            MAX_EMISSION_INTERVAL
        };
        let window = i128::from(burst) + 1;
        Self {
            emission_interval,
            tolerance: emission_interval * window,
            limit: u64::from(burst) + 1,
            capacity: capacity.max(1),
            origin: Instant::now(),
            hasher: RandomState::new(),
            store: Mutex::new(HashMap::new()),
        }
    }

    /// Counts one request of `client` on `path` now.
    pub fn check(&self, path: &str, client: impl Hash) -> Result<Decision, StoreError> {
        let now = i128::try_from(self.origin.elapsed().as_nanos()).unwrap_or(i128::MAX / 4);
        self.check_at(path, client, now)
    }

    pub(crate) fn check_at(
        &self,
        path: &str,
        client: impl Hash,
        now: i128,
    ) -> Result<Decision, StoreError> {
        let key = self.hasher.hash_one((path, client));
        let mut store = self.store.lock().map_err(|_| StoreError)?;
        let stored = store.get(&key).copied();
        let tat = stored.unwrap_or(now);
        let new_tat = tat.max(now) + self.emission_interval;
        let allow_at = new_tat - self.tolerance;
        let diff = now - allow_at;
        let (allowed, ttl, retry_after) = if diff < 0 {
            (false, tat - now, Some(-diff))
        } else {
            if stored.is_none() && store.len() >= self.capacity {
                self.evict(&mut store, now);
            }
            store.insert(key, new_tat);
            (true, new_tat - now, None)
        };
        let next = self.tolerance - ttl;
        let remaining = if next > -self.emission_interval {
            u64::try_from(next / self.emission_interval).unwrap_or(0)
        } else {
            0
        };
        Ok(Decision {
            allowed,
            limit: self.limit,
            remaining,
            reset_after: ttl,
            retry_after,
        })
    }

    fn evict(&self, store: &mut HashMap<u64, i128>, now: i128) {
        // A key whose arrival time has passed is indistinguishable from an unknown key.
        store.retain(|_, tat| *tat > now);
        if store.len() < self.capacity {
            return;
        }
        let mut tats: Vec<i128> = store.values().copied().collect();
        let nth = (self.capacity / 8).min(tats.len() - 1);
        let (_, threshold, _) = tats.select_nth_unstable(nth);
        let threshold = *threshold;
        store.retain(|_, tat| *tat > threshold);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i128 = NANOS_PER_SECOND;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn forwarded(lines: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for line in lines {
            headers.append(X_FORWARDED_FOR, HeaderValue::from_str(line).unwrap());
        }
        headers
    }

    #[test]
    fn gcra_matches_throttled_arithmetic() {
        // 2/s, burst 2: three at once, then one every 500 ms.
        let limiter = RateLimiter::new(2.0, 2, 16);
        let at = |t: i128| limiter.check_at("/v1/verify", b"c", t).unwrap();
        let first = at(0);
        assert_eq!((first.allowed, first.remaining, first.limit), (true, 2, 3));
        assert_eq!(ceil_seconds(first.reset_after), 1);
        assert_eq!(at(0).remaining, 1);
        let third = at(0);
        assert_eq!((third.allowed, third.remaining), (true, 0));
        assert_eq!(ceil_seconds(third.reset_after), 2);
        let refused = at(0);
        assert!(!refused.allowed);
        assert_eq!(refused.retry_after, Some(S / 2));
        assert_eq!(refused.reset_after, 3 * S / 2);
        assert!(!at(S / 2 - 1).allowed);
        assert!(at(S / 2).allowed);
        assert!(!at(S / 2).allowed);
        // After a full reset the whole burst is back.
        assert_eq!(at(10 * S).remaining, 2);
    }

    #[test]
    fn zero_burst_allows_one_per_interval() {
        let limiter = RateLimiter::new(1.0, 0, 16);
        let at = |t: i128| limiter.check_at("/p", b"c", t).unwrap();
        assert!(at(0).allowed);
        let refused = at(0);
        assert!(!refused.allowed);
        assert_eq!(refused.retry_after, Some(S));
        assert!(at(S).allowed);
    }

    #[test]
    fn non_positive_rates_allow_only_the_burst() {
        for rate in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            let limiter = RateLimiter::new(rate, 1, 16);
            let at = |t: i128| limiter.check_at("/p", b"c", t).unwrap();
            assert!(at(0).allowed, "{rate}");
            assert!(at(0).allowed, "{rate}");
            assert!(!at(3600 * S).allowed, "{rate}");
        }
        // A huge rate still limits to the burst within one nanosecond.
        let limiter = RateLimiter::new(1e18, 0, 16);
        assert!(limiter.check_at("/p", b"c", 0).unwrap().allowed);
        assert!(!limiter.check_at("/p", b"c", 0).unwrap().allowed);
    }

    #[test]
    fn the_store_stays_bounded() {
        let limiter = RateLimiter::new(1.0, 0, 64);
        for i in 0..10_000u32 {
            let client = ClientBucket::V4(i.to_be_bytes());
            assert!(limiter.check_at("/p", client, 0).unwrap().allowed);
            assert!(limiter.store.lock().unwrap().len() <= 64);
        }
        // Expired keys are dropped before live ones.
        let limiter = RateLimiter::new(1.0, 0, 4);
        for i in 0..4u8 {
            limiter.check_at("/p", [i], 0).unwrap();
        }
        limiter.check_at("/p", b"late", 5 * S).unwrap();
        assert_eq!(limiter.store.lock().unwrap().len(), 1);
        // Live keys survive the eviction of the eighth closest to expiry.
        let limiter = RateLimiter::new(1.0, 0, 16);
        for i in 0..16i128 {
            limiter.check_at("/p", [i as u8], i).unwrap();
        }
        limiter.check_at("/p", b"new", 16).unwrap();
        let store = limiter.store.lock().unwrap();
        assert!(store.len() <= 16 && store.len() >= 8, "{}", store.len());
    }

    #[test]
    fn cidrs_parse_and_match() {
        let nets = TrustedProxies::parse(" 10.0.0.0/8, 192.168.1.7 ,fd00::/8,,").unwrap();
        assert_eq!(nets.0.len(), 3);
        assert!(nets.trusts(ip("10.255.0.1")));
        assert!(
            nets.trusts(ip("::ffff:10.1.2.3")),
            "IPv4-mapped counts as IPv4"
        );
        assert!(nets.trusts(ip("192.168.1.7")));
        assert!(!nets.trusts(ip("192.168.1.8")));
        assert!(nets.trusts(ip("fd12::1")));
        assert!(!nets.trusts(ip("fe80::1")));
        assert!(!nets.trusts(ip("11.0.0.0")));
        let odd: IpNet = "10.1.2.3/13".parse().unwrap();
        assert!(odd.contains(ip("10.7.255.255")));
        assert!(!odd.contains(ip("10.8.0.0")));
        assert!(
            IpNet::from_str("0.0.0.0/0")
                .unwrap()
                .contains(ip("1.2.3.4"))
        );
        assert!(!IpNet::from_str("0.0.0.0/0").unwrap().contains(ip("::2")));
        assert!(TrustedProxies::parse("").unwrap().is_empty());
        for bad in [
            "10.0.0.0/33",
            "::/129",
            "10.0.0.0/",
            "10.0.0/8",
            "host",
            "1.2.3.4/+8",
        ] {
            let err = TrustedProxies::parse(bad).unwrap_err();
            assert!(err.to_string().contains(bad), "{err}");
        }
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_forwards() {
        let none = TrustedProxies::default();
        let headers = forwarded(&["1.1.1.1, 2.2.2.2"]);
        assert_eq!(none.client_address(ip("9.9.9.9"), &headers), ip("9.9.9.9"));
        let proxies = TrustedProxies::parse("10.0.0.0/8").unwrap();
        assert_eq!(
            proxies.client_address(ip("9.9.9.9"), &headers),
            ip("9.9.9.9")
        );
        assert_eq!(
            none.client_address(ip("::ffff:9.9.9.9"), &HeaderMap::new()),
            ip("9.9.9.9")
        );
    }

    #[test]
    fn a_trusted_proxy_chain_yields_the_right_most_untrusted_address() {
        let proxies = TrustedProxies::parse("10.0.0.0/8").unwrap();
        let peer = ip("10.0.0.1");
        // The client forged the left part; the proxy appended what it saw.
        let headers = forwarded(&["6.6.6.6, 7.7.7.7", "3.3.3.3"]);
        assert_eq!(proxies.client_address(peer, &headers), ip("3.3.3.3"));
        // Several trusted hops are skipped.
        let headers = forwarded(&["6.6.6.6, 3.3.3.3, 10.2.0.1:4711, 10.3.0.1"]);
        assert_eq!(proxies.client_address(peer, &headers), ip("3.3.3.3"));
        let headers = forwarded(&["[2001:db8::1]:80"]);
        assert_eq!(proxies.client_address(peer, &headers), ip("2001:db8::1"));
        // Garbage, or nothing more to read: the last trusted hop.
        let headers = forwarded(&["3.3.3.3, junk, 10.3.0.1"]);
        assert_eq!(proxies.client_address(peer, &headers), ip("10.3.0.1"));
        assert_eq!(proxies.client_address(peer, &HeaderMap::new()), peer);
        let mut headers = HeaderMap::new();
        headers.insert(
            X_FORWARDED_FOR,
            HeaderValue::from_bytes(b"3.3.3.3, \xff").unwrap(),
        );
        assert_eq!(proxies.client_address(peer, &headers), peer);
    }

    #[test]
    fn ipv6_clients_count_by_their_64() {
        let a = ClientBucket::from(ip("2001:db8:1:2:aaaa::1"));
        let b = ClientBucket::from(ip("2001:db8:1:2:bbbb::2"));
        let c = ClientBucket::from(ip("2001:db8:1:3::1"));
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(
            ClientBucket::from(ip("::ffff:1.2.3.4")),
            ClientBucket::V4([1, 2, 3, 4])
        );
    }
}
