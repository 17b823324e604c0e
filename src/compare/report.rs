//! Numbers from samples: success, errors around the fault, recovery, latency percentiles,
//! spread across instances, DNS queries per request; rendered as Markdown, JSON and a short
//! terminal table.

use super::Run;
use super::client::Sample;
use std::fmt::Write as _;

/// The numbers of one setup in one scenario.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Summary {
    /// Setup name.
    pub setup: &'static str,
    /// Scenario name.
    pub scenario: &'static str,
    /// Requests sent.
    pub requests: usize,
    /// Share answered 2xx, percent.
    pub success_pct: f64,
    /// Failed requests that started before the fault (all of them in steady state).
    pub errors_before: usize,
    /// Failed requests from the fault until its immediate effect was over
    /// ([`super::Run::fault_end_ms`]: health checks noticed, the operation finished).
    pub errors_during: usize,
    /// Failed requests after that (clients still using what they cached).
    pub errors_after: usize,
    /// From the fault to the end of the last failed request, seconds (0: none failed).
    pub recovery_s: f64,
    /// Latency percentiles of successful requests, ms.
    pub p50_ms: f64,
    /// 95th percentile, ms.
    pub p95_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
    /// Coefficient of variation of requests per instance before the fault (0: even).
    pub spread_cv: f64,
    /// The same over the last quarter of the run, among the instances in service at the end.
    pub spread_end_cv: f64,
    /// Queries the resolvers sent to the authoritative server, per request.
    pub dns_per_request: f64,
    /// Proxies between client and instance.
    pub extra_hops: u32,
    /// Instances in service at the start, at most, and at the end.
    pub instances: [u32; 3],
    /// From the fault until the instances in service first reached their peak, seconds
    /// (`None`: the capacity did not grow).
    pub scale_out_s: Option<f64>,
    /// Sticky scenarios: clients that were answered at all.
    pub sessions: Option<usize>,
    /// Sticky scenarios: sessions answered by another instance than their first one.
    pub sessions_lost: Option<usize>,
    /// Sticky scenarios: sessions whose first instance was no longer in service at the end.
    pub sessions_on_removed: Option<usize>,
    /// Why the scenario's operation failed, if it did.
    pub note: Option<String>,
}

/// One second of a run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Second {
    /// Seconds since the start.
    pub t_s: u32,
    /// Requests that started in this second.
    pub requests: usize,
    /// Of which failed.
    pub errors: usize,
    /// Median latency of the successful ones, ms.
    pub p50_ms: f64,
    /// 95th percentile of the successful ones, ms.
    pub p95_ms: f64,
    /// Successful requests per instance.
    pub per_instance: Vec<usize>,
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    f64::from(sorted[i]) / 1000.0
}

fn cv(counts: &[usize]) -> f64 {
    if counts.is_empty() {
        return 0.0;
    }
    let n = counts.len() as f64;
    let mean = counts.iter().sum::<usize>() as f64 / n;
    if mean == 0.0 {
        return 0.0;
    }
    let var = counts
        .iter()
        .map(|&c| (c as f64 - mean).powi(2))
        .sum::<f64>()
        / n;
    var.sqrt() / mean
}

fn round(x: f64, places: i32) -> f64 {
    let f = 10f64.powi(places);
    (x * f).round() / f
}

/// Sessions, lost sessions and sessions on removed instances, when clients are sticky.
fn sessions(run: &Run) -> (usize, usize, usize) {
    let mut first: std::collections::BTreeMap<u16, (u16, bool)> = Default::default();
    for x in run.samples.iter().filter(|x| x.ok) {
        let Some(i) = x.instance else { continue };
        let e = first.entry(x.client).or_insert((i, false));
        e.1 |= e.0 != i;
    }
    let lost = first.values().filter(|e| e.1).count();
    let removed = first
        .values()
        .filter(|e| !run.survivors.contains(&e.0))
        .count();
    (first.len(), lost, removed)
}

/// Requests per instance among `which`, of the successful samples `keep` selects.
fn per_instance(run: &Run, which: &[usize], keep: impl Fn(&Sample) -> bool) -> Vec<usize> {
    let mut counts = vec![0usize; run.instances.len()];
    for x in run.samples.iter().filter(|x| x.ok && keep(x)) {
        if let Some(i) = x.instance.and_then(|i| counts.get_mut(usize::from(i))) {
            *i += 1;
        }
    }
    which.iter().map(|&i| counts[i]).collect()
}

