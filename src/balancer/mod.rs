//! The regional load balancer (AWS ALB style): HTTP/1.1 listeners forwarding to target
//! groups of health-checked targets. [`Groups`] is the snapshot of target groups; each
//! target's state (requests in flight, passive ejection, response times, slow start,
//! metrics) outlives the snapshot and carries over to the next one. [`proxy`] runs the
//! listeners.

mod algorithm;
pub mod conns;
mod drain;
mod framing;
mod group;
pub mod h1;
mod hash;
mod idle;
pub mod listeners;
mod metrics;
pub mod proxy;
mod refusal;
pub mod report;
pub mod rtt;
pub mod rules;
pub mod status;
pub mod sticky;
mod target;
pub mod tcp;
pub mod tls;
mod tracked;
pub mod workers;

pub use drain::Draining;
pub use hash::hash_value;
pub use metrics::BUCKETS as RESPONSE_BUCKETS;
pub use target::{InFlight, Outcome};

use crate::config::BalancerConfig;
use crate::health::{HealthTable, ProbeKey};
use group::GroupState;
use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// What one target has served since the process started (counters carry over reloads).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetStats {
    /// The target.
    pub addr: SocketAddr,
    /// Requests forwarded to it, every response class and errors.
    pub requests: u64,
    /// Responses per bucket of [`RESPONSE_BUCKETS`] (not cumulative; the last slot counts
    /// responses slower than the last bound).
    pub buckets: Vec<u64>,
}

/// What a pick knows about the request.
#[derive(Debug, Clone, Copy)]
pub struct Pick<'a> {
    /// The client's address (`source-ip-hash`, and `consistent-hash` without a key).
    pub client: IpAddr,
    /// The value of the group's hash key in this request ([`hash_value`]).
    pub key: Option<&'a str>,
    /// Targets already tried for this request (indices), not to be picked again.
    pub tried: &'a [usize],
}

/// Target groups with their per-target state.
#[derive(Debug)]
pub struct Groups {
    config: BalancerConfig,
    groups: Vec<GroupState>,
}

impl Groups {
    /// Builds the snapshot; per-target state (counters, response times, ejection, slow-start
    /// clock, in flight) is carried over from `previous` for targets with the same group
    /// name and address.
    pub fn new(config: BalancerConfig, previous: Option<&Groups>) -> Groups {
        let groups = config
            .target_groups
            .iter()
            .map(|g| GroupState::new(g, previous.and_then(|p| p.group_named(&g.name))))
            .collect();
        Groups { config, groups }
    }

    fn group_named(&self, name: &str) -> Option<&GroupState> {
        let i = self
            .config
            .target_groups
            .iter()
            .position(|g| g.name == name)?;
        Some(&self.groups[i])
    }

    /// Targets of `previous` that are gone from this snapshot (deregistered), to drain for
    /// their group's deregistration delay (this snapshot's, if the group is still here).
    pub fn removed_from(&self, previous: &Groups) -> Vec<Draining> {
        let mut out = Vec::new();
        for (tg, g) in previous.config.target_groups.iter().zip(&previous.groups) {
            let now = self
                .config
                .target_groups
                .iter()
                .position(|n| n.name == tg.name);
            let delay = now.map_or(tg.deregistration_delay, |i| {
                self.config.target_groups[i].deregistration_delay
            });
            for t in &g.targets {
                let kept =
                    now.is_some_and(|i| self.config.target_groups[i].targets.contains(&t.addr));
                if !kept {
                    out.push(Draining {
                        state: t.clone(),
                        delay,
                    });
                }
            }
        }
        out
    }

    /// The configuration.
    pub fn config(&self) -> &BalancerConfig {
        &self.config
    }

    /// Every probe the target groups need.
    pub fn probe_keys(&self) -> HashSet<ProbeKey> {
        self.groups
            .iter()
            .flat_map(|g| g.keys.iter().flatten().cloned())
            .collect()
    }

