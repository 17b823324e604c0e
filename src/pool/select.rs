//! Choosing endpoints for one answer: a pure function of the pool, which endpoints are
//! ready, the answer size and a per-response ticket (a counter that rotates round robin and
//! seeds the pseudo-random draws). Steering orders regions, dials spill traffic onwards,
//! the policy picks among the ready endpoints of the chosen region.

use crate::config::{Policy, Pool, Spill, Steering};
use smallvec::SmallVec;

/// Endpoint indices: kept inline up to eight, so choosing an answer from pools (or regions)
/// of up to eight endpoints allocates nothing.
pub type Members = SmallVec<[usize; 8]>;

/// Most addresses a multivalue answer carries (Route 53's limit).
pub const MULTIVALUE_MAX: usize = 8;
/// How many of the next-ranked regions share a spill (`spill = "capacity"`).
pub const SPILL_REGIONS: usize = 2;

/// SplitMix64: a well-mixed 64-bit value from a counter (Steele, Lea, Flood 2014).
pub fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// Indices of the endpoints to answer with, in answer order; empty when none is eligible.
/// `order` ranks the pool's regions for this client (ignored without steering);
/// `eligible(i)` says whether endpoint `i` may be handed out (family, enabled, ready).
pub fn select(
    pool: &Pool,
    order: &[usize],
    eligible: impl Fn(usize) -> bool,
    answers: usize,
    ticket: u64,
) -> Members {
    let n = pool.endpoints.len();
    if pool.steering == Steering::None {
        let all: Members = (0..n).filter(|&i| eligible(i)).collect();
        return if all.is_empty() {
            all
        } else {
            by_policy(pool, &all, answers, ticket)
        };
    }
    let members = |r: usize| -> Members {
        (0..n)
            .filter(|&i| pool.endpoints[i].region == r && eligible(i))
            .collect()
    };
    let Some((&first, rest)) = order.split_first() else {
        return Members::new();
    };
    let mine = members(first);
    // The client's region answers unless it has nothing ready or its dial sheds this share
    // (Global Accelerator); with nowhere to go, it answers whatever its dial.
    let dial = pool.dials.get(first).copied().unwrap_or(100);
    let keeps = mix(ticket ^ 0xD1A1) % 100 < u64::from(dial);
    if !mine.is_empty() && keeps {
        return by_policy(pool, &mine, answers, ticket);
    }
    // Spill, not cascade: spread over the next regions in proportion to their capacity
    // (ready endpoints x weight), so the next-nearest region is not flooded alone; or, with
    // `spill = "next"`, everything to the next region (gdnsd, Route 53).
    let share = match pool.spill {
        Spill::Next => 1,
        Spill::Capacity => SPILL_REGIONS,
    };
    let others: SmallVec<[Members; SPILL_REGIONS]> = rest
        .iter()
        .map(|&r| members(r))
        .filter(|m| !m.is_empty())
        .take(share)
        .collect();
    if !mine.is_empty() && others.is_empty() {
        return by_policy(pool, &mine, answers, ticket);
    }
    let capacity = |m: &[usize]| {
        m.iter()
            .map(|&i| u64::from(pool.endpoints[i].weight.max(1)))
            .sum::<u64>()
    };
    let total: u64 = others.iter().map(|m| capacity(m)).sum();
    if total == 0 {
        return Members::new();
    }
    let mut roll = mix(ticket ^ 0x5911) % total;
    for m in &others {
        let c = capacity(m);
        if roll < c {
            return by_policy(pool, m, answers, ticket);
        }
        roll -= c;
    }
    Members::new()
}

fn by_policy(pool: &Pool, members: &[usize], answers: usize, ticket: u64) -> Members {
    match pool.policy {
        Policy::RoundRobin => rotate(members, answers, ticket),
        Policy::Weighted => weighted(pool, members, answers, ticket),
        Policy::Failover => rotate(&tier(pool, members), answers, ticket),
        Policy::Multivalue => shuffled(members, answers.min(MULTIVALUE_MAX), ticket),
    }
}

/// Every member once, starting at `ticket mod n`, at most `answers` of them.
fn rotate(members: &[usize], answers: usize, ticket: u64) -> Members {
    let n = members.len();
    let start = (ticket % n as u64) as usize;
    (0..n.min(answers))
        .map(|k| members[(start + k) % n])
        .collect()
}

/// The lowest priority tier with at least `min_ready` members, else the lowest with any.
fn tier(pool: &Pool, members: &[usize]) -> Members {
    let mut priorities: SmallVec<[u32; 16]> = members
        .iter()
        .map(|&i| pool.endpoints[i].priority)
        .collect();
    priorities.sort_unstable();
    priorities.dedup();
    let in_tier = |p: u32| -> Members {
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
fn weighted(pool: &Pool, members: &[usize], answers: usize, ticket: u64) -> Members {
    let all_zero = members.iter().all(|&i| pool.endpoints[i].weight == 0);
    let weight = |i: usize| {
        if all_zero {
            1
        } else {
            u64::from(pool.endpoints[i].weight)
        }
    };
    let mut left: Members = members.iter().copied().filter(|&i| weight(i) > 0).collect();
    let mut out = Members::new();
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
fn shuffled(members: &[usize], answers: usize, ticket: u64) -> Members {
    let mut v = Members::from_slice(members);
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
