//! IPv4 address or CIDR ranges, as register codes' IpAddressRange takes them.

use std::net::{IpAddr, Ipv4Addr};

/// Parses `a.b.c.d` or `a.b.c.d/n` into (network, prefix length).
pub fn parse(range: &str) -> Option<(Ipv4Addr, u8)> {
    let (addr, bits) = match range.split_once('/') {
        Some((a, b)) => (a, b.parse::<u8>().ok().filter(|b| *b <= 32)?),
        None => (range, 32),
    };
    Some((addr.parse().ok()?, bits))
}

/// True when `ip` lies within `range`; an empty range admits everyone.
pub fn contains(range: &str, ip: IpAddr) -> bool {
    if range.trim().is_empty() {
        return true;
    }
    let Some((net, bits)) = parse(range.trim()) else {
        return false;
    };
    let ip = match ip {
        IpAddr::V4(v4) => v4,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4,
            None => return false,
        },
    };
    let mask = if bits == 0 {
        0
    } else {
        u32::MAX << (32 - bits)
    };
    (u32::from(net) & mask) == (u32::from(ip) & mask)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(contains("", ip("10.1.2.3")));
        assert!(contains("127.0.0.0/8", ip("127.0.0.1")));
        assert!(contains("127.0.0.1", ip("127.0.0.1")));
        assert!(!contains("192.168.0.0/16", ip("127.0.0.1")));
        assert!(contains("0.0.0.0/0", ip("8.8.8.8")));
        assert!(contains("127.0.0.0/8", ip("::ffff:127.0.0.1")));
        assert!(!contains("bogus", ip("127.0.0.1")));
        assert!(parse("1.2.3.4/33").is_none());
    }
}
