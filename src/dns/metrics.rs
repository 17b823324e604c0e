//! DNS query counters by zone, query type, response code and transport. The hot path costs
//! one snapshot load, one hash lookup per label of the query name (no allocation) and one
//! relaxed atomic increment: types and codes map onto fixed slots, zones onto an index that
//! the reload loop rebuilds ([`DnsMetrics::sync_zones`]) keeping the counts of surviving zones.

use crate::dns::catalog::Catalog;
use crate::dns::respond::Transport;
use crate::dns::wire::{rcode, rtype};
use crate::hash::FastMap;
use arc_swap::ArcSwap;
use std::fmt::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Query types with their own slot; everything else counts as `other`.
const QTYPES: [(u16, &str); 18] = [
    (rtype::A, "A"),
    (rtype::NS, "NS"),
    (rtype::CNAME, "CNAME"),
    (rtype::SOA, "SOA"),
    (12, "PTR"),
    (rtype::MX, "MX"),
    (16, "TXT"),
    (rtype::AAAA, "AAAA"),
    (rtype::SRV, "SRV"),
    (35, "NAPTR"),
    (rtype::DS, "DS"),
    (48, "DNSKEY"),
    (rtype::SVCB, "SVCB"),
    (rtype::HTTPS, "HTTPS"),
    (257, "CAA"),
    (rtype::IXFR, "IXFR"),
    (rtype::AXFR, "AXFR"),
    (rtype::ANY, "ANY"),
];
/// Response codes with their own slot; everything else counts as `other`.
const RCODES: [(u16, &str); 7] = [
    (rcode::NOERROR, "NOERROR"),
    (rcode::FORMERR, "FORMERR"),
    (rcode::SERVFAIL, "SERVFAIL"),
    (rcode::NXDOMAIN, "NXDOMAIN"),
    (rcode::NOTIMP, "NOTIMP"),
    (rcode::REFUSED, "REFUSED"),
    (rcode::NOTAUTH, "NOTAUTH"),
];
const TRANSPORTS: [&str; 2] = ["udp", "tcp"];
const NQ: usize = QTYPES.len() + 1;
const NR: usize = RCODES.len() + 1;
const SLOTS: usize = TRANSPORTS.len() * NQ * NR;

/// The counters of one zone (or of queries outside every zone).
#[derive(Debug)]
struct Counters([AtomicU64; SLOTS]);

impl Default for Counters {
    fn default() -> Self {
        Counters(std::array::from_fn(|_| AtomicU64::new(0)))
    }
}

/// Zone origins (lower-case wire form) and their counters.
#[derive(Debug, Default)]
struct ZoneIndex {
    by_wire: FastMap<Vec<u8>, usize>,
    names: Vec<String>,
    counters: Vec<Arc<Counters>>,
}

/// The counters of one question: its zone's (none: outside every zone), transport and type.
#[derive(Debug, Clone)]
pub struct CountPlace {
    zone: Option<Arc<Counters>>,
    base: usize,
}

/// Query counters shared by every socket task.
#[derive(Debug)]
pub struct DnsMetrics {
    zones: ArcSwap<ZoneIndex>,
    /// Queries whose name is in no served zone (or that have no question).
    outside: Counters,
}

impl Default for DnsMetrics {
    fn default() -> Self {
        DnsMetrics {
            zones: ArcSwap::from_pointee(ZoneIndex::default()),
            outside: Counters::default(),
        }
    }
}

impl DnsMetrics {
    /// Follows the catalog's zones: new zones start at 0, surviving ones keep their counts.
    pub fn sync_zones(&self, catalog: &Catalog) {
        let old = self.zones.load();
        let mut next = ZoneIndex::default();
        let mut origins: Vec<_> = catalog.zones().map(|z| z.origin().clone()).collect();
        origins.sort_by_key(|n| n.to_string());
        for origin in origins {
            let wire = origin.wire().to_ascii_lowercase();
            let counters = old
                .by_wire
                .get(&wire)
                .map(|&i| old.counters[i].clone())
                .unwrap_or_default();
            next.by_wire.insert(wire, next.names.len());
            next.names.push(origin.to_string());
            next.counters.push(counters);
        }
        self.zones.store(Arc::new(next));
    }

