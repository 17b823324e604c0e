//! Tests of [`super::probe`] against tiny servers on loopback sockets.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use super::*;

const LOCAL: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

fn http_spec(port: u16, matcher: &str, body_contains: Option<&str>) -> CheckSpec {
    CheckSpec {
        protocol: Protocol::Http {
            path: "/healthz".into(),
            host: None,
            matcher: matcher.parse().unwrap(),
            body_contains: body_contains.map(str::to_string),
        },
        port,
        interval: Duration::from_secs(10),
        timeout: Duration::from_secs(5),
        healthy_threshold: 2,
        unhealthy_threshold: 2,
    }
}

fn tcp_spec(port: u16) -> CheckSpec {
    CheckSpec {
        protocol: Protocol::Tcp,
        ..http_spec(port, "200", None)
    }
}

/// Reads one request head from `stream`.
async fn read_request(stream: &mut TcpStream) -> String {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte).await.unwrap_or(0) == 0 {
            break;
        }
        buf.push(byte[0]);
    }
    String::from_utf8_lossy(&buf).into_owned()
}

/// Serves `response` to every connection on `ip`; reports each request head.
async fn serve_on(ip: IpAddr, response: Vec<u8>) -> (u16, mpsc::UnboundedReceiver<String>) {
    let listener = TcpListener::bind(SocketAddr::new(ip, 0)).await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let request = read_request(&mut stream).await;
            let _ = tx.send(request);
            let _ = stream.write_all(&response).await;
            let _ = stream.shutdown().await;
        }
    });
    (port, rx)
}

async fn serve(response: &str) -> (u16, mpsc::UnboundedReceiver<String>) {
    serve_on(LOCAL, response.as_bytes().to_vec()).await
}

/// A port on which nothing listens (bound, then released).
async fn closed_port() -> u16 {
    let listener = TcpListener::bind((LOCAL, 0)).await.unwrap();
    listener.local_addr().unwrap().port()
}

#[tokio::test]
async fn http_200_passes_and_request_is_well_formed() {
    let (port, mut requests) = serve("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok").await;
    let result = probe(LOCAL, &http_spec(port, "200-299", None)).await;
    assert_eq!(result, ProbeResult::pass("HTTP 200"));
    let request = requests.recv().await.unwrap();
    assert!(
        request.starts_with("GET /healthz HTTP/1.1\r\n"),
        "{request}"
    );
    assert!(
        request.contains(&format!("\r\nHost: 127.0.0.1:{port}\r\n")),
        "{request}"
    );
    assert!(request.contains("\r\nConnection: close\r\n"), "{request}");
    assert!(
        request.contains("\r\nUser-Agent: roundhouse-health\r\n"),
        "{request}"
    );
}

#[tokio::test]
async fn status_outside_matcher_fails() {
    let (port, _rx) = serve("HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n").await;
    let result = probe(LOCAL, &http_spec(port, "200-299", None)).await;
    assert_eq!(result, ProbeResult::fail("HTTP 503 (want 200-299)"));
    let result = probe(LOCAL, &http_spec(port, "200,500-599", None)).await;
    assert_eq!(result, ProbeResult::pass("HTTP 503"));
}

#[tokio::test]
async fn body_with_content_length() {
    let (port, _rx) = serve("HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nstatus=okTRAILING").await;
    let pass = probe(LOCAL, &http_spec(port, "200", Some("=ok"))).await;
    assert_eq!(pass, ProbeResult::pass("HTTP 200"));
    // bytes past Content-Length are not body
    let fail = probe(LOCAL, &http_spec(port, "200", Some("TRAILING"))).await;
    assert_eq!(fail, ProbeResult::fail("body lacks \"TRAILING\""));
}

#[tokio::test]
async fn body_chunked_across_chunks() {
    let response = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
                    4;ext=1\r\nall \r\n5\r\nis ok\r\n3\r\n!!!\r\n0\r\n\r\n";
    let (port, _rx) = serve(response).await;
    let pass = probe(LOCAL, &http_spec(port, "200", Some("all is ok!"))).await;
    assert_eq!(pass, ProbeResult::pass("HTTP 200"));
    let fail = probe(LOCAL, &http_spec(port, "200", Some("4;ext"))).await;
    assert!(!fail.ok, "chunk framing must not leak into the body");
}

#[tokio::test]
async fn body_until_close() {
    let (port, _rx) = serve("HTTP/1.0 200 OK\r\nServer: test\r\n\r\nhello world").await;
    let pass = probe(LOCAL, &http_spec(port, "200", Some("world"))).await;
    assert_eq!(pass, ProbeResult::pass("HTTP 200"));
}

#[tokio::test]
async fn body_read_stops_at_64k() {
    let mut response = b"HTTP/1.1 200 OK\r\n\r\nhead".to_vec();
    response.extend(std::iter::repeat_n(b'.', 70 * 1024));
    response.extend(b"tail");
    let (port, _rx) = serve_on(LOCAL, response).await;
    let head = probe(LOCAL, &http_spec(port, "200", Some("head"))).await;
    assert!(head.ok, "{head:?}");
    let tail = probe(LOCAL, &http_spec(port, "200", Some("tail"))).await;
    assert_eq!(tail, ProbeResult::fail("body lacks \"tail\""));
}

