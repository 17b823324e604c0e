//! The traffic-management part of the configuration file, as written: regions, health
//! checks, pools with their endpoints, and record bindings.

use serde::Deserialize;
use std::collections::BTreeMap;
use toml::Spanned;

/// `[[region]]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileRegion {
    /// Region name, e.g. `us-east`.
    pub name: Spanned<String>,
    /// `[latitude, longitude]` in degrees.
    #[serde(default)]
    pub coordinates: Option<Spanned<[f64; 2]>>,
    /// Two-letter continent code (AF, AN, AS, EU, NA, OC, SA).
    #[serde(default)]
    pub continent: Option<Spanned<String>>,
    /// ISO 3166 country codes served from this region.
    #[serde(default)]
    pub countries: Vec<String>,
    /// Client networks (CIDR) always steered to this region (`geo` steering overrides).
    #[serde(default)]
    pub networks: Vec<Spanned<String>>,
    /// `proximity` steering: kilometres taken off this region's distance (a larger area).
    #[serde(default)]
    pub bias_km: f64,
}

/// `[geo]`
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct FileGeo {
    /// A MaxMind-format country or city database (GeoLite2, DB-IP), reloaded when it changes.
    #[serde(default)]
    pub database: Option<Spanned<String>>,
}

/// `[[latency]]`: a measured or estimated round-trip time from a client network to a region.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileLatency {
    /// Client network (CIDR).
    pub prefix: Spanned<String>,
    /// Region name.
    pub region: Spanned<String>,
    /// Round-trip time in milliseconds.
    pub rtt_ms: f64,
}

/// `[health_check.NAME]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileHealthCheck {
    /// `http` or `tcp`.
    #[serde(default = "default_protocol")]
    pub protocol: Spanned<String>,
    /// Port probed on each endpoint's address (target groups: default the target's port).
    #[serde(default)]
    pub port: Option<Spanned<u16>>,
    /// HTTP path.
    #[serde(default = "default_path")]
    pub path: String,
    /// HTTP status codes that count as healthy.
    #[serde(default = "default_matcher")]
    pub matcher: Spanned<String>,
    /// A substring the HTTP body must contain.
    #[serde(default)]
    pub body_contains: Option<String>,
    /// HTTP Host header (default: the endpoint's address).
    #[serde(default)]
    pub host: Option<String>,
    /// Time between probes.
    #[serde(default = "default_interval")]
    pub interval: Spanned<String>,
    /// Time a probe may take.
    #[serde(default = "default_timeout")]
    pub timeout: Spanned<String>,
    /// Consecutive successes before a not-ready endpoint is ready again.
    #[serde(default = "default_healthy_threshold")]
    pub healthy_threshold: Spanned<u32>,
    /// Consecutive failures before a ready endpoint is not ready.
    #[serde(default = "default_unhealthy_threshold")]
    pub unhealthy_threshold: Spanned<u32>,
}

/// `[pool.NAME]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilePool {
    /// `round-robin`, `weighted`, `failover` or `multivalue`.
    #[serde(default = "default_policy")]
    pub policy: Spanned<String>,
    /// Name of a `[health_check.NAME]`; without one every enabled endpoint is ready.
    #[serde(default)]
    pub health_check: Option<Spanned<String>>,
    /// `none` (all regions form one set), `ordered` (regions in `regions` order), `geo`,
    /// `proximity` or `latency` (ranked per client).
    #[serde(default = "default_steering")]
    pub steering: Spanned<String>,
    /// Region order for `ordered` steering (default: order of first appearance).
    #[serde(default)]
    pub regions: Vec<Spanned<String>>,
    /// The same client network gets the same endpoint order while it stays healthy.
    #[serde(default)]
    pub affinity: bool,
    /// `capacity` (the next two regions, by capacity) or `next` (the next region).
    #[serde(default = "default_spill")]
    pub spill: Spanned<String>,
    /// Traffic dial per region, 0-100 (percent of the traffic a region keeps).
    #[serde(default)]
    pub dials: BTreeMap<String, Spanned<u8>>,
    /// `failover`: ready endpoints a priority tier needs to answer.
    #[serde(default = "default_min_ready")]
    pub min_ready: Spanned<u32>,
    /// The endpoints.
    pub endpoints: Vec<FileEndpoint>,
}

