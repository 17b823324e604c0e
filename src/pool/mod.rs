//! Pools: DNS names whose A/AAAA answers come from a set of endpoints, filtered by health,
//! steered between regions and rotated. [`Pools`] is the snapshot built from configuration;
//! [`PoolView`] pairs it with the current health table for one query.

pub mod select;

use crate::config::Steering;
use crate::config::{Binding, Endpoint, EndpointMode, Pool, PoolsConfig, WhenAllDown};
use crate::dns::name::Name;
use crate::dns::wire::rtype;
use crate::hash::FastMap;
use crate::health::{HealthTable, ProbeKey};
use crate::steering::Client;
use crate::steering::geo::GeoDb;
use crate::steering::measured::MeasuredTable;
use crate::steering::rank::{RankMemo, Ranking, rank};
use arc_swap::ArcSwapOption;
use smallvec::SmallVec;
use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// The addresses of one answer (inline up to eight).
pub type Addrs = SmallVec<[IpAddr; 8]>;

/// What a pool answers for one query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PoolAnswer {
    /// These addresses, with this TTL.
    Addresses(u32, Addrs),
    /// NOERROR without addresses.
    NoData,
    /// SERVFAIL.
    ServFail,
}

/// The pool snapshot: configuration plus what queries need to find it fast.
#[derive(Debug, Default)]
pub struct Pools {
    config: PoolsConfig,
    /// Bound name -> binding index for A and for AAAA.
    bindings: FastMap<Name, [Option<usize>; 2]>,
    /// Per binding: responses given so far (the rotation ticket).
    tickets: Vec<AtomicU64>,
    /// Per binding and family (A, AAAA): nothing was ready at the last answer (to log
    /// changes once).
    all_down: Vec<[AtomicBool; 2]>,
    /// Per pool, per endpoint: the probe that decides its health.
    keys: Vec<Vec<Option<ProbeKey>>>,
    /// Answers given while nothing was ready (fail open).
    failed_open: AtomicU64,
    /// Per pool, per endpoint: answers that carried its address.
    answered: Vec<Vec<AtomicU64>>,
    /// Per pool: which endpoints the last health table seen says are healthy, so that a
    /// query reads one entry instead of looking each endpoint up.
    healthy: Vec<ArcSwapOption<Healthy>>,
}

/// The health of a pool's endpoints under one health table.
#[derive(Debug)]
struct Healthy {
    /// [`HealthTable::version`] of that table.
    version: u64,
    /// Per endpoint: no health check, or its probe is ready.
    ready: SmallVec<[bool; 32]>,
}

impl Pools {
    /// Builds the snapshot.
    pub fn new(config: PoolsConfig) -> Pools {
        let mut bindings: FastMap<Name, [Option<usize>; 2]> = FastMap::default();
        for (i, b) in config.bindings.iter().enumerate() {
            for &t in &b.rtypes {
                bindings.entry(b.name.clone()).or_default()[family_slot(t)] = Some(i);
            }
        }
        let keys = config
            .pools
            .iter()
            .map(|p| p.endpoints.iter().map(|e| probe_key(p, e)).collect())
            .collect();
        let tickets = config.bindings.iter().map(|_| AtomicU64::new(0)).collect();
        let all_down = config.bindings.iter().map(|_| Default::default()).collect();
        let answered = config
            .pools
            .iter()
            .map(|p| p.endpoints.iter().map(|_| AtomicU64::new(0)).collect())
            .collect();
        let healthy = config.pools.iter().map(|_| Default::default()).collect();
        Pools {
            answered,
            healthy,
            config,
            bindings,
            tickets,
            all_down,
            keys,
            failed_open: AtomicU64::new(0),
        }
    }

    /// The configuration this snapshot was built from.
    pub fn config(&self) -> &PoolsConfig {
        &self.config
    }

    /// Every probe the pools need (enabled endpoints of pools with a health check), once each.
    pub fn probe_keys(&self) -> HashSet<ProbeKey> {
        self.keys.iter().flatten().flatten().cloned().collect()
    }

