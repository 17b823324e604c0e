//! Scaling groups: validation of `[[scaling_group]]` into domain types.

use super::ConfigError;
use super::file_scaler::{FileLaunchTemplate, FileScalingGroup, FileScheduled};
use super::validate::{Ctx, parse_duration};
use super::{BalancerConfig, PoolsConfig};
use crate::scaler::cron::{Cron, TimeZone};
use std::net::IpAddr;
use std::time::Duration;
use toml::Spanned;

/// When an instance counts as unhealthy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HealthCheckType {
    /// When its process (or container) is gone.
    Process,
    /// Also when a target group's health check fails for it.
    Balancer,
}

/// What launches instances.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderKind {
    /// Child processes of roundhouse.
    Process,
    /// Containers of a Docker daemon.
    Docker,
}

/// How instances are launched.
#[derive(Debug, Clone, PartialEq)]
pub struct LaunchTemplate {
    /// Provider.
    pub provider: ProviderKind,
    /// Version (scale-in terminates older versions first).
    pub version: u32,
    /// Program and arguments with `{exe}`, `{address}`, `{port}`, `{id}`, `{region}`.
    pub command: Vec<String>,
    /// Addresses instances listen on, in turn.
    pub addresses: Vec<IpAddr>,
    /// Port every instance listens on; 0: a free port picked at launch.
    pub port: u16,
    /// Environment of each instance.
    pub env: Vec<(String, String)>,
    /// docker: image of the containers.
    pub image: String,
    /// docker: network the containers join.
    pub network: String,
    /// docker: the port the container listens on (published on the instance's address).
    pub container_port: u16,
    /// docker: true (default): `container_port` is published on a free port of the
    /// instance's address; false: the instance is reached at the container's own address on
    /// `network` (the balancer runs on that network too) and nothing is published.
    pub publish: bool,
}

/// Deregistration delay of a scaling group without target groups.
pub const DEFAULT_DEREGISTRATION_DELAY: Duration = Duration::from_secs(30);

/// The command a launch template runs when it names none.
pub const DEFAULT_COMMAND: [&str; 9] = [
    "{exe}",
    "backend",
    "--listen",
    "{address}:{port}",
    "--id",
    "{id}",
    "--region",
    "{region}",
    "--exit-with-stdin",
];

/// A metric policies act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// Average CPU utilisation of the in-service instances, in percent of one core.
    Cpu,
    /// Requests per second per in-service instance, from the balancer's counters.
    RequestCountPerTarget,
    /// 95th percentile response time in milliseconds, from the balancer's histograms.
    P95Latency,
}

impl ScalingPolicy {
    /// The metric the policy acts on.
    pub fn metric(&self) -> Metric {
        match &self.kind {
            PolicyKind::TargetTracking { metric, .. } => *metric,
            PolicyKind::Step { alarm, .. } | PolicyKind::Simple { alarm, .. } => alarm.metric,
        }
    }
}

/// How an alarm compares the metric with its threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparison {
    /// `>`
    Greater,
    /// `>=`
    GreaterOrEqual,
    /// `<`
    Less,
    /// `<=`
    LessOrEqual,
}

/// An alarm: the metric breaches the threshold for `evaluation_periods` periods in a row.
#[derive(Debug, Clone, PartialEq)]
pub struct Alarm {
    /// Name.
    pub name: String,
    /// Metric.
    pub metric: Metric,
    /// Comparison.
    pub comparison: Comparison,
    /// Threshold.
    pub threshold: f64,
    /// Consecutive breaching periods.
    pub evaluation_periods: u32,
}

/// How an adjustment changes the desired capacity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdjustmentType {
    /// `desired + n`
    ChangeInCapacity,
    /// `n`
    ExactCapacity,
    /// `desired + desired * n / 100` (rounded away from zero to at least the minimum
    /// magnitude).
    PercentChangeInCapacity,
}

/// One step adjustment: applies when `lower <= metric - threshold < upper`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Step {
    /// Lower bound (None: minus infinity).
    pub lower: Option<f64>,
    /// Upper bound (None: infinity).
    pub upper: Option<f64>,
    /// Adjustment.
    pub adjustment: i64,
}

