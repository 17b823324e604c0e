//! Scaling decisions: pure functions of a policy, what the group looks like at the end of a
//! metric period, the policy's memory and the time. No clock, no socket.
//!
//! Formulas (docs/scaler.md states them with their sources):
//! - target tracking: `ceil(in_service * metric / target)` (the HPA formula), nothing when
//!   `|metric / target - 1| <= 0.1`; out at once, in only to the highest recommendation of the
//!   last `scale_in_window` and never while instances warm up.
//! - step: when the alarm has breached for `evaluation_periods` periods, the step with
//!   `lower <= metric - threshold < upper` adjusts; instances still warming up count as
//!   already launched, so a repeated breach of the same step adds nothing.
//! - simple: the adjustment, then nothing until the activity is over and the cooldown passed.

use crate::config::{AdjustmentType, Alarm, Comparison, PolicyKind, ScalingPolicy, Step};
use std::collections::VecDeque;
use std::time::Duration;
use tokio::time::Instant;

/// Relative distance from the target within which target tracking does nothing.
pub const TOLERANCE: f64 = 0.1;

/// What the group looks like at the end of a period.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Observation {
    /// The metric over the in-service, warmed-up instances (None: no such instance).
    pub metric: Option<f64>,
    /// Desired capacity now.
    pub desired: u32,
    /// In-service instances past their warm-up.
    pub in_service: u32,
    /// Instances launched but not yet past their warm-up.
    pub warming: u32,
    /// Group minimum.
    pub min: u32,
    /// Group maximum.
    pub max: u32,
}

/// A policy's wish for the desired capacity.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// Desired capacity (within min and max; may equal the current one: hold).
    pub desired: u32,
    /// Why, in AWS's words: `an alarm cpu-high in state ALARM triggered policy step-out`.
    pub reason: String,
}

/// What a policy remembers between periods.
#[derive(Debug, Clone, Default)]
pub struct PolicyState {
    breaching: u32,
    cooldown_until: Option<Instant>,
    recommendations: VecDeque<(Instant, u32)>,
}

/// One policy's decision at the end of a period (None: no opinion).
pub fn decide(
    policy: &ScalingPolicy,
    state: &mut PolicyState,
    obs: &Observation,
    now: Instant,
) -> Option<Decision> {
    match &policy.kind {
        PolicyKind::TargetTracking {
            target,
            disable_scale_in,
            scale_in_window,
            ..
        } => target_tracking(
            &policy.name,
            *target,
            *disable_scale_in,
            *scale_in_window,
            state,
            obs,
            now,
        ),
        PolicyKind::Step {
            alarm,
            adjustment_type,
            steps,
            min_adjustment_magnitude,
        } => {
            let metric = alarm_fires(alarm, state, obs)?;
            let step = pick_step(steps, metric - alarm.threshold)?;
            // Warming instances count as launched: the same step again adds nothing.
            let base = if step.adjustment > 0 {
                obs.desired.saturating_sub(obs.warming)
            } else if obs.warming > 0 {
                return None;
            } else {
                obs.desired
            };
            let wanted = adjust(
                base,
                *adjustment_type,
                step.adjustment,
                *min_adjustment_magnitude,
            );
            let wanted = clamp(wanted, obs);
            let changes = if step.adjustment > 0 {
                wanted > obs.desired
            } else {
                wanted < obs.desired
            };
            changes.then(|| Decision {
                desired: wanted,
                reason: alarm_reason(alarm, &policy.name),
            })
        }
        PolicyKind::Simple {
            alarm,
            adjustment_type,
            adjustment,
            min_adjustment_magnitude,
            cooldown,
        } => {
            let metric = alarm_fires(alarm, state, obs);
            if obs.warming > 0 || state.cooldown_until.is_some_and(|u| now < u) {
                return None; // the previous activity is not over
            }
            metric?;
            let wanted = adjust(
                obs.desired,
                *adjustment_type,
                *adjustment,
                *min_adjustment_magnitude,
            );
            let wanted = clamp(wanted, obs);
            if wanted == obs.desired {
                return None;
            }
            state.cooldown_until = Some(now + *cooldown);
            Some(Decision {
                desired: wanted,
                reason: alarm_reason(alarm, &policy.name),
            })
        }
    }
}

