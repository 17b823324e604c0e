//! `[dns.rrl]`: response rate limiting of UDP answers (see [`crate::dns::rrl`]).

use super::ConfigError;
use super::validate::{Ctx, Network, parse_duration};
use serde::Deserialize;
use std::time::Duration;
use toml::Spanned;

/// `[dns.rrl]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileRrl {
    /// Responses per second one account (client network + response class + name) may get
    /// over UDP. Default 0: off (as in BIND and Knot); NSD's default is 200.
    #[serde(default = "default_responses_per_second")]
    pub responses_per_second: Spanned<u32>,
    /// Every Nth withheld response is sent as an empty truncated answer so that real
    /// clients retry over TCP; 0 never, 1 always. Default 2.
    #[serde(default = "default_slip")]
    pub slip: Spanned<u32>,
    /// How long an account that kept flooding stays limited after it stops. Default `15s`.
    #[serde(default = "default_window")]
    pub window: Spanned<String>,
    /// IPv4 prefix length of a client network. Default 24.
    #[serde(default = "default_ipv4_prefix")]
    pub ipv4_prefix: Spanned<u8>,
    /// IPv6 prefix length of a client network. Default 56.
    #[serde(default = "default_ipv6_prefix")]
    pub ipv6_prefix: Spanned<u8>,
    /// Accounts tracked at once (rounded up to a power of two; 8 bytes each). Default 262144.
    #[serde(default = "default_table_size")]
    pub table_size: Spanned<u32>,
    /// Client networks never limited (CIDR), e.g. your own resolvers and monitoring.
    #[serde(default)]
    pub exempt: Vec<Spanned<String>>,
}

impl Default for FileRrl {
    fn default() -> FileRrl {
        FileRrl {
            responses_per_second: default_responses_per_second(),
            slip: default_slip(),
            window: default_window(),
            ipv4_prefix: default_ipv4_prefix(),
            ipv6_prefix: default_ipv6_prefix(),
            table_size: default_table_size(),
            exempt: Vec::new(),
        }
    }
}

fn spanned<T>(v: T) -> Spanned<T> {
    Spanned::new(0..0, v)
}
fn default_responses_per_second() -> Spanned<u32> {
    spanned(0)
}
fn default_slip() -> Spanned<u32> {
    spanned(2)
}
fn default_window() -> Spanned<String> {
    spanned("15s".into())
}
fn default_ipv4_prefix() -> Spanned<u8> {
    spanned(24)
}
fn default_ipv6_prefix() -> Spanned<u8> {
    spanned(56)
}
fn default_table_size() -> Spanned<u32> {
    spanned(262_144)
}

/// `[dns.rrl]`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RrlConfig {
    /// Responses per second per account; 0 turns rate limiting off.
    pub responses_per_second: u32,
    /// Every Nth withheld response is sent truncated (0: none).
    pub slip: u32,
    /// How long debt lasts (whole seconds).
    pub window: Duration,
    /// IPv4 client network prefix length.
    pub ipv4_prefix: u8,
    /// IPv6 client network prefix length.
    pub ipv6_prefix: u8,
    /// Slots in the account table.
    pub table_size: usize,
    /// Networks never limited.
    pub exempt: Vec<Network>,
}

impl Default for RrlConfig {
    fn default() -> RrlConfig {
        RrlConfig {
            responses_per_second: 0,
            slip: 2,
            window: Duration::from_secs(15),
            ipv4_prefix: 24,
            ipv6_prefix: 56,
            table_size: 262_144,
            exempt: Vec::new(),
        }
    }
}

/// Validates `[dns.rrl]`.
pub(super) fn validate(ctx: &Ctx<'_>, r: &FileRrl) -> Result<RrlConfig, ConfigError> {
    let rate = *r.responses_per_second.get_ref();
    let slip = *r.slip.get_ref();
    if slip > 10 {
        return Err(ctx.at(&r.slip, "dns.rrl.slip must be 0..=10"));
    }
    let window = parse_duration(r.window.get_ref())
        .map_err(|e| ctx.at(&r.window, format!("dns.rrl.window: {e}")))?;
    if !(1..=3600).contains(&window.as_secs()) || window.subsec_nanos() != 0 {
        return Err(ctx.at(&r.window, "dns.rrl.window must be whole seconds, 1s..=1h"));
    }
    if u64::from(rate) * window.as_secs() > crate::dns::rrl::MAX_DEBT {
        return Err(ctx.at(
            &r.responses_per_second,
            format!(
                "dns.rrl.responses_per_second × window must be at most {} (lower either)",
                crate::dns::rrl::MAX_DEBT
            ),
        ));
    }
    let v4 = *r.ipv4_prefix.get_ref();
    if !(8..=32).contains(&v4) {
        return Err(ctx.at(&r.ipv4_prefix, "dns.rrl.ipv4_prefix must be 8..=32"));
    }
    let v6 = *r.ipv6_prefix.get_ref();
    if !(16..=128).contains(&v6) {
        return Err(ctx.at(&r.ipv6_prefix, "dns.rrl.ipv6_prefix must be 16..=128"));
    }
    let size = *r.table_size.get_ref();
    if !(1024..=16_777_216).contains(&size) {
        return Err(ctx.at(&r.table_size, "dns.rrl.table_size must be 1024..=16777216"));
    }
    let mut exempt = Vec::new();
    for n in &r.exempt {
        exempt.push(
            n.get_ref()
                .parse()
                .map_err(|e| ctx.at(n, format!("dns.rrl.exempt: {e}")))?,
        );
    }
    Ok(RrlConfig {
        responses_per_second: rate,
        slip,
        window,
        ipv4_prefix: v4,
        ipv6_prefix: v6,
        table_size: size as usize,
        exempt,
    })
}

#[cfg(test)]
mod tests {
    use crate::config::Config;
    use std::path::Path;

    fn err(text: &str) -> String {
        Config::parse(text, Path::new("t.toml"), Path::new("/"))
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn defaults_are_off_and_errors_name_the_line() {
        let c = Config::parse("", Path::new("t.toml"), Path::new("/")).unwrap();
        assert_eq!(c.dns.rrl.responses_per_second, 0);
        assert_eq!(c.dns.rrl.ipv6_prefix, 56);
        let c = Config::parse(
            "[dns.rrl]\nresponses_per_second = 20\nexempt = [\"10.0.0.0/8\"]\n",
            Path::new("t.toml"),
            Path::new("/"),
        )
        .unwrap();
        assert_eq!(c.dns.rrl.responses_per_second, 20);
        assert_eq!(c.dns.rrl.exempt.len(), 1);
        assert_eq!(
            err("[dns.rrl]\nresponses_per_second = 5\nslip = 11\n"),
            "t.toml:3: dns.rrl.slip must be 0..=10"
        );
        assert_eq!(
            err("[dns.rrl]\nwindow = \"1500ms\"\n"),
            "t.toml:2: dns.rrl.window must be whole seconds, 1s..=1h"
        );
        assert_eq!(
            err("[dns.rrl]\n\nipv4_prefix = 40\n"),
            "t.toml:3: dns.rrl.ipv4_prefix must be 8..=32"
        );
        assert!(err("[dns.rrl]\nexempt = [\"x\"]\n").starts_with("t.toml:2: dns.rrl.exempt"));
        assert!(
            err("[dns.rrl]\nresponses_per_second = 4000000\nwindow = \"1h\"\n")
                .starts_with("t.toml:2: dns.rrl.responses_per_second")
        );
    }
}
