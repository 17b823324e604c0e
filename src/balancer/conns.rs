//! Client connections per listener: how many are open, the cap (`max_connections`) and how
//! many were turned away. The counts live in [`super::proxy::BalancerState`] by listener
//! name, so they outlast the accept loop a reload restarts: connections accepted before the
//! reload still count against the cap.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// The response to a connection over the cap of an HTTP listener (then it is closed).
pub const OVER_CAPACITY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain\r\ncontent-length: 41\r\nconnection: close\r\nretry-after: 1\r\n\r\nlistener at max_connections, retry later\n";

/// One listener's counts.
#[derive(Debug, Default)]
pub struct Connections {
    open: AtomicUsize,
    refused: AtomicU64,
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

    /// `roundhouse_listener_connections{listener}` and
    /// `roundhouse_listener_connections_refused_total{listener}`.
    pub fn render(&self, out: &mut String) {
        let map = self.0.lock().expect("connection book lock");
        out.push_str("# HELP roundhouse_listener_connections Client connections open, by listener.\n# TYPE roundhouse_listener_connections gauge\n");
        for (name, c) in map.iter() {
            let _ = writeln!(
                out,
                "roundhouse_listener_connections{{listener=\"{name}\"}} {}",
                c.open()
            );
        }
        out.push_str("# HELP roundhouse_listener_connections_refused_total Client connections refused at max_connections, by listener.\n# TYPE roundhouse_listener_connections_refused_total counter\n");
        for (name, c) in map.iter() {
            let _ = writeln!(
                out,
                "roundhouse_listener_connections_refused_total{{listener=\"{name}\"}} {}",
                c.refused()
            );
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
}
