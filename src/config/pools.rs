//! Regions, health checks, pools and record bindings: validation of the file structs into
//! the domain types the pool answer path uses.

use super::ConfigError;
use super::file_pools::{FileBinding, FileEndpoint, FileHealthCheck, FilePool, FileRegion};
use super::validate::{Ctx, Network, parse_duration};
use crate::dns::name::Name;
use crate::health::{CheckSpec, Protocol, StatusMatcher};
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;
use toml::Spanned;

/// A named location.
#[derive(Debug, Clone, PartialEq)]
pub struct Region {
    /// Name, e.g. `us-east`.
    pub name: String,
    /// Latitude and longitude in degrees.
    pub coordinates: Option<(f64, f64)>,
    /// Continent code.
    pub continent: Option<String>,
    /// Country codes.
    pub countries: Vec<String>,
    /// Client networks always steered here (`geo`).
    pub networks: Vec<Network>,
    /// Kilometres taken off this region's distance (`proximity`).
    pub bias_km: f64,
}

/// A round-trip time from a client network to a region (`latency` steering).
#[derive(Debug, Clone, PartialEq)]
pub struct LatencyEntry {
    /// Client network.
    pub network: Network,
    /// Index into `PoolsConfig::regions`.
    pub region: usize,
    /// Round-trip time in milliseconds.
    pub rtt_ms: f64,
}

/// How a pool picks endpoints among the ready ones of the chosen region(s).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// All ready endpoints (or up to N), rotated every response.
    RoundRobin,
    /// N endpoints drawn in proportion to their weights.
    Weighted,
    /// The first priority tier with enough ready endpoints, rotated.
    Failover,
    /// Up to 8 random ready endpoints.
    Multivalue,
}

/// How a pool ranks its regions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Steering {
    /// One set across all regions.
    None,
    /// The pool's region order; the first region with ready endpoints answers.
    Ordered,
    /// Per client: CIDR overrides, then country, then continent, then the pool's order.
    Geo,
    /// Per client: nearest region by great-circle distance (minus each region's bias).
    Proximity,
    /// Per client: lowest round-trip time from the latency table, then `geo`.
    Latency,
}

/// Where the traffic of a region that cannot take it goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spill {
    /// The next two ranked regions that can answer, in proportion to their capacity.
    Capacity,
    /// All of it to the next ranked region that can answer.
    Next,
}

/// An operator override for one endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndpointMode {
    /// Health checks decide.
    Auto,
    /// Always ready.
    Up,
    /// Never ready.
    Down,
    /// Not handed out, still probed.
    Drain,
}

/// One address of a pool.
#[derive(Debug, Clone, PartialEq)]
pub struct Endpoint {
    /// Address handed out.
    pub addr: IpAddr,
    /// Index into the pool's `regions`.
    pub region: usize,
    /// Weight (`weighted`).
    pub weight: u32,
    /// Tier (`failover`; lower first).
    pub priority: u32,
    /// Disabled endpoints are neither answered nor probed.
    pub enabled: bool,
    /// Override.
    pub mode: EndpointMode,
}

/// A pool of endpoints with its policy.
#[derive(Debug, Clone, PartialEq)]
pub struct Pool {
    /// Name.
    pub name: String,
    /// Endpoint choice.
    pub policy: Policy,
    /// Region ranking.
    pub steering: Steering,
    /// Region names, in steering order.
    pub regions: Vec<String>,
    /// Index into `PoolsConfig::regions` per entry of `regions` (None: region not defined).
    pub region_index: Vec<Option<usize>>,
    /// Traffic dial (0-100) per entry of `regions`.
    pub dials: Vec<u8>,
    /// Same client network, same endpoint order (instead of rotation).
    pub affinity: bool,
    /// Where a region's traffic goes when it cannot take it.
    pub spill: Spill,
    /// Ready endpoints a failover tier needs.
    pub min_ready: usize,
    /// Health check (None: every enabled endpoint is ready).
    pub check: Option<Arc<CheckSpec>>,
    /// Endpoints in configuration order.
    pub endpoints: Vec<Endpoint>,
}

