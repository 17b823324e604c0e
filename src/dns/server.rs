//! The sockets: one UDP receive loop per listen address and a TCP listener whose
//! connections carry any number of length-prefixed queries (RFC 7766). Each query loads the
//! current catalog snapshot once; nothing here locks.
//!
//! Abuse controls: UDP answers pass response rate limiting ([`crate::dns::rrl`]); TCP
//! connections are capped (`tcp_max_connections`); a client that sends nothing for
//! `tcp_idle_timeout`, or does not complete a begun query or read a reply within
//! `tcp_io_timeout`, is disconnected; zone
//! transfers go only to `transfer.allow` and at most `transfer.max_concurrent` at once.

use crate::config::TransferConfig;
use crate::dns::catalog::Catalog;
use crate::dns::metrics::{CountPlace, DnsMetrics};
use crate::dns::pool_reply::PoolQuery;
use crate::dns::prepared::Prepared;
use crate::dns::respond::{Outcome, Shape, Transport, error, respond_shaped};
use crate::dns::rrl::{Rrl, Verdict, slip_reply};
use crate::dns::wire::{Request, rcode};
use crate::dns::xfr::transfer_messages;
use crate::health::HealthTable;
use crate::pool::{PoolView, Pools};
use crate::shutdown::Closing;
use crate::steering::Client;
use crate::steering::geo::GeoDb;
use crate::steering::measured::MeasuredTable;
use arc_swap::{ArcSwap, ArcSwapOption, Guard};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

/// Settings the server reads per query (swapped on reload).
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// Log each query.
    pub query_log: bool,
    /// Zone transfer policy.
    pub transfer: TransferConfig,
    /// TCP idle timeout: longest wait for the first byte of a query.
    pub tcp_idle_timeout: Duration,
    /// Longest time for the rest of a begun query, and for each reply write.
    pub tcp_io_timeout: Duration,
    /// Response rate limiting of UDP answers (`None`: off).
    pub rrl: Option<Arc<Rrl>>,
}

/// Counters of the abuse controls (kept across reloads).
#[derive(Debug, Default)]
pub struct LimitCounters {
    /// UDP responses withheld by RRL.
    pub rrl_dropped: AtomicU64,
    /// UDP responses replaced by a truncated one by RRL.
    pub rrl_slipped: AtomicU64,
    /// Allowed zone transfers refused because `transfer.max_concurrent` were running.
    pub transfers_refused: AtomicU64,
    /// TCP connections closed for a query or reply not completed within the idle timeout.
    pub tcp_timeouts: AtomicU64,
}

