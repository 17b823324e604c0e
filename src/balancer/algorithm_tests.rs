//! Distribution of every algorithm, slow start, passive ejection and carried-over state,
//! through [`Groups::pick`].

use crate::balancer::testing::config;
use crate::balancer::{Groups, InFlight, Outcome, Pick};
use crate::config::{Algorithm, BalancerConfig};
use crate::health::HealthTable;
use std::collections::HashSet;
use std::net::IpAddr;
use std::time::Duration;

const CLIENT: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 7));

fn groups(algorithm: Algorithm, weights: &[u32]) -> Groups {
    Groups::new(config(algorithm, weights), None)
}

fn req<'a>(tried: &'a [usize]) -> Pick<'a> {
    Pick {
        client: CLIENT,
        key: None,
        tried,
    }
}

fn pick(g: &Groups) -> usize {
    g.pick(0, &HealthTable::default(), &req(&[])).unwrap()
}

/// Picks per target over `n` picks, each finished at once (nothing stays in flight).
fn counts(g: &Groups, n: usize) -> Vec<usize> {
    let mut out = vec![0; g.config().target_groups[0].targets.len()];
    for _ in 0..n {
        out[pick(g)] += 1;
    }
    out
}

fn ok(g: &Groups, target: usize, ms: u64) {
    g.begin(0, target).finish(Outcome::Response {
        status: 200,
        elapsed: Duration::from_millis(ms),
    });
}

fn fail(g: &Groups, target: usize) {
    g.begin(0, target).finish(Outcome::ConnectFailed);
}

#[test]
fn round_robin_takes_turns_and_skips_tried_targets() {
    let g = groups(Algorithm::RoundRobin, &[1, 1, 1]);
    let health = HealthTable::default();
    let picks: Vec<usize> = (0..6).map(|_| pick(&g)).collect();
    assert_eq!(picks, [0, 1, 2, 0, 1, 2]);
    assert_ne!(g.pick(0, &health, &req(&[0])), Some(0));
    assert_eq!(g.pick(0, &health, &req(&[0, 1, 2])), None);
}

#[test]
fn weighted_round_robin_is_smooth_and_proportional() {
    let g = groups(Algorithm::WeightedRoundRobin, &[3, 1]);
    let c = counts(&g, 4000);
    let share = c[0] as f64 / 4000.0;
    assert!((share - 0.75).abs() <= 0.02, "3:1 -> {c:?}");
    let g = groups(Algorithm::WeightedRoundRobin, &[5, 1, 1, 0]);
    let picks: Vec<usize> = (0..7).map(|_| pick(&g)).collect();
    assert_eq!(picks.iter().filter(|&&i| i == 0).count(), 5);
    assert!(!picks.contains(&3), "weight 0 gets nothing");
    assert!(
        picks.windows(3).all(|w| w != [0, 0, 0]),
        "interleaved, not bunched: {picks:?}"
    );
    let rest = g.pick(0, &HealthTable::default(), &req(&[0, 1, 2]));
    assert_eq!(rest, Some(3), "weight 0 rather than nothing");
}

#[test]
fn least_outstanding_sends_to_the_idle_target() {
    let g = groups(Algorithm::LeastOutstanding, &[1, 1, 1]);
    let a = g.begin(0, 0);
    let b = g.begin(0, 0);
    let _c = g.begin(0, 1);
    assert!((0..5).all(|_| pick(&g) == 2));
    drop((a, b));
    let picks: HashSet<usize> = (0..6).map(|_| pick(&g)).collect();
    assert_eq!(
        picks,
        HashSet::from([0, 2]),
        "target 1 still has one in flight"
    );
}

#[test]
fn weighted_least_connections_follows_weight_per_request_in_flight() {
    // Equal (zero) in flight: in proportion to weight.
    let g = groups(Algorithm::WeightedLeastConnections, &[3, 1, 0]);
    let c = counts(&g, 4000);
    assert!((c[0] as f64 / 4000.0 - 0.75).abs() <= 0.02, "{c:?}");
    assert_eq!(c[2], 0, "weight 0 never chosen while others are left");
    // Requests held: in flight settles at 3:1.
    let g = groups(Algorithm::WeightedLeastConnections, &[3, 1]);
    let mut in_flight = [0, 0];
    let held: Vec<InFlight> = (0..400)
        .map(|_| {
            let t = pick(&g);
            in_flight[t] += 1;
            g.begin(0, t)
        })
        .collect();
    assert_eq!(in_flight, [300, 100]);
    // Busier per weight loses: 3 in flight on weight 3 (1 each) vs 2 on weight 1.
    let g = groups(Algorithm::WeightedLeastConnections, &[3, 1]);
    let _busy: Vec<InFlight> = (0..3)
        .map(|_| g.begin(0, 0))
        .chain((0..2).map(|_| g.begin(0, 1)))
        .collect();
    assert!((0..10).all(|_| pick(&g) == 0));
    let only_zero = groups(Algorithm::WeightedLeastConnections, &[1, 0]);
    let rest = only_zero.pick(0, &HealthTable::default(), &req(&[0]));
    assert_eq!(rest, Some(1), "weight 0 rather than nothing");
    drop(held);
}

