//! The direct HTTP/1.1 path of plain-TCP listeners. A client connection is served by one
//! task that reads each request head itself, routes it, writes it to a target connection
//! taken from the listener's [`Pool`] and passes the response back, head rewritten and body
//! unchanged, before it reads the next request: no hand-off between tasks, no request or
//! response object, header bytes copied once each way. It takes the common request: HTTP/1.1
//! with no body, no upgrade and no `Expect`. At the first request it does not take (a body,
//! HTTP/1.0, an upgrade, a head that is malformed or too large) the connection goes, with
//! the bytes read so far, to the general path ([`super::proxy`], hyper) for the rest of its
//! life, which also serves HTTPS and HTTP/2. Both paths route with the same rules
//! (`proxy::decide`) and try targets in the same order (`proxy::Attempts`).

pub mod chunks;
pub mod head;
mod pool;
mod rewind;

pub use head::forwarded;
pub use pool::Pool;

use super::proxy::{self, Attempts, BalancerState, Body, Decision, Limits, Proto, Site, Stages};
use super::rules::RequestView;
use super::{Groups, InFlight, Outcome, sticky};
use crate::config::{Listener, TargetGroup};
use crate::shutdown::Closing;
use bytes::BytesMut;
use chunks::Chunks;
use head::{Framing, Parsed, RequestHead, ResponseHead};
use http_body_util::BodyExt;
use hyper::{Response, StatusCode};
use rewind::Rewind;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};
use tokio_util::sync::WaitForCancellationFutureOwned;

/// Longest response head read from a target.
const MAX_RESPONSE_HEAD: usize = 64 * 1024;

/// Serves one plain-TCP client connection (see the module documentation).
pub(super) async fn serve<I>(
    io: I,
    peer: SocketAddr,
    site: Arc<Site>,
    state: Arc<BalancerState>,
    stages: Stages,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut conn = Conn {
        io,
        peer,
        buf: BytesMut::with_capacity(4096),
        out: Vec::with_capacity(1024),
        tbuf: Vec::with_capacity(4096),
        deadline: Box::pin(tokio::time::sleep(site.limits.header)),
        closing: Box::pin(stages.closing.closed_owned()),
        client: peer.ip().to_string(),
        head_only: false,
    };
    let shutdown = stages.shutdown.clone();
    let handed = tokio::select! {
        handed = conn.run(&site, &state, &stages.closing) => handed,
        () = shutdown.cancelled() => return,
    };
    if handed {
        let io = Rewind::new(conn.buf.freeze(), conn.io);
        proxy::serve(io, peer, site, state, Proto::Http1, stages).await;
    } else {
        let _ = conn.io.shutdown().await;
    }
}

/// One client connection of the direct path.
struct Conn<I> {
    io: I,
    peer: SocketAddr,
    /// Bytes read from the client and not used yet.
    buf: BytesMut,
    /// Bytes to write: the request for a target, then the response for the client.
    out: Vec<u8>,
    /// Bytes read from the target.
    tbuf: Vec<u8>,
    /// When the request head being read must be complete.
    deadline: Pin<Box<Sleep>>,
    /// Resolves when closing begins (kept: waiting on it again costs nothing).
    closing: Pin<Box<WaitForCancellationFutureOwned>>,
    /// The client's address as text (for X-Forwarded-For).
    client: String,
    /// The request being answered is a HEAD: its answer has no body.
    head_only: bool,
}

/// What reading a request head gave.
enum Read {
    Head(RequestHead),
    /// A request for the general path (in the buffer).
    Other,
    /// The connection ended: closed, broken, too slow, or closing began while it was idle.
    Closed,
}

/// How a request went for its connection.
#[derive(Debug, PartialEq, Eq)]
enum Next {
    KeepAlive,
    Close,
}

/// Why an exchange with a target failed.
enum Exchange {
    /// No connection could be opened: the request never left.
    Connect,
    /// The connection broke before a complete response head.
    Failed,
}

