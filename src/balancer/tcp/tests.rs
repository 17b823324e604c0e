use super::*;
use std::sync::atomic::{AtomicBool, AtomicUsize};
use tokio::net::TcpSocket;
use tokio::task::{JoinHandle, JoinSet};

/// Round robin over fixed addresses; counts live guards and failed connects.
struct RoundRobin {
    targets: Vec<SocketAddr>,
    turn: AtomicUsize,
    live: Arc<AtomicUsize>,
    failed: AtomicUsize,
}

/// A connection counted in [`RoundRobin::live`] until dropped.
struct Counted(Arc<AtomicUsize>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl RoundRobin {
    fn new(targets: Vec<SocketAddr>) -> Arc<RoundRobin> {
        Arc::new(RoundRobin {
            targets,
            turn: AtomicUsize::new(0),
            live: Arc::new(AtomicUsize::new(0)),
            failed: AtomicUsize::new(0),
        })
    }
}

impl Chooser for RoundRobin {
    type Guard = Counted;

    fn choose(&self, _client: SocketAddr, tried: &[SocketAddr]) -> Option<(SocketAddr, Counted)> {
        for _ in 0..self.targets.len() {
            let i = self.turn.fetch_add(1, Ordering::SeqCst) % self.targets.len();
            let addr = self.targets[i];
            if !tried.contains(&addr) {
                self.live.fetch_add(1, Ordering::SeqCst);
                return Some((addr, Counted(self.live.clone())));
            }
        }
        None
    }

    fn connect_failed(&self, guard: Counted) {
        self.failed.fetch_add(1, Ordering::SeqCst);
        drop(guard);
    }
}

/// An echo server; aborting the returned task closes its listener and every connection.
async fn echo_target() -> (SocketAddr, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let mut conns = JoinSet::new();
        loop {
            let Ok((mut s, _)) = listener.accept().await else {
                continue;
            };
            conns.spawn(async move {
                let (mut rd, mut wr) = s.split();
                let _ = tokio::io::copy(&mut rd, &mut wr).await;
                let _ = wr.shutdown().await;
            });
            while conns.try_join_next().is_some() {}
        }
    });
    (addr, task)
}

/// An address nothing listens on: bound, then released.
async fn dead_addr() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    l.local_addr().unwrap()
}

/// Starts a listener over `chooser`; returns its address, its task and its shutdown token.
async fn start(
    chooser: Arc<RoundRobin>,
    timeouts: TcpTimeouts,
) -> (SocketAddr, JoinHandle<()>, CancellationToken) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = CancellationToken::new();
    let task = tokio::spawn(run_tcp_listener(
        listener,
        "l4".into(),
        chooser,
        timeouts,
        (Arc::default(), usize::MAX),
        crate::shutdown::Closing::new(),
        stop.clone(),
    ));
    (addr, task, stop)
}

async fn round_trip(s: &mut TcpStream, msg: &[u8]) -> io::Result<()> {
    s.write_all(msg).await?;
    let mut got = vec![0u8; msg.len()];
    s.read_exact(&mut got).await?;
    if got != msg {
        return Err(io::Error::other("echo differs"));
    }
    Ok(())
}

/// Polls `f` until true, for at most 5 s.
async fn eventually(what: &str, f: impl Fn() -> bool) {
    for _ in 0..500 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for: {what}");
}

/// The mebibyte fills the first buffer in each direction, so it also crosses the growth to
/// the bulk buffer size.
#[tokio::test]
async fn forwards_bytes_both_ways_including_a_mebibyte() {
    let (target, _t) = echo_target().await;
    let chooser = RoundRobin::new(vec![target]);
    let (addr, _l, _stop) = start(chooser.clone(), TcpTimeouts::default()).await;

    let mut s = TcpStream::connect(addr).await.unwrap();
    round_trip(&mut s, b"hello").await.unwrap();
    let sent: Vec<u8> = (0..1024 * 1024u32).map(|i| (i % 253) as u8).collect();
    let (mut rd, mut wr) = s.into_split();
    let data = sent.clone();
    let writer = tokio::spawn(async move {
        wr.write_all(&data).await.unwrap();
        wr.shutdown().await.unwrap();
    });
    let mut got = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), rd.read_to_end(&mut got))
        .await
        .expect("EOF passed on")
        .unwrap();
    writer.await.unwrap();
    assert_eq!(got.len(), sent.len());
    assert!(got == sent, "forwarded bytes differ");
    let live = chooser.live.clone();
    eventually("the guard is dropped", || live.load(Ordering::SeqCst) == 0).await;
}

#[tokio::test]
async fn a_half_close_reaches_the_target_and_the_answer_still_comes_back() {
    // The target reads to EOF, then answers with the byte count.
    let counter = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let target = counter.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut s, _) = counter.accept().await.unwrap();
        let mut all = Vec::new();
        s.read_to_end(&mut all).await.unwrap();
        s.write_all(format!("{} bytes", all.len()).as_bytes())
            .await
            .unwrap();
    });
    let (addr, _l, _stop) = start(RoundRobin::new(vec![target]), TcpTimeouts::default()).await;

    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(&[7u8; 1000]).await.unwrap();
    s.shutdown().await.unwrap();
    let mut answer = String::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_string(&mut answer))
        .await
        .expect("the target saw EOF and answered")
        .unwrap();
    assert_eq!(answer, "1000 bytes");
}

