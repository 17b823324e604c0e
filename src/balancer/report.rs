//! The latency reporter: every `latency_report.interval` it sends the client networks the
//! balancer saw since the last report ([`RttBook::take_summary`]) to the DNS server's admin
//! server, `POST {to}/v1/latency` with `Authorization: Bearer TOKEN` and a JSON
//! [`LatencyReport`]. A failure is logged at warn when it differs from the previous outcome
//! (not every interval) and never stops the balancer; the samples of a failed report are
//! dropped, and the next report carries the networks seen again with their moving averages.

use super::rtt::{LatencyReport, RttBook};
use crate::config::LatencyReportConfig;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use hyper::{Request, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// Why a report did not arrive.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// No HTTP exchange (connection refused, reset, ...).
    #[error("{url}: {source}")]
    Request {
        /// Where the report went.
        url: String,
        /// Cause.
        source: hyper_util::client::legacy::Error,
    },
    /// The DNS server answered, but did not accept the report.
    #[error("{url}: {status}: {reason}")]
    Refused {
        /// Where the report went.
        url: String,
        /// The status (401: wrong token, 404: unknown region, 400: malformed).
        status: StatusCode,
        /// The first line of the answer's body.
        reason: String,
    },
    /// No answer within the report interval.
    #[error("{url}: no answer within {timeout:?}")]
    Timeout {
        /// Where the report went.
        url: String,
        /// How long it waited.
        timeout: std::time::Duration,
    },
}

/// Sends a balancer's measured round-trip times to a DNS server.
pub struct Reporter {
    config: LatencyReportConfig,
    book: Arc<RttBook>,
    client: Client<HttpConnector, Full<Bytes>>,
}

impl Reporter {
    /// A reporter for `book`.
    pub fn new(config: LatencyReportConfig, book: Arc<RttBook>) -> Reporter {
        let client = Client::builder(TokioExecutor::new()).build_http();
        Reporter {
            config,
            book,
            client,
        }
    }

    /// Reports every interval until `shutdown` (nothing is sent while no client connected).
    pub async fn run(self, shutdown: CancellationToken) {
        let every = self.config.interval;
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut outcomes = Outcomes::default();
        loop {
            tokio::select! {
                _ = tick.tick() => {},
                () = shutdown.cancelled() => return,
            }
            let result = tokio::select! {
                r = self.report_once() => r,
                () = shutdown.cancelled() => return,
            };
            let url = self.config.url.to_string();
            if let Ok(networks @ 1..) = result {
                tracing::debug!(%url, networks, "latency report sent");
            }
            match outcomes.note(result.map_err(|e| e.to_string())) {
                Note::Quiet => {}
                Note::Recovered => tracing::info!(%url, "latency reports are accepted again"),
                Note::Failed(e) => {
                    tracing::warn!("latency report failed: {e}; retrying every {every:?}")
                }
            }
        }
    }

    /// Sends one report of the networks seen since the last; returns how many it held (0:
    /// nothing to send, nothing sent).
    pub async fn report_once(&self) -> Result<usize, ReportError> {
        let networks = self.book.take_summary();
        if networks.is_empty() {
            return Ok(0);
        }
        let n = networks.len();
        let report = LatencyReport {
            region: self.config.region.clone(),
            networks,
        };
        let body = serde_json::to_vec(&report).expect("a report is plain data");
        let mut req = Request::post(self.config.url.clone())
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .body(Full::new(Bytes::from(body)))
            .expect("the URL was validated");
        let bearer = HeaderValue::try_from(format!("Bearer {}", self.config.token))
            .expect("tokens are validated as printable ASCII");
        req.headers_mut().insert(AUTHORIZATION, bearer);
        let url = self.config.url.to_string();
        let timeout = self.config.interval;
        let exchange = async {
            let resp = self
                .client
                .request(req)
                .await
                .map_err(|source| ReportError::Request {
                    url: url.clone(),
                    source,
                })?;
            let status = resp.status();
            if status.is_success() {
                return Ok(n);
            }
            let body = Limited::new(resp.into_body(), 1024).collect().await;
            let text = body
                .map(|b| String::from_utf8_lossy(&b.to_bytes()).into_owned())
                .unwrap_or_default();
            Err(ReportError::Refused {
                url: url.clone(),
                status,
                reason: text.lines().next().unwrap_or("").to_string(),
            })
        };
        tokio::time::timeout(timeout, exchange)
            .await
            .unwrap_or(Err(ReportError::Timeout {
                url: url.clone(),
                timeout,
            }))
    }
}

/// What a report's outcome is worth logging.
#[derive(Debug, PartialEq, Eq)]
enum Note {
    /// Nothing (same as before, or a plain success).
    Quiet,
    /// A success after failures.
    Recovered,
    /// A failure different from the previous outcome.
    Failed(String),
}