/// What a binding answers when no endpoint is ready.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WhenAllDown {
    /// Answer as if every enabled endpoint were ready (and count it).
    FailOpen,
    /// NOERROR without addresses.
    NoData,
    /// SERVFAIL.
    ServFail,
    /// These addresses.
    Fallback(Vec<IpAddr>),
}

/// `name + type -> pool`.
#[derive(Debug, Clone, PartialEq)]
pub struct Binding {
    /// Bound name.
    pub name: Name,
    /// Bound types (A, AAAA or both).
    pub rtypes: Vec<u16>,
    /// Index into `PoolsConfig::pools`.
    pub pool: usize,
    /// TTL in seconds.
    pub ttl: u32,
    /// Most addresses per answer.
    pub answers: usize,
    /// Behaviour when nothing is ready.
    pub when_all_down: WhenAllDown,
    /// Health-aware TTL: `Some(min_ttl)` when enabled.
    pub adaptive_ttl: Option<u32>,
    /// Line of the binding in the configuration file (for errors found later).
    pub line: usize,
}

/// Everything about pools.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PoolsConfig {
    /// Regions in configuration order.
    pub regions: Vec<Region>,
    /// Pools, sorted by name.
    pub pools: Vec<Pool>,
    /// Bindings in configuration order.
    pub bindings: Vec<Binding>,
    /// MaxMind-format geo database.
    pub geo_database: Option<std::path::PathBuf>,
    /// Latency table (static entries).
    pub latency: Vec<LatencyEntry>,
    /// Health checks by name (pools and target groups refer to them).
    pub checks: BTreeMap<String, Arc<CheckSpec>>,
}

/// The health check a pool or target group names (`key` is the key for the error).
pub(super) fn check_named(
    ctx: &Ctx<'_>,
    key: &str,
    name: Option<&Spanned<String>>,
    checks: &BTreeMap<String, Arc<CheckSpec>>,
) -> Result<Option<Arc<CheckSpec>>, ConfigError> {
    let Some(c) = name else { return Ok(None) };
    match checks.get(c.get_ref()) {
        Some(spec) => Ok(Some(spec.clone())),
        None => Err(ctx.at(
            c,
            format!("{key}: no [health_check.{}] is defined", c.get_ref()),
        )),
    }
}

/// A health check `port` of 0: probe each target on its own (traffic) port.
pub const TRAFFIC_PORT: u16 = 0;

/// The raw pool sections of the file.
pub struct FilePools {
    /// Pools a scaling group fills (they may list no endpoints).
    pub scaled: Vec<String>,
    pub geo_database: Option<std::path::PathBuf>,
    pub latency: Vec<super::file_pools::FileLatency>,
    pub regions: Vec<FileRegion>,
    pub checks: BTreeMap<String, FileHealthCheck>,
    pub pools: BTreeMap<String, FilePool>,
    pub bindings: Vec<FileBinding>,
}

