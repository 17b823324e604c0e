//! The three setups, each a real server (DNS, balancers, health checks) started through
//! [`crate::app::start`] on loopback, in front of in-process demo backends:
//!
//! - `dns-rr`: `app.example.test` answered by a round-robin pool of the six instances;
//! - `lb`: one balancer in front of the same six instances, reached by address (no DNS);
//! - `gslb`: `app.example.test` answered by a pool of three regional balancers, each in
//!   front of its region's two instances.
//!
//! Instances of a setup share one port on their own addresses, because DNS answers carry
//! addresses only; the balancers of `gslb` share one port likewise.

use super::scenario::Capacity;
use crate::app::{self, ConfigSource, Running};
use crate::backend::{self, BackendOptions};
use crate::scaler::ScalerHandle;
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Regions of every setup.
pub const REGIONS: [&str; 3] = ["us-east", "eu-west", "ap-northeast"];
/// Instances per region.
pub const PER_REGION: usize = 2;
/// The name clients resolve in the DNS setups.
pub const NAME: &str = "app.example.test";

/// Which setup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// DNS round robin straight to the instances.
    DnsRr,
    /// One balancer, no DNS.
    Lb,
    /// GSLB DNS to regional balancers.
    Gslb,
}

impl Kind {
    /// Every setup, in report order.
    pub const ALL: [Kind; 3] = [Kind::DnsRr, Kind::Lb, Kind::Gslb];

    /// Its name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Kind::DnsRr => "dns-rr",
            Kind::Lb => "lb",
            Kind::Gslb => "gslb",
        }
    }

    /// Proxies between a client and an instance.
    pub fn extra_hops(self) -> u32 {
        match self {
            Kind::DnsRr => 0,
            Kind::Lb | Kind::Gslb => 1,
        }
    }

    /// Second octet of its loopback addresses, so that setups running side by side never
    /// share an address.
    fn octet(self) -> u8 {
        match self {
            Kind::DnsRr => 110,
            Kind::Lb => 120,
            Kind::Gslb => 130,
        }
    }
}

/// Why a setup could not start.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// No port was free on every address that needs it.
    #[error("no common free port on {0}")]
    Port(String),
    /// The scratch directory could not be written.
    #[error("{path}: {source}")]
    Io {
        /// Path.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// The server did not start.
    #[error(transparent)]
    App(#[from] app::AppError),
}

/// One running instance.
pub struct Instance {
    /// Its address.
    pub addr: SocketAddr,
    /// Its region index.
    pub region: usize,
    /// Cancel to crash it (listener and connections close at once).
    pub stop: CancellationToken,
}

/// A running setup.
pub struct Setup {
    /// Which setup.
    pub kind: Kind,
    /// The DNS server (the `lb` setup has none that clients use).
    pub dns: SocketAddr,
    /// Where clients connect without DNS (`lb`), else `None`.
    pub fixed: Option<SocketAddr>,
    /// Port clients connect to on resolved addresses.
    pub port: u16,
    /// In-process instances; an instance's index is its number in reports (none when scaled).
    pub instances: Vec<Instance>,
    /// Instances in service at the start when the instances run in scaling groups.
    pub scaled: Option<usize>,
    running: Running,
    dir: PathBuf,
}

fn addr(kind: Kind, region: usize, host: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, kind.octet(), region as u8 + 1, host))
}

/// Binds `ips` on one port the kernel offered for the first (a few tries).
fn common_port(ips: &[IpAddr]) -> Result<Vec<std::net::TcpListener>, SetupError> {
    for _ in 0..20 {
        let first = std::net::TcpListener::bind((ips[0], 0)).map_err(|e| io(Path::new("-"), e))?;
        let port = first
            .local_addr()
            .map_err(|e| io(Path::new("-"), e))?
            .port();
        let mut all = vec![first];
        for ip in &ips[1..] {
            match std::net::TcpListener::bind((*ip, port)) {
                Ok(l) => all.push(l),
                Err(_) => break,
            }
        }
        if all.len() == ips.len() {
            return Ok(all);
        }
    }
    Err(SetupError::Port(format!("{ips:?}")))
}

