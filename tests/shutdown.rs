//! Stopping and starting again through the real binary: SIGTERM lets a request in flight
//! finish and refuses new connections, DNS TCP clients get the answers to the queries they
//! had sent, `shutdown.grace` bounds the wait, and a start with a broken configuration file
//! falls back to the last good one.

mod common;
use common::http::{Backend, send};
use common::*;
use hickory_proto::op::ResponseCode;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

const ZONE: (&str, &str) = (
    "example.test.zone",
    "$TTL 60\n@ SOA ns hm 1 2 3 4 5\n@ NS ns\nns A 192.0.2.1\nwww A 192.0.2.7\n",
);

fn start(backend: &Backend, extra: &str) -> (Setup, Server, SocketAddr) {
    let config = format!(
        "{CONFIG}{extra}[target_group.web]\ntargets = [{{ address = \"{}\" }}]\n\
         [[listener]]\nname = \"web\"\nlisten = \"127.0.0.1:0\"\ntarget_group = \"web\"\n",
        backend.addr
    );
    let setup = Setup::new(&config, &[ZONE]);
    let srv = Server::start(&setup.config());
    let lb = srv.logged_addr("listening listener=", "addr=");
    (setup, srv, lb)
}

fn sigterm(srv: &Server) {
    let ok = Command::new("kill")
        .args(["-TERM", &srv.child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
}

/// Waits up to `limit` for the process to exit.
fn exit_within(srv: &mut Server, limit: Duration) -> ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = srv.child.try_wait().unwrap() {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "still running after {limit:?}; log:\n{}",
            srv.log.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn sigterm_finishes_the_request_in_flight_and_refuses_new_connections() {
    let b = Backend::start(0);
    let (_s, mut srv, lb) = start(&b, "");
    let slow = std::thread::spawn(move || {
        send(
            lb,
            "GET /sleep/1500 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        )
    });
    std::thread::sleep(Duration::from_millis(400));
    sigterm(&srv);
    // The listening socket closes at once: a new client is refused...
    assert!(
        poll(|| TcpStream::connect(lb).is_err()),
        "new connections still accepted after SIGTERM"
    );
    // ...while the request in flight gets its answer,
    let reply = slow.join().unwrap();
    assert_eq!((reply.status, reply.body.as_str()), (200, "backend 0"));
    // and then the process exits cleanly.
    let status = exit_within(&mut srv, Duration::from_secs(5));
    assert!(status.success(), "{status:?}");
    // (The log reader may still be catching up with the last lines.)
    srv.wait_log("every connection finished");
}

#[test]
fn the_grace_period_bounds_the_wait() {
    let b = Backend::start(0);
    let (_s, mut srv, lb) = start(&b, "[shutdown]\ngrace = \"500ms\"\n");
    let slow = std::thread::spawn(move || {
        send(
            lb,
            "GET /sleep/8000 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        )
    });
    std::thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    sigterm(&srv);
    let status = exit_within(&mut srv, Duration::from_secs(4));
    assert!(status.success(), "{status:?}");
    assert!(started.elapsed() >= Duration::from_millis(400));
    assert_eq!(
        slow.join().unwrap().status,
        0,
        "the cut request got no answer"
    );
    srv.wait_log("shutdown.grace passed");
}

#[test]
fn a_broken_file_at_start_falls_back_to_the_last_good_copy() {
    let setup = Setup::new(CONFIG, &[ZONE]);
    let config = setup.config();
    let copy = config.with_extension("toml.last-good");
    {
        let srv = Server::start(&config);
        assert_eq!(
            rcode(&ask(srv.addr, "www.example.test", 1)),
            ResponseCode::NoError
        );
    }
    assert_eq!(std::fs::read_to_string(&copy).unwrap(), CONFIG);
    // The file breaks while the server is down.
    std::fs::write(&config, format!("{CONFIG}tcp_idle_timeout = \"soon\"\n")).unwrap();
    let srv = Server::start(&config);
    assert_eq!(
        answers(&ask(srv.addr, "www.example.test", 1)),
        ["www.example.test. A 192.0.2.7"]
    );
    srv.wait_log("STARTING FROM THE LAST GOOD CONFIGURATION");
    srv.wait_log(&format!("{}:4: dns.tcp_idle_timeout", config.display()));
    drop(srv);
    // Without a good copy the start fails and says where.
    std::fs::remove_file(&copy).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_roundhouse"))
        .args(["serve", "--config"])
        .arg(&config)
        .stdout(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("{}:4: dns.tcp_idle_timeout", config.display())),
        "{err}"
    );
    // `check` never falls back and never writes a copy.
    std::fs::write(&copy, CONFIG).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_roundhouse"))
        .args(["check", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(!out.status.success());
}

#[test]
fn sigterm_lets_a_zone_transfer_in_flight_finish() {
    // A zone larger than the socket buffers: the transfer is still being written when the
    // signal comes.
    let mut zone = ZONE.1.to_string();
    let filler = "x".repeat(240);
    for i in 0..30_000 {
        zone.push_str(&format!("t{i} TXT \"{filler}\"\n"));
    }
    let config =
        format!("{CONFIG}tcp_idle_timeout = \"30s\"\n[dns.transfer]\nallow = [\"127.0.0.1\"]\n");
    let setup = Setup::new(&config, &[(ZONE.0, &zone)]);
    let mut srv = Server::start(&setup.config());
    let mut s = small_window_connect(srv.addr);
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(&framed(&query(9, "example.test", 252, None)))
        .unwrap();
    let first = read_message(&mut s);
    assert_eq!(first.metadata.response_code, ResponseCode::NoError);
    sigterm(&srv);
    assert!(
        poll(|| TcpStream::connect(srv.addr).is_err()),
        "new DNS connections still accepted after SIGTERM"
    );
    // The rest of the transfer still arrives, up to the closing SOA.
    let soa = |m: &hickory_proto::op::Message| {
        m.answers
            .iter()
            .filter(|r| r.record_type() == hickory_proto::rr::RecordType::SOA)
            .count()
    };
    let (mut soas, mut records) = (soa(&first), first.answers.len());
    while soas < 2 {
        let m = read_message(&mut s);
        soas += soa(&m);
        records += m.answers.len();
    }
    assert_eq!(
        records,
        30_000 + 5,
        "SOA, NS, ns A, www A, the TXT records, SOA"
    );
    let status = exit_within(&mut srv, Duration::from_secs(10));
    assert!(status.success(), "{status:?}");
}

/// A DNS message with its TCP length prefix.
fn framed(msg: &[u8]) -> Vec<u8> {
    let mut out = (msg.len() as u16).to_be_bytes().to_vec();
    out.extend_from_slice(msg);
    out
}

/// Reads one length-prefixed DNS message.
fn read_message(s: &mut TcpStream) -> hickory_proto::op::Message {
    let mut len = [0u8; 2];
    s.read_exact(&mut len).unwrap();
    let mut m = vec![0u8; usize::from(u16::from_be_bytes(len))];
    s.read_exact(&mut m).unwrap();
    hickory_proto::op::Message::from_vec(&m).unwrap()
}

/// True when the server closes `s` without sending anything more.
fn closed_quietly(s: &mut TcpStream) -> bool {
    matches!(s.read(&mut [0u8; 64]), Ok(0))
}

#[test]
fn sigterm_answers_the_dns_tcp_queries_that_had_arrived() {
    // One connection served at a time: a second client waits in the kernel's backlog.
    let config = format!(
        "{CONFIG}tcp_max_connections = 1\ntcp_idle_timeout = \"30s\"\ntcp_io_timeout = \"5s\"\n"
    );
    let setup = Setup::new(&config, &[ZONE]);
    let mut srv = Server::start(&setup.config());
    let www = |id| framed(&query(id, "www.example.test", 1, None));
    // A client asking slowly: a first query answered...
    let mut slow = TcpStream::connect(srv.addr).unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    slow.write_all(&www(1)).unwrap();
    assert_eq!(read_message(&mut slow).metadata.id, 1);
    // ...and, with the signal under way, a second whole and the first bytes of a third.
    let third = www(3);
    slow.write_all(&www(2)).unwrap();
    slow.write_all(&third[..5]).unwrap();
    // A client in the backlog with its whole query sent: no answer while the slot is taken.
    let mut waiting = TcpStream::connect(srv.addr).unwrap();
    waiting.write_all(&www(7)).unwrap();
    waiting
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    assert!(
        waiting.read(&mut [0u8; 1]).is_err(),
        "served beyond the cap"
    );
    waiting
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    sigterm(&srv);
    assert!(
        poll(|| TcpStream::connect(srv.addr).is_err()),
        "new DNS connections still accepted after SIGTERM"
    );
    // The third query, begun before the signal, is finished after it.
    slow.write_all(&third[5..]).unwrap();
    for id in [2, 3] {
        let m = read_message(&mut slow);
        assert_eq!(m.metadata.id, id);
        assert_eq!(answers(&m), ["www.example.test. A 192.0.2.7"]);
    }
    assert!(closed_quietly(&mut slow), "the connection stayed open");
    // The client of the backlog is answered too, then closed.
    let m = read_message(&mut waiting);
    assert_eq!(m.metadata.id, 7);
    assert_eq!(answers(&m), ["www.example.test. A 192.0.2.7"]);
    assert!(closed_quietly(&mut waiting), "the connection stayed open");
    let status = exit_within(&mut srv, Duration::from_secs(10));
    assert!(status.success(), "{status:?}");
    srv.wait_log("every connection finished");
}

/// A blocking connection with a small receive buffer, so that the server cannot write much
/// ahead of what the client has read.
fn small_window_connect(addr: SocketAddr) -> TcpStream {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let stream = rt.block_on(async {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        socket.connect(addr).await.unwrap()
    });
    let std = stream.into_std().unwrap();
    std.set_nonblocking(false).unwrap();
    std
}
