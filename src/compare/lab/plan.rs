//! The pure parts of a lab comparison: what the balancers' admin servers and the DNS
//! servers' metrics say, which containers a scenario's fault hits (and how it is undone),
//! and which instances each setup has in service.

use super::targets::LabTargets;
use crate::compare::Scenario;
use crate::compare::setup::Kind;
use serde::Deserialize;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

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
    /// The instance refresh in progress (`null`: none).
    #[serde(default)]
    pub refresh: Option<serde_json::Value>,
}

impl Group {
    /// No refresh in progress, nothing draining, and at most `size` instances.
    pub fn settled(&self, size: Option<u32>) -> bool {
        self.refresh.is_none()
            && self.instances.iter().all(|m| m.state != "draining")
            && size.is_none_or(|n| self.instances.len() <= n as usize)
    }
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

/// One step of a fault, of an operation, or of undoing them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// SIGKILL to the container's process (`docker kill`): a crash.
    Kill(String),
    /// Start a stopped container again.
    Start(String),
    /// SIGTERM, then SIGKILL after 10 s (`docker stop`): the instance shuts down cleanly.
    Stop(String),
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
    /// Drain (`true`) or undrain a `dns-rr` instance in its pool at every DNS server.
    Drain(IpAddr, bool),
    /// New size limits (and desired capacity) of a region's scaling group.
    Capacity {
        /// The region.
        region: String,
        /// Minimum size.
        min: u32,
        /// Maximum size.
        max: u32,
        /// Desired capacity (`None`: moved into the limits).
        desired: Option<u32>,
    },
    /// Start an instance refresh of a region's scaling group.
    Refresh(String),
    /// Wait.
    Wait(Duration),
    /// Wait until the instance answers `GET /health`.
    Healthy(SocketAddr),
    /// Wait until a DNS server answers `dns-rr` with this address again.
    InAnswer(IpAddr),
    /// Wait until these regions' groups are settled ([`Group::settled`]).
    Settled(Vec<String>, Option<u32>),
    /// The instance leaves service (`true`) or comes back (the capacity chart).
    Down(String, bool),
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
    /// Per setup ([`Kind::ALL`] order), an operation that starts at the fault: steps one
    /// after another; it ends with the last one (empty: none).
    pub steps: [Vec<Action>; 3],
}

