//! Per-target state shared by every snapshot that holds the target: requests in flight,
//! passive ejection, response-time EWMA, the slow-start clock, metrics and the draining
//! signal. All of it is atomics (the request path takes no lock); it lives in an `Arc` that
//! [`super::Groups::new`] carries over to the next snapshot and in-flight guards keep alive.

use super::metrics::TargetMetrics;
use crate::config::Passive;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Weight of a new response time in the moving average.
const EWMA_ALPHA: f64 = 0.3;
/// The average decays towards zero with this time constant while no response arrives, so a
/// target that was slow once is measured again rather than avoided for ever.
const EWMA_DECAY: Duration = Duration::from_secs(10);
/// `ewma` before the first sample.
const NO_SAMPLE: u64 = u64::MAX;
/// An ejection lasts at most this many times `passive.ejection`.
const MAX_EJECTION_FACTOR: u64 = 10;

/// How a request or connection to a target ended (see [`InFlight::finish`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The target answered (a 5xx counts as a failure for passive ejection).
    Response {
        /// HTTP status.
        status: u16,
        /// Time until the response head arrived.
        elapsed: Duration,
    },
    /// No connection could be opened: the request never reached the target.
    ConnectFailed,
    /// The connection broke or timed out after the request was sent.
    Failed {
        /// Time until the failure.
        elapsed: Duration,
    },
}

/// The shared state of one target.
#[derive(Debug)]
pub(crate) struct TargetState {
    /// Target group name.
    pub(crate) group: Arc<str>,
    /// Target address.
    pub(crate) addr: SocketAddr,
    /// Origin of every time stored below (nanoseconds since it).
    epoch: Instant,
    in_flight: AtomicU32,
    /// A drain waits for the last request: only then does finishing one notify `idle`.
    draining: AtomicBool,
    idle: Notify,
    pub(crate) drained: CancellationToken,
    failures: AtomicU32,
    ejections: AtomicU32,
    ejected_until: AtomicU64,
    passive_failures: AtomicU32,
    passive_ejection: AtomicU64,
    /// Response-time average in seconds (`f64` bits), `NO_SAMPLE` before the first.
    ewma: AtomicU64,
    last_sample: AtomicU64,
    /// Readiness at the previous pick, to see the moment a target becomes ready.
    was_ready: AtomicBool,
    /// Start of slow start plus one; 0 when the target has its full share.
    ramp_from: AtomicU64,
    pub(crate) metrics: TargetMetrics,
}

impl TargetState {
    /// Fresh state: nothing in flight, not ready yet, never ejected, unmeasured.
    pub(crate) fn new(group: &str, addr: SocketAddr, passive: Passive) -> Arc<TargetState> {
        let state = TargetState {
            group: group.into(),
            addr,
            epoch: Instant::now(),
            in_flight: AtomicU32::new(0),
            draining: AtomicBool::new(false),
            idle: Notify::new(),
            drained: CancellationToken::new(),
            failures: AtomicU32::new(0),
            ejections: AtomicU32::new(0),
            ejected_until: AtomicU64::new(0),
            passive_failures: AtomicU32::new(0),
            passive_ejection: AtomicU64::new(0),
            ewma: AtomicU64::new(NO_SAMPLE),
            last_sample: AtomicU64::new(0),
            was_ready: AtomicBool::new(false),
            ramp_from: AtomicU64::new(0),
            metrics: TargetMetrics::default(),
        };
        state.configure(passive);
        Arc::new(state)
    }

    /// Applies the (possibly reloaded) passive ejection settings.
    pub(crate) fn configure(&self, passive: Passive) {
        self.passive_failures
            .store(passive.failures, Ordering::Relaxed);
        self.passive_ejection
            .store(nanos(passive.ejection), Ordering::Relaxed);
    }

    fn since(&self, now: Instant) -> u64 {
        nanos(now.saturating_duration_since(self.epoch))
    }

    /// Requests or connections in flight.
    pub(crate) fn in_flight(&self) -> u32 {
        self.in_flight.load(Ordering::SeqCst)
    }

    /// Counts one more in flight; the guard counts it down.
    pub(crate) fn begin(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        InFlight {
            state: self.clone(),
        }
    }

    fn end(&self) {
        let before = self.in_flight.fetch_sub(1, Ordering::SeqCst);
        if before == 1 && self.draining.load(Ordering::SeqCst) {
            self.idle.notify_waiters();
        }
    }

    /// True while passive ejection keeps the target out.
    pub(crate) fn is_ejected(&self, now: Instant) -> bool {
        self.since(now) < self.ejected_until.load(Ordering::Relaxed)
    }

