//! Who the client is, network-wise: its address, as the TCP peer or, behind
//! reverse proxies this deployment trusts (`http.trusted_proxies`), as the
//! `X-Forwarded-For` hop just before them. Rate limits per client and the
//! addresses on audit rows both use it.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use serde::Deserialize;

/// An IP network: an address and a prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

/// The error for a string that is not an address or `address/prefix`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CidrError(String);

impl fmt::Display for CidrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid network {:?}: expected an IP address or ADDRESS/PREFIX with PREFIX at most 32 \
             for IPv4 and 128 for IPv6 (e.g. \"10.0.0.0/8\", \"fd00::/8\")",
            self.0
        )
    }
}

impl std::error::Error for CidrError {}

impl FromStr for Cidr {
    type Err = CidrError;

    /// Parses `"addr"` or `"addr/prefix"`; host bits past the prefix are ignored, and an
    /// IPv4-mapped IPv6 network of prefix 96 or more becomes the IPv4 network.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let error = || CidrError(text.to_owned());
        let text = text.trim();
        let (addr, prefix) = text.split_once('/').map_or((text, None), |(a, p)| (a, Some(p)));
        let mut addr: IpAddr = addr.parse().map_err(|_| error())?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let mut prefix = match prefix {
            None => max,
            Some(p) if p.bytes().all(|b| b.is_ascii_digit()) => p.parse::<u8>().map_err(|_| error())?,
            Some(_) => return Err(error()),
        };
        if prefix > max {
            return Err(error());
        }
        if let (IpAddr::V6(v6), true) = (addr, prefix >= 96)
            && let Some(v4) = v6.to_ipv4_mapped()
        {
            addr = IpAddr::V4(v4);
            prefix -= 96;
        }
        let addr = match addr {
            IpAddr::V4(a) => IpAddr::V4((u32::from(a) & mask32(prefix)).into()),
            IpAddr::V6(a) => IpAddr::V6((u128::from(a) & mask128(prefix)).into()),
        };
        Ok(Self { addr, prefix })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

fn mask32(prefix: u8) -> u32 {
    u32::MAX.checked_shl(32_u32.saturating_sub(prefix.into())).unwrap_or(0)
}

fn mask128(prefix: u8) -> u128 {
    u128::MAX.checked_shl(128_u32.saturating_sub(prefix.into())).unwrap_or(0)
}

impl Cidr {
    /// Whether `ip` is in this network; an IPv4-mapped IPv6 address counts as its IPv4 address.
    #[must_use]
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => u32::from(ip) & mask32(self.prefix) == u32::from(net),
            (IpAddr::V6(net), IpAddr::V6(ip)) => u128::from(ip) & mask128(self.prefix) == u128::from(net),
            _ => false,
        }
    }
}

/// The networks of the reverse proxies whose `X-Forwarded-For` headers are believed.
///
/// Deserializes from a list of strings such as `["10.0.0.0/8", "::1"]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(try_from = "Vec<String>")]
pub struct TrustedProxies(Vec<Cidr>);

impl TryFrom<Vec<String>> for TrustedProxies {
    type Error = CidrError;

    fn try_from(entries: Vec<String>) -> Result<Self, Self::Error> {
        entries.iter().map(|e| e.parse()).collect::<Result<_, _>>().map(Self)
    }
}

impl TrustedProxies {
    /// Whether `ip` lies in one of the trusted networks.
    #[must_use]
    pub fn is_trusted(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|net| net.contains(ip))
    }

    /// Whether no proxy is trusted (forwarding headers are then always ignored).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Parses one `X-Forwarded-For` hop: an address, `[v6]`, or either with a port.
fn parse_hop(entry: &str) -> Option<IpAddr> {
    let bare = entry.strip_prefix('[').and_then(|e| e.strip_suffix(']')).unwrap_or(entry);
    bare.parse().ok().or_else(|| entry.parse::<SocketAddr>().ok().map(|s| s.ip())).map(|ip| ip.to_canonical())
}

