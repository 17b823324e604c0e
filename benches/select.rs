//! Target selection by each balancing algorithm over a group of eight targets
//! ([`Groups::pick`] plus finishing the request, so that in-flight counts stay level).

// criterion's macros generate the undocumented `main` and group functions.
#![allow(missing_docs)]

use criterion::{Criterion, criterion_group, criterion_main};
use roundhouse::balancer::{Groups, Outcome, Pick};
use roundhouse::config::Config;
use roundhouse::health::HealthTable;
use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

const ALGORITHMS: [&str; 8] = [
    "round-robin",
    "weighted-round-robin",
    "least-outstanding",
    "weighted-least-connections",
    "source-ip-hash",
    "consistent-hash",
    "power-of-two",
    "fastest-response",
];

fn config(algorithm: &str) -> Config {
    let targets: Vec<String> = (1..=8)
        .map(|i| format!("{{ address = \"127.0.0.1:{}\", weight = {i} }}", 9000 + i))
        .collect();
    let text = format!(
        "[dns]\nlisten = [\"127.0.0.1:0\"]\nzones_dir = \"\"\n\
         [target_group.web]\nalgorithm = \"{algorithm}\"\ntargets = [{}]\n",
        targets.join(", ")
    );
    Config::parse(&text, Path::new("bench.toml"), Path::new(".")).unwrap()
}

fn bench(c: &mut Criterion) {
    let health = HealthTable::default();
    let mut group = c.benchmark_group("pick");
    for algorithm in ALGORITHMS {
        let groups = Groups::new(config(algorithm).balancer, None);
        let pick = Pick {
            client: "192.0.2.7".parse().unwrap(),
            key: None,
            tried: &[],
        };
        assert!(groups.pick(0, &health, &pick).is_some(), "{algorithm}");
        group.bench_function(algorithm, |b| {
            b.iter(|| {
                let t = groups.pick(0, &health, black_box(&pick)).unwrap();
                groups.begin(0, t).finish(Outcome::Response {
                    status: 200,
                    elapsed: Duration::from_micros(500),
                });
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
