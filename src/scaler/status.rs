//! What a scaling group looks like now: capacity and instances with their lifecycle state,
//! published by the group's loop for the admin server.

use serde::Serialize;

/// Where an instance is in its lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum InstanceState {
    /// Launched, not ready yet.
    Pending,
    /// Registered; its metrics count once `warmed_up`.
    InService,
    /// Deregistered, waiting for the balancer's drain before it is terminated.
    Draining,
}

/// One instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InstanceStatus {
    /// Instance id.
    pub id: String,
    /// Where it serves.
    pub addr: String,
    /// Lifecycle state.
    pub state: InstanceState,
    /// In service and past the instance warm-up.
    pub warmed_up: bool,
    /// Launch template version.
    pub version: u32,
}

/// One scaling group.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct GroupStatus {
    /// Name.
    pub name: String,
    /// Region.
    pub region: String,
    /// Current minimum (scheduled actions change it).
    pub min: u32,
    /// Desired capacity.
    pub desired: u32,
    /// Current maximum.
    pub max: u32,
    /// Instances, oldest first.
    pub instances: Vec<InstanceStatus>,
    /// The instance refresh in progress, if any.
    pub refresh: Option<RefreshStatus>,
}

/// An instance refresh in progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RefreshStatus {
    /// Instances it replaces.
    pub total: u32,
    /// Of those, still running.
    pub remaining: u32,
}
