//! From query bytes to response bytes: decoding, the checks every authoritative server
//! makes before looking anything up (opcode, class, EDNS version, TSIG), the answer, and
//! encoding with truncation for UDP.

use crate::dns::answer::{Answer, AnyPolicy, Rr, answer};
use crate::dns::catalog::Catalog;
use crate::dns::pool_reply::PoolQuery;
use crate::dns::wire::{
    CLASS_ANY, CLASS_IN, Decoded, Edns, MAX_UDP_PAYLOAD, Question, Request, decode, flag, opcode,
    rcode, rtype,
};
use crate::dns::writer::{Full, MessageWriter};
use crate::dns::zonefile::compressible_names;
use crate::pool::PoolView;
use crate::steering::Client;

/// Which transport a query came over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// UDP: responses are limited to the client's buffer size and truncated beyond it.
    Udp,
    /// TCP: up to 65535 bytes.
    Tcp,
}

/// Bytes an OPT record without options takes.
pub(crate) const OPT_SIZE: usize = 11;

/// What the server should do with one received message.
#[derive(Debug)]
pub enum Outcome {
    /// Send nothing.
    Drop,
    /// Send this response.
    Reply(Vec<u8>),
    /// A zone transfer request (AXFR/IXFR over TCP) for the caller to check and stream.
    Transfer(Request),
}

/// How a reply depends on its query, for keeping replies (see [`crate::dns::prepared`]).
#[derive(Debug)]
pub enum Shape {
    /// Only on the query's bytes and the snapshots: the same bytes get the same reply, ID
    /// aside.
    Fixed,
    /// A pool answers it (for the query name, or at the end of its CNAME chain): the reply
    /// is made per query from this.
    Pool(Box<PoolQuery>),
    /// On more than that, or there is no reply to keep (over TCP, a transfer, no reply).
    Varies,
}

/// Handles one query message from `peer`.
pub fn respond(
    catalog: &Catalog,
    pools: Option<PoolView<'_>>,
    msg: &[u8],
    transport: Transport,
    peer: Option<std::net::IpAddr>,
) -> Outcome {
    respond_shaped(catalog, pools, msg, transport, peer).0
}

/// [`respond`], and how the reply depends on the query.
pub fn respond_shaped(
    catalog: &Catalog,
    pools: Option<PoolView<'_>>,
    msg: &[u8],
    transport: Transport,
    peer: Option<std::net::IpAddr>,
) -> (Outcome, Shape) {
    let fixed = |outcome| (outcome, Shape::Fixed);
    let req = match decode(msg) {
        Decoded::Drop => return (Outcome::Drop, Shape::Varies),
        Decoded::FormErr {
            id,
            flags,
            question,
            edns,
        } => {
            let req = Request {
                id,
                opcode: op(flags),
                flags,
                question,
                edns,
                signed: false,
            };
            return fixed(Outcome::Reply(error(&req, rcode::FORMERR)));
        }
        Decoded::Request(req) => req,
    };
    if req.opcode != opcode::QUERY {
        // NOTIFY and UPDATE are for primaries we do not follow; the rest do not exist.
        let code = match req.opcode {
            opcode::NOTIFY | 5 => rcode::REFUSED,
            _ => rcode::NOTIMP,
        };
        return fixed(Outcome::Reply(error(&req, code)));
    }
    if req.signed {
        // We hold no TSIG keys, so no signature can verify (RFC 8945 §5.2: BADKEY/NOTAUTH).
        return fixed(Outcome::Reply(error(&req, rcode::NOTAUTH)));
    }
    let Some(q) = req.question.clone() else {
        return fixed(Outcome::Reply(error(&req, rcode::FORMERR)));
    };
    if let Some(e) = &req.edns
        && e.version > 0
    {
        return fixed(Outcome::Reply(error(&req, rcode::BADVERS)));
    }
    match q.qtype {
        rtype::AXFR | rtype::IXFR if transport == Transport::Tcp => {
            return (Outcome::Transfer(req), Shape::Varies);
        }
        rtype::AXFR | rtype::IXFR => return fixed(Outcome::Reply(error(&req, rcode::REFUSED))),
        rtype::OPT | rtype::TSIG | 249 | rtype::MAILA | rtype::MAILB => {
            return fixed(Outcome::Reply(error(&req, rcode::NOTIMP)));
        }
        _ => {}
    }
    if q.qclass != CLASS_IN && q.qclass != CLASS_ANY {
        return fixed(Outcome::Reply(error(&req, rcode::REFUSED)));
    }
    let Some(zone) = catalog.find(&q.name) else {
        return fixed(Outcome::Reply(error(&req, rcode::REFUSED)));
    };
    let any = match transport {
        Transport::Udp => AnyPolicy::Minimal,
        Transport::Tcp => AnyPolicy::Full,
    };
    // The client is the ECS subnet when the resolver sent one, else the resolver itself.
    let ecs = req.edns.as_ref().and_then(|e| e.client_subnet);
    let client = match ecs {
        Some(cs) => Some(Client::from_subnet(cs.addr, cs.source_prefix)),
        None => peer.map(Client::from_source),
    };
    let pools = pools.map(|v| PoolView { client, ..v });
    let ans = answer(zone, &q.name, q.qtype, any, pools);
    let reply = Outcome::Reply(encode(&req, &q, &ans, transport));
    let shape = if ans.from_pool.is_none() {
        Shape::Fixed
    } else if transport == Transport::Tcp {
        Shape::Varies
    } else {
        PoolQuery::new(req, q, zone.clone(), &ans)
            .map(|pq| Shape::Pool(Box::new(pq)))
            .unwrap_or(Shape::Varies)
    };
    (reply, shape)
}

