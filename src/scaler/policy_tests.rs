use super::*;
use crate::config::Metric;

fn tt(target: f64, window: u64) -> ScalingPolicy {
    ScalingPolicy {
        name: "cpu50".into(),
        kind: PolicyKind::TargetTracking {
            metric: Metric::Cpu,
            target,
            disable_scale_in: false,
            scale_in_window: Duration::from_secs(window),
        },
    }
}

fn alarm(name: &str, comparison: Comparison, threshold: f64, periods: u32) -> Alarm {
    Alarm {
        name: name.into(),
        metric: Metric::Cpu,
        comparison,
        threshold,
        evaluation_periods: periods,
    }
}

fn step_out() -> ScalingPolicy {
    ScalingPolicy {
        name: "step-out".into(),
        kind: PolicyKind::Step {
            alarm: alarm("cpu-high", Comparison::GreaterOrEqual, 70.0, 2),
            adjustment_type: AdjustmentType::ChangeInCapacity,
            steps: vec![
                Step {
                    lower: Some(0.0),
                    upper: Some(20.0),
                    adjustment: 1,
                },
                Step {
                    lower: Some(20.0),
                    upper: None,
                    adjustment: 2,
                },
            ],
            min_adjustment_magnitude: 1,
        },
    }
}

fn obs(metric: f64, desired: u32, in_service: u32, warming: u32) -> Observation {
    Observation {
        metric: Some(metric),
        desired,
        in_service,
        warming,
        min: 1,
        max: 6,
    }
}

const PERIOD: Duration = Duration::from_secs(1);

#[tokio::test(start_paused = true)]
async fn target_tracking_scales_out_at_once_and_in_after_the_window() {
    let p = tt(50.0, 5);
    let mut s = PolicyState::default();
    let d = decide(&p, &mut s, &obs(150.0, 1, 1, 0), Instant::now()).unwrap();
    assert_eq!(d.desired, 3, "ceil(1 * 150 / 50)");
    assert!(
        d.reason.contains("target tracking alarm cpu50-high"),
        "{}",
        d.reason
    );
    // Load gone: while the new instances warm up, hold.
    tokio::time::advance(PERIOD).await;
    let d = decide(&p, &mut s, &obs(5.0, 3, 1, 2), Instant::now()).unwrap();
    assert_eq!(d.desired, 3);
    // Warmed up and idle: the window still remembers 3 for 5 s.
    let mut held = 0;
    loop {
        tokio::time::advance(PERIOD).await;
        let d = decide(&p, &mut s, &obs(5.0, 3, 3, 0), Instant::now()).unwrap();
        if d.desired < 3 {
            assert_eq!(d.desired, 1, "ceil(3 * 5 / 50)");
            assert!(d.reason.contains("cpu50-low"));
            break;
        }
        held += 1;
    }
    assert_eq!(held, 4, "scale-in waits for the window to forget the 3");
}

#[tokio::test(start_paused = true)]
async fn target_tracking_within_tolerance_holds_and_no_data_is_no_opinion() {
    let p = tt(50.0, 5);
    let mut s = PolicyState::default();
    for m in [46.0, 54.0, 50.0] {
        let d = decide(&p, &mut s, &obs(m, 2, 2, 0), Instant::now()).unwrap();
        assert_eq!(d.desired, 2, "{m} is within 10 % of 50");
    }
    let none = Observation {
        metric: None,
        ..obs(0.0, 2, 0, 2)
    };
    assert_eq!(decide(&p, &mut s, &none, Instant::now()), None);
    let mut disabled = tt(50.0, 0);
    if let PolicyKind::TargetTracking {
        disable_scale_in, ..
    } = &mut disabled.kind
    {
        *disable_scale_in = true;
    }
    let d = decide(&disabled, &mut s, &obs(1.0, 4, 4, 0), Instant::now()).unwrap();
    assert_eq!(d.desired, 4, "scale-in disabled");
}

/// A noisy metric around the target: one scale-out, then no flapping.
#[tokio::test(start_paused = true)]
async fn no_flapping_under_a_noisy_metric() {
    let p = tt(50.0, 30);
    let mut s = PolicyState::default();
    let mut desired = 2u32;
    let mut changes = Vec::new();
    let mut seed: u64 = 7;
    for period in 0..300 {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let noise = ((seed >> 33) % 25) as f64 - 12.0; // -12 ..= +12
        // A steady load of one core (100 %) spread over the instances, plus noise.
        let metric = 100.0 / f64::from(desired) + noise;
        let d = decide(
            &p,
            &mut s,
            &obs(metric, desired, desired, 0),
            Instant::now(),
        );
        if let Some(d) = combine(d.into_iter().collect(), desired) {
            changes.push((period, desired, d.desired));
            desired = d.desired;
        }
        tokio::time::advance(PERIOD).await;
    }
    assert!(changes.len() <= 1, "flapping: {changes:?}");
}

