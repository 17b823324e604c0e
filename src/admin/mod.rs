//! The admin HTTP server (`[admin] listen`): a small router on hyper's HTTP/1.1 server
//! (the route table is [`Route::of`]).
//!
//! | route | what | access |
//! |---|---|---|
//! | `GET /` | live dashboard ([`dashboard`]); the page is public, its data a read | read |
//! | `GET /metrics` | Prometheus text ([`metrics`]) | read |
//! | `GET /v1/status` | the whole picture as JSON ([`status`]) | read |
//! | `POST /v1/latency` | a balancer's measured client round-trip times ([`latency`]) | token |
//! | `POST /v1/reload` | reload the configuration | action |
//! | `POST /v1/endpoints/{pool}/{address}/{action}` | override a pool endpoint ([`overrides`]) | action |
//! | `POST /v1/targets/{group}/{address}/{action}` | override a target | action |
//! | `GET /v1/scaling-groups` | scaling groups, instances, activities ([`scaler`]) | read |
//! | `POST /v1/scaling-groups/NAME/desired`, `.../capacity`, `.../instance-refresh` | manual scaling, size limits, rolling replacement ([`scaler`]) | action |
//!
//! Reads are public unless `admin.public_reads = false`; then, like actions, they need
//! `Authorization: Bearer TOKEN`. Without `admin.token` actions answer 403.
//!
//! The report endpoint is the only writer of the measured latency snapshot
//! (`DnsState::measured`): it merges each accepted report into a new table and stores it.

pub mod cli;
pub mod control;
pub mod dashboard;
pub mod latency;
pub mod metrics;
pub mod overrides;
pub mod scaler;
pub mod status;

use crate::balancer::proxy::BalancerState;
use crate::config::AdminConfig;
use crate::dns::server::DnsState;
use crate::scaler::ScalerHandle;
use crate::steering::measured::Measurement;
use arc_swap::ArcSwap;
use bytes::Bytes;
use control::Runtime;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue, WWW_AUTHENTICATE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use latency::Rejection;
use overrides::Action;
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

/// Connections served at once; further ones wait in the kernel's backlog.
pub const MAX_CONNECTIONS: usize = 64;
/// Time a client has to send a request's headers, and then its body.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// One route of the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `GET /`
    Dashboard,
    /// `GET /metrics`
    Metrics,
    /// `GET /v1/status`
    Status,
    /// `POST /v1/latency`
    Latency,
    /// `POST /v1/reload`
    Reload,
    /// `POST /v1/endpoints/{pool}/{address}/{action}`
    Endpoint(String, String, String),
    /// `POST /v1/targets/{group}/{address}/{action}`
    Target(String, String, String),
    /// `/v1/scaling-groups...` (its own sub-routes and token check, [`scaler`]).
    Scaling,
    /// A known path with another method.
    MethodNotAllowed,
    /// Anything else.
    NotFound,
}

impl Route {
    /// The route table.
    pub fn of(method: &Method, path: &str) -> Route {
        let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let get = method == Method::GET || method == Method::HEAD;
        let post = method == Method::POST;
        let want = |ok: bool, r: Route| if ok { r } else { Route::MethodNotAllowed };
        match parts.as_slice() {
            [""] => want(get, Route::Dashboard),
            ["metrics"] => want(get, Route::Metrics),
            ["v1", "status"] => want(get, Route::Status),
            ["v1", "latency"] => want(post, Route::Latency),
            ["v1", "reload"] => want(post, Route::Reload),
            ["v1", "scaling-groups", ..] => Route::Scaling,
            ["v1", kind @ ("endpoints" | "targets"), owner, addr, action] => {
                let (o, a, x) = (owner.to_string(), addr.to_string(), action.to_string());
                let r = if *kind == "endpoints" {
                    Route::Endpoint(o, a, x)
                } else {
                    Route::Target(o, a, x)
                };
                want(post, r)
            }
            _ => Route::NotFound,
        }
    }
}

/// What the admin server reads and writes.
pub struct Admin {
    config: ArcSwap<AdminConfig>,
    dns: Arc<DnsState>,
    balancer: Option<Arc<BalancerState>>,
    scaler: Option<Arc<ScalerHandle>>,
    runtime: Arc<Runtime>,
    /// Reports by (region, result); the region is empty when it is not known (yet).
    reports: Mutex<BTreeMap<(String, &'static str), u64>>,
    /// Held while a new measured table is built and stored: reports apply one at a time.
    writer: Mutex<()>,
}

impl Admin {
    /// An admin server for the DNS state, and the balancer's when this process has listeners.
    pub fn new(
        config: AdminConfig,
        dns: Arc<DnsState>,
        balancer: Option<Arc<BalancerState>>,
        runtime: Arc<Runtime>,
    ) -> Admin {
        Admin {
            config: ArcSwap::from_pointee(config),
            dns,
            balancer,
            scaler: None,
            runtime,
            reports: Mutex::default(),
            writer: Mutex::default(),
        }
    }

