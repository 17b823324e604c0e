//! DNS messages on the wire: decoding queries (strictly, so that malformed packets are
//! answered FORMERR or dropped, never trusted) and the constants the answer path needs.
//!
//! We decode queries ourselves instead of through a general message type: a query is a
//! header, one question and at most an OPT and a TSIG record, and owning this code lets the
//! server classify every malformed packet the way RFC 1035, 6891, 7871 and 7873 ask.

use crate::dns::name::Name;
use std::net::IpAddr;

/// Record types the server itself looks at.
pub mod rtype {
    /// IPv4 address.
    pub const A: u16 = 1;
    /// Name server.
    pub const NS: u16 = 2;
    /// Canonical name.
    pub const CNAME: u16 = 5;
    /// Start of authority.
    pub const SOA: u16 = 6;
    /// Mail exchange.
    pub const MX: u16 = 15;
    /// IPv6 address.
    pub const AAAA: u16 = 28;
    /// Service location.
    pub const SRV: u16 = 33;
    /// Delegation name.
    pub const DNAME: u16 = 39;
    /// EDNS(0) pseudo-record.
    pub const OPT: u16 = 41;
    /// Delegation signer.
    pub const DS: u16 = 43;
    /// Signature.
    pub const RRSIG: u16 = 46;
    /// Next secure.
    pub const NSEC: u16 = 47;
    /// Service binding.
    pub const SVCB: u16 = 64;
    /// HTTPS service binding.
    pub const HTTPS: u16 = 65;
    /// Transaction signature.
    pub const TSIG: u16 = 250;
    /// Incremental zone transfer.
    pub const IXFR: u16 = 251;
    /// Full zone transfer.
    pub const AXFR: u16 = 252;
    /// Mailbox-related records (obsolete meta type).
    pub const MAILB: u16 = 253;
    /// Mail agent records (obsolete meta type).
    pub const MAILA: u16 = 254;
    /// Any type.
    pub const ANY: u16 = 255;
}

/// Response codes (the low 4 bits in the header; BADVERS needs the OPT record).
pub mod rcode {
    /// No error.
    pub const NOERROR: u16 = 0;
    /// Format error.
    pub const FORMERR: u16 = 1;
    /// Server failure.
    pub const SERVFAIL: u16 = 2;
    /// Name does not exist.
    pub const NXDOMAIN: u16 = 3;
    /// Not implemented.
    pub const NOTIMP: u16 = 4;
    /// Refused.
    pub const REFUSED: u16 = 5;
    /// Not authoritative.
    pub const NOTAUTH: u16 = 9;
    /// Bad EDNS version (extended).
    pub const BADVERS: u16 = 16;
}

/// Operation codes.
pub mod opcode {
    /// Standard query.
    pub const QUERY: u8 = 0;
    /// Zone change notification.
    pub const NOTIFY: u8 = 4;
}

/// Header flag bits.
pub mod flag {
    /// Response.
    pub const QR: u16 = 0x8000;
    /// Authoritative answer.
    pub const AA: u16 = 0x0400;
    /// Truncated.
    pub const TC: u16 = 0x0200;
    /// Recursion desired.
    pub const RD: u16 = 0x0100;
    /// Checking disabled.
    pub const CD: u16 = 0x0010;
}

/// The class every served zone has.
pub const CLASS_IN: u16 = 1;
/// QCLASS ANY.
pub const CLASS_ANY: u16 = 255;
/// The largest UDP response we send, whatever the client advertises (DNS flag day 2020).
pub const MAX_UDP_PAYLOAD: u16 = 1232;

/// The question of a query, with the owner name exactly as the client wrote it.
#[derive(Debug, Clone)]
pub struct Question {
    /// Query name (case preserved for the echo; comparisons ignore case).
    pub name: Name,
    /// Query type.
    pub qtype: u16,
    /// Query class.
    pub qclass: u16,
}

/// An EDNS Client Subnet option (RFC 7871), validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientSubnet {
    /// Address with all bits beyond `source_prefix` zero.
    pub addr: IpAddr,
    /// SOURCE PREFIX-LENGTH.
    pub source_prefix: u8,
}

/// The EDNS(0) part of a query.
#[derive(Debug, Clone, Default)]
pub struct Edns {
    /// Advertised UDP payload size (values below 512 mean 512).
    pub udp_size: u16,
    /// EDNS version.
    pub version: u8,
    /// The DO bit.
    pub dnssec_ok: bool,
    /// Client subnet, when the option is present.
    pub client_subnet: Option<ClientSubnet>,
}

