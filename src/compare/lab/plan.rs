//! The pure parts of a lab comparison: what the balancers' admin servers and the DNS
//! servers' metrics say, which containers a scenario's fault hits (and how it is undone),
//! and which instances each setup has in service.

use super::targets::LabTargets;
use crate::compare::Scenario;
use crate::compare::setup::Kind;
use serde::Deserialize;
use std::net::SocketAddr;

/// One scaling group as `GET /v1/scaling-groups` shows it (the fields used here).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Group {
    /// Name.
    pub name: String,
    /// Minimum size.
    pub min: u32,
    /// Maximum size.
    pub max: u32,
    /// Instances, oldest first.
    pub instances: Vec<Member>,
}

/// One instance of a group; its id is also its container's name.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Member {
    /// Instance id.
    pub id: String,
    /// Where it serves (on the region's own network).
    pub addr: String,
    /// `pending`, `in-service` or `draining`.
    pub state: String,
}

impl Member {
    /// Registered with the balancer.
    pub fn in_service(&self) -> bool {
        self.state == "in-service"
    }
}

/// The groups of a `GET /v1/scaling-groups` body.
pub fn groups(body: &str) -> Result<Vec<Group>, String> {
    #[derive(Deserialize)]
    struct Doc {
        groups: Vec<Group>,
    }
    serde_json::from_str::<Doc>(body)
        .map(|d| d.groups)
        .map_err(|e| format!("not a scaling-groups document: {e}"))
}

/// A-record queries in `zone` (with or without the final dot) of a DNS server's
/// Prometheus text: the sum of its `roundhouse_dns_queries_total` series.
pub fn zone_queries(metrics: &str, zone: &str) -> u64 {
    let want = zone.trim_end_matches('.').to_ascii_lowercase();
    metrics
        .lines()
        .filter_map(|l| l.strip_prefix("roundhouse_dns_queries_total{"))
        .filter_map(|l| l.split_once('}'))
        .filter(|(labels, _)| {
            let label = |k: &str| {
                labels.split(',').find_map(|kv| {
                    let v = kv.strip_prefix(k)?.strip_prefix("=\"")?;
                    v.strip_suffix('"')
                })
            };
            let z = label("zone").map(|z| z.trim_end_matches('.').to_ascii_lowercase());
            z.as_deref() == Some(want.as_str()) && label("qtype") == Some("A")
        })
        .filter_map(|(_, value)| value.trim().parse::<f64>().ok())
        .map(|v| v as u64)
        .sum()
}

/// One step of a fault, or of undoing it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// SIGKILL to the container's process (`docker kill`): a crash.
    Kill(String),
    /// Start a stopped container again.
    Start(String),
    /// Freeze the container (`docker pause`): connections are accepted by the kernel and
    /// never answered; health checks time out.
    Pause(String),
    /// Thaw a paused container.
    Unpause(String),
    /// `POST /admin/delay?ms=N` on the instance (0: no delay).
    Delay {
        /// Container (for the report).
        container: String,
        /// The instance's address.
        addr: SocketAddr,
        /// Delay of `GET /`.
        ms: u64,
    },
}

/// A scenario's fault in the lab.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Done at the fault.
    pub fault: Vec<Action>,
    /// Done after the run (a killed backend of a scaling group is replaced by its scaler).
    pub undo: Vec<Action>,
    /// Instances out of service from the fault on.
    pub down: Vec<String>,
}

/// Why a scenario does not run in the lab (`None`: it does).
pub fn unsupported(scenario: Scenario) -> Option<&'static str> {
    match scenario {
        Scenario::Steady
        | Scenario::InstanceCrash
        | Scenario::RegionOutage
        | Scenario::SlowInstance => None,
        Scenario::LoadSpike => Some(
            "the lab's dns-rr instances are not a scaling group (the scalers run in the \
             balancers and cannot register instances in the DNS servers' pools), and the \
             comparison's base load already holds the lab's groups at their maximum",
        ),
        Scenario::DeployDrain => Some(
            "the lab's dns-rr instances are not a scaling group, and the lab's target \
             tracking (5 requests/s per backend) would undo a manual desired capacity",
        ),
        Scenario::StickyScaleIn => Some(
            "the lab's target groups have no stickiness, and its dns-rr instances are not \
             a scaling group",
        ),
    }
}

