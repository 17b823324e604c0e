//! Groups of `SO_REUSEPORT` sockets on one address (Linux), one per worker thread: the kernel
//! spreads clients over a group by a hash of their addresses. The DNS UDP sockets and the
//! balancer's listening sockets are such groups.

use socket2::{Domain, Socket, Type};
use std::io;
use std::net::SocketAddr;

/// `n` (at least one) sockets of type `ty` bound to `addr` with `SO_REUSEPORT`, each set up
/// by `prepare` before it is bound; with port 0 the first gets the kernel's pick and the rest
/// the same port.
pub fn group(
    addr: SocketAddr,
    n: usize,
    ty: Type,
    prepare: impl Fn(&Socket) -> io::Result<()>,
) -> io::Result<Vec<Socket>> {
    let open = |addr: SocketAddr| {
        let socket = Socket::new(Domain::for_address(addr), ty, None)?;
        socket.set_reuse_port(true)?;
        prepare(&socket)?;
        socket.bind(&addr.into())?;
        Ok::<_, io::Error>(socket)
    };
    let first = open(addr)?;
    let bound = first
        .local_addr()?
        .as_socket()
        .ok_or_else(|| io::Error::other("bound to a non-IP address"))?;
    let mut sockets = vec![first];
    for _ in 1..n.max(1) {
        sockets.push(open(bound)?);
    }
    Ok(sockets)
}