#[tokio::test]
async fn a_dead_target_is_skipped() {
    let (live, _t) = echo_target().await;
    let dead = dead_addr().await;
    let chooser = RoundRobin::new(vec![dead, live]);
    let (addr, _l, _stop) = start(chooser.clone(), TcpTimeouts::default()).await;

    for i in 0..4u8 {
        let mut s = TcpStream::connect(addr).await.unwrap();
        round_trip(&mut s, &[i; 10]).await.unwrap();
    }
    assert!(chooser.failed.load(Ordering::SeqCst) >= 2);
}

#[tokio::test]
async fn with_every_target_dead_the_client_sees_eof_at_once() {
    let mut dead = Vec::new();
    for _ in 0..4 {
        dead.push(dead_addr().await);
    }
    let chooser = RoundRobin::new(dead);
    let (addr, _l, _stop) = start(chooser.clone(), TcpTimeouts::default()).await;

    let mut s = TcpStream::connect(addr).await.unwrap();
    let mut buf = [0u8; 8];
    let n = tokio::time::timeout(Duration::from_secs(2), s.read(&mut buf))
        .await
        .expect("closed quickly")
        .unwrap();
    assert_eq!(n, 0);
    assert_eq!(chooser.failed.load(Ordering::SeqCst), MAX_ATTEMPTS);
    assert_eq!(chooser.live.load(Ordering::SeqCst), 0);

    // No target at all: closed too.
    let (addr, _l2, _stop2) = start(RoundRobin::new(vec![]), TcpTimeouts::default()).await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    let n = tokio::time::timeout(Duration::from_secs(2), s.read(&mut buf))
        .await
        .expect("closed quickly")
        .unwrap();
    assert_eq!(n, 0);
}

/// A listener whose accept queue is full: the kernel drops further SYNs, so connecting to it
/// hangs until the caller gives up.
async fn unresponsive_target() -> (SocketAddr, TcpListener, Vec<TcpStream>) {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(1).unwrap();
    let addr = listener.local_addr().unwrap();
    let mut held = Vec::new();
    for _ in 0..16 {
        match tokio::time::timeout(Duration::from_secs(1), TcpStream::connect(addr)).await {
            Ok(Ok(s)) => held.push(s),
            Ok(Err(e)) => panic!("filling the accept queue: {e}"),
            Err(_) => return (addr, listener, held),
        }
    }
    panic!("the accept queue never filled");
}