impl LimitCounters {
    /// Prometheus text for these counters.
    pub fn render(&self, out: &mut String) {
        use std::fmt::Write;
        let series = [
            (
                "roundhouse_dns_rrl_dropped_total",
                "UDP responses withheld by response rate limiting.",
                &self.rrl_dropped,
            ),
            (
                "roundhouse_dns_rrl_slipped_total",
                "UDP responses sent truncated (TC) by response rate limiting.",
                &self.rrl_slipped,
            ),
            (
                "roundhouse_dns_transfers_refused_total",
                "Zone transfers refused because the concurrent transfer cap was reached.",
                &self.transfers_refused,
            ),
            (
                "roundhouse_dns_tcp_timeouts_total",
                "DNS TCP connections closed for a slow or silent client.",
                &self.tcp_timeouts,
            ),
        ];
        for (name, help, n) in series {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
                n.load(Ordering::Relaxed)
            );
        }
    }
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
    /// Counters of rate limiting, transfer and TCP limits.
    pub limits: LimitCounters,
    /// Zone transfers being streamed now.
    transfers: AtomicUsize,
    /// Bumped when a published catalog, pools or settings answer differently (kept replies
    /// are then stale).
    generation: AtomicU64,
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
            limits: LimitCounters::default(),
            transfers: AtomicUsize::new(0),
            generation: AtomicU64::new(0),
        }
    }

    /// Replaces the catalog, the settings and the pools. Replies kept by the UDP workers are
    /// let go (the generation moves) only when the new ones may answer differently: another
    /// zone object, another pool configuration, another transfer policy. A reload that
    /// changed none of them (a file event elsewhere in the directory) keeps them.
    pub fn publish(&self, catalog: Catalog, settings: Settings, pools: Pools) {
        let changed = !catalog.same_zones(&self.catalog.load())
            || pools.config() != self.pools.load().config()
            || settings.transfer != self.settings.load().transfer;
        self.catalog.store(Arc::new(catalog));
        self.settings.store(Arc::new(settings));
        self.pools.store(Arc::new(pools));
        if changed {
            self.generation.fetch_add(1, Ordering::Release);
        }
    }

    /// Changes with every [`DnsState::publish`] that changes answers: replies kept under
    /// another number are stale. Read it before loading the snapshots a reply is made from.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Answers one message from the current snapshots.
    pub fn respond(&self, msg: &[u8], transport: Transport, peer: SocketAddr) -> Outcome {
        let (outcome, _) = self.respond_shaped(msg, transport, peer);
        if let Outcome::Reply(r) = &outcome {
            self.metrics.count(transport, r);
        }
        outcome
    }

    /// [`DnsState::respond`], and how the reply depends on the query; the reply is not
    /// counted (the caller counts it where it keeps it).
    pub fn respond_shaped(
        &self,
        msg: &[u8],
        transport: Transport,
        peer: SocketAddr,
    ) -> (Outcome, Shape) {
        let catalog = self.catalog.load();
        let snapshots = self.snapshots();
        let view = snapshots.view(None);
        guarded(peer, (Outcome::Drop, Shape::Varies), || {
            respond_shaped(&catalog, Some(view), msg, transport, Some(peer.ip()))
        })
    }

    /// The UDP reply to `msg`, whose question `pq` holds, asking the pool afresh (see
    /// [`crate::dns::prepared`]); it is counted at `place`.
    pub fn respond_pool(
        &self,
        snapshots: &Snapshots,
        pq: &PoolQuery,
        place: &CountPlace,
        msg: &[u8],
        peer: SocketAddr,
    ) -> Outcome {
        let id = u16::from_be_bytes([msg[0], msg[1]]);
        let view = PoolView {
            memo: Some(pq.memo()),
            ..snapshots.view(Some(pq.client(peer.ip())))
        };
        let reply = guarded(peer, Err(()), || {
            let (name, rtype) = pq.question();
            Ok(view.answer(name, rtype).map(|found| pq.reply(id, found)))
        });
        match reply {
            Ok(Some(r)) => {
                self.metrics.count_at(place, &r);
                Outcome::Reply(r)
            }
            // The binding went away with a reload that is still being published.
            Ok(None) => self.respond(msg, Transport::Udp, peer),
            Err(()) => Outcome::Drop,
        }
    }

    /// The current snapshots, for answering a batch of queries.
    pub fn snapshots(&self) -> Snapshots {
        // The generation first: what is loaded after it is at least as new.
        let generation = self.generation();
        Snapshots {
            generation,
            settings: self.settings.load(),
            pools: self.pools.load(),
            health: self.health.load(),
            geo: self.geo.load(),
            measured: self.measured.load(),
            now: tokio::time::Instant::now(),
        }
    }

    /// The UDP reply to send after response rate limiting under `settings`: itself, a
    /// truncated stand-in, or nothing.
    pub fn rate_limit(
        &self,
        settings: &Settings,
        peer: SocketAddr,
        reply: Vec<u8>,
    ) -> Option<Vec<u8>> {
        let Some(rrl) = &settings.rrl else {
            return Some(reply);
        };
        match rrl.check(peer.ip(), &reply) {
            Verdict::Send => Some(reply),
            Verdict::Slip => {
                self.limits.rrl_slipped.fetch_add(1, Ordering::Relaxed);
                Some(slip_reply(&reply))
            }
            Verdict::Drop => {
                self.limits.rrl_dropped.fetch_add(1, Ordering::Relaxed);
                None
            }
        }
    }
}

/// What a batch of UDP queries is answered from: every snapshot loaded once (and the time
/// once) for the whole batch.
pub struct Snapshots {
    /// [`DnsState::generation`] as it was before the others were loaded.
    pub generation: u64,
    /// Per-query settings.
    pub settings: Guard<Arc<Settings>>,
    pools: Guard<Arc<Pools>>,
    health: Guard<Arc<HealthTable>>,
    geo: Guard<Option<Arc<GeoDb>>>,
    measured: Guard<Arc<MeasuredTable>>,
    now: tokio::time::Instant,
}

impl Snapshots {
    /// The pools' view for `client`.
    pub fn view(&self, client: Option<Client>) -> PoolView<'_> {
        PoolView {
            pools: &self.pools,
            health: &self.health,
            geo: self.geo.as_deref(),
            measured: (!self.measured.is_empty()).then_some(&**self.measured),
            now: self.now,
            client,
            memo: None,
        }
    }
}

/// Runs `f`, or logs and gives `fallback` if it panics: a bug must cost one query, not the
/// socket loop that serves all of them.
fn guarded<T>(peer: SocketAddr, fallback: T, f: impl FnOnce() -> T) -> T {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|_| {
        tracing::error!(%peer, "internal error while answering; query dropped");
        fallback
    })
}

