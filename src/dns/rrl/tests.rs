use super::*;
use crate::dns::name::Name;
use std::time::Duration;

fn config(rate: u32, slip: u32, window: u64) -> RrlConfig {
    RrlConfig {
        responses_per_second: rate,
        slip,
        window: Duration::from_secs(window),
        table_size: 1024,
        ..RrlConfig::default()
    }
}

/// A response to `qname`: `rcode`, AA, `answers` empty answer records and, for a negative
/// answer, one SOA in authority owned by the zone (`zone_offset` bytes into the name).
fn reply(qname: &str, rcode: u8, answers: u16, soa_at: Option<usize>) -> Vec<u8> {
    let name = Name::parse(qname, None).unwrap();
    let mut m = vec![0, 7, 0x84, rcode, 0, 1];
    m.extend_from_slice(&answers.to_be_bytes());
    m.extend_from_slice(&u16::from(soa_at.is_some()).to_be_bytes());
    m.extend_from_slice(&[0, 0]);
    m.extend_from_slice(name.wire());
    m.extend_from_slice(&[0, 1, 0, 1]);
    for _ in 0..answers {
        m.extend_from_slice(&[0xC0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 1]);
    }
    if let Some(at) = soa_at {
        let ptr = 0xC000u16 | (12 + at) as u16;
        m.extend_from_slice(&ptr.to_be_bytes());
        m.extend_from_slice(&[0, 6, 0, 1, 0, 0, 0, 60, 0, 0]);
    }
    m
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_flood_gets_the_rate_then_slips_and_drops() {
    let rrl = Rrl::new(&config(5, 2, 2)).unwrap();
    let r = reply("www.example.com.", 0, 1, None);
    let verdicts: Vec<Verdict> = (0..11).map(|_| rrl.check(ip("192.0.2.1"), &r)).collect();
    assert_eq!(&verdicts[..5], &[Verdict::Send; 5]);
    // Every second withheld response is sent truncated.
    assert_eq!(
        &verdicts[5..],
        &[
            Verdict::Slip,
            Verdict::Drop,
            Verdict::Slip,
            Verdict::Drop,
            Verdict::Slip,
            Verdict::Drop
        ]
    );
    // The debt is capped at rate × window (-10): one second's credit does not cover it...
    tokio::time::advance(Duration::from_secs(1)).await;
    assert_ne!(rrl.check(ip("192.0.2.1"), &r), Verdict::Send);
    // ...but a quiet window does (and the bucket holds at most one second's worth).
    tokio::time::advance(Duration::from_secs(10)).await;
    let sent = (0..10)
        .filter(|_| rrl.check(ip("192.0.2.1"), &r) == Verdict::Send)
        .count();
    assert_eq!(sent, 5);
}

#[tokio::test(start_paused = true)]
async fn accounts_are_per_network_class_and_name() {
    let rrl = Rrl::new(&config(2, 0, 1)).unwrap();
    let www = reply("www.example.com.", 0, 1, None);
    let mail = reply("mail.example.com.", 0, 1, None);
    for _ in 0..2 {
        assert_eq!(rrl.check(ip("192.0.2.1"), &www), Verdict::Send);
    }
    // Same /24: same account. Slip 0: nothing is sent.
    assert_eq!(rrl.check(ip("192.0.2.200"), &www), Verdict::Drop);
    // Another network, another name, another class: their own accounts.
    assert_eq!(rrl.check(ip("192.0.3.1"), &www), Verdict::Send);
    assert_eq!(rrl.check(ip("192.0.2.1"), &mail), Verdict::Send);
    let nodata = reply("www.example.com.", 0, 0, Some(4));
    assert_eq!(rrl.check(ip("192.0.2.1"), &nodata), Verdict::Send);
    // IPv6: a /56 is one client.
    let v6 = |s| rrl.check(ip(s), &www);
    assert_eq!(v6("2001:db8:0:1::1"), Verdict::Send);
    assert_eq!(v6("2001:db8:0:2::1"), Verdict::Send);
    assert_eq!(v6("2001:db8:0:3::1"), Verdict::Drop);
    assert_eq!(v6("2001:db8:1::1"), Verdict::Send);
}

#[tokio::test(start_paused = true)]
async fn random_names_of_one_zone_share_the_nxdomain_account() {
    let rrl = Rrl::new(&config(3, 0, 1)).unwrap();
    let names = [
        "a1.example.com.",
        "bb2.example.com.",
        "ccc3.example.com.",
        "d.example.com.",
    ];
    let verdicts: Vec<Verdict> = names
        .iter()
        .map(|n| {
            // The SOA owner points at `example.com.` inside the question.
            let at = n.find("example").unwrap();
            rrl.check(ip("198.51.100.9"), &reply(n, 3, 0, Some(at)))
        })
        .collect();
    assert_eq!(
        verdicts,
        [Verdict::Send, Verdict::Send, Verdict::Send, Verdict::Drop]
    );
    // Another zone's NXDOMAIN is not limited by it.
    let other = reply("x.example.org.", 3, 0, Some(2));
    assert_eq!(rrl.check(ip("198.51.100.9"), &other), Verdict::Send);
}

#[tokio::test(start_paused = true)]
async fn exempt_networks_and_off() {
    let mut c = config(1, 1, 1);
    c.exempt = vec!["10.0.0.0/8".parse().unwrap()];
    let rrl = Rrl::new(&c).unwrap();
    let r = reply("www.example.com.", 0, 1, None);
    assert!((0..50).all(|_| rrl.check(ip("10.1.2.3"), &r) == Verdict::Send));
    assert_eq!(rrl.check(ip("192.0.2.1"), &r), Verdict::Send);
    // Slip 1: every withheld response is sent truncated.
    assert_eq!(rrl.check(ip("192.0.2.1"), &r), Verdict::Slip);
    assert!(Rrl::new(&config(0, 2, 15)).is_none());
}

#[test]
fn a_slip_is_the_question_with_tc() {
    let r = reply("www.example.com.", 0, 2, None);
    let s = slip_reply(&r);
    assert_eq!(&s[..2], &[0, 7]);
    assert_ne!(u16::from_be_bytes([s[2], s[3]]) & flag::TC, 0);
    assert_eq!(&s[4..12], &[0, 1, 0, 0, 0, 0, 0, 0]);
    assert_eq!(s.len(), 12 + 17 + 4);
    assert_eq!(&s[12..], &r[12..12 + 21]);
}