impl<I: AsyncRead + AsyncWrite + Unpin> Conn<I> {
    /// Serves requests until the connection ends (false) or one goes to the general path
    /// (true).
    async fn run(&mut self, site: &Site, state: &BalancerState, closing: &Closing) -> bool {
        let mut first = true;
        loop {
            let head = match self.read_head(site.limits, first).await {
                Read::Head(head) => head,
                Read::Other => return true,
                Read::Closed => return false,
            };
            first = false;
            if self.request(&head, site, state, closing).await == Next::Close {
                return false;
            }
        }
    }

    /// Reads the next request head. The header timeout runs from the connection's start
    /// for the first request and from the first byte for later ones; an idle connection
    /// waits (up to the idle timeout) unless closing begins.
    async fn read_head(&mut self, limits: Limits, first: bool) -> Read {
        let mut timed = first;
        loop {
            if !self.buf.is_empty() {
                if !timed {
                    timed = true;
                    self.deadline.as_mut().reset(Instant::now() + limits.header);
                }
                match head::parse_request(&mut self.buf, limits.max_uri_bytes) {
                    Parsed::Simple(head) => return Read::Head(head),
                    Parsed::Other => return Read::Other,
                    Parsed::Partial if self.buf.len() >= limits.max_header_bytes => {
                        return Read::Other;
                    }
                    Parsed::Partial => {}
                }
            }
            let idle = self.buf.is_empty();
            self.buf.reserve(4096);
            let read = tokio::select! {
                biased;
                r = self.io.read_buf(&mut self.buf) => r,
                () = self.deadline.as_mut(), if timed => return Read::Closed,
                () = self.closing.as_mut(), if idle => return Read::Closed,
            };
            if !matches!(read, Ok(n) if n > 0) {
                return Read::Closed;
            }
        }
    }

    /// Routes one request and answers it.
    async fn request(
        &mut self,
        head: &RequestHead,
        site: &Site,
        state: &BalancerState,
        closing: &Closing,
    ) -> Next {
        self.head_only = head.method() == "HEAD";
        let groups = state.groups.load_full();
        let Some(listener) = groups.config().listener(&site.name) else {
            let gone = proxy::plain(StatusCode::SERVICE_UNAVAILABLE, "listener is gone\n");
            return self.answer(gone, false, site).await;
        };
        // The headers as a map, for what reads them (rules, stickiness, hash keys).
        let headers = match uses_headers(listener, &groups) {
            false => hyper::HeaderMap::new(),
            true => match head.header_map() {
                Some(headers) => headers,
                None => {
                    let bad = proxy::plain(StatusCode::BAD_REQUEST, "invalid header\n");
                    return self.answer(bad, false, site).await;
                }
            },
        };
        let host = head
            .header("host")
            .and_then(|h| std::str::from_utf8(h).ok());
        let host = proxy::host_name(host.unwrap_or(""));
        let (path, query) = head.target().split_once('?').unwrap_or((head.target(), ""));
        let view = RequestView {
            host: &host,
            path,
            query,
            method: head.method(),
            headers: &headers,
            source: self.peer.ip(),
        };
        let keep_alive = head.keep_alive && !closing.is_closed();
        match proxy::decide(&view, site, state, &groups, listener) {
            Decision::Answer(resp) => self.answer(resp, keep_alive, site).await,
            Decision::Forward(group) => {
                let to = Destination {
                    groups: &groups,
                    group,
                    listener,
                    site,
                };
                self.forward(head, &headers, to, state, keep_alive).await
            }
        }
    }

