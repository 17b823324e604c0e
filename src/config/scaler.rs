//! Scaling groups: validation of `[[scaling_group]]` into domain types.

use super::ConfigError;
use super::file_scaler::{FileLaunchTemplate, FilePolicy, FileScalingGroup, FileScheduled};
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
    /// Environment of each instance.
    pub env: Vec<(String, String)>,
}

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
    /// Time between deregistration and termination.
    pub deregistration_delay: Duration,
    /// Target groups instances are registered with.
    pub target_groups: Vec<String>,
    /// Pools instances are endpoints of.
    pub pools: Vec<String>,
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
        .map(|p| policy(ctx, &name, p, default_cooldown))
        .collect::<Result<Vec<_>, _>>()?;
    for (i, p) in policies.iter().enumerate() {
        if policies[..i].iter().any(|o| o.name == p.name) {
            return Err(ctx.at(
                &g.policy[i].name,
                format!("{}: policy `{}` is defined twice", key("policy"), p.name),
            ));
        }
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
        deregistration_delay: duration(ctx, &key("deregistration_delay"), &g.deregistration_delay)?,
        target_groups: g
            .target_groups
            .iter()
            .map(|t| t.get_ref().clone())
            .collect(),
        pools: g.pools.iter().map(|p| p.get_ref().clone()).collect(),
        activity_history: history,
        policies,
    })
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
        &[("process", ProviderKind::Process)],
    )?;
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
    let command: Vec<String> = if t.command.is_empty() {
        DEFAULT_COMMAND.iter().map(|s| s.to_string()).collect()
    } else {
        t.command.iter().map(|c| c.get_ref().clone()).collect()
    };
    if !command.iter().any(|c| c.contains("{port}")) {
        let at = t.command.first().unwrap_or(&t.provider);
        return Err(ctx.at(
            at,
            format!(
                "{}: the command must take the instance's port as `{{port}}`",
                key("command")
            ),
        ));
    }
    Ok(LaunchTemplate {
        provider,
        version: *t.version.get_ref(),
        command,
        addresses,
        env: t.env.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
    })
}

fn alarm(
    ctx: &Ctx<'_>,
    key: &dyn Fn(&str) -> String,
    p: &FilePolicy,
    metric: Metric,
) -> Result<Alarm, ConfigError> {
    let comparison = p.comparison.as_ref().ok_or_else(|| {
        ctx.at(
            &p.kind,
            format!("{}: needs `comparison`", key("comparison")),
        )
    })?;
    let comparison = ctx.choose(
        &key("comparison"),
        comparison,
        &[
            (">", Comparison::Greater),
            (">=", Comparison::GreaterOrEqual),
            ("<", Comparison::Less),
            ("<=", Comparison::LessOrEqual),
        ],
    )?;
    let threshold = p
        .threshold
        .as_ref()
        .ok_or_else(|| ctx.at(&p.kind, format!("{}: needs `threshold`", key("threshold"))))?;
    let evaluation_periods = p
        .evaluation_periods
        .as_ref()
        .map(|e| *e.get_ref())
        .unwrap_or(1);
    if !(1..=100).contains(&evaluation_periods) {
        let e = p.evaluation_periods.as_ref().expect("the default is valid");
        return Err(ctx.at(e, format!("{}: must be 1..=100", key("evaluation_periods"))));
    }
    Ok(Alarm {
        name: p
            .alarm
            .as_ref()
            .map(|a| a.get_ref().clone())
            .unwrap_or_else(|| p.name.get_ref().clone()),
        metric,
        comparison,
        threshold: *threshold.get_ref(),
        evaluation_periods,
    })
}

fn adjustment_type(
    ctx: &Ctx<'_>,
    key: &dyn Fn(&str) -> String,
    p: &FilePolicy,
) -> Result<AdjustmentType, ConfigError> {
    match &p.adjustment_type {
        None => Ok(AdjustmentType::ChangeInCapacity),
        Some(t) => ctx.choose(
            &key("adjustment_type"),
            t,
            &[
                ("change-in-capacity", AdjustmentType::ChangeInCapacity),
                ("exact-capacity", AdjustmentType::ExactCapacity),
                (
                    "percent-change-in-capacity",
                    AdjustmentType::PercentChangeInCapacity,
                ),
            ],
        ),
    }
}