/// Answers UDP queries on `socket` until closing begins (where [`super::udp`]'s batched
/// workers are not available).
pub async fn run_udp(socket: UdpSocket, state: Arc<DnsState>, closing: Closing) {
    let mut buf = vec![0u8; 65535];
    let mut prepared = Prepared::new();
    loop {
        let (len, peer) = tokio::select! {
            r = socket.recv_from(&mut buf) => match r {
                Ok(v) => v,
                // ICMP errors from earlier sends surface here on some systems; keep going.
                Err(_) => continue,
            },
            () = closing.closed() => return,
        };
        let reply = {
            let snapshots = state.snapshots();
            let reply = match prepared.respond(&state, &snapshots, &buf[..len], peer) {
                Outcome::Reply(r) => r,
                Outcome::Drop | Outcome::Transfer(_) => continue,
            };
            log_query(&snapshots.settings, peer, "udp", &buf[..len], &reply);
            match state.rate_limit(&snapshots.settings, peer, reply) {
                Some(r) => r,
                None => continue,
            }
        };
        let _ = socket.send_to(&reply, peer).await;
    }
}

/// Accepts TCP connections on `listener`, at most `max_connections` at once (further ones
/// wait in the kernel's backlog), until closing begins. Then the connections still in the
/// backlog are taken too and the socket closes; every connection answers the queries that
/// had already arrived (a query begun is read to its end) and closes. `shutdown` cuts them.
pub async fn run_tcp(
    listener: TcpListener,
    state: Arc<DnsState>,
    max_connections: usize,
    closing: Closing,
    shutdown: CancellationToken,
) {
    // Held until the backlog has been handed over, so that the wait for open connections
    // cannot end before the last of them has begun.
    let _backlog = closing.backlog_guard();
    let slots = Arc::new(Semaphore::new(max_connections));
    // A connection is served holding its slot: the accept loop's, or one it waits for.
    let serve = |stream: TcpStream, peer: SocketAddr, slot: Option<OwnedSemaphorePermit>| {
        let (state, stop, close) = (state.clone(), shutdown.clone(), closing.clone());
        let slots = slots.clone();
        closing.spawn(async move {
            tokio::select! {
                () = async {
                    let _slot = match slot {
                        Some(s) => s,
                        None => slots.acquire_owned().await.expect("never closed"),
                    };
                    serve_connection(stream, peer, &state, &close).await;
                } => {},
                () = stop.cancelled() => {},
            }
        });
    };
    loop {
        // A free slot first: further clients wait in the kernel's backlog.
        let slot = tokio::select! {
            biased;
            () = closing.closed() => break,
            s = slots.clone().acquire_owned() => s.expect("never closed"),
        };
        tokio::select! {
            biased;
            () = closing.closed() => break,
            r = listener.accept() => {
                if let Ok((stream, peer)) = r {
                    serve(stream, peer, Some(slot));
                }
            }
        }
    }
    for (stream, peer) in backlog(listener) {
        serve(stream, peer, None);
    }
}

/// The connections the kernel has already completed on `listener` (their clients may have
/// sent a query), taken without waiting; the listening socket closes after.
fn backlog(listener: TcpListener) -> Vec<(TcpStream, SocketAddr)> {
    let Ok(listener) = listener.into_std() else {
        return Vec::new();
    };
    // The socket is non-blocking: accept fails with WouldBlock once the backlog is empty.
    std::iter::from_fn(|| listener.accept().ok())
        .filter_map(|(stream, peer)| {
            stream.set_nonblocking(true).ok()?;
            Some((TcpStream::from_std(stream).ok()?, peer))
        })
        .collect()
}

