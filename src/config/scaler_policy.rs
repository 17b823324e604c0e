//! Scaling policies of a `[[scaling_group]]`: validation into [`ScalingPolicy`].

use super::ConfigError;
use super::file_scaler::FilePolicy;
use super::scaler::{AdjustmentType, Alarm, Comparison, Metric, PolicyKind, ScalingPolicy, Step};
use super::validate::{Ctx, parse_duration};
use std::time::Duration;
use toml::Spanned;

fn duration(ctx: &Ctx<'_>, key: &str, v: &Spanned<String>) -> Result<Duration, ConfigError> {
    parse_duration(v.get_ref()).map_err(|e| ctx.at(v, format!("{key}: {e}")))
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

pub(super) fn policy(
    ctx: &Ctx<'_>,
    group: &str,
    p: &FilePolicy,
    default_cooldown: Duration,
) -> Result<ScalingPolicy, ConfigError> {
    let name = p.name.get_ref().clone();
    let key = |k: &str| format!("scaling_group.{group}.policy.{name}.{k}");
    let metric = ctx.choose(
        &key("metric"),
        &p.metric,
        &[
            ("cpu", Metric::Cpu),
            ("request-count-per-target", Metric::RequestCountPerTarget),
            ("p95-latency", Metric::P95Latency),
        ],
    )?;
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
