//! `[admin]` (the admin HTTP server: metrics, measured latency reports) and
//! `[latency_report]` (a balancer sending its measured client round-trip times to a DNS
//! server's admin server): the file structs and their validation.

use super::ConfigError;
use super::validate::{Ctx, parse_duration};
use serde::Deserialize;
use std::net::SocketAddr;
use std::time::Duration;
use toml::Spanned;

/// `[admin]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileAdmin {
    /// `address:port` of the admin HTTP server (port 0 picks one; the log names it).
    pub listen: Spanned<String>,
    /// Bearer token balancers must send with latency reports (without one, reports are
    /// refused).
    #[serde(default)]
    pub token: Option<Spanned<String>>,
    /// Measured latency older than this is ignored and dropped.
    #[serde(default = "default_latency_max_age")]
    pub latency_max_age: Spanned<String>,
    /// Whether `GET /v1/status`, `/metrics` and the dashboard are served without the token.
    #[serde(default = "default_public_reads")]
    pub public_reads: Spanned<bool>,
    /// Allow `listen` on an address other than loopback (the admin API reachable from other
    /// hosts). Default false: a non-loopback `listen` is an error.
    #[serde(default)]
    pub allow_remote: bool,
}

fn default_public_reads() -> Spanned<bool> {
    Spanned::new(0..0, true)
}

/// `[latency_report]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileLatencyReport {
    /// Base URL of the DNS server's admin server, `http://host:port`.
    pub to: Spanned<String>,
    /// The region this balancer measures for (a `[[region]]` of the DNS server).
    pub region: Spanned<String>,
    /// The DNS server's `admin.token`.
    pub token: Spanned<String>,
    /// Time between reports.
    #[serde(default = "default_report_interval")]
    pub interval: Spanned<String>,
}

fn default_latency_max_age() -> Spanned<String> {
    Spanned::new(0..0, "5m".into())
}

fn default_report_interval() -> Spanned<String> {
    Spanned::new(0..0, "10s".into())
}

/// `[admin]`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminConfig {
    /// Address of the admin HTTP server.
    pub listen: SocketAddr,
    /// Bearer token of `POST /v1/latency` (`None`: every report is refused).
    pub token: Option<String>,
    /// Age after which a measured latency entry no longer counts.
    pub latency_max_age: Duration,
    /// Reads (status, metrics, dashboard) without the token.
    pub public_reads: bool,
}

/// `[latency_report]`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LatencyReportConfig {
    /// Where reports go: `{to}/v1/latency`.
    pub url: hyper::Uri,
    /// Region measured for.
    pub region: String,
    /// Bearer token.
    pub token: String,
    /// Time between reports.
    pub interval: Duration,
}

/// Validates `[admin]`.
pub(super) fn admin(ctx: &Ctx<'_>, a: &FileAdmin) -> Result<AdminConfig, ConfigError> {
    let listen = a.listen.get_ref().parse().map_err(|_| {
        ctx.at(
            &a.listen,
            format!(
                "admin.listen: `{}` is not an address:port (e.g. 127.0.0.1:9090)",
                a.listen.get_ref()
            ),
        )
    })?;
    if !is_loopback(&listen) && !a.allow_remote {
        return Err(ctx.at(
            &a.listen,
            format!(
                "admin.listen: {listen} is not a loopback address; set admin.allow_remote = true \
                 to serve the admin API to other hosts (actions still need admin.token)"
            ),
        ));
    }
    let token = match &a.token {
        Some(t) => Some(token(ctx, "admin.token", t)?),
        None => None,
    };
    let latency_max_age = positive(ctx, "admin.latency_max_age", &a.latency_max_age)?;
    let public_reads = *a.public_reads.get_ref();
    if !public_reads && token.is_none() {
        return Err(ctx.at(
            &a.public_reads,
            "admin.public_reads = false needs admin.token (reads would be impossible)",
        ));
    }
    Ok(AdminConfig {
        listen,
        token,
        latency_max_age,
        public_reads,
    })
}

/// 127.0.0.0/8 or ::1 (an unspecified address such as 0.0.0.0 listens everywhere).
fn is_loopback(addr: &SocketAddr) -> bool {
    addr.ip().is_loopback()
}