/// One entry of `endpoints = [...]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileEndpoint {
    /// IPv4 or IPv6 address handed out in answers.
    pub address: Spanned<String>,
    /// Region name (must be a `[[region]]` when regions are configured).
    #[serde(default)]
    pub region: Option<Spanned<String>>,
    /// Weight for `weighted` (0 = never handed out).
    #[serde(default = "default_weight")]
    pub weight: u32,
    /// Tier for `failover` (lower answers first).
    #[serde(default = "default_priority")]
    pub priority: u32,
    /// `false` removes the endpoint from answers and stops its probes.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// `auto` (health checks decide), `up`, `down` or `drain` (probed, not handed out).
    #[serde(default = "default_state")]
    pub state: Spanned<String>,
}

/// `[[binding]]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileBinding {
    /// Fully qualified name answered from the pool.
    pub name: Spanned<String>,
    /// `A`, `AAAA`, or absent for both.
    #[serde(default, rename = "type")]
    pub rtype: Option<Spanned<String>>,
    /// Pool name.
    pub pool: Spanned<String>,
    /// TTL of the answers.
    #[serde(default = "default_ttl")]
    pub ttl: Spanned<String>,
    /// Most addresses per answer (default: all for round-robin, 1 for weighted, 8 for multivalue).
    #[serde(default)]
    pub answers: Option<Spanned<u32>>,
    /// When no endpoint is ready: `fail-open`, `nodata`, `servfail` or `fallback`.
    #[serde(default = "default_when_all_down")]
    pub when_all_down: Spanned<String>,
    /// Addresses for `when_all_down = "fallback"`.
    #[serde(default)]
    pub fallback: Vec<Spanned<String>>,
    /// Health-aware TTL: shorter than `ttl` when health could change sooner, `min_ttl`
    /// while any endpoint is down.
    #[serde(default)]
    pub adaptive_ttl: bool,
    /// Lower bound of the adaptive TTL.
    #[serde(default = "default_min_ttl")]
    pub min_ttl: Spanned<String>,
}

fn spanned<T>(v: T) -> Spanned<T> {
    Spanned::new(0..0, v)
}

fn default_protocol() -> Spanned<String> {
    spanned("http".into())
}
fn default_path() -> String {
    "/health".into()
}
fn default_matcher() -> Spanned<String> {
    spanned("200-299".into())
}
fn default_interval() -> Spanned<String> {
    spanned("5s".into())
}
fn default_timeout() -> Spanned<String> {
    spanned("2s".into())
}
fn default_healthy_threshold() -> Spanned<u32> {
    spanned(3)
}
fn default_unhealthy_threshold() -> Spanned<u32> {
    spanned(2)
}
fn default_policy() -> Spanned<String> {
    spanned("round-robin".into())
}
fn default_steering() -> Spanned<String> {
    spanned("none".into())
}
fn default_spill() -> Spanned<String> {
    spanned("capacity".into())
}
fn default_min_ready() -> Spanned<u32> {
    spanned(1)
}
fn default_weight() -> u32 {
    1
}
fn default_priority() -> u32 {
    1
}
fn default_true() -> bool {
    true
}
fn default_state() -> Spanned<String> {
    spanned("auto".into())
}
fn default_ttl() -> Spanned<String> {
    spanned("30s".into())
}
fn default_min_ttl() -> Spanned<String> {
    spanned("5s".into())
}
fn default_when_all_down() -> Spanned<String> {
    spanned("fail-open".into())
}

/// `[target_group.NAME]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileTargetGroup {
    /// `round-robin`, `weighted-round-robin`, `least-outstanding` or `source-ip-hash`.
    #[serde(default = "default_policy")]
    pub algorithm: Spanned<String>,
    /// Name of a `[health_check.NAME]` (its port defaults to each target's port).
    #[serde(default)]
    pub health_check: Option<Spanned<String>>,
    /// The targets (may be empty when a scaling group fills the target group).
    #[serde(default)]
    pub targets: Vec<FileTarget>,
}

/// One entry of `targets = [...]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileTarget {
    /// `address:port`.
    pub address: Spanned<String>,
    /// Share of requests for `weighted-round-robin` (0 = none).
    #[serde(default = "default_weight")]
    pub weight: u32,
}
