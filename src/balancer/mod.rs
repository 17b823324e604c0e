//! The regional load balancer (AWS ALB style): HTTP/1.1 listeners forwarding to target
//! groups of health-checked targets. [`Groups`] is the snapshot of target groups and their
//! per-target counters; [`proxy`] runs the listeners.

pub mod proxy;
pub mod report;
pub mod rtt;

use crate::config::{Algorithm, BalancerConfig, TargetGroup, target_spec};
use crate::health::{HealthTable, ProbeKey};
use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// Target groups with their rotation and in-flight counters.
#[derive(Debug, Default)]
pub struct Groups {
    config: BalancerConfig,
    keys: Vec<Vec<Option<ProbeKey>>>,
    /// Per group: the smooth weighted round-robin order of target indices.
    schedules: Vec<Vec<usize>>,
    turns: Vec<AtomicU64>,
    in_flight: Vec<Vec<AtomicU32>>,
}

impl Groups {
    /// Builds the snapshot.
    pub fn new(config: BalancerConfig) -> Groups {
        let keys = config.target_groups.iter().map(probe_keys_of).collect();
        let schedules = config
            .target_groups
            .iter()
            .map(|g| smooth_schedule(&g.weights))
            .collect();
        let turns = config
            .target_groups
            .iter()
            .map(|_| AtomicU64::new(0))
            .collect();
        let in_flight = config
            .target_groups
            .iter()
            .map(|g| g.targets.iter().map(|_| AtomicU32::new(0)).collect())
            .collect();
        Groups {
            config,
            keys,
            schedules,
            turns,
            in_flight,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &BalancerConfig {
        &self.config
    }

    /// Every probe the target groups need.
    pub fn probe_keys(&self) -> HashSet<ProbeKey> {
        self.keys.iter().flatten().flatten().cloned().collect()
    }

    /// The target group a listener forwards to.
    pub fn group_of(&self, listener: &str) -> Option<usize> {
        self.config
            .listeners
            .iter()
            .find(|l| l.name == listener)
            .map(|l| l.target_group)
    }

    /// Picks a ready target of `group` that is not in `tried`, by the group's algorithm, for a
    /// request from `client`.
    pub fn pick(
        &self,
        group: usize,
        health: &HealthTable,
        tried: &[usize],
        client: IpAddr,
    ) -> Option<usize> {
        let g = &self.config.target_groups[group];
        let ready: Vec<usize> = (0..g.targets.len())
            .filter(|i| !tried.contains(i))
            .filter(|&i| {
                self.keys[group][i]
                    .as_ref()
                    .is_none_or(|k| health.is_ready(k))
            })
            .collect();
        if ready.is_empty() {
            return None;
        }
        let turn = self.turns[group].fetch_add(1, Ordering::Relaxed);
        let start = (turn % ready.len() as u64) as usize;
        let rotated = ready.iter().cycle().skip(start).take(ready.len()).copied();
        Some(match g.algorithm {
            Algorithm::RoundRobin => ready[start],
            Algorithm::LeastOutstanding => rotated
                .min_by_key(|&i| self.in_flight[group][i].load(Ordering::Relaxed))
                .expect("ready is not empty"),
            Algorithm::WeightedRoundRobin => {
                let schedule = &self.schedules[group];
                let at = (turn % schedule.len().max(1) as u64) as usize;
                let next = schedule
                    .iter()
                    .cycle()
                    .skip(at)
                    .take(schedule.len())
                    .find(|i| ready.contains(i));
                // Only weight-0 targets are ready: they take the traffic rather than none.
                next.copied().unwrap_or(ready[start])
            }
            Algorithm::SourceIpHash => *ready
                .iter()
                .max_by_key(|&&i| rendezvous(client, g.targets[i]))
                .expect("ready is not empty"),
        })
    }

    /// Counts a request in flight to a target until the guard drops.
    pub fn begin(&self, group: usize, target: usize) -> InFlight<'_> {
        let counter = &self.in_flight[group][target];
        counter.fetch_add(1, Ordering::Relaxed);
        InFlight { counter }
    }
}

/// A request in flight (see [`Groups::begin`]).
pub struct InFlight<'a> {
    counter: &'a AtomicU32,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.counter.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Smooth weighted round robin (as nginx): each step every target gains its weight, the
/// richest is chosen and pays the total. Weights are scaled down to keep the cycle short.
fn smooth_schedule(weights: &[u32]) -> Vec<usize> {
    let max = weights.iter().copied().max().unwrap_or(0).max(1);
    let scale = max.div_ceil(1000);
    let w: Vec<i64> = weights
        .iter()
        .map(|&x| i64::from(x.div_ceil(scale)))
        .collect();
    let total: i64 = w.iter().sum();
    let mut current = vec![0i64; w.len()];
    let mut out = Vec::with_capacity(total as usize);
    for _ in 0..total {
        for (c, x) in current.iter_mut().zip(&w) {
            *c += x;
        }
        let best = (0..w.len())
            .filter(|&i| w[i] > 0)
            .max_by_key(|&i| (current[i], std::cmp::Reverse(i)));
        let Some(best) = best else { break };
        current[best] -= total;
        out.push(best);
    }
    out
}

/// Highest-random-weight score of a (client, target) pair: removing a target moves only the
/// clients that were on it.
fn rendezvous(client: IpAddr, target: std::net::SocketAddr) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (client, target).hash(&mut h);
    crate::pool::select::mix(h.finish())
}

