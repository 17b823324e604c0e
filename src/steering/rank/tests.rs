use super::*;
use crate::config::{Network, Policy};

fn region(
    name: &str,
    at: (f64, f64),
    continent: &str,
    countries: &[&str],
    networks: &[&str],
) -> Region {
    Region {
        name: name.into(),
        coordinates: Some(at),
        continent: Some(continent.into()),
        countries: countries.iter().map(|c| c.to_string()).collect(),
        networks: networks.iter().map(|n| n.parse().unwrap()).collect(),
        bias_km: 0.0,
    }
}

fn world() -> Vec<Region> {
    vec![
        region(
            "us-east",
            (39.0, -77.5),
            "NA",
            &["US", "CA"],
            &["203.0.113.0/25"],
        ),
        region("eu-west", (53.3, -6.3), "EU", &["IE", "GB"], &[]),
        region("ap-northeast", (35.7, 139.7), "AS", &["JP"], &[]),
    ]
}

fn pool(steering: Steering) -> Pool {
    Pool {
        name: "p".into(),
        policy: Policy::RoundRobin,
        steering,
        regions: vec!["us-east".into(), "eu-west".into(), "ap-northeast".into()],
        region_index: vec![Some(0), Some(1), Some(2)],
        dials: vec![100; 3],
        affinity: false,
        spill: crate::config::Spill::Capacity,
        min_ready: 1,
        check: None,
        endpoints: vec![],
    }
}

fn client(addr: &str, prefix: u8) -> Client {
    Client::from_subnet(addr.parse().unwrap(), prefix)
}

fn place<'a>(
    country: &'a str,
    continent: &'a str,
    at: Option<(f64, f64)>,
    prefix: u8,
) -> Place<'a> {
    Place {
        country: Some(country),
        continent: Some(continent),
        coordinates: at,
        prefix,
    }
}

#[test]
fn without_per_client_steering_the_scope_is_zero() {
    for s in [Steering::None, Steering::Ordered] {
        let r = rank(
            &pool(s),
            &world(),
            &[],
            &[],
            &client("198.51.100.0", 24),
            None,
        );
        assert_eq!(
            r,
            Ranking {
                order: smallvec::smallvec![0, 1, 2],
                scope: 0
            }
        );
    }
}

#[test]
fn geo_country_then_continent_then_default_nearest_next() {
    let p = pool(Steering::Geo);
    let w = world();
    let c = client("198.51.100.0", 24);
    let r = rank(&p, &w, &[], &[], &c, Some(&place("GB", "EU", None, 16)));
    assert_eq!(
        r,
        Ranking {
            order: smallvec::smallvec![1, 0, 2],
            scope: 16
        }
    );
    let r = rank(&p, &w, &[], &[], &c, Some(&place("KR", "AS", None, 12)));
    assert_eq!(r.order[0], 2, "continent AS -> ap-northeast");
    let r = rank(&p, &w, &[], &[], &c, Some(&place("BR", "SA", None, 10)));
    assert_eq!(
        r,
        Ranking {
            order: smallvec::smallvec![0, 1, 2],
            scope: 10
        },
        "default: the pool's first region"
    );
}

#[test]
fn configured_networks_override_and_set_their_scope() {
    let r = rank(
        &pool(Steering::Geo),
        &world(),
        &[],
        &[],
        &client("203.0.113.0", 24),
        Some(&place("JP", "AS", None, 16)),
    );
    assert_eq!(
        r,
        Ranking {
            order: smallvec::smallvec![0, 1, 2],
            scope: 25
        }
    );
}

#[test]
fn proximity_sorts_by_distance_with_bias() {
    let mut w = world();
    let p = pool(Steering::Proximity);
    let berlin = place("DE", "EU", Some((52.5, 13.4)), 20);
    let r = rank(&p, &w, &[], &[], &client("198.51.100.0", 24), Some(&berlin));
    assert_eq!(
        r,
        Ranking {
            order: smallvec::smallvec![1, 0, 2],
            scope: 20
        }
    );
    w[0].bias_km = 10_000.0; // a huge bias pulls everyone to us-east
    let r = rank(&p, &w, &[], &[], &client("198.51.100.0", 24), Some(&berlin));
    assert_eq!(r.order[0], 0);
}

#[test]
fn latency_table_decides_then_falls_back_to_geo() {
    let p = pool(Steering::Latency);
    let entry = |net: &str, region: usize, rtt_ms: f64| LatencyEntry {
        network: net.parse::<Network>().unwrap(),
        region,
        rtt_ms,
    };
    let table = vec![
        entry("198.51.0.0/16", 0, 80.0),
        entry("198.51.100.0/24", 1, 20.0),
        entry("198.51.100.0/24", 0, 90.0),
    ];
    let r = rank(&p, &world(), &table, &[], &client("198.51.100.0", 24), None);
    assert_eq!(
        r,
        Ranking {
            order: smallvec::smallvec![1, 0, 2],
            scope: 24
        },
        "longest prefix per region: us-east 90 ms, eu-west 20 ms"
    );
    let r = rank(
        &p,
        &world(),
        &table,
        &[],
        &client("192.0.2.0", 24),
        Some(&place("JP", "AS", None, 8)),
    );
    assert_eq!(r.order[0], 2, "no entry: geo decides");
}

#[test]
fn measured_entries_join_the_table_and_win_at_the_same_prefix() {
    use crate::steering::measured::Measurement;
    let p = pool(Steering::Latency);
    let now = tokio::time::Instant::now();
    let entry = |net: &str, region: usize, rtt_ms: f64| LatencyEntry {
        network: net.parse::<Network>().unwrap(),
        region,
        rtt_ms,
    };
    let measured = |net: &str, region: &str, rtt_ms: f64| Measurement {
        network: net.parse().unwrap(),
        region: region.into(),
        rtt_ms,
        samples: 3,
        received_at: now,
    };
    let table = vec![
        entry("198.51.100.0/24", 0, 10.0),
        entry("198.51.100.0/24", 1, 30.0),
        entry("198.51.100.0/25", 2, 50.0),
    ];
    let us_slow = measured("198.51.100.0/24", "us-east", 70.0);
    let eu_wide = measured("198.51.0.0/16", "eu-west", 1.0);
    let ap_fast = measured("198.51.100.0/24", "ap-northeast", 5.0);
    let c = client("198.51.100.0", 24);
    // Same prefix: the measured 70 ms replaces the configured 10 ms for us-east; a shorter
    // measured prefix (/16) loses to the configured /24 of eu-west; ap-northeast's /25 is the
    // longest and keeps its configured 50 ms.
    let r = rank(
        &p,
        &world(),
        &table,
        &[&us_slow, &eu_wide, &ap_fast],
        &c,
        None,
    );
    assert_eq!(
        r,
        Ranking {
            order: smallvec::smallvec![1, 2, 0],
            scope: 25
        }
    );
    // Measured alone decides, with its prefix as the scope; unknown regions are skipped.
    let other = measured("198.51.100.0/24", "sa-east", 1.0);
    let r = rank(&p, &world(), &[], &[&ap_fast, &other], &c, None);
    assert_eq!(
        r,
        Ranking {
            order: smallvec::smallvec![2, 0, 1],
            scope: 24
        }
    );
}

#[test]
fn great_circle_distance() {
    let d = distance_km((51.5, -0.13), (40.7, -74.0));
    assert!((d - 5570.0).abs() < 30.0, "London-New York {d}");
}
