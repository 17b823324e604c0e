//! Scaling groups (AWS Auto Scaling style): [`policy`] decides in pure functions, [`group`]
//! runs each group's loop, a [`provider::Provider`] ([`process`]) runs the instances, and
//! [`activity`] keeps the history. In-service instances are published as [`Registrations`];
//! [`apply`] adds them to the balancer's target groups and the DNS pools.

pub mod activity;
pub mod cron;
pub mod docker;
pub mod docker_api;
pub mod group;
pub mod metrics;
pub mod notify;
pub mod policy;
pub mod process;
pub mod provider;
pub mod status;

use crate::balancer::proxy::BalancerState;
use crate::config::{
    BalancerConfig, Config, Endpoint, EndpointMode, PoolsConfig, ScalingGroup, target_spec,
};
use crate::health::ProbeKey;
use activity::{Activity, History};
pub use group::CapacityUpdate;
use group::{Command, DrainView, Group, HealthView, Verdict};
use metrics::StatsView;
use provider::Provider;
use status::GroupStatus;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// What one scaling group has in service, and where it registers it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Registered {
    /// The group's region (pool endpoints get it).
    pub region: String,
    /// Target groups the instances are targets of.
    pub target_groups: Vec<String>,
    /// Pools the instances' addresses are endpoints of.
    pub pools: Vec<String>,
    /// In-service instances, sorted.
    pub instances: Vec<SocketAddr>,
}

/// Every scaling group's in-service instances (scaling group name -> registrations).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Registrations {
    /// By scaling group.
    pub groups: BTreeMap<String, Registered>,
}

/// Adds the registered instances to the target groups and pools they name (targets and
/// endpoints already configured stay; duplicates are skipped).
pub fn apply(regs: &Registrations, balancer: &mut BalancerConfig, pools: &mut PoolsConfig) {
    for r in regs.groups.values() {
        for name in &r.target_groups {
            let Some(g) = balancer.target_groups.iter_mut().find(|g| &g.name == name) else {
                continue;
            };
            for addr in &r.instances {
                if !g.targets.contains(addr) {
                    g.targets.push(*addr);
                    g.weights.push(1);
                }
            }
        }
        for name in &r.pools {
            let Some(p) = pools.pools.iter_mut().find(|p| &p.name == name) else {
                continue;
            };
            let region = match p.regions.iter().position(|x| *x == r.region) {
                Some(i) => i,
                None => {
                    p.regions.push(r.region.clone());
                    p.region_index
                        .push(pools.regions.iter().position(|x| x.name == r.region));
                    p.dials.push(100);
                    p.regions.len() - 1
                }
            };
            for addr in &r.instances {
                if !p.endpoints.iter().any(|e| e.addr == addr.ip()) {
                    p.endpoints.push(Endpoint {
                        addr: addr.ip(),
                        region,
                        weight: 1,
                        priority: 0,
                        enabled: true,
                        mode: EndpointMode::Auto,
                    });
                }
            }
        }
    }
}

/// `config` with the registered instances added.
pub fn with_registrations(config: &Config, regs: &Registrations) -> Config {
    let mut c = config.clone();
    apply(regs, &mut c.balancer, &mut c.pools);
    c
}

/// Why a request to the scaler failed.
#[derive(Debug, thiserror::Error)]
pub enum ScalerError {
    /// No such scaling group.
    #[error("no scaling group is named `{0}`")]
    NoGroup(String),
    /// The group's loop has stopped (shutting down).
    #[error("scaling group `{0}` is not running")]
    NotRunning(String),
    /// The group refused the request.
    #[error("scaling group `{group}`: {message}")]
    Refused {
        /// Group.
        group: String,
        /// Why.
        message: String,
    },
}

struct GroupHandle {
    commands: mpsc::Sender<Command>,
    history: Arc<Mutex<History>>,
    status: watch::Receiver<GroupStatus>,
}

/// Talks to the running scaling groups.
#[derive(Default)]
pub struct ScalerHandle {
    groups: BTreeMap<String, GroupHandle>,
}

impl ScalerHandle {
    /// Sets a group's desired capacity (manual scaling); it must lie within min and max.
    pub async fn set_desired(&self, group: &str, desired: u32) -> Result<(), ScalerError> {
        let capacity = CapacityUpdate {
            desired: Some(desired),
            ..CapacityUpdate::default()
        };
        self.update(group, capacity).await
    }

    /// Changes a group's min, max and desired capacity (`UpdateAutoScalingGroup`).
    pub async fn update(&self, group: &str, capacity: CapacityUpdate) -> Result<(), ScalerError> {
        self.ask(group, |reply| Command::Update { capacity, reply })
            .await
    }

    /// Starts an instance refresh of a group; returns how many instances it replaces.
    pub async fn start_refresh(&self, group: &str) -> Result<u32, ScalerError> {
        self.ask(group, |reply| Command::StartRefresh { reply })
            .await
    }

