//! What the admin server shares with the reload loop: the overrides, the loaded
//! configuration's version, reload counters, and a channel to ask for a rebuild (after an
//! action) or a reload (`POST /v1/reload`) and wait for it.

use super::overrides::Overrides;
use serde::Serialize;
use std::hash::{Hash, Hasher};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;
use tokio::sync::{mpsc, oneshot};

/// A request to the reload loop; it answers on the sender when done.
#[derive(Debug)]
pub enum Control {
    /// Build new snapshots from the current configuration (overrides changed).
    Rebuild(oneshot::Sender<()>),
    /// Read the configuration file again and swap; the error when it is invalid.
    Reload(oneshot::Sender<Result<(), String>>),
}

/// The loaded configuration's identity.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct ConfigVersion {
    /// Hash of the validated configuration (16 hex digits).
    pub hash: String,
    /// When it was loaded, seconds since the Unix epoch.
    pub loaded_at: u64,
}

/// Shared between the reload loop and the admin server.
#[derive(Debug)]
pub struct Runtime {
    /// Operator overrides.
    pub overrides: Overrides,
    version: Mutex<ConfigVersion>,
    reloads_ok: AtomicU64,
    reloads_failed: AtomicU64,
    control: mpsc::UnboundedSender<Control>,
}

impl Runtime {
    /// The runtime and the receiving end the reload loop listens on.
    pub fn new() -> (Runtime, mpsc::UnboundedReceiver<Control>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let runtime = Runtime {
            overrides: Overrides::default(),
            version: Mutex::default(),
            reloads_ok: AtomicU64::new(0),
            reloads_failed: AtomicU64::new(0),
            control: tx,
        };
        (runtime, rx)
    }

    /// Notes a loaded configuration (its `Debug` form is hashed).
    pub fn loaded(&self, config: &impl std::fmt::Debug) {
        let mut h = std::hash::DefaultHasher::new();
        format!("{config:?}").hash(&mut h);
        let loaded_at = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        *self.version.lock().unwrap_or_else(|e| e.into_inner()) = ConfigVersion {
            hash: format!("{:016x}", h.finish()),
            loaded_at,
        };
    }

    /// Counts a reload (of the file, by any trigger).
    pub fn count_reload(&self, ok: bool) {
        let n = if ok {
            &self.reloads_ok
        } else {
            &self.reloads_failed
        };
        n.fetch_add(1, Ordering::Relaxed);
    }

    /// The current configuration version.
    pub fn version(&self) -> ConfigVersion {
        self.version
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Reloads so far: (succeeded, failed).
    pub fn reloads(&self) -> (u64, u64) {
        (
            self.reloads_ok.load(Ordering::Relaxed),
            self.reloads_failed.load(Ordering::Relaxed),
        )
    }

    /// Asks the reload loop to rebuild the snapshots and waits until it has.
    pub async fn rebuild(&self) -> Result<(), String> {
        let (tx, rx) = oneshot::channel();
        self.control
            .send(Control::Rebuild(tx))
            .map_err(|_| "the server is stopping".to_string())?;
        rx.await.map_err(|_| "the server is stopping".to_string())
    }

    /// Asks the reload loop to reload the configuration and waits for the outcome.
    pub async fn reload(&self) -> Result<(), String> {
        let (tx, rx) = oneshot::channel();
        self.control
            .send(Control::Reload(tx))
            .map_err(|_| "the server is stopping".to_string())?;
        rx.await.map_err(|_| "the server is stopping".to_string())?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn version_counters_and_requests() {
        let (rt, mut rx) = Runtime::new();
        rt.loaded(&("a", 1));
        let a = rt.version();
        rt.loaded(&("a", 2));
        assert_ne!(a.hash, rt.version().hash);
        assert_eq!(a.hash.len(), 16);
        rt.count_reload(true);
        rt.count_reload(false);
        rt.count_reload(false);
        assert_eq!(rt.reloads(), (1, 2));
        let loop_ = tokio::spawn(async move {
            while let Some(c) = rx.recv().await {
                match c {
                    Control::Rebuild(tx) => drop(tx.send(())),
                    Control::Reload(tx) => drop(tx.send(Err("bad".into()))),
                }
            }
        });
        assert_eq!(rt.rebuild().await, Ok(()));
        assert_eq!(rt.reload().await, Err("bad".into()));
        drop(rt);
        loop_.await.unwrap();
    }
}