    /// Writes an answer of the balancer's own (the head only to a HEAD request), with a Date
    /// header as hyper writes on the other path.
    async fn answer(&mut self, resp: Response<Body>, keep_alive: bool, site: &Site) -> Next {
        let (parts, body) = resp.into_parts();
        let body = body
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        site.counts.record(parts.status.as_u16());
        self.out.clear();
        head::status_line(&mut self.out, parts.status.as_u16());
        let reason = parts.status.canonical_reason().unwrap_or("");
        self.out.extend_from_slice(reason.as_bytes());
        self.out.extend_from_slice(b"\r\n");
        for (name, value) in &parts.headers {
            self.out.extend_from_slice(name.as_str().as_bytes());
            self.out.extend_from_slice(b": ");
            self.out.extend_from_slice(value.as_bytes());
            self.out.extend_from_slice(b"\r\n");
        }
        if !parts.headers.contains_key(hyper::header::DATE) {
            let now = httpdate::fmt_http_date(std::time::SystemTime::now());
            let _ = write!(self.out, "date: {now}\r\n");
        }
        let _ = write!(self.out, "content-length: {}\r\n", body.len());
        if !keep_alive {
            self.out.extend_from_slice(b"connection: close\r\n");
        }
        self.out.extend_from_slice(b"\r\n");
        if !self.head_only {
            self.out.extend_from_slice(&body);
        }
        match self.io.write_all(&self.out).await {
            Ok(()) if keep_alive => Next::KeepAlive,
            _ => Next::Close,
        }
    }

    /// Forwards a request to a target of `to.group`, trying another target when one cannot
    /// be reached, and passes its response on; the client connection stays open after it
    /// when `keep_alive` and the response allows.
    async fn forward(
        &mut self,
        head: &RequestHead,
        headers: &hyper::HeaderMap,
        to: Destination<'_>,
        state: &BalancerState,
        keep_alive: bool,
    ) -> Next {
        let (site, listener) = (to.site, to.listener);
        let tg = &to.groups.config().target_groups[to.group];
        self.out.clear();
        head.write_upstream(&mut self.out, &self.client, &site.forwarded);
        let health = state.health.load();
        let mut attempts = Attempts::new(to.groups, to.group, headers, self.peer.ip(), &health);
        while let Some(target) = attempts.next(&state.health.load()) {
            let addr = tg.targets[target];
            let in_flight = to.groups.begin(to.group, target);
            let started = Instant::now();
            let timeouts = listener.timeouts;
            let exchange = self.exchange(addr, site, timeouts.connect, head);
            let result = tokio::select! {
                r = tokio::time::timeout(timeouts.target, exchange) => Some(r),
                () = in_flight.cancelled() => None,
            };
            let failed = Outcome::Failed {
                elapsed: started.elapsed(),
            };
            let (stream, resp) = match result {
                None => {
                    in_flight.finish(failed);
                    let gone =
                        proxy::plain(StatusCode::SERVICE_UNAVAILABLE, "target deregistered\n");
                    return self.answer(gone, keep_alive, site).await;
                }
                Some(Err(_)) => {
                    in_flight.finish(failed);
                    tracing::warn!(%addr, "target did not answer within the target timeout");
                    let late = proxy::plain(StatusCode::GATEWAY_TIMEOUT, "target timed out\n");
                    return self.answer(late, keep_alive, site).await;
                }
                Some(Ok(Err(Exchange::Connect))) => {
                    in_flight.finish(Outcome::ConnectFailed);
                    tracing::debug!(%addr, "target unreachable, trying another");
                    continue;
                }
                Some(Ok(Err(Exchange::Failed))) => {
                    in_flight.finish(failed);
                    if head.idempotent() {
                        tracing::debug!(%addr, "target failed, trying another");
                        continue;
                    }
                    tracing::warn!(%addr, "target failed");
                    let bad = proxy::plain(StatusCode::BAD_GATEWAY, "target failed\n");
                    return self.answer(bad, keep_alive, site).await;
                }
                Some(Ok(Ok(got))) => got,
            };
            let from = Origin {
                addr,
                tg,
                in_flight,
                started,
            };
            return self.relay(stream, resp, from, keep_alive, site).await;
        }
        self.answer(attempts.exhausted(), keep_alive, site).await
    }

