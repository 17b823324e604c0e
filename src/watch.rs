//! File watching: the directories holding the configuration and zone files are watched
//! (editors replace files by renaming, so watching the files themselves would lose them),
//! and any change there asks for a reload. SIGHUP asks for a forced reload.

use crate::config::Config;
use notify::{RecommendedWatcher, RecursiveMode, Watcher as _};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use tokio::sync::mpsc::UnboundedSender;

/// Watches the directories a configuration reads from.
pub struct Watcher {
    inner: Option<RecommendedWatcher>,
    dirs: BTreeSet<PathBuf>,
}

impl Watcher {
    /// A watcher that sends `false` (reload what changed) on every file event.
    pub fn new(reload: UnboundedSender<bool>) -> Watcher {
        let handler = move |res: notify::Result<notify::Event>| {
            if let Ok(ev) = res
                && !ev.kind.is_access()
            {
                let _ = reload.send(false);
            }
        };
        let inner = match notify::recommended_watcher(handler) {
            Ok(w) => Some(w),
            Err(e) => {
                tracing::warn!("file watching unavailable ({e}); reload with SIGHUP");
                None
            }
        };
        Watcher {
            inner,
            dirs: BTreeSet::new(),
        }
    }

    /// Watches exactly the directories `config` reads from.
    pub fn update(&mut self, config: &Config) {
        let Some(w) = self.inner.as_mut() else { return };
        let wanted = dirs(config);
        for gone in self.dirs.difference(&wanted) {
            let _ = w.unwatch(gone);
        }
        for new in wanted.difference(&self.dirs) {
            if let Err(e) = w.watch(new, RecursiveMode::NonRecursive) {
                tracing::warn!(dir = %new.display(), "cannot watch: {e}");
            }
        }
        self.dirs = wanted;
    }
}

fn dirs(config: &Config) -> BTreeSet<PathBuf> {
    let mut out = BTreeSet::new();
    let mut add = |p: &Path| {
        let dir = if p.is_dir() {
            p.to_path_buf()
        } else {
            p.parent().map(Path::to_path_buf).unwrap_or_default()
        };
        let dir = if dir.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            dir
        };
        if dir.is_dir() {
            out.insert(dir);
        }
    };
    if let Some(p) = &config.path {
        add(p);
    }
    if let Some(d) = &config.dns.zones_dir {
        add(d);
    }
    for z in &config.dns.zones {
        add(&z.file);
    }
    if let Some(db) = &config.pools.geo_database {
        add(db);
    }
    out
}

/// Sends a forced reload on every SIGHUP until the channel closes.
pub async fn sighup(reload: UnboundedSender<bool>) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let Ok(mut hup) = signal(SignalKind::hangup()) else {
            return;
        };
        while hup.recv().await.is_some() {
            tracing::info!("SIGHUP: reloading");
            if reload.send(true).is_err() {
                return;
            }
        }
    }
    #[cfg(not(unix))]
    std::future::pending::<()>().await;
}
