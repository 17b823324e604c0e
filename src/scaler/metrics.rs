//! The balancer metrics policies can track, computed per metric period from the deltas of the
//! balancer's per-target counters ([`crate::balancer::Groups::target_stats`]):
//!
//! - `request-count-per-target`: `sum(requests in the period) / period seconds / n`, over
//!   the `n` in-service instances past their warm-up (AWS's `ALBRequestCountPerTarget`, per
//!   second rather than per minute);
//! - `p95-latency`: the 0.95 quantile, in milliseconds, of the response-time histogram
//!   summed over those instances for the period, interpolated linearly within the bucket it
//!   falls in (Prometheus `histogram_quantile`); no value in a period without responses.

use crate::balancer::{RESPONSE_BUCKETS, TargetStats};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// The balancer's counters for the targets of a scaling group's target groups (a target in
/// several groups appears once per group).
pub type StatsView = Arc<dyn Fn() -> Vec<TargetStats> + Send + Sync>;

/// The quantile the latency metric reports.
pub const LATENCY_QUANTILE: f64 = 0.95;

/// One period's balancer metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct PeriodMetrics {
    /// Requests per second per instance (None: no instance to divide by).
    pub requests_per_target: Option<f64>,
    /// p95 response time in milliseconds (None: no response in the period).
    pub p95_ms: Option<f64>,
}

/// Counter values at the end of the previous period, to take deltas from.
#[derive(Debug, Default)]
pub struct Deltas {
    last: HashMap<SocketAddr, (u64, Vec<u64>)>,
    at: Option<Instant>,
}

impl Deltas {
    /// Ends a period at `now`: the metrics over `instances` since the previous call (the
    /// first call: over `period`). Counters of every target are remembered, so an instance
    /// leaving its warm-up is measured from the previous period on.
    pub fn period(
        &mut self,
        samples: Vec<TargetStats>,
        instances: &[SocketAddr],
        period: Duration,
        now: Instant,
    ) -> PeriodMetrics {
        let elapsed = self
            .at
            .map_or(period, |t| now.duration_since(t))
            .as_secs_f64();
        self.at = Some(now);
        let mut current: HashMap<SocketAddr, (u64, Vec<u64>)> = HashMap::new();
        for s in samples {
            let e = current
                .entry(s.addr)
                .or_insert_with(|| (0, vec![0; RESPONSE_BUCKETS.len() + 1]));
            e.0 += s.requests;
            for (a, b) in e.1.iter_mut().zip(&s.buckets) {
                *a += b;
            }
        }
        let mut requests = 0;
        let mut buckets = vec![0u64; RESPONSE_BUCKETS.len() + 1];
        for addr in instances {
            let Some((r, b)) = current.get(addr) else {
                continue;
            };
            let (r0, b0) = self.last.get(addr).cloned().unwrap_or_default();
            // A counter below its previous value was reset (a new target state): take it all.
            requests += if *r >= r0 { r - r0 } else { *r };
            for (i, n) in b.iter().enumerate() {
                let before = b0.get(i).copied().unwrap_or(0);
                buckets[i] += if *n >= before { n - before } else { *n };
            }
        }
        self.last = current;
        let n = instances.len();
        PeriodMetrics {
            requests_per_target: (n > 0 && elapsed > 0.0)
                .then(|| requests as f64 / elapsed / n as f64),
            p95_ms: quantile(LATENCY_QUANTILE, &buckets).map(|s| s * 1000.0),
        }
    }
}

