//! Scaling groups on the admin server:
//!
//! - `GET /v1/scaling-groups`: every group's min / desired / max, its instances with their
//!   lifecycle state, and its activity history (newest first), as JSON;
//! - `POST /v1/scaling-groups/NAME/desired` with `{"desired": N}`: manual scaling;
//! - `POST /v1/scaling-groups/NAME/capacity` with any of `{"min": A, "max": B, "desired": N}`
//!   (AWS `UpdateAutoScalingGroup`): new size limits; a desired capacity left out moves
//!   into them;
//! - `POST /v1/scaling-groups/NAME/instance-refresh` (no body): replaces every instance,
//!   one at a time, launching each replacement before the old instance drains; the group's
//!   `refresh` field shows the progress.
//!
//! Actions need `Authorization: Bearer TOKEN` (the `admin.token`): 401 without it, 404 for
//! an unknown group, 400 for a body that is not the JSON shown or a capacity the group
//! refuses (N outside [min, max], min above max, a refresh already running).

use super::{Admin, REQUEST_TIMEOUT, text_response};
use crate::scaler::activity::Activity;
use crate::scaler::status::GroupStatus;
use crate::scaler::{CapacityUpdate, ScalerError};
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

/// A group action.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Action {
    Desired,
    Capacity,
    Refresh,
}

impl Action {
    const ALL: [(&'static str, Action); 3] = [
        ("/desired", Action::Desired),
        ("/capacity", Action::Capacity),
        ("/instance-refresh", Action::Refresh),
    ];

    /// What the body must be.
    fn expected(self) -> &'static str {
        match self {
            Action::Desired => "{\"desired\": N}",
            Action::Capacity => "{\"min\": A, \"max\": B, \"desired\": N} (any of them)",
            Action::Refresh => "no body",
        }
    }
}

/// `/NAME/ACTION` after the prefix: the group and the action.
fn route(rest: &str) -> Option<(&str, Action)> {
    let rest = rest.strip_prefix('/')?;
    Action::ALL.into_iter().find_map(|(suffix, a)| {
        let name = rest.strip_suffix(suffix)?;
        (!name.is_empty() && !name.contains('/')).then_some((name, a))
    })
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
            (&Method::POST, r) => match route(r) {
                Some((name, action)) => {
                    let name = name.to_string();
                    self.group_action(&name, action, req).await
                }
                None => text_response(StatusCode::NOT_FOUND, "not found\n".into()),
            },
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

    async fn group_action(
        &self,
        name: &str,
        action: Action,
        req: Request<Incoming>,
    ) -> Response<Full<Bytes>> {
        let config = self.config.load_full();
        let header = req.headers().get(AUTHORIZATION).map(HeaderValue::as_bytes);
        if let Err(what) = authorize(header, config.token.as_deref()) {
            tracing::warn!(group = %name, ?action, "scaling request refused: {what}");
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
        let text = |e: serde_json::Error| e.to_string();
        let capacity = match action {
            Action::Desired => serde_json::from_slice::<SetDesired>(&body)
                .map(|w| {
                    Some(CapacityUpdate {
                        desired: Some(w.desired),
                        ..CapacityUpdate::default()
                    })
                })
                .map_err(text),
            Action::Capacity => serde_json::from_slice(&body).map(Some).map_err(text),
            Action::Refresh if body.iter().all(u8::is_ascii_whitespace) => Ok(None),
            Action::Refresh => Err(format!("{} bytes of body", body.len())),
        };
        let capacity = match capacity {
            Ok(c) => c,
            Err(e) => {
                let what = format!("expected {}: {e}\n", action.expected());
                return text_response(StatusCode::BAD_REQUEST, what);
            }
        };
        let Some(scaler) = &self.scaler else {
            return text_response(
                StatusCode::NOT_FOUND,
                format!("{}\n", ScalerError::NoGroup(name.to_string())),
            );
        };
        let done = match capacity {
            Some(c) => scaler.update(name, c).await.map(|()| {
                tracing::info!(group = %name, ?c, "capacity set");
                let s = scaler.groups().into_iter().find(|g| g.name == name);
                let (min, desired, max) = s.map_or((0, 0, 0), |s| (s.min, s.desired, s.max));
                serde_json::json!({ "group": name, "min": min, "desired": desired, "max": max })
            }),
            None => scaler.start_refresh(name).await.map(|total| {
                tracing::info!(group = %name, total, "instance refresh started");
                serde_json::json!({ "group": name, "refresh": { "total": total } })
            }),
        };
        let e = match done {
            Ok(body) => return json_response(StatusCode::OK, body.to_string() + "\n"),
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

    #[test]
    fn group_actions_are_routed_by_suffix() {
        assert_eq!(route("/web/desired"), Some(("web", Action::Desired)));
        assert_eq!(route("/web/capacity"), Some(("web", Action::Capacity)));
        assert_eq!(
            route("/web/instance-refresh"),
            Some(("web", Action::Refresh))
        );
        assert_eq!(route("/a/b/desired"), None);
        assert_eq!(route("//desired"), None);
        assert_eq!(route("/web/other"), None);
    }
}