    /// Sends `group` the command `make` builds around a reply channel; its answer.
    async fn ask<T>(
        &self,
        group: &str,
        make: impl FnOnce(oneshot::Sender<Result<T, String>>) -> Command,
    ) -> Result<T, ScalerError> {
        let g = self
            .groups
            .get(group)
            .ok_or_else(|| ScalerError::NoGroup(group.to_string()))?;
        let (reply, rx) = oneshot::channel();
        let refused = |message: String| ScalerError::Refused {
            group: group.to_string(),
            message,
        };
        let stopped = || ScalerError::NotRunning(group.to_string());
        g.commands.send(make(reply)).await.map_err(|_| stopped())?;
        rx.await.map_err(|_| stopped())?.map_err(refused)
    }

    /// Every group's capacity and instances, by name.
    pub fn groups(&self) -> Vec<GroupStatus> {
        self.groups
            .values()
            .map(|g| g.status.borrow().clone())
            .collect()
    }

    /// A group's activities, oldest first.
    pub fn activities(&self, group: &str) -> Option<Vec<Activity>> {
        let g = self.groups.get(group)?;
        let h = g.history.lock().expect("not poisoned");
        Some(h.items().cloned().collect())
    }

    /// A group's activities as JSON, newest first.
    pub fn activities_json(&self, group: &str) -> Option<String> {
        let g = self.groups.get(group)?;
        let json = g.history.lock().expect("not poisoned").to_json();
        Some(json)
    }

    /// Hands changed configuration to the running groups; groups added or removed in the
    /// file take effect at the next start.
    pub fn reconfigure(&self, groups: &[ScalingGroup]) {
        for c in groups {
            match self.groups.get(&c.name) {
                Some(g) => {
                    let _ = g
                        .commands
                        .try_send(Command::Reconfigure(Box::new(c.clone())));
                }
                None => tracing::warn!(group = %c.name, "new scaling group: restart to start it"),
            }
        }
        for name in self.groups.keys() {
            if !groups.iter().any(|g| &g.name == name) {
                tracing::warn!(group = %name, "scaling group removed: restart to stop it");
            }
        }
    }
}

/// What a scaling group reads from the balancer.
pub struct Link {
    /// Health of its instances.
    pub health: HealthView,
    /// Counters of its target groups' targets.
    pub stats: StatsView,
    /// Drain completion of its instances.
    pub drains: DrainView,
}

/// Starts a loop per scaling group in `tasks`; instances are terminated on `shutdown`.
pub fn start<P: Provider>(
    groups: &[ScalingGroup],
    provider: Arc<P>,
    registrations: &watch::Sender<Registrations>,
    link: impl Fn(&ScalingGroup) -> Option<Link>,
    tasks: &mut JoinSet<()>,
    shutdown: &CancellationToken,
) -> ScalerHandle {
    let mut handle = ScalerHandle::default();
    for c in groups {
        let link = link(c);
        let (mut group, commands, history) = Group::new(
            c.clone(),
            provider.clone(),
            registrations.clone(),
            link.as_ref().map(|l| l.health.clone()),
        );
        if let Some(l) = link {
            group = group.with_balancer(l.stats, l.drains);
        }
        let status = group.status();
        if let Some(url) = &c.notify_url {
            let (tx, rx) = mpsc::channel(notify::QUEUE);
            history.lock().expect("not poisoned").notify_to(tx);
            let run = notify::run(c.name.clone(), url.clone(), rx, shutdown.clone());
            tasks.spawn(run);
        }
        tasks.spawn(group.run(shutdown.clone()));
        handle.groups.insert(
            c.name.clone(),
            GroupHandle {
                commands,
                history,
                status,
            },
        );
    }
    handle
}

/// The balancer as `group` sees it: health of its instances, counters of its target
/// groups, and drain completion.
pub fn balancer_link(state: Arc<BalancerState>, group: &ScalingGroup) -> Link {
    let names = group.target_groups.clone();
    let stats_state = state.clone();
    let stats_names = names.clone();
    let drain_state = state.clone();
    Link {
        health: balancer_health(state, group),
        stats: Arc::new(move || {
            let groups = stats_state.groups.load();
            stats_names
                .iter()
                .flat_map(|n| groups.target_stats(n))
                .collect()
        }),
        drains: Arc::new(move |addr| {
            let groups = drain_state.groups.load();
            names
                .iter()
                .filter_map(|n| groups.drained(n, addr))
                .collect()
        }),
    }
}

/// The balancer's view of an instance: unhealthy when a target group of `group` has probed
/// it and holds it not ready; pending while a checking target group has no verdict yet;
/// healthy when every checking target group holds it ready.
pub fn balancer_health(state: Arc<BalancerState>, group: &ScalingGroup) -> HealthView {
    let names = group.target_groups.clone();
    Arc::new(move |addr: SocketAddr| {
        let groups = state.groups.load();
        let table = state.health.load();
        let mut verdict = Verdict::Unchecked;
        for g in &groups.config().target_groups {
            let (true, Some(check)) = (names.contains(&g.name), &g.check) else {
                continue;
            };
            let key = ProbeKey {
                addr: addr.ip(),
                spec: target_spec(check, addr),
            };
            verdict = match table.get(&key) {
                Some(s) if s.observed && !s.ready => return Verdict::Unhealthy,
                Some(s) if s.ready && verdict != Verdict::Pending => Verdict::Healthy,
                _ => Verdict::Pending,
            };
        }
        verdict
    })
}