/// The numbers of a run.
pub fn summarize(run: &Run) -> Summary {
    let fault = run.fault_ms.unwrap_or(u32::MAX);
    let fault_end = run.fault_end_ms.unwrap_or(u32::MAX).max(fault);
    let s = &run.samples;
    let errors_before = s.iter().filter(|x| !x.ok && x.t_ms < fault).count();
    let errors_during = s
        .iter()
        .filter(|x| !x.ok && x.t_ms >= fault && x.t_ms < fault_end)
        .count();
    let errors_after = s.iter().filter(|x| !x.ok && x.t_ms >= fault_end).count();
    let last_error = s
        .iter()
        .filter(|x| !x.ok && x.t_ms >= fault)
        .map(|x| x.t_ms)
        .max();
    let mut lat: Vec<u32> = s.iter().filter(|x| x.ok).map(|x| x.latency_us).collect();
    lat.sort_unstable();
    // Before the fault: the instances in service at the start, and every instance that
    // answered then.
    let answered_before = per_instance(run, &(0..run.instances.len()).collect::<Vec<_>>(), |x| {
        x.t_ms < fault
    });
    let before: Vec<usize> = (0..run.instances.len())
        .filter(|&i| i < run.initial || answered_before[i] > 0)
        .collect();
    let last_quarter = s.iter().map(|x| x.t_ms).max().unwrap_or(0) / 4 * 3;
    let survivors: Vec<usize> = run.survivors.iter().map(|&i| usize::from(i)).collect();
    let requests = s.len();
    let ok = s.iter().filter(|x| x.ok).count();
    let counts: Vec<u32> = run.capacity.iter().map(|c| c.1).collect();
    let peak_at = run
        .fault_end_ms
        .filter(|&e| e > fault && run.scenario == super::Scenario::LoadSpike);
    let sticky = run.scenario.sticky().then(|| sessions(run));
    Summary {
        setup: run.setup.name(),
        scenario: run.scenario.name(),
        requests,
        success_pct: round(100.0 * ok as f64 / requests.max(1) as f64, 2),
        errors_before,
        errors_during,
        errors_after,
        recovery_s: round(last_error.map_or(0.0, |t| f64::from(t - fault) / 1000.0), 1),
        p50_ms: round(percentile(&lat, 0.50), 2),
        p95_ms: round(percentile(&lat, 0.95), 2),
        p99_ms: round(percentile(&lat, 0.99), 2),
        spread_cv: round(cv(&per_instance(run, &before, |x| x.t_ms < fault)), 3),
        spread_end_cv: round(
            cv(&per_instance(run, &survivors, |x| x.t_ms >= last_quarter)),
            3,
        ),
        dns_per_request: round(run.dns_queries as f64 / requests.max(1) as f64, 4),
        extra_hops: run.setup.extra_hops(),
        instances: [
            counts.first().copied().unwrap_or(0),
            counts.iter().copied().max().unwrap_or(0),
            counts.last().copied().unwrap_or(0),
        ],
        scale_out_s: peak_at.map(|e| round(f64::from(e - fault) / 1000.0, 1)),
        sessions: sticky.map(|s| s.0),
        sessions_lost: sticky.map(|s| s.1),
        sessions_on_removed: sticky.map(|s| s.2),
        note: run.note.clone(),
    }
}

/// Per-second series of a run.
pub fn series(run: &Run) -> Vec<Second> {
    let last = run.samples.iter().map(|s| s.t_ms / 1000).max().unwrap_or(0);
    (0..=last)
        .map(|t| {
            let in_second: Vec<&Sample> =
                run.samples.iter().filter(|s| s.t_ms / 1000 == t).collect();
            let mut lat: Vec<u32> = in_second
                .iter()
                .filter(|s| s.ok)
                .map(|s| s.latency_us)
                .collect();
            lat.sort_unstable();
            let mut per_instance = vec![0; run.instances.len()];
            for s in in_second.iter().filter(|s| s.ok) {
                if let Some(c) = s
                    .instance
                    .and_then(|i| per_instance.get_mut(usize::from(i)))
                {
                    *c += 1;
                }
            }
            Second {
                t_s: t,
                requests: in_second.len(),
                errors: in_second.iter().filter(|s| !s.ok).count(),
                p50_ms: round(percentile(&lat, 0.5), 2),
                p95_ms: round(percentile(&lat, 0.95), 2),
                per_instance,
            }
        })
        .collect()
}

/// The Markdown table of every run.
pub fn markdown(summaries: &[Summary]) -> String {
    let mut out = String::from(
        "| scenario | setup | requests | success % | errors before / during / after | \
         recovery s | p50 ms | p95 ms | p99 ms | spread CV before / end | DNS queries / request | \
         extra hops | instances start / peak / end | scale-out s | sessions lost / on removed / all |\n\
         |---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for s in summaries {
        let scale_out = s.scale_out_s.map_or("-".into(), |v| format!("{v:.1}"));
        let sessions = match (s.sessions_lost, s.sessions_on_removed, s.sessions) {
            (Some(l), Some(r), Some(a)) => format!("{l} / {r} / {a}"),
            _ => "-".into(),
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {:.2} | {} / {} / {} | {:.1} | {:.2} | {:.2} | {:.2} | {:.3} / {:.3} | \
             {:.4} | {} | {} / {} / {} | {scale_out} | {sessions} |",
            s.scenario,
            s.setup,
            s.requests,
            s.success_pct,
            s.errors_before,
            s.errors_during,
            s.errors_after,
            s.recovery_s,
            s.p50_ms,
            s.p95_ms,
            s.p99_ms,
            s.spread_cv,
            s.spread_end_cv,
            s.dns_per_request,
            s.extra_hops,
            s.instances[0],
            s.instances[1],
            s.instances[2],
        );
    }
    for s in summaries {
        if let Some(n) = &s.note {
            let _ = writeln!(out, "\n{} / {}: {n}", s.scenario, s.setup);
        }
    }
    out
}

