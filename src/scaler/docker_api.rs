//! A small Docker Engine API client: HTTP/1.1 over the daemon's unix socket, one connection
//! per request, every request bounded by [`REQUEST_TIMEOUT`] and [`MAX_BODY`].

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::net::UnixStream;

/// The daemon's socket when none is configured.
pub const DEFAULT_SOCKET: &str = "/var/run/docker.sock";
/// Time a request (connect, send, read the whole answer) may take.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);
/// Largest answer read.
pub const MAX_BODY: usize = 1 << 20;
/// The API version requests name (Docker 20.10 and later understand it).
pub const API_VERSION: &str = "v1.41";

/// Why a Docker Engine API request failed.
#[derive(Debug, thiserror::Error)]
pub enum DockerError {
    /// The socket could not be reached.
    #[error("docker daemon at {socket}: {source}")]
    Connect {
        /// Socket path.
        socket: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// The HTTP exchange failed.
    #[error("docker {path}: {message}")]
    Http {
        /// Request path.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// The daemon answered with an error status.
    #[error("docker {path}: {status}: {message}")]
    Api {
        /// Request path.
        path: String,
        /// Status.
        status: StatusCode,
        /// The daemon's message.
        message: String,
    },
}

/// A client of one daemon.
#[derive(Debug, Clone)]
pub struct Engine {
    socket: PathBuf,
}

impl Engine {
    /// A client of the daemon listening on `socket`.
    pub fn new(socket: impl AsRef<Path>) -> Engine {
        Engine {
            socket: socket.as_ref().to_path_buf(),
        }
    }

    /// Sends one request; the status and body of a 2xx answer.
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(StatusCode, Bytes), DockerError> {
        let http = |message: String| DockerError::Http {
            path: path.to_string(),
            message,
        };
        let exchange = async {
            let stream =
                UnixStream::connect(&self.socket)
                    .await
                    .map_err(|source| DockerError::Connect {
                        socket: self.socket.clone(),
                        source,
                    })?;
            let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .map_err(|e| http(e.to_string()))?;
            let driver = tokio::spawn(conn);
            let bytes = body.map(|b| b.to_string()).unwrap_or_default();
            let req = Request::builder()
                .method(method)
                .uri(format!("/{API_VERSION}{path}"))
                .header("host", "docker")
                .header("content-type", "application/json")
                .body(Full::new(Bytes::from(bytes)))
                .map_err(|e| http(e.to_string()))?;
            let resp = sender
                .send_request(req)
                .await
                .map_err(|e| http(e.to_string()))?;
            let status = resp.status();
            let body = Limited::new(resp.into_body(), MAX_BODY)
                .collect()
                .await
                .map_err(|e| http(e.to_string()))?
                .to_bytes();
            driver.abort();
            Ok((status, body))
        };
        let (status, body) = tokio::time::timeout(REQUEST_TIMEOUT, exchange)
            .await
            .map_err(|_| http(format!("no answer within {REQUEST_TIMEOUT:?}")))??;
        if !status.is_success() {
            let message = serde_json::from_slice::<Value>(&body)
                .ok()
                .and_then(|v| v["message"].as_str().map(str::to_string))
                .unwrap_or_else(|| String::from_utf8_lossy(&body).trim().to_string());
            return Err(DockerError::Api {
                path: path.to_string(),
                status,
                message,
            });
        }
        Ok((status, body))
    }

    async fn json(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, DockerError> {
        let (_, bytes) = self.request(method, path, body).await?;
        serde_json::from_slice(&bytes).map_err(|e| DockerError::Http {
            path: path.to_string(),
            message: format!("not JSON: {e}"),
        })
    }

    /// True when the daemon answers `/_ping`.
    pub async fn ping(&self) -> bool {
        self.request(Method::GET, "/_ping", None).await.is_ok()
    }

    /// Creates container `name` from `spec` (the `/containers/create` body); its id.
    pub async fn create(&self, name: &str, spec: &Value) -> Result<String, DockerError> {
        let path = format!("/containers/create?name={name}");
        let v = self.json(Method::POST, &path, Some(spec)).await?;
        v["Id"]
            .as_str()
            .map(str::to_string)
            .ok_or(DockerError::Http {
                path,
                message: "no Id in the answer".into(),
            })
    }

    /// Starts a created or stopped container.
    pub async fn start(&self, id: &str) -> Result<(), DockerError> {
        let path = format!("/containers/{id}/start");
        match self.request(Method::POST, &path, None).await {
            // 304: already running.
            Err(DockerError::Api { status, .. }) if status == StatusCode::NOT_MODIFIED => Ok(()),
            r => r.map(drop),
        }
    }

    /// Stops a container, killing it after `grace`.
    pub async fn stop(&self, id: &str, grace: Duration) -> Result<(), DockerError> {
        let path = format!("/containers/{id}/stop?t={}", grace.as_secs());
        match self.request(Method::POST, &path, None).await {
            // 304: already stopped.
            Err(DockerError::Api { status, .. }) if status == StatusCode::NOT_MODIFIED => Ok(()),
            r => r.map(drop),
        }
    }

    /// Removes a container (and its anonymous volumes), stopping it if needed.
    pub async fn remove(&self, id: &str) -> Result<(), DockerError> {
        let path = format!("/containers/{id}?force=true&v=true");
        self.request(Method::DELETE, &path, None).await.map(drop)
    }

    /// Whether the container is running.
    pub async fn running(&self, id: &str) -> Result<bool, DockerError> {
        let v = self
            .json(Method::GET, &format!("/containers/{id}/json"), None)
            .await?;
        Ok(v["State"]["Running"].as_bool().unwrap_or(false))
    }

    /// Ids of the running containers labelled `label=value`, oldest first.
    pub async fn labelled(&self, label: &str, value: &str) -> Result<Vec<String>, DockerError> {
        let filters = serde_json::json!({ "label": [format!("{label}={value}")] }).to_string();
        let path = format!("/containers/json?filters={}", percent_encode(&filters));
        let v = self.json(Method::GET, &path, None).await?;
        let mut found: Vec<(i64, String)> = v
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| Some((c["Created"].as_i64()?, c["Id"].as_str()?.to_string())))
            .collect();
        found.sort();
        Ok(found.into_iter().map(|(_, id)| id).collect())
    }

    /// Freezes a container's processes (`docker pause`).
    pub async fn pause(&self, id: &str) -> Result<(), DockerError> {
        let path = format!("/containers/{id}/pause");
        self.request(Method::POST, &path, None).await.map(drop)
    }

    /// Thaws a paused container.
    pub async fn unpause(&self, id: &str) -> Result<(), DockerError> {
        let path = format!("/containers/{id}/unpause");
        self.request(Method::POST, &path, None).await.map(drop)
    }

    /// Sends SIGKILL to a container's main process (`docker kill`).
    pub async fn kill(&self, id: &str) -> Result<(), DockerError> {
        let path = format!("/containers/{id}/kill");
        self.request(Method::POST, &path, None).await.map(drop)
    }

    /// The container's IP address on `network` (`NetworkSettings.Networks.<network>.IPAddress`).
    pub async fn address_on(&self, id: &str, network: &str) -> Result<IpAddr, DockerError> {
        let path = format!("/containers/{id}/json");
        let v = self.json(Method::GET, &path, None).await?;
        v["NetworkSettings"]["Networks"][network]["IPAddress"]
            .as_str()
            .and_then(|a| a.parse().ok())
            .ok_or(DockerError::Http {
                path,
                message: format!("no address on network {network}"),
            })
    }

    /// The container's CPU time so far, in nanoseconds (`cpu_stats.cpu_usage.total_usage`).
    pub async fn cpu_nanos(&self, id: &str) -> Result<u64, DockerError> {
        let path = format!("/containers/{id}/stats?stream=false");
        let v = self.json(Method::GET, &path, None).await?;
        v["cpu_stats"]["cpu_usage"]["total_usage"]
            .as_u64()
            .ok_or(DockerError::Http {
                path,
                message: "no cpu_stats.cpu_usage.total_usage".into(),
            })
    }
}

/// `s` with every byte outside the URL-safe set percent-encoded (for query values).
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::UnixListener;

    /// A one-shot daemon: answers the first request with `status` and `body` and returns
    /// what it read.
    async fn daemon(status: &str, body: &str) -> (Engine, tokio::task::JoinHandle<String>) {
        let answer = format!(
            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("docker.sock");
        let listener = UnixListener::bind(&path).unwrap();
        let task = tokio::spawn(async move {
            let _dir = dir;
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = vec![0; 4096];
            let n = s.read(&mut buf).await.unwrap();
            s.write_all(answer.as_bytes()).await.unwrap();
            String::from_utf8_lossy(&buf[..n]).to_string()
        });
        (Engine::new(path), task)
    }

    #[tokio::test]
    async fn create_posts_the_spec_and_reads_the_id() {
        let (engine, seen) = daemon("201 Created", "{\"Id\":\"abc123\"}").await;
        let spec = serde_json::json!({ "Image": "x" });
        assert_eq!(engine.create("web-1", &spec).await.unwrap(), "abc123");
        let req = seen.await.unwrap();
        assert!(
            req.starts_with("POST /v1.41/containers/create?name=web-1 HTTP/1.1\r\n"),
            "{req}"
        );
        assert!(req.ends_with("{\"Image\":\"x\"}"), "{req}");
    }

    #[tokio::test]
    async fn errors_carry_the_daemons_message() {
        let (engine, _) =
            daemon("404 Not Found", "{\"message\":\"No such image: nope:1\"}\n").await;
        let e = engine.start("x").await.unwrap_err().to_string();
        assert_eq!(
            e,
            "docker /containers/x/start: 404 Not Found: No such image: nope:1"
        );
        let gone = Engine::new("/nonexistent/docker.sock");
        assert!(!gone.ping().await);
    }

    #[tokio::test]
    async fn labelled_containers_are_filtered_by_the_daemon_and_listed_oldest_first() {
        let list = r#"[{"Id":"new","Created":20},{"Id":"old","Created":10}]"#;
        let (engine, seen) = daemon("200 OK", list).await;
        let ids = engine.labelled("roundhouse.group", "lab-us-east").await;
        assert_eq!(ids.unwrap(), ["old", "new"]);
        let req = seen.await.unwrap();
        assert!(
            req.starts_with(
                "GET /v1.41/containers/json?filters=%7B%22label%22%3A%5B%22roundhouse.group%3Dlab-us-east%22%5D%7D HTTP/1.1\r\n"
            ),
            "{req}"
        );
    }

    #[tokio::test]
    async fn the_address_on_a_network_is_read_from_the_inspection() {
        let inspect =
            r#"{"NetworkSettings":{"Networks":{"lab-eu-west":{"IPAddress":"10.91.2.130"}}}}"#;
        let (engine, _) = daemon("200 OK", inspect).await;
        let ip = engine.address_on("abc", "lab-eu-west").await.unwrap();
        assert_eq!(ip, "10.91.2.130".parse::<IpAddr>().unwrap());
        let (engine, _) = daemon("200 OK", inspect).await;
        let e = engine.address_on("abc", "bridge").await.unwrap_err();
        assert!(
            e.to_string().contains("no address on network bridge"),
            "{e}"
        );
    }
}
