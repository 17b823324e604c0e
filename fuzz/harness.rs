//! What each fuzz target does with one input, shared by the `cargo fuzz` targets in
//! `fuzz/fuzz_targets/` and by `tests/fuzz_corpus.rs`, which replays the corpus and the
//! crash reproducers on stable. A bug shows as a panic.
//!
//! - [`dns_query`]: bytes -> `dns::respond::respond` (the function the UDP and TCP sockets
//!   call) over a fixed catalog of two zones with pool bindings; every reply must be a
//!   well-formed DNS message that fits its transport, and a UDP worker's kept reply
//!   (`dns::prepared`) must be the same bytes as a fresh one.
//! - [`zone_file`]: bytes -> the zone-file parser and checks; a zone that loads must print
//!   and parse back to the same records, and answer queries for its names.
//! - [`config`]: bytes -> the configuration loader and validation; a configuration that
//!   validates must build its pool snapshot and answer every binding.
//! - [`http_heads`]: bytes -> the balancer's direct-path head parsers and chunk scanner: a
//!   request head it takes is written for a target as a head it takes again (unless the
//!   balancer's headers take it past 100), with the same method and target; a response head it reads is written for the client with the same
//!   status and framing; a chunked body ends at the same byte however it is cut.

#![allow(dead_code)]

use arc_swap::ArcSwap;
use roundhouse::config::Config;
use roundhouse::dns::catalog::Catalog;
use roundhouse::dns::name::Name;
use roundhouse::dns::prepared::Prepared;
use roundhouse::dns::respond::{Outcome, Transport, respond, udp_limit};
use roundhouse::dns::server::{DnsState, Settings};
use roundhouse::dns::wire::{Decoded, decode, flag, read_name, rtype};
use roundhouse::dns::zone::Zone;
use roundhouse::dns::zonefile::{Record, parse_zone_bytes, parse_zone_text, rdata_to_text};
use roundhouse::health::HealthTable;
use roundhouse::pool::{PoolView, Pools};
use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};

/// Where fuzzed zone text claims to come from: a directory that does not exist, so relative
/// `$INCLUDE`s fail fast.
const ZONE_PATH: &str = "/nonexistent/roundhouse-fuzz/fuzz.zone";

/// A second zone next to the built-in example: delegation, DNAME, wildcards, a CNAME chain
/// and large RRsets (truncation).
const FUZZ_ZONE: &str = r#"$ORIGIN fuzz.test.
$TTL 300
@        SOA   ns1 hostmaster 7 3600 600 86400 60
@        NS    ns1
@        NS    ns2.other.test.
ns1      A     192.0.2.53
ns1      AAAA  2001:db8::53
child    NS    ns.child
ns.child A     192.0.2.54
old      DNAME example.test.
*        TXT   "wildcard"
*.w      CNAME a
a        CNAME b
b        CNAME c
c        CNAME d
d        CNAME e
e        CNAME f
f        A     192.0.2.9
big      TXT   "0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789"
big      TXT   "abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghij"
big      TXT   "ABCDEFGHIJABCDEFGHIJABCDEFGHIJABCDEFGHIJABCDEFGHIJABCDEFGHIJABCDEFGHIJABCDEFGHIJABCDEFGHIJABCDEFGHIJABCDEFGHIJABCDEFGHIJABCDEFGHIJABCDEFGHIJABCDEFGHIJABCDEFGHIJABCDEFGHIJABCDEFGHIJABCDEFGHIJABCDEFGHIJABCDEFGHIJABCDEFGHIJABCDEFGHIJABCDEFGHIJABCDEFGHIJ"
mx       MX    10 mail.fuzz.test.
mx       MX    20 mail.example.test.
mail     A     192.0.2.25
srv      SRV   0 0 80 pool
pool     CNAME www.example.test.
"#;

