//! The HTTP/1.1 proxy: one accept loop per listener. Each request is routed by the listener's
//! rules (see [`super::rules`]) to a fixed response, a redirect or a forward to a target
//! group, where a target is picked by the group's algorithm and the request sent with
//! X-Forwarded-For/-Proto/-Port added. A target that cannot be connected to is skipped and
//! the next one tried (the request has not reached it), and so is one that resets an
//! idempotent request; no ready target gives 503, a failed target 502, a slow one 504.
//!
//! Client limits: a header not complete within `header_timeout` closes the connection
//! (slowloris), a header block over `max_header_bytes` gets 431, a request target over
//! `max_uri_bytes` 414, a body not complete within `body_timeout` 408, and a connection over
//! `max_connections` a 503 before it is closed. A request whose body is framed two ways
//! (request smuggling) is answered 400 before it is routed (see `balancer::framing`).

use super::conns::Admitted;
use super::framing::{Inspected, Scanner, Verdict};
use super::idle::IdleIo;
use super::refusal::Refusals;
use super::rules::{Action, FixedResponse, RequestView, route};
use super::sticky;
use super::tracked::Tracked;
use super::{Groups, Outcome, Pick};
use crate::config::{Listener, Protocol};
use crate::health::HealthTable;
use crate::shutdown::Closing;
use arc_swap::ArcSwap;
use bytes::Bytes;
use http_body_util::{BodyExt, Either, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{HOST, HeaderValue, LOCATION};
use hyper::{Request, Response, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Largest request body forwarded (bodies are buffered so a request can be retried).
pub const MAX_BODY: usize = 8 * 1024 * 1024;
/// Targets tried per request when connecting fails.
pub const MAX_ATTEMPTS: usize = 3;

pub(super) type Body = Either<Tracked, Full<Bytes>>;
type HttpClient = Client<HttpConnector, Full<Bytes>>;

/// What every listener shares.
pub struct BalancerState {
    /// Target groups and listeners (swapped on reload).
    pub groups: ArcSwap<Groups>,
    /// Target health (written by the health checker).
    pub health: Arc<ArcSwap<HealthTable>>,
    /// Turns for splitting a forward over several target groups.
    turns: AtomicU64,
    /// Handshake round-trip times of client connections (for latency steering).
    pub rtt: Arc<super::rtt::RttBook>,
    /// Open and refused client connections by listener.
    pub connections: super::conns::Book,
}

impl BalancerState {
    /// New state.
    pub fn new(groups: Groups, health: Arc<ArcSwap<HealthTable>>) -> BalancerState {
        BalancerState {
            groups: ArcSwap::from_pointee(groups),
            health,
            turns: AtomicU64::new(0),
            rtt: Arc::default(),
            connections: super::conns::Book::default(),
        }
    }

    /// The connection counts of listener `name`.
    pub fn connections(&self, name: &str) -> Arc<super::conns::Connections> {
        self.connections.get(name)
    }
}

/// One listener's fixed facts, shared by its connections.
pub(super) struct Site {
    pub(super) name: Arc<str>,
    pub(super) port: u16,
    pub(super) protocol: Protocol,
    /// Target connections of the general path.
    client: HttpClient,
    /// Idle target connections of the direct path.
    pub(super) pool: super::h1::Pool,
    /// The X-Forwarded-Proto and -Port lines the direct path adds.
    pub(super) forwarded: Vec<u8>,
    /// The listener's counts (connections and responses).
    pub(super) counts: Arc<super::conns::Connections>,
    pub(super) limits: Limits,
}

/// Accepts HTTP connections for `listener` until `stop` or closing begins (the accept loop
/// only: connections already open run on until they close, finish their request in flight
/// once closing has begun, or `shutdown`).
pub async fn run_listener(
    tcp: TcpListener,
    listener: Listener,
    tls: Option<Arc<rustls::ServerConfig>>,
    state: Arc<BalancerState>,
    stop: CancellationToken,
    closing: Closing,
    shutdown: CancellationToken,
) {
    let port = tcp.local_addr().map(|a| a.port()).unwrap_or(0);
    let mut connector = HttpConnector::new();
    connector.set_connect_timeout(Some(listener.timeouts.connect));
    connector.set_nodelay(true);
    let client = Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(50))
        .build(connector);
    let site = Arc::new(Site {
        name: listener.name.as_str().into(),
        port,
        protocol: listener.protocol,
        client,
        pool: super::h1::Pool::default(),
        forwarded: super::h1::forwarded(listener.protocol.as_str(), port),
        counts: state.connections(&listener.name),
        limits: Limits {
            header: listener.timeouts.header,
            body: listener.timeouts.body,
            max_header_bytes: listener.max_header_bytes,
            max_uri_bytes: listener.max_uri_bytes,
        },
    });
    let conns = site.counts.clone();
    let refusals = Refusals::new(tls.as_ref());
    let tls = tls.map(super::tls::acceptor);
    loop {
        let (stream, peer) = tokio::select! {
            r = tcp.accept() => match r { Ok(v) => v, Err(_) => continue },
            () = stop.cancelled() => return,
            () = closing.closed() => return,
        };
        let Some(admitted) = conns.admit(listener.max_connections) else {
            tracing::debug!(listener = %listener.name, client = %peer, "max_connections reached: 503");
            refusals.refuse(stream);
            continue;
        };
        state.rtt.sample(&stream, peer.ip());
        let _ = stream.set_nodelay(true);
        let io = IdleIo::new(stream, listener.timeouts.idle);
        let limits = site.limits;
        let (site, state) = (site.clone(), state.clone());
        let stages = Stages {
            closing: closing.clone(),
            shutdown: shutdown.clone(),
            _admitted: admitted,
        };
        let Some(tls) = tls.clone() else {
            closing.spawn(super::h1::serve(io, peer, site, state, stages));
            continue;
        };
        closing.spawn(async move {
            // The handshake counts as part of the request header: it gets the header timeout.
            match tokio::time::timeout(limits.header, tls.accept(io)).await {
                Ok(Ok(stream)) => {
                    // ALPN decides: h2 if the client offered it, else HTTP/1.1.
                    let proto = match stream.get_ref().1.alpn_protocol() {
                        Some(b"h2") => Proto::Http2,
                        _ => Proto::Http1,
                    };
                    serve(stream, peer, site, state, proto, stages).await
                }
                Ok(Err(e)) => tracing::debug!(client = %peer, "TLS handshake failed: {e}"),
                Err(_) => tracing::debug!(client = %peer, "TLS handshake timed out"),
            }
        });
    }
}

/// The HTTP version a client connection speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Proto {
    Http1,
    Http2,
}

