//! Configuration: TOML text -> `file` structs (serde, unknown keys rejected) ->
//! `validate` -> the domain types below. Every error names `file:line`.

mod admin;
mod balancer;
mod file;
mod file_listener;
mod file_pools;
mod file_scaler;
mod file_target_group;
pub mod last_good;
mod listener;
mod pools;
mod rrl;
mod scaler;
mod scaler_policy;
mod target_group;
mod validate;

pub use admin::{AdminConfig, LatencyReportConfig};
pub use balancer::{
    Algorithm, BalancerConfig, HashKey, Passive, Stickiness, StickyMode, TargetGroup, target_spec,
};
pub use listener::{Listener, Protocol, Timeouts, TlsFiles};
pub use pools::{
    Binding, Endpoint, EndpointMode, LatencyEntry, Policy, Pool, PoolsConfig, Region, Spill,
    Steering, WhenAllDown,
};
pub use rrl::RrlConfig;
pub use scaler::{
    AdjustmentType, Alarm, Comparison, DEFAULT_COMMAND, HealthCheckType, LaunchTemplate, Metric,
    PolicyKind, ProviderKind, ScalingGroup, ScalingPolicy, ScheduledAction, Step,
};
pub use validate::{Network, parse_duration};

use crate::dns::name::Name;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The configuration compiled into the binary: what `serve` runs without `--config`.
pub const EMBEDDED: &str = include_str!("../../config/default.toml");
/// The example zone compiled into the binary, served when `zones/` is not on disk.
pub const EMBEDDED_ZONE: (&str, &str) = (
    "example.test.",
    include_str!("../../zones/example.test.zone"),
);

/// A configuration error: `file:line: what`.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}:{line}: {message}", file.display())]
pub struct ConfigError {
    /// The configuration file (or `<embedded>`).
    pub file: PathBuf,
    /// 1-based line.
    pub line: usize,
    /// What is wrong, with a hint where the fix is obvious.
    pub message: String,
}

/// Validated configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Where the configuration came from (`None`: embedded).
    pub path: Option<PathBuf>,
    /// The authoritative server.
    pub dns: DnsConfig,
    /// Logging.
    pub log: LogConfig,
    /// Regions, pools and record bindings.
    pub pools: PoolsConfig,
    /// Target groups and listeners of the load balancer.
    pub balancer: BalancerConfig,
    /// The admin HTTP server (`None`: not started).
    pub admin: Option<AdminConfig>,
    /// Where the balancer reports measured client round-trip times (`None`: nowhere).
    pub latency_report: Option<LatencyReportConfig>,
    /// Scaling groups.
    pub scaler: Vec<ScalingGroup>,
    /// `[shutdown] grace`: how long open connections may take to finish at a stop.
    pub shutdown_grace: Duration,
}

/// `[dns]`
#[derive(Debug, Clone, PartialEq)]
pub struct DnsConfig {
    /// Addresses served over UDP and TCP.
    pub listen: Vec<SocketAddr>,
    /// Directory scanned for `*.zone` files.
    pub zones_dir: Option<PathBuf>,
    /// Zones listed explicitly.
    pub zones: Vec<ZoneConfig>,
    /// Log each query.
    pub query_log: bool,
    /// TCP idle timeout.
    pub tcp_idle_timeout: Duration,
    /// Time for the rest of a begun query, and for each reply write.
    pub tcp_io_timeout: Duration,
    /// Concurrent TCP connections.
    pub tcp_max_connections: usize,
    /// Who may transfer zones, and whom to notify.
    pub transfer: TransferConfig,
    /// Response rate limiting of UDP answers.
    pub rrl: RrlConfig,
}

/// One explicitly configured zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZoneConfig {
    /// Apex.
    pub origin: Name,
    /// Zone file (absolute, or relative to the working directory).
    pub file: PathBuf,
}

/// `[dns.transfer]`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferConfig {
    /// Networks allowed to AXFR/IXFR (empty: nobody).
    pub allow: Vec<Network>,
    /// Secondaries to NOTIFY on a zone change.
    pub notify: Vec<SocketAddr>,
    /// Most transfers streamed at once.
    pub max_concurrent: usize,
}

impl Default for TransferConfig {
    fn default() -> TransferConfig {
        TransferConfig {
            allow: Vec::new(),
            notify: Vec::new(),
            max_concurrent: 10,
        }
    }
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Human,
    /// One JSON object per line.
    Json,
}

/// `[log]`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    /// Output format.
    pub format: LogFormat,
    /// tracing filter directive.
    pub level: String,
}

impl Config {
    /// Reads and validates a configuration file; relative paths in it are relative to its
    /// directory.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: path.to_path_buf(),
            line: 0,
            message: format!("cannot read: {e}"),
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        let mut cfg = validate::parse(&text, path, base)?;
        cfg.path = Some(path.to_path_buf());
        Ok(cfg)
    }

    /// The embedded default; relative paths are relative to the working directory.
    pub fn embedded() -> Config {
        validate::parse(EMBEDDED, Path::new("<embedded>"), Path::new(""))
            .expect("embedded config is valid")
    }

    /// Parses configuration text (for tests and `check`).
    pub fn parse(text: &str, file: &Path, base: &Path) -> Result<Config, ConfigError> {
        validate::parse(text, file, base)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_default_is_valid() {
        let c = Config::embedded();
        assert_eq!(c.dns.listen, vec!["127.0.0.1:1053".parse().unwrap()]);
        assert!(c.dns.transfer.allow.is_empty());
        // The multi-region demo: a balancer and a scaling group per region, two pools.
        assert_eq!(c.balancer.listeners.len(), 3);
        assert_eq!(c.scaler.len(), 3);
        assert!(c.scaler.iter().all(|g| g.min == 1
            && g.max == 3
            && g.launch_template.port == 8080
            && g.pools == ["rr"]));
        let pools: Vec<&str> = c.pools.pools.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(pools, ["rr", "www"]);
        assert_eq!(c.admin.as_ref().map(|a| a.listen.port()), Some(9090));
    }

    #[test]
    fn every_sample_in_config_dir_parses() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
        let mut n = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "toml") {
                Config::load(&path).unwrap_or_else(|e| panic!("{e}"));
                n += 1;
            }
        }
        assert!(
            n >= 2,
            "expected the sample configurations in {}",
            dir.display()
        );
    }
}
