#!/usr/bin/env bash
# Failover time: how long a killed backend keeps being handed out. roundhouse and gdnsd
# (DYNA multifo + http_status) watch the same four HTTP backends on 127.0.0.61-64 with the
# same probe interval and timeout; one backend is killed and both servers are polled every
# 50 ms until the dead address is gone from their answers.
# usage: bench/failover.sh [--interval S] [--runs N] [--gdnsd-down-thresh N]
# (gdnsd's down_thresh defaults to its own default; pass 2 to match roundhouse's
# unhealthy_threshold). Needs: gdnsd, bind9-dnsutils.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
interval=2; runs=3; gdown=""
while [ $# -gt 0 ]; do
  case $1 in --interval) interval=$2; shift 2;; --runs) runs=$2; shift 2;; --gdnsd-down-thresh) gdown="down_thresh => $2, "; shift 2;; *) echo "unknown argument $1" >&2; exit 2;; esac
done
cargo build --release --manifest-path "$root/Cargo.toml" >/dev/null 2>&1
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
hc=15360; rport=15361; gport=15362

backend() { # N: HTTP server on 127.0.0.N:$hc answering 200; its PID goes to $last
  python3 -c "
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.send_header('Content-Length', '2'); self.end_headers(); self.wfile.write(b'ok')
    def log_message(self, *a): pass
http.server.HTTPServer(('127.0.0.$1', $hc), H).serve_forever()" 2>/dev/null &
  last=$!
}

mkdir -p "$work/rh/zones" "$work/gdnsd/zones" "$work/gdnsd/run" "$work/gdnsd/state"
zone='$TTL 300
@ SOA ns1 hostmaster 1 3600 600 86400 60
@ NS ns1
ns1 A 127.0.0.53'
printf '%s\n' "$zone" > "$work/rh/zones/example.test.zone"
printf '%s\nwww IN DYNA multifo!www4\n' "$zone" > "$work/gdnsd/zones/example.test"
cat > "$work/rh/roundhouse.toml" <<TOML
[dns]
listen = ["127.0.0.1:$rport"]
zones_dir = "zones"
[health_check.www]
port = $hc
path = "/"
interval = "${interval}s"
timeout = "1s"
[pool.www]
health_check = "www"
endpoints = [{ address = "127.0.0.61" }, { address = "127.0.0.62" }, { address = "127.0.0.63" }, { address = "127.0.0.64" }]
[[binding]]
name = "www.example.test."
type = "A"
pool = "www"
TOML
cat > "$work/gdnsd/config" <<CFG
options => { listen => [ 127.0.0.1:$gport ], run_dir => $work/gdnsd/run, state_dir => $work/gdnsd/state }
service_types => { www_http => { plugin => http_status, port => $hc, url_path => /, ${gdown}interval => $interval, timeout => 1 } }
plugins => { multifo => { www4 => { service_types => [ www_http ], up_thresh => 0.3,
  b1 => 127.0.0.61, b2 => 127.0.0.62, b3 => 127.0.0.63, b4 => 127.0.0.64 } } }
CFG

has() { dig +short +time=1 +tries=1 @127.0.0.1 -p "$1" www.example.test A | grep -qx "$2"; }
for run in $(seq "$runs"); do
  b=(); for n in 61 62 63 64; do backend $n; b+=("$last"); done; pids+=("${b[@]}")
  "$root/target/release/roundhouse" serve --config "$work/rh/roundhouse.toml" 2> "$work/rh.log" & rh=$!; pids+=("$rh")
  gdnsd -c "$work/gdnsd" start 2> "$work/gdnsd.log" & gd=$!; pids+=("$gd")
  # wait until both hand out all four (gdnsd needs its checks to pass first)
  for _ in $(seq 600); do has $rport 127.0.0.62 && has $gport 127.0.0.62 && break; sleep 0.1; done
  sleep $((interval * 2))
  kill "${b[1]}"; t0=$EPOCHREALTIME; rt=""; gt=""
  while [ -z "$rt" ] || [ -z "$gt" ]; do
    now=$EPOCHREALTIME
    [ -z "$rt" ] && ! has $rport 127.0.0.62 && rt=$(awk -v a="$t0" -v b="$now" 'BEGIN{printf "%.2f", b-a}')
    [ -z "$gt" ] && ! has $gport 127.0.0.62 && gt=$(awk -v a="$t0" -v b="$now" 'BEGIN{printf "%.2f", b-a}')
    if awk -v a="$t0" -v b="$now" 'BEGIN{exit !(b-a > 120)}'; then rt=${rt:-">120"}; gt=${gt:-">120"}; fi
    sleep 0.05
  done
  echo "run=$run interval=${interval}s roundhouse(unhealthy_threshold=2)=${rt}s gdnsd(${gdown:-default thresholds})=${gt}s"
  kill "$rh" "$gd" "${b[@]}" 2>/dev/null || true; wait "$rh" "$gd" 2>/dev/null || true
done
