//! `[target_group.NAME]` -> [`TargetGroup`]: algorithm, hash key, targets, slow start,
//! deregistration delay, passive ejection and stickiness, each checked against the limits
//! AWS ALB applies to the same attribute.

use super::ConfigError;
use super::balancer::{Algorithm, HashKey, Passive, Stickiness, StickyMode, TargetGroup};
use super::file_target_group::{FileStickiness, FileTargetGroup};
use super::pools::check_named;
use super::validate::{Ctx, parse_duration};
use crate::health::CheckSpec;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use toml::Spanned;

/// Slow start bounds (ALB): off, or 30 s to 15 min.
const SLOW_START: (Duration, Duration) = (Duration::from_secs(30), Duration::from_secs(900));
/// Longest deregistration delay (ALB): one hour.
const MAX_DEREGISTRATION_DELAY: Duration = Duration::from_secs(3600);
/// Stickiness duration bounds (ALB): one second to seven days.
const STICKINESS: (Duration, Duration) = (Duration::from_secs(1), Duration::from_secs(7 * 86400));

/// Validates one `[target_group.NAME]`.
pub(super) fn validate(
    ctx: &Ctx<'_>,
    name: &str,
    g: &FileTargetGroup,
    checks: &BTreeMap<String, Arc<CheckSpec>>,
    scaled: bool,
) -> Result<TargetGroup, ConfigError> {
    let key = |k: &str| format!("target_group.{name}.{k}");
    let algorithm = ctx.choose(
        &key("algorithm"),
        &g.algorithm,
        &[
            ("round-robin", Algorithm::RoundRobin),
            ("weighted-round-robin", Algorithm::WeightedRoundRobin),
            ("least-outstanding", Algorithm::LeastOutstanding),
            (
                "weighted-least-connections",
                Algorithm::WeightedLeastConnections,
            ),
            ("source-ip-hash", Algorithm::SourceIpHash),
            ("consistent-hash", Algorithm::ConsistentHash),
            ("power-of-two", Algorithm::PowerOfTwo),
            ("fastest-response", Algorithm::FastestResponse),
        ],
    )?;
    let hash_key = hash_key(ctx, &key("hash_key"), algorithm, g)?;
    let check = check_named(ctx, &key("health_check"), g.health_check.as_ref(), checks)?;
    let (targets, weights) = targets(ctx, &key("targets"), algorithm, g, scaled)?;
    let slow_start = duration(ctx, &key("slow_start"), &g.slow_start)?;
    if !slow_start.is_zero() && !(SLOW_START.0..=SLOW_START.1).contains(&slow_start) {
        return Err(ctx.at(
            &g.slow_start,
            format!(
                "{}: must be 0s (off) or between 30s and 900s",
                key("slow_start")
            ),
        ));
    }
    let deregistration_delay =
        duration(ctx, &key("deregistration_delay"), &g.deregistration_delay)?;
    if deregistration_delay > MAX_DEREGISTRATION_DELAY {
        return Err(ctx.at(
            &g.deregistration_delay,
            format!("{}: must be at most 3600s", key("deregistration_delay")),
        ));
    }
    let ejection = duration(ctx, &key("passive_ejection"), &g.passive_ejection)?;
    if ejection.is_zero() {
        return Err(ctx.at(
            &g.passive_ejection,
            format!(
                "{}: must be greater than 0 (turn ejection off with passive_failures = 0)",
                key("passive_ejection")
            ),
        ));
    }
    let stickiness = match &g.stickiness {
        Some(s) => Some(stickiness(ctx, &key("stickiness"), s)?),
        None => None,
    };
    Ok(TargetGroup {
        name: name.to_string(),
        algorithm,
        hash_key,
        check,
        targets,
        weights,
        slow_start,
        deregistration_delay,
        passive: Passive {
            failures: *g.passive_failures.get_ref(),
            ejection,
        },
        stickiness,
    })
}

fn duration(ctx: &Ctx<'_>, key: &str, v: &Spanned<String>) -> Result<Duration, ConfigError> {
    parse_duration(v.get_ref()).map_err(|e| ctx.at(v, format!("{key}: {e}")))
}

/// `header:NAME` or `cookie:NAME`; required by `consistent-hash` and refused elsewhere.
fn hash_key(
    ctx: &Ctx<'_>,
    key: &str,
    algorithm: Algorithm,
    g: &FileTargetGroup,
) -> Result<Option<HashKey>, ConfigError> {
    let Some(v) = &g.hash_key else {
        if algorithm == Algorithm::ConsistentHash {
            return Err(ctx.at(
                &g.algorithm,
                format!(
                    "{key}: consistent-hash needs a hash key, e.g. `header:x-user-id` or `cookie:session`"
                ),
            ));
        }
        return Ok(None);
    };
    if algorithm != Algorithm::ConsistentHash {
        return Err(ctx.at(
            v,
            format!(
                "{key}: only `consistent-hash` uses a hash key (algorithm is `{}`)",
                g.algorithm.get_ref()
            ),
        ));
    }
    let text = v.get_ref();
    let parsed = match text.split_once(':') {
        Some(("header", h)) if is_token(h) => Some(HashKey::Header(h.to_ascii_lowercase())),
        Some(("cookie", c)) if is_token(c) => Some(HashKey::Cookie(c.to_string())),
        _ => None,
    };
    parsed.map(Some).ok_or_else(|| {
        ctx.at(
            v,
            format!("{key}: `{text}` is not `header:NAME` or `cookie:NAME`"),
        )
    })
}