/// Pools bound to names of both zones: one with health checks (nothing is probed here, so
/// it fails open), one without (always ready), per-client steering for ECS queries.
const FUZZ_CONFIG: &str = r#"
[dns]
listen = ["127.0.0.1:0"]

[[region]]
name = "us-east"
coordinates = [39.0, -77.5]
continent = "NA"
countries = ["US"]
networks = ["192.0.2.0/25"]

[[region]]
name = "eu-west"
coordinates = [53.3, -6.3]
continent = "EU"

[[latency]]
prefix = "198.51.100.0/24"
region = "eu-west"
rtt_ms = 18.0

[health_check.web]
protocol = "http"
port = 8080

[pool.web]
health_check = "web"
steering = "proximity"
endpoints = [
  { address = "192.0.2.1", region = "us-east" },
  { address = "192.0.2.2", region = "eu-west" },
  { address = "2001:db8::1", region = "us-east" },
]

[pool.plain]
policy = "weighted"
steering = "latency"
affinity = true
endpoints = [
  { address = "192.0.2.11", region = "us-east", weight = 3 },
  { address = "192.0.2.12", region = "eu-west", weight = 0 },
  { address = "2001:db8::11", region = "eu-west" },
]

[pool.tiers]
policy = "failover"
steering = "ordered"
dials = { us-east = 50, eu-west = 100 }
endpoints = [
  { address = "192.0.2.21", region = "us-east", priority = 1, state = "down" },
  { address = "192.0.2.22", region = "eu-west", priority = 2 },
]

[[binding]]
name = "www.example.test."
type = "A"
pool = "web"
adaptive_ttl = true

[[binding]]
name = "rr.example.test."
pool = "plain"
answers = 2

[[binding]]
name = "e.fuzz.test."
pool = "tiers"
when_all_down = "servfail"
"#;

struct Fixture {
    catalog: Catalog,
    pools: Pools,
    health: HealthTable,
    /// Two servers built alike: one answers every query afresh, the other through the
    /// replies a UDP worker keeps.
    fresh: DnsState,
    kept: DnsState,
    prepared: Mutex<Prepared>,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let mut catalog = Catalog::new();
        let (origin, text) = roundhouse::config::EMBEDDED_ZONE;
        for (origin, text) in [(origin, text), ("fuzz.test.", FUZZ_ZONE)] {
            let origin = Name::parse(origin, None).expect("fixture origin");
            let records = parse_zone_text(text, Path::new("fixture.zone"), &origin)
                .unwrap_or_else(|e| panic!("fixture zone: {e}"));
            let zone = Zone::new(origin, records).expect("fixture zone has a SOA");
            catalog.insert(Arc::new(zone));
        }
        let config = Config::parse(FUZZ_CONFIG, Path::new("fuzz.toml"), Path::new("."))
            .unwrap_or_else(|e| panic!("fixture config: {e}"));
        let server = || {
            let health = Arc::new(ArcSwap::from_pointee(HealthTable::default()));
            let pools = Pools::new(config.pools.clone());
            DnsState::new(catalog.clone(), Settings::default(), pools, health)
        };
        Fixture {
            fresh: server(),
            kept: server(),
            prepared: Mutex::new(Prepared::new()),
            catalog,
            pools: Pools::new(config.pools),
            health: HealthTable::default(),
        }
    })
}

fn view<'a>(pools: &'a Pools, health: &'a HealthTable) -> PoolView<'a> {
    PoolView {
        pools,
        health,
        geo: None,
        measured: None,
        now: tokio::time::Instant::now(),
        client: None,
        memo: None,
    }
}

