//! Endpoint health checks (AWS ELB target-health semantics).
//!
//! A [`ProbeKey`] (address + [`CheckSpec`]) is probed by one loop no matter how many
//! pools use it. [`checker::Checker`] runs the loops and publishes a
//! [`checker::HealthTable`] snapshot; [`state::HealthState`] holds the pure
//! rise/fall logic and [`probe::probe`] performs one HTTP or TCP probe.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

pub mod checker;
pub mod probe;
pub mod state;

pub use checker::{Checker, HealthTable, ProbeStatus};
pub use probe::{ProbeResult, probe};
pub use state::{HealthState, Transition};

/// Status codes that count as healthy, e.g. "200-299" or "200,204,300-399".
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StatusMatcher {
    /// Inclusive ranges, in the order written.
    ranges: Vec<(u16, u16)>,
}

const MATCHER_SYNTAX: &str = "expected HTTP status codes as a comma-separated list of codes \
     or inclusive ranges between 100 and 599, e.g. \"200-299\" or \"200,204,300-399\"";

impl StatusMatcher {
    /// True if `code` falls in one of the ranges.
    pub fn matches(&self, code: u16) -> bool {
        self.ranges
            .iter()
            .any(|&(lo, hi)| (lo..=hi).contains(&code))
    }
}

impl Default for StatusMatcher {
    /// "200-299", the usual definition of a healthy HTTP answer.
    fn default() -> Self {
        StatusMatcher {
            ranges: vec![(200, 299)],
        }
    }
}

fn parse_code(text: &str, whole: &str) -> Result<u16, String> {
    match text.trim().parse::<u16>() {
        Ok(code) if (100..=599).contains(&code) => Ok(code),
        _ => Err(format!(
            "invalid status code {:?} in {whole:?}: {MATCHER_SYNTAX}",
            text.trim()
        )),
    }
}

fn parse_range(item: &str, whole: &str) -> Result<(u16, u16), String> {
    let (lo, hi) = match item.split_once('-') {
        Some((lo, hi)) => (parse_code(lo, whole)?, parse_code(hi, whole)?),
        None => {
            let code = parse_code(item, whole)?;
            (code, code)
        }
    };
    if lo > hi {
        return Err(format!(
            "empty range \"{lo}-{hi}\" in {whole:?}: {MATCHER_SYNTAX}"
        ));
    }
    Ok((lo, hi))
}

impl FromStr for StatusMatcher {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.trim().is_empty() {
            return Err(format!("empty status matcher: {MATCHER_SYNTAX}"));
        }
        let ranges = s
            .split(',')
            .map(|item| parse_range(item, s))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(StatusMatcher { ranges })
    }
}

impl fmt::Display for StatusMatcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, &(lo, hi)) in self.ranges.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            if lo == hi {
                write!(f, "{lo}")?;
            } else {
                write!(f, "{lo}-{hi}")?;
            }
        }
        Ok(())
    }
}

/// How to probe.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// `GET path` over HTTP/1.1; healthy if the status matches and the body contains the text.
    Http {
        /// Request target, e.g. "/healthz" (empty means "/").
        path: String,
        /// `Host:` header; the probed address (and port unless 80) when `None`.
        host: Option<String>,
        /// Status codes that count as healthy.
        matcher: StatusMatcher,
        /// Text that must occur in the first 64 KiB of the body.
        body_contains: Option<String>,
    },
    /// Healthy if a TCP connection can be opened.
    Tcp,
}

/// A health check (AWS ELB semantics).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CheckSpec {
    /// What to send and what counts as healthy.
    pub protocol: Protocol,
    /// Port probed on the endpoint's address.
    pub port: u16,
    /// Time between the starts of two probes (plus up to 10 % jitter).
    pub interval: Duration,
    /// Bound on one whole probe; validated elsewhere to be below `interval`.
    pub timeout: Duration,
    /// Consecutive successes for a not-ready endpoint to become ready (>= 1).
    pub healthy_threshold: u32,
    /// Consecutive failures for a ready endpoint to become not ready (>= 1).
    pub unhealthy_threshold: u32,
}

impl fmt::Display for CheckSpec {
    /// Short label for logs without spaces, e.g. "http:8080/healthz" or "tcp:443".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.protocol {
            Protocol::Http { path, .. } => write!(f, "http:{}{path}", self.port),
            Protocol::Tcp => write!(f, "tcp:{}", self.port),
        }
    }
}

/// One probed thing: an address checked with a spec. Shared by every pool that uses it.
///
/// Equality compares the spec by value (the same pointer is the fast path); hashing uses
/// only the address and the spec's port and interval, which keeps the per-query health
/// lookups cheap (equal keys still hash equally).
#[derive(Debug, Clone, Eq)]
pub struct ProbeKey {
    /// Address of the endpoint.
    pub addr: IpAddr,
    /// The check run against it.
    pub spec: Arc<CheckSpec>,
}

impl PartialEq for ProbeKey {
    fn eq(&self, other: &ProbeKey) -> bool {
        self.addr == other.addr && (Arc::ptr_eq(&self.spec, &other.spec) || self.spec == other.spec)
    }
}

impl std::hash::Hash for ProbeKey {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        self.addr.hash(h);
        self.spec.port.hash(h);
        self.spec.interval.hash(h);
    }
}

impl fmt::Display for ProbeKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.addr, self.spec)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matcher_parses_and_matches() {
        let cases: &[(&str, &[u16], &[u16])] = &[
            ("200-299", &[200, 250, 299], &[199, 300, 503]),
            ("200", &[200], &[201, 199]),
            ("200,204,300-399", &[200, 204, 301, 399], &[201, 400]),
            (" 200 - 202 , 404 ", &[200, 202, 404], &[203, 403]),
        ];
        for &(text, good, bad) in cases {
            let m: StatusMatcher = text.parse().unwrap();
            for &c in good {
                assert!(m.matches(c), "{text} should match {c}");
            }
            for &c in bad {
                assert!(!m.matches(c), "{text} should not match {c}");
            }
        }
    }

    #[test]
    fn matcher_displays_round_trip() {
        for text in ["200-299", "200", "200,204,300-399"] {
            let m: StatusMatcher = text.parse().unwrap();
            assert_eq!(m.to_string(), text);
            assert_eq!(m.to_string().parse::<StatusMatcher>().unwrap(), m);
        }
        assert_eq!(StatusMatcher::default().to_string(), "200-299");
    }

    #[test]
    fn matcher_rejects_bad_syntax() {
        for text in [
            "", " ", "abc", "200-", "-200", "299-200", "99", "600", "200,,300", "2xx",
        ] {
            let err = text.parse::<StatusMatcher>().unwrap_err();
            assert!(err.contains("e.g. \"200-299\""), "{text:?}: {err}");
        }
    }

    #[test]
    fn probe_key_compares_spec_by_value() {
        use std::collections::HashSet;
        let spec = CheckSpec {
            protocol: Protocol::Tcp,
            port: 80,
            interval: Duration::from_secs(10),
            timeout: Duration::from_secs(2),
            healthy_threshold: 2,
            unhealthy_threshold: 2,
        };
        let addr: IpAddr = "192.0.2.1".parse().unwrap();
        let a = ProbeKey {
            addr,
            spec: Arc::new(spec.clone()),
        };
        let b = ProbeKey {
            addr,
            spec: Arc::new(spec),
        };
        assert_eq!(a, b);
        assert_eq!(a.to_string(), "192.0.2.1 tcp:80");
        let set: HashSet<ProbeKey> = [a, b].into_iter().collect();
        assert_eq!(set.len(), 1);
    }
}