/// Keys a policy type does not use are an error rather than silently ignored.
fn unused(
    ctx: &Ctx<'_>,
    key: &dyn Fn(&str) -> String,
    kind: &str,
    set: &[(&str, Option<usize>)],
) -> Result<(), ConfigError> {
    for (k, span) in set {
        if let Some(start) = span {
            return Err(ctx.at(
                &Spanned::new(*start..*start, ()),
                format!("{}: not used by `type = \"{kind}\"`", key(k)),
            ));
        }
    }
    Ok(())
}

/// Where an optional key starts, when it is present.
fn s<T>(v: &Option<Spanned<T>>) -> Option<usize> {
    v.as_ref().map(|x| x.span().start)
}

fn policy(
    ctx: &Ctx<'_>,
    group: &str,
    p: &FilePolicy,
    default_cooldown: Duration,
) -> Result<ScalingPolicy, ConfigError> {
    let name = p.name.get_ref().clone();
    let key = |k: &str| format!("scaling_group.{group}.policy.{name}.{k}");
    let metric = ctx.choose(&key("metric"), &p.metric, &[("cpu", Metric::Cpu)])?;
    let tt_keys = [
        ("target", p.target.as_ref().map(|x| x.span().start)),
        ("disable_scale_in", s(&p.disable_scale_in)),
        ("scale_in_window", s(&p.scale_in_window)),
    ];
    let alarm_keys = [
        ("alarm", s(&p.alarm)),
        ("comparison", s(&p.comparison)),
        ("threshold", p.threshold.as_ref().map(|x| x.span().start)),
        ("evaluation_periods", s(&p.evaluation_periods)),
        ("adjustment_type", s(&p.adjustment_type)),
        ("min_adjustment_magnitude", s(&p.min_adjustment_magnitude)),
    ];
    let steps_key = [(
        "steps",
        p.steps.first().map(|st| st.adjustment.span().start),
    )];
    let simple_keys = [
        ("adjustment", s(&p.adjustment)),
        ("cooldown", s(&p.cooldown)),
    ];
    let magnitude = p
        .min_adjustment_magnitude
        .as_ref()
        .map(|m| *m.get_ref())
        .unwrap_or(1);
    let kind = match p.kind.get_ref().as_str() {
        "target-tracking" => {
            unused(ctx, &key, "target-tracking", &alarm_keys)?;
            unused(ctx, &key, "target-tracking", &steps_key)?;
            unused(ctx, &key, "target-tracking", &simple_keys)?;
            let target = p
                .target
                .as_ref()
                .ok_or_else(|| ctx.at(&p.kind, format!("{}: needs `target`", key("target"))))?;
            if !(target.get_ref().is_finite() && *target.get_ref() > 0.0) {
                return Err(ctx.at(target, format!("{}: must be above 0", key("target"))));
            }
            let window = match &p.scale_in_window {
                Some(w) => duration(ctx, &key("scale_in_window"), w)?,
                None => Duration::from_secs(300),
            };
            PolicyKind::TargetTracking {
                metric,
                target: *target.get_ref(),
                disable_scale_in: p.disable_scale_in.as_ref().is_some_and(|d| *d.get_ref()),
                scale_in_window: window,
            }
        }
        "step" => {
            unused(ctx, &key, "step", &tt_keys)?;
            unused(ctx, &key, "step", &simple_keys)?;
            let alarm = alarm(ctx, &key, p, metric)?;
            let steps = steps(ctx, &key, p)?;
            PolicyKind::Step {
                alarm,
                adjustment_type: adjustment_type(ctx, &key, p)?,
                steps,
                min_adjustment_magnitude: magnitude,
            }
        }
        "simple" => {
            unused(ctx, &key, "simple", &tt_keys)?;
            unused(ctx, &key, "simple", &steps_key)?;
            let adjustment = p.adjustment.as_ref().ok_or_else(|| {
                ctx.at(
                    &p.kind,
                    format!("{}: needs `adjustment`", key("adjustment")),
                )
            })?;
            PolicyKind::Simple {
                alarm: alarm(ctx, &key, p, metric)?,
                adjustment_type: adjustment_type(ctx, &key, p)?,
                adjustment: *adjustment.get_ref(),
                min_adjustment_magnitude: magnitude,
                cooldown: match &p.cooldown {
                    Some(c) => duration(ctx, &key("cooldown"), c)?,
                    None => default_cooldown,
                },
            }
        }
        other => {
            return Err(ctx.at(
                &p.kind,
                format!(
                    "{}: `{other}` is not `target-tracking`, `step` or `simple`",
                    key("type")
                ),
            ));
        }
    };
    Ok(ScalingPolicy { name, kind })
}

