//! `roundhouse compare`: the same simulated client population against DNS round robin
//! ([`setup::Kind::DnsRr`]), one load balancer ([`setup::Kind::Lb`]) and GSLB DNS in front
//! of regional balancers ([`setup::Kind::Gslb`]), through faults, on loopback, in one
//! process. Real servers ([`crate::app`]) and demo backends; simulated clients
//! ([`client`]). [`report`] turns the samples into numbers, Markdown and JSON.

pub mod client;
pub mod dns;
pub mod http;
pub mod lab;
pub mod report;
pub mod setup;

use client::{Client, InstanceIds, Resolver, Rng, Sample, Target};
use setup::{Kind, Setup, SetupError};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::task::JoinSet;
use tokio::time::Instant;

/// A fault injected a third of the way into the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scenario {
    /// No fault.
    Steady,
    /// One instance (of region us-east) crashes: listener and open connections close.
    InstanceCrash,
    /// Every instance of us-east crashes.
    RegionOutage,
    /// One instance (of us-east) answers 300 ms late from then on; it stays healthy.
    SlowInstance,
}

/// How late the slow instance answers.
pub const SLOW: Duration = Duration::from_millis(300);

impl Scenario {
    /// Every scenario, in run order.
    pub const ALL: [Scenario; 4] = [
        Scenario::Steady,
        Scenario::InstanceCrash,
        Scenario::RegionOutage,
        Scenario::SlowInstance,
    ];

