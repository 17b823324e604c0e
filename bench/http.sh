#!/usr/bin/env bash
# HTTP balancer throughput next to HAProxy and nginx: same three backends, same pinning,
# same run. Starts roundhouse (release build, 1 worker thread, CPU 0) with a listener on
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
while [ $# -gt 0 ]; do
  case $1 in
    --runs) runs=$2; shift 2;; --seconds) secs=$2; shift 2;; --threads) threads=$2; shift 2;;
    *) echo "unknown argument $1" >&2; exit 2;;
  esac
done
cargo build --release --manifest-path "$root/Cargo.toml" >/dev/null 2>&1
work=$(mktemp -d)
mkdir -p "$work/zones"
cat > "$work/roundhouse.toml" <<'TOML'
[dns]
listen = ["127.0.0.1:0"]
zones_dir = ""
[log]
level = "warn"
[health_check.tcp]
protocol = "tcp"
interval = "2s"
timeout = "1s"
healthy_threshold = 2
[target_group.web]
health_check = "tcp"
targets = [{ address = "127.0.0.21:15331" }, { address = "127.0.0.22:15332" }, { address = "127.0.0.23:15333" }]
[[listener]]
name = "web"
listen = "127.0.0.1:15340"
target_group = "web"
TOML
taskset -c 0 "$root/target/release/roundhouse" serve --threads "$threads" --config "$work/roundhouse.toml" > /dev/null 2> "$work/log" &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$work"' EXIT
echo "load: $(cat /proc/loadavg)"
"$bench/peers-http.sh" --candidate 127.0.0.1:15340 --runs "$runs" --seconds "$secs"
echo "roundhouse RSS after the run: $(awk '/VmRSS/ {print $2, $3}' /proc/$pid/status)"
