//! Per-client steering through the real server: a test geo database (written with
//! mmdb-writer), EDNS Client Subnet queries from three regions' networks, scopes, failover to
//! the nearest healthy region, configured networks, latency entries and affinity.

mod common;
use common::geodb::{Entry, entries, write_database};
use common::*;
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::rdata::opt::EdnsCode;
use std::collections::HashMap;

const ZONE: &str =
    "$TTL 300\n@ SOA ns1 hostmaster 1 3600 600 86400 60\n@ NS ns1\nns1 A 192.0.2.53\n";

const PLACES: [Entry; 4] = [
    ("198.51.100.0/24", "US", "NA", 38.9, -77.0),
    ("203.0.113.0/24", "GB", "EU", 51.5, -0.1),
    ("100.64.0.0/16", "JP", "AS", 35.7, 139.7),
    ("2001:db8:1::/48", "DE", "EU", 52.5, 13.4),
];

/// US, GB and JP test networks (and a German IPv6 one).
fn geo_database(path: &std::path::Path) {
    write_database(path, &entries(&PLACES));
}

const REGIONS: &str = "[[region]]\nname = \"us-east\"\ncoordinates = [39.0, -77.5]\ncontinent = \"NA\"\ncountries = [\"US\"]\n\
[[region]]\nname = \"eu-west\"\ncoordinates = [53.3, -6.3]\ncontinent = \"EU\"\ncountries = [\"GB\", \"IE\"]\n\
[[region]]\nname = \"ap-northeast\"\ncoordinates = [35.7, 139.7]\ncontinent = \"AS\"\ncountries = [\"JP\"]\nnetworks = [\"192.0.2.0/25\"]\n";

fn pool(steering: &str, eu_state: &str, extra: &str) -> String {
    format!(
        "[geo]\ndatabase = \"geo.mmdb\"\n{REGIONS}[pool.web]\nsteering = \"{steering}\"\n{extra}endpoints = [\
         {{ address = \"10.0.0.1\", region = \"us-east\" }}, {{ address = \"10.0.0.2\", region = \"eu-west\", state = \"{eu_state}\" }}, \
         {{ address = \"10.0.0.3\", region = \"ap-northeast\" }}, {{ address = \"2001:db8::3\", region = \"ap-northeast\" }}, \
         {{ address = \"2001:db8::2\", region = \"eu-west\" }}]\n[[binding]]\nname = \"www.example.test.\"\npool = \"web\"\nanswers = 1\n"
    )
}

fn start(config: &str) -> (Setup, Server) {
    let setup = Setup::new(&format!("{CONFIG}{config}"), &[("example.test.zone", ZONE)]);
    geo_database(&setup.dir.path().join("geo.mmdb"));
    let srv = Server::start(&setup.config());
    (setup, srv)
}

/// (first address, ECS scope) for a query from `subnet/prefix`.
fn from(srv: &Server, qtype: u16, subnet: &str, prefix: u8) -> (String, Option<u8>) {
    ask_from(srv.addr, qtype, subnet.parse().unwrap(), prefix)
}

#[test]
fn each_region_answers_its_own_clients_with_the_deciding_scope() {
    let (_s, srv) = start(&pool("geo", "auto", ""));
    assert_eq!(
        from(&srv, 1, "198.51.100.0", 24),
        ("10.0.0.1".into(), Some(24))
    );
    assert_eq!(
        from(&srv, 1, "203.0.113.0", 24),
        ("10.0.0.2".into(), Some(24))
    );
    assert_eq!(
        from(&srv, 1, "100.64.7.0", 24),
        ("10.0.0.3".into(), Some(16)),
        "scope is the database network, /16"
    );
    // A longer source prefix is truncated to /24 for the decision; the echo keeps it.
    assert_eq!(from(&srv, 1, "203.0.113.77", 32).0, "10.0.0.2");
    // A configured network overrides the database, and its prefix is the scope.
    assert_eq!(
        from(&srv, 1, "192.0.2.0", 24),
        ("10.0.0.3".into(), Some(25))
    );
    // Unknown to the database: the default region; the scope is the empty database block.
    let (addr, scope) = from(&srv, 1, "10.99.0.0", 24);
    assert_eq!(addr, "10.0.0.1");
    assert!(scope.is_some_and(|s| s > 0 && s <= 24), "scope {scope:?}");
    // IPv6 client networks and AAAA.
    assert_eq!(
        from(&srv, 28, "2001:db8:1::", 48).0,
        "2001:db8::2",
        "DE -> continent EU -> eu-west"
    );
}

#[test]
fn a_new_geo_database_is_picked_up_without_restart() {
    let (setup, srv) = start(&pool("geo", "auto", ""));
    // Asked again and again, so that every UDP worker keeps the query and its ranking.
    for _ in 0..20 {
        assert_eq!(from(&srv, 1, "203.0.113.0", 24).0, "10.0.0.2");
    }
    let mut moved = PLACES;
    moved[1] = ("203.0.113.0/24", "JP", "AS", 35.7, 139.7);
    let tmp = setup.dir.path().join("geo.mmdb.new");
    write_database(&tmp, &entries(&moved));
    std::fs::rename(&tmp, setup.dir.path().join("geo.mmdb")).unwrap();
    srv.eventually("new database used", || {
        from(&srv, 1, "203.0.113.0", 24).0 == "10.0.0.3"
    });
    // By every worker: none answers from what it kept of the old database.
    for _ in 0..20 {
        assert_eq!(from(&srv, 1, "203.0.113.0", 24).0, "10.0.0.3");
    }
}