/// What a scaling policy does.
#[derive(Debug, Clone, PartialEq)]
pub enum PolicyKind {
    /// Keeps the metric at `target` (AWS target tracking, HPA formula).
    TargetTracking {
        /// Metric.
        metric: Metric,
        /// Target value.
        target: f64,
        /// Only scale out.
        disable_scale_in: bool,
        /// Scale in only to the highest recommendation seen in this window.
        scale_in_window: Duration,
    },
    /// Adjustments by how far the alarm's metric is past its threshold.
    Step {
        /// Alarm.
        alarm: Alarm,
        /// Adjustment type.
        adjustment_type: AdjustmentType,
        /// Steps.
        steps: Vec<Step>,
        /// Least change for percent adjustments.
        min_adjustment_magnitude: u32,
    },
    /// One adjustment per alarm, then a cooldown.
    Simple {
        /// Alarm.
        alarm: Alarm,
        /// Adjustment type.
        adjustment_type: AdjustmentType,
        /// Adjustment.
        adjustment: i64,
        /// Least change for percent adjustments.
        min_adjustment_magnitude: u32,
        /// Wait after the activity.
        cooldown: Duration,
    },
}

/// A scaling policy.
#[derive(Debug, Clone, PartialEq)]
pub struct ScalingPolicy {
    /// Name.
    pub name: String,
    /// Kind and parameters.
    pub kind: PolicyKind,
}

/// Sets min / desired / max at the times a cron expression names.
#[derive(Debug, Clone, PartialEq)]
pub struct ScheduledAction {
    /// Name.
    pub name: String,
    /// When.
    pub cron: Cron,
    /// Time zone of the cron expression.
    pub zone: TimeZone,
    /// New min.
    pub min: Option<u32>,
    /// New desired.
    pub desired: Option<u32>,
    /// New max.
    pub max: Option<u32>,
}

/// A scaling group (AWS Auto Scaling group).
#[derive(Debug, Clone, PartialEq)]
pub struct ScalingGroup {
    /// Name.
    pub name: String,
    /// Region of its instances.
    pub region: String,
    /// Fewest instances.
    pub min: u32,
    /// Instances wanted at start.
    pub desired: u32,
    /// Most instances.
    pub max: u32,
    /// When an instance is unhealthy.
    pub health_check_type: HealthCheckType,
    /// No replacement for failed health checks during this time after launch.
    pub health_check_grace_period: Duration,
    /// Simple-scaling cooldown unless the policy names one.
    pub default_cooldown: Duration,
    /// Time after entering service before an instance's metrics count.
    pub instance_warmup: Duration,
    /// Metric period.
    pub period: Duration,
    /// Longest time between deregistration and termination (the balancer's drain may end
    /// it sooner).
    pub deregistration_delay: Duration,
    /// Target groups instances are registered with.
    pub target_groups: Vec<String>,
    /// Pools instances are endpoints of.
    pub pools: Vec<String>,
    /// Webhook getting every activity as JSON.
    pub notify_url: Option<hyper::Uri>,
    /// Activities kept in memory.
    pub activity_history: usize,
    /// Launch template.
    pub launch_template: LaunchTemplate,
    /// Scaling policies.
    pub policies: Vec<ScalingPolicy>,
    /// Scheduled actions.
    pub scheduled: Vec<ScheduledAction>,
}

fn duration(ctx: &Ctx<'_>, key: &str, v: &Spanned<String>) -> Result<Duration, ConfigError> {
    parse_duration(v.get_ref()).map_err(|e| ctx.at(v, format!("{key}: {e}")))
}

/// Validates every `[[scaling_group]]` against the pools and target groups they name.
pub fn validate(
    ctx: &Ctx<'_>,
    groups: &[FileScalingGroup],
    pools: &PoolsConfig,
    balancer: &BalancerConfig,
) -> Result<Vec<ScalingGroup>, ConfigError> {
    let mut out: Vec<ScalingGroup> = Vec::new();
    for g in groups {
        let group = group(ctx, g, pools, balancer)?;
        if out.iter().any(|o| o.name == group.name) {
            return Err(ctx.at(
                &g.name,
                format!("scaling_group `{}` is defined twice", group.name),
            ));
        }
        out.push(group);
    }
    Ok(out)
}

