//! Where a webhook may be delivered (server-side request forgery guard).
//!
//! Anyone allowed to start a run may name a webhook URL, and the server
//! POSTs to it from inside the operator's network. So a destination must be
//! a public unicast address: loopback, private, link-local, CGNAT, multicast,
//! unspecified, reserved and cloud-metadata addresses are refused — also
//! when written as IPv4-mapped, IPv4-compatible, NAT64 or 6to4 IPv6 — unless
//! an administrator allows a range (`drover server --webhook-allow
//! CIDR,...`). The check runs on every address a host name resolves to, and
//! the connection then goes to that checked address, never to a second
//! resolution (DNS rebinding cannot slip in between).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

/// One CIDR range of either family.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Cidr {
    net: IpAddr,
    bits: u8,
}

impl Cidr {
    fn parse(s: &str) -> Option<Cidr> {
        let (addr, bits) = match s.split_once('/') {
            Some((a, b)) => (a, Some(b.parse::<u8>().ok()?)),
            None => (s, None),
        };
        let net: IpAddr = addr.trim().parse().ok()?;
        let max = if net.is_ipv4() { 32 } else { 128 };
        let bits = bits.unwrap_or(max);
        (bits <= max).then_some(Cidr { net, bits })
    }

    fn contains(&self, ip: IpAddr) -> bool {
        match (self.net, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                prefix_eq(u32::from(n) as u128, u32::from(a) as u128, 32, self.bits)
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                prefix_eq(u128::from(n), u128::from(a), 128, self.bits)
            }
            _ => false,
        }
    }
}

fn prefix_eq(a: u128, b: u128, width: u8, bits: u8) -> bool {
    if bits == 0 {
        return true;
    }
    let shift = u32::from(width - bits);
    (a >> shift) == (b >> shift)
}

/// The ranges an administrator allowed in spite of the rules. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Destinations {
    allow: Arc<Vec<Cidr>>,
}

impl std::str::FromStr for Destinations {
    type Err = String;

    /// `CIDR,CIDR,...` (an address alone is a /32 or /128).
    fn from_str(s: &str) -> Result<Self, String> {
        let mut allow = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            allow.push(Cidr::parse(part).ok_or_else(|| format!("{part:?} is not a CIDR range"))?);
        }
        Ok(Destinations {
            allow: Arc::new(allow),
        })
    }
}

impl Destinations {
    /// Whether the server may connect to `ip`.
    pub fn permits(&self, ip: IpAddr) -> bool {
        let canon = canonical(ip);
        if self
            .allow
            .iter()
            .any(|c| c.contains(ip) || c.contains(canon))
        {
            return true;
        }
        !forbidden(canon)
    }

    /// Resolves `host` and returns its addresses, or `None` when it has no
    /// address or any of them is not permitted (a name that also points
    /// inside is refused as a whole).
    pub async fn resolve(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, Refusal> {
        let addrs: Vec<SocketAddr> = match host.parse::<IpAddr>() {
            Ok(ip) => vec![SocketAddr::new(ip, port)],
            Err(_) => tokio::net::lookup_host((host, port))
                .await
                .map_err(|_| Refusal::Unresolved)?
                .collect(),
        };
        if addrs.is_empty() {
            return Err(Refusal::Unresolved);
        }
        if addrs.iter().any(|a| !self.permits(a.ip())) {
            return Err(Refusal::Forbidden);
        }
        Ok(addrs)
    }

    /// The request-time check of a URL's host: a literal address that will
    /// never be permitted is refused at once. Names can only be judged when
    /// they are resolved, at delivery.
    pub fn literal_permitted(&self, host: &str) -> bool {
        match host.parse::<IpAddr>() {
            Ok(ip) => self.permits(ip),
            Err(_) => true,
        }
    }
}

/// Why no connection was attempted.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Refusal {
    Unresolved,
    Forbidden,
}

/// The IPv4 address an IPv6 address embeds (mapped, compatible, NAT64,
/// 6to4), so each rule is written once, for IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    let IpAddr::V6(v6) = ip else {
        return ip;
    };
    if let Some(v4) = v6.to_ipv4_mapped() {
        return IpAddr::V4(v4);
    }
    let s = v6.segments();
    let tail = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    // ::a.b.c.d (IPv4-compatible; not :: and ::1 themselves).
    if s[..6] == [0; 6] && u32::from(tail) > 1 {
        return IpAddr::V4(tail);
    }
    // 64:ff9b::/96 (NAT64 well-known prefix).
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return IpAddr::V4(tail);
    }
    // 2002:AABB:CCDD::/48 (6to4).
    if s[0] == 0x2002 {
        return IpAddr::V4(Ipv4Addr::new(
            (s[1] >> 8) as u8,
            s[1] as u8,
            (s[2] >> 8) as u8,
            s[2] as u8,
        ));
    }
    ip
}