#[test]
fn without_ecs_the_resolver_address_decides_and_no_scope_is_sent() {
    let (_s, srv) = start(&pool("geo", "auto", ""));
    let m = ask(srv.addr, "www.example.test", 1);
    assert_eq!(m.answers.len(), 1);
    assert!(
        m.edns
            .as_ref()
            .and_then(|e| e.option(EdnsCode::Subnet))
            .is_none()
    );
}

#[test]
fn without_ecs_resolvers_in_turn_each_get_their_own_region() {
    // Two resolvers on loopback networks the database places in the US and in Japan ask the
    // same question, byte for byte, in turn: each must get its own region's answer every
    // time, not the one ranked for the resolver before.
    let setup = Setup::new(
        &format!("{CONFIG}{}", pool("geo", "auto", "")),
        &[("example.test.zone", ZONE)],
    );
    let places = [
        ("127.0.2.0/24", "US", "NA", 38.9, -77.0),
        ("127.0.3.0/24", "JP", "AS", 35.7, 139.7),
    ];
    write_database(&setup.dir.path().join("geo.mmdb"), &entries(&places));
    let srv = Server::start(&setup.config());
    let q = query(7, "www.example.test", 1, Some(1232));
    let resolvers = [("127.0.2.1", "10.0.0.1"), ("127.0.3.1", "10.0.0.3")];
    for i in 0..20 {
        for (source, want) in resolvers {
            let s = std::net::UdpSocket::bind((source, 0)).unwrap();
            s.set_read_timeout(Some(std::time::Duration::from_secs(2)))
                .unwrap();
            s.send_to(&q, srv.addr).unwrap();
            let mut buf = [0u8; 1500];
            let n = s.recv(&mut buf).expect("reply");
            let m = Message::from_vec(&buf[..n]).unwrap();
            let first = m.answers.first().map(|a| a.data.to_string());
            assert_eq!(first.as_deref(), Some(want), "query {i} from {source}");
        }
    }
}

#[test]
fn a_down_region_fails_over_to_the_nearest_next() {
    let (_s, srv) = start(&pool("geo", "down", "spill = \"next\"\n"));
    assert_eq!(
        from(&srv, 1, "203.0.113.0", 24).0,
        "10.0.0.1",
        "eu-west down: us-east is nearer than Tokyo"
    );
}

#[test]
fn proximity_picks_the_nearest_region() {
    let (_s, srv) = start(&pool("proximity", "auto", ""));
    // Germany has no region of its own; Dublin is nearest to Berlin.
    assert_eq!(
        from(&srv, 28, "2001:db8:1::", 48),
        ("2001:db8::2".into(), Some(48))
    );
    assert_eq!(from(&srv, 1, "100.64.1.0", 24).0, "10.0.0.3");
}

#[test]
fn latency_entries_decide_before_geo() {
    let extra = "[[latency]]\nprefix = \"198.51.100.0/24\"\nregion = \"ap-northeast\"\nrtt_ms = 5\n[[latency]]\nprefix = \"198.51.100.0/24\"\nregion = \"us-east\"\nrtt_ms = 40\n";
    let (_s, srv) = start(&format!("{}{extra}", pool("latency", "auto", "")));
    assert_eq!(
        from(&srv, 1, "198.51.100.0", 24),
        ("10.0.0.3".into(), Some(24))
    );
    assert_eq!(
        from(&srv, 1, "203.0.113.0", 24).0,
        "10.0.0.2",
        "no entry: geo"
    );
}

#[test]
fn affinity_keeps_a_client_network_on_one_endpoint() {
    let eps: Vec<String> = (1..=4)
        .map(|i| format!("{{ address = \"10.1.0.{i}\", region = \"us-east\" }}"))
        .collect();
    let config = format!(
        "[geo]\ndatabase = \"geo.mmdb\"\n{REGIONS}[pool.a]\nsteering = \"geo\"\naffinity = true\nendpoints = [{}]\n[[binding]]\nname = \"www.example.test.\"\npool = \"a\"\n",
        eps.join(", ")
    );
    let (_s, srv) = start(&config);
    let mut counts: HashMap<String, usize> = HashMap::new();
    for _ in 0..1000 {
        *counts
            .entry(from(&srv, 1, "198.51.100.0", 24).0)
            .or_default() += 1;
    }
    assert!(
        counts.values().any(|&c| c >= 990),
        "same first address >= 99 %: {counts:?}"
    );
    let firsts: std::collections::HashSet<String> = (0..64)
        .map(|i| from(&srv, 1, &format!("10.{i}.0.0"), 24).0)
        .collect();
    assert!(
        firsts.len() > 1,
        "different networks spread over endpoints: {firsts:?}"
    );
}

#[test]
fn malformed_client_subnet_is_formerr() {
    let (_s, srv) = start(&pool("geo", "auto", ""));
    let mut q = query_ecs(
        3,
        "www.example.test",
        1,
        "198.51.100.0".parse().unwrap(),
        24,
    );
    let at = q.len() - 5; // source prefix byte
    q[at] = 33;
    let m = Message::from_vec(&udp_raw(srv.addr, &q).unwrap()).unwrap();
    assert_eq!(rcode(&m), ResponseCode::FormErr);
}