#[tokio::test(start_paused = true)]
async fn step_needs_consecutive_breaches_and_counts_warming_instances() {
    let p = step_out();
    let mut s = PolicyState::default();
    let now = Instant::now();
    assert_eq!(decide(&p, &mut s, &obs(75.0, 1, 1, 0), now), None, "1 of 2");
    assert_eq!(decide(&p, &mut s, &obs(65.0, 1, 1, 0), now), None, "reset");
    assert_eq!(decide(&p, &mut s, &obs(75.0, 1, 1, 0), now), None, "1 of 2");
    let d = decide(&p, &mut s, &obs(75.0, 1, 1, 0), now).unwrap();
    assert_eq!(d.desired, 2, "+1 between 70 and 90");
    assert_eq!(
        d.reason,
        "an alarm cpu-high in state ALARM triggered policy step-out"
    );
    // Still in ALARM, same step, one instance warming: nothing more.
    assert_eq!(decide(&p, &mut s, &obs(78.0, 2, 1, 1), now), None);
    // A larger step while warming adds only the difference.
    let d = decide(&p, &mut s, &obs(95.0, 2, 1, 1), now).unwrap();
    assert_eq!(d.desired, 3, "base 1 + 2");
    // Capped at max.
    let d = decide(&p, &mut s, &obs(99.0, 5, 5, 0), now).unwrap();
    assert_eq!(d.desired, 6);
}

#[tokio::test(start_paused = true)]
async fn step_scale_in_repeats_each_period_down_to_min() {
    let p = ScalingPolicy {
        name: "step-in".into(),
        kind: PolicyKind::Step {
            alarm: alarm("cpu-low", Comparison::Less, 30.0, 1),
            adjustment_type: AdjustmentType::ChangeInCapacity,
            steps: vec![Step {
                lower: None,
                upper: Some(0.0),
                adjustment: -1,
            }],
            min_adjustment_magnitude: 1,
        },
    };
    let mut s = PolicyState::default();
    let mut desired = 3;
    let mut seen = Vec::new();
    for _ in 0..4 {
        if let Some(d) = decide(&p, &mut s, &obs(10.0, desired, desired, 0), Instant::now()) {
            desired = d.desired;
        }
        seen.push(desired);
    }
    assert_eq!(seen, [2, 1, 1, 1]);
    assert_eq!(
        decide(&p, &mut s, &obs(10.0, 3, 2, 1), Instant::now()),
        None,
        "no scale-in while instances warm up"
    );
}

#[tokio::test(start_paused = true)]
async fn simple_scaling_waits_for_its_cooldown() {
    let p = ScalingPolicy {
        name: "add-one".into(),
        kind: PolicyKind::Simple {
            alarm: alarm("cpu-high", Comparison::Greater, 70.0, 1),
            adjustment_type: AdjustmentType::ChangeInCapacity,
            adjustment: 1,
            min_adjustment_magnitude: 1,
            cooldown: Duration::from_secs(10),
        },
    };
    let mut s = PolicyState::default();
    let d = decide(&p, &mut s, &obs(90.0, 1, 1, 0), Instant::now()).unwrap();
    assert_eq!(d.desired, 2);
    let mut fired_after = None;
    for t in 1..=12 {
        tokio::time::advance(PERIOD).await;
        if decide(&p, &mut s, &obs(90.0, 2, 2, 0), Instant::now()).is_some() {
            fired_after = Some(t);
            break;
        }
    }
    assert_eq!(fired_after, Some(10), "the cooldown is 10 s");
}

#[test]
fn adjustments_round_as_aws_documents() {
    use AdjustmentType::*;
    assert_eq!(adjust(4, ChangeInCapacity, -1, 1), 3);
    assert_eq!(adjust(4, ExactCapacity, 7, 1), 7);
    assert_eq!(adjust(10, PercentChangeInCapacity, 25, 1), 12, "2.5 -> 2");
    assert_eq!(adjust(2, PercentChangeInCapacity, 10, 1), 3, "0.2 -> 1");
    assert_eq!(adjust(2, PercentChangeInCapacity, -10, 1), 1, "-0.2 -> -1");
    assert_eq!(adjust(15, PercentChangeInCapacity, -50, 1), 8, "-7.5 -> -7");
    assert_eq!(
        adjust(10, PercentChangeInCapacity, 10, 3),
        13,
        "minimum magnitude"
    );
}

#[test]
fn the_largest_capacity_wins() {
    let d = |n: u32| Decision {
        desired: n,
        reason: format!("r{n}"),
    };
    assert_eq!(combine(vec![d(2), d(5), d(3)], 3).unwrap().desired, 5);
    assert_eq!(combine(vec![d(3), d(1)], 3), None, "a hold blocks scale-in");
    assert_eq!(combine(vec![d(1)], 3).unwrap().desired, 1);
    assert_eq!(combine(vec![], 3), None);
}
