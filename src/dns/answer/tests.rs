use super::*;
use crate::dns::zonefile::{parse_zone_text, rdata_to_text, type_to_string};
use std::path::Path;

const ZONE: &str = "$TTL 300
@ SOA ns1 host 1 3600 600 86400 60
@ NS ns1
ns1 A 192.0.2.1
www A 192.0.2.2
loop1 CNAME loop2
loop2 CNAME loop1
out CNAME www.elsewhere.
chain CNAME alias
alias CNAME www
a.b.ent A 192.0.2.3
*.wild MX 10 www
old DNAME new
www.new A 192.0.2.4
x.new A 192.0.2.5
cut NS ns.cut
cut DS 1 8 2 abcd
ns.cut A 192.0.2.6
mx MX 10 www
";

fn zone() -> Zone {
    let origin = Name::parse("example.", None).unwrap();
    Zone::new(
        origin.clone(),
        parse_zone_text(ZONE, Path::new("t.zone"), &origin).unwrap(),
    )
    .unwrap()
}

fn show(rrs: &[Rr<'_>]) -> Vec<String> {
    rrs.iter()
        .map(|r| {
            format!(
                "{} {} {}",
                r.owner,
                type_to_string(r.rtype),
                rdata_to_text(r.rtype, &r.rdata)
            )
        })
        .collect()
}

fn ask(q: &str, t: u16) -> (u16, bool, Vec<String>, Vec<String>, Vec<String>) {
    let z = zone();
    let a = answer(&z, &Name::parse(q, None).unwrap(), t, AnyPolicy::Full, None);
    (
        a.rcode,
        a.authoritative,
        show(&a.answer),
        show(&a.authority),
        show(&a.additional),
    )
}

#[test]
fn cname_chain_is_followed_inside_the_zone() {
    let (rc, aa, an, au, _) = ask("chain.example.", rtype::A);
    assert_eq!((rc, aa), (rcode::NOERROR, true));
    assert_eq!(
        an,
        [
            "chain.example. CNAME alias.example.",
            "alias.example. CNAME www.example.",
            "www.example. A 192.0.2.2"
        ]
    );
    assert!(au.is_empty());
}

#[test]
fn cname_loops_and_out_of_zone_targets_stop() {
    let (rc, _, an, _, _) = ask("loop1.example.", rtype::A);
    assert_eq!(rc, rcode::NOERROR);
    assert_eq!(an.len(), 2);
    let (_, _, an, au, _) = ask("out.example.", rtype::A);
    assert_eq!(an, ["out.example. CNAME www.elsewhere."]);
    assert!(au.is_empty());
}

#[test]
fn empty_non_terminal_is_nodata_not_nxdomain() {
    let (rc, _, an, au, _) = ask("b.ent.example.", rtype::A);
    assert_eq!(rc, rcode::NOERROR);
    assert!(an.is_empty());
    assert_eq!(
        au,
        ["example. SOA ns1.example. host.example. 1 3600 600 86400 60"]
    );
}

#[test]
fn wildcard_synthesis_and_wildcard_nodata() {
    let (rc, _, an, _, add) = ask("q.wild.example.", rtype::MX);
    assert_eq!(rc, rcode::NOERROR);
    assert_eq!(an, ["q.wild.example. MX 10 www.example."]);
    assert_eq!(add, ["www.example. A 192.0.2.2"]);
    let (rc, _, an, au, _) = ask("q.wild.example.", rtype::A);
    assert_eq!((rc, an.len(), au.len()), (rcode::NOERROR, 0, 1));
    // The wildcard does not answer for names below an existing name.
    let (rc, ..) = ask("q.www.example.", rtype::A);
    assert_eq!(rc, rcode::NXDOMAIN);
}

#[test]
fn dname_synthesizes_a_cname() {
    let (rc, _, an, _, _) = ask("www.old.example.", rtype::A);
    assert_eq!(rc, rcode::NOERROR);
    assert_eq!(
        an,
        [
            "old.example. DNAME new.example.",
            "www.old.example. CNAME www.new.example.",
            "www.new.example. A 192.0.2.4"
        ]
    );
    let (_, _, an, _, _) = ask("old.example.", rtype::DNAME);
    assert_eq!(an, ["old.example. DNAME new.example."]);
}

#[test]
fn referral_with_glue_and_ds_at_the_parent() {
    let (rc, aa, an, au, add) = ask("host.cut.example.", rtype::A);
    assert_eq!((rc, aa), (rcode::NOERROR, false));
    assert!(an.is_empty());
    assert_eq!(au, ["cut.example. NS ns.cut.example."]);
    assert_eq!(add, ["ns.cut.example. A 192.0.2.6"]);
    let (rc, aa, an, ..) = ask("cut.example.", rtype::DS);
    assert_eq!((rc, aa), (rcode::NOERROR, true));
    assert_eq!(an.len(), 1);
}

#[test]
fn any_minimal_returns_one_rrset() {
    let z = zone();
    let apex = Name::parse("example.", None).unwrap();
    let full = answer(&z, &apex, rtype::ANY, AnyPolicy::Full, None);
    let min = answer(&z, &apex, rtype::ANY, AnyPolicy::Minimal, None);
    assert_eq!(full.answer.len(), 2);
    assert_eq!(show(&min.answer), ["example. NS ns1.example."]);
}