/// The previous outcome, so that a lasting failure is logged once, not every interval.
#[derive(Debug, Default)]
struct Outcomes {
    last_failure: Option<String>,
}

impl Outcomes {
    fn note(&mut self, result: Result<usize, String>) -> Note {
        match result {
            Ok(0) => Note::Quiet,
            Ok(_) if self.last_failure.take().is_some() => Note::Recovered,
            Ok(_) => Note::Quiet,
            Err(e) if self.last_failure.as_ref() == Some(&e) => Note::Quiet,
            Err(e) => {
                self.last_failure = Some(e.clone());
                Note::Failed(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::body::Incoming;
    use hyper_util::rt::TokioIo;
    use std::time::Duration;
    use tokio::sync::mpsc;

    /// A DNS admin stand-in: answers `status` and hands over (authorization, body).
    async fn fake_admin(status: u16) -> (String, mpsc::UnboundedReceiver<(String, String)>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let tx = tx.clone();
                let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                    let tx = tx.clone();
                    async move {
                        let auth = req.headers()[AUTHORIZATION].to_str().unwrap().to_string();
                        let body = req.into_body().collect().await.unwrap().to_bytes();
                        let _ = tx.send((auth, String::from_utf8_lossy(&body).into_owned()));
                        let mut resp = hyper::Response::new(Full::new(Bytes::from("nope\nmore")));
                        *resp.status_mut() = StatusCode::from_u16(status).unwrap();
                        Ok::<_, std::convert::Infallible>(resp)
                    }
                });
                tokio::spawn(
                    hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service),
                );
            }
        });
        (format!("http://{addr}"), rx)
    }

    fn reporter(to: &str, book: Arc<RttBook>) -> Reporter {
        let config = LatencyReportConfig {
            url: format!("{to}/v1/latency").parse().unwrap(),
            region: "eu-west".into(),
            token: "s3cret".into(),
            interval: Duration::from_secs(5),
        };
        Reporter::new(config, book)
    }

    #[tokio::test]
    async fn a_report_carries_the_token_and_the_summary() {
        let (to, mut rx) = fake_admin(204).await;
        let book = Arc::new(RttBook::default());
        let r = reporter(&to, book.clone());
        assert_eq!(
            r.report_once().await.unwrap(),
            0,
            "nothing seen, nothing sent"
        );
        book.record("198.51.100.9".parse().unwrap(), Duration::from_millis(7));
        assert_eq!(r.report_once().await.unwrap(), 1);
        let (auth, body) = rx.recv().await.unwrap();
        assert_eq!(auth, "Bearer s3cret");
        let report: LatencyReport = serde_json::from_str(&body).unwrap();
        assert_eq!(report.region, "eu-west");
        assert_eq!(report.networks[0].prefix, "198.51.100.0/24");
        assert_eq!(report.networks[0].samples, 1);
        assert!(rx.try_recv().is_err(), "exactly one request");
    }

    #[test]
    fn a_lasting_failure_is_logged_once_and_its_end_once() {
        let mut o = Outcomes::default();
        let refused = || Err("401 Unauthorized: wrong token".to_string());
        assert_eq!(o.note(Ok(3)), Note::Quiet);
        assert_eq!(
            o.note(refused()),
            Note::Failed("401 Unauthorized: wrong token".into())
        );
        assert_eq!(o.note(refused()), Note::Quiet);
        assert_eq!(o.note(Ok(0)), Note::Quiet, "nothing sent: nothing learnt");
        assert_eq!(
            o.note(Err("refused".into())),
            Note::Failed("refused".into())
        );
        assert_eq!(o.note(Ok(2)), Note::Recovered);
        assert_eq!(o.note(Ok(2)), Note::Quiet);
        assert!(matches!(o.note(refused()), Note::Failed(_)));
    }

    #[tokio::test]
    async fn refusals_and_unreachable_servers_are_errors_that_say_why() {
        let (to, _rx) = fake_admin(401).await;
        let book = Arc::new(RttBook::default());
        book.record("192.0.2.1".parse().unwrap(), Duration::from_millis(1));
        let e = reporter(&to, book.clone()).report_once().await.unwrap_err();
        assert!(matches!(e, ReportError::Refused { status, .. } if status == 401));
        assert!(e.to_string().ends_with("401 Unauthorized: nope"), "{e}");
        // A closed port: nothing listens there any more.
        let gone = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = gone.local_addr().unwrap();
        drop(gone);
        book.record("192.0.2.1".parse().unwrap(), Duration::from_millis(1));
        let e = reporter(&format!("http://{addr}"), book)
            .report_once()
            .await
            .unwrap_err();
        assert!(matches!(e, ReportError::Request { .. }), "{e}");
    }
}
