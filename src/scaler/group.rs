//! The control loop of one scaling group: keeps as many instances as desired, moves them
//! through their lifecycle, evaluates policies every period and runs scheduled actions.
//!
//! Lifecycle: launch -> pending -> in service (first successful readiness check; registered
//! with the target groups and pools) -> warmed up (metrics count) -> on scale-in draining
//! (deregistered, terminated after the deregistration delay). An instance that exits, or
//! fails its balancer health check after the grace period, is terminated and replaced.

use super::activity::{Clock, History, Status, clock};
use super::metrics::{Deltas, StatsView};
use super::policy::PolicyState;
use super::provider::{LaunchRequest, Provider};
use super::status::{GroupStatus, InstanceState, InstanceStatus, RefreshStatus};
use super::{Registered, Registrations};
use crate::config::{HealthCheckType, ScalingGroup};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

/// How often instances are checked (exits, readiness, health, drains).
pub const TICK: Duration = Duration::from_millis(200);
/// Least time a pending instance gets to become ready before it is replaced.
pub const PENDING_LIMIT: Duration = Duration::from_secs(10);
/// Wait after a failed launch before the next attempt.
pub const LAUNCH_BACKOFF: Duration = Duration::from_secs(5);

/// What the balancer's health checks say about an instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// No target group of the scaling group checks it.
    Unchecked,
    /// Not probed yet, or not healthy yet.
    Pending,
    /// Every checking target group holds it ready.
    Healthy,
    /// A target group's check fails for it.
    Unhealthy,
}

/// Balancer health of an instance.
pub type HealthView = Arc<dyn Fn(SocketAddr) -> Verdict + Send + Sync>;
/// Per target group of the scaling group, a token the balancer cancels once it has drained
/// the instance at this address (taken while the instance is still registered).
pub type DrainView = Arc<dyn Fn(SocketAddr) -> Vec<CancellationToken> + Send + Sync>;

/// New size limits and desired capacity of a group (AWS `UpdateAutoScalingGroup`); a field
/// left out keeps its value.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct CapacityUpdate {
    /// Minimum size.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min: Option<u32>,
    /// Maximum size.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max: Option<u32>,
    /// Desired capacity: must lie within the (new) min and max; left out, the current one
    /// is moved into them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub desired: Option<u32>,
}

/// Requests to a running group.
#[derive(Debug)]
pub enum Command {
    /// Changes min, max and desired capacity.
    Update {
        /// What changes.
        capacity: CapacityUpdate,
        /// The outcome.
        reply: oneshot::Sender<Result<(), String>>,
    },
    /// Starts an instance refresh: every instance the group has now is replaced, one at a
    /// time, launch before terminate. Replies with how many instances it replaces.
    StartRefresh {
        /// The outcome.
        reply: oneshot::Sender<Result<u32, String>>,
    },
    /// The configuration changed (reload).
    Reconfigure(Box<ScalingGroup>),
}

#[derive(Debug, Clone)]
struct Instance {
    id: String,
    addr: SocketAddr,
    zone: IpAddr,
    version: u32,
    launched: Instant,
    in_service: Option<Instant>,
    draining_until: Option<Instant>,
    /// Cancelled when the balancer has drained the instance (from every target group).
    drained: Vec<CancellationToken>,
    /// The activity in progress for it (launch, then termination).
    activity: u64,
}

/// An instance refresh in progress.
#[derive(Debug, Clone)]
struct Refresh {
    /// Instances still to replace, oldest first.
    old: Vec<String>,
    /// How many it replaces in all.
    total: u32,
    /// Its activity.
    activity: u64,
}

/// One scaling group and everything it runs.
pub struct Group<P: Provider> {
    config: ScalingGroup,
    provider: Arc<P>,
    registrations: watch::Sender<Registrations>,
    health: Option<HealthView>,
    stats: Option<StatsView>,
    drains: Option<DrainView>,
    deltas: Deltas,
    status: watch::Sender<GroupStatus>,
    history: Arc<Mutex<History>>,
    commands: mpsc::Receiver<Command>,
    desired: u32,
    min: u32,
    max: u32,
    instances: Vec<Instance>,
    states: Vec<PolicyState>,
    schedule: Vec<Option<Instant>>,
    clock: Clock,
    next_id: u64,
    cause: Option<String>,
    backoff_until: Option<Instant>,
    published: Option<Vec<SocketAddr>>,
    refresh: Option<Refresh>,
}

