#!/usr/bin/env bash
# DNS throughput next to knotd (and NSD), same zone, same query mix, same pinning, same run.
# Starts roundhouse (release build, 1 worker thread, CPU 0) on 127.0.0.1:15320 serving the
# benchmark zone, then runs ../shared/bench/peers-dns.sh with it as the candidate; the table
# it prints has roundhouse's qps and qps per server core as a ratio to knotd.
# usage: bench/dns.sh [--runs N] [--seconds N] [--threads N] [--peers "knot nsd"]
# Needs: knot, nsd, dnsperf, bind9-dnsutils (Debian) and ../shared/bench.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bench=$root/../shared/bench
[ -d "$bench" ] || { echo "skipped: ../shared/bench is absent"; exit 0; }
runs=3; secs=10; threads=1; peers="knot nsd"
while [ $# -gt 0 ]; do
  case $1 in
    --runs) runs=$2; shift 2;; --seconds) secs=$2; shift 2;;
    --threads) threads=$2; shift 2;; --peers) peers=$2; shift 2;;
    *) echo "unknown argument $1" >&2; exit 2;;
  esac
done
cargo build --release --manifest-path "$root/Cargo.toml" >/dev/null 2>&1
work=$(mktemp -d)
mkdir -p "$work/zones"
cp "$bench/zones/example.test.zone" "$work/zones/example.test.zone"
printf '[dns]\nlisten = ["127.0.0.1:15320"]\nzones_dir = "zones"\n[log]\nlevel = "warn"\n' > "$work/roundhouse.toml"
taskset -c 0 "$root/target/release/roundhouse" serve --threads "$threads" --config "$work/roundhouse.toml" > /dev/null 2> "$work/log" &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 50); do dig +short +time=1 +tries=1 @127.0.0.1 -p 15320 www.example.test A 2>/dev/null | grep -q . && break; sleep 0.1; done
echo "load: $(cat /proc/loadavg)"
"$bench/peers-dns.sh" --candidate 127.0.0.1:15320 --runs "$runs" --seconds "$secs" --peers "$peers"
echo "roundhouse RSS after the run: $(awk '/VmRSS/ {print $2, $3}' /proc/$pid/status)"
