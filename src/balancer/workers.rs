//! Where the listeners' accept loops run. With one runtime worker, a listener has one
//! listening socket and its accept loop runs on the runtime that starts it. With N ≥ 2 the
//! balancer has N threads of its own, each a current-thread runtime, and a listener has N
//! `SO_REUSEPORT` sockets on its address, one accept loop on each thread (as the DNS UDP
//! sockets, nginx's `reuseport` and HAProxy's `shards by-thread`). The kernel spreads new
//! connections over the sockets by a hash of their addresses; a connection stays on the
//! thread that accepted it, together with its target connections (each accept loop keeps
//! its own pool of them), so none of its wake-ups crosses threads. The threads start with
//! the first listener.
//!
//! One socket shared by all threads was tried first: every thread is woken for each new
//! connection and the first awake takes all that are queued, so a burst of connections (a
//! load generator's, a restarted client pool's) ended up on one thread.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::OnceLock;
use tokio::runtime::Handle;
use tokio_util::sync::CancellationToken;

/// See the module documentation.
#[derive(Debug)]
pub struct Workers {
    count: usize,
    threads: OnceLock<Vec<Handle>>,
    stop: CancellationToken,
}

impl Workers {
    /// `count` threads, which end, and with them every connection still running on them,
    /// when `shutdown` is cancelled (not when this is dropped: connections outlive their
    /// listener). With fewer than two, accept loops run on the caller's runtime.
    pub fn new(count: usize, shutdown: CancellationToken) -> Workers {
        Workers {
            count,
            threads: OnceLock::new(),
            stop: shutdown,
        }
    }

    /// The listening sockets for `addr`: one per thread, `SO_REUSEPORT`, all on the port the
    /// first got (port 0: the kernel's pick); a plain one with fewer than two threads (then
    /// a second process cannot share the port).
    pub fn bind(&self, addr: SocketAddr) -> std::io::Result<Vec<std::net::TcpListener>> {
        if self.count < 2 {
            return plain_listener(addr).map(|socket| vec![socket]);
        }
        reuse_port_listeners(addr, self.count)
    }

    /// Runs `accept(socket)` for each of `sockets` (from [`Workers::bind`]; clones of them),
    /// each on its own thread, or on the current runtime with fewer than two threads.
    pub fn spawn_each<F, Fut>(
        &self,
        sockets: &[std::net::TcpListener],
        accept: F,
    ) -> std::io::Result<()>
    where
        F: Fn(tokio::net::TcpListener) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        if self.count < 2 {
            for socket in sockets {
                let tcp = tokio::net::TcpListener::from_std(socket.try_clone()?)?;
                tokio::spawn(accept(tcp));
            }
            return Ok(());
        }
        for (socket, handle) in sockets.iter().zip(self.handles()?) {
            // Registered with that thread's reactor, so its readiness wakes that thread.
            let _entered = handle.enter();
            let tcp = tokio::net::TcpListener::from_std(socket.try_clone()?)?;
            handle.spawn(accept(tcp));
        }
        Ok(())
    }

    fn handles(&self) -> std::io::Result<&[Handle]> {
        if let Some(h) = self.threads.get() {
            return Ok(h);
        }
        let mut handles = Vec::with_capacity(self.count);
        for i in 0..self.count {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            handles.push(runtime.handle().clone());
            let stop = self.stop.clone();
            std::thread::Builder::new()
                .name(format!("balancer-{i}"))
                .spawn(move || runtime.block_on(stop.cancelled()))?;
        }
        Ok(self.threads.get_or_init(|| handles))
    }
}

/// A non-blocking listening socket on `addr`.
fn plain_listener(addr: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    let socket = std::net::TcpListener::bind(addr)?;
    socket.set_nonblocking(true)?;
    Ok(socket)
}

/// `n` non-blocking listening sockets on `addr`, an `SO_REUSEPORT` group.
#[cfg(target_os = "linux")]
fn reuse_port_listeners(addr: SocketAddr, n: usize) -> std::io::Result<Vec<std::net::TcpListener>> {
    let sockets = crate::reuse_port::group(addr, n, socket2::Type::STREAM, |s| {
        // As the standard library's listeners.
        s.set_reuse_address(true)?;
        s.set_nonblocking(true)
    })?;
    sockets
        .into_iter()
        .map(|s| {
            // The kernel caps the backlog at net.core.somaxconn.
            s.listen(4096)?;
            Ok(s.into())
        })
        .collect()
}

/// Elsewhere `SO_REUSEPORT` does not spread connections (or is absent): one plain socket,
/// which the first thread accepts from.
#[cfg(not(target_os = "linux"))]
fn reuse_port_listeners(
    addr: SocketAddr,
    _n: usize,
) -> std::io::Result<Vec<std::net::TcpListener>> {
    plain_listener(addr).map(|socket| vec![socket])
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use std::io::Read;
    use std::net::TcpStream;
    use std::time::Duration;
    use tokio::io::AsyncWriteExt;

    /// The name of the thread that accepted a new connection to `addr`.
    fn acceptor(addr: SocketAddr) -> String {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut name = String::new();
        s.read_to_string(&mut name)
            .expect("no thread accepted the connection");
        name
    }

    #[test]
    fn each_thread_accepts_on_its_own_socket_of_the_port() {
        let shutdown = CancellationToken::new();
        let workers = Workers::new(2, shutdown.clone());
        let sockets = workers.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = sockets[0].local_addr().unwrap();
        assert_eq!(sockets.len(), 2);
        assert_eq!(sockets[1].local_addr().unwrap(), addr);
        workers
            .spawn_each(&sockets, |tcp| async move {
                while let Ok((mut s, _)) = tcp.accept().await {
                    let me = std::thread::current().name().unwrap_or("?").to_string();
                    let _ = s.write_all(me.as_bytes()).await;
                }
            })
            .unwrap();
        // The kernel picks a socket by a hash of each connection's addresses: over 40
        // connections from as many ports, both threads take some (all on one: 2 in 2^40).
        let mut seen: Vec<String> = (0..40).map(|_| acceptor(addr)).collect();
        seen.sort();
        seen.dedup();
        assert_eq!(seen, ["balancer-0", "balancer-1"]);
        shutdown.cancel();
    }

    #[tokio::test]
    async fn one_thread_binds_a_plain_socket_and_accepts_on_the_runtime() {
        let workers = Workers::new(1, CancellationToken::new());
        let sockets = workers.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = sockets[0].local_addr().unwrap();
        assert_eq!(sockets.len(), 1);
        // Without SO_REUSEPORT the port is this socket's alone.
        assert!(crate::reuse_port::group(addr, 1, socket2::Type::STREAM, |_| Ok(())).is_err());
        workers
            .spawn_each(&sockets, |tcp| async move {
                let (mut s, _) = tcp.accept().await.unwrap();
                s.write_all(b"served").await.unwrap();
            })
            .unwrap();
        let name = tokio::task::spawn_blocking(move || acceptor(addr))
            .await
            .unwrap();
        assert_eq!(name, "served");
    }
}