/// The query target: one message through the server's answer path over UDP and over TCP.
pub fn dns_query(data: &[u8]) {
    let f = fixture();
    let peer = Some(IpAddr::from([198, 51, 100, 7]));
    for transport in [Transport::Udp, Transport::Tcp] {
        let v = view(&f.pools, &f.health);
        match respond(&f.catalog, Some(v), data, transport, peer) {
            Outcome::Drop => assert!(
                data.len() < 12 || data[2] & 0x80 != 0,
                "only short messages and responses are dropped"
            ),
            Outcome::Reply(reply) => check_reply(data, &reply, transport),
            Outcome::Transfer(req) => {
                assert_eq!(transport, Transport::Tcp, "transfers only over TCP");
                let q = req.question.expect("a transfer has a question");
                assert!(q.qtype == rtype::AXFR || q.qtype == rtype::IXFR);
            }
        }
    }
    kept_replies(f, data);
}

/// A kept reply is the reply: the message and the same one with another ID, through a
/// server that answers afresh and one that keeps replies (the second sight is a hit).
fn kept_replies(f: &Fixture, data: &[u8]) {
    let peer = SocketAddr::from(([198, 51, 100, 7], 5300));
    let mut prepared = f.prepared.lock().unwrap_or_else(|p| p.into_inner());
    let mut msg = data.to_vec();
    for round in 0..2u8 {
        if let Some(id) = msg.get_mut(1) {
            *id = id.wrapping_add(round);
        }
        let fresh = f.fresh.respond(&msg, Transport::Udp, peer);
        let kept = prepared.respond(&f.kept, &f.kept.snapshots(), &msg, peer);
        match (fresh, kept) {
            (Outcome::Reply(a), Outcome::Reply(b)) => assert_eq!(a, b, "kept reply differs"),
            (Outcome::Drop, Outcome::Drop) => {}
            (a, b) => panic!("fresh {a:?}, kept {b:?}"),
        }
    }
}

/// The zone-file target.
pub fn zone_file(data: &[u8]) {
    let origin = Name::parse("example.test.", None).expect("origin");
    let records = match parse_zone_bytes(data, Path::new(ZONE_PATH), &origin) {
        Ok(r) => r,
        Err(e) => {
            // Every rejection names a file and a line.
            let text = e.to_string();
            assert!(text.contains(':'), "error without file:line: {text}");
            return;
        }
    };
    for r in &records {
        assert!(
            r.owner.is_subdomain_of(&origin),
            "out-of-zone record kept: {}",
            r.owner
        );
        assert!(r.rdata.len() <= 65535, "RDATA longer than 65535 bytes");
    }
    round_trip(&records, &origin);
    let Ok(zone) = Zone::new(origin, records.clone()) else {
        return;
    };
    let mut catalog = Catalog::new();
    catalog.insert(Arc::new(zone));
    let names: BTreeSet<&Name> = records.iter().map(|r| &r.owner).take(16).collect();
    let types: BTreeSet<u16> = records.iter().map(|r| r.rtype).take(8).collect();
    let mut id = 0u16;
    for name in names {
        for &qtype in types.iter().chain(&[rtype::A, rtype::ANY, rtype::MX]) {
            id = id.wrapping_add(1);
            let msg = query(id, name, qtype, true);
            for transport in [Transport::Udp, Transport::Tcp] {
                if let Outcome::Reply(reply) = respond(&catalog, None, &msg, transport, None) {
                    check_reply(&msg, &reply, transport);
                }
            }
        }
    }
}

/// A loaded zone printed in presentation format parses back to the same records.
fn round_trip(records: &[Record], origin: &Name) {
    let mut text = String::new();
    for r in records {
        let t = roundhouse::dns::zonefile::type_to_string(r.rtype);
        let rd = rdata_to_text(r.rtype, &r.rdata);
        text.push_str(&format!("{} {} IN {t} {rd}\n", r.owner, r.ttl));
    }
    let back = parse_zone_text(&text, Path::new("printed.zone"), origin)
        .unwrap_or_else(|e| panic!("printed zone does not parse: {e}\n{text}"));
    let key = |r: &Record| (r.owner.clone(), r.rtype, r.ttl, r.rdata.clone());
    let a: Vec<_> = records.iter().map(key).collect();
    let b: Vec<_> = back.iter().map(key).collect();
    assert_eq!(a, b, "records changed after printing and parsing:\n{text}");
}

