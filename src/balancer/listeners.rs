//! The running listeners. A reload starts new listeners, stops removed ones and restarts the
//! accept loop of a changed one; connections already accepted run on to their end, so no
//! in-flight request is dropped. A listener that keeps its address keeps its socket: clients
//! never see a refused connection during a reload.

use super::proxy::{BalancerState, run_listener};
use crate::config::Listener;
use std::net::SocketAddr;
use std::sync::Arc;
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
#[derive(Default)]
pub struct Listeners {
    running: Vec<Running>,
}

impl Listeners {
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
                Some(r) if r.config == *l => next.push(r),
                prev => match start(l, prev.as_ref(), state, shutdown) {
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
    tracing::info!(listener = %l.name, addr = %bound, protocol = l.protocol.as_str(), "listening");
    tokio::spawn(run_listener(
        tcp,
        l.clone(),
        state.clone(),
        stop.clone(),
        shutdown.clone(),
    ));
    Ok(Running {
        config: l.clone(),
        socket,
        bound,
        stop,
    })
}