#[test]
fn source_ip_hash_is_stable_and_moves_only_the_lost_share() {
    let g = groups(Algorithm::SourceIpHash, &[1; 4]);
    let health = HealthTable::default();
    let clients: Vec<IpAddr> = (0..200u8).map(|i| IpAddr::from([10, 0, 0, i])).collect();
    let by = |tried: &[usize]| -> Vec<usize> {
        clients
            .iter()
            .map(|&client| {
                g.pick(
                    0,
                    &health,
                    &Pick {
                        client,
                        key: None,
                        tried,
                    },
                )
                .unwrap()
            })
            .collect()
    };
    let before = by(&[]);
    assert_eq!(before, by(&[]));
    assert_eq!(before.iter().collect::<HashSet<_>>().len(), 4);
    for (b, a) in before.iter().zip(by(&[2])) {
        assert!(*b == 2 || a == *b);
    }
}

#[test]
fn consistent_hash_is_stable_per_key_and_moves_only_the_removed_targets_keys() {
    let health = HealthTable::default();
    let keys: Vec<String> = (0..400).map(|i| format!("user-{i}")).collect();
    let by = |g: &Groups| -> Vec<std::net::SocketAddr> {
        keys.iter()
            .map(|k| {
                let pick = Pick {
                    client: CLIENT,
                    key: Some(k),
                    tried: &[],
                };
                let i = g.pick(0, &health, &pick).unwrap();
                g.config().target_groups[0].targets[i]
            })
            .collect()
    };
    let mut cfg = config(Algorithm::ConsistentHash, &[1; 5]);
    let g = Groups::new(cfg.clone(), None);
    let before = by(&g);
    assert_eq!(before, by(&g), "stable per key");
    let spread: HashSet<_> = before.iter().collect();
    assert_eq!(spread.len(), 5);
    let removed = cfg.target_groups[0].targets.remove(3);
    cfg.target_groups[0].weights.remove(3);
    let after = by(&Groups::new(cfg, Some(&g)));
    let mut moved = 0;
    for (b, a) in before.iter().zip(&after) {
        if *b == removed {
            moved += 1;
        } else {
            assert_eq!(a, b, "a key on a remaining target moved");
        }
    }
    assert!(moved > 40, "the removed target had its share: {moved}");
    // No key: the client address decides, the same way every time.
    let clients: HashSet<usize> = (0..50u8)
        .map(|i| {
            let pick = Pick {
                client: IpAddr::from([10, 0, 0, i]),
                key: None,
                tried: &[],
            };
            let first = g.pick(0, &health, &pick);
            assert_eq!(first, g.pick(0, &health, &pick));
            first.unwrap()
        })
        .collect();
    assert!(clients.len() > 1);
}

#[test]
fn power_of_two_avoids_the_busiest_and_spreads() {
    let g = groups(Algorithm::PowerOfTwo, &[1, 1, 1]);
    let spread = counts(&g, 1000);
    assert!(spread.iter().all(|&n| n > 200), "all idle: {spread:?}");
    let _busy: Vec<InFlight> = (0..5).map(|_| g.begin(0, 1)).collect();
    let c = counts(&g, 1000);
    assert!(c[1] < 50, "busiest picked {} of 1000", c[1]);
    assert!(c[0] > 300 && c[2] > 300, "{c:?}");
}

#[tokio::test(start_paused = true)]
async fn fastest_response_prefers_the_faster_and_measures_the_rest() {
    let g = groups(Algorithm::FastestResponse, &[1, 1, 1]);
    ok(&g, 0, 100);
    ok(&g, 1, 10);
    // Target 2 has no sample: it goes first.
    assert_eq!(pick(&g), 2);
    let probe = g.begin(0, 2);
    let c = counts(&g, 1000);
    assert!(c[1] >= 900, "10 ms vs 100 ms: {c:?}");
    drop(probe);
    ok(&g, 2, 1000);
    let mut c = vec![0; 3];
    for _ in 0..1000 {
        let t = pick(&g);
        c[t] += 1;
        ok(&g, t, [100, 10, 1000][t]);
    }
    assert!(c[1] >= 900, "{c:?}");
    // A request held on the fast target makes it cost twice: 20 ms, still below 100 ms.
    let _held = g.begin(0, 1);
    assert_eq!(pick(&g), 1);
}

