//! The scenarios: what happens a third of the way into a run, and how the setups' instances
//! run for it (in-process demo backends, or `roundhouse backend` processes of scaling groups).

use super::setup::PER_REGION;
use std::time::Duration;

/// A fault or operation injected a third of the way into the run.
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
    /// The client population grows [`SPIKE`] times; CPU target tracking scales out.
    LoadSpike,
    /// A rolling replacement of us-east's instances: launch one, drain and stop an old one.
    DeployDrain,
    /// Sticky clients; every region's desired capacity drops from 2 to 1.
    StickyScaleIn,
}

/// How late the slow instance answers.
pub const SLOW: Duration = Duration::from_millis(300);
/// How many times the client population grows in `load-spike`.
pub const SPIKE: usize = 4;
/// How long health checks take to mark a crashed instance down (2 failed probes 1 s apart,
/// the second one timing out after 500 ms): the end of the fault's "during" phase.
pub const DETECTION: Duration = Duration::from_millis(2_500);

/// How a scenario's instances run when they sit in scaling groups (one per region).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Capacity {
    /// Instances per region at the start.
    pub desired: u32,
    /// Group minimum.
    pub min: u32,
    /// Group maximum.
    pub max: u32,
    /// CPU target tracking at this average (% of one core), when the scenario scales by load.
    pub cpu_target: Option<f64>,
    /// CPU each `GET /` burns, so that load shows as CPU.
    pub cpu_per_request: Duration,
    /// Target groups stick clients to a target with the `rh_<group>` cookie.
    pub sticky: bool,
}

impl Scenario {
    /// Every scenario, in run order.
    pub const ALL: [Scenario; 7] = [
        Scenario::Steady,
        Scenario::InstanceCrash,
        Scenario::RegionOutage,
        Scenario::SlowInstance,
        Scenario::LoadSpike,
        Scenario::DeployDrain,
        Scenario::StickyScaleIn,
    ];

    /// Its name on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Steady => "steady",
            Scenario::InstanceCrash => "instance-crash",
            Scenario::RegionOutage => "region-outage",
            Scenario::SlowInstance => "slow-instance",
            Scenario::LoadSpike => "load-spike",
            Scenario::DeployDrain => "deploy-drain",
            Scenario::StickyScaleIn => "sticky-scale-in",
        }
    }

    /// By name.
    pub fn parse(name: &str) -> Option<Scenario> {
        Scenario::ALL.into_iter().find(|s| s.name() == name)
    }

    /// Instance indexes that crash at the fault (six in-process instances, two per region).
    pub fn victims(self) -> Vec<usize> {
        match self {
            Scenario::InstanceCrash => vec![0],
            Scenario::RegionOutage => (0..PER_REGION).collect(),
            _ => Vec::new(),
        }
    }

    /// The scaling groups' shape when the scenario runs its instances in them; `None`:
    /// six in-process instances.
    pub fn capacity(self) -> Option<Capacity> {
        let base = Capacity {
            desired: PER_REGION as u32,
            min: 1,
            max: PER_REGION as u32 + 1,
            cpu_target: None,
            cpu_per_request: Duration::ZERO,
            sticky: false,
        };
        match self {
            Scenario::LoadSpike => Some(Capacity {
                desired: 1,
                max: 3,
                cpu_target: Some(6.0),
                cpu_per_request: Duration::from_micros(400),
                ..base
            }),
            Scenario::DeployDrain => Some(base),
            Scenario::StickyScaleIn => Some(Capacity {
                max: PER_REGION as u32,
                sticky: true,
                ..base
            }),
            _ => None,
        }
    }

    /// What happens, in a sentence (report.md).
    pub fn describe(self) -> &'static str {
        match self {
            Scenario::Steady => "No fault.",
            Scenario::InstanceCrash => {
                "One instance of us-east crashes a third of the way in (listener and \
                 connections close)."
            }
            Scenario::RegionOutage => "Both instances of us-east crash a third of the way in.",
            Scenario::SlowInstance => {
                "One instance of us-east answers 300 ms late from a third of the way in; \
                 it stays healthy."
            }
            Scenario::LoadSpike => {
                "Each region is a scaling group of `roundhouse backend` processes (1 to 3, \
                 CPU target tracking at 6 % of a core, every request burns 0.4 ms of CPU); a \
                 third of the way in, the client population grows four times."
            }
            Scenario::DeployDrain => {
                "Each region is a scaling group of two `roundhouse backend` processes; a third \
                 of the way in, us-east is replaced one instance at a time: launch one, wait \
                 until it passed its health checks, drain and stop the oldest."
            }
            Scenario::StickyScaleIn => {
                "Clients keep their target (the balancer's cookie; the address they resolved); \
                 a third of the way in, every region's scaling group goes from two instances \
                 to one. A session is lost when a later answer comes from another instance \
                 than its first."
            }
        }
    }

    /// Clients keep their target: the balancer's cookie, and the address they resolved.
    pub fn sticky(self) -> bool {
        self.capacity().is_some_and(|c| c.sticky)
    }
}
