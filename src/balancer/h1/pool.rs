//! Idle keep-alive connections to targets, per target address, reused most recent first.
//! A connection is given back only after its response was read to the end; one idle for
//! longer than the keep time is closed rather than reused (a target that closed it in the
//! meantime is found out on use and the request is sent again on a new connection).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::time::Instant;

/// Idle connections longer unused than this are closed (hyper's pool uses 90 s, HAProxy
/// keeps them until the target closes them; targets commonly close after 60–75 s).
pub const KEEP: Duration = Duration::from_secs(50);

/// See the module documentation.
#[derive(Debug, Default)]
pub struct Pool {
    idle: Mutex<Idle>,
}

#[derive(Debug, Default)]
struct Idle {
    by_target: HashMap<SocketAddr, Vec<(TcpStream, Instant)>>,
    /// When stale connections of every target were last closed.
    swept: Option<Instant>,
}

impl Pool {
    /// The most recently used idle connection to `target`, if one is fresh enough.
    pub fn take(&self, target: SocketAddr) -> Option<TcpStream> {
        let mut idle = self.idle.lock().expect("pool lock");
        let list = idle.by_target.get_mut(&target)?;
        let (stream, since) = list.pop()?;
        if since.elapsed() < KEEP {
            return Some(stream);
        }
        // The most recent is stale: so are the older ones.
        list.clear();
        None
    }

    /// Keeps `stream` to `target` for reuse; closes connections gone stale (every few seconds).
    pub fn give(&self, target: SocketAddr, stream: TcpStream) {
        let now = Instant::now();
        let mut idle = self.idle.lock().expect("pool lock");
        idle.by_target
            .entry(target)
            .or_default()
            .push((stream, now));
        if idle
            .swept
            .is_none_or(|t| now.duration_since(t) >= Duration::from_secs(5))
        {
            idle.swept = Some(now);
            idle.by_target.retain(|_, list| {
                list.retain(|(_, since)| now.duration_since(*since) < KEEP);
                !list.is_empty()
            });
        }
    }

    /// Idle connections held (all targets).
    #[cfg(test)]
    pub fn idle(&self) -> usize {
        let idle = self.idle.lock().expect("pool lock");
        idle.by_target.values().map(Vec::len).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    async fn pair(l: &TcpListener) -> TcpStream {
        let addr = l.local_addr().unwrap();
        let (c, _) = tokio::join!(TcpStream::connect(addr), l.accept());
        c.unwrap()
    }

    #[tokio::test]
    async fn the_most_recent_connection_is_reused_and_stale_ones_are_closed() {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let pool = Pool::default();
        assert!(pool.take(addr).is_none());
        let (a, b) = (pair(&l).await, pair(&l).await);
        let b_port = b.local_addr().unwrap().port();
        pool.give(addr, a);
        pool.give(addr, b);
        let got = pool.take(addr).unwrap();
        assert_eq!(got.local_addr().unwrap().port(), b_port);
        assert_eq!(pool.idle(), 1);
        tokio::time::pause();
        tokio::time::advance(KEEP).await;
        assert!(
            pool.take(addr).is_none(),
            "a connection idle for the keep time is not reused"
        );
        assert_eq!(pool.idle(), 0);
    }
}
