//! Scale-out the standard way: full zone transfers (AXFR, RFC 5936) to allowed secondaries
//! and NOTIFY (RFC 1996) to them when a zone changes. IXFR requests get the full zone in AXFR
//! form, which RFC 1995 §4 allows.

use crate::dns::name::Name;
use crate::dns::wire::{CLASS_IN, Request, flag, opcode, rtype};
use crate::dns::writer::MessageWriter;
use crate::dns::zone::Zone;
use crate::dns::zonefile::compressible_names;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::UdpSocket;

/// Size of each transfer message (well under the 64 KiB TCP limit, like knotd's).
const MESSAGE_SIZE: usize = 16 * 1024;

/// The messages of a full transfer: SOA, every other record, SOA again.
pub fn transfer_messages(req: &Request, zone: &Zone) -> Vec<Vec<u8>> {
    let q = req.question.as_ref().expect("transfers carry a question");
    let flags = flag::QR | flag::AA | (req.flags & flag::RD);
    let soa = zone.apex().get(rtype::SOA).expect("zones have an SOA");
    let mut records: Vec<(&Name, u16, u32, &[u8])> =
        vec![(zone.origin(), rtype::SOA, soa.ttl, &soa.rdatas[0])];
    for (name, node) in zone.nodes() {
        for set in node.rrsets.iter().filter(|s| s.rtype != rtype::SOA) {
            records.extend(
                set.rdatas
                    .iter()
                    .map(|rd| (name, set.rtype, set.ttl, &rd[..])),
            );
        }
    }
    records.push((zone.origin(), rtype::SOA, soa.ttl, &soa.rdatas[0]));
    let new_message = |first: bool| {
        let mut w = MessageWriter::new(req.id, flags, MESSAGE_SIZE);
        if first {
            w.question(&q.name, q.qtype, q.qclass);
        }
        w.begin_section(1);
        w
    };
    let mut out = Vec::new();
    let mut w = new_message(true);
    for (owner, t, ttl, rdata) in records {
        let offsets = compressible_names(t, rdata);
        if w.record(owner, t, CLASS_IN, ttl, rdata, &offsets).is_err() {
            out.push(std::mem::replace(&mut w, new_message(false)).finish());
            // A single record always fits in an empty message of MESSAGE_SIZE bytes
            // unless its RDATA is huge; then use the TCP maximum for it.
            if w.record(owner, t, CLASS_IN, ttl, rdata, &offsets).is_err() {
                w.set_limit(65535);
                let _ = w.record(owner, t, CLASS_IN, ttl, rdata, &offsets);
            }
        }
    }
    out.push(w.finish());
    out
}

/// Sends NOTIFY for `origin` to every target, retrying unanswered ones (RFC 1996 §3.6).
pub async fn notify_all(origin: Name, serial: u32, targets: Vec<SocketAddr>) {
    for target in targets {
        let origin = origin.clone();
        tokio::spawn(async move {
            match notify_one(&origin, target).await {
                Ok(()) => tracing::info!(zone = %origin, serial, %target, "notify acknowledged"),
                Err(e) => tracing::warn!(zone = %origin, serial, %target, "notify failed: {e}"),
            }
        });
    }
}

async fn notify_one(origin: &Name, target: SocketAddr) -> std::io::Result<()> {
    let bind: SocketAddr = if target.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    }
    .parse()
    .expect("literal");
    let socket = UdpSocket::bind(bind).await?;
    socket.connect(target).await?;
    let id: u16 = rand_id();
    let mut w = MessageWriter::new(id, (u16::from(opcode::NOTIFY) << 11) | flag::AA, 512);
    w.question(origin, rtype::SOA, CLASS_IN);
    let msg = w.finish();
    let mut buf = [0u8; 512];
    for attempt in 0..5u32 {
        socket.send(&msg).await?;
        let wait = Duration::from_secs(1 << attempt.min(3));
        if let Ok(Ok(n)) = tokio::time::timeout(wait, socket.recv(&mut buf)).await
            && n >= 4
            && buf[..2] == id.to_be_bytes()
            && buf[2] & 0x80 != 0
        {
            return Ok(());
        }
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        "no reply after 5 attempts",
    ))
}

/// A message ID that is hard to guess without a random-number dependency.
fn rand_id() -> u16 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos(),
    );
    h.finish() as u16
}
