//! `[[scaling_group]]` as written in the configuration file, before validation.

use serde::Deserialize;
use std::collections::BTreeMap;
use toml::Spanned;

/// `[[scaling_group]]`: a set of instances kept between `min` and `max`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileScalingGroup {
    /// Name, unique.
    pub name: Spanned<String>,
    /// Region the instances run in (DNS pool endpoints get it). Default: `default`.
    #[serde(default)]
    pub region: Option<Spanned<String>>,
    /// Fewest instances.
    pub min: Spanned<u32>,
    /// Instances wanted at start. Default: `min`.
    #[serde(default)]
    pub desired: Option<Spanned<u32>>,
    /// Most instances.
    pub max: Spanned<u32>,
    /// `process` (the provider says the instance runs) or `balancer` (also the target
    /// group's health check must pass).
    #[serde(default = "default_health_check_type")]
    pub health_check_type: Spanned<String>,
    /// Time after launch during which failed health checks do not replace an instance.
    #[serde(default = "default_grace")]
    pub health_check_grace_period: Spanned<String>,
    /// Wait after a simple-scaling activity before the next one.
    #[serde(default = "default_cooldown")]
    pub default_cooldown: Spanned<String>,
    /// Time after an instance is in service before its metrics count.
    #[serde(default = "default_warmup")]
    pub instance_warmup: Spanned<String>,
    /// Metric period: metrics are averaged and policies evaluated once per period.
    #[serde(default = "default_period")]
    pub period: Spanned<String>,
    /// Longest time between deregistering an instance and terminating it; it ends sooner
    /// when the balancer has drained the instance. Default: the largest
    /// `deregistration_delay` of `target_groups`, `30s` without target groups.
    #[serde(default)]
    pub deregistration_delay: Option<Spanned<String>>,
    /// Target groups the instances are registered with (`address:port`).
    #[serde(default)]
    pub target_groups: Vec<Spanned<String>>,
    /// DNS pools the instances are endpoints of (address only).
    #[serde(default)]
    pub pools: Vec<Spanned<String>>,
    /// Webhook (`http://host:port/path`) that gets every activity as JSON when it starts
    /// and ends. Default: none.
    #[serde(default)]
    pub notify_url: Option<Spanned<String>>,
    /// Activities kept in memory.
    #[serde(default = "default_history")]
    pub activity_history: Spanned<u32>,
    /// How instances are launched.
    pub launch_template: FileLaunchTemplate,
    /// `[[scaling_group.policy]]`
    #[serde(default)]
    pub policy: Vec<FilePolicy>,
    /// `[[scaling_group.scheduled]]`
    #[serde(default)]
    pub scheduled: Vec<FileScheduled>,
}

/// `[scaling_group.launch_template]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileLaunchTemplate {
    /// `process` or `docker`.
    #[serde(default = "default_provider")]
    pub provider: Spanned<String>,
    /// Version; scale-in terminates instances of older versions first.
    #[serde(default = "default_version")]
    pub version: Spanned<u32>,
    /// Program and arguments; `{exe}`, `{address}`, `{port}`, `{id}` and `{region}` are
    /// replaced. Default: this program's `backend` command.
    #[serde(default)]
    pub command: Vec<Spanned<String>>,
    /// Addresses instances listen on, in turn (each is a zone for balancing).
    #[serde(default = "default_addresses")]
    pub addresses: Vec<Spanned<String>>,
    /// Port every instance listens on (so that DNS answers with bare addresses reach them).
    /// Default: 0 (a free port picked at launch).
    #[serde(default)]
    pub port: u16,
    /// Environment variables given to each instance.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// docker: the image (required there).
    #[serde(default)]
    pub image: Option<Spanned<String>>,
    /// docker: the network containers join. Default: `bridge`.
    #[serde(default = "default_network")]
    pub network: Spanned<String>,
    /// docker: the port the container listens on. Default: 8080.
    #[serde(default = "default_container_port")]
    pub container_port: Spanned<u16>,
    /// docker: publish `container_port` on the instance's address (default), or, when false,
    /// reach the container at its own address on `network`.
    #[serde(default)]
    pub publish: Option<Spanned<bool>>,
}

