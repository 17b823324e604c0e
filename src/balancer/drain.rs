//! Deregistration: a target removed from the configuration keeps its requests in flight
//! until they finish or its deregistration delay runs out, whichever is first; then the
//! remaining ones are told to stop ([`super::InFlight::cancelled`]).

use super::target::TargetState;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// A removed target to drain (see [`super::Groups::removed_from`]).
#[derive(Debug)]
pub struct Draining {
    pub(crate) state: Arc<TargetState>,
    pub(crate) delay: Duration,
}

impl Draining {
    /// The target group the target was in.
    pub fn group(&self) -> &str {
        &self.state.group
    }

    /// The target's address.
    pub fn target(&self) -> SocketAddr {
        self.state.addr
    }

    /// Requests or connections still in flight.
    pub fn in_flight(&self) -> u32 {
        self.state.in_flight()
    }

    /// Waits until nothing is in flight or the deregistration delay has passed, then
    /// cancels what is left and logs how many were abandoned.
    pub async fn run(self) {
        let deadline = Instant::now() + self.delay;
        let idle = self.state.idle();
        loop {
            let finished = idle.notified();
            tokio::pin!(finished);
            // Registered before the check: a request ending in between still wakes us.
            finished.as_mut().enable();
            if self.state.in_flight() == 0 {
                break;
            }
            tokio::select! {
                () = finished => {}
                () = tokio::time::sleep_until(deadline) => break,
            }
        }
        let abandoned = self.state.in_flight();
        self.state.cancel();
        tracing::info!(
            "target drained group={} target={} abandoned={abandoned}",
            self.state.group,
            self.state.addr
        );
    }
}

#[cfg(test)]
mod tests {
    use crate::balancer::Groups;
    use crate::balancer::testing::config;
    use crate::config::Algorithm;
    use std::time::Duration;
    use tokio::time::{Instant, timeout};

    /// Two snapshots: targets 0 and 1, then target 0 alone; one request in flight to 1.
    fn removal() -> (Groups, Groups, crate::balancer::InFlight) {
        let mut before = config(Algorithm::RoundRobin, &[1, 1]);
        before.target_groups[0].deregistration_delay = Duration::from_secs(300);
        let old = Groups::new(before.clone(), None);
        let guard = old.begin(0, 1);
        before.target_groups[0].targets.truncate(1);
        before.target_groups[0].weights.truncate(1);
        before.target_groups[0].deregistration_delay = Duration::from_secs(30);
        let new = Groups::new(before, Some(&old));
        (old, new, guard)
    }

    #[tokio::test(start_paused = true)]
    async fn draining_ends_when_the_last_request_does() {
        let (old, new, guard) = removal();
        let mut removed = new.removed_from(&old);
        assert_eq!(removed.len(), 1);
        let d = removed.pop().unwrap();
        assert_eq!(
            (d.group(), d.target().port(), d.in_flight()),
            ("g", 9001, 1)
        );
        assert!(new.removed_from(&new).is_empty());
        let start = Instant::now();
        let run = tokio::spawn(d.run());
        tokio::time::advance(Duration::from_secs(5)).await;
        assert!(!run.is_finished());
        drop(guard);
        run.await.unwrap();
        assert_eq!(Instant::now() - start, Duration::from_secs(5));
    }

    #[tokio::test(start_paused = true)]
    async fn draining_cancels_what_outlives_the_delay() {
        let (old, new, guard) = removal();
        let d = new.removed_from(&old).pop().unwrap();
        let start = Instant::now();
        let run = tokio::spawn(d.run());
        assert!(
            timeout(Duration::from_secs(29), guard.cancelled())
                .await
                .is_err(),
            "still inside the delay (the new group's 30s)"
        );
        guard.cancelled().await;
        assert_eq!(Instant::now() - start, Duration::from_secs(30));
        run.await.unwrap();
        // A guard begun on the old snapshot afterwards is cancelled at once.
        let late = old.begin(0, 1);
        timeout(Duration::ZERO, late.cancelled()).await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_removed_target_drains_at_once() {
        let (old, new, guard) = removal();
        drop(guard);
        let d = new.removed_from(&old).pop().unwrap();
        timeout(Duration::ZERO, d.run()).await.unwrap();
    }
}