/// Steps must not overlap; sorted by lower bound.
fn steps(
    ctx: &Ctx<'_>,
    key: &dyn Fn(&str) -> String,
    p: &FilePolicy,
) -> Result<Vec<Step>, ConfigError> {
    let mut steps: Vec<(Step, &Spanned<i64>)> = p
        .steps
        .iter()
        .map(|s| {
            (
                Step {
                    lower: s.lower,
                    upper: s.upper,
                    adjustment: *s.adjustment.get_ref(),
                },
                &s.adjustment,
            )
        })
        .collect();
    if steps.is_empty() {
        return Err(ctx.at(
            &p.kind,
            format!("{}: a step policy needs steps", key("steps")),
        ));
    }
    let lo = |s: &Step| s.lower.unwrap_or(f64::NEG_INFINITY);
    let hi = |s: &Step| s.upper.unwrap_or(f64::INFINITY);
    steps.sort_by(|a, b| lo(&a.0).total_cmp(&lo(&b.0)));
    for (i, (s, at)) in steps.iter().enumerate() {
        if lo(s) >= hi(s) {
            return Err(ctx.at(*at, format!("{}: lower must be below upper", key("steps"))));
        }
        if i > 0 && hi(&steps[i - 1].0) > lo(s) {
            return Err(ctx.at(*at, format!("{}: steps overlap", key("steps"))));
        }
    }
    Ok(steps.into_iter().map(|(s, _)| s).collect())
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
mod tests {
    use crate::config::{Config, HealthCheckType, PolicyKind};
    use std::path::Path;
    use std::time::Duration;

    const BASE: &str = "[dns]\nlisten = [\"127.0.0.1:0\"]\nzones_dir = \"\"\n\
        [target_group.web]\n\
        [[listener]]\nname = \"web\"\nlisten = \"127.0.0.1:0\"\ntarget_group = \"web\"\n";

    fn parse(extra: &str) -> Result<Config, String> {
        Config::parse(
            &format!("{BASE}{extra}"),
            Path::new("t.toml"),
            Path::new("/b"),
        )
        .map_err(|e| e.to_string())
    }

    const GROUP: &str = "[[scaling_group]]\nname = \"web\"\nmin = 1\nmax = 3\ntarget_groups = [\"web\"]\n\
        [scaling_group.launch_template]\n";

    #[test]
    fn a_full_group_validates() {
        let c = parse(&format!(
            "{GROUP}version = 2\n\
             [[scaling_group.policy]]\nname = \"cpu50\"\ntype = \"target-tracking\"\ntarget = 50.0\nscale_in_window = \"30s\"\n\
             [[scaling_group.policy]]\nname = \"step-out\"\ntype = \"step\"\ncomparison = \">=\"\nthreshold = 70.0\nevaluation_periods = 2\n\
             steps = [{{ lower = 0.0, upper = 20.0, adjustment = 1 }}, {{ lower = 20.0, adjustment = 2 }}]\n\
             [[scaling_group.policy]]\nname = \"in\"\ntype = \"simple\"\ncomparison = \"<\"\nthreshold = 30.0\nadjustment = -1\ncooldown = \"2m\"\n\
             [[scaling_group.scheduled]]\nname = \"morning\"\ncron = \"0 9 * * mon-fri\"\ntime_zone = \"+09:00\"\nmin = 2\n"
        ))
        .unwrap();
        let g = &c.scaler[0];
        assert_eq!((g.min, g.desired, g.max), (1, 1, 3));
        assert_eq!(g.health_check_type, HealthCheckType::Process);
        assert_eq!(g.launch_template.version, 2);
        assert_eq!(g.launch_template.command[0], "{exe}");
        assert_eq!(g.policies.len(), 3);
        assert!(matches!(
            g.policies[2].kind,
            PolicyKind::Simple { cooldown, .. } if cooldown == Duration::from_secs(120)
        ));
        assert_eq!(g.scheduled[0].zone.offset_secs, 9 * 3600);
        assert!(
            c.balancer.target_groups[0].targets.is_empty(),
            "filled by the group"
        );
    }

    #[test]
    fn errors_name_the_line_and_key() {
        let line = |extra: &str| -> (usize, String) {
            let e = parse(extra).unwrap_err();
            let rest = e.strip_prefix("t.toml:").unwrap();
            let (n, msg) = rest.split_once(": ").unwrap();
            (
                n.parse::<usize>().unwrap() - BASE.lines().count(),
                msg.to_string(),
            )
        };
        let (n, m) = line(
            "[[scaling_group]]\nname = \"web\"\nmin = 2\ndesired = 1\nmax = 3\ntarget_groups = [\"web\"]\n[scaling_group.launch_template]\n",
        );
        assert_eq!(n, 4);
        assert!(m.contains("min <= desired <= max"), "{m}");
        let (n, m) = line(&format!("{GROUP}command = [\"sleep\", \"9\"]\n"));
        assert_eq!(n, 7);
        assert!(m.contains("`{port}`"), "{m}");
        let (n, m) = line(
            "[[scaling_group]]\nname = \"web\"\nmin = 1\nmax = 3\ntarget_groups = [\"web\", \"nope\"]\n[scaling_group.launch_template]\n",
        );
        assert_eq!(n, 5);
        assert!(m.contains("no [target_group.nope]"), "{m}");
        let (n, m) = line(&format!(
            "{GROUP}[[scaling_group.policy]]\nname = \"p\"\ntype = \"target-tracking\"\ntarget = 50.0\nthreshold = 3.0\n"
        ));
        assert_eq!(n, 11);
        assert!(
            m.contains("threshold: not used by `type = \"target-tracking\"`"),
            "{m}"
        );
        let (n, m) = line(&format!(
            "{GROUP}[[scaling_group.policy]]\nname = \"p\"\ntype = \"step\"\ncomparison = \">\"\nthreshold = 3.0\n\
             steps = [{{ lower = 0.0, upper = 20.0, adjustment = 1 }}, {{ lower = 10.0, adjustment = 2 }}]\n"
        ));
        assert_eq!(n, 12);
        assert!(m.contains("steps overlap"), "{m}");
        let (n, m) = line(&format!(
            "{GROUP}[[scaling_group.scheduled]]\nname = \"s\"\ncron = \"0 25 * * *\"\nmin = 1\n"
        ));
        assert_eq!(n, 9);
        assert!(m.contains("hour"), "{m}");
        let (n, m) = line(&format!(
            "{GROUP}[[scaling_group.scheduled]]\nname = \"s\"\ncron = \"0 1 * * *\"\ntime_zone = \"Asia/Seoul\"\nmin = 1\n"
        ));
        assert_eq!(n, 10);
        assert!(m.contains("not a time zone"), "{m}");
        let (n, m) = line(&format!("{GROUP}bogus = 1\n"));
        assert_eq!(n, 7);
        assert!(m.contains("unknown field `bogus`"), "{m}");
        let (_, m) = line(
            "[[scaling_group]]\nname = \"web\"\nmin = 1\nmax = 3\nhealth_check_type = \"balancer\"\n[scaling_group.launch_template]\n[[scaling_group]]\nname = \"b\"\nmin = 1\nmax = 1\ntarget_groups = [\"web\"]\n[scaling_group.launch_template]\n",
        );
        assert!(m.contains("needs at least one of `target_groups`"), "{m}");
    }
}
