//! Listeners of the load balancer: protocol, TLS files, timeouts, rules and actions.

use super::ConfigError;
use super::file_listener::{ActionKeys, FileListener, FileRule};
use super::validate::{Ctx, parse_duration};
use crate::balancer::rules::{Action, Conditions, FixedResponse, Redirect, Rule};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use toml::Spanned;

/// What a listener speaks to clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// HTTP/1.1 (ALB).
    Http,
    /// HTTP/1.1 over TLS terminated here.
    Https,
    /// Bytes forwarded to a target (NLB).
    Tcp,
}

impl Protocol {
    /// `http`, `https` or `tcp`.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Http => "http",
            Protocol::Https => "https",
            Protocol::Tcp => "tcp",
        }
    }
}

/// Certificate and key files of an `https` listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// PEM certificate chain.
    pub certificate: PathBuf,
    /// PEM private key.
    pub key: PathBuf,
}

/// Timeouts of a listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Longest wait for a complete request header.
    pub header: Duration,
    /// Idle client connection.
    pub idle: Duration,
    /// Longest wait for a target's response header (then 504).
    pub target: Duration,
    /// Longest wait to connect to a target.
    pub connect: Duration,
    /// Longest wait for a whole request body.
    pub body: Duration,
}

/// A listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    /// Name (in logs and metrics).
    pub name: String,
    /// Address to accept on.
    pub listen: SocketAddr,
    /// Protocol.
    pub protocol: Protocol,
    /// TLS files (`https`).
    pub tls: Option<TlsFiles>,
    /// Rules, sorted by priority.
    pub rules: Vec<Rule>,
    /// Action when no rule matches (`tcp`: always a forward).
    pub default_action: Action,
    /// Path answered by the balancer itself with target readiness.
    pub health_path: Option<String>,
    /// Timeouts.
    pub timeouts: Timeouts,
    /// Largest request header block.
    pub max_header_bytes: usize,
    /// Longest request target.
    pub max_uri_bytes: usize,
    /// Most client connections open at once.
    pub max_connections: usize,
}

impl Listener {
    /// Target groups the default action forwards to.
    pub fn default_groups(&self) -> Vec<usize> {
        match &self.default_action {
            Action::Forward(groups) => groups.iter().map(|(g, _)| *g).collect(),
            _ => Vec::new(),
        }
    }
}

/// Validates every `[[listener]]`; `groups` are the target group names in index order.
pub fn validate(
    ctx: &Ctx<'_>,
    listeners: &[FileListener],
    groups: &[String],
) -> Result<Vec<Listener>, ConfigError> {
    let mut out: Vec<Listener> = Vec::new();
    for l in listeners {
        let listener = validate_one(ctx, l, groups)?;
        if out.iter().any(|o| o.name == listener.name) {
            return Err(ctx.at(
                &l.name,
                format!("listener.name: `{}` is used twice", listener.name),
            ));
        }
        out.push(listener);
    }
    Ok(out)
}

