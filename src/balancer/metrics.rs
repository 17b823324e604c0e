//! Per-target counters (atomics only) and their Prometheus text exposition.

use super::target::{Outcome, TargetState};
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

/// Upper bounds (seconds) of the response-time histogram buckets.
pub const BUCKETS: [f64; 12] = [
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// Response classes, in the order of [`TargetMetrics::requests`].
const CLASSES: [&str; 5] = ["2xx", "3xx", "4xx", "5xx", "error"];

/// What one target has served.
#[derive(Debug, Default)]
pub(crate) struct TargetMetrics {
    requests: [AtomicU64; 5],
    /// Responses per bucket (not cumulative; the last slot is above 10 s).
    buckets: [AtomicU64; BUCKETS.len() + 1],
    responses: AtomicU64,
    seconds_nanos: AtomicU64,
    ejections: AtomicU64,
}

impl TargetMetrics {
    /// Counts a finished request.
    pub(crate) fn record(&self, outcome: Outcome) {
        let class = match outcome {
            Outcome::Response { status, elapsed } => {
                let secs = elapsed.as_secs_f64();
                let bucket = BUCKETS
                    .iter()
                    .position(|&b| secs <= b)
                    .unwrap_or(BUCKETS.len());
                self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
                self.responses.fetch_add(1, Ordering::Relaxed);
                let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
                self.seconds_nanos.fetch_add(nanos, Ordering::Relaxed);
                match status {
                    ..300 => 0,
                    300..400 => 1,
                    400..500 => 2,
                    _ => 3,
                }
            }
            Outcome::ConnectFailed | Outcome::Failed { .. } => 4,
        };
        self.requests[class].fetch_add(1, Ordering::Relaxed);
    }

    /// Counts an ejection.
    pub(crate) fn ejected(&self) {
        self.ejections.fetch_add(1, Ordering::Relaxed);
    }

    /// Requests so far, every class together.
    pub(crate) fn requests(&self) -> u64 {
        self.requests
            .iter()
            .map(|n| n.load(Ordering::Relaxed))
            .sum()
    }

    /// Ejections so far.
    pub(crate) fn ejections(&self) -> u64 {
        self.ejections.load(Ordering::Relaxed)
    }

    /// Requests so far (every class) and responses per bucket of [`BUCKETS`] (not
    /// cumulative; the last slot counts those above the last bound).
    pub(crate) fn counts(&self) -> (u64, [u64; BUCKETS.len() + 1]) {
        let requests = self
            .requests
            .iter()
            .map(|n| n.load(Ordering::Relaxed))
            .sum();
        let buckets = std::array::from_fn(|i| self.buckets[i].load(Ordering::Relaxed));
        (requests, buckets)
    }
}

/// Writes every metric family for `targets` (each with its group name).
pub(crate) fn render<'a>(out: &mut String, targets: impl Iterator<Item = &'a TargetState> + Clone) {
    family(
        out,
        "roundhouse_balancer_requests_total",
        "counter",
        "Requests forwarded to a target, by response class (error: no response).",
    );
    for t in targets.clone() {
        for (class, n) in CLASSES.iter().zip(&t.metrics.requests) {
            let n = n.load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "roundhouse_balancer_requests_total{{{},class=\"{class}\"}} {n}",
                labels(t)
            );
        }
    }
    family(
        out,
        "roundhouse_balancer_response_seconds",
        "histogram",
        "Time until a target's response head arrived.",
    );
    for t in targets.clone() {
        histogram(out, t);
    }
    family(
        out,
        "roundhouse_balancer_in_flight",
        "gauge",
        "Requests or connections in flight to a target.",
    );
    for t in targets.clone() {
        let _ = writeln!(
            out,
            "roundhouse_balancer_in_flight{{{}}} {}",
            labels(t),
            t.in_flight()
        );
    }
    family(
        out,
        "roundhouse_balancer_target_ejections_total",
        "counter",
        "Times passive failure detection ejected a target.",
    );
    for t in targets {
        let _ = writeln!(
            out,
            "roundhouse_balancer_target_ejections_total{{{}}} {}",
            labels(t),
            t.metrics.ejections()
        );
    }
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn histogram(out: &mut String, t: &TargetState) {
    let m = &t.metrics;
    let labels = labels(t);
    let mut cumulative = 0;
    for (bound, n) in BUCKETS.iter().zip(&m.buckets) {
        cumulative += n.load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "roundhouse_balancer_response_seconds_bucket{{{labels},le=\"{bound}\"}} {cumulative}"
        );
    }
    // Read the count after the buckets so that +Inf is never below the last bucket.
    let count = m.responses.load(Ordering::Relaxed).max(cumulative);
    let sum = m.seconds_nanos.load(Ordering::Relaxed) as f64 / 1e9;
    let _ = writeln!(
        out,
        "roundhouse_balancer_response_seconds_bucket{{{labels},le=\"+Inf\"}} {count}\n\
         roundhouse_balancer_response_seconds_sum{{{labels}}} {sum}\n\
         roundhouse_balancer_response_seconds_count{{{labels}}} {count}"
    );
}