fn op(flags: u16) -> u8 {
    ((flags >> 11) & 0xF) as u8
}

/// Response flags: QR, the query's opcode, RD and CD copied, and the RCODE's low bits.
pub(crate) fn response_flags(req: &Request, code: u16) -> u16 {
    flag::QR | (req.flags & (0x7800 | flag::RD | flag::CD)) | (code & 0xF)
}

/// The UDP size limit for this request: 512 without EDNS, else the client's size capped
/// at our own maximum (and never below 512).
pub fn udp_limit(edns: Option<&Edns>) -> usize {
    match edns {
        None => 512,
        Some(e) => usize::from(e.udp_size.clamp(512, MAX_UDP_PAYLOAD)),
    }
}

/// A response carrying only the question (when readable), the RCODE and an OPT if the
/// query had one.
pub fn error(req: &Request, code: u16) -> Vec<u8> {
    let mut w = MessageWriter::new(req.id, response_flags(req, code), 65535);
    if let Some(q) = &req.question {
        w.question(&q.name, q.qtype, q.qclass);
    }
    if req.edns.is_some() {
        w.opt(MAX_UDP_PAYLOAD, (code >> 4) as u8, &[]);
    }
    w.finish()
}

/// Encodes an answer. Over UDP, when the answer or authority section does not fit, the
/// response is the question with TC set; additional records that do not fit are left out.
pub fn encode(req: &Request, q: &Question, ans: &Answer<'_>, transport: Transport) -> Vec<u8> {
    let limit = match transport {
        Transport::Udp => udp_limit(req.edns.as_ref()),
        Transport::Tcp => 65535,
    };
    let ecs_size = |e: &Edns| {
        e.client_subnet
            .map(|cs| 8 + usize::from(cs.source_prefix).div_ceil(8))
            .unwrap_or(0)
    };
    let reserve = req
        .edns
        .as_ref()
        .map(|e| OPT_SIZE + ecs_size(e))
        .unwrap_or(0);
    let mut flags = response_flags(req, ans.rcode);
    if ans.authoritative {
        flags |= flag::AA;
    }
    let mut w = MessageWriter::new(req.id, flags, limit - reserve);
    w.question(&q.name, q.qtype, q.qclass);
    let fits = write_section(&mut w, 1, &ans.answer)
        .and_then(|()| write_section(&mut w, 2, &ans.authority));
    if fits.is_err() {
        let mut t = MessageWriter::new(req.id, flags | flag::TC, limit);
        t.question(&q.name, q.qtype, q.qclass);
        w = t;
    } else {
        write_additional(&mut w, &ans.additional);
    }
    if let Some(edns) = &req.edns {
        w.set_limit(limit);
        let options = edns
            .client_subnet
            .map(|cs| ecs_option(&cs, ans.scope))
            .unwrap_or_default();
        w.opt(MAX_UDP_PAYLOAD, (ans.rcode >> 4) as u8, &options);
    }
    w.finish()
}

/// Additional records go in whole per owner name (all addresses of a target, or none) until
/// one does not fit; nothing is truncated for them (as knotd does).
fn write_additional(w: &mut MessageWriter, rrs: &[Rr<'_>]) {
    w.begin_section(3);
    for group in rrs.chunk_by(|a, b| a.owner == b.owner) {
        let cp = w.checkpoint();
        if write_records(w, group).is_err() {
            w.rollback(cp);
            return;
        }
    }
}

/// The ECS option of a response (RFC 7871 §7.2.1): family, source prefix and address as the
/// query sent them, and the scope prefix length that decided the answer.
pub(crate) fn ecs_option(cs: &crate::dns::wire::ClientSubnet, scope: u8) -> Vec<u8> {
    let (family, bytes): (u16, Vec<u8>) = match cs.addr {
        std::net::IpAddr::V4(v4) => (1, v4.octets().to_vec()),
        std::net::IpAddr::V6(v6) => (2, v6.octets().to_vec()),
    };
    let n = usize::from(cs.source_prefix).div_ceil(8);
    let mut o = Vec::with_capacity(8 + n);
    o.extend_from_slice(&8u16.to_be_bytes());
    o.extend_from_slice(&((4 + n) as u16).to_be_bytes());
    o.extend_from_slice(&family.to_be_bytes());
    o.push(cs.source_prefix);
    o.push(scope);
    o.extend_from_slice(&bytes[..n]);
    o
}

fn write_section(w: &mut MessageWriter, section: usize, rrs: &[Rr<'_>]) -> Result<(), Full> {
    w.begin_section(section);
    write_records(w, rrs)
}

pub(crate) fn write_records(w: &mut MessageWriter, rrs: &[Rr<'_>]) -> Result<(), Full> {
    for rr in rrs {
        let offsets = compressible_names(rr.rtype, &rr.rdata);
        w.record(&rr.owner, rr.rtype, CLASS_IN, rr.ttl, &rr.rdata, &offsets)?;
    }
    Ok(())
}
