//! The demo backend (`roundhouse backend`): a small HTTP/1.1 web app for labs and tests.
//!
//! - `GET /health`: 200 `ok`, or 503 while failing (`--fail-health`, or the admin toggle
//!   `POST /admin/health?fail=true|false`).
//! - `GET /`: who answered: region, instance id and hostname; delayed by the admin knob
//!   `POST /admin/delay?ms=N` (a slow instance; 0 turns it off, at most 60 s); each one
//!   burns `--cpu-per-request` of CPU first (load a CPU scaling policy can see).
//! - `GET /work?ms=N`: burns N ms of CPU (the stress endpoint; at most 10 s).
//! - `GET /slow?ms=N`: waits N ms without using CPU (at most 60 s).
//! - any other `GET` with `--root DIR`: a file below DIR.

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Longest CPU burn one `/work` request may ask for.
pub const MAX_WORK: Duration = Duration::from_secs(10);
/// Longest wait one `/slow` request may ask for.
pub const MAX_SLOW: Duration = Duration::from_secs(60);

/// What the backend says about itself and serves.
#[derive(Debug, Clone, Default)]
pub struct BackendOptions {
    /// Region reported by `GET /`.
    pub region: String,
    /// Instance id reported by `GET /`.
    pub id: String,
    /// Start with `/health` failing.
    pub fail_health: bool,
    /// Folder of static files.
    pub root: Option<PathBuf>,
    /// CPU time each `GET /` burns (at most [`MAX_REQUEST_CPU`]).
    pub cpu_per_request: Duration,
}

/// Longest CPU burn of one `GET /`.
pub const MAX_REQUEST_CPU: Duration = Duration::from_millis(100);

struct Shared {
    options: BackendOptions,
    hostname: String,
    failing: AtomicBool,
    /// Delay of `GET /`, ms.
    delay_ms: AtomicU64,
}

