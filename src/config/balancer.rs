//! Target groups and listeners of the regional load balancer: validation into domain types.

use super::ConfigError;
use super::file_listener::FileListener;
use super::file_pools::FileTargetGroup;
use super::listener::Listener;
use super::pools::{TRAFFIC_PORT, check_named};
use super::validate::Ctx;
use crate::health::CheckSpec;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

/// How a target group picks a target for a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// Ready targets in turn.
    RoundRobin,
    /// The ready target with the fewest requests in flight (ties: in turn).
    LeastOutstanding,
    /// Ready targets in turn, each as often as its weight, interleaved (smooth, as nginx).
    WeightedRoundRobin,
    /// The same client address goes to the same target while it is ready (rendezvous hash).
    SourceIpHash,
}

/// A set of targets requests are forwarded to (AWS ELB target group).
#[derive(Debug, Clone, PartialEq)]
pub struct TargetGroup {
    /// Name.
    pub name: String,
    /// Target choice.
    pub algorithm: Algorithm,
    /// Health check; its port is each target's own port unless it names one.
    pub check: Option<Arc<CheckSpec>>,
    /// Targets (`address:port`).
    pub targets: Vec<SocketAddr>,
    /// Weight per target (`weighted-round-robin`).
    pub weights: Vec<u32>,
}

/// The balancer part of the configuration.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BalancerConfig {
    /// Target groups, sorted by name.
    pub target_groups: Vec<TargetGroup>,
    /// Listeners in configuration order.
    pub listeners: Vec<Listener>,
}

/// Validates `[target_group.NAME]` and `[[listener]]`.
pub fn validate(
    ctx: &Ctx<'_>,
    groups: &BTreeMap<String, FileTargetGroup>,
    listeners: &[FileListener],
    checks: &BTreeMap<String, Arc<CheckSpec>>,
    scaled: &[String],
) -> Result<BalancerConfig, ConfigError> {
    let mut target_groups = Vec::new();
    for (name, g) in groups {
        let key = |k: &str| format!("target_group.{name}.{k}");
        let algorithm = ctx.choose(
            &key("algorithm"),
            &g.algorithm,
            &[
                ("round-robin", Algorithm::RoundRobin),
                ("weighted-round-robin", Algorithm::WeightedRoundRobin),
                ("least-outstanding", Algorithm::LeastOutstanding),
                ("source-ip-hash", Algorithm::SourceIpHash),
            ],
        )?;
        let check = check_named(ctx, &key("health_check"), g.health_check.as_ref(), checks)?;
        let mut targets = Vec::new();
        let weights: Vec<u32> = g.targets.iter().map(|t| t.weight).collect();
        for t in &g.targets {
            let addr: SocketAddr = t.address.get_ref().parse().map_err(|_| {
                ctx.at(
                    &t.address,
                    format!(
                        "{}: `{}` is not an address:port",
                        key("targets"),
                        t.address.get_ref()
                    ),
                )
            })?;
            targets.push(addr);
        }
        if targets.is_empty() && !scaled.contains(name) {
            return Err(ctx.at(
                &g.algorithm,
                format!(
                    "{}: a target group needs at least one target (or a scaling group filling it)",
                    key("targets")
                ),
            ));
        }
        if algorithm == Algorithm::WeightedRoundRobin && weights.iter().all(|&w| w == 0) {
            return Err(ctx.at(
                &g.algorithm,
                format!("{}: every target has weight 0", key("targets")),
            ));
        }
        target_groups.push(TargetGroup {
            name: name.clone(),
            algorithm,
            check,
            targets,
            weights,
        });
    }
    let names: Vec<String> = target_groups.iter().map(|g| g.name.clone()).collect();
    let listeners = super::listener::validate(ctx, listeners, &names)?;
    Ok(BalancerConfig {
        target_groups,
        listeners,
    })
}

/// The spec a target is probed with: the check, on the target's port unless it names one.
pub fn target_spec(check: &Arc<CheckSpec>, target: SocketAddr) -> Arc<CheckSpec> {
    if check.port == TRAFFIC_PORT {
        Arc::new(CheckSpec {
            port: target.port(),
            ..(**check).clone()
        })
    } else {
        check.clone()
    }
}
