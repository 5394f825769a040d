//! IPv4 addresses and networks, parsed the way `lib/topology.nix` parses them.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

/// Parses a dotted-quad IPv4 address: four decimal octets 0–255 without leading zeros.
///
/// This is stricter than some C parsers on purpose (`010` would be octal to them) and
/// matches `std`'s parser and the Nix side exactly.
pub fn parse_ipv4(text: &str) -> Option<Ipv4Addr> {
    let octets: Vec<&str> = text.split('.').collect();
    if octets.len() != 4 {
        return None;
    }
    let mut bytes = [0u8; 4];
    for (slot, octet) in bytes.iter_mut().zip(&octets) {
        let well_formed = !octet.is_empty()
            && octet.len() <= 3
            && octet.bytes().all(|b| b.is_ascii_digit())
            && !(octet.len() > 1 && octet.starts_with('0'));
        if !well_formed {
            return None;
        }
        *slot = octet.parse().ok()?;
    }
    Some(Ipv4Addr::from(bytes))
}

/// An IPv4 network in CIDR notation, such as `10.42.0.0/24`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ipv4Net {
    address: Ipv4Addr,
    prefix: u8,
}

/// Why a string is not a usable CIDR.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CidrError {
    /// Not `<address>/<0..32>` at all.
    Malformed,
    /// Well formed, but bits beyond the prefix are set; carries the canonical network.
    HostBitsSet(Ipv4Net),
}

impl Ipv4Net {
    /// Parses `a.b.c.d/n` and insists that no host bits are set.
    pub fn parse_strict(text: &str) -> Result<Ipv4Net, CidrError> {
        let net = Ipv4Net::parse_lenient(text).ok_or(CidrError::Malformed)?;
        let canonical = net.network();
        if canonical != net {
            return Err(CidrError::HostBitsSet(canonical));
        }
        Ok(net)
    }

    /// Parses `a.b.c.d/n`, keeping host bits as written.
    pub fn parse_lenient(text: &str) -> Option<Ipv4Net> {
        let (address, prefix) = text.split_once('/')?;
        let address = parse_ipv4(address)?;
        let prefix_ok = !prefix.is_empty()
            && prefix.len() <= 2
            && prefix.bytes().all(|b| b.is_ascii_digit())
            && !(prefix.len() > 1 && prefix.starts_with('0'));
        if !prefix_ok {
            return None;
        }
        let prefix: u8 = prefix.parse().ok()?;
        (prefix <= 32).then_some(Ipv4Net { address, prefix })
    }

    /// A single address as a /32 network.
    pub fn host(address: Ipv4Addr) -> Ipv4Net {
        Ipv4Net {
            address,
            prefix: 32,
        }
    }

    pub fn address(&self) -> Ipv4Addr {
        self.address
    }

    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    fn mask(&self) -> u32 {
        match self.prefix {
            0 => 0,
            p => u32::MAX << (32 - u32::from(p)),
        }
    }

    /// The same network with host bits cleared.
    pub fn network(&self) -> Ipv4Net {
        Ipv4Net {
            address: Ipv4Addr::from(u32::from(self.address) & self.mask()),
            prefix: self.prefix,
        }
    }

    pub fn contains(&self, address: Ipv4Addr) -> bool {
        u32::from(address) & self.mask() == u32::from(self.address) & self.mask()
    }
}

impl fmt::Display for Ipv4Net {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.address, self.prefix)
    }
}

impl FromStr for Ipv4Net {
    type Err = CidrError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ipv4Net::parse_strict(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_follow_the_strict_dotted_quad_form() {
        assert_eq!(parse_ipv4("10.42.0.1"), Some(Ipv4Addr::new(10, 42, 0, 1)));
        for bad in [
            "10.42.0.300",
            "10.42.0.011",
            "10.42.0",
            "10.42.0.1.2",
            "",
            "a.b.c.d",
            "10.42.0.-1",
            "1 .2.3.4",
        ] {
            assert_eq!(parse_ipv4(bad), None, "{bad}");
        }
    }

    #[test]
    fn cidrs_reject_host_bits_and_bad_prefixes() {
        let net = Ipv4Net::parse_strict("10.42.0.64/28").unwrap();
        assert!(net.contains(Ipv4Addr::new(10, 42, 0, 79)));
        assert!(!net.contains(Ipv4Addr::new(10, 42, 0, 80)));
        assert_eq!(
            Ipv4Net::parse_strict("10.42.0.65/28"),
            Err(CidrError::HostBitsSet(net))
        );
        for bad in ["10.42.0.0/33", "10.42.0.0", "10.42.0.0/", "10.42.0.0/08"] {
            assert_eq!(
                Ipv4Net::parse_strict(bad),
                Err(CidrError::Malformed),
                "{bad}"
            );
        }
        let any = Ipv4Net::parse_strict("0.0.0.0/0").unwrap();
        assert!(any.contains(Ipv4Addr::new(203, 0, 113, 9)));
    }
}