async fn serve_connection(
    mut stream: TcpStream,
    peer: SocketAddr,
    state: &DnsState,
    closing: &Closing,
) {
    let _ = stream.set_nodelay(true);
    let (idle, io) = {
        let s = state.settings.load();
        (s.tcp_idle_timeout, s.tcp_io_timeout)
    };
    let mut buf = vec![0u8; 65535];
    loop {
        let mut len = [0u8; 2];
        // Up to the idle timeout for a query to begin, or only what has already arrived
        // once closing has begun; from its first byte, the I/O timeout for the rest (as
        // Knot's tcp-idle-timeout and tcp-io-timeout): a client trickling bytes holds a
        // connection no longer than that, and a query begun before closing is answered.
        let first = tokio::select! {
            biased;
            r = tokio::time::timeout(idle, stream.read(&mut len[..1])) => match r {
                Ok(Ok(1..)) => Ok(()),
                Ok(_) => Err(Stop::Gone),
                Err(_) => Err(Stop::Timeout),
            },
            () = closing.closed() => arrived(&stream, &mut len[..1]),
        };
        let query = async {
            first?;
            let rest = async {
                stream.read_exact(&mut len[1..]).await?;
                let n = usize::from(u16::from_be_bytes(len));
                stream.read_exact(&mut buf[..n]).await.map(|_| n)
            };
            match tokio::time::timeout(io, rest).await {
                Ok(Ok(n)) => Ok(n),
                Ok(Err(_)) => Err(Stop::Gone),
                Err(_) => Err(Stop::Timeout),
            }
        };
        let n = match query.await {
            Ok(n) => n,
            Err(Stop::Gone) => return,
            Err(Stop::Timeout) => {
                state.limits.tcp_timeouts.fetch_add(1, Ordering::Relaxed);
                return;
            }
        };
        let replies = match state.respond(&buf[..n], Transport::Tcp, peer) {
            Outcome::Drop => return,
            Outcome::Reply(r) => vec![r],
            Outcome::Transfer(req) => match transfer(&state.catalog.load(), &req, peer, state) {
                Transfer::Refused(r) => vec![r],
                Transfer::Stream(messages, slot) => {
                    let _slot = slot;
                    if !write_all(&mut stream, &messages, io, state).await {
                        return;
                    }
                    continue;
                }
            },
        };
        if let Some(first) = replies.first() {
            log_query(&state.settings.load(), peer, "tcp", &buf[..n], first);
        }
        if !write_all(&mut stream, &replies, io, state).await {
            return;
        }
    }
}

/// Reads into `buf` what the client has already sent, without waiting: Gone when nothing
/// has arrived. (A read through tokio could miss bytes the reactor has not reported yet.)
fn arrived(stream: &TcpStream, buf: &mut [u8]) -> Result<(), Stop> {
    let socket = socket2::SockRef::from(stream);
    match std::io::Read::read(&mut &*socket, buf) {
        Ok(1..) => Ok(()),
        _ => Err(Stop::Gone),
    }
}

/// Why reading a query stopped.
enum Stop {
    /// The client closed or reset the connection.
    Gone,
    /// A timeout passed.
    Timeout,
}

/// Writes length-prefixed messages; false when the client is gone or has not taken a
/// message within `io` (a client that does not read must not hold a connection slot).
async fn write_all(
    stream: &mut TcpStream,
    messages: &[Vec<u8>],
    io: Duration,
    state: &DnsState,
) -> bool {
    for r in messages {
        let mut framed = Vec::with_capacity(r.len() + 2);
        framed.extend_from_slice(&(r.len() as u16).to_be_bytes());
        framed.extend_from_slice(r);
        match tokio::time::timeout(io, stream.write_all(&framed)).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => return false,
            Err(_) => {
                state.limits.tcp_timeouts.fetch_add(1, Ordering::Relaxed);
                return false;
            }
        }
    }
    true
}

/// A running transfer's place under `transfer.max_concurrent`, given back when dropped.
struct TransferSlot<'a>(&'a AtomicUsize);

impl Drop for TransferSlot<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// What a transfer request gets.
enum Transfer<'a> {
    /// One REFUSED response.
    Refused(Vec<u8>),
    /// The zone's messages, sent while the slot is held.
    Stream(Vec<Vec<u8>>, TransferSlot<'a>),
}

/// A zone transfer for an allowed peer while fewer than `transfer.max_concurrent` run;
/// REFUSED for everyone else, for unknown zones and beyond the cap.
fn transfer<'a>(
    catalog: &Catalog,
    req: &Request,
    peer: SocketAddr,
    state: &'a DnsState,
) -> Transfer<'a> {
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
            let running = state.transfers.fetch_add(1, Ordering::Relaxed);
            let slot = TransferSlot(&state.transfers);
            if running >= settings.transfer.max_concurrent {
                state
                    .limits
                    .transfers_refused
                    .fetch_add(1, Ordering::Relaxed);
                tracing::warn!(zone = %zone.origin(), %peer, running, "zone transfer refused: transfer.max_concurrent reached");
                return Transfer::Refused(error(req, rcode::REFUSED));
            }
            tracing::info!(zone = %zone.origin(), serial = zone.serial(), %peer, "zone transfer");
            Transfer::Stream(transfer_messages(req, zone), slot)
        }
        _ => {
            tracing::warn!(zone = %q.name, %peer, allowed, "zone transfer refused");
            Transfer::Refused(error(req, rcode::REFUSED))
        }
    }
}

pub(crate) fn log_query(
    settings: &Settings,
    peer: SocketAddr,
    transport: &str,
    query: &[u8],
    reply: &[u8],
) {
    if !settings.query_log {
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