#[tokio::test(start_paused = true)]
async fn a_target_that_does_not_answer_times_out_and_another_is_tried() {
    let (hanging, _listener, _held) = unresponsive_target().await;
    let (live, _t) = echo_target().await;
    let chooser = RoundRobin::new(vec![hanging, live]);
    let timeouts = TcpTimeouts {
        connect: Duration::from_secs(5),
        ..TcpTimeouts::default()
    };
    let (addr, _l, _stop) = start(chooser.clone(), timeouts).await;

    let before = Instant::now();
    let mut s = TcpStream::connect(addr).await.unwrap();
    round_trip(&mut s, b"through").await.unwrap();
    let waited = before.elapsed();
    assert!(
        waited >= Duration::from_secs(5) && waited < Duration::from_secs(6),
        "waited {waited:?}"
    );
    assert_eq!(chooser.failed.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn an_idle_pair_is_closed_after_the_idle_timeout() {
    let target = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let target_addr = target.local_addr().unwrap();
    let (closed_tx, closed_rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let (mut s, _) = target.accept().await.unwrap();
        let (mut rd, mut wr) = s.split();
        let _ = tokio::io::copy(&mut rd, &mut wr).await;
        let _ = closed_tx.send(Instant::now());
    });
    let chooser = RoundRobin::new(vec![target_addr]);
    let (addr, _l, _stop) = start(chooser.clone(), TcpTimeouts::default()).await;

    let mut s = TcpStream::connect(addr).await.unwrap();
    round_trip(&mut s, b"a").await.unwrap();
    // Traffic before the timeout keeps the pair open.
    tokio::time::sleep(Duration::from_secs(300)).await;
    round_trip(&mut s, b"b").await.unwrap();
    tokio::time::sleep(DEFAULT_IDLE_TIMEOUT - Duration::from_secs(1)).await;
    round_trip(&mut s, b"c").await.unwrap();
    let last = Instant::now();

    let mut buf = [0u8; 4];
    let read = tokio::time::timeout(2 * DEFAULT_IDLE_TIMEOUT, s.read(&mut buf));
    let n = read.await.expect("closed by the balancer").unwrap();
    assert_eq!(n, 0);
    let waited = last.elapsed();
    assert!(
        waited >= DEFAULT_IDLE_TIMEOUT && waited < DEFAULT_IDLE_TIMEOUT + Duration::from_secs(1),
        "closed after {waited:?}"
    );
    let target_closed = closed_rx.await.unwrap();
    assert!(target_closed - last >= DEFAULT_IDLE_TIMEOUT);
    assert_eq!(chooser.live.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn shutdown_stops_accepting_and_closes_open_pairs() {
    let (target, _t) = echo_target().await;
    let (addr, listener, stop) = start(RoundRobin::new(vec![target]), TcpTimeouts::default()).await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    round_trip(&mut s, b"x").await.unwrap();

    stop.cancel();
    listener.await.unwrap();
    let mut buf = [0u8; 1];
    let n = tokio::time::timeout(Duration::from_secs(2), s.read(&mut buf))
        .await
        .expect("open pair closed")
        .unwrap();
    assert_eq!(n, 0);
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "no longer listening"
    );
}

/// How the load test's connections fared.
#[derive(Default)]
struct Tally {
    ok: AtomicUsize,
    /// Failed connections opened before the target was killed.
    failed_old: AtomicUsize,
    /// Failed connections opened after it: must stay zero.
    failed_new: AtomicUsize,
    new: AtomicUsize,
}

/// One load-test client: 10 round trips, then a clean close.
async fn session(addr: SocketAddr, id: usize) -> io::Result<()> {
    let mut s = TcpStream::connect(addr).await?;
    for r in 0..10usize {
        let msg = format!("conn {id} trip {r} ").repeat(4);
        round_trip(&mut s, msg.as_bytes()).await?;
    }
    s.shutdown().await?;
    let mut rest = Vec::new();
    s.read_to_end(&mut rest).await?;
    if !rest.is_empty() {
        return Err(io::Error::other("bytes after close"));
    }
    Ok(())
}

#[tokio::test]
async fn bounded_load_survives_a_killed_target_without_failing_new_connections() {
    let mut targets = Vec::new();
    let mut tasks = Vec::new();
    for _ in 0..3 {
        let (a, t) = echo_target().await;
        targets.push(a);
        tasks.push(t);
    }
    let chooser = RoundRobin::new(targets);
    let (addr, _l, _stop) = start(chooser.clone(), TcpTimeouts::default()).await;

    const TOTAL: usize = 200;
    const AT_ONCE: usize = 20;
    let tally = Arc::new(Tally::default());
    let killed = Arc::new(AtomicBool::new(false));
    // Kill one target once a third of the connections are done, while others are open:
    // its listener and its open connections go away.
    let killer = {
        let (killed, tally, victim) = (killed.clone(), tally.clone(), tasks.remove(1));
        let live = chooser.live.clone();
        tokio::spawn(async move {
            let mut open = 0;
            for _ in 0..10_000 {
                open = live.load(Ordering::SeqCst);
                if tally.ok.load(Ordering::SeqCst) >= TOTAL / 3 && open > 0 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            victim.abort();
            let _ = victim.await;
            killed.store(true, Ordering::SeqCst);
            open
        })
    };
    let permits = Arc::new(tokio::sync::Semaphore::new(AT_ONCE));
    let mut clients = JoinSet::new();
    for id in 0..TOTAL {
        let permit = permits.clone().acquire_owned().await.unwrap();
        let (tally, killed) = (tally.clone(), killed.clone());
        clients.spawn(async move {
            let new = killed.load(Ordering::SeqCst);
            let r = tokio::time::timeout(Duration::from_secs(10), session(addr, id)).await;
            let counter = match (r, new) {
                (Ok(Ok(())), _) => &tally.ok,
                (_, false) => &tally.failed_old,
                (_, true) => &tally.failed_new,
            };
            counter.fetch_add(1, Ordering::SeqCst);
            if new {
                tally.new.fetch_add(1, Ordering::SeqCst);
            }
            drop(permit);
        });
    }
    while clients.join_next().await.is_some() {}
    let open_at_kill = killer.await.unwrap();
    assert!(open_at_kill > 0, "the kill happened under load");

    let (ok, old, new_failed) = (
        tally.ok.load(Ordering::SeqCst),
        tally.failed_old.load(Ordering::SeqCst),
        tally.failed_new.load(Ordering::SeqCst),
    );
    assert_eq!(ok + old + new_failed, TOTAL);
    assert!(
        tally.new.load(Ordering::SeqCst) >= TOTAL / 3,
        "enough connections after the kill"
    );
    assert_eq!(new_failed, 0, "new connections failed ({old} old ones did)");
    assert!(
        old <= AT_ONCE,
        "only connections open at the kill may fail: {old}"
    );
    assert!(
        chooser.failed.load(Ordering::SeqCst) > 0,
        "the killed target was tried and skipped"
    );
    let live = chooser.live.clone();
    eventually("every guard is dropped", || {
        live.load(Ordering::SeqCst) == 0
    })
    .await;
}
