//! Client limits of the HTTP balancer through the real binary and raw sockets: conflicting
//! body framings (request smuggling), header and request-target sizes, slow headers and
//! bodies, and the connection cap with its 503 (in plain HTTP and over TLS).

mod common;
use common::http::{Backend, Reply, metric, send, serve_balancer};
use common::tls::{self, TestCert};
use common::*;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A balancer with one backend; `listener` is added to the `[[listener]]` section.
fn start(backend: &Backend, listener: &str) -> (Setup, Server, SocketAddr, SocketAddr) {
    start_with(backend, listener, None)
}

/// [`start`], with `cert` written beside the configuration (for an https listener).
fn start_with(
    backend: &Backend,
    listener: &str,
    cert: Option<&TestCert>,
) -> (Setup, Server, SocketAddr, SocketAddr) {
    let config = format!(
        "{CONFIG}[admin]\nlisten = \"127.0.0.1:0\"\n\
         [target_group.web]\ntargets = [{{ address = \"{}\" }}]\n\
         [[listener]]\nname = \"web\"\nlisten = \"127.0.0.1:0\"\ntarget_group = \"web\"\n{listener}",
        backend.addr
    );
    let setup = Setup::new(
        &config,
        &[(
            "example.test.zone",
            "$TTL 60\n@ SOA ns hm 1 2 3 4 5\n@ NS ns\nns A 192.0.2.1\n",
        )],
    );
    if let Some(cert) = cert {
        cert.write(setup.dir.path());
    }
    let srv = Server::start(&setup.config());
    let lb = srv.logged_addr("listening listener=", "addr=");
    let admin = srv.logged_addr("admin listening", "addr=");
    (setup, srv, lb, admin)
}

/// Connections open on the listener, and connections it refused.
const OPEN: &str = "roundhouse_listener_connections{listener=\"web\"}";
const REFUSED: &str = "roundhouse_listener_connections_refused_total{listener=\"web\"}";

/// Reads until the server closes (or 5 s): what it said, and how long that took.
fn read_to_close(s: &mut TcpStream) -> (String, Duration) {
    let started = Instant::now();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    (
        String::from_utf8_lossy(&out).into_owned(),
        started.elapsed(),
    )
}

fn status(r: &Reply) -> u16 {
    r.status
}

/// A target that records every byte it receives and answers each request head with 200
/// (it reads bodies by Content-Length only, as a naive server would).
fn capturing_target() -> (SocketAddr, Arc<Mutex<Vec<u8>>>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            let sink = sink.clone();
            std::thread::spawn(move || {
                s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                let mut buf = [0u8; 4096];
                while let Ok(n) = s.read(&mut buf) {
                    if n == 0 {
                        return;
                    }
                    sink.lock().unwrap().extend_from_slice(&buf[..n]);
                    let ok = b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\nok\n";
                    if s.write_all(ok).is_err() {
                        return;
                    }
                }
            });
        }
    });
    (addr, seen)
}

/// Sends `request` on a new connection: what the server said, and whether it then closed
/// the connection (within 5 s).
fn said_and_closed(lb: SocketAddr, request: &[u8]) -> (String, bool) {
    let mut s = TcpStream::connect(lb).unwrap();
    s.write_all(request).unwrap();
    let (said, took) = read_to_close(&mut s);
    (said, took < Duration::from_secs(4))
}

#[test]
fn conflicting_framings_get_400_and_never_reach_a_target() {
    let (target, seen) = capturing_target();
    let (_setup, _srv, lb) = serve_balancer(&format!(
        "[target_group.web]\ntargets = [{{ address = \"{target}\" }}]\n\
         [[listener]]\nname = \"web\"\nlisten = \"127.0.0.1:0\"\ntarget_group = \"web\"\n"
    ));
    let rejected: [&[u8]; 9] = [
        // CL.TE: a front end trusting Content-Length would forward "0\r\n\r\nG" as the body
        // and a chunked back end would read "G..." as the start of a second request.
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nG",
        // TE.CL, the other order.
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n8\r\nSMUGGLED\r\n0\r\n\r\n",
        // Two different lengths, in two lines and in one.
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nabcde",
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4, 5\r\n\r\nabcde",
        // Transfer codings other than one chunked.
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\nabcd",
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        // An obfuscated header name.
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n",
    ];
    for req in rejected {
        let (said, closed) = said_and_closed(lb, req);
        let req = String::from_utf8_lossy(req);
        assert!(said.starts_with("HTTP/1.1 400 "), "{req:?} got {said:?}");
        assert!(closed, "{req:?}: the connection stayed open");
    }
    assert_eq!(
        String::from_utf8_lossy(&seen.lock().unwrap()),
        "",
        "a target saw a rejected request"
    );
    // On a kept-alive connection, the clean request before a conflicting one is forwarded
    // and the conflicting one refused: the target sees the first only.
    let (said, _) = said_and_closed(
        lb,
        b"POST /first HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello\
          POST /second HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nG",
    );
    assert!(said.starts_with("HTTP/1.1 200"), "{said}");
    assert_eq!(said.matches("HTTP/1.1 400 ").count(), 1, "{said}");
    // A lone chunked coding is fine: the body reaches the target re-framed with a length.
    let mut s = TcpStream::connect(lb).unwrap();
    s.write_all(b"POST /chunked HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n7\r\nchunked\r\n0\r\n\r\n")
        .unwrap();
    let (said, _) = read_to_close(&mut s);
    assert!(said.starts_with("HTTP/1.1 200"), "{said}");
    let seen = String::from_utf8_lossy(&seen.lock().unwrap()).to_ascii_lowercase();
    assert_eq!(seen.matches("post /first http/1.1").count(), 1, "{seen}");
    assert!(!seen.contains("/second"), "{seen}");
    assert!(seen.contains("post /chunked http/1.1"), "{seen}");
    assert!(seen.contains("content-length: 7\r\n"), "{seen}");
    assert!(seen.ends_with("\r\n\r\nchunked"), "{seen:?}");
    assert!(!seen.contains("transfer-encoding"), "{seen}");
}