fn validate_one(
    ctx: &Ctx<'_>,
    l: &FileListener,
    groups: &[String],
) -> Result<Listener, ConfigError> {
    let name = l.name.get_ref().clone();
    let key = |k: &str| format!("listener `{name}`: {k}");
    let listen: SocketAddr = l.listen.get_ref().parse().map_err(|_| {
        ctx.at(
            &l.listen,
            format!(
                "{}: `{}` is not an address:port",
                key("listen"),
                l.listen.get_ref()
            ),
        )
    })?;
    let protocol = match &l.protocol {
        None => Protocol::Http,
        Some(p) => ctx.choose(
            &key("protocol"),
            p,
            &[
                ("http", Protocol::Http),
                ("https", Protocol::Https),
                ("tcp", Protocol::Tcp),
            ],
        )?,
    };
    let tls = match (protocol, &l.tls_certificate, &l.tls_key) {
        (Protocol::Https, Some(c), Some(k)) => Some(TlsFiles {
            certificate: ctx.path(c.get_ref()),
            key: ctx.path(k.get_ref()),
        }),
        (Protocol::Https, _, _) => {
            return Err(ctx.at(
                &l.name,
                format!(
                    "{}: an https listener needs tls_certificate and tls_key",
                    key("protocol")
                ),
            ));
        }
        (_, Some(v), _) | (_, _, Some(v)) => {
            return Err(ctx.at(
                v,
                format!(
                    "{}: TLS files need protocol = \"https\"",
                    key("tls_certificate")
                ),
            ));
        }
        _ => None,
    };
    let default_action = action(ctx, &key("default action"), &l.name, l.action(), groups)?;
    let mut rules = l
        .rule
        .iter()
        .map(|r| rule(ctx, &name, r, groups))
        .collect::<Result<Vec<_>, _>>()?;
    rules.sort_by_key(|r| r.priority);
    if let Some(w) = rules.windows(2).find(|w| w[0].priority == w[1].priority) {
        let r = l
            .rule
            .iter()
            .rfind(|r| *r.priority.get_ref() == w[0].priority);
        let at = r
            .map(|r| &r.priority)
            .expect("the priority came from a rule");
        return Err(ctx.at(
            at,
            format!("{}: priority {} is used twice", key("rule"), w[0].priority),
        ));
    }
    if protocol == Protocol::Tcp {
        tcp_limits(ctx, l, &default_action, &key)?;
    }
    let health_path = match &l.health_path {
        None if protocol != Protocol::Tcp => Some("/health".to_string()),
        None => None,
        Some(p) if p.get_ref().is_empty() => None,
        Some(p) if !p.get_ref().starts_with('/') => {
            return Err(ctx.at(p, format!("{}: must start with `/`", key("health_path"))));
        }
        Some(p) => Some(p.get_ref().clone()),
    };
    let idle_default = if protocol == Protocol::Tcp {
        "350s"
    } else {
        "60s"
    };
    let timeouts = Timeouts {
        header: duration(ctx, &key("header_timeout"), &l.header_timeout, "10s")?,
        idle: duration(ctx, &key("idle_timeout"), &l.idle_timeout, idle_default)?,
        target: duration(ctx, &key("target_timeout"), &l.target_timeout, "30s")?,
        connect: duration(ctx, &key("connect_timeout"), &l.connect_timeout, "2s")?,
        body: duration(ctx, &key("body_timeout"), &l.body_timeout, "30s")?,
    };
    let max_header_bytes = match &l.max_header_bytes {
        None => 65_536,
        Some(v) if (8_192..=1_048_576).contains(v.get_ref()) => *v.get_ref() as usize,
        Some(v) => {
            return Err(ctx.at(
                v,
                format!("{}: must be 8192..=1048576", key("max_header_bytes")),
            ));
        }
    };
    let max_uri_bytes = match &l.max_uri_bytes {
        None => 8_192,
        Some(v) if (256..=65_536).contains(v.get_ref()) => *v.get_ref() as usize,
        Some(v) => {
            return Err(ctx.at(v, format!("{}: must be 256..=65536", key("max_uri_bytes"))));
        }
    };
    let max_connections = match &l.max_connections {
        None => 10_000,
        Some(v) if *v.get_ref() >= 1 => *v.get_ref() as usize,
        Some(v) => {
            return Err(ctx.at(v, format!("{}: must be at least 1", key("max_connections"))));
        }
    };
    Ok(Listener {
        name,
        max_uri_bytes,
        max_connections,
        listen,
        protocol,
        tls,
        rules,
        default_action,
        health_path,
        timeouts,
        max_header_bytes,
    })
}

