//! The counts of each listener: client connections open, the cap (`max_connections`), how
//! many were turned away, and the responses sent by status class (fixed responses,
//! redirects and the balancer's own 502/503/504 included; the per-target counters in
//! `balancer::metrics` only see forwarded requests). They live in
//! [`super::proxy::BalancerState`] by listener name, so they outlast the accept loop a reload
//! restarts: connections accepted before the reload still count against the cap, and the
//! counters stay monotonic as Prometheus needs.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// The response to a connection over the cap of an HTTP listener (then it is closed).
pub const OVER_CAPACITY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain\r\ncontent-length: 41\r\nconnection: close\r\nretry-after: 1\r\n\r\nlistener at max_connections, retry later\n";

/// Response classes, in the order of [`Connections::responses`].
const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

/// One listener's counts.
#[derive(Debug, Default)]
pub struct Connections {
    open: AtomicUsize,
    refused: AtomicU64,
    responses: [AtomicU64; 5],
}

/// An open connection's place under the cap, given back when dropped.
#[derive(Debug)]
pub struct Admitted(Arc<Connections>);

impl Drop for Admitted {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Connections {
    /// A place for one more connection, or None (counted as refused) when `max` are open.
    pub fn admit(self: &Arc<Self>, max: usize) -> Option<Admitted> {
        let before = self.open.fetch_add(1, Ordering::Relaxed);
        let admitted = Admitted(self.clone());
        if before >= max {
            drop(admitted);
            self.refused.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        Some(admitted)
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    /// Connections refused so far.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    /// Counts a response with `status`.
    pub fn record(&self, status: u16) {
        let class = usize::from(status / 100).clamp(1, 5) - 1;
        self.responses[class].fetch_add(1, Ordering::Relaxed);
    }
}

/// Counts by listener name.
#[derive(Debug, Default)]
pub struct Book(Mutex<BTreeMap<String, Arc<Connections>>>);

impl Book {
    /// The counts of listener `name` (created at 0).
    pub fn get(&self, name: &str) -> Arc<Connections> {
        let mut map = self.0.lock().expect("connection book lock");
        map.entry(name.to_string()).or_default().clone()
    }

    /// `roundhouse_listener_connections{listener}`,
    /// `roundhouse_listener_connections_refused_total{listener}` and
    /// `roundhouse_balancer_listener_requests_total{listener,class}`.
    pub fn render(&self, out: &mut String) {
        let map = self.0.lock().expect("connection book lock");
        let names: Vec<(String, &Arc<Connections>)> = map
            .iter()
            .map(|(name, c)| (super::metrics::escape(name), c))
            .collect();
        out.push_str("# HELP roundhouse_listener_connections Client connections open, by listener.\n# TYPE roundhouse_listener_connections gauge\n");
        for (name, c) in &names {
            let _ = writeln!(
                out,
                "roundhouse_listener_connections{{listener=\"{name}\"}} {}",
                c.open()
            );
        }
        out.push_str("# HELP roundhouse_listener_connections_refused_total Client connections refused at max_connections, by listener.\n# TYPE roundhouse_listener_connections_refused_total counter\n");
        for (name, c) in &names {
            let _ = writeln!(
                out,
                "roundhouse_listener_connections_refused_total{{listener=\"{name}\"}} {}",
                c.refused()
            );
        }
        out.push_str(
            "# HELP roundhouse_balancer_listener_requests_total Responses a listener sent to \
             clients, by status class (fixed responses, redirects and the balancer's own \
             errors included).\n# TYPE roundhouse_balancer_listener_requests_total counter\n",
        );
        for (name, c) in &names {
            for (class, n) in CLASSES.iter().zip(&c.responses) {
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
    fn caps_and_counts() {
        let book = Book::default();
        let c = book.get("web");
        let a = c.admit(2).unwrap();
        let _b = c.admit(2).unwrap();
        assert!(c.admit(2).is_none());
        assert_eq!((c.open(), c.refused()), (2, 1));
        drop(a);
        assert!(c.admit(2).is_some());
        assert_eq!(
            OVER_CAPACITY.len()
                - OVER_CAPACITY
                    .windows(4)
                    .position(|w| w == b"\r\n\r\n")
                    .unwrap()
                - 4,
            41
        );
        let mut out = String::new();
        book.render(&mut out);
        assert!(
            out.contains("roundhouse_listener_connections{listener=\"web\"} 1\n"),
            "{out}"
        );
        assert!(
            out.contains("roundhouse_listener_connections_refused_total{listener=\"web\"} 1\n"),
            "{out}"
        );
    }

    #[test]
    fn responses_are_counted_by_class_and_survive_a_second_lookup() {
        let book = Book::default();
        let m = book.get("web");
        m.record(200);
        m.record(204);
        m.record(503);
        book.get("web").record(301);
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