    /// Counts one answered query from its response (question and code are read from it).
    pub fn count(&self, transport: Transport, reply: &[u8]) {
        self.count_at(&self.place(transport, reply), reply);
    }

    /// Where replies to the question of `reply` are counted (all but the response code),
    /// for a caller that counts many of them: valid until the zones are synced again.
    pub fn place(&self, transport: Transport, reply: &[u8]) -> CountPlace {
        let t = usize::from(transport == Transport::Tcp);
        let question = (reply.len() > 12 && reply[4..6] != [0, 0])
            .then(|| question(&reply[12..]))
            .flatten();
        let Some((name, qtype)) = question else {
            return CountPlace {
                zone: None,
                base: slot(t, NQ - 1, 0),
            };
        };
        let q = QTYPES
            .iter()
            .position(|&(c, _)| c == qtype)
            .unwrap_or(NQ - 1);
        let index = self.zones.load();
        let mut lower = [0u8; 255];
        lower[..name.len()].copy_from_slice(name);
        lower[..name.len()].make_ascii_lowercase();
        // Longest suffix first: the closest enclosing zone.
        let mut pos = 0;
        let mut zone = None;
        while pos < name.len() {
            if let Some(&i) = index.by_wire.get(&lower[pos..name.len()]) {
                zone = Some(index.counters[i].clone());
                break;
            }
            pos += usize::from(lower[pos]) + 1;
        }
        CountPlace {
            zone,
            base: slot(t, q, 0),
        }
    }

    /// Counts `reply` (its response code) at `place`.
    pub fn count_at(&self, place: &CountPlace, reply: &[u8]) {
        let code = reply.get(3).map_or(0, |b| u16::from(b & 0xF));
        let r = RCODES
            .iter()
            .position(|&(c, _)| c == code)
            .unwrap_or(NR - 1);
        let counters = place.zone.as_deref().unwrap_or(&self.outside);
        counters.0[place.base + r].fetch_add(1, Ordering::Relaxed);
    }

    /// `roundhouse_dns_queries_total{zone,qtype,rcode,transport}` (non-zero series only;
    /// zone `""` is queries outside every served zone).
    pub fn render(&self, out: &mut String) {
        out.push_str("# HELP roundhouse_dns_queries_total DNS queries answered, by zone, query type, response code and transport.\n");
        out.push_str("# TYPE roundhouse_dns_queries_total counter\n");
        let index = self.zones.load();
        let zones = index
            .names
            .iter()
            .map(String::as_str)
            .zip(index.counters.iter().map(|c| &**c))
            .chain(std::iter::once(("", &self.outside)));
        for (zone, counters) in zones {
            for (i, n) in counters.0.iter().enumerate() {
                let n = n.load(Ordering::Relaxed);
                if n == 0 {
                    continue;
                }
                let (t, q, r) = (i / (NQ * NR), i / NR % NQ, i % NR);
                let qtype = QTYPES.get(q).map_or("other", |x| x.1);
                let code = RCODES.get(r).map_or("other", |x| x.1);
                let _ = writeln!(
                    out,
                    "roundhouse_dns_queries_total{{zone=\"{}\",qtype=\"{qtype}\",rcode=\"{code}\",transport=\"{}\"}} {n}",
                    zone.replace('\\', "\\\\").replace('"', "\\\""),
                    TRANSPORTS[t]
                );
            }
        }
    }