fn group(
    ctx: &Ctx<'_>,
    g: &FileScalingGroup,
    pools: &PoolsConfig,
    balancer: &BalancerConfig,
) -> Result<ScalingGroup, ConfigError> {
    let name = g.name.get_ref().clone();
    let group_name = name.clone();
    if name.is_empty() || name.contains(char::is_whitespace) {
        return Err(ctx.at(&g.name, "scaling_group.name must be a word without spaces"));
    }
    let key = |k: &str| format!("scaling_group.{group_name}.{k}");
    let (min, max) = (*g.min.get_ref(), *g.max.get_ref());
    let desired = g.desired.as_ref().map(|d| *d.get_ref()).unwrap_or(min);
    let at = g.desired.as_ref().map(|d| d.span()).unwrap_or(g.max.span());
    if !(min <= desired && desired <= max) || max == 0 {
        return Err(ctx.at(
            &Spanned::new(at, ()),
            format!(
                "{}: need min <= desired <= max and max >= 1 (min {min}, desired {desired}, max {max})",
                key("desired")
            ),
        ));
    }
    let region = match &g.region {
        Some(r) => {
            if !pools.regions.is_empty() && !pools.regions.iter().any(|x| &x.name == r.get_ref()) {
                return Err(ctx.at(
                    r,
                    format!(
                        "{}: no [[region]] is named `{}`",
                        key("region"),
                        r.get_ref()
                    ),
                ));
            }
            r.get_ref().clone()
        }
        None => "default".to_string(),
    };
    for t in &g.target_groups {
        if !balancer
            .target_groups
            .iter()
            .any(|x| &x.name == t.get_ref())
        {
            return Err(ctx.at(
                t,
                format!(
                    "{}: no [target_group.{}] is defined",
                    key("target_groups"),
                    t.get_ref()
                ),
            ));
        }
    }
    for p in &g.pools {
        if !pools.pools.iter().any(|x| &x.name == p.get_ref()) {
            return Err(ctx.at(
                p,
                format!("{}: no [pool.{}] is defined", key("pools"), p.get_ref()),
            ));
        }
    }
    let health_check_type = ctx.choose(
        &key("health_check_type"),
        &g.health_check_type,
        &[
            ("process", HealthCheckType::Process),
            ("balancer", HealthCheckType::Balancer),
        ],
    )?;
    if health_check_type == HealthCheckType::Balancer && g.target_groups.is_empty() {
        return Err(ctx.at(
            &g.health_check_type,
            format!(
                "{}: `balancer` needs at least one of `target_groups`",
                key("health_check_type")
            ),
        ));
    }
    let period = duration(ctx, &key("period"), &g.period)?;
    if period < Duration::from_millis(100) {
        return Err(ctx.at(
            &g.period,
            format!("{}: must be at least 100ms", key("period")),
        ));
    }
    let default_cooldown = duration(ctx, &key("default_cooldown"), &g.default_cooldown)?;
    let history = *g.activity_history.get_ref() as usize;
    if !(1..=10_000).contains(&history) {
        return Err(ctx.at(
            &g.activity_history,
            format!("{}: must be 1..=10000", key("activity_history")),
        ));
    }
    let policies = g
        .policy
        .iter()
        .map(|p| super::scaler_policy::policy(ctx, &name, p, default_cooldown))
        .collect::<Result<Vec<_>, _>>()?;
    for (i, p) in policies.iter().enumerate() {
        if policies[..i].iter().any(|o| o.name == p.name) {
            return Err(ctx.at(
                &g.policy[i].name,
                format!("{}: policy `{}` is defined twice", key("policy"), p.name),
            ));
        }
    }
    if let Some((i, p)) = policies
        .iter()
        .enumerate()
        .find(|(_, p)| p.metric() != Metric::Cpu)
        && g.target_groups.is_empty()
    {
        return Err(ctx.at(
            &g.policy[i].metric,
            format!(
                "{}: `{}` is measured by the balancer: list at least one of `target_groups`",
                key(&format!("policy.{}.metric", p.name)),
                g.policy[i].metric.get_ref()
            ),
        ));
    }
    Ok(ScalingGroup {
        launch_template: launch_template(ctx, &name, &g.launch_template)?,
        scheduled: g
            .scheduled
            .iter()
            .map(|s| scheduled(ctx, &name, s))
            .collect::<Result<_, _>>()?,
        name,
        region,
        min,
        desired,
        max,
        health_check_type,
        health_check_grace_period: duration(
            ctx,
            &key("health_check_grace_period"),
            &g.health_check_grace_period,
        )?,
        default_cooldown,
        instance_warmup: duration(ctx, &key("instance_warmup"), &g.instance_warmup)?,
        period,
        deregistration_delay: match &g.deregistration_delay {
            Some(d) => duration(ctx, &key("deregistration_delay"), d)?,
            None => balancer
                .target_groups
                .iter()
                .filter(|t| g.target_groups.iter().any(|n| n.get_ref() == &t.name))
                .map(|t| t.deregistration_delay)
                .max()
                .unwrap_or(DEFAULT_DEREGISTRATION_DELAY),
        },
        target_groups: g
            .target_groups
            .iter()
            .map(|t| t.get_ref().clone())
            .collect(),
        pools: g.pools.iter().map(|p| p.get_ref().clone()).collect(),
        activity_history: history,
        notify_url: match &g.notify_url {
            Some(u) => Some(notify_url(ctx, &key("notify_url"), u)?),
            None => None,
        },
        policies,
    })
}

