//! A minimal HTTP/1.1 client for simulated clients: one keep-alive connection, requests
//! without a body (and small JSON bodies for the lab's admin calls), `Content-Length`
//! responses (what the balancer, the demo backend and the admin server send).

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpSocket, TcpStream};

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
        Connection::open_from(None, addr, timeout).await
    }

    /// Connects within `timeout` from `local` (any port; `None`: the kernel's choice).
    pub async fn open_from(
        local: Option<IpAddr>,
        addr: SocketAddr,
        timeout: Duration,
    ) -> Result<Connection, HttpError> {
        let err = |detail: String| HttpError::Connect { addr, detail };
        let connect = async {
            let Some(ip) = local else {
                return TcpStream::connect(addr).await;
            };
            let socket = match ip {
                IpAddr::V4(_) => TcpSocket::new_v4()?,
                IpAddr::V6(_) => TcpSocket::new_v6()?,
            };
            socket.bind(SocketAddr::new(ip, 0))?;
            socket.connect(addr).await
        };
        let stream = tokio::time::timeout(timeout, connect)
            .await
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
        let cookie = cookie
            .map(|c| format!("Cookie: {c}\r\n"))
            .unwrap_or_default();
        self.call("GET", host, path, &cookie, "", timeout).await
    }

    /// Sends `method path` with extra header lines (`Name: value\r\n` each) and a body, and
    /// reads the response within `timeout`.
    pub async fn call(
        &mut self,
        method: &str,
        host: &str,
        path: &str,
        headers: &str,
        body: &str,
        timeout: Duration,
    ) -> Result<Reply, HttpError> {
        tokio::time::timeout(timeout, self.exchange(method, host, path, headers, body))
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
        let reply = self.call(method, host, path, "", "", timeout).await?;
        Ok((reply.status, reply.body))
    }

    async fn exchange(
        &mut self,
        method: &str,
        host: &str,
        path: &str,
        headers: &str,
        body: &str,
    ) -> Result<Reply, HttpError> {
        let io = |e: std::io::Error| HttpError::Exchange(e.to_string());
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {host}\r\n{headers}Content-Length: {}\r\n\r\n{body}",
            body.len()
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

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    #[tokio::test]
    async fn a_call_sends_its_headers_and_body_from_the_chosen_address() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (stream, peer) = listener.accept().await.unwrap();
            let mut stream = BufReader::new(stream);
            let mut head = String::new();
            loop {
                let mut line = String::new();
                stream.read_line(&mut line).await.unwrap();
                head.push_str(&line);
                if line == "\r\n" {
                    break;
                }
            }
            let mut body = [0u8; 14];
            stream.read_exact(&mut body).await.unwrap();
            let reply = "HTTP/1.1 201 Created\r\nContent-Length: 3\r\n\r\nok\n";
            stream.get_mut().write_all(reply.as_bytes()).await.unwrap();
            (peer.ip(), head, String::from_utf8_lossy(&body).into_owned())
        });
        let local: IpAddr = "127.0.0.2".parse().unwrap();
        let t = Duration::from_secs(5);
        let mut c = Connection::open_from(Some(local), addr, t).await.unwrap();
        let headers = "Authorization: Bearer lab-token\r\n";
        let reply = c
            .call("POST", "h", "/v1/x", headers, "{\"desired\": 3}", t)
            .await
            .unwrap();
        assert_eq!((reply.status, reply.body.as_str()), (201, "ok\n"));
        let (peer, head, body) = server.await.unwrap();
        assert_eq!(peer, local);
        assert!(
            head.starts_with("POST /v1/x HTTP/1.1\r\nHost: h\r\n"),
            "{head}"
        );
        assert!(
            head.contains("Authorization: Bearer lab-token\r\n"),
            "{head}"
        );
        assert!(head.contains("Content-Length: 14\r\n"), "{head}");
        assert_eq!(body, "{\"desired\": 3}");
    }
}