fn probe_keys_of(g: &TargetGroup) -> Vec<Option<ProbeKey>> {
    g.targets
        .iter()
        .map(|t| {
            g.check.as_ref().map(|c| ProbeKey {
                addr: t.ip(),
                spec: target_spec(c, *t),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Listener;

    const CLIENT: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 7));

    fn groups(algorithm: Algorithm, n: u16) -> Groups {
        weighted(algorithm, &vec![1; n as usize])
    }

    fn weighted(algorithm: Algorithm, weights: &[u32]) -> Groups {
        let targets = (0..weights.len())
            .map(|i| format!("127.0.0.1:{}", 9000 + i).parse().unwrap())
            .collect();
        let g = TargetGroup {
            name: "g".into(),
            algorithm,
            check: None,
            targets,
            weights: weights.to_vec(),
        };
        let l = Listener {
            name: "web".into(),
            listen: "127.0.0.1:0".parse().unwrap(),
            target_group: 0,
        };
        Groups::new(BalancerConfig {
            target_groups: vec![g],
            listeners: vec![l],
        })
    }

    #[test]
    fn round_robin_takes_turns_and_skips_tried_targets() {
        let g = groups(Algorithm::RoundRobin, 3);
        let health = HealthTable::default();
        let picks: Vec<usize> = (0..6)
            .map(|_| g.pick(0, &health, &[], CLIENT).unwrap())
            .collect();
        assert_eq!(picks, [0, 1, 2, 0, 1, 2]);
        assert_ne!(g.pick(0, &health, &[0], CLIENT), Some(0));
        assert_eq!(g.pick(0, &health, &[0, 1, 2], CLIENT), None);
        assert_eq!(g.group_of("web"), Some(0));
    }

    #[test]
    fn least_outstanding_avoids_busy_targets() {
        let g = groups(Algorithm::LeastOutstanding, 3);
        let health = HealthTable::default();
        let _a = g.begin(0, 0);
        let _b = g.begin(0, 0);
        let _c = g.begin(0, 1);
        for _ in 0..5 {
            assert_eq!(g.pick(0, &health, &[], CLIENT), Some(2));
        }
        drop(_a);
        drop(_b);
        let picks: HashSet<usize> = (0..6)
            .map(|_| g.pick(0, &health, &[], CLIENT).unwrap())
            .collect();
        assert_eq!(
            picks,
            HashSet::from([0, 2]),
            "target 1 still has one in flight"
        );
    }

    #[test]
    fn weighted_round_robin_is_smooth_and_proportional() {
        let g = weighted(Algorithm::WeightedRoundRobin, &[5, 1, 1, 0]);
        let health = HealthTable::default();
        let picks: Vec<usize> = (0..7)
            .map(|_| g.pick(0, &health, &[], CLIENT).unwrap())
            .collect();
        assert_eq!(picks.iter().filter(|&&i| i == 0).count(), 5);
        assert!(!picks.contains(&3), "weight 0 gets nothing");
        assert!(
            picks.windows(3).all(|w| w != [0, 0, 0]),
            "interleaved, not bunched: {picks:?}"
        );
        assert_eq!(
            g.pick(0, &health, &[0, 1, 2], CLIENT),
            Some(3),
            "weight 0 rather than nothing"
        );
    }

    #[test]
    fn source_ip_hash_is_stable_and_moves_only_the_lost_share() {
        let g = groups(Algorithm::SourceIpHash, 4);
        let health = HealthTable::default();
        let clients: Vec<IpAddr> = (0..200u8).map(|i| IpAddr::from([10, 0, 0, i])).collect();
        let before: Vec<usize> = clients
            .iter()
            .map(|&c| g.pick(0, &health, &[], c).unwrap())
            .collect();
        let again: Vec<usize> = clients
            .iter()
            .map(|&c| g.pick(0, &health, &[], c).unwrap())
            .collect();
        assert_eq!(before, again);
        let spread: HashSet<usize> = before.iter().copied().collect();
        assert_eq!(spread.len(), 4);
        // Without target 2, only its clients move.
        let after: Vec<usize> = clients
            .iter()
            .map(|&c| g.pick(0, &health, &[2], c).unwrap())
            .collect();
        for (b, a) in before.iter().zip(&after) {
            assert!(*b == 2 || a == b);
        }
    }
}
