//! `POST /v1/latency`: a balancer's measured round-trip times for its region. Checking a
//! report is a pure function ([`check_report`]); the endpoint then merges it into the
//! measured latency table.

use crate::balancer::rtt::LatencyReport;
use crate::config::Network;
use crate::steering::{MAX_V4_PREFIX, MAX_V6_PREFIX};
use hyper::StatusCode;

/// Most client networks one report may carry (a balancer's book holds 65,536).
pub const MAX_NETWORKS: usize = 65_536;
/// Most bytes a report body may have.
pub const MAX_BODY: usize = 8 * 1024 * 1024;

/// Why a report is refused: the HTTP status, the metrics result label and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// 400, 401, 404 or 413.
    pub status: StatusCode,
    /// `unauthorized`, `malformed` or `unknown_region`.
    pub result: &'static str,
    /// What is wrong (sent as the body).
    pub what: String,
}

impl Rejection {
    fn malformed(what: String) -> Rejection {
        Rejection {
            status: StatusCode::BAD_REQUEST,
            result: "malformed",
            what,
        }
    }
}

/// One accepted network of a report.
#[derive(Debug, Clone, PartialEq)]
pub struct Accepted {
    /// Client network (host bits cleared).
    pub network: Network,
    /// Round-trip time, milliseconds.
    pub rtt_ms: f64,
    /// Samples behind it.
    pub samples: u64,
}

/// Checks the `Authorization` header against the configured token (`None`: reports are
/// refused, the server has no token).
pub fn authorize(header: Option<&[u8]>, token: Option<&str>) -> Result<(), Rejection> {
    let refuse = |what: &str| Rejection {
        status: StatusCode::UNAUTHORIZED,
        result: "unauthorized",
        what: what.to_string(),
    };
    let Some(token) = token else {
        return Err(refuse(
            "this server has no admin.token: it accepts no latency reports",
        ));
    };
    let sent = header
        .and_then(|h| h.strip_prefix(b"Bearer "))
        .ok_or_else(|| refuse("send Authorization: Bearer TOKEN"))?;
    if !same(sent, token.as_bytes()) {
        return Err(refuse("wrong token"));
    }
    Ok(())
}

/// Compares without stopping at the first difference, so the time taken does not tell an
/// attacker how much of a guessed token is right.
pub(super) fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Parses and checks a report body: JSON as [`LatencyReport`], every prefix a CIDR network no
/// longer than a DNS decision uses (/24, /56), every RTT a finite number >= 0, and the region
/// one of `regions`.
pub fn check_report(body: &[u8], regions: &[&str]) -> Result<(String, Vec<Accepted>), Rejection> {
    let report: LatencyReport = serde_json::from_slice(body)
        .map_err(|e| Rejection::malformed(format!("body is not a latency report: {e}")))?;
    if report.networks.len() > MAX_NETWORKS {
        return Err(Rejection::malformed(format!(
            "networks: {} entries, at most {MAX_NETWORKS} per report",
            report.networks.len()
        )));
    }
    let mut out = Vec::with_capacity(report.networks.len());
    for (i, n) in report.networks.iter().enumerate() {
        let at = |what: String| Rejection::malformed(format!("networks[{i}].{what}"));
        let net: Network = n.prefix.parse().map_err(|e| at(format!("prefix: {e}")))?;
        let max = if net.addr.is_ipv4() {
            MAX_V4_PREFIX
        } else {
            MAX_V6_PREFIX
        };
        if net.prefix > max {
            return Err(at(format!(
                "prefix: `{}` is longer than /{max}, the longest prefix a DNS answer is decided on",
                n.prefix
            )));
        }
        if !n.rtt_ms.is_finite() || n.rtt_ms < 0.0 {
            return Err(at(format!(
                "rtt_ms: {} is not a number of milliseconds >= 0",
                n.rtt_ms
            )));
        }
        out.push(Accepted {
            network: Network {
                addr: crate::steering::mask(net.addr, net.prefix),
                prefix: net.prefix,
            },
            rtt_ms: n.rtt_ms,
            samples: n.samples,
        });
    }
    if !regions.contains(&report.region.as_str()) {
        return Err(Rejection {
            status: StatusCode::NOT_FOUND,
            result: "unknown_region",
            what: format!(
                "region `{}`: this DNS server has no [[region]] of that name",
                report.region
            ),
        });
    }
    Ok((report.region, out))
}

#[cfg(test)]
mod tests {
    use super::*;

    const REGIONS: [&str; 2] = ["us-east", "eu-west"];

    fn body(region: &str, prefix: &str, rtt: &str) -> Vec<u8> {
        format!(
            r#"{{"region":"{region}","networks":[{{"prefix":"{prefix}","rtt_ms":{rtt},"min_ms":1,"samples":4}}]}}"#
        )
        .into_bytes()
    }

    #[test]
    fn a_good_report_is_accepted_with_host_bits_cleared() {
        let (region, nets) =
            check_report(&body("eu-west", "198.51.100.9/24", "12.5"), &REGIONS).unwrap();
        assert_eq!(region, "eu-west");
        assert_eq!(
            nets,
            [Accepted {
                network: "198.51.100.0/24".parse().unwrap(),
                rtt_ms: 12.5,
                samples: 4
            }]
        );
    }

    #[test]
    fn malformed_reports_say_what_is_wrong() {
        let bad = |b: &[u8]| {
            let r = check_report(b, &REGIONS).unwrap_err();
            assert_eq!((r.status, r.result), (StatusCode::BAD_REQUEST, "malformed"));
            r.what
        };
        assert!(bad(b"{").starts_with("body is not a latency report"));
        assert!(bad(br#"{"region":"eu-west"}"#).contains("missing field `networks`"));
        assert!(bad(&body("eu-west", "nope", "1")).starts_with("networks[0].prefix: `nope`"));
        assert!(bad(&body("eu-west", "192.0.2.1/32", "1")).contains("longer than /24"));
        assert!(bad(&body("eu-west", "2001:db8::/64", "1")).contains("longer than /56"));
        assert!(bad(&body("eu-west", "192.0.2.0/24", "-3")).starts_with("networks[0].rtt_ms"));
    }

    #[test]
    fn unknown_regions_are_not_found() {
        let r = check_report(&body("mars", "192.0.2.0/24", "1"), &REGIONS).unwrap_err();
        assert_eq!(
            (r.status, r.result),
            (StatusCode::NOT_FOUND, "unknown_region")
        );
        assert!(r.what.contains("`mars`"));
    }

    #[test]
    fn only_the_configured_bearer_token_passes() {
        assert!(authorize(Some(b"Bearer s3cret"), Some("s3cret")).is_ok());
        for (header, token) in [
            (Some(&b"Bearer s3cre7"[..]), Some("s3cret")),
            (Some(b"Bearer s3cret2"), Some("s3cret")),
            (Some(b"s3cret"), Some("s3cret")),
            (None, Some("s3cret")),
            (Some(b"Bearer s3cret"), None),
        ] {
            let r = authorize(header, token).unwrap_err();
            assert_eq!(
                (r.status, r.result),
                (StatusCode::UNAUTHORIZED, "unauthorized")
            );
        }
    }
}