/// `[[scaling_group.policy]]`: every key but `name` and `type` belongs to some types only.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilePolicy {
    /// Name (activities name it).
    pub name: Spanned<String>,
    /// `target-tracking`, `step` or `simple`.
    #[serde(rename = "type")]
    pub kind: Spanned<String>,
    /// Metric: `cpu` (average CPU % of the in-service instances), `request-count-per-target`
    /// (requests per second per instance) or `p95-latency` (milliseconds), both from the
    /// balancer.
    #[serde(default = "default_metric")]
    pub metric: Spanned<String>,
    /// target-tracking: the value the metric is held at.
    #[serde(default)]
    pub target: Option<Spanned<f64>>,
    /// target-tracking: only scale out.
    #[serde(default)]
    pub disable_scale_in: Option<Spanned<bool>>,
    /// target-tracking: scale in only to the highest capacity recommended over this window.
    #[serde(default)]
    pub scale_in_window: Option<Spanned<String>>,
    /// step / simple: the alarm's name (default: the policy's).
    #[serde(default)]
    pub alarm: Option<Spanned<String>>,
    /// step / simple: `>`, `>=`, `<` or `<=`.
    #[serde(default)]
    pub comparison: Option<Spanned<String>>,
    /// step / simple: the alarm threshold.
    #[serde(default)]
    pub threshold: Option<Spanned<f64>>,
    /// step / simple: consecutive breaching periods that put the alarm in ALARM.
    #[serde(default)]
    pub evaluation_periods: Option<Spanned<u32>>,
    /// step / simple: `change-in-capacity`, `exact-capacity` or `percent-change-in-capacity`.
    #[serde(default)]
    pub adjustment_type: Option<Spanned<String>>,
    /// step: adjustments by how far the metric is past the threshold.
    #[serde(default)]
    pub steps: Vec<FileStep>,
    /// step / simple with percent adjustments: change at least this many instances.
    #[serde(default)]
    pub min_adjustment_magnitude: Option<Spanned<u32>>,
    /// simple: the adjustment.
    #[serde(default)]
    pub adjustment: Option<Spanned<i64>>,
    /// simple: wait after its activity (default: the group's `default_cooldown`).
    #[serde(default)]
    pub cooldown: Option<Spanned<String>>,
}

/// One step adjustment: applies when `lower <= metric - threshold < upper`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileStep {
    /// Lower bound of `metric - threshold` (absent: minus infinity).
    #[serde(default)]
    pub lower: Option<f64>,
    /// Upper bound of `metric - threshold` (absent: infinity).
    #[serde(default)]
    pub upper: Option<f64>,
    /// The adjustment.
    pub adjustment: Spanned<i64>,
}

/// `[[scaling_group.scheduled]]`: sets min / desired / max at times a cron expression names.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileScheduled {
    /// Name.
    pub name: Spanned<String>,
    /// `minute hour day-of-month month day-of-week`.
    pub cron: Spanned<String>,
    /// `UTC` or a fixed offset such as `+09:00`.
    #[serde(default = "default_time_zone")]
    pub time_zone: Spanned<String>,
    /// New min.
    #[serde(default)]
    pub min: Option<Spanned<u32>>,
    /// New desired.
    #[serde(default)]
    pub desired: Option<Spanned<u32>>,
    /// New max.
    #[serde(default)]
    pub max: Option<Spanned<u32>>,
}

fn spanned<T>(v: T) -> Spanned<T> {
    Spanned::new(0..0, v)
}

fn default_health_check_type() -> Spanned<String> {
    spanned("process".into())
}

fn default_grace() -> Spanned<String> {
    spanned("300s".into())
}

fn default_cooldown() -> Spanned<String> {
    spanned("300s".into())
}

fn default_warmup() -> Spanned<String> {
    spanned("60s".into())
}

fn default_period() -> Spanned<String> {
    spanned("10s".into())
}

fn default_history() -> Spanned<u32> {
    spanned(100)
}

fn default_provider() -> Spanned<String> {
    spanned("process".into())
}

fn default_network() -> Spanned<String> {
    spanned("bridge".into())
}

fn default_container_port() -> Spanned<u16> {
    spanned(8080)
}

fn default_version() -> Spanned<u32> {
    spanned(1)
}

fn default_addresses() -> Vec<Spanned<String>> {
    vec![spanned("127.0.0.1".into())]
}

fn default_metric() -> Spanned<String> {
    spanned("cpu".into())
}

fn default_time_zone() -> Spanned<String> {
    spanned("UTC".into())
}
