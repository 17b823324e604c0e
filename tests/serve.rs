//! The real binary over real sockets: what a user with `dig` would check.

mod common;
use common::*;
use hickory_proto::op::ResponseCode;

const ZONE: &str = "$ORIGIN example.test.
$TTL 300
@ SOA ns1 hostmaster 1 3600 600 86400 60
@ NS ns1
ns1 A 192.0.2.53
www A 192.0.2.1
www A 192.0.2.2
alias CNAME www
*.wild TXT \"wildcard\"
sub NS ns.sub
ns.sub A 192.0.2.99
big TXT \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa 1\"
big TXT \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa 2\"
big TXT \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa 3\"
big TXT \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa 4\"
big TXT \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa 5\"
";

fn server() -> (Setup, Server) {
    let setup = Setup::new(CONFIG, &[("example.test.zone", ZONE)]);
    let server = Server::start(&setup.config());
    (setup, server)
}

#[test]
fn answers_positive_negative_and_refused_over_udp() {
    let (_s, srv) = server();
    let m = ask(srv.addr, "www.example.test", 1);
    assert_eq!(rcode(&m), ResponseCode::NoError);
    assert!(m.metadata.authoritative);
    assert_eq!(
        answers(&m),
        [
            "www.example.test. A 192.0.2.1",
            "www.example.test. A 192.0.2.2"
        ]
    );

    let nx = ask(srv.addr, "nope.example.test", 1);
    assert_eq!(rcode(&nx), ResponseCode::NXDomain);
    assert_eq!(nx.authorities.len(), 1);
    assert_eq!(
        nx.authorities[0].ttl, 60,
        "negative TTL is min(SOA TTL, MINIMUM)"
    );

    let nodata = ask(srv.addr, "www.example.test", 28);
    assert_eq!(rcode(&nodata), ResponseCode::NoError);
    assert!(nodata.answers.is_empty());
    assert_eq!(nodata.authorities.len(), 1);

    let refused = ask(srv.addr, "example.com", 1);
    assert_eq!(rcode(&refused), ResponseCode::Refused);
    assert!(!refused.metadata.authoritative);
}

#[test]
fn cname_wildcard_and_referral() {
    let (_s, srv) = server();
    let m = ask(srv.addr, "alias.example.test", 1);
    assert_eq!(
        answers(&m),
        [
            "alias.example.test. CNAME www.example.test.",
            "www.example.test. A 192.0.2.1",
            "www.example.test. A 192.0.2.2"
        ]
    );

    let w = ask(srv.addr, "anything.wild.example.test", 16);
    assert_eq!(answers(&w), ["anything.wild.example.test. TXT wildcard"]);

    let r = ask(srv.addr, "host.sub.example.test", 1);
    assert!(!r.metadata.authoritative, "referrals are not authoritative");
    assert!(r.answers.is_empty());
    assert_eq!(
        r.authorities[0].to_string().split_whitespace().last(),
        Some("ns.sub.example.test.")
    );
    assert_eq!(
        r.additionals
            .iter()
            .filter(|a| a.record_type() == hickory_proto::rr::RecordType::A)
            .count(),
        1,
        "glue"
    );
}

#[test]
fn question_case_is_preserved() {
    let (_s, srv) = server();
    let q = query(7, "WwW.ExAmple.TEST", 1, None);
    let reply = udp_raw(srv.addr, &q).unwrap();
    assert_eq!(
        &reply[12..12 + 18],
        &q[12..12 + 18],
        "question echoed byte for byte"
    );
}

#[test]
fn truncated_over_udp_complete_over_tcp() {
    let (_s, srv) = server();
    let q = query(9, "big.example.test", 16, None);
    let udp = hickory_proto::op::Message::from_vec(&udp_raw(srv.addr, &q).unwrap()).unwrap();
    assert!(
        udp.metadata.truncation,
        "5 x 120-byte TXT does not fit 512 bytes"
    );
    let tcp = hickory_proto::op::Message::from_vec(&tcp_raw(srv.addr, &q)).unwrap();
    assert!(!tcp.metadata.truncation);
    assert_eq!(tcp.answers.len(), 5);
}

#[test]
fn edns_version_and_opcodes() {
    let (_s, srv) = server();
    let mut q = query(11, "www.example.test", 1, Some(1232));
    let ttl_at = q.len() - 6;
    q[ttl_at + 1] = 1; // EDNS version 1
    let m = hickory_proto::op::Message::from_vec(&udp_raw(srv.addr, &q).unwrap()).unwrap();
    assert_eq!(
        m.edns.as_ref().map(|e| e.rcode_high()),
        Some(1),
        "BADVERS = 16"
    );

    let mut status = query(12, "www.example.test", 1, None);
    status[2] = 2 << 3; // opcode STATUS
    let m = hickory_proto::op::Message::from_vec(&udp_raw(srv.addr, &status).unwrap()).unwrap();
    assert_eq!(rcode(&m), ResponseCode::NotImp);

    // A response (QR=1) must not be answered.
    let mut resp = query(13, "www.example.test", 1, None);
    resp[2] = 0x80;
    assert!(udp_raw(srv.addr, &resp).is_none());
    // and the server still answers afterwards
    assert_eq!(
        rcode(&ask(srv.addr, "www.example.test", 1)),
        ResponseCode::NoError
    );
}

#[test]
fn zone_transfer_refused_by_default() {
    let (_s, srv) = server();
    let q = query(14, "example.test", 252, None);
    let m = hickory_proto::op::Message::from_vec(&tcp_raw(srv.addr, &q)).unwrap();
    assert_eq!(rcode(&m), ResponseCode::Refused);
}

#[test]
fn zone_transfer_to_allowed_secondary() {
    let config = format!("{CONFIG}[dns.transfer]\nallow = [\"127.0.0.0/8\"]\n");
    let setup = Setup::new(&config, &[("example.test.zone", ZONE)]);
    let srv = Server::start(&setup.config());
    let q = query(15, "example.test", 252, None);
    let m = hickory_proto::op::Message::from_vec(&tcp_raw(srv.addr, &q)).unwrap();
    assert_eq!(rcode(&m), ResponseCode::NoError);
    let n = m.answers.len();
    assert_eq!(
        m.answers[0].record_type(),
        hickory_proto::rr::RecordType::SOA
    );
    assert_eq!(
        m.answers[n - 1].record_type(),
        hickory_proto::rr::RecordType::SOA
    );
    assert_eq!(n, 15, "14 records (SOA first) plus the closing SOA");
}
