//! Target groups and listeners of the regional load balancer: validation into domain types.

use super::ConfigError;
use super::file_listener::FileListener;
use super::file_target_group::FileTargetGroup;
use super::listener::Listener;
use super::pools::TRAFFIC_PORT;
use super::validate::Ctx;
use crate::health::CheckSpec;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// How a target group picks a target for a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// Ready targets in turn.
    RoundRobin,
    /// The ready target with the fewest requests in flight (ties: in turn).
    LeastOutstanding,
    /// Ready targets in turn, each as often as its weight, interleaved (smooth, as nginx).
    WeightedRoundRobin,
    /// The lowest requests in flight per unit of weight (ties: by weight, interleaved).
    WeightedLeastConnections,
    /// The same client address goes to the same target while it is ready (rendezvous hash).
    SourceIpHash,
    /// The same hash key (a header or cookie) goes to the same target while it is ready;
    /// requests without the key hash on the client address.
    ConsistentHash,
    /// Two distinct random ready targets; the one with fewer requests in flight.
    PowerOfTwo,
    /// The lowest recent response time times requests in flight; unmeasured targets first.
    FastestResponse,
}

/// What `consistent-hash` hashes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HashKey {
    /// A request header (name in lowercase).
    Header(String),
    /// A cookie of the `cookie` header.
    Cookie(String),
}

/// Passive failure ejection (outlier detection) of a target group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Passive {
    /// Consecutive connect failures or 5xx responses that eject a target (0: off).
    pub failures: u32,
    /// First ejection time; doubles per consecutive ejection, capped at ten times this.
    pub ejection: Duration,
}

/// Which cookie keeps a client on its target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StickyMode {
    /// A cookie the balancer sets.
    LbCookie,
    /// The application's cookie of this name.
    AppCookie(String),
}

/// Sticky sessions of a target group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stickiness {
    /// Which cookie.
    pub mode: StickyMode,
    /// How long a client stays with its target.
    pub duration: Duration,
}

/// A set of targets requests are forwarded to (AWS ELB target group).
#[derive(Debug, Clone, PartialEq)]
pub struct TargetGroup {
    /// Name.
    pub name: String,
    /// Target choice.
    pub algorithm: Algorithm,
    /// What `consistent-hash` hashes (`None` for every other algorithm).
    pub hash_key: Option<HashKey>,
    /// Health check; its port is each target's own port unless it names one.
    pub check: Option<Arc<CheckSpec>>,
    /// Targets (`address:port`).
    pub targets: Vec<SocketAddr>,
    /// Weight per target (the weighted algorithms).
    pub weights: Vec<u32>,
    /// Ramp-up time of a target that becomes ready (zero: off).
    pub slow_start: Duration,
    /// Draining time of a removed target.
    pub deregistration_delay: Duration,
    /// Passive failure ejection.
    pub passive: Passive,
    /// Sticky sessions.
    pub stickiness: Option<Stickiness>,
}

/// The balancer part of the configuration.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BalancerConfig {
    /// Target groups, sorted by name.
    pub target_groups: Vec<TargetGroup>,
    /// Listeners in configuration order.
    pub listeners: Vec<Listener>,
}

impl BalancerConfig {
    /// The listener named `name` (the running accept loops look theirs up on every request
    /// or connection, so that a reload's rules and groups apply at once).
    pub fn listener(&self, name: &str) -> Option<&Listener> {
        self.listeners.iter().find(|l| l.name == name)
    }
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
        let scaled = scaled.contains(name);
        target_groups.push(super::target_group::validate(ctx, name, g, checks, scaled)?);
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
