//! `[target_group.NAME]` as written, before validation (see `super::target_group`).

use serde::Deserialize;
use toml::Spanned;

/// `[target_group.NAME]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileTargetGroup {
    /// `round-robin`, `weighted-round-robin`, `least-outstanding`,
    /// `weighted-least-connections`, `source-ip-hash`, `consistent-hash`, `power-of-two` or
    /// `fastest-response`. Default `round-robin`.
    #[serde(default = "default_algorithm")]
    pub algorithm: Spanned<String>,
    /// `header:NAME` or `cookie:NAME`: what `consistent-hash` hashes (required there only).
    #[serde(default)]
    pub hash_key: Option<Spanned<String>>,
    /// Name of a `[health_check.NAME]` (its port defaults to each target's port).
    #[serde(default)]
    pub health_check: Option<Spanned<String>>,
    /// Time a target that becomes ready takes to ramp up to its full share; `0s` (default)
    /// is off, otherwise 30s to 900s.
    #[serde(default = "default_slow_start")]
    pub slow_start: Spanned<String>,
    /// Time requests to a removed target may take to finish before they are abandoned
    /// (0s to 3600s, default `30s`).
    #[serde(default = "default_deregistration_delay")]
    pub deregistration_delay: Spanned<String>,
    /// Consecutive connect failures or 5xx responses that eject a target; 0 is off.
    /// Default 5.
    #[serde(default = "default_passive_failures")]
    pub passive_failures: Spanned<u32>,
    /// First ejection time; it doubles with each consecutive ejection, up to ten times this.
    /// Default `30s`.
    #[serde(default = "default_passive_ejection")]
    pub passive_ejection: Spanned<String>,
    /// Sticky sessions (off when absent).
    #[serde(default)]
    pub stickiness: Option<Spanned<FileStickiness>>,
    /// The targets (may be empty when a scaling group fills the target group).
    #[serde(default)]
    pub targets: Vec<FileTarget>,
}

/// `stickiness = { type = "...", ... }`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileStickiness {
    /// `lb-cookie` (the balancer's own cookie) or `app-cookie` (follows the application's
    /// cookie named by `cookie`).
    #[serde(rename = "type")]
    pub kind: Spanned<String>,
    /// The application's cookie (`app-cookie` only).
    #[serde(default)]
    pub cookie: Option<Spanned<String>>,
    /// How long a client stays with its target: 1s to 7d. Default `1d`.
    #[serde(default = "default_stickiness_duration")]
    pub duration: Spanned<String>,
}

/// One entry of `targets = [...]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileTarget {
    /// `address:port`.
    pub address: Spanned<String>,
    /// Share of requests for the weighted algorithms (0 = only as a last resort). Default 1.
    #[serde(default = "default_weight")]
    pub weight: u32,
}

fn spanned<T>(v: T) -> Spanned<T> {
    Spanned::new(0..0, v)
}

fn default_algorithm() -> Spanned<String> {
    spanned("round-robin".into())
}
fn default_slow_start() -> Spanned<String> {
    spanned("0s".into())
}
fn default_deregistration_delay() -> Spanned<String> {
    spanned("30s".into())
}
fn default_passive_failures() -> Spanned<u32> {
    spanned(5)
}
fn default_passive_ejection() -> Spanned<String> {
    spanned("30s".into())
}
fn default_stickiness_duration() -> Spanned<String> {
    spanned("1d".into())
}
fn default_weight() -> u32 {
    1
}
