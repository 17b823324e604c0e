//! Listener rules and listener behaviour through the real binary: routing by host, path,
//! header, query and method; redirects and fixed responses; the balancer's own health path;
//! the header timeout against slow clients; 504 from a slow target; a reload that changes
//! the rules while a request is in flight.

mod common;
use common::http::{Backend, send};
use common::*;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

fn config(web: &Backend, api: &Backend, rules: &str) -> String {
    format!(
        "[dns]\nlisten = [\"127.0.0.1:0\"]\n\
         [health_check.hc]\nprotocol = \"tcp\"\ninterval = \"1s\"\ntimeout = \"500ms\"\nhealthy_threshold = 2\nunhealthy_threshold = 2\n\
         [target_group.web]\nhealth_check = \"hc\"\ntargets = [{{ address = \"{}\" }}]\n\
         [target_group.api]\nhealth_check = \"hc\"\ntargets = [{{ address = \"{}\" }}]\n\
         [[listener]]\nname = \"edge\"\nlisten = \"127.0.0.1:0\"\ntarget_group = \"web\"\n\
         header_timeout = \"1s\"\ntarget_timeout = \"700ms\"\n{rules}",
        web.addr, api.addr
    )
}

const RULES: &str = r#"
[[listener.rule]]
priority = 10
host = ["api.example.test", "*.api.example.test"]
target_group = "api"

[[listener.rule]]
priority = 20
path = ["/old/*"]
redirect = { status = 301, protocol = "https", port = "443", path = "/new/#{path}" }

[[listener.rule]]
priority = 30
path = ["/maintenance"]
method = ["GET", "HEAD"]
fixed_response = { status = 503, content_type = "text/html", body = "<p>back soon</p>" }

[[listener.rule]]
priority = 40
header = { "x-canary" = ["yes", "true"] }
target_group = "api"

[[listener.rule]]
priority = 50
query = { "backend" = ["api*"] }
target_group = "api"

[[listener.rule]]
priority = 60
source = ["10.0.0.0/8"]
fixed_response = { status = 403, body = "private network only" }
"#;

fn start(rules: &str) -> (Setup, Server, SocketAddr, [Backend; 2]) {
    let b = [Backend::start(0), Backend::start(1)];
    let setup = Setup::new(&config(&b[0], &b[1], rules), &[]);
    let srv = Server::start(&setup.config());
    let addr = srv.logged_addr("listening listener=", "addr=");
    // Both targets pass their first check before traffic is sent.
    srv.eventually("targets ready", || {
        send(addr, &req("GET", "api.example.test", "/", "")).status == 200
            && send(addr, &req("GET", "www.example.test", "/", "")).status == 200
    });
    (setup, srv, addr, b)
}

fn req(method: &str, host: &str, path: &str, extra: &str) -> String {
    format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\n{extra}Connection: close\r\n\r\n")
}

#[test]
fn rules_route_redirect_and_answer_in_priority_order() {
    let (_s, _srv, lb, _b) = start(RULES);
    let table = [
        ("GET", "www.example.test", "/", "", 200, "backend 0"),
        ("GET", "API.example.test:8080", "/x", "", 200, "backend 1"),
        ("GET", "eu.api.example.test", "/", "", 200, "backend 1"),
        (
            "GET",
            "www.example.test",
            "/maintenance",
            "",
            503,
            "<p>back soon</p>",
        ),
        (
            "POST",
            "www.example.test",
            "/maintenance",
            "Content-Length: 0\r\n",
            200,
            "backend 0",
        ),
        (
            "GET",
            "www.example.test",
            "/",
            "X-Canary: TRUE\r\n",
            200,
            "backend 1",
        ),
        (
            "GET",
            "www.example.test",
            "/",
            "X-Canary: no\r\n",
            200,
            "backend 0",
        ),
        (
            "GET",
            "www.example.test",
            "/?a=1&backend=api-2",
            "",
            200,
            "backend 1",
        ),
        (
            "GET",
            "www.example.test",
            "/?backend=web",
            "",
            200,
            "backend 0",
        ),
    ];
    for (method, host, path, extra, status, body) in table {
        let r = send(lb, &req(method, host, path, extra));
        assert_eq!(
            (r.status, r.body.as_str()),
            (status, body),
            "{method} {host}{path} {extra}"
        );
    }
    let fixed = send(lb, &req("GET", "www.example.test", "/maintenance", ""));
    assert_eq!(fixed.header("content-type"), Some("text/html"));
    let moved = send(lb, &req("GET", "www.example.test", "/old/a/b?x=1", ""));
    assert_eq!(moved.status, 301);
    assert_eq!(
        moved.header("location"),
        Some("https://www.example.test/new/old/a/b?x=1")
    );
}

#[test]
fn health_path_follows_target_readiness() {
    let (_s, srv, lb, b) = start("");
    let r = send(lb, &req("GET", "lb", "/health", ""));
    assert_eq!((r.status, r.body.as_str()), (200, "ready"));
    b[0].kill();
    srv.eventually("503 once the only target is down", || {
        send(lb, &req("GET", "lb", "/health", "")).status == 503
    });
}

#[test]
fn a_slow_client_is_cut_off_after_the_header_timeout() {
    let (_s, _srv, lb, _b) = start("");
    let mut s = TcpStream::connect(lb).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let begun = Instant::now();
    // Slowloris: a header that never ends, one line at a time.
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").unwrap();
    let mut sink = Vec::new();
    for _ in 0..20 {
        std::thread::sleep(Duration::from_millis(200));
        if s.write_all(b"X-a: b\r\n").is_err() {
            break;
        }
    }
    let _ = s.read_to_end(&mut sink);
    let held = begun.elapsed();
    assert!(
        held < Duration::from_secs(5),
        "connection held {held:?} with a 1 s header timeout"
    );
    assert!(
        !String::from_utf8_lossy(&sink).contains("200"),
        "no request was forwarded"
    );
}

#[test]
fn a_slow_target_gives_504() {
    let (_s, _srv, lb, _b) = start("");
    let r = send(lb, &req("GET", "www.example.test", "/sleep/2000", ""));
    assert_eq!(r.status, 504);
    let r = send(lb, &req("GET", "www.example.test", "/sleep/10", ""));
    assert_eq!(r.status, 200);
}

#[test]
fn a_reload_changes_rules_without_dropping_a_request_in_flight() {
    let (setup, srv, lb, b) = start("");
    let slow = std::thread::spawn(move || {
        send(lb, &req("GET", "www.example.test", "/sleep/600", "")).status
    });
    std::thread::sleep(Duration::from_millis(100));
    let rule = "[[listener.rule]]\npriority = 1\npath = [\"/new\"]\nfixed_response = { status = 200, body = \"new rule\" }\n";
    std::fs::write(setup.config(), config(&b[0], &b[1], rule)).unwrap();
    srv.eventually("the new rule answers", || {
        send(lb, &req("GET", "x", "/new", "")).body == "new rule"
    });
    assert_eq!(slow.join().unwrap(), 200, "the in-flight request completed");
    assert_eq!(srv.logged_addr("listening listener=", "addr="), lb);
}

#[test]
fn an_oversized_header_is_refused_with_431() {
    let (_s, _srv, lb, _b) = start("");
    let big = format!("X-Big: {}\r\n", "a".repeat(70_000));
    let r = send(lb, &req("GET", "www.example.test", "/", &big));
    assert_eq!(r.status, 431);
}
