//! Wiring: configuration -> snapshots; sockets and run-loops; reload on file change or
//! SIGHUP; shutdown.

use crate::admin::Admin;
use crate::admin::control::{Control, Runtime};
use crate::balancer::Groups;
use crate::balancer::listeners::{ListenError, Listeners};
use crate::balancer::proxy::BalancerState;
use crate::balancer::report::Reporter;
use crate::balancer::workers::Workers;
use crate::config::{Config, ConfigError};
use crate::dns::loader::{LoadError, ZoneLoader, zone_sources};
use crate::dns::server::{DnsState, Settings, run_tcp};
use crate::dns::xfr::notify_all;
use crate::health::Checker;
use crate::pool::{Pools, binding_problems};
use crate::scaler::{Registrations, ScalerHandle};
use crate::shutdown::Closing;
use crate::steering::geo::GeoDb;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The zones could not be found.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// A socket could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// Address.
        addr: SocketAddr,
        /// Cause.
        source: std::io::Error,
    },
    /// A balancer listener could not start.
    #[error(transparent)]
    Listen(#[from] ListenError),
}

/// Where the configuration comes from.
#[derive(Debug, Clone)]
pub enum ConfigSource {
    /// Compiled into the binary.
    Embedded,
    /// A file.
    File(PathBuf),
}

impl ConfigSource {
    /// Reads and validates the configuration.
    pub fn load(&self) -> Result<Config, ConfigError> {
        match self {
            ConfigSource::Embedded => Ok(Config::embedded()),
            ConfigSource::File(p) => Config::load(p),
        }
    }

    /// [`ConfigSource::load`] for a reload: a file that loads is kept as the last good copy.
    pub fn load_and_keep(&self) -> Result<Config, ConfigError> {
        match self {
            ConfigSource::Embedded => Ok(Config::embedded()),
            ConfigSource::File(p) => crate::config::last_good::load_and_keep(p),
        }
    }

    /// [`ConfigSource::load_and_keep`] for a start: a broken file falls back to its last
    /// good copy, with the file's error logged.
    pub fn load_for_start(&self) -> Result<Config, ConfigError> {
        let ConfigSource::File(p) = self else {
            return Ok(Config::embedded());
        };
        let (cfg, error) = crate::config::last_good::load_or_last_good(p)?;
        if let Some(e) = error {
            let copy = crate::config::last_good::path_for(p);
            tracing::error!(
                "{e}; STARTING FROM THE LAST GOOD CONFIGURATION {} (fix the file: it reloads when saved)",
                copy.display()
            );
        }
        Ok(cfg)
    }
}

/// A running server: its bound addresses and the means to reload and stop it.
pub struct Running {
    /// The UDP/TCP addresses actually bound (port 0 resolved).
    pub dns_addrs: Vec<SocketAddr>,
    /// Balancer listeners and their bound addresses.
    pub listener_addrs: Vec<(String, SocketAddr)>,
    /// The admin server's bound address, when `[admin]` is configured.
    pub admin_addr: Option<SocketAddr>,
    /// Send to reload now (what SIGHUP does).
    pub reload: mpsc::UnboundedSender<bool>,
    /// Cancel to stop everything at once ([`Running::stop_gracefully`] closes first).
    pub shutdown: CancellationToken,
    /// The first stage of stopping: client-facing accept loops and connections.
    pub closing: Closing,
    /// `shutdown.grace` of the configuration in force.
    grace: Arc<std::sync::Mutex<Duration>>,
    /// The running scaling groups.
    pub scaler: Arc<ScalerHandle>,
    tasks: JoinSet<()>,
}

impl Running {
    /// Waits until every task has stopped (after `shutdown` is cancelled).
    pub async fn join(mut self) {
        while self.tasks.join_next().await.is_some() {}
    }

    /// Stops accepting (listening sockets close), lets open client connections finish what
    /// is in flight for up to `shutdown.grace`, then stops everything.
    pub async fn stop_gracefully(self) {
        let grace = *self.grace.lock().expect("grace lock");
        self.closing.close();
        let open = self.closing.open_connections();
        tracing::info!(
            open,
            ?grace,
            "closing: no new connections; finishing requests in flight"
        );
        if self.closing.drained(grace).await {
            tracing::info!("every connection finished");
        } else {
            let open = self.closing.open_connections();
            tracing::warn!(open, "shutdown.grace passed; cutting the connections left");
        }
        self.shutdown.cancel();
        self.join().await;
    }
}

