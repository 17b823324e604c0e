//! Ranking a pool's regions for one client (pure: no clock, no I/O), and the ECS scope of
//! the decision: the prefix length of the network that decided it.

use super::geo::Place;
use super::measured::Measurement;
use super::{Client, covers};
use crate::config::{LatencyEntry, Pool, Region, Steering};
use crate::pool::select::Members;
use smallvec::SmallVec;
use std::cell::RefCell;

/// Regions of a pool, best first, and how much of the client's address decided it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ranking {
    /// Indices into the pool's `regions`, best first.
    pub order: Members,
    /// ECS scope prefix length (0: the answer does not depend on the client).
    pub scope: u8,
}

/// The last ranking made for a kept query, with the client it was for and the version of the
/// geo database it was made with (0: none): a geo or proximity ranking depends on nothing
/// else while the pools' configuration stays. With ECS the client is the same at every use;
/// without, it is each query's source, and a resolver's queries come in runs.
#[derive(Debug, Default)]
pub struct RankMemo(RefCell<Option<(u64, Client, Ranking)>>);

impl RankMemo {
    /// The ranking kept for `client` and geo database version `geo`, if any.
    pub fn get(&self, geo: u64, client: &Client) -> Option<Ranking> {
        match &*self.0.borrow() {
            Some((v, c, r)) if *v == geo && c == client => Some(r.clone()),
            _ => None,
        }
    }

    /// Keeps `ranking`, made for `client` with geo database version `geo`.
    pub fn put(&self, geo: u64, client: &Client, ranking: &Ranking) {
        *self.0.borrow_mut() = Some((geo, *client, ranking.clone()));
    }
}

/// Ranks the pool's regions for `client`; `place` is the geo database's answer, if any;
/// `measured` are the fresh measured latency entries that hold the client.
pub fn rank(
    pool: &Pool,
    regions: &[Region],
    latency: &[LatencyEntry],
    measured: &[&Measurement],
    client: &Client,
    place: Option<&Place<'_>>,
) -> Ranking {
    let n = pool.regions.len();
    let info = |i: usize| pool.region_index[i].map(|g| &regions[g]);
    if matches!(pool.steering, Steering::None | Steering::Ordered) || n == 0 {
        return Ranking {
            order: (0..n).collect(),
            scope: 0,
        };
    }
    // Operator overrides first: the longest configured network holding the client.
    let overridden = (0..n)
        .flat_map(|i| {
            info(i)
                .into_iter()
                .flat_map(move |r| r.networks.iter().map(move |net| (i, net)))
        })
        .filter(|(_, net)| covers(net, client))
        .max_by_key(|(_, net)| net.prefix);
    if let Some((i, net)) = overridden {
        return Ranking {
            order: nearest_first(pool, regions, i),
            scope: net.prefix,
        };
    }
    let db_scope = place.map(|p| p.prefix);
    match pool.steering {
        Steering::Proximity => {
            if let Some(at) = place.and_then(|p| p.coordinates) {
                return by_distance(pool, regions, at, db_scope.unwrap_or(client.prefix));
            }
        }
        Steering::Latency => {
            if let Some(r) = by_latency(pool, latency, measured, client) {
                return r;
            }
        }
        _ => {}
    }
    geo(pool, regions, client, place)
}

/// Country, then continent, then the pool's first region; the rest nearest first.
fn geo(pool: &Pool, regions: &[Region], client: &Client, place: Option<&Place<'_>>) -> Ranking {
    let info = |i: usize| pool.region_index[i].map(|g| &regions[g]);
    let n = pool.regions.len();
    let by = |f: &dyn Fn(&Region) -> bool| (0..n).find(|&i| info(i).is_some_and(f));
    let country = place.and_then(|p| p.country);
    let continent = place.and_then(|p| p.continent);
    // The database's codes as it spells them; the configuration's are upper case.
    let same = |code: &str, configured: &str| code.eq_ignore_ascii_case(configured);
    let chosen = country
        .and_then(|c| by(&|r: &Region| r.countries.iter().any(|x| same(c, x))))
        .or_else(|| {
            continent.and_then(|c| by(&|r: &Region| r.continent.iter().any(|x| same(c, x))))
        })
        .unwrap_or(0);
    // With a database, its network decided (also "no match"); without one, only the
    // configured networks could have, so a default answer is the same for everyone unless
    // some region has networks configured.
    let scope = match place {
        Some(p) => p.prefix,
        None if (0..n).any(|i| info(i).is_some_and(|r| !r.networks.is_empty())) => client.prefix,
        None => 0,
    };
    Ranking {
        order: nearest_first(pool, regions, chosen),
        scope,
    }
}

