//! The UDP fast path on Linux: per listen address, one `SO_REUSEPORT` socket per worker, each
//! served by its own thread that receives a batch of datagrams with one `recvmmsg`, answers
//! them from the current snapshots and sends the replies with one `sendmmsg` (as knotd and
//! NSD do). Under load that is two system calls per batch instead of two per query, and the
//! kernel spreads clients over the sockets by address hash, so N workers use N cores.
//!
//! Replies pass response rate limiting ([`DnsState::rate_limit`]) as on every UDP path. A
//! worker with nothing to receive sleeps in `recvmmsg` itself (`MSG_WAITFORONE`: it blocks
//! for the first datagram only, as gdnsd does), so a quiet moment costs no extra system
//! call. Its [`Alarm`] is dropped when closing begins: that shuts the socket's receiving
//! side down, the blocked `recvmmsg` returns at once and the worker stops.

use crate::dns::prepared::Prepared;
use crate::dns::respond::Outcome;
use crate::dns::server::{DnsState, log_query};
use crate::shutdown::Closing;
use std::io;
use std::mem::MaybeUninit;
use std::net::{SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// Datagrams received (and replies sent) per system call at most.
const BATCH: usize = 32;
/// Room for one datagram: larger ones are truncated by the kernel and dropped here.
const SLOT: usize = 4096;

/// Dropping it wakes the worker serving its socket, for good: the socket's receiving side
/// is shut down, so a `recvmmsg` blocked on it returns at once, and so does every later one.
pub struct Alarm {
    socket: OwnedFd,
}

impl Alarm {
    /// An alarm for the worker serving `socket` (it holds a duplicate of the descriptor, so
    /// it never touches another socket that reused the number).
    pub fn new(socket: &std::net::UdpSocket) -> io::Result<Alarm> {
        Ok(Alarm {
            socket: socket.try_clone()?.into(),
        })
    }
}

impl Drop for Alarm {
    fn drop(&mut self) {
        // SAFETY: `socket` is an open descriptor owned by `self`. On an unconnected UDP
        // socket Linux answers ENOTCONN but still marks the receiving side shut and wakes
        // every waiter, which is all that is wanted here.
        #[allow(unsafe_code)]
        let _ = unsafe { libc::shutdown(self.socket.as_raw_fd(), libc::SHUT_RD) };
    }
}

/// `workers` UDP sockets bound to `addr` with `SO_REUSEPORT` (port 0: the kernel's pick for
/// the first, the same port for the rest).
pub fn bind(addr: SocketAddr, workers: usize) -> io::Result<Vec<std::net::UdpSocket>> {
    let sockets = crate::reuse_port::group(addr, workers, socket2::Type::DGRAM, |socket| {
        if addr.is_ipv6() {
            socket.set_only_v6(true)?;
        }
        omit_path_mtu(socket.as_raw_fd(), addr.is_ipv6())
    })?;
    Ok(sockets.into_iter().map(Into::into).collect())
}

/// Ignores path MTU information on the socket (`IP_PMTUDISC_OMIT`, as knotd, NSD and gdnsd
/// set): replies leave without DF and are fragmented only beyond the interface's MTU, so a
/// forged ICMP "fragmentation needed" cannot make the server split its replies into
/// fragments that an off-path attacker could replace.
fn omit_path_mtu(fd: RawFd, v6: bool) -> io::Result<()> {
    let (level, name, value) = if v6 {
        (
            libc::IPPROTO_IPV6,
            libc::IPV6_MTU_DISCOVER,
            libc::IPV6_PMTUDISC_OMIT,
        )
    } else {
        (
            libc::IPPROTO_IP,
            libc::IP_MTU_DISCOVER,
            libc::IP_PMTUDISC_OMIT,
        )
    };
    #[allow(unsafe_code)]
    let rc = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (&raw const value).cast(),
            socklen::<libc::c_int>(),
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Answers queries on `socket` until closing begins or `shutdown` (blocking: run it on its
/// own thread; a thread cannot be aborted as a task can, so it must see both, and the
/// socket's [`Alarm`] must be dropped when either comes).
pub fn serve(
    socket: std::net::UdpSocket,
    state: Arc<DnsState>,
    closing: Closing,
    shutdown: CancellationToken,
) {
    let fd = socket.as_raw_fd();
    let mut bufs = vec![[0u8; SLOT]; BATCH];
    let mut batch = Batch::new();
    let mut replies: Vec<(Vec<u8>, SocketAddr)> = Vec::with_capacity(BATCH);
    let mut prepared = Prepared::new();
    while !closing.is_closed() && !shutdown.is_cancelled() {
        let received = match batch.receive(fd, &mut bufs) {
            Ok(n) => n,
            // A signal, or an ICMP error from an earlier send: keep going.
            Err(_) => continue,
        };
        let snapshots = state.snapshots();
        for (i, buf) in bufs.iter().enumerate().take(received) {
            let Some((len, peer)) = batch.datagram(i) else {
                continue;
            };
            let query = &buf[..len];
            if let Outcome::Reply(reply) = prepared.respond(&state, &snapshots, query, peer) {
                log_query(&snapshots.settings, peer, "udp", query, &reply);
                if let Some(reply) = state.rate_limit(&snapshots.settings, peer, reply) {
                    replies.push((reply, peer));
                }
            }
        }
        send_all(fd, &mut batch, &replies);
        replies.clear();
    }
}

/// Sends every reply, one `sendmmsg` per batch; a reply the kernel refuses is skipped.
fn send_all(fd: RawFd, batch: &mut Batch, replies: &[(Vec<u8>, SocketAddr)]) {
    let mut sent = 0;
    while sent < replies.len() {
        match batch.send(fd, &replies[sent..]) {
            Ok(0) | Err(_) => sent += 1,
            Ok(n) => sent += n,
        }
    }
}

/// The kernel's view of one receive batch: headers, buffers and source addresses.
struct Batch {
    headers: [libc::mmsghdr; BATCH],
    iovecs: [libc::iovec; BATCH],
    addrs: [MaybeUninit<libc::sockaddr_storage>; BATCH],
}

impl Batch {
    fn new() -> Box<Batch> {
        // SAFETY: mmsghdr, iovec and sockaddr_storage are plain C structs of integers and
        // pointers, for which all-zero bytes are valid values (null pointers, zero lengths).
        #[allow(unsafe_code)]
        let batch = unsafe { std::mem::zeroed::<Batch>() };
        Box::new(batch)
    }

    /// Receives up to [`BATCH`] datagrams into `bufs`, waiting for the first only (on a
    /// blocking socket; WouldBlock on a non-blocking one with none queued); their number.
    fn receive(&mut self, fd: RawFd, bufs: &mut [[u8; SLOT]]) -> io::Result<usize> {
        let n = bufs.len().min(BATCH);
        for (i, buf) in bufs.iter_mut().enumerate().take(n) {
            self.iovecs[i] = libc::iovec {
                iov_base: buf.as_mut_ptr().cast(),
                iov_len: SLOT,
            };
            let h = &mut self.headers[i].msg_hdr;
            h.msg_name = self.addrs[i].as_mut_ptr().cast();
            h.msg_namelen = socklen::<libc::sockaddr_storage>();
            h.msg_iov = &mut self.iovecs[i];
            h.msg_iovlen = 1;
            h.msg_control = std::ptr::null_mut();
            h.msg_controllen = 0;
            h.msg_flags = 0;
            self.headers[i].msg_len = 0;
        }
        // SAFETY: the first `n` headers point at live buffers of the lengths they state
        // (`bufs[i]`, `addrs[i]`), all owned by `self` or borrowed mutably for the whole
        // call; the kernel writes at most those lengths and returns how many headers it
        // filled. `fd` is an open socket borrowed from the caller.
        #[allow(unsafe_code)]
        let rc = unsafe {
            libc::recvmmsg(
                fd,
                self.headers.as_mut_ptr(),
                n as libc::c_uint,
                libc::MSG_WAITFORONE,
                std::ptr::null_mut(),
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(rc as usize)
    }

    /// Length and source of received datagram `i`; None when it did not fit its slot, the
    /// source is not an IP address, or there is no source (a receive on a socket whose
    /// receiving side is shut down).
    fn datagram(&self, i: usize) -> Option<(usize, SocketAddr)> {
        let h = &self.headers[i];
        if h.msg_hdr.msg_flags & libc::MSG_TRUNC != 0 || h.msg_hdr.msg_namelen == 0 {
            return None;
        }
        // SAFETY: the kernel filled `msg_namelen` bytes of `addrs[i]` (the rest is zeroed
        // from `new`), so reading the whole storage reads initialised bytes.
        #[allow(unsafe_code)]
        let storage = unsafe { self.addrs[i].assume_init_ref() };
        Some((h.msg_len as usize, socket_addr(storage)?))
    }
}

impl Batch {
    /// Sends `replies` with one `sendmmsg` (the headers of the received batch are reused:
    /// its datagrams have been read); how many the kernel took.
    fn send(&mut self, fd: RawFd, replies: &[(Vec<u8>, SocketAddr)]) -> io::Result<usize> {
        let n = replies.len().min(BATCH);
        for (i, (reply, peer)) in replies.iter().take(n).enumerate() {
            let len = write_socket_addr(*peer, &mut self.addrs[i]);
            self.iovecs[i] = libc::iovec {
                iov_base: reply.as_ptr().cast_mut().cast(),
                iov_len: reply.len(),
            };
            let h = &mut self.headers[i].msg_hdr;
            h.msg_name = self.addrs[i].as_mut_ptr().cast();
            h.msg_namelen = len;
            h.msg_iov = &mut self.iovecs[i];
            h.msg_iovlen = 1;
            h.msg_control = std::ptr::null_mut();
            h.msg_controllen = 0;
            h.msg_flags = 0;
        }
        // SAFETY: the first `n` headers are set above and point at `addrs` and `iovecs`
        // (owned by `self`) and at the bytes of `replies`, all of which outlive the call;
        // the kernel only reads them (and writes `msg_len`). `fd` is an open socket borrowed
        // from the caller.
        #[allow(unsafe_code)]
        let rc = unsafe { libc::sendmmsg(fd, self.headers.as_mut_ptr(), n as libc::c_uint, 0) };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(rc as usize)
    }
}

fn socklen<T>() -> libc::socklen_t {
    std::mem::size_of::<T>() as libc::socklen_t
}

/// The IP socket address in `storage` (AF_INET or AF_INET6), else None.
fn socket_addr(storage: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match i32::from(storage.ss_family) {
        libc::AF_INET => {
            // SAFETY: ss_family says the storage holds a sockaddr_in; sockaddr_storage is
            // large and aligned enough for every socket address type.
            #[allow(unsafe_code)]
            let a =
                unsafe { &*(storage as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            let ip = std::net::Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr));
            Some(SocketAddr::V4(SocketAddrV4::new(
                ip,
                u16::from_be(a.sin_port),
            )))
        }
        libc::AF_INET6 => {
            // SAFETY: as above, for sockaddr_in6.
            #[allow(unsafe_code)]
            let a = unsafe {
                &*(storage as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>()
            };
            let ip = std::net::Ipv6Addr::from(a.sin6_addr.s6_addr);
            Some(SocketAddr::V6(SocketAddrV6::new(
                ip,
                u16::from_be(a.sin6_port),
                a.sin6_flowinfo,
                a.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

/// Writes `addr` into `storage` as a sockaddr_in or sockaddr_in6; its length.
fn write_socket_addr(
    addr: SocketAddr,
    storage: &mut MaybeUninit<libc::sockaddr_storage>,
) -> libc::socklen_t {
    let ptr = storage.as_mut_ptr();
    match addr {
        SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from(*a.ip()).to_be(),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is large and aligned enough for a sockaddr_in.
            #[allow(unsafe_code)]
            unsafe {
                ptr.cast::<libc::sockaddr_in>().write(sin)
            };
            socklen::<libc::sockaddr_in>()
        }
        SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: a.flowinfo(),
                sin6_addr: libc::in6_addr {
                    s6_addr: a.ip().octets(),
                },
                sin6_scope_id: a.scope_id(),
            };
            // SAFETY: as above, for sockaddr_in6.
            #[allow(unsafe_code)]
            unsafe {
                ptr.cast::<libc::sockaddr_in6>().write(sin6)
            };
            socklen::<libc::sockaddr_in6>()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn socket_addresses_round_trip_through_sockaddr_storage() {
        for text in [
            "127.0.0.1:53",
            "[::1]:5353",
            "[fe80::1%2]:1053",
            "192.0.2.7:65535",
        ] {
            let addr: SocketAddr = text.parse().unwrap();
            let mut storage = MaybeUninit::zeroed();
            let len = write_socket_addr(addr, &mut storage);
            assert!(len as usize <= std::mem::size_of::<libc::sockaddr_storage>());
            #[allow(unsafe_code)]
            let storage = unsafe { storage.assume_init() };
            assert_eq!(socket_addr(&storage), Some(addr), "{text}");
        }
    }

    #[test]
    fn a_sleeping_worker_wakes_for_a_datagram_and_for_its_alarm() {
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = socket.local_addr().unwrap();
        let alarm = Alarm::new(&socket).unwrap();
        let (done, woke) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            // The first receive ends with a datagram, the second (and any after) with the
            // alarm: datagrams without a source.
            let mut bufs = vec![[0u8; SLOT]; BATCH];
            let mut batch = Batch::new();
            for _ in 0..3 {
                let n = batch.receive(socket.as_raw_fd(), &mut bufs).unwrap();
                assert!(n >= 1);
                done.send(batch.datagram(0).map(|(len, _)| len)).unwrap();
            }
        });
        let client = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        client.send_to(b"query", addr).unwrap();
        assert_eq!(woke.recv_timeout(Duration::from_secs(10)), Ok(Some(5)));
        // The worker is (or soon will be) blocked in its second receive.
        std::thread::sleep(Duration::from_millis(50));
        drop(alarm);
        assert_eq!(woke.recv_timeout(Duration::from_secs(10)), Ok(None));
        assert_eq!(woke.recv_timeout(Duration::from_secs(10)), Ok(None));
    }

    #[test]
    fn sockets_ignore_path_mtu_information() {
        for addr in ["127.0.0.1:0", "[::1]:0"] {
            let Ok(sockets) = bind(addr.parse().unwrap(), 1) else {
                continue; // no IPv6 on this machine
            };
            let v6 = addr.starts_with('[');
            let (level, name) = if v6 {
                (libc::IPPROTO_IPV6, libc::IPV6_MTU_DISCOVER)
            } else {
                (libc::IPPROTO_IP, libc::IP_MTU_DISCOVER)
            };
            let mut value: libc::c_int = -1;
            let mut len = socklen::<libc::c_int>();
            #[allow(unsafe_code)]
            let rc = unsafe {
                libc::getsockopt(
                    sockets[0].as_raw_fd(),
                    level,
                    name,
                    (&raw mut value).cast(),
                    &mut len,
                )
            };
            assert_eq!(rc, 0);
            assert_eq!(value, 5, "{addr}: IP_PMTUDISC_OMIT");
        }
    }

    #[test]
    fn reuse_port_sockets_share_one_port_and_a_batch_is_answered() {
        let sockets = bind("127.0.0.1:0".parse().unwrap(), 3).unwrap();
        let port = sockets[0].local_addr().unwrap().port();
        assert!(
            sockets
                .iter()
                .all(|s| s.local_addr().unwrap().port() == port)
        );
        // Echo through the batch primitives: three datagrams in, three replies out. The
        // kernel hands one client's datagrams to one of the sockets: read from each.
        let socket = &sockets[0];
        let client = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        client
            .set_read_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        for i in 0..3u8 {
            client
                .send_to(&[i; 5], socket.local_addr().unwrap())
                .unwrap();
        }
        let mut got = Vec::new();
        let mut bufs = vec![[0u8; SLOT]; BATCH];
        let mut batch = Batch::new();
        for s in &sockets {
            s.set_nonblocking(true).unwrap();
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(2);
        while got.len() < 3 && std::time::Instant::now() < deadline {
            for s in &sockets {
                if let Ok(n) = batch.receive(s.as_raw_fd(), &mut bufs) {
                    let mut replies = Vec::new();
                    for (i, buf) in bufs.iter().enumerate().take(n) {
                        let (len, peer) = batch.datagram(i).unwrap();
                        assert_eq!(peer, client.local_addr().unwrap());
                        got.push(buf[0]);
                        replies.push((buf[..len].to_vec(), peer));
                    }
                    send_all(s.as_raw_fd(), &mut batch, &replies);
                }
            }
        }
        got.sort_unstable();
        assert_eq!(got, [0, 1, 2]);
        for i in 0..3u8 {
            let mut buf = [0u8; 16];
            let (n, _) = client.recv_from(&mut buf).unwrap();
            assert_eq!(n, 5);
            assert!(
                buf[..5].iter().all(|&b| b == buf[0]) && buf[0] < 3,
                "reply {i}"
            );
        }
    }
}
