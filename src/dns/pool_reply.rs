//! The reply to a query that a pool answers, made per query from what all replies to the
//! same query bytes share: the decoded query, the CNAME chain that led to the bound name, the
//! bytes before the addresses (header, question, the chain's records as written) and after
//! them (the OPT record), and the address records' owner name as written. Used by the UDP
//! workers' kept replies ([`crate::dns::prepared`]); byte for byte what
//! [`crate::dns::respond::respond`] sends.

use crate::dns::answer::{Answer, PoolPart, Rr, pool_answer};
use crate::dns::name::Name;
use crate::dns::respond::{
    OPT_SIZE, Transport, ecs_option, encode, response_flags, udp_limit, write_records,
};
use crate::dns::wire::{CLASS_IN, MAX_UDP_PAYLOAD, Question, Request, flag, rtype};
use crate::dns::writer::MessageWriter;
use crate::dns::zone::Zone;
use crate::pool::PoolAnswer;
use crate::steering::Client;
use crate::steering::rank::RankMemo;
use std::sync::Arc;

/// Where the scope prefix length sits in an ECS option (after code, length, family and
/// source prefix length).
const ECS_SCOPE_AT: usize = 7;

/// A decoded query for a name bound to a pool: what its replies share.
#[derive(Debug)]
pub struct PoolQuery {
    /// The request (its ID is replaced per reply).
    req: Request,
    /// Its question.
    q: Question,
    /// The zone holding the name (for the SOA of a NODATA answer).
    zone: Arc<Zone>,
    /// The bound name and type the pool is asked for, and where its records go.
    part: PoolPart,
    /// The records before the pool's: the CNAME chain that led to the bound name.
    chain: Vec<Rr<'static>>,
    /// The client from the query's ECS option; without one, each query's source is.
    ecs_client: Option<Client>,
    /// The pool's last ranking, kept between replies.
    memo: RankMemo,
    /// What [`encode`] writes before the records: header and question.
    head: Vec<u8>,
    /// The chain's records as it writes them after the head (compressed).
    chain_bytes: Vec<u8>,
    /// The owner name of every address record as it writes it: a compression pointer to
    /// the bound name where it already stands (the question, or the last CNAME's target).
    owner: Vec<u8>,
    /// What it writes after them: the OPT record (with the ECS option, scope 0), if any.
    tail: Vec<u8>,
    /// Where the ECS scope is in `tail`.
    scope_at: Option<usize>,
    /// Most bytes the head and the addresses may take (the UDP limit less the tail).
    room: usize,
}

impl PoolQuery {
    /// What replies to `req` share, when a pool answered it (`ans` says where); `None`
    /// otherwise.
    pub fn new(req: Request, q: Question, zone: Arc<Zone>, ans: &Answer<'_>) -> Option<PoolQuery> {
        let part = ans.from_pool.clone()?;
        let chain: Vec<Rr<'static>> = ans.answer.get(..part.chain)?.iter().map(owned).collect();
        let limit = udp_limit(req.edns.as_ref());
        let flags = response_flags(&req, 0) | flag::AA;
        let mut w = MessageWriter::new(req.id, flags, limit);
        w.question(&q.name, q.qtype, q.qclass);
        let head = w.finish();
        // The chain and two sample address records, written as `encode` writes them, give
        // the bytes every reply shares after the head. Both samples' owners are the same
        // pointer (the bound name stands earlier); were they not, the reply is not kept.
        let mut w = MessageWriter::new(req.id, flags, usize::MAX);
        w.question(&q.name, q.qtype, q.qclass);
        w.begin_section(1);
        write_records(&mut w, &chain).ok()?;
        let chain_end = w.len();
        let sample = [0u8; 16];
        let sample = &sample[..address_len(part.rtype)];
        let fixed = 10 + sample.len();
        w.record(&part.name, part.rtype, CLASS_IN, 0, sample, &[])
            .ok()?;
        let first_end = w.len();
        w.record(&part.name, part.rtype, CLASS_IN, 0, sample, &[])
            .ok()?;
        let bytes = w.finish();
        let owner = bytes[first_end..bytes.len() - fixed].to_vec();
        if bytes[chain_end..first_end - fixed] != owner[..] {
            return None;
        }
        let chain_bytes = bytes[head.len()..chain_end].to_vec();
        let ecs = req.edns.as_ref().and_then(|e| e.client_subnet);
        let tail = match &req.edns {
            Some(_) => {
                let mut w = MessageWriter::new(0, 0, limit);
                let options = ecs.map(|cs| ecs_option(&cs, 0)).unwrap_or_default();
                w.opt(MAX_UDP_PAYLOAD, 0, &options);
                w.finish().split_off(12)
            }
            None => Vec::new(),
        };
        Some(PoolQuery {
            ecs_client: ecs.map(|cs| Client::from_subnet(cs.addr, cs.source_prefix)),
            memo: RankMemo::default(),
            scope_at: ecs.map(|_| OPT_SIZE + ECS_SCOPE_AT),
            room: limit - tail.len(),
            head,
            chain_bytes,
            owner,
            tail,
            req,
            q,
            zone,
            part,
            chain,
        })
    }