/// `first`, then the other regions by distance from it (pool order where coordinates lack).
fn nearest_first(pool: &Pool, regions: &[Region], first: usize) -> Members {
    let coords = |i: usize| pool.region_index[i].and_then(|g| regions[g].coordinates);
    let rest = (0..pool.regions.len()).filter(|&i| i != first);
    let Some(from) = coords(first) else {
        return std::iter::once(first).chain(rest).collect();
    };
    // Each distance once, not once per comparison; the stable sort keeps pool order on ties.
    let mut by_km: SmallVec<[(f64, usize); 8]> = rest
        .map(|i| (coords(i).map_or(f64::MAX, |c| distance_km(from, c)), i))
        .collect();
    by_km.sort_by(|a, b| a.0.total_cmp(&b.0));
    std::iter::once(first)
        .chain(by_km.into_iter().map(|(_, i)| i))
        .collect()
}

fn by_distance(pool: &Pool, regions: &[Region], at: (f64, f64), scope: u8) -> Ranking {
    let mut order: Members = (0..pool.regions.len()).collect();
    let cost = |i: usize| match pool.region_index[i].map(|g| &regions[g]) {
        Some(Region {
            coordinates: Some(c),
            bias_km,
            ..
        }) => distance_km(at, *c) - bias_km,
        _ => f64::MAX,
    };
    order.sort_by(|&a, &b| cost(a).total_cmp(&cost(b)));
    Ranking { order, scope }
}

/// Regions with a latency entry for the client, fastest first; then the rest in pool order.
/// Per region the entry with the longest matching prefix counts, and at the same prefix a
/// measured entry replaces a configured one. `None` when no entry matches.
fn by_latency(
    pool: &Pool,
    latency: &[LatencyEntry],
    measured: &[&Measurement],
    client: &Client,
) -> Option<Ranking> {
    // Per region: (prefix, measured, rtt); a larger (prefix, measured) pair wins.
    let mut best: Vec<Option<(u8, bool, f64)>> = vec![None; pool.regions.len()];
    let mut scope = 0;
    let mut offer = |i: usize, prefix: u8, is_measured: bool, rtt: f64| {
        if best[i].is_none_or(|(p, m, _)| (prefix, is_measured) > (p, m)) {
            best[i] = Some((prefix, is_measured, rtt));
        }
        scope = scope.max(prefix);
    };
    for e in latency.iter().filter(|e| covers(&e.network, client)) {
        if let Some(i) = pool.region_index.iter().position(|g| *g == Some(e.region)) {
            offer(i, e.network.prefix, false, e.rtt_ms);
        }
    }
    for m in measured.iter().filter(|m| covers(&m.network, client)) {
        if let Some(i) = pool.regions.iter().position(|r| **r == *m.region) {
            offer(i, m.network.prefix, true, m.rtt_ms);
        }
    }
    if best.iter().all(Option::is_none) {
        return None;
    }
    let mut order: Members = (0..best.len()).collect();
    order.sort_by(|&a, &b| {
        let rtt = |i: usize| best[i].map(|(_, _, r)| r).unwrap_or(f64::MAX);
        rtt(a).total_cmp(&rtt(b))
    });
    Some(Ranking { order, scope })
}

/// Great-circle distance (haversine, mean Earth radius).
pub fn distance_km(a: (f64, f64), b: (f64, f64)) -> f64 {
    let (la1, lo1, la2, lo2) = (
        a.0.to_radians(),
        a.1.to_radians(),
        b.0.to_radians(),
        b.1.to_radians(),
    );
    let h = ((la2 - la1) / 2.0).sin().powi(2)
        + la1.cos() * la2.cos() * ((lo2 - lo1) / 2.0).sin().powi(2);
    2.0 * 6371.0 * h.sqrt().asin()
}

#[cfg(test)]
mod tests;
