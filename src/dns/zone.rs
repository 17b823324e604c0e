//! One loaded zone: its nodes in canonical order, each with its RRsets, and the lookups the
//! answer path needs (exact node, empty non-terminal, closest encloser).

use crate::dns::name::Name;
use crate::dns::wire::rtype;
use crate::dns::zonefile::Record;
use std::collections::BTreeMap;
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::ops::Bound;

/// All records of one type at one owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RRset {
    /// Record type.
    pub rtype: u16,
    /// TTL (the last record's, as knotd does when a file disagrees with itself).
    pub ttl: u32,
    /// RDATA of each record, uncompressed wire format, without duplicates.
    pub rdatas: Vec<Box<[u8]>>,
}

/// The RRsets at one owner name, ordered by type.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Node {
    /// RRsets, sorted by type.
    pub rrsets: Vec<RRset>,
}

impl Node {
    /// The RRset of one type.
    pub fn get(&self, rtype: u16) -> Option<&RRset> {
        self.rrsets.iter().find(|r| r.rtype == rtype)
    }

    /// True when the node holds an RRset of this type.
    pub fn has(&self, rtype: u16) -> bool {
        self.get(rtype).is_some()
    }
}

/// A zone ready to answer from.
#[derive(Debug)]
pub struct Zone {
    origin: Name,
    nodes: BTreeMap<Name, Node>,
    serial: u32,
    negative_ttl: u32,
    digest: u64,
    records: usize,
}

/// A zone without its SOA record at the apex.
#[derive(Debug, Clone, thiserror::Error)]
#[error("zone {0} has no SOA record at its apex")]
pub struct MissingSoa(pub Name);

impl Zone {
    /// Builds a zone from parsed records (already checked by the zone-file parser).
    pub fn new(origin: Name, records: Vec<Record>) -> Result<Zone, MissingSoa> {
        // Owners in canonical order first (by a byte key: comparing names is the costly part
        // of loading a big zone), stable so that file order holds within an owner; the map
        // is then built from sorted nodes. The first spelling of an owner is kept.
        let mut keyed: Vec<(Vec<u8>, Record)> = records
            .into_iter()
            .map(|r| {
                let mut key = Vec::with_capacity(r.owner.wire().len() + 1);
                r.owner.canonical_key(&mut key);
                (key, r)
            })
            .collect();
        keyed.sort_by(|a, b| a.0.cmp(&b.0));
        let mut sorted: Vec<(Name, Node)> = Vec::new();
        let mut count = 0;
        let mut last_key: Option<Vec<u8>> = None;
        for (key, r) in keyed {
            if last_key.as_ref() != Some(&key) {
                sorted.push((r.owner, Node::default()));
                last_key = Some(key);
            }
            let node = &mut sorted.last_mut().expect("pushed above").1;
            let rdata = r.rdata.into_boxed_slice();
            match node.rrsets.binary_search_by_key(&r.rtype, |s| s.rtype) {
                Ok(i) => {
                    // Duplicates go after the sort (a scan per record here is quadratic
                    // in the size of the RRset).
                    let set = &mut node.rrsets[i];
                    set.ttl = r.ttl;
                    set.rdatas.push(rdata);
                }
                Err(i) => {
                    node.rrsets.insert(
                        i,
                        RRset {
                            rtype: r.rtype,
                            ttl: r.ttl,
                            rdatas: vec![rdata],
                        },
                    );
                }
            }
        }
        for (_, node) in &mut sorted {
            for set in &mut node.rrsets {
                dedup_in_order(&mut set.rdatas);
                count += set.rdatas.len();
            }
        }
        let nodes: BTreeMap<Name, Node> = sorted.into_iter().collect();
        let soa = nodes
            .get(&origin)
            .and_then(|n| n.get(rtype::SOA))
            .and_then(|s| s.rdatas.first().map(|rd| (s.ttl, rd)))
            .ok_or_else(|| MissingSoa(origin.clone()))?;
        let (serial, minimum) = soa_numbers(soa.1);
        let negative_ttl = soa.0.min(minimum);
        let mut zone = Zone {
            origin,
            nodes,
            serial,
            negative_ttl,
            digest: 0,
            records: count,
        };
        zone.digest = zone.content_digest();
        Ok(zone)
    }

    /// The zone's apex name.
    pub fn origin(&self) -> &Name {
        &self.origin
    }

    /// SOA serial.
    pub fn serial(&self) -> u32 {
        self.serial
    }

    /// Number of records.
    pub fn record_count(&self) -> usize {
        self.records
    }

    /// A hash of the whole content, to notice edits that forgot to bump the serial.
    pub fn digest(&self) -> u64 {
        self.digest
    }

    /// TTL for the SOA in negative answers: min(SOA TTL, SOA MINIMUM) (RFC 2308 §3).
    pub fn negative_ttl(&self) -> u32 {
        self.negative_ttl
    }

