//! Pools through the real server with real HTTP backends on 127.0.0.x: rotation, health
//! filtering, weights, failover, dials, fail open/closed, overrides and reload.

mod common;
use common::*;
use hickory_proto::op::ResponseCode;
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

const ZONE: &str =
    "$TTL 300\n@ SOA ns1 hostmaster 1 3600 600 86400 60\n@ NS ns1\nns1 A 192.0.2.53\n";

/// A health endpoint on ADDR: 200 "ok" while healthy, 503 otherwise; `kill` closes it.
struct Backend {
    addr: SocketAddr,
    healthy: Arc<AtomicBool>,
    alive: Arc<AtomicBool>,
}

impl Backend {
    fn start(addr: SocketAddr) -> Backend {
        let listener = TcpListener::bind(addr).unwrap_or_else(|e| panic!("bind {addr}: {e}"));
        let addr = listener.local_addr().unwrap();
        let healthy = Arc::new(AtomicBool::new(true));
        let alive = Arc::new(AtomicBool::new(true));
        let (h, a) = (healthy.clone(), alive.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if !a.load(Ordering::SeqCst) {
                    return; // drops the listener: connections are refused from now on
                }
                let Ok(mut s) = stream else { continue };
                let mut buf = [0u8; 1024];
                let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
                let _ = s.read(&mut buf);
                let reply: &[u8] = if h.load(Ordering::SeqCst) {
                    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
                } else {
                    b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\nConnection: close\r\n\r\ndown"
                };
                let _ = s.write_all(reply);
            }
        });
        Backend {
            addr,
            healthy,
            alive,
        }
    }

    fn kill(&self) {
        self.alive.store(false, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr); // wake the accept loop so it exits
    }
}

/// Backends on 127.0.0.{first..} sharing one port.
fn backends(first: u8, n: u8) -> (u16, Vec<Backend>) {
    loop {
        let b0 = Backend::start(SocketAddr::from(([127, 0, 0, first], 0)));
        let port = b0.addr.port();
        let rest: Option<Vec<Backend>> = (1..n)
            .map(|k| {
                TcpListener::bind((IpAddr::from([127, 0, 0, first + k]), port))
                    .ok()
                    .map(drop)
                    .map(|()| Backend::start(SocketAddr::from(([127, 0, 0, first + k], port))))
            })
            .collect();
        if let Some(mut rest) = rest {
            rest.insert(0, b0);
            return (port, rest);
        }
        b0.kill();
    }
}

fn first_addresses(srv: &Server, name: &str, n: usize) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for _ in 0..n {
        let m = ask(srv.addr, name, 1);
        if let Some(a) = m.answers.first() {
            *counts.entry(a.data.to_string()).or_insert(0) += 1;
        }
    }
    counts
}

fn addresses(srv: &Server, name: &str) -> Vec<String> {
    let mut v: Vec<String> = ask(srv.addr, name, 1)
        .answers
        .iter()
        .map(|a| a.data.to_string())
        .collect();
    v.sort();
    v
}

fn check(port: u16, interval: &str) -> String {
    format!(
        "[health_check.web]\nport = {port}\npath = \"/health\"\ninterval = \"{interval}\"\ntimeout = \"500ms\"\nhealthy_threshold = 2\nunhealthy_threshold = 2\n"
    )
}

fn start(config: &str) -> (Setup, Server) {
    let setup = Setup::new(&format!("{CONFIG}{config}"), &[("example.test.zone", ZONE)]);
    let srv = Server::start(&setup.config());
    (setup, srv)
}

#[test]
fn rotation_spreads_the_first_address_evenly() {
    let (port, _b) = backends(11, 4);
    let eps: Vec<String> = (11..=14)
        .map(|i| format!("{{ address = \"127.0.0.{i}\" }}"))
        .collect();
    let (_s, srv) = start(&format!(
        "{}[pool.web]\nhealth_check = \"web\"\nendpoints = [{}]\n[[binding]]\nname = \"www.example.test.\"\ntype = \"A\"\npool = \"web\"\n[[binding]]\nname = \"short.example.test.\"\npool = \"web\"\nttl = \"300s\"\nadaptive_ttl = true\n",
        check(port, "10s"),
        eps.join(", ")
    ));
    assert_eq!(
        addresses(&srv, "www.example.test").len(),
        4,
        "all four ready after the first round"
    );
    let counts = first_addresses(&srv, "www.example.test", 1000);
    assert_eq!(counts.len(), 4, "{counts:?}");
    for (addr, c) in &counts {
        assert!(
            (220..=280).contains(c),
            "{addr} first {c} times of 1000: {counts:?}"
        );
    }
    let m = ask(srv.addr, "www.example.test", 1);
    assert_eq!(m.answers[0].ttl, 30, "default binding TTL");
    let short = ask(srv.addr, "short.example.test", 1);
    assert_eq!(
        short.answers[0].ttl, 20,
        "adaptive: no longer than interval x unhealthy threshold"
    );
    assert!(m.metadata.authoritative);
}