    /// Feeds an outcome to the metrics, the failure count and the response-time average.
    pub(crate) fn record(&self, outcome: Outcome, now: Instant) {
        self.metrics.record(outcome);
        let failed = match outcome {
            Outcome::Response { status, elapsed } => {
                if status < 500 {
                    self.sample(elapsed, now);
                }
                status >= 500
            }
            Outcome::ConnectFailed | Outcome::Failed { .. } => true,
        };
        if !failed {
            self.failures.store(0, Ordering::Relaxed);
            self.ejections.store(0, Ordering::Relaxed);
            return;
        }
        let limit = self.passive_failures.load(Ordering::Relaxed);
        // Requests sent before the ejection may still fail: they do not extend it.
        if limit == 0 || self.is_ejected(now) {
            return;
        }
        let n = self.failures.fetch_add(1, Ordering::Relaxed) + 1;
        // Of concurrent failures past the limit, the one that resets the count ejects.
        if n >= limit
            && self
                .failures
                .compare_exchange(n, 0, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            self.eject(now);
        }
    }

    fn eject(&self, now: Instant) {
        let n = self.ejections.fetch_add(1, Ordering::Relaxed) + 1;
        let base = self.passive_ejection.load(Ordering::Relaxed);
        let doubled = base.saturating_mul(1u64 << (n - 1).min(32));
        let time = doubled.min(base.saturating_mul(MAX_EJECTION_FACTOR));
        self.ejected_until
            .store(self.since(now).saturating_add(time), Ordering::Relaxed);
        self.metrics.ejected();
        tracing::warn!(
            "target ejected group={} target={} for={}s",
            self.group,
            self.addr,
            Duration::from_nanos(time).as_secs_f64()
        );
    }