    /// True when `name` is bound to a pool (for any type).
    pub fn is_bound(&self, name: &Name) -> bool {
        !self.bindings.is_empty() && self.bindings.contains_key(name)
    }

    /// Answers fail-open so far.
    pub fn failed_open(&self) -> u64 {
        self.failed_open.load(Ordering::Relaxed)
    }

    /// Carries the rotation over from the previous snapshot for bindings that survive a
    /// reload, so first-address clients keep spreading evenly.
    pub fn inherit(&self, previous: &Pools) {
        for (i, b) in self.config.bindings.iter().enumerate() {
            if let Some(j) = b.rtypes.first().and_then(|&t| previous.binding(&b.name, t)) {
                self.tickets[i].store(
                    previous.tickets[j].load(Ordering::Relaxed),
                    Ordering::Relaxed,
                );
            }
        }
        self.failed_open
            .store(previous.failed_open(), Ordering::Relaxed);
        for (p, pool) in self.config.pools.iter().enumerate() {
            let Some(q) = previous
                .config
                .pools
                .iter()
                .position(|o| o.name == pool.name)
            else {
                continue;
            };
            let old = &previous.config.pools[q];
            for (e, endpoint) in pool.endpoints.iter().enumerate() {
                if let Some(j) = old.endpoints.iter().position(|o| o.addr == endpoint.addr) {
                    let n = previous.answered[q][j].load(Ordering::Relaxed);
                    self.answered[p][e].store(n, Ordering::Relaxed);
                }
            }
        }
    }

    /// Answers so far that carried endpoint `endpoint` of pool `pool` (indices into the
    /// configuration), kept across reloads.
    pub fn answered(&self, pool: usize, endpoint: usize) -> u64 {
        self.answered[pool][endpoint].load(Ordering::Relaxed)
    }

    /// The probe that decides the health of that endpoint (`None`: no health check, or an
    /// override or a disabled endpoint that is not probed).
    pub fn probe_key(&self, pool: usize, endpoint: usize) -> Option<&ProbeKey> {
        self.keys[pool][endpoint].as_ref()
    }

    fn count_answer(&self, pool: usize, picked: &[usize]) {
        for &i in picked {
            self.answered[pool][i].fetch_add(1, Ordering::Relaxed);
        }
    }

    fn binding(&self, name: &Name, qtype: u16) -> Option<usize> {
        if qtype != rtype::A && qtype != rtype::AAAA {
            return None;
        }
        self.bindings.get(name)?[family_slot(qtype)]
    }

    /// Logs once when a binding runs out of ready endpoints and once when it recovers.
    fn note_all_down(&self, b: usize, qtype: u16, down: bool) {
        if self.all_down[b][family_slot(qtype)].swap(down, Ordering::Relaxed) != down {
            let binding = &self.config.bindings[b];
            let pool = &self.config.pools[binding.pool].name;
            if down {
                tracing::warn!(name = %binding.name, pool, when_all_down = ?binding.when_all_down, "no endpoint of the pool is ready");
            } else {
                tracing::info!(name = %binding.name, pool, "pool has ready endpoints again");
            }
        }
    }

