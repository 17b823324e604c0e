//! The `roundhouse` command line.

use anyhow::{Context, bail};
use clap::{Parser, Subcommand, ValueEnum};
use roundhouse::app::{self, ConfigSource};
use roundhouse::config::{Config, LogFormat};
use roundhouse::dns::loader::{ZoneLoader, zone_sources};
use roundhouse::dns::name::Name;
use roundhouse::dns::zone::Zone;
use roundhouse::dns::zonefile::load_zone_file;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

mod compare_cmd;

/// DNS round-robin server and global traffic manager.
#[derive(Parser)]
#[command(name = "roundhouse", version, about)]
struct Cli {
    /// Log format (overrides [log] format in the configuration).
    #[arg(long, global = true, value_enum)]
    log_format: Option<FormatArg>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum FormatArg {
    Human,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Serve DNS (without --config: the built-in demo on 127.0.0.1:1053).
    Serve {
        /// Configuration file (TOML).
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Worker threads (default: one per CPU core).
        #[arg(long)]
        threads: Option<usize>,
    },
    /// Validate the configuration and its zones, or one zone file, and exit.
    Check {
        /// Configuration file (TOML); without it, the built-in configuration.
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Check this zone file on its own (like named-checkzone).
        #[arg(long, conflicts_with = "config")]
        zone: Option<PathBuf>,
        /// Origin for --zone (default: the file name without `.zone`).
        #[arg(long, requires = "zone")]
        origin: Option<String>,
    },
    /// Run the demo backend: `/health`, `/` (who answered), `/work?ms=N` (burns CPU),
    /// `/slow?ms=N` (waits) and optional static files.
    Backend {
        /// Address to listen on (port 0: any free port, logged).
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: std::net::SocketAddr,
        /// Region reported by `GET /`.
        #[arg(long, default_value = "local")]
        region: String,
        /// Instance id reported by `GET /` (default: `backend-PID`).
        #[arg(long)]
        id: Option<String>,
        /// Start with `/health` failing (toggle with `POST /admin/health?fail=false`).
        #[arg(long)]
        fail_health: bool,
        /// Serve the files of this folder for other paths.
        #[arg(long)]
        root: Option<PathBuf>,
        /// Exit when standard input closes (so that an instance never outlives its scaler).
        #[arg(long)]
        exit_with_stdin: bool,
        /// CPU time each `GET /` burns (e.g. 0.5ms; at most 100ms).
        #[arg(long, default_value = "0ms")]
        cpu_per_request: String,
    },
    /// Print regions, pool endpoints and balancer targets from a running server's admin API.
    Status {
        /// The admin server (`[admin] listen`).
        #[arg(long, default_value = "127.0.0.1:9090")]
        admin: std::net::SocketAddr,
        /// Bearer token (`[admin] token`), needed when `public_reads = false`.
        #[arg(long)]
        token: Option<String>,
        /// Print the JSON document as received.
        #[arg(long)]
        json: bool,
    },
    /// Run the same simulated clients against DNS round robin, one load balancer and GSLB
    /// DNS in front of regional balancers, through faults; write a report.
    Compare {
        /// steady, instance-crash, region-outage, slow-instance, load-spike, deploy-drain,
        /// sticky-scale-in, or all.
        #[arg(long, default_value = "all")]
        scenario: String,
        /// Length of each scenario (e.g. 24s).
        #[arg(long, default_value = "24s")]
        duration: String,
        /// Folder for report.md, report.json and the SVG charts.
        #[arg(long, default_value = "compare-report")]
        out: PathBuf,
        /// Seed of the client population (same seed, same clients and think times).
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Simulated clients per setup.
        #[arg(long, default_value_t = 24)]
        clients: usize,
        /// TTL of the DNS answers.
        #[arg(long, default_value = "5s")]
        ttl: String,
        /// Recursive resolvers' TTL floor (cache-min-ttl).
        #[arg(long, default_value = "0s")]
        resolver_floor: String,
        /// Factor on the client types' own cache durations (1 = real-world seconds).
        #[arg(long, default_value_t = 0.1)]
        client_scale: f64,
        /// Run against the docker lab this file describes (lab/compare.toml; lab/compare.sh
        /// runs it inside the lab) instead of setups started here; --ttl is then the lab's.
        #[arg(long)]
        lab: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve { config, threads } => serve(config, threads, cli.log_format),
        Command::Check {
            config,
            zone: Some(zone),
            origin,
            ..
        } => {
            init_logging(None, cli.log_format);
            let _ = config;
            check_zone(zone, origin)
        }
        Command::Backend {
            listen,
            region,
            id,
            fail_health,
            root,
            exit_with_stdin,
            cpu_per_request,
        } => {
            init_logging(None, cli.log_format);
            let options = roundhouse::config::parse_duration(&cpu_per_request)
                .map_err(|e| anyhow::anyhow!("--cpu-per-request: {e}"))
                .map(|cpu| roundhouse::backend::BackendOptions {
                    region,
                    id: id.unwrap_or_else(|| format!("backend-{}", std::process::id())),
                    fail_health,
                    root,
                    cpu_per_request: cpu,
                });
            options.and_then(|o| backend(listen, o, exit_with_stdin))
        }
        Command::Status { admin, token, json } => status(admin, token, json),
        Command::Check { config, .. } => {
            init_logging(None, cli.log_format);
            check_config(config)
        }
        Command::Compare {
            scenario,
            duration,
            out,
            seed,
            clients,
            ttl,
            resolver_floor,
            client_scale,
            lab,
        } => {
            init_quiet_logging(cli.log_format);
            compare_cmd::options(compare_cmd::Args {
                scenario,
                duration,
                seed,
                clients,
                ttl,
                resolver_floor,
                client_scale,
                lab,
            })
            .and_then(|(o, lab)| compare_cmd::run(o, lab, out))
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn source(config: Option<PathBuf>) -> ConfigSource {
    config
        .map(ConfigSource::File)
        .unwrap_or(ConfigSource::Embedded)
}

fn init_logging(config: Option<&Config>, flag: Option<FormatArg>) {
    let level = config
        .map(|c| c.log.level.clone())
        .unwrap_or_else(|| "info".into());
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let json = match flag {
        Some(FormatArg::Json) => true,
        Some(FormatArg::Human) => false,
        None => config.is_some_and(|c| c.log.format == LogFormat::Json),
    };
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

fn serve(
    config: Option<PathBuf>,
    threads: Option<usize>,
    log_format: Option<FormatArg>,
) -> anyhow::Result<()> {
    let source = source(config);
    let cfg = source.load_for_start()?;
    init_logging(Some(&cfg), log_format);
    let embedded = matches!(source, ConfigSource::Embedded);

    // One thread: everything on this thread, without the work-stealing scheduler's overhead.
    let mut runtime = match threads {
        Some(0 | 1) => tokio::runtime::Builder::new_current_thread(),
        Some(n) => {
            let mut b = tokio::runtime::Builder::new_multi_thread();
            b.worker_threads(n);
            b
        }
        None => tokio::runtime::Builder::new_multi_thread(),
    };
    let runtime = runtime.enable_all().build()?;
    runtime.block_on(async move {
        // Armed before anything starts, so that a signal at any moment stops it all in order.
        let mut signals = Termination::arm()?;
        let running = app::start(source).await?;
        let tour = async {
            if !running.listener_addrs.is_empty() && !cfg.scaler.is_empty() {
                // Scaled instances start after the sockets are bound: say so, and print the
                // tour once every balancer has a target in service.
                println!("starting instances...");
                if !roundhouse::tour::wait_ready(&cfg, &running, Duration::from_secs(20)).await {
                    println!("(some balancer has no ready target yet; see the log)");
                }
            }
            print!("{}", roundhouse::tour::text(&cfg, &running));
            if embedded {
                print_demo_extras(&running.dns_addrs);
            }
            std::future::pending::<()>().await
        };
        tokio::select! {
            () = tour => {},
            () = signals.next() => {},
        }
        tracing::info!("shutting down");
        // A second signal does not wait for the grace period.
        let cut = running.shutdown.clone();
        tokio::spawn(async move {
            signals.next().await;
            cut.cancel();
        });
        running.stop_gracefully().await;
        anyhow::Ok(())
    })
}

fn status(admin: std::net::SocketAddr, token: Option<String>, json: bool) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let doc = runtime
        .block_on(roundhouse::admin::cli::fetch(admin, token.as_deref()))
        .map_err(anyhow::Error::msg)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else {
        print!("{}", roundhouse::admin::cli::render(&doc));
    }
    Ok(())
}

fn backend(
    listen: std::net::SocketAddr,
    options: roundhouse::backend::BackendOptions,
    exit_with_stdin: bool,
) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let mut signals = Termination::arm()?;
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot listen on {listen}"))?;
        let addr = listener.local_addr()?;
        tracing::info!(%addr, id = %options.id, region = %options.region, "backend listening");
        let stop = tokio_util::sync::CancellationToken::new();
        let server = tokio::spawn(roundhouse::backend::run(listener, options, stop.clone()));
        tokio::select! {
            () = signals.next() => {},
            () = stdin_closed(exit_with_stdin) => tracing::info!("standard input closed"),
        }
        stop.cancel();
        let _ = server.await;
        anyhow::Ok(())
    })
}

/// Resolves when standard input reaches its end (never when `watch` is false).
async fn stdin_closed(watch: bool) {
    if !watch {
        return std::future::pending().await;
    }
    let _ = tokio::task::spawn_blocking(|| {
        let mut sink = [0u8; 256];
        let mut stdin = std::io::stdin();
        while std::io::Read::read(&mut stdin, &mut sink).is_ok_and(|n| n > 0) {}
    })
    .await;
}

/// SIGTERM and SIGINT (Ctrl-C), caught from the moment this is made: until then either one
/// kills the process outright, which would leave the instances it started running.
struct Termination {
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
}

impl Termination {
    /// Installs the handlers (inside a runtime).
    fn arm() -> std::io::Result<Termination> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(Termination {
                term: signal(SignalKind::terminate())?,
                int: signal(SignalKind::interrupt())?,
            })
        }
        #[cfg(not(unix))]
        Ok(Termination {})
    }

    /// Resolves at the next signal.
    async fn next(&mut self) {
        #[cfg(unix)]
        tokio::select! {
            _ = self.term.recv() => {},
            _ = self.int.recv() => {},
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
    }
}

