//! DNS abuse controls through the real binary: response rate limiting with slip, no
//! recursion, the TCP connection cap and timeouts against silent and trickling clients,
//! and zone transfers (refused by default, capped when allowed).

mod common;
use common::*;
use hickory_proto::op::ResponseCode;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

const ZONE: &str = "$ORIGIN example.test.\n$TTL 300\n@ SOA ns1 hostmaster 1 3600 600 86400 60\n@ NS ns1\nns1 A 192.0.2.53\nwww A 192.0.2.1\n";

fn start(dns: &str) -> (Setup, Server, SocketAddr) {
    start_with_zone(dns, ZONE)
}

fn start_with_zone(dns: &str, zone: &str) -> (Setup, Server, SocketAddr) {
    let config = format!("{CONFIG}{dns}\n[admin]\nlisten = \"127.0.0.1:0\"\n");
    let setup = Setup::new(&config, &[("example.test.zone", zone)]);
    let srv = Server::start(&setup.config());
    let admin = srv.logged_addr("admin listening", "addr=");
    (setup, srv, admin)
}

fn metric(admin: SocketAddr, name: &str) -> u64 {
    common::http::metric(admin, name).unwrap_or_else(|| panic!("no {name} on /metrics"))
}

fn flags(reply: &[u8]) -> u16 {
    u16::from_be_bytes([reply[2], reply[3]])
}

#[test]
fn rrl_answers_the_rate_slips_half_the_rest_and_drops_the_others() {
    let (_s, srv, admin) =
        start("[dns.rrl]\nresponses_per_second = 10\nslip = 2\nwindow = \"5s\"\n");
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let n = 100u16;
    for id in 0..n {
        sock.send_to(&query(id, "www.example.test", 1, Some(1232)), srv.addr)
            .unwrap();
    }
    let (mut answered, mut truncated) = (0, 0);
    let mut buf = [0u8; 2048];
    while let Ok((len, _)) = sock.recv_from(&mut buf) {
        let r = &buf[..len];
        let ancount = u16::from_be_bytes([r[6], r[7]]);
        if flags(r) & 0x0200 != 0 {
            assert_eq!(ancount, 0, "a slipped reply carries no answer");
            truncated += 1;
        } else {
            assert_eq!(ancount, 1);
            answered += 1;
        }
    }
    let dropped = usize::from(n) - answered - truncated;
    // Ten a second (twenty if the flood straddled a second), half of the rest as TC.
    assert!((10..=20).contains(&answered), "answered {answered}");
    assert!(
        truncated.abs_diff(dropped) <= 1,
        "tc {truncated} dropped {dropped}"
    );
    assert_eq!(
        metric(admin, "roundhouse_dns_rrl_slipped_total"),
        truncated as u64
    );
    assert_eq!(
        metric(admin, "roundhouse_dns_rrl_dropped_total"),
        dropped as u64
    );
    // TCP is never limited: a client told to retry there gets its answer.
    let r = tcp_raw(srv.addr, &query(7, "www.example.test", 1, None));
    assert_eq!(
        (flags(&r) & 0x020F, u16::from_be_bytes([r[6], r[7]])),
        (0, 1)
    );
}

#[test]
fn names_outside_the_zones_are_refused_and_recursion_is_never_offered() {
    let (_s, srv, _admin) = start("");
    for (name, code) in [("www.example.test", 0), ("www.example.com", 5), ("com", 5)] {
        let mut q = query(1, name, 1, Some(1232));
        q[2] |= 0x01; // RD: the client asks for recursion
        let r = udp_raw(srv.addr, &q).unwrap();
        assert_eq!(flags(&r) & 0xF, code, "{name}");
        assert_eq!(flags(&r) & 0x0080, 0, "RA set for {name}");
        assert_eq!(flags(&r) & 0x0100, 0x0100, "RD is copied back");
    }
}

#[test]
fn silent_and_trickling_tcp_clients_are_cut_off_and_udp_keeps_answering() {
    let (_s, srv, admin) =
        start("tcp_max_connections = 2\ntcp_idle_timeout = \"1s\"\ntcp_io_timeout = \"500ms\"\n");
    // Two clients take both slots: one says nothing, one sends half a length prefix.
    let mut silent = TcpStream::connect(srv.addr).unwrap();
    let mut trickle = TcpStream::connect(srv.addr).unwrap();
    trickle.write_all(&[0]).unwrap();
    let started = Instant::now();
    std::thread::sleep(Duration::from_millis(100));
    // UDP is not held up by them.
    assert_eq!(
        rcode(&ask(srv.addr, "www.example.test", 1)),
        ResponseCode::NoError
    );
    assert!(started.elapsed() < Duration::from_millis(450));
    // A third TCP client waits in the backlog until a slot frees up.
    let r = tcp_raw(srv.addr, &query(3, "www.example.test", 1, None));
    assert_eq!(flags(&r) & 0xF, 0);
    assert!(started.elapsed() < Duration::from_secs(4));
    // The trickler is cut off after the I/O timeout, the silent one after the idle timeout.
    let closed_after = |s: &mut TcpStream| {
        s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        let mut b = [0u8; 1];
        assert!(matches!(s.read(&mut b), Ok(0) | Err(_)));
        started.elapsed()
    };
    let trickle_cut = closed_after(&mut trickle);
    let silent_cut = closed_after(&mut silent);
    assert!(
        trickle_cut >= Duration::from_millis(400) && trickle_cut < silent_cut,
        "trickler cut after {trickle_cut:?}, silent client after {silent_cut:?}"
    );
    assert!(
        silent_cut >= Duration::from_millis(900) && silent_cut < Duration::from_secs(3),
        "silent client cut after {silent_cut:?}"
    );
    assert!(metric(admin, "roundhouse_dns_tcp_timeouts_total") >= 2);
}

