//! The configuration file as written (TOML), before validation. Only `config` sees these
//! types; the rest of the program gets [`crate::config::Config`].

use super::file_listener::FileListener;
use super::file_pools::{FileBinding, FileGeo, FileHealthCheck, FileLatency, FilePool, FileRegion};
use super::file_target_group::FileTargetGroup;
use serde::Deserialize;
use std::collections::BTreeMap;
use toml::Spanned;

/// The whole file.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// `[dns]`
    #[serde(default)]
    pub dns: FileDns,
    /// `[log]`
    #[serde(default)]
    pub log: FileLog,
    /// `[[region]]`
    #[serde(default)]
    pub region: Vec<FileRegion>,
    /// `[health_check.NAME]`
    #[serde(default)]
    pub health_check: BTreeMap<String, FileHealthCheck>,
    /// `[pool.NAME]`
    #[serde(default)]
    pub pool: BTreeMap<String, FilePool>,
    /// `[[binding]]`
    #[serde(default)]
    pub binding: Vec<FileBinding>,
    /// `[geo]`
    #[serde(default)]
    pub geo: FileGeo,
    /// `[[latency]]`
    #[serde(default)]
    pub latency: Vec<FileLatency>,
    /// `[target_group.NAME]`
    #[serde(default)]
    pub target_group: BTreeMap<String, FileTargetGroup>,
    /// `[[listener]]`
    #[serde(default)]
    pub listener: Vec<FileListener>,
    /// `[admin]`
    #[serde(default)]
    pub admin: Option<super::admin::FileAdmin>,
    /// `[latency_report]`
    #[serde(default)]
    pub latency_report: Option<super::admin::FileLatencyReport>,
    /// `[[scaling_group]]`
    #[serde(default)]
    pub scaling_group: Vec<super::file_scaler::FileScalingGroup>,
    /// `[shutdown]`
    #[serde(default)]
    pub shutdown: FileShutdown,
}

/// `[shutdown]`: stopping on SIGTERM or Ctrl-C.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileShutdown {
    /// Longest wait for open client connections to finish what is in flight before they
    /// are cut. Default `10s`.
    #[serde(default = "default_grace")]
    pub grace: Spanned<String>,
}

impl Default for FileShutdown {
    fn default() -> FileShutdown {
        FileShutdown {
            grace: default_grace(),
        }
    }
}

fn default_grace() -> Spanned<String> {
    spanned("10s".to_string())
}

/// `[dns]`: the authoritative server.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileDns {
    /// Addresses to answer on, UDP and TCP each.
    #[serde(default = "default_listen")]
    pub listen: Vec<Spanned<String>>,
    /// Directory of `*.zone` files; the origin is the file name without `.zone`.
    #[serde(default = "default_zones_dir")]
    pub zones_dir: Option<Spanned<String>>,
    /// Zones listed one by one (any file name, explicit origin).
    #[serde(default)]
    pub zone: Vec<FileZone>,
    /// Log every query at info level.
    #[serde(default)]
    pub query_log: bool,
    /// Close a TCP connection after this long without the start of a query. Default `10s`.
    #[serde(default = "default_tcp_idle_timeout")]
    pub tcp_idle_timeout: Spanned<String>,
    /// Once a query has begun, the rest of it must arrive within this time, and each reply
    /// must be taken by the client within it; else the connection is closed (a trickling
    /// client or one that does not read). Default `2s`.
    #[serde(default = "default_tcp_io_timeout")]
    pub tcp_io_timeout: Spanned<String>,
    /// Most TCP connections served at once; further ones wait in the kernel's backlog.
    /// Default 512.
    #[serde(default = "default_tcp_max_connections")]
    pub tcp_max_connections: Spanned<u32>,
    /// `[dns.transfer]`
    #[serde(default)]
    pub transfer: FileTransfer,
    /// `[dns.rrl]`
    #[serde(default)]
    pub rrl: super::rrl::FileRrl,
}

impl Default for FileDns {
    fn default() -> FileDns {
        FileDns {
            listen: default_listen(),
            zones_dir: default_zones_dir(),
            zone: Vec::new(),
            query_log: false,
            tcp_idle_timeout: default_tcp_idle_timeout(),
            tcp_io_timeout: default_tcp_io_timeout(),
            tcp_max_connections: default_tcp_max_connections(),
            transfer: FileTransfer::default(),
            rrl: super::rrl::FileRrl::default(),
        }
    }
}

/// `[[dns.zone]]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileZone {
    /// Zone apex, e.g. `example.com.`
    pub origin: Spanned<String>,
    /// Zone file, relative to the configuration file's directory.
    pub file: Spanned<String>,
}

/// `[dns.transfer]`: secondaries.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileTransfer {
    /// Addresses or CIDR networks allowed to AXFR/IXFR. Empty: nobody.
    #[serde(default)]
    pub allow: Vec<Spanned<String>>,
    /// `host:port` of secondaries to send NOTIFY to when a zone changes.
    #[serde(default)]
    pub notify: Vec<Spanned<String>>,
    /// Most zone transfers streamed at once; one more is answered REFUSED. Default 10.
    #[serde(default = "default_max_transfers")]
    pub max_concurrent: Spanned<u32>,
}

impl Default for FileTransfer {
    fn default() -> FileTransfer {
        FileTransfer {
            allow: Vec::new(),
            notify: Vec::new(),
            max_concurrent: default_max_transfers(),
        }
    }
}

fn default_max_transfers() -> Spanned<u32> {
    spanned(10)
}

/// `[log]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileLog {
    /// `human` or `json`.
    #[serde(default = "default_log_format")]
    pub format: Spanned<String>,
    /// A tracing filter such as `info` or `roundhouse=debug`.
    #[serde(default = "default_log_level")]
    pub level: String,
}

impl Default for FileLog {
    fn default() -> FileLog {
        FileLog {
            format: default_log_format(),
            level: default_log_level(),
        }
    }
}

fn spanned<T>(v: T) -> Spanned<T> {
    Spanned::new(0..0, v)
}

fn default_listen() -> Vec<Spanned<String>> {
    vec![spanned("127.0.0.1:1053".to_string())]
}

fn default_zones_dir() -> Option<Spanned<String>> {
    Some(spanned("zones".to_string()))
}

fn default_tcp_io_timeout() -> Spanned<String> {
    spanned("2s".to_string())
}

fn default_tcp_idle_timeout() -> Spanned<String> {
    spanned("10s".to_string())
}

fn default_tcp_max_connections() -> Spanned<u32> {
    spanned(512)
}

fn default_log_format() -> Spanned<String> {
    spanned("human".to_string())
}

fn default_log_level() -> String {
    "info".to_string()
}
