//! The running listeners. A reload starts new listeners, stops removed ones and restarts the
//! accept loop of a changed one; connections already accepted run on to their end, so no
//! in-flight request is dropped. A listener that keeps its address keeps its sockets: clients
//! never see a refused connection during a reload.

use super::proxy::{BalancerState, run_listener, weighted_choice};
use super::rules::Action;
use super::tcp::{Chooser, TcpTimeouts, run_tcp_listener};
use super::workers::Workers;
use super::{InFlight, Outcome, Pick};
use crate::config::{Listener, Protocol};
use crate::shutdown::Closing;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio_util::sync::CancellationToken;

/// A listener failed to start.
#[derive(Debug, thiserror::Error)]
#[error("listener `{name}`: cannot listen on {addr}: {source}")]
pub struct ListenError {
    /// Listener name.
    pub name: String,
    /// Address.
    pub addr: SocketAddr,
    /// Cause.
    pub source: std::io::Error,
}

struct Running {
    config: Listener,
    /// One per balancer thread (see [`Workers`]).
    sockets: Vec<std::net::TcpListener>,
    bound: SocketAddr,
    stop: CancellationToken,
}

/// Accept loops by listener name.
pub struct Listeners {
    running: Vec<Running>,
    closing: Closing,
    workers: Workers,
}

impl Listeners {
    /// No listener yet; connections are counted by `closing`. Accept loops run on `workers`.
    pub fn new(closing: Closing, workers: Workers) -> Listeners {
        Listeners {
            running: Vec::new(),
            closing,
            workers,
        }
    }

    /// Stops every accept loop and closes the listening sockets (new connections are
    /// refused); open connections go on.
    pub fn close_all(&mut self) {
        for r in self.running.drain(..) {
            r.stop.cancel();
        }
    }

    /// Makes the running listeners match `wanted`. A listener that cannot start is reported
    /// and, if it replaced a running one, that one keeps running.
    pub fn reconcile(
        &mut self,
        wanted: &[Listener],
        state: &Arc<BalancerState>,
        shutdown: &CancellationToken,
    ) -> Vec<ListenError> {
        let mut errors = Vec::new();
        let mut next = Vec::new();
        let mut old: Vec<Running> = std::mem::take(&mut self.running);
        for l in wanted {
            let prev = old
                .iter()
                .position(|r| r.config.name == l.name)
                .map(|i| old.swap_remove(i));
            match prev {
                // An https listener restarts on every reload: that re-reads its certificate.
                Some(r) if r.config == *l && l.protocol != Protocol::Https => next.push(r),
                prev => match self.start(l, prev.as_ref(), state, shutdown) {
                    Ok(r) => {
                        if let Some(p) = prev {
                            p.stop.cancel();
                        }
                        next.push(r);
                    }
                    Err(source) => {
                        errors.push(ListenError {
                            name: l.name.clone(),
                            addr: l.listen,
                            source,
                        });
                        next.extend(prev);
                    }
                },
            }
        }
        for r in old {
            tracing::info!(listener = %r.config.name, "listener removed");
            r.stop.cancel();
        }
        self.running = next;
        errors
    }

    /// Names and bound addresses.
    pub fn addrs(&self) -> Vec<(String, SocketAddr)> {
        self.running
            .iter()
            .map(|r| (r.config.name.clone(), r.bound))
            .collect()
    }

    /// Starts a listener's accept loops, on the previous sockets when the address is the same.
    fn start(
        &self,
        l: &Listener,
        prev: Option<&Running>,
        state: &Arc<BalancerState>,
        shutdown: &CancellationToken,
    ) -> std::io::Result<Running> {
        let (workers, closing) = (&self.workers, &self.closing);
        let sockets = match prev {
            Some(p) if p.config.listen == l.listen => p
                .sockets
                .iter()
                .map(std::net::TcpListener::try_clone)
                .collect::<std::io::Result<Vec<_>>>()?,
            _ => workers.bind(l.listen)?,
        };
        let bound = sockets[0].local_addr()?;
        let stop = CancellationToken::new();
        let tls = match (&l.protocol, &l.tls) {
            (Protocol::Https, Some(files)) => {
                let config = super::tls::server_config(
                    &files.certificate,
                    &files.key,
                    &[b"h2", b"http/1.1"],
                )
                .map_err(std::io::Error::other)?;
                Some(config)
            }
            _ => None,
        };
        tracing::info!(listener = %l.name, addr = %bound, protocol = %l.protocol.as_str(), "listening");
        let spawned = if l.protocol == Protocol::Tcp {
            let chooser = Arc::new(L4 {
                name: l.name.clone(),
                state: state.clone(),
                turns: AtomicU64::new(0),
            });
            let timeouts = TcpTimeouts {
                connect: l.timeouts.connect,
                idle: l.timeouts.idle,
            };
            let conns = state.connections(&l.name);
            workers.spawn_each(&sockets, |tcp| {
                let run = run_tcp_listener(
                    tcp,
                    l.name.clone(),
                    chooser.clone(),
                    timeouts,
                    (conns.clone(), l.max_connections),
                    closing.clone(),
                    shutdown.clone(),
                );
                // Stopping ends the accept loop only; open connections end with `shutdown`.
                let stopped = stop.clone();
                async move {
                    tokio::select! {
                        () = run => {},
                        () = stopped.cancelled() => {},
                    }
                }
            })
        } else {
            workers.spawn_each(&sockets, |tcp| {
                run_listener(
                    tcp,
                    l.clone(),
                    tls.clone(),
                    state.clone(),
                    stop.clone(),
                    closing.clone(),
                    shutdown.clone(),
                )
            })
        };
        // Loops started on some threads before a failure stop with it.
        spawned.inspect_err(|_| stop.cancel())?;
        Ok(Running {
            config: l.clone(),
            sockets,
            bound,
            stop,
        })
    }
}

/// Target choice for a TCP listener: its default action's target groups, by their algorithms
/// (on the client address; there is no request to hash).
struct L4 {
    name: String,
    state: Arc<BalancerState>,
    turns: AtomicU64,
}

impl Chooser for L4 {
    type Guard = InFlight;

    fn choose(&self, client: SocketAddr, tried: &[SocketAddr]) -> Option<(SocketAddr, InFlight)> {
        let groups = self.state.groups.load_full();
        let listener = groups.config().listener(&self.name)?;
        let Action::Forward(split) = &listener.default_action else {
            return None;
        };
        let group = weighted_choice(split, self.turns.fetch_add(1, Ordering::Relaxed));
        let targets = &groups.config().target_groups[group].targets;
        let tried: Vec<usize> = (0..targets.len())
            .filter(|&i| tried.contains(&targets[i]))
            .collect();
        let health = self.state.health.load();
        let pick = Pick {
            client: client.ip(),
            key: None,
            tried: &tried,
        };
        let target = groups.pick(group, &health, &pick)?;
        Some((targets[target], groups.begin(group, target)))
    }

    fn connect_failed(&self, guard: InFlight) {
        guard.finish(Outcome::ConnectFailed);
    }
}