/// The `q` quantile in seconds of a histogram with [`RESPONSE_BUCKETS`] bounds (counts per
/// bucket, not cumulative, the last slot above the last bound): linear within the bucket;
/// the last bound when it falls above it. None when the histogram is empty.
pub fn quantile(q: f64, buckets: &[u64]) -> Option<f64> {
    let total: u64 = buckets.iter().sum();
    if total == 0 {
        return None;
    }
    let rank = q * total as f64;
    let mut below = 0u64;
    for (i, &n) in buckets.iter().enumerate() {
        let Some(&upper) = RESPONSE_BUCKETS.get(i) else {
            break;
        };
        if n > 0 && (below + n) as f64 >= rank {
            let lower = if i == 0 { 0.0 } else { RESPONSE_BUCKETS[i - 1] };
            let within = (rank - below as f64) / n as f64;
            return Some(lower + (upper - lower) * within.clamp(0.0, 1.0));
        }
        below += n;
    }
    RESPONSE_BUCKETS.last().copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(addr: SocketAddr, requests: u64, bucket: usize, n: u64) -> TargetStats {
        let mut buckets = vec![0; RESPONSE_BUCKETS.len() + 1];
        buckets[bucket] = n;
        TargetStats {
            addr,
            requests,
            buckets,
        }
    }

    #[test]
    fn quantile_interpolates_within_the_bucket() {
        let mut b = vec![0; RESPONSE_BUCKETS.len() + 1];
        assert_eq!(quantile(0.95, &b), None);
        // 100 responses between 25 ms and 50 ms: p95 at 95 % of the way.
        b[4] = 100;
        let q = quantile(0.95, &b).unwrap();
        assert!((q - 0.04875).abs() < 1e-9, "{q}");
        // 90 fast ones and 10 between 0.5 s and 1 s: p95 half-way into the slow bucket.
        b[4] = 0;
        b[0] = 90;
        b[8] = 10;
        let q = quantile(0.95, &b).unwrap();
        assert!((q - 0.75).abs() < 1e-9, "{q}");
        // Above the last bound: the last bound.
        let mut b = vec![0; RESPONSE_BUCKETS.len() + 1];
        b[RESPONSE_BUCKETS.len()] = 3;
        assert_eq!(quantile(0.95, &b), Some(10.0));
    }

    #[test]
    fn deltas_give_rates_per_instance_and_the_period_p95() {
        let a: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let b: SocketAddr = "127.0.0.1:2".parse().unwrap();
        let c: SocketAddr = "127.0.0.1:3".parse().unwrap();
        let t0 = Instant::now();
        let period = Duration::from_secs(10);
        let mut d = Deltas::default();
        // First period: counted from zero over the configured period; c is not measured yet
        // (warming up) but its counters are remembered.
        let m = d.period(
            vec![
                stats(a, 100, 2, 100),
                stats(b, 300, 2, 300),
                stats(c, 50, 2, 50),
            ],
            &[a, b],
            period,
            t0,
        );
        assert_eq!(m.requests_per_target, Some(20.0));
        assert!((m.p95_ms.unwrap() - 9.75).abs() < 1e-6, "{m:?}");
        // Five seconds later: a +50, b +50 (two targets groups hold it: +20 and +30),
        // c +100 counted from the previous period, not from zero.
        let mut b_other = stats(b, 30, 9, 30);
        b_other.buckets[2] = 0;
        let m = d.period(
            vec![
                stats(a, 150, 2, 150),
                stats(b, 320, 2, 320),
                b_other,
                stats(c, 150, 2, 150),
            ],
            &[a, b, c],
            period,
            t0 + Duration::from_secs(5),
        );
        assert_eq!(m.requests_per_target, Some(200.0 / 5.0 / 3.0));
        // 170 fast responses of 200: p95 falls among the 30 slow ones (1 s .. 2.5 s).
        let p95 = m.p95_ms.unwrap();
        assert!((1000.0..=2500.0).contains(&p95), "{p95}");
        // No traffic: zero rate, no latency.
        let m = d.period(
            vec![stats(a, 150, 2, 150)],
            &[a],
            period,
            t0 + Duration::from_secs(10),
        );
        assert_eq!(m.requests_per_target, Some(0.0));
        assert_eq!(m.p95_ms, None);
        assert_eq!(
            d.period(Vec::new(), &[], period, t0 + Duration::from_secs(20)),
            PeriodMetrics::default()
        );
    }
}
