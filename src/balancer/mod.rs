//! The regional load balancer (AWS ALB style): HTTP/1.1 listeners forwarding to target
//! groups of health-checked targets. [`Groups`] is the snapshot of target groups and their
//! per-target counters; [`proxy`] runs the listeners.

pub mod proxy;

use crate::config::{Algorithm, BalancerConfig, TargetGroup, target_spec};
use crate::health::{HealthTable, ProbeKey};
use std::collections::HashSet;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// Target groups with their rotation and in-flight counters.
#[derive(Debug, Default)]
pub struct Groups {
    config: BalancerConfig,
    keys: Vec<Vec<Option<ProbeKey>>>,
    turns: Vec<AtomicU64>,
    in_flight: Vec<Vec<AtomicU32>>,
}

impl Groups {
    /// Builds the snapshot.
    pub fn new(config: BalancerConfig) -> Groups {
        let keys = config.target_groups.iter().map(probe_keys_of).collect();
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

    /// Picks a ready target of `group` that is not in `tried`, by the group's algorithm.
    pub fn pick(&self, group: usize, health: &HealthTable, tried: &[usize]) -> Option<usize> {
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

    fn groups(algorithm: Algorithm, n: u16) -> Groups {
        let targets = (0..n)
            .map(|i| format!("127.0.0.1:{}", 9000 + i).parse().unwrap())
            .collect();
        let g = TargetGroup {
            name: "g".into(),
            algorithm,
            check: None,
            targets,
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
        let picks: Vec<usize> = (0..6).map(|_| g.pick(0, &health, &[]).unwrap()).collect();
        assert_eq!(picks, [0, 1, 2, 0, 1, 2]);
        assert_ne!(g.pick(0, &health, &[0]), Some(0));
        assert_eq!(g.pick(0, &health, &[0, 1, 2]), None);
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
            assert_eq!(g.pick(0, &health, &[]), Some(2));
        }
        drop(_a);
        drop(_b);
        let picks: HashSet<usize> = (0..6).map(|_| g.pick(0, &health, &[]).unwrap()).collect();
        assert_eq!(
            picks,
            HashSet::from([0, 2]),
            "target 1 still has one in flight"
        );
    }
}
