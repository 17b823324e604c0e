//! Tests of [`super::Checker`]: a fake probe under paused time for timing, real sockets once.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Mutex;

use tokio::time::sleep;

use super::*;
use crate::health::{CheckSpec, Protocol};

const I: Duration = Duration::from_secs(10);
const T: Duration = Duration::from_secs(2);
const POLL: Duration = Duration::from_millis(10);

/// What the fake probe does for an address.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Behavior {
    Pass,
    /// Fails after the spec's timeout, like an unresponsive server.
    Fail,
    /// Passes after a delay.
    Slow(Duration),
    /// Never completes.
    Hang,
}

/// A scripted probe that records when each probe started.
#[derive(Default)]
struct Fake {
    behavior: Mutex<HashMap<IpAddr, Behavior>>,
    calls: Mutex<Vec<(IpAddr, Instant, Behavior)>>,
}

impl Fake {
    fn set(&self, addr: IpAddr, behavior: Behavior) {
        self.behavior.lock().unwrap().insert(addr, behavior);
    }

    fn calls(&self, addr: IpAddr) -> Vec<(Instant, Behavior)> {
        let calls = self.calls.lock().unwrap();
        calls
            .iter()
            .filter(|c| c.0 == addr)
            .map(|c| (c.1, c.2))
            .collect()
    }

    fn last_start(&self, addr: IpAddr, behavior: Behavior) -> Instant {
        let calls = self.calls(addr);
        calls.iter().rev().find(|c| c.1 == behavior).unwrap().0
    }

    fn probe_fn(self: &Arc<Self>) -> ProbeFn {
        let fake = Arc::clone(self);
        Arc::new(move |key: ProbeKey| {
            let behavior = fake.behavior.lock().unwrap()[&key.addr];
            fake.calls
                .lock()
                .unwrap()
                .push((key.addr, Instant::now(), behavior));
            Box::pin(async move {
                match behavior {
                    Behavior::Pass => ProbeResult {
                        ok: true,
                        detail: "HTTP 200".into(),
                    },
                    Behavior::Slow(delay) => {
                        sleep(delay).await;
                        ProbeResult {
                            ok: true,
                            detail: "HTTP 200".into(),
                        }
                    }
                    Behavior::Fail => {
                        sleep(key.spec.timeout).await;
                        ProbeResult {
                            ok: false,
                            detail: format!("timed out after {:?}", key.spec.timeout),
                        }
                    }
                    Behavior::Hang => std::future::pending().await,
                }
            })
        })
    }
}

fn spec(healthy: u32, unhealthy: u32) -> Arc<CheckSpec> {
    Arc::new(CheckSpec {
        protocol: Protocol::Tcp,
        port: 80,
        interval: I,
        timeout: T,
        healthy_threshold: healthy,
        unhealthy_threshold: unhealthy,
    })
}

fn key(last_octet: u8, spec: &Arc<CheckSpec>) -> ProbeKey {
    ProbeKey {
        addr: IpAddr::V4(Ipv4Addr::new(192, 0, 2, last_octet)),
        spec: Arc::clone(spec),
    }
}

fn setup(fake: &Arc<Fake>, keys: &[(&ProbeKey, Behavior)]) -> Checker {
    for (key, behavior) in keys {
        fake.set(key.addr, *behavior);
    }
    let mut checker = Checker::with_probe(CancellationToken::new(), fake.probe_fn());
    checker.reconcile(keys.iter().map(|(key, _)| (*key).clone()));
    checker
}

/// Polls the table until `key`'s readiness equals `ready`; returns when it did.
async fn wait_ready(checker: &Checker, key: &ProbeKey, ready: bool) -> Instant {
    let table = checker.table();
    for _ in 0..100_000 {
        if table.load().is_ready(key) == ready {
            return Instant::now();
        }
        sleep(POLL).await;
    }
    panic!("{key} never became ready={ready}");
}

fn status(checker: &Checker, key: &ProbeKey) -> Option<ProbeStatus> {
    checker.table().load().get(key).cloned()
}