/// Validates the pool sections.
pub fn validate(ctx: &Ctx<'_>, f: FilePools) -> Result<PoolsConfig, ConfigError> {
    let regions = f
        .regions
        .iter()
        .map(|r| region(ctx, r))
        .collect::<Result<Vec<_>, _>>()?;
    for (i, r) in regions.iter().enumerate() {
        if regions[..i].iter().any(|o| o.name == r.name) {
            return Err(ctx.at(
                &f.regions[i].name,
                format!("region `{}` is defined twice", r.name),
            ));
        }
    }
    let mut checks = BTreeMap::new();
    for (name, c) in &f.checks {
        checks.insert(name.clone(), Arc::new(check(ctx, name, c)?));
    }
    let mut pools = Vec::new();
    for (name, p) in &f.pools {
        let scaled = f.scaled.contains(name);
        pools.push(pool(ctx, name, p, &regions, &checks, scaled)?);
    }
    let latency = f
        .latency
        .iter()
        .map(|l| latency_entry(ctx, l, &regions))
        .collect::<Result<Vec<_>, _>>()?;
    let bindings = f
        .bindings
        .iter()
        .map(|b| binding(ctx, b, &pools))
        .collect::<Result<Vec<_>, _>>()?;
    for (i, b) in bindings.iter().enumerate() {
        if let Some(o) = bindings[..i]
            .iter()
            .find(|o| o.name == b.name && o.rtypes.iter().any(|t| b.rtypes.contains(t)))
        {
            return Err(ctx.at(
                &f.bindings[i].name,
                format!("{} is already bound (line {})", b.name, o.line),
            ));
        }
    }
    Ok(PoolsConfig {
        regions,
        pools,
        bindings,
        geo_database: f.geo_database,
        latency,
        checks,
    })
}

fn latency_entry(
    ctx: &Ctx<'_>,
    l: &super::file_pools::FileLatency,
    regions: &[Region],
) -> Result<LatencyEntry, ConfigError> {
    let network: Network = l
        .prefix
        .get_ref()
        .parse()
        .map_err(|e| ctx.at(&l.prefix, format!("latency.prefix: {e}")))?;
    let region = regions
        .iter()
        .position(|r| &r.name == l.region.get_ref())
        .ok_or_else(|| {
            ctx.at(
                &l.region,
                format!(
                    "latency.region: no [[region]] is named `{}`",
                    l.region.get_ref()
                ),
            )
        })?;
    if !(l.rtt_ms.is_finite() && l.rtt_ms >= 0.0) {
        return Err(ctx.at(
            &l.prefix,
            "latency.rtt_ms must be a number of milliseconds >= 0",
        ));
    }
    Ok(LatencyEntry {
        network,
        region,
        rtt_ms: l.rtt_ms,
    })
}

fn region(ctx: &Ctx<'_>, r: &FileRegion) -> Result<Region, ConfigError> {
    if r.name.get_ref().is_empty() {
        return Err(ctx.at(&r.name, "region.name must not be empty"));
    }
    let coordinates = match &r.coordinates {
        Some(c) => {
            let [lat, lon] = *c.get_ref();
            if !(-90.0..=90.0).contains(&lat) || !(-180.0..=180.0).contains(&lon) {
                return Err(ctx.at(
                    c,
                    "region.coordinates: [latitude, longitude] must be within [-90..90, -180..180]",
                ));
            }
            Some((lat, lon))
        }
        None => None,
    };
    const CONTINENTS: [&str; 7] = ["AF", "AN", "AS", "EU", "NA", "OC", "SA"];
    if let Some(c) = &r.continent
        && !CONTINENTS.contains(&c.get_ref().as_str())
    {
        return Err(ctx.at(
            c,
            format!(
                "region.continent: `{}` is not one of {}",
                c.get_ref(),
                CONTINENTS.join(", ")
            ),
        ));
    }
    let mut networks = Vec::new();
    for n in &r.networks {
        networks.push(
            n.get_ref()
                .parse::<Network>()
                .map_err(|e| ctx.at(n, format!("region.networks: {e}")))?,
        );
    }
    Ok(Region {
        name: r.name.get_ref().clone(),
        coordinates,
        continent: r.continent.as_ref().map(|c| c.get_ref().clone()),
        countries: r.countries.iter().map(|c| c.to_ascii_uppercase()).collect(),
        networks,
        bias_km: r.bias_km,
    })
}

fn duration(
    ctx: &Ctx<'_>,
    key: &str,
    v: &Spanned<String>,
) -> Result<std::time::Duration, ConfigError> {
    parse_duration(v.get_ref()).map_err(|e| ctx.at(v, format!("{key}: {e}")))
}

