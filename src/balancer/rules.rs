//! Listener rules (AWS ALB): conditions on host, path, method, headers, query string and
//! source address, evaluated in priority order; the first rule whose conditions all hold
//! decides the action, else the listener's default action does. Pure: no sockets, no clock.

use crate::config::Network;
use hyper::HeaderMap;
use std::net::IpAddr;

/// Conditions of a rule. Each list holds alternatives (any may match); every non-empty
/// list must match. Wildcards: `*` is any run of characters, `?` exactly one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Conditions {
    /// Host patterns, matched case-insensitively against the Host header without its port.
    pub hosts: Vec<String>,
    /// Path patterns, matched case-sensitively against the path (no query string).
    pub paths: Vec<String>,
    /// Methods, exact (`GET`, `POST`, ...).
    pub methods: Vec<String>,
    /// Per header (lowercase name): value patterns, case-insensitive. Every named header must
    /// match one of its patterns.
    pub headers: Vec<(String, Vec<String>)>,
    /// Query-string pairs: any pair present (key exact, value pattern case-insensitive,
    /// both after percent-decoding) matches.
    pub query: Vec<(String, String)>,
    /// Client networks (the connection's source address, not X-Forwarded-For).
    pub sources: Vec<Network>,
}

/// What a listener does with a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Forward to target groups, split by weight (indices into the target groups).
    Forward(Vec<(usize, u32)>),
    /// Answer with a redirect.
    Redirect(Redirect),
    /// Answer with a fixed response.
    Fixed(FixedResponse),
}

/// A redirect action. Each part may use `#{protocol}`, `#{host}`, `#{port}`, `#{path}` (without
/// the leading `/`) and `#{query}` (without the `?`), as ALB does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redirect {
    /// 301 or 302.
    pub status: u16,
    /// `http`, `https` or `#{protocol}`.
    pub protocol: String,
    /// Host.
    pub host: String,
    /// Port; omitted from the location when it is the protocol's default.
    pub port: String,
    /// Path, starting with `/`.
    pub path: String,
    /// Query string without `?`; empty: none.
    pub query: String,
}

/// A fixed-response action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FixedResponse {
    /// Status code.
    pub status: u16,
    /// Content-Type header.
    pub content_type: String,
    /// Body.
    pub body: String,
}

/// A rule: conditions and the action taken when they hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// Lower numbers are evaluated first; unique per listener.
    pub priority: u32,
    /// What must hold.
    pub conditions: Conditions,
    /// What to do.
    pub action: Action,
}

/// The parts of a request that rules look at.
#[derive(Debug, Clone, Copy)]
pub struct RequestView<'a> {
    /// Host without port, as sent.
    pub host: &'a str,
    /// Path without query.
    pub path: &'a str,
    /// Query string without `?`.
    pub query: &'a str,
    /// Method.
    pub method: &'a str,
    /// Headers.
    pub headers: &'a HeaderMap,
    /// Connection source address.
    pub source: IpAddr,
}

/// The action for `req`: the first matching rule's (rules sorted by priority), else `default`.
pub fn route<'a>(rules: &'a [Rule], default: &'a Action, req: &RequestView<'_>) -> &'a Action {
    rules
        .iter()
        .find(|r| r.conditions.matches(req))
        .map(|r| &r.action)
        .unwrap_or(default)
}

impl Conditions {
    /// True when every condition holds for `req`.
    pub fn matches(&self, req: &RequestView<'_>) -> bool {
        let any = |list: &[String], text: &str, fold| {
            list.is_empty() || list.iter().any(|p| glob(p, text, fold))
        };
        any(&self.hosts, req.host, true)
            && any(&self.paths, req.path, false)
            && (self.methods.is_empty() || self.methods.iter().any(|m| m == req.method))
            && self.headers.iter().all(|(name, patterns)| {
                req.headers
                    .get_all(name.as_str())
                    .iter()
                    .filter_map(|v| v.to_str().ok())
                    .any(|v| patterns.iter().any(|p| glob(p, v, true)))
            })
            && (self.query.is_empty() || self.query_matches(req.query))
            && (self.sources.is_empty() || self.sources.iter().any(|n| n.contains(req.source)))
    }

