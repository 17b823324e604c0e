//! Probe loops, one per distinct [`ProbeKey`], and the published [`HealthTable`].
//!
//! Each loop owns its [`HealthState`] and writes its status into a mutex-guarded map on the
//! first result and on every transition, storing a fresh snapshot in the `ArcSwap` while it
//! holds the lock. Readers only ever `load()` the snapshot.

use crate::hash::FastMap;
use std::collections::hash_map::RandomState;
use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::hash::BuildHasher;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::ProbeKey;
use super::probe::{ProbeResult, probe};
use super::state::{HealthState, Transition};

/// Health of one probe key, as published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeStatus {
    /// True if the endpoint should receive traffic.
    pub ready: bool,
    /// True once at least one probe result has arrived.
    pub observed: bool,
    /// `ProbeResult::detail` of the result that was last published.
    pub last: String,
    /// Transitions so far (a first healthy result counts as one).
    pub changes: u64,
}

/// Snapshot: every probe key's status. Missing key = not ready.
#[derive(Debug, Clone, Default)]
pub struct HealthTable {
    entries: FastMap<ProbeKey, ProbeStatus>,
    /// Distinct for every published table in the process (0: an empty table never
    /// published), so readers can keep what they derived from one table.
    version: u64,
}

/// The version of the next published table.
static VERSIONS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

impl HealthTable {
    /// See the field: equal versions mean equal tables.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// Status of `key`, if it is probed and has a result.
    pub fn get(&self, key: &ProbeKey) -> Option<&ProbeStatus> {
        self.entries.get(key)
    }

    /// True if `key` is known and ready; unknown keys are not ready.
    pub fn is_ready(&self, key: &ProbeKey) -> bool {
        self.get(key).is_some_and(|status| status.ready)
    }

    /// Number of keys with a status.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True if no key has a status.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// All keys with their status, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&ProbeKey, &ProbeStatus)> {
        self.entries.iter()
    }
}

/// A probe in flight.
pub(crate) type ProbeFuture = Pin<Box<dyn Future<Output = ProbeResult> + Send>>;
/// How a loop probes its key: the real [`probe`] in production, a fake in tests.
pub(crate) type ProbeFn = Arc<dyn Fn(ProbeKey) -> ProbeFuture + Send + Sync>;

fn real_probe() -> ProbeFn {
    Arc::new(|key: ProbeKey| Box::pin(async move { probe(key.addr, &key.spec).await }))
}

/// The published table and what its writers share.
struct Shared {
    table: Arc<ArcSwap<HealthTable>>,
    entries: Mutex<FastMap<ProbeKey, ProbeStatus>>,
    /// The version of the table stored last, so `first_round` can wait without polling.
    published: watch::Sender<u64>,
}

