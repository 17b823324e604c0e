#!/usr/bin/env bash
# Scaling with cores: the same servers at 1 and 2 worker threads, pinned to CPU 0 and to
# CPUs 0-1 (the load generator stays on CPU 1, so at two threads the servers share a core
# with it, and on a 2-core machine the second thread can at best win back what the load
# generator leaves). In each round and at each thread count T:
#   DNS static zone  roundhouse --threads T (127.0.0.1:15390) and knotd udp-workers T
#                    (127.0.0.1:15391) serving ../shared/bench's example.test zone, measured
#                    with ../shared/bench/dns-qps.sh (dnsperf on CPU 1, queries.txt)
#   HTTP balancer    roundhouse --threads T (127.0.0.1:15392) and HAProxy nbthread T
#                    (127.0.0.1:15393) balancing round robin over the nginx backends of
#                    bench/lib.sh (CPU 0), measured with wrk on CPU 1 (keep-alive)
# The table gives medians over --runs rounds: qps (req/s for HTTP), the cores the server used,
# qps per core, p99, and the 2-thread / 1-thread ratio of qps.
# usage: bench/threads.sh [--runs N] [--seconds N]
# Needs: knot, dnsperf, bind9-dnsutils, haproxy, nginx-light, wrk, curl and ../shared/bench.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
[ -d "$root/../shared/bench" ] || { echo "skipped: ../shared/bench is absent"; exit 0; }
runs=3; secs=10; threads=1
. "$root/bench/lib.sh"
bench_start "$@"
mkdir -p "$WORK/zones"
cp "$bench/zones/example.test.zone" "$WORK/zones/"
{ rh_base 127.0.0.1:15390 zones; rh_listener web http 15392 "${WEB[@]}"; } > "$WORK/roundhouse.toml"

# start_knot T: knotd with T UDP workers on 127.0.0.1:15391, pinned like T threads.
start_knot() {
  mkdir -p "$WORK/knot"
  cat > "$WORK/knot/knot.conf" <<CFG
server:
    listen: 127.0.0.1@15391
    rundir: $WORK/knot
    udp-workers: $1
    tcp-workers: 1
    background-workers: 1
database:
    storage: $WORK/knot
log:
  - target: stderr
    any: warning
zone:
  - domain: example.test
    file: $WORK/zones/example.test.zone
    zonefile-sync: -1
    journal-content: none
CFG
  start_bg knot "$(cpus "$1")" knotd -c "$WORK/knot/knot.conf"
}

# wait_dns PORT: until www.example.test answers on PORT (at most 20 s).
wait_dns() {
  local _
  for _ in $(seq 100); do
    dig +short +time=1 +tries=1 @127.0.0.1 -p "$1" www.example.test A 2>/dev/null | grep -q . && return 0
    sleep 0.2
  done
  echo "no DNS answer on port $1" >&2
  return 1
}

# dns NAME PORT: one dns-qps.sh run, as "peer=NAME qps= cores= per_core= p99_ms=".
dns() {
  local l
  l=$("$bench/dns-qps.sh" "127.0.0.1:$2" "$bench/queries.txt" "$secs")
  echo "peer=$1 qps=$(field qps "$l") cores=$(field srv_cpu "$l") per_core=$(field qps_per_core "$l") p99_ms=$(field p99_ms "$l")"
}

# http NAME PID PORT: one wrk run, with the cores PID used meanwhile.
http() {
  local t0 s0 l c
  t0=$(cpu_ticks "$2"); s0=$(date +%s.%N)
  l=$(wrk_run "$secs" "http://127.0.0.1:$3/")
  c=$(cores "$t0" "$(cpu_ticks "$2")" "$s0" "$(date +%s.%N)")
  echo "peer=$1 qps=$(field rps "$l") cores=$c per_core=$(awk -v q="$(field rps "$l")" -v c="$c" \
    'BEGIN { if (q == "NA" || c <= 0) print "NA"; else printf "%.0f", q / c }') p99_ms=$(field p99_ms "$l")"
}

start_web
wait_http "http://${WEB[0]}/"
echo "load before: $(cat /proc/loadavg)"
: > "$WORK/results"
for run in $(seq "$runs"); do
  for t in 1 2; do
    start_roundhouse "$t" "$WORK/roundhouse.toml"; rh=$LAST_PID
    start_knot "$t"; knot=$LAST_PID
    { haproxy_head "$t" http; haproxy_proxy web 15393 "${WEB[@]}"; } > "$WORK/haproxy.cfg"
    start_bg haproxy "$(cpus "$t")" haproxy -db -f "$WORK/haproxy.cfg"; ha=$LAST_PID
    wait_dns 15390; wait_dns 15391; wait_http http://127.0.0.1:15392/; wait_http http://127.0.0.1:15393/
    {
      echo "run=$run threads=$t $(dns roundhouse-dns 15390)"
      echo "run=$run threads=$t $(dns knotd 15391)"
      echo "run=$run threads=$t $(http roundhouse-http "$rh" 15392)"
      echo "run=$run threads=$t $(http haproxy-http "$ha" 15393)"
    } | tee -a "$WORK/results" >&2
    stop_pid "$ha"; stop_pid "$knot"; stop_pid "$rh"
  done
done
echo "load after: $(cat /proc/loadavg)"

get() { pick "$WORK/results" "$4" run="$1" peer="$2" threads="$3"; } # RUN PEER THREADS KEY
med() { for run in $(seq "$runs"); do v=$(get "$run" "$1" "$2" "$3"); echo "${v:-NA}"; done | median; }
# scaling PEER: median over rounds of (qps at 2 threads / qps at 1 thread) within the round.
scaling() { for run in $(seq "$runs"); do ratio "$(get "$run" "$1" 2 qps)" "$(get "$run" "$1" 1 qps)"; done | median; }
printf '\n%-16s %7s %9s %6s %9s %8s %9s\n' peer threads qps cores per_core p99_ms x_1thread
for p in roundhouse-dns knotd roundhouse-http haproxy-http; do
  for t in 1 2; do
    printf '%-16s %7s %9s %6s %9s %8s %9s\n' "$p" "$t" "$(med "$p" "$t" qps)" "$(med "$p" "$t" cores)" \
      "$(med "$p" "$t" per_core)" "$(med "$p" "$t" p99_ms)" "$([ "$t" = 2 ] && scaling "$p" || echo 1.00)"
  done
done
