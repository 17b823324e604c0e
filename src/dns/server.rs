//! The sockets: one UDP receive loop per listen address and a TCP listener whose
//! connections carry any number of length-prefixed queries (RFC 7766). Each query loads the
//! current catalog snapshot once; nothing here locks.

use crate::config::TransferConfig;
use crate::dns::catalog::Catalog;
use crate::dns::metrics::DnsMetrics;
use crate::dns::respond::{Outcome, Transport, error, respond};
use crate::dns::wire::{Request, rcode};
use crate::dns::xfr::transfer_messages;
use crate::health::HealthTable;
use crate::pool::{PoolView, Pools};
use crate::steering::geo::GeoDb;
use crate::steering::measured::MeasuredTable;
use arc_swap::{ArcSwap, ArcSwapOption};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

/// Settings the server reads per query (swapped on reload).
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// Log each query.
    pub query_log: bool,
    /// Zone transfer policy.
    pub transfer: TransferConfig,
    /// TCP idle timeout.
    pub tcp_idle_timeout: Duration,
}

/// What every socket task shares: the snapshots.
#[derive(Debug)]
pub struct DnsState {
    /// Served zones.
    pub catalog: ArcSwap<Catalog>,
    /// Per-query settings.
    pub settings: ArcSwap<Settings>,
    /// Pools and record bindings.
    pub pools: ArcSwap<Pools>,
    /// Endpoint health (written by the health checker).
    pub health: Arc<ArcSwap<HealthTable>>,
    /// Geo database (written by the reload loop).
    pub geo: ArcSwapOption<GeoDb>,
    /// Measured latency (written by the admin server's report endpoint).
    pub measured: ArcSwap<MeasuredTable>,
    /// Query counters (zones follow the catalog on reload).
    pub metrics: DnsMetrics,
}

impl DnsState {
    /// New state with the given snapshots.
    pub fn new(
        catalog: Catalog,
        settings: Settings,
        pools: Pools,
        health: Arc<ArcSwap<HealthTable>>,
    ) -> DnsState {
        let metrics = DnsMetrics::default();
        metrics.sync_zones(&catalog);
        DnsState {
            catalog: ArcSwap::from_pointee(catalog),
            settings: ArcSwap::from_pointee(settings),
            pools: ArcSwap::from_pointee(pools),
            health,
            geo: ArcSwapOption::empty(),
            measured: ArcSwap::from_pointee(MeasuredTable::default()),
            metrics,
        }
    }

    /// Answers one message from the current snapshots.
    pub fn respond(&self, msg: &[u8], transport: Transport, peer: SocketAddr) -> Outcome {
        let catalog = self.catalog.load();
        let pools = self.pools.load();
        let health = self.health.load();
        let geo = self.geo.load();
        let measured = self.measured.load();
        let view = PoolView {
            pools: &pools,
            health: &health,
            geo: geo.as_deref(),
            measured: (!measured.is_empty()).then_some(&**measured),
            now: tokio::time::Instant::now(),
            client: None,
        };
        // A bug must cost one query, not the socket loop that serves all of them.
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            respond(&catalog, Some(view), msg, transport, Some(peer.ip()))
        }))
        .unwrap_or_else(|_| {
            tracing::error!(%peer, "internal error while answering; query dropped");
            Outcome::Drop
        });
        if let Outcome::Reply(r) = &outcome {
            self.metrics.count(transport, r);
        }
        outcome
    }
}

/// Answers UDP queries on `socket` until `shutdown` (where [`super::udp`]'s batched
/// workers are not available).
pub async fn run_udp(socket: UdpSocket, state: Arc<DnsState>, shutdown: CancellationToken) {
    let mut buf = vec![0u8; 65535];
    loop {
        let (len, peer) = tokio::select! {
            r = socket.recv_from(&mut buf) => match r {
                Ok(v) => v,
                // ICMP errors from earlier sends surface here on some systems; keep going.
                Err(_) => continue,
            },
            () = shutdown.cancelled() => return,
        };
        let reply = match state.respond(&buf[..len], Transport::Udp, peer) {
            Outcome::Reply(r) => r,
            Outcome::Drop | Outcome::Transfer(_) => continue,
        };
        log_query(&state, peer, "udp", &buf[..len], &reply);
        let _ = socket.send_to(&reply, peer).await;
    }
}