    /// Sends the request in `out` to `addr` on a kept connection or a new one, and reads the
    /// response head into `tbuf`. A kept connection that breaks before any byte of a response
    /// (the target closed it while it was idle) is replaced by a new one once, for a request
    /// that may be sent twice.
    async fn exchange(
        &mut self,
        addr: SocketAddr,
        site: &Site,
        connect: Duration,
        head: &RequestHead,
    ) -> Result<(TcpStream, ResponseHead), Exchange> {
        let mut kept = site.pool.take(addr);
        loop {
            let reused = kept.is_some();
            let mut stream = match kept.take() {
                Some(stream) => stream,
                None => match tokio::time::timeout(connect, TcpStream::connect(addr)).await {
                    Ok(Ok(stream)) => {
                        let _ = stream.set_nodelay(true);
                        stream
                    }
                    _ => return Err(Exchange::Connect),
                },
            };
            self.tbuf.clear();
            let sent = match stream.write_all(&self.out).await {
                Ok(()) => read_response_head(&mut stream, &mut self.tbuf, head.method()).await,
                Err(e) => Err(e),
            };
            match sent {
                Ok(resp) => return Ok((stream, resp)),
                Err(_) if reused && self.tbuf.is_empty() && head.idempotent() => continue,
                Err(_) => return Err(Exchange::Failed),
            }
        }
    }

    /// Passes a target's response on: the head rewritten, the body as it comes, until its
    /// framing says it ended. The target connection is kept for reuse when it allows.
    async fn relay(
        &mut self,
        mut stream: TcpStream,
        resp: ResponseHead,
        from: Origin<'_>,
        keep_alive: bool,
        site: &Site,
    ) -> Next {
        let Origin {
            addr,
            tg,
            in_flight,
            started,
        } = from;
        site.counts.record(resp.status);
        let keep_alive = keep_alive && resp.framing != Framing::Close;
        let mut cookie = Vec::new();
        if let Some(s) = &tg.stickiness {
            let mut set = resp.set_cookies(&self.tbuf);
            let had = set.len();
            sticky::set_cookie(&mut set, s, &tg.name, addr);
            for v in set.get_all(hyper::header::SET_COOKIE).iter().skip(had) {
                cookie.extend_from_slice(b"set-cookie: ");
                cookie.extend_from_slice(v.as_bytes());
                cookie.extend_from_slice(b"\r\n");
            }
        }
        self.out.clear();
        resp.write_client(&self.tbuf, &mut self.out, &cookie, !keep_alive);
        let mut body = BodyEnd::new(resp.framing);
        let first = body.take(&self.tbuf[resp.len..]);
        let Ok((taken, mut surplus)) = first else {
            in_flight.finish(Outcome::Failed {
                elapsed: started.elapsed(),
            });
            return Next::Close;
        };
        self.out
            .extend_from_slice(&self.tbuf[resp.len..resp.len + taken]);
        if self.io.write_all(&self.out).await.is_err() {
            return Next::Close;
        }
        while !body.done() {
            self.tbuf.clear();
            self.tbuf.reserve(16 * 1024);
            let read = tokio::select! {
                biased;
                r = stream.read_buf(&mut self.tbuf) => Some(r),
                () = in_flight.cancelled() => None,
            };
            let taken = match read {
                Some(Ok(0)) if body.framing == Framing::Close => break,
                Some(Ok(_)) => body.take(&self.tbuf),
                _ => Err(chunks::Invalid),
            };
            let Ok((taken, more)) = taken else {
                // Broken, cut short, or the target finished draining: the client sees the
                // connection close before the body's end.
                in_flight.finish(Outcome::Failed {
                    elapsed: started.elapsed(),
                });
                return Next::Close;
            };
            surplus = more;
            if self.io.write_all(&self.tbuf[..taken]).await.is_err() {
                return Next::Close;
            }
        }
        in_flight.finish(Outcome::Response {
            status: resp.status,
            elapsed: started.elapsed(),
        });
        if resp.keep_alive && !surplus {
            site.pool.give(addr, stream);
        }
        if keep_alive {
            Next::KeepAlive
        } else {
            Next::Close
        }
    }
}