/// Loads configuration and zones, binds the sockets and starts serving.
pub async fn start(source: ConfigSource) -> Result<Running, AppError> {
    let config = source.load_for_start()?;
    let (runtime, control) = Runtime::new();
    let runtime = Arc::new(runtime);
    runtime.loaded(&config);
    let mut loader = ZoneLoader::new();
    let (catalog, report) = loader.load(&zone_sources(&config)?, true);
    for e in &report.errors {
        tracing::error!("{e}; zone not served");
    }
    for z in catalog.zones() {
        tracing::info!(zone = %z.origin(), serial = z.serial(), records = z.record_count(), "zone loaded");
    }
    let shutdown = CancellationToken::new();
    let pools = Pools::new(config.pools.clone());
    log_binding_problems(&config, &catalog);
    let mut checker = Checker::new(shutdown.clone());
    let groups = Groups::new(config.balancer.clone(), None);
    checker.reconcile(pools.probe_keys().into_iter().chain(groups.probe_keys()));
    // The first probe round runs before pools answer, so the first answers are not guesses.
    checker.first_round(first_round_limit(&config)).await;
    let state = Arc::new(DnsState::new(
        catalog,
        settings(&config, None),
        pools,
        checker.table(),
    ));
    load_geo(&config, &state);
    let (reload, rx) = mpsc::unbounded_channel();
    // Watch before serving, so that no edit made after the first answer can be missed.
    let mut watcher = crate::watch::Watcher::new(reload.clone());
    watcher.update(&config);
    let mut tasks = JoinSet::new();
    let closing = Closing::new();
    let grace = Arc::new(std::sync::Mutex::new(config.shutdown_grace));
    let mut dns_addrs = Vec::new();
    // One UDP socket and receive loop per worker thread of the runtime.
    let workers = tokio::runtime::Handle::current().metrics().num_workers();
    for &addr in &config.dns.listen {
        let (udp, tcp, bound) = bind_dns(addr, workers).await?;
        tracing::info!(udp = %bound, tcp = %bound, workers = udp.len(), "dns listening");
        dns_addrs.push(bound);
        for socket in udp {
            let stop = (closing.clone(), shutdown.clone());
            spawn_udp(&mut tasks, socket, state.clone(), stop).map_err(|source| {
                AppError::Bind {
                    addr: bound,
                    source,
                }
            })?;
        }
        tasks.spawn(run_tcp(
            tcp,
            state.clone(),
            config.dns.tcp_max_connections,
            closing.clone(),
            shutdown.clone(),
        ));
    }
    let balancer = Arc::new(BalancerState::new(groups, checker.table()));
    let mut listeners = Listeners::new(closing.clone(), Workers::new(workers, shutdown.clone()));
    let errors = listeners.reconcile(&config.balancer.listeners, &balancer, &shutdown);
    if let Some(e) = errors.into_iter().next() {
        return Err(AppError::Listen(e));
    }
    let listener_addrs = listeners.addrs();
    let (registrations, scaler) = start_scaler(&config, &balancer, &mut tasks, &shutdown);
    let (admin, admin_addr) = start_admin(
        &config, &state, &balancer, &runtime, &scaler, &mut tasks, &shutdown,
    )
    .await?;
    if let Some(r) = &config.latency_report {
        tracing::info!(to = %r.url, region = %r.region, interval = ?r.interval, "reporting client round-trip times");
        let reporter = Reporter::new(r.clone(), balancer.rtt.clone());
        tasks.spawn(reporter.run(shutdown.clone()));
    }
    let (hup, stop) = (reload.clone(), shutdown.clone());
    tasks.spawn(async move {
        tokio::select! {
            () = crate::watch::sighup(hup) => {},
            () = stop.cancelled() => {},
        }
    });
    let watch = Watched {
        source,
        base: config.clone(),
        registrations,
        scaler: scaler.clone(),
        config,
        loader,
        state,
        checker,
        balancer,
        listeners,
        shutdown: shutdown.clone(),
        admin,
        runtime,
        grace: grace.clone(),
    };
    tasks.spawn(watch.run(watcher, rx, control, closing.clone()));
    Ok(Running {
        listener_addrs,
        admin_addr,
        dns_addrs,
        reload,
        shutdown,
        closing,
        grace,
        scaler,
        tasks,
    })
}

