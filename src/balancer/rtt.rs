//! Client round-trip times, measured by the balancer for `latency` steering.
//!
//! Right after `accept`, the kernel's RTT estimate of a connection (`TCP_INFO`, `tcpi_rtt`) is
//! the handshake round trip: SYN-ACK sent, ACK received. No packet of the request is needed,
//! and the client cannot influence it beyond its network path. [`RttBook`] aggregates these
//! samples per client network (IPv4 /24, IPv6 /48); the reporter
//! ([`super::report`]) sends [`RttBook::take_summary`] to the DNS server as a
//! [`LatencyReport`].
//!
//! The book is one `Mutex<HashMap>`, taken once per accepted connection for a few hash-map
//! operations (and by the reporter once per interval); the accept loop never holds it across
//! an `.await`. That costs far less than the connection's own system calls, so no sharding.

use crate::config::Network;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

/// Client networks a book holds by default; the least recently seen ones make room.
pub const MAX_NETWORKS: usize = 65_536;
/// Prefix length of an IPv4 client network.
pub const V4_PREFIX: u8 = 24;
/// Prefix length of an IPv6 client network.
pub const V6_PREFIX: u8 = 48;
/// Weight of a new sample in a network's moving average (the SRTT gain of RFC 6298).
const GAIN: f64 = 0.125;
/// Upper bounds (seconds) of the RTT histogram buckets shown in the metrics.
pub const BUCKETS: [f64; 11] = [
    0.0005, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.25, 0.5, 1.0,
];

/// The handshake (or current smoothed) round-trip time of a TCP connection, from the kernel;
/// `None` where the kernel has no measurement or the platform has no `TCP_INFO`.
#[cfg(target_os = "linux")]
pub fn tcp_rtt(stream: &tokio::net::TcpStream) -> Option<Duration> {
    use std::os::fd::AsRawFd;
    let rtt_us = tcp_info_rtt_us(stream.as_raw_fd())?;
    (rtt_us > 0).then(|| Duration::from_micros(u64::from(rtt_us)))
}

/// The handshake round-trip time of a TCP connection: not measured on this platform.
#[cfg(not(target_os = "linux"))]
pub fn tcp_rtt(_stream: &tokio::net::TcpStream) -> Option<Duration> {
    None
}

/// `tcpi_rtt` (µs) of the socket `fd` via `getsockopt(IPPROTO_TCP, TCP_INFO)`. No maintained
/// crate wraps this option safely (socket2, nix and rustix do not offer it), hence the one
/// `unsafe` block of the crate.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn tcp_info_rtt_us(fd: std::os::fd::RawFd) -> Option<u32> {
    let size = std::mem::size_of::<libc::tcp_info>();
    let mut len = libc::socklen_t::try_from(size).ok()?;
    // SAFETY: `tcp_info` consists of integers only, so the all-zero value is valid and stays
    // valid whatever prefix of it the kernel overwrites. `info` lives across the call and is
    // `len` bytes long; getsockopt writes at most `len` bytes into it and stores the number
    // written in `len`. `fd` is borrowed from a live TcpStream, so it is an open socket for
    // the whole call (a wrong kind of descriptor only yields an error return).
    let (rc, info) = unsafe {
        let mut info: libc::tcp_info = std::mem::zeroed();
        let rc = libc::getsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            std::ptr::addr_of_mut!(info).cast(),
            &mut len,
        );
        (rc, info)
    };
    let filled = usize::try_from(len).unwrap_or(0);
    let needed = std::mem::offset_of!(libc::tcp_info, tcpi_rtt) + std::mem::size_of::<u32>();
    (rc == 0 && filled >= needed).then_some(info.tcpi_rtt)
}

/// The client network a connection from `ip` is counted in: its /24 or /48 (IPv4-mapped IPv6
/// addresses count as IPv4).
pub fn client_network(ip: IpAddr) -> Network {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    };
    let prefix = if ip.is_ipv4() { V4_PREFIX } else { V6_PREFIX };
    Network {
        addr: crate::steering::mask(ip, prefix),
        prefix,
    }
}

/// One client network in a [`LatencyReport`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NetworkRtt {
    /// The client network, CIDR (`198.51.100.0/24`, `2001:db8:1::/48`).
    pub prefix: String,
    /// Moving average of the round-trip time, milliseconds.
    pub rtt_ms: f64,
    /// Lowest round-trip time seen, milliseconds.
    pub min_ms: f64,
    /// Samples since the previous report.
    pub samples: u64,
}

/// The body of `POST /v1/latency`: what one balancer measured for its region since its last
/// report. Unknown fields are ignored, so that newer balancers can add some.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LatencyReport {
    /// The region the reporting balancer serves (a `[[region]]` of the DNS server).
    pub region: String,
    /// Client networks seen since the previous report.
    pub networks: Vec<NetworkRtt>,
}

/// All samples so far, for the metrics.
#[derive(Debug, Clone, PartialEq)]
pub struct RttStats {
    /// Samples per bucket of [`BUCKETS`], cumulative (Prometheus `le`); the last is the total.
    pub cumulative: Vec<u64>,
    /// Sum of all samples, seconds.
    pub sum_seconds: f64,
    /// Samples.
    pub count: u64,
    /// Client networks in the book.
    pub networks: usize,
}