/// Per-connection limits of a listener.
#[derive(Debug, Clone, Copy)]
pub(super) struct Limits {
    pub(super) header: Duration,
    pub(super) body: Duration,
    pub(super) max_header_bytes: usize,
    pub(super) max_uri_bytes: usize,
}

/// How a connection ends: gracefully once closing begins, at once at `shutdown`; its place
/// under `max_connections` is given back when it ends.
pub(super) struct Stages {
    pub(super) closing: Closing,
    pub(super) shutdown: CancellationToken,
    _admitted: Admitted,
}

/// Serves one client connection through hyper (the general path).
pub(super) fn serve<I>(
    io: I,
    peer: SocketAddr,
    site: Arc<Site>,
    state: Arc<BalancerState>,
    proto: Proto,
    stages: Stages,
) -> impl Future<Output = ()> + Send + 'static
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let limits = site.limits;
    let http2 = proto == Proto::Http2;
    let mut h1 = hyper::server::conn::http1::Builder::new();
    h1.timer(TokioTimer::new())
        .header_read_timeout(limits.header)
        .max_header_size(limits.max_header_bytes);
    let mut h2 = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
    h2.timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX));
    // HTTP/1 requests pass the smuggling inspection (HTTP/2 frames every body itself).
    let service = move |scanner: Option<Arc<Mutex<Scanner>>>| {
        hyper::service::service_fn(move |req| {
            let (state, site) = (state.clone(), site.clone());
            // Asked as hyper hands over the request: the inspection has seen its head.
            let verdict = scanner.as_ref().map_or(Verdict::Clean, |s| {
                s.lock().expect("scanner lock").next_request()
            });
            async move {
                let mut resp = handle(req, peer, verdict, &site, &state).await;
                if verdict == Verdict::Unknown {
                    resp.headers_mut()
                        .insert(hyper::header::CONNECTION, HeaderValue::from_static("close"));
                }
                site.counts.record(resp.status().as_u16());
                Ok::<_, std::convert::Infallible>(resp)
            }
        })
    };
    async move {
        let Stages {
            closing, shutdown, ..
        } = &stages;
        // At closing the connection finishes the request in flight, then closes.
        macro_rules! drive {
            ($conn:expr) => {{
                let conn = $conn;
                tokio::pin!(conn);
                tokio::select! {
                    _ = conn.as_mut() => return,
                    () = closing.closed() => conn.as_mut().graceful_shutdown(),
                    () = shutdown.cancelled() => return,
                }
                tokio::select! {
                    _ = conn => {},
                    () = shutdown.cancelled() => {},
                }
            }};
        }
        if http2 {
            drive!(h2.serve_connection(TokioIo::new(io), service(None)))
        } else {
            let (io, scanner) = Inspected::new(io, limits.max_header_bytes);
            drive!(h1.serve_connection(TokioIo::new(io), service(Some(scanner))))
        }
    }
}