fn check(ctx: &Ctx<'_>, name: &str, c: &FileHealthCheck) -> Result<CheckSpec, ConfigError> {
    let key = |k: &str| format!("health_check.{name}.{k}");
    let protocol = match c.protocol.get_ref().as_str() {
        "http" => {
            let matcher: StatusMatcher = c
                .matcher
                .get_ref()
                .parse()
                .map_err(|e| ctx.at(&c.matcher, format!("{}: {e}", key("matcher"))))?;
            if !c.path.starts_with('/') {
                return Err(ctx.at(
                    &c.protocol,
                    format!("{}: `{}` must start with `/`", key("path"), c.path),
                ));
            }
            Protocol::Http {
                path: c.path.clone(),
                host: c.host.clone(),
                matcher,
                body_contains: c.body_contains.clone(),
            }
        }
        "tcp" => Protocol::Tcp,
        other => {
            return Err(ctx.at(
                &c.protocol,
                format!("{}: `{other}` is not `http` or `tcp`", key("protocol")),
            ));
        }
    };
    let interval = duration(ctx, &key("interval"), &c.interval)?;
    let timeout = duration(ctx, &key("timeout"), &c.timeout)?;
    if timeout.is_zero() || timeout >= interval {
        return Err(ctx.at(
            &c.timeout,
            format!(
                "{}: must be greater than 0 and less than the interval ({})",
                key("timeout"),
                c.interval.get_ref()
            ),
        ));
    }
    for (k, v) in [
        ("healthy_threshold", &c.healthy_threshold),
        ("unhealthy_threshold", &c.unhealthy_threshold),
    ] {
        if !(1..=100).contains(v.get_ref()) {
            return Err(ctx.at(v, format!("{}: must be 1..=100", key(k))));
        }
    }
    Ok(CheckSpec {
        protocol,
        port: c
            .port
            .as_ref()
            .map(|p| *p.get_ref())
            .unwrap_or(TRAFFIC_PORT),
        interval,
        timeout,
        healthy_threshold: *c.healthy_threshold.get_ref(),
        unhealthy_threshold: *c.unhealthy_threshold.get_ref(),
    })
}