    fn query_matches(&self, query: &str) -> bool {
        query_pairs(query).any(|(k, v)| {
            self.query
                .iter()
                .any(|(key, pattern)| *key == k && glob(pattern, &v, true))
        })
    }
}

fn query_pairs(query: &str) -> impl Iterator<Item = (String, String)> + '_ {
    query.split('&').filter(|p| !p.is_empty()).map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (percent_decode(k), percent_decode(v))
    })
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        match b[i] {
            b'%' if i + 2 < b.len() => match (hex(b[i + 1]), hex(b[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push((h * 16 + l) as u8);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Wildcard match: `*` any run (also empty), `?` one character; `fold` ignores ASCII case.
pub fn glob(pattern: &str, text: &str, fold: bool) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let eq = |a: char, b: char| a == b || (fold && a.eq_ignore_ascii_case(&b));
    let (mut pi, mut ti) = (0, 0);
    // Where the last `*` was and which text position it currently swallows up to.
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || (p[pi] != '*' && eq(p[pi], t[ti]))) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

impl Redirect {
    /// The Location for a request on a listener speaking `protocol` on `port`.
    pub fn location(&self, protocol: &str, port: u16, req: &RequestView<'_>) -> String {
        let port = port.to_string();
        let fill = |template: &str| {
            template
                .replace("#{protocol}", protocol)
                .replace("#{host}", req.host)
                .replace("#{port}", &port)
                .replace("#{path}", req.path.strip_prefix('/').unwrap_or(req.path))
                .replace("#{query}", req.query)
        };
        let (proto, host, to_port) = (fill(&self.protocol), fill(&self.host), fill(&self.port));
        let default_port = matches!(
            (proto.as_str(), to_port.as_str()),
            ("http", "80") | ("https", "443")
        );
        let mut out = format!("{proto}://{host}");
        if !default_port && !to_port.is_empty() {
            out.push(':');
            out.push_str(&to_port);
        }
        out.push_str(&fill(&self.path));
        let query = fill(&self.query);
        if !query.is_empty() {
            out.push('?');
            out.push_str(&query);
        }
        out
    }

    /// True when every part keeps the request's own value: the redirect would loop.
    pub fn is_identity(&self) -> bool {
        self.protocol == "#{protocol}"
            && self.host == "#{host}"
            && self.port == "#{port}"
            && self.path == "/#{path}"
            && self.query == "#{query}"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view<'a>(
        headers: &'a HeaderMap,
        host: &'a str,
        path: &'a str,
        query: &'a str,
    ) -> RequestView<'a> {
        RequestView {
            host,
            path,
            query,
            method: "GET",
            headers,
            source: "10.1.2.3".parse().unwrap(),
        }
    }

    #[test]
    fn glob_wildcards() {
        let cases = [
            ("*.example.com", "api.example.com", true, true),
            ("*.example.com", "example.com", true, false),
            ("*.EXAMPLE.com", "a.b.example.COM", true, true),
            ("/api/*", "/api/", false, true),
            ("/api/*", "/API/x", false, false),
            ("/img/*.png", "/img/a/b.png", false, true),
            ("/v?/x", "/v2/x", false, true),
            ("/v?/x", "/v10/x", false, false),
            ("*", "", false, true),
            ("a*b*c", "aXbYbZc", false, true),
            ("a*b*c", "aXbYbZ", false, false),
            ("/", "/", false, true),
        ];
        for (p, t, fold, want) in cases {
            assert_eq!(glob(p, t, fold), want, "glob({p:?}, {t:?})");
        }
    }

    fn rule(priority: u32, conditions: Conditions, group: usize) -> Rule {
        Rule {
            priority,
            conditions,
            action: Action::Forward(vec![(group, 1)]),
        }
    }

    #[test]
    fn first_matching_rule_by_priority_wins() {
        let mut headers = HeaderMap::new();
        headers.insert("x-canary", "YES".parse().unwrap());
        headers.append("x-canary", "other".parse().unwrap());
        let rules = vec![
            rule(
                1,
                Conditions {
                    hosts: vec!["admin.*".into()],
                    ..Default::default()
                },
                1,
            ),
            rule(
                2,
                Conditions {
                    paths: vec!["/api/*".into()],
                    headers: vec![("x-canary".into(), vec!["yes".into()])],
                    ..Default::default()
                },
                2,
            ),
            rule(
                3,
                Conditions {
                    paths: vec!["/api/*".into()],
                    ..Default::default()
                },
                3,
            ),
            rule(
                4,
                Conditions {
                    query: vec![("v".into(), "2*".into())],
                    ..Default::default()
                },
                4,
            ),
            rule(
                5,
                Conditions {
                    sources: vec!["10.0.0.0/8".parse().unwrap()],
                    methods: vec!["GET".into()],
                    ..Default::default()
                },
                5,
            ),
        ];
        let default = Action::Forward(vec![(0, 1)]);
        let empty = HeaderMap::new();
        let table: [(&HeaderMap, &str, &str, &str, usize); 7] = [
            (&empty, "admin.example.com", "/api/x", "", 1),
            (&headers, "www.example.com", "/api/x", "", 2),
            (&empty, "www.example.com", "/api/x", "", 3),
            (&empty, "www.example.com", "/", "a=1&v=2.1", 4),
            (&empty, "www.example.com", "/", "v=%32", 4),
            (&empty, "www.example.com", "/", "v=1", 5),
            (&headers, "www.example.com", "/home", "", 5),
        ];
        for (h, host, path, query, want) in table {
            let got = route(&rules, &default, &view(h, host, path, query));
            assert_eq!(
                got,
                &Action::Forward(vec![(want, 1)]),
                "{host}{path}?{query}"
            );
        }
        let mut post = view(&empty, "www.example.com", "/", "");
        post.method = "POST";
        post.source = "192.0.2.1".parse().unwrap();
        assert_eq!(route(&rules, &default, &post), &default);
    }

    #[test]
    fn every_condition_must_hold() {
        let c = Conditions {
            hosts: vec!["example.com".into()],
            methods: vec!["POST".into()],
            ..Default::default()
        };
        let h = HeaderMap::new();
        assert!(
            !c.matches(&view(&h, "example.com", "/", "")),
            "GET is not POST"
        );
        let missing = Conditions {
            headers: vec![("x-env".into(), vec!["*".into()])],
            ..Default::default()
        };
        assert!(!missing.matches(&view(&h, "example.com", "/", "")));
    }

    #[test]
    fn redirect_placeholders() {
        let h = HeaderMap::new();
        let req = view(&h, "www.example.com", "/a/b", "x=1");
        let to_https = Redirect {
            status: 301,
            protocol: "https".into(),
            host: "#{host}".into(),
            port: "443".into(),
            path: "/#{path}".into(),
            query: "#{query}".into(),
        };
        assert_eq!(
            to_https.location("http", 80, &req),
            "https://www.example.com/a/b?x=1"
        );
        assert!(!to_https.is_identity());
        let moved = Redirect {
            status: 302,
            protocol: "#{protocol}".into(),
            host: "new.example.com".into(),
            port: "#{port}".into(),
            path: "/new/#{path}".into(),
            query: "".into(),
        };
        assert_eq!(
            moved.location("http", 8080, &req),
            "http://new.example.com:8080/new/a/b"
        );
    }

    #[test]
    fn percent_decoding_is_lenient() {
        assert_eq!(percent_decode("a%20b+c"), "a b c");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz"), "%zz");
    }
}
