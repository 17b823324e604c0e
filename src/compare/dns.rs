//! Asking the authoritative server for A records over UDP, as a recursive resolver would.

use crate::dns::name::Name;
use crate::dns::wire::read_name;
use crate::dns::writer::MessageWriter;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;
use tokio::net::UdpSocket;

/// An answer: the addresses in the server's order and the TTL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// A records, in order.
    pub addrs: Vec<Ipv4Addr>,
    /// Smallest TTL of the A records (0 when there are none).
    pub ttl: Duration,
}

/// Queries `server` for `name` A; `None` on timeout or a malformed reply.
pub async fn query_a(server: SocketAddr, name: &str, id: u16) -> Option<Answer> {
    query_a_from(None, server, name, id).await
}

/// Queries `server` for `name` A from address `local` (`None`: the kernel's choice).
pub async fn query_a_from(
    local: Option<IpAddr>,
    server: SocketAddr,
    name: &str,
    id: u16,
) -> Option<Answer> {
    let qname = Name::parse(name, Some(&Name::root())).ok()?;
    let mut w = MessageWriter::new(id, 0x0100, 512);
    w.question(&qname, 1, 1);
    let msg = w.finish();
    let any = match server {
        SocketAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        SocketAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    };
    let sock = UdpSocket::bind(SocketAddr::new(local.unwrap_or(any), 0))
        .await
        .ok()?;
    sock.send_to(&msg, server).await.ok()?;
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(1), sock.recv(&mut buf))
        .await
        .ok()?
        .ok()?;
    parse(&buf[..n], id)
}

fn u16_at(m: &[u8], p: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*m.get(p)?, *m.get(p + 1)?]))
}

/// The A records of a reply with the given ID.
pub fn parse(m: &[u8], id: u16) -> Option<Answer> {
    if u16_at(m, 0)? != id {
        return None;
    }
    let (qd, an) = (u16_at(m, 4)?, u16_at(m, 6)?);
    let mut pos = 12;
    for _ in 0..qd {
        pos = read_name(m, pos)?.1 + 4;
    }
    let mut addrs = Vec::new();
    let mut ttl = u32::MAX;
    for _ in 0..an {
        pos = read_name(m, pos)?.1;
        let rtype = u16_at(m, pos)?;
        let t = u32::from(u16_at(m, pos + 4)?) << 16 | u32::from(u16_at(m, pos + 6)?);
        let len = usize::from(u16_at(m, pos + 8)?);
        let data = m.get(pos + 10..pos + 10 + len)?;
        if rtype == 1 && len == 4 {
            addrs.push(Ipv4Addr::new(data[0], data[1], data[2], data[3]));
            ttl = ttl.min(t);
        }
        pos += 10 + len;
    }
    let ttl = if addrs.is_empty() { 0 } else { ttl };
    Some(Answer {
        addrs,
        ttl: Duration::from_secs(u64::from(ttl)),
    })
}
