//! Prometheus text exposition (format 0.0.4) of what the admin server knows: latency reports
//! received, measured networks per region and, in a balancer, its client round-trip times.

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
