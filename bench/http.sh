#!/usr/bin/env bash
# HTTP balancer throughput next to HAProxy and nginx: same three backends, same pinning,
# same run. Starts roundhouse (release build, --threads N worker threads, default 1, pinned
# to CPUs 0..N-1; the peers stay at one thread on CPU 0) with a listener on
# 127.0.0.1:15340 forwarding round robin to 127.0.0.21:15331, 127.0.0.22:15332 and
# 127.0.0.23:15333 (TCP health checks every 2 s), then runs ../shared/bench/peers-http.sh
# with it as the candidate; the table gives req/s and latency as ratios to HAProxy.
# usage: bench/http.sh [--runs N] [--seconds N] [--threads N]
# Needs: haproxy, nginx-light, wrk (Debian) and ../shared/bench.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bench=$root/../shared/bench
[ -d "$bench" ] || { echo "skipped: ../shared/bench is absent"; exit 0; }
runs=3; secs=10; threads=1
. "$root/bench/lib.sh"
bench_start "$@"
{ rh_base; rh_listener web http 15340 "${WEB[@]}"; } > "$WORK/roundhouse.toml"
start_roundhouse "$threads" "$WORK/roundhouse.toml"
pid=$LAST_PID
echo "load: $(cat /proc/loadavg)"
"$bench/peers-http.sh" --candidate 127.0.0.1:15340 --runs "$runs" --seconds "$secs"
echo "roundhouse RSS after the run: $(awk '/VmRSS/ {print $2, $3}' /proc/$pid/status)"