/// Non-public destinations, refused unless allowed.
const V4_DENY: &[(Ipv4Addr, u8)] = &[
    (Ipv4Addr::new(0, 0, 0, 0), 8),       // "this network", unspecified
    (Ipv4Addr::new(10, 0, 0, 0), 8),      // private
    (Ipv4Addr::new(100, 64, 0, 0), 10),   // CGNAT
    (Ipv4Addr::new(127, 0, 0, 0), 8),     // loopback
    (Ipv4Addr::new(169, 254, 0, 0), 16),  // link-local, cloud metadata
    (Ipv4Addr::new(172, 16, 0, 0), 12),   // private
    (Ipv4Addr::new(192, 0, 0, 0), 24),    // IETF protocol assignments
    (Ipv4Addr::new(192, 0, 2, 0), 24),    // documentation
    (Ipv4Addr::new(192, 88, 99, 0), 24),  // 6to4 relay anycast
    (Ipv4Addr::new(192, 168, 0, 0), 16),  // private
    (Ipv4Addr::new(198, 18, 0, 0), 15),   // benchmarking
    (Ipv4Addr::new(198, 51, 100, 0), 24), // documentation
    (Ipv4Addr::new(203, 0, 113, 0), 24),  // documentation
    (Ipv4Addr::new(224, 0, 0, 0), 4),     // multicast
    (Ipv4Addr::new(240, 0, 0, 0), 4),     // reserved, broadcast
];

const V6_DENY: &[(Ipv6Addr, u8)] = &[
    (Ipv6Addr::UNSPECIFIED, 128),
    (Ipv6Addr::LOCALHOST, 128),
    (Ipv6Addr::new(0x100, 0, 0, 0, 0, 0, 0, 0), 64), // discard
    (Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0), 32), // documentation
    (Ipv6Addr::new(0xfc00, 0, 0, 0, 0, 0, 0, 0), 7), // unique local (fd00:ec2::254)
    (Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0), 10), // link-local
    (Ipv6Addr::new(0xfec0, 0, 0, 0, 0, 0, 0, 0), 10), // site-local (deprecated)
    (Ipv6Addr::new(0xff00, 0, 0, 0, 0, 0, 0, 0), 8), // multicast
];

fn forbidden(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => V4_DENY.iter().any(|(n, b)| {
            Cidr {
                net: IpAddr::V4(*n),
                bits: *b,
            }
            .contains(IpAddr::V4(a))
        }),
        IpAddr::V6(a) => V6_DENY.iter().any(|(n, b)| {
            Cidr {
                net: IpAddr::V6(*n),
                bits: *b,
            }
            .contains(IpAddr::V6(a))
        }),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn refuses_every_non_public_form() {
        let d = Destinations::default();
        for bad in [
            "127.0.0.1",
            "127.1.2.3",
            "0.0.0.0",
            "10.0.0.1",
            "172.16.5.4",
            "192.168.1.1",
            "100.64.0.1",
            "169.254.169.254",
            "224.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "fe80::1",
            "fd00:ec2::254",
            "fc00::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::ffff:10.0.0.1",
            "::ffff:0.0.0.0",
            "::127.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "2002:7f00:1::",
        ] {
            assert!(!d.permits(ip(bad)), "{bad} must be refused");
            assert!(!d.literal_permitted(bad), "{bad} must be refused");
        }
        for good in [
            "8.8.8.8",
            "1.1.1.1",
            "2606:4700:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            assert!(d.permits(ip(good)), "{good} must be allowed");
        }
        assert!(d.literal_permitted("hooks.example.com"));
    }

    #[test]
    fn an_allow_list_opens_exactly_its_ranges() {
        let d: Destinations = "127.0.0.1/32, 10.1.0.0/16,fd00::/8".parse().unwrap();
        assert!(d.permits(ip("127.0.0.1")));
        assert!(d.permits(ip("::ffff:127.0.0.1")));
        assert!(!d.permits(ip("127.0.0.2")));
        assert!(d.permits(ip("10.1.200.3")));
        assert!(!d.permits(ip("10.2.0.1")));
        assert!(d.permits(ip("fd00:ec2::254")));
        assert!(!d.permits(ip("169.254.169.254")));
        assert!("10.0.0.0/33".parse::<Destinations>().is_err());
        assert!("nonsense".parse::<Destinations>().is_err());
        assert!("".parse::<Destinations>().unwrap().allow.is_empty());
    }

    #[tokio::test]
    async fn resolution_refuses_names_that_point_inside() {
        let d = Destinations::default();
        assert_eq!(
            d.resolve("localhost", 80).await.unwrap_err(),
            Refusal::Forbidden
        );
        assert_eq!(
            d.resolve("::ffff:127.0.0.1", 80).await.unwrap_err(),
            Refusal::Forbidden
        );
        let open: Destinations = "127.0.0.0/8,::1/128".parse().unwrap();
        let addrs = open.resolve("localhost", 80).await.unwrap();
        assert!(addrs.iter().all(|a| a.ip().is_loopback()));
    }
}
