//! A minimal HTTP/1.1 client for simulated clients: one keep-alive connection, `GET` only,
//! `Content-Length` bodies (what the balancer and the demo backend send).

use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// Connecting failed (refused, unreachable) or timed out.
    #[error("connect to {addr}: {detail}")]
    Connect {
        /// Address.
        addr: SocketAddr,
        /// Cause.
        detail: String,
    },
    /// The connection broke, timed out or carried something that is not HTTP/1.1.
    #[error("exchange: {0}")]
    Exchange(String),
}

/// One open connection.
pub struct Connection {
    stream: BufReader<TcpStream>,
    /// The address connected to.
    pub addr: SocketAddr,
}

impl Connection {
    /// Connects within `timeout`.
    pub async fn open(addr: SocketAddr, timeout: Duration) -> Result<Connection, HttpError> {
        let connect = tokio::time::timeout(timeout, TcpStream::connect(addr)).await;
        let err = |detail: String| HttpError::Connect { addr, detail };
        let stream = connect
            .map_err(|_| err("timed out".into()))?
            .map_err(|e| err(e.to_string()))?;
        let _ = stream.set_nodelay(true);
        Ok(Connection {
            stream: BufReader::new(stream),
            addr,
        })
    }

    /// Sends `GET path` and reads the response within `timeout`: (status, body).
    pub async fn get(
        &mut self,
        host: &str,
        path: &str,
        timeout: Duration,
    ) -> Result<(u16, String), HttpError> {
        self.send("GET", host, path, timeout).await
    }

    /// Sends `GET path` with the cookie `cookie` (`name=value`) when there is one, and reads
    /// the response within `timeout`.
    pub async fn get_with_cookie(
        &mut self,
        host: &str,
        path: &str,
        cookie: Option<&str>,
        timeout: Duration,
    ) -> Result<Reply, HttpError> {
        tokio::time::timeout(timeout, self.exchange("GET", host, path, cookie))
            .await
            .map_err(|_| HttpError::Exchange("timed out".into()))?
    }

    /// Sends a request without a body and reads the response within `timeout`.
    pub async fn send(
        &mut self,
        method: &str,
        host: &str,
        path: &str,
        timeout: Duration,
    ) -> Result<(u16, String), HttpError> {
        let reply = tokio::time::timeout(timeout, self.exchange(method, host, path, None))
            .await
            .map_err(|_| HttpError::Exchange("timed out".into()))??;
        Ok((reply.status, reply.body))
    }

    async fn exchange(
        &mut self,
        method: &str,
        host: &str,
        path: &str,
        cookie: Option<&str>,
    ) -> Result<Reply, HttpError> {
        let io = |e: std::io::Error| HttpError::Exchange(e.to_string());
        let cookie = cookie
            .map(|c| format!("Cookie: {c}\r\n"))
            .unwrap_or_default();
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {host}\r\n{cookie}Content-Length: 0\r\n\r\n"
        );
        self.stream
            .get_mut()
            .write_all(request.as_bytes())
            .await
            .map_err(io)?;
        let mut line = String::new();
        if self.stream.read_line(&mut line).await.map_err(io)? == 0 {
            return Err(HttpError::Exchange("closed before the response".into()));
        }
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| HttpError::Exchange(format!("bad status line {line:?}")))?;
        let mut length = 0usize;
        let mut set_cookie = None;
        loop {
            line.clear();
            if self.stream.read_line(&mut line).await.map_err(io)? == 0 {
                return Err(HttpError::Exchange("closed in the header".into()));
            }
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((k, v)) = l.split_once(':')
                && k.eq_ignore_ascii_case("content-length")
            {
                length = v.trim().parse().unwrap_or(0);
            } else if let Some((k, v)) = l.split_once(':')
                && k.eq_ignore_ascii_case("set-cookie")
            {
                // The `name=value` part, without attributes.
                set_cookie = v.split(';').next().map(|c| c.trim().to_string());
            }
        }
        let mut body = vec![0; length.min(1 << 20)];
        self.stream.read_exact(&mut body).await.map_err(io)?;
        Ok(Reply {
            status,
            body: String::from_utf8_lossy(&body).into_owned(),
            set_cookie,
        })
    }
}

/// A response.
#[derive(Debug, Clone)]
pub struct Reply {
    /// Status code.
    pub status: u16,
    /// Body.
    pub body: String,
    /// The `name=value` of the last `Set-Cookie` header, if any.
    pub set_cookie: Option<String>,
}

/// `GET path` on a fresh connection: the status, or `None` when nothing answered.
pub async fn get_once(addr: SocketAddr, path: &str, timeout: Duration) -> Option<u16> {
    send_once(addr, "GET", path, timeout).await
}

/// A bodiless request on a fresh connection: the status, or `None` when nothing answered.
pub async fn send_once(
    addr: SocketAddr,
    method: &str,
    path: &str,
    timeout: Duration,
) -> Option<u16> {
    let mut c = Connection::open(addr, timeout).await.ok()?;
    c.send(method, &addr.ip().to_string(), path, timeout)
        .await
        .ok()
        .map(|r| r.0)
}
