//! Kept replies against the full path: two servers built alike get the same queries, one
//! answering each afresh, the other through [`Prepared`]; every reply must be the same
//! bytes and the pools must have counted the same answers.

use super::*;
use crate::config::Config;
use crate::dns::catalog::Catalog;
use crate::dns::name::Name;
use crate::dns::server::Settings;
use crate::dns::zone::Zone;
use crate::dns::zonefile::parse_zone_text;
use crate::health::HealthTable;
use crate::pool::Pools;
use arc_swap::ArcSwap;
use std::path::Path;
use std::sync::Arc;

const ZONE: &str = "$TTL 300
@       SOA   ns hostmaster 7 7200 3600 1209600 300
@       NS    ns
ns      A     192.0.2.53
static  A     192.0.2.1
static  A     192.0.2.2
static  AAAA  2001:db8::1
mail    MX    10 mx
mx      A     192.0.2.25
alias   CNAME web
again   CNAME alias
lots    CNAME many
*.wild  TXT   \"wildcard\"
sub     NS    ns.sub
ns.sub  A     192.0.2.54
big     TXT   \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\" \"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\" \"cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc\"
";

/// Every kind of pool answer: ready endpoints (rotated, weighted, steered by the client's
/// latency or by configured networks, whose ranking a kept query keeps),
/// some ready (the rest unprobed), none ready with each `when_all_down`, more addresses
/// than a 512-byte reply holds, and an IPv4-only pool asked for AAAA.
const CONFIG: &str = r#"
[dns]
listen = ["127.0.0.1:0"]

[[region]]
name = "us-east"
continent = "NA"
networks = ["192.0.2.0/25"]

[[region]]
name = "eu-west"
continent = "EU"

[[region]]
name = "ap-south"
networks = ["198.51.100.0/24"]

[[latency]]
prefix = "198.51.100.0/24"
region = "eu-west"
rtt_ms = 18.0

[health_check.web]
protocol = "http"
port = 8080

[pool.web]
health_check = "web"
endpoints = [
  { address = "192.0.2.1", region = "us-east", state = "up" },
  { address = "192.0.2.2", region = "eu-west" },
  { address = "2001:db8::1", region = "us-east" },
]

[pool.plain]
policy = "weighted"
steering = "latency"
affinity = true
endpoints = [
  { address = "192.0.2.11", region = "us-east", weight = 3 },
  { address = "192.0.2.12", region = "eu-west", weight = 1 },
  { address = "192.0.2.13", region = "eu-west", weight = 2 },
  { address = "2001:db8::11", region = "eu-west" },
]

[pool.rotate]
endpoints = [
  { address = "192.0.2.31", region = "us-east" }, { address = "192.0.2.32", region = "us-east" }, { address = "192.0.2.33", region = "us-east" },
  { address = "2001:db8::31", region = "us-east" }, { address = "2001:db8::32", region = "us-east" },
]

[pool.steered]
steering = "geo"
endpoints = [
  { address = "192.0.2.51", region = "us-east" },
  { address = "192.0.2.52", region = "eu-west" },
  { address = "192.0.2.53", region = "ap-south" },
]

[pool.dark]
health_check = "web"
endpoints = [{ address = "192.0.2.41", region = "us-east" }, { address = "192.0.2.42", region = "us-east" }]

[pool.many]
endpoints = [
  { address = "10.0.0.1", region = "us-east" }, { address = "10.0.0.2", region = "us-east" }, { address = "10.0.0.3", region = "us-east" }, { address = "10.0.0.4", region = "us-east" },
  { address = "10.0.0.5", region = "us-east" }, { address = "10.0.0.6", region = "us-east" }, { address = "10.0.0.7", region = "us-east" }, { address = "10.0.0.8", region = "us-east" },
  { address = "10.0.0.9", region = "us-east" }, { address = "10.0.0.10", region = "us-east" }, { address = "10.0.0.11", region = "us-east" }, { address = "10.0.0.12", region = "us-east" },
  { address = "10.0.0.13", region = "us-east" }, { address = "10.0.0.14", region = "us-east" }, { address = "10.0.0.15", region = "us-east" }, { address = "10.0.0.16", region = "us-east" },
  { address = "10.0.0.17", region = "us-east" }, { address = "10.0.0.18", region = "us-east" }, { address = "10.0.0.19", region = "us-east" }, { address = "10.0.0.20", region = "us-east" },
  { address = "10.0.0.21", region = "us-east" }, { address = "10.0.0.22", region = "us-east" }, { address = "10.0.0.23", region = "us-east" }, { address = "10.0.0.24", region = "us-east" },
  { address = "10.0.0.25", region = "us-east" }, { address = "10.0.0.26", region = "us-east" }, { address = "10.0.0.27", region = "us-east" }, { address = "10.0.0.28", region = "us-east" },
  { address = "10.0.0.29", region = "us-east" }, { address = "10.0.0.30", region = "us-east" }, { address = "10.0.0.31", region = "us-east" }, { address = "10.0.0.32", region = "us-east" },
  { address = "10.0.0.33", region = "us-east" }, { address = "10.0.0.34", region = "us-east" }, { address = "10.0.0.35", region = "us-east" }, { address = "10.0.0.36", region = "us-east" },
]

