//! The DNS answer path without sockets: query bytes in, reply bytes out, through
//! [`respond`] — the function every UDP and TCP query goes through. Cases: a static RRset
//! of four addresses, NXDOMAIN, a pool answer (health-filtered, rotated), and the same pool
//! answer steered by geography from an EDNS Client Subnet.

// criterion's macros generate the undocumented `main` and group functions.
#![allow(missing_docs)]

use criterion::{Criterion, criterion_group, criterion_main};
use roundhouse::config::Config;
use roundhouse::dns::catalog::Catalog;
use roundhouse::dns::name::Name;
use roundhouse::dns::respond::{Outcome, Transport, respond};
use roundhouse::dns::zone::Zone;
use roundhouse::dns::zonefile::parse_zone_text;
use roundhouse::health::HealthTable;
use roundhouse::pool::{PoolView, Pools};
use std::hint::black_box;
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

const ZONE: &str = "$TTL 300
@    SOA ns hostmaster 1 7200 3600 1209600 300
@    NS  ns
ns   A   192.0.2.53
www  A   192.0.2.1
www  A   192.0.2.2
www  A   192.0.2.3
www  A   192.0.2.4
mail MX  10 mx
mx   A   192.0.2.25
";

const CONFIG: &str = r#"
[dns]
listen = ["127.0.0.1:0"]
zones_dir = ""
[[region]]
name = "us-east"
[[region]]
name = "eu-west"
[pool.app]
endpoints = [
  { address = "198.51.100.1", region = "us-east" }, { address = "198.51.100.2", region = "us-east" },
  { address = "198.51.100.3", region = "eu-west" }, { address = "198.51.100.4", region = "eu-west" },
]
[pool.near]
steering = "latency"
endpoints = [
  { address = "198.51.100.1", region = "us-east" }, { address = "198.51.100.2", region = "us-east" },
  { address = "198.51.100.3", region = "eu-west" }, { address = "198.51.100.4", region = "eu-west" },
]
[[binding]]
name = "app.example.test."
type = "A"
pool = "app"
answers = 2
[[binding]]
name = "near.example.test."
type = "A"
pool = "near"
answers = 2
[[latency]]
prefix = "203.0.113.0/24"
region = "eu-west"
rtt_ms = 20.0
"#;

/// A query for `name`/`qtype` with EDNS (4096 bytes) and, when given, a client subnet /24.
fn query(name: &str, qtype: u16, subnet: Option<[u8; 3]>) -> Vec<u8> {
    let mut q = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 1];
    for label in name.trim_end_matches('.').split('.') {
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.extend_from_slice(&[0, (qtype >> 8) as u8, qtype as u8, 0, 1]);
    // OPT: root owner, type 41, payload 4096, no extended flags.
    q.extend_from_slice(&[0, 0, 41, 0x10, 0, 0, 0, 0, 0]);
    match subnet {
        None => q.extend_from_slice(&[0, 0]),
        Some(net) => {
            // ECS option: code 8, length 7, family 1, source /24, scope 0, three address bytes.
            q.extend_from_slice(&[0, 11, 0, 8, 0, 7, 0, 1, 24, 0]);
            q.extend_from_slice(&net);
        }
    }
    q
}

fn catalog() -> Catalog {
    let origin = Name::parse("example.test.", None).unwrap();
    let records = parse_zone_text(ZONE, Path::new("example.test.zone"), &origin).unwrap();
    let mut catalog = Catalog::new();
    catalog.insert(Arc::new(Zone::new(origin, records).unwrap()));
    catalog
}

fn bench(c: &mut Criterion) {
    let catalog = catalog();
    let config = Config::parse(CONFIG, Path::new("bench.toml"), Path::new(".")).unwrap();
    let pools = Pools::new(config.pools.clone());
    let health = HealthTable::default();
    let peer: Option<IpAddr> = Some("192.0.2.99".parse().unwrap());
    let view = || PoolView {
        pools: &pools,
        health: &health,
        geo: None,
        measured: None,
        now: tokio::time::Instant::now(),
        client: None,
        memo: None,
    };
    let cases = [
        (
            "static www A (4 records)",
            query("www.example.test.", 1, None),
        ),
        ("NXDOMAIN", query("nope.example.test.", 1, None)),
        ("pool app A (2 of 4)", query("app.example.test.", 1, None)),
        (
            "pool near A, latency steering by ECS /24",
            query("near.example.test.", 1, Some([203, 0, 113])),
        ),
    ];
    let mut group = c.benchmark_group("respond");
    for (name, q) in &cases {
        match respond(&catalog, Some(view()), q, Transport::Udp, peer) {
            Outcome::Reply(r) => assert_eq!(r[3] & 0x0f, if name == &"NXDOMAIN" { 3 } else { 0 }),
            _ => panic!("{name}: no reply"),
        }
        group.bench_function(*name, |b| {
            b.iter(|| respond(&catalog, Some(view()), black_box(q), Transport::Udp, peer))
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
