use super::*;
use crate::config::{Endpoint, EndpointMode};

/// [`super::select`] as a `Vec`, to compare with arrays.
fn select(
    pool: &Pool,
    order: &[usize],
    eligible: impl Fn(usize) -> bool,
    answers: usize,
    ticket: u64,
) -> Vec<usize> {
    super::select(pool, order, eligible, answers, ticket).to_vec()
}

fn pool(policy: Policy, steering: Steering, eps: &[(u8, usize, u32, u32)], regions: usize) -> Pool {
    Pool {
        name: "p".into(),
        policy,
        steering,
        regions: (0..regions).map(|r| format!("r{r}")).collect(),
        region_index: vec![None; regions],
        dials: vec![100; regions],
        affinity: false,
        spill: crate::config::Spill::Capacity,
        min_ready: 1,
        check: None,
        endpoints: eps
            .iter()
            .map(|&(last, region, weight, priority)| Endpoint {
                addr: std::net::IpAddr::from([192, 0, 2, last]),
                region,
                weight,
                priority,
                enabled: true,
                mode: EndpointMode::Auto,
            })
            .collect(),
    }
}

fn order(p: &Pool) -> Vec<usize> {
    (0..p.regions.len()).collect()
}

fn first_counts(p: &Pool, ready: &[bool], answers: usize, n: u64) -> Vec<usize> {
    let mut counts = vec![0; p.endpoints.len()];
    for t in 0..n {
        if let Some(&i) = select(p, &order(p), |i| ready[i], answers, t).first() {
            counts[i] += 1;
        }
    }
    counts
}

#[test]
fn round_robin_rotates_the_first_address_evenly() {
    let p = pool(
        Policy::RoundRobin,
        Steering::None,
        &[(1, 0, 1, 1), (2, 0, 1, 1), (3, 0, 1, 1), (4, 0, 1, 1)],
        1,
    );
    assert_eq!(first_counts(&p, &[true; 4], usize::MAX, 1000), [250; 4]);
    assert_eq!(
        select(&p, &order(&p), |_| true, usize::MAX, 1),
        [1, 2, 3, 0]
    );
    assert_eq!(select(&p, &order(&p), |_| true, 2, 3), [3, 0]);
}

#[test]
fn unready_endpoints_are_skipped() {
    let p = pool(
        Policy::RoundRobin,
        Steering::None,
        &[(1, 0, 1, 1), (2, 0, 1, 1), (3, 0, 1, 1)],
        1,
    );
    let counts = first_counts(&p, &[true, false, true], usize::MAX, 1000);
    assert_eq!(counts, [500, 0, 500]);
    assert!(select(&p, &order(&p), |_| false, usize::MAX, 0).is_empty());
}

#[test]
fn weights_give_proportional_shares() {
    let p = pool(
        Policy::Weighted,
        Steering::None,
        &[(1, 0, 3, 1), (2, 0, 1, 1), (3, 0, 0, 1)],
        1,
    );
    let counts = first_counts(&p, &[true; 3], 1, 20_000);
    let share = counts[0] as f64 / 20_000.0;
    assert!((share - 0.75).abs() < 0.02, "{counts:?}");
    assert_eq!(counts[2], 0, "weight 0 is never handed out");
    // Without replacement: two answers are two different endpoints, never the weight-0 one.
    for t in 0..100 {
        let two = select(&p, &order(&p), |_| true, 2, t);
        assert_eq!(two.len(), 2);
        assert!(two[0] != two[1] && !two.contains(&2));
    }
}

#[test]
fn all_zero_weights_count_equally() {
    let p = pool(
        Policy::Weighted,
        Steering::None,
        &[(1, 0, 0, 1), (2, 0, 0, 1)],
        1,
    );
    let counts = first_counts(&p, &[true; 2], 1, 10_000);
    assert!(
        counts.iter().all(|&c| (4_500..5_500).contains(&c)),
        "{counts:?}"
    );
}