/// A query that passed decoding.
#[derive(Debug, Clone)]
pub struct Request {
    /// Message ID.
    pub id: u16,
    /// Operation code.
    pub opcode: u8,
    /// Header flags as sent (RD and CD are copied into the response).
    pub flags: u16,
    /// The question (exactly one, or none for opcodes that allow it).
    pub question: Option<Question>,
    /// EDNS, when the query carried an OPT record.
    pub edns: Option<Edns>,
    /// The query carried a TSIG record (we hold no keys, so it cannot verify).
    pub signed: bool,
}

/// What to do with a datagram or TCP frame.
#[derive(Debug)]
pub enum Decoded {
    /// Not worth a reply: too short to carry an ID, or a response (QR=1).
    Drop,
    /// A well-formed query.
    Request(Request),
    /// Malformed: answer FORMERR, echoing the question when it could be read.
    FormErr {
        /// Message ID.
        id: u16,
        /// Header flags as sent.
        flags: u16,
        /// The question, when it was readable.
        question: Option<Question>,
        /// EDNS, when an OPT record was readable (the reply then carries one).
        edns: Option<Edns>,
    },
}

/// Why decoding stopped.
#[derive(Debug)]
enum Malformed {
    Formerr,
}

type Res<T> = Result<T, Malformed>;

/// Reads a possibly compressed name at `pos`; returns the name and the position after it.
/// Pointers must point strictly backwards, so loops are impossible, and past the 12-byte
/// header, where no name can start: so no name read from a message depends on its ID.
pub fn read_name(msg: &[u8], mut pos: usize) -> Option<(Name, usize)> {
    let mut out = Vec::with_capacity(64);
    let mut end = None;
    let mut limit = pos;
    loop {
        let len = *msg.get(pos)? as usize;
        match len & 0xC0 {
            0x00 => {
                if len == 0 {
                    out.push(0);
                    let name = Name::from_wire(&out).ok()?;
                    return Some((name, end.unwrap_or(pos + 1)));
                }
                let label = msg.get(pos + 1..pos + 1 + len)?;
                out.push(len as u8);
                out.extend_from_slice(label);
                if out.len() > 254 {
                    return None;
                }
                pos += 1 + len;
            }
            0xC0 => {
                let lo = *msg.get(pos + 1)? as usize;
                let target = ((len & 0x3F) << 8) | lo;
                if target >= limit || target < 12 {
                    return None;
                }
                end.get_or_insert(pos + 2);
                limit = target;
                pos = target;
            }
            _ => return None,
        }
    }
}

fn u16_at(msg: &[u8], pos: usize) -> Res<u16> {
    match msg.get(pos..pos + 2) {
        Some(b) => Ok(u16::from_be_bytes([b[0], b[1]])),
        None => Err(Malformed::Formerr),
    }
}

/// One resource record's fixed fields, as seen while walking the sections.
struct RawRr {
    owner_root: bool,
    rtype: u16,
    class: u16,
    ttl: u32,
    rdata: std::ops::Range<usize>,
}

fn read_rr(msg: &[u8], pos: usize) -> Res<(RawRr, usize)> {
    let (owner, p) = read_name(msg, pos).ok_or(Malformed::Formerr)?;
    let rtype = u16_at(msg, p)?;
    let class = u16_at(msg, p + 2)?;
    let ttl = (u32::from(u16_at(msg, p + 4)?) << 16) | u32::from(u16_at(msg, p + 6)?);
    let rdlen = u16_at(msg, p + 8)? as usize;
    let start = p + 10;
    if start + rdlen > msg.len() {
        return Err(Malformed::Formerr);
    }
    let rr = RawRr {
        owner_root: owner.is_root(),
        rtype,
        class,
        ttl,
        rdata: start..start + rdlen,
    };
    Ok((rr, start + rdlen))
}