/// The fault of `scenario` on the fault region of `t`, whose scaling group is `group`.
pub fn plan(scenario: Scenario, t: &LabTargets, group: Option<&Group>) -> Plan {
    let rr: Vec<_> = t.instances_in(&t.fault_region).collect();
    let members: Vec<&Member> = group
        .map(|g| g.instances.iter().collect())
        .unwrap_or_default();
    let first = members.iter().find(|m| m.in_service());
    let mut p = Plan::default();
    match scenario {
        Scenario::InstanceCrash => {
            let crashed = rr.first().map(|i| &i.container).into_iter();
            for c in crashed.chain(first.map(|m| &m.id)) {
                p.fault.push(Action::Kill(c.clone()));
                p.down.push(c.clone());
            }
            p.undo = rr
                .iter()
                .take(1)
                .map(|i| Action::Start(i.container.clone()))
                .collect();
        }
        Scenario::RegionOutage => {
            let frozen = rr.iter().map(|i| &i.container);
            for c in frozen.chain(members.iter().map(|m| &m.id)) {
                p.fault.push(Action::Pause(c.clone()));
                p.undo.push(Action::Unpause(c.clone()));
                p.down.push(c.clone());
            }
        }
        Scenario::SlowInstance => {
            let rr = rr
                .first()
                .map(|i| (i.container.clone(), SocketAddr::new(i.address, t.port)));
            let backend = first.and_then(|m| Some((m.id.clone(), m.addr.parse().ok()?)));
            for (container, addr) in rr.into_iter().chain(backend) {
                let delay = |ms| Action::Delay {
                    container: container.clone(),
                    addr,
                    ms,
                };
                p.fault.push(delay(crate::compare::SLOW.as_millis() as u64));
                p.undo.push(delay(0));
            }
        }
        _ => {}
    }
    p
}

