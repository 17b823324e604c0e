//! File structs -> domain types, with `file:line` on every error.

use super::file::{FileConfig, FileDns, FileLog};
use super::{Config, ConfigError, DnsConfig, LogConfig, LogFormat, TransferConfig, ZoneConfig};
use crate::dns::name::Name;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;
use toml::Spanned;

/// An IP network in CIDR form (a bare address is a /32 or /128).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Network {
    /// Network address.
    pub addr: IpAddr,
    /// Prefix length.
    pub prefix: u8,
}

impl Network {
    /// True when `ip` lies in this network (IPv4-mapped IPv6 addresses count as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        let (a, b, bits) = match (self.addr, ip) {
            (IpAddr::V4(a), IpAddr::V4(b)) => (
                u128::from(u32::from(a)) << 96,
                u128::from(u32::from(b)) << 96,
                self.prefix,
            ),
            (IpAddr::V6(a), IpAddr::V6(b)) => (u128::from(a), u128::from(b), self.prefix),
            _ => return false,
        };
        bits == 0 || (a ^ b) >> (128 - u32::from(bits)) == 0
    }
}

impl FromStr for Network {
    type Err = String;
    fn from_str(s: &str) -> Result<Network, String> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("`{s}` is not an IP address or CIDR network"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("`{s}`: prefix must be 0..={max}"))?,
        };
        Ok(Network { addr, prefix })
    }
}

impl std::fmt::Display for Network {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// Parses `500ms`, `10s`, `5m`, `1h`, `1d` (a bare number is seconds).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a duration (try `10s` or `500ms`)"))?;
    let secs = match unit.trim() {
        "ms" => n / 1000.0,
        "" | "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        "d" => n * 86400.0,
        other => {
            return Err(format!(
                "unknown duration unit `{other}` in `{s}` (use ms, s, m, h or d)"
            ));
        }
    };
    Ok(Duration::from_secs_f64(secs))
}

/// What validation needs to name `file:line` and resolve relative paths.
pub(super) struct Ctx<'a> {
    file: &'a Path,
    text: &'a str,
    base: &'a Path,
}

impl Ctx<'_> {
    fn err(&self, offset: usize, message: impl Into<String>) -> ConfigError {
        let line = self.text[..offset.min(self.text.len())]
            .matches('\n')
            .count()
            + 1;
        ConfigError {
            file: self.file.to_path_buf(),
            line,
            message: message.into(),
        }
    }

    /// An error at the line of `v`.
    pub(super) fn at<T>(&self, v: &Spanned<T>, message: impl Into<String>) -> ConfigError {
        self.err(v.span().start, message)
    }

    /// The value of a keyword key: one of `options`, else an error listing them.
    pub(super) fn choose<T: Copy>(
        &self,
        key: &str,
        v: &Spanned<String>,
        options: &[(&str, T)],
    ) -> Result<T, ConfigError> {
        if let Some((_, value)) = options.iter().find(|(name, _)| name == v.get_ref()) {
            return Ok(*value);
        }
        let names: Vec<String> = options.iter().map(|(n, _)| format!("`{n}`")).collect();
        let (last, rest) = names.split_last().expect("options are not empty");
        let list = if rest.is_empty() {
            last.clone()
        } else {
            format!("{} or {last}", rest.join(", "))
        };
        Err(self.at(v, format!("{key}: `{}` is not {list}", v.get_ref())))
    }

    /// The 1-based line of `v`.
    pub(super) fn line_of<T>(&self, v: &Spanned<T>) -> usize {
        self.text[..v.span().start.min(self.text.len())]
            .matches('\n')
            .count()
            + 1
    }

    /// `p` relative to the configuration file's directory.
    pub(super) fn path(&self, p: &str) -> PathBuf {
        let p = Path::new(p);
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.base.join(p)
        }
    }
}

