//! `roundhouse compare`: the same simulated client population against DNS round robin
//! ([`setup::Kind::DnsRr`]), one load balancer ([`setup::Kind::Lb`]) and GSLB DNS in front
//! of regional balancers ([`setup::Kind::Gslb`]), through faults, on loopback, in one
//! process. Real servers ([`crate::app`]) and demo backends; simulated clients
//! ([`client`]). The scenarios that scale ([`scenario::Capacity`]) run the instances as
//! `roundhouse backend` processes of real scaling groups ([`scaled`]). [`report`] turns the
//! samples into numbers, Markdown and JSON; [`chart`] draws them as SVG.
//!
//! [`lab`] runs the same clients against the setups of the docker lab instead: one
//! mechanism, [`one`], drives a scenario against a list of [`Front`]s (where each setup's
//! clients go) and a [`Stage`] (who injects the fault and tells what is in service).

pub mod chart;
pub mod client;
pub mod dns;
pub mod http;
pub mod lab;
pub mod report;
pub mod scaled;
pub mod scenario;
pub mod setup;

pub use scenario::{SLOW, SPIKE, Scenario};

use client::{Client, Names, Resolver, Rng, Sample, Target};
use setup::{Kind, Setup, SetupError};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;

/// What to run.
#[derive(Debug, Clone)]
pub struct Options {
    /// Scenarios, in order.
    pub scenarios: Vec<Scenario>,
    /// Length of each scenario's workload.
    pub duration: Duration,
    /// Seed of the client population and think times.
    pub seed: u64,
    /// Simulated clients per setup.
    pub clients: usize,
    /// Recursive resolvers the clients share.
    pub resolvers: usize,
    /// TTL of the DNS answers.
    pub ttl: Duration,
    /// Resolver TTL floor (`cache-min-ttl`).
    pub resolver_floor: Duration,
    /// Multiplies the client types' cache durations (1.0: real-world seconds).
    pub client_scale: f64,
    /// Requests per client session (one connection each).
    pub session: u32,
    /// Time between one client's requests.
    pub gap: Duration,
    /// Client types and their shares (default [`client::MIX`]).
    pub mix: Vec<client::ClientType>,
    /// Scratch directory for the setups' files.
    pub scratch: PathBuf,
    /// The program scaling groups launch as `PROGRAM backend ...` (this one by default).
    pub exe: PathBuf,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            scenarios: Scenario::ALL.to_vec(),
            duration: Duration::from_secs(24),
            seed: 1,
            clients: 24,
            resolvers: 4,
            ttl: Duration::from_secs(5),
            resolver_floor: Duration::ZERO,
            client_scale: 0.1,
            session: 5,
            gap: Duration::from_millis(100),
            mix: client::MIX.to_vec(),
            scratch: std::env::temp_dir()
                .join(format!("roundhouse-compare-{}", std::process::id())),
            exe: std::env::current_exe().unwrap_or_else(|_| PathBuf::from("roundhouse")),
        }
    }
}