/// The configuration target.
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let cfg = match Config::parse(text, Path::new("fuzz.toml"), Path::new("/nonexistent")) {
        Ok(c) => c,
        Err(e) => {
            let msg = e.to_string();
            assert!(msg.starts_with("fuzz.toml:"), "error without file: {msg}");
            assert!(
                e.line <= text.lines().count() + 1,
                "error line {} beyond the text: {msg}",
                e.line
            );
            return;
        }
    };
    let catalog = &fixture().catalog;
    let _ = roundhouse::pool::binding_problems(&cfg, catalog);
    let pools = Pools::new(cfg.pools.clone());
    let _ = pools.probe_keys();
    let health = HealthTable::default();
    for client in [None, Some(IpAddr::from([192, 0, 2, 1]))] {
        for b in &cfg.pools.bindings {
            for &t in &b.rtypes {
                let mut v = view(&pools, &health);
                v.client = client.map(roundhouse::steering::Client::from_source);
                assert!(
                    pools.answer(&b.name, t, &v).is_some(),
                    "bound name {} not answered by its pool",
                    b.name
                );
            }
        }
    }
}

/// A query message for `name`/`qtype`, with an EDNS OPT record when `edns`.
pub fn query(id: u16, name: &Name, qtype: u16, edns: bool) -> Vec<u8> {
    let mut m = Vec::with_capacity(64);
    m.extend_from_slice(&id.to_be_bytes());
    m.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0, u8::from(edns)]);
    m.extend_from_slice(name.wire());
    m.extend_from_slice(&qtype.to_be_bytes());
    m.extend_from_slice(&1u16.to_be_bytes());
    if edns {
        m.extend_from_slice(&[0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0]);
    }
    m
}

fn u16_at(m: &[u8], p: usize) -> usize {
    usize::from(u16::from_be_bytes([m[p], m[p + 1]]))
}

/// A reply must echo the ID and opcode, set QR, fit the transport's size limit and be a
/// well-formed message: every name readable, every RDATA inside the message, names inside
/// RDATA readable and inside it, at most one OPT (owner root, additional section), nothing
/// after the last record.
pub fn check_reply(query: &[u8], reply: &[u8], transport: Transport) {
    assert!(reply.len() >= 12, "reply shorter than a header");
    assert_eq!(reply[..2], query[..2], "reply ID differs from the query's");
    let flags = u16_at(reply, 2) as u16;
    let qflags = u16_at(query, 2) as u16;
    assert!(flags & flag::QR != 0, "reply without QR");
    assert_eq!(flags & 0x7800, qflags & 0x7800, "opcode not echoed");
    let limit = match transport {
        Transport::Tcp => 65535,
        Transport::Udp => match decode(query) {
            Decoded::Request(r) => udp_limit(r.edns.as_ref()),
            Decoded::FormErr { edns, .. } => udp_limit(edns.as_ref()),
            Decoded::Drop => panic!("a reply to a message the decoder drops"),
        },
    };
    assert!(
        reply.len() <= limit,
        "reply of {} bytes over the {limit}-byte limit",
        reply.len()
    );
    let counts = [4, 6, 8, 10].map(|p| u16_at(reply, p));
    assert!(counts[0] <= 1, "more than one question");
    let mut pos = 12;
    if counts[0] == 1 {
        let (name, p) = read_name(reply, pos).expect("question name");
        assert!(p + 4 <= reply.len(), "question cut short");
        if let Some(q) = question_of(query) {
            assert_eq!(q.wire(), name.wire(), "question not echoed as sent");
        }
        pos = p + 4;
    }
    let mut opts = 0;
    for i in 0..counts[1] + counts[2] + counts[3] {
        let (owner, p) = read_name(reply, pos).expect("record owner name");
        assert!(p + 10 <= reply.len(), "record header cut short");
        let t = u16_at(reply, p) as u16;
        let rdlen = u16_at(reply, p + 8);
        let start = p + 10;
        let end = start + rdlen;
        assert!(end <= reply.len(), "RDATA beyond the message");
        if t == rtype::OPT {
            opts += 1;
            assert!(owner.is_root(), "OPT owner is not the root");
            assert!(
                i >= counts[1] + counts[2],
                "OPT outside the additional section"
            );
        }
        check_rdata_names(reply, t, start, end);
        pos = end;
    }
    assert!(opts <= 1, "more than one OPT record");
    assert_eq!(pos, reply.len(), "bytes after the last record");
}