fn axfr(addr: SocketAddr) -> (TcpStream, Vec<u8>) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let q = query(9, "example.test", 252, None);
    let mut framed = (q.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(&q);
    s.write_all(&framed).unwrap();
    let mut len = [0u8; 2];
    s.read_exact(&mut len).unwrap();
    let mut first = vec![0u8; usize::from(u16::from_be_bytes(len))];
    s.read_exact(&mut first).unwrap();
    (s, first)
}

#[test]
fn zone_transfers_are_refused_by_default() {
    let (_s, srv, _admin) = start("");
    let (_c, first) = axfr(srv.addr);
    assert_eq!(flags(&first) & 0xF, 5);
    // Over UDP too.
    let r = udp_raw(srv.addr, &query(9, "example.test", 252, None)).unwrap();
    assert_eq!(flags(&r) & 0xF, 5);
}

#[test]
fn concurrent_transfers_are_capped() {
    // A zone larger than the socket buffers, so a client that does not read holds its
    // transfer open.
    let mut zone = ZONE.to_string();
    let filler = "x".repeat(240);
    for i in 0..40_000 {
        zone.push_str(&format!("t{i} TXT \"{filler}\"\n"));
    }
    let (_s, srv, admin) = start_with_zone(
        "tcp_idle_timeout = \"30s\"\ntcp_io_timeout = \"30s\"\n[dns.transfer]\nallow = [\"127.0.0.1\"]\nmax_concurrent = 1\n",
        &zone,
    );
    let (stalled, first) = axfr(srv.addr);
    assert_eq!(flags(&first) & 0xF, 0, "the first transfer starts");
    std::thread::sleep(Duration::from_millis(200));
    let (_c, second) = axfr(srv.addr);
    assert_eq!(
        flags(&second) & 0xF,
        5,
        "a second one is refused while it runs"
    );
    assert_eq!(metric(admin, "roundhouse_dns_transfers_refused_total"), 1);
    // Once the first client goes away its slot is free again.
    drop(stalled);
    srv.eventually("a transfer after the first ended", || {
        let (_c, first) = axfr(srv.addr);
        flags(&first) & 0xF == 0
    });
}

#[test]
fn any_over_udp_gets_one_rrset_and_all_of_them_over_tcp() {
    let (_s, srv, _admin) = start("");
    let types = |reply: &[u8]| {
        let m = hickory_proto::op::Message::from_vec(reply).unwrap();
        let mut t: Vec<String> = m
            .answers
            .iter()
            .map(|r| r.record_type().to_string())
            .collect();
        t.sort();
        t.dedup();
        t
    };
    let udp = udp_raw(srv.addr, &query(5, "example.test", 255, Some(1232))).unwrap();
    assert_eq!(types(&udp).len(), 1, "{:?}", types(&udp));
    let tcp = tcp_raw(srv.addr, &query(5, "example.test", 255, None));
    assert_eq!(types(&tcp), ["NS", "SOA"]);
}

/// Sends `n` queries from one socket and counts full answers (not truncated).
fn flood(addr: SocketAddr, n: u16) -> usize {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    for id in 0..n {
        sock.send_to(&query(id, "www.example.test", 1, Some(1232)), addr)
            .unwrap();
    }
    let mut buf = [0u8; 2048];
    let mut answered = 0;
    while let Ok((len, _)) = sock.recv_from(&mut buf) {
        if flags(&buf[..len]) & 0x0200 == 0 {
            answered += 1;
        }
    }
    answered
}

#[test]
fn rate_limiting_follows_a_reload() {
    let (setup, srv, _admin) = start("");
    assert_eq!(flood(srv.addr, 50), 50, "off by default");
    let config = std::fs::read_to_string(setup.config()).unwrap();
    std::fs::write(
        setup.config(),
        config.replace("[admin]", "[dns.rrl]\nresponses_per_second = 5\n[admin]"),
    )
    .unwrap();
    srv.eventually("rate limiting after the reload", || {
        flood(srv.addr, 50) <= 10
    });
}
