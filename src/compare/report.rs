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
    /// Failed requests that ended before the fault (all of them in steady state).
    pub errors_before: usize,
    /// Failed requests that ended at or after the fault.
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
    /// Queries the resolvers sent to the authoritative server, per request.
    pub dns_per_request: f64,
    /// Proxies between client and instance.
    pub extra_hops: u32,
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

/// The numbers of a run.
pub fn summarize(run: &Run) -> Summary {
    let fault = run.fault_ms.unwrap_or(u32::MAX);
    let s = &run.samples;
    let errors_before = s.iter().filter(|x| !x.ok && x.t_ms < fault).count();
    let errors_after = s.iter().filter(|x| !x.ok && x.t_ms >= fault).count();
    let last_error = s
        .iter()
        .filter(|x| !x.ok && x.t_ms >= fault)
        .map(|x| x.t_ms)
        .max();
    let mut lat: Vec<u32> = s.iter().filter(|x| x.ok).map(|x| x.latency_us).collect();
    lat.sort_unstable();
    let mut counts = vec![0usize; run.instances];
    for x in s.iter().filter(|x| x.ok && x.t_ms < fault) {
        if let Some(i) = x.instance.and_then(|i| counts.get_mut(usize::from(i))) {
            *i += 1;
        }
    }
    let requests = s.len();
    let ok = s.iter().filter(|x| x.ok).count();
    Summary {
        setup: run.setup.name(),
        scenario: run.scenario.name(),
        requests,
        success_pct: round(100.0 * ok as f64 / requests.max(1) as f64, 2),
        errors_before,
        errors_after,
        recovery_s: round(last_error.map_or(0.0, |t| f64::from(t - fault) / 1000.0), 1),
        p50_ms: round(percentile(&lat, 0.50), 2),
        p95_ms: round(percentile(&lat, 0.95), 2),
        p99_ms: round(percentile(&lat, 0.99), 2),
        spread_cv: round(cv(&counts), 3),
        dns_per_request: round(run.dns_queries as f64 / requests.max(1) as f64, 4),
        extra_hops: run.extra_hops,
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
            let mut per_instance = vec![0; run.instances];
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
                per_instance,
            }
        })
        .collect()
}

/// The Markdown table of every run.
pub fn markdown(summaries: &[Summary]) -> String {
    let mut out = String::from(
        "| scenario | setup | requests | success % | errors before / after fault | \
         recovery s | p50 ms | p95 ms | p99 ms | spread (CV) | DNS queries / request | extra hops |\n\
         |---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for s in summaries {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {:.2} | {} / {} | {:.1} | {:.2} | {:.2} | {:.2} | {:.3} | {:.4} | {} |",
            s.scenario,
            s.setup,
            s.requests,
            s.success_pct,
            s.errors_before,
            s.errors_after,
            s.recovery_s,
            s.p50_ms,
            s.p95_ms,
            s.p99_ms,
            s.spread_cv,
            s.dns_per_request,
            s.extra_hops
        );
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
        let run = Run {
            setup: Kind::DnsRr,
            scenario: Scenario::InstanceCrash,
            fault_ms: Some(5_000),
            samples,
            dns_queries: 51,
            instances: 2,
            extra_hops: 0,
        };
        let s = summarize(&run);
        assert_eq!((s.errors_before, s.errors_after), (0, 2));
        assert_eq!(s.recovery_s, 2.5);
        assert_eq!(s.spread_cv, 0.0, "alternating instances before the fault");
        assert_eq!(s.dns_per_request, 0.5);
        assert_eq!(s.extra_hops, 0);
        let secs = series(&run);
        assert_eq!(secs.len(), 10);
        assert_eq!(secs[5].errors, 1);
        assert!(markdown(&[s]).contains("| instance-crash | dns-rr | 102 |"));
    }
}
