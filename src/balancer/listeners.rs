//! The running listeners. A reload starts new listeners, stops removed ones and restarts the
//! accept loop of a changed one; connections already accepted run on to their end, so no
//! in-flight request is dropped. A listener that keeps its address keeps its socket: clients
//! never see a refused connection during a reload.

use super::proxy::{BalancerState, run_listener, weighted_choice};
use super::rules::Action;
use super::tcp::{Chooser, TcpTimeouts, run_tcp_listener};
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
    socket: std::net::TcpListener,
    bound: SocketAddr,
    stop: CancellationToken,
}

/// Accept loops by listener name.
pub struct Listeners {
    running: Vec<Running>,
    closing: Closing,
}

impl Listeners {
    /// No listener yet; connections are counted by `closing`.
    pub fn new(closing: Closing) -> Listeners {
        Listeners {
            running: Vec::new(),
            closing,
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
                prev => match start(l, prev.as_ref(), state, &self.closing, shutdown) {
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
}

/// Starts an accept loop, on the previous socket when the address is the same.
fn start(
    l: &Listener,
    prev: Option<&Running>,
    state: &Arc<BalancerState>,
    closing: &Closing,
    shutdown: &CancellationToken,
) -> std::io::Result<Running> {
    let socket = match prev {
        Some(p) if p.config.listen == l.listen => p.socket.try_clone()?,
        _ => std::net::TcpListener::bind(l.listen)?,
    };
    socket.set_nonblocking(true)?;
    let bound = socket.local_addr()?;
    let tcp = tokio::net::TcpListener::from_std(socket.try_clone()?)?;
    let stop = CancellationToken::new();
    let tls = match (&l.protocol, &l.tls) {
        (Protocol::Https, Some(files)) => {
            let config =
                super::tls::server_config(&files.certificate, &files.key, &[b"h2", b"http/1.1"])
                    .map_err(std::io::Error::other)?;
            Some(config)
        }
        _ => None,
    };
    tracing::info!(listener = %l.name, addr = %bound, protocol = %l.protocol.as_str(), "listening");
    if l.protocol == Protocol::Tcp {
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
        let limit = (conns, l.max_connections);
        let run = run_tcp_listener(
            tcp,
            l.name.clone(),
            chooser,
            timeouts,
            limit,
            closing.clone(),
            shutdown.clone(),
        );
        // Stopping ends the accept loop only; open connections end with `shutdown`.
        let stopped = stop.clone();
        tokio::spawn(async move {
            tokio::select! {
                () = run => {},
                () = stopped.cancelled() => {},
            }
        });
    } else {
        tokio::spawn(run_listener(
            tcp,
            l.clone(),
            tls,
            state.clone(),
            stop.clone(),
            closing.clone(),
            shutdown.clone(),
        ));
    }
    Ok(Running {
        config: l.clone(),
        socket,
        bound,
        stop,
    })
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
