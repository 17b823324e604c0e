//! Sticky sessions (ALB): a cookie names the target a client was sent to, and later requests
//! carrying it go there again while that target is available. In `lb-cookie` mode the balancer
//! sets the cookie on every response (refreshing its lifetime); in `app-cookie` mode it sets
//! its cookie only on responses where the application sets its own session cookie. A client
//! whose target died or drains is picked a new target and gets a new cookie.
//!
//! The cookie holds a hash of the group and target address, not the address itself.

use crate::config::{Stickiness, StickyMode};
use hyper::HeaderMap;
use hyper::header::{COOKIE, HeaderValue, SET_COOKIE};
use std::net::SocketAddr;

/// The cookie name of a target group: `rh_` and the group name (non-token characters as `_`).
pub fn cookie_name(group: &str) -> String {
    let safe: String = group
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("rh_{safe}")
}

/// The cookie value naming `target` of `group`.
pub fn target_id(group: &str, target: SocketAddr) -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (group, target).hash(&mut h);
    format!("{:016x}", crate::pool::select::mix(h.finish()))
}

/// The value of cookie `name` in the request's Cookie headers.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim_matches('"'))
}

/// The target (index into `targets`) the request's cookie names, if any.
pub fn sticky_target(headers: &HeaderMap, group: &str, targets: &[SocketAddr]) -> Option<usize> {
    let want = cookie(headers, &cookie_name(group))?;
    targets.iter().position(|t| target_id(group, *t) == want)
}

/// Adds the balancer's cookie to a response from `target`, when the mode says so.
pub fn set_cookie(
    response: &mut HeaderMap,
    stickiness: &Stickiness,
    group: &str,
    target: SocketAddr,
) {
    if let StickyMode::AppCookie(app) = &stickiness.mode {
        let sets_app_cookie = response
            .get_all(SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| v.split_once('=').is_some_and(|(k, _)| k.trim() == app));
        if !sets_app_cookie {
            return;
        }
    }
    let value = format!(
        "{}={}; Max-Age={}; Path=/; HttpOnly",
        cookie_name(group),
        target_id(group, target),
        stickiness.duration.as_secs()
    );
    if let Ok(v) = HeaderValue::from_str(&value) {
        response.append(SET_COOKIE, v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn targets() -> Vec<SocketAddr> {
        (0..3)
            .map(|i| format!("127.0.0.1:{}", 8000 + i).parse().unwrap())
            .collect()
    }

    #[test]
    fn a_cookie_names_its_target_again() {
        let t = targets();
        let mut resp = HeaderMap::new();
        let s = Stickiness {
            mode: StickyMode::LbCookie,
            duration: Duration::from_secs(3600),
        };
        set_cookie(&mut resp, &s, "web", t[2]);
        let set = resp.get(SET_COOKIE).unwrap().to_str().unwrap();
        assert!(set.starts_with("rh_web="), "{set}");
        assert!(set.contains("Max-Age=3600"), "{set}");
        let pair = set.split(';').next().unwrap();
        let mut req = HeaderMap::new();
        req.insert(COOKIE, format!("other=1; {pair}").parse().unwrap());
        assert_eq!(sticky_target(&req, "web", &t), Some(2));
        assert_eq!(
            sticky_target(&req, "api", &t),
            None,
            "another group's cookie"
        );
        assert_eq!(sticky_target(&HeaderMap::new(), "web", &t), None);
    }

    #[test]
    fn app_cookie_mode_follows_the_application() {
        let t = targets();
        let s = Stickiness {
            mode: StickyMode::AppCookie("SESSIONID".into()),
            duration: Duration::from_secs(60),
        };
        let mut plain = HeaderMap::new();
        set_cookie(&mut plain, &s, "web", t[0]);
        assert!(
            plain.get(SET_COOKIE).is_none(),
            "no app cookie, no balancer cookie"
        );
        let mut with_app = HeaderMap::new();
        with_app.insert(SET_COOKIE, "SESSIONID=abc; Path=/".parse().unwrap());
        set_cookie(&mut with_app, &s, "web", t[0]);
        assert_eq!(with_app.get_all(SET_COOKIE).iter().count(), 2);
    }

    #[test]
    fn cookie_names_are_tokens() {
        assert_eq!(cookie_name("web.eu/1"), "rh_web_eu_1");
    }
}
