//! Measured latency through the real binary: reports posted to the admin server steer
//! `latency` pools (with the measured network as the ECS scope), wrong tokens, unknown regions
//! and malformed bodies are refused, and a balancer's own listener measures its clients and
//! reports them to the admin server.

mod common;
use common::*;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

const ZONE: &str =
    "$TTL 300\n@ SOA ns1 hostmaster 1 3600 600 86400 60\n@ NS ns1\nns1 A 192.0.2.53\n";

const TOKEN: &str = "s3cret-token";

/// Two regions, a `latency` pool with one endpoint in each, and an admin server.
fn dns_config(extra: &str) -> String {
    format!(
        "{CONFIG}[admin]\nlisten = \"127.0.0.1:0\"\ntoken = \"{TOKEN}\"\n\
         [[region]]\nname = \"us-east\"\n[[region]]\nname = \"eu-west\"\n\
         [pool.web]\nsteering = \"latency\"\nendpoints = [\
         {{ address = \"10.0.0.1\", region = \"us-east\" }}, {{ address = \"10.0.0.2\", region = \"eu-west\" }}]\n\
         [[binding]]\nname = \"www.example.test.\"\npool = \"web\"\nanswers = 1\n{extra}"
    )
}

/// One HTTP/1.1 request; returns (status, body).
fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    auth: Option<&str>,
    body: &str,
) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let auth = auth
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    let status = resp
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status in {resp:?}"));
    let body = resp.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    (status, body.to_string())
}

fn report(region: &str, prefix: &str, rtt_ms: f64) -> String {
    format!(
        r#"{{"region":"{region}","networks":[{{"prefix":"{prefix}","rtt_ms":{rtt_ms},"min_ms":{rtt_ms},"samples":10}}]}}"#
    )
}

/// (first address, ECS scope) for a query from `subnet/24`.
fn answer_for(srv: &Server, subnet: &str) -> (String, Option<u8>) {
    ask_from(srv.addr, 1, subnet.parse().unwrap(), 24)
}

fn metrics(admin: SocketAddr) -> String {
    let (status, body) = http(admin, "GET", "/metrics", None, "");
    assert_eq!(status, 200);
    body
}

#[test]
fn a_report_steers_its_network_and_bad_reports_are_refused() {
    let setup = Setup::new(&dns_config(""), &[("example.test.zone", ZONE)]);
    let srv = Server::start(&setup.config());
    let admin = srv.logged_addr("admin listening", "addr=");
    assert_eq!(
        answer_for(&srv, "198.51.100.0").0,
        "10.0.0.1",
        "nothing measured: the pool's first region"
    );
    let good = report("eu-west", "198.51.100.0/24", 4.5);
    let (status, body) = http(admin, "POST", "/v1/latency", Some("wrong"), &good);
    assert_eq!((status, body.as_str()), (401, "wrong token\n"));
    assert_eq!(http(admin, "POST", "/v1/latency", None, &good).0, 401);
    let (status, body) = http(admin, "POST", "/v1/latency", Some(TOKEN), "{\"region\":");
    assert_eq!(status, 400);
    assert!(body.starts_with("body is not a latency report"), "{body}");
    let (status, body) = http(
        admin,
        "POST",
        "/v1/latency",
        Some(TOKEN),
        &report("mars", "198.51.100.0/24", 1.0),
    );
    assert_eq!(status, 404);
    assert!(body.contains("`mars`"), "{body}");
    assert_eq!(
        answer_for(&srv, "198.51.100.0").0,
        "10.0.0.1",
        "refused reports change nothing"
    );

    let (status, body) = http(admin, "POST", "/v1/latency", Some(TOKEN), &good);
    assert_eq!(
        (status, body.as_str()),
        (200, "accepted 1 networks for eu-west\n")
    );
    assert_eq!(
        answer_for(&srv, "198.51.100.0"),
        ("10.0.0.2".into(), Some(24)),
        "measured: eu-west, scope = the measured /24"
    );
    assert_eq!(
        answer_for(&srv, "203.0.113.0").0,
        "10.0.0.1",
        "other networks unchanged"
    );
    // A later report from us-east with a lower RTT takes the network over.
    let (status, _) = http(
        admin,
        "POST",
        "/v1/latency",
        Some(TOKEN),
        &report("us-east", "198.51.100.0/24", 1.0),
    );
    assert_eq!(status, 200);
    assert_eq!(answer_for(&srv, "198.51.100.0").0, "10.0.0.1");

    let m = metrics(admin);
    for line in [
        "roundhouse_latency_reports_total{region=\"eu-west\",result=\"accepted\"} 1",
        "roundhouse_latency_reports_total{region=\"us-east\",result=\"accepted\"} 1",
        "roundhouse_latency_reports_total{region=\"\",result=\"unauthorized\"} 2",
        "roundhouse_latency_reports_total{region=\"\",result=\"malformed\"} 1",
        "roundhouse_latency_reports_total{region=\"\",result=\"unknown_region\"} 1",
        "roundhouse_latency_measured_networks{region=\"eu-west\"} 1",
        "roundhouse_latency_measured_networks{region=\"us-east\"} 1",
    ] {
        assert!(m.contains(line), "missing {line:?} in:\n{m}");
    }
    assert!(
        !m.contains("roundhouse_balancer_client_rtt"),
        "no balancer here:\n{m}"
    );
    assert_eq!(http(admin, "GET", "/nope", None, "").0, 404);
    assert_eq!(http(admin, "GET", "/v1/latency", None, "").0, 405);
}