/// Decodes a query. Never panics, whatever the bytes.
pub fn decode(msg: &[u8]) -> Decoded {
    if msg.len() < 12 {
        return Decoded::Drop;
    }
    let id = u16::from_be_bytes([msg[0], msg[1]]);
    let flags = u16::from_be_bytes([msg[2], msg[3]]);
    if flags & flag::QR != 0 {
        return Decoded::Drop;
    }
    let count = |i: usize| u16::from_be_bytes([msg[4 + 2 * i], msg[5 + 2 * i]]);
    let (qd, an, ns, ar) = (count(0), count(1), count(2), count(3));
    let mut pos = 12;
    let mut question = None;
    let formerr = |question, edns| Decoded::FormErr {
        id,
        flags,
        question,
        edns,
    };
    if qd > 1 {
        return formerr(None, None);
    }
    if qd == 1 {
        match read_question(msg, pos) {
            Some((q, p)) => {
                question = Some(q);
                pos = p;
            }
            None => return formerr(None, None),
        }
    }
    let mut edns = None;
    let mut signed = false;
    let total = an as usize + ns as usize + ar as usize;
    for i in 0..total {
        let Ok((rr, next)) = read_rr(msg, pos) else {
            return formerr(question, edns);
        };
        pos = next;
        let in_additional = i >= an as usize + ns as usize;
        if signed {
            // TSIG must be the very last record (RFC 8945 §5.1).
            return formerr(question, edns);
        }
        match rr.rtype {
            rtype::OPT if !in_additional || edns.is_some() || !rr.owner_root => {
                return formerr(question, edns);
            }
            rtype::OPT => match read_opt(msg, &rr) {
                Ok(e) => edns = Some(e),
                Err(Malformed::Formerr) => return formerr(question, edns_header(&rr)),
            },
            rtype::TSIG if in_additional => signed = true,
            _ => {}
        }
    }
    let opcode = ((flags >> 11) & 0xF) as u8;
    Decoded::Request(Request {
        id,
        opcode,
        flags,
        question,
        edns,
        signed,
    })
}

fn read_question(msg: &[u8], pos: usize) -> Option<(Question, usize)> {
    let (name, p) = read_name(msg, pos)?;
    let qtype = u16_at(msg, p).ok()?;
    let qclass = u16_at(msg, p + 2).ok()?;
    Some((
        Question {
            name,
            qtype,
            qclass,
        },
        p + 4,
    ))
}

/// The EDNS fields of an OPT record whose options did not decode (for the FORMERR reply).
fn edns_header(rr: &RawRr) -> Option<Edns> {
    Some(Edns {
        udp_size: rr.class,
        version: (rr.ttl >> 16) as u8,
        dnssec_ok: rr.ttl & 0x8000 != 0,
        client_subnet: None,
    })
}

const OPTION_ECS: u16 = 8;
const OPTION_COOKIE: u16 = 10;

fn read_opt(msg: &[u8], rr: &RawRr) -> Res<Edns> {
    let mut edns = edns_header(rr).unwrap_or_default();
    let data = &msg[rr.rdata.clone()];
    let mut pos = 0;
    while pos < data.len() {
        let code = u16_at(data, pos)?;
        let len = u16_at(data, pos + 2)? as usize;
        let body = data.get(pos + 4..pos + 4 + len).ok_or(Malformed::Formerr)?;
        match code {
            OPTION_ECS if edns.client_subnet.is_some() => return Err(Malformed::Formerr),
            OPTION_ECS => edns.client_subnet = Some(read_client_subnet(body)?),
            // RFC 7873 §5.2.2: a client cookie is 8 bytes, a server cookie 8 to 32.
            OPTION_COOKIE if !(len == 8 || (16..=40).contains(&len)) => {
                return Err(Malformed::Formerr);
            }
            _ => {}
        }
        pos += 4 + len;
    }
    Ok(edns)
}

