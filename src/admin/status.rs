//! `GET /v1/status`: the whole picture as JSON — configuration version, DNS query totals,
//! regions, pools with their endpoints, target groups with their targets, overrides.
//! The dashboard and `roundhouse status` read it.

use super::control::{ConfigVersion, Runtime};
use crate::balancer::proxy::BalancerState;
use crate::balancer::status::{GroupStatus, mode_name};
use crate::config::EndpointMode;
use crate::dns::server::DnsState;
use serde::Serialize;

/// The document.
#[derive(Debug, Serialize)]
pub struct Status {
    /// The loaded configuration.
    pub config: ConfigStatus,
    /// DNS totals.
    pub dns: DnsStatus,
    /// Regions with their endpoints' health and share of answers.
    pub regions: Vec<RegionStatus>,
    /// Pools and their endpoints.
    pub pools: Vec<PoolStatus>,
    /// Target groups and their targets (empty without balancer listeners).
    pub target_groups: Vec<GroupStatus>,
    /// Overrides set through the API.
    pub overrides: Vec<OverrideStatus>,
    /// Scaling groups (empty without a scaler).
    pub scaling_groups: Vec<ScalingStatus>,
}

impl Status {
    /// The same document with every region, pool, group and count left out: what a page
    /// shows to a reader without the token.
    pub fn redacted(mut self) -> Status {
        self.config = ConfigStatus {
            version: crate::admin::control::ConfigVersion {
                hash: String::new(),
                loaded_at: 0,
            },
            reloads_ok: 0,
            reloads_failed: 0,
        };
        self.dns = DnsStatus {
            queries: 0,
            zones: Vec::new(),
            failed_open: 0,
        };
        self.regions.clear();
        self.pools.clear();
        self.target_groups.clear();
        self.overrides.clear();
        self.scaling_groups.clear();
        self
    }
}

/// A scaling group at a glance: capacity, instances by state, its latest activities.
#[derive(Debug, Serialize)]
pub struct ScalingStatus {
    /// Name.
    pub name: String,
    /// Region.
    pub region: String,
    /// Minimum capacity.
    pub min: u32,
    /// Desired capacity.
    pub desired: u32,
    /// Maximum capacity.
    pub max: u32,
    /// Instances launched and not ready yet.
    pub pending: usize,
    /// Instances in service.
    pub in_service: usize,
    /// Instances draining before termination.
    pub draining: usize,
    /// The latest activities, newest first (at most five).
    pub activities: Vec<crate::scaler::activity::Activity>,
}

/// The scaling part of the status document.
pub fn scaling(scaler: &crate::scaler::ScalerHandle) -> Vec<ScalingStatus> {
    use crate::scaler::status::InstanceState;
    scaler
        .groups()
        .into_iter()
        .map(|g| {
            let count = |s: InstanceState| g.instances.iter().filter(|i| i.state == s).count();
            let mut activities = scaler.activities(&g.name).unwrap_or_default();
            activities.sort_by_key(|a| std::cmp::Reverse(a.id));
            activities.truncate(5);
            ScalingStatus {
                pending: count(InstanceState::Pending),
                in_service: count(InstanceState::InService),
                draining: count(InstanceState::Draining),
                name: g.name,
                region: g.region,
                min: g.min,
                desired: g.desired,
                max: g.max,
                activities,
            }
        })
        .collect()
}

/// Version and reloads.
#[derive(Debug, Serialize)]
pub struct ConfigStatus {
    /// Hash and load time.
    #[serde(flatten)]
    pub version: ConfigVersion,
    /// Successful reloads since start.
    pub reloads_ok: u64,
    /// Failed reloads since start.
    pub reloads_failed: u64,
}

/// DNS totals.
#[derive(Debug, Serialize)]
pub struct DnsStatus {
    /// Queries answered.
    pub queries: u64,
    /// Queries per zone (`""`: outside every zone).
    pub zones: Vec<ZoneQueries>,
    /// Pool answers given while nothing was ready.
    pub failed_open: u64,
}

/// One zone's queries.
#[derive(Debug, Serialize)]
pub struct ZoneQueries {
    /// Origin.
    pub zone: String,
    /// Queries answered.
    pub queries: u64,
}