    /// The UDP reply with message ID `id` once the pool has answered `found` (the answer
    /// and its ECS scope): byte for byte what [`crate::dns::respond::respond`] sends.
    /// Addresses are written by hand after the kept bytes; NODATA and SERVFAIL go through
    /// the general encoder.
    pub fn reply(&self, id: u16, found: (PoolAnswer, u8)) -> Vec<u8> {
        let (PoolAnswer::Addresses(ttl, addrs), scope) = &found else {
            return self.encoded(id, found);
        };
        let v4 = self.part.rtype == rtype::A;
        if addrs.is_empty() || addrs.iter().any(|a| a.is_ipv4() != v4) {
            return self.encoded(id, found);
        }
        // Each record: its owner, type, class, TTL, length, address.
        let fixed = 10 + address_len(self.part.rtype);
        let records = self.chain_bytes.len() + addrs.len() * (self.owner.len() + fixed);
        let mut r = Vec::with_capacity(self.head.len() + records + self.tail.len());
        r.extend_from_slice(&self.head);
        r[..2].copy_from_slice(&id.to_be_bytes());
        if self.head.len() + records <= self.room {
            let count = self.chain.len() + addrs.len();
            r[6..8].copy_from_slice(&(count as u16).to_be_bytes());
            r.extend_from_slice(&self.chain_bytes);
            for a in addrs {
                r.extend_from_slice(&self.owner);
                r.extend_from_slice(&self.part.rtype.to_be_bytes());
                r.extend_from_slice(&CLASS_IN.to_be_bytes());
                r.extend_from_slice(&ttl.to_be_bytes());
                match a {
                    std::net::IpAddr::V4(v4) => {
                        r.extend_from_slice(&[0, 4]);
                        r.extend_from_slice(&v4.octets());
                    }
                    std::net::IpAddr::V6(v6) => {
                        r.extend_from_slice(&[0, 16]);
                        r.extend_from_slice(&v6.octets());
                    }
                }
            }
        } else {
            // As encode: the records do not fit, so the question alone with TC.
            r[2] |= (flag::TC >> 8) as u8;
        }
        if !self.tail.is_empty() {
            r[10..12].copy_from_slice(&1u16.to_be_bytes());
            let at = r.len();
            r.extend_from_slice(&self.tail);
            if let Some(s) = self.scope_at {
                r[at + s] = *scope;
            }
        }
        r
    }

    /// The reply through the general encoder (NODATA, SERVFAIL and the unusual cases).
    fn encoded(&self, id: u16, found: (PoolAnswer, u8)) -> Vec<u8> {
        let ans = pool_answer(&self.zone, &self.chain, &self.part, found);
        let mut reply = encode(&self.req, &self.q, &ans, Transport::Udp);
        reply[..2].copy_from_slice(&id.to_be_bytes());
        reply
    }

    /// Bytes it holds, about.
    pub fn size(&self) -> usize {
        let chain: usize = self
            .chain
            .iter()
            .map(|rr| rr.owner.wire().len() + rr.rdata.len())
            .sum();
        std::mem::size_of::<PoolQuery>()
            + self.head.len()
            + self.chain_bytes.len()
            + self.owner.len()
            + self.tail.len()
            + chain
    }

    /// The name the pool is asked for and the type.
    pub fn question(&self) -> (&Name, u16) {
        (&self.part.name, self.part.rtype)
    }

    /// The client the pool answers for, given the query's source.
    pub fn client(&self, peer: std::net::IpAddr) -> Client {
        self.ecs_client.unwrap_or_else(|| Client::from_source(peer))
    }

    /// Where the pool's last ranking is kept, with the client it was for.
    pub fn memo(&self) -> &RankMemo {
        &self.memo
    }
}

/// Bytes of the address in an A or AAAA record.
fn address_len(rtype: u16) -> usize {
    if rtype == rtype::A { 4 } else { 16 }
}

/// A record that owns its name and data.
fn owned(rr: &Rr<'_>) -> Rr<'static> {
    Rr {
        owner: std::borrow::Cow::Owned(rr.owner.as_ref().clone()),
        rtype: rr.rtype,
        ttl: rr.ttl,
        rdata: std::borrow::Cow::Owned(rr.rdata.to_vec()),
    }
}
