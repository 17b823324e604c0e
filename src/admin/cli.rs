//! `roundhouse status`: fetches `/v1/status` from an admin server and prints the picture the
//! dashboard shows, as plain text for a terminal.

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::header::AUTHORIZATION;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;
use std::fmt::Write;
use std::net::SocketAddr;
use std::time::Duration;

/// Time allowed for the whole request.
const TIMEOUT: Duration = Duration::from_secs(10);

/// Fetches the status document from the admin server at `admin`.
pub async fn fetch(admin: SocketAddr, token: Option<&str>) -> Result<Value, String> {
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let mut req = hyper::Request::get(format!("http://{admin}/v1/status"));
    if let Some(t) = token {
        req = req.header(AUTHORIZATION, format!("Bearer {t}"));
    }
    let req = req.body(Empty::new()).map_err(|e| e.to_string())?;
    let work = async {
        let resp = client
            .request(req)
            .await
            .map_err(|e| format!("cannot reach the admin server at {admin}: {e}"))?;
        let status = resp.status();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        if !status.is_success() {
            return Err(format!(
                "{admin}: {status}: {}",
                String::from_utf8_lossy(&body).trim()
            ));
        }
        serde_json::from_slice(&body).map_err(|e| format!("{admin}: not a status document: {e}"))
    };
    tokio::time::timeout(TIMEOUT, work)
        .await
        .map_err(|_| format!("{admin}: no answer within {TIMEOUT:?}"))?
}

fn share(n: u64, total: u64) -> u64 {
    (100 * n + total / 2).checked_div(total).unwrap_or(0)
}

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or(0)
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap_or("")
}

fn health(ready: bool, mode: &str) -> String {
    let word = if ready { "ready" } else { "NOT READY" };
    if mode == "auto" {
        word.into()
    } else {
        format!("{word} ({mode})")
    }
}

/// The status document as terminal text: configuration, regions, pool endpoints, targets.
pub fn render(st: &Value) -> String {
    let mut out = String::new();
    let c = &st["config"];
    let _ = writeln!(
        out,
        "config {}  loaded at {}  reloads {} ok, {} failed",
        s(&c["hash"]),
        u(&c["loaded_at"]),
        u(&c["reloads_ok"]),
        u(&c["reloads_failed"])
    );
    let _ = writeln!(
        out,
        "dns    {} queries, {} fail-open answers\n",
        u(&st["dns"]["queries"]),
        u(&st["dns"]["failed_open"])
    );
    let empty = Vec::new();
    let list = |v: &Value| v.as_array().unwrap_or(&empty).clone();
    let regions = list(&st["regions"]);
    if !regions.is_empty() {
        let total: u64 = regions.iter().map(|r| u(&r["answers"])).sum();
        let _ = writeln!(out, "REGION           READY   ANSWERS  SHARE");
        for r in &regions {
            let _ = writeln!(
                out,
                "{:<16} {:>2}/{:<2} {:>10} {:>5}%",
                s(&r["name"]),
                u(&r["ready"]),
                u(&r["endpoints"]),
                u(&r["answers"]),
                share(u(&r["answers"]), total)
            );
        }
        out.push('\n');
    }
    let pools = list(&st["pools"]);
    if !pools.is_empty() {
        let _ = writeln!(
            out,
            "POOL         ENDPOINT                REGION       HEALTH              ANSWERS  LAST PROBE"
        );
        for p in &pools {
            for e in list(&p["endpoints"]) {
                let _ = writeln!(
                    out,
                    "{:<12} {:<23} {:<12} {:<18} {:>8}  {}",
                    s(&p["name"]),
                    s(&e["address"]),
                    s(&e["region"]),
                    health(e["ready"].as_bool().unwrap_or(false), s(&e["mode"])),
                    u(&e["answers"]),
                    s(&e["last_probe"])
                );
            }
        }
        out.push('\n');
    }
    let groups = list(&st["target_groups"]);
    if !groups.is_empty() {
        let _ = writeln!(
            out,
            "TARGET GROUP TARGET                  HEALTH              IN FLIGHT  REQUESTS  SHARE"
        );
        for g in &groups {
            let targets = list(&g["targets"]);
            let total: u64 = targets.iter().map(|t| u(&t["requests"])).sum();
            for t in &targets {
                let mut h = health(t["ready"].as_bool().unwrap_or(false), s(&t["mode"]));
                if t["ejected"].as_bool() == Some(true) {
                    h.push_str(" ejected");
                }
                let _ = writeln!(
                    out,
                    "{:<12} {:<23} {:<18} {:>10} {:>9} {:>5}%",
                    s(&g["name"]),
                    s(&t["address"]),
                    h,
                    u(&t["in_flight"]),
                    u(&t["requests"]),
                    share(u(&t["requests"]), total)
                );
            }
        }
    }
    scaling(&mut out, &list(&st["scaling_groups"]));
    out
}

/// The scaling groups: capacity, instances by state, and the latest activity of each.
fn scaling(out: &mut String, groups: &[Value]) {
    if groups.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "\nSCALING GROUP    REGION        MIN DESIRED MAX  PENDING IN SERVICE DRAINING"
    );
    for g in groups {
        let _ = writeln!(
            out,
            "{:<16} {:<12} {:>4} {:>7} {:>3} {:>8} {:>10} {:>8}",
            s(&g["name"]),
            s(&g["region"]),
            u(&g["min"]),
            u(&g["desired"]),
            u(&g["max"]),
            u(&g["pending"]),
            u(&g["in_service"]),
            u(&g["draining"])
        );
    }
    for g in groups {
        let Some(a) = g["activities"].as_array().and_then(|a| a.first()) else {
            continue;
        };
        let _ = writeln!(
            out,
            "  {}: {} {} ({})",
            s(&g["name"]),
            s(&a["start_time"]),
            s(&a["description"]),
            s(&a["status"])
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_regions_endpoints_and_targets() {
        let st = serde_json::json!({
            "config": {"hash": "00ff", "loaded_at": 1, "reloads_ok": 2, "reloads_failed": 0},
            "dns": {"queries": 10, "failed_open": 0},
            "regions": [{"name": "east", "endpoints": 2, "ready": 1, "answers": 3},
                        {"name": "west", "endpoints": 1, "ready": 1, "answers": 1}],
            "pools": [{"name": "web", "endpoints": [
                {"address": "192.0.2.1", "region": "east", "ready": false, "mode": "drain", "answers": 3, "last_probe": "HTTP 200"}]}],
            "target_groups": [{"name": "app", "targets": [
                {"address": "127.0.0.1:80", "ready": true, "mode": "auto", "in_flight": 1, "requests": 4, "ejected": false}]}],
            "scaling_groups": [{"name": "web-east", "region": "east", "min": 1, "desired": 2, "max": 3,
                "pending": 1, "in_service": 1, "draining": 0, "activities": [
                {"start_time": "2026-01-01T00:00:00Z", "description": "Launching a new instance: web-east-2", "status": "InProgress"}]}]
        });
        let text = render(&st);
        assert!(text.contains("config 00ff"), "{text}");
        assert!(
            text.contains("east              1/2           3    75%"),
            "{text}"
        );
        assert!(text.contains("NOT READY (drain)"), "{text}");
        assert!(text.contains("127.0.0.1:80"), "{text}");
        assert!(text.contains("100%"), "{text}");
        assert!(
            text.contains(
                "web-east         east            1       2   3        1          1        0"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "web-east: 2026-01-01T00:00:00Z Launching a new instance: web-east-2 (InProgress)"
            ),
            "{text}"
        );
    }
}