/// Ids of the instances each setup ([`Kind::ALL`] order) has in service: the `dns-rr`
/// containers, the `lb` region's group, every group (`gslb`); without those `down`.
pub fn in_service(t: &LabTargets, groups: &[Group], down: &[String]) -> Vec<Vec<String>> {
    let up = |id: &String| !down.contains(id);
    let group_of = |region: &str| t.region(region).map(|r| r.group.clone());
    let serving = |g: &Group| -> Vec<String> {
        let ids = g.instances.iter().filter(|m| m.in_service()).map(|m| &m.id);
        ids.filter(|id| up(id)).cloned().collect()
    };
    Kind::ALL
        .iter()
        .map(|kind| match kind {
            Kind::DnsRr => {
                let ids = t.dns_rr.instance.iter().map(|i| &i.container);
                ids.filter(|id| up(id)).cloned().collect()
            }
            Kind::Lb => groups
                .iter()
                .filter(|g| Some(&g.name) == group_of(&t.lb.region).as_ref())
                .flat_map(serving)
                .collect(),
            Kind::Gslb => groups.iter().flat_map(serving).collect(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compare::lab::targets::tests::shipped;

    fn lab() -> LabTargets {
        let (text, path) = shipped();
        LabTargets::parse(&text, path).unwrap()
    }

    const GROUPS: &str = r#"{"groups":[
      {"name":"lab-us-east","region":"us-east","min":1,"desired":3,"max":4,"instances":[
        {"id":"lab-us-east-4","addr":"10.91.1.131:8080","state":"pending","warmed_up":false,"version":1},
        {"id":"lab-us-east-2","addr":"10.91.1.129:8080","state":"in-service","warmed_up":true,"version":1},
        {"id":"lab-us-east-3","addr":"10.91.1.130:8080","state":"in-service","warmed_up":true,"version":1}],
       "activities":[{"description":"Launching a new instance: lab-us-east-4"}]}]}"#;

    fn us_east() -> Group {
        groups(GROUPS).unwrap().remove(0)
    }

    #[test]
    fn the_admin_document_and_the_metrics_are_read() {
        let g = us_east();
        assert_eq!((g.name.as_str(), g.min, g.max), ("lab-us-east", 1, 4));
        assert_eq!(g.instances.len(), 3);
        assert!(!g.instances[0].in_service() && g.instances[1].in_service());
        assert!(groups("{\"nothing\": 1}").is_err());
        let metrics = "# TYPE roundhouse_dns_queries_total counter\n\
            roundhouse_dns_queries_total{zone=\"lab.test.\",qtype=\"A\",rcode=\"NOERROR\",transport=\"udp\"} 40\n\
            roundhouse_dns_queries_total{zone=\"lab.test.\",qtype=\"A\",rcode=\"NOERROR\",transport=\"tcp\"} 2\n\
            roundhouse_dns_queries_total{zone=\"lab.test.\",qtype=\"TXT\",rcode=\"NOERROR\",transport=\"udp\"} 7\n\
            roundhouse_dns_queries_total{zone=\"rr.lab.test.\",qtype=\"A\",rcode=\"NOERROR\",transport=\"udp\"} 9\n\
            roundhouse_pool_answers_total{pool=\"www\",region=\"us-east\",endpoint=\"10.90.1.10\"} 100\n";
        assert_eq!(zone_queries(metrics, "lab.test"), 42);
        assert_eq!(zone_queries(metrics, "rr.lab.test."), 9);
        assert_eq!(zone_queries(metrics, "other.test"), 0);
    }

    #[test]
    fn a_crash_kills_one_instance_of_each_kind_in_the_fault_region() {
        let p = plan(Scenario::InstanceCrash, &lab(), Some(&us_east()));
        let kill = |c: &str| Action::Kill(c.into());
        // The oldest instance in service, not the pending one.
        assert_eq!(p.fault, [kill("lab-rr-us-east-1"), kill("lab-us-east-2")]);
        assert_eq!(p.undo, [Action::Start("lab-rr-us-east-1".into())]);
        assert_eq!(p.down, ["lab-rr-us-east-1", "lab-us-east-2"]);
    }

    #[test]
    fn an_outage_freezes_the_whole_region_until_undone() {
        let p = plan(Scenario::RegionOutage, &lab(), Some(&us_east()));
        let frozen = [
            "lab-rr-us-east-1",
            "lab-rr-us-east-2",
            "lab-us-east-4",
            "lab-us-east-2",
            "lab-us-east-3",
        ];
        let pause: Vec<_> = frozen
            .iter()
            .map(|c| Action::Pause(c.to_string()))
            .collect();
        let thaw: Vec<_> = frozen
            .iter()
            .map(|c| Action::Unpause(c.to_string()))
            .collect();
        assert_eq!(
            (p.fault, p.undo, p.down),
            (pause, thaw, frozen.map(String::from).to_vec())
        );
    }

    #[test]
    fn a_slow_instance_is_delayed_and_stays_in_service() {
        let p = plan(Scenario::SlowInstance, &lab(), Some(&us_east()));
        let delay = |c: &str, a: &str, ms| Action::Delay {
            container: c.into(),
            addr: a.parse().unwrap(),
            ms,
        };
        assert_eq!(
            p.fault,
            [
                delay("lab-rr-us-east-1", "10.90.1.21:80", 300),
                delay("lab-us-east-2", "10.91.1.129:8080", 300)
            ]
        );
        assert_eq!(p.undo[1], delay("lab-us-east-2", "10.91.1.129:8080", 0));
        assert!(p.down.is_empty());
        assert_eq!(
            plan(Scenario::Steady, &lab(), Some(&us_east())),
            Plan::default()
        );
        // Without the group's view the dns-rr instance still gets its fault.
        assert_eq!(plan(Scenario::InstanceCrash, &lab(), None).fault.len(), 1);
    }

    #[test]
    fn each_setup_counts_its_own_instances_in_service() {
        let t = lab();
        let mut eu = us_east();
        eu.name = "lab-eu-west".into();
        eu.instances
            .iter_mut()
            .for_each(|m| m.id = m.id.replace("us-east", "eu-west"));
        let down = vec!["lab-rr-us-east-1".to_string(), "lab-us-east-3".to_string()];
        let s = in_service(&t, &[us_east(), eu], &down);
        assert_eq!(s[0].len(), 5, "six dns-rr instances, one down");
        assert_eq!(
            s[1],
            ["lab-us-east-2"],
            "lb: us-east's group, in service, not down"
        );
        assert_eq!(s[2], ["lab-us-east-2", "lab-eu-west-2", "lab-eu-west-3"]);
    }

    #[test]
    fn only_the_scenarios_the_lab_can_stage_run_there() {
        let runs: Vec<_> = Scenario::ALL
            .into_iter()
            .filter(|s| unsupported(*s).is_none())
            .collect();
        assert_eq!(
            runs,
            [
                Scenario::Steady,
                Scenario::InstanceCrash,
                Scenario::RegionOutage,
                Scenario::SlowInstance
            ]
        );
    }
}