/// Target 0 alone, then targets 0 and 1 (1 newly registered while 0 is ready).
fn registered_later(algorithm: Algorithm, slow_start: Duration) -> Groups {
    let mut cfg: BalancerConfig = config(algorithm, &[1, 1]);
    cfg.target_groups[0].slow_start = slow_start;
    let mut first = cfg.clone();
    first.target_groups[0].targets.truncate(1);
    first.target_groups[0].weights.truncate(1);
    let old = Groups::new(first, None);
    pick(&old);
    let g = Groups::new(cfg, Some(&old));
    pick(&g);
    g
}

#[tokio::test(start_paused = true)]
async fn slow_start_ramps_a_new_target_linearly() {
    let g = registered_later(Algorithm::RoundRobin, Duration::from_secs(60));
    assert_eq!(counts(&g, 1000)[1], 0, "nothing at the start");
    tokio::time::advance(Duration::from_secs(30)).await;
    let half = counts(&g, 4000)[1] as f64 / 4000.0;
    assert!((half - 0.25).abs() < 0.04, "half its 50 % share: {half}");
    tokio::time::advance(Duration::from_secs(30)).await;
    assert_eq!(counts(&g, 1000)[1], 500, "full share after slow start");
    // Off: a new target takes its share at once.
    let g = registered_later(Algorithm::RoundRobin, Duration::ZERO);
    assert_eq!(counts(&g, 1000)[1], 500);
    // The only choice is taken even while ramping.
    let g = registered_later(Algorithm::LeastOutstanding, Duration::from_secs(60));
    assert_eq!(g.pick(0, &HealthTable::default(), &req(&[0])), Some(1));
}

#[tokio::test(start_paused = true)]
async fn passive_ejection_takes_a_target_out_and_lets_it_back() {
    let mut cfg = config(Algorithm::RoundRobin, &[1, 1, 1]);
    cfg.target_groups[0].passive.failures = 3;
    cfg.target_groups[0].passive.ejection = Duration::from_secs(10);
    let g = Groups::new(cfg, None);
    let health = HealthTable::default();
    (0..2).for_each(|_| fail(&g, 0));
    assert!(g.available(0, 0, &health));
    fail(&g, 0);
    assert!(!g.available(0, 0, &health));
    assert_eq!(counts(&g, 100)[0], 0, "ejected");
    tokio::time::advance(Duration::from_secs(10)).await;
    assert!(g.available(0, 0, &health));
    assert!(counts(&g, 99)[0] == 33, "back after the ejection time");
    (0..3).for_each(|_| fail(&g, 0));
    tokio::time::advance(Duration::from_secs(10)).await;
    assert!(!g.available(0, 0, &health), "second ejection lasts 20s");
    tokio::time::advance(Duration::from_secs(10)).await;
    assert!(g.available(0, 0, &health));
    // Every target ejected: they still take traffic rather than none.
    for t in 0..3 {
        (0..3).for_each(|_| fail(&g, t));
    }
    assert_eq!(counts(&g, 30), [10, 10, 10]);
    let mut out = String::new();
    g.render_metrics(&mut out);
    assert!(out.contains(
        "roundhouse_balancer_target_ejections_total{group=\"g\",target=\"127.0.0.1:9000\"} 3"
    ));
}

#[tokio::test(start_paused = true)]
async fn state_carries_over_to_the_next_snapshot() {
    let cfg = config(Algorithm::LeastOutstanding, &[1, 1]);
    let old = Groups::new(cfg.clone(), None);
    let held = old.begin(0, 0);
    (0..5).for_each(|_| fail(&old, 1));
    let mut next = cfg.clone();
    next.target_groups[0].algorithm = Algorithm::FastestResponse;
    let new = Groups::new(next, Some(&old));
    assert!(
        !new.available(0, 1, &HealthTable::default()),
        "ejection kept"
    );
    // Target 1 is ejected and target 0 busy: 0 is the only one left.
    assert_eq!(pick(&new), 0);
    held.finish(Outcome::Response {
        status: 200,
        elapsed: Duration::from_millis(5),
    });
    let mut out = String::new();
    new.render_metrics(&mut out);
    assert!(out.contains(
        "roundhouse_balancer_requests_total{group=\"g\",target=\"127.0.0.1:9000\",class=\"2xx\"} 1"
    ));
    assert!(out.contains("roundhouse_balancer_in_flight{group=\"g\",target=\"127.0.0.1:9000\"} 0"));
    // A group of another name does not inherit.
    let mut renamed = cfg;
    renamed.target_groups[0].name = "h".into();
    let fresh = Groups::new(renamed, Some(&new));
    assert!(fresh.available(0, 1, &HealthTable::default()));
    assert_eq!(fresh.removed_from(&new).len(), 2);
}
