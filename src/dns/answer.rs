//! The authoritative answer as a pure function of the zone and the question (RFC 1034
//! §4.3.2 with RFC 4592 wildcards, RFC 6672 DNAME, RFC 2308 negative answers and RFC 8482
//! ANY). No sockets, no clock: the server turns an [`Answer`] into bytes.

use crate::dns::name::Name;
use crate::dns::wire::{rcode, rtype};
use crate::dns::zone::{Node, RRset, Zone};
use crate::dns::zonefile::additional_target;
use crate::pool::{PoolAnswer, PoolView};
use std::borrow::Cow;

/// Most CNAME records (read or synthesized from a DNAME) one answer carries; the last one's
/// target is still looked up, but a further CNAME there is left for the resolver to follow.
/// Matches knotd, so resolvers see the same answers from both.
const MAX_CNAMES: usize = 5;
/// YXDOMAIN: a DNAME substitution produced a name that is too long (RFC 6672 §2.2).
const YXDOMAIN: u16 = 6;

/// One record of an answer, borrowed from the zone or synthesized.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rr<'a> {
    /// Owner name (the query name for wildcard and DNAME synthesis).
    pub owner: Cow<'a, Name>,
    /// Record type.
    pub rtype: u16,
    /// TTL.
    pub ttl: u32,
    /// Uncompressed RDATA.
    pub rdata: Cow<'a, [u8]>,
}

/// What the server should say, before encoding.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Answer<'a> {
    /// Response code.
    pub rcode: u16,
    /// The AA bit.
    pub authoritative: bool,
    /// Answer section.
    pub answer: Vec<Rr<'a>>,
    /// Authority section.
    pub authority: Vec<Rr<'a>>,
    /// Additional section (glue and addresses of targets; dropped first when space is short).
    pub additional: Vec<Rr<'a>>,
    /// ECS scope prefix length: how much of the client's address decided the answer.
    pub scope: u8,
    /// The part a pool answered, if any (then the answer may differ from query to query;
    /// without one, the zone alone decided it).
    pub from_pool: Option<PoolPart>,
}

/// Where a pool's answer sits in an [`Answer`]: after the CNAME chain that led to its name
/// (empty when the query name itself is bound), at the end of the answer section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolPart {
    /// The bound name the pool answered for.
    pub name: Name,
    /// The record type it was asked for (A for ANY).
    pub rtype: u16,
    /// How many records of the answer section came before the pool's (the chain).
    pub chain: usize,
}

/// How ANY is answered (RFC 8482 §4.1 lets a server return one RRset).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnyPolicy {
    /// All RRsets at the name (TCP, where size is no amplification risk).
    Full,
    /// One RRset: the one with the lowest type number.
    Minimal,
}

/// What a lookup inside one zone found for one name.
enum Found<'a> {
    Data(Cow<'a, Name>, Vec<&'a RRset>),
    Cname(Cow<'a, Name>, &'a RRset),
    Dname(&'a Name, &'a RRset),
    NoData,
    NxDomain,
    Referral(&'a Name, &'a RRset),
    Pool(Cow<'a, Name>, u16, PoolAnswer, u8),
}

/// Answers a question from `zone`, which must contain `qname`; names bound to a pool are
/// answered from `pools` (also at the end of a CNAME chain).
pub fn answer<'a>(
    zone: &'a Zone,
    qname: &Name,
    qtype: u16,
    any: AnyPolicy,
    pools: Option<PoolView<'_>>,
) -> Answer<'a> {
    let mut out = Answer {
        authoritative: true,
        ..Answer::default()
    };
    let mut name: Cow<'a, Name> = Cow::Owned(qname.clone());
    let mut cnames = 0;
    loop {
        let found = lookup(zone, &name, qtype, any, pools);
        if cnames == MAX_CNAMES && matches!(found, Found::Cname(..) | Found::Dname(..)) {
            break;
        }
        if let Found::Pool(owner, t, ..) = &found {
            out.from_pool = Some(PoolPart {
                name: owner.as_ref().clone(),
                rtype: *t,
                chain: out.answer.len(),
            });
        }
        match found {
            Found::Data(owner, sets) => {
                for set in sets {
                    push_set(&mut out.answer, &owner, set);
                }
                break;
            }
            Found::Cname(owner, set) => {
                push_set(&mut out.answer, &owner, set);
                cnames += 1;
                match Name::from_wire(&set.rdatas[0]) {
                    Ok(target) if target.is_subdomain_of(zone.origin()) && !seen(&out, &target) => {
                        name = Cow::Owned(target);
                    }
                    _ => break,
                }
            }
            Found::Dname(owner, set) => {
                // knotd writes a DNAME found at a wildcard owner with the query name as its
                // owner (as if expanded); we do the same so both servers answer alike.
                let shown = if owner.is_wildcard() {
                    name.clone()
                } else {
                    Cow::Borrowed(owner)
                };
                push_set(&mut out.answer, &shown, set);
                let Some(target) = substitute(&name, owner, &set.rdatas[0]) else {
                    out.rcode = YXDOMAIN;
                    break;
                };
                out.answer.push(Rr {
                    owner: name.clone(),
                    rtype: rtype::CNAME,
                    ttl: set.ttl,
                    rdata: Cow::Owned(target.wire().to_vec()),
                });
                cnames += 1;
                if !target.is_subdomain_of(zone.origin()) || seen(&out, &target) {
                    break;
                }
                name = Cow::Owned(target);
            }
            Found::NoData => {
                push_soa(&mut out, zone);
                break;
            }
            Found::NxDomain => {
                out.rcode = rcode::NXDOMAIN;
                push_soa(&mut out, zone);
                break;
            }
            Found::Pool(owner, t, found, scope) => {
                push_pool(&mut out, zone, owner, t, found, scope);
                break;
            }
            Found::Referral(cut, ns) => {
                push_set(&mut out.authority, &Cow::Borrowed(cut), ns);
                out.authoritative = !out.answer.is_empty();
                break;
            }
        }
    }
    add_additional(&mut out, zone);
    out
}

