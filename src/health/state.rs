//! Pure rise/fall logic of one probe key: no clock, no socket.

/// A change of readiness.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// The endpoint became ready.
    Up,
    /// The endpoint became not ready.
    Down,
}

/// Readiness of one probe key plus the streaks that drive it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HealthState {
    ready: bool,
    observed: bool,
    successes: u32,
    failures: u32,
}

impl HealthState {
    /// Not ready, nothing observed yet.
    pub fn new() -> HealthState {
        HealthState::default()
    }

    /// True if the endpoint should receive traffic.
    pub fn is_ready(&self) -> bool {
        self.ready
    }

    /// True once at least one probe result has been seen.
    pub fn observed(&self) -> bool {
        self.observed
    }

    /// Feed one probe result. The FIRST result decides directly (ok -> ready, fail -> not ready)
    /// and returns `Some(Up)` or `None` (a new endpoint starts not ready, so a first failure is
    /// no transition); afterwards a ready endpoint goes `Down` after `unhealthy_threshold`
    /// consecutive failures and a not-ready one goes `Up` after `healthy_threshold` consecutive
    /// successes. A threshold of 0 is treated as 1.
    pub fn observe(
        &mut self,
        ok: bool,
        healthy_threshold: u32,
        unhealthy_threshold: u32,
    ) -> Option<Transition> {
        self.count(ok);
        if !self.observed {
            self.observed = true;
            self.ready = ok;
            return ok.then_some(Transition::Up);
        }
        if ok && !self.ready && self.successes >= healthy_threshold.max(1) {
            self.ready = true;
            return Some(Transition::Up);
        }
        if !ok && self.ready && self.failures >= unhealthy_threshold.max(1) {
            self.ready = false;
            return Some(Transition::Down);
        }
        None
    }

    /// Extends the streak of `ok` and resets the opposite one.
    fn count(&mut self, ok: bool) {
        if ok {
            self.successes = self.successes.saturating_add(1);
            self.failures = 0;
        } else {
            self.failures = self.failures.saturating_add(1);
            self.successes = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Transition::{Down, Up};
    use super::*;

    /// Results as a string: 'o' ok, 'x' fail.
    fn run(results: &str, healthy: u32, unhealthy: u32) -> (Vec<Option<Transition>>, HealthState) {
        let mut state = HealthState::new();
        let transitions = results
            .chars()
            .map(|c| state.observe(c == 'o', healthy, unhealthy))
            .collect();
        (transitions, state)
    }

    /// Index of each transition in the result sequence.
    fn positions(transitions: &[Option<Transition>]) -> Vec<(usize, Transition)> {
        transitions
            .iter()
            .enumerate()
            .filter_map(|(i, t)| t.map(|t| (i, t)))
            .collect()
    }

    #[test]
    fn new_state_is_not_ready_and_unobserved() {
        let s = HealthState::new();
        assert!(!s.is_ready());
        assert!(!s.observed());
        assert_eq!(s, HealthState::default());
    }

    /// Results, healthy threshold, unhealthy threshold, transitions by index, final readiness.
    type Case = (&'static str, u32, u32, &'static [(usize, Transition)], bool);

    #[test]
    fn thresholds_table() {
        #[rustfmt::skip]
        let cases: &[Case] = &[
            // first result decides
            ("o", 3, 3, &[(0, Up)], true),
            ("x", 3, 3, &[], false),
            // ready endpoint falls after `unhealthy` consecutive failures
            ("oxx", 3, 2, &[(0, Up), (2, Down)], false),
            ("oxxxxx", 3, 2, &[(0, Up), (2, Down)], false),
            // a success resets the failure streak
            ("oxoxoxx", 3, 2, &[(0, Up), (6, Down)], false),
            // not-ready endpoint rises after `healthy` consecutive successes
            ("xoo", 2, 3, &[(2, Up)], true),
            ("xoxoxoo", 2, 3, &[(6, Up)], true),
            ("xooooo", 2, 3, &[(2, Up)], true),
            // full cycle
            ("oxxooo", 3, 2, &[(0, Up), (2, Down), (5, Up)], true),
            // failures before the fall count towards nothing once down
            ("oxxxxoxo", 2, 2, &[(0, Up), (2, Down)], false),
            // threshold 1 flips on every change; 0 behaves as 1
            ("oxox", 1, 1, &[(0, Up), (1, Down), (2, Up), (3, Down)], false),
            ("oxox", 0, 0, &[(0, Up), (1, Down), (2, Up), (3, Down)], false),
        ];
        for &(results, healthy, unhealthy, want, ready) in cases {
            let (transitions, state) = run(results, healthy, unhealthy);
            assert_eq!(
                positions(&transitions),
                want,
                "{results} healthy={healthy} unhealthy={unhealthy}"
            );
            assert_eq!(state.is_ready(), ready, "{results}");
            assert!(state.observed());
        }
    }

    #[test]
    fn transitions_alternate_never_repeat() {
        let (transitions, _) = run("oxxxooooxxxxoooxxoxoxxxxx", 2, 3);
        let seq: Vec<Transition> = transitions.into_iter().flatten().collect();
        assert!(!seq.is_empty());
        assert_eq!(seq[0], Up);
        assert!(seq.windows(2).all(|w| w[0] != w[1]), "{seq:?}");
    }

    #[test]
    fn long_streaks_saturate() {
        let mut s = HealthState::new();
        s.successes = u32::MAX;
        s.observed = true;
        s.ready = true;
        assert_eq!(s.observe(true, 2, 2), None);
        assert!(s.is_ready());
    }
}
