//! The balancer's direct HTTP/1.1 path through the real binary, against a scripted target
//! that answers in every body framing: responses pass on unchanged over kept target
//! connections, pipelined requests are answered in order, a request with a body moves the
//! connection to the general path mid-way, a kept connection the target closed is replaced,
//! and a response delimited by the target's close closes the client connection.

mod common;
use common::http::serve_balancer;
use common::*;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Requests a scripted target saw: (connection number, request line, body).
type Seen = Arc<Mutex<Vec<(usize, String, String)>>>;

/// A target whose answer depends on the path (see `answer`).
fn scripted_target() -> (SocketAddr, Seen) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let seen: Seen = Arc::default();
    let log = seen.clone();
    std::thread::spawn(move || {
        for (n, stream) in listener.incoming().enumerate() {
            let Ok(stream) = stream else { continue };
            let log = log.clone();
            std::thread::spawn(move || serve(n, stream, &log));
        }
    });
    (addr, seen)
}

fn serve(conn: usize, stream: TcpStream, seen: &Seen) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut out = stream;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut length = 0;
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            if h == "\r\n" {
                break;
            }
            let h = h.to_ascii_lowercase();
            if let Some(v) = h.strip_prefix("content-length:") {
                length = v.trim().parse().unwrap();
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap();
        let line = line.trim_end().to_string();
        let path = line.split(' ').nth(1).unwrap_or("").to_string();
        seen.lock()
            .unwrap()
            .push((conn, line.clone(), String::from_utf8_lossy(&body).into()));
        let (reply, close): (String, bool) = match path.split('?').next().unwrap_or("") {
            "/chunked" => (
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
                 5\r\nhello\r\n6;x=y\r\n world\r\n0\r\nX-Trailer: 1\r\n\r\n"
                    .into(),
                false,
            ),
            "/close" => ("HTTP/1.1 200 OK\r\n\r\nuntil the end".into(), true),
            // Answered, then the target closes the connection as an idle timeout would.
            "/bye" => (
                "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nbye".into(),
                true,
            ),
            "/early" => (
                "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n\
                 HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nlater"
                    .into(),
                false,
            ),
            _ => (
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: keep-alive\r\n\r\n{path}",
                    path.len()
                ),
                false,
            ),
        };
        // A response to HEAD has the head only.
        let reply = match line.starts_with("HEAD") {
            true => reply
                .split_inclusive("\r\n\r\n")
                .next()
                .unwrap_or("")
                .to_string(),
            false => reply,
        };
        if out.write_all(reply.as_bytes()).is_err() || close {
            return;
        }
    }
}

fn start(target: SocketAddr) -> (Setup, Server, SocketAddr) {
    serve_balancer(&format!(
        "[target_group.web]\ntargets = [{{ address = \"{target}\" }}]\n\
         [[listener]]\nname = \"web\"\nlisten = \"127.0.0.1:0\"\ntarget_group = \"web\"\n\
         health_path = \"/healthz\"\n"
    ))
}

/// One response read off a keep-alive connection: (status, headers lowercased, body).
fn response(r: &mut BufReader<TcpStream>) -> (u16, Vec<String>, String) {
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    let status = line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        r.read_line(&mut h).unwrap();
        if h == "\r\n" || h.is_empty() {
            break;
        }
        headers.push(h.trim_end().to_ascii_lowercase());
    }
    let has = |h: &str| headers.iter().any(|x| x == h);
    let mut body = Vec::new();
    if let Some(n) = headers
        .iter()
        .find_map(|h| h.strip_prefix("content-length: "))
    {
        body.resize(n.parse().unwrap(), 0);
        r.read_exact(&mut body).unwrap();
    } else if has("transfer-encoding: chunked") {
        // Kept as it came, to the empty line after the last chunk's trailers.
        let mut last = false;
        loop {
            let mut l = String::new();
            r.read_line(&mut l).unwrap();
            body.extend_from_slice(l.as_bytes());
            last |= l == "0\r\n";
            if last && l == "\r\n" {
                break;
            }
        }
    } else {
        r.read_to_end(&mut body).unwrap();
    }
    (status, headers, String::from_utf8(body).unwrap())
}

fn client(lb: SocketAddr) -> BufReader<TcpStream> {
    let s = TcpStream::connect(lb).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    BufReader::new(s)
}

fn get(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: www.example.test\r\n\r\n")
}

/// Requests of the target, the one for health checks left out.
fn requests(seen: &Seen) -> Vec<(usize, String, String)> {
    let all = seen.lock().unwrap().clone();
    all.into_iter()
        .filter(|(_, l, _)| l.contains("/t/"))
        .collect()
}

