//! Target-group behaviour through the real binary: sticky sessions (and moving when the
//! sticky target dies), passive ejection of a failing target, deregistration with draining
//! on reload, and the per-target metrics on the admin server.

mod common;
use common::http::{Backend, Reply, send};
use common::*;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::Duration;

fn config(backends: &[&Backend], group: &str) -> String {
    let targets: Vec<String> = backends
        .iter()
        .map(|b| format!("{{ address = \"{}\" }}", b.addr))
        .collect();
    format!(
        "[dns]\nlisten = [\"127.0.0.1:0\"]\n[admin]\nlisten = \"127.0.0.1:0\"\n\
         [health_check.hc]\nprotocol = \"tcp\"\ninterval = \"1s\"\ntimeout = \"500ms\"\nhealthy_threshold = 2\nunhealthy_threshold = 2\n\
         [target_group.web]\nhealth_check = \"hc\"\n{group}\ntargets = [{}]\n\
         [[listener]]\nname = \"edge\"\nlisten = \"127.0.0.1:0\"\ntarget_group = \"web\"\n",
        targets.join(", ")
    )
}

fn start(backends: &[&Backend], group: &str) -> (Setup, Server, SocketAddr) {
    let setup = Setup::new(&config(backends, group), &[]);
    let srv = Server::start(&setup.config());
    let lb = srv.logged_addr("listening listener=", "addr=");
    srv.eventually("every target serves", || {
        let seen: std::collections::HashSet<String> =
            (0..backends.len() * 3).map(|_| get(lb, "").body).collect();
        seen.len() == backends.len()
    });
    (setup, srv, lb)
}

fn get(lb: SocketAddr, cookie: &str) -> Reply {
    get_path(lb, "/", cookie)
}

fn get_path(lb: SocketAddr, path: &str, cookie: &str) -> Reply {
    let cookie = if cookie.is_empty() {
        String::new()
    } else {
        format!("Cookie: {cookie}\r\n")
    };
    send(
        lb,
        &format!("GET {path} HTTP/1.1\r\nHost: x\r\n{cookie}Connection: close\r\n\r\n"),
    )
}

/// The `name=value` of a Set-Cookie header.
fn cookie_of(r: &Reply) -> String {
    let set = r.header("set-cookie").expect("a Set-Cookie header");
    set.split(';').next().unwrap().to_string()
}

#[test]
fn a_sticky_client_keeps_its_target_and_moves_when_it_dies() {
    let b = [Backend::start(0), Backend::start(1), Backend::start(2)];
    let stickiness = "stickiness = { type = \"lb-cookie\", duration = \"1h\" }";
    let (_s, _srv, lb) = start(&[&b[0], &b[1], &b[2]], stickiness);
    let first = get(lb, "");
    let cookie = cookie_of(&first);
    assert!(cookie.starts_with("rh_web="), "{cookie}");
    assert!(first.header("set-cookie").unwrap().contains("Max-Age=3600"));
    for _ in 0..20 {
        assert_eq!(
            get(lb, &cookie).body,
            first.body,
            "the same target every time"
        );
    }
    let id: usize = first.body.trim_start_matches("backend ").parse().unwrap();
    b[id].kill();
    let moved = get(lb, &cookie);
    assert_eq!(moved.status, 200);
    assert_ne!(moved.body, first.body);
    let new_cookie = cookie_of(&moved);
    assert_ne!(new_cookie, cookie, "a new cookie names the new target");
    for _ in 0..10 {
        assert_eq!(get(lb, &new_cookie).body, moved.body);
    }
}

#[test]
fn app_cookie_stickiness_starts_with_the_application_session() {
    let b = [Backend::start(0), Backend::start(1), Backend::start(2)];
    let stickiness =
        "stickiness = { type = \"app-cookie\", cookie = \"SESSIONID\", duration = \"10m\" }";
    let (_s, _srv, lb) = start(&[&b[0], &b[1], &b[2]], stickiness);
    assert!(
        get(lb, "").header("set-cookie").is_none(),
        "no session, no cookie"
    );
    let login = get_path(lb, "/login", "");
    let ours: Vec<&String> = login
        .headers
        .iter()
        .filter(|h| h.starts_with("set-cookie: rh_web="))
        .collect();
    assert_eq!(ours.len(), 1, "{:?}", login.headers);
    let cookie = ours[0]
        .trim_start_matches("set-cookie: ")
        .split(';')
        .next()
        .unwrap()
        .to_string();
    for _ in 0..15 {
        let r = get(lb, &format!("SESSIONID=s1; {cookie}"));
        assert_eq!(r.body, login.body, "the session stays on its target");
    }
}

#[test]
fn a_target_answering_5xx_is_ejected() {
    let b = [Backend::start(0), Backend::start(1)];
    let passive = "passive_failures = 3\npassive_ejection = \"60s\"";
    let (_s, srv, lb) = start(&[&b[0], &b[1]], passive);
    b[0].fail.store(true, Ordering::SeqCst);
    let replies: Vec<Reply> = (0..40).map(|_| get(lb, "")).collect();
    let errors = replies.iter().filter(|r| r.status == 500).count();
    assert_eq!(
        errors, 3,
        "three failures eject it; after that only the healthy target answers"
    );
    assert!(replies[10..].iter().all(|r| r.body == "backend 1"));
    srv.wait_log("target ejected group=web");
}

#[test]
fn a_deregistered_target_drains_its_requests_in_flight() {
    let b = [Backend::start(0), Backend::start(1)];
    let delay = "deregistration_delay = \"20s\"\nalgorithm = \"least-outstanding\"";
    let (setup, srv, lb) = start(&[&b[0], &b[1]], delay);
    // Two slow requests: one lands on each target.
    let slow: Vec<_> = (0..2)
        .map(|_| {
            std::thread::spawn(move || {
                send(
                    lb,
                    "GET /sleep/1500 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                )
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    std::fs::write(setup.config(), config(&[&b[1]], delay)).unwrap();
    srv.wait_log("target drained group=web");
    for s in slow {
        let r = s.join().unwrap();
        assert_eq!(r.status, 200, "in-flight requests finish: {r:?}");
    }
    for _ in 0..10 {
        assert_eq!(
            get(lb, "").body,
            "backend 1",
            "no new request to the removed target"
        );
    }
    let log = srv.log.lock().unwrap().clone();
    assert!(
        log.contains("abandoned=0"),
        "it drained before the delay ran out"
    );
}

#[test]
fn metrics_count_requests_per_target() {
    let b = [Backend::start(0), Backend::start(1)];
    let (_s, srv, lb) = start(&[&b[0], &b[1]], "");
    let admin = srv.logged_addr("admin listening", "addr=");
    for _ in 0..10 {
        get(lb, "");
    }
    let m = send(
        admin,
        "GET /metrics HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(m.status, 200);
    let line = format!(
        "roundhouse_balancer_requests_total{{group=\"web\",target=\"{}\",class=\"2xx\"}}",
        b[0].addr
    );
    let count: u64 = m
        .body
        .lines()
        .find_map(|l| l.strip_prefix(&line))
        .unwrap_or_else(|| panic!("no {line} in\n{}", m.body))
        .trim()
        .parse()
        .unwrap();
    assert!(count >= 5, "{count}");
    assert!(
        m.body
            .contains("roundhouse_balancer_response_seconds_bucket")
    );
}
