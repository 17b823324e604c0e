//! `roundhouse compare --lab FILE`: the client population of [`super::client`] against the
//! setups of the docker lab (`lab/`, docs/lab.md) instead of setups started in this process.
//! `lab/compare.sh` runs it in a container on the lab's WAN that has one address in each
//! region's /24 ([`LabTargets`], `lab/compare.toml`):
//!
//! - the clients sit in every region in turn, connect from that region's address and ask
//!   that region's real recursive resolver (unbound) through a stub ([`Resolver::stub`]);
//! - `dns-rr`: `rr.lab.test`, a round-robin pool of six `roundhouse backend` containers on
//!   the WAN (two per region); `lb`: one region's balancer for every client; `gslb`:
//!   `www.lab.test`, the three regional balancers steered by latency;
//! - faults go to containers through the Docker Engine API ([`plan`]): a crash is a
//!   `docker kill`, a region outage a `docker pause` of the region's instances, a slow
//!   instance the backend's own delay knob; a deploy is an instance refresh of the group
//!   and, for `dns-rr`, drain at the DNS servers, `docker stop`, start, undrain, one
//!   instance at a time; a scale-in lowers every group's maximum to one and drains and
//!   stops one `dns-rr` instance per region;
//! - DNS queries per request come from the DNS servers' query counters per zone.
//!
//! Before each scenario the faults of the previous one are undone and the lab must answer
//! as at the start ([`Lab::ready`]: groups pinned at their maximum, or at their minimum for
//! a load spike); after the last one the scaling groups get their limits back and go to
//! their minimum ([`Lab::restore`]).

pub mod plan;
pub mod targets;

use super::client::Resolver;
use super::dns::{query_a, query_a_from};
use super::http::Connection;
use super::setup::Kind;
use super::{CompareError, Front, Operation, Options, Origin, Run, Scenario, Stage};
use crate::scaler::CapacityUpdate;
use crate::scaler::docker_api::{DockerError, Engine};
use plan::{Action, Group};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

pub use targets::{LabTargets, TargetsError};

/// Longest wait for the lab to answer as at the start before a scenario.
pub const READY: Duration = Duration::from_secs(120);
/// Time an admin or health request may take.
const ASK: Duration = Duration::from_secs(2);
/// Longest wait of one step of an operation (an instance healthy, a group settled).
const STEP: Duration = Duration::from_secs(120);
/// Grace of `docker stop` before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// Why the lab could not run a comparison.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    /// The Docker daemon refused.
    #[error(transparent)]
    Docker(#[from] DockerError),
    /// The lab did not answer as at the start.
    #[error("not ready within {0:?}: {1}")]
    NotReady(Duration, String),
}

/// What the current fault did.
#[derive(Debug, Default)]
struct Faulted {
    undo: Vec<Action>,
    down: Vec<String>,
}

/// The lab: where its setups are, and what the current fault changed.
pub struct Lab {
    actor: Actor,
    /// Each group's (name, min, max) as first seen: what the run gives back at the end.
    shapes: Mutex<Vec<(String, u32, u32)>>,
}

/// Carries out a fault's actions (shared with the operations' tasks).
#[derive(Clone)]
struct Actor {
    targets: Arc<LabTargets>,
    engine: Engine,
    faulted: Arc<Mutex<Faulted>>,
}

/// `GET path` (or a request with headers and a body) to `addr`: the body of a 2xx answer.
async fn ask(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &str,
    body: &str,
) -> Option<String> {
    let mut c = Connection::open(addr, ASK).await.ok()?;
    let host = addr.ip().to_string();
    let reply = c.call(method, &host, path, headers, body, ASK).await.ok()?;
    (200..300).contains(&reply.status).then_some(reply.body)
}

impl Lab {
    /// The lab at `targets`.
    pub fn new(targets: LabTargets) -> Lab {
        Lab {
            actor: Actor {
                engine: Engine::new(&targets.docker),
                targets: Arc::new(targets),
                faulted: Arc::default(),
            },
            shapes: Mutex::default(),
        }
    }

    /// Where it is.
    pub fn targets(&self) -> &LabTargets {
        &self.actor.targets
    }

    /// The scaling groups, as the regions' balancers tell them (a region that does not
    /// answer is left out).
    async fn groups(&self) -> Vec<Group> {
        self.actor.groups().await
    }

    /// Ids of the instances each setup has in service ([`Kind::ALL`] order).
    pub async fn serving(&self) -> Vec<Vec<String>> {
        let groups = self.groups().await;
        let down = self
            .actor
            .faulted
            .lock()
            .expect("not poisoned")
            .down
            .clone();
        plan::in_service(self.targets(), &groups, &down)
    }