/// Why a comparison could not run.
#[derive(Debug, thiserror::Error)]
pub enum CompareError {
    /// A setup did not start.
    #[error("setup {setup}: {source}")]
    Setup {
        /// Which.
        setup: &'static str,
        /// Cause.
        source: SetupError,
    },
    /// A setup did not become ready.
    #[error("setup {0}: not ready within 20 s")]
    NotReady(&'static str),
    /// The docker lab could not run a scenario.
    #[error("lab: {0}")]
    Lab(#[from] lab::LabError),
}

/// Where one setup's clients go.
pub struct Front {
    /// Which setup.
    pub kind: Kind,
    /// Where clients connect without DNS (`lb`), else `None`.
    pub fixed: Option<SocketAddr>,
    /// The name clients resolve and send as `Host`.
    pub name: Arc<str>,
    /// Port clients connect to on resolved addresses.
    pub port: u16,
    /// Where the clients sit, in turn: client `c` belongs to origin `c % len`.
    pub origins: Vec<Origin>,
    /// Instances in service at the start, numbered first in reports (even if idle).
    pub initial: Vec<String>,
}

/// A share of a setup's clients: their source address and the resolvers they ask.
pub struct Origin {
    /// Source address of their connections and queries (`None`: the kernel's choice).
    pub local: Option<IpAddr>,
    /// Resolvers, in turn.
    pub resolvers: Vec<Arc<Resolver>>,
}

/// Where the setups run: who injects a scenario's fault and tells what is in service.
pub enum Stage<'a> {
    /// Setups started by this process, in [`Front`] order.
    Local(&'a [Setup]),
    /// The docker lab's setups (shared instances; one fault for all).
    Lab(&'a lab::Lab),
}

impl Stage<'_> {
    /// Injects the fault; per front, an operation that takes time runs as a task whose
    /// result is the time it finished (ms after `start`).
    async fn inject(&self, scenario: Scenario, start: Instant) -> Vec<Operation> {
        match self {
            Stage::Local(setups) => {
                let mut ops = Vec::new();
                for s in setups.iter() {
                    ops.push(inject(scenario, s, start).await);
                }
                ops
            }
            Stage::Lab(lab) => lab.inject(scenario, start).await,
        }
    }

    /// Ids of the instances in service now, per front.
    async fn serving(&self) -> Vec<Vec<String>> {
        match self {
            Stage::Local(setups) => setups.iter().map(serving).collect(),
            Stage::Lab(lab) => lab.serving().await,
        }
    }

    /// Queries the authoritative servers counted so far, per front, where they tell (the
    /// lab); `None`: the simulated resolvers count them.
    async fn authoritative_queries(&self) -> Option<Vec<u64>> {
        match self {
            Stage::Local(_) => None,
            Stage::Lab(lab) => Some(lab.authoritative_queries().await),
        }
    }
}

/// An operation started at the fault: its end (ms after the start) or why it failed.
pub(crate) type Operation = Option<JoinHandle<Result<u32, String>>>;

/// The samples of one setup in one scenario.
#[derive(Debug, Clone)]
pub struct Run {
    /// Setup.
    pub setup: Kind,
    /// Scenario.
    pub scenario: Scenario,
    /// When the fault happened, ms after the start (`None`: steady).
    pub fault_ms: Option<u32>,
    /// When the fault's immediate effect was over, ms after the start: health checks have
    /// noticed a crash, the scale-out reached its peak, the deploy or scale-in finished
    /// (`None`: no fault, or the operation did not finish within the run).
    pub fault_end_ms: Option<u32>,
    /// Every request, in completion order.
    pub samples: Vec<Sample>,
    /// Queries the resolvers sent to the authoritative server.
    pub dns_queries: u64,
    /// Instance ids by number ([`Sample::instance`]).
    pub instances: Vec<String>,
    /// How many of them were in service at the start (the first ones; the in-process
    /// instances).
    pub initial: usize,
    /// Instances in service over time: (ms after the start, count), every 250 ms.
    pub capacity: Vec<(u32, u32)>,
    /// Numbers of the instances in service at the end.
    pub survivors: Vec<u16>,
    /// Why an operation of the scenario failed, if it did.
    pub note: Option<String>,
}

/// Runs every scenario against the three setups side by side; `progress` hears
/// `(scenario, elapsed, duration)` about once a second.
pub async fn run(
    options: &Options,
    mut progress: impl FnMut(Scenario, Duration, Duration),
) -> Result<Vec<Run>, CompareError> {
    let mut runs = Vec::new();
    for &scenario in &options.scenarios {
        let mut setups = Vec::new();
        let scaled = scenario.capacity().map(|c| (c, options.exe.as_path()));
        for kind in Kind::ALL {
            let s = Setup::start(kind, options.ttl, &options.scratch, scaled)
                .await
                .map_err(|source| CompareError::Setup {
                    setup: kind.name(),
                    source,
                })?;
            setups.push(s);
        }
        let mut not_ready = None;
        for s in &setups {
            if not_ready.is_none() && !s.ready(Duration::from_secs(20)).await {
                not_ready = Some(s.kind.name());
            }
        }
        if let Some(name) = not_ready {
            for s in setups {
                s.stop().await;
            }
            return Err(CompareError::NotReady(name));
        }
        let fronts: Vec<Front> = setups.iter().map(|s| front(options, s)).collect();
        let stage = Stage::Local(&setups);
        let result = one(options, scenario, &fronts, &stage, &mut progress).await;
        for s in setups {
            s.stop().await;
        }
        runs.extend(result);
    }
    let _ = std::fs::remove_dir_all(&options.scratch);
    Ok(runs)
}

/// Where the clients of an in-process setup go: one origin, `options.resolvers`
/// simulated resolvers in front of its DNS server.
fn front(options: &Options, s: &Setup) -> Front {
    let resolvers = (0..options.resolvers.max(1))
        .map(|_| Arc::new(Resolver::new(s.dns, options.resolver_floor, true)))
        .collect();
    Front {
        kind: s.kind,
        fixed: s.fixed,
        name: setup::NAME.into(),
        port: s.port,
        origins: vec![Origin {
            local: None,
            resolvers,
        }],
        initial: (0..s.instances.len()).map(|i| i.to_string()).collect(),
    }
}

/// What one setup collects during a run.
struct Collect {
    kind: Kind,
    out: Arc<Mutex<Vec<Sample>>>,
    names: Arc<Names>,
    capacity: Vec<(u32, u32)>,
    operation: Operation,
}

/// Instances of `s` in service now (ids).
fn serving(s: &Setup) -> Vec<String> {
    match s.scaled {
        Some(_) => scaled::in_service(s.scaler()),
        None => s
            .instances
            .iter()
            .enumerate()
            .filter(|(_, i)| !i.stop.is_cancelled())
            .map(|(n, _)| n.to_string())
            .collect(),
    }
}

/// Injects the fault into `s`; an operation that takes time runs as a task whose result
/// is the time it finished (ms after `start`).
async fn inject(scenario: Scenario, s: &Setup, start: Instant) -> Operation {
    for &v in &scenario.victims() {
        s.instances[v].stop.cancel();
    }
    let done = move || start.elapsed().as_millis() as u32;
    match scenario {
        Scenario::SlowInstance => {
            let path = format!("/admin/delay?ms={}", SLOW.as_millis());
            let timeout = Duration::from_secs(1);
            http::send_once(s.instances[0].addr, "POST", &path, timeout).await;
            None
        }
        Scenario::DeployDrain => {
            let h = s.scaler().clone();
            Some(tokio::spawn(async move {
                let r = scaled::deploy(&h, setup::REGIONS[0]).await;
                r.map(|()| done()).map_err(|e| e.to_string())
            }))
        }
        Scenario::StickyScaleIn => {
            let h = s.scaler().clone();
            Some(tokio::spawn(async move {
                let r = scaled::scale_in(&h, 1).await;
                r.map(|()| done()).map_err(|e| e.to_string())
            }))
        }
        _ => None,
    }
}

/// When the capacity first reached its peak after the fault (the fault time when it did
/// not grow).
fn peak_after(capacity: &[(u32, u32)], fault: u32) -> u32 {
    let at_fault = capacity
        .iter()
        .take_while(|(t, _)| *t <= fault)
        .last()
        .map_or(0, |c| c.1);
    let after = capacity.iter().filter(|(t, _)| *t >= fault);
    let peak = after.clone().map(|c| c.1).max().unwrap_or(0);
    match peak > at_fault {
        true => after.clone().find(|c| c.1 == peak).map_or(fault, |c| c.0),
        false => fault,
    }
}

/// One scenario: the client population against every front side by side, the fault a
/// third of the way in.
pub async fn one(
    options: &Options,
    scenario: Scenario,
    fronts: &[Front],
    stage: &Stage<'_>,
    progress: &mut impl FnMut(Scenario, Duration, Duration),
) -> Vec<Run> {
    let queries_at_start = stage.authoritative_queries().await;
    let start = Instant::now();
    let end = start + options.duration;
    let fault_at = options.duration / 3;
    let mut tasks = JoinSet::new();
    let mut collected = Vec::new();
    let population = match scenario {
        Scenario::LoadSpike => options.clients * SPIKE,
        _ => options.clients,
    };
    for s in fronts {
        let out = Arc::new(Mutex::new(Vec::new()));
        let names = Arc::new(Names::new(s.initial.iter().cloned()));
        // The same seed for every setup: the same population, the same think times.
        let mut rng = Rng::new(options.seed);
        for c in 0..population {
            let origin = &s.origins[c % s.origins.len()];
            let turn = c / s.origins.len();
            let target = match s.fixed {
                Some(a) => Target::Fixed(a),
                None => Target::Name(
                    origin.resolvers[turn % origin.resolvers.len()].clone(),
                    s.port,
                ),
            };
            let client = Client {
                kind: client::pick(&options.mix, &mut rng),
                target,
                name: s.name.clone(),
                local: origin.local,
                scale: options.client_scale,
                session: options.session.max(1),
                gap: options.gap,
                // The spike's extra clients arrive at the fault.
                begin: if c < options.clients {
                    Duration::ZERO
                } else {
                    fault_at
                },
                sticky: scenario.sticky(),
                number: c as u16,
                names: names.clone(),
            };
            let (out, seed) = (out.clone(), rng.next_u64());
            tasks.spawn(async move { client.run(start, end, Rng::new(seed), &out).await });
        }
        collected.push(Collect {
            kind: s.kind,
            out,
            names,
            capacity: Vec::new(),
            operation: None,
        });
    }
    let mut fault_ms = None;
    while Instant::now() < end {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let elapsed = start.elapsed();
        if fault_ms.is_none() && scenario != Scenario::Steady && elapsed >= fault_at {
            fault_ms = Some(elapsed.as_millis() as u32);
            let ops = stage.inject(scenario, start).await;
            for (c, op) in collected.iter_mut().zip(ops) {
                c.operation = op;
            }
        }
        let t = start.elapsed().as_millis() as u32;
        for (c, now) in collected.iter_mut().zip(stage.serving().await) {
            c.capacity.push((t, now.len() as u32));
        }
        progress(scenario, elapsed.min(options.duration), options.duration);
    }
    while tasks.join_next().await.is_some() {}
    let serving_at_end = stage.serving().await;
    let queries = match (queries_at_start, stage.authoritative_queries().await) {
        (Some(a), Some(b)) => b.iter().zip(a).map(|(b, a)| b.saturating_sub(a)).collect(),
        _ => fronts
            .iter()
            .map(|f| {
                let resolvers = f.origins.iter().flat_map(|o| &o.resolvers);
                resolvers.map(|r| r.queries.load(Ordering::Relaxed)).sum()
            })
            .collect::<Vec<u64>>(),
    };
    let mut runs = Vec::new();
    for (i, (s, c)) in fronts.iter().zip(collected).enumerate() {
        let mut note = None;
        let fault_end_ms = match (scenario, fault_ms) {
            (_, None) => None,
            (Scenario::InstanceCrash | Scenario::RegionOutage, Some(f)) => {
                Some(f + scenario::DETECTION.as_millis() as u32)
            }
            (Scenario::LoadSpike, Some(f)) => Some(peak_after(&c.capacity, f)),
            (Scenario::DeployDrain | Scenario::StickyScaleIn, Some(_)) => {
                let op = c.operation.expect("started at the fault");
                if !op.is_finished() {
                    op.abort();
                    note = Some(format!("{} did not finish within the run", scenario.name()));
                    None
                } else {
                    match op.await {
                        Ok(Ok(t)) => Some(t),
                        Ok(Err(e)) => {
                            note = Some(e);
                            None
                        }
                        Err(e) => {
                            note = Some(e.to_string());
                            None
                        }
                    }
                }
            }
            (_, Some(f)) => Some(f),
        };
        let survivors = serving_at_end[i]
            .iter()
            .map(|n| c.names.number(n))
            .collect();
        let mut samples = std::mem::take(&mut *c.out.lock().expect("not poisoned"));
        samples.sort_by_key(|s| s.t_ms);
        runs.push(Run {
            setup: c.kind,
            scenario,
            fault_ms,
            fault_end_ms,
            samples,
            dns_queries: queries[i],
            instances: c.names.all(),
            initial: s.initial.len(),
            capacity: c.capacity,
            survivors,
            note,
        });
    }
    runs
}
