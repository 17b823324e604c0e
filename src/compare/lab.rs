//! `roundhouse compare --lab FILE`: the client population of [`super::client`] against the
//! three setups as they run in the docker lab (`lab/`, docs/lab.md) instead of in this
//! process. The clients run wherever this process runs (`lab/compare.sh` starts it in a
//! container on the lab's WAN, in us-east); the faults go to the lab's containers through the
//! Docker Engine API:
//!
//! - `instance-crash`: the oldest backend container of the fault group is killed (SIGKILL);
//!   its scaling group replaces it;
//! - `region-outage`: every backend container of the fault group is paused (frozen: requests
//!   and health checks time out) until the scenario ends;
//! - `slow-instance` needs a backend's admin endpoint, which the lab's regional networks hide
//!   from the WAN: not available here.
//!
//! Between scenarios the containers are thawed, and the next scenario starts once every setup
//! answers again, the fault group has its containers back, and the GSLB name answers as it
//! did before the first fault.

use super::client::InstanceIds;
use super::dns::query_a;
use super::setup::Kind;
use super::{CompareError, Fault, Front, Options, Run, Scenario};
use crate::scaler::docker::GROUP_LABEL;
use crate::scaler::docker_api::{DockerError, Engine};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// The Docker Engine socket.
const SOCKET: &str = "/var/run/docker.sock";
/// Longest wait for the lab to answer before a scenario.
const READY: Duration = Duration::from_secs(120);

/// Where the setups of the lab are (`lab/compare.toml`).
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabTargets {
    /// The DNS server the simulated resolvers ask (address:port).
    pub dns: SocketAddr,
    /// Port clients connect to on resolved addresses.
    pub port: u16,
    /// `dns-rr`: the name clients resolve.
    pub dns_rr: String,
    /// `lb`: the one balancer every client connects to.
    pub lb: SocketAddr,
    /// `gslb`: the name clients resolve.
    pub gslb: String,
    /// Scaling group whose containers the faults hit (label `roundhouse.group`).
    pub fault_group: String,
}

/// Why the lab could not run a comparison.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    /// The targets file is wrong.
    #[error("{path}: {message}")]
    Targets {
        /// File.
        path: String,
        /// What is wrong (with its line).
        message: String,
    },
    /// The Docker daemon refused.
    #[error(transparent)]
    Docker(#[from] DockerError),
    /// A scenario the lab cannot inject.
    #[error(
        "scenario {0} is not available in the lab (a backend's admin endpoint is not reachable from the WAN)"
    )]
    Unsupported(&'static str),
    /// The lab did not answer.
    #[error("the lab is not ready within {0:?}: {1}")]
    NotReady(Duration, String),
}

impl LabTargets {
    /// Reads the targets from TOML `text` of file `path`.
    pub fn parse(text: &str, path: &str) -> Result<LabTargets, LabError> {
        toml::from_str(text).map_err(|e| {
            let line = e
                .span()
                .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
            LabError::Targets {
                path: match line {
                    Some(l) => format!("{path}:{l}"),
                    None => path.to_string(),
                },
                message: e.message().to_string(),
            }
        })
    }
}

/// The lab: its targets, and the containers a fault froze.
pub struct Lab {
    targets: LabTargets,
    engine: Engine,
    paused: Mutex<Vec<String>>,
    /// Containers of the fault group when the fault came.
    before: Mutex<usize>,
}

impl Lab {
    /// The lab at `targets`, its Docker daemon on the usual socket.
    pub fn new(targets: LabTargets) -> Lab {
        Lab {
            targets,
            engine: Engine::new(SOCKET),
            paused: Mutex::new(Vec::new()),
            before: Mutex::new(0),
        }
    }

    /// Where each setup's clients go, with fresh instance numbers.
    pub fn fronts(&self) -> Vec<Front> {
        let t = &self.targets;
        let front = |kind, fixed, name: &str| Front {
            kind,
            dns: t.dns,
            fixed,
            name: name.to_string(),
            port: t.port,
            ids: Arc::new(InstanceIds::default()),
            // Every setup of the lab reaches the backends through a regional balancer.
            extra_hops: 1,
        };
        vec![
            front(Kind::DnsRr, None, &t.dns_rr),
            front(Kind::Lb, Some(t.lb), ""),
            front(Kind::Gslb, None, &t.gslb),
        ]
    }

    async fn group(&self) -> Result<Vec<String>, DockerError> {
        self.engine
            .labelled(GROUP_LABEL, &self.targets.fault_group)
            .await
    }

