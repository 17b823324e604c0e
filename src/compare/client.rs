//! The simulated clients and their caching resolvers (the model is documented, with its
//! sources, in docs/comparison.md; its parameters come from the client survey there).
//!
//! Lookups pass through three layers: a shared recursive resolver (honours the TTL, raised
//! to a configurable floor, rotates the cached RRset on every answer), the client's own
//! cache (none, fixed, floored, with grace, or forever, by client type), and the client's
//! connection (reused for a session of requests; some types keep it until it breaks). In
//! the docker lab the first layer is a real recursive resolver ([`Resolver::stub`]).

use super::dns::query_a_from;
use super::http::Connection;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// A small deterministic generator (SplitMix64): the same seed gives the same clients,
/// mix and think times.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// Seeded.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

/// How a client type caches answers in-process.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Cache {
    /// No cache: every new connection looks up (Go, Python, Node).
    None,
    /// A fixed lifetime, TTL ignored (curl 60 s, Java 30 s, Chromium with the OS resolver).
    Fixed(Duration),
    /// The TTL, but at least this long (Chromium's built-in resolver: 60 s).
    Floor(Duration),
    /// The TTL, then used for this long more while refreshing (Firefox: 60 s grace).
    Grace(Duration),
    /// Resolved once, kept for the process lifetime (the stale tail).
    Forever,
}

/// One client type of the mix.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClientType {
    /// Name in reports.
    pub name: &'static str,
    /// Share of clients, percent.
    pub share: u32,
    /// In-process cache.
    pub cache: Cache,
    /// Tries the next address when a connect fails.
    pub failover: bool,
    /// Keeps one connection until it breaks (no per-session reconnect).
    pub pinned: bool,
}

const fn s(secs: u64) -> Duration {
    Duration::from_secs(secs)
}

/// The default mix (docs/comparison.md, "Client model"), real-world durations.
pub const MIX: [ClientType; 8] = [
    ClientType {
        name: "chromium",
        share: 40,
        cache: Cache::Fixed(s(60)),
        failover: true,
        pinned: false,
    },
    ClientType {
        name: "firefox",
        share: 5,
        cache: Cache::Grace(s(60)),
        failover: true,
        pinned: false,
    },
    ClientType {
        name: "go",
        share: 15,
        cache: Cache::None,
        failover: true,
        pinned: false,
    },
    ClientType {
        name: "java",
        share: 12,
        cache: Cache::Fixed(s(30)),
        failover: false,
        pinned: false,
    },
    ClientType {
        name: "python-node",
        share: 12,
        cache: Cache::None,
        failover: true,
        pinned: false,
    },
    ClientType {
        name: "curl",
        share: 6,
        cache: Cache::Fixed(s(60)),
        failover: true,
        pinned: false,
    },
    ClientType {
        name: "dotnet",
        share: 8,
        cache: Cache::None,
        failover: true,
        pinned: true,
    },
    ClientType {
        name: "stale-tail",
        share: 2,
        cache: Cache::Forever,
        failover: false,
        pinned: false,
    },
];

/// Picks a client type of `mix` by share (`mix` must not be empty).
pub fn pick(mix: &[ClientType], rng: &mut Rng) -> ClientType {
    let total: u32 = mix.iter().map(|t| t.share).sum();
    let mut x = rng.below(u64::from(total.max(1))) as u32;
    for t in mix {
        if x < t.share {
            return *t;
        }
        x -= t.share;
    }
    mix[0]
}

/// A caching recursive resolver in front of the authoritative server (simulated), or the
/// stub's path to a real recursive resolver (the lab's unbound, which caches itself).
pub struct Resolver {
    server: SocketAddr,
    local: Option<IpAddr>,
    caching: bool,
    floor: Duration,
    rotates: bool,
    cache: Mutex<Option<(Vec<IpAddr>, Instant)>>,
    turn: AtomicU64,
    /// Queries sent to `server`: the authoritative server when simulated, the real
    /// recursive resolver for a stub.
    pub queries: AtomicU64,
}