/// Binds and spawns the admin server when `[admin]` is configured; it serves the balancer's
/// client round-trip times too when there are listeners.
async fn start_admin(
    config: &Config,
    state: &Arc<DnsState>,
    balancer: &Arc<BalancerState>,
    runtime: &Arc<Runtime>,
    scaler: &Arc<ScalerHandle>,
    tasks: &mut JoinSet<()>,
    shutdown: &CancellationToken,
) -> Result<(Option<Arc<Admin>>, Option<SocketAddr>), AppError> {
    let Some(a) = &config.admin else {
        return Ok((None, None));
    };
    let addr = a.listen;
    let err = |source| AppError::Bind { addr, source };
    let tcp = TcpListener::bind(addr).await.map_err(err)?;
    let bound = tcp.local_addr().map_err(err)?;
    tracing::info!(addr = %bound, "admin listening");
    let lb = (!config.balancer.listeners.is_empty()).then(|| balancer.clone());
    let admin = Arc::new(
        Admin::new(a.clone(), state.clone(), lb, runtime.clone()).with_scaler(scaler.clone()),
    );
    tasks.spawn(crate::admin::run(tcp, admin.clone(), shutdown.clone()));
    Ok((Some(admin), Some(bound)))
}

/// Starts the scaling groups; their in-service instances arrive on the returned receiver.
fn start_scaler(
    config: &Config,
    balancer: &Arc<BalancerState>,
    tasks: &mut JoinSet<()>,
    shutdown: &CancellationToken,
) -> (watch::Receiver<Registrations>, Arc<ScalerHandle>) {
    let (tx, rx) = watch::channel(Registrations::default());
    let engine = crate::scaler::docker_api::Engine::new(crate::scaler::docker_api::DEFAULT_SOCKET);
    let provider = Arc::new(crate::scaler::provider::Providers::new(engine));
    let link =
        |g: &crate::config::ScalingGroup| Some(crate::scaler::balancer_link(balancer.clone(), g));
    let handle = crate::scaler::start(&config.scaler, provider, &tx, link, tasks, shutdown);
    // The groups hold senders; this one keeps the channel open when there are none.
    tasks.spawn(async move {
        tx.closed().await;
    });
    (rx, Arc::new(handle))
}

/// `workers` UDP sockets and a TCP listener on the same address. With port 0 the UDP port the
/// kernel picks may already be taken for TCP by someone else: then try another.
async fn bind_dns(
    addr: SocketAddr,
    workers: usize,
) -> Result<(Vec<std::net::UdpSocket>, TcpListener, SocketAddr), AppError> {
    let err = |source| AppError::Bind { addr, source };
    let mut attempts = 0;
    loop {
        let udp = bind_udp(addr, workers).map_err(err)?;
        let bound = udp[0].local_addr().map_err(err)?;
        match TcpListener::bind(bound).await {
            Ok(tcp) => return Ok((udp, tcp, bound)),
            Err(e) if addr.port() == 0 && attempts < 20 => {
                attempts += 1;
                tracing::debug!(%bound, "TCP port taken, picking another: {e}");
            }
            Err(e) => return Err(err(e)),
        }
    }
}

#[cfg(target_os = "linux")]
fn bind_udp(addr: SocketAddr, workers: usize) -> std::io::Result<Vec<std::net::UdpSocket>> {
    crate::dns::udp::bind(addr, workers)
}

#[cfg(not(target_os = "linux"))]
fn bind_udp(addr: SocketAddr, _workers: usize) -> std::io::Result<Vec<std::net::UdpSocket>> {
    Ok(vec![std::net::UdpSocket::bind(addr)?])
}

/// Serves `socket`: a batched worker on a thread of its own on Linux, else a task.
#[cfg(target_os = "linux")]
fn spawn_udp(
    tasks: &mut JoinSet<()>,
    socket: std::net::UdpSocket,
    state: Arc<DnsState>,
    (closing, shutdown): (Closing, CancellationToken),
) -> std::io::Result<()> {
    let alarm = crate::dns::udp::Alarm::new(&socket)?;
    let (closed, stopped) = (closing.clone(), shutdown.clone());
    // The worker sleeps in the kernel: wake it as soon as either stage of stopping begins.
    tasks.spawn(async move {
        tokio::select! {
            () = closed.closed() => {},
            () = stopped.cancelled() => {},
        }
        drop(alarm);
    });
    tasks.spawn_blocking(move || crate::dns::udp::serve(socket, state, closing, shutdown));
    Ok(())
}

