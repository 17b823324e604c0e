//! Steering: where a client is (EDNS Client Subnet or the resolver's address, a geo
//! database, configured networks) and the ranking of a pool's regions for it. The ranking
//! is a pure function ([`rank::rank`]); the failover walk in `pool::select` consumes it.

pub mod geo;
pub mod measured;
pub mod rank;

use crate::config::Network;
use std::net::IpAddr;

/// Longest prefix used for a decision (privacy guidance of RFC 7871 §11.1).
pub const MAX_V4_PREFIX: u8 = 24;
/// Longest IPv6 prefix used for a decision.
pub const MAX_V6_PREFIX: u8 = 56;

/// The client a query is answered for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Client {
    /// Network address (bits beyond `prefix` are zero).
    pub addr: IpAddr,
    /// Prefix length the decision may use.
    pub prefix: u8,
    /// The location came from an EDNS Client Subnet option (the reply then carries a scope).
    pub from_ecs: bool,
}

impl Client {
    /// From an ECS option (`source_prefix` as sent), truncated to /24 or /56.
    pub fn from_subnet(addr: IpAddr, source_prefix: u8) -> Client {
        let max = if addr.is_ipv4() {
            MAX_V4_PREFIX
        } else {
            MAX_V6_PREFIX
        };
        let prefix = source_prefix.min(max);
        Client {
            addr: mask(addr, prefix),
            prefix,
            from_ecs: true,
        }
    }

    /// From the address a query came from, truncated the same way.
    pub fn from_source(addr: IpAddr) -> Client {
        let addr = match addr {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(addr),
            v4 => v4,
        };
        let max = if addr.is_ipv4() {
            MAX_V4_PREFIX
        } else {
            MAX_V6_PREFIX
        };
        Client {
            addr: mask(addr, max),
            prefix: max,
            from_ecs: false,
        }
    }

    /// A stable number for this client network (for affinity).
    pub fn hash(&self) -> u64 {
        let bits = match self.addr {
            IpAddr::V4(v4) => u128::from(u32::from(v4)),
            IpAddr::V6(v6) => u128::from(v6),
        };
        crate::pool::select::mix((bits as u64) ^ ((bits >> 64) as u64) ^ u64::from(self.prefix))
    }
}

/// `addr` with every bit beyond `prefix` cleared.
pub fn mask(addr: IpAddr, prefix: u8) -> IpAddr {
    match addr {
        IpAddr::V4(v4) => {
            let m = if prefix == 0 {
                0
            } else {
                u32::MAX << (32 - u32::from(prefix.min(32)))
            };
            IpAddr::from((u32::from(v4) & m).to_be_bytes())
        }
        IpAddr::V6(v6) => {
            let m = if prefix == 0 {
                0
            } else {
                u128::MAX << (128 - u32::from(prefix.min(128)))
            };
            IpAddr::from((u128::from(v6) & m).to_be_bytes())
        }
    }
}

/// True when the client's network address lies in `net` (so `net` decides for it; the
/// reply's scope is then `net`'s prefix, which RFC 7871 allows to exceed the source prefix).
pub fn covers(net: &Network, client: &Client) -> bool {
    net.contains(client.addr)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnets_are_truncated_for_privacy() {
        let c = Client::from_subnet("198.51.100.77".parse().unwrap(), 32);
        assert_eq!((c.addr, c.prefix), ("198.51.100.0".parse().unwrap(), 24));
        let c = Client::from_subnet("2001:db8:1:2:3::1".parse().unwrap(), 128);
        assert_eq!((c.addr, c.prefix), ("2001:db8:1::".parse().unwrap(), 56));
        let c = Client::from_source("::ffff:192.0.2.9".parse().unwrap());
        assert_eq!(
            (c.addr, c.prefix, c.from_ecs),
            ("192.0.2.0".parse().unwrap(), 24, false)
        );
    }

    #[test]
    fn same_network_same_hash() {
        let a = Client::from_subnet("198.51.100.1".parse().unwrap(), 24);
        let b = Client::from_subnet("198.51.100.200".parse().unwrap(), 24);
        let c = Client::from_subnet("198.51.101.1".parse().unwrap(), 24);
        assert_eq!(a.hash(), b.hash());
        assert_ne!(a.hash(), c.hash());
    }
}