async fn handle(
    req: Request<Incoming>,
    peer: SocketAddr,
    verdict: Verdict,
    site: &Site,
    state: &BalancerState,
) -> Response<Body> {
    if let Some(refused) = refuse(&req, verdict, site.limits) {
        return refused;
    }
    let groups = state.groups.load_full();
    let Some(listener) = groups.config().listener(&site.name) else {
        return plain(StatusCode::SERVICE_UNAVAILABLE, "listener is gone\n");
    };
    let host = host_of(&req);
    let view = RequestView {
        host: &host,
        path: req.uri().path(),
        query: req.uri().query().unwrap_or(""),
        method: req.method().as_str(),
        headers: req.headers(),
        source: peer.ip(),
    };
    match decide(&view, site, state, &groups, listener) {
        Decision::Answer(resp) => resp,
        Decision::Forward(group) => forward(req, peer, site, state, &groups, group, listener).await,
    }
}

/// What a request gets: an answer from the balancer itself, or a forward to a target group.
pub(super) enum Decision {
    Answer(Response<Body>),
    Forward(usize),
}

/// Routes a request by its listener's rules (both paths).
pub(super) fn decide(
    view: &RequestView<'_>,
    site: &Site,
    state: &BalancerState,
    groups: &Groups,
    listener: &Listener,
) -> Decision {
    if listener.health_path.as_deref() == Some(view.path) {
        return Decision::Answer(health(listener, groups, &state.health.load()));
    }
    match route(&listener.rules, &listener.default_action, view) {
        Action::Fixed(f) => Decision::Answer(fixed(f)),
        Action::Redirect(r) => {
            let location = r.location(site.protocol.as_str(), site.port, view);
            let mut resp = plain(
                StatusCode::from_u16(r.status).unwrap_or(StatusCode::FOUND),
                "",
            );
            if let Ok(v) = HeaderValue::from_str(&location) {
                resp.headers_mut().insert(LOCATION, v);
            }
            Decision::Answer(resp)
        }
        Action::Forward(split) => {
            let turn = state.turns.fetch_add(1, Ordering::Relaxed);
            // Group-level stickiness: a client with a cookie for one of the groups stays there.
            let health = state.health.load();
            Decision::Forward(
                sticky_group(split, groups, view.headers, &health)
                    .unwrap_or_else(|| weighted_choice(split, turn)),
            )
        }
    }
}