#[cfg(not(target_os = "linux"))]
fn spawn_udp(
    tasks: &mut JoinSet<()>,
    socket: std::net::UdpSocket,
    state: Arc<DnsState>,
    (closing, _shutdown): (Closing, CancellationToken),
) -> std::io::Result<()> {
    socket.set_nonblocking(true)?;
    let socket = tokio::net::UdpSocket::from_std(socket)?;
    tasks.spawn(crate::dns::server::run_udp(socket, state, closing));
    Ok(())
}

/// Opens the geo database when it is new, moved or changed on disk; a broken file keeps the
/// previous database serving.
fn load_geo(config: &Config, state: &DnsState) {
    let Some(path) = &config.pools.geo_database else {
        state.geo.store(None);
        return;
    };
    let current = state.geo.load();
    if current
        .as_ref()
        .is_some_and(|g| g.path() == path && !g.is_stale())
    {
        return;
    }
    match GeoDb::open(path) {
        Ok(db) => {
            tracing::info!(path = %path.display(), "geo database loaded");
            state.geo.store(Some(Arc::new(db)));
        }
        Err(e) => tracing::error!(
            "{e}; {}",
            if current.is_some() {
                "the previous database keeps serving"
            } else {
                "steering falls back to configured networks"
            }
        ),
    }
}

/// Longest health check timeout (the first probe round waits at most this long).
fn first_round_limit(config: &Config) -> Duration {
    let longest = config.pools.checks.values().map(|c| c.timeout).max();
    longest
        .map(|t| t + Duration::from_millis(100))
        .unwrap_or_default()
}

fn log_binding_problems(config: &Config, catalog: &crate::dns::catalog::Catalog) {
    for p in binding_problems(config, catalog) {
        tracing::error!("{p}");
    }
}

/// The DNS server's per-query settings; the rate limiter (and its table of accounts) is kept
/// from `previous` while `[dns.rrl]` is unchanged.
fn settings(config: &Config, previous: Option<&Settings>) -> Settings {
    let kept = previous
        .and_then(|p| p.rrl.clone())
        .filter(|r| *r.config() == config.dns.rrl);
    let rrl = kept.or_else(|| crate::dns::rrl::Rrl::new(&config.dns.rrl).map(Arc::new));
    Settings {
        query_log: config.dns.query_log,
        transfer: config.dns.transfer.clone(),
        tcp_idle_timeout: config.dns.tcp_idle_timeout,
        tcp_io_timeout: config.dns.tcp_io_timeout,
        rrl,
    }
}

/// The reload loop: file events and SIGHUP -> validate everything -> swap.
struct Watched {
    source: ConfigSource,
    /// The configuration file as validated; `config` is it plus the scaler's registrations.
    base: Config,
    registrations: watch::Receiver<Registrations>,
    scaler: Arc<ScalerHandle>,
    config: Config,
    loader: ZoneLoader,
    state: Arc<DnsState>,
    checker: Checker,
    balancer: Arc<BalancerState>,
    listeners: Listeners,
    shutdown: CancellationToken,
    admin: Option<Arc<Admin>>,
    runtime: Arc<Runtime>,
    grace: Arc<std::sync::Mutex<Duration>>,
}

impl Watched {
    async fn run(
        mut self,
        mut watcher: crate::watch::Watcher,
        mut rx: mpsc::UnboundedReceiver<bool>,
        mut control: mpsc::UnboundedReceiver<Control>,
        closing: Closing,
    ) {
        loop {
            let force = tokio::select! {
                m = rx.recv() => match m { Some(f) => f, None => return },
                Ok(()) = self.registrations.changed() => {
                    self.rebuild(false);
                    continue;
                }
                Some(c) = control.recv() => {
                    match c {
                        Control::Rebuild(done) => {
                            self.rebuild(false);
                            let _ = done.send(());
                        }
                        Control::Reload(done) => {
                            let r = self.reload_now(true);
                            watcher.update(&self.config);
                            let _ = done.send(r);
                        }
                    }
                    continue;
                }
                () = closing.closed() => {
                    // Listening sockets close now: new connections are refused.
                    self.listeners.close_all();
                    return;
                }
            };
            // Editors write in several steps: let the burst settle, then reload once.
            tokio::time::sleep(Duration::from_millis(150)).await;
            let mut force = force;
            while let Ok(f) = rx.try_recv() {
                force |= f;
            }
            let _ = self.reload_now(force);
            watcher.update(&self.config);
        }
    }

