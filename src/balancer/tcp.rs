//! TCP (L4) listeners, in the style of an AWS Network Load Balancer: each accepted connection
//! is paired with a connection to a target chosen by a [`Chooser`] and bytes are copied both
//! ways until both sides have finished, one fails, or the pair has been idle too long.
//!
//! A target that refuses the connection or does not answer within the connect timeout is
//! skipped and another one tried (up to [`MAX_ATTEMPTS`]); the client has sent nothing that
//! was lost, so this is always safe. With no target left the client connection is closed.
//! A half-close (FIN) is passed on, so a client may shut down its write side and still read
//! the target's answer.

use super::conns::Connections;
use crate::shutdown::Closing;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{ReadHalf, WriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Targets tried per connection when connecting fails or times out.
pub const MAX_ATTEMPTS: usize = 3;
/// Default idle timeout: a pair with no byte moving either way for this long is closed
/// (NLB's fixed TCP idle timeout).
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(350);
/// Default time allowed to connect to one target (NLB's target connect timeout).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Bytes read per copy step in each direction at first: enough for a request or an answer,
/// and small, since most connections stay small (a pair holds two of them).
const BUFFER: usize = 16 * 1024;
/// What a direction's buffer grows to once a read has filled it: a bulk stream then moves
/// in four times fewer system calls (and, on loopback, four times fewer packets).
const BULK_BUFFER: usize = 64 * 1024;
/// Pause after a failed accept (e.g. out of file descriptors) so the loop does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Chooses a target for a new connection: returns its address and a guard kept for the
/// connection's life (e.g. the in-flight counter), or None when no target is ready.
pub trait Chooser: Send + Sync + 'static {
    /// Kept while the connection to the chosen target lasts; dropped when it ends.
    type Guard: Send + 'static;

    /// A ready target for a connection from `client` that is not in `tried`, or None.
    fn choose(&self, client: SocketAddr, tried: &[SocketAddr])
    -> Option<(SocketAddr, Self::Guard)>;

    /// Told how a connection attempt/connection ended (connect failure → another target is
    /// tried). The default just drops the guard.
    fn connect_failed(&self, guard: Self::Guard) {
        drop(guard)
    }
}

/// Timeouts of a TCP listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpTimeouts {
    /// Time allowed to connect to one target before the next is tried.
    pub connect: Duration,
    /// A pair with no byte moving either way for this long is closed.
    pub idle: Duration,
}

impl Default for TcpTimeouts {
    fn default() -> TcpTimeouts {
        TcpTimeouts {
            connect: DEFAULT_CONNECT_TIMEOUT,
            idle: DEFAULT_IDLE_TIMEOUT,
        }
    }
}