    /// The answer for `name`/`qtype`, or `None` when that pair is not bound.
    pub fn answer(&self, name: &Name, qtype: u16, view: &PoolView<'_>) -> Option<(PoolAnswer, u8)> {
        let health = view.health;
        let b = self.binding(name, qtype)?;
        let binding = &self.config.bindings[b];
        let pool = &self.config.pools[binding.pool];
        let ranking = self.rank(pool, view);
        let v4 = qtype == rtype::A;
        let usable = |i: usize| {
            let e = &pool.endpoints[i];
            e.addr.is_ipv4() == v4 && e.enabled
        };
        let kept = self.healthy[binding.pool].load();
        let fresh;
        let healthy: &[bool] = match kept.as_deref() {
            Some(h) if h.version == health.version() => &h.ready,
            _ => {
                fresh = Arc::new(Healthy {
                    version: health.version(),
                    ready: self.keys[binding.pool]
                        .iter()
                        .map(|k| k.as_ref().is_none_or(|k| health.is_ready(k)))
                        .collect(),
                });
                self.healthy[binding.pool].store(Some(fresh.clone()));
                &fresh.ready
            }
        };
        let ready = |i: usize| usable(i) && is_ready(pool.endpoints[i].mode, healthy[i]);
        let counter = self.tickets[b].fetch_add(1, Ordering::Relaxed);
        let ticket = match (pool.affinity, view.client) {
            (true, Some(c)) => c.hash(),
            _ => counter,
        };
        let picked = select::select(pool, &ranking.order, ready, binding.answers, ticket);
        // Degraded: an endpoint the health checks decide about is not ready right now.
        let degraded = (0..pool.endpoints.len()).any(|i| {
            let auto = pool.endpoints[i].mode == EndpointMode::Auto;
            usable(i) && auto && !healthy[i]
        });
        let ttl = answer_ttl(binding, pool, degraded);
        // A family without any endpoint (AAAA of an IPv4-only pool) is not "down".
        if (0..pool.endpoints.len()).any(usable) {
            self.note_all_down(b, qtype, picked.is_empty());
        }
        if !picked.is_empty() {
            self.count_answer(binding.pool, &picked);
            return Some((
                PoolAnswer::Addresses(ttl, addrs(pool, &picked)),
                ranking.scope,
            ));
        }
        let fail = match &binding.when_all_down {
            WhenAllDown::FailOpen => {
                // Nothing is ready: answer as if every endpoint that the operator has not taken
                // out (down, drain) were ready, as Route 53 and gdnsd do.
                let open = |i: usize| {
                    usable(i)
                        && matches!(
                            pool.endpoints[i].mode,
                            EndpointMode::Auto | EndpointMode::Up
                        )
                };
                let picked = select::select(pool, &ranking.order, open, binding.answers, ticket);
                if picked.is_empty() {
                    return Some((PoolAnswer::NoData, ranking.scope));
                }
                self.failed_open.fetch_add(1, Ordering::Relaxed);
                self.count_answer(binding.pool, &picked);
                PoolAnswer::Addresses(ttl, addrs(pool, &picked))
            }
            WhenAllDown::NoData => PoolAnswer::NoData,
            WhenAllDown::ServFail => PoolAnswer::ServFail,
            WhenAllDown::Fallback(list) => {
                let fitting: Addrs = list.iter().copied().filter(|a| a.is_ipv4() == v4).collect();
                if fitting.is_empty() {
                    PoolAnswer::NoData
                } else {
                    PoolAnswer::Addresses(ttl, fitting)
                }
            }
        };
        Some((fail, ranking.scope))
    }

    /// The region ranking for this query's client (the pool's own order without one; none
    /// for a pool without steering, which has no use for it).
    fn rank(&self, pool: &Pool, view: &PoolView<'_>) -> Ranking {
        if pool.steering == Steering::None {
            return Ranking {
                order: Default::default(),
                scope: 0,
            };
        }
        let Some(client) = view.client else {
            return Ranking {
                order: (0..pool.regions.len()).collect(),
                scope: 0,
            };
        };
        // Latency rankings follow measurements as they come; the others stay while the
        // client, the configuration (then the whole memo goes) and the geo database stay.
        let memo = view.memo.filter(|_| pool.steering != Steering::Latency);
        let geo_version = view.geo.map_or(0, GeoDb::version);
        if let Some(kept) = memo.and_then(|m| m.get(geo_version, &client)) {
            return kept;
        }
        let per_client = matches!(
            pool.steering,
            Steering::Geo | Steering::Proximity | Steering::Latency
        );
        let place = if per_client {
            view.geo.and_then(|g| g.place(client.addr))
        } else {
            None
        };
        let measured = match (pool.steering, view.measured) {
            (Steering::Latency, Some(table)) => table.matching(&client, view.now),
            _ => Vec::new(),
        };
        let ranking = rank(
            pool,
            &self.config.regions,
            &self.config.latency,
            &measured,
            &client,
            place.as_ref(),
        );
        if let Some(m) = memo {
            m.put(geo_version, &client, &ranking);
        }
        ranking
    }
}