/// The fault of `scenario` on the fault region of `t`; `groups` as the balancers tell them,
/// `ttl` of the `dns-rr` answers (how long a drained instance stays in caches).
pub fn plan(scenario: Scenario, t: &LabTargets, groups: &[Group], ttl: Duration) -> Plan {
    let fault_group = t.region(&t.fault_region).map(|r| r.group.as_str());
    let group = groups.iter().find(|g| Some(g.name.as_str()) == fault_group);
    let rr: Vec<_> = t.instances_in(&t.fault_region).collect();
    let members: Vec<&Member> = group
        .map(|g| g.instances.iter().collect())
        .unwrap_or_default();
    let first = members.iter().find(|m| m.in_service());
    let mut p = Plan::default();
    // Out of the DNS answers, out of resolver caches, then stopped; and back.
    let drain = |i: &super::targets::LabInstance| {
        let c = i.container.clone();
        vec![
            Action::Drain(i.address, true),
            Action::Wait(ttl + Duration::from_secs(1)),
            Action::Down(c.clone(), true),
            Action::Stop(c),
        ]
    };
    let back = |i: &super::targets::LabInstance| {
        vec![
            Action::Start(i.container.clone()),
            Action::Healthy(SocketAddr::new(i.address, t.port)),
            Action::Drain(i.address, false),
            Action::InAnswer(i.address),
            Action::Down(i.container.clone(), false),
        ]
    };
    let all_regions: Vec<String> = t.region.iter().map(|r| r.name.clone()).collect();
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
        Scenario::DeployDrain => {
            // dns-rr: one instance at a time, the way a careful operator redeploys behind
            // DNS; the groups: an instance refresh of the fault region's group.
            p.steps[0] = rr
                .iter()
                .flat_map(|i| [drain(i), back(i)].concat())
                .collect();
            p.fault.push(Action::Refresh(t.fault_region.clone()));
            let settled = Action::Settled(vec![t.fault_region.clone()], None);
            p.steps[1] = vec![settled.clone()];
            p.steps[2] = vec![settled];
            p.undo = rr.iter().flat_map(|i| back(i)).collect();
        }
        Scenario::StickyScaleIn => {
            // Every region: its second dns-rr instance, and its group down to one.
            let removed: Vec<_> = t
                .region
                .iter()
                .filter_map(|r| t.instances_in(&r.name).nth(1))
                .collect();
            let drains = removed.iter().map(|i| Action::Drain(i.address, true));
            p.steps[0] = drains.collect();
            p.steps[0].push(Action::Wait(ttl + Duration::from_secs(1)));
            for i in &removed {
                p.steps[0].push(Action::Down(i.container.clone(), true));
                p.steps[0].push(Action::Stop(i.container.clone()));
                p.undo.extend(back(i));
            }
            for r in &t.region {
                let Some(g) = groups.iter().find(|g| g.name == r.group) else {
                    continue;
                };
                let (region, min, max) = (r.name.clone(), g.min, g.max);
                p.fault.push(Action::Capacity {
                    region: region.clone(),
                    min: 1,
                    max: 1,
                    desired: Some(1),
                });
                p.undo.push(Action::Capacity {
                    region,
                    min,
                    max,
                    desired: None,
                });
            }
            p.steps[1] = vec![Action::Settled(vec![t.lb.region.clone()], Some(1))];
            p.steps[2] = vec![Action::Settled(all_regions, Some(1))];
        }
        // The spike is the clients'.
        Scenario::Steady | Scenario::LoadSpike => {}
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

    const TTL: Duration = Duration::from_secs(5);

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
        let p = plan(Scenario::InstanceCrash, &lab(), &[us_east()], TTL);
        let kill = |c: &str| Action::Kill(c.into());
        // The oldest instance in service, not the pending one.
        assert_eq!(p.fault, [kill("lab-rr-us-east-1"), kill("lab-us-east-2")]);
        assert_eq!(p.undo, [Action::Start("lab-rr-us-east-1".into())]);
        assert_eq!(p.down, ["lab-rr-us-east-1", "lab-us-east-2"]);
    }

    #[test]
    fn an_outage_freezes_the_whole_region_until_undone() {
        let p = plan(Scenario::RegionOutage, &lab(), &[us_east()], TTL);
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
        let p = plan(Scenario::SlowInstance, &lab(), &[us_east()], TTL);
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
            plan(Scenario::Steady, &lab(), &[us_east()], TTL),
            Plan::default()
        );
        // Without the group's view the dns-rr instance still gets its fault.
        assert_eq!(
            plan(Scenario::InstanceCrash, &lab(), &[], TTL).fault.len(),
            1
        );
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
    fn a_deploy_refreshes_the_group_and_redeploys_dns_rr_one_instance_at_a_time() {
        let p = plan(Scenario::DeployDrain, &lab(), &[us_east()], TTL);
        assert_eq!(p.fault, [Action::Refresh("us-east".into())]);
        let settled = Action::Settled(vec!["us-east".into()], None);
        assert_eq!(
            (&p.steps[1], &p.steps[2]),
            (&vec![settled.clone()], &vec![settled])
        );
        let rr = &p.steps[0];
        let a = |n: u8| -> IpAddr { format!("10.90.1.2{n}").parse().unwrap() };
        // The first instance is back in the answers before the second one drains.
        let back = rr
            .iter()
            .position(|x| *x == Action::InAnswer(a(1)))
            .unwrap();
        let second = rr
            .iter()
            .position(|x| *x == Action::Drain(a(2), true))
            .unwrap();
        assert!(back < second, "{rr:?}");
        assert_eq!(
            rr[..4],
            [
                Action::Drain(a(1), true),
                Action::Wait(Duration::from_secs(6)),
                Action::Down("lab-rr-us-east-1".into(), true),
                Action::Stop("lab-rr-us-east-1".into()),
            ]
        );
        assert!(p.undo.contains(&Action::Start("lab-rr-us-east-2".into())));
        assert!(p.undo.contains(&Action::Drain(a(2), false)));
    }

    #[test]
    fn a_sticky_scale_in_takes_every_region_down_to_one() {
        let mut all = vec![us_east()];
        for r in ["eu-west", "ap-northeast"] {
            let mut g = us_east();
            g.name = format!("lab-{r}");
            all.push(g);
        }
        let p = plan(Scenario::StickyScaleIn, &lab(), &all, TTL);
        assert_eq!(p.fault.len(), 3);
        assert_eq!(
            p.fault[1],
            Action::Capacity {
                region: "eu-west".into(),
                min: 1,
                max: 1,
                desired: Some(1)
            }
        );
        assert!(p.undo.contains(&Action::Capacity {
            region: "ap-northeast".into(),
            min: 1,
            max: 4,
            desired: None
        }));
        let stopped: Vec<&Action> = p.steps[0]
            .iter()
            .filter(|a| matches!(a, Action::Stop(_)))
            .collect();
        assert_eq!(
            stopped,
            [
                &Action::Stop("lab-rr-us-east-2".into()),
                &Action::Stop("lab-rr-eu-west-2".into()),
                &Action::Stop("lab-rr-ap-northeast-2".into())
            ]
        );
        assert_eq!(
            p.steps[1],
            [Action::Settled(vec!["us-east".into()], Some(1))]
        );
        assert_eq!(
            p.steps[2][0],
            Action::Settled(
                vec!["us-east".into(), "eu-west".into(), "ap-northeast".into()],
                Some(1)
            )
        );
        let mut g = us_east();
        assert!(!g.settled(Some(1)), "three instances");
        g.instances.truncate(1);
        assert!(g.settled(Some(1)));
        g.refresh = Some(serde_json::json!({"total": 2, "remaining": 1}));
        assert!(!g.settled(None), "refreshing");
    }
}