/// The question name of a query that decodes, as the client sent it.
fn question_of(query: &[u8]) -> Option<Name> {
    match decode(query) {
        Decoded::Request(r) => r.question.map(|q| q.name),
        Decoded::FormErr { question, .. } => question.map(|q| q.name),
        Decoded::Drop => None,
    }
}

/// Names the writer may compress inside RDATA must read back and end inside the RDATA.
fn check_rdata_names(m: &[u8], t: u16, start: usize, end: usize) {
    let name_at = |p: usize| {
        let (_, after) = read_name(m, p).expect("name inside RDATA");
        assert!(after <= end, "name runs past its RDATA");
        after
    };
    match t {
        2 | 3 | 4 | 5 | 7 | 8 | 9 | 12 | 39 => assert_eq!(name_at(start), end, "RDATA length"),
        6 => assert_eq!(name_at(name_at(start)) + 20, end, "SOA RDATA length"),
        15 => assert_eq!(name_at(start + 2), end, "MX RDATA length"),
        _ => {}
    }
}

pub fn http_heads(data: &[u8]) {
    use roundhouse::balancer::h1::chunks::Chunks;
    use roundhouse::balancer::h1::head::{self, Parsed};
    let mut buf = bytes::BytesMut::from(data);
    if let Parsed::Simple(h) = head::parse_request(&mut buf, 8192) {
        let _ = h.header_map();
        let mut out = Vec::new();
        h.write_upstream(&mut out, "192.0.2.1", &head::forwarded("http", 80));
        // The balancer's own headers may take a full head past what a parser takes.
        let lines = out.windows(2).filter(|w| w == b"\r\n").count();
        if lines - 2 > head::MAX_HEADERS {
            return;
        }
        let mut again = bytes::BytesMut::from(&out[..]);
        match head::parse_request(&mut again, 8192) {
            Parsed::Simple(h2) => {
                assert_eq!((h2.method(), h2.target()), (h.method(), h.target()));
                assert!(again.is_empty(), "the rewritten head is one whole head");
            }
            other => panic!(
                "the rewritten head {:?} reads as {other:?}",
                String::from_utf8_lossy(&out)
            ),
        }
    }
    for method in ["GET", "HEAD"] {
        if let Ok(Some(r)) = head::parse_response(data, method) {
            let mut out = Vec::new();
            r.write_client(data, &mut out, b"", false);
            let again = head::parse_response(&out, method)
                .expect("the rewritten response head parses")
                .expect("the rewritten response head is complete");
            assert_eq!(
                (again.status, again.len, again.framing),
                (r.status, out.len(), r.framing)
            );
        }
    }
    let whole = Chunks::default().feed(data);
    let mut c = Chunks::default();
    let mut at = 0;
    let mut cut = Ok(None);
    for piece in data.chunks(7) {
        match c.feed(piece) {
            Ok(None) => at += piece.len(),
            Ok(Some(n)) => {
                cut = Ok(Some(at + n));
                break;
            }
            Err(e) => {
                cut = Err(e);
                break;
            }
        }
    }
    assert_eq!(
        whole, cut,
        "a chunked body ends where it ends, however it is cut"
    );
}