/// An HTTP token (RFC 9110): what header and cookie names are made of.
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

fn targets(
    ctx: &Ctx<'_>,
    key: &str,
    algorithm: Algorithm,
    g: &FileTargetGroup,
    scaled: bool,
) -> Result<(Vec<SocketAddr>, Vec<u32>), ConfigError> {
    let mut targets = Vec::new();
    for t in &g.targets {
        let addr: SocketAddr = t.address.get_ref().parse().map_err(|_| {
            ctx.at(
                &t.address,
                format!("{key}: `{}` is not an address:port", t.address.get_ref()),
            )
        })?;
        if targets.contains(&addr) {
            return Err(ctx.at(&t.address, format!("{key}: {addr} is listed twice")));
        }
        targets.push(addr);
    }
    if targets.is_empty() && !scaled {
        return Err(ctx.at(
            &g.algorithm,
            format!(
                "{key}: a target group needs at least one target (or a scaling group filling it)"
            ),
        ));
    }
    let weights: Vec<u32> = g.targets.iter().map(|t| t.weight).collect();
    let weighted = matches!(
        algorithm,
        Algorithm::WeightedRoundRobin | Algorithm::WeightedLeastConnections
    );
    if weighted && !weights.is_empty() && weights.iter().all(|&w| w == 0) {
        return Err(ctx.at(&g.algorithm, format!("{key}: every target has weight 0")));
    }
    Ok((targets, weights))
}

fn stickiness(
    ctx: &Ctx<'_>,
    key: &str,
    s: &Spanned<FileStickiness>,
) -> Result<Stickiness, ConfigError> {
    #[derive(Clone, Copy)]
    enum Kind {
        Lb,
        App,
    }
    let f = s.get_ref();
    let kind = ctx.choose(
        &format!("{key}.type"),
        &f.kind,
        &[("lb-cookie", Kind::Lb), ("app-cookie", Kind::App)],
    )?;
    let mode = match (kind, &f.cookie) {
        (Kind::Lb, None) => StickyMode::LbCookie,
        (Kind::Lb, Some(c)) => {
            return Err(ctx.at(
                c,
                format!(
                    "{key}.cookie: `lb-cookie` uses its own cookie; name one with `app-cookie`"
                ),
            ));
        }
        (Kind::App, Some(c)) if is_token(c.get_ref()) => StickyMode::AppCookie(c.get_ref().clone()),
        (Kind::App, Some(c)) => {
            return Err(ctx.at(
                c,
                format!("{key}.cookie: `{}` is not a cookie name", c.get_ref()),
            ));
        }
        (Kind::App, None) => {
            return Err(ctx.at(
                &f.kind,
                format!("{key}.cookie: `app-cookie` needs the application's cookie name"),
            ));
        }
    };
    let duration = duration(ctx, &format!("{key}.duration"), &f.duration)?;
    if !(STICKINESS.0..=STICKINESS.1).contains(&duration) {
        return Err(ctx.at(
            &f.duration,
            format!("{key}.duration: must be between 1s and 7d"),
        ));
    }
    Ok(Stickiness { mode, duration })
}

#[cfg(test)]
mod tests {
    use crate::config::{Algorithm, Config, HashKey, Passive, Stickiness, StickyMode};
    use std::path::Path;
    use std::time::Duration;

    const TARGETS: &str = "targets = [{ address = \"127.0.0.1:8081\" }]\n";