[[binding]]
name = "web.example.test."
pool = "web"
adaptive_ttl = true

[[binding]]
name = "plain.example.test."
pool = "plain"
answers = 2

[[binding]]
name = "rotate.example.test."
pool = "rotate"

[[binding]]
name = "open.example.test."
pool = "dark"

[[binding]]
name = "fail.example.test."
pool = "dark"
when_all_down = "servfail"

[[binding]]
name = "none.example.test."
pool = "dark"
when_all_down = "nodata"

[[binding]]
name = "spare.example.test."
pool = "dark"
when_all_down = "fallback"
fallback = ["192.0.2.99"]

[[binding]]
name = "steered.example.test."
pool = "steered"

[[binding]]
name = "many.example.test."
pool = "many"
type = "A"
"#;

fn state() -> DnsState {
    let origin = Name::parse("example.test.", None).unwrap();
    // A wildcard whose TXT record takes about 1 kB.
    let bulk = format!("\"{}\" ", "x".repeat(250)).repeat(4);
    let text = format!("{ZONE}*.bulk TXT {bulk}\n");
    let records = parse_zone_text(&text, Path::new("example.test.zone"), &origin).unwrap();
    let mut catalog = Catalog::new();
    catalog.insert(Arc::new(Zone::new(origin, records).unwrap()));
    let config = Config::parse(CONFIG, Path::new("t.toml"), Path::new(".")).unwrap();
    let health = Arc::new(ArcSwap::from_pointee(HealthTable::default()));
    DnsState::new(
        catalog,
        Settings::default(),
        Pools::new(config.pools),
        health,
    )
}

/// How a query is sent: EDNS with this UDP size (none: no OPT) and this ECS option.
#[derive(Clone, Copy)]
struct Form {
    edns: Option<u16>,
    ecs: Option<(u16, u8, &'static [u8])>,
    flags: u16,
}

/// A query with RD and without EDNS.
const PLAIN: Form = Form {
    edns: None,
    ecs: None,
    flags: 0x0100,
};

fn source() -> SocketAddr {
    "192.0.2.9:5300".parse().unwrap()
}

fn query(id: u16, name: &str, qtype: u16, form: Form) -> Vec<u8> {
    let mut q = id.to_be_bytes().to_vec();
    q.extend_from_slice(&form.flags.to_be_bytes());
    q.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, u8::from(form.edns.is_some())]);
    for label in name
        .trim_end_matches('.')
        .split('.')
        .filter(|l| !l.is_empty())
    {
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.push(0);
    q.extend_from_slice(&qtype.to_be_bytes());
    q.extend_from_slice(&1u16.to_be_bytes());
    if let Some(size) = form.edns {
        q.extend_from_slice(&[0, 0, 41]);
        q.extend_from_slice(&size.to_be_bytes());
        q.extend_from_slice(&[0, 0, 0, 0]);
        match form.ecs {
            None => q.extend_from_slice(&[0, 0]),
            Some((family, prefix, addr)) => {
                let len = 4 + addr.len() as u16;
                q.extend_from_slice(&(4 + len).to_be_bytes());
                q.extend_from_slice(&8u16.to_be_bytes());
                q.extend_from_slice(&len.to_be_bytes());
                q.extend_from_slice(&family.to_be_bytes());
                q.extend_from_slice(&[prefix, 0]);
                q.extend_from_slice(addr);
            }
        }
    }
    q
}