fn io(path: &Path, source: std::io::Error) -> SetupError {
    SetupError::Io {
        path: path.to_path_buf(),
        source,
    }
}

const ZONE: &str = "$TTL 60\n@ SOA ns hostmaster 1 3600 600 86400 5\n@ NS ns\nns A 127.0.0.1\n";

impl Setup {
    /// Starts the instances and the server; `ttl` is the TTL of DNS answers and `scratch`
    /// a directory for the configuration and zone files. With `scaled`, the instances are
    /// `roundhouse backend` processes (program `exe`) of one scaling group per region.
    pub async fn start(
        kind: Kind,
        ttl: Duration,
        scratch: &Path,
        scaled: Option<(Capacity, &Path)>,
    ) -> Result<Setup, SetupError> {
        let per_region = match scaled {
            Some((c, _)) => c.max as usize + 1,
            None => PER_REGION,
        };
        let ips: Vec<IpAddr> = (0..REGIONS.len())
            .flat_map(|r| (0..per_region).map(move |i| addr(kind, r, 11 + i as u8)))
            .collect();
        let listeners = common_port(&ips)?;
        let iport = listeners[0]
            .local_addr()
            .map_err(|e| io(scratch, e))?
            .port();
        let mut instances = Vec::new();
        if scaled.is_some() {
            // Launch templates use this port on every address; free it for the instances.
            drop(listeners);
        } else {
            for (i, l) in listeners.into_iter().enumerate() {
                let a = l.local_addr().map_err(|e| io(scratch, e))?;
                l.set_nonblocking(true).map_err(|e| io(scratch, e))?;
                let l = TcpListener::from_std(l).map_err(|e| io(scratch, e))?;
                let stop = CancellationToken::new();
                let region = i / PER_REGION;
                let options = BackendOptions {
                    region: REGIONS[region].into(),
                    id: i.to_string(),
                    ..BackendOptions::default()
                };
                tokio::spawn(backend::run(l, options, stop.clone()));
                instances.push(Instance {
                    addr: a,
                    region,
                    stop,
                });
            }
        }
        let lb_ips: Vec<IpAddr> = match kind {
            Kind::DnsRr => Vec::new(),
            Kind::Lb => vec![addr(kind, 0, 1)],
            Kind::Gslb => (0..REGIONS.len()).map(|r| addr(kind, r, 1)).collect(),
        };
        // Free the balancers' common port just before the server binds it.
        let lb_port = match lb_ips.is_empty() {
            true => 0,
            false => common_port(&lb_ips)?[0]
                .local_addr()
                .map_err(|e| io(scratch, e))?
                .port(),
        };
        let dir = scratch.join(kind.name());
        std::fs::create_dir_all(dir.join("zones")).map_err(|e| io(&dir, e))?;
        let zone = dir.join("zones/example.test.zone");
        std::fs::write(&zone, ZONE).map_err(|e| io(&zone, e))?;
        let members = Members {
            instances: &instances,
            port: iport,
            scaled: scaled.map(|(c, exe)| {
                let per: Vec<Vec<IpAddr>> = (0..REGIONS.len())
                    .map(|r| ips[r * per_region..(r + 1) * per_region].to_vec())
                    .collect();
                (c, exe, per)
            }),
        };
        let text = config(kind, ttl, &members, &lb_ips, lb_port);
        let file = dir.join("roundhouse.toml");
        std::fs::write(&file, text).map_err(|e| io(&file, e))?;
        let running = app::start(ConfigSource::File(file)).await?;
        let fixed = (kind == Kind::Lb).then(|| SocketAddr::new(lb_ips[0], lb_port));
        let port = match kind {
            Kind::DnsRr => iport,
            _ => lb_port,
        };
        Ok(Setup {
            kind,
            dns: running.dns_addrs[0],
            fixed,
            port,
            instances,
            scaled: scaled.map(|(c, _)| c.desired as usize * REGIONS.len()),
            running,
            dir,
        })
    }