    fn sample(&self, elapsed: Duration, now: Instant) {
        let at = self.since(now);
        let x = elapsed.as_secs_f64();
        let _ = self
            .ewma
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |old| {
                let new = match self.decayed(old, at) {
                    None => x,
                    Some(avg) => avg + EWMA_ALPHA * (x - avg),
                };
                Some(new.to_bits())
            });
        self.last_sample.store(at, Ordering::Relaxed);
    }

    fn decayed(&self, bits: u64, at: u64) -> Option<f64> {
        if bits == NO_SAMPLE {
            return None;
        }
        let idle = at.saturating_sub(self.last_sample.load(Ordering::Relaxed)) as f64 / 1e9;
        Some(f64::from_bits(bits) * (-idle / EWMA_DECAY.as_secs_f64()).exp())
    }

    /// Recent response time in seconds, `None` before the first response.
    pub(crate) fn latency(&self, now: Instant) -> Option<f64> {
        self.decayed(self.ewma.load(Ordering::Relaxed), self.since(now))
    }

    /// Readiness seen by a pick. Returns true when the target was not ready at the previous
    /// observation (it has just become ready, or was just registered).
    pub(crate) fn observe(&self, ready: bool) -> bool {
        // Every pick observes every target: read first, write only on a change, so that
        // concurrent picks do not keep bouncing the cache line.
        if self.was_ready.load(Ordering::Relaxed) == ready {
            return false;
        }
        if ready {
            !self.was_ready.swap(true, Ordering::Relaxed)
        } else {
            self.was_ready.store(false, Ordering::Relaxed);
            false
        }
    }

    /// Ready at the previous observation.
    pub(crate) fn was_ready(&self) -> bool {
        self.was_ready.load(Ordering::Relaxed)
    }

    /// Starts slow start now (`ramp`) or gives the full share at once.
    pub(crate) fn start_ramp(&self, ramp: bool, now: Instant) {
        let from = if ramp { self.since(now) + 1 } else { 0 };
        self.ramp_from.store(from, Ordering::Relaxed);
    }

    /// Share of its normal traffic the target takes, from 0 to 1 over `slow_start`.
    pub(crate) fn ramp(&self, slow_start: Duration, now: Instant) -> f64 {
        let from = self.ramp_from.load(Ordering::Relaxed);
        if from == 0 {
            return 1.0;
        }
        let elapsed = self.since(now).saturating_sub(from - 1);
        if slow_start.is_zero() || elapsed >= nanos(slow_start) {
            self.ramp_from.store(0, Ordering::Relaxed);
            return 1.0;
        }
        elapsed as f64 / slow_start.as_nanos() as f64
    }

    /// Marks the start of a drain; what is notified when the last request in flight ends.
    pub(crate) fn idle(&self) -> &Notify {
        self.draining.store(true, Ordering::SeqCst);
        &self.idle
    }

    /// Ends the drain: the remaining guards' `cancelled()` resolve.
    pub(crate) fn cancel(&self) {
        self.drained.cancel();
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// A request or connection in flight to a target (see [`super::Groups::begin`]). It holds the
/// target's state, so it outlives reloads; dropping it without [`InFlight::finish`] only
/// counts it down.
#[derive(Debug)]
pub struct InFlight {
    state: Arc<TargetState>,
}

impl InFlight {
    /// Records how the request ended: feeds passive ejection, the response-time average
    /// and the metrics.
    pub fn finish(self, outcome: Outcome) {
        self.state.record(outcome, Instant::now());
    }

    /// Resolves when the target, removed from the configuration, has drained for its
    /// deregistration delay: the request should then be abandoned.
    pub async fn cancelled(&self) {
        self.state.drained.cancelled().await;
    }

    /// The token [`InFlight::cancelled`] waits on, for futures that must own it.
    pub fn drained(&self) -> CancellationToken {
        self.state.drained.clone()
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.state.end();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(failures: u32) -> Arc<TargetState> {
        let passive = Passive {
            failures,
            ejection: Duration::from_secs(10),
        };
        TargetState::new("g", "127.0.0.1:9000".parse().unwrap(), passive)
    }

    fn fail(s: &Arc<TargetState>, outcome: Outcome) {
        s.begin().finish(outcome);
    }

    #[tokio::test(start_paused = true)]
    async fn ejection_doubles_and_is_capped_at_ten_times() {
        let s = state(2);
        let mut times = Vec::new();
        for _ in 0..6 {
            fail(&s, Outcome::ConnectFailed);
            fail(
                &s,
                Outcome::Failed {
                    elapsed: Duration::ZERO,
                },
            );
            let start = Instant::now();
            assert!(s.is_ejected(start));
            while s.is_ejected(Instant::now()) {
                tokio::time::advance(Duration::from_secs(1)).await;
            }
            times.push(Instant::now().duration_since(start).as_secs());
        }
        assert_eq!(times, [10, 20, 40, 80, 100, 100]);
        assert_eq!(s.metrics.ejections(), 6);
    }

    #[tokio::test(start_paused = true)]
    async fn success_resets_the_count_and_4xx_is_success() {
        let s = state(3);
        let status = |status| Outcome::Response {
            status,
            elapsed: Duration::from_millis(1),
        };
        for outcome in [
            status(502),
            status(503),
            status(404),
            status(500),
            status(500),
        ] {
            fail(&s, outcome);
        }
        assert!(!s.is_ejected(Instant::now()));
        fail(&s, status(500));
        assert!(s.is_ejected(Instant::now()));
        // Failures of requests sent before the ejection do not extend it.
        for _ in 0..5 {
            fail(&s, Outcome::ConnectFailed);
        }
        tokio::time::advance(Duration::from_secs(10)).await;
        assert!(!s.is_ejected(Instant::now()));
        assert_eq!(s.metrics.ejections(), 1);
        let off = state(0);
        for _ in 0..20 {
            fail(&off, Outcome::ConnectFailed);
        }
        assert!(
            !off.is_ejected(Instant::now()),
            "passive_failures = 0 is off"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn latency_average_moves_and_decays_when_idle() {
        let s = state(5);
        assert_eq!(s.latency(Instant::now()), None);
        let ok = |ms| Outcome::Response {
            status: 200,
            elapsed: Duration::from_millis(ms),
        };
        fail(&s, ok(100));
        let first = s.latency(Instant::now()).unwrap();
        assert!((first - 0.1).abs() < 1e-9, "{first}");
        fail(&s, ok(0));
        let second = s.latency(Instant::now()).unwrap();
        assert!((second - 0.07).abs() < 1e-9, "{second}");
        fail(&s, ok(1000));
        fail(
            &s,
            Outcome::Response {
                status: 503,
                elapsed: Duration::from_millis(1),
            },
        );
        let with_5xx = s.latency(Instant::now()).unwrap();
        assert!(
            with_5xx > 0.3,
            "a fast 5xx is not a fast response: {with_5xx}"
        );
        tokio::time::advance(EWMA_DECAY).await;
        let idle = s.latency(Instant::now()).unwrap();
        assert!(
            (idle - with_5xx / std::f64::consts::E).abs() < 1e-6,
            "{idle}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn ramp_is_linear_over_slow_start() {
        let s = state(5);
        let slow = Duration::from_secs(30);
        assert_eq!(s.ramp(slow, Instant::now()), 1.0);
        s.start_ramp(true, Instant::now());
        assert_eq!(s.ramp(slow, Instant::now()), 0.0);
        tokio::time::advance(Duration::from_secs(15)).await;
        assert!((s.ramp(slow, Instant::now()) - 0.5).abs() < 1e-9);
        tokio::time::advance(Duration::from_secs(15)).await;
        assert_eq!(s.ramp(slow, Instant::now()), 1.0);
        assert!(s.observe(true), "first ready observation");
        assert!(!s.observe(true));
        assert!(!s.observe(false));
        assert!(s.observe(true), "ready again");
    }
}