#[test]
fn a_killed_backend_leaves_the_answers_and_comes_back() {
    let (port, b) = backends(21, 3);
    let eps: Vec<String> = (21..=23)
        .map(|i| format!("{{ address = \"127.0.0.{i}\" }}"))
        .collect();
    let (_s, srv) = start(&format!(
        "{}[pool.web]\nhealth_check = \"web\"\nendpoints = [{}]\n[[binding]]\nname = \"www.example.test.\"\npool = \"web\"\n",
        check(port, "1s"),
        eps.join(", ")
    ));
    assert_eq!(addresses(&srv, "www.example.test").len(), 3);
    let killed = Instant::now();
    b[1].kill();
    srv.eventually("dead endpoint removed", || {
        !addresses(&srv, "www.example.test").contains(&"127.0.0.22".to_string())
    });
    let gone = killed.elapsed();
    // Bound: interval x unhealthy_threshold + one interval (+ jitter, timeout and polling).
    assert!(
        gone <= Duration::from_millis(3 * 1000 + 100 + 500 + 300),
        "took {gone:?}"
    );
    assert!(
        gone >= Duration::from_millis(1000),
        "removed after {gone:?}: faster than two failed probes allow"
    );
    let _back = Backend::start(b[1].addr);
    srv.eventually("endpoint back", || {
        addresses(&srv, "www.example.test").contains(&"127.0.0.22".to_string())
    });
    srv.wait_log("endpoint up");
}

#[test]
fn weights_three_to_one() {
    let (_s, srv) = start(
        "[pool.w]\npolicy = \"weighted\"\nendpoints = [{ address = \"192.0.2.1\", weight = 3 }, { address = \"192.0.2.2\", weight = 1 }, { address = \"192.0.2.3\", weight = 0 }]\n[[binding]]\nname = \"w.example.test.\"\npool = \"w\"\n",
    );
    let counts = first_addresses(&srv, "w.example.test", 2000);
    let heavy = *counts.get("192.0.2.1").unwrap_or(&0) as f64 / 2000.0;
    assert!((heavy - 0.75).abs() <= 0.05, "{counts:?}");
    assert!(
        !counts.contains_key("192.0.2.3"),
        "weight 0 never: {counts:?}"
    );
    assert_eq!(
        ask(srv.addr, "w.example.test", 1).answers.len(),
        1,
        "weighted answers one address by default"
    );
}

#[test]
fn failover_tiers_dials_and_overrides() {
    let (port, b) = backends(31, 4);
    b[0].healthy.store(false, Ordering::SeqCst); // .31 fails its checks from the start
    let config = format!(
        "{}[[region]]\nname = \"east\"\n[[region]]\nname = \"west\"\n\
         [pool.f]\npolicy = \"failover\"\nhealth_check = \"web\"\nendpoints = [{{ address = \"127.0.0.31\", priority = 1, region = \"east\" }}, {{ address = \"127.0.0.32\", priority = 2, region = \"east\" }}]\n\
         [pool.o]\nhealth_check = \"web\"\nendpoints = [{{ address = \"127.0.0.33\", region = \"east\", state = \"drain\" }}, {{ address = \"127.0.0.34\", region = \"east\" }}, {{ address = \"192.0.2.9\", region = \"east\", state = \"up\" }}, {{ address = \"127.0.0.32\", region = \"east\", state = \"down\" }}]\n\
         [pool.d]\nsteering = \"ordered\"\ndials = {{ east = 25 }}\nendpoints = [{{ address = \"192.0.2.1\", region = \"east\" }}, {{ address = \"192.0.2.2\", region = \"west\" }}]\n\
         [[binding]]\nname = \"f.example.test.\"\npool = \"f\"\nttl = \"300s\"\nadaptive_ttl = true\nmin_ttl = \"3s\"\n[[binding]]\nname = \"o.example.test.\"\npool = \"o\"\n[[binding]]\nname = \"d.example.test.\"\npool = \"d\"\n",
        check(port, "10s")
    );
    let (_s, srv) = start(&config);
    assert_eq!(
        addresses(&srv, "f.example.test"),
        ["127.0.0.32"],
        "tier 1 is down: tier 2 answers"
    );
    let f = ask(srv.addr, "f.example.test", 1);
    assert_eq!(f.answers[0].ttl, 3, "adaptive TTL while degraded");
    assert_eq!(
        addresses(&srv, "o.example.test"),
        ["127.0.0.34", "192.0.2.9"],
        "drain and forced down left out, forced up in"
    );
    let counts = first_addresses(&srv, "d.example.test", 2000);
    let east = *counts.get("192.0.2.1").unwrap_or(&0) as f64 / 2000.0;
    assert!(
        (east - 0.25).abs() <= 0.05,
        "dial 25 keeps a quarter in east: {counts:?}"
    );
}