/// Parses and validates configuration text.
pub fn parse(text: &str, file: &Path, base: &Path) -> Result<Config, ConfigError> {
    let ctx = Ctx { file, text, base };
    let raw: FileConfig = toml::from_str(text).map_err(|e| {
        let at = e.span().map(|s| s.start).unwrap_or(0);
        ctx.err(at, e.message().trim().to_string())
    })?;
    let geo_database = raw.geo.database.as_ref().map(|d| ctx.path(d.get_ref()));
    // Target groups and pools a scaling group fills may be empty in the file.
    let scaled_target_groups: Vec<String> = raw
        .scaling_group
        .iter()
        .flat_map(|g| g.target_groups.iter().map(|t| t.get_ref().clone()))
        .collect();
    let scaled_pools = raw
        .scaling_group
        .iter()
        .flat_map(|g| g.pools.iter().map(|t| t.get_ref().clone()))
        .collect();
    let pools = super::pools::FilePools {
        scaled: scaled_pools,
        geo_database,
        latency: raw.latency,
        regions: raw.region,
        checks: raw.health_check,
        pools: raw.pool,
        bindings: raw.binding,
    };
    let (groups, listeners) = (raw.target_group, raw.listener);
    let pools = super::pools::validate(&ctx, pools)?;
    let balancer = super::balancer::validate(
        &ctx,
        &groups,
        &listeners,
        &pools.checks,
        &scaled_target_groups,
    )?;
    let scaler = super::scaler::validate(&ctx, &raw.scaling_group, &pools, &balancer)?;
    let admin = raw.admin.as_ref().map(|a| super::admin::admin(&ctx, a));
    let latency_report = raw
        .latency_report
        .as_ref()
        .map(|r| super::admin::latency_report(&ctx, r));
    let grace = parse_duration(raw.shutdown.grace.get_ref())
        .map_err(|e| ctx.at(&raw.shutdown.grace, format!("shutdown.grace: {e}")))?;
    if grace > Duration::from_secs(3600) {
        return Err(ctx.at(&raw.shutdown.grace, "shutdown.grace must be at most 1h"));
    }
    Ok(Config {
        shutdown_grace: grace,
        scaler,
        path: None,
        admin: admin.transpose()?,
        latency_report: latency_report.transpose()?,
        dns: dns(&ctx, raw.dns)?,
        log: log(&ctx, raw.log)?,
        pools,
        balancer,
    })
}

fn dns(ctx: &Ctx<'_>, d: FileDns) -> Result<DnsConfig, ConfigError> {
    let mut listen = Vec::new();
    for l in &d.listen {
        let addr: SocketAddr = l.get_ref().parse().map_err(|_| {
            ctx.at(
                l,
                format!(
                    "dns.listen: `{}` is not an address:port (e.g. 127.0.0.1:1053)",
                    l.get_ref()
                ),
            )
        })?;
        listen.push(addr);
    }
    let mut zones = Vec::new();
    for z in &d.zone {
        let origin = Name::parse(z.origin.get_ref(), Some(&Name::root())).map_err(|e| {
            ctx.at(
                &z.origin,
                format!("dns.zone.origin: `{}`: {e}", z.origin.get_ref()),
            )
        })?;
        if zones.iter().any(|o: &ZoneConfig| o.origin == origin) {
            return Err(ctx.at(
                &z.origin,
                format!("dns.zone: zone {origin} is listed twice"),
            ));
        }
        zones.push(ZoneConfig {
            origin,
            file: ctx.path(z.file.get_ref()),
        });
    }
    let timeout = parse_duration(d.tcp_idle_timeout.get_ref())
        .map_err(|e| ctx.at(&d.tcp_idle_timeout, format!("dns.tcp_idle_timeout: {e}")))?;
    if timeout.is_zero() {
        return Err(ctx.at(
            &d.tcp_idle_timeout,
            "dns.tcp_idle_timeout must be greater than 0",
        ));
    }
    let io = parse_duration(d.tcp_io_timeout.get_ref())
        .map_err(|e| ctx.at(&d.tcp_io_timeout, format!("dns.tcp_io_timeout: {e}")))?;
    if io.is_zero() {
        return Err(ctx.at(
            &d.tcp_io_timeout,
            "dns.tcp_io_timeout must be greater than 0",
        ));
    }
    let max_conn = *d.tcp_max_connections.get_ref();
    if max_conn == 0 {
        return Err(ctx.at(
            &d.tcp_max_connections,
            "dns.tcp_max_connections must be at least 1",
        ));
    }
    Ok(DnsConfig {
        listen,
        zones_dir: d
            .zones_dir
            .as_ref()
            .filter(|z| !z.get_ref().is_empty())
            .map(|z| ctx.path(z.get_ref())),
        zones,
        query_log: d.query_log,
        tcp_idle_timeout: timeout,
        tcp_io_timeout: io,
        tcp_max_connections: max_conn as usize,
        transfer: transfer(ctx, &d.transfer)?,
        rrl: super::rrl::validate(ctx, &d.rrl)?,
    })
}

