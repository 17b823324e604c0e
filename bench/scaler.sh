#!/usr/bin/env bash
# The scaler's reaction and stability. `roundhouse serve` runs a balancer listener in front of
# a scaling group (process provider, `roundhouse backend` instances on 127.0.0.1, min 1, max 3)
# with a target-tracking policy on the balancer's request count per target (50 requests per
# second per instance). Chosen periods: period 5 s, instance warm-up 10 s, default cooldown 30 s,
# scale-in stabilisation window 60 s, health checks every 1 s (2 to become healthy).
# 1. Reaction: once the first instance is past its warm-up and one quiet period has passed,
#    wrk puts /work?ms=10 load on the listener at T0; the script polls the admin server every
#    100 ms and prints the seconds until the first scale-out activity and until
#    the balancer's metrics show the first request forwarded to the new instance.
# 2. Noise: a fresh server, then for --minutes N (default 5) back-to-back wrk bursts of random
#    length (2-10 s) and random concurrency (3-7 connections) on /slow?ms=50, i.e. 60-140
#    requests per second around a level of 100 (two instances' worth). The desired capacity is
#    sampled every second; printed are the scaling activities (launches and terminations after
#    the first instance), the changes of desired capacity, and the flaps: a scale-out, then a
#    scale-in, then a scale-out again, all within 180 s.
# usage: bench/scaler.sh [--minutes N]. Needs: wrk, curl, jq.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
minutes=5
while [ $# -gt 0 ]; do
  case $1 in --minutes) minutes=$2; shift 2;; *) echo "unknown argument $1" >&2; exit 2;; esac
done
cargo build --release --manifest-path "$root/Cargo.toml" >/dev/null 2>&1
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
lb=15370; admin=15371; dns=15372

mkdir -p "$work/zones"
printf '$TTL 60\n@ SOA ns hm 1 2 3 4 5\n@ NS ns\nns A 127.0.0.53\n' > "$work/zones/example.test.zone"
cat > "$work/roundhouse.toml" <<TOML
[dns]
listen = ["127.0.0.1:$dns"]
zones_dir = "zones"
[admin]
listen = "127.0.0.1:$admin"
[health_check.hc]
protocol = "http"
path = "/health"
interval = "1s"
timeout = "500ms"
healthy_threshold = 2
unhealthy_threshold = 2
[target_group.web]
health_check = "hc"
algorithm = "least-outstanding"
deregistration_delay = "10s"
[[listener]]
name = "web"
listen = "127.0.0.1:$lb"
target_group = "web"
[[scaling_group]]
name = "web"
min = 1
max = 3
target_groups = ["web"]
period = "5s"
instance_warmup = "10s"
default_cooldown = "30s"
health_check_grace_period = "30s"
[scaling_group.launch_template]
[[scaling_group.policy]]
name = "rps50"
type = "target-tracking"
metric = "request-count-per-target"
target = 50.0
scale_in_window = "60s"
TOML

now() { echo "$EPOCHREALTIME"; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN{printf "%.1f", b-a}'; }
groups() { curl -s --max-time 2 "http://127.0.0.1:$admin/v1/scaling-groups" || true; }
start_server() { # starts roundhouse, waits until the first instance answers through the listener
  (cd "$work" && exec "$root/target/release/roundhouse" serve --config roundhouse.toml > /dev/null 2> "$work/$1.log") &
  rh=$!; pids+=("$rh")
  for _ in $(seq 300); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "http://127.0.0.1:$lb/" || true)" = 200 ] && return 0
    sleep 0.1
  done
  echo "roundhouse did not serve within 30 s; log:" >&2; cat "$work/$1.log" >&2; exit 1
}
stop_server() { kill "$rh" 2>/dev/null || true; wait "$rh" 2>/dev/null || true; }
served() { # requests the balancer forwarded to ADDR so far
  curl -s --max-time 2 "http://127.0.0.1:$admin/metrics" \
    | awk -v t="target=\"$1\"" 'index($0, "roundhouse_balancer_requests_total{") == 1 && index($0, t) { n += $NF } END { print n + 0 }'
}

