//! One target group in a snapshot: its targets' shared state, probe keys, rotation counter
//! and random source; which targets a pick may choose, and slow-start admission.

use super::target::TargetState;
use crate::config::{EndpointMode, TargetGroup, target_spec};
use crate::health::{HealthTable, ProbeKey};
use crate::pool::select::mix;
use std::hash::BuildHasher;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::time::Instant;

/// A target group's part of a snapshot.
#[derive(Debug)]
pub(crate) struct GroupState {
    /// Probe key per target (`None`: no health check, always ready).
    pub(crate) keys: Vec<Option<ProbeKey>>,
    /// Per target: operator override (`Auto`: the health check decides).
    pub(crate) modes: Vec<EndpointMode>,
    /// Per target, shared with other snapshots and with in-flight guards.
    pub(crate) targets: Vec<Arc<TargetState>>,
    /// The smooth weighted round-robin order of target indices.
    pub(crate) schedule: Vec<usize>,
    turns: AtomicU64,
    draws: AtomicU64,
    seed: u64,
}

impl GroupState {
    /// The group's state; targets found in `previous` (same address) keep theirs.
    pub(crate) fn new(g: &TargetGroup, previous: Option<&GroupState>) -> GroupState {
        let targets = g
            .targets
            .iter()
            .map(|&addr| {
                let kept = previous.and_then(|p| p.targets.iter().find(|t| t.addr == addr));
                match kept {
                    Some(t) => {
                        t.configure(g.passive);
                        t.clone()
                    }
                    None => TargetState::new(&g.name, addr, g.passive),
                }
            })
            .collect();
        GroupState {
            modes: vec![EndpointMode::Auto; g.targets.len()],
            keys: probe_keys_of(g),
            targets,
            schedule: smooth_schedule(&g.weights),
            turns: AtomicU64::new(0),
            draws: AtomicU64::new(0),
            // A per-snapshot seed, so that power-of-two draws differ between processes.
            seed: std::collections::hash_map::RandomState::new().hash_one(0u8),
        }
    }

    /// Next value of the rotation counter.
    pub(crate) fn turn(&self) -> u64 {
        self.turns.fetch_add(1, Ordering::Relaxed)
    }

    /// A pseudo-random number (SplitMix over a counter: no lock, no shared generator).
    pub(crate) fn random(&self) -> u64 {
        mix(self.seed ^ self.draws.fetch_add(1, Ordering::Relaxed))
    }

    /// Whether each target is ready: by its override, else by health.
    pub(crate) fn ready(&self, health: &HealthTable) -> Vec<bool> {
        (0..self.keys.len())
            .map(|i| self.is_ready(i, health))
            .collect()
    }

    /// Whether target `i` is ready: by its override, else by health.
    pub(crate) fn is_ready(&self, i: usize, health: &HealthTable) -> bool {
        match self.modes[i] {
            EndpointMode::Up => true,
            EndpointMode::Down | EndpointMode::Drain => false,
            EndpointMode::Auto => self.keys[i].as_ref().is_none_or(|k| health.is_ready(k)),
        }
    }

    /// Notes which targets became ready since the previous pick. A target that becomes
    /// ready while others already were starts slow start; when none was ready it takes
    /// its full share at once (there is nobody to ramp away from).
    pub(crate) fn observe(&self, ready: &[bool], slow_start: bool, now: Instant) {
        let steady = self
            .targets
            .iter()
            .zip(ready)
            .any(|(t, &r)| r && t.was_ready());
        for (t, &r) in self.targets.iter().zip(ready) {
            if t.observe(r) {
                t.start_ramp(slow_start && steady, now);
            }
        }
    }

    /// Targets a pick may choose: ready, not tried, not ejected; when passive ejection has
    /// taken out every such target, the ejected ones rather than none.
    pub(crate) fn candidates(&self, ready: &[bool], tried: &[usize], now: Instant) -> Vec<usize> {
        let open: Vec<usize> = (0..self.targets.len())
            .filter(|&i| ready[i] && !tried.contains(&i))
            .collect();
        let kept: Vec<usize> = open
            .iter()
            .copied()
            .filter(|&i| !self.targets[i].is_ejected(now))
            .collect();
        if kept.is_empty() { open } else { kept }
    }

    /// Slow start: admits target `i` with the probability of its current share.
    pub(crate) fn admits(&self, i: usize, slow_start: std::time::Duration, now: Instant) -> bool {
        let share = self.targets[i].ramp(slow_start, now);
        share >= 1.0 || unit(self.random()) < share
    }
}

/// A uniform number in [0, 1) from 53 random bits.
fn unit(r: u64) -> f64 {
    (r >> 11) as f64 / (1u64 << 53) as f64
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

/// Smooth weighted round robin (as nginx): each step every target gains its weight, the
/// richest is chosen and pays the total. Weights are scaled down to keep the cycle short.
pub(crate) fn smooth_schedule(weights: &[u32]) -> Vec<usize> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::balancer::testing::group;
    use crate::config::Algorithm;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn a_target_that_becomes_ready_ramps_only_when_others_are_ready() {
        let tg = group(Algorithm::RoundRobin, &[1, 1, 1]);
        let g = GroupState::new(&tg, None);
        let slow = Duration::from_secs(30);
        let now = Instant::now();
        // All become ready together (a start): nobody ramps.
        g.observe(&[true, true, false], true, now);
        assert_eq!(g.targets[0].ramp(slow, now), 1.0);
        assert_eq!(g.targets[1].ramp(slow, now), 1.0);
        // Target 2 becomes ready next to ready ones: it starts at nothing.
        g.observe(&[true, true, true], true, now);
        assert_eq!(g.targets[2].ramp(slow, now), 0.0);
        assert!((0..100).all(|_| !g.admits(2, slow, now)));
        // Target 0 goes down and comes back: ramps again.
        g.observe(&[false, true, true], true, now);
        g.observe(&[true, true, true], true, now);
        assert_eq!(g.targets[0].ramp(slow, now), 0.0);
        // Everything down, then one back: it takes all at once.
        g.observe(&[false, false, false], true, now);
        g.observe(&[false, true, false], true, now);
        assert_eq!(g.targets[1].ramp(slow, now), 1.0);
        // Slow start off: never ramps.
        g.observe(&[true, true, false], false, now);
        assert_eq!(g.targets[0].ramp(slow, now), 1.0);
    }

    #[test]
    fn candidates_skip_tried_and_unready_and_fall_back_to_ejected() {
        let tg = group(Algorithm::RoundRobin, &[1, 1, 1]);
        let g = GroupState::new(&tg, None);
        let now = Instant::now();
        assert_eq!(g.candidates(&[true, false, true], &[2], now), [0]);
        assert!(g.candidates(&[false, false, false], &[], now).is_empty());
    }

    #[test]
    fn smooth_schedule_interleaves() {
        assert_eq!(smooth_schedule(&[5, 1, 1]), [0, 0, 1, 0, 2, 0, 0]);
        assert_eq!(smooth_schedule(&[0, 2]), [1, 1]);
        assert!(smooth_schedule(&[0, 0]).is_empty());
    }
}
