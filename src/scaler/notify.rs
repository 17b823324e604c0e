//! Activity notifications: with `notify_url`, a scaling group POSTs every activity as JSON
//! (the [`super::activity::Activity`] fields) when it starts and when it ends. Delivery is
//! best effort: a bounded queue, one attempt per notification with a deadline, and a log
//! line only when delivery starts failing or works again, not once per failure.

use super::activity::Activity;
use bytes::Bytes;
use http_body_util::Full;
use hyper::Uri;
use hyper::header::CONTENT_TYPE;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Notifications waiting to be sent; more are dropped (and counted as failed deliveries).
pub const QUEUE: usize = 64;
/// Time a webhook has to answer.
pub const TIMEOUT: Duration = Duration::from_secs(5);

/// A change in whether notifications get through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// The first failure after a success (or at start).
    Failing,
    /// The first success after failures.
    Recovered,
}

/// Whether the last delivery worked: a pure state machine, logged on changes only.
#[derive(Debug, Default)]
pub struct Delivery {
    failing: bool,
}

impl Delivery {
    /// Records an attempt; the change it makes, if any.
    pub fn observe(&mut self, ok: bool) -> Option<Change> {
        let change = match (self.failing, ok) {
            (false, false) => Some(Change::Failing),
            (true, true) => Some(Change::Recovered),
            _ => None,
        };
        self.failing = !ok;
        change
    }
}

/// Sends the activities arriving on `rx` to `url` until `shutdown` or until every sender is
/// gone.
pub async fn run(
    group: String,
    url: Uri,
    mut rx: mpsc::Receiver<Activity>,
    shutdown: CancellationToken,
) {
    let client: Client<HttpConnector, Full<Bytes>> =
        Client::builder(TokioExecutor::new()).build_http();
    let mut delivery = Delivery::default();
    loop {
        let activity = tokio::select! {
            a = rx.recv() => match a { Some(a) => a, None => return },
            () = shutdown.cancelled() => return,
        };
        let result = post(&client, &url, &activity).await;
        match (delivery.observe(result.is_ok()), result) {
            (Some(Change::Failing), Err(e)) => {
                tracing::warn!(group = %group, url = %url, "activity notifications failing: {e}");
            }
            (Some(Change::Recovered), _) => {
                tracing::info!(group = %group, url = %url, "activity notifications delivered again");
            }
            _ => {}
        }
    }
}

async fn post(
    client: &Client<HttpConnector, Full<Bytes>>,
    url: &Uri,
    activity: &Activity,
) -> Result<(), String> {
    let body = serde_json::to_vec(activity).expect("activities serialise");
    let req = hyper::Request::post(url.clone())
        .header(CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| e.to_string())?;
    match tokio::time::timeout(TIMEOUT, client.request(req)).await {
        Ok(Ok(resp)) if resp.status().is_success() => Ok(()),
        Ok(Ok(resp)) => Err(format!("answered {}", resp.status())),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer within {TIMEOUT:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scaler::activity::{History, Status};
    use http_body_util::BodyExt;
    use hyper_util::rt::TokioIo;
    use tokio::net::TcpListener;

    #[test]
    fn failures_are_reported_once_per_change() {
        let mut d = Delivery::default();
        assert_eq!(d.observe(true), None);
        assert_eq!(d.observe(false), Some(Change::Failing));
        assert_eq!(d.observe(false), None);
        assert_eq!(d.observe(false), None);
        assert_eq!(d.observe(true), Some(Change::Recovered));
        assert_eq!(d.observe(true), None);
    }

    #[tokio::test]
    async fn every_activity_start_and_end_is_posted_as_json() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (seen_tx, mut seen) = mpsc::channel::<serde_json::Value>(8);
        tokio::spawn(async move {
            let (stream, _) = listener.accept().await.unwrap();
            let service =
                hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let seen_tx = seen_tx.clone();
                    async move {
                        assert_eq!(req.headers()[CONTENT_TYPE], "application/json");
                        let body = req.into_body().collect().await.unwrap().to_bytes();
                        seen_tx
                            .send(serde_json::from_slice(&body).unwrap())
                            .await
                            .unwrap();
                        Ok::<_, std::convert::Infallible>(hyper::Response::new(Full::new(
                            Bytes::new(),
                        )))
                    }
                });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
        let (tx, rx) = mpsc::channel(QUEUE);
        let stop = CancellationToken::new();
        let url: Uri = format!("http://{addr}/hook").parse().unwrap();
        let task = tokio::spawn(run("web".into(), url, rx, stop.clone()));
        let mut h = History::new("web", 10);
        h.notify_to(tx);
        let id = h.start(
            "Launching a new instance: web-1".into(),
            "At 12:00:00 ...".into(),
            0.0,
        );
        h.finish(id, Status::Successful, 1.0);
        let started = seen.recv().await.unwrap();
        assert_eq!(started["description"], "Launching a new instance: web-1");
        assert_eq!(started["status"], "InProgress");
        assert_eq!(started["group"], "web");
        let ended = seen.recv().await.unwrap();
        assert_eq!(ended["status"], "Successful");
        assert_eq!(ended["end_time"], "1970-01-01T00:00:01Z");
        stop.cancel();
        task.await.unwrap();
    }
}