# 1. Reaction
start_server reaction
first=$(groups | jq -r '.groups[0].instances[0].addr')
# the first instance past its warm-up, then one quiet period: the group is at rest at T0
for _ in $(seq 300); do [ "$(groups | jq '.groups[0].instances[0].warmed_up' 2>/dev/null)" = true ] && break; sleep 0.1; done
sleep 6
wrk -t2 -c4 -d60s "http://127.0.0.1:$lb/work?ms=10" > "$work/wrk-reaction.txt" & w=$!; pids+=("$w")
t0=$(now); out=""; served_at=""
while [ -z "$served_at" ]; do
  g=$(groups)
  if [ -z "$out" ] && [ "$(jq '[.groups[0].activities[] | select(.description | startswith("Launching")) ] | length' <<<"$g" 2>/dev/null || echo 0)" -ge 2 ]; then
    out=$(since "$t0")
  fi
  for a in $(jq -r '.groups[0].instances[].addr' <<<"$g" 2>/dev/null); do
    if [ "$a" != "$first" ] && [ "$(served "$a")" -gt 0 ]; then served_at=$(since "$t0"); break; fi
  done
  if awk -v s="$(since "$t0")" 'BEGIN{exit !(s > 55)}'; then out=${out:->55}; served_at=">55"; fi
  sleep 0.1
done
kill "$w" 2>/dev/null || true; wait "$w" 2>/dev/null || true
cause=$(groups | jq -r '[.groups[0].activities[] | select(.description | startswith("Launching"))] | .[-2].cause // ""' 2>/dev/null | sed 's/ At [0-9:]* an instance.*//')
echo "reaction: first scale-out activity after ${out} s, first request on the new instance after ${served_at} s"
echo "  cause: $cause"
stop_server

# 2. Noise
start_server noise
end=$(( $(date +%s) + minutes * 60 ))
( while [ "$(date +%s)" -lt "$end" ]; do
    left=$(( end - $(date +%s) )); d=$(( RANDOM % 9 + 2 )); [ "$d" -gt "$left" ] && d=$left
    [ "$d" -lt 1 ] && break
    c=$(( RANDOM % 5 + 3 ))
    echo "$(date +%s) c=$c d=${d}s" >> "$work/bursts.txt"
    wrk -t1 -c"$c" -d"${d}s" "http://127.0.0.1:$lb/slow?ms=50" >> "$work/wrk-noise.txt" 2>&1 || true
  done ) & w=$!; pids+=("$w")
: > "$work/desired.txt"
while [ "$(date +%s)" -lt "$end" ]; do
  d=$(groups | jq -r '.groups[0].desired' 2>/dev/null || true)
  [ -n "$d" ] && [ "$d" != null ] && echo "$(date +%s) $d" >> "$work/desired.txt"
  sleep 1
done
wait "$w" 2>/dev/null || true
g=$(groups)
activities=$(jq '[.groups[0].activities[]] | length - 1' <<<"$g")
rps=$(awk '/Requests\/sec/ { s += $2; n++ } END { if (n) printf "%.0f", s / n }' "$work/wrk-noise.txt")
errors=$(awk '/^Running/ { n++ } /Non-2xx|Socket errors/ && last != n { e++; last = n } END { print e + 0 }' "$work/wrk-noise.txt")
# changes of desired capacity and flaps (out, in, out within 180 s)
read -r changes flaps trace < <(awk '
  { if (prev != "" && $2 != prev) { n++; dir = ($2 > prev) ? "out" : "in"; t[n] = $1; d[n] = dir
      trace = trace sprintf(" %s->%s@%+ds", prev, $2, $1 - start) }
    if (start == "") start = $1; prev = $2 }
  END { f = 0
    for (i = 3; i <= n; i++) if (d[i-2] == "out" && d[i-1] == "in" && d[i] == "out" && t[i] - t[i-2] <= 180) f++
    printf "%d %d %s\n", n, f, (trace == "" ? "none" : trace) }' "$work/desired.txt")
echo "noise (${minutes} min, $(wc -l < "$work/bursts.txt") bursts, mean ${rps} req/s per burst, ${errors} bursts with errors):"
echo "  scaling activities ${activities}, desired-capacity changes ${changes} (${trace# }), flaps ${flaps}, final desired $(jq '.groups[0].desired' <<<"$g")"
stop_server
