//! `roundhouse compare`: options from the command line, a progress line, the report files
//! (report.md, report.json and the SVG charts); with `--lab FILE`, against the docker lab.

use anyhow::{Context, bail};
use roundhouse::compare::lab::{self, Lab, LabTargets};
use roundhouse::compare::{self, Options, Scenario, chart, report};
use roundhouse::config::parse_duration;
use std::io::Write as _;
use std::path::PathBuf;
use std::time::Duration;

/// The command line's values.
pub struct Args {
    pub scenario: String,
    pub duration: String,
    pub seed: u64,
    pub clients: usize,
    pub ttl: String,
    pub resolver_floor: String,
    pub client_scale: f64,
    pub lab: Option<PathBuf>,
}

/// The docker lab a comparison runs against: its file and what it says.
pub struct LabArg {
    pub path: PathBuf,
    pub targets: LabTargets,
}

fn duration(key: &str, v: &str) -> anyhow::Result<std::time::Duration> {
    parse_duration(v).map_err(|e| anyhow::anyhow!("--{key}: {e}"))
}

/// Validated options, and the lab with `--lab`.
pub fn options(a: Args) -> anyhow::Result<(Options, Option<LabArg>)> {
    let lab = match a.lab {
        Some(path) => {
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("--lab {}", path.display()))?;
            let targets = LabTargets::parse(&text, &path.display().to_string())?;
            Some(LabArg { path, targets })
        }
        None => None,
    };
    let scenarios = match a.scenario.as_str() {
        "all" => Scenario::ALL.to_vec(),
        name => match Scenario::parse(name) {
            Some(s) => vec![s],
            None => {
                let names: Vec<&str> = Scenario::ALL.iter().map(|s| s.name()).collect();
                bail!(
                    "--scenario: `{name}` is not one of {}, all",
                    names.join(", ")
                )
            }
        },
    };
    let d = duration("duration", &a.duration)?;
    if !(std::time::Duration::from_secs(3)..=std::time::Duration::from_secs(600)).contains(&d) {
        bail!("--duration: between 3s and 10m");
    }
    if !(1..=500).contains(&a.clients) {
        bail!("--clients: between 1 and 500");
    }
    if !(a.client_scale > 0.0 && a.client_scale <= 10.0) {
        bail!("--client-scale: above 0, at most 10");
    }
    let options = Options {
        scenarios,
        duration: d,
        seed: a.seed,
        clients: a.clients,
        ttl: duration("ttl", &a.ttl)?,
        resolver_floor: duration("resolver-floor", &a.resolver_floor)?,
        client_scale: a.client_scale,
        ..Options::default()
    };
    Ok((options, lab))
}

/// Runs the comparison (against the lab with `lab`) and writes `report.md`, `report.json`
/// and the charts to `out`.
pub fn run(mut options: Options, lab: Option<LabArg>, out: PathBuf) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let total = options.scenarios.len();
    let lab = lab.map(|l| (Lab::new(l.targets), l.path));
    let place = if lab.is_some() { " in the lab" } else { "" };
    eprintln!(
        "comparing dns-rr, lb and gslb{place}: {total} scenario(s) of {:?} each (seed {})",
        options.duration, options.seed
    );
    if let Some((lab, _)) = &lab {
        // The lab's own TTL, and its resolvers (one per region, unbound: no floor).
        options.ttl = runtime
            .block_on(lab.ttl())
            .context("the lab's DNS server does not answer (is the lab up? lab/up.sh)")?;
        options.resolvers = lab.targets().region.len();
        options.resolver_floor = std::time::Duration::ZERO;
    }
    let runs = runtime.block_on(async {
        let mut index = 0;
        let mut current = None;
        let terminal = std::io::IsTerminal::is_terminal(&std::io::stderr());
        let progress = |scenario: Scenario, elapsed: Duration, length: Duration| {
            if current != Some(scenario) {
                current = Some(scenario);
                index += 1;
                if !terminal {
                    eprintln!("[{index}/{total}] {}", scenario.name());
                }
            }
            if !terminal {
                return;
            }
            let width = 30;
            let done = (elapsed.as_secs_f64() / length.as_secs_f64() * width as f64) as usize;
            eprint!(
                "\r[{index}/{total}] {:<15} [{}{}] {:>3}s",
                scenario.name(),
                "#".repeat(done.min(width)),
                " ".repeat(width - done.min(width)),
                elapsed.as_secs()
            );
            let _ = std::io::stderr().flush();
        };
        match &lab {
            Some((lab, _)) => lab::run(&options, lab, progress).await,
            None => compare::run(&options, progress).await,
        }
    })?;
    if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        eprintln!();
    }
    let summaries: Vec<_> = runs.iter().map(report::summarize).collect();
    let table = report::markdown(&summaries);
    std::fs::create_dir_all(&out).with_context(|| format!("{}", out.display()))?;
    let mut charts = String::new();
    for scenario in &options.scenarios {
        let of: Vec<_> = runs.iter().filter(|r| r.scenario == *scenario).collect();
        let files = chart::scenario(&out, &of)?;
        let describe = match &lab {
            Some((lab, _)) => lab::describe(*scenario, lab.targets()),
            None => scenario.describe().to_string(),
        };
        charts.push_str(&format!("\n## {}\n\n{describe}\n\n", scenario.name()));
        for f in files {
            charts.push_str(&format!("![{f}]({f})\n"));
        }
    }
    let (title, setting) = match &lab {
        Some((lab, _)) => (" in the docker lab", lab::setting(lab.targets())),
        None => (
            "",
            format!(
                "resolver floor {} s, ",
                options.resolver_floor.as_secs_f64()
            ),
        ),
    };
    let md = format!(
        "# roundhouse compare{title}\n\nSeed {}, {} s per scenario, {} clients per setup, TTL {} s, \
         {setting}client cache scale {}.\n\n{table}\n\
         In the charts the black line marks the fault, the grey one (load per instance) the end \
         of its immediate effect.\n{charts}",
        options.seed,
        options.duration.as_secs_f64(),
        options.clients,
        options.ttl.as_secs_f64(),
        options.client_scale
    );
    let md_path = out.join("report.md");
    std::fs::write(&md_path, md).with_context(|| format!("{}", md_path.display()))?;
    let json_path = out.join("report.json");
    let mut json = report::json(&options, &runs);
    if let Some((_, path)) = &lab {
        json["options"]["lab"] = serde_json::json!(path.display().to_string());
    }
    let json = serde_json::to_string_pretty(&json)?;
    std::fs::write(&json_path, json).with_context(|| format!("{}", json_path.display()))?;
    println!("{table}");
    println!(
        "wrote {}, {} and the charts in {}",
        md_path.display(),
        json_path.display(),
        out.display()
    );
    Ok(())
}
