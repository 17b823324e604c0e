//! The embedded multi-region demo: the default configuration (with free ports) answers
//! `dig www` (the regional balancers) and `dig rr` (one instance per region), and each
//! balancer and instance answers `curl`; the real default (fixed ports) when they are free.

mod common;
use common::http::get;
use common::*;
use std::net::{IpAddr, SocketAddr, TcpListener, UdpSocket};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const ZONE: (&str, &str) = (
    "example.test.zone",
    "$TTL 60\n@ SOA ns hm 1 2 3 4 5\n@ NS ns\nns A 127.0.0.1\n",
);

/// Every address the demo listens on with port 8080.
fn demo_ips() -> Vec<IpAddr> {
    (1..=3)
        .flat_map(|r| [1, 11, 12, 13].map(|h| IpAddr::from([127, 0, r, h])))
        .collect()
}

/// A port free on every demo address (the kernel's pick for the first, checked on the rest).
fn free_port() -> u16 {
    let ips = demo_ips();
    for _ in 0..50 {
        let first = TcpListener::bind((ips[0], 0)).unwrap();
        let port = first.local_addr().unwrap().port();
        if ips[1..]
            .iter()
            .all(|ip| TcpListener::bind((*ip, port)).is_ok())
        {
            return port;
        }
    }
    panic!("no port free on every demo address");
}

fn addresses(srv: SocketAddr, name: &str) -> Vec<String> {
    let mut a = answers(&ask(srv, name, 1));
    a.sort();
    a
}

/// Waits up to `limit` for `f`.
fn within(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

/// Checks what the tour promises: www -> three balancers, rr -> one instance per region,
/// curl through a balancer and straight to an instance.
fn tour(dns: SocketAddr, port: u16, log: impl Fn() -> String) {
    let rr = ["127.0.1.11", "127.0.2.11", "127.0.3.11"].map(|a| format!("rr.example.test. A {a}"));
    assert!(
        within(Duration::from_secs(20), || addresses(
            dns,
            "rr.example.test"
        ) == rr),
        "rr answers {:?}; log:\n{}",
        addresses(dns, "rr.example.test"),
        log()
    );
    let www = ["127.0.1.1", "127.0.2.1", "127.0.3.1"].map(|a| format!("www.example.test. A {a}"));
    // The balancers' own health turns ready a probe interval or two after their first
    // instance: until then www fails open with all three, then lists the ready ones.
    assert!(
        within(Duration::from_secs(10), || addresses(
            dns,
            "www.example.test"
        ) == www),
        "www answers {:?}",
        addresses(dns, "www.example.test")
    );
    for (r, region) in [(1, "us-east"), (2, "eu-west"), (3, "ap-northeast")] {
        let lb = SocketAddr::from(([127, 0, r, 1], port));
        let ok = within(Duration::from_secs(10), || get(lb).0 == 200);
        let (status, body) = get(lb);
        assert!(ok, "balancer {lb}: {status} {body}");
        assert!(body.contains(&format!("region={region}")), "{body}");
        let (status, body) = get(SocketAddr::from(([127, 0, r, 11], port)));
        assert_eq!(status, 200, "{body}");
    }
}

#[test]
fn the_embedded_demo_with_free_ports_answers_dig_and_curl() {
    let port = free_port();
    let config = roundhouse::config::EMBEDDED
        .replace("127.0.0.1:1053", "127.0.0.1:0")
        .replace("127.0.0.1:9090", "127.0.0.1:0")
        .replace("8080", &port.to_string());
    assert!(!config.contains("8080"));
    let setup = Setup::new(&config, &[ZONE]);
    let srv = Server::start(&setup.config());
    tour(srv.addr, port, || srv.log.lock().unwrap().clone());
}

/// Kills the server it holds when dropped, also when an assertion fails first.
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn taken(addr: &str) -> bool {
    UdpSocket::bind(addr).is_err() || TcpListener::bind(addr).is_err()
}

#[test]
fn serve_without_a_config_runs_the_demo_when_its_ports_are_free() {
    let busy: Vec<String> = ["127.0.0.1:1053", "127.0.0.1:9090"]
        .into_iter()
        .map(String::from)
        .chain(demo_ips().into_iter().map(|ip| format!("{ip}:8080")))
        .filter(|a| taken(a))
        .collect();
    if !busy.is_empty() {
        eprintln!("skipped: the demo's fixed ports are taken: {busy:?}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_roundhouse"))
        .arg("serve")
        .current_dir(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut child = Killed(child);
    let out = child.0.stdout.take().unwrap();
    let printed = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut std::io::BufReader::new(out), &mut text);
        text
    });
    let dns: SocketAddr = "127.0.0.1:1053".parse().unwrap();
    let up = within(Duration::from_secs(20), || {
        udp_raw(dns, &query(1, "www.example.test", 1, None)).is_some()
    });
    if up {
        tour(dns, 8080, || "(log not captured)".into());
    }
    drop(child);
    let printed = printed.join().unwrap();
    assert!(up, "no DNS answer on {dns}");
    for line in [
        "dig @127.0.0.1 -p 1053 www.example.test.",
        "dig @127.0.0.1 -p 1053 rr.example.test.",
        "curl http://127.0.1.1:8080/",
        "curl http://127.0.0.1:9090/metrics",
    ] {
        assert!(printed.contains(line), "{line:?} not in:\n{printed}");
    }
}