/// The answer made of `chain` (the records before the pool's) and the pool's answer
/// `found` (with its ECS scope) for `part`: the same as [`answer`] gives when it reaches
/// that pool and the pool answers so.
pub fn pool_answer<'a>(
    zone: &'a Zone,
    chain: &[Rr<'a>],
    part: &PoolPart,
    found: (PoolAnswer, u8),
) -> Answer<'a> {
    let mut out = Answer {
        authoritative: true,
        answer: chain.to_vec(),
        from_pool: Some(part.clone()),
        ..Answer::default()
    };
    let owner = Cow::Owned(part.name.clone());
    push_pool(&mut out, zone, owner, part.rtype, found.0, found.1);
    add_additional(&mut out, zone);
    out
}

/// Adds what a pool answered for `owner`: its addresses, NODATA (the SOA) or SERVFAIL.
fn push_pool<'a>(
    out: &mut Answer<'a>,
    zone: &'a Zone,
    owner: Cow<'a, Name>,
    t: u16,
    found: PoolAnswer,
    scope: u8,
) {
    match found {
        PoolAnswer::Addresses(ttl, addrs) => {
            out.scope = out.scope.max(scope);
            for a in addrs {
                let rdata = match a {
                    std::net::IpAddr::V4(v4) => v4.octets().to_vec(),
                    std::net::IpAddr::V6(v6) => v6.octets().to_vec(),
                };
                out.answer.push(Rr {
                    owner: owner.clone(),
                    rtype: t,
                    ttl,
                    rdata: Cow::Owned(rdata),
                });
            }
        }
        PoolAnswer::NoData => {
            out.scope = out.scope.max(scope);
            push_soa(out, zone);
        }
        PoolAnswer::ServFail => {
            out.rcode = rcode::SERVFAIL;
            out.authoritative = false;
            out.answer.clear();
        }
    }
}

/// True when the chain already went through `name` (a CNAME loop).
fn seen(out: &Answer<'_>, name: &Name) -> bool {
    out.answer.iter().any(|rr| rr.owner.as_ref() == name)
}

// Takes the Cow by reference on purpose: cloning a borrowed owner per record stays a borrow.
#[allow(clippy::ptr_arg)]
fn push_set<'a>(dst: &mut Vec<Rr<'a>>, owner: &Cow<'a, Name>, set: &'a RRset) {
    for rd in &set.rdatas {
        dst.push(Rr {
            owner: owner.clone(),
            rtype: set.rtype,
            ttl: set.ttl,
            rdata: Cow::Borrowed(rd),
        });
    }
}

fn push_soa<'a>(out: &mut Answer<'a>, zone: &'a Zone) {
    if let Some(soa) = zone.apex().get(rtype::SOA) {
        let ttl = zone.negative_ttl();
        out.authority.push(Rr {
            owner: Cow::Borrowed(zone.origin()),
            rtype: rtype::SOA,
            ttl,
            rdata: Cow::Borrowed(&soa.rdatas[0]),
        });
    }
}