#[derive(Debug, Clone, Copy)]
struct Aggregate {
    /// Samples since the last summary.
    fresh: u64,
    min_us: u64,
    avg_us: f64,
    /// When last seen (the book's tick), for eviction.
    seen: u64,
}

#[derive(Debug, Default)]
struct Inner {
    networks: HashMap<Network, Aggregate>,
    tick: u64,
    /// Per bucket of `BUCKETS`, then one for larger samples.
    histogram: [u64; BUCKETS.len() + 1],
    sum_us: u64,
}

/// Round-trip times per client network, bounded in size (see the module documentation).
#[derive(Debug)]
pub struct RttBook {
    capacity: usize,
    inner: Mutex<Inner>,
}

impl Default for RttBook {
    fn default() -> RttBook {
        RttBook::new(MAX_NETWORKS)
    }
}

impl RttBook {
    /// A book of at most `capacity` client networks (at least 1).
    pub fn new(capacity: usize) -> RttBook {
        RttBook {
            capacity: capacity.max(1),
            inner: Mutex::new(Inner::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic elsewhere while holding the lock leaves consistent counters: keep going.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records the handshake RTT of a just-accepted connection from `peer`, if the kernel
    /// has one.
    pub fn sample(&self, stream: &tokio::net::TcpStream, peer: IpAddr) {
        if let Some(rtt) = tcp_rtt(stream) {
            self.record(peer, rtt);
        }
    }

    /// Records one round-trip time of a client at `peer`.
    pub fn record(&self, peer: IpAddr, rtt: Duration) {
        let net = client_network(peer);
        let us = u64::try_from(rtt.as_micros()).unwrap_or(u64::MAX);
        let mut inner = self.lock();
        inner.tick += 1;
        let tick = inner.tick;
        let bucket = BUCKETS
            .iter()
            .position(|&b| rtt.as_secs_f64() <= b)
            .unwrap_or(BUCKETS.len());
        inner.histogram[bucket] += 1;
        inner.sum_us = inner.sum_us.saturating_add(us);
        if let Some(a) = inner.networks.get_mut(&net) {
            a.fresh += 1;
            a.min_us = a.min_us.min(us);
            a.avg_us += GAIN * (us as f64 - a.avg_us);
            a.seen = tick;
            return;
        }
        if inner.networks.len() >= self.capacity {
            // Evict in batches so that a full book scans itself once per capacity/16 new
            // networks, not on every one.
            evict_oldest(&mut inner.networks, (self.capacity / 16).max(1));
        }
        inner.networks.insert(
            net,
            Aggregate {
                fresh: 1,
                min_us: us,
                avg_us: us as f64,
                seen: tick,
            },
        );
    }

    /// The networks with samples since the previous summary, with their moving average,
    /// minimum and number of new samples; starts the next summary's count.
    pub fn take_summary(&self) -> Vec<NetworkRtt> {
        let mut inner = self.lock();
        let mut out = Vec::new();
        for (net, a) in inner.networks.iter_mut().filter(|(_, a)| a.fresh > 0) {
            out.push(NetworkRtt {
                prefix: net.to_string(),
                rtt_ms: a.avg_us / 1000.0,
                min_ms: a.min_us as f64 / 1000.0,
                samples: a.fresh,
            });
            a.fresh = 0;
        }
        out
    }

    /// Client networks in the book.
    pub fn len(&self) -> usize {
        self.lock().networks.len()
    }

    /// True when no sample was recorded (or all were evicted).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The histogram of all samples so far.
    pub fn stats(&self) -> RttStats {
        let inner = self.lock();
        let mut total = 0;
        let cumulative = inner
            .histogram
            .iter()
            .map(|n| {
                total += n;
                total
            })
            .collect();
        RttStats {
            cumulative,
            sum_seconds: inner.sum_us as f64 / 1e6,
            count: total,
            networks: inner.networks.len(),
        }
    }
}

/// Removes the `n` least recently seen networks (ticks are unique).
fn evict_oldest(networks: &mut HashMap<Network, Aggregate>, n: usize) {
    let mut ticks: Vec<u64> = networks.values().map(|a| a.seen).collect();
    if ticks.is_empty() {
        return;
    }
    let k = n.min(ticks.len()) - 1;
    let (_, cutoff, _) = ticks.select_nth_unstable(k);
    let cutoff = *cutoff;
    networks.retain(|_, a| a.seen > cutoff);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn summary(book: &RttBook) -> Vec<NetworkRtt> {
        let mut s = book.take_summary();
        s.sort_by(|a, b| a.prefix.cmp(&b.prefix));
        s
    }

    #[test]
    fn samples_are_aggregated_per_slash_24_and_slash_48() {
        let book = RttBook::default();
        book.record(ip("198.51.100.7"), Duration::from_millis(20));
        book.record(ip("198.51.100.200"), Duration::from_millis(12));
        book.record(ip("::ffff:198.51.100.9"), Duration::from_millis(20));
        book.record(ip("198.51.101.1"), Duration::from_millis(40));
        book.record(ip("2001:db8:1:2::1"), Duration::from_millis(30));
        book.record(ip("2001:db8:1:ffff::9"), Duration::from_millis(30));
        assert_eq!(book.len(), 3);
        let s = summary(&book);
        let prefixes: Vec<&str> = s.iter().map(|n| n.prefix.as_str()).collect();
        assert_eq!(
            prefixes,
            ["198.51.100.0/24", "198.51.101.0/24", "2001:db8:1::/48"]
        );
        let v4 = &s[0];
        assert_eq!((v4.samples, v4.min_ms), (3, 12.0));
        // 20, then 20 + (12 - 20) / 8 = 19, then 19 + (20 - 19) / 8 = 19.125.
        assert!((v4.rtt_ms - 19.125).abs() < 1e-9, "{v4:?}");
        assert_eq!((s[2].samples, s[2].rtt_ms), (2, 30.0));
    }

    #[test]
    fn a_summary_holds_only_networks_seen_since_the_previous_one() {
        let book = RttBook::default();
        book.record(ip("192.0.2.1"), Duration::from_millis(5));
        book.record(ip("203.0.113.1"), Duration::from_millis(9));
        assert_eq!(summary(&book).len(), 2);
        assert!(book.take_summary().is_empty());
        book.record(ip("203.0.113.2"), Duration::from_millis(9));
        let s = summary(&book);
        assert_eq!(s.len(), 1);
        assert_eq!((s[0].prefix.as_str(), s[0].samples), ("203.0.113.0/24", 1));
        assert_eq!(book.len(), 2, "the book keeps what it summarised");
    }

    #[test]
    fn the_least_recently_seen_network_makes_room() {
        let book = RttBook::new(3);
        for i in 1..=3u8 {
            book.record(IpAddr::from([10, i, 0, 1]), Duration::from_millis(1));
        }
        book.record(IpAddr::from([10, 1, 0, 2]), Duration::from_millis(1)); // 10.1 seen again
        book.record(IpAddr::from([10, 4, 0, 1]), Duration::from_millis(1));
        assert_eq!(book.len(), 3);
        let s: Vec<String> = summary(&book).into_iter().map(|n| n.prefix).collect();
        assert_eq!(s, ["10.1.0.0/24", "10.3.0.0/24", "10.4.0.0/24"]);
        let big = RttBook::new(1000);
        for i in 0..5000u32 {
            big.record(
                IpAddr::from((i << 8).to_be_bytes()),
                Duration::from_millis(1),
            );
        }
        assert!(big.len() <= 1000, "{}", big.len());
        assert_eq!(big.stats().count, 5000);
    }

    #[test]
    fn histogram_counts_every_sample() {
        let book = RttBook::default();
        book.record(ip("192.0.2.1"), Duration::from_micros(300));
        book.record(ip("192.0.2.2"), Duration::from_millis(30));
        book.record(ip("192.0.2.3"), Duration::from_secs(3));
        let st = book.stats();
        assert_eq!(st.count, 3);
        assert_eq!(st.cumulative[0], 1, "<= 0.5 ms");
        assert_eq!(st.cumulative[5], 2, "<= 50 ms");
        assert_eq!(st.cumulative[BUCKETS.len() - 1], 2, "<= 1 s");
        assert_eq!(*st.cumulative.last().unwrap(), 3);
        assert!((st.sum_seconds - 3.0303).abs() < 1e-9);
        assert_eq!(st.networks, 1);
    }

    #[test]
    fn a_report_survives_a_json_round_trip() {
        let book = RttBook::default();
        book.record(ip("198.51.100.1"), Duration::from_micros(12_500));
        book.record(ip("2001:db8:7::1"), Duration::from_millis(40));
        let report = LatencyReport {
            region: "eu-west".into(),
            networks: summary(&book),
        };
        let text = serde_json::to_string(&report).unwrap();
        assert!(
            text.contains(r#""prefix":"198.51.100.0/24","rtt_ms":12.5"#),
            "{text}"
        );
        let back: LatencyReport = serde_json::from_str(&text).unwrap();
        assert_eq!(back, report);
        let extra = r#"{"region":"x","networks":[],"sent_by":"a newer balancer"}"#;
        assert!(serde_json::from_str::<LatencyReport>(extra).is_ok());
    }

    #[tokio::test]
    async fn tcp_rtt_of_a_loopback_connection_is_small() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let client = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (server, peer) = listener.accept().await.unwrap();
        let rtt = tcp_rtt(&server);
        if cfg!(target_os = "linux") {
            let rtt = rtt.expect("the kernel measured the handshake");
            assert!(rtt < Duration::from_millis(50), "{rtt:?}");
            assert!(tcp_rtt(&client).is_some());
            let book = RttBook::default();
            book.sample(&server, peer.ip());
            assert_eq!(book.stats().count, 1);
            assert_eq!(summary(&book)[0].prefix, "127.0.0.0/24");
        } else {
            assert_eq!(rtt, None);
        }
    }
}