/// The targets one request tries in turn: its sticky target while that is available, then
/// the group's algorithm, none twice, at most [`MAX_ATTEMPTS`].
pub(super) struct Attempts<'a> {
    groups: &'a Groups,
    group: usize,
    client: std::net::IpAddr,
    key: Option<&'a str>,
    sticky: Option<usize>,
    tried: [usize; MAX_ATTEMPTS],
    count: usize,
}

impl<'a> Attempts<'a> {
    /// The attempts of a request with `headers` from `client` to target group `group`.
    pub(super) fn new(
        groups: &'a Groups,
        group: usize,
        headers: &'a hyper::HeaderMap,
        client: std::net::IpAddr,
        health: &HealthTable,
    ) -> Attempts<'a> {
        let tg = &groups.config().target_groups[group];
        Attempts {
            groups,
            group,
            client,
            key: tg
                .hash_key
                .as_ref()
                .and_then(|k| super::hash_value(k, headers)),
            sticky: tg
                .stickiness
                .as_ref()
                .and_then(|_| sticky::sticky_target(headers, &tg.name, &tg.targets))
                .filter(|&t| groups.available(group, t, health)),
            tried: [0; MAX_ATTEMPTS],
            count: 0,
        }
    }

    /// The next target to try, if any is left.
    pub(super) fn next(&mut self, health: &HealthTable) -> Option<usize> {
        if self.count == MAX_ATTEMPTS {
            return None;
        }
        let pick = Pick {
            client: self.client,
            key: self.key,
            tried: &self.tried[..self.count],
        };
        let target = self
            .sticky
            .take()
            .or_else(|| self.groups.pick(self.group, health, &pick))?;
        self.tried[self.count] = target;
        self.count += 1;
        Some(target)
    }

    /// The answer once no target is left: 503 when none was tried, else 502.
    pub(super) fn exhausted(&self) -> Response<Body> {
        if self.count == 0 {
            plain(StatusCode::SERVICE_UNAVAILABLE, "no healthy target\n")
        } else {
            plain(StatusCode::BAD_GATEWAY, "no target could be reached\n")
        }
    }
}

/// A request the balancer does not pass on: one framed two ways (400, see
/// [`super::framing`]) or whose target is too long (414). The connection is closed after the
/// answer. Bodies that are passed on are buffered and sent with a length of our own, so a
/// target never sees the client's framing.
fn refuse<B>(req: &Request<B>, verdict: Verdict, limits: Limits) -> Option<Response<Body>> {
    let uri_len = req.uri().path_and_query().map_or(0, |p| p.as_str().len());
    let (status, text) = match verdict {
        Verdict::Refuse(why) => (StatusCode::BAD_REQUEST, why.reason()),
        _ if uri_len > limits.max_uri_bytes => {
            (StatusCode::URI_TOO_LONG, "request target too long\n")
        }
        _ => return None,
    };
    let mut r = plain(status, text);
    r.headers_mut()
        .insert(hyper::header::CONNECTION, HeaderValue::from_static("close"));
    Some(r)
}

/// The group of `split` whose sticky cookie the request carries, for an available target.
fn sticky_group(
    split: &[(usize, u32)],
    groups: &Groups,
    headers: &hyper::HeaderMap,
    health: &HealthTable,
) -> Option<usize> {
    if split.len() < 2 {
        return None;
    }
    split.iter().map(|(g, _)| *g).find(|&g| {
        let tg = &groups.config().target_groups[g];
        tg.stickiness.is_some()
            && sticky::sticky_target(headers, &tg.name, &tg.targets)
                .is_some_and(|t| groups.available(g, t, health))
    })
}

/// The `turn`-th pick of a weighted list, spread evenly over the cycle of total weight.
pub(super) fn weighted_choice(split: &[(usize, u32)], turn: u64) -> usize {
    if split.len() == 1 {
        return split[0].0;
    }
    let total: u64 = split.iter().map(|(_, w)| u64::from(*w)).sum();
    let mut at = crate::pool::select::mix(turn) % total.max(1);
    for &(group, w) in split {
        if at < u64::from(w) {
            return group;
        }
        at -= u64::from(w);
    }
    split[0].0
}

