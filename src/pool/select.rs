//! Choosing endpoints for one answer: a pure function of the pool, which endpoints are
//! ready, the answer size and a per-response ticket (a counter that rotates round robin and
//! seeds the pseudo-random draws). Steering orders regions, dials spill traffic onwards,
//! the policy picks among the ready endpoints of the chosen region.

use crate::config::{Policy, Pool, Steering};

/// Most addresses a multivalue answer carries (Route 53's limit).
pub const MULTIVALUE_MAX: usize = 8;

/// SplitMix64: a well-mixed 64-bit value from a counter (Steele, Lea, Flood 2014).
pub fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// Indices of the endpoints to answer with, in answer order; empty when none is eligible.
/// `eligible(i)` says whether endpoint `i` may be handed out (family, enabled, ready).
pub fn select(
    pool: &Pool,
    eligible: impl Fn(usize) -> bool,
    answers: usize,
    ticket: u64,
) -> Vec<usize> {
    let n = pool.endpoints.len();
    let groups: Vec<Vec<usize>> = match pool.steering {
        Steering::None => vec![(0..n).filter(|&i| eligible(i)).collect()],
        Steering::Ordered => (0..pool.regions.len())
            .map(|r| {
                (0..n)
                    .filter(|&i| pool.endpoints[i].region == r && eligible(i))
                    .collect()
            })
            .collect(),
    };
    let roll = mix(ticket ^ 0xD1A1) % 100;
    for (g, members) in groups.iter().enumerate() {
        if members.is_empty() {
            continue;
        }
        // A dial below 100 keeps that share here and spills the rest to the next region that
        // can answer (Global Accelerator); with nowhere to spill, this region answers.
        let dial = pool.dials.get(g).copied().unwrap_or(100);
        let elsewhere = groups[g + 1..].iter().any(|m| !m.is_empty());
        if u64::from(dial) <= roll && elsewhere {
            continue;
        }
        return by_policy(pool, members, answers, ticket);
    }
    Vec::new()
}

fn by_policy(pool: &Pool, members: &[usize], answers: usize, ticket: u64) -> Vec<usize> {
    match pool.policy {
        Policy::RoundRobin => rotate(members, answers, ticket),
        Policy::Weighted => weighted(pool, members, answers, ticket),
        Policy::Failover => rotate(&tier(pool, members), answers, ticket),
        Policy::Multivalue => shuffled(members, answers.min(MULTIVALUE_MAX), ticket),
    }
}

/// Every member once, starting at `ticket mod n`, at most `answers` of them.
fn rotate(members: &[usize], answers: usize, ticket: u64) -> Vec<usize> {
    let n = members.len();
    let start = (ticket % n as u64) as usize;
    (0..n.min(answers))
        .map(|k| members[(start + k) % n])
        .collect()
}

/// The lowest priority tier with at least `min_ready` members, else the lowest with any.
fn tier(pool: &Pool, members: &[usize]) -> Vec<usize> {
    let mut priorities: Vec<u32> = members
        .iter()
        .map(|&i| pool.endpoints[i].priority)
        .collect();
    priorities.sort_unstable();
    priorities.dedup();
    let in_tier = |p: u32| -> Vec<usize> {
        members
            .iter()
            .copied()
            .filter(|&i| pool.endpoints[i].priority == p)
            .collect()
    };
    priorities
        .iter()
        .map(|&p| in_tier(p))
        .find(|t| t.len() >= pool.min_ready)
        .unwrap_or_else(|| in_tier(priorities[0]))
}

/// `answers` members drawn without replacement in proportion to weight (0 = never, unless
/// every weight is 0: then all count equally, as Route 53 does).
fn weighted(pool: &Pool, members: &[usize], answers: usize, ticket: u64) -> Vec<usize> {
    let all_zero = members.iter().all(|&i| pool.endpoints[i].weight == 0);
    let weight = |i: usize| {
        if all_zero {
            1
        } else {
            u64::from(pool.endpoints[i].weight)
        }
    };
    let mut left: Vec<usize> = members.iter().copied().filter(|&i| weight(i) > 0).collect();
    let mut out = Vec::new();
    let mut state = ticket;
    while out.len() < answers && !left.is_empty() {
        state = mix(state);
        let total: u64 = left.iter().map(|&i| weight(i)).sum();
        let mut r = state % total;
        let pos = left.iter().position(|&i| {
            let w = weight(i);
            if r < w {
                true
            } else {
                r -= w;
                false
            }
        });
        out.push(left.remove(pos.expect("r < total")));
    }
    out
}

/// Up to `answers` members in a pseudo-random order (Fisher-Yates).
fn shuffled(members: &[usize], answers: usize, ticket: u64) -> Vec<usize> {
    let mut v = members.to_vec();
    let mut state = ticket;
    for i in (1..v.len()).rev() {
        state = mix(state);
        v.swap(i, (state % (i as u64 + 1)) as usize);
    }
    v.truncate(answers);
    v
}

#[cfg(test)]
mod tests;
