//! Stopping in two stages. When [`Closing`] closes (SIGTERM or Ctrl-C), every accept loop
//! that faces clients stops and its socket is closed (new connections are refused), open
//! HTTP connections finish the request in flight and close, DNS TCP connections finish
//! the answer they are writing; the process waits for them up to `shutdown.grace`. Then the
//! final shutdown token cuts whatever is left and stops the background tasks.

use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// The first stage of stopping, and the client connections still open.
#[derive(Debug, Clone, Default)]
pub struct Closing {
    token: CancellationToken,
    connections: TaskTracker,
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

    /// Begins closing: accept loops stop, connections finish what they are doing.
    pub fn close(&self) {
        self.token.cancel();
        self.connections.close();
    }

    /// Client connections still open.
    pub fn open_connections(&self) -> usize {
        self.connections.len()
    }

    /// Waits until every connection has ended (true) or `grace` has passed (false).
    pub async fn drained(&self, grace: Duration) -> bool {
        tokio::time::timeout(grace, self.connections.wait())
            .await
            .is_ok()
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
}
