//! The measured latency table: round-trip times from client networks to regions, as the
//! regional balancers report them (see `balancer::rtt`). It is a snapshot with one writer, the
//! admin server's report endpoint, which builds a new table per report ([`MeasuredTable::with`])
//! and swaps it in; queries read it without locks.
//!
//! Entries older than the table's maximum age are ignored by [`MeasuredTable::matching`] and
//! dropped by the next write. Time is passed in (`now`), so the table itself reads no clock.

use super::{Client, mask};
use crate::config::Network;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// Default age after which a measurement no longer counts.
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(300);
/// Most entries a table holds; beyond, the oldest reports' entries are dropped.
pub const MAX_ENTRIES: usize = 1 << 20;

/// One measured round-trip time.
#[derive(Debug, Clone, PartialEq)]
pub struct Measurement {
    /// Client network.
    pub network: Network,
    /// Region name (matched against pools' region names).
    pub region: Arc<str>,
    /// Round-trip time, milliseconds.
    pub rtt_ms: f64,
    /// Samples behind the value (in its report).
    pub samples: u64,
    /// When the report carrying it arrived.
    pub received_at: Instant,
}

/// Measured round-trip times, found by client network.
#[derive(Debug, Clone)]
pub struct MeasuredTable {
    max_age: Duration,
    by_network: HashMap<Network, Vec<Measurement>>,
    /// Distinct prefix lengths in the table, per family (v4, v6): the lookups a query needs.
    prefixes: [Vec<u8>; 2],
    len: usize,
}

impl Default for MeasuredTable {
    fn default() -> MeasuredTable {
        MeasuredTable::new(DEFAULT_MAX_AGE)
    }
}

impl MeasuredTable {
    /// An empty table whose entries count for `max_age`.
    pub fn new(max_age: Duration) -> MeasuredTable {
        MeasuredTable {
            max_age,
            by_network: HashMap::new(),
            prefixes: [Vec::new(), Vec::new()],
            len: 0,
        }
    }

    /// Entries, fresh or not.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True without entries.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The age after which entries stop counting.
    pub fn max_age(&self) -> Duration {
        self.max_age
    }

    fn fresh(&self, m: &Measurement, now: Instant) -> bool {
        now.saturating_duration_since(m.received_at) <= self.max_age
    }

    /// Fresh entries whose network holds the client's network address, every region.
    pub fn matching(&self, client: &Client, now: Instant) -> Vec<&Measurement> {
        if self.len == 0 {
            return Vec::new();
        }
        let family = usize::from(client.addr.is_ipv6());
        self.prefixes[family]
            .iter()
            .filter_map(|&p| {
                self.by_network.get(&Network {
                    addr: mask(client.addr, p),
                    prefix: p,
                })
            })
            .flatten()
            .filter(|m| self.fresh(m, now))
            .collect()
    }

    /// Fresh entries per region.
    pub fn networks_per_region(&self, now: Instant) -> BTreeMap<Arc<str>, usize> {
        let mut out = BTreeMap::new();
        for m in self.by_network.values().flatten() {
            if self.fresh(m, now) {
                *out.entry(m.region.clone()).or_insert(0) += 1;
            }
        }
        out
    }

    /// A new table: this one without stale entries, with `max_age`, and with `report`'s
    /// measurements replacing those of the same network and region.
    pub fn with(
        &self,
        max_age: Duration,
        report: impl IntoIterator<Item = Measurement>,
        now: Instant,
    ) -> MeasuredTable {
        let mut by_network = self.by_network.clone();
        for m in report {
            let list = by_network.entry(m.network).or_default();
            match list.iter_mut().find(|x| x.region == m.region) {
                Some(x) => *x = m,
                None => list.push(m),
            }
        }
        let mut next = MeasuredTable::new(max_age);
        for list in by_network.values_mut() {
            list.retain(|m| next.fresh(m, now));
        }
        by_network.retain(|_, list| !list.is_empty());
        next.by_network = by_network;
        next.trim(MAX_ENTRIES);
        next.index();
        next
    }

    /// Drops the oldest entries beyond `limit`.
    fn trim(&mut self, limit: usize) {
        let total: usize = self.by_network.values().map(Vec::len).sum();
        if total <= limit {
            return;
        }
        let mut times: Vec<Instant> = self
            .by_network
            .values()
            .flatten()
            .map(|m| m.received_at)
            .collect();
        let (_, cutoff, _) = times.select_nth_unstable(total - limit);
        let cutoff = *cutoff;
        for list in self.by_network.values_mut() {
            list.retain(|m| m.received_at >= cutoff);
        }
        self.by_network.retain(|_, list| !list.is_empty());
    }

