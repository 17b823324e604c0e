//! `[[listener]]` and its rules as written in the configuration file.

use serde::Deserialize;
use std::collections::BTreeMap;
use toml::Spanned;

/// `[[listener]]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileListener {
    /// Name (in logs and metrics).
    pub name: Spanned<String>,
    /// `address:port` to accept on (port 0 picks one; the log names it).
    pub listen: Spanned<String>,
    /// `http` (default), `https` or `tcp`.
    #[serde(default)]
    pub protocol: Option<Spanned<String>>,
    /// PEM certificate chain (`https`), relative to the configuration file.
    #[serde(default)]
    pub tls_certificate: Option<Spanned<String>>,
    /// PEM private key (`https`).
    #[serde(default)]
    pub tls_key: Option<Spanned<String>>,
    /// Default action: forward to one target group.
    #[serde(default)]
    pub target_group: Option<Spanned<String>>,
    /// Forward to several target groups by weight.
    #[serde(default)]
    pub forward: Option<Spanned<Vec<FileForward>>>,
    /// Redirect.
    #[serde(default)]
    pub redirect: Option<Spanned<FileRedirect>>,
    /// Fixed response.
    #[serde(default)]
    pub fixed_response: Option<Spanned<FileFixedResponse>>,
    /// Path the balancer answers itself with 200/503 by target readiness; `""` turns it off.
    /// Default `/health` (HTTP listeners).
    #[serde(default)]
    pub health_path: Option<Spanned<String>>,
    /// Longest wait for a request's header (slow clients are cut off). Default `10s`.
    #[serde(default)]
    pub header_timeout: Option<Spanned<String>>,
    /// Close a client connection idle this long. Default `60s` (HTTP), `350s` (TCP).
    #[serde(default)]
    pub idle_timeout: Option<Spanned<String>>,
    /// Longest wait for a target's response header before 504. Default `30s`.
    #[serde(default)]
    pub target_timeout: Option<Spanned<String>>,
    /// Longest wait to connect to a target before trying another. Default `2s`.
    #[serde(default)]
    pub connect_timeout: Option<Spanned<String>>,
    /// Largest request header block in bytes (larger: 431). Default 65536.
    #[serde(default)]
    pub max_header_bytes: Option<Spanned<u64>>,
    /// Longest request target (path and query) in bytes (longer: 414). Default 8192.
    #[serde(default)]
    pub max_uri_bytes: Option<Spanned<u64>>,
    /// Longest wait for a whole request body once its header is in (then 408). Default `30s`.
    #[serde(default)]
    pub body_timeout: Option<Spanned<String>>,
    /// Most client connections open at once; one more is answered 503 (HTTP) or closed
    /// (TCP) at once. Default 10000.
    #[serde(default)]
    pub max_connections: Option<Spanned<u32>>,
    /// `[[listener.rule]]`
    #[serde(default)]
    pub rule: Vec<FileRule>,
}

/// The action keys shared by a listener (its default action) and a rule; exactly one is set.
pub struct ActionKeys<'a> {
    /// `target_group`
    pub target_group: Option<&'a Spanned<String>>,
    /// `forward`
    pub forward: Option<&'a Spanned<Vec<FileForward>>>,
    /// `redirect`
    pub redirect: Option<&'a Spanned<FileRedirect>>,
    /// `fixed_response`
    pub fixed_response: Option<&'a Spanned<FileFixedResponse>>,
}

macro_rules! action_keys {
    ($t:ty) => {
        impl $t {
            /// The action keys.
            pub fn action(&self) -> ActionKeys<'_> {
                ActionKeys {
                    target_group: self.target_group.as_ref(),
                    forward: self.forward.as_ref(),
                    redirect: self.redirect.as_ref(),
                    fixed_response: self.fixed_response.as_ref(),
                }
            }
        }
    };
}
action_keys!(FileListener);
action_keys!(FileRule);

/// `[[listener.rule]]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileRule {
    /// Evaluation order, 1..=50000, unique per listener; lower first.
    pub priority: Spanned<u32>,
    /// Host patterns (`*`, `?`), case-insensitive.
    #[serde(default)]
    pub host: Vec<String>,
    /// Path patterns (`*`, `?`), case-sensitive.
    #[serde(default)]
    pub path: Vec<String>,
    /// Methods.
    #[serde(default)]
    pub method: Vec<String>,
    /// Header name -> value patterns.
    #[serde(default)]
    pub header: BTreeMap<String, Vec<String>>,
    /// Query key -> value patterns.
    #[serde(default)]
    pub query: BTreeMap<String, Vec<String>>,
    /// Source networks (CIDR).
    #[serde(default)]
    pub source: Vec<Spanned<String>>,
    /// Forward to one target group.
    #[serde(default)]
    pub target_group: Option<Spanned<String>>,
    /// Forward to several target groups by weight.
    #[serde(default)]
    pub forward: Option<Spanned<Vec<FileForward>>>,
    /// Redirect.
    #[serde(default)]
    pub redirect: Option<Spanned<FileRedirect>>,
    /// Fixed response.
    #[serde(default)]
    pub fixed_response: Option<Spanned<FileFixedResponse>>,
}

/// One entry of `forward = [...]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileForward {
    /// Target group name.
    pub target_group: Spanned<String>,
    /// Share of requests. Default 1.
    #[serde(default = "default_weight")]
    pub weight: u32,
}

/// `redirect = { ... }`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileRedirect {
    /// 301 (default) or 302.
    #[serde(default = "default_redirect_status")]
    pub status: u16,
    /// `http`, `https` or `#{protocol}` (default).
    #[serde(default = "default_protocol")]
    pub protocol: String,
    /// Default `#{host}`.
    #[serde(default = "default_host")]
    pub host: String,
    /// Default `#{port}`.
    #[serde(default = "default_port")]
    pub port: String,
    /// Default `/#{path}`.
    #[serde(default = "default_path")]
    pub path: String,
    /// Default `#{query}`.
    #[serde(default = "default_query")]
    pub query: String,
}

/// `fixed_response = { ... }`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileFixedResponse {
    /// Status code (200..=599). Default 200.
    #[serde(default = "default_fixed_status")]
    pub status: u16,
    /// Default `text/plain`.
    #[serde(default = "default_content_type")]
    pub content_type: String,
    /// Default empty.
    #[serde(default)]
    pub body: String,
}

fn default_weight() -> u32 {
    1
}
fn default_redirect_status() -> u16 {
    301
}
fn default_fixed_status() -> u16 {
    200
}
fn default_protocol() -> String {
    "#{protocol}".into()
}
fn default_host() -> String {
    "#{host}".into()
}
fn default_port() -> String {
    "#{port}".into()
}
fn default_path() -> String {
    "/#{path}".into()
}
fn default_query() -> String {
    "#{query}".into()
}
fn default_content_type() -> String {
    "text/plain".into()
}