impl Shared {
    fn new() -> Self {
        Shared {
            table: Arc::default(),
            entries: Mutex::default(),
            published: watch::Sender::new(0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, FastMap<ProbeKey, ProbeStatus>> {
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Publishes `status` unless the loop was stopped (its key may already be removed).
    fn publish(&self, key: &ProbeKey, status: ProbeStatus, token: &CancellationToken) {
        let mut entries = self.lock();
        if token.is_cancelled() {
            return;
        }
        entries.insert(key.clone(), status);
        self.store(&entries);
    }

    /// Drops the entries of `keys`; their loops must be cancelled first.
    fn remove(&self, keys: &[ProbeKey]) {
        let mut entries = self.lock();
        let before = entries.len();
        for key in keys {
            entries.remove(key);
        }
        if entries.len() != before {
            self.store(&entries);
        }
    }

    fn store(&self, entries: &FastMap<ProbeKey, ProbeStatus>) {
        let version = VERSIONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let table = HealthTable {
            entries: entries.clone(),
            version,
        };
        self.table.store(Arc::new(table));
        self.published.send_replace(version);
    }

    fn has_result(&self, key: &ProbeKey) -> bool {
        self.table
            .load()
            .get(key)
            .is_some_and(|status| status.observed)
    }
}

/// Runs one probe loop per distinct ProbeKey and publishes a new HealthTable (ArcSwap store) on
/// every transition (and when the first result of a key arrives). Single writer of the table.
///
/// Dropping the checker stops its loops; so does cancelling the `shutdown` token.
pub struct Checker {
    root: CancellationToken,
    shared: Arc<Shared>,
    loops: HashMap<ProbeKey, CancellationToken>,
    probe: ProbeFn,
}

impl Checker {
    /// A checker with no keys; its loops stop when `shutdown` is cancelled.
    pub fn new(shutdown: CancellationToken) -> Checker {
        Checker::with_probe(shutdown, real_probe())
    }

    /// A checker whose loops call `probe` instead of probing sockets.
    pub(crate) fn with_probe(shutdown: CancellationToken, probe: ProbeFn) -> Checker {
        Checker {
            root: shutdown.child_token(),
            shared: Arc::new(Shared::new()),
            loops: HashMap::new(),
            probe,
        }
    }

    /// The published table; readers `load()` it.
    pub fn table(&self) -> Arc<ArcSwap<HealthTable>> {
        Arc::clone(&self.shared.table)
    }

    /// Makes the running probes exactly `keys`: starts loops for new keys, stops (cancels) loops
    /// for keys no longer wanted and removes them from the table, leaves surviving keys running
    /// with their state untouched (a reload must not reset health). Must be called from within a
    /// tokio runtime.
    pub fn reconcile(&mut self, keys: impl IntoIterator<Item = ProbeKey>) {
        let wanted: HashSet<ProbeKey> = keys.into_iter().collect();
        let removed: Vec<ProbeKey> = self
            .loops
            .keys()
            .filter(|key| !wanted.contains(*key))
            .cloned()
            .collect();
        for key in &removed {
            if let Some(token) = self.loops.remove(key) {
                token.cancel();
            }
        }
        self.shared.remove(&removed);
        for key in wanted {
            if !self.loops.contains_key(&key) {
                self.start(key);
            }
        }
    }

    fn start(&mut self, key: ProbeKey) {
        let token = self.root.child_token();
        let probe_loop = ProbeLoop {
            jitter: Jitter::for_key(&key),
            key: key.clone(),
            probe: Arc::clone(&self.probe),
            shared: Arc::clone(&self.shared),
            token: token.clone(),
            state: HealthState::new(),
            changes: 0,
        };
        tokio::spawn(probe_loop.run());
        self.loops.insert(key, token);
    }

    /// Waits until every current key has at least one result or `limit` elapses (the first round
    /// before DNS answers pools). Also returns early on shutdown.
    pub async fn first_round(&self, limit: Duration) {
        let deadline = Instant::now() + limit;
        let mut changed = self.shared.published.subscribe();
        while let Some(waiting) = self.waiting_for() {
            let wait = tokio::time::timeout_at(deadline, changed.changed());
            tokio::select! {
                _ = self.root.cancelled() => return,
                result = wait => {
                    if !matches!(result, Ok(Ok(()))) {
                        warn!(waiting, ?limit, "first health-check round incomplete");
                        return;
                    }
                }
            }
        }
    }

    /// Number of keys without a result yet, or `None` if every key has one.
    fn waiting_for(&self) -> Option<usize> {
        let waiting = self
            .loops
            .keys()
            .filter(|key| !self.shared.has_result(key))
            .count();
        (waiting > 0).then_some(waiting)
    }
}

impl Drop for Checker {
    fn drop(&mut self) {
        self.root.cancel();
    }
}

/// Cheap per-key PRNG (splitmix64) for the interval jitter.
#[derive(Debug, Clone)]
struct Jitter(u64);

impl Jitter {
    fn for_key(key: &ProbeKey) -> Jitter {
        Jitter(RandomState::new().hash_one(key))
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A random delay in `[0, interval / 10]`.
    fn delay(&mut self, interval: Duration) -> Duration {
        let max = interval.as_nanos() / 10;
        let fraction = u128::from(self.next_u64() >> 11); // 53 random bits
        let nanos = (max * fraction) >> 53;
        Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    }
}

/// One key's probe loop; owns the key's health state.
struct ProbeLoop {
    key: ProbeKey,
    probe: ProbeFn,
    shared: Arc<Shared>,
    token: CancellationToken,
    state: HealthState,
    changes: u64,
    jitter: Jitter,
}

impl ProbeLoop {
    /// Probes at once, then every interval (plus jitter) measured from probe start.
    async fn run(mut self) {
        loop {
            let started = Instant::now();
            let result = tokio::select! {
                _ = self.token.cancelled() => return,
                result = (self.probe)(self.key.clone()) => result,
            };
            self.record(result);
            let next = started + self.key.spec.interval + self.jitter.delay(self.key.spec.interval);
            tokio::select! {
                _ = self.token.cancelled() => return,
                _ = tokio::time::sleep_until(next) => {}
            }
        }
    }

    fn record(&mut self, result: ProbeResult) {
        let spec = &self.key.spec;
        let first = !self.state.observed();
        let transition =
            self.state
                .observe(result.ok, spec.healthy_threshold, spec.unhealthy_threshold);
        debug!(addr = %self.key.addr, check = %spec, ok = result.ok, detail = %result.detail, "probe");
        if transition.is_some() {
            self.changes += 1;
        }
        self.log_change(transition, first, &result.detail);
        if transition.is_some() || first {
            let status = ProbeStatus {
                ready: self.state.is_ready(),
                observed: true,
                last: result.detail,
                changes: self.changes,
            };
            self.shared.publish(&self.key, status, &self.token);
        }
    }

    /// Logs a transition (and a failing first probe) once; `after` counts the consecutive
    /// probe results that caused it.
    fn log_change(&self, transition: Option<Transition>, first: bool, detail: &str) {
        let (addr, check) = (self.key.addr, &self.key.spec);
        let streak = |threshold: u32| if first { 1 } else { threshold.max(1) };
        match transition {
            Some(Transition::Up) => {
                let after = streak(check.healthy_threshold);
                info!(%addr, %check, after, detail, "endpoint up");
            }
            Some(Transition::Down) => {
                let after = streak(check.unhealthy_threshold);
                warn!(%addr, %check, after, detail, "endpoint down");
            }
            None if first => warn!(%addr, %check, after = 1, detail, "endpoint down (first probe)"),
            None => {}
        }
    }
}

#[cfg(test)]
#[path = "checker_tests.rs"]
mod tests;
