//! Where the docker lab's setups are (`lab/compare.toml`): its regions (the clients'
//! addresses, resolvers, balancers and scaling groups), the DNS servers, the `dns-rr`
//! instances and names; read and checked before anything runs.

use serde::Deserialize;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

/// The lab, as `roundhouse compare --lab FILE` sees it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabTargets {
    /// A DNS server asked directly: the TTL of the answers, and whether `dns-rr` answers
    /// every instance.
    pub dns: SocketAddr,
    /// Admin servers of every DNS server: their `/metrics` count the queries per zone.
    pub dns_admin: Vec<SocketAddr>,
    /// `admin.token` of the balancers (to set the scaling groups' desired capacity).
    pub token: String,
    /// Port of the balancers and of the `dns-rr` instances.
    pub port: u16,
    /// The region whose instances the faults hit.
    pub fault_region: String,
    /// The Docker Engine socket (kills, pauses and restarts containers).
    #[serde(default = "default_docker")]
    pub docker: PathBuf,
    /// `[[region]]`: where clients sit, in this order.
    pub region: Vec<LabRegion>,
    /// `[dns_rr]`.
    pub dns_rr: LabDnsRr,
    /// `[lb]`.
    pub lb: LabLb,
    /// `[gslb]`.
    pub gslb: LabGslb,
}

fn default_docker() -> PathBuf {
    PathBuf::from("/var/run/docker.sock")
}

/// One region of the lab.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabRegion {
    /// Name, as in the lab's configuration.
    pub name: String,
    /// Source address of the region's clients (on the compare container).
    pub client: IpAddr,
    /// The region's recursive resolver.
    pub resolver: SocketAddr,
    /// The region's balancer on the WAN.
    pub balancer: SocketAddr,
    /// The balancer's admin server (`/v1/scaling-groups`).
    pub admin: SocketAddr,
    /// The scaling group behind the balancer.
    pub group: String,
}

/// `dns-rr`: a name answered with instances on the WAN.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabDnsRr {
    /// The name clients resolve.
    pub name: String,
    /// The zone the DNS servers count its queries in.
    pub zone: String,
    /// The DNS servers' pool of the instances (drained before an instance stops).
    pub pool: String,
    /// The instances (containers that `lab/compare.sh` starts).
    pub instance: Vec<LabInstance>,
}

/// One `dns-rr` instance.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabInstance {
    /// Container name, also its instance id (`roundhouse backend --id`).
    pub container: String,
    /// Its region.
    pub region: String,
    /// Its address on the WAN.
    pub address: IpAddr,
}

/// `lb`: every client connects to one region's balancer.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabLb {
    /// That region.
    pub region: String,
}

/// `gslb`: the name the DNS servers answer with the regional balancers.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabGslb {
    /// The name clients resolve.
    pub name: String,
    /// The zone the DNS servers count its queries in.
    pub zone: String,
}

/// The targets file is wrong.
#[derive(Debug, thiserror::Error)]
#[error("{at}: {message}")]
pub struct TargetsError {
    /// `file:line`, or the file.
    pub at: String,
    /// What is wrong.
    pub message: String,
}

impl LabTargets {
    /// Reads TOML `text` of file `path` and checks that every region it names exists.
    pub fn parse(text: &str, path: &str) -> Result<LabTargets, TargetsError> {
        let t: LabTargets = toml::from_str(text).map_err(|e| {
            let line = e
                .span()
                .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
            TargetsError {
                at: line.map_or(path.to_string(), |l| format!("{path}:{l}")),
                message: e.message().trim().to_string(),
            }
        })?;
        t.check().map_err(|message| TargetsError {
            at: path.to_string(),
            message,
        })?;
        Ok(t)
    }

    fn check(&self) -> Result<(), String> {
        if self.region.is_empty() {
            return Err("no [[region]]: the clients need somewhere to sit".into());
        }
        if self.dns_admin.is_empty() {
            return Err("dns_admin is empty: the DNS query counts come from there".into());
        }
        let known = |what: &str, name: &str| match self.region(name) {
            Some(_) => Ok(()),
            None => {
                let names: Vec<&str> = self.region.iter().map(|r| r.name.as_str()).collect();
                Err(format!(
                    "{what}: `{name}` is not a [[region]] (one of {})",
                    names.join(", ")
                ))
            }
        };
        known("fault_region", &self.fault_region)?;
        known("lb.region", &self.lb.region)?;
        for i in &self.dns_rr.instance {
            known(&format!("dns_rr.instance {}", i.container), &i.region)?;
        }
        if self.dns_rr.instance.is_empty() {
            return Err("dns_rr has no [[dns_rr.instance]]".into());
        }
        if self.dns_rr.zone == self.gslb.zone {
            return Err(format!(
                "dns_rr.zone and gslb.zone are both `{}`: their query counts would mix",
                self.gslb.zone
            ));
        }
        Ok(())
    }

    /// The region called `name`.
    pub fn region(&self, name: &str) -> Option<&LabRegion> {
        self.region.iter().find(|r| r.name == name)
    }

    /// The `dns-rr` instances of region `name`.
    pub fn instances_in<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a LabInstance> {
        self.dns_rr
            .instance
            .iter()
            .filter(move |i| i.region == name)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The lab's own file.
    pub(crate) fn shipped() -> (String, &'static str) {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/lab/compare.toml");
        (std::fs::read_to_string(path).unwrap(), "compare.toml")
    }

    #[test]
    fn the_shipped_file_is_read() {
        let (text, path) = shipped();
        let t = LabTargets::parse(&text, path).unwrap();
        let names: Vec<&str> = t.region.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["us-east", "eu-west", "ap-northeast"]);
        assert_eq!(t.instances_in("us-east").count(), 2);
        assert_eq!(t.dns_rr.instance.len(), 6);
        assert_eq!(t.docker, PathBuf::from("/var/run/docker.sock"));
        assert_eq!(t.region("eu-west").unwrap().group, "lab-eu-west");
    }

    #[test]
    fn mistakes_name_their_line_or_what_is_missing() {
        let (text, path) = shipped();
        let bad = text.replacen("port = 80", "port = 80\nspeed = 3", 1);
        let e = LabTargets::parse(&bad, path).unwrap_err().to_string();
        assert!(e.starts_with("compare.toml:"), "{e}");
        assert!(e.contains("unknown field `speed`"), "{e}");
        let line: usize = e.split(':').nth(1).unwrap().parse().unwrap();
        assert_eq!(bad.lines().nth(line - 1), Some("speed = 3"), "{e}");

        let bad = text.replacen("fault_region = \"us-east\"", "fault_region = \"mars\"", 1);
        let e = LabTargets::parse(&bad, path).unwrap_err().to_string();
        assert!(
            e.contains("fault_region: `mars` is not a [[region]] (one of us-east"),
            "{e}"
        );

        let bad = text.replacen("zone = \"rr.lab.test\"", "zone = \"lab.test\"", 1);
        let e = LabTargets::parse(&bad, path).unwrap_err().to_string();
        assert!(e.contains("query counts would mix"), "{e}");
    }
}