fn print_demo_extras(addrs: &[std::net::SocketAddr]) {
    let Some(addr) = addrs.first() else { return };
    let (host, port) = (addr.ip(), addr.port());
    println!("  dig @{host} -p {port} example.test ANY +tcp");
    println!("  dig @{host} -p {port} nope.example.test     # NXDOMAIN with the SOA");
    println!("  curl 'http://127.0.1.1:8080/work?ms=200'   # CPU load: the scaler adds instances");
    println!("Ctrl-C stops the server and every instance it started.");
}

fn init_quiet_logging(flag: Option<FormatArg>) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("error"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if matches!(flag, Some(FormatArg::Json)) {
        builder.json().init();
    } else {
        builder.init();
    }
}

fn check_config(config: Option<PathBuf>) -> anyhow::Result<()> {
    let cfg = source(config).load()?;
    let sources = zone_sources(&cfg)?;
    let (catalog, report) = ZoneLoader::new().load(&sources, true);
    for e in &report.errors {
        eprintln!("{e}");
    }
    if !report.errors.is_empty() {
        bail!("{} zone(s) failed to load", report.errors.len());
    }
    if let Some(db) = &cfg.pools.geo_database {
        roundhouse::steering::geo::GeoDb::open(db)?;
    }
    let problems = roundhouse::pool::binding_problems(&cfg, &catalog);
    for p in &problems {
        eprintln!("{p}");
    }
    if !problems.is_empty() {
        bail!("{} binding problem(s)", problems.len());
    }
    for z in catalog.zones() {
        println!(
            "zone {}: serial {}, {} records",
            z.origin(),
            z.serial(),
            z.record_count()
        );
    }
    println!(
        "configuration OK ({} zones, {} pools, {} bindings)",
        catalog.len(),
        cfg.pools.pools.len(),
        cfg.pools.bindings.len()
    );
    Ok(())
}

fn check_zone(path: PathBuf, origin: Option<String>) -> anyhow::Result<()> {
    let origin = match origin {
        Some(o) => o,
        None => {
            let file = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            file.strip_suffix(".zone").unwrap_or(file).to_string()
        }
    };
    let origin =
        Name::parse(&origin, Some(&Name::root())).with_context(|| format!("origin `{origin}`"))?;
    let records = load_zone_file(&path, &origin)?;
    let zone =
        Zone::new(origin, records).map_err(|e| anyhow::anyhow!("{}:1: {e}", path.display()))?;
    println!(
        "zone {}: serial {}, {} records: OK",
        zone.origin(),
        zone.serial(),
        zone.record_count()
    );
    Ok(())
}