/// Serves HTTP on `listener` until `shutdown` is cancelled.
pub async fn run(listener: TcpListener, options: BackendOptions, shutdown: CancellationToken) {
    let shared = Arc::new(Shared {
        failing: AtomicBool::new(options.fail_health),
        hostname: hostname(),
        delay_ms: AtomicU64::new(0),
        options,
    });
    loop {
        let (stream, _) = tokio::select! {
            r = listener.accept() => match r { Ok(v) => v, Err(_) => continue },
            () = shutdown.cancelled() => return,
        };
        let _ = stream.set_nodelay(true);
        let (shared, stop) = (shared.clone(), shutdown.clone());
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let shared = shared.clone();
                async move { Ok::<_, std::convert::Infallible>(handle(req, &shared).await) }
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

async fn handle(req: Request<Incoming>, shared: &Shared) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let ms = || millis(&query);
    match (req.method(), path.as_str()) {
        (&Method::GET, "/health") => {
            if shared.failing.load(Ordering::Relaxed) {
                text(StatusCode::SERVICE_UNAVAILABLE, "failing\n".into())
            } else {
                text(StatusCode::OK, "ok\n".into())
            }
        }
        (&Method::POST, "/admin/health") => {
            let fail = param(&query, "fail").is_some_and(|v| v == "true" || v == "1");
            shared.failing.store(fail, Ordering::Relaxed);
            tracing::info!(fail, "health toggled");
            text(StatusCode::OK, format!("fail={fail}\n"))
        }
        (&Method::POST, "/admin/delay") => {
            let d = ms().min(MAX_SLOW);
            shared
                .delay_ms
                .store(d.as_millis() as u64, Ordering::Relaxed);
            tracing::info!(ms = d.as_millis() as u64, "delay of / set");
            text(StatusCode::OK, format!("delay={}ms\n", d.as_millis()))
        }
        (&Method::GET, "/") => {
            let cpu = shared.options.cpu_per_request.min(MAX_REQUEST_CPU);
            if !cpu.is_zero() {
                burn(cpu);
            }
            let delay = shared.delay_ms.load(Ordering::Relaxed);
            if delay > 0 {
                tokio::time::sleep(Duration::from_millis(delay)).await;
            }
            let o = &shared.options;
            let body = format!("region={} id={} host={}\n", o.region, o.id, shared.hostname);
            text(StatusCode::OK, body)
        }
        (&Method::GET, "/work") => {
            let d = ms().min(MAX_WORK);
            let _ = tokio::task::spawn_blocking(move || burn(d)).await;
            text(StatusCode::OK, format!("worked {} ms\n", d.as_millis()))
        }
        (&Method::GET, "/slow") => {
            let d = ms().min(MAX_SLOW);
            tokio::time::sleep(d).await;
            text(StatusCode::OK, format!("waited {} ms\n", d.as_millis()))
        }
        (&Method::GET, _) => match &shared.options.root {
            Some(root) => static_file(root, &path).await,
            None => text(StatusCode::NOT_FOUND, "not found\n".into()),
        },
        _ => text(
            StatusCode::METHOD_NOT_ALLOWED,
            "method not allowed\n".into(),
        ),
    }
}

/// Keeps one CPU busy for `d` of wall-clock time.
fn burn(d: Duration) {
    let start = Instant::now();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    while start.elapsed() < d {
        for _ in 0..10_000 {
            x = x.rotate_left(5) ^ x.wrapping_mul(0x2545_f491_4f6c_dd1d);
        }
        std::hint::black_box(x);
    }
}

/// A file below `root`; `..` and absolute components are refused.
async fn static_file(root: &Path, path: &str) -> Response<Full<Bytes>> {
    let rel = Path::new(path.trim_start_matches('/'));
    if rel.components().any(|c| !matches!(c, Component::Normal(_))) {
        return text(StatusCode::NOT_FOUND, "not found\n".into());
    }
    let mut file = root.join(rel);
    if path.ends_with('/') || path.is_empty() {
        file = file.join("index.html");
    }
    match tokio::fs::read(&file).await {
        Ok(data) => Response::builder()
            .header("content-type", content_type(&file))
            .body(Full::new(Bytes::from(data)))
            .expect("valid response"),
        Err(_) => text(StatusCode::NOT_FOUND, "not found\n".into()),
    }
}

fn content_type(file: &Path) -> &'static str {
    match file.extension().and_then(|e| e.to_str()) {
        Some("html" | "htm") => "text/html; charset=utf-8",
        Some("css") => "text/css",
        Some("js") => "text/javascript",
        Some("json") => "application/json",
        Some("png") => "image/png",
        Some("svg") => "image/svg+xml",
        Some("txt") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", "text/plain; charset=utf-8")
        .body(Full::new(Bytes::from(body)))
        .expect("valid response")
}

/// The value of `key` in a query string.
fn param<'a>(query: &'a str, key: &str) -> Option<&'a str> {
    query
        .split('&')
        .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
}