/// Several policies: the largest capacity wins (AWS), so a policy holding the capacity
/// blocks another's scale-in. None when nothing changes.
pub fn combine(decisions: Vec<Decision>, desired: u32) -> Option<Decision> {
    let best = decisions.into_iter().max_by_key(|d| d.desired)?;
    (best.desired != desired).then_some(best)
}

fn target_tracking(
    name: &str,
    target: f64,
    disable_scale_in: bool,
    window: Duration,
    state: &mut PolicyState,
    obs: &Observation,
    now: Instant,
) -> Option<Decision> {
    let metric = obs.metric?;
    if obs.in_service == 0 {
        return None;
    }
    let ratio = metric / target;
    let raw = if (ratio - 1.0).abs() <= TOLERANCE {
        obs.desired
    } else {
        (f64::from(obs.in_service) * ratio).ceil() as u32
    };
    let raw = clamp(raw, obs);
    state.recommendations.push_back((now, raw));
    while state
        .recommendations
        .front()
        .is_some_and(|(t, _)| now.duration_since(*t) > window)
    {
        state.recommendations.pop_front();
    }
    let reason = |dir: &str| {
        format!(
            "a target tracking alarm {name}-{dir} (metric {metric:.1} against target {target:.1}) \
             in state ALARM triggered policy {name}"
        )
    };
    if raw > obs.desired {
        return Some(Decision {
            desired: raw,
            reason: reason("high"),
        });
    }
    // Scale in conservatively: to the highest recommendation of the window, and not while
    // instances warm up (their load is not measured yet).
    let highest = state
        .recommendations
        .iter()
        .map(|(_, r)| *r)
        .max()
        .unwrap_or(raw);
    if disable_scale_in || obs.warming > 0 || highest >= obs.desired {
        return Some(Decision {
            desired: obs.desired,
            reason: String::new(),
        });
    }
    Some(Decision {
        desired: highest,
        reason: reason("low"),
    })
}

/// Updates the alarm with this period's metric; the metric when the alarm is in ALARM.
fn alarm_fires(alarm: &Alarm, state: &mut PolicyState, obs: &Observation) -> Option<f64> {
    let metric = obs.metric?;
    let t = alarm.threshold;
    let breach = match alarm.comparison {
        Comparison::Greater => metric > t,
        Comparison::GreaterOrEqual => metric >= t,
        Comparison::Less => metric < t,
        Comparison::LessOrEqual => metric <= t,
    };
    state.breaching = if breach { state.breaching + 1 } else { 0 };
    (state.breaching >= alarm.evaluation_periods).then_some(metric)
}

fn alarm_reason(alarm: &Alarm, policy: &str) -> String {
    format!(
        "an alarm {} in state ALARM triggered policy {policy}",
        alarm.name
    )
}

/// The step with `lower <= delta < upper`.
fn pick_step(steps: &[Step], delta: f64) -> Option<&Step> {
    steps
        .iter()
        .find(|s| s.lower.is_none_or(|l| l <= delta) && s.upper.is_none_or(|u| delta < u))
}

/// Applies an adjustment to `base` (AWS rounding for percentages: fractions between -1 and
/// 1 become -1 or 1, others are truncated toward zero; then the minimum magnitude).
pub fn adjust(base: u32, kind: AdjustmentType, n: i64, min_magnitude: u32) -> i64 {
    let base = i64::from(base);
    match kind {
        AdjustmentType::ChangeInCapacity => base + n,
        AdjustmentType::ExactCapacity => n,
        AdjustmentType::PercentChangeInCapacity => {
            let exact = base as f64 * n as f64 / 100.0;
            let mut delta = if exact > 0.0 && exact < 1.0 {
                1
            } else if exact < 0.0 && exact > -1.0 {
                -1
            } else {
                exact.trunc() as i64
            };
            if delta != 0 && delta.abs() < i64::from(min_magnitude) {
                delta = delta.signum() * i64::from(min_magnitude);
            }
            base + delta
        }
    }
}

fn clamp(wanted: impl Into<i64>, obs: &Observation) -> u32 {
    wanted.into().clamp(i64::from(obs.min), i64::from(obs.max)) as u32
}

#[cfg(test)]
#[path = "policy_tests.rs"]
mod tests;
