//! Shared helpers for the integration tests: start the real binary on port 0, and a tiny
//! DNS client whose replies are decoded by an independent implementation (hickory-proto).
#![allow(dead_code)]

pub mod geodb;
pub mod http;
pub mod tls;

use hickory_proto::op::{Message, ResponseCode};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A running `roundhouse serve`, killed on drop.
pub struct Server {
    pub child: Child,
    pub addr: SocketAddr,
    pub log: Arc<Mutex<String>>,
}

impl Server {
    /// Starts `roundhouse serve --config CONFIG` and waits for its "dns listening" line.
    pub fn start(config: &Path) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_roundhouse"))
            .args(["serve", "--config"])
            .arg(config)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start roundhouse");
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains("dns listening") {
                    let _ = tx.send(line.clone());
                }
                sink.lock().unwrap().push_str(&(line + "\n"));
            }
        });
        let Ok(line) = rx.recv_timeout(Duration::from_secs(20)) else {
            let status = child.try_wait();
            panic!(
                "server did not start listening ({status:?}); log:\n{}",
                log.lock().unwrap()
            );
        };
        let addr = log_addr(&line, "udp=");
        Server { child, addr, log }
    }

    /// Polls `f` until it returns true; after 10 s panics with the server's log.
    pub fn eventually(&self, what: &str, f: impl FnMut() -> bool) {
        if !poll(f) {
            panic!(
                "timed out waiting for: {what}; log:\n{}",
                self.log.lock().unwrap()
            );
        }
    }

    /// The address after `key` (e.g. `addr=`) in the first log line containing `needle`.
    pub fn logged_addr(&self, needle: &str, key: &str) -> SocketAddr {
        self.wait_log(needle);
        let log = self.log.lock().unwrap().clone();
        log_addr(log.lines().find(|l| l.contains(needle)).unwrap(), key)
    }

    /// Waits until the log contains `needle` (or panics after 10 s).
    pub fn wait_log(&self, needle: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self.log.lock().unwrap().contains(needle) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "log never contained {needle:?}; log:\n{}",
            self.log.lock().unwrap()
        );
    }
}

/// Parses the address that follows `key` in a log line.
fn log_addr(line: &str, key: &str) -> SocketAddr {
    let rest = line
        .split(key)
        .nth(1)
        .unwrap_or_else(|| panic!("no {key} in {line}"));
    rest.split_whitespace().next().unwrap().parse().unwrap()
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Encodes a name in wire form (no escapes; tests use plain names).
pub fn wire_name(name: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for label in name
        .trim_end_matches('.')
        .split('.')
        .filter(|l| !l.is_empty())
    {
        out.push(label.len() as u8);
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
    out
}

/// A query; `edns` is the advertised UDP size (None: no OPT record).
pub fn query(id: u16, name: &str, qtype: u16, edns: Option<u16>) -> Vec<u8> {
    let mut m = id.to_be_bytes().to_vec();
    m.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0, u8::from(edns.is_some())]);
    m.extend_from_slice(&wire_name(name));
    m.extend_from_slice(&qtype.to_be_bytes());
    m.extend_from_slice(&1u16.to_be_bytes());
    if let Some(size) = edns {
        m.extend_from_slice(&[0, 0, 41]);
        m.extend_from_slice(&size.to_be_bytes());
        m.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
    }
    m
}

/// Sends a UDP query, returns the raw reply (None on timeout).
pub fn udp_raw(addr: SocketAddr, msg: &[u8]) -> Option<Vec<u8>> {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    s.send_to(msg, addr).unwrap();
    let mut buf = vec![0u8; 65535];
    let (n, _) = s.recv_from(&mut buf).ok()?;
    buf.truncate(n);
    Some(buf)
}