impl Resolver {
    /// A resolver asking `server`, keeping answers `max(TTL, floor)`; `rotates`: each answer
    /// from cache starts one address further (Unbound, BIND).
    pub fn new(server: SocketAddr, floor: Duration, rotates: bool) -> Resolver {
        Resolver {
            server,
            local: None,
            caching: true,
            floor,
            rotates,
            cache: Mutex::new(None),
            turn: AtomicU64::new(0),
            queries: AtomicU64::new(0),
        }
    }

    /// A stub asking the real recursive resolver `server` from address `local` on every
    /// lookup: caching, the TTL floor and the rotation are the real resolver's own.
    pub fn stub(server: SocketAddr, local: Option<IpAddr>) -> Resolver {
        Resolver {
            local,
            caching: false,
            ..Resolver::new(server, Duration::ZERO, false)
        }
    }

    /// The addresses and their remaining lifetime; an empty list when the server failed.
    pub async fn lookup(&self, name: &str) -> (Vec<IpAddr>, Duration) {
        let now = Instant::now();
        let cached = match self.caching {
            true => self.cache.lock().expect("not poisoned").clone(),
            false => None,
        };
        let (addrs, expires) = match cached {
            Some((a, e)) if e > now => (a, e),
            _ => {
                let n = self.queries.fetch_add(1, Ordering::Relaxed);
                let reply = query_a_from(self.local, self.server, name, n as u16).await;
                let Some(answer) = reply else {
                    return (Vec::new(), Duration::ZERO);
                };
                let addrs: Vec<IpAddr> = answer.addrs.into_iter().map(IpAddr::V4).collect();
                let expires = now + answer.ttl.max(self.floor);
                *self.cache.lock().expect("not poisoned") = Some((addrs.clone(), expires));
                // A fresh answer is passed on in the authoritative server's order.
                return (addrs, expires - now);
            }
        };
        let mut addrs = addrs;
        if self.rotates && !addrs.is_empty() {
            let k = self.turn.fetch_add(1, Ordering::Relaxed) as usize % addrs.len();
            addrs.rotate_left(k);
        }
        (addrs, expires.saturating_duration_since(now))
    }
}

/// Instance ids as they appear in answers, numbered in order of first appearance (a
/// setup's in-process instances are entered first, so that their number is their index).
#[derive(Debug, Default)]
pub struct Names(Mutex<Vec<String>>);

impl Names {
    /// With these names first.
    pub fn new(first: impl IntoIterator<Item = String>) -> Names {
        Names(Mutex::new(first.into_iter().collect()))
    }

    /// The number of `name`, entered when new.
    pub fn number(&self, name: &str) -> u16 {
        let mut v = self.0.lock().expect("not poisoned");
        match v.iter().position(|n| n == name) {
            Some(i) => i as u16,
            None => {
                v.push(name.to_string());
                (v.len() - 1) as u16
            }
        }
    }

    /// The number of `name` if it was seen.
    pub fn find(&self, name: &str) -> Option<u16> {
        let v = self.0.lock().expect("not poisoned");
        v.iter().position(|n| n == name).map(|i| i as u16)
    }

    /// Every name, by number.
    pub fn all(&self) -> Vec<String> {
        self.0.lock().expect("not poisoned").clone()
    }
}

/// One request's outcome.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Sample {
    /// Milliseconds since the workload started.
    pub t_ms: u32,
    /// 2xx answer.
    pub ok: bool,
    /// Microseconds from the request (including any connect) to the response.
    pub latency_us: u32,
    /// Instance that answered (from the body, numbered by [`Names`]), if any.
    pub instance: Option<u16>,
    /// The client that sent it.
    pub client: u16,
}

/// Where a client sends requests.
#[derive(Clone)]
pub enum Target {
    /// A fixed address (the balancer).
    Fixed(SocketAddr),
    /// A name, on this port, resolved through this resolver.
    Name(Arc<Resolver>, u16),
}