/// Accepts connections for listener `name` until closing begins or `shutdown`, forwarding
/// each to a target from `chooser`; with `limit.1` connections open a new one is closed at
/// once. At closing open connections run on to their end; `shutdown` closes them.
pub async fn run_tcp_listener<C: Chooser>(
    listener: TcpListener,
    name: String,
    chooser: Arc<C>,
    timeouts: TcpTimeouts,
    limit: (Arc<Connections>, usize),
    closing: Closing,
    shutdown: CancellationToken,
) {
    let name: Arc<str> = name.into();
    let (conns, max) = limit;
    loop {
        let (client, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(v) => v,
                Err(e) => {
                    tracing::warn!(listener = %name, "accept failed: {e}");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
            () = closing.closed() => return,
            () = shutdown.cancelled() => return,
        };
        let Some(admitted) = conns.admit(max) else {
            tracing::debug!(listener = %name, client = %peer, max, "max_connections reached, connection closed");
            continue;
        };
        let (name, chooser, stop) = (name.clone(), chooser.clone(), shutdown.clone());
        closing.spawn(async move {
            tokio::select! {
                () = serve(client, peer, &name, &*chooser, timeouts) => {},
                () = stop.cancelled() => {},
            }
            drop(admitted);
        });
    }
}

/// One client connection: connect to a target, then copy until done.
async fn serve<C: Chooser>(
    client: TcpStream,
    peer: SocketAddr,
    name: &str,
    chooser: &C,
    timeouts: TcpTimeouts,
) {
    let Some((target, addr, _guard)) = connect(chooser, peer, name, timeouts.connect).await else {
        // Dropping the client stream closes it: the client reads EOF.
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = target.set_nodelay(true);
    let started = Instant::now();
    let outcome = pipe(client, target, timeouts.idle).await;
    let secs = started.elapsed().as_secs_f64();
    match outcome {
        Ok(Ended::Done { up, down }) => {
            tracing::debug!(listener = name, client = %peer, target = %addr, up, down, secs, "tcp connection closed")
        }
        Ok(Ended::Idle) => {
            tracing::debug!(listener = name, client = %peer, target = %addr, secs, "tcp connection idle, closed")
        }
        Err(e) => {
            tracing::debug!(listener = name, client = %peer, target = %addr, secs, "tcp connection failed: {e}")
        }
    }
}

/// Connects to up to [`MAX_ATTEMPTS`] targets in turn; the first that answers wins.
async fn connect<C: Chooser>(
    chooser: &C,
    peer: SocketAddr,
    name: &str,
    timeout: Duration,
) -> Option<(TcpStream, SocketAddr, C::Guard)> {
    let mut tried = Vec::with_capacity(MAX_ATTEMPTS);
    while tried.len() < MAX_ATTEMPTS {
        let Some((addr, guard)) = chooser.choose(peer, &tried) else {
            break;
        };
        tried.push(addr);
        match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => return Some((stream, addr, guard)),
            Ok(Err(e)) => {
                tracing::debug!(listener = name, target = %addr, "target unreachable, trying another: {e}");
            }
            Err(_) => {
                tracing::debug!(listener = name, target = %addr, "target connect timed out, trying another");
            }
        }
        chooser.connect_failed(guard);
    }
    if tried.is_empty() {
        tracing::warn!(listener = name, client = %peer, "no ready target, connection closed");
    } else {
        tracing::warn!(listener = name, client = %peer, ?tried, "no target could be reached, connection closed");
    }
    None
}

/// How a pair ended without an I/O error.
#[derive(Debug, PartialEq, Eq)]
enum Ended {
    /// Both directions reached EOF; bytes copied client → target and target → client.
    Done { up: u64, down: u64 },
    /// Nothing moved for the idle timeout.
    Idle,
}

/// Copies both ways. EOF on one side is passed on as a half-close and the other direction
/// goes on; an error in either direction ends both. The sockets close when this returns.
async fn pipe(mut client: TcpStream, mut target: TcpStream, idle: Duration) -> io::Result<Ended> {
    // Borrowed halves: no reference count per pair, and no shutdown when a half is dropped.
    let (client_rd, client_wr) = client.split();
    let (target_rd, target_wr) = target.split();
    let activity = Activity::new();
    let one_ended = AtomicBool::new(false);
    let copy = async {
        tokio::try_join!(
            one_way(client_rd, target_wr, &activity, &one_ended),
            one_way(target_rd, client_wr, &activity, &one_ended),
        )
    };
    tokio::select! {
        r = copy => r.map(|(up, down)| Ended::Done { up, down }),
        () = activity.idle_for(idle) => Ok(Ended::Idle),
    }
}

/// Copies `from` into `to` until EOF, then shuts down `to`'s write side unless the other
/// direction has already ended (`one_ended`): then both sockets are about to close, and the
/// close sends the same FIN one system call sooner. The buffer starts at [`BUFFER`] and
/// grows once to [`BULK_BUFFER`] the first time a read fills it.
async fn one_way(
    mut from: ReadHalf<'_>,
    mut to: WriteHalf<'_>,
    activity: &Activity,
    one_ended: &AtomicBool,
) -> io::Result<u64> {
    let mut buf = vec![0u8; BUFFER];
    let mut total = 0u64;
    loop {
        let n = from.read(&mut buf).await?;
        if n == 0 {
            if !one_ended.swap(true, Ordering::Relaxed) {
                to.shutdown().await?;
            }
            return Ok(total);
        }
        activity.touch();
        to.write_all(&buf[..n]).await?;
        activity.touch();
        total += n as u64;
        if n == buf.len() && buf.len() < BULK_BUFFER {
            buf.resize(BULK_BUFFER, 0);
        }
    }
}

/// When a byte last moved in either direction, shared by the two copy loops of a pair.
/// Kept as nanoseconds since the pair started so both loops can update it without a lock;
/// uses tokio's clock so tests can run it in paused time.
struct Activity {
    start: Instant,
    last: AtomicU64,
}

impl Activity {
    fn new() -> Activity {
        Activity {
            start: Instant::now(),
            last: AtomicU64::new(0),
        }
    }

    fn touch(&self) {
        let nanos = self.start.elapsed().as_nanos().min(u128::from(u64::MAX)) as u64;
        self.last.store(nanos, Ordering::Relaxed);
    }

    /// Completes once nothing has moved for `idle`.
    async fn idle_for(&self, idle: Duration) {
        loop {
            let last = self.start + Duration::from_nanos(self.last.load(Ordering::Relaxed));
            let deadline = last + idle;
            if Instant::now() >= deadline {
                return;
            }
            tokio::time::sleep_until(deadline).await;
        }
    }
}

#[cfg(test)]
mod tests;