/// `ms=N` from a query string (0 when absent or not a number).
fn millis(query: &str) -> Duration {
    Duration::from_millis(param(query, "ms").and_then(|v| v.parse().ok()).unwrap_or(0))
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn request(addr: std::net::SocketAddr, method: &str, target: &str) -> (u16, String) {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        let req = format!("{method} {target} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
        s.write_all(req.as_bytes()).await.unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        let status = out.split_whitespace().nth(1).unwrap().parse().unwrap();
        let body = out.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
        (status, body)
    }

    async fn start(options: BackendOptions) -> (std::net::SocketAddr, CancellationToken) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = CancellationToken::new();
        tokio::spawn(run(listener, options, stop.clone()));
        (addr, stop)
    }

    #[tokio::test]
    async fn the_delay_knob_slows_the_root_page_only() {
        let (addr, stop) = start(BackendOptions::default()).await;
        assert_eq!(request(addr, "POST", "/admin/delay?ms=150").await.0, 200);
        let t = Instant::now();
        assert_eq!(request(addr, "GET", "/").await.0, 200);
        assert!(
            t.elapsed() >= Duration::from_millis(150),
            "{:?}",
            t.elapsed()
        );
        let t = Instant::now();
        assert_eq!(request(addr, "GET", "/health").await.0, 200);
        assert!(
            t.elapsed() < Duration::from_millis(150),
            "health is not delayed"
        );
        assert_eq!(request(addr, "POST", "/admin/delay?ms=0").await.0, 200);
        let t = Instant::now();
        assert_eq!(request(addr, "GET", "/").await.0, 200);
        assert!(
            t.elapsed() < Duration::from_millis(150),
            "{:?}",
            t.elapsed()
        );
        stop.cancel();
    }

    #[tokio::test]
    async fn answers_who_it_is_and_toggles_health() {
        let (addr, stop) = start(BackendOptions {
            region: "us-east".into(),
            id: "i-7".into(),
            ..Default::default()
        })
        .await;
        let (status, body) = request(addr, "GET", "/").await;
        assert_eq!(status, 200);
        assert!(
            body.starts_with("region=us-east id=i-7 host="),
            "body: {body}"
        );
        assert_eq!(request(addr, "GET", "/health").await.0, 200);
        assert_eq!(
            request(addr, "POST", "/admin/health?fail=true").await.0,
            200
        );
        assert_eq!(request(addr, "GET", "/health").await.0, 503);
        request(addr, "POST", "/admin/health?fail=false").await;
        assert_eq!(request(addr, "GET", "/health").await.0, 200);
        assert_eq!(request(addr, "GET", "/nope").await.0, 404);
        stop.cancel();
    }

    #[tokio::test]
    async fn every_request_burns_its_cpu_time() {
        let (addr, stop) = start(BackendOptions {
            cpu_per_request: Duration::from_millis(40),
            ..Default::default()
        })
        .await;
        let t = Instant::now();
        assert_eq!(request(addr, "GET", "/").await.0, 200);
        assert!(
            t.elapsed() >= Duration::from_millis(40),
            "{:?}",
            t.elapsed()
        );
        stop.cancel();
    }

    #[tokio::test]
    async fn work_burns_and_slow_waits() {
        let (addr, stop) = start(BackendOptions {
            fail_health: true,
            ..Default::default()
        })
        .await;
        assert_eq!(request(addr, "GET", "/health").await.0, 503);
        let t = Instant::now();
        let (status, body) = request(addr, "GET", "/work?ms=60").await;
        assert_eq!((status, body.as_str()), (200, "worked 60 ms\n"));
        assert!(t.elapsed() >= Duration::from_millis(60));
        let (status, body) = request(addr, "GET", "/slow?ms=30").await;
        assert_eq!((status, body.as_str()), (200, "waited 30 ms\n"));
        stop.cancel();
    }

    #[tokio::test]
    async fn serves_static_files_below_the_root_only() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("index.html"), "<h1>hi</h1>").unwrap();
        std::fs::write(dir.path().join("a.txt"), "file a").unwrap();
        let (addr, stop) = start(BackendOptions {
            root: Some(dir.path().to_path_buf()),
            ..Default::default()
        })
        .await;
        assert_eq!(request(addr, "GET", "/a.txt").await, (200, "file a".into()));
        assert_eq!(request(addr, "GET", "/index.html").await.0, 200);
        assert_eq!(request(addr, "GET", "/../etc/passwd").await.0, 404);
        assert_eq!(request(addr, "GET", "/missing").await.0, 404);
        stop.cancel();
    }

    #[test]
    fn query_parameters() {
        assert_eq!(millis("ms=250"), Duration::from_millis(250));
        assert_eq!(millis("x=1&ms=7"), Duration::from_millis(7));
        assert_eq!(millis("ms=abc"), Duration::ZERO);
        assert_eq!(param("fail=true", "fail"), Some("true"));
    }
}