/// What drives one client.
pub struct Client {
    /// Its type.
    pub kind: ClientType,
    /// Where it sends.
    pub target: Target,
    /// The name it resolves and sends as `Host`.
    pub name: Arc<str>,
    /// Source address of its connections (`None`: the kernel's choice).
    pub local: Option<IpAddr>,
    /// Multiplies the type's cache durations (real-world seconds do not fit a short run).
    pub scale: f64,
    /// Requests per session (one connection each unless pinned).
    pub session: u32,
    /// Time between requests.
    pub gap: Duration,
    /// Time after the start before its first request.
    pub begin: Duration,
    /// Keeps its target: sends back the balancer's cookie, and reconnects to the address it
    /// used last while that one accepts connections.
    pub sticky: bool,
    /// Its number in samples.
    pub number: u16,
    /// Numbers of the instances that answer.
    pub names: Arc<Names>,
}

const TIMEOUT: Duration = Duration::from_secs(2);

impl Client {
    /// Sends requests until `end`, appending samples.
    pub async fn run(&self, start: Instant, end: Instant, mut rng: Rng, out: &Mutex<Vec<Sample>>) {
        let mut own: Option<(Vec<IpAddr>, Instant)> = None;
        let mut conn: Option<Connection> = None;
        let mut last: Option<IpAddr> = None;
        let mut cookie: Option<String> = None;
        let offset = rng.below(self.gap.as_millis().max(1) as u64);
        tokio::time::sleep_until(start + self.begin + Duration::from_millis(offset)).await;
        let mut n = 0u32;
        while Instant::now() < end {
            let t0 = Instant::now();
            if conn.is_none() {
                conn = self.connect(&mut own, &mut last).await;
            }
            let sample = match conn.as_mut() {
                Some(c) => {
                    let sent = cookie.as_deref().filter(|_| self.sticky);
                    match c.get_with_cookie(&self.name, "/", sent, TIMEOUT).await {
                        Ok(reply) => {
                            if reply.set_cookie.is_some() {
                                cookie = reply.set_cookie;
                            }
                            Sample {
                                ok: (200..300).contains(&reply.status),
                                instance: instance_of(&reply.body).map(|i| self.names.number(i)),
                                ..failed()
                            }
                        }
                        Err(_) => {
                            conn = None;
                            failed()
                        }
                    }
                }
                None => failed(),
            };
            let sample = Sample {
                t_ms: t0.duration_since(start).as_millis() as u32,
                latency_us: t0.elapsed().as_micros() as u32,
                client: self.number,
                ..sample
            };
            out.lock().expect("not poisoned").push(sample);
            n += 1;
            if n.is_multiple_of(self.session) && !self.kind.pinned {
                conn = None;
            }
            let jitter = rng.below(self.gap.as_millis().max(1) as u64 / 2 + 1);
            tokio::time::sleep(self.gap + Duration::from_millis(jitter)).await;
        }
    }

    async fn connect(
        &self,
        own: &mut Option<(Vec<IpAddr>, Instant)>,
        last: &mut Option<IpAddr>,
    ) -> Option<Connection> {
        if let (true, Some(ip), Target::Name(_, port)) = (self.sticky, *last, &self.target)
            && let Ok(c) = self.open(SocketAddr::new(ip, *port)).await
        {
            return Some(c);
        }
        let (addrs, port) = match &self.target {
            Target::Fixed(a) => (vec![a.ip()], a.port()),
            Target::Name(resolver, port) => (self.resolve(resolver, own).await, *port),
        };
        let tries = if self.kind.failover { addrs.len() } else { 1 };
        for ip in addrs.iter().take(tries) {
            if let Ok(c) = self.open(SocketAddr::new(*ip, port)).await {
                *last = Some(*ip);
                return Some(c);
            }
        }
        None
    }

    async fn open(&self, addr: SocketAddr) -> Result<Connection, super::http::HttpError> {
        Connection::open_from(self.local, addr, TIMEOUT).await
    }