/// The address of the client, given the TCP peer and the raw `X-Forwarded-For` header values in order.
///
/// The headers are read only if the peer is trusted: hops are walked from the right, skipping
/// trusted ones, and the first untrusted hop is the client. An unparsable hop stops the walk at
/// the last trusted hop; if all hops are trusted the leftmost is returned. IPv4-mapped IPv6
/// addresses are returned as IPv4.
#[must_use]
pub fn client_ip(peer: Option<IpAddr>, forwarded_for: &[&str], trusted: &TrustedProxies) -> Option<IpAddr> {
    let peer = peer?.to_canonical();
    if !trusted.is_trusted(peer) {
        return Some(peer);
    }
    let hops = forwarded_for.iter().rev().flat_map(|value| value.rsplit(',')).map(str::trim);
    let mut last_trusted = peer;
    for hop in hops.filter(|hop| !hop.is_empty()) {
        match parse_hop(hop) {
            None => break,
            Some(ip) if trusted.is_trusted(ip) => last_trusted = ip,
            Some(ip) => return Some(ip),
        }
    }
    Some(last_trusted)
}

/// The client's address: the peer, or behind trusted proxies the forwarded one.
#[must_use]
pub fn client_address(req: &actix_web::HttpRequest) -> Option<IpAddr> {
    let peer = req.peer_addr().map(|addr| addr.ip());
    let Some(trusted) = req.app_data::<actix_web::web::Data<TrustedProxies>>() else { return peer };
    if trusted.is_empty() {
        return peer;
    }
    let forwarded: Vec<&str> =
        req.headers().get_all("x-forwarded-for").filter_map(|value| value.to_str().ok()).collect();
    client_ip(peer, &forwarded, trusted)
}

/// Where a request came from, for the audit trail: its client's address and user agent.
#[must_use]
pub fn origin(req: &actix_web::HttpRequest) -> portico_kernel::Origin {
    portico_kernel::Origin::new(
        client_address(req),
        req.headers().get(actix_web::http::header::USER_AGENT).and_then(|value| value.to_str().ok()),
    )
}