#[tokio::test(start_paused = true)]
async fn goes_down_and_up_within_threshold_bounds() {
    let fake = Arc::new(Fake::default());
    let k = key(1, &spec(3, 2));
    let checker = setup(&fake, &[(&k, Behavior::Pass)]);
    checker.first_round(Duration::from_secs(5)).await;
    assert!(checker.table().load().is_ready(&k));
    sleep(3 * I + I / 2).await;

    fake.set(k.addr, Behavior::Fail);
    let last_ok = fake.last_start(k.addr, Behavior::Pass);
    let down = wait_ready(&checker, &k, false).await - last_ok;
    // Two failing probes, each at least one interval after the previous start.
    assert!(down >= 2 * I, "down after {down:?}");
    assert!(down <= 2 * I + 2 * I / 10 + T + POLL, "down after {down:?}");
    assert!(down <= 3 * I + T);
    let fails = fake.calls(k.addr).iter().filter(|c| c.0 > last_ok).count();
    assert_eq!(fails, 2, "exactly unhealthy_threshold failures");

    fake.set(k.addr, Behavior::Pass);
    let last_fail = fake.last_start(k.addr, Behavior::Fail);
    let up = wait_ready(&checker, &k, true).await - last_fail;
    assert!(up >= 3 * I, "up after {up:?}");
    assert!(up <= 3 * I + 3 * I / 10 + POLL, "up after {up:?}");

    let status = status(&checker, &k).unwrap();
    assert_eq!(
        (status.ready, status.changes, status.last.as_str()),
        (true, 3, "HTTP 200")
    );
}

#[tokio::test(start_paused = true)]
async fn probes_are_spaced_by_interval_plus_bounded_jitter() {
    let fake = Arc::new(Fake::default());
    let k = key(1, &spec(2, 2));
    let _checker = setup(&fake, &[(&k, Behavior::Pass)]);
    sleep(20 * I).await;
    let starts: Vec<Instant> = fake.calls(k.addr).iter().map(|c| c.0).collect();
    assert!(starts.len() >= 18, "{} probes", starts.len());
    let gaps: Vec<Duration> = starts.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(gaps.iter().all(|&g| g >= I && g <= I + I / 10), "{gaps:?}");
    assert!(
        gaps.iter().any(|&g| g != gaps[0]),
        "jitter varies: {gaps:?}"
    );
}

#[test]
fn jitter_is_bounded_and_differs_per_key() {
    let s = spec(2, 2);
    let (mut a, mut b) = (Jitter::for_key(&key(1, &s)), Jitter::for_key(&key(2, &s)));
    let da: Vec<Duration> = (0..1000).map(|_| a.delay(I)).collect();
    let db: Vec<Duration> = (0..1000).map(|_| b.delay(I)).collect();
    assert!(da.iter().chain(&db).all(|&d| d <= I / 10));
    assert_ne!(da, db);
    let mean = da.iter().sum::<Duration>() / 1000;
    assert!(mean > I / 40 && mean < 3 * I / 40, "mean {mean:?}");
}

#[tokio::test(start_paused = true)]
async fn first_failure_is_observed_but_no_transition() {
    let fake = Arc::new(Fake::default());
    let k = key(1, &spec(2, 2));
    let checker = setup(&fake, &[(&k, Behavior::Fail)]);
    checker.first_round(Duration::from_secs(5)).await;
    let status = status(&checker, &k).unwrap();
    assert_eq!(
        (status.ready, status.observed, status.changes),
        (false, true, 0)
    );
    assert_eq!(status.last, "timed out after 2s");
}

#[tokio::test(start_paused = true)]
async fn first_round_returns_once_all_keys_have_results() {
    let fake = Arc::new(Fake::default());
    let s = spec(2, 2);
    let (a, b) = (key(1, &s), key(2, &s));
    let checker = setup(&fake, &[(&a, Behavior::Pass), (&b, Behavior::Slow(T))]);
    let started = Instant::now();
    checker.first_round(Duration::from_secs(30)).await;
    let elapsed = started.elapsed();
    assert!(
        elapsed >= T && elapsed < T + Duration::from_millis(100),
        "{elapsed:?}"
    );
    let table = checker.table().load_full();
    assert_eq!(table.len(), 2);
    assert!(
        table
            .iter()
            .all(|(_, status)| status.observed && status.ready)
    );
}

#[tokio::test(start_paused = true)]
async fn first_round_gives_up_at_limit() {
    let fake = Arc::new(Fake::default());
    let s = spec(2, 2);
    let (a, b) = (key(1, &s), key(2, &s));
    let checker = setup(&fake, &[(&a, Behavior::Pass), (&b, Behavior::Hang)]);
    let started = Instant::now();
    checker.first_round(Duration::from_secs(5)).await;
    assert_eq!(started.elapsed(), Duration::from_secs(5));
    let table = checker.table().load_full();
    assert!(table.is_ready(&a));
    assert!(table.get(&b).is_none() && !table.is_ready(&b));
}

#[tokio::test(start_paused = true)]
async fn first_round_without_keys_returns_at_once() {
    let checker = Checker::with_probe(
        CancellationToken::new(),
        Arc::new(Fake::default()).probe_fn(),
    );
    let started = Instant::now();
    checker.first_round(Duration::from_secs(5)).await;
    assert_eq!(started.elapsed(), Duration::ZERO);
    assert!(checker.table().load().is_empty());
}

