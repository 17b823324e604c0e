//! Operator overrides set through the admin API: drain, force up, force down of a pool
//! endpoint or a target. They live beside the configuration, not in it: every snapshot the
//! reload loop builds (file reload, scaler registration, an action) applies them again, so
//! a reload keeps them; a restart forgets them.

use crate::config::{EndpointMode, PoolsConfig};
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::sync::Mutex;

/// What an action does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// No new DNS answers or requests; requests in flight finish; still probed.
    Drain,
    /// Removes the override: the configured mode (usually the health check) decides again.
    Undrain,
    /// Ready whatever the health check says.
    ForceUp,
    /// Never ready.
    ForceDown,
}

impl FromStr for Action {
    type Err = String;

    fn from_str(s: &str) -> Result<Action, String> {
        match s {
            "drain" => Ok(Action::Drain),
            "undrain" => Ok(Action::Undrain),
            "force-up" => Ok(Action::ForceUp),
            "force-down" => Ok(Action::ForceDown),
            _ => Err(format!(
                "unknown action `{s}`: drain, undrain, force-up or force-down"
            )),
        }
    }
}

impl Action {
    /// The mode it sets (`None`: the override is removed).
    fn mode(self) -> Option<EndpointMode> {
        match self {
            Action::Drain => Some(EndpointMode::Drain),
            Action::Undrain => None,
            Action::ForceUp => Some(EndpointMode::Up),
            Action::ForceDown => Some(EndpointMode::Down),
        }
    }
}

/// The overrides in force.
#[derive(Debug, Default)]
pub struct Overrides {
    endpoints: Mutex<BTreeMap<(String, IpAddr), EndpointMode>>,
    targets: Mutex<BTreeMap<(String, SocketAddr), EndpointMode>>,
}

fn set<K: Ord>(map: &Mutex<BTreeMap<K, EndpointMode>>, key: K, action: Action) {
    let mut map = map.lock().unwrap_or_else(|e| e.into_inner());
    match action.mode() {
        Some(m) => map.insert(key, m),
        None => map.remove(&key),
    };
}

impl Overrides {
    /// Records an action on endpoint `addr` of pool `pool`.
    pub fn set_endpoint(&self, pool: &str, addr: IpAddr, action: Action) {
        set(&self.endpoints, (pool.to_string(), addr), action);
    }

    /// Records an action on target `addr` of target group `group`.
    pub fn set_target(&self, group: &str, addr: SocketAddr, action: Action) {
        set(&self.targets, (group.to_string(), addr), action);
    }

    /// The override of a target, if any.
    pub fn target(&self, group: &str, addr: SocketAddr) -> Option<EndpointMode> {
        let map = self.targets.lock().unwrap_or_else(|e| e.into_inner());
        map.get(&(group.to_string(), addr)).copied()
    }

    /// Writes the endpoint overrides into a pools configuration (before its snapshot is
    /// built). Overrides of endpoints the configuration no longer has are kept, in case
    /// they come back.
    pub fn apply_to_pools(&self, pools: &mut PoolsConfig) {
        let map = self.endpoints.lock().unwrap_or_else(|e| e.into_inner());
        if map.is_empty() {
            return;
        }
        for pool in &mut pools.pools {
            for e in &mut pool.endpoints {
                if let Some(&m) = map.get(&(pool.name.clone(), e.addr)) {
                    e.mode = m;
                }
            }
        }
    }

    /// Every override as `(kind, owner, address, mode)`, kind `endpoint` or `target`.
    pub fn list(&self) -> Vec<(&'static str, String, String, EndpointMode)> {
        let e = self.endpoints.lock().unwrap_or_else(|e| e.into_inner());
        let t = self.targets.lock().unwrap_or_else(|e| e.into_inner());
        e.iter()
            .map(|((p, a), &m)| ("endpoint", p.clone(), a.to_string(), m))
            .chain(
                t.iter()
                    .map(|((g, a), &m)| ("target", g.clone(), a.to_string(), m)),
            )
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use std::path::Path;

    #[test]
    fn actions_set_and_clear_modes() {
        let text =
            "[pool.web]\nendpoints = [{ address = \"192.0.2.1\" }, { address = \"192.0.2.2\" }]\n";
        let config = Config::parse(text, Path::new("t.toml"), Path::new("/")).unwrap();
        let o = Overrides::default();
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        o.set_endpoint("web", a, "drain".parse().unwrap());
        o.set_endpoint("other", a, Action::ForceDown);
        let mut pools = config.pools.clone();
        o.apply_to_pools(&mut pools);
        let modes: Vec<_> = pools.pools[0].endpoints.iter().map(|e| e.mode).collect();
        assert_eq!(modes, [EndpointMode::Drain, EndpointMode::Auto]);
        o.set_endpoint("web", a, Action::Undrain);
        let mut pools = config.pools.clone();
        o.apply_to_pools(&mut pools);
        assert_eq!(pools.pools[0].endpoints[0].mode, EndpointMode::Auto);
        let t: SocketAddr = "127.0.0.1:80".parse().unwrap();
        o.set_target("g", t, Action::ForceUp);
        assert_eq!(o.target("g", t), Some(EndpointMode::Up));
        assert_eq!(o.target("h", t), None);
        assert_eq!(o.list().len(), 2);
        assert!("reboot".parse::<Action>().is_err());
    }
}