    /// Serves the scaling groups of `scaler` too.
    pub fn with_scaler(mut self, scaler: Arc<ScalerHandle>) -> Admin {
        self.scaler = Some(scaler);
        self
    }

    /// Applies a reloaded `[admin]` (token and maximum age; the address needs a restart).
    pub fn set_config(&self, config: AdminConfig) {
        self.config.store(Arc::new(config));
    }

    /// Counts a report; returns how many there were before it.
    fn count(&self, region: &str, result: &'static str) -> u64 {
        let mut reports = self.reports.lock().unwrap_or_else(|e| e.into_inner());
        let n = reports.entry((region.to_string(), result)).or_insert(0);
        *n += 1;
        *n - 1
    }

    fn region_names(&self) -> Vec<String> {
        let pools = self.dns.pools.load();
        pools
            .config()
            .regions
            .iter()
            .map(|r| r.name.clone())
            .collect()
    }

    async fn route(&self, req: Request<Incoming>, peer: SocketAddr) -> Response<Full<Bytes>> {
        let route = Route::of(req.method(), req.uri().path());
        let access = match route {
            Route::Metrics | Route::Status => Some(false),
            Route::Scaling if req.method() == Method::GET => Some(false),
            Route::Reload | Route::Endpoint(..) | Route::Target(..) => Some(true),
            _ => None,
        };
        if let Some(action) = access {
            let header = req.headers().get(AUTHORIZATION).map(HeaderValue::as_bytes);
            if let Err(resp) = self.allow(header, action) {
                tracing::warn!(%peer, path = %req.uri().path(), status = %resp.status(), "admin request refused");
                return *resp;
            }
        }
        match route {
            Route::Latency => match self.report(req).await {
                Ok(text) => text_response(StatusCode::OK, text),
                Err(r) => {
                    tracing::warn!(%peer, status = %r.status, "latency report refused: {}", r.what);
                    let mut resp = text_response(r.status, r.what + "\n");
                    if r.status == StatusCode::UNAUTHORIZED {
                        resp.headers_mut()
                            .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
                    }
                    resp
                }
            },
            Route::Metrics => {
                let mut resp = text_response(StatusCode::OK, self.metrics());
                resp.headers_mut().insert(
                    CONTENT_TYPE,
                    HeaderValue::from_static("text/plain; version=0.0.4"),
                );
                resp
            }
            Route::Scaling => self.scaling_groups(req).await,
            Route::Status => json_response(StatusCode::OK, &self.status()),
            Route::Dashboard => {
                // The page itself is public; what it shows is a read like any other.
                let header = req.headers().get(AUTHORIZATION).map(HeaderValue::as_bytes);
                let locked = self.allow(header, false).is_err();
                let status = if locked {
                    self.status().redacted()
                } else {
                    self.status()
                };
                let html = dashboard::page(&status, locked);
                let mut resp = text_response(StatusCode::OK, html);
                resp.headers_mut().insert(
                    CONTENT_TYPE,
                    HeaderValue::from_static("text/html; charset=utf-8"),
                );
                resp
            }
            Route::Reload => match self.runtime.reload().await {
                Ok(()) => {
                    tracing::info!(%peer, "configuration reloaded through the admin API");
                    json_response(
                        StatusCode::OK,
                        &serde_json::json!({"reloaded": true, "version": self.runtime.version()}),
                    )
                }
                Err(e) => json_response(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    &serde_json::json!({"reloaded": false, "error": e}),
                ),
            },
            Route::Endpoint(pool, addr, action) => {
                self.endpoint_action(&pool, &addr, &action, peer).await
            }
            Route::Target(group, addr, action) => {
                self.target_action(&group, &addr, &action, peer).await
            }
            Route::MethodNotAllowed => text_response(
                StatusCode::METHOD_NOT_ALLOWED,
                "method not allowed\n".into(),
            ),
            Route::NotFound => text_response(StatusCode::NOT_FOUND, "not found\n".into()),
        }
    }

    /// Reads pass when public; actions, and reads when not public, need the token (none
    /// configured: 403).
    fn allow(&self, header: Option<&[u8]>, action: bool) -> Result<(), Box<Response<Full<Bytes>>>> {
        let config = self.config.load();
        if !action && config.public_reads {
            return Ok(());
        }
        let Some(token) = config.token.as_deref() else {
            let what = if action {
                "actions disabled: admin.token is not set\n"
            } else {
                "reads need a token (admin.public_reads = false) and admin.token is not set\n"
            };
            return Err(Box::new(text_response(StatusCode::FORBIDDEN, what.into())));
        };
        latency::authorize(header, Some(token)).map_err(|r| {
            let mut resp = text_response(r.status, r.what + "\n");
            resp.headers_mut()
                .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            Box::new(resp)
        })
    }

