//! Stopping in two stages. When [`Closing`] closes (SIGTERM or Ctrl-C), every accept loop
//! that faces clients stops and its socket is closed (new connections are refused), open
//! HTTP connections finish the request in flight and close, DNS TCP connections finish
//! the queries that had already arrived; the process waits for them up to `shutdown.grace`.
//! Then the final shutdown token cuts whatever is left and stops the background tasks.

use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tokio_util::task::task_tracker::TaskTrackerToken;

/// The first stage of stopping, and the client connections still open.
#[derive(Debug, Clone, Default)]
pub struct Closing {
    token: CancellationToken,
    connections: TaskTracker,
    /// Accept loops that take their backlog at closing.
    backlogs: TaskTracker,
}

impl Closing {
    /// Not closed, no connection.
    pub fn new() -> Closing {
        Closing::default()
    }

    /// Resolves once closing has begun.
    pub async fn closed(&self) {
        self.token.cancelled().await
    }

    /// Resolves once closing has begun; a future to keep and poll again.
    pub fn closed_owned(&self) -> tokio_util::sync::WaitForCancellationFutureOwned {
        self.token.clone().cancelled_owned()
    }

    /// Whether closing has begun.
    pub fn is_closed(&self) -> bool {
        self.token.is_cancelled()
    }

    /// Runs a client connection, counted until it ends.
    pub fn spawn<F>(&self, connection: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.connections.spawn(connection);
    }

    /// Held by an accept loop that, at closing, still hands the connections of its backlog
    /// over to [`Closing::spawn`]: [`Closing::drained`] waits for it to be dropped.
    pub fn backlog_guard(&self) -> TaskTrackerToken {
        self.backlogs.token()
    }

    /// Begins closing: accept loops stop, connections finish what they are doing.
    pub fn close(&self) {
        self.token.cancel();
        self.backlogs.close();
        self.connections.close();
    }

    /// Client connections still open.
    pub fn open_connections(&self) -> usize {
        self.connections.len()
    }

    /// Waits until every connection has ended (true) or `grace` has passed (false).
    pub async fn drained(&self, grace: Duration) -> bool {
        let drained = async {
            self.backlogs.wait().await;
            self.connections.wait().await;
        };
        tokio::time::timeout(grace, drained).await.is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn waits_for_connections_up_to_the_grace() {
        let closing = Closing::new();
        closing.spawn(tokio::time::sleep(Duration::from_secs(3)));
        closing.close();
        assert!(closing.is_closed());
        assert_eq!(closing.open_connections(), 1);
        assert!(!closing.drained(Duration::from_secs(1)).await);
        assert!(closing.drained(Duration::from_secs(5)).await);
        assert_eq!(closing.open_connections(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn connections_handed_over_after_closing_are_waited_for() {
        let closing = Closing::new();
        let guard = closing.backlog_guard();
        let handover = closing.clone();
        tokio::spawn(async move {
            handover.closed().await;
            tokio::time::sleep(Duration::from_secs(1)).await;
            handover.spawn(tokio::time::sleep(Duration::from_secs(2)));
            drop(guard);
        });
        closing.close();
        assert_eq!(closing.open_connections(), 0);
        let started = tokio::time::Instant::now();
        assert!(closing.drained(Duration::from_secs(10)).await);
        assert_eq!(started.elapsed(), Duration::from_secs(3));
    }
}