/// The JSON document: options, summaries and per-second series of every run.
pub fn json(options: &super::Options, runs: &[Run]) -> serde_json::Value {
    let runs: Vec<serde_json::Value> = runs
        .iter()
        .map(|r| {
            serde_json::json!({
                "summary": summarize(r),
                "fault_ms": r.fault_ms,
                "fault_end_ms": r.fault_end_ms,
                "instances": r.instances,
                "capacity": r.capacity,
                "series": series(r),
            })
        })
        .collect();
    serde_json::json!({
        "options": {
            "duration_s": options.duration.as_secs_f64(),
            "seed": options.seed,
            "clients": options.clients,
            "resolvers": options.resolvers,
            "ttl_s": options.ttl.as_secs_f64(),
            "resolver_floor_s": options.resolver_floor.as_secs_f64(),
            "client_scale": options.client_scale,
            "session": options.session,
            "gap_ms": options.gap.as_millis() as u64,
            "spike": super::SPIKE,
        },
        "runs": runs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compare::Scenario;
    use crate::compare::setup::Kind;

    fn sample(t_ms: u32, ok: bool, instance: u16) -> Sample {
        Sample {
            t_ms,
            ok,
            latency_us: 1000 + t_ms,
            instance: ok.then_some(instance),
            client: (t_ms / 100 % 4) as u16,
        }
    }

    fn run(scenario: Scenario, samples: Vec<Sample>, fault: u32, end: u32) -> Run {
        Run {
            setup: Kind::DnsRr,
            scenario,
            fault_ms: Some(fault),
            fault_end_ms: Some(end),
            samples,
            dns_queries: 51,
            instances: vec!["0".into(), "1".into()],
            initial: 2,
            capacity: vec![(0, 2), (fault, 2), (end, 3), (9_000, 2)],
            survivors: vec![0],
            note: None,
        }
    }

    #[test]
    fn errors_recovery_and_spread_come_from_the_samples() {
        let mut samples = Vec::new();
        for t in 0..100 {
            samples.push(sample(t * 100, true, (t % 2) as u16));
        }
        samples.push(sample(5_000, false, 0));
        samples.push(sample(7_500, false, 0));
        samples.sort_by_key(|s| s.t_ms);
        let run = run(Scenario::InstanceCrash, samples, 5_000, 6_000);
        let s = summarize(&run);
        assert_eq!(
            (s.errors_before, s.errors_during, s.errors_after),
            (0, 1, 1)
        );
        assert_eq!(s.recovery_s, 2.5);
        assert_eq!(s.spread_cv, 0.0, "alternating instances before the fault");
        assert_eq!(s.spread_end_cv, 0.0, "one survivor");
        assert_eq!(s.dns_per_request, 0.5);
        assert_eq!(s.extra_hops, 0);
        assert_eq!(s.instances, [2, 3, 2]);
        assert_eq!(s.scale_out_s, None, "not a load spike");
        assert_eq!(s.sessions, None, "not sticky");
        let secs = series(&run);
        assert_eq!(secs.len(), 10);
        assert_eq!(secs[5].errors, 1);
        let table = markdown(&[s]);
        assert!(
            table.contains("| instance-crash | dns-rr | 102 |"),
            "{table}"
        );
        assert!(table.contains("| 0 / 1 / 1 |"), "{table}");
    }

    #[test]
    fn sessions_are_lost_when_their_instance_changes() {
        // Clients 0 and 2 always reach instance 0, clients 1 and 3 instance 1 until the
        // fault; then everyone reaches instance 0 (the survivor).
        let samples = (0..100)
            .map(|t| {
                let client = (t % 4) as u16;
                let instance = if t >= 50 { 0 } else { client % 2 };
                Sample {
                    client,
                    ..sample(t * 100, true, instance)
                }
            })
            .collect();
        let s = summarize(&run(Scenario::StickyScaleIn, samples, 5_000, 6_000));
        assert_eq!(
            (s.sessions, s.sessions_lost, s.sessions_on_removed),
            (Some(4), Some(2), Some(2))
        );
        assert!(markdown(&[s]).contains("| 2 / 2 / 4 |"));
    }

    #[test]
    fn a_load_spike_reports_its_scale_out_time() {
        let samples = (0..100).map(|t| sample(t * 100, true, 0)).collect();
        let s = summarize(&run(Scenario::LoadSpike, samples, 3_000, 7_500));
        assert_eq!(s.scale_out_s, Some(4.5));
    }
}
