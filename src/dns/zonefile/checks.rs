//! Zone-level semantic checks run after parsing (modelled on knotd's semantic checks).
//!
//! - exactly one SOA, at the apex; SOA elsewhere is an error;
//! - CNAME may only coexist with RRSIG/NSEC, and only one CNAME per owner;
//! - one DNAME per owner, no NS beside a non-apex DNAME, nothing below a DNAME;
//! - identical duplicate records are merged silently (RFC 2181 §5);
//! - TTLs within an RRset are set to the TTL of the RRset's last record in file order (knotd
//!   does the same, with a "TTL mismatch" notice).

use std::path::Path;

use super::{Record, ZoneFileError};
use crate::dns::name::Name;

use crate::dns::wire::rtype::{CNAME, DNAME, NS, NSEC, RRSIG, SOA};

/// Runs the checks, merging duplicates and fixing RRset TTLs in place.
pub(crate) fn check_zone(
    records: &mut Vec<Record>,
    zone: &Name,
    path: &Path,
) -> Result<(), ZoneFileError> {
    let keys: Vec<Vec<u8>> = records.iter().map(|r| owner_key(&r.owner)).collect();
    let mut order: Vec<usize> = (0..records.len()).collect();
    order.sort_unstable_by(|&a, &b| {
        (&keys[a], records[a].rtype, &records[a].rdata, a).cmp(&(
            &keys[b],
            records[b].rtype,
            &records[b].rdata,
            b,
        ))
    });
    let mut keep = vec![true; records.len()];
    merge_duplicates(records, &keys, &order, &mut keep);
    let mut errors: Vec<(usize, String)> = Vec::new();
    let apex = owner_key(zone);
    let mut dname_key: Option<&[u8]> = None;
    let mut start = 0;
    while start < order.len() {
        let key = &keys[order[start]];
        let end = start
            + order[start..]
                .iter()
                .take_while(|&&i| keys[i] == *key)
                .count();
        let group: Vec<usize> = order[start..end]
            .iter()
            .copied()
            .filter(|&i| keep[i])
            .collect();
        if dname_key.is_some_and(|d| key.starts_with(d) && key.len() > d.len()) {
            errors.push((group[0], "record below a DNAME".into()));
        } else {
            dname_key = None;
        }
        check_node(records, &group, *key == apex, &mut errors);
        if group.iter().any(|&i| records[i].rtype == DNAME) && dname_key.is_none() {
            dname_key = Some(key);
        }
        start = end;
    }
    check_soa(records, &keys, &apex, &keep, &mut errors);
    if let Some((i, msg)) = errors.into_iter().min_by_key(|e| e.0) {
        let src = &records[i].source;
        return Err(ZoneFileError {
            file: src.file.to_path_buf(),
            line: src.line,
            message: msg,
        });
    }
    if !keep.iter().any(|&k| k) {
        return Err(ZoneFileError {
            file: path.to_path_buf(),
            line: 1,
            message: "zone has no records".into(),
        });
    }
    let mut flags = keep.into_iter();
    records.retain(|_| flags.next().unwrap_or(false));
    Ok(())
}

/// Reversed, lowercased, length-prefixed labels: names below X share X's key as a prefix.
fn owner_key(name: &Name) -> Vec<u8> {
    let labels: Vec<&[u8]> = name.labels().collect();
    let mut key = Vec::with_capacity(name.wire().len());
    for label in labels.iter().rev() {
        key.push(label.len() as u8);
        key.extend(label.iter().map(u8::to_ascii_lowercase));
    }
    key
}

/// Marks exact duplicates (same owner, type and RDATA) for removal and unifies RRset TTLs.
fn merge_duplicates(records: &mut [Record], keys: &[Vec<u8>], order: &[usize], keep: &mut [bool]) {
    let mut start = 0;
    while start < order.len() {
        let first = order[start];
        let same_set =
            |&&i: &&usize| keys[i] == keys[first] && records[i].rtype == records[first].rtype;
        let end = start + order[start..].iter().take_while(same_set).count();
        let set = &order[start..end];
        for w in set.windows(2) {
            if records[w[0]].rdata == records[w[1]].rdata {
                keep[w[1]] = false;
            }
        }
        if records[first].rtype != RRSIG {
            let latest = *set.iter().max().unwrap_or(&first);
            let ttl = records[latest].ttl;
            set.iter().for_each(|&i| records[i].ttl = ttl);
        }
        start = end;
    }
}

fn check_node(
    records: &[Record],
    group: &[usize],
    at_apex: bool,
    errors: &mut Vec<(usize, String)>,
) {
    let of_type = |t: u16| {
        group
            .iter()
            .copied()
            .filter(move |&i| records[i].rtype == t)
    };
    let later = |a: usize, b: usize| a.max(b);
    let cnames: Vec<usize> = of_type(CNAME).collect();
    if cnames.len() > 1 {
        errors.push((
            later(cnames[0], cnames[1]),
            "multiple CNAME records at the same name".into(),
        ));
    }
    if let Some(&c) = cnames.first() {
        let other = group
            .iter()
            .copied()
            .find(|&i| !matches!(records[i].rtype, CNAME | RRSIG | NSEC));
        if let Some(o) = other {
            errors.push((later(c, o), "CNAME and other data at the same name".into()));
        }
    }
    let dnames: Vec<usize> = of_type(DNAME).collect();
    if dnames.len() > 1 {
        errors.push((
            later(dnames[0], dnames[1]),
            "multiple DNAME records at the same name".into(),
        ));
    }
    if let (Some(&d), Some(n), false) = (dnames.first(), of_type(NS).next(), at_apex) {
        errors.push((later(d, n), "NS record beside a DNAME".into()));
    }
    if let (false, Some(s)) = (at_apex, of_type(SOA).next()) {
        errors.push((s, "SOA record outside the zone apex".into()));
    }
}

fn check_soa(
    records: &[Record],
    keys: &[Vec<u8>],
    apex: &[u8],
    keep: &[bool],
    errors: &mut Vec<(usize, String)>,
) {
    let soas: Vec<usize> = (0..records.len())
        .filter(|&i| keep[i] && records[i].rtype == SOA && keys[i] == apex)
        .collect();
    match soas.as_slice() {
        [] => {
            let first = (0..records.len()).find(|&i| keep[i]);
            if let Some(i) = first {
                errors.push((i, "missing SOA record at the zone apex".into()));
            }
        }
        [_] => {}
        [_, second, ..] => errors.push((*second, "multiple SOA records at the zone apex".into())),
    }
}