fn labels(t: &TargetState) -> String {
    format!(
        "group=\"{}\",target=\"{}\"",
        escape(&t.group),
        escape(&t.addr.to_string())
    )
}

/// Label value escaping of the text format: backslash, double quote, newline.
pub(crate) fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Passive;
    use std::time::Duration;

    fn value(text: &str, series: &str) -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
            .unwrap_or_else(|| panic!("no {series} in\n{text}"))
            .parse()
            .unwrap()
    }

    #[test]
    fn finished_requests_show_in_the_exposition() {
        let passive = Passive {
            failures: 1,
            ejection: Duration::from_secs(1),
        };
        let t = TargetState::new("we\"b", "127.0.0.1:8081".parse().unwrap(), passive);
        let lbl = "group=\"we\\\"b\",target=\"127.0.0.1:8081\"";
        let render_one = || {
            let mut out = String::new();
            render(&mut out, std::iter::once(&*t));
            out
        };
        let before = render_one();
        assert_eq!(
            value(
                &before,
                &format!("roundhouse_balancer_requests_total{{{lbl},class=\"2xx\"}}")
            ),
            0.0
        );
        let guard = t.begin();
        let during = render_one();
        assert_eq!(
            value(&during, &format!("roundhouse_balancer_in_flight{{{lbl}}}")),
            1.0
        );
        guard.finish(Outcome::Response {
            status: 204,
            elapsed: Duration::from_millis(20),
        });
        t.begin().finish(Outcome::Response {
            status: 404,
            elapsed: Duration::from_secs(20),
        });
        t.begin().finish(Outcome::ConnectFailed);
        let after = render_one();
        assert_ne!(before, after);
        let series = |s: &str| value(&after, &format!("roundhouse_balancer_{s}"));
        assert_eq!(
            series(&format!("requests_total{{{lbl},class=\"2xx\"}}")),
            1.0
        );
        assert_eq!(
            series(&format!("requests_total{{{lbl},class=\"4xx\"}}")),
            1.0
        );
        assert_eq!(
            series(&format!("requests_total{{{lbl},class=\"error\"}}")),
            1.0
        );
        assert_eq!(
            series(&format!("response_seconds_bucket{{{lbl},le=\"0.01\"}}")),
            0.0
        );
        assert_eq!(
            series(&format!("response_seconds_bucket{{{lbl},le=\"0.025\"}}")),
            1.0
        );
        assert_eq!(
            series(&format!("response_seconds_bucket{{{lbl},le=\"10\"}}")),
            1.0
        );
        assert_eq!(
            series(&format!("response_seconds_bucket{{{lbl},le=\"+Inf\"}}")),
            2.0
        );
        assert_eq!(series(&format!("response_seconds_count{{{lbl}}}")), 2.0);
        assert!((series(&format!("response_seconds_sum{{{lbl}}}")) - 20.02).abs() < 1e-9);
        assert_eq!(series(&format!("in_flight{{{lbl}}}")), 0.0);
        assert_eq!(series(&format!("target_ejections_total{{{lbl}}}")), 1.0);
        assert_eq!(after.matches("# TYPE").count(), 4);
    }
}
