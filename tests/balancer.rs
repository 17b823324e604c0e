//! The HTTP load balancer through the real binary: round robin over live backends,
//! X-Forwarded-For, a killed target skipped at once and then taken out by its health check,
//! 503 when nothing is ready.

mod common;
use common::*;
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A backend answering `backend N` and remembering the last X-Forwarded-For it saw.
struct Backend {
    addr: SocketAddr,
    alive: Arc<AtomicBool>,
    xff: Arc<Mutex<String>>,
    conns: Arc<Mutex<Vec<TcpStream>>>,
}

impl Backend {
    fn start(id: usize) -> Backend {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let alive = Arc::new(AtomicBool::new(true));
        let xff = Arc::new(Mutex::new(String::new()));
        let conns = Arc::new(Mutex::new(Vec::new()));
        let (a, x, c) = (alive.clone(), xff.clone(), conns.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if !a.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(mut s) = stream else { continue };
                c.lock().unwrap().extend(s.try_clone());
                let (a, x) = (a.clone(), x.clone());
                std::thread::spawn(move || serve(&mut s, id, &a, &x));
            }
        });
        Backend {
            addr,
            alive,
            xff,
            conns,
        }
    }

    /// Like a crashed process: the listener and every open connection go away.
    fn kill(&self) {
        self.alive.store(false, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
        for c in self.conns.lock().unwrap().drain(..) {
            let _ = c.shutdown(std::net::Shutdown::Both);
        }
    }
}

/// Keep-alive HTTP/1.1: answer every request on the connection.
fn serve(s: &mut TcpStream, id: usize, alive: &AtomicBool, xff: &Mutex<String>) {
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while alive.load(Ordering::SeqCst) {
        let Ok(n) = s.read(&mut chunk) else { return };
        if n == 0 {
            return;
        }
        buf.extend_from_slice(&chunk[..n]);
        while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_string();
            buf.drain(..end + 4);
            for line in head.lines() {
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("x-forwarded-for: ") {
                    *xff.lock().unwrap() = v.to_string();
                }
            }
            let body = format!("backend {id}\n");
            let reply = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
            if s.write_all(reply.as_bytes()).is_err() {
                return;
            }
        }
    }
}

/// GET / through the balancer: (status, body).
fn get(addr: SocketAddr) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: www.example.test\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = out
        .split("\r\n\r\n")
        .nth(1)
        .unwrap_or("")
        .trim()
        .to_string();
    (status, body)
}

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
        "{CONFIG}[health_check.hc]\nprotocol = \"tcp\"\ninterval = \"1s\"\ntimeout = \"500ms\"\nhealthy_threshold = 2\nunhealthy_threshold = 2\n\
         [target_group.web]\nhealth_check = \"hc\"\n{extra}targets = [{}]\n[[listener]]\nname = \"web\"\nlisten = \"127.0.0.1:0\"\ntarget_group = \"web\"\n",
        targets.join(", ")
    );
    let setup = Setup::new(
        &config,
        &[(
            "example.test.zone",
            "$TTL 60\n@ SOA ns hm 1 2 3 4 5\n@ NS ns\nns A 192.0.2.1\n",
        )],
    );
    let srv = Server::start(&setup.config());
    let addr = srv.logged_addr("http listening", "addr=");
    (setup, srv, addr)
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
