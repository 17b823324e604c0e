//! Requests answered per listener, by response class: everything a client got from a
//! listener, including fixed responses, redirects and the balancer's own 502/503/504
//! (the per-target counters in `balancer::metrics` only see forwarded requests).

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Response classes, in the order of [`ListenerMetrics::responses`].
const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

/// What one listener has answered.
#[derive(Debug, Default)]
pub struct ListenerMetrics {
    responses: [AtomicU64; 5],
}

impl ListenerMetrics {
    /// Counts a response with `status`.
    pub fn record(&self, status: u16) {
        let class = usize::from(status / 100).clamp(1, 5) - 1;
        self.responses[class].fetch_add(1, Ordering::Relaxed);
    }

    /// Responses so far, every class together.
    pub fn total(&self) -> u64 {
        self.responses
            .iter()
            .map(|n| n.load(Ordering::Relaxed))
            .sum()
    }
}

/// The counters of every listener by name. A listener keeps its counters across reloads
/// and restarts of its accept loop, as Prometheus counters must.
#[derive(Debug, Default)]
pub struct ListenerBook {
    by_name: Mutex<BTreeMap<String, Arc<ListenerMetrics>>>,
}

impl ListenerBook {
    /// The counters of listener `name` (created on first use; looked up once per accept
    /// loop, not per request).
    pub fn get(&self, name: &str) -> Arc<ListenerMetrics> {
        let mut map = self.by_name.lock().unwrap_or_else(|e| e.into_inner());
        map.entry(name.to_string()).or_default().clone()
    }

    /// Prometheus text exposition: `roundhouse_balancer_listener_requests_total`.
    pub fn render(&self, out: &mut String) {
        let map = self.by_name.lock().unwrap_or_else(|e| e.into_inner());
        out.push_str(
            "# HELP roundhouse_balancer_listener_requests_total Responses a listener sent to \
             clients, by status class (fixed responses, redirects and the balancer's own \
             errors included).\n# TYPE roundhouse_balancer_listener_requests_total counter\n",
        );
        for (name, m) in map.iter() {
            let name = super::metrics::escape(name);
            for (class, n) in CLASSES.iter().zip(&m.responses) {
                let _ = writeln!(
                    out,
                    "roundhouse_balancer_listener_requests_total{{listener=\"{name}\",class=\"{class}\"}} {}",
                    n.load(Ordering::Relaxed)
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses_are_counted_by_class_and_survive_a_second_lookup() {
        let book = ListenerBook::default();
        let m = book.get("web");
        m.record(200);
        m.record(204);
        m.record(503);
        book.get("web").record(301);
        assert_eq!(book.get("web").total(), 4);
        let mut out = String::new();
        book.render(&mut out);
        let line = |class: &str, n: u64| {
            format!(
                "roundhouse_balancer_listener_requests_total{{listener=\"web\",class=\"{class}\"}} {n}\n"
            )
        };
        assert!(out.contains(&line("2xx", 2)), "{out}");
        assert!(out.contains(&line("3xx", 1)), "{out}");
        assert!(out.contains(&line("5xx", 1)), "{out}");
        assert!(out.contains(&line("4xx", 0)), "{out}");
    }
}
