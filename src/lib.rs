//! roundhouse: an authoritative DNS server that serves RFC 1035 zone files and, as the
//! project grows, health-driven pools, regional load balancers and scalers.
//!
//! Module map (see `docs/architecture.md`):
//! - [`config`]: TOML file -> validated [`config::Config`] (errors as `file:line: what`).
//! - [`dns`]: names, zone-file parser, zones, the pure answer function, wire encoding, the
//!   UDP/TCP server, zone transfers and NOTIFY.
//! - [`health`]: health checks: a pure state machine, HTTP/TCP probes, the checker loop.
//! - [`pool`]: pools: health-filtered, steered, rotated A/AAAA answers for bound names.
//! - [`steering`]: client location (ECS, geo database) and per-client region ranking.
//! - [`balancer`]: HTTP/1.1 listeners forwarding to health-checked target groups; client
//!   round-trip times reported for latency steering.
//! - [`admin`]: the admin HTTP server: measured latency reports, Prometheus metrics.
//! - [`backend`]: the demo web app instances run (`roundhouse backend`).
//! - [`compare`]: `roundhouse compare`: DNS round robin vs balancers under faults.
//! - [`scaler`]: scaling groups: policies, providers, instance lifecycle, activities.
//! - [`app`]: wiring: configuration -> snapshots, sockets, reload, shutdown.
//! - [`watch`]: file watching and SIGHUP.
//! - [`tour`]: what `serve` prints to try once it is up.

pub mod admin;
pub mod app;
pub mod backend;
pub mod balancer;
pub mod compare;
pub mod config;
pub mod dns;
pub mod hash;
pub mod health;
pub mod pool;
#[cfg(target_os = "linux")]
pub mod reuse_port;
pub mod scaler;
pub mod shutdown;
pub mod steering;
pub mod tour;
pub mod watch;