/// Whose bucket a client address draws from: an IPv4 address, or an IPv6
/// address's /64 (one subscriber's network: a client holding a /64 could
/// otherwise take a fresh bucket per request).
#[must_use]
pub fn client_key(ip: Option<IpAddr>) -> String {
    match ip {
        Some(IpAddr::V4(v4)) => v4.to_string(),
        Some(IpAddr::V6(v6)) => {
            let network = u128::from(v6) & !((1u128 << 64) - 1);
            format!("{}/64", std::net::Ipv6Addr::from(network))
        }
        None => "unknown".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_clients_share_a_bucket_per_64() {
        let key = |text: &str| client_key(Some(text.parse().unwrap()));
        assert_eq!(key("2001:db8:1:2:aaaa::1"), "2001:db8:1:2::/64");
        assert_eq!(key("2001:db8:1:2:ffff:ffff:ffff:ffff"), key("2001:db8:1:2::9"));
        assert_ne!(key("2001:db8:1:3::1"), key("2001:db8:1:2::1"));
        assert_eq!(key("203.0.113.7"), "203.0.113.7");
        assert_eq!(client_key(None), "unknown");
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn cidr_parsing() {
        for (text, canonical) in [
            ("10.1.2.3/8", "10.0.0.0/8"),
            ("192.168.1.7", "192.168.1.7/32"),
            ("::1", "::1/128"),
            ("fd00::/8", "fd00::/8"),
            ("::ffff:10.0.0.0/104", "10.0.0.0/8"),
            ("0.0.0.0/0", "0.0.0.0/0"),
        ] {
            assert_eq!(text.parse::<Cidr>().unwrap().to_string(), canonical);
        }
        for bad in ["10.0.0.0/33", "fd00::/129", "10.0.0.0/", "10.0.0.0/+8", "10.0.0/8", "garbage", ""] {
            assert_eq!(bad.parse::<Cidr>(), Err(CidrError(bad.to_owned())), "{bad}");
        }
        let message = CidrError("x".into()).to_string();
        assert!(message.starts_with("invalid network \"x\": expected an IP address"), "{message}");
    }

    #[test]
    fn cidr_contains() {
        let (v4, v6): (Cidr, Cidr) = ("10.0.0.0/8".parse().unwrap(), "fd00::/8".parse().unwrap());
        assert!(v4.contains(ip("10.255.0.1")) && v4.contains(ip("::ffff:10.1.2.3")));
        assert!(!v4.contains(ip("11.0.0.1")) && !v4.contains(ip("::a00:1")));
        assert!(v6.contains(ip("fd12::1")) && !v6.contains(ip("fe80::1")) && !v6.contains(ip("10.0.0.1")));
        assert!("0.0.0.0/0".parse::<Cidr>().unwrap().contains(ip("8.8.8.8")));
        assert!("::/0".parse::<Cidr>().unwrap().contains(ip("2001:db8::1")));
    }

    #[test]
    fn trusted_proxies_serde() {
        let t: TrustedProxies = serde_json::from_str(r#"["10.0.0.0/8", "::1"]"#).unwrap();
        assert!(t.is_trusted(ip("10.9.9.9")) && t.is_trusted(ip("::1")) && !t.is_trusted(ip("8.8.8.8")));
        assert!(!t.is_empty() && TrustedProxies::default().is_empty());
        let error = serde_json::from_str::<TrustedProxies>(r#"["10.0.0.0/8", "nope/3"]"#).unwrap_err();
        assert!(error.to_string().starts_with("invalid network \"nope/3\""), "{error}");
    }

    #[test]
    fn client_ip_behind_proxies() {
        let trusted: TrustedProxies = serde_json::from_str(r#"["10.0.0.0/8", "fd00::/8"]"#).unwrap();
        let client = |peer: &str, headers: &[&str]| client_ip(Some(ip(peer)), headers, &trusted);
        let some = |text: &str| Some(ip(text));
        assert_eq!(client_ip(None, &["1.2.3.4"], &trusted), None);
        // Untrusted peer, or no trusted proxies: a forged header is ignored.
        assert_eq!(client("203.0.113.9", &["1.2.3.4"]), some("203.0.113.9"));
        assert_eq!(
            client_ip(Some(ip("10.0.0.1")), &["1.2.3.4"], &TrustedProxies::default()),
            some("10.0.0.1")
        );
        // Trusted chain: the rightmost untrusted hop, not the forgeable leftmost one.
        assert_eq!(client("10.0.0.1", &["6.6.6.6, 198.51.100.7, 10.0.0.2, fd00::3"]), some("198.51.100.7"));
        assert_eq!(client("::ffff:10.0.0.1", &["198.51.100.7"]), some("198.51.100.7"));
        assert_eq!(client("10.0.0.1", &[]), some("10.0.0.1"));
        // All trusted: the leftmost.
        assert_eq!(client("10.0.0.1", &["10.0.0.5, 10.0.0.4"]), some("10.0.0.5"));
        // Unparsable: the last trusted hop seen.
        assert_eq!(client("10.0.0.1", &["1.2.3.4, unknown, 10.0.0.2"]), some("10.0.0.2"));
        assert_eq!(client("10.0.0.1", &["1.2.3.4, unknown"]), some("10.0.0.1"));
        // Ports and brackets.
        assert_eq!(client("10.0.0.1", &["1.2.3.4:5678, 10.0.0.2:80"]), some("1.2.3.4"));
        assert_eq!(client("10.0.0.1", &["[2001:db8::1]:443"]), some("2001:db8::1"));
        assert_eq!(client("10.0.0.1", &["[2001:db8::2], [fd00::1]:80"]), some("2001:db8::2"));
        // Several header values, in order, with empty entries.
        assert_eq!(client("10.0.0.1", &["1.1.1.1, 2.2.2.2", "10.0.0.3,, ", ""]), some("2.2.2.2"));
        assert_eq!(client("10.0.0.1", &["1.1.1.1", "10.0.0.3, 10.0.0.2"]), some("1.1.1.1"));
    }
}