fn pool(
    ctx: &Ctx<'_>,
    name: &str,
    p: &FilePool,
    all_regions: &[Region],
    checks: &BTreeMap<String, Arc<CheckSpec>>,
    scaled: bool,
) -> Result<Pool, ConfigError> {
    let key = |k: &str| format!("pool.{name}.{k}");
    let policy = ctx.choose(
        &key("policy"),
        &p.policy,
        &[
            ("round-robin", Policy::RoundRobin),
            ("weighted", Policy::Weighted),
            ("failover", Policy::Failover),
            ("multivalue", Policy::Multivalue),
        ],
    )?;
    let steering = ctx.choose(
        &key("steering"),
        &p.steering,
        &[
            ("none", Steering::None),
            ("ordered", Steering::Ordered),
            ("geo", Steering::Geo),
            ("proximity", Steering::Proximity),
            ("latency", Steering::Latency),
        ],
    )?;
    let check = check_named(ctx, &key("health_check"), p.health_check.as_ref(), checks)?;
    if let (Some(c), Some(spec)) = (&p.health_check, &check)
        && spec.port == TRAFFIC_PORT
    {
        return Err(ctx.at(
            c,
            format!(
                "{}: [health_check.{}] needs a `port` to probe pool endpoints",
                key("health_check"),
                c.get_ref()
            ),
        ));
    }
    let mut regions: Vec<String> = p.regions.iter().map(|r| r.get_ref().clone()).collect();
    for r in &p.regions {
        if !all_regions.is_empty() && !all_regions.iter().any(|x| &x.name == r.get_ref()) {
            return Err(ctx.at(
                r,
                format!(
                    "{}: no [[region]] is named `{}`",
                    key("regions"),
                    r.get_ref()
                ),
            ));
        }
    }
    if p.endpoints.is_empty() && !scaled {
        return Err(ctx.at(
            &p.policy,
            format!(
                "{}: a pool needs at least one endpoint (or a scaling group filling it)",
                key("endpoints")
            ),
        ));
    }
    let mut endpoints = Vec::new();
    for e in &p.endpoints {
        endpoints.push(endpoint(
            ctx,
            &key("endpoints"),
            e,
            all_regions,
            &mut regions,
        )?);
    }
    let mut dials = vec![100u8; regions.len()];
    for (region, dial) in &p.dials {
        let Some(i) = regions.iter().position(|r| r == region) else {
            return Err(ctx.at(
                dial,
                format!("{}: `{region}` is not a region of this pool", key("dials")),
            ));
        };
        if *dial.get_ref() > 100 {
            return Err(ctx.at(
                dial,
                format!("{}: a dial is a percentage, 0..=100", key("dials")),
            ));
        }
        if steering == Steering::None {
            return Err(ctx.at(
                dial,
                format!(
                    "{}: dials move traffic between regions and need `steering = \"ordered\"`",
                    key("dials")
                ),
            ));
        }
        dials[i] = *dial.get_ref();
    }
    let min_ready = *p.min_ready.get_ref() as usize;
    if min_ready == 0 {
        return Err(ctx.at(
            &p.min_ready,
            format!("{}: must be at least 1", key("min_ready")),
        ));
    }
    let spill = ctx.choose(
        &key("spill"),
        &p.spill,
        &[("capacity", Spill::Capacity), ("next", Spill::Next)],
    )?;
    let region_index: Vec<Option<usize>> = regions
        .iter()
        .map(|r| all_regions.iter().position(|x| &x.name == r))
        .collect();
    if matches!(
        steering,
        Steering::Geo | Steering::Proximity | Steering::Latency
    ) && region_index.iter().any(Option::is_none)
    {
        return Err(ctx.at(
            &p.steering,
            format!(
                "{}: per-client steering needs every region of the pool defined as a [[region]]",
                key("steering")
            ),
        ));
    }
    if steering == Steering::Proximity
        && let Some(r) = region_index
            .iter()
            .flatten()
            .find(|&&i| all_regions[i].coordinates.is_none())
    {
        return Err(ctx.at(
            &p.steering,
            format!(
                "{}: proximity needs coordinates for region `{}`",
                key("steering"),
                all_regions[*r].name
            ),
        ));
    }
    Ok(Pool {
        name: name.to_string(),
        policy,
        steering,
        regions,
        region_index,
        dials,
        affinity: p.affinity,
        spill,
        min_ready,
        check,
        endpoints,
    })
}

fn endpoint(
    ctx: &Ctx<'_>,
    key: &str,
    e: &FileEndpoint,
    all_regions: &[Region],
    regions: &mut Vec<String>,
) -> Result<Endpoint, ConfigError> {
    let addr: IpAddr = e.address.get_ref().parse().map_err(|_| {
        ctx.at(
            &e.address,
            format!("{key}: `{}` is not an IP address", e.address.get_ref()),
        )
    })?;
    let region_name = match &e.region {
        Some(r) => {
            if !all_regions.is_empty() && !all_regions.iter().any(|x| &x.name == r.get_ref()) {
                return Err(ctx.at(
                    r,
                    format!("{key}: no [[region]] is named `{}`", r.get_ref()),
                ));
            }
            r.get_ref().clone()
        }
        None if all_regions.is_empty() => "default".to_string(),
        None => {
            return Err(ctx.at(
                &e.address,
                format!("{key}: endpoint {addr} needs a `region` (regions are configured)"),
            ));
        }
    };
    let region = match regions.iter().position(|r| *r == region_name) {
        Some(i) => i,
        None => {
            regions.push(region_name);
            regions.len() - 1
        }
    };
    let mode = ctx.choose(
        &format!("{key}.state"),
        &e.state,
        &[
            ("auto", EndpointMode::Auto),
            ("up", EndpointMode::Up),
            ("down", EndpointMode::Down),
            ("drain", EndpointMode::Drain),
        ],
    )?;
    Ok(Endpoint {
        addr,
        region,
        weight: e.weight,
        priority: e.priority,
        enabled: e.enabled,
        mode,
    })
}