    fn index(&mut self) {
        let mut prefixes = [Vec::new(), Vec::new()];
        for net in self.by_network.keys() {
            let p = &mut prefixes[usize::from(net.addr.is_ipv6())];
            if !p.contains(&net.prefix) {
                p.push(net.prefix);
            }
        }
        self.prefixes = prefixes;
        self.len = self.by_network.values().map(Vec::len).sum();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(net: &str, region: &str, rtt_ms: f64, at: Instant) -> Measurement {
        Measurement {
            network: net.parse().unwrap(),
            region: region.into(),
            rtt_ms,
            samples: 1,
            received_at: at,
        }
    }

    fn client(addr: &str, prefix: u8) -> Client {
        Client::from_subnet(addr.parse().unwrap(), prefix)
    }

    fn found(t: &MeasuredTable, c: &Client, now: Instant) -> Vec<(String, String, f64)> {
        let mut v: Vec<_> = t
            .matching(c, now)
            .into_iter()
            .map(|m| (m.network.to_string(), m.region.to_string(), m.rtt_ms))
            .collect();
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        v
    }

    #[test]
    fn lookup_by_every_covering_prefix_and_replacement_per_region() {
        let now = Instant::now();
        let t = MeasuredTable::default().with(
            DEFAULT_MAX_AGE,
            [
                m("198.51.100.0/24", "eu", 20.0, now),
                m("198.51.0.0/16", "us", 80.0, now),
                m("198.51.101.0/24", "us", 10.0, now),
                m("2001:db8:1::/48", "eu", 30.0, now),
            ],
            now,
        );
        assert_eq!(t.len(), 4);
        assert_eq!(
            found(&t, &client("198.51.100.77", 24), now),
            [
                ("198.51.0.0/16".into(), "us".into(), 80.0),
                ("198.51.100.0/24".into(), "eu".into(), 20.0)
            ]
        );
        assert_eq!(found(&t, &client("2001:db8:1:5::", 56), now).len(), 1);
        assert!(found(&t, &client("192.0.2.0", 24), now).is_empty());
        // A newer report for the same network and region replaces the value; others stay.
        let t = t.with(
            DEFAULT_MAX_AGE,
            [m("198.51.100.0/24", "eu", 25.0, now)],
            now,
        );
        assert_eq!(t.len(), 4);
        let eu: Vec<f64> = t
            .matching(&client("198.51.100.0", 24), now)
            .into_iter()
            .filter(|m| &*m.region == "eu")
            .map(|m| m.rtt_ms)
            .collect();
        assert_eq!(eu, [25.0]);
        let per_region = t.networks_per_region(now);
        assert_eq!(per_region.get("eu"), Some(&2));
        assert_eq!(per_region.get("us"), Some(&2));
    }

    #[tokio::test(start_paused = true)]
    async fn entries_age_out() {
        let max_age = Duration::from_secs(60);
        let t0 = Instant::now();
        let t = MeasuredTable::new(max_age).with(max_age, [m("192.0.2.0/24", "eu", 5.0, t0)], t0);
        tokio::time::advance(Duration::from_secs(40)).await;
        let t1 = Instant::now();
        let t = t.with(max_age, [m("203.0.113.0/24", "us", 9.0, t1)], t1);
        let c = client("192.0.2.0", 24);
        assert_eq!(found(&t, &c, Instant::now()).len(), 1, "40 s old: counts");
        tokio::time::advance(Duration::from_secs(21)).await;
        assert!(
            found(&t, &c, Instant::now()).is_empty(),
            "61 s old: ignored"
        );
        assert_eq!(t.len(), 2, "ignored until the next write");
        assert_eq!(t.networks_per_region(Instant::now()).len(), 1);
        let t = t.with(max_age, [], Instant::now());
        assert_eq!(t.len(), 1, "the next write drops it");
        tokio::time::advance(Duration::from_secs(40)).await;
        let t = t.with(max_age, [], Instant::now());
        assert!(t.is_empty());
    }

    #[test]
    fn the_oldest_entries_go_beyond_the_limit() {
        let now = Instant::now();
        let mut t = MeasuredTable::default().with(
            DEFAULT_MAX_AGE,
            (0..4u8).map(|i| {
                m(
                    &format!("10.{i}.0.0/24"),
                    "eu",
                    1.0,
                    now + Duration::from_secs(u64::from(i)),
                )
            }),
            now,
        );
        t.trim(2);
        t.index();
        assert_eq!(t.len(), 2);
        assert!(found(&t, &client("10.3.0.0", 24), now).len() == 1);
        assert!(found(&t, &client("10.0.0.0", 24), now).is_empty());
    }
}