    /// The scaling groups (none unless the setup was started `scaled`).
    pub fn scaler(&self) -> &Arc<ScalerHandle> {
        &self.running.scaler
    }

    /// Waits until every instance (through the balancers where there are some) answers;
    /// scaled setups wait for their desired capacity in service and in the DNS answer.
    pub async fn ready(&self, limit: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        let t = Duration::from_millis(500);
        while tokio::time::Instant::now() < deadline {
            let mut ok = true;
            if let Some(want) = self.scaled {
                let serving = super::scaled::in_service(self.scaler());
                ok &= serving.len() == want;
                if self.kind == Kind::DnsRr {
                    let answer = super::dns::query_a(self.dns, NAME, 1).await;
                    ok &= answer.is_some_and(|a| a.addrs.len() == want);
                }
            }
            for (_, a) in &self.running.listener_addrs {
                ok &= super::http::get_once(*a, "/health", t).await == Some(200);
            }
            for i in &self.instances {
                ok &= super::http::get_once(i.addr, "/health", t).await == Some(200);
            }
            if ok {
                // One more health-check interval so that every probe has passed twice.
                tokio::time::sleep(Duration::from_millis(1200)).await;
                return true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        false
    }

    /// Stops the server and every instance, and removes the scratch files.
    pub async fn stop(self) {
        for i in &self.instances {
            i.stop.cancel();
        }
        self.running.shutdown.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(5), self.running.join()).await;
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The instances of a setup: in-process ones, or scaling groups (per region, the
/// addresses their launch template uses) on one common port.
struct Members<'a> {
    instances: &'a [Instance],
    port: u16,
    scaled: Option<(Capacity, &'a Path, Vec<Vec<IpAddr>>)>,
}

/// A scaling group of `roundhouse backend` processes in `region` (index `r`).
fn scaling_group(m: &Members, r: usize, ttl: Duration, tgs: &[&str], pools: &[&str]) -> String {
    let Some((c, exe, ips)) = &m.scaled else {
        return String::new();
    };
    let quoted = |v: &[&str]| {
        let q: Vec<String> = v.iter().map(|x| format!("\"{x}\"")).collect();
        q.join(", ")
    };
    let exe = serde_json::to_string(&exe.display().to_string()).expect("a string");
    let burn = format!("{}ms", c.cpu_per_request.as_secs_f64() * 1000.0);
    let addresses: Vec<String> = ips[r].iter().map(|a| format!("\"{a}\"")).collect();
    let mut g = format!(
        "[[scaling_group]]\nname = \"{name}\"\nregion = \"{name}\"\nmin = {}\ndesired = {}\n\
         max = {}\nhealth_check_type = \"process\"\nhealth_check_grace_period = \"5s\"\n\
         instance_warmup = \"1s\"\nperiod = \"2s\"\ndefault_cooldown = \"5s\"\n\
         deregistration_delay = \"{}s\"\ntarget_groups = [{}]\npools = [{}]\n\n\
         [scaling_group.launch_template]\ncommand = [{exe}, \"backend\", \"--listen\", \
         \"{{address}}:{{port}}\", \"--id\", \"{{id}}\", \"--region\", \"{{region}}\", \
         \"--exit-with-stdin\", \"--cpu-per-request\", \"{burn}\"]\naddresses = [{}]\nport = {}\nenv = {{ RUST_LOG = \"warn\" }}\n\n",
        c.min,
        c.desired,
        c.max,
        ttl.as_secs().max(1),
        quoted(tgs),
        quoted(pools),
        addresses.join(", "),
        m.port,
        name = REGIONS[r],
    );
    if let Some(target) = c.cpu_target {
        let _ = write!(
            g,
            "[[scaling_group.policy]]\nname = \"cpu\"\ntype = \"target-tracking\"\n\
             metric = \"cpu\"\ntarget = {target:.1}\nscale_in_window = \"60s\"\n\n"
        );
    }
    g
}

/// The configuration of a setup.
fn config(kind: Kind, ttl: Duration, m: &Members, lbs: &[IpAddr], port: u16) -> String {
    let mut c = String::from("[dns]\nlisten = [\"127.0.0.1:0\"]\nzones_dir = \"zones\"\n\n");
    let check = |port: u16| {
        format!(
            "protocol = \"http\"\nport = {port}\npath = \"/health\"\ninterval = \"1s\"\n\
             timeout = \"500ms\"\nhealthy_threshold = 2\nunhealthy_threshold = 2\n\n"
        )
    };
    let _ = write!(c, "[health_check.instance]\n{}", check(m.port));
    let binding = |pool: &str| {
        format!(
            "[[binding]]\nname = \"{NAME}.\"\ntype = \"A\"\npool = \"{pool}\"\nttl = \"{}s\"\n\n",
            ttl.as_secs().max(1)
        )
    };
    let endpoints = |ips: Vec<IpAddr>| {
        let list: Vec<String> = ips
            .iter()
            .map(|a| format!("{{ address = \"{a}\" }}"))
            .collect();
        list.join(", ")
    };
    let sticky = match &m.scaled {
        Some((c, _, _)) if c.sticky => "stickiness = { type = \"lb-cookie\", duration = \"1h\" }\n",
        _ => "",
    };
    let group = |name: &str, members: Vec<&Instance>| {
        let t: Vec<String> = members
            .iter()
            .map(|i| format!("{{ address = \"{}\" }}", i.addr))
            .collect();
        format!(
            "[target_group.{name}]\nhealth_check = \"instance\"\nalgorithm = \"least-outstanding\"\n\
             deregistration_delay = \"1s\"\n{sticky}targets = [{}]\n\n",
            t.join(", ")
        )
    };
    let listener = |name: &str, ip: IpAddr| {
        format!(
            "[[listener]]\nname = \"{name}\"\nlisten = \"{ip}:{port}\"\ntarget_group = \"{name}\"\n\n"
        )
    };
    let regions = 0..REGIONS.len();
    match kind {
        Kind::DnsRr => {
            let ips = m.instances.iter().map(|i| i.addr.ip()).collect();
            let _ = write!(
                c,
                "[pool.app]\npolicy = \"round-robin\"\nhealth_check = \"instance\"\nendpoints = [{}]\n\n{}",
                endpoints(ips),
                binding("app")
            );
            for r in regions {
                c.push_str(&scaling_group(m, r, ttl, &[], &["app"]));
            }
        }
        Kind::Lb => {
            c.push_str(&group("all", m.instances.iter().collect()));
            c.push_str(&listener("all", lbs[0]));
            for r in regions {
                c.push_str(&scaling_group(m, r, ttl, &["all"], &[]));
            }
        }
        Kind::Gslb => {
            let _ = write!(c, "[health_check.balancer]\n{}", check(port));
            for (r, ip) in lbs.iter().enumerate() {
                let members = m.instances.iter().filter(|i| i.region == r).collect();
                c.push_str(&group(REGIONS[r], members));
                c.push_str(&listener(REGIONS[r], *ip));
                c.push_str(&scaling_group(m, r, ttl, &[REGIONS[r]], &[]));
            }
            let _ = write!(
                c,
                "[pool.app]\npolicy = \"round-robin\"\nhealth_check = \"balancer\"\nendpoints = [{}]\n\n{}",
                endpoints(lbs.to_vec()),
                binding("app")
            );
        }
    }
    c
}