async fn forward(
    req: Request<Incoming>,
    peer: SocketAddr,
    site: &Site,
    state: &BalancerState,
    groups: &Groups,
    group: usize,
    listener: &Listener,
) -> Response<Body> {
    let (mut parts, body) = req.into_parts();
    let body = if hyper::body::Body::is_end_stream(&body) {
        Bytes::new()
    } else {
        // A body trickled in must not hold the connection (and a buffer) for ever.
        let collect = Limited::new(body, MAX_BODY).collect();
        let body = match tokio::time::timeout(site.limits.body, collect).await {
            Ok(Ok(b)) => b.to_bytes(),
            Ok(Err(_)) => {
                return plain(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "request body too large or broken\n",
                );
            }
            Err(_) => {
                let mut r = plain(StatusCode::REQUEST_TIMEOUT, "request body too slow\n");
                r.headers_mut()
                    .insert(hyper::header::CONNECTION, HeaderValue::from_static("close"));
                return r;
            }
        };
        // Whole now: the target gets it with a length of ours, whatever the client's framing.
        parts.headers.remove(hyper::header::TRANSFER_ENCODING);
        parts
            .headers
            .insert(hyper::header::CONTENT_LENGTH, HeaderValue::from(body.len()));
        body
    };
    let authority = parts.uri.authority().cloned();
    forwarded_headers(&mut parts.headers, authority.as_ref(), peer, site);
    let tg = &groups.config().target_groups[group];
    let mut attempts = Attempts::new(
        groups,
        group,
        &parts.headers,
        peer.ip(),
        &state.health.load(),
    );
    while let Some(target) = attempts.next(&state.health.load()) {
        let addr = tg.targets[target];
        let mut up = Request::from_parts(parts.clone(), Full::new(body.clone()));
        *up.uri_mut() = upstream_uri(addr, &parts.uri);
        // Targets speak HTTP/1.1 whatever the client spoke.
        *up.version_mut() = hyper::Version::HTTP_11;
        let in_flight = groups.begin(group, target);
        let started = Instant::now();
        let sent = tokio::select! {
            r = tokio::time::timeout(listener.timeouts.target, site.client.request(up)) => r,
            () = in_flight.cancelled() => {
                in_flight.finish(Outcome::Failed { elapsed: started.elapsed() });
                return plain(StatusCode::SERVICE_UNAVAILABLE, "target deregistered\n");
            }
        };
        match sent {
            Ok(Ok(resp)) => {
                let status = resp.status().as_u16();
                let mut resp =
                    resp.map(|b| Either::Left(Tracked::new(b, in_flight, status, started)));
                if let Some(s) = &tg.stickiness {
                    sticky::set_cookie(resp.headers_mut(), s, &tg.name, addr);
                }
                return resp;
            }
            Err(_) => {
                in_flight.finish(Outcome::Failed {
                    elapsed: started.elapsed(),
                });
                tracing::warn!(%addr, "target did not answer within the target timeout");
                return plain(StatusCode::GATEWAY_TIMEOUT, "target timed out\n");
            }
            // The request never reached this target, or repeating it is harmless (an
            // idempotent method on a connection the target reset): another target may take it.
            Ok(Err(e)) if e.is_connect() || parts.method.is_idempotent() => {
                in_flight.finish(if e.is_connect() {
                    Outcome::ConnectFailed
                } else {
                    Outcome::Failed {
                        elapsed: started.elapsed(),
                    }
                });
                tracing::debug!(%addr, "target unreachable, trying another: {e}");
            }
            Ok(Err(e)) => {
                in_flight.finish(Outcome::Failed {
                    elapsed: started.elapsed(),
                });
                tracing::warn!(%addr, "target failed: {e}");
                return plain(StatusCode::BAD_GATEWAY, "target failed\n");
            }
        }
    }
    attempts.exhausted()
}