    /// A-record queries the DNS servers counted so far, per setup ([`Kind::ALL`] order;
    /// `lb` asks none).
    pub async fn authoritative_queries(&self) -> Vec<u64> {
        let mut rr = 0;
        let mut gslb = 0;
        let t = self.targets();
        for a in &t.dns_admin {
            let text = ask(*a, "GET", "/metrics", "", "").await.unwrap_or_default();
            rr += plan::zone_queries(&text, &t.dns_rr.zone);
            gslb += plan::zone_queries(&text, &t.gslb.zone);
        }
        vec![rr, 0, gslb]
    }

    /// The TTL of the `gslb` answers, asked directly.
    pub async fn ttl(&self) -> Option<Duration> {
        query_a(self.targets().dns, &self.targets().gslb.name, 1)
            .await
            .filter(|a| !a.addrs.is_empty())
            .map(|a| a.ttl)
    }

    /// Where each setup's clients go ([`Kind::ALL`] order): every region in turn, each with
    /// a stub to its region's resolver.
    pub async fn fronts(&self) -> Vec<Front> {
        let t = self.targets();
        let serving = self.serving().await;
        let origins = || {
            t.region
                .iter()
                .map(|r| Origin {
                    local: Some(r.client),
                    resolvers: vec![Arc::new(Resolver::stub(r.resolver, Some(r.client)))],
                })
                .collect()
        };
        let lb = t.region(&t.lb.region).map(|r| r.balancer);
        Kind::ALL
            .iter()
            .zip(serving)
            .map(|(&kind, initial)| Front {
                kind,
                fixed: if kind == Kind::Lb { lb } else { None },
                name: match kind {
                    Kind::DnsRr => t.dns_rr.name.as_str().into(),
                    _ => t.gslb.name.as_str().into(),
                },
                port: t.port,
                origins: origins(),
                initial,
            })
            .collect()
    }

    /// Injects `scenario`'s fault into the fault region (logged; a step the daemon refuses
    /// leaves the run without it); per setup, the operation it starts, whose result is the
    /// time it finished (ms after `start`).
    pub async fn inject(&self, scenario: Scenario, start: Instant) -> Vec<Operation> {
        let a = &self.actor;
        let groups = self.groups().await;
        let rr = &a.targets.dns_rr.name;
        let ttl = query_a(a.targets.dns, rr, 1)
            .await
            .map_or(Duration::from_secs(5), |x| x.ttl);
        let plan = plan::plan(scenario, &a.targets, &groups, ttl);
        for step in &plan.fault {
            if let Err(e) = a.act(step).await {
                tracing::warn!(action = ?step, "fault step failed: {e}");
            }
        }
        *a.faulted.lock().expect("not poisoned") = Faulted {
            undo: plan.undo,
            down: plan.down,
        };
        plan.steps
            .into_iter()
            .map(|steps| {
                let a = a.clone();
                (!steps.is_empty()).then(|| {
                    tokio::spawn(async move {
                        for step in &steps {
                            a.act(step).await.map_err(|e| format!("{step:?}: {e}"))?;
                        }
                        Ok(start.elapsed().as_millis() as u32)
                    })
                })
            })
            .collect()
    }

    /// Undoes the current fault (logged: what is still wrong afterwards, [`Lab::ready`]
    /// reports).
    pub async fn heal(&self) {
        let a = &self.actor;
        let undo = std::mem::take(&mut *a.faulted.lock().expect("not poisoned")).undo;
        for step in &undo {
            if let Err(e) = a.act(step).await {
                tracing::warn!(action = ?step, "undoing the fault failed: {e}");
            }
        }
    }