    /// Injects `scenario`'s fault (logged; a refused call leaves the run without its fault).
    pub async fn inject(&self, scenario: Scenario) {
        let containers = match self.group().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!("cannot list the fault group: {e}");
                return;
            }
        };
        *self.before.lock().expect("not poisoned") = containers.len();
        let hit = match scenario {
            Scenario::Steady | Scenario::SlowInstance => return,
            Scenario::InstanceCrash => containers.into_iter().take(1).collect::<Vec<_>>(),
            Scenario::RegionOutage => containers,
        };
        for id in hit {
            let done = if scenario == Scenario::InstanceCrash {
                self.engine.kill(&id).await
            } else {
                let r = self.engine.pause(&id).await;
                if r.is_ok() {
                    self.paused.lock().expect("not poisoned").push(id.clone());
                }
                r
            };
            if let Err(e) = done {
                tracing::warn!(container = %id, "fault not injected: {e}");
            }
        }
    }

    /// Thaws what the fault froze.
    pub async fn heal(&self) -> Result<(), LabError> {
        let paused = std::mem::take(&mut *self.paused.lock().expect("not poisoned"));
        for id in paused {
            self.engine.unpause(&id).await?;
        }
        Ok(())
    }

    /// The first address `name` resolves to, from the lab's DNS server.
    async fn resolve(&self, name: &str) -> Vec<Ipv4Addr> {
        query_a(self.targets.dns, name, 1)
            .await
            .map(|a| a.addrs)
            .unwrap_or_default()
    }

    /// Waits until every setup answers `GET /` with 200, the fault group has as many
    /// containers as before the fault, and the GSLB name answers `baseline` (when given).
    async fn ready(&self, baseline: Option<&[Ipv4Addr]>) -> Result<Vec<Ipv4Addr>, LabError> {
        let deadline = Instant::now() + READY;
        let t = &self.targets;
        let mut last;
        loop {
            let gslb = self.resolve(&t.gslb).await;
            last = self.not_ready(&gslb, baseline).await;
            if last.is_empty() {
                return Ok(gslb);
            }
            if Instant::now() > deadline {
                return Err(LabError::NotReady(READY, last));
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// What is not ready yet ("" when all is).
    async fn not_ready(&self, gslb: &[Ipv4Addr], baseline: Option<&[Ipv4Addr]>) -> String {
        let t = &self.targets;
        let wait = Duration::from_secs(2);
        let ok = |status: Option<u16>| status == Some(200);
        if let Some(b) = baseline
            && gslb != b
        {
            return format!("{} answers {gslb:?}, not {b:?} as before", t.gslb);
        }
        for name in [&t.dns_rr, &t.gslb] {
            let addrs = if name == &t.gslb {
                gslb.to_vec()
            } else {
                self.resolve(name).await
            };
            let Some(ip) = addrs.first() else {
                return format!("{name} has no address");
            };
            let addr = SocketAddr::new((*ip).into(), t.port);
            if !ok(super::http::get_once(addr, "/", wait).await) {
                return format!("{name} ({addr}) does not answer 200");
            }
        }
        if !ok(super::http::get_once(t.lb, "/", wait).await) {
            return format!("lb ({}) does not answer 200", t.lb);
        }
        let before = *self.before.lock().expect("not poisoned");
        match self.group().await {
            Ok(c) if c.len() >= before => String::new(),
            Ok(c) => format!("{} has {} of {before} containers", t.fault_group, c.len()),
            Err(e) => e.to_string(),
        }
    }
}

/// Runs every scenario against the lab's three setups side by side; `progress` as
/// [`super::run`].
pub async fn run(
    options: &Options,
    lab: &Lab,
    mut progress: impl FnMut(Scenario, Duration, Duration),
) -> Result<Vec<Run>, CompareError> {
    if let Some(s) = options
        .scenarios
        .iter()
        .find(|s| **s == Scenario::SlowInstance)
    {
        return Err(LabError::Unsupported(s.name()).into());
    }
    let baseline = lab.ready(None).await?;
    let mut runs = Vec::new();
    for &scenario in &options.scenarios {
        lab.ready(Some(&baseline)).await?;
        let fronts = lab.fronts();
        let result = super::one(options, scenario, &fronts, &Fault::Lab(lab), &mut progress).await;
        lab.heal().await?;
        runs.extend(result);
    }
    lab.ready(Some(&baseline)).await?;
    Ok(runs)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TARGETS: &str = "dns = \"10.90.1.5:53\"\nport = 80\ndns_rr = \"rr.lab.test\"\n\
        lb = \"10.90.1.10:80\"\ngslb = \"www.lab.test\"\nfault_group = \"lab-us-east\"\n";

    #[test]
    fn targets_are_read_and_mistakes_name_their_line() {
        let t = LabTargets::parse(TARGETS, "compare.toml").unwrap();
        assert_eq!(t.dns, "10.90.1.5:53".parse().unwrap());
        assert_eq!(
            (t.dns_rr.as_str(), t.gslb.as_str()),
            ("rr.lab.test", "www.lab.test")
        );
        let fronts = Lab::new(t).fronts();
        let kinds: Vec<Kind> = fronts.iter().map(|f| f.kind).collect();
        assert_eq!(kinds, Kind::ALL);
        assert_eq!(fronts[1].fixed, Some("10.90.1.10:80".parse().unwrap()));
        let bad = TARGETS.replace("port = 80", "port = 80\nspeed = 3");
        let e = LabTargets::parse(&bad, "compare.toml")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("compare.toml:3: unknown field `speed`"),
            "{e}"
        );
        let bad = TARGETS.replace("\"10.90.1.10:80\"", "\"nowhere\"");
        let e = LabTargets::parse(&bad, "compare.toml")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("compare.toml:4: invalid socket address"),
            "{e}"
        );
    }
}
