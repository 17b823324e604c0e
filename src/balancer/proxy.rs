//! The HTTP/1.1 proxy: one accept loop per listener; each request goes to a target picked by
//! the listener's target group, with X-Forwarded-For/-Proto/-Port added. A target that cannot
//! be connected to is skipped and the next one tried (the request has not reached it), and so
//! is one that resets an idempotent request; no ready target gives 503, a failed target 502.

use super::Groups;
use crate::health::HealthTable;
use arc_swap::ArcSwap;
use bytes::Bytes;
use http_body_util::{BodyExt, Either, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{HOST, HeaderValue};
use hyper::{Request, Response, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Largest request body forwarded (bodies are buffered so a request can be retried).
pub const MAX_BODY: usize = 8 * 1024 * 1024;
/// Targets tried per request when connecting fails.
pub const MAX_ATTEMPTS: usize = 3;

type Body = Either<Incoming, Full<Bytes>>;

/// What every listener shares.
pub struct BalancerState {
    /// Target groups (swapped on reload).
    pub groups: ArcSwap<Groups>,
    /// Target health (written by the health checker).
    pub health: Arc<ArcSwap<HealthTable>>,
    /// Handshake round-trip times of client connections (for latency steering).
    pub rtt: Arc<super::rtt::RttBook>,
    client: Client<HttpConnector, Full<Bytes>>,
}

impl BalancerState {
    /// New state.
    pub fn new(groups: Groups, health: Arc<ArcSwap<HealthTable>>) -> BalancerState {
        let client = Client::builder(TokioExecutor::new()).build_http();
        BalancerState {
            groups: ArcSwap::from_pointee(groups),
            health,
            rtt: Arc::default(),
            client,
        }
    }
}

/// Accepts connections for listener `name` until `shutdown`.
pub async fn run_listener(
    listener: TcpListener,
    name: String,
    state: Arc<BalancerState>,
    shutdown: CancellationToken,
) {
    let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
    let name: Arc<str> = name.into();
    loop {
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r { Ok(v) => v, Err(_) => continue },
            () = shutdown.cancelled() => return,
        };
        state.rtt.sample(&stream, peer.ip());
        let (state, name, stop) = (state.clone(), name.clone(), shutdown.clone());
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let (state, name) = (state.clone(), name.clone());
                async move {
                    Ok::<_, std::convert::Infallible>(handle(req, peer, port, &name, &state).await)
                }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service);
            tokio::select! {
                _ = conn => {},
                () = stop.cancelled() => {},
            }
        });
    }
}

async fn handle(
    req: Request<Incoming>,
    peer: SocketAddr,
    port: u16,
    listener: &str,
    state: &BalancerState,
) -> Response<Body> {
    let groups = state.groups.load_full();
    let Some(group) = groups.group_of(listener) else {
        return plain(
            StatusCode::SERVICE_UNAVAILABLE,
            "listener has no target group\n",
        );
    };
    let (mut parts, body) = req.into_parts();
    let body = match Limited::new(body, MAX_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => {
            return plain(
                StatusCode::PAYLOAD_TOO_LARGE,
                "request body too large or broken\n",
            );
        }
    };
    forwarded_headers(&mut parts.headers, peer, port);
    let mut tried = Vec::new();
    while tried.len() < MAX_ATTEMPTS {
        let health = state.health.load();
        let Some(target) = groups.pick(group, &health, &tried, peer.ip()) else {
            break;
        };
        tried.push(target);
        let addr = groups.config().target_groups[group].targets[target];
        let mut up = Request::from_parts(parts.clone(), Full::new(body.clone()));
        *up.uri_mut() = upstream_uri(addr, &parts.uri);
        let _in_flight = groups.begin(group, target);
        match state.client.request(up).await {
            Ok(resp) => return resp.map(Either::Left),
            // The request never reached this target, or repeating it is harmless (an
            // idempotent method on a connection the target reset): another target may take it.
            Err(e) if e.is_connect() || parts.method.is_idempotent() => {
                tracing::debug!(%addr, "target unreachable, trying another: {e}");
            }
            Err(e) => {
                tracing::warn!(%addr, "target failed: {e}");
                return plain(StatusCode::BAD_GATEWAY, "target failed\n");
            }
        }
    }
    if tried.is_empty() {
        plain(StatusCode::SERVICE_UNAVAILABLE, "no healthy target\n")
    } else {
        plain(StatusCode::BAD_GATEWAY, "no target could be reached\n")
    }
}

/// X-Forwarded-For (appended to what the client sent), -Proto and -Port, as ALB adds them.
fn forwarded_headers(headers: &mut hyper::HeaderMap, peer: SocketAddr, port: u16) {
    let ip = peer.ip().to_string();
    let xff = match headers.get("x-forwarded-for").and_then(|v| v.to_str().ok()) {
        Some(prev) => format!("{prev}, {ip}"),
        None => ip,
    };
    if let Ok(v) = HeaderValue::from_str(&xff) {
        headers.insert("x-forwarded-for", v);
    }
    headers.insert("x-forwarded-proto", HeaderValue::from_static("http"));
    headers.insert("x-forwarded-port", HeaderValue::from(port));
    if !headers.contains_key(HOST) {
        headers.insert(HOST, HeaderValue::from_static("localhost"));
    }
}

fn upstream_uri(addr: SocketAddr, uri: &hyper::Uri) -> hyper::Uri {
    let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    format!("http://{addr}{path}")
        .parse()
        .unwrap_or_else(|_| hyper::Uri::from_static("/"))
}

fn plain(status: StatusCode, text: &'static str) -> Response<Body> {
    let mut r = Response::new(Either::Right(Full::new(Bytes::from_static(
        text.as_bytes(),
    ))));
    *r.status_mut() = status;
    r.headers_mut()
        .insert("content-type", HeaderValue::from_static("text/plain"));
    r
}