    fn status(&self) -> status::Status {
        let mut s = status::status(&self.dns, self.balancer.as_deref(), &self.runtime);
        if let Some(scaler) = &self.scaler {
            s.scaling_groups = status::scaling(scaler);
        }
        s
    }

    /// `POST /v1/endpoints/{pool}/{address}/{action}`.
    async fn endpoint_action(
        &self,
        pool: &str,
        addr: &str,
        action: &str,
        peer: SocketAddr,
    ) -> Response<Full<Bytes>> {
        let (action, ip) = match parse_override::<IpAddr>(action, addr, "an IP address") {
            Ok(v) => v,
            Err(resp) => return *resp,
        };
        let known = self
            .dns
            .pools
            .load()
            .config()
            .pools
            .iter()
            .any(|p| p.name == pool && p.endpoints.iter().any(|e| e.addr == ip));
        if !known {
            return text_response(
                StatusCode::NOT_FOUND,
                format!("pool {pool} has no endpoint {ip}\n"),
            );
        }
        self.runtime.overrides.set_endpoint(pool, ip, action);
        self.apply(format!("endpoint {pool}/{ip}"), action, peer)
            .await
    }

    /// `POST /v1/targets/{group}/{address}/{action}`.
    async fn target_action(
        &self,
        group: &str,
        addr: &str,
        action: &str,
        peer: SocketAddr,
    ) -> Response<Full<Bytes>> {
        let (action, target) = match parse_override::<SocketAddr>(action, addr, "an address:port") {
            Ok(v) => v,
            Err(resp) => return *resp,
        };
        let known = self.balancer.as_ref().is_some_and(|b| {
            b.groups
                .load()
                .config()
                .target_groups
                .iter()
                .any(|g| g.name == group && g.targets.contains(&target))
        });
        if !known {
            return text_response(
                StatusCode::NOT_FOUND,
                format!("target group {group} has no target {target}\n"),
            );
        }
        self.runtime.overrides.set_target(group, target, action);
        self.apply(format!("target {group}/{target}"), action, peer)
            .await
    }

    /// Rebuilds the snapshots with the changed overrides and answers.
    async fn apply(&self, what: String, action: Action, peer: SocketAddr) -> Response<Full<Bytes>> {
        if let Err(e) = self.runtime.rebuild().await {
            return text_response(StatusCode::SERVICE_UNAVAILABLE, e + "\n");
        }
        tracing::info!(%peer, ?action, "{what}: override applied");
        json_response(
            StatusCode::OK,
            &serde_json::json!({"applied": format!("{action:?}"), "to": what}),
        )
    }

    /// `POST /v1/latency`: authorize, read, check, merge.
    async fn report(&self, req: Request<Incoming>) -> Result<String, Rejection> {
        let config = self.config.load_full();
        let header = req.headers().get(AUTHORIZATION).map(HeaderValue::as_bytes);
        if let Err(r) = latency::authorize(header, config.token.as_deref()) {
            self.count("", r.result);
            return Err(r);
        }
        let limited = Limited::new(req.into_body(), latency::MAX_BODY).collect();
        let body = match tokio::time::timeout(REQUEST_TIMEOUT, limited).await {
            Ok(Ok(b)) => b.to_bytes(),
            _ => {
                self.count("", "malformed");
                return Err(Rejection {
                    status: StatusCode::PAYLOAD_TOO_LARGE,
                    result: "malformed",
                    what: format!(
                        "body larger than {} bytes, or not sent in time",
                        latency::MAX_BODY
                    ),
                });
            }
        };
        let names = self.region_names();
        let regions: Vec<&str> = names.iter().map(String::as_str).collect();
        let (region, accepted) = match latency::check_report(&body, &regions) {
            Ok(v) => v,
            Err(r) => {
                self.count("", r.result);
                return Err(r);
            }
        };
        let n = accepted.len();
        let region: Arc<str> = region.into();
        let now = tokio::time::Instant::now();
        let measurements = accepted.into_iter().map(|a| Measurement {
            network: a.network,
            region: region.clone(),
            rtt_ms: a.rtt_ms,
            samples: a.samples,
            received_at: now,
        });
        {
            let _one_writer = self.writer.lock().unwrap_or_else(|e| e.into_inner());
            let next = self
                .dns
                .measured
                .load()
                .with(config.latency_max_age, measurements, now);
            self.dns.measured.store(Arc::new(next));
        }
        // The first report of a region at info (reports arrive every few seconds).
        if self.count(&region, "accepted") == 0 {
            tracing::info!(region = %region, networks = n, "latency report accepted");
        } else {
            tracing::debug!(region = %region, networks = n, "latency report accepted");
        }
        Ok(format!("accepted {n} networks for {region}\n"))
    }