    async fn resolve(&self, r: &Resolver, own: &mut Option<(Vec<IpAddr>, Instant)>) -> Vec<IpAddr> {
        let now = Instant::now();
        if let Some((a, until)) = own
            && *until > now
        {
            return a.clone();
        }
        let (addrs, ttl) = r.lookup(&self.name).await;
        let scaled = |d: Duration| d.mul_f64(self.scale);
        let keep = match self.kind.cache {
            Cache::None => Duration::ZERO,
            Cache::Fixed(d) => scaled(d),
            Cache::Floor(d) => ttl.max(scaled(d)),
            Cache::Grace(d) => ttl + scaled(d),
            Cache::Forever => Duration::from_secs(86_400),
        };
        if !keep.is_zero() && !addrs.is_empty() {
            *own = Some((addrs.clone(), now + keep));
        }
        addrs
    }
}

fn failed() -> Sample {
    Sample {
        t_ms: 0,
        ok: false,
        latency_us: 0,
        instance: None,
        client: 0,
    }
}

/// The instance id in a demo backend's `GET /` body (`... id=NAME ...`).
fn instance_of(body: &str) -> Option<&str> {
    body.split_whitespace().find_map(|w| w.strip_prefix("id="))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mix_adds_up_and_picks_follow_shares() {
        assert_eq!(MIX.iter().map(|t| t.share).sum::<u32>(), 100);
        let mut rng = Rng::new(7);
        let n = 10_000;
        let chromium = (0..n)
            .filter(|_| pick(&MIX, &mut rng).name == "chromium")
            .count();
        assert!((3_600..4_400).contains(&chromium), "{chromium} of {n}");
    }

    #[test]
    fn instance_ids_are_read_from_the_backend_body() {
        assert_eq!(instance_of("region=us-east id=4 host=h\n"), Some("4"));
        assert_eq!(instance_of("no id here"), None);
        let names = Names::new(["0".to_string(), "1".to_string()]);
        assert_eq!(names.number("1"), 1);
        assert_eq!(names.number("us-east-3"), 2);
        assert_eq!(names.find("us-east-3"), Some(2));
        assert_eq!(names.all().len(), 3);
    }

    /// A recursive resolver on loopback that answers every A query with 192.0.2.N (N: the
    /// queries so far) and TTL 60, and tells from which addresses it was asked.
    async fn upstream() -> (SocketAddr, Arc<Mutex<Vec<IpAddr>>>) {
        let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = sock.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        tokio::spawn(async move {
            let mut buf = [0u8; 512];
            while let Ok((n, from)) = sock.recv_from(&mut buf).await {
                log.lock().unwrap().push(from.ip());
                let mut reply = buf[..n].to_vec();
                reply[2] |= 0x80; // QR
                reply[7] = 1; // ANCOUNT
                let k = log.lock().unwrap().len() as u8;
                // The question's name (a pointer to offset 12), A, IN, TTL 60, 4 bytes.
                reply.extend([0xC0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, k]);
                let _ = sock.send_to(&reply, from).await;
            }
        });
        (addr, seen)
    }

    #[tokio::test]
    async fn a_stub_asks_the_real_resolver_every_time_from_its_address() {
        let (server, seen) = upstream().await;
        let local: IpAddr = "127.0.0.3".parse().unwrap();
        let stub = Resolver::stub(server, Some(local));
        let first = stub.lookup("rr.lab.test").await;
        let second = stub.lookup("rr.lab.test").await;
        assert_eq!(first, (vec!["192.0.2.1".parse().unwrap()], s(60)));
        assert_eq!(second.0, ["192.0.2.2".parse::<IpAddr>().unwrap()]);
        assert_eq!(stub.queries.load(Ordering::Relaxed), 2);
        assert_eq!(*seen.lock().unwrap(), [local, local]);

        // The simulated resolver caches the answer for its TTL.
        let (server, seen) = upstream().await;
        let cached = Resolver::new(server, Duration::ZERO, true);
        cached.lookup("app.example.test").await;
        let again = cached.lookup("app.example.test").await;
        assert_eq!(again.0, ["192.0.2.1".parse::<IpAddr>().unwrap()]);
        assert_eq!(seen.lock().unwrap().len(), 1);
    }
}
