//! What `serve` prints once it is up: the commands to try against the running
//! configuration (dig lines for the bound names, curl lines for the balancers and the
//! scaled instances, the admin URL).

use crate::app::Running;
use crate::config::Config;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::time::Duration;

/// Waits until every balancer listener's health path answers 200 (each region has an
/// instance in service), at most `limit`; `false` when some did not.
pub async fn wait_ready(config: &Config, running: &Running, limit: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    let paths: Vec<(SocketAddr, String)> = running
        .listener_addrs
        .iter()
        .filter_map(|(name, addr)| {
            let l = config.balancer.listeners.iter().find(|l| &l.name == name)?;
            Some((*addr, l.health_path.clone()?))
        })
        .collect();
    loop {
        let mut ready = true;
        for (addr, path) in &paths {
            let status =
                crate::compare::http::get_once(*addr, path, Duration::from_millis(500)).await;
            ready &= status == Some(200);
        }
        if ready {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The commands to try.
pub fn text(config: &Config, running: &Running) -> String {
    let mut out = String::new();
    let Some(dns) = running.dns_addrs.first() else {
        return out;
    };
    let (host, port) = (dns.ip(), dns.port());
    let _ = writeln!(
        out,
        "roundhouse is answering DNS on {dns} (UDP and TCP). Try:"
    );
    for b in &config.pools.bindings {
        let pool = &config.pools.pools[b.pool].name;
        let _ = writeln!(out, "  dig @{host} -p {port} {}    # pool {pool}", b.name);
    }
    if config.pools.bindings.is_empty() {
        let _ = writeln!(out, "  dig @{host} -p {port} <a name in one of your zones>");
    }
    for (name, addr) in &running.listener_addrs {
        let _ = writeln!(out, "  curl http://{addr}/    # balancer {name}");
    }
    for g in &config.scaler {
        let t = &g.launch_template;
        if t.port != 0 {
            let first = t.addresses[0];
            let _ = writeln!(
                out,
                "  curl http://{first}:{}/    # an instance of scaling group {} (1 to {} on {})",
                t.port,
                g.name,
                g.max,
                t.addresses
                    .iter()
                    .map(|a| a.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
    }
    if let Some(a) = running.admin_addr {
        let _ = writeln!(out, "  curl http://{a}/metrics    # admin");
    }
    out
}