/// Sends a TCP query, returns the raw reply.
pub fn tcp_raw(addr: SocketAddr, msg: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut framed = (msg.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(msg);
    s.write_all(&framed).unwrap();
    let mut len = [0u8; 2];
    s.read_exact(&mut len).unwrap();
    let mut buf = vec![0u8; u16::from_be_bytes(len) as usize];
    s.read_exact(&mut buf).unwrap();
    buf
}

/// UDP query decoded by hickory-proto.
pub fn ask(addr: SocketAddr, name: &str, qtype: u16) -> Message {
    Message::from_vec(&udp_raw(addr, &query(0x4242, name, qtype, Some(1232))).expect("no reply"))
        .unwrap()
}

/// Answer section as sorted "owner TYPE rdata" strings.
pub fn answers(m: &Message) -> Vec<String> {
    let mut v: Vec<String> = m
        .answers
        .iter()
        .map(|r| format!("{} {} {}", r.name, r.record_type(), r.data))
        .collect();
    v.sort();
    v
}

/// The response code.
pub fn rcode(m: &Message) -> ResponseCode {
    m.metadata.response_code
}

/// Polls `f` until it returns true (true) or 10 s pass (false).
pub fn poll(mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// A temporary directory with a config and a zones directory.
pub struct Setup {
    pub dir: tempfile::TempDir,
}

impl Setup {
    /// Writes `config` (with `{zones}` available as "zones") and the given zone files.
    pub fn new(config: &str, zones: &[(&str, &str)]) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("zones")).unwrap();
        std::fs::write(dir.path().join("roundhouse.toml"), config).unwrap();
        for (file, text) in zones {
            std::fs::write(dir.path().join("zones").join(file), text).unwrap();
        }
        Setup { dir }
    }

    pub fn config(&self) -> PathBuf {
        self.dir.path().join("roundhouse.toml")
    }

    pub fn zone(&self, file: &str) -> PathBuf {
        self.dir.path().join("zones").join(file)
    }
}

/// The basic configuration: port 0, zones in ./zones.
pub const CONFIG: &str = "[dns]\nlisten = [\"127.0.0.1:0\"]\nzones_dir = \"zones\"\n";

/// A query carrying an EDNS Client Subnet option for `subnet/prefix` (RFC 7871 wire form).
pub fn query_ecs(id: u16, name: &str, qtype: u16, subnet: std::net::IpAddr, prefix: u8) -> Vec<u8> {
    let mut m = query(id, name, qtype, None);
    m[11] = 1; // ARCOUNT
    let (family, bytes): (u16, Vec<u8>) = match subnet {
        IpAddr::V4(a) => (1, a.octets().to_vec()),
        IpAddr::V6(a) => (2, a.octets().to_vec()),
    };
    let n = (prefix as usize).div_ceil(8);
    let mut opt = 8u16.to_be_bytes().to_vec();
    opt.extend_from_slice(&((4 + n) as u16).to_be_bytes());
    opt.extend_from_slice(&family.to_be_bytes());
    opt.extend_from_slice(&[prefix, 0]);
    opt.extend_from_slice(&bytes[..n]);
    m.extend_from_slice(&[0, 0, 41, 0x04, 0xD0, 0, 0, 0, 0]);
    m.extend_from_slice(&(opt.len() as u16).to_be_bytes());
    m.extend_from_slice(&opt);
    m
}

/// (first answer's data, ECS scope) for a `www.example.test` query from `subnet/prefix`.
pub fn ask_from(addr: SocketAddr, qtype: u16, subnet: IpAddr, prefix: u8) -> (String, Option<u8>) {
    use hickory_proto::rr::rdata::opt::{EdnsCode, EdnsOption};
    let q = query_ecs(9, "www.example.test", qtype, subnet, prefix);
    let m = Message::from_vec(&udp_raw(addr, &q).expect("reply")).unwrap();
    let first = m
        .answers
        .first()
        .map(|a| a.data.to_string())
        .unwrap_or_default();
    let scope = m
        .edns
        .as_ref()
        .and_then(|e| match e.option(EdnsCode::Subnet) {
            Some(EdnsOption::Subnet(cs)) => Some(cs.scope_prefix()),
            _ => None,
        });
    (first, scope)
}
