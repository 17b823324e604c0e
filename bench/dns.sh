#!/usr/bin/env bash
# DNS throughput next to knotd, NSD, gdnsd and PowerDNS LUA records: same zone, same query
# mix, same pinning, same run. Starts roundhouse (release build, --threads N worker threads,
# default 1, pinned to CPUs 0..N-1; the peers stay at one thread on CPU 0) on
# 127.0.0.1:15320 serving the benchmark zone with www.example.test bound to a round-robin
# pool of 127.0.0.11-14 health-checked over HTTP on port 15310 (as gdnsd's multifo +
# http_status and PowerDNS's ifportup in the same script; --static serves www's four A
# records from the zone instead), then runs ../shared/bench/peers-dns.sh with it as the
# candidate. The table gives qps and qps per server core as ratios to knotd and gdnsd.
# --www-only asks only `www.example.test A` instead of the shared query mix (where 2 of 20
# queries get fuller answers from roundhouse than from gdnsd 3: it follows the in-zone CNAME
# of cdn to www and adds the MX target's address, as knotd does), so that every server
# writes the same answer.
# usage: bench/dns.sh [--runs N] [--seconds N] [--threads N] [--peers "knot nsd gdnsd pdns"] [--static] [--www-only]
# Needs: knot, nsd, gdnsd, pdns-server, pdns-backend-bind, nginx-light, dnsperf,
# bind9-dnsutils (Debian) and ../shared/bench.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bench=$root/../shared/bench
[ -d "$bench" ] || { echo "skipped: ../shared/bench is absent"; exit 0; }
runs=3; secs=10; threads=1; peers="knot nsd gdnsd pdns"; static=0; www_only=0
while [ $# -gt 0 ]; do
  case $1 in
    --runs) runs=$2; shift 2;; --seconds) secs=$2; shift 2;;
    --threads) threads=$2; shift 2;; --peers) peers=$2; shift 2;;
    --static) static=1; shift;;
    --www-only) www_only=1; shift;;
    *) echo "unknown argument $1" >&2; exit 2;;
  esac
done
cargo build --release --manifest-path "$root/Cargo.toml" >/dev/null 2>&1
work=$(mktemp -d)
WORK=$work
. "$root/bench/lib.sh"
trap cleanup EXIT
mkdir -p "$work/zones"
printf '[dns]\nlisten = ["127.0.0.1:15320"]\nzones_dir = "zones"\n[log]\nlevel = "warn"\n' > "$work/roundhouse.toml"
if [ "$static" = 1 ]; then
  cp "$bench/zones/example.test.zone" "$work/zones/example.test.zone"
else
  # The same health check as gdnsd's http_status in peers-dns.sh: port 15310, /, 2 s, 1 s.
  sed '/^www /d' "$bench/zones/example.test.zone" > "$work/zones/example.test.zone"
  cat >> "$work/roundhouse.toml" <<'TOML'
[health_check.www]
port = 15310
path = "/"
interval = "2s"
timeout = "1s"
[pool.www]
health_check = "www"
endpoints = [{ address = "127.0.0.11" }, { address = "127.0.0.12" }, { address = "127.0.0.13" }, { address = "127.0.0.14" }]
[[binding]]
name = "www.example.test."
type = "A"
pool = "www"
ttl = "300s"
TOML
fi
start_roundhouse "$threads" "$work/roundhouse.toml"
pid=$LAST_PID
for _ in $(seq 50); do dig +short +time=1 +tries=1 @127.0.0.1 -p 15320 www.example.test A 2>/dev/null | grep -q . && break; sleep 0.1; done
if [ "$www_only" = 1 ]; then
  echo "www.example.test A" > "$work/queries.txt"
  export QUERYFILE=$work/queries.txt
fi
echo "load: $(cat /proc/loadavg)"
"$bench/peers-dns.sh" --candidate 127.0.0.1:15320 --runs "$runs" --seconds "$secs" --peers "$peers"
echo "roundhouse RSS after the run: $(awk '/VmRSS/ {print $2, $3}' /proc/$pid/status)"
