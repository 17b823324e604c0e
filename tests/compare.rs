//! `roundhouse compare`, short scenarios: every setup starts and serves, an instance crash
//! costs DNS round robin errors for a bounded time (TTL, health checks and client caches)
//! and costs the balancer setups (next to) nothing; with sticky clients, scaling in moves
//! exactly the sessions of the removed instances behind a balancer; the report's charts are
//! SVG with lines.

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
    let after = |s: &Summary| s.errors_during + s.errors_after;
    let few = |s: &Summary| after(s) <= 3.max(s.requests / 500);
    assert!(few(lb) && few(gslb), "balancers hide the crash:\n{table}");
    assert!(after(rr) > after(lb), "{table}");
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

/// Runs `roundhouse compare` (the binary) for one scenario into a fresh folder; the parsed
/// report.json and the folder.
fn compare(scenario: &str, extra: &[&str]) -> (serde_json::Value, tempfile::TempDir) {
    // One at a time: each run starts three servers and up to 27 instance processes.
    static ONE: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one = ONE.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_roundhouse"))
        .args(["compare", "--scenario", scenario, "--seed", "5", "--out"])
        .arg(dir.path())
        .args(extra)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json = std::fs::read_to_string(dir.path().join("report.json")).unwrap();
    (serde_json::from_str(&json).unwrap(), dir)
}

fn summary<'a>(report: &'a serde_json::Value, setup: &str) -> &'a serde_json::Value {
    report["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| &r["summary"])
        .find(|s| s["setup"] == setup)
        .unwrap()
}

#[test]
fn a_sticky_scale_in_moves_only_the_sessions_of_removed_instances_and_draws_charts() {
    let (report, dir) = compare(
        "sticky-scale-in",
        &["--duration", "10s", "--ttl", "2s", "--clients", "24"],
    );
    let table = serde_json::to_string_pretty(
        &report["runs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| &r["summary"])
            .collect::<Vec<_>>(),
    )
    .unwrap();
    for setup in ["dns-rr", "lb", "gslb"] {
        let s = summary(&report, setup);
        let n = |k: &str| s[k].as_u64().unwrap_or_else(|| panic!("{k}: {table}"));
        assert!(n("requests") > 300, "{setup} serves:\n{table}");
        assert_eq!(s["instances"], serde_json::json!([6, 6, 3]), "{table}");
        assert!(s["note"].is_null(), "the scale-in finished:\n{table}");
        let (lost, removed) = (n("sessions_lost"), n("sessions_on_removed"));
        assert_eq!(n("sessions"), 24, "{table}");
        assert!(
            removed > 0,
            "{setup}: some sessions sat on removed instances:\n{table}"
        );
        assert!(
            lost <= removed,
            "{setup}: sessions of surviving instances stay:\n{table}"
        );
    }
    for setup in ["lb", "gslb"] {
        let s = summary(&report, setup);
        assert_eq!(
            s["sessions_lost"], s["sessions_on_removed"],
            "{setup}: the balancer moves exactly the sessions of drained targets:\n{table}"
        );
        assert!(
            s["errors_during"].as_u64().unwrap() + s["errors_after"].as_u64().unwrap() <= 2,
            "{setup}: draining costs no errors:\n{table}"
        );
    }
    let md = std::fs::read_to_string(dir.path().join("report.md")).unwrap();
    for chart in ["success", "latency", "instances", "load"] {
        let file = format!("sticky-scale-in-{chart}.svg");
        assert!(md.contains(&format!("]({file})")), "report.md links {file}");
        let svg = std::fs::read_to_string(dir.path().join(&file)).unwrap();
        assert!(svg.contains("<svg"), "{file}");
        assert!(svg.contains("<polyline"), "{file} has lines");
    }
}

#[test]
fn a_load_spike_makes_the_scaler_scale_out() {
    let (report, _dir) = compare("load-spike", &["--duration", "16s", "--clients", "24"]);
    let mut scaled = Vec::new();
    for setup in ["dns-rr", "lb", "gslb"] {
        let s = summary(&report, setup);
        let instances: Vec<u64> = s["instances"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap())
            .collect();
        assert_eq!(instances[0], 3, "{setup}: one instance per region: {s}");
        assert!(instances[1] <= 9, "{setup}: at most 3 per region: {s}");
        assert!(s["success_pct"].as_f64().unwrap() > 95.0, "{setup}: {s}");
        if instances[1] > 3 {
            let t = s["scale_out_s"].as_f64().unwrap();
            assert!(
                t > 0.0 && t < 11.0,
                "{setup}: scaled out after the spike: {s}"
            );
            scaled.push(setup);
        } else {
            assert!(s["scale_out_s"].is_null(), "{s}");
        }
    }
    // The CPU readings are real: on a machine too busy to serve the spike, a setup may not
    // get the CPU to cross its target; the scaler must still react in at least one.
    assert!(!scaled.is_empty(), "{report}");
}

#[test]
fn a_deploy_replaces_instances_one_at_a_time_and_the_balancer_drains_them() {
    let (report, _dir) = compare("deploy-drain", &["--duration", "16s", "--ttl", "2s"]);
    for run in report["runs"].as_array().unwrap() {
        let s = &run["summary"];
        let setup = s["setup"].as_str().unwrap();
        assert!(s["note"].is_null(), "{setup}: the deploy finished: {s}");
        let end = run["fault_end_ms"].as_u64().expect("a deploy end");
        assert!(end > run["fault_ms"].as_u64().unwrap(), "{run}");
        // Two us-east instances replaced, one extra at a time.
        assert_eq!(s["instances"], serde_json::json!([6, 7, 6]), "{setup}: {s}");
        // Behind DNS, clients still holding a stopped instance's address fail; the
        // balancer drains it first.
        let floor = if setup == "dns-rr" { 90.0 } else { 99.0 };
        assert!(s["success_pct"].as_f64().unwrap() > floor, "{setup}: {s}");
        if setup != "dns-rr" {
            let errors = s["errors_during"].as_u64().unwrap() + s["errors_after"].as_u64().unwrap();
            assert!(errors <= 2, "{setup}: draining costs no errors: {s}");
        }
    }
}
