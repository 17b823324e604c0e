#!/usr/bin/env bash
# L4 (TCP) forwarding next to HAProxy in mode tcp: same backends, same pinning, same run.
# roundhouse (release build, --threads N, CPUs 0..N-1) and HAProxy (nbthread N, same CPUs)
# each get two TCP listeners balancing round robin with TCP health checks every 2 s:
#   bulk  roundhouse 127.0.0.1:15381, HAProxy 127.0.0.1:15383 -> one iperf3 server on
#         127.0.0.31:15384 (CPU SINK_CPU, default 0: it shares the proxy's core, as the web
#         backends do): iperf3 -c on CPU 1 sends for SECONDS (STREAMS parallel streams,
#         default 1) -> MB/s through the proxy, and the cores the proxy used.
#   web   roundhouse 127.0.0.1:15380, HAProxy 127.0.0.1:15382 -> the three nginx backends
#         of bench/lib.sh (CPU 0): wrk on CPU 1 (1 thread, 50 connections) for SECONDS,
#         once with keep-alive (many small requests on few connections) and once with
#         "Connection: close" (a new client and target connection per request) -> req/s, p99.
# "direct" is the same load without a proxy (the ceiling). Each round measures each test on
# direct, then HAProxy and roundhouse back to back (which goes first alternates by round);
# the table gives medians over --runs rounds and the median of the per-round ratios
# roundhouse / HAProxy.
# usage: bench/tcp.sh [--runs N] [--seconds N] [--threads N]     env: SINK_CPU, STREAMS
# Needs: haproxy, nginx-light, wrk, iperf3, curl (Debian) and ../shared/bench.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
[ -d "$root/../shared/bench" ] || { echo "skipped: ../shared/bench is absent"; exit 0; }
runs=3; secs=10; threads=1
. "$root/bench/lib.sh"
bench_start "$@"
sink=127.0.0.31:15384
declare -A WEB_AT=([direct]=${WEB[0]} [haproxy]=127.0.0.1:15382 [roundhouse]=127.0.0.1:15380)
declare -A BULK_AT=([direct]=$sink [haproxy]=127.0.0.1:15383 [roundhouse]=127.0.0.1:15381)
declare -A PID_OF=([direct]="")

start_web
start_bg sink "${SINK_CPU:-0}" iperf3 -s -B "${sink%:*}" -p "${sink#*:}"
{ rh_base; rh_listener web tcp 15380 "${WEB[@]}"; rh_listener bulk tcp 15381 "$sink"; } > "$WORK/roundhouse.toml"
start_roundhouse "$threads" "$WORK/roundhouse.toml"
PID_OF[roundhouse]=$LAST_PID
{ haproxy_head "$threads" tcp; haproxy_proxy web 15382 "${WEB[@]}"; haproxy_proxy bulk 15383 "$sink"; } > "$WORK/haproxy.cfg"
start_bg haproxy "$(cpus "$threads")" haproxy -db -f "$WORK/haproxy.cfg"
PID_OF[haproxy]=$LAST_PID
for p in direct haproxy roundhouse; do wait_http "http://${WEB_AT[$p]}/"; done
sleep 5 # both proxies mark the iperf3 server healthy after two checks 2 s apart

# bulk PEER: one iperf3 run through PEER; prints "mbps=N cores=F".
bulk() {
  local pid=${PID_OF[$1]} t0 t1 s0 s1 mbps
  t0=$(cpu_ticks "${pid:-0}"); s0=$(date +%s.%N)
  taskset -c 1 timeout $((secs + 30)) iperf3 -c "${BULK_AT[$1]%:*}" -p "${BULK_AT[$1]#*:}" -t "$secs" \
    -P "${STREAMS:-1}" -J > "$WORK/iperf.json" 2>&1 || true
  t1=$(cpu_ticks "${pid:-0}"); s1=$(date +%s.%N)
  mbps=$(python3 -c 'import json, sys
try: print("%.0f" % (json.load(open(sys.argv[1]))["end"]["sum_received"]["bits_per_second"] / 8e6))
except Exception: print("NA")' "$WORK/iperf.json")
  echo "mbps=$mbps cores=$([ -n "$pid" ] && cores "$t0" "$t1" "$s0" "$s1" || echo NA)"
}

echo "load before: $(cat /proc/loadavg)"
: > "$WORK/results"
# measure TEST PEER: one run of TEST through PEER, as "k=v" fields.
measure() {
  case $1 in
    bulk) bulk "$2";;
    keepalive) wrk_run "$secs" "http://${WEB_AT[$2]}/";;
    close) wrk_run "$secs" "http://${WEB_AT[$2]}/" -H 'Connection: close';;
  esac
}
# The two proxies are measured back to back on each test, in turns first, so that a change
# in the machine's load falls on both alike.
for run in $(seq "$runs"); do
  order="haproxy roundhouse"; [ $((run % 2)) = 0 ] && order="roundhouse haproxy"
  for t in bulk keepalive close; do
    for p in direct $order; do echo "run=$run peer=$p test=$t $(measure "$t" "$p")"; done
  done | tee -a "$WORK/results" >&2
done
echo "load after: $(cat /proc/loadavg)"

# get RUN PEER TEST KEY: one value from the results.
get() { pick "$WORK/results" "$4" run="$1" peer="$2" test="$3"; }
# med PEER TEST KEY: the median over the rounds; vs PEER TEST KEY: median of per-round PEER/HAProxy.
med() { for run in $(seq "$runs"); do v=$(get "$run" "$1" "$2" "$3"); echo "${v:-NA}"; done | median; }
vs() { for run in $(seq "$runs"); do ratio "$(get "$run" "$1" "$2" "$3")" "$(get "$run" haproxy "$2" "$3")"; done | median; }
printf '\n%-11s %8s %10s %12s %9s %12s %9s %7s %9s %8s %9s\n' peer bulk_MBps bulk_cores ka_req_per_s ka_p99_ms \
  new_req_per_s new_p99_ms errors vs_ha_bulk vs_ha_ka vs_ha_new
for p in direct haproxy roundhouse; do
  errs=$(for run in $(seq "$runs"); do echo $(($(get "$run" "$p" keepalive errors) + $(get "$run" "$p" close errors))); done | median)
  printf '%-11s %8s %10s %12s %9s %12s %9s %7s %9s %8s %9s\n' "$p" "$(med "$p" bulk mbps)" "$(med "$p" bulk cores)" \
    "$(med "$p" keepalive rps)" "$(med "$p" keepalive p99_ms)" "$(med "$p" close rps)" "$(med "$p" close p99_ms)" "$errs" \
    "$(vs "$p" bulk mbps)" "$(vs "$p" keepalive rps)" "$(vs "$p" close rps)"
done
echo "RSS of roundhouse after the run: $(awk '/VmRSS/ {print $2, $3}' "/proc/${PID_OF[roundhouse]}/status")"