/// Validates `[latency_report]`.
pub(super) fn latency_report(
    ctx: &Ctx<'_>,
    r: &FileLatencyReport,
) -> Result<LatencyReportConfig, ConfigError> {
    let base = r.to.get_ref().trim_end_matches('/');
    let url: hyper::Uri = format!("{base}/v1/latency")
        .parse()
        .ok()
        .filter(|u: &hyper::Uri| {
            u.scheme_str() == Some("http") && u.authority().is_some() && u.query().is_none()
        })
        .ok_or_else(|| {
            ctx.at(
                &r.to,
                format!(
                    "latency_report.to: `{}` is not an http://host:port URL (the DNS server's admin.listen)",
                    r.to.get_ref()
                ),
            )
        })?;
    if r.region.get_ref().is_empty() {
        return Err(ctx.at(&r.region, "latency_report.region must name a region"));
    }
    Ok(LatencyReportConfig {
        url,
        region: r.region.get_ref().clone(),
        token: token(ctx, "latency_report.token", &r.token)?,
        interval: positive(ctx, "latency_report.interval", &r.interval)?,
    })
}

/// A token: printable ASCII without spaces (it travels in an HTTP header).
fn token(ctx: &Ctx<'_>, key: &str, t: &Spanned<String>) -> Result<String, ConfigError> {
    let s = t.get_ref();
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ctx.at(
            t,
            format!("{key} must be printable ASCII without spaces, and not empty"),
        ));
    }
    Ok(s.clone())
}

fn positive(ctx: &Ctx<'_>, key: &str, v: &Spanned<String>) -> Result<Duration, ConfigError> {
    let d = parse_duration(v.get_ref()).map_err(|e| ctx.at(v, format!("{key}: {e}")))?;
    if d.is_zero() {
        return Err(ctx.at(v, format!("{key} must be greater than 0")));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use crate::config::Config;
    use std::path::Path;
    use std::time::Duration;

    fn parse(text: &str) -> Result<Config, String> {
        Config::parse(text, Path::new("t.toml"), Path::new("/")).map_err(|e| e.to_string())
    }

    #[test]
    fn admin_and_report_sections_with_defaults() {
        let c = parse(
            "[admin]\nlisten = \"127.0.0.1:0\"\ntoken = \"s3cret\"\n\
             [latency_report]\nto = \"http://127.0.0.1:9090/\"\nregion = \"eu-west\"\ntoken = \"s3cret\"\n",
        )
        .unwrap();
        let a = c.admin.unwrap();
        assert_eq!(a.token.as_deref(), Some("s3cret"));
        assert_eq!(a.latency_max_age, Duration::from_secs(300));
        assert!(a.public_reads);
        let r = c.latency_report.unwrap();
        assert_eq!(r.url.to_string(), "http://127.0.0.1:9090/v1/latency");
        assert_eq!(r.interval, Duration::from_secs(10));
        let none = parse("").unwrap();
        assert!(none.admin.is_none() && none.latency_report.is_none());
    }

    #[test]
    fn errors_name_the_key_and_line() {
        let e = parse("[admin]\nlisten = \"localhost\"\n").unwrap_err();
        assert!(e.starts_with("t.toml:2: admin.listen"), "{e}");
        let e = parse("[admin]\nlisten = \"127.0.0.1:1\"\nlatency_max_age = \"0s\"\n").unwrap_err();
        assert!(e.starts_with("t.toml:3: admin.latency_max_age"), "{e}");
        let e = parse("[admin]\nlisten = \"127.0.0.1:1\"\npublic_reads = false\n").unwrap_err();
        assert!(e.starts_with("t.toml:3: admin.public_reads"), "{e}");
        let e = parse("[admin]\nlisten = \"127.0.0.1:1\"\ntoken = \"a b\"\n").unwrap_err();
        assert!(e.starts_with("t.toml:3: admin.token"), "{e}");
        let e = parse("[latency_report]\nto = \"ftp://x\"\nregion = \"r\"\ntoken = \"t\"\n")
            .unwrap_err();
        assert!(e.starts_with("t.toml:2: latency_report.to"), "{e}");
        let e =
            parse("[latency_report]\nto = \"http://127.0.0.1:1\"\nregion = \"r\"\n").unwrap_err();
        assert!(e.contains("missing field `token`"), "{e}");
    }

    #[test]
    fn beyond_loopback_only_when_allowed() {
        for listen in ["0.0.0.0:9090", "[::]:9090", "192.0.2.10:9090"] {
            let e = parse(&format!("[admin]\nlisten = \"{listen}\"\n")).unwrap_err();
            assert!(
                e.starts_with("t.toml:2: admin.listen") && e.contains("allow_remote"),
                "{e}"
            );
            let c = parse(&format!(
                "[admin]\nlisten = \"{listen}\"\nallow_remote = true\n"
            ))
            .unwrap();
            assert!(c.admin.is_some());
        }
        assert!(parse("[admin]\nlisten = \"[::1]:0\"\n").is_ok());
        assert!(parse("[admin]\nlisten = \"127.0.0.2:0\"\n").is_ok());
    }
}
