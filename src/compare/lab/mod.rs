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
//!   instance the backend's own delay knob;
//! - DNS queries per request come from the DNS servers' query counters per zone.
//!
//! Before each scenario the faults of the previous one are undone and the lab must answer
//! as at the start ([`Lab::ready`]); after the last one the scaling groups go back to their
//! minimum ([`Lab::restore`]).

pub mod plan;
pub mod targets;

use super::client::Resolver;
use super::dns::{query_a, query_a_from};
use super::http::Connection;
use super::setup::Kind;
use super::{CompareError, Front, Options, Origin, Run, Scenario, Stage};
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

/// Why the lab could not run a comparison.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    /// A scenario the lab cannot stage.
    #[error("scenario {0} does not run in the lab: {1}")]
    Unsupported(&'static str, &'static str),
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
    targets: LabTargets,
    engine: Engine,
    faulted: Mutex<Faulted>,
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
            engine: Engine::new(&targets.docker),
            targets,
            faulted: Mutex::new(Faulted::default()),
        }
    }

    /// Where it is.
    pub fn targets(&self) -> &LabTargets {
        &self.targets
    }

    /// The scaling groups, as the regions' balancers tell them (a region that does not
    /// answer is left out).
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

    /// Ids of the instances each setup has in service ([`Kind::ALL`] order).
    pub async fn serving(&self) -> Vec<Vec<String>> {
        let groups = self.groups().await;
        let down = self.faulted.lock().expect("not poisoned").down.clone();
        plan::in_service(&self.targets, &groups, &down)
    }

    /// A-record queries the DNS servers counted so far, per setup ([`Kind::ALL`] order;
    /// `lb` asks none).
    pub async fn authoritative_queries(&self) -> Vec<u64> {
        let mut rr = 0;
        let mut gslb = 0;
        for a in &self.targets.dns_admin {
            let text = ask(*a, "GET", "/metrics", "", "").await.unwrap_or_default();
            rr += plan::zone_queries(&text, &self.targets.dns_rr.zone);
            gslb += plan::zone_queries(&text, &self.targets.gslb.zone);
        }
        vec![rr, 0, gslb]
    }

    /// The TTL of the `gslb` answers, asked directly.
    pub async fn ttl(&self) -> Option<Duration> {
        query_a(self.targets.dns, &self.targets.gslb.name, 1)
            .await
            .filter(|a| !a.addrs.is_empty())
            .map(|a| a.ttl)
    }

    /// Where each setup's clients go ([`Kind::ALL`] order): every region in turn, each with
    /// a stub to its region's resolver.
    pub async fn fronts(&self) -> Vec<Front> {
        let t = &self.targets;
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
    /// leaves the run without it).
    pub async fn inject(&self, scenario: Scenario) {
        let groups = self.groups().await;
        let fault_group = self
            .targets
            .region(&self.targets.fault_region)
            .map(|r| r.group.as_str());
        let group = groups.iter().find(|g| Some(g.name.as_str()) == fault_group);
        let plan = plan::plan(scenario, &self.targets, group);
        for a in &plan.fault {
            if let Err(e) = self.act(a).await {
                tracing::warn!(action = ?a, "fault step failed: {e}");
            }
        }
        *self.faulted.lock().expect("not poisoned") = Faulted {
            undo: plan.undo,
            down: plan.down,
        };
    }

    async fn act(&self, a: &Action) -> Result<(), DockerError> {
        match a {
            Action::Kill(c) => self.engine.kill(c).await,
            Action::Start(c) => self.engine.start(c).await,
            Action::Pause(c) => self.engine.pause(c).await,
            Action::Unpause(c) => self.engine.unpause(c).await,
            Action::Delay { addr, ms, .. } => {
                let path = format!("/admin/delay?ms={ms}");
                match ask(*addr, "POST", &path, "", "").await {
                    Some(_) => Ok(()),
                    None => Err(DockerError::Http {
                        path: format!("http://{addr}{path}"),
                        message: "no 2xx answer".into(),
                    }),
                }
            }
        }
    }

    /// Undoes the current fault (logged: what is still wrong afterwards, [`Lab::ready`]
    /// reports).
    pub async fn heal(&self) {
        let undo = std::mem::take(&mut *self.faulted.lock().expect("not poisoned")).undo;
        for a in &undo {
            if let Err(e) = self.act(a).await {
                tracing::warn!(action = ?a, "undoing the fault failed: {e}");
            }
        }
    }

    /// Sets every group to its maximum (the comparison's load holds them there) and waits
    /// until the lab answers as at the start: every group full and in service, every
    /// `dns-rr` instance healthy and in the answer, every region's resolver answering
    /// `gslb` with its own balancer.
    pub async fn ready(&self, limit: Duration) -> Result<(), LabError> {
        let groups = self.groups_by_region().await;
        for (r, g) in self.targets.region.iter().zip(&groups) {
            if let Some(g) = g {
                self.set_desired(r.admin, &g.name, g.max).await;
            }
        }
        let deadline = Instant::now() + limit;
        loop {
            let missing = self.not_ready().await;
            let Some(what) = missing else {
                return Ok(());
            };
            if Instant::now() > deadline {
                return Err(LabError::NotReady(limit, what));
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// Sets the desired capacity of `group` through the admin server at `admin` (logged
    /// when refused).
    async fn set_desired(&self, admin: SocketAddr, group: &str, desired: u32) {
        let auth = format!(
            "Authorization: Bearer {}\r\nContent-Type: application/json\r\n",
            self.targets.token
        );
        let body = format!("{{\"desired\": {desired}}}");
        let path = format!("/v1/scaling-groups/{group}/desired");
        if ask(admin, "POST", &path, &auth, &body).await.is_none() {
            tracing::warn!(%group, desired, "setting the desired capacity failed");
        }
    }

    /// Sets every group back to its minimum, where the lab starts, and waits (at most
    /// `limit`) until the extra instances are drained and stopped. The setting is repeated:
    /// target tracking, still reading the comparison's load for one more period, would
    /// scale out again.
    pub async fn restore(&self, limit: Duration) {
        let deadline = Instant::now() + limit;
        loop {
            let groups = self.groups_by_region().await;
            let settled = groups
                .iter()
                .flatten()
                .all(|g| g.instances.len() <= g.min as usize);
            if settled {
                return;
            }
            if Instant::now() > deadline {
                tracing::warn!("scaling groups not back at their minimum within {limit:?}");
                return;
            }
            for (r, g) in self.targets.region.iter().zip(groups) {
                if let Some(g) = g {
                    self.set_desired(r.admin, &g.name, g.min).await;
                }
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    }

    async fn groups_by_region(&self) -> Vec<Option<Group>> {
        let groups = self.groups().await;
        let t = &self.targets;
        t.region
            .iter()
            .map(|r| groups.iter().find(|g| g.name == r.group).cloned())
            .collect()
    }

    /// The first thing not as at the start, if any.
    async fn not_ready(&self) -> Option<String> {
        let t = &self.targets;
        for (r, g) in t.region.iter().zip(self.groups_by_region().await) {
            let Some(g) = g else {
                return Some(format!("{}: no answer from {}", r.group, r.admin));
            };
            let serving = g.instances.iter().filter(|m| m.in_service()).count();
            if serving < g.max as usize || serving < g.instances.len() {
                return Some(format!("{}: {serving} of {} in service", g.name, g.max));
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

/// Runs every scenario against the lab's setups side by side; `progress` as
/// [`super::run`].
pub async fn run(
    options: &Options,
    lab: &Lab,
    mut progress: impl FnMut(Scenario, Duration, Duration),
) -> Result<Vec<Run>, CompareError> {
    for &s in &options.scenarios {
        if let Some(why) = plan::unsupported(s) {
            return Err(LabError::Unsupported(s.name(), why).into());
        }
    }
    let mut runs = Vec::new();
    let all = async {
        for &scenario in &options.scenarios {
            lab.ready(READY).await?;
            let fronts = lab.fronts().await;
            let stage = Stage::Lab(lab);
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