    fn metrics(&self) -> String {
        let mut out = String::new();
        let reports = self
            .reports
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        metrics::reports(&mut out, &reports);
        let mut per_region: BTreeMap<String, usize> =
            self.region_names().into_iter().map(|r| (r, 0)).collect();
        let table = self.dns.measured.load();
        for (region, n) in table.networks_per_region(tokio::time::Instant::now()) {
            per_region.insert(region.to_string(), n);
        }
        metrics::measured(&mut out, &per_region);
        self.dns.metrics.render(&mut out);
        self.dns.limits.render(&mut out);
        let status = self.status();
        metrics::pools_and_health(&mut out, &status);
        metrics::reloads(&mut out, &status);
        if let Some(b) = &self.balancer {
            let groups = b.groups.load();
            metrics::target_transitions(&mut out, &groups.health_series(&b.health.load()));
            groups.render_metrics(&mut out);
            metrics::client_rtt(&mut out, &b.rtt.stats());
            b.connections.render(&mut out);
        }
        if let Some(scaler) = &self.scaler {
            let activities = |g: &str| {
                let list = scaler.activities(g).unwrap_or_default();
                list.iter().map(|a| a.id).max().unwrap_or(0)
            };
            metrics::scaler(&mut out, &scaler.groups(), activities);
        }
        out
    }
}

/// The action and address of an override request (404 for an unknown action, 400 for an
/// address that does not parse as `kind`), or the answer refusing it.
fn parse_override<A: std::str::FromStr>(
    action: &str,
    addr: &str,
    kind: &str,
) -> Result<(Action, A), Box<Response<Full<Bytes>>>> {
    let action: Action = action
        .parse()
        .map_err(|e: String| Box::new(text_response(StatusCode::NOT_FOUND, e + "\n")))?;
    let addr = addr.parse().map_err(|_| {
        Box::new(text_response(
            StatusCode::BAD_REQUEST,
            format!("`{addr}` is not {kind}\n"),
        ))
    })?;
    Ok((action, addr))
}

fn json_response(status: StatusCode, body: &impl serde::Serialize) -> Response<Full<Bytes>> {
    let text = serde_json::to_string_pretty(body).unwrap_or_default() + "\n";
    let mut r = text_response(status, text);
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

fn text_response(status: StatusCode, text: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(text)));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    r
}

/// Serves the admin routes on `listener` until `shutdown`.
pub async fn run(listener: TcpListener, admin: Arc<Admin>, shutdown: CancellationToken) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => p.expect("semaphore is never closed"),
            () = shutdown.cancelled() => return,
        };
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r { Ok(v) => v, Err(_) => continue },
            () = shutdown.cancelled() => return,
        };
        let (admin, stop) = (admin.clone(), shutdown.clone());
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let admin = admin.clone();
                async move { Ok::<_, std::convert::Infallible>(admin.route(req, peer).await) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(REQUEST_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service);
            tokio::select! {
                _ = conn => {},
                () = stop.cancelled() => {},
            }
            drop(permit);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_table() {
        let r = |m: Method, p: &str| Route::of(&m, p);
        assert_eq!(r(Method::GET, "/"), Route::Dashboard);
        assert_eq!(r(Method::GET, "/metrics"), Route::Metrics);
        assert_eq!(r(Method::GET, "/v1/status"), Route::Status);
        assert_eq!(r(Method::POST, "/v1/latency"), Route::Latency);
        assert_eq!(r(Method::POST, "/v1/reload"), Route::Reload);
        assert_eq!(
            r(Method::POST, "/v1/endpoints/web/192.0.2.1/drain"),
            Route::Endpoint("web".into(), "192.0.2.1".into(), "drain".into())
        );
        assert_eq!(
            r(Method::POST, "/v1/targets/app/127.0.0.1:80/force-up"),
            Route::Target("app".into(), "127.0.0.1:80".into(), "force-up".into())
        );
        assert_eq!(r(Method::POST, "/v1/status"), Route::MethodNotAllowed);
        assert_eq!(r(Method::GET, "/v1/reload"), Route::MethodNotAllowed);
        assert_eq!(
            r(Method::GET, "/v1/targets/app/127.0.0.1:80/drain"),
            Route::MethodNotAllowed
        );
        assert_eq!(r(Method::GET, "/v1/targets/app"), Route::NotFound);
        assert_eq!(r(Method::GET, "/nope"), Route::NotFound);
    }
}
