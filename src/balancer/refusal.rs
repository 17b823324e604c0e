//! Turning away a client connection over a listener's `max_connections`: it is answered
//! [`OVER_CAPACITY`] (503 with `retry-after: 1`) and closed, over TLS on an https listener
//! (after a handshake that offers HTTP/1.1 only: the answer is an HTTP/1.1 one).
//!
//! A refusal costs a file descriptor and, on https, a handshake; so each takes at most
//! [`REFUSAL_TIME`], and at most [`MAX_REFUSALS`] run at once per listener: beyond that, a
//! connection is closed without an answer, as a tcp listener always does.

use super::conns::OVER_CAPACITY;
use rustls::ServerConfig;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;

/// Longest a refused client is given to complete the handshake and take its answer.
pub const REFUSAL_TIME: Duration = Duration::from_secs(2);
/// Refusals in progress at once per listener.
pub const MAX_REFUSALS: usize = 64;

/// The refusals of one listener.
pub struct Refusals {
    slots: Arc<Semaphore>,
    tls: Option<TlsAcceptor>,
}

impl Refusals {
    /// Refusals in plain HTTP, or over TLS with `tls` (its ALPN narrowed to HTTP/1.1).
    pub fn new(tls: Option<&Arc<ServerConfig>>) -> Refusals {
        let tls = tls.map(|config| {
            let mut config = ServerConfig::clone(config);
            config.alpn_protocols = vec![b"http/1.1".to_vec()];
            TlsAcceptor::from(Arc::new(config))
        });
        Refusals {
            slots: Arc::new(Semaphore::new(MAX_REFUSALS)),
            tls,
        }
    }

    /// Answers 503 on `stream` and closes it, in a task of its own.
    pub fn refuse(&self, stream: TcpStream) {
        let Ok(slot) = self.slots.clone().try_acquire_owned() else {
            return;
        };
        let tls = self.tls.clone();
        tokio::spawn(async move {
            let refusal = async {
                match tls {
                    None => answer(stream).await,
                    Some(tls) => {
                        if let Ok(stream) = tls.accept(stream).await {
                            answer(stream).await;
                        }
                    }
                }
            };
            let _ = tokio::time::timeout(REFUSAL_TIME, refusal).await;
            drop(slot);
        });
    }
}

/// Says 503 at once (without waiting for the request) and closes.
async fn answer<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S) {
    if stream.write_all(OVER_CAPACITY).await.is_err() || stream.shutdown().await.is_err() {
        return;
    }
    // Take what the client sent until it closes too: a socket closed with unread bytes
    // resets the connection, which can destroy the 503 before the client has read it.
    let mut sink = [0u8; 1024];
    while let Ok(1..) = stream.read(&mut sink).await {}
}