/// A TCP listener forwards bytes: no rules, no HTTP answers.
fn tcp_limits(
    ctx: &Ctx<'_>,
    l: &FileListener,
    default_action: &Action,
    key: &dyn Fn(&str) -> String,
) -> Result<(), ConfigError> {
    if let Some(r) = l.rule.first() {
        return Err(ctx.at(
            &r.priority,
            format!(
                "{}: a tcp listener has no rules (it does not read HTTP)",
                key("rule")
            ),
        ));
    }
    if !matches!(default_action, Action::Forward(_)) {
        return Err(ctx.at(
            &l.name,
            format!("{}: a tcp listener can only forward", key("default action")),
        ));
    }
    if let Some(p) = &l.health_path {
        return Err(ctx.at(p, format!("{}: not for tcp listeners", key("health_path"))));
    }
    Ok(())
}

fn duration(
    ctx: &Ctx<'_>,
    key: &str,
    v: &Option<Spanned<String>>,
    default: &str,
) -> Result<Duration, ConfigError> {
    let Some(v) = v else {
        return Ok(parse_duration(default).expect("defaults parse"));
    };
    match parse_duration(v.get_ref()) {
        Ok(d) if !d.is_zero() => Ok(d),
        Ok(_) => Err(ctx.at(v, format!("{key}: must be more than 0"))),
        Err(e) => Err(ctx.at(v, format!("{key}: {e}"))),
    }
}