#[test]
fn all_down_fail_open_and_fail_closed() {
    let (port, b) = backends(41, 2);
    for x in &b {
        x.healthy.store(false, Ordering::SeqCst);
    }
    let eps = "[{ address = \"127.0.0.41\" }, { address = \"127.0.0.42\" }]";
    let config = format!(
        "{}[pool.p]\nhealth_check = \"web\"\nendpoints = {eps}\n\
         [[binding]]\nname = \"open.example.test.\"\npool = \"p\"\n\
         [[binding]]\nname = \"nodata.example.test.\"\npool = \"p\"\nwhen_all_down = \"nodata\"\n\
         [[binding]]\nname = \"servfail.example.test.\"\npool = \"p\"\nwhen_all_down = \"servfail\"\n\
         [[binding]]\nname = \"sorry.example.test.\"\npool = \"p\"\nwhen_all_down = \"fallback\"\nfallback = [\"192.0.2.99\"]\n",
        check(port, "10s")
    );
    let (_s, srv) = start(&config);
    assert_eq!(
        addresses(&srv, "open.example.test"),
        ["127.0.0.41", "127.0.0.42"],
        "fail open answers everything"
    );
    let nodata = ask(srv.addr, "nodata.example.test", 1);
    assert_eq!(
        (
            rcode(&nodata),
            nodata.answers.len(),
            nodata.authorities.len()
        ),
        (ResponseCode::NoError, 0, 1)
    );
    assert_eq!(
        rcode(&ask(srv.addr, "servfail.example.test", 1)),
        ResponseCode::ServFail
    );
    assert_eq!(addresses(&srv, "sorry.example.test"), ["192.0.2.99"]);
    srv.wait_log("no endpoint of the pool is ready");
    // A bound name exists for other types: NODATA, not NXDOMAIN.
    assert_eq!(
        rcode(&ask(srv.addr, "open.example.test", 16)),
        ResponseCode::NoError
    );
}

#[test]
fn a_reload_that_changes_weights_keeps_health() {
    let (port, b) = backends(51, 2);
    let pool = |w: u32| {
        format!(
            "{}[pool.w]\npolicy = \"weighted\"\nhealth_check = \"web\"\nendpoints = [{{ address = \"127.0.0.51\", weight = {w} }}, {{ address = \"127.0.0.52\", weight = 1 }}]\n[[binding]]\nname = \"w.example.test.\"\npool = \"w\"\nanswers = 2\n",
            check(port, "60s")
        )
    };
    let (setup, srv) = start(&pool(1));
    assert_eq!(
        addresses(&srv, "w.example.test"),
        ["127.0.0.51", "127.0.0.52"]
    );
    // .51 dies, but the next probe is a minute away: it is still believed ready.
    b[0].kill();
    std::fs::write(setup.config(), format!("{CONFIG}{}", pool(0))).unwrap();
    srv.eventually("weight 0 applied", || {
        addresses(&srv, "w.example.test") == ["127.0.0.52"]
    });
    std::fs::write(setup.config(), format!("{CONFIG}{}", pool(5))).unwrap();
    // Had the reload reset health, the new probe would have found .51 dead at once.
    srv.eventually("weight 5 applied, health kept", || {
        let c = first_addresses(&srv, "w.example.test", 200);
        c.get("127.0.0.51").copied().unwrap_or(0) > 140
    });
}

#[test]
fn check_reports_bindings_outside_zones_and_static_conflicts() {
    let setup = Setup::new(
        &format!(
            "{CONFIG}[pool.p]\nendpoints = [{{ address = \"192.0.2.1\" }}]\n[[binding]]\nname = \"www.elsewhere.test.\"\npool = \"p\"\n[[binding]]\nname = \"ns1.example.test.\"\npool = \"p\"\n"
        ),
        &[("example.test.zone", ZONE)],
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_roundhouse"))
        .args(["check", "--config"])
        .arg(setup.config())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        text.contains("roundhouse.toml:7: binding www.elsewhere.test.: not inside any served zone"),
        "{text}"
    );
    assert!(text.contains("roundhouse.toml:10: binding ns1.example.test.: zone example.test. also has static A records"), "{text}");
}