/// An `http://` URL with a host (the webhook client speaks plain HTTP/1.1).
fn notify_url(ctx: &Ctx<'_>, key: &str, u: &Spanned<String>) -> Result<hyper::Uri, ConfigError> {
    let bad = |what: &str| ctx.at(u, format!("{key}: `{}` {what}", u.get_ref()));
    let uri: hyper::Uri = u.get_ref().parse().map_err(|_| bad("is not a URL"))?;
    if uri.scheme_str() != Some("http") || uri.host().is_none() {
        return Err(bad("must be an http://host[:port]/path URL"));
    }
    Ok(uri)
}

fn launch_template(
    ctx: &Ctx<'_>,
    group: &str,
    t: &FileLaunchTemplate,
) -> Result<LaunchTemplate, ConfigError> {
    let key = |k: &str| format!("scaling_group.{group}.launch_template.{k}");
    let provider = ctx.choose(
        &key("provider"),
        &t.provider,
        &[
            ("process", ProviderKind::Process),
            ("docker", ProviderKind::Docker),
        ],
    )?;
    let image = t
        .image
        .as_ref()
        .map(|i| i.get_ref().clone())
        .unwrap_or_default();
    match (provider, &t.image) {
        (ProviderKind::Docker, None) => {
            return Err(ctx.at(
                &t.provider,
                format!("{}: the docker provider needs an image", key("image")),
            ));
        }
        (ProviderKind::Process, Some(i)) => {
            return Err(ctx.at(
                i,
                format!("{}: only the docker provider runs images", key("image")),
            ));
        }
        _ => {}
    }
    let mut addresses = Vec::new();
    for a in &t.addresses {
        let ip: IpAddr = a.get_ref().parse().map_err(|_| {
            ctx.at(
                a,
                format!(
                    "{}: `{}` is not an IP address",
                    key("addresses"),
                    a.get_ref()
                ),
            )
        })?;
        addresses.push(ip);
    }
    if addresses.is_empty() {
        return Err(ctx.at(
            &t.provider,
            format!("{}: list at least one", key("addresses")),
        ));
    }
    let command: Vec<String> = if t.command.is_empty() && provider == ProviderKind::Process {
        DEFAULT_COMMAND.iter().map(|s| s.to_string()).collect()
    } else {
        t.command.iter().map(|c| c.get_ref().clone()).collect()
    };
    // A container listens on its fixed `container_port`; a process on the port it is given.
    if provider == ProviderKind::Process && !command.iter().any(|c| c.contains("{port}")) {
        let at = t.command.first().unwrap_or(&t.provider);
        return Err(ctx.at(
            at,
            format!(
                "{}: the command must take the instance's port as `{{port}}`",
                key("command")
            ),
        ));
    }
    let publish = match &t.publish {
        Some(p) if provider != ProviderKind::Docker => {
            return Err(ctx.at(
                p,
                format!("{}: only the docker provider publishes", key("publish")),
            ));
        }
        Some(p) => *p.get_ref(),
        None => true,
    };
    Ok(LaunchTemplate {
        provider,
        version: *t.version.get_ref(),
        command,
        addresses,
        port: t.port,
        env: t.env.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        image,
        network: t.network.get_ref().clone(),
        container_port: *t.container_port.get_ref(),
        publish,
    })
}

fn scheduled(
    ctx: &Ctx<'_>,
    group: &str,
    s: &FileScheduled,
) -> Result<ScheduledAction, ConfigError> {
    let key = |k: &str| format!("scaling_group.{group}.scheduled.{}.{k}", s.name.get_ref());
    let cron: Cron = s
        .cron
        .get_ref()
        .parse()
        .map_err(|e| ctx.at(&s.cron, format!("{}: {e}", key("cron"))))?;
    let zone: TimeZone = s
        .time_zone
        .get_ref()
        .parse()
        .map_err(|e| ctx.at(&s.time_zone, format!("{}: {e}", key("time_zone"))))?;
    let v = |x: &Option<Spanned<u32>>| x.as_ref().map(|x| *x.get_ref());
    let (min, desired, max) = (v(&s.min), v(&s.desired), v(&s.max));
    if min.is_none() && desired.is_none() && max.is_none() {
        return Err(ctx.at(
            &s.name,
            format!("{}: set at least one of min, desired, max", key("min")),
        ));
    }
    if let (Some(a), Some(b)) = (min, max)
        && a > b
    {
        return Err(ctx.at(&s.name, format!("{}: min {a} is above max {b}", key("min"))));
    }
    Ok(ScheduledAction {
        name: s.name.get_ref().clone(),
        cron,
        zone,
        min,
        desired,
        max,
    })
}

#[cfg(test)]
#[path = "scaler_tests.rs"]
mod tests;
