#!/usr/bin/env bash
# What per-client steering costs: one roundhouse (release, 1 worker thread, CPU 0) serves
# two bindings of the same three-region pool (two addresses per answer each), `plain.example.test` (steering "none") and
# `geo.example.test` (steering "geo" with a geo database); dnsperf (CPU 1) asks for each in
# turn (both with EDNS), the steered name with an EDNS Client Subnet option, alternating rounds.
# usage: bench/steering.sh [--seconds N] [--runs N]      Needs: dnsperf, bind9-dnsutils.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
secs=10; runs=3
while [ $# -gt 0 ]; do
  case $1 in --seconds) secs=$2; shift 2;; --runs) runs=$2; shift 2;; *) echo "unknown argument $1" >&2; exit 2;; esac
done
cargo build --release --manifest-path "$root/Cargo.toml" >/dev/null 2>&1
work=$(mktemp -d)
WORK=$work
. "$root/bench/lib.sh"
cargo run -q --release --manifest-path "$root/Cargo.toml" --example make_geodb -- "$work/geo.mmdb" >/dev/null
mkdir -p "$work/zones"
printf '$TTL 300\n@ SOA ns1 hostmaster 1 3600 600 86400 60\n@ NS ns1\nns1 A 192.0.2.53\n' > "$work/zones/example.test.zone"
eps='[{ address = "10.0.0.1", region = "us-east" }, { address = "10.0.0.2", region = "us-east" }, { address = "10.0.1.1", region = "eu-west" }, { address = "10.0.1.2", region = "eu-west" }, { address = "10.0.2.1", region = "ap-northeast" }, { address = "10.0.2.2", region = "ap-northeast" }]'
cat > "$work/roundhouse.toml" <<TOML
[dns]
listen = ["127.0.0.1:15330"]
zones_dir = "zones"
[log]
level = "warn"
[geo]
database = "geo.mmdb"
[[region]]
name = "us-east"
coordinates = [39.0, -77.5]
countries = ["US"]
[[region]]
name = "eu-west"
coordinates = [53.3, -6.3]
countries = ["GB"]
[[region]]
name = "ap-northeast"
coordinates = [35.7, 139.7]
countries = ["JP"]
[pool.plain]
endpoints = $eps
[pool.geo]
steering = "geo"
endpoints = $eps
[[binding]]
name = "plain.example.test."
type = "A"
pool = "plain"
answers = 2
[[binding]]
name = "geo.example.test."
type = "A"
pool = "geo"
answers = 2
TOML
taskset -c 0 "$root/target/release/roundhouse" serve --threads 1 --config "$work/roundhouse.toml" 2> "$work/log" &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 50); do dig +short +time=1 +tries=1 @127.0.0.1 -p 15330 plain.example.test A 2>/dev/null | grep -q . && break; sleep 0.1; done
echo "plain.example.test A" > "$work/plain.txt"
echo "geo.example.test A" > "$work/geo.txt"
# ECS 203.0.113.0/24 (GB in the test database): option 8, family 1, source 24, scope 0.
ecs="8:00011800cb0071"
check=$(dig +short +subnet=203.0.113.0/24 @127.0.0.1 -p 15330 geo.example.test A | head -1)
echo "geo.example.test for 203.0.113.0/24 answers $check (eu-west is 10.0.1.x)"
qps() { taskset -c 1 dnsperf -s 127.0.0.1 -p 15330 -d "$1" -l "$secs" -c 4 -q 100 "${@:2}" 2>/dev/null | noerror_qps; }
echo "load: $(cat /proc/loadavg)"
for run in $(seq "$runs"); do
  # alternate which goes first, so warm-up and drift do not favour one
  if [ $((run % 2)) = 1 ]; then p=$(qps "$work/plain.txt" -e); g=$(qps "$work/geo.txt" -E "$ecs")
  else g=$(qps "$work/geo.txt" -E "$ecs"); p=$(qps "$work/plain.txt" -e); fi
  echo "run=$run plain_qps=$p geo_ecs_qps=$g ratio=$(awk -v a="$g" -v b="$p" 'BEGIN{printf "%.3f", a/b}')"
done