fn rule(
    ctx: &Ctx<'_>,
    listener: &str,
    r: &FileRule,
    groups: &[String],
) -> Result<Rule, ConfigError> {
    let priority = *r.priority.get_ref();
    let key = format!("listener `{listener}`: rule {priority}");
    if !(1..=50_000).contains(&priority) {
        return Err(ctx.at(&r.priority, format!("{key}: priority must be 1..=50000")));
    }
    let sources = r
        .source
        .iter()
        .map(|s| {
            s.get_ref()
                .parse()
                .map_err(|e| ctx.at(s, format!("{key}: source: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let conditions = Conditions {
        hosts: r.host.clone(),
        paths: r.path.clone(),
        methods: r.method.iter().map(|m| m.to_ascii_uppercase()).collect(),
        headers: r
            .header
            .iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
            .collect(),
        query: r
            .query
            .iter()
            .flat_map(|(k, vs)| vs.iter().map(move |v| (k.clone(), v.clone())))
            .collect(),
        sources,
    };
    if conditions == Conditions::default() {
        return Err(ctx.at(
            &r.priority,
            format!(
                "{key}: needs at least one condition (host, path, method, header, query or source)"
            ),
        ));
    }
    if let Some(p) = r
        .path
        .iter()
        .find(|p| !p.starts_with('/') && !p.starts_with('*'))
    {
        return Err(ctx.at(
            &r.priority,
            format!("{key}: path `{p}` must start with `/`"),
        ));
    }
    if let Some((h, _)) = r
        .header
        .iter()
        .find(|(h, _)| hyper::header::HeaderName::from_bytes(h.as_bytes()).is_err())
    {
        return Err(ctx.at(&r.priority, format!("{key}: `{h}` is not a header name")));
    }
    let action = action(ctx, &key, &r.priority, r.action(), groups)?;
    Ok(Rule {
        priority,
        conditions,
        action,
    })
}

/// Exactly one of the action keys, validated.
fn action<T>(
    ctx: &Ctx<'_>,
    key: &str,
    at: &Spanned<T>,
    keys: ActionKeys<'_>,
    groups: &[String],
) -> Result<Action, ConfigError> {
    let group = |name: &Spanned<String>| {
        groups
            .iter()
            .position(|g| g == name.get_ref())
            .ok_or_else(|| {
                ctx.at(
                    name,
                    format!("{key}: no [target_group.{}] is defined", name.get_ref()),
                )
            })
    };
    let set = [
        keys.target_group.is_some(),
        keys.forward.is_some(),
        keys.redirect.is_some(),
        keys.fixed_response.is_some(),
    ];
    match set.iter().filter(|s| **s).count() {
        1 => {}
        0 => {
            return Err(ctx.at(
                at,
                format!("{key}: needs one of target_group, forward, redirect or fixed_response"),
            ));
        }
        _ => {
            return Err(ctx.at(
                at,
                format!("{key}: only one of target_group, forward, redirect and fixed_response"),
            ));
        }
    }
    if let Some(g) = keys.target_group {
        return Ok(Action::Forward(vec![(group(g)?, 1)]));
    }
    if let Some(f) = keys.forward {
        let list = f
            .get_ref()
            .iter()
            .map(|e| Ok((group(&e.target_group)?, e.weight)))
            .collect::<Result<Vec<_>, ConfigError>>()?;
        if list.iter().all(|(_, w)| *w == 0) {
            return Err(ctx.at(f, format!("{key}: forward needs a weight above 0")));
        }
        return Ok(Action::Forward(list));
    }
    if let Some(r) = keys.redirect {
        let f = r.get_ref();
        let redirect = Redirect {
            status: f.status,
            protocol: f.protocol.clone(),
            host: f.host.clone(),
            port: f.port.clone(),
            path: f.path.clone(),
            query: f.query.clone(),
        };
        let problem = if ![301, 302].contains(&f.status) {
            Some("status must be 301 or 302")
        } else if !["http", "https", "#{protocol}"].contains(&f.protocol.as_str()) {
            Some("protocol must be `http`, `https` or `#{protocol}`")
        } else if !f.path.starts_with('/') {
            Some("path must start with `/`")
        } else if redirect.is_identity() {
            Some("every part is the request's own: it would redirect to itself")
        } else {
            None
        };
        if let Some(p) = problem {
            return Err(ctx.at(r, format!("{key}: redirect: {p}")));
        }
        return Ok(Action::Redirect(redirect));
    }
    let r = keys.fixed_response.expect("one action key is set");
    let f = r.get_ref();
    if !(200..=599).contains(&f.status) || (300..400).contains(&f.status) {
        return Err(ctx.at(
            r,
            format!("{key}: fixed_response: status must be 2xx, 4xx or 5xx"),
        ));
    }
    if hyper::header::HeaderValue::from_str(&f.content_type).is_err() {
        return Err(ctx.at(r, format!("{key}: fixed_response: bad content_type")));
    }
    Ok(Action::Fixed(FixedResponse {
        status: f.status,
        content_type: f.content_type.clone(),
        body: f.body.clone(),
    }))
}

#[cfg(test)]
mod tests {
    use crate::balancer::rules::Action;
    use crate::config::{Config, Protocol};
    use std::path::Path;

    const GROUPS: &str = "[target_group.a]\ntargets = [{ address = \"127.0.0.1:1\" }]\n\
                          [target_group.b]\ntargets = [{ address = \"127.0.0.1:2\" }]\n";

    fn parse(listeners: &str) -> Result<Config, String> {
        let text = format!("{GROUPS}{listeners}");
        crate::config::validate::parse(&text, Path::new("t.toml"), Path::new("/base"))
            .map_err(|e| e.to_string())
    }

    fn err(listeners: &str) -> String {
        parse(listeners).unwrap_err()
    }

    const L: &str = "[[listener]]\nname = \"x\"\nlisten = \"127.0.0.1:0\"\n";

    #[test]
    fn a_full_listener() {
        let c = parse(&format!(
            "{L}protocol = \"https\"\ntls_certificate = \"c.pem\"\ntls_key = \"k.pem\"\n\
             forward = [{{ target_group = \"a\", weight = 3 }}, {{ target_group = \"b\" }}]\n\
             [[listener.rule]]\npriority = 9\npath = [\"/b\"]\ntarget_group = \"b\"\n\
             [[listener.rule]]\npriority = 2\nhost = [\"*.x\"]\nredirect = {{ protocol = \"https\" }}\n"
        ))
        .unwrap();
        let l = &c.balancer.listeners[0];
        assert_eq!(l.protocol, Protocol::Https);
        assert_eq!(l.tls.as_ref().unwrap().key, Path::new("/base/k.pem"));
        assert_eq!(l.default_action, Action::Forward(vec![(0, 3), (1, 1)]));
        assert_eq!(
            l.rules.iter().map(|r| r.priority).collect::<Vec<_>>(),
            [2, 9]
        );
        assert_eq!(l.health_path.as_deref(), Some("/health"));
        assert_eq!(l.timeouts.idle.as_secs(), 60);
    }

    #[test]
    fn errors_name_the_line_and_the_problem() {
        let cases = [
            ("", "t.toml:6: listener `x`: default action: needs one of"),
            (
                "target_group = \"zz\"\n",
                "t.toml:8: listener `x`: default action: no [target_group.zz]",
            ),
            (
                "target_group = \"a\"\nfixed_response = { status = 200 }\n",
                "t.toml:6: listener `x`: default action: only one of",
            ),
            (
                "protocol = \"udp\"\ntarget_group = \"a\"\n",
                "t.toml:8: listener `x`: protocol: `udp` is not",
            ),
            (
                "protocol = \"https\"\ntarget_group = \"a\"\n",
                "t.toml:6: listener `x`: protocol: an https listener needs",
            ),
            (
                "target_group = \"a\"\nredirect = { status = 301 }\n",
                "t.toml:6: listener `x`: default action: only one of",
            ),
            (
                "redirect = { status = 307 }\n",
                "t.toml:8: listener `x`: default action: redirect: status must be 301 or 302",
            ),
            (
                "redirect = {}\n",
                "t.toml:8: listener `x`: default action: redirect: every part",
            ),
            (
                "fixed_response = { status = 302 }\n",
                "t.toml:8: listener `x`: default action: fixed_response: status",
            ),
            (
                "target_group = \"a\"\nidle_timeout = \"0s\"\n",
                "t.toml:9: listener `x`: idle_timeout: must be more than 0",
            ),
            (
                "target_group = \"a\"\nmax_header_bytes = 10\n",
                "t.toml:9: listener `x`: max_header_bytes",
            ),
            (
                "target_group = \"a\"\n[[listener.rule]]\npriority = 3\ntarget_group = \"b\"\n",
                "t.toml:10: listener `x`: rule 3: needs at least one condition",
            ),
            (
                "target_group = \"a\"\n[[listener.rule]]\npriority = 3\npath = [\"/\"]\ntarget_group = \"b\"\n\
                 [[listener.rule]]\npriority = 3\npath = [\"/x\"]\ntarget_group = \"b\"\n",
                "t.toml:14: listener `x`: rule: priority 3 is used twice",
            ),
            (
                "target_group = \"a\"\n[[listener.rule]]\npriority = 3\nsource = [\"10.0.0.0/40\"]\ntarget_group = \"b\"\n",
                "t.toml:11: listener `x`: rule 3: source:",
            ),
            (
                "protocol = \"tcp\"\ntarget_group = \"a\"\nhealth_path = \"/h\"\n",
                "t.toml:10: listener `x`: health_path: not for tcp listeners",
            ),
            (
                "protocol = \"tcp\"\nfixed_response = { status = 200 }\n",
                "t.toml:6: listener `x`: default action: a tcp listener can only forward",
            ),
        ];
        let wrong: Vec<String> = cases
            .iter()
            .map(|(extra, want)| (extra, want, err(&format!("{L}{extra}"))))
            .filter(|(_, want, got)| !got.starts_with(*want))
            .map(|(extra, want, got)| format!("{extra:?}\n got: {got}\nwant: {want}"))
            .collect();
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
        let twice = err(&format!(
            "{L}target_group = \"a\"\n{L}target_group = \"a\"\n"
        ));
        assert!(twice.contains("`x` is used twice"), "{twice}");
    }
}