#[tokio::test]
async fn interim_100_continue_is_skipped() {
    let response = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n";
    let (port, _rx) = serve(response).await;
    let result = probe(LOCAL, &http_spec(port, "204", Some(""))).await;
    assert_eq!(result, ProbeResult::pass("HTTP 204"));
}

#[tokio::test]
async fn configured_host_header_is_sent() {
    let (port, mut requests) = serve("HTTP/1.1 200 OK\r\n\r\n").await;
    let mut spec = http_spec(port, "200", None);
    if let Protocol::Http { host, path, .. } = &mut spec.protocol {
        *host = Some("www.example.com".into());
        *path = String::new();
    }
    assert!(probe(LOCAL, &spec).await.ok);
    let request = requests.recv().await.unwrap();
    assert!(request.starts_with("GET / HTTP/1.1\r\n"), "{request}");
    assert!(
        request.contains("\r\nHost: www.example.com\r\n"),
        "{request}"
    );
}

#[tokio::test]
async fn malformed_responses_fail() {
    let cases = [
        (
            "SSH-2.0-OpenSSH_9.6\r\n",
            "bad response: not an HTTP/1.x status line",
        ),
        (
            "HTTP/1.1 2000 OK\r\n\r\n",
            "bad response: not an HTTP/1.x status line",
        ),
        (
            "HTTP/1.1 200 OK\r\nno colon\r\n\r\n",
            "bad response: header line without colon",
        ),
        ("", "bad response: connection closed early"),
        (
            "HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
            "bad response: bad Content-Length",
        ),
    ];
    for (response, detail) in cases {
        let (port, _rx) = serve(response).await;
        let result = probe(LOCAL, &http_spec(port, "200", None)).await;
        assert_eq!(result, ProbeResult::fail(detail), "{response:?}");
    }
}

#[tokio::test]
async fn slow_server_times_out() {
    let listener = TcpListener::bind((LOCAL, 0)).await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        read_request(&mut stream).await;
        // Hold the connection open without answering.
        tokio::time::sleep(Duration::from_secs(30)).await;
    });
    let mut spec = http_spec(port, "200", None);
    spec.timeout = Duration::from_millis(200);
    let started = std::time::Instant::now();
    let result = probe(LOCAL, &spec).await;
    assert_eq!(result, ProbeResult::fail("timed out after 200ms"));
    assert!(started.elapsed() < Duration::from_secs(2));
    server.abort();
}

#[tokio::test]
async fn closed_port_is_refused() {
    let port = closed_port().await;
    let http = probe(LOCAL, &http_spec(port, "200", None)).await;
    assert_eq!(http, ProbeResult::fail("connection refused"));
    let tcp = probe(LOCAL, &tcp_spec(port)).await;
    assert_eq!(tcp, ProbeResult::fail("connection refused"));
}

#[tokio::test]
async fn tcp_check_passes_on_listening_port() {
    let (port, _rx) = serve("").await;
    let result = probe(LOCAL, &tcp_spec(port)).await;
    assert_eq!(result, ProbeResult::pass("TCP connected"));
}

#[tokio::test]
async fn ipv6_loopback() {
    let ip = IpAddr::V6(Ipv6Addr::LOCALHOST);
    if let Err(err) = std::net::TcpListener::bind(SocketAddr::new(ip, 0)) {
        eprintln!("skipping ipv6_loopback: cannot bind [::1]: {err}");
        return;
    }
    let response = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".to_vec();
    let (port, mut requests) = serve_on(ip, response).await;
    let result = probe(ip, &http_spec(port, "200", Some("ok"))).await;
    assert_eq!(result, ProbeResult::pass("HTTP 200"));
    let request = requests.recv().await.unwrap();
    assert!(
        request.contains(&format!("\r\nHost: [::1]:{port}\r\n")),
        "{request}"
    );
    assert!(probe(ip, &tcp_spec(port)).await.ok);
}

#[test]
fn request_framing() {
    let v6: SocketAddr = "[2001:db8::1]:80".parse().unwrap();
    let request = build_request(v6, "/a?b=c", None).unwrap();
    assert!(request.contains("\r\nHost: [2001:db8::1]\r\n"), "{request}");
    let v4: SocketAddr = "192.0.2.1:80".parse().unwrap();
    let request = build_request(v4, "/", None).unwrap();
    assert!(request.contains("\r\nHost: 192.0.2.1\r\n"), "{request}");
    assert!(request.ends_with("\r\n\r\n"));
    for path in ["/a b", "/a\r\nX: y", "/\t"] {
        assert!(build_request(v4, path, None).is_err(), "{path:?}");
    }
    assert!(build_request(v4, "/", Some("h\r\nX: y")).is_err());
}

#[test]
fn status_line_parsing() {
    assert_eq!(parse_status("HTTP/1.1 200 OK").unwrap(), 200);
    assert_eq!(parse_status("HTTP/1.0 404").unwrap(), 404);
    for bad in [
        "",
        "HTTP/2 200 OK",
        "HTTP/1.1 20 OK",
        "HTTP/1.1 abc",
        "HTTP/1.1 099 x",
    ] {
        assert!(parse_status(bad).is_err(), "{bad:?}");
    }
}