fn binding(ctx: &Ctx<'_>, b: &FileBinding, pools: &[Pool]) -> Result<Binding, ConfigError> {
    let name = Name::parse(b.name.get_ref(), Some(&Name::root())).map_err(|e| {
        ctx.at(
            &b.name,
            format!("binding.name: `{}`: {e}", b.name.get_ref()),
        )
    })?;
    let rtypes = match b
        .rtype
        .as_ref()
        .map(|t| (t, t.get_ref().to_ascii_uppercase()))
    {
        None => vec![1, 28],
        Some((_, t)) if t == "A" => vec![1],
        Some((_, t)) if t == "AAAA" => vec![28],
        Some((s, t)) => {
            return Err(ctx.at(
                s,
                format!("binding.type: `{t}` cannot be bound to a pool (only A or AAAA)"),
            ));
        }
    };
    let pool = pools
        .iter()
        .position(|p| &p.name == b.pool.get_ref())
        .ok_or_else(|| {
            ctx.at(
                &b.pool,
                format!("binding.pool: no [pool.{}] is defined", b.pool.get_ref()),
            )
        })?;
    let ttl = duration(ctx, "binding.ttl", &b.ttl)?;
    if ttl.as_secs() > u64::from(i32::MAX as u32) {
        return Err(ctx.at(&b.ttl, "binding.ttl is too long"));
    }
    let policy = pools[pool].policy;
    let answers = match &b.answers {
        Some(n) if *n.get_ref() == 0 => return Err(ctx.at(n, "binding.answers must be at least 1")),
        Some(n) if policy == Policy::Multivalue && *n.get_ref() > 8 => {
            return Err(ctx.at(n, "binding.answers: multivalue answers at most 8 addresses"));
        }
        Some(n) => *n.get_ref() as usize,
        None => match policy {
            Policy::Weighted => 1,
            Policy::Multivalue => 8,
            Policy::RoundRobin | Policy::Failover => usize::MAX,
        },
    };
    let when_all_down = match b.when_all_down.get_ref().as_str() {
        "fail-open" => WhenAllDown::FailOpen,
        "nodata" => WhenAllDown::NoData,
        "servfail" => WhenAllDown::ServFail,
        "fallback" => {
            let mut addrs = Vec::new();
            for a in &b.fallback {
                addrs.push(a.get_ref().parse().map_err(|_| {
                    ctx.at(
                        a,
                        format!("binding.fallback: `{}` is not an IP address", a.get_ref()),
                    )
                })?);
            }
            if addrs.is_empty() {
                return Err(ctx.at(
                    &b.when_all_down,
                    "binding: `when_all_down = \"fallback\"` needs `fallback = [\"ADDRESS\", ...]`",
                ));
            }
            WhenAllDown::Fallback(addrs)
        }
        other => return Err(ctx.at(
            &b.when_all_down,
            format!(
                "binding.when_all_down: `{other}` is not fail-open, nodata, servfail or fallback"
            ),
        )),
    };
    let min_ttl = duration(ctx, "binding.min_ttl", &b.min_ttl)?;
    if b.adaptive_ttl && min_ttl > ttl {
        return Err(ctx.at(
            &b.min_ttl,
            format!(
                "binding.min_ttl ({}) must not exceed ttl ({})",
                b.min_ttl.get_ref(),
                b.ttl.get_ref()
            ),
        ));
    }
    Ok(Binding {
        name,
        rtypes,
        pool,
        ttl: ttl.as_secs() as u32,
        answers,
        when_all_down,
        adaptive_ttl: b.adaptive_ttl.then_some(min_ttl.as_secs() as u32),
        line: ctx.line_of(&b.name),
    })
}