    fn group(keys: &str) -> Result<crate::config::TargetGroup, String> {
        let text = format!("[target_group.web]\n{keys}{TARGETS}");
        Config::parse(&text, Path::new("t.toml"), Path::new("/"))
            .map(|c| c.balancer.target_groups[0].clone())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_follow_alb() {
        let g = group("").unwrap();
        assert_eq!(g.algorithm, Algorithm::RoundRobin);
        assert_eq!(g.hash_key, None);
        assert_eq!(g.slow_start, Duration::ZERO);
        assert_eq!(g.deregistration_delay, Duration::from_secs(30));
        assert_eq!(
            g.passive,
            Passive {
                failures: 5,
                ejection: Duration::from_secs(30)
            }
        );
        assert_eq!(g.stickiness, None);
    }

    #[test]
    fn every_key_is_read() {
        let g = group(
            "algorithm = \"consistent-hash\"\nhash_key = \"header:X-User-Id\"\n\
             slow_start = \"45s\"\nderegistration_delay = \"0s\"\npassive_failures = 0\n\
             passive_ejection = \"1m\"\n\
             stickiness = { type = \"app-cookie\", cookie = \"SESSIONID\", duration = \"2h\" }\n",
        )
        .unwrap();
        assert_eq!(g.algorithm, Algorithm::ConsistentHash);
        assert_eq!(g.hash_key, Some(HashKey::Header("x-user-id".into())));
        assert_eq!(g.slow_start, Duration::from_secs(45));
        assert_eq!(g.deregistration_delay, Duration::ZERO);
        assert_eq!(g.passive.failures, 0);
        assert_eq!(g.passive.ejection, Duration::from_secs(60));
        assert_eq!(
            g.stickiness,
            Some(Stickiness {
                mode: StickyMode::AppCookie("SESSIONID".into()),
                duration: Duration::from_secs(7200)
            })
        );
        let g = group("algorithm = \"consistent-hash\"\nhash_key = \"cookie:session\"\n").unwrap();
        assert_eq!(g.hash_key, Some(HashKey::Cookie("session".into())));
        let g = group("stickiness = { type = \"lb-cookie\" }\n").unwrap();
        assert_eq!(
            g.stickiness.map(|s| (s.mode, s.duration)),
            Some((StickyMode::LbCookie, Duration::from_secs(86400)))
        );
        for name in [
            "weighted-least-connections",
            "power-of-two",
            "fastest-response",
        ] {
            assert!(
                group(&format!("algorithm = \"{name}\"\n")).is_ok(),
                "{name}"
            );
        }
    }

    #[test]
    fn errors_name_the_line_and_key() {
        let cases = [
            (
                "algorithm = \"random\"\n",
                "t.toml:2: target_group.web.algorithm: `random` is not `round-robin`,",
            ),
            (
                "algorithm = \"consistent-hash\"\n",
                "t.toml:2: target_group.web.hash_key: consistent-hash needs a hash key",
            ),
            (
                "hash_key = \"header:x\"\n",
                "t.toml:2: target_group.web.hash_key: only `consistent-hash` uses a hash key (algorithm is `round-robin`)",
            ),
            (
                "algorithm = \"consistent-hash\"\nhash_key = \"query:id\"\n",
                "t.toml:3: target_group.web.hash_key: `query:id` is not `header:NAME` or `cookie:NAME`",
            ),
            (
                "algorithm = \"consistent-hash\"\nhash_key = \"header:\"\n",
                "t.toml:3: target_group.web.hash_key: `header:` is not",
            ),
            (
                "slow_start = \"10s\"\n",
                "t.toml:2: target_group.web.slow_start: must be 0s (off) or between 30s and 900s",
            ),
            (
                "slow_start = \"soon\"\n",
                "t.toml:2: target_group.web.slow_start: `soon` is not a duration",
            ),
            (
                "deregistration_delay = \"2h\"\n",
                "t.toml:2: target_group.web.deregistration_delay: must be at most 3600s",
            ),
            (
                "passive_ejection = \"0s\"\n",
                "t.toml:2: target_group.web.passive_ejection: must be greater than 0",
            ),
            (
                "passive_failures = -1\n",
                "t.toml:2: invalid value: integer `-1`",
            ),
            (
                "stickiness = { type = \"ip\" }\n",
                "t.toml:2: target_group.web.stickiness.type: `ip` is not `lb-cookie` or `app-cookie`",
            ),
            (
                "stickiness = { type = \"app-cookie\" }\n",
                "t.toml:2: target_group.web.stickiness.cookie: `app-cookie` needs the application's cookie name",
            ),
            (
                "stickiness = { type = \"lb-cookie\", cookie = \"a\" }\n",
                "t.toml:2: target_group.web.stickiness.cookie: `lb-cookie` uses its own cookie",
            ),
            (
                "stickiness = { type = \"app-cookie\", cookie = \"a b\" }\n",
                "t.toml:2: target_group.web.stickiness.cookie: `a b` is not a cookie name",
            ),
            (
                "stickiness = { type = \"lb-cookie\", duration = \"8d\" }\n",
                "t.toml:2: target_group.web.stickiness.duration: must be between 1s and 7d",
            ),
            (
                "stickiness = { type = \"lb-cookie\", ttl = \"1d\" }\n",
                "t.toml:2: unknown field `ttl`",
            ),
        ];
        for (keys, want) in cases {
            let got = group(keys).expect_err(keys);
            assert!(got.starts_with(want), "{keys:?}\nwant: {want}\n got: {got}");
        }
    }

    #[test]
    fn target_errors() {
        let parse = |text: &str| {
            Config::parse(text, Path::new("t.toml"), Path::new("/"))
                .map(|_| ())
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            parse(
                "[target_group.web]\n\
                 targets = [{ address = \"127.0.0.1:1\" },\n{ address = \"127.0.0.1:1\" }]\n"
            ),
            "t.toml:3: target_group.web.targets: 127.0.0.1:1 is listed twice"
        );
        assert_eq!(
            parse(
                "[target_group.web]\nalgorithm = \"weighted-least-connections\"\n\
                 targets = [{ address = \"127.0.0.1:1\", weight = 0 }]\n"
            ),
            "t.toml:2: target_group.web.targets: every target has weight 0"
        );
    }
}