    /// Its name on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Steady => "steady",
            Scenario::InstanceCrash => "instance-crash",
            Scenario::RegionOutage => "region-outage",
            Scenario::SlowInstance => "slow-instance",
        }
    }

    /// By name.
    pub fn parse(name: &str) -> Option<Scenario> {
        Scenario::ALL.into_iter().find(|s| s.name() == name)
    }

    /// Instance indexes that crash at the fault (six instances, two per region).
    fn victims(self) -> Vec<usize> {
        match self {
            Scenario::Steady | Scenario::SlowInstance => Vec::new(),
            Scenario::InstanceCrash => vec![0],
            Scenario::RegionOutage => (0..setup::PER_REGION).collect(),
        }
    }
}

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
    #[error("setup {0}: not ready within 15 s")]
    NotReady(&'static str),
    /// The lab could not run a scenario.
    #[error(transparent)]
    Lab(#[from] lab::LabError),
}

/// Where one setup's clients go: a setup started here, or one running elsewhere (the lab).
pub struct Front {
    /// Which setup.
    pub kind: Kind,
    /// The DNS server the simulated resolvers ask.
    pub dns: SocketAddr,
    /// Where clients connect without DNS, else `None`.
    pub fixed: Option<SocketAddr>,
    /// The name clients resolve.
    pub name: String,
    /// Port clients connect to on resolved addresses.
    pub port: u16,
    /// Numbers of the instances that answered.
    pub ids: Arc<InstanceIds>,
    /// Proxies between a client and an instance.
    pub extra_hops: u32,
}

/// How a scenario's fault reaches the instances.
pub enum Fault<'a> {
    /// Instances of setups in this process.
    Local(&'a [Setup]),
    /// Containers of the lab.
    Lab(&'a lab::Lab),
}

/// The samples of one setup in one scenario.
#[derive(Debug, Clone)]
pub struct Run {
    /// Setup.
    pub setup: Kind,
    /// Scenario.
    pub scenario: Scenario,
    /// When the fault happened, ms after the start (`None`: steady).
    pub fault_ms: Option<u32>,
    /// Every request, in completion order.
    pub samples: Vec<Sample>,
    /// Queries the resolvers sent to the authoritative server.
    pub dns_queries: u64,
    /// Instances of the setup.
    pub instances: usize,
    /// Proxies between a client and an instance.
    pub extra_hops: u32,
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
        for kind in Kind::ALL {
            let s = Setup::start(kind, options.ttl, &options.scratch)
                .await
                .map_err(|source| CompareError::Setup {
                    setup: kind.name(),
                    source,
                })?;
            setups.push(s);
        }
        for s in &setups {
            if !s.ready(Duration::from_secs(15)).await {
                return Err(CompareError::NotReady(s.kind.name()));
            }
        }
        let fronts: Vec<Front> = setups
            .iter()
            .map(|s| Front {
                kind: s.kind,
                dns: s.dns,
                fixed: s.fixed,
                name: setup::NAME.to_string(),
                port: s.port,
                ids: Arc::new(InstanceIds::numbered(s.instances.len())),
                extra_hops: s.kind.extra_hops(),
            })
            .collect();
        let result = one(
            options,
            scenario,
            &fronts,
            &Fault::Local(&setups),
            &mut progress,
        )
        .await;
        for s in setups {
            s.stop().await;
        }
        runs.extend(result);
    }
    let _ = std::fs::remove_dir_all(&options.scratch);
    Ok(runs)
}

/// One scenario: the client population against every front, the fault a third of the way in.
pub async fn one(
    options: &Options,
    scenario: Scenario,
    fronts: &[Front],
    fault: &Fault<'_>,
    progress: &mut impl FnMut(Scenario, Duration, Duration),
) -> Vec<Run> {
    let start = Instant::now();
    let end = start + options.duration;
    let mut tasks = JoinSet::new();
    let mut collected = Vec::new();
    for s in fronts {
        let out = Arc::new(Mutex::new(Vec::new()));
        let resolvers: Vec<Arc<Resolver>> = (0..options.resolvers.max(1))
            .map(|_| Arc::new(Resolver::new(s.dns, options.resolver_floor, true)))
            .collect();
        // The same seed for every setup: the same population, the same think times.
        let mut rng = Rng::new(options.seed);
        for c in 0..options.clients {
            let target = match s.fixed {
                Some(a) => Target::Fixed(a),
                None => Target::Name(
                    resolvers[c % resolvers.len()].clone(),
                    s.name.clone(),
                    s.port,
                ),
            };
            let client = Client {
                kind: client::pick(&options.mix, &mut rng),
                target,
                ids: s.ids.clone(),
                scale: options.client_scale,
                session: options.session.max(1),
                gap: options.gap,
            };
            let (out, seed) = (out.clone(), rng.next_u64());
            tasks.spawn(async move { client.run(start, end, Rng::new(seed), &out).await });
        }
        collected.push((s.kind, s.extra_hops, out, resolvers, s.ids.clone()));
    }
    let fault_at = options.duration / 3;
    let mut fault_ms = None;
    let victims = scenario.victims();
    while Instant::now() < end {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let elapsed = start.elapsed();
        if fault_ms.is_none() && scenario != Scenario::Steady && elapsed >= fault_at {
            fault_ms = Some(elapsed.as_millis() as u32);
            match fault {
                Fault::Local(setups) => {
                    for s in setups.iter() {
                        for &v in &victims {
                            s.instances[v].stop.cancel();
                        }
                        if scenario == Scenario::SlowInstance {
                            let path = format!("/admin/delay?ms={}", SLOW.as_millis());
                            let timeout = Duration::from_secs(1);
                            http::send_once(s.instances[0].addr, "POST", &path, timeout).await;
                        }
                    }
                }
                Fault::Lab(lab) => lab.inject(scenario).await,
            }
        }
        progress(scenario, elapsed.min(options.duration), options.duration);
    }
    while tasks.join_next().await.is_some() {}
    collected
        .into_iter()
        .map(|(kind, extra_hops, out, resolvers, ids)| {
            let mut samples = std::mem::take(&mut *out.lock().expect("not poisoned"));
            samples.sort_by_key(|s| s.t_ms);
            Run {
                setup: kind,
                scenario,
                fault_ms,
                samples,
                dns_queries: resolvers
                    .iter()
                    .map(|r| r.queries.load(std::sync::atomic::Ordering::Relaxed))
                    .sum(),
                instances: ids.len(),
                extra_hops,
            }
        })
        .collect()
}