/// `GET <health_path>`: 200 while a target group of the default action has a ready target.
fn health(listener: &Listener, groups: &Groups, health: &HealthTable) -> Response<Body> {
    let ready = listener.default_groups().into_iter().any(|g| {
        let targets = groups.config().target_groups[g].targets.len();
        (0..targets).any(|t| groups.available(g, t, health))
    });
    if ready {
        plain(StatusCode::OK, "ready\n")
    } else {
        plain(StatusCode::SERVICE_UNAVAILABLE, "no ready target\n")
    }
}

fn fixed(f: &FixedResponse) -> Response<Body> {
    let mut r = Response::new(Either::Right(Full::new(Bytes::from(f.body.clone()))));
    *r.status_mut() = StatusCode::from_u16(f.status).unwrap_or(StatusCode::OK);
    if let Ok(v) = HeaderValue::from_str(&f.content_type) {
        r.headers_mut().insert("content-type", v);
    }
    r
}

/// The Host header (or the request target's authority) without its port, lowercased.
fn host_of<B>(req: &Request<B>) -> String {
    let raw = req
        .headers()
        .get(HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| req.uri().authority().map(|a| a.as_str()))
        .unwrap_or("");
    host_name(raw)
}

/// A Host value without its port, lowercased.
pub(super) fn host_name(raw: &str) -> String {
    let host = match raw.strip_prefix('[') {
        // An IPv6 literal keeps its brackets.
        Some(rest) => rest.find(']').map(|i| &raw[..i + 2]).unwrap_or(raw),
        None => raw.split(':').next().unwrap_or(raw),
    };
    host.to_ascii_lowercase()
}

/// X-Forwarded-For (appended to what the client sent), -Proto and -Port, as ALB adds them.
fn forwarded_headers(
    headers: &mut hyper::HeaderMap,
    authority: Option<&hyper::http::uri::Authority>,
    peer: SocketAddr,
    site: &Site,
) {
    let ip = peer.ip().to_string();
    let xff = match headers.get("x-forwarded-for").and_then(|v| v.to_str().ok()) {
        Some(prev) => format!("{prev}, {ip}"),
        None => ip,
    };
    if let Ok(v) = HeaderValue::from_str(&xff) {
        headers.insert("x-forwarded-for", v);
    }
    headers.insert(
        "x-forwarded-proto",
        HeaderValue::from_static(site.protocol.as_str()),
    );
    headers.insert("x-forwarded-port", HeaderValue::from(site.port));
    if !headers.contains_key(HOST) {
        // HTTP/2 carries the host in the :authority pseudo-header.
        let host = authority
            .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
            .unwrap_or(HeaderValue::from_static("localhost"));
        headers.insert(HOST, host);
    }
}

fn upstream_uri(addr: SocketAddr, uri: &hyper::Uri) -> hyper::Uri {
    let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    format!("http://{addr}{path}")
        .parse()
        .unwrap_or_else(|_| hyper::Uri::from_static("/"))
}

pub(super) fn plain(status: StatusCode, text: &'static str) -> Response<Body> {
    let mut r = Response::new(Either::Right(Full::new(Bytes::from_static(
        text.as_bytes(),
    ))));
    *r.status_mut() = status;
    r.headers_mut()
        .insert("content-type", HeaderValue::from_static("text/plain"));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weighted_choice_follows_weights() {
        let split = [(0, 9), (1, 1)];
        let n = 10_000;
        let ones = (0..n).filter(|&t| weighted_choice(&split, t) == 1).count();
        assert!((800..1200).contains(&ones), "{ones} of {n}");
        assert_eq!(weighted_choice(&[(4, 0), (7, 1)], 3), 7);
    }

    #[test]
    fn host_without_port() {
        let req = |h: &str| Request::builder().header(HOST, h).body(()).unwrap();
        assert_eq!(host_of(&req("Example.COM:8080")), "example.com");
        assert_eq!(host_of(&req("example.com")), "example.com");
        assert_eq!(host_of(&req("[::1]:80")), "[::1]");
        assert_eq!(host_of(&req("[::1]")), "[::1]");
    }
}