impl<P: Provider> Group<P> {
    /// A group that is not running yet, with its history and the sender of its commands.
    pub fn new(
        config: ScalingGroup,
        provider: Arc<P>,
        registrations: watch::Sender<Registrations>,
        health: Option<HealthView>,
    ) -> (Group<P>, mpsc::Sender<Command>, Arc<Mutex<History>>) {
        let (tx, rx) = mpsc::channel(16);
        let history = Arc::new(Mutex::new(History::new(
            &config.name,
            config.activity_history,
        )));
        let clock = Clock::now();
        let group = Group {
            desired: config.desired,
            min: config.min,
            max: config.max,
            states: vec![PolicyState::default(); config.policies.len()],
            schedule: Vec::new(),
            config,
            provider,
            registrations,
            health,
            stats: None,
            drains: None,
            deltas: Deltas::default(),
            status: watch::Sender::new(GroupStatus::default()),
            history: history.clone(),
            commands: rx,
            instances: Vec::new(),
            clock,
            next_id: 1,
            cause: None,
            backoff_until: None,
            published: None,
            refresh: None,
        };
        group.report_status();
        (group, tx, history)
    }

    /// Measures the balancer metrics with `stats` and ends drains as soon as the balancer
    /// has drained an instance (`drains`) rather than after the whole deregistration delay.
    pub fn with_balancer(mut self, stats: StatsView, drains: DrainView) -> Group<P> {
        self.stats = Some(stats);
        self.drains = Some(drains);
        self
    }

    /// Its capacity and instances, updated as they change.
    pub fn status(&self) -> watch::Receiver<GroupStatus> {
        self.status.subscribe()
    }

    /// Publishes the capacity and instances when they changed.
    fn report_status(&self) {
        let now = Instant::now();
        let warmup = self.config.instance_warmup;
        let next = GroupStatus {
            name: self.config.name.clone(),
            region: self.config.region.clone(),
            min: self.min,
            desired: self.desired,
            max: self.max,
            instances: self
                .instances
                .iter()
                .map(|i| InstanceStatus {
                    id: i.id.clone(),
                    addr: i.addr.to_string(),
                    state: match (i.in_service, i.draining_until) {
                        (_, Some(_)) => InstanceState::Draining,
                        (Some(_), None) => InstanceState::InService,
                        (None, None) => InstanceState::Pending,
                    },
                    warmed_up: i.in_service.is_some_and(|t| now >= t + warmup),
                    version: i.version,
                })
                .collect(),
            refresh: self.refresh.as_ref().map(|r| RefreshStatus {
                total: r.total,
                remaining: r.old.len() as u32,
            }),
        };
        self.status.send_if_modified(|s| {
            let changed = *s != next;
            *s = next;
            changed
        });
    }