    /// `[admin]` token and maximum age apply at once; its address and `[latency_report]`
    /// need a restart.
    fn reload_admin(&self, c: &Config) {
        let listen = |c: &Config| c.admin.as_ref().map(|a| a.listen);
        if listen(c) != listen(&self.config) {
            tracing::warn!("admin.listen changed: restart to apply");
        }
        if c.latency_report != self.config.latency_report {
            tracing::warn!("latency_report changed: restart to apply");
        }
        if let (Some(admin), Some(a)) = (&self.admin, &c.admin) {
            admin.set_config(a.clone());
        }
    }

    /// Reads the configuration again and swaps; the error when it is invalid (the previous
    /// configuration keeps serving).
    fn reload_now(&mut self, force: bool) -> Result<(), String> {
        let result = match self.source.load_and_keep() {
            Ok(c) => {
                if c.dns.listen != self.config.dns.listen {
                    tracing::warn!("dns.listen changed: restart to listen on the new addresses");
                }
                self.reload_admin(&c);
                self.scaler.reconfigure(&c.scaler);
                self.runtime.loaded(&c);
                *self.grace.lock().expect("grace lock") = c.shutdown_grace;
                self.base = c;
                Ok(())
            }
            Err(e) => {
                tracing::error!("{e}; keeping the previous configuration");
                Err(e.to_string())
            }
        };
        self.runtime.count_reload(result.is_ok());
        self.rebuild(force);
        result
    }

    /// Swaps in `base` + registrations: zones (changed files, all with `force`), pools,
    /// target groups, listeners.
    fn rebuild(&mut self, force: bool) {
        let regs = self.registrations.borrow_and_update().clone();
        self.config = crate::scaler::with_registrations(&self.base, &regs);
        // Operator overrides apply to every snapshot, so that a reload keeps them.
        self.runtime
            .overrides
            .apply_to_pools(&mut self.config.pools);
        let sources = match zone_sources(&self.config) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!("{e}; keeping the previous zones");
                return;
            }
        };
        let (catalog, report) = self.loader.load(&sources, force);
        for e in &report.errors {
            tracing::error!("{e}; the previous version of the zone keeps serving");
        }
        for (origin, serial) in &report.changed {
            tracing::info!(zone = %origin, serial, "zone reloaded");
        }
        log_binding_problems(&self.config, &catalog);
        let pools = Pools::new(self.config.pools.clone());
        pools.inherit(&self.state.pools.load());
        // Probes of surviving endpoints keep running with their state; removed ones stop.
        // Targets keep their state (in flight, ejection, slow start); removed ones drain.
        let previous = self.balancer.groups.load_full();
        let overrides = &self.runtime.overrides;
        let groups = Groups::new(self.config.balancer.clone(), Some(&previous))
            .with_modes(|g, a| overrides.target(g, a));
        for draining in groups.removed_from(&previous) {
            tokio::spawn(draining.run());
        }
        self.checker
            .reconcile(pools.probe_keys().into_iter().chain(groups.probe_keys()));
        self.balancer.groups.store(Arc::new(groups));
        let wanted = &self.config.balancer.listeners;
        for e in self
            .listeners
            .reconcile(wanted, &self.balancer, &self.shutdown)
        {
            tracing::error!("{e}; the previous listener keeps serving");
        }
        self.state.metrics.sync_zones(&catalog);
        let next = settings(&self.config, Some(&self.state.settings.load()));
        self.state.publish(catalog, next, pools);
        load_geo(&self.config, &self.state);
        let targets = self.config.dns.transfer.notify.clone();
        if !targets.is_empty() {
            for (origin, serial) in report.changed {
                tokio::spawn(notify_all(origin, serial, targets.clone()));
            }
        }
    }
}
