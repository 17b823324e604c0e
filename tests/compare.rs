//! `roundhouse compare` in-process, one short scenario: every setup starts and serves, an
//! instance crash costs DNS round robin errors for a bounded time (TTL, health checks and
//! client caches) and costs the balancer setups (next to) nothing.

use roundhouse::compare::client::MIX;
use roundhouse::compare::report::{Summary, summarize};
use roundhouse::compare::{Options, Scenario, run};
use std::time::Duration;

fn by<'a>(all: &'a [Summary], setup: &str) -> &'a Summary {
    all.iter().find(|s| s.setup == setup).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_crash_costs_dns_round_robin_errors_for_about_the_ttl_and_the_balancer_none() {
    let dir = tempfile::tempdir().unwrap();
    let options = Options {
        scenarios: vec![Scenario::InstanceCrash],
        duration: Duration::from_secs(12),
        clients: 30,
        ttl: Duration::from_secs(2),
        client_scale: 0.05,
        // Without the resolve-once tail, whose errors last as long as the run.
        mix: MIX
            .iter()
            .copied()
            .filter(|t| t.name != "stale-tail")
            .collect(),
        scratch: dir.path().join("scratch"),
        seed: 3,
        ..Options::default()
    };
    let runs = run(&options, |_, _, _| {}).await.unwrap();
    let all: Vec<Summary> = runs.iter().map(summarize).collect();
    let table = roundhouse::compare::report::markdown(&all);
    eprintln!("{table}");
    assert_eq!(all.len(), 3, "{table}");
    for s in &all {
        assert!(s.requests > 500, "every setup serves:\n{table}");
        assert_eq!(s.errors_before, 0, "no error before the fault:\n{table}");
        assert!(s.success_pct > 95.0, "{table}");
    }
    let (rr, lb, gslb) = (by(&all, "dns-rr"), by(&all, "lb"), by(&all, "gslb"));
    let few = |s: &Summary| s.errors_after <= 3.max(s.requests / 500);
    assert!(few(lb) && few(gslb), "balancers hide the crash:\n{table}");
    assert!(rr.errors_after > lb.errors_after, "{table}");
    // TTL 2 s + health checks 2 x 1 s + 0.5 s timeout + Java's 1.5 s cache + slack.
    assert!(
        rr.recovery_s <= 7.5,
        "errors stop within about the TTL:\n{table}"
    );
    assert_eq!(lb.dns_per_request, 0.0);
    assert!(
        rr.dns_per_request > 0.0 && gslb.dns_per_request > 0.0,
        "{table}"
    );
    assert!(
        lb.spread_cv < 0.25,
        "least outstanding spreads evenly:\n{table}"
    );
    assert_eq!((rr.extra_hops, lb.extra_hops, gslb.extra_hops), (0, 1, 1));
}
