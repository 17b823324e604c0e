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

/// The commands to try against a running server.
pub fn text(config: &Config, running: &Running) -> String {
    lines(
        config,
        &running.dns_addrs,
        &running.listener_addrs,
        running.admin_addr,
    )
}

/// The commands to try, given the bound addresses.
pub fn lines(
    config: &Config,
    dns: &[SocketAddr],
    listeners: &[(String, SocketAddr)],
    admin: Option<SocketAddr>,
) -> String {
    let mut out = String::new();
    let Some(dns) = dns.first() else {
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
    for (name, addr) in listeners {
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
    if let Some(a) = admin {
        let _ = writeln!(out, "  curl http://{a}/metrics    # admin");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn the_embedded_demo_tour_names_every_name_balancer_instance_and_the_admin() {
        let config = Config::embedded();
        let listeners: Vec<_> = config
            .balancer
            .listeners
            .iter()
            .map(|l| (l.name.clone(), l.listen))
            .collect();
        let dns = ["127.0.0.1:1053".parse().unwrap()];
        let text = lines(
            &config,
            &dns,
            &listeners,
            Some("127.0.0.1:9090".parse().unwrap()),
        );
        for line in [
            "dig @127.0.0.1 -p 1053 www.example.test.    # pool www",
            "dig @127.0.0.1 -p 1053 rr.example.test.    # pool rr",
            "curl http://127.0.2.1:8080/    # balancer eu-west",
            "curl http://127.0.3.11:8080/    # an instance of scaling group ap-northeast",
            "curl http://127.0.0.1:9090/metrics    # admin",
        ] {
            assert!(text.contains(line), "{line:?} not in:\n{text}");
        }
    }
}
