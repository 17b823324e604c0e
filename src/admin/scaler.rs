//! Scaling groups on the admin server:
//!
//! - `GET /v1/scaling-groups`: every group's min / desired / max, its instances with their
//!   lifecycle state, and its activity history (newest first), as JSON;
//! - `POST /v1/scaling-groups/NAME/desired` with `{"desired": N}` and
//!   `Authorization: Bearer TOKEN` (the `admin.token`): manual scaling. 401 without the
//!   token, 404 for an unknown group, 400 for a body that is not that JSON or N outside
//!   [min, max].

use super::{Admin, REQUEST_TIMEOUT, text_response};
use crate::scaler::ScalerError;
use crate::scaler::activity::Activity;
use crate::scaler::status::GroupStatus;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue, WWW_AUTHENTICATE};
use hyper::{Method, Request, Response, StatusCode};
use serde::{Deserialize, Serialize};

/// Largest request body accepted.
pub const MAX_BODY: usize = 1024;
/// Path prefix of the routes.
pub const PREFIX: &str = "/v1/scaling-groups";

/// One group as `GET /v1/scaling-groups` shows it.
#[derive(Debug, Serialize)]
struct GroupView {
    #[serde(flatten)]
    status: GroupStatus,
    activities: Vec<Activity>,
}

/// `POST .../desired` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SetDesired {
    desired: u32,
}

impl Admin {
    /// Routes `/v1/scaling-groups` and below.
    pub(super) async fn scaling_groups(&self, req: Request<Incoming>) -> Response<Full<Bytes>> {
        let path = req.uri().path().to_string();
        let rest = path.strip_prefix(PREFIX).unwrap_or_default();
        match (req.method(), rest) {
            (&Method::GET, "" | "/") => self.list_groups(),
            (_, "" | "/") => text_response(
                StatusCode::METHOD_NOT_ALLOWED,
                "method not allowed\n".into(),
            ),
            (&Method::POST, r) => {
                match r.strip_prefix('/').and_then(|r| r.strip_suffix("/desired")) {
                    Some(name) if !name.is_empty() && !name.contains('/') => {
                        let name = name.to_string();
                        self.set_desired(&name, req).await
                    }
                    _ => text_response(StatusCode::NOT_FOUND, "not found\n".into()),
                }
            }
            _ => text_response(StatusCode::NOT_FOUND, "not found\n".into()),
        }
    }

    fn list_groups(&self) -> Response<Full<Bytes>> {
        let groups: Vec<GroupView> = self
            .scaler
            .as_ref()
            .map(|s| {
                s.groups()
                    .into_iter()
                    .map(|status| {
                        let mut activities = s.activities(&status.name).unwrap_or_default();
                        activities.reverse();
                        GroupView { status, activities }
                    })
                    .collect()
            })
            .unwrap_or_default();
        let body = serde_json::json!({ "groups": groups }).to_string() + "\n";
        json_response(StatusCode::OK, body)
    }

    async fn set_desired(&self, name: &str, req: Request<Incoming>) -> Response<Full<Bytes>> {
        let config = self.config.load_full();
        let header = req.headers().get(AUTHORIZATION).map(HeaderValue::as_bytes);
        if let Err(what) = authorize(header, config.token.as_deref()) {
            tracing::warn!(group = %name, "set desired capacity refused: {what}");
            let mut resp = text_response(StatusCode::UNAUTHORIZED, format!("{what}\n"));
            resp.headers_mut()
                .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            return resp;
        }
        let limited = Limited::new(req.into_body(), MAX_BODY).collect();
        let body = match tokio::time::timeout(REQUEST_TIMEOUT, limited).await {
            Ok(Ok(b)) => b.to_bytes(),
            _ => {
                let what = format!("body larger than {MAX_BODY} bytes, or not sent in time\n");
                return text_response(StatusCode::PAYLOAD_TOO_LARGE, what);
            }
        };
        let wanted: SetDesired = match serde_json::from_slice(&body) {
            Ok(w) => w,
            Err(e) => {
                let what = format!("expected {{\"desired\": N}}: {e}\n");
                return text_response(StatusCode::BAD_REQUEST, what);
            }
        };
        let Some(scaler) = &self.scaler else {
            return text_response(
                StatusCode::NOT_FOUND,
                format!("{}\n", ScalerError::NoGroup(name.to_string())),
            );
        };
        let e = match scaler.set_desired(name, wanted.desired).await {
            Ok(()) => {
                tracing::info!(group = %name, desired = wanted.desired, "desired capacity set");
                let body = serde_json::json!({ "group": name, "desired": wanted.desired });
                return json_response(StatusCode::OK, body.to_string() + "\n");
            }
            Err(e) => e,
        };
        let status = match e {
            ScalerError::NoGroup(_) => StatusCode::NOT_FOUND,
            ScalerError::Refused { .. } => StatusCode::BAD_REQUEST,
            ScalerError::NotRunning(_) => StatusCode::SERVICE_UNAVAILABLE,
        };
        text_response(status, format!("{e}\n"))
    }
}

/// Checks `Authorization: Bearer TOKEN` against `admin.token` (without one, nothing is
/// allowed).
fn authorize(header: Option<&[u8]>, token: Option<&str>) -> Result<(), &'static str> {
    let token = token.ok_or("this server has no admin.token: it accepts no scaling requests")?;
    let sent = header
        .and_then(|h| h.strip_prefix(b"Bearer "))
        .ok_or("send Authorization: Bearer TOKEN")?;
    if !super::latency::same(sent, token.as_bytes()) {
        return Err("wrong token");
    }
    Ok(())
}

fn json_response(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut r = text_response(status, body);
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_token_is_required() {
        assert!(authorize(Some(b"Bearer s3cret"), Some("s3cret")).is_ok());
        assert_eq!(
            authorize(Some(b"Bearer s3cre"), Some("s3cret")),
            Err("wrong token")
        );
        assert_eq!(
            authorize(Some(b"Basic s3cret"), Some("s3cret")),
            Err("send Authorization: Bearer TOKEN")
        );
        assert!(authorize(None, Some("s3cret")).is_err());
        assert!(authorize(Some(b"Bearer s3cret"), None).is_err());
    }
}