/// RFC 6672 §2.2: replace the DNAME owner suffix of `name` with the DNAME target.
fn substitute(name: &Name, owner: &Name, target: &[u8]) -> Option<Name> {
    let target = Name::from_wire(target).ok()?;
    let keep = name.label_count() - owner.label_count();
    let mut out = target;
    let labels: Vec<&[u8]> = name.labels().take(keep).collect();
    for label in labels.iter().rev() {
        out = out.prepend(label).ok()?;
    }
    Some(out)
}

fn lookup<'a>(
    zone: &'a Zone,
    name: &Name,
    qtype: u16,
    any: AnyPolicy,
    pools: Option<PoolView<'_>>,
) -> Found<'a> {
    let apex_labels = zone.origin().label_count();
    let depth = name.label_count();
    // Walk down from the apex: a zone cut or a DNAME above the name decides first. The
    // name's own node, found last, is kept for the answer.
    let mut own = None;
    for k in apex_labels..=depth {
        let entry = if k == depth {
            zone.node_entry(name)
        } else {
            zone.node_entry(&name.suffix(k))
        };
        let Some((owner, node)) = entry else {
            continue;
        };
        if k == depth {
            own = Some(node);
        }
        if k > apex_labels
            && let Some(ns) = node.get(rtype::NS)
            && !(k == depth && qtype == rtype::DS)
        {
            return Found::Referral(owner, ns);
        }
        if k < depth
            && let Some(dname) = node.get(rtype::DNAME)
        {
            return Found::Dname(owner, dname);
        }
    }
    if let Some(pools) = pools
        && pools.is_bound(name)
    {
        // A bound name exists even without zone data; ANY gets the pool's A answer.
        let t = if qtype == rtype::ANY { rtype::A } else { qtype };
        if let Some(found) = pools.answer(name, t) {
            return Found::Pool(Cow::Owned(name.clone()), t, found.0, found.1);
        }
        return match own {
            Some(node) => at_node(Cow::Owned(name.clone()), node, qtype, any),
            None => Found::NoData,
        };
    }
    if let Some(node) = own {
        return at_node(Cow::Owned(name.clone()), node, qtype, any);
    }
    if zone.is_empty_nonterminal(name) {
        return Found::NoData;
    }
    match zone.wildcard_for(name) {
        Some(node) => at_node(Cow::Owned(name.clone()), node, qtype, any),
        None => Found::NxDomain,
    }
}

fn at_node<'a>(owner: Cow<'a, Name>, node: &'a Node, qtype: u16, any: AnyPolicy) -> Found<'a> {
    if qtype == rtype::ANY {
        let sets: Vec<&RRset> = match any {
            AnyPolicy::Full => node.rrsets.iter().collect(),
            AnyPolicy::Minimal => node.rrsets.iter().take(1).collect(),
        };
        return if sets.is_empty() {
            Found::NoData
        } else {
            Found::Data(owner, sets)
        };
    }
    if let Some(set) = node.get(qtype) {
        return Found::Data(owner, vec![set]);
    }
    match node.get(rtype::CNAME) {
        Some(cname) => Found::Cname(owner, cname),
        None => Found::NoData,
    }
}

/// The RRsets worth adding for a target of a record of type `rtype`: addresses, and for
/// SVCB/HTTPS also the target's own SVCB/HTTPS records (RFC 9460 §4.1).
fn additional_types(rtype: u16) -> &'static [u16] {
    match rtype {
        rtype::SVCB => &[rtype::SVCB, rtype::A, rtype::AAAA],
        rtype::HTTPS => &[rtype::HTTPS, rtype::A, rtype::AAAA],
        _ => &[rtype::A, rtype::AAAA],
    }
}

/// Records for the targets of NS, MX, SRV, SVCB and HTTPS records that live in the zone
/// (glue and wildcard matches included), once each.
fn add_additional<'a>(out: &mut Answer<'a>, zone: &'a Zone) {
    let mut targets: Vec<(Name, u16)> = Vec::new();
    for rr in out.answer.iter().chain(out.authority.iter()) {
        if let Some(t) = additional_target(rr.rtype, &rr.rdata)
            && t.is_subdomain_of(zone.origin())
            && !targets.iter().any(|(n, _)| *n == t)
        {
            targets.push((t, rr.rtype));
        }
    }
    for (target, from) in targets {
        let (owner, node) = match zone.node_entry(&target) {
            Some((owner, node)) => (Cow::Borrowed(owner), node),
            None => match zone.wildcard_for(&target) {
                Some(node) => (Cow::Owned(target), node),
                None => continue,
            },
        };
        for &t in additional_types(from) {
            if let Some(set) = node.get(t) {
                push_set(&mut out.additional, &owner, set);
            }
        }
    }
}

#[cfg(test)]
mod tests;
