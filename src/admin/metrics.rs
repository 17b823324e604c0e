//! Prometheus text exposition (format 0.0.4) of what the admin server knows: latency reports
//! received, measured networks per region, pool answers, health, reloads and, in a balancer,
//! its client round-trip times. DNS query counters are rendered by [`crate::dns::metrics`],
//! per-target request counters by the balancer.

use super::status::Status;
use crate::balancer::rtt::{BUCKETS, RttStats};
use std::collections::BTreeMap;
use std::fmt::Write;

/// Label value escaping of the text format: backslash, double quote, newline.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// `roundhouse_latency_reports_total{region,result}`.
pub fn reports(out: &mut String, counts: &BTreeMap<(String, &'static str), u64>) {
    out.push_str("# HELP roundhouse_latency_reports_total Latency reports received from balancers, by region and result.\n");
    out.push_str("# TYPE roundhouse_latency_reports_total counter\n");
    for ((region, result), n) in counts {
        let _ = writeln!(
            out,
            "roundhouse_latency_reports_total{{region=\"{}\",result=\"{result}\"}} {n}",
            label(region)
        );
    }
}

/// `roundhouse_latency_measured_networks{region}`: every region, 0 without measurements.
pub fn measured(out: &mut String, per_region: &BTreeMap<String, usize>) {
    out.push_str("# HELP roundhouse_latency_measured_networks Client networks with a fresh measured latency, by region.\n");
    out.push_str("# TYPE roundhouse_latency_measured_networks gauge\n");
    for (region, n) in per_region {
        let _ = writeln!(
            out,
            "roundhouse_latency_measured_networks{{region=\"{}\"}} {n}",
            label(region)
        );
    }
}

/// `roundhouse_balancer_client_rtt_seconds` (histogram of handshake round-trip times of
/// client connections) and `roundhouse_balancer_client_rtt_networks` (networks in the book).
pub fn client_rtt(out: &mut String, stats: &RttStats) {
    out.push_str("# HELP roundhouse_balancer_client_rtt_seconds Handshake round-trip time of client connections (TCP_INFO), the samples latency steering is fed from.\n");
    out.push_str("# TYPE roundhouse_balancer_client_rtt_seconds histogram\n");
    for (le, n) in BUCKETS.iter().zip(&stats.cumulative) {
        let _ = writeln!(
            out,
            "roundhouse_balancer_client_rtt_seconds_bucket{{le=\"{le}\"}} {n}"
        );
    }
    let _ = writeln!(
        out,
        "roundhouse_balancer_client_rtt_seconds_bucket{{le=\"+Inf\"}} {}",
        stats.count
    );
    let _ = writeln!(
        out,
        "roundhouse_balancer_client_rtt_seconds_sum {}",
        stats.sum_seconds
    );
    let _ = writeln!(
        out,
        "roundhouse_balancer_client_rtt_seconds_count {}",
        stats.count
    );
    out.push_str("# HELP roundhouse_balancer_client_rtt_networks Client networks (/24, /48) with round-trip times in the balancer's book.\n");
    out.push_str("# TYPE roundhouse_balancer_client_rtt_networks gauge\n");
    let _ = writeln!(
        out,
        "roundhouse_balancer_client_rtt_networks {}",
        stats.networks
    );
}

/// A family's `# HELP` and `# TYPE` lines.
fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// Pool answers per endpoint, fail-open answers, and health state and transitions of every
/// endpoint and target, from the status document.
pub fn pools_and_health(out: &mut String, status: &Status) {
    family(
        out,
        "roundhouse_pool_answers_total",
        "counter",
        "DNS answers from a pool that carried the endpoint's address.",
    );
    for p in &status.pools {
        for e in &p.endpoints {
            let _ = writeln!(
                out,
                "roundhouse_pool_answers_total{{pool=\"{}\",region=\"{}\",endpoint=\"{}\"}} {}",
                label(&p.name),
                label(&e.region),
                e.address,
                e.answers
            );
        }
    }
    family(
        out,
        "roundhouse_pool_failed_open_total",
        "counter",
        "Pool answers given while no endpoint was ready (when_all_down = fail-open).",
    );
    let _ = writeln!(
        out,
        "roundhouse_pool_failed_open_total {}",
        status.dns.failed_open
    );
    family(
        out,
        "roundhouse_endpoint_ready",
        "gauge",
        "1 when the pool endpoint is handed out (enabled, override, health check), else 0.",
    );
    for p in &status.pools {
        for e in &p.endpoints {
            let _ = writeln!(
                out,
                "roundhouse_endpoint_ready{{pool=\"{}\",region=\"{}\",endpoint=\"{}\",mode=\"{}\"}} {}",
                label(&p.name),
                label(&e.region),
                e.address,
                e.mode,
                u8::from(e.ready)
            );
        }
    }
    family(
        out,
        "roundhouse_endpoint_health_transitions_total",
        "counter",
        "Health check transitions (up or down) of a probed pool endpoint.",
    );
    for p in &status.pools {
        for e in p.endpoints.iter().filter(|e| e.healthy.is_some()) {
            let _ = writeln!(
                out,
                "roundhouse_endpoint_health_transitions_total{{pool=\"{}\",endpoint=\"{}\"}} {}",
                label(&p.name),
                e.address,
                e.transitions
            );
        }
    }
    family(
        out,
        "roundhouse_target_ready",
        "gauge",
        "1 when the balancer target takes new requests (override, health check), else 0.",
    );
    for g in &status.target_groups {
        for t in &g.targets {
            let _ = writeln!(
                out,
                "roundhouse_target_ready{{group=\"{}\",target=\"{}\",mode=\"{}\"}} {}",
                label(&g.name),
                t.address,
                t.mode,
                u8::from(t.ready)
            );
        }
    }
}

/// Target health transitions, as `(group, target, ready, transitions)`.
pub fn target_transitions(out: &mut String, series: &[(String, std::net::SocketAddr, bool, u64)]) {
    family(
        out,
        "roundhouse_target_health_transitions_total",
        "counter",
        "Health check transitions (up or down) of a probed balancer target.",
    );
    for (g, t, _, n) in series {
        let _ = writeln!(
            out,
            "roundhouse_target_health_transitions_total{{group=\"{}\",target=\"{t}\"}} {n}",
            label(g)
        );
    }
}

/// `roundhouse_config_reloads_total{result}` and the loaded configuration's time.
pub fn reloads(out: &mut String, status: &Status) {
    family(
        out,
        "roundhouse_config_reloads_total",
        "counter",
        "Configuration reloads, by result.",
    );
    let c = &status.config;
    let _ = writeln!(
        out,
        "roundhouse_config_reloads_total{{result=\"success\"}} {}\nroundhouse_config_reloads_total{{result=\"failure\"}} {}",
        c.reloads_ok, c.reloads_failed
    );
    family(
        out,
        "roundhouse_config_loaded_timestamp_seconds",
        "gauge",
        "When the configuration in use was loaded (Unix time); the hash is a label.",
    );
    let _ = writeln!(
        out,
        "roundhouse_config_loaded_timestamp_seconds{{hash=\"{}\"}} {}",
        c.version.hash, c.version.loaded_at
    );
}

/// Scaling groups: capacity bounds, instances by lifecycle state, activities started.
pub fn scaler(
    out: &mut String,
    groups: &[crate::scaler::status::GroupStatus],
    activities: impl Fn(&str) -> u64,
) {
    use crate::scaler::status::InstanceState;
    use std::fmt::Write;
    let gauges = [
        (
            "roundhouse_scaler_min_size",
            "Minimum capacity of the scaling group.",
        ),
        (
            "roundhouse_scaler_desired_capacity",
            "Desired capacity of the scaling group.",
        ),
        (
            "roundhouse_scaler_max_size",
            "Maximum capacity of the scaling group.",
        ),
    ];
    for (i, (name, help)) in gauges.iter().enumerate() {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
        for g in groups {
            let v = [g.min, g.desired, g.max][i];
            let _ = writeln!(out, "{name}{{group=\"{}\"}} {v}", g.name);
        }
    }
    let name = "roundhouse_scaler_instances";
    let _ = writeln!(
        out,
        "# HELP {name} Instances of the scaling group by lifecycle state.\n# TYPE {name} gauge"
    );
    for g in groups {
        for (state, label) in [
            (InstanceState::Pending, "pending"),
            (InstanceState::InService, "in-service"),
            (InstanceState::Draining, "draining"),
        ] {
            let n = g.instances.iter().filter(|i| i.state == state).count();
            let _ = writeln!(out, "{name}{{group=\"{}\",state=\"{label}\"}} {n}", g.name);
        }
    }
    let name = "roundhouse_scaler_activities_total";
    let _ = writeln!(
        out,
        "# HELP {name} Scaling activities started.\n# TYPE {name} counter"
    );
    for g in groups {
        let _ = writeln!(
            out,
            "{name}{{group=\"{}\"}} {}",
            g.name,
            activities(&g.name)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::balancer::rtt::RttBook;
    use std::time::Duration;

    #[test]
    fn text_format() {
        let mut out = String::new();
        let counts = BTreeMap::from([
            (("eu-west".to_string(), "accepted"), 3),
            (("".to_string(), "unauthorized"), 1),
        ]);
        reports(&mut out, &counts);
        measured(&mut out, &BTreeMap::from([("a\"b".to_string(), 2)]));
        assert!(out.contains(
            "roundhouse_latency_reports_total{region=\"eu-west\",result=\"accepted\"} 3\n"
        ));
        assert!(out.contains("{region=\"\",result=\"unauthorized\"} 1\n"));
        assert!(out.contains("roundhouse_latency_measured_networks{region=\"a\\\"b\"} 2\n"));
        let book = RttBook::default();
        book.record("192.0.2.1".parse().unwrap(), Duration::from_millis(2));
        book.record("192.0.2.2".parse().unwrap(), Duration::from_secs(2));
        let mut out = String::new();
        client_rtt(&mut out, &book.stats());
        assert!(out.contains("roundhouse_balancer_client_rtt_seconds_bucket{le=\"0.001\"} 0\n"));
        assert!(out.contains("roundhouse_balancer_client_rtt_seconds_bucket{le=\"0.005\"} 1\n"));
        assert!(out.contains("roundhouse_balancer_client_rtt_seconds_bucket{le=\"1\"} 1\n"));
        assert!(out.contains("roundhouse_balancer_client_rtt_seconds_bucket{le=\"+Inf\"} 2\n"));
        assert!(out.contains("roundhouse_balancer_client_rtt_seconds_count 2\n"));
        assert!(out.contains("roundhouse_balancer_client_rtt_networks 1\n"));
    }
}