fn transfer(ctx: &Ctx<'_>, t: &super::file::FileTransfer) -> Result<TransferConfig, ConfigError> {
    let mut allow = Vec::new();
    for a in &t.allow {
        allow.push(
            a.get_ref()
                .parse()
                .map_err(|e| ctx.at(a, format!("dns.transfer.allow: {e}")))?,
        );
    }
    let mut notify = Vec::new();
    for n in &t.notify {
        let addr = n.get_ref().parse().map_err(|_| {
            ctx.at(
                n,
                format!(
                    "dns.transfer.notify: `{}` is not an address:port (e.g. 127.0.0.1:53)",
                    n.get_ref()
                ),
            )
        })?;
        notify.push(addr);
    }
    let max = *t.max_concurrent.get_ref();
    if max == 0 {
        return Err(ctx.at(
            &t.max_concurrent,
            "dns.transfer.max_concurrent must be at least 1",
        ));
    }
    Ok(TransferConfig {
        allow,
        notify,
        max_concurrent: max as usize,
    })
}

fn log(ctx: &Ctx<'_>, l: FileLog) -> Result<LogConfig, ConfigError> {
    let format = ctx.choose(
        "log.format",
        &l.format,
        &[("human", LogFormat::Human), ("json", LogFormat::Json)],
    )?;
    Ok(LogConfig {
        format,
        level: l.level,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_err(text: &str) -> String {
        parse(text, Path::new("t.toml"), Path::new("/base"))
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn errors_name_file_and_line() {
        assert_eq!(
            parse_err("[dns]\nlisten = [\"nope\"]\n"),
            "t.toml:2: dns.listen: `nope` is not an address:port (e.g. 127.0.0.1:1053)"
        );
        assert!(parse_err("[dns]\n\nbogus = 1\n").starts_with("t.toml:3: unknown field `bogus`"));
        assert!(
            parse_err("[dns.transfer]\nallow = [\"10.0.0.0/33\"]\n")
                .starts_with("t.toml:2: dns.transfer.allow")
        );
        assert!(
            parse_err("[dns]\ntcp_idle_timeout = \"3 parsecs\"\n")
                .starts_with("t.toml:2: dns.tcp_idle_timeout")
        );
        assert_eq!(
            parse_err("[dns]\n\ntcp_io_timeout = \"0s\"\n"),
            "t.toml:3: dns.tcp_io_timeout must be greater than 0"
        );
    }

    #[test]
    fn relative_paths_follow_the_file() {
        let c = parse(
            "[dns]\nzones_dir = \"z\"\n[[dns.zone]]\norigin = \"a.test\"\nfile = \"/abs/a\"\n",
            Path::new("t.toml"),
            Path::new("/base"),
        )
        .unwrap();
        assert_eq!(c.dns.zones_dir, Some(PathBuf::from("/base/z")));
        assert_eq!(c.dns.zones[0].file, PathBuf::from("/abs/a"));
        assert_eq!(c.dns.zones[0].origin.to_string(), "a.test.");
    }

    #[test]
    fn networks_and_durations() {
        let n: Network = "10.1.0.0/16".parse().unwrap();
        assert!(n.contains("10.1.2.3".parse().unwrap()));
        assert!(!n.contains("10.2.0.1".parse().unwrap()));
        assert!(n.contains("::ffff:10.1.0.9".parse().unwrap()));
        let all: Network = "::/0".parse().unwrap();
        assert!(all.contains("2001:db8::1".parse().unwrap()));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("1d").unwrap(), Duration::from_secs(86400));
    }
}