/// A backend that answers every request with 200 and closes.
fn backend() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for mut s in listener.incoming().map_while(Result::ok).take(64) {
            let mut buf = [0u8; 4096];
            let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
            let _ = s.read(&mut buf);
            let _ = s.write_all(
                b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n",
            );
        }
    });
    addr
}

/// A port nobody listens on right now, for an admin address the configuration must name
/// before the server starts (its own reporter posts to it).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn a_balancer_measures_its_clients_and_reports_them() {
    let port = free_port();
    let target = backend();
    let extra = format!(
        "[target_group.web]\ntargets = [{{ address = \"{target}\" }}]\n\
         [[listener]]\nname = \"web\"\nlisten = \"127.0.0.1:0\"\ntarget_group = \"web\"\n\
         [latency_report]\nto = \"http://127.0.0.1:{port}\"\nregion = \"eu-west\"\ntoken = \"{TOKEN}\"\ninterval = \"1s\"\n"
    );
    let config = dns_config(&extra).replace(
        "127.0.0.1:0\"\ntoken",
        &format!("127.0.0.1:{port}\"\ntoken"),
    );
    let setup = Setup::new(&config, &[("example.test.zone", ZONE)]);
    let srv = Server::start(&setup.config());
    let admin = srv.logged_addr("admin listening", "addr=");
    assert_eq!(admin.port(), port);
    let listener = srv.logged_addr("listening listener=", "addr=");
    assert_eq!(answer_for(&srv, "127.0.0.0").0, "10.0.0.1");
    for _ in 0..3 {
        let (status, body) = http(listener, "GET", "/", None, "");
        assert_eq!((status, body.as_str()), (200, "ok\n"));
    }
    srv.eventually("the report arrives", || {
        metrics(admin).contains("roundhouse_latency_measured_networks{region=\"eu-west\"} 1")
    });
    srv.wait_log("latency report accepted region=eu-west networks=1");
    assert_eq!(
        answer_for(&srv, "127.0.0.0"),
        ("10.0.0.2".into(), Some(24)),
        "the measured 127.0.0.0/24 goes to eu-west"
    );
    let m = metrics(admin);
    assert!(
        m.contains("roundhouse_balancer_client_rtt_seconds_count 3\n"),
        "{m}"
    );
    assert!(
        m.contains("roundhouse_balancer_client_rtt_networks 1\n"),
        "{m}"
    );
}