#[test]
fn failover_uses_the_first_tier_with_enough_ready() {
    let mut p = pool(
        Policy::Failover,
        Steering::None,
        &[(1, 0, 1, 1), (2, 0, 1, 1), (3, 0, 1, 2), (4, 0, 1, 2)],
        1,
    );
    assert_eq!(select(&p, &order(&p), |_| true, usize::MAX, 0), [0, 1]);
    assert_eq!(select(&p, &order(&p), |i| i != 0, usize::MAX, 0), [1]);
    p.min_ready = 2;
    assert_eq!(
        select(&p, &order(&p), |i| i != 0, usize::MAX, 0),
        [2, 3],
        "tier 1 has one ready, needs two"
    );
    assert_eq!(
        select(&p, &order(&p), |i| i == 1 || i == 2, usize::MAX, 0),
        [1],
        "no tier has two: first with any"
    );
}

#[test]
fn multivalue_returns_up_to_eight_distinct() {
    let eps: Vec<_> = (1..=12).map(|i| (i, 0, 1, 1)).collect();
    let p = pool(Policy::Multivalue, Steering::None, &eps, 1);
    let counts = first_counts(&p, &[true; 12], 8, 12_000);
    assert!(
        counts.iter().all(|&c| (800..1_200).contains(&c)),
        "{counts:?}"
    );
    let v = select(&p, &order(&p), |_| true, 8, 5);
    let mut d = v.clone();
    d.sort();
    d.dedup();
    assert_eq!((v.len(), d.len()), (8, 8));
}

#[test]
fn ordered_steering_answers_from_the_first_region_with_ready_endpoints() {
    let p = pool(
        Policy::RoundRobin,
        Steering::Ordered,
        &[(1, 0, 1, 1), (2, 1, 1, 1), (3, 1, 1, 1)],
        2,
    );
    assert_eq!(select(&p, &order(&p), |_| true, usize::MAX, 0), [0]);
    let counts = first_counts(&p, &[false, true, true], usize::MAX, 1000);
    assert_eq!(counts, [0, 500, 500]);
}

#[test]
fn dials_spill_the_rest_to_the_next_region() {
    let mut p = pool(
        Policy::RoundRobin,
        Steering::Ordered,
        &[(1, 0, 1, 1), (2, 1, 1, 1)],
        2,
    );
    p.dials = vec![30, 100];
    let counts = first_counts(&p, &[true, true], usize::MAX, 10_000);
    let kept = counts[0] as f64 / 10_000.0;
    assert!((kept - 0.30).abs() < 0.02, "{counts:?}");
    // With nowhere to spill, the region answers whatever its dial.
    assert_eq!(first_counts(&p, &[true, false], usize::MAX, 100), [100, 0]);
    p.dials = vec![0, 100];
    assert_eq!(first_counts(&p, &[true, true], usize::MAX, 100), [0, 100]);
}

#[test]
fn a_failed_region_spills_by_capacity_not_to_one_neighbour() {
    // r0 is down; r1 has one endpoint, r2 three: r2 should get about three quarters.
    let p = pool(
        Policy::RoundRobin,
        Steering::Ordered,
        &[
            (1, 0, 1, 1),
            (2, 1, 1, 1),
            (3, 2, 1, 1),
            (4, 2, 1, 1),
            (5, 2, 1, 1),
        ],
        3,
    );
    let counts = first_counts(&p, &[false, true, true, true, true], usize::MAX, 8_000);
    let r2 = (counts[2] + counts[3] + counts[4]) as f64 / 8_000.0;
    assert!((r2 - 0.75).abs() < 0.03, "{counts:?}");
}

#[test]
fn spill_next_sends_everything_to_the_next_region() {
    let mut p = pool(
        Policy::RoundRobin,
        Steering::Ordered,
        &[(1, 0, 1, 1), (2, 1, 1, 1), (3, 2, 1, 1), (4, 2, 1, 1)],
        3,
    );
    p.spill = crate::config::Spill::Next;
    let counts = first_counts(&p, &[false, true, true, true], usize::MAX, 1_000);
    assert_eq!(counts, [0, 1_000, 0, 0]);
    assert!(
        select(&p, &order(&p), |_| false, usize::MAX, 0).is_empty(),
        "nothing anywhere"
    );
}
