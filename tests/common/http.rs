//! HTTP helpers for the balancer tests: a keep-alive backend that can be killed like a
//! crashed process, a one-shot client, and the admin server's metrics.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A backend answering `backend N` and remembering the last X-Forwarded-For it saw.
pub struct Backend {
    /// Address.
    pub addr: SocketAddr,
    alive: Arc<AtomicBool>,
    /// The last X-Forwarded-For seen.
    pub xff: Arc<Mutex<String>>,
    /// While set, every answer is 500.
    pub fail: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<TcpStream>>>,
}

impl Backend {
    pub fn start(id: usize) -> Backend {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let alive = Arc::new(AtomicBool::new(true));
        let xff = Arc::new(Mutex::new(String::new()));
        let conns = Arc::new(Mutex::new(Vec::new()));
        let fail = Arc::new(AtomicBool::new(false));
        let (a, x, c, f) = (alive.clone(), xff.clone(), conns.clone(), fail.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if !a.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(mut s) = stream else { continue };
                c.lock().unwrap().extend(s.try_clone());
                let (a, x, f) = (a.clone(), x.clone(), f.clone());
                std::thread::spawn(move || serve(&mut s, id, &a, &x, &f));
            }
        });
        Backend {
            addr,
            alive,
            xff,
            fail,
            conns,
        }
    }

    /// Like a crashed process: the listener and every open connection go away.
    pub fn kill(&self) {
        self.alive.store(false, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
        for c in self.conns.lock().unwrap().drain(..) {
            let _ = c.shutdown(std::net::Shutdown::Both);
        }
    }
}

/// Keep-alive HTTP/1.1: answer every request on the connection.
fn serve(s: &mut TcpStream, id: usize, alive: &AtomicBool, xff: &Mutex<String>, fail: &AtomicBool) {
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
            // `GET /sleep/MS` answers after MS milliseconds; `/status/CODE` with CODE.
            let path = head.split_whitespace().nth(1).unwrap_or("/").to_string();
            if let Some(ms) = path.strip_prefix("/sleep/").and_then(|m| m.parse().ok()) {
                std::thread::sleep(Duration::from_millis(ms));
            }
            let status: u16 = path
                .strip_prefix("/status/")
                .and_then(|c| c.parse().ok())
                .unwrap_or(200);
            let status = if fail.load(Ordering::SeqCst) {
                500
            } else {
                status
            };
            let body = format!("backend {id}\n");
            // `/login` starts an application session, as a framework would.
            let cookie = if path == "/login" {
                "Set-Cookie: SESSIONID=s1; Path=/\r\n"
            } else {
                ""
            };
            let reply = format!(
                "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nX-Path: {path}\r\n{cookie}\r\n{body}",
                body.len()
            );
            if s.write_all(reply.as_bytes()).is_err()
                || head.to_ascii_lowercase().contains("connection: close")
            {
                // A clone of the stream is kept for kill(): close explicitly.
                let _ = s.shutdown(std::net::Shutdown::Both);
                return;
            }
        }
    }
}

/// GET / through the balancer: (status, body).
pub fn get(addr: SocketAddr) -> (u16, String) {
    let r = send(
        addr,
        "GET / HTTP/1.1\r\nHost: www.example.test\r\nConnection: close\r\n\r\n",
    );
    (r.status, r.body)
}

/// The value of the series `series` (full name with its labels) on the `/metrics` page of
/// the admin server at `admin`, when it is there.
pub fn metric(admin: SocketAddr, series: &str) -> Option<u64> {
    let r = send(
        admin,
        "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    r.body.lines().find_map(|l| {
        l.strip_prefix(series)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}

/// A response: status, header block (lowercased names), body.
#[derive(Debug)]
pub struct Reply {
    /// Status code (0: none).
    pub status: u16,
    /// `name: value` lines, names lowercased.
    pub headers: Vec<String>,
    /// Body, trimmed.
    pub body: String,
}

impl Reply {
    /// The value of header `name` (lowercase).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find_map(|h| h.strip_prefix(name)?.strip_prefix(": "))
    }
}

/// Sends a raw request (it should say `Connection: close`) and reads the reply to the end.
pub fn send(addr: SocketAddr, request: &str) -> Reply {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    let head = out.split("\r\n\r\n").next().unwrap_or("");
    let headers = head
        .lines()
        .skip(1)
        .map(|l| match l.split_once(": ") {
            Some((n, v)) => format!("{}: {v}", n.to_ascii_lowercase()),
            None => l.to_string(),
        })
        .collect();
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
    Reply {
        status,
        headers,
        body,
    }
}

/// A keep-alive HTTP/1.1 client on one connection (reconnects when the server closed it).
pub struct KeepAlive {
    addr: SocketAddr,
    conn: Option<std::io::BufReader<TcpStream>>,
}

impl KeepAlive {
    /// A client for `addr` (connects on first use).
    pub fn new(addr: SocketAddr) -> KeepAlive {
        KeepAlive { addr, conn: None }
    }

    /// GET `path`: (status, body), or the I/O error the request ended with.
    pub fn get(&mut self, path: &str) -> std::io::Result<(u16, String)> {
        use std::io::BufRead;
        if self.conn.is_none() {
            let s = TcpStream::connect(self.addr)?;
            s.set_read_timeout(Some(Duration::from_secs(10)))?;
            self.conn = Some(std::io::BufReader::new(s));
        }
        let conn = self.conn.as_mut().expect("connected above");
        let request = format!("GET {path} HTTP/1.1\r\nHost: www.example.test\r\n\r\n");
        let result = (|| {
            conn.get_mut().write_all(request.as_bytes())?;
            let mut line = String::new();
            conn.read_line(&mut line)?;
            let status = line
                .split_whitespace()
                .nth(1)
                .and_then(|c| c.parse().ok())
                .ok_or_else(|| std::io::Error::other(format!("bad status line {line:?}")))?;
            let (mut length, mut close) = (0usize, false);
            loop {
                let mut h = String::new();
                conn.read_line(&mut h)?;
                let h = h.trim_end().to_ascii_lowercase();
                if h.is_empty() {
                    break;
                }
                if let Some(v) = h.strip_prefix("content-length: ") {
                    length = v.parse().unwrap_or(0);
                }
                close |= h == "connection: close";
            }
            let mut body = vec![0; length];
            conn.read_exact(&mut body)?;
            Ok((
                status,
                String::from_utf8_lossy(&body).trim().to_string(),
                close,
            ))
        })();
        match result {
            Ok((status, body, close)) => {
                if close {
                    self.conn = None;
                }
                Ok((status, body))
            }
            Err(e) => {
                self.conn = None;
                Err(e)
            }
        }
    }
}

/// `roundhouse serve` with `config` (after the common DNS part) and a minimal zone: the
/// setup, the server, and the address of its (first) listener.
pub fn serve_balancer(config: &str) -> (super::Setup, super::Server, SocketAddr) {
    let setup = super::Setup::new(
        &format!("{}{config}", super::CONFIG),
        &[(
            "example.test.zone",
            "$TTL 60\n@ SOA ns hm 1 2 3 4 5\n@ NS ns\nns A 192.0.2.1\n",
        )],
    );
    let srv = super::Server::start(&setup.config());
    let addr = srv.logged_addr("listening listener=", "addr=");
    (setup, srv, addr)
}