#[test]
fn oversized_headers_get_431_and_long_targets_414() {
    let b = Backend::start(0);
    let (_s, _srv, lb, _admin) = start(&b, "max_header_bytes = 8192\nmax_uri_bytes = 1024\n");
    let big = "a".repeat(9000);
    let r = send(
        lb,
        &format!("GET / HTTP/1.1\r\nHost: x\r\nX-Big: {big}\r\nConnection: close\r\n\r\n"),
    );
    assert_eq!(status(&r), 431, "{r:?}");
    let path = "/p".repeat(600);
    let r = send(
        lb,
        &format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
    );
    assert_eq!(status(&r), 414, "{r:?}");
    let r = send(
        lb,
        &format!(
            "GET /{} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            "q".repeat(1000)
        ),
    );
    assert_eq!(status(&r), 200, "{r:?}");
}

#[test]
fn slow_headers_are_cut_off_and_slow_bodies_get_408() {
    let b = Backend::start(0);
    let (_s, _srv, lb, _admin) = start(&b, "header_timeout = \"1s\"\nbody_timeout = \"1s\"\n");
    // Slowloris: a header line every 300 ms, never finished.
    let mut s = TcpStream::connect(lb).unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").unwrap();
    let started = Instant::now();
    let mut cut = false;
    for i in 0..20 {
        std::thread::sleep(Duration::from_millis(300));
        if s.write_all(format!("X-{i}: y\r\n").as_bytes()).is_err() {
            cut = true;
            break;
        }
        let mut b = [0u8; 256];
        s.set_read_timeout(Some(Duration::from_millis(1))).unwrap();
        if s.read(&mut b).is_ok() {
            cut = true;
            break;
        }
    }
    let took = started.elapsed();
    assert!(cut, "a trickled header was never cut off");
    assert!(took < Duration::from_secs(4), "cut off only after {took:?}");
    // A body trickled in gets 408 and the connection closes.
    let mut s = TcpStream::connect(lb).unwrap();
    s.write_all(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nab")
        .unwrap();
    let (said, took) = read_to_close(&mut s);
    assert!(said.starts_with("HTTP/1.1 408"), "{said}");
    assert!(
        took >= Duration::from_millis(800) && took < Duration::from_secs(4),
        "{took:?}"
    );
}

#[test]
fn connections_over_the_cap_get_503_and_are_counted() {
    let b = Backend::start(0);
    let (_s, _srv, lb, admin) = start(&b, "max_connections = 2\n");
    let first = TcpStream::connect(lb).unwrap();
    let second = TcpStream::connect(lb).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let mut third = TcpStream::connect(lb).unwrap();
    let (said, _) = read_to_close(&mut third);
    assert!(said.starts_with("HTTP/1.1 503"), "{said}");
    assert!(said.contains("max_connections"), "{said}");
    assert_eq!(metric(admin, REFUSED), Some(1));
    assert_eq!(metric(admin, OPEN), Some(2));
    // A freed place takes the next client.
    drop(first);
    assert!(poll(|| {
        let r = send(lb, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        r.status == 200
    }));
    drop(second);
}

#[test]
fn a_tcp_listener_over_its_cap_closes_the_extra_connection() {
    let b = Backend::start(0);
    let (_s, _srv, lb, admin) = start(&b, "protocol = \"tcp\"\nmax_connections = 1\n");
    let mut first = TcpStream::connect(lb).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let mut second = TcpStream::connect(lb).unwrap();
    let (said, took) = read_to_close(&mut second);
    assert_eq!(said, "", "a tcp listener answers nothing of its own");
    assert!(took < Duration::from_secs(2), "{took:?}");
    assert_eq!(metric(admin, REFUSED), Some(1));
    // The admitted connection still reaches the target.
    first
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let (said, _) = read_to_close(&mut first);
    assert!(said.starts_with("HTTP/1.1 200"), "{said}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_https_listener_over_its_cap_answers_503_after_the_handshake() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let b = Backend::start(0);
    let cert = TestCert::new();
    let listener = format!("{}max_connections = 1\n", tls::HTTPS);
    let (_s, _srv, lb, admin) = start_with(&b, &listener, Some(&cert));
    let reaches = |series: &'static str, n: u64| {
        tokio::task::spawn_blocking(move || poll(|| metric(admin, series) == Some(n)))
    };
    let mut first = cert.connect(lb, &[]).await.expect("TLS handshake");
    assert!(reaches(OPEN, 1).await.unwrap());
    // One more: the handshake completes (HTTP/1.1 chosen over h2), then 503 and close.
    let mut second = cert
        .connect(lb, &[b"h2", b"http/1.1"])
        .await
        .expect("TLS handshake over the cap");
    assert_eq!(second.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
    let mut said = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), second.read_to_end(&mut said)).await;
    let said = String::from_utf8_lossy(&said);
    assert!(
        matches!(read, Ok(Ok(_))),
        "not closed cleanly: {read:?}; {said}"
    );
    assert!(
        said.starts_with("HTTP/1.1 503 Service Unavailable\r\n"),
        "{said}"
    );
    assert!(said.contains("retry-after: 1\r\n"), "{said}");
    assert!(reaches(REFUSED, 1).await.unwrap());
    // The admitted connection is served as usual.
    first
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut reply = String::new();
    let _ = first.read_to_string(&mut reply).await;
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    assert!(reply.contains("backend 0"), "{reply}");
}