/// One region.
#[derive(Debug, Serialize)]
pub struct RegionStatus {
    /// Name.
    pub name: String,
    /// Endpoints in it (every pool).
    pub endpoints: usize,
    /// Of which ready.
    pub ready: usize,
    /// Addresses handed out in pool answers.
    pub answers: u64,
}

/// One pool.
#[derive(Debug, Serialize)]
pub struct PoolStatus {
    /// Name.
    pub name: String,
    /// Endpoints in configuration order.
    pub endpoints: Vec<EndpointStatus>,
}

/// One endpoint.
#[derive(Debug, Serialize)]
pub struct EndpointStatus {
    /// Address.
    pub address: String,
    /// Region name (`""` without one).
    pub region: String,
    /// Handed out now (enabled, override, health).
    pub ready: bool,
    /// `auto`, `up`, `down`, `drain` (configured or overridden), or `disabled`.
    pub mode: &'static str,
    /// Health check verdict (`None`: not probed).
    pub healthy: Option<bool>,
    /// Detail of the last probe result.
    pub last_probe: Option<String>,
    /// Health transitions so far.
    pub transitions: u64,
    /// Answers that carried this address.
    pub answers: u64,
}

/// One override.
#[derive(Debug, Serialize)]
pub struct OverrideStatus {
    /// `endpoint` or `target`.
    pub kind: &'static str,
    /// Pool or target group.
    pub owner: String,
    /// Address.
    pub address: String,
    /// `up`, `down` or `drain`.
    pub mode: &'static str,
}

/// Builds the document from the current snapshots.
pub fn status(dns: &DnsState, balancer: Option<&BalancerState>, runtime: &Runtime) -> Status {
    let pools = dns.pools.load();
    let health = dns.health.load();
    let cfg = pools.config();
    let mut regions: Vec<RegionStatus> = cfg
        .regions
        .iter()
        .map(|r| RegionStatus {
            name: r.name.clone(),
            endpoints: 0,
            ready: 0,
            answers: 0,
        })
        .collect();
    let mut pool_status = Vec::new();
    for (p, pool) in cfg.pools.iter().enumerate() {
        let mut endpoints = Vec::new();
        for (e, ep) in pool.endpoints.iter().enumerate() {
            let probe = pools.probe_key(p, e).map(|k| health.get(k));
            let healthy = probe.map(|s| s.is_some_and(|s| s.ready));
            let ready = ep.enabled
                && match ep.mode {
                    EndpointMode::Up => true,
                    EndpointMode::Down | EndpointMode::Drain => false,
                    EndpointMode::Auto => healthy.unwrap_or(true),
                };
            let answers = pools.answered(p, e);
            let region = pool.region_index.get(ep.region).copied().flatten();
            if let Some(r) = region.and_then(|r| regions.get_mut(r)) {
                r.endpoints += 1;
                r.ready += usize::from(ready);
                r.answers += answers;
            }
            endpoints.push(EndpointStatus {
                address: ep.addr.to_string(),
                region: pool.regions.get(ep.region).cloned().unwrap_or_default(),
                ready,
                mode: if ep.enabled {
                    mode_name(ep.mode)
                } else {
                    "disabled"
                },
                healthy,
                last_probe: probe.flatten().map(|s| s.last.clone()),
                transitions: probe.flatten().map_or(0, |s| s.changes),
                answers,
            });
        }
        pool_status.push(PoolStatus {
            name: pool.name.clone(),
            endpoints,
        });
    }
    let zones: Vec<ZoneQueries> = dns
        .metrics
        .per_zone()
        .into_iter()
        .map(|(zone, queries)| ZoneQueries { zone, queries })
        .collect();
    let (reloads_ok, reloads_failed) = runtime.reloads();
    Status {
        config: ConfigStatus {
            version: runtime.version(),
            reloads_ok,
            reloads_failed,
        },
        dns: DnsStatus {
            queries: zones.iter().map(|z| z.queries).sum(),
            zones,
            failed_open: pools.failed_open(),
        },
        regions,
        pools: pool_status,
        target_groups: balancer
            .map(|b| b.groups.load().status(&b.health.load()))
            .unwrap_or_default(),
        overrides: runtime
            .overrides
            .list()
            .into_iter()
            .map(|(kind, owner, address, mode)| OverrideStatus {
                kind,
                owner,
                address,
                mode: mode_name(mode),
            })
            .collect(),
        scaling_groups: Vec::new(),
    }
}