#[test]
fn every_framing_passes_on_over_one_kept_target_connection() {
    let (target, seen) = scripted_target();
    let (_s, _srv, lb) = start(target);
    let mut c = client(lb);
    for path in ["/t/a", "/chunked?/t/", "/t/b", "/early?/t/"] {
        c.get_mut().write_all(get(path).as_bytes()).unwrap();
        let (status, headers, body) = response(&mut c);
        assert_eq!(status, 200, "{path}");
        match path {
            "/chunked?/t/" => assert_eq!(
                body,
                "5\r\nhello\r\n6;x=y\r\n world\r\n0\r\nX-Trailer: 1\r\n\r\n"
            ),
            "/early?/t/" => assert_eq!(body, "later"),
            _ => {
                assert_eq!(body, path);
                assert!(
                    !headers.iter().any(|h| h.starts_with("connection")),
                    "hop-by-hop header passed on: {headers:?}"
                );
            }
        }
    }
    c.get_mut()
        .write_all(b"HEAD /t/c HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut line = String::new();
    c.read_line(&mut line).unwrap();
    assert!(line.starts_with("HTTP/1.1 200"), "{line}");
    let mut rest = String::new();
    while c.read_line(&mut rest).unwrap() > 0 && !rest.ends_with("\r\n\r\n") {}
    assert!(rest.contains("content-length: 4") || rest.contains("Content-Length: 4"));
    // The HEAD response had no body: the next response follows at once. So does one to a
    // HEAD the balancer answers itself.
    c.get_mut()
        .write_all(b"HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut head = String::new();
    while c.read_line(&mut head).unwrap() > 0 && !head.ends_with("\r\n\r\n") {}
    assert!(head.contains("content-length: 6"), "{head}");
    c.get_mut().write_all(get("/t/d").as_bytes()).unwrap();
    assert_eq!(response(&mut c).2, "/t/d");
    let seen = requests(&seen);
    assert_eq!(seen.len(), 6, "{seen:?}");
    assert!(
        seen.iter().all(|(conn, ..)| *conn == seen[0].0),
        "one target connection for every request: {seen:?}"
    );
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let (target, _seen) = scripted_target();
    let (_s, _srv, lb) = start(target);
    let mut c = client(lb);
    let batch: String = (0..5).map(|i| get(&format!("/t/{i}"))).collect();
    c.get_mut().write_all(batch.as_bytes()).unwrap();
    for i in 0..5 {
        assert_eq!(response(&mut c).2, format!("/t/{i}"));
    }
}

#[test]
fn a_request_with_a_body_moves_the_connection_to_the_general_path() {
    let (target, seen) = scripted_target();
    let (_s, _srv, lb) = start(target);
    let mut c = client(lb);
    c.get_mut().write_all(get("/t/first").as_bytes()).unwrap();
    assert_eq!(response(&mut c).2, "/t/first");
    // The POST's head and half its body arrive with it; the rest later.
    c.get_mut()
        .write_all(b"POST /t/post HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\n\r\nabc")
        .unwrap();
    std::thread::sleep(Duration::from_millis(100));
    c.get_mut().write_all(b"def").unwrap();
    assert_eq!(response(&mut c).0, 200);
    c.get_mut().write_all(get("/t/after").as_bytes()).unwrap();
    assert_eq!(response(&mut c).2, "/t/after");
    let seen = requests(&seen);
    let lines: Vec<_> = seen.iter().map(|(_, l, b)| format!("{l} {b}")).collect();
    assert_eq!(
        lines,
        [
            "GET /t/first HTTP/1.1 ",
            "POST /t/post HTTP/1.1 abcdef",
            "GET /t/after HTTP/1.1 "
        ]
    );
}

#[test]
fn a_kept_connection_the_target_closed_is_replaced() {
    let (target, seen) = scripted_target();
    let (_s, _srv, lb) = start(target);
    let mut c = client(lb);
    c.get_mut().write_all(get("/bye?/t/").as_bytes()).unwrap();
    assert_eq!(response(&mut c).2, "bye");
    std::thread::sleep(Duration::from_millis(200));
    for i in 0..3 {
        c.get_mut()
            .write_all(get(&format!("/t/{i}")).as_bytes())
            .unwrap();
        let (status, _, body) = response(&mut c);
        assert_eq!((status, body), (200, format!("/t/{i}")));
    }
    let seen = requests(&seen);
    assert_ne!(
        seen[0].0, seen[1].0,
        "a new target connection after the close"
    );
}

#[test]
fn a_response_delimited_by_close_closes_the_client_connection() {
    let (target, _seen) = scripted_target();
    let (_s, _srv, lb) = start(target);
    let mut c = client(lb);
    c.get_mut().write_all(get("/close?/t/").as_bytes()).unwrap();
    let (status, headers, body) = response(&mut c);
    assert_eq!((status, body.as_str()), (200, "until the end"));
    assert!(
        headers.iter().any(|h| h == "connection: close"),
        "{headers:?}"
    );
    // A client asking to close gets its answer, then the close.
    let mut c = client(lb);
    c.get_mut()
        .write_all(b"GET /t/x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut all = String::new();
    c.read_to_string(&mut all).unwrap();
    assert!(all.starts_with("HTTP/1.1 200"), "{all}");
    assert!(all.contains("connection: close\r\n"), "{all}");
    assert!(all.ends_with("/t/x"), "{all}");
}