/// RFC 7871 §6: family, source prefix within the family, exactly ceil(prefix/8) address
/// bytes, no bits set beyond the prefix, and scope 0 in queries.
fn read_client_subnet(body: &[u8]) -> Res<ClientSubnet> {
    if body.len() < 4 {
        return Err(Malformed::Formerr);
    }
    let family = u16::from_be_bytes([body[0], body[1]]);
    let (source, scope, bytes) = (body[2], body[3], &body[4..]);
    let max = match family {
        1 => 32,
        2 => 128,
        _ => return Err(Malformed::Formerr),
    };
    if source > max || scope != 0 || bytes.len() != usize::from(source).div_ceil(8) {
        return Err(Malformed::Formerr);
    }
    if source % 8 != 0 {
        let mask = 0xFFu8 >> (source % 8);
        if bytes[bytes.len() - 1] & mask != 0 {
            return Err(Malformed::Formerr);
        }
    }
    let addr = if family == 1 {
        let mut a = [0u8; 4];
        a[..bytes.len()].copy_from_slice(bytes);
        IpAddr::from(a)
    } else {
        let mut a = [0u8; 16];
        a[..bytes.len()].copy_from_slice(bytes);
        IpAddr::from(a)
    };
    Ok(ClientSubnet {
        addr,
        source_prefix: source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(name: &[u8], qtype: u16, extra: &[u8], arcount: u16) -> Vec<u8> {
        let mut m = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0];
        m.extend_from_slice(&arcount.to_be_bytes());
        m.extend_from_slice(name);
        m.extend_from_slice(&qtype.to_be_bytes());
        m.extend_from_slice(&1u16.to_be_bytes());
        m.extend_from_slice(extra);
        m
    }

    fn opt(options: &[u8], version: u8) -> Vec<u8> {
        let mut o = vec![0, 0, 41, 0x04, 0xD0, 0, version, 0, 0];
        o.extend_from_slice(&(options.len() as u16).to_be_bytes());
        o.extend_from_slice(options);
        o
    }

    #[test]
    fn plain_query_decodes() {
        let m = query(b"\x03www\x07example\x00", 1, &[], 0);
        let Decoded::Request(r) = decode(&m) else {
            panic!("not a request")
        };
        let q = r.question.expect("question");
        assert_eq!(q.name.to_string(), "www.example.");
        assert_eq!((r.id, q.qtype, q.qclass), (0x1234, 1, 1));
        assert!(r.edns.is_none());
    }

    #[test]
    fn short_and_responses_are_dropped() {
        assert!(matches!(decode(&[0; 11]), Decoded::Drop));
        let mut m = query(b"\x00", 1, &[], 0);
        m[2] |= 0x80;
        assert!(matches!(decode(&m), Decoded::Drop));
    }

    #[test]
    fn pointer_loops_and_pointers_into_the_header_are_formerr() {
        for name in [
            &b"\xC0\x0C"[..],
            b"\xC0\x00",
            b"\xC0\x04",
            b"\x03www\xC0\x0B",
        ] {
            let m = query(name, 1, &[], 0);
            assert!(
                matches!(decode(&m), Decoded::FormErr { question: None, .. }),
                "{name:?}"
            );
        }
        // A pointer back to a name after the header is fine.
        let mut m = vec![0u8; 12];
        m.extend_from_slice(b"\x03www\x00\x03abc\xC0\x0C");
        let (name, end) = read_name(&m, 17).expect("abc.www.");
        assert_eq!((name.to_string().as_str(), end), ("abc.www.", m.len()));
    }

    #[test]
    fn edns_version_and_subnet() {
        let ecs = [0, 8, 0, 7, 0, 1, 24, 0, 192, 0, 2];
        let m = query(b"\x00", 1, &opt(&ecs, 1), 1);
        let Decoded::Request(r) = decode(&m) else {
            panic!("not a request")
        };
        let e = r.edns.expect("edns");
        assert_eq!(e.version, 1);
        assert_eq!(e.udp_size, 1232);
        let cs = e.client_subnet.expect("ecs");
        assert_eq!(cs.addr, "192.0.2.0".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn bad_subnets_are_formerr() {
        for ecs in [
            &[0u8, 8, 0, 8, 0, 1, 33, 0, 1, 2, 3, 4, 5][..], // prefix too long
            &[0, 8, 0, 8, 0, 1, 8, 0, 10, 0, 0, 0],          // too many bytes
            &[0, 8, 0, 6, 0, 1, 9, 0, 10, 255],              // bits beyond prefix
            &[0, 8, 0, 4, 0, 3, 0, 0],                       // unknown family
            &[0, 8, 0, 2, 0, 1],                             // too short
        ] {
            let m = query(b"\x00", 1, &opt(ecs, 0), 1);
            assert!(matches!(decode(&m), Decoded::FormErr { .. }), "{ecs:?}");
        }
    }

    #[test]
    fn count_mismatch_is_formerr() {
        let mut m = query(b"\x00", 1, &[], 0);
        m[7] = 1; // ANCOUNT=1, nothing follows
        assert!(matches!(
            decode(&m),
            Decoded::FormErr {
                question: Some(_),
                ..
            }
        ));
    }
}