#[tokio::test(start_paused = true)]
async fn reconcile_keeps_survivors_and_stops_removed() {
    let fake = Arc::new(Fake::default());
    let s = spec(2, 2);
    let (a, b, c) = (key(1, &s), key(2, &s), key(3, &s));
    fake.set(c.addr, Behavior::Pass);
    let mut checker = setup(&fake, &[(&a, Behavior::Pass), (&b, Behavior::Pass)]);
    checker.first_round(Duration::from_secs(5)).await;

    // a is one failure into its unhealthy streak when the reload happens.
    fake.set(a.addr, Behavior::Fail);
    while fake.calls(a.addr).last().unwrap().1 != Behavior::Fail {
        sleep(POLL).await;
    }
    sleep(T + POLL).await;
    let before = status(&checker, &a).unwrap();
    let a_calls = fake.calls(a.addr).len();
    let b_calls = fake.calls(b.addr).len();

    // Same value, new Arc: must be recognised as the same key.
    let a_again = ProbeKey {
        addr: a.addr,
        spec: Arc::new((*s).clone()),
    };
    checker.reconcile([a_again, c.clone()]);
    assert!(
        status(&checker, &b).is_none(),
        "removed key leaves the table at once"
    );
    sleep(POLL).await;
    assert_eq!(
        fake.calls(a.addr).len(),
        a_calls,
        "surviving loop not restarted"
    );
    assert_eq!(
        status(&checker, &a).unwrap(),
        before,
        "surviving state untouched"
    );

    checker.first_round(Duration::from_secs(5)).await;
    assert!(checker.table().load().is_ready(&c));
    // The streak survived: the next failure (the second) takes a down.
    let down_at = wait_ready(&checker, &a, false).await;
    assert_eq!(fake.calls(a.addr).len(), a_calls + 1);
    let took = down_at - fake.last_start(a.addr, Behavior::Fail);
    assert!(took >= T && took <= T + POLL, "{took:?}");
    assert_eq!(status(&checker, &a).unwrap().changes, 2);

    sleep(5 * I).await;
    assert_eq!(fake.calls(b.addr).len(), b_calls, "removed loop stopped");
    assert!(status(&checker, &b).is_none());
    assert_eq!(checker.table().load().len(), 2);
}

#[tokio::test(start_paused = true)]
async fn shutdown_and_drop_stop_loops() {
    let fake = Arc::new(Fake::default());
    let s = spec(2, 2);
    let (a, b) = (key(1, &s), key(2, &s));
    let shutdown = CancellationToken::new();
    fake.set(a.addr, Behavior::Pass);
    fake.set(b.addr, Behavior::Pass);
    let mut first = Checker::with_probe(shutdown.clone(), fake.probe_fn());
    first.reconcile([a.clone()]);
    let mut second = Checker::with_probe(CancellationToken::new(), fake.probe_fn());
    second.reconcile([b.clone()]);
    sleep(POLL).await;
    shutdown.cancel();
    drop(second);
    sleep(5 * I).await;
    assert_eq!(fake.calls(a.addr).len(), 1);
    assert_eq!(fake.calls(b.addr).len(), 1);
    assert!(
        first.table().load().is_ready(&a),
        "table stays readable after shutdown"
    );
}

/// Real sockets, real time: the production probe wired into the checker.
#[tokio::test]
async fn real_tcp_probe_end_to_end() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let open = listener.local_addr().unwrap().port();
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let closed_port = closed.local_addr().unwrap().port();
    drop(closed);
    let spec_for = |port| {
        Arc::new(CheckSpec {
            port,
            timeout: Duration::from_millis(500),
            ..(*spec(2, 2)).clone()
        })
    };
    let up = ProbeKey {
        addr: IpAddr::V4(Ipv4Addr::LOCALHOST),
        spec: spec_for(open),
    };
    let down = ProbeKey {
        addr: IpAddr::V4(Ipv4Addr::LOCALHOST),
        spec: spec_for(closed_port),
    };
    let mut checker = Checker::new(CancellationToken::new());
    checker.reconcile([up.clone(), down.clone()]);
    checker.first_round(Duration::from_secs(5)).await;
    let table = checker.table().load_full();
    assert_eq!(table.get(&up).unwrap().last, "TCP connected");
    assert!(table.is_ready(&up));
    let down_status = table.get(&down).unwrap();
    assert_eq!(
        (down_status.ready, down_status.last.as_str()),
        (false, "connection refused")
    );
    drop(listener);
}
