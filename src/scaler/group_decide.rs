//! A scaling group's decisions: policies at the end of each metric period, commands
//! (manual desired capacity, reload), scheduled actions.

use super::{CapacityUpdate, Command, Group};
use crate::config::{Metric, ScalingGroup};
use crate::scaler::metrics::PeriodMetrics;
use crate::scaler::policy::{Decision, Observation, PolicyState, combine, decide};
use crate::scaler::provider::Provider;
use tokio::time::Instant;

impl<P: Provider> Group<P> {
    pub(super) fn plan_schedule(&mut self) {
        let now = self.unix(Instant::now()).floor() as i64;
        self.schedule = self
            .config
            .scheduled
            .iter()
            .map(|s| {
                s.cron
                    .next_after(now, s.zone)
                    .map(|t| self.clock.instant(t))
            })
            .collect();
    }

    /// End of a metric period: measure, ask every policy, apply the winner.
    pub(super) fn evaluate(&mut self) {
        let now = Instant::now();
        let warmup = self.config.instance_warmup;
        let (mut sum, mut n, mut warming) = (0.0, 0u32, 0u32);
        let mut measured = Vec::new();
        for i in self.instances.iter().filter(|i| i.draining_until.is_none()) {
            let cpu = self.provider.cpu(&i.id);
            match i.in_service {
                Some(since) if now >= since + warmup => {
                    measured.push(i.addr);
                    if let Some(c) = cpu {
                        sum += c;
                        n += 1;
                    }
                }
                _ => warming += 1,
            }
        }
        let balancer = match &self.stats {
            Some(stats) => self
                .deltas
                .period(stats(), &measured, self.config.period, now),
            None => PeriodMetrics::default(),
        };
        let cpu = (n > 0).then(|| sum / f64::from(n));
        let obs = |metric: Metric| Observation {
            metric: match metric {
                Metric::Cpu => cpu,
                Metric::RequestCountPerTarget => balancer.requests_per_target,
                Metric::P95Latency => balancer.p95_ms,
            },
            desired: self.desired,
            in_service: measured.len() as u32,
            warming,
            min: self.min,
            max: self.max,
        };
        tracing::debug!(group = %self.config.name, ?cpu, ?balancer, in_service = measured.len(), warming, "period");
        let decisions: Vec<Decision> = self
            .config
            .policies
            .iter()
            .zip(self.states.iter_mut())
            .filter_map(|(p, s)| decide(p, s, &obs(p.metric()), now))
            .collect();
        if let Some(d) = combine(decisions, self.desired) {
            let cause = format!(
                "At {} {} changing the desired capacity from {} to {}.",
                self.at(now),
                d.reason,
                self.desired,
                d.desired
            );
            self.set_desired(d.desired, cause);
        }
    }

    pub(super) fn command(&mut self, c: Command) {
        let now = Instant::now();
        match c {
            Command::Update { capacity, reply } => {
                let _ = reply.send(self.update(capacity, now));
            }
            Command::StartRefresh { reply } => {
                let _ = reply.send(self.start_refresh(now));
            }
            Command::Reconfigure(c) => self.reconfigure(*c, now),
        }
    }

    /// A user's change of min, max and desired capacity.
    fn update(&mut self, u: CapacityUpdate, now: Instant) -> Result<(), String> {
        let (min, max) = (u.min.unwrap_or(self.min), u.max.unwrap_or(self.max));
        if min > max {
            return Err(format!("min {min} is above max {max}"));
        }
        let desired = match u.desired {
            Some(d) if !(min..=max).contains(&d) => {
                return Err(format!(
                    "desired capacity {d} is outside min {min} and max {max}"
                ));
            }
            Some(d) => d,
            None => self.desired.clamp(min, max),
        };
        let cause = match (u.min, u.max) {
            (None, None) => format!(
                "At {} a user request explicitly set group desired capacity changing the \
                 desired capacity from {} to {desired}.",
                self.at(now),
                self.desired
            ),
            _ => format!(
                "At {} a user request update of the group constraints to min: {min}, max: \
                 {max}, desired: {desired} changing the desired capacity from {} to \
                 {desired}.",
                self.at(now),
                self.desired
            ),
        };
        (self.min, self.max) = (min, max);
        self.set_desired(desired, cause);
        Ok(())
    }

    pub(super) fn reconfigure(&mut self, c: ScalingGroup, now: Instant) {
        let file_desired_changed = c.desired != self.config.desired;
        if c.policies != self.config.policies {
            self.states = vec![PolicyState::default(); c.policies.len()];
        }
        let schedule_changed = c.scheduled != self.config.scheduled;
        let (min, max) = (c.min, c.max);
        let wanted = if file_desired_changed {
            c.desired
        } else {
            self.desired
        };
        self.config = c;
        if schedule_changed {
            self.plan_schedule();
        }
        let capacity = CapacityUpdate {
            min: Some(min),
            max: Some(max),
            desired: Some(wanted.clamp(min, max)),
        };
        if let Err(e) = self.update(capacity, now) {
            tracing::error!(group = %self.config.name, "{e}");
        }
    }

    pub(super) fn scheduled(&mut self, index: usize) {
        let now = Instant::now();
        let action = self.config.scheduled[index].clone();
        self.min = action.min.unwrap_or(self.min);
        self.max = action.max.unwrap_or(self.max).max(self.min);
        let desired = action
            .desired
            .unwrap_or(self.desired)
            .clamp(self.min, self.max);
        let cause = format!(
            "At {} a scheduled action {} updated the group constraints to min: {}, max: {}, \
             desired: {desired} changing the desired capacity from {} to {desired}.",
            self.at(now),
            action.name,
            self.min,
            self.max,
            self.desired
        );
        tracing::info!(group = %self.config.name, action = %action.name, "scheduled action");
        self.set_desired(desired, cause);
        let fired = self.unix(now).floor() as i64;
        self.schedule[index] = action
            .cron
            .next_after(fired, action.zone)
            .map(|t| self.clock.instant(t));
    }
}
