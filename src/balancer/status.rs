//! What the admin server shows and steers of the target groups: per-target status and the
//! operator overrides (drain, force up, force down) applied to a snapshot.

use super::Groups;
use crate::config::EndpointMode;
use crate::health::HealthTable;
use serde::Serialize;
use std::net::SocketAddr;
use tokio::time::Instant;

/// One target as the status page shows it.
#[derive(Debug, Clone, Serialize)]
pub struct TargetStatus {
    /// Address.
    pub address: SocketAddr,
    /// Ready for new requests (override first, then health).
    pub ready: bool,
    /// `auto`, `up`, `down` or `drain`.
    pub mode: &'static str,
    /// Health check verdict (`None`: no health check).
    pub healthy: Option<bool>,
    /// Detail of the last probe result.
    pub last_probe: Option<String>,
    /// Requests or connections in flight.
    pub in_flight: u32,
    /// Taken out by passive failure detection right now.
    pub ejected: bool,
    /// Requests forwarded so far.
    pub requests: u64,
}

/// One target group as the status page shows it.
#[derive(Debug, Clone, Serialize)]
pub struct GroupStatus {
    /// Name.
    pub name: String,
    /// Targets in configuration order.
    pub targets: Vec<TargetStatus>,
}

/// Name of a mode in the JSON API and the metrics.
pub fn mode_name(mode: EndpointMode) -> &'static str {
    match mode {
        EndpointMode::Auto => "auto",
        EndpointMode::Up => "up",
        EndpointMode::Down => "down",
        EndpointMode::Drain => "drain",
    }
}

impl Groups {
    /// The snapshot with operator overrides: `mode(group, target)` for each target
    /// (`None` keeps `Auto`, the health check deciding).
    pub fn with_modes(mut self, mode: impl Fn(&str, SocketAddr) -> Option<EndpointMode>) -> Groups {
        for (tg, g) in self.config.target_groups.iter().zip(&mut self.groups) {
            for (i, &addr) in tg.targets.iter().enumerate() {
                g.modes[i] = mode(&tg.name, addr).unwrap_or(EndpointMode::Auto);
            }
        }
        self
    }

    /// Every target group and target with health, override, in flight and ejection.
    pub fn status(&self, health: &HealthTable) -> Vec<GroupStatus> {
        let now = Instant::now();
        self.config
            .target_groups
            .iter()
            .zip(&self.groups)
            .map(|(tg, g)| GroupStatus {
                name: tg.name.clone(),
                targets: (0..tg.targets.len())
                    .map(|i| {
                        let probe = g.keys[i].as_ref().map(|k| health.get(k));
                        let t = &g.targets[i];
                        TargetStatus {
                            address: tg.targets[i],
                            ready: g.is_ready(i, health),
                            mode: mode_name(g.modes[i]),
                            healthy: probe.map(|p| p.is_some_and(|p| p.ready)),
                            last_probe: probe.flatten().map(|p| p.last.clone()),
                            in_flight: t.in_flight(),
                            ejected: t.is_ejected(now),
                            requests: t.metrics.requests(),
                        }
                    })
                    .collect(),
            })
            .collect()
    }

    /// Health transitions and current readiness per probed target, as
    /// `(group, target, ready, transitions)`.
    pub fn health_series(&self, health: &HealthTable) -> Vec<(String, SocketAddr, bool, u64)> {
        let mut out = Vec::new();
        for (tg, g) in self.config.target_groups.iter().zip(&self.groups) {
            for (i, key) in g.keys.iter().enumerate() {
                if let Some(k) = key {
                    let p = health.get(k);
                    let ready = p.is_some_and(|p| p.ready);
                    out.push((
                        tg.name.clone(),
                        tg.targets[i],
                        ready,
                        p.map_or(0, |p| p.changes),
                    ));
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::balancer::Pick;
    use crate::balancer::testing::config;
    use crate::config::Algorithm;

    #[test]
    fn forced_down_and_drained_targets_get_no_picks() {
        let groups = Groups::new(config(Algorithm::RoundRobin, &[1, 1, 1]), None);
        let groups = groups.with_modes(|g, a| {
            assert_eq!(g, "g");
            match a.port() {
                9000 => Some(EndpointMode::Down),
                9001 => Some(EndpointMode::Drain),
                _ => None,
            }
        });
        let health = HealthTable::default();
        let req = Pick {
            client: "127.0.0.1".parse().unwrap(),
            key: None,
            tried: &[],
        };
        for _ in 0..10 {
            assert_eq!(groups.pick(0, &health, &req), Some(2));
        }
        let status = groups.status(&health);
        let modes: Vec<_> = status[0].targets.iter().map(|t| t.mode).collect();
        assert_eq!(modes, ["down", "drain", "auto"]);
        assert!(!status[0].targets[0].ready && status[0].targets[2].ready);
        assert_eq!(status[0].targets[2].healthy, None);
        assert!(!groups.available(0, 0, &health) && groups.available(0, 2, &health));
    }
}