    /// Queries counted so far per zone (`""`: outside every zone), for the status page.
    pub fn per_zone(&self) -> Vec<(String, u64)> {
        let sum = |c: &Counters| c.0.iter().map(|n| n.load(Ordering::Relaxed)).sum::<u64>();
        let index = self.zones.load();
        let mut out: Vec<(String, u64)> = index
            .names
            .iter()
            .zip(&index.counters)
            .map(|(n, c)| (n.clone(), sum(c)))
            .collect();
        out.push((String::new(), sum(&self.outside)));
        out
    }
}

fn slot(transport: usize, qtype: usize, code: usize) -> usize {
    (transport * NQ + qtype) * NR + code
}

/// The first question's name (wire form, uncompressed as questions are) and type.
fn question(msg: &[u8]) -> Option<(&[u8], u16)> {
    let mut pos = 0;
    loop {
        let len = usize::from(*msg.get(pos)?);
        if len & 0xC0 != 0 {
            return None;
        }
        pos += len + 1;
        if len == 0 {
            break;
        }
    }
    if pos > 255 {
        return None;
    }
    let qtype = u16::from_be_bytes([*msg.get(pos)?, *msg.get(pos + 1)?]);
    Some((&msg[..pos], qtype))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::name::Name;
    use crate::dns::zone::Zone;
    use crate::dns::zonefile::parse_zone_text;
    use std::path::Path;

    fn reply(name: &str, qtype: u16, code: u8) -> Vec<u8> {
        let mut m = vec![0, 1, 0x84, code, 0, 1, 0, 0, 0, 0, 0, 0];
        m.extend_from_slice(Name::parse(name, None).unwrap().wire());
        m.extend_from_slice(&qtype.to_be_bytes());
        m.extend_from_slice(&[0, 1]);
        m
    }

    fn zone(origin: &str) -> Arc<Zone> {
        let text = "$TTL 300\n@ SOA ns host 1 3600 600 86400 60\n@ NS ns\nns A 192.0.2.1\n";
        let o = Name::parse(origin, None).unwrap();
        let records = parse_zone_text(text, Path::new("t.zone"), &o).unwrap();
        Arc::new(Zone::new(o, records).unwrap())
    }

    #[test]
    fn counts_by_closest_zone_type_code_and_transport() {
        let mut catalog = Catalog::new();
        catalog.insert(zone("example.com."));
        catalog.insert(zone("sub.example.com."));
        let m = DnsMetrics::default();
        m.sync_zones(&catalog);
        m.count(Transport::Udp, &reply("www.Example.com.", rtype::A, 0));
        m.count(Transport::Udp, &reply("www.example.com.", rtype::A, 0));
        m.count(Transport::Tcp, &reply("x.sub.example.com.", 99, 3));
        m.count(Transport::Udp, &reply("example.org.", rtype::AAAA, 5));
        m.count(Transport::Udp, &[0, 1, 0x80, 1]);
        let mut out = String::new();
        m.render(&mut out);
        assert!(
            out.contains(
                "{zone=\"example.com.\",qtype=\"A\",rcode=\"NOERROR\",transport=\"udp\"} 2\n"
            ),
            "{out}"
        );
        assert!(out.contains("{zone=\"sub.example.com.\",qtype=\"other\",rcode=\"NXDOMAIN\",transport=\"tcp\"} 1\n"), "{out}");
        assert!(
            out.contains("{zone=\"\",qtype=\"AAAA\",rcode=\"REFUSED\",transport=\"udp\"} 1\n"),
            "{out}"
        );
        assert!(
            out.contains("{zone=\"\",qtype=\"other\",rcode=\"FORMERR\",transport=\"udp\"} 1\n"),
            "{out}"
        );
        // A reload keeps the counts of zones that stay.
        let mut catalog = Catalog::new();
        catalog.insert(zone("example.com."));
        m.sync_zones(&catalog);
        let totals = m.per_zone();
        assert_eq!(totals, vec![("example.com.".into(), 2), ("".into(), 2)]);
    }
}