    /// The apex node.
    pub fn apex(&self) -> &Node {
        self.nodes.get(&self.origin).expect("apex holds the SOA")
    }

    /// The node at exactly this name.
    pub fn node(&self, name: &Name) -> Option<&Node> {
        self.nodes.get(name)
    }

    /// The node at exactly this name, with the owner name as the zone spells it.
    pub fn node_entry(&self, name: &Name) -> Option<(&Name, &Node)> {
        self.nodes.get_key_value(name)
    }

    /// All nodes in canonical order (for zone transfers).
    pub fn nodes(&self) -> impl Iterator<Item = (&Name, &Node)> {
        self.nodes.iter()
    }

    /// True when the name has no records but a descendant does (RFC 8020 empty
    /// non-terminal). In canonical order every descendant follows its ancestor directly.
    pub fn is_empty_nonterminal(&self, name: &Name) -> bool {
        self.nodes
            .range((Bound::Excluded(name), Bound::Unbounded))
            .next()
            .is_some_and(|(next, _)| next.is_subdomain_of(name))
    }

    /// True when the name exists in the zone (with records or as an empty non-terminal).
    pub fn exists(&self, name: &Name) -> bool {
        self.nodes.contains_key(name) || self.is_empty_nonterminal(name)
    }

    /// The wildcard node that answers for a name that does not exist (RFC 4592): the
    /// `*` child of the name's closest encloser, if there is one.
    pub fn wildcard_for(&self, name: &Name) -> Option<&Node> {
        let apex = self.origin.label_count();
        let encloser = (apex..name.label_count())
            .rev()
            .map(|k| name.suffix(k))
            .find(|a| self.exists(a))?;
        self.nodes.get(&encloser.prepend(b"*").ok()?)
    }

    fn content_digest(&self) -> u64 {
        let mut h = DefaultHasher::new();
        for (name, node) in &self.nodes {
            name.wire().hash(&mut h);
            node.hash_into(&mut h);
        }
        h.finish()
    }
}

impl Node {
    fn hash_into(&self, h: &mut DefaultHasher) {
        for set in &self.rrsets {
            (set.rtype, set.ttl).hash(h);
            let mut rd: Vec<&Box<[u8]>> = set.rdatas.iter().collect();
            rd.sort();
            rd.hash(h);
        }
    }
}

/// Serial and MINIMUM from SOA RDATA (two names, then five 32-bit numbers).
fn soa_numbers(rdata: &[u8]) -> (u32, u32) {
    let n = rdata.len();
    if n < 20 {
        return (0, 0);
    }
    let word =
        |at: usize| u32::from_be_bytes([rdata[at], rdata[at + 1], rdata[at + 2], rdata[at + 3]]);
    (word(n - 20), word(n - 4))
}

/// Drops repeated RDATA, keeping the first of each in file order.
fn dedup_in_order(rdatas: &mut Vec<Box<[u8]>>) {
    let keep: Vec<bool> = match rdatas.len() {
        0 | 1 => return,
        // Few: compare with those before (no hashing).
        2..=8 => (0..rdatas.len())
            .map(|i| !rdatas[..i].contains(&rdatas[i]))
            .collect(),
        n => {
            let mut seen = std::collections::HashSet::with_capacity(n);
            rdatas.iter().map(|rd| seen.insert(&rd[..])).collect()
        }
    };
    let mut k = keep.into_iter();
    rdatas.retain(|_| k.next().unwrap_or(true));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::zonefile::parse_zone_text;
    use std::path::Path;

    pub(crate) fn zone(text: &str) -> Zone {
        let origin = Name::parse("example.", None).unwrap();
        let records = parse_zone_text(text, Path::new("test.zone"), &origin).unwrap();
        Zone::new(origin, records).unwrap()
    }

    const TEXT: &str = "$TTL 300\n@ SOA ns1 host 7 3600 600 86400 60\n@ NS ns1\nns1 A 192.0.2.1\na.b.c A 192.0.2.2\n";

    #[test]
    fn serial_negative_ttl_and_ents() {
        let z = zone(TEXT);
        assert_eq!(z.serial(), 7);
        assert_eq!(z.negative_ttl(), 60);
        let n = |s: &str| Name::parse(s, None).unwrap();
        assert!(z.is_empty_nonterminal(&n("b.c.example.")));
        assert!(z.is_empty_nonterminal(&n("C.example.")));
        assert!(!z.is_empty_nonterminal(&n("a.b.c.example.")));
        assert!(!z.exists(&n("d.example.")));
        assert!(z.exists(&n("NS1.example.")));
    }

    #[test]
    fn digest_changes_with_content_only() {
        let a = zone(TEXT);
        let b = zone(&TEXT.replace("a.b.c A", "a.b.c  IN A"));
        let c = zone(&TEXT.replace("192.0.2.2", "192.0.2.3"));
        assert_eq!(a.digest(), b.digest());
        assert_ne!(a.digest(), c.digest());
    }
}
