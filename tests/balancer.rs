//! The HTTP load balancer through the real binary: round robin over live backends,
//! X-Forwarded-For, a killed target skipped at once and then taken out by its health check,
//! 503 when nothing is ready.

mod common;
use common::http::{Backend, get, send, serve_balancer};
use common::*;
use std::collections::HashMap;
use std::net::SocketAddr;

fn start(backends: &[Backend], extra: &str) -> (Setup, Server, SocketAddr) {
    start_weighted(backends, &vec![1; backends.len()], extra)
}

fn start_weighted(
    backends: &[Backend],
    weights: &[u32],
    extra: &str,
) -> (Setup, Server, SocketAddr) {
    let targets: Vec<String> = backends
        .iter()
        .zip(weights)
        .map(|(b, w)| format!("{{ address = \"{}\", weight = {w} }}", b.addr))
        .collect();
    let config = format!(
        "[health_check.hc]\nprotocol = \"tcp\"\ninterval = \"1s\"\ntimeout = \"500ms\"\nhealthy_threshold = 2\nunhealthy_threshold = 2\n\
         [target_group.web]\nhealth_check = \"hc\"\n{extra}targets = [{}]\n[[listener]]\nname = \"web\"\nlisten = \"127.0.0.1:0\"\ntarget_group = \"web\"\n",
        targets.join(", ")
    );
    serve_balancer(&config)
}

#[test]
fn round_robin_over_three_targets_with_forwarded_for() {
    let b: Vec<Backend> = (0..3).map(Backend::start).collect();
    let (_s, _srv, lb) = start(&b, "");
    let mut counts: HashMap<String, usize> = HashMap::new();
    for _ in 0..300 {
        let (status, body) = get(lb);
        assert_eq!(status, 200);
        *counts.entry(body).or_default() += 1;
    }
    assert_eq!(counts.len(), 3, "{counts:?}");
    assert!(
        counts.values().all(|&c| c == 100),
        "round robin: {counts:?}"
    );
    assert_eq!(*b[0].xff.lock().unwrap(), "127.0.0.1");
}

#[test]
fn a_killed_target_costs_no_request_and_is_taken_out() {
    let b: Vec<Backend> = (0..3).map(Backend::start).collect();
    let (_s, srv, lb) = start(&b, "algorithm = \"least-outstanding\"\n");
    for _ in 0..9 {
        assert_eq!(get(lb).0, 200); // pooled connections to every target exist now
    }
    b[1].kill();
    // Refused connects and reset idempotent requests go to another target: no client sees
    // an error.
    for _ in 0..60 {
        let (status, body) = get(lb);
        assert_eq!(status, 200);
        assert_ne!(body, "backend 1");
    }
    srv.wait_log("endpoint down");
}

#[test]
fn no_ready_target_is_503() {
    let b: Vec<Backend> = (0..2).map(Backend::start).collect();
    let (_s, srv, lb) = start(&b, "");
    for x in &b {
        x.kill();
    }
    srv.eventually("both targets down", || get(lb).0 == 503);
    // The balancer's own answer carries a Date, on the direct HTTP/1.1 path and on hyper's
    // (where an HTTP/1.0 request goes).
    for version in ["1.1", "1.0"] {
        let r = send(
            lb,
            &format!("GET / HTTP/{version}\r\nHost: www.example.test\r\nConnection: close\r\n\r\n"),
        );
        assert_eq!(r.status, 503, "HTTP/{version}");
        let date = r.header("date").expect("a Date header");
        let age = std::time::SystemTime::now()
            .duration_since(httpdate::parse_http_date(date).expect("an HTTP date"))
            .unwrap_or_default();
        assert!(
            age < std::time::Duration::from_secs(60),
            "HTTP/{version}: date {date}"
        );
    }
}

#[test]
fn weighted_round_robin_three_to_one() {
    let b: Vec<Backend> = (0..2).map(Backend::start).collect();
    let (_s, _srv, lb) = start_weighted(&b, &[3, 1], "algorithm = \"weighted-round-robin\"\n");
    let mut counts: HashMap<String, usize> = HashMap::new();
    for _ in 0..400 {
        *counts.entry(get(lb).1).or_default() += 1;
    }
    assert_eq!(counts.get("backend 0"), Some(&300), "{counts:?}");
    assert_eq!(counts.get("backend 1"), Some(&100), "{counts:?}");
}

#[test]
fn killing_one_of_three_targets_under_load_fails_no_get() {
    let b: Vec<Backend> = (0..3).map(Backend::start).collect();
    let (_s, srv, lb) = start(&b, "");
    srv.eventually("all three targets serve", || {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..6 {
            seen.insert(get(lb).1);
        }
        seen.len() == 3
    });
    // Eight keep-alive clients, 300 GETs each; target 1 dies when a third is done.
    let done = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let clients: Vec<_> = (0..8)
        .map(|_| {
            let done = done.clone();
            std::thread::spawn(move || {
                let mut c = common::http::KeepAlive::new(lb);
                let mut failures = Vec::new();
                for _ in 0..300 {
                    match c.get("/") {
                        Ok((200, _)) => {}
                        other => failures.push(format!("{other:?}")),
                    }
                    done.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                failures
            })
        })
        .collect();
    while done.load(std::sync::atomic::Ordering::Relaxed) < 800 {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    b[1].kill();
    let failures: Vec<String> = clients
        .into_iter()
        .flat_map(|c| c.join().unwrap())
        .collect();
    assert_eq!(
        failures,
        Vec::<String>::new(),
        "2,400 GETs, one target killed"
    );
    srv.wait_log("endpoint down");
}