    /// Sets every group to its maximum (the comparison's load holds them there) and waits
    /// until the lab answers as at the start: every group full and in service, every
    /// `dns-rr` instance healthy and in the answer, every region's resolver answering
    /// `gslb` with its own balancer.
    pub async fn ready(&self, limit: Duration, scenario: Scenario) -> Result<(), LabError> {
        let groups = self.groups_by_region().await;
        let mut want = Vec::new();
        for (r, g) in self.targets().region.iter().zip(&groups) {
            let Some(g) = g else { continue };
            let (min, max) = {
                let mut shapes = self.shapes.lock().expect("not poisoned");
                match shapes.iter().find(|s| s.0 == g.name) {
                    Some(s) => (s.1, s.2),
                    None => {
                        shapes.push((g.name.clone(), g.min, g.max));
                        (g.min, g.max)
                    }
                }
            };
            // Pinned at the maximum: with no load yet, target tracking would scale the
            // group in again. A load spike starts from the minimum and scales freely.
            let (floor, size) = match scenario {
                Scenario::LoadSpike => (min, min),
                _ => (max, max),
            };
            self.set_capacity(r.admin, &g.name, floor, max, size).await;
            want.push((g.name.clone(), size));
        }
        let deadline = Instant::now() + limit;
        loop {
            let missing = self.not_ready(&want).await;
            let Some(what) = missing else {
                return Ok(());
            };
            if Instant::now() > deadline {
                return Err(LabError::NotReady(limit, what));
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// Sets the size limits and desired capacity of `group` through the admin server at
    /// `admin` (logged when refused).
    async fn set_capacity(&self, admin: SocketAddr, group: &str, min: u32, max: u32, desired: u32) {
        let c = CapacityUpdate {
            min: Some(min),
            max: Some(max),
            desired: Some(desired),
        };
        if self.actor.capacity(admin, group, c).await.is_none() {
            tracing::warn!(%group, ?c, "setting the capacity failed");
        }
    }

    /// Gives every group its size limits back and sets it to its minimum, where the lab
    /// starts, and waits (at most `limit`) until the extra instances are drained and
    /// stopped. The setting is repeated: target tracking, still reading the comparison's
    /// load for one more period, would scale out again.
    pub async fn restore(&self, limit: Duration) {
        let deadline = Instant::now() + limit;
        let shapes = self.shapes.lock().expect("not poisoned").clone();
        loop {
            let groups = self.groups_by_region().await;
            let settled = groups.iter().flatten().all(|g| {
                let min = shapes.iter().find(|s| s.0 == g.name).map_or(g.min, |s| s.1);
                g.instances.len() <= min as usize
            });
            if settled {
                return;
            }
            if Instant::now() > deadline {
                tracing::warn!("scaling groups not back at their minimum within {limit:?}");
                return;
            }
            for (r, g) in self.targets().region.iter().zip(groups) {
                let shape = g.and_then(|g| shapes.iter().find(|s| s.0 == g.name));
                if let Some((name, min, max)) = shape {
                    self.set_capacity(r.admin, name, *min, *max, *min).await;
                }
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    }

    async fn groups_by_region(&self) -> Vec<Option<Group>> {
        let groups = self.groups().await;
        let t = self.targets();
        t.region
            .iter()
            .map(|r| groups.iter().find(|g| g.name == r.group).cloned())
            .collect()
    }

    /// The first thing not as at the start, if any; `want`: instances per group.
    async fn not_ready(&self, want: &[(String, u32)]) -> Option<String> {
        let t = self.targets();
        for (r, g) in t.region.iter().zip(self.groups_by_region().await) {
            let Some(g) = g else {
                return Some(format!("{}: no answer from {}", r.group, r.admin));
            };
            let n = want.iter().find(|w| w.0 == g.name).map_or(g.max, |w| w.1) as usize;
            let serving = g.instances.iter().filter(|m| m.in_service()).count();
            if serving < n || g.instances.len() > n || g.refresh.is_some() {
                let all = g.instances.len();
                return Some(format!(
                    "{}: {serving} of {all} in service, want {n}",
                    g.name
                ));
            }
        }
        let all: Vec<IpAddr> = t.dns_rr.instance.iter().map(|i| i.address).collect();
        for i in &t.dns_rr.instance {
            let a = SocketAddr::new(i.address, t.port);
            if ask(a, "GET", "/health", "", "").await.is_none() {
                return Some(format!("{} ({a}) is not healthy", i.container));
            }
        }
        let has_all = |addrs: &[std::net::Ipv4Addr]| {
            all.iter()
                .all(|a| addrs.iter().any(|x| IpAddr::V4(*x) == *a))
        };
        let direct = query_a(t.dns, &t.dns_rr.name, 1).await;
        if !direct.as_ref().is_some_and(|a| has_all(&a.addrs)) {
            return Some(format!(
                "{} does not answer every instance: {direct:?}",
                t.dns
            ));
        }
        for r in &t.region {
            let ask_resolver = |name| query_a_from(Some(r.client), r.resolver, name, 2);
            let rr = ask_resolver(&t.dns_rr.name).await;
            if !rr.as_ref().is_some_and(|a| has_all(&a.addrs)) {
                return Some(format!("{}: {} = {rr:?}", r.resolver, t.dns_rr.name));
            }
            let gslb = ask_resolver(&t.gslb.name).await;
            let first = gslb.as_ref().and_then(|a| a.addrs.first().copied());
            if first.map(IpAddr::V4) != Some(r.balancer.ip()) {
                return Some(format!("{}: {} = {gslb:?}", r.resolver, t.gslb.name));
            }
        }
        None
    }
}

impl Actor {
    /// See [`Lab::groups`].
    async fn groups(&self) -> Vec<Group> {
        let mut all = Vec::new();
        for r in &self.targets.region {
            let body = ask(r.admin, "GET", "/v1/scaling-groups", "", "").await;
            if let Some(groups) = body.and_then(|b| plan::groups(&b).ok()) {
                all.extend(groups.into_iter().filter(|g| g.name == r.group));
            }
        }
        all
    }

    /// `POST /v1/scaling-groups/GROUP/ACTION` with `body` and the token; the answer's body.
    async fn group_action(
        &self,
        admin: SocketAddr,
        group: &str,
        action: &str,
        body: &str,
    ) -> Option<String> {
        let auth = format!(
            "Authorization: Bearer {}\r\nContent-Type: application/json\r\n",
            self.targets.token
        );
        let path = format!("/v1/scaling-groups/{group}/{action}");
        ask(admin, "POST", &path, &auth, body).await
    }

    /// `POST .../GROUP/capacity` with `c`; the answer's body.
    async fn capacity(&self, admin: SocketAddr, group: &str, c: CapacityUpdate) -> Option<String> {
        let body = serde_json::to_string(&c).expect("plain numbers");
        self.group_action(admin, group, "capacity", &body).await
    }

    async fn act(&self, a: &Action) -> Result<(), DockerError> {
        let t = &self.targets;
        let refused = |what: String| DockerError::Http {
            path: what,
            message: "no 2xx answer".into(),
        };
        let region = |name: &str| {
            t.region(name)
                .ok_or_else(|| refused(format!("region {name}")))
        };
        match a {
            Action::Kill(c) => self.engine.kill(c).await,
            Action::Start(c) => self.engine.start(c).await,
            Action::Stop(c) => self.engine.stop(c, STOP_GRACE).await,
            Action::Pause(c) => self.engine.pause(c).await,
            Action::Unpause(c) => self.engine.unpause(c).await,
            Action::Delay { addr, ms, .. } => {
                let path = format!("/admin/delay?ms={ms}");
                match ask(*addr, "POST", &path, "", "").await {
                    Some(_) => Ok(()),
                    None => Err(refused(format!("http://{addr}{path}"))),
                }
            }
            Action::Drain(addr, drain) => {
                let what = if *drain { "drain" } else { "undrain" };
                let path = format!("/v1/endpoints/{}/{addr}/{what}", t.dns_rr.pool);
                let auth = format!("Authorization: Bearer {}\r\n", t.token);
                for admin in &t.dns_admin {
                    if ask(*admin, "POST", &path, &auth, "").await.is_none() {
                        return Err(refused(format!("http://{admin}{path}")));
                    }
                }
                Ok(())
            }
            Action::Capacity {
                region: name,
                min,
                max,
                desired,
            } => {
                let r = region(name)?;
                let c = CapacityUpdate {
                    min: Some(*min),
                    max: Some(*max),
                    desired: *desired,
                };
                match self.capacity(r.admin, &r.group, c).await {
                    Some(_) => Ok(()),
                    None => Err(refused(format!("{} capacity {c:?}", r.group))),
                }
            }
            Action::Refresh(name) => {
                let r = region(name)?;
                match self
                    .group_action(r.admin, &r.group, "instance-refresh", "")
                    .await
                {
                    Some(_) => Ok(()),
                    None => Err(refused(format!("{} instance refresh", r.group))),
                }
            }
            Action::Wait(d) => {
                tokio::time::sleep(*d).await;
                Ok(())
            }
            Action::Healthy(addr) => {
                let healthy = || async { ask(*addr, "GET", "/health", "", "").await.is_some() };
                self.until(healthy, &format!("{addr} healthy")).await
            }
            Action::InAnswer(addr) => {
                let listed = || async {
                    let a = query_a(t.dns, &t.dns_rr.name, 1).await;
                    a.is_some_and(|a| a.addrs.iter().any(|x| IpAddr::V4(*x) == *addr))
                };
                self.until(listed, &format!("{addr} in the answers")).await
            }
            Action::Settled(regions, size) => {
                let settled = || async {
                    let groups = self.groups().await;
                    regions.iter().all(|name| {
                        let group = t.region(name).map(|r| &r.group);
                        let g = groups.iter().find(|g| Some(&g.name) == group);
                        g.is_some_and(|g| g.settled(*size))
                    })
                };
                self.until(settled, &format!("{regions:?} settled")).await
            }
            Action::Down(c, down) => {
                let mut f = self.faulted.lock().expect("not poisoned");
                f.down.retain(|x| x != c);
                if *down {
                    f.down.push(c.clone());
                }
                Ok(())
            }
        }
    }

    /// Polls `done` every 250 ms until it holds, at most [`STEP`].
    async fn until<F: std::future::Future<Output = bool>>(
        &self,
        mut done: impl FnMut() -> F,
        what: &str,
    ) -> Result<(), DockerError> {
        let deadline = Instant::now() + STEP;
        while !done().await {
            if Instant::now() > deadline {
                return Err(DockerError::Http {
                    path: what.to_string(),
                    message: format!("not within {STEP:?}"),
                });
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        Ok(())
    }
}

/// Runs every scenario against the lab's setups side by side; `progress` as
/// [`super::run`].
pub async fn run(
    options: &Options,
    lab: &Lab,
    mut progress: impl FnMut(Scenario, Duration, Duration),
) -> Result<Vec<Run>, CompareError> {
    let mut runs = Vec::new();
    let all = async {
        for &scenario in &options.scenarios {
            lab.ready(READY, scenario).await?;
            let fronts = lab.fronts().await;
            let stage = Stage::Lab(lab);
            // The lab's groups scale on requests: the spike grows from a quarter of the
            // population to all of it, so that the base load leaves room to scale out.
            let spike = Options {
                clients: (options.clients / super::SPIKE).max(fronts[0].origins.len()),
                ..options.clone()
            };
            let options = if scenario == Scenario::LoadSpike {
                &spike
            } else {
                options
            };
            let result = super::one(options, scenario, &fronts, &stage, &mut progress).await;
            lab.heal().await;
            runs.extend(result);
        }
        Ok::<(), LabError>(())
    };
    let done = all.await;
    // The lab as it starts: no fault, every group at its minimum.
    lab.heal().await;
    lab.restore(Duration::from_secs(45)).await;
    done?;
    Ok(runs)
}

/// What happens in `scenario` in the lab, in a sentence (report.md).
pub fn describe(scenario: Scenario, t: &LabTargets) -> String {
    let r = &t.fault_region;
    match scenario {
        Scenario::InstanceCrash => format!(
            "A third of the way in, one instance of {r} is killed (`docker kill`): a dns-rr \
             container, and the oldest backend of {r}'s scaling group (its scaler replaces it)."
        ),
        Scenario::RegionOutage => format!(
            "A third of the way in, every instance of {r} is frozen (`docker pause`) to the \
             end of the run: its dns-rr containers and its scaling group's backends; {r}'s \
             balancer stays up and answers 503."
        ),
        Scenario::SlowInstance => format!(
            "A third of the way in, one instance of {r} answers `GET /` 300 ms late (a dns-rr \
             container, and the oldest backend of {r}'s group); it stays healthy."
        ),
        Scenario::LoadSpike => format!(
            "Each region's scaling group starts at its minimum (one backend; target tracking \
             at the lab's 20 requests/s per backend, maximum 3); a third of the way in, the \
             client population grows {}x (from a quarter of `--clients` to all of them). The \
             dns-rr instances are a fixed fleet of six.",
            super::SPIKE
        ),
        Scenario::DeployDrain => format!(
            "A third of the way in, {r} is redeployed one instance at a time: its scaling \
             group by an instance refresh (launch a replacement, wait until it is in service \
             and healthy, drain the oldest), its dns-rr containers by drain at the DNS \
             servers, a wait of the TTL, `docker stop`, start, undrain."
        ),
        Scenario::StickyScaleIn => "Clients keep their target (the balancer's cookie; the \
             address they resolved); a third of the way in, every region's scaling group goes \
             to one instance (maximum 1), and one dns-rr container per region is drained at \
             the DNS servers and stopped after the TTL. A session is lost when a later answer \
             comes from another instance than its first."
            .to_string(),
        _ => scenario.describe().to_string(),
    }
}

/// The lab's setting for the report's first line (ends with "; ").
pub fn setting(t: &LabTargets) -> String {
    let regions: Vec<&str> = t.region.iter().map(|r| r.name.as_str()).collect();
    let lb = t
        .region(&t.lb.region)
        .map_or(String::new(), |r| r.balancer.to_string());
    format!(
        "clients in {} in turn, each asking its region's recursive resolver; dns-rr `{}` ({} \
         instance containers), lb {lb} ({}'s balancer), gslb `{}`; ",
        regions.join(", "),
        t.dns_rr.name,
        t.dns_rr.instance.len(),
        t.lb.region,
        t.gslb.name,
    )
}