/// Accepts TCP connections on `listener` until `shutdown`, at most `max_connections` at once.
pub async fn run_tcp(
    listener: TcpListener,
    state: Arc<DnsState>,
    max_connections: usize,
    shutdown: CancellationToken,
) {
    let slots = Arc::new(Semaphore::new(max_connections));
    loop {
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => p.expect("semaphore is never closed"),
            () = shutdown.cancelled() => return,
        };
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(v) => v,
                Err(_) => continue,
            },
            () = shutdown.cancelled() => return,
        };
        let state = state.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            tokio::select! {
                () = serve_connection(stream, peer, &state) => {},
                () = shutdown.cancelled() => {},
            }
            drop(permit);
        });
    }
}

async fn serve_connection(mut stream: TcpStream, peer: SocketAddr, state: &DnsState) {
    let _ = stream.set_nodelay(true);
    let idle = state.settings.load().tcp_idle_timeout;
    let mut buf = vec![0u8; 65535];
    loop {
        let mut len = [0u8; 2];
        let read = async {
            stream.read_exact(&mut len).await?;
            let n = usize::from(u16::from_be_bytes(len));
            stream.read_exact(&mut buf[..n]).await.map(|_| n)
        };
        let n = match tokio::time::timeout(idle, read).await {
            Ok(Ok(n)) => n,
            _ => return,
        };
        let replies = match state.respond(&buf[..n], Transport::Tcp, peer) {
            Outcome::Drop => return,
            Outcome::Reply(r) => vec![r],
            Outcome::Transfer(req) => transfer(&state.catalog.load(), &req, peer, state),
        };
        if let Some(first) = replies.first() {
            log_query(state, peer, "tcp", &buf[..n], first);
        }
        for r in replies {
            let mut framed = Vec::with_capacity(r.len() + 2);
            framed.extend_from_slice(&(r.len() as u16).to_be_bytes());
            framed.extend_from_slice(&r);
            if stream.write_all(&framed).await.is_err() {
                return;
            }
        }
    }
}

/// A zone transfer for an allowed peer; REFUSED for everyone else and for unknown zones.
fn transfer(catalog: &Catalog, req: &Request, peer: SocketAddr, state: &DnsState) -> Vec<Vec<u8>> {
    let settings = state.settings.load();
    let allowed = settings
        .transfer
        .allow
        .iter()
        .any(|n| n.contains(peer.ip()));
    let q = req.question.as_ref().expect("transfers carry a question");
    let zone = catalog.get(&q.name);
    match zone {
        Some(zone) if allowed => {
            tracing::info!(zone = %zone.origin(), serial = zone.serial(), %peer, "zone transfer");
            transfer_messages(req, zone)
        }
        _ => {
            tracing::warn!(zone = %q.name, %peer, allowed, "zone transfer refused");
            vec![error(req, rcode::REFUSED)]
        }
    }
}

pub(crate) fn log_query(state: &DnsState, peer: SocketAddr, transport: &str, query: &[u8], reply: &[u8]) {
    if !state.settings.load().query_log {
        return;
    }
    let rc = reply.get(3).map(|b| b & 0xF).unwrap_or(0);
    let q = match crate::dns::wire::decode(query) {
        crate::dns::wire::Decoded::Request(r) => r.question,
        _ => None,
    };
    match q {
        Some(q) => {
            tracing::info!(%peer, transport, name = %q.name, qtype = q.qtype, rcode = rc, bytes = reply.len(), "query")
        }
        None => {
            tracing::info!(%peer, transport, rcode = rc, bytes = reply.len(), "query without question")
        }
    }
}