    /// Picks a target of `group` for a request by the group's algorithm: ready by health,
    /// not ejected (unless every ready one is), not tried, admitted by slow start.
    pub fn pick(&self, group: usize, health: &HealthTable, req: &Pick<'_>) -> Option<usize> {
        let tg = &self.config.target_groups[group];
        let g = &self.groups[group];
        let now = Instant::now();
        let ready = g.ready(health);
        g.observe(&ready, !tg.slow_start.is_zero(), now);
        let candidates = g.candidates(&ready, req.tried, now);
        if candidates.is_empty() {
            return None;
        }
        // Slow start: a ramping target is left out of this pick unless admitted with the
        // probability of its current share, or unless nothing else is left.
        let admitted: Vec<usize> = candidates
            .iter()
            .copied()
            .filter(|&i| g.admits(i, tg.slow_start, now))
            .collect();
        let c = if admitted.is_empty() {
            &candidates
        } else {
            &admitted
        };
        Some(algorithm::choose(tg, g, c, req, now))
    }

    /// Ready by health and not ejected: may a sticky client keep this target?
    pub fn available(&self, group: usize, target: usize, health: &HealthTable) -> bool {
        let g = &self.groups[group];
        g.is_ready(target, health) && !g.targets[target].is_ejected(Instant::now())
    }

    /// Counts a request or connection in flight to a target until the guard is finished or
    /// dropped. The guard holds the target's state: it survives a reload.
    pub fn begin(&self, group: usize, target: usize) -> InFlight {
        self.groups[group].targets[target].begin()
    }

    /// The counters of every target of the target group `group` (empty when there is none).
    pub fn target_stats(&self, group: &str) -> Vec<TargetStats> {
        let Some(g) = self.group_named(group) else {
            return Vec::new();
        };
        g.targets
            .iter()
            .map(|t| {
                let (requests, buckets) = t.metrics.counts();
                TargetStats {
                    addr: t.addr,
                    requests,
                    buckets: buckets.to_vec(),
                }
            })
            .collect()
    }

    /// Cancelled once `addr`, removed from target group `group`, has drained (nothing left
    /// in flight, or the deregistration delay passed). None when the group has no such target.
    pub fn drained(&self, group: &str, addr: SocketAddr) -> Option<CancellationToken> {
        let g = self.group_named(group)?;
        let t = g.targets.iter().find(|t| t.addr == addr)?;
        Some(t.drained.clone())
    }

    /// Prometheus text exposition of every target group and target: requests by class,
    /// response-time histogram, in flight, ejections.
    pub fn render_metrics(&self, out: &mut String) {
        let targets = self
            .groups
            .iter()
            .flat_map(|g| g.targets.iter().map(|t| &**t));
        metrics::render(out, targets);
    }
}

#[cfg(test)]
pub(crate) mod testing {
    //! Target groups for the unit tests: no health check (every target ready), targets on
    //! 127.0.0.1:9000 and up.

    use crate::config::{Algorithm, BalancerConfig, HashKey, Passive, TargetGroup};
    use std::time::Duration;

    /// Group `g` with one target per weight.
    pub(crate) fn group(algorithm: Algorithm, weights: &[u32]) -> TargetGroup {
        TargetGroup {
            name: "g".into(),
            algorithm,
            hash_key: (algorithm == Algorithm::ConsistentHash)
                .then(|| HashKey::Header("x-user".into())),
            check: None,
            targets: (0..weights.len())
                .map(|i| format!("127.0.0.1:{}", 9000 + i).parse().unwrap())
                .collect(),
            weights: weights.to_vec(),
            slow_start: Duration::ZERO,
            deregistration_delay: Duration::from_secs(30),
            passive: Passive {
                failures: 5,
                ejection: Duration::from_secs(30),
            },
            stickiness: None,
        }
    }

    /// A configuration of that group.
    pub(crate) fn config(algorithm: Algorithm, weights: &[u32]) -> BalancerConfig {
        BalancerConfig {
            target_groups: vec![group(algorithm, weights)],
            listeners: Vec::new(),
        }
    }
}
