//! The admin HTTP server (`[admin] listen`): a small router on hyper's HTTP/1.1 server.
//!
//! | route | what |
//! |---|---|
//! | `POST /v1/latency` | a balancer's measured client round-trip times ([`latency`]); bearer token |
//! | `GET /metrics` | Prometheus text ([`metrics`]) |
//! | `GET /v1/scaling-groups` | scaling groups, instances, activities ([`scaler`]) |
//! | `POST /v1/scaling-groups/NAME/desired` | manual scaling ([`scaler`]); bearer token |
//!
//! The report endpoint is the only writer of the measured latency snapshot
//! (`DnsState::measured`): it merges each accepted report into a new table and stores it.

pub mod latency;
pub mod metrics;
pub mod scaler;

use crate::balancer::proxy::BalancerState;
use crate::config::AdminConfig;
use crate::dns::server::DnsState;
use crate::scaler::ScalerHandle;
use crate::steering::measured::Measurement;
use arc_swap::ArcSwap;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue, WWW_AUTHENTICATE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use latency::Rejection;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

/// Connections served at once; further ones wait in the kernel's backlog.
pub const MAX_CONNECTIONS: usize = 64;
/// Time a client has to send a request's headers, and then its body.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// What the admin server reads and writes.
pub struct Admin {
    config: ArcSwap<AdminConfig>,
    dns: Arc<DnsState>,
    balancer: Option<Arc<BalancerState>>,
    scaler: Option<Arc<ScalerHandle>>,
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
    ) -> Admin {
        Admin {
            config: ArcSwap::from_pointee(config),
            dns,
            balancer,
            scaler: None,
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
        match (req.method(), req.uri().path()) {
            (&Method::POST, "/v1/latency") => match self.report(req).await {
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
            (&Method::GET, "/metrics") => {
                let mut resp = text_response(StatusCode::OK, self.metrics());
                resp.headers_mut().insert(
                    CONTENT_TYPE,
                    HeaderValue::from_static("text/plain; version=0.0.4"),
                );
                resp
            }
            (_, p) if p == scaler::PREFIX || p.starts_with("/v1/scaling-groups/") => {
                self.scaling_groups(req).await
            }
            (_, "/v1/latency" | "/metrics") => text_response(
                StatusCode::METHOD_NOT_ALLOWED,
                "method not allowed\n".into(),
            ),
            _ => text_response(StatusCode::NOT_FOUND, "not found\n".into()),
        }
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
        if let Some(b) = &self.balancer {
            b.groups.load().render_metrics(&mut out);
            metrics::client_rtt(&mut out, &b.rtt.stats());
        }
        out
    }
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