fn messages(id: u16) -> Vec<Vec<u8>> {
    let names = [
        "web.example.test",
        "WEB.Example.TEST",
        "plain.example.test",
        "rotate.example.test",
        "open.example.test",
        "fail.example.test",
        "none.example.test",
        "spare.example.test",
        "many.example.test",
        "steered.example.test",
        "alias.example.test",
        "again.example.test",
        "lots.example.test",
        "static.example.test",
        "mail.example.test",
        "x.wild.example.test",
        "www.sub.example.test",
        "big.example.test",
        "nowhere.example.test",
        "example.test",
        "other.test",
        "",
    ];
    let types = [1, 28, 255, 15, 16, 6, 252];
    let forms = [
        Form {
            edns: None,
            ecs: None,
            flags: 0x0100,
        },
        Form {
            edns: Some(4096),
            ecs: None,
            flags: 0x0100,
        },
        Form {
            edns: Some(512),
            ecs: None,
            flags: 0x0110,
        },
        Form {
            edns: Some(1232),
            ecs: Some((1, 24, &[198, 51, 100])),
            flags: 0,
        },
        Form {
            edns: Some(1232),
            ecs: Some((1, 24, &[192, 0, 2])),
            flags: 0x0100,
        },
        Form {
            edns: Some(1232),
            ecs: Some((2, 48, &[0x20, 1, 0xd, 0xb8, 0, 1])),
            flags: 0,
        },
    ];
    let mut out = Vec::new();
    for name in names {
        for t in types {
            for form in forms {
                out.push(query(id, name, t, form));
            }
        }
    }
    // A response, a truncated header, a NOTIFY: dropped or answered alike.
    out.push(vec![0, 1, 0x80, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
    out.push(vec![0, 1, 1]);
    let mut notify = query(id, "example.test", 6, forms[0]);
    notify[2] = 0x20;
    out.push(notify);
    out
}

fn bytes(outcome: Outcome) -> Option<Vec<u8>> {
    match outcome {
        Outcome::Reply(r) => Some(r),
        Outcome::Drop => None,
        Outcome::Transfer(_) => panic!("no transfers over UDP"),
    }
}

#[test]
fn kept_replies_are_the_replies() {
    let (fresh, kept) = (state(), state());
    let mut prepared = Prepared::new();
    let peers: [SocketAddr; 3] = [
        "192.0.2.9:5300".parse().unwrap(),
        "198.51.100.7:5300".parse().unwrap(),
        "[2001:db8::5]:5300".parse().unwrap(),
    ];
    let mut hits = 0;
    for round in 0..4u16 {
        for msg in messages(0x1000 + round) {
            for peer in peers {
                let before = prepared.len();
                let want = bytes(fresh.respond(&msg, Transport::Udp, peer));
                let got = bytes(prepared.respond(&kept, &kept.snapshots(), &msg, peer));
                assert_eq!(got, want, "query {msg:02x?} from {peer}, round {round}");
                hits += usize::from(round > 0 && prepared.len() == before);
            }
        }
    }
    assert!(hits > 1000, "kept replies were used: {hits}");
    // The pools counted the same answers and rotated alike; the metrics agree.
    let (a, b) = (fresh.pools.load(), kept.pools.load());
    for (p, pool) in a.config().pools.iter().enumerate() {
        for e in 0..pool.endpoints.len() {
            assert_eq!(a.answered(p, e), b.answered(p, e), "{} #{e}", pool.name);
        }
    }
    assert_eq!(a.failed_open(), b.failed_open());
    let (mut ma, mut mb) = (String::new(), String::new());
    fresh.metrics.render(&mut ma);
    kept.metrics.render(&mut mb);
    assert_eq!(ma, mb);
}

/// The catalog of [`state`] with one address edited.
fn edited_catalog() -> Catalog {
    let origin = Name::parse("example.test.", None).unwrap();
    let edited = ZONE.replace("192.0.2.2", "192.0.2.3");
    let records = parse_zone_text(&edited, Path::new("example.test.zone"), &origin).unwrap();
    let mut catalog = Catalog::new();
    catalog.insert(Arc::new(Zone::new(origin, records).unwrap()));
    catalog
}

fn pools(state: &DnsState) -> Pools {
    Pools::new(state.pools.load().config().clone())
}

#[test]
fn a_published_snapshot_replaces_kept_replies() {
    let state = state();
    let mut prepared = Prepared::new();
    let peer = source();
    let msg = query(7, "static.example.test", 1, PLAIN);
    let first = bytes(prepared.respond(&state, &state.snapshots(), &msg, peer)).unwrap();
    assert_eq!(prepared.len(), 1);
    state.publish(edited_catalog(), Settings::default(), pools(&state));
    // Once published, the kept reply is gone.
    let second = bytes(prepared.respond(&state, &state.snapshots(), &msg, peer)).unwrap();
    assert_ne!(first, second);
    assert!(second.windows(4).any(|w| w == [192, 0, 2, 3]));
    assert_eq!(
        bytes(state.respond(&msg, Transport::Udp, peer)).unwrap(),
        second
    );
}

#[test]
fn publishing_what_answers_alike_keeps_kept_replies() {
    let state = state();
    let mut prepared = Prepared::new();
    let peer = source();
    let msg = query(7, "static.example.test", 1, PLAIN);
    bytes(prepared.respond(&state, &state.snapshots(), &msg, peer)).unwrap();
    let generation = state.generation();
    // The same zone objects, pools built again from the same configuration, the same
    // transfer policy: a reload that changed nothing.
    state.publish(same_catalog(&state), Settings::default(), pools(&state));
    assert_eq!(state.generation(), generation);
    prepared.respond(&state, &state.snapshots(), &msg, peer);
    assert_eq!(prepared.len(), 1, "still kept");
    // Each of the three moves it.
    let mut config = state.pools.load().config().clone();
    config.bindings.pop();
    state.publish(
        same_catalog(&state),
        Settings::default(),
        Pools::new(config),
    );
    assert_eq!(state.generation(), generation + 1, "pools");
    let settings = Settings {
        transfer: crate::config::TransferConfig {
            max_concurrent: 1,
            ..Settings::default().transfer
        },
        ..Settings::default()
    };
    state.publish(same_catalog(&state), settings, pools(&state));
    assert_eq!(state.generation(), generation + 2, "transfer policy");
    state.publish(edited_catalog(), Settings::default(), pools(&state));
    assert_eq!(state.generation(), generation + 3, "zones");
}

fn same_catalog(state: &DnsState) -> Catalog {
    (**state.catalog.load()).clone()
}

#[test]
fn at_most_max_entries_are_kept() {
    let state = state();
    let mut prepared = Prepared::new();
    let peer = source();
    for i in 0..MAX_ENTRIES + 10 {
        let msg = query(1, &format!("n{i}.example.test"), 1, PLAIN);
        let reply = bytes(prepared.respond(&state, &state.snapshots(), &msg, peer)).unwrap();
        assert_eq!(reply[3] & 0xF, 3, "NXDOMAIN");
        assert!(prepared.len() <= MAX_ENTRIES);
    }
    assert_eq!(prepared.len(), 10);
}

#[test]
fn at_most_max_bytes_are_kept() {
    let state = state();
    let mut prepared = Prepared::new();
    let peer = source();
    let form = Form {
        edns: Some(4096),
        ecs: None,
        flags: 0x0100,
    };
    let mut emptied = false;
    for i in 0..4000 {
        let msg = query(1, &format!("n{i}.bulk.example.test"), 16, form);
        let before = prepared.len();
        let reply = bytes(prepared.respond(&state, &state.snapshots(), &msg, peer)).unwrap();
        assert!(
            reply.len() > 1000,
            "the wildcard's large TXT: {}",
            reply.len()
        );
        assert!(prepared.bytes <= MAX_BYTES);
        emptied |= prepared.len() < before;
    }
    assert!(
        emptied,
        "the byte limit emptied the map before the entry limit did"
    );
}

#[test]
fn a_pointer_into_the_header_is_malformed_whatever_the_id() {
    // The question's name ends in a compression pointer to offset 0: read through, the
    // message ID would become part of the name and the reply would differ by ID alone. No
    // name starts in the header, so the query is malformed (FORMERR), whatever its ID.
    let (fresh, kept) = (state(), state());
    let mut prepared = Prepared::new();
    let mut msg = query(0x1001, "wuw", 1, PLAIN);
    let root = msg.len() - 5;
    msg.splice(root..root + 1, [0xC0, 0x00]);
    let mut replies = Vec::new();
    for id in [0x1001u16, 0x1002, 0x0000] {
        msg[..2].copy_from_slice(&id.to_be_bytes());
        let want = bytes(fresh.respond(&msg, Transport::Udp, source())).unwrap();
        let got = bytes(prepared.respond(&kept, &kept.snapshots(), &msg, source())).unwrap();
        assert_eq!(got, want, "ID {id:#06x}");
        assert_eq!(want[3] & 0xF, 1, "FORMERR");
        replies.push(want[2..].to_vec());
    }
    assert!(replies.windows(2).all(|w| w[0] == w[1]), "{replies:?}");
}

#[test]
fn pool_answers_and_chains_to_them_are_kept() {
    let state = state();
    let mut prepared = Prepared::new();
    for name in ["rotate.example.test", "again.example.test"] {
        let msg = query(7, name, 1, PLAIN);
        bytes(prepared.respond(&state, &state.snapshots(), &msg, source())).unwrap();
    }
    assert_eq!(prepared.len(), 2);
}