/// Whether anything a request of `listener` meets reads its headers: a rule's header
/// condition, a target group's stickiness or hash key.
fn uses_headers(listener: &Listener, groups: &Groups) -> bool {
    listener
        .rules
        .iter()
        .any(|r| !r.conditions.headers.is_empty())
        || groups
            .config()
            .target_groups
            .iter()
            .any(|tg| tg.stickiness.is_some() || tg.hash_key.is_some())
}

/// Where a request goes: a target group of a listener.
struct Destination<'a> {
    groups: &'a Groups,
    group: usize,
    listener: &'a Listener,
    site: &'a Site,
}

/// Where a response comes from, and the request's in-flight guard.
struct Origin<'a> {
    addr: SocketAddr,
    tg: &'a TargetGroup,
    in_flight: InFlight,
    started: Instant,
}

/// Follows a response body to its end by its framing.
struct BodyEnd {
    framing: Framing,
    left: u64,
    chunks: Chunks,
    done: bool,
}

impl BodyEnd {
    fn new(framing: Framing) -> BodyEnd {
        BodyEnd {
            framing,
            left: match framing {
                Framing::Length(n) => n,
                _ => 0,
            },
            chunks: Chunks::default(),
            done: matches!(framing, Framing::Empty | Framing::Length(0)),
        }
    }

    fn done(&self) -> bool {
        self.done
    }

    /// How many bytes of `input` belong to the body, and whether bytes are left over after
    /// its end (the target sent more than the response).
    fn take(&mut self, input: &[u8]) -> Result<(usize, bool), chunks::Invalid> {
        let taken = match self.framing {
            _ if self.done => 0,
            Framing::Empty => 0,
            Framing::Close => input.len(),
            Framing::Length(_) => {
                let n = self.left.min(input.len() as u64);
                self.left -= n;
                self.done = self.left == 0;
                n as usize
            }
            Framing::Chunked => match self.chunks.feed(input)? {
                Some(end) => {
                    self.done = true;
                    end
                }
                None => input.len(),
            },
        };
        Ok((taken, taken < input.len()))
    }
}

/// Reads a final response head (1xx interim responses are dropped, as hyper's client does)
/// into `buf`.
async fn read_response_head(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    method: &str,
) -> io::Result<ResponseHead> {
    let invalid = || io::Error::new(io::ErrorKind::InvalidData, "invalid response head");
    loop {
        if !buf.is_empty() {
            match head::parse_response(buf, method) {
                Ok(Some(h)) if h.status == 101 => return Err(invalid()),
                Ok(Some(h)) if h.status < 200 => {
                    buf.drain(..h.len);
                    continue;
                }
                Ok(Some(h)) => return Ok(h),
                Ok(None) if buf.len() < MAX_RESPONSE_HEAD => {}
                _ => return Err(invalid()),
            }
        }
        buf.reserve(8192);
        if stream.read_buf(buf).await? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_ends_where_its_framing_says() {
        let mut b = BodyEnd::new(Framing::Length(5));
        assert_eq!(b.take(b"hel"), Ok((3, false)));
        assert!(!b.done());
        assert_eq!(b.take(b"loHTTP"), Ok((2, true)));
        assert!(b.done());
        let mut b = BodyEnd::new(Framing::Chunked);
        assert_eq!(b.take(b"2\r\nhi\r\n0\r\n\r\n"), Ok((12, false)));
        assert!(b.done());
        assert!(BodyEnd::new(Framing::Empty).done());
        assert!(BodyEnd::new(Framing::Length(0)).done());
        let mut b = BodyEnd::new(Framing::Close);
        assert_eq!(b.take(b"anything"), Ok((8, false)));
        assert!(!b.done());
        assert_eq!(
            BodyEnd::new(Framing::Chunked).take(b"zz\r\n"),
            Err(chunks::Invalid)
        );
    }
}
