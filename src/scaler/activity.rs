//! Activity history, as AWS Auto Scaling shows it: every launch and termination with its
//! start and end time, status and the cause sentence; bounded in memory, serialisable as
//! JSON, and logged when it starts and ends.

use serde::Serialize;
use std::collections::VecDeque;
use std::time::Duration;
use tokio::time::Instant;

/// Where an activity stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Status {
    /// Started, not finished.
    InProgress,
    /// Finished as intended.
    Successful,
    /// Did not succeed (see the status message).
    Failed,
    /// Given up before it finished (e.g. a pending instance chosen for scale-in).
    Cancelled,
}

/// One scaling activity.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Activity {
    /// Sequence number within the group.
    pub id: u64,
    /// Scaling group.
    pub group: String,
    /// What was done, e.g. `Launching a new instance: web-3`.
    pub description: String,
    /// Why, e.g. `At 12:00:05Z an alarm cpu-high in state ALARM triggered policy ...`.
    pub cause: String,
    /// Start (RFC 3339, UTC).
    pub start_time: String,
    /// End (RFC 3339, UTC), once finished.
    pub end_time: Option<String>,
    /// Status.
    pub status: Status,
    /// Why it failed or was cancelled.
    pub status_message: Option<String>,
}

/// The most recent activities of one group, oldest first.
#[derive(Debug, Clone)]
pub struct History {
    group: String,
    limit: usize,
    next_id: u64,
    items: VecDeque<Activity>,
    notify: Option<tokio::sync::mpsc::Sender<Activity>>,
}

impl History {
    /// An empty history keeping at most `limit` activities.
    pub fn new(group: &str, limit: usize) -> History {
        History {
            group: group.to_string(),
            limit: limit.max(1),
            next_id: 1,
            items: VecDeque::new(),
            notify: None,
        }
    }

    /// Records a new activity in progress and returns its id.
    pub fn start(&mut self, description: String, cause: String, unix: f64) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        let a = Activity {
            id,
            group: self.group.clone(),
            description,
            cause,
            start_time: rfc3339(unix),
            end_time: None,
            status: Status::InProgress,
            status_message: None,
        };
        tracing::info!(
            group = %a.group, activity = id, description = %a.description, cause = %a.cause,
            "scaling activity started"
        );
        if self.items.len() == self.limit {
            self.items.pop_front();
        }
        self.notify(&a);
        self.items.push_back(a);
        id
    }

    /// Finishes activity `id` with `status` (a no-op when it has aged out).
    pub fn finish(&mut self, id: u64, status: Status, unix: f64) {
        self.finish_with(id, status, None, unix);
    }

    /// Finishes activity `id` with `status` and a message saying why.
    pub fn finish_with(&mut self, id: u64, status: Status, message: Option<String>, unix: f64) {
        if let Some(a) = self.items.iter_mut().find(|a| a.id == id) {
            a.status = status;
            a.status_message = message;
            a.end_time = Some(rfc3339(unix));
            tracing::info!(
                group = %a.group, activity = id, status = ?status, description = %a.description,
                "scaling activity ended"
            );
            let a = a.clone();
            self.notify(&a);
        }
    }

    /// Hands every activity to `tx` when it starts and when it ends ([`super::notify`]); a
    /// full queue drops the notification.
    pub fn notify_to(&mut self, tx: tokio::sync::mpsc::Sender<Activity>) {
        self.notify = Some(tx);
    }

    fn notify(&self, a: &Activity) {
        if let Some(tx) = &self.notify
            && tx.try_send(a.clone()).is_err()
        {
            tracing::debug!(group = %a.group, activity = a.id, "activity notification dropped");
        }
    }

    /// Records an activity that starts and ends at once.
    pub fn record(&mut self, description: String, cause: String, status: Status, unix: f64) {
        let id = self.start(description, cause, unix);
        self.finish(id, status, unix);
    }

    /// The activities, oldest first.
    pub fn items(&self) -> impl Iterator<Item = &Activity> {
        self.items.iter()
    }

    /// The activities as a JSON array, newest first (as AWS lists them).
    pub fn to_json(&self) -> String {
        let newest_first: Vec<&Activity> = self.items.iter().rev().collect();
        serde_json::to_string_pretty(&newest_first).expect("activities serialise")
    }
}

/// `2024-03-04T10:17:30Z`
pub fn rfc3339(unix: f64) -> String {
    let secs = unix.floor() as i64;
    let (y, mo, d) = super::cron::civil(secs.div_euclid(86_400));
    format!("{y:04}-{mo:02}-{d:02}T{}Z", clock(unix))
}

/// `10:17:30`
pub fn clock(unix: f64) -> String {
    let s = (unix.floor() as i64).rem_euclid(86_400);
    format!("{:02}:{:02}:{:02}", s / 3600, s % 3600 / 60, s % 60)
}

/// Wall-clock time that advances with tokio's clock (so paused-time tests stay coherent).
#[derive(Debug, Clone, Copy)]
pub(super) struct Clock {
    unix0: f64,
    at0: Instant,
}

impl Clock {
    pub(super) fn now() -> Clock {
        let unix0 = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        Clock {
            unix0,
            at0: Instant::now(),
        }
    }

    pub(super) fn unix(&self, at: Instant) -> f64 {
        self.unix0 + at.saturating_duration_since(self.at0).as_secs_f64()
            - self.at0.saturating_duration_since(at).as_secs_f64()
    }

    pub(super) fn instant(&self, unix: i64) -> Instant {
        let ahead = unix as f64 - self.unix0;
        self.at0 + Duration::from_secs_f64(ahead.max(0.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_newest_first_json() {
        let mut h = History::new("web", 2);
        let a = h.start("Launching a new instance: web-1".into(), "c1".into(), 0.0);
        h.finish(a, Status::Successful, 65.5);
        h.record("x".into(), "c2".into(), Status::Failed, 70.0);
        h.record("y".into(), "c3".into(), Status::Successful, 80.0);
        let causes: Vec<&str> = h.items().map(|a| a.cause.as_str()).collect();
        assert_eq!(causes, ["c2", "c3"], "the oldest went");
        let json: serde_json::Value = serde_json::from_str(&h.to_json()).unwrap();
        assert_eq!(json[0]["cause"], "c3");
        assert_eq!(json[1]["status"], "Failed");
        assert_eq!(json[1]["start_time"], "1970-01-01T00:01:10Z");
        assert_eq!(json[1]["group"], "web");
    }

    #[test]
    fn time_formats() {
        assert_eq!(rfc3339(1_709_547_450.9), "2024-03-04T10:17:30Z");
        assert_eq!(clock(43_205.0), "12:00:05");
    }
}
