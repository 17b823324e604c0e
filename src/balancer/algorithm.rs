//! The target-choice algorithms. Each gets the candidates (ready, not ejected, not tried;
//! never empty) and returns one of them.

use super::Pick;
use super::group::GroupState;
use super::hash::{Affinity, rendezvous};
use crate::config::{Algorithm, TargetGroup};
use std::cmp::Ordering;
use tokio::time::Instant;

/// Chooses one of `c` by the group's algorithm.
pub(crate) fn choose(
    tg: &TargetGroup,
    g: &GroupState,
    c: &[usize],
    req: &Pick<'_>,
    now: Instant,
) -> usize {
    let in_flight = |i: usize| g.targets[i].in_flight();
    match tg.algorithm {
        Algorithm::RoundRobin => c[start(g, c)],
        Algorithm::WeightedRoundRobin => {
            let turn = g.turn();
            // Only weight-0 targets left: they take the traffic rather than none.
            by_schedule(g, c, turn).unwrap_or(c[(turn % c.len() as u64) as usize])
        }
        Algorithm::LeastOutstanding => {
            least(c, start(g, c), |&a, &b| in_flight(a).cmp(&in_flight(b)))
        }
        Algorithm::WeightedLeastConnections => weighted_least(tg, g, c),
        Algorithm::SourceIpHash => highest(tg, c, Affinity::Client(req.client)),
        Algorithm::ConsistentHash => {
            let affinity = req.key.map_or(Affinity::Client(req.client), Affinity::Key);
            highest(tg, c, affinity)
        }
        Algorithm::PowerOfTwo => power_of_two(g, c),
        Algorithm::FastestResponse => fastest(g, c, now),
    }
}

/// Where a rotation over `c` starts this time.
fn start(g: &GroupState, c: &[usize]) -> usize {
    (g.turn() % c.len() as u64) as usize
}

/// The first smallest of `c` by `cmp`, looking from `from` onwards (ties go in turn).
fn least(c: &[usize], from: usize, mut cmp: impl FnMut(&usize, &usize) -> Ordering) -> usize {
    let rotated = c.iter().cycle().skip(from).take(c.len());
    *rotated
        .min_by(|a, b| cmp(a, b))
        .expect("candidates are not empty")
}

/// The next target of the smooth weighted schedule that is one of `c`.
fn by_schedule(g: &GroupState, c: &[usize], turn: u64) -> Option<usize> {
    let s = &g.schedule;
    let at = (turn % s.len().max(1) as u64) as usize;
    s.iter()
        .cycle()
        .skip(at)
        .take(s.len())
        .find(|i| c.contains(i))
        .copied()
}

/// Lowest in flight per weight; among equals, by the smooth weighted schedule, so idle
/// targets still get traffic in proportion to their weights. Weight 0 only when nothing
/// else is left.
fn weighted_least(tg: &TargetGroup, g: &GroupState, c: &[usize]) -> usize {
    let weighted: Vec<usize> = c.iter().copied().filter(|&i| tg.weights[i] > 0).collect();
    if weighted.is_empty() {
        return least(c, start(g, c), |&a, &b| {
            g.targets[a].in_flight().cmp(&g.targets[b].in_flight())
        });
    }
    // a/wa < b/wb  <=>  a*wb < b*wa, without division.
    let load = |i: usize| {
        (
            u64::from(g.targets[i].in_flight()),
            u64::from(tg.weights[i]),
        )
    };
    let cmp = |a: usize, b: usize| {
        let ((fa, wa), (fb, wb)) = (load(a), load(b));
        (fa * wb).cmp(&(fb * wa))
    };
    let best = least(&weighted, 0, |&a, &b| cmp(a, b));
    let ties: Vec<usize> = weighted
        .into_iter()
        .filter(|&i| cmp(i, best) == Ordering::Equal)
        .collect();
    if ties.len() == 1 {
        return ties[0];
    }
    let turn = g.turn();
    by_schedule(g, &ties, turn).unwrap_or(ties[(turn % ties.len() as u64) as usize])
}

/// The candidate with the highest rendezvous score for `affinity`.
fn highest(tg: &TargetGroup, c: &[usize], affinity: Affinity<'_>) -> usize {
    *c.iter()
        .max_by_key(|&&i| rendezvous(affinity, tg.targets[i]))
        .expect("candidates are not empty")
}

/// Two distinct random candidates; the one with fewer in flight.
fn power_of_two(g: &GroupState, c: &[usize]) -> usize {
    if c.len() == 1 {
        return c[0];
    }
    let r = g.random();
    let n = c.len() as u64;
    let a = (r % n) as usize;
    let mut b = ((r >> 32) % (n - 1)) as usize;
    if b >= a {
        b += 1;
    }
    let (a, b) = (c[a], c[b]);
    if g.targets[b].in_flight() < g.targets[a].in_flight() {
        b
    } else {
        a
    }
}

/// Lowest recent response time times (in flight + 1). Unmeasured idle targets go first, so
/// every target gets measured; an unmeasured one already busy counts as the slowest
/// measured one, so it is not flooded before its first response.
fn fastest(g: &GroupState, c: &[usize], now: Instant) -> usize {
    let from = start(g, c);
    let latency: Vec<Option<f64>> = c.iter().map(|&i| g.targets[i].latency(now)).collect();
    let unmeasured_idle = (0..c.len())
        .cycle()
        .skip(from)
        .take(c.len())
        .find(|&k| latency[k].is_none() && g.targets[c[k]].in_flight() == 0);
    if let Some(k) = unmeasured_idle {
        return c[k];
    }
    let slowest = latency.iter().flatten().copied().fold(0.0, f64::max);
    let cost = |k: usize| {
        let busy = f64::from(g.targets[c[k]].in_flight()) + 1.0;
        latency[k].unwrap_or(slowest) * busy
    };
    let positions: Vec<usize> = (0..c.len()).collect();
    let best = least(&positions, from, |&a, &b| cost(a).total_cmp(&cost(b)));
    c[best]
}

#[cfg(test)]
#[path = "algorithm_tests.rs"]
mod tests;