    /// Runs until `shutdown`, then deregisters and terminates every instance.
    pub async fn run(mut self, shutdown: CancellationToken) {
        let unix = self.unix(Instant::now());
        self.cause = Some(format!(
            "At {} the group was created with desired capacity {}.",
            clock(unix),
            self.desired
        ));
        self.plan_schedule();
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let period = self.config.period;
        let mut evaluate = tokio::time::interval_at(Instant::now() + period, period);
        evaluate.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            let next = self
                .schedule
                .iter()
                .enumerate()
                .filter_map(|(i, t)| t.map(|t| (t, i)))
                .min();
            let at = next.map(|(t, _)| t).unwrap_or_else(Instant::now);
            tokio::select! {
                _ = tick.tick() => self.lifecycle().await,
                _ = evaluate.tick() => self.evaluate(),
                Some(c) = self.commands.recv() => self.command(c),
                () = tokio::time::sleep_until(at), if next.is_some() => {
                    self.scheduled(next.expect("guarded").1);
                }
                () = shutdown.cancelled() => break,
            }
            self.report_status();
        }
        self.stop_all().await;
    }

    fn unix(&self, at: Instant) -> f64 {
        self.clock.unix(at)
    }

    fn at(&self, now: Instant) -> String {
        clock(self.unix(now))
    }

    fn active(&self) -> impl Iterator<Item = &Instance> {
        self.instances.iter().filter(|i| i.draining_until.is_none())
    }

    fn set_desired(&mut self, desired: u32, cause: String) {
        if desired == self.desired {
            return;
        }
        tracing::info!(group = %self.config.name, from = self.desired, to = desired, "{cause}");
        self.desired = desired;
        self.cause = Some(cause);
    }

    /// Every tick: exits, readiness, health, drains, then launches or scale-in.
    async fn lifecycle(&mut self) {
        self.reap_exited();
        self.check_pending().await;
        self.check_health().await;
        self.finish_drains().await;
        self.reconcile().await;
        self.publish();
    }

    fn reap_exited(&mut self) {
        let now = Instant::now();
        let exited: Vec<Instance> = self
            .instances
            .iter()
            .filter(|i| !self.provider.is_running(&i.id))
            .cloned()
            .collect();
        for i in exited {
            self.instances.retain(|x| x.id != i.id);
            let unix = self.unix(now);
            let mut h = self.history.lock().expect("not poisoned");
            if i.draining_until.is_some() {
                h.finish(i.activity, Status::Successful, unix);
                continue;
            }
            if i.in_service.is_none() {
                let msg = Some("the instance exited before it was ready".to_string());
                h.finish_with(i.activity, Status::Failed, msg, unix);
            }
            h.record(
                format!("Terminating instance: {}", i.id),
                format!(
                    "At {} an instance was taken out of service in response to a process \
                     status check failure (the instance exited).",
                    clock(unix)
                ),
                Status::Successful,
                unix,
            );
        }
    }

    async fn check_pending(&mut self) {
        let now = Instant::now();
        let limit = self.config.health_check_grace_period.max(PENDING_LIMIT);
        let pending: Vec<Instance> = self
            .active()
            .filter(|i| i.in_service.is_none())
            .cloned()
            .collect();
        for i in pending {
            if self.provider.is_ready(&i.id, i.addr).await {
                let unix = self.unix(Instant::now());
                self.history.lock().expect("not poisoned").finish(
                    i.activity,
                    Status::Successful,
                    unix,
                );
                tracing::info!(group = %self.config.name, instance = %i.id, addr = %i.addr, "instance in service");
                if let Some(x) = self.instances.iter_mut().find(|x| x.id == i.id) {
                    x.in_service = Some(Instant::now());
                }
            } else if now >= i.launched + limit {
                let msg = format!("not ready {} s after launch", limit.as_secs());
                self.replace(&i, &msg, now).await;
            }
        }
    }

    async fn check_health(&mut self) {
        let Some(health) = self.health.clone() else {
            return;
        };
        if self.config.health_check_type != HealthCheckType::Balancer {
            return;
        }
        let now = Instant::now();
        let grace = self.config.health_check_grace_period;
        let failing: Vec<Instance> = self
            .active()
            .filter(|i| i.in_service.is_some() && now >= i.launched + grace)
            .filter(|i| health(i.addr) == Verdict::Unhealthy)
            .cloned()
            .collect();
        for i in failing {
            self.replace(&i, "a balancer health check failure", now)
                .await;
        }
    }

    /// Terminates an unhealthy instance at once; reconcile launches its replacement.
    async fn replace(&mut self, i: &Instance, why: &str, now: Instant) {
        let unix = self.unix(now);
        {
            let mut h = self.history.lock().expect("not poisoned");
            if i.in_service.is_none() {
                h.finish_with(i.activity, Status::Failed, Some(why.to_string()), unix);
            }
            h.record(
                format!("Terminating instance: {}", i.id),
                format!(
                    "At {} an instance was taken out of service in response to {why}.",
                    clock(unix)
                ),
                Status::Successful,
                unix,
            );
        }
        self.instances.retain(|x| x.id != i.id);
        self.publish();
        self.provider.terminate(&i.id).await;
    }

    async fn finish_drains(&mut self) {
        let now = Instant::now();
        let done: Vec<Instance> = self
            .instances
            .iter()
            .filter(|i| {
                i.draining_until.is_some_and(|u| now >= u)
                    || (!i.drained.is_empty() && i.drained.iter().all(|t| t.is_cancelled()))
            })
            .cloned()
            .collect();
        for i in done {
            self.provider.terminate(&i.id).await;
            self.instances.retain(|x| x.id != i.id);
            let unix = self.unix(Instant::now());
            self.history
                .lock()
                .expect("not poisoned")
                .finish(i.activity, Status::Successful, unix);
        }
    }

    async fn reconcile(&mut self) {
        let now = Instant::now();
        let active = self.active().count() as u32;
        // An instance refresh runs one instance above the desired capacity.
        let target = self.desired + self.refresh_step(now).await;
        let prefix = self.cause.take().map(|c| c + " ").unwrap_or_default();
        if active < target && self.backoff_until.is_none_or(|b| now >= b) {
            let cause = match active < self.desired {
                true => format!(
                    "{prefix}At {} an instance was started in response to a difference \
                     between desired and actual capacity, increasing the capacity from \
                     {active} to {}.",
                    self.at(now),
                    self.desired
                ),
                false => format!(
                    "{prefix}At {} an instance was started in response to an instance refresh.",
                    self.at(now)
                ),
            };
            for _ in active..target {
                if !self.launch(cause.clone(), now).await {
                    break;
                }
            }
        } else if active > target {
            for _ in target..active {
                let Some(victim) = self.victim() else { break };
                let cause = format!(
                    "{prefix}At {t} an instance was taken out of service in response to a \
                     difference between desired and actual capacity, shrinking the capacity \
                     from {active} to {}. At {t} instance {} was selected for termination.",
                    self.desired,
                    victim.id,
                    t = self.at(now),
                );
                self.scale_in(victim, cause, now).await;
            }
        }
    }

    /// Moves an instance refresh on; returns the instances it runs above the desired
    /// capacity (1 while it lasts). Once every instance launched since it started is in
    /// service, warmed up and healthy at the balancer, the oldest instance it replaces
    /// drains; the free slot then launches the next replacement.
    async fn refresh_step(&mut self, now: Instant) -> u32 {
        let Some(mut r) = self.refresh.take() else {
            return 0;
        };
        r.old.retain(|id| self.active().any(|i| &i.id == id));
        if r.old.is_empty() {
            let unix = self.unix(now);
            let mut h = self.history.lock().expect("not poisoned");
            h.finish(r.activity, Status::Successful, unix);
            tracing::info!(group = %self.config.name, replaced = r.total, "instance refresh done");
            return 0;
        }
        let warmup = self.config.instance_warmup;
        let healthy = |i: &Instance| {
            let v = self
                .health
                .as_ref()
                .map_or(Verdict::Unchecked, |h| h(i.addr));
            matches!(v, Verdict::Healthy | Verdict::Unchecked)
        };
        let settled = self
            .active()
            .filter(|i| !r.old.contains(&i.id))
            .all(|i| i.in_service.is_some_and(|t| now >= t + warmup) && healthy(i));
        let active = self.active().count() as u32;
        let victim = self
            .active()
            .filter(|i| r.old.contains(&i.id))
            .min_by_key(|i| i.launched)
            .cloned();
        self.refresh = Some(r);
        if let (true, true, Some(victim)) = (settled, active > self.desired, victim) {
            let cause = format!(
                "At {t} an instance was taken out of service in response to an instance \
                 refresh. At {t} instance {} was selected for termination.",
                victim.id,
                t = self.at(now),
            );
            self.scale_in(victim, cause, now).await;
        }
        1
    }

    /// Starts an instance refresh of every active instance.
    fn start_refresh(&mut self, now: Instant) -> Result<u32, String> {
        if self.refresh.is_some() {
            return Err("an instance refresh is already in progress".into());
        }
        let mut old: Vec<&Instance> = self.active().collect();
        old.sort_by_key(|i| i.launched);
        let old: Vec<String> = old.into_iter().map(|i| i.id.clone()).collect();
        let total = old.len() as u32;
        let unix = self.unix(now);
        let activity = self.history.lock().expect("not poisoned").start(
            "Instance refresh".into(),
            format!(
                "At {} a user request started an instance refresh of {total} instances.",
                clock(unix)
            ),
            unix,
        );
        tracing::info!(group = %self.config.name, total, "instance refresh started");
        self.refresh = Some(Refresh {
            old,
            total,
            activity,
        });
        Ok(total)
    }

    async fn launch(&mut self, cause: String, now: Instant) -> bool {
        let id = format!("{}-{}", self.config.name, self.next_id);
        self.next_id += 1;
        let template = self.config.launch_template.clone();
        // The address (zone) with the fewest instances; of those, one no draining instance
        // still holds (with a fixed port, a new instance could not bind there yet).
        let zone = *template
            .addresses
            .iter()
            .min_by_key(|a| {
                let active = self.active().filter(|i| i.zone == **a).count();
                (
                    active,
                    self.instances.iter().filter(|i| i.zone == **a).count(),
                )
            })
            .expect("validated: at least one address");
        let unix = self.unix(now);
        let activity = self.history.lock().expect("not poisoned").start(
            format!("Launching a new instance: {id}"),
            cause,
            unix,
        );
        let request = LaunchRequest {
            id: id.clone(),
            group: self.config.name.clone(),
            address: zone,
            region: self.config.region.clone(),
            template,
        };
        match self.provider.launch(&request).await {
            Ok(l) => {
                tracing::info!(group = %self.config.name, instance = %id, addr = %l.addr, pid = ?l.pid, "instance launched");
                self.instances.push(Instance {
                    id,
                    addr: l.addr,
                    zone,
                    version: request.template.version,
                    launched: now,
                    in_service: None,
                    draining_until: None,
                    drained: Vec::new(),
                    activity,
                });
                true
            }
            Err(e) => {
                tracing::error!(group = %self.config.name, instance = %id, "launch failed: {e}");
                self.history.lock().expect("not poisoned").finish_with(
                    activity,
                    Status::Failed,
                    Some(e.to_string()),
                    unix,
                );
                self.backoff_until = Some(now + LAUNCH_BACKOFF);
                false
            }
        }
    }

    /// The instance to terminate first: one an instance refresh replaces, then the oldest
    /// launch template version, then from the zone with the most instances, then the oldest.
    fn victim(&self) -> Option<Instance> {
        let replaced = |i: &Instance| self.refresh.as_ref().is_some_and(|r| r.old.contains(&i.id));
        self.active()
            .min_by_key(|i| {
                let in_zone = self.active().filter(|x| x.zone == i.zone).count();
                (
                    !replaced(i),
                    i.version,
                    std::cmp::Reverse(in_zone),
                    i.launched,
                )
            })
            .cloned()
    }

    async fn scale_in(&mut self, victim: Instance, cause: String, now: Instant) {
        let unix = self.unix(now);
        let description = format!("Terminating instance: {}", victim.id);
        if victim.in_service.is_none() {
            {
                let mut h = self.history.lock().expect("not poisoned");
                let msg = Some("cancelled by scale-in".to_string());
                h.finish_with(victim.activity, Status::Cancelled, msg, unix);
                h.record(description, cause, Status::Successful, unix);
            }
            self.instances.retain(|x| x.id != victim.id);
            self.provider.terminate(&victim.id).await;
            return;
        }
        let activity = self
            .history
            .lock()
            .expect("not poisoned")
            .start(description, cause, unix);
        let until = now + self.config.deregistration_delay;
        let drained = self
            .drains
            .as_ref()
            .map(|d| d(victim.addr))
            .unwrap_or_default();
        if let Some(x) = self.instances.iter_mut().find(|x| x.id == victim.id) {
            x.draining_until = Some(until);
            x.drained = drained;
            x.activity = activity;
        }
        tracing::info!(group = %self.config.name, instance = %victim.id, "instance draining");
        self.publish();
    }

    /// Publishes the in-service instances when they changed.
    fn publish(&mut self) {
        let mut addrs: Vec<SocketAddr> = self
            .active()
            .filter(|i| i.in_service.is_some())
            .map(|i| i.addr)
            .collect();
        addrs.sort();
        if self.published.as_ref() == Some(&addrs) {
            return;
        }
        self.published = Some(addrs.clone());
        let entry = Registered {
            region: self.config.region.clone(),
            target_groups: self.config.target_groups.clone(),
            pools: self.config.pools.clone(),
            instances: addrs,
        };
        let name = self.config.name.clone();
        self.registrations.send_modify(|r| {
            r.groups.insert(name, entry);
        });
    }

    async fn stop_all(&mut self) {
        let name = self.config.name.clone();
        self.registrations.send_modify(|r| {
            r.groups.remove(&name);
        });
        for i in std::mem::take(&mut self.instances) {
            self.provider.terminate(&i.id).await;
        }
        tracing::info!(group = %name, "instances terminated");
    }
}

#[path = "group_decide.rs"]
mod decide;

#[cfg(test)]
#[path = "group_tests.rs"]
mod tests;