/// The binding's TTL, or with `adaptive_ttl` (gdnsd's idea): never longer than the time a
/// failure takes to be detected (interval x unhealthy threshold), and the minimum while the
/// pool is degraded, so that caches let go of a changing answer quickly.
fn answer_ttl(binding: &Binding, pool: &Pool, degraded: bool) -> u32 {
    let (Some(min_ttl), Some(check)) = (binding.adaptive_ttl, pool.check.as_ref()) else {
        return binding.ttl;
    };
    if degraded {
        return min_ttl;
    }
    let detect = check
        .interval
        .as_secs()
        .saturating_mul(u64::from(check.unhealthy_threshold));
    binding
        .ttl
        .min(u32::try_from(detect).unwrap_or(u32::MAX))
        .max(min_ttl)
}

fn addrs(pool: &Pool, picked: &[usize]) -> Addrs {
    picked.iter().map(|&i| pool.endpoints[i].addr).collect()
}

fn probe_key(pool: &Pool, e: &Endpoint) -> Option<ProbeKey> {
    let spec = pool.check.as_ref()?;
    (e.enabled && e.mode != EndpointMode::Up && e.mode != EndpointMode::Down).then(|| ProbeKey {
        addr: e.addr,
        spec: spec.clone(),
    })
}

/// Overrides first; then the health check (`healthy` is true without one).
fn is_ready(mode: EndpointMode, healthy: bool) -> bool {
    match mode {
        EndpointMode::Up => true,
        EndpointMode::Down | EndpointMode::Drain => false,
        EndpointMode::Auto => healthy,
    }
}

/// Index of a bound type in a binding slot pair: A first, AAAA second.
fn family_slot(qtype: u16) -> usize {
    usize::from(qtype == rtype::AAAA)
}

/// Problems of record bindings that only the zones reveal, as `file:line: what` lines: a
/// bound name outside every served zone, or one that also has static A/AAAA data.
pub fn binding_problems(
    config: &crate::config::Config,
    catalog: &crate::dns::catalog::Catalog,
) -> Vec<String> {
    let file = config
        .path
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "<embedded>".into());
    let mut out = Vec::new();
    for b in &config.pools.bindings {
        let Some(zone) = catalog.find(&b.name) else {
            out.push(format!(
                "{file}:{}: binding {}: not inside any served zone",
                b.line, b.name
            ));
            continue;
        };
        let node = zone.node(&b.name);
        for &t in &b.rtypes {
            if node.is_some_and(|n| n.has(t)) {
                out.push(format!(
                    "{file}:{}: binding {}: zone {} also has static {} records at this name; remove them (the pool answers)",
                    b.line,
                    b.name,
                    zone.origin(),
                    if t == rtype::A { "A" } else { "AAAA" }
                ));
            }
        }
    }
    out
}

/// One query's view: the pools, the health table, the geo database and the measured latency
/// table, loaded once, and the client the answer is for.
#[derive(Clone, Copy)]
pub struct PoolView<'a> {
    /// Pools snapshot.
    pub pools: &'a Pools,
    /// Health snapshot.
    pub health: &'a HealthTable,
    /// Geo database, when configured.
    pub geo: Option<&'a GeoDb>,
    /// Measured latency table (reported by the balancers), when there is one.
    pub measured: Option<&'a MeasuredTable>,
    /// The time of the query (measured entries older than the table's maximum age are
    /// ignored).
    pub now: tokio::time::Instant,
    /// The client (ECS subnet or the query's source), when known.
    pub client: Option<Client>,
    /// Where the last ranking and its client are kept between queries (a kept query's).
    pub memo: Option<&'a RankMemo>,
}

impl PoolView<'_> {
    /// See [`Pools::answer`]: the answer and its ECS scope prefix length.
    pub fn answer(&self, name: &Name, qtype: u16) -> Option<(PoolAnswer, u8)> {
        self.pools.answer(name, qtype, self)
    }

    /// See [`Pools::is_bound`].
    pub fn is_bound(&self, name: &Name) -> bool {
        self.pools.is_bound(name)
    }
}
