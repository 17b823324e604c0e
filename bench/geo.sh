#!/usr/bin/env bash
# Geo-steered pool answers next to gdnsd's geoip plugin and PowerDNS LUA records with its
# geoip backend: the same geo database (examples/make_geodb.rs), three regions of two
# health-checked endpoints each (127.0.1.1-2 us-east, 127.0.2.1-2 eu-west, 127.0.3.1-2
# ap-northeast; HTTP checks on port 15310 of one nginx), both addresses of the client's region
# per answer. Each server in turn on CPU 0, one worker; dnsperf on CPU 1 asks `geo.example.test
# A`, once with an EDNS Client Subnet option for 203.0.113.0/24 (GB in the database: eu-west),
# once without (the source 127.0.0.1 is in no network: the default region, us-east).
# Prints per round and mode qps and qps per server core, then a table of medians.
# usage: bench/geo.sh [--runs N] [--seconds N] [--peers "gdnsd pdns"]
# Needs: gdnsd, pdns-server, pdns-backend-bind, pdns-backend-geoip, nginx-light, dnsperf,
# bind9-dnsutils.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
runs=3; secs=10; peers="gdnsd pdns"
while [ $# -gt 0 ]; do
  case $1 in
    --runs) runs=$2; shift 2;; --seconds) secs=$2; shift 2;; --peers) peers=$2; shift 2;;
    *) echo "unknown argument $1" >&2; exit 2;;
  esac
done
WORK=$(mktemp -d)
. "$root/bench/lib.sh"
trap cleanup EXIT
trap 'exit 130' INT TERM
cargo build --release --manifest-path "$root/Cargo.toml" >/dev/null 2>&1
cargo run -q --release --manifest-path "$root/Cargo.toml" --example make_geodb -- "$WORK/geo.mmdb" >/dev/null

HC_PORT=15310
declare -A PORT=([roundhouse]=15350 [gdnsd]=15351 [pdns]=15352)
US=(127.0.1.1 127.0.1.2); EU=(127.0.2.1 127.0.2.2); AP=(127.0.3.1 127.0.3.2)
zone_head() {
  printf '$ORIGIN example.test.\n$TTL 300\n@ IN SOA ns1 hostmaster 1 3600 900 604800 300\n@ IN NS ns1\nns1 IN A 127.0.0.53\n'
}

launch_hc() {
  local d=$WORK/hc a
  mkdir -p "$d"
  {
    echo "daemon off; master_process off; worker_processes 1; pid $d/pid; error_log $d/error.log warn;"
    echo "events { worker_connections 256; }"
    echo "http { access_log off; client_body_temp_path $d; proxy_temp_path $d; fastcgi_temp_path $d; uwsgi_temp_path $d; scgi_temp_path $d;"
    echo "  server {"
    for a in "${US[@]}" "${EU[@]}" "${AP[@]}"; do echo "    listen $a:$HC_PORT;"; done
    echo "    location / { return 200 \"ok\\n\"; } } }"
  } > "$d/nginx.conf"
  start_bg hc 1 nginx -p "$d" -c "$d/nginx.conf"
}

launch_roundhouse() {
  local d=$WORK/rh
  mkdir -p "$d/zones"
  zone_head > "$d/zones/example.test.zone"
  ep() { local r=$1 a; shift; for a in "$@"; do printf '{ address = "%s", region = "%s" }, ' "$a" "$r"; done; }
  cat > "$d/roundhouse.toml" <<TOML
[dns]
listen = ["127.0.0.1:${PORT[roundhouse]}"]
zones_dir = "zones"
[log]
level = "warn"
[geo]
database = "$WORK/geo.mmdb"
[[region]]
name = "us-east"
countries = ["US"]
[[region]]
name = "eu-west"
countries = ["GB"]
[[region]]
name = "ap-northeast"
countries = ["JP"]
[health_check.www]
port = $HC_PORT
path = "/"
interval = "2s"
timeout = "1s"
[pool.geo]
steering = "geo"
health_check = "www"
endpoints = [$(ep us-east "${US[@]}")$(ep eu-west "${EU[@]}")$(ep ap-northeast "${AP[@]}")]
[[binding]]
name = "geo.example.test."
type = "A"
pool = "geo"
answers = 2
TOML
  start_roundhouse 1 "$d/roundhouse.toml"
}

launch_gdnsd() {
  local d=$WORK/gdnsd
  mkdir -p "$d/zones" "$d/run" "$d/state" "$d/geoip"
  cp "$WORK/geo.mmdb" "$d/geoip/geo.mmdb"
  { zone_head; echo "geo IN DYNA geoip!geo"; } > "$d/zones/example.test"
  cat > "$d/config" <<CFG
options => {
  listen => [ 127.0.0.1:${PORT[gdnsd]} ]
  udp_threads => 1
  tcp_threads => 1
  run_dir => $d/run
  state_dir => $d/state
}
service_types => {
  www_http => { plugin => http_status, port => $HC_PORT, url_path => /, interval => 2, timeout => 1 }
}
plugins => {
  geoip => {
    maps => {
      bench => {
        geoip2_db => geo.mmdb
        datacenters => [us-east, eu-west, ap-northeast]
        map => {
          default => [us-east, eu-west, ap-northeast]
          NA => { US => [us-east, eu-west, ap-northeast] }
          EU => { GB => [eu-west, us-east, ap-northeast] }
          AS => { JP => [ap-northeast, us-east, eu-west] }
        }
      }
    }
    resources => {
      geo => {
        map => bench
        service_types => [ www_http ]
        dcmap => {
          us-east => { a => ${US[0]}, b => ${US[1]} }
          eu-west => { a => ${EU[0]}, b => ${EU[1]} }
          ap-northeast => { a => ${AP[0]}, b => ${AP[1]} }
        }
      }
    }
  }
}
CFG
  start_bg gdnsd 0 gdnsd -c "$d" start
}

launch_pdns() {
  local d=$WORK/pdns
  mkdir -p "$d"
  list() { local a out=""; for a in "$@"; do out+="${out:+,}'$a'"; done; echo "{$out}"; }
  { zone_head
    echo "geo IN LUA A \"ifportup($HC_PORT, country('GB') and $(list "${EU[@]}") or country('JP') and $(list "${AP[@]}") or $(list "${US[@]}"), {selector='all'})\""
  } > "$d/example.test.zone"
  echo "zone \"example.test\" { type master; file \"$d/example.test.zone\"; };" > "$d/named.conf"
  printf 'domains: []\n' > "$d/geo-zones.yaml"
  cat > "$d/pdns.conf" <<CFG
launch=bind,geoip
bind-config=$d/named.conf
geoip-database-files=mmdb:$WORK/geo.mmdb
geoip-zones-file=$d/geo-zones.yaml
edns-subnet-processing=yes
local-address=127.0.0.1
local-port=${PORT[pdns]}
enable-lua-records=yes
socket-dir=$d
daemon=no
guardian=no
disable-syslog=yes
loglevel=3
receiver-threads=1
distributor-threads=1
security-poll-suffix=
webserver=no
api=no
CFG
  start_bg pdns 0 pdns_server --config-dir="$d"
}

# wait_geo PORT: until geo.example.test answers with both eu-west addresses for the GB
# subnet and both us-east ones without ECS (the first health checks of both sets have passed
# and the database is in use), at most 30 s.
wait_geo() {
  local i
  for i in $(seq 150); do
    [ "$(dig +short +time=1 +tries=1 +subnet=203.0.113.0/24 @127.0.0.1 -p "$1" geo.example.test A 2>/dev/null | grep -c '^127\.0\.2\.')" = 2 ] &&
      [ "$(dig +short +time=1 +tries=1 @127.0.0.1 -p "$1" geo.example.test A 2>/dev/null | grep -c '^127\.0\.1\.')" = 2 ] && return 0
    sleep 0.2
  done
  echo "server on port $1 did not answer with both addresses of the client's region" >&2; return 1
}

ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{print $12+$13}'; }
echo "geo.example.test A" > "$WORK/queries.txt"
# ECS 203.0.113.0/24: option 8, family 1, source 24, scope 0.
ECS="8:00011800cb0071"
# measure NAME PID MODE RUN: one closed-loop dnsperf run (4 clients, 100 outstanding each).
measure() {
  local extra=(-e) t0 t1 s0 s1 out qps cores
  [ "$3" = ecs ] && extra=(-E "$ECS")
  t0=$(ticks "$2"); s0=$(date +%s.%N)
  out=$(taskset -c 1 dnsperf -s 127.0.0.1 -p "${PORT[$1]}" -d "$WORK/queries.txt" -l "$secs" -c 4 -q 100 -t 2 "${extra[@]}" 2>/dev/null || true)
  t1=$(ticks "$2"); s1=$(date +%s.%N)
  qps=$(noerror_qps <<< "$out")
  cores=$(awk -v a="$t0" -v b="$t1" -v s="$s0" -v e="$s1" -v hz="$(getconf CLK_TCK)" 'BEGIN {printf "%.2f", (b-a)/hz/(e-s)}')
  echo "run=$4 server=$1 mode=$3 qps=${qps:-0} srv_cpu=$cores qps_per_core=$(awk -v q="${qps:-0}" -v c="$cores" 'BEGIN {if (c<=0) print "NA"; else printf "%.0f", q/c}')" | tee -a "$WORK/results"
}

echo "# bench/geo.sh $(date -u +%FT%TZ) runs=$runs seconds=$secs peers='$peers' load: $(cat /proc/loadavg)"
: > "$WORK/results"
launch_hc
sleep 0.5
for run in $(seq "$runs"); do
  for s in roundhouse $peers; do
    "launch_$s"; pid=$LAST_PID
    if ! wait_geo "${PORT[$s]}"; then tail -5 "$WORK/$s.log" >&2; stop_pid "$pid"; continue; fi
    [ "$run" = 1 ] && echo "# $s: GB subnet -> $(dig +short +subnet=203.0.113.0/24 @127.0.0.1 -p "${PORT[$s]}" geo.example.test A | sort | tr '\n' ' '); no ECS -> $(dig +short @127.0.0.1 -p "${PORT[$s]}" geo.example.test A | sort | tr '\n' ' ')"
    measure "$s" "$pid" ecs "$run"
    measure "$s" "$pid" plain "$run"
    stop_pid "$pid"
  done
done

get() { awk -v r="$1" -v s="$2" -v m="$3" -v k="$4" '{split("",f); for (i=1;i<=NF;i++) {split($i,kv,"="); f[kv[1]]=kv[2]}
        if (f["run"]==r && f["server"]==s && f["mode"]==m) print f[k]}' "$WORK/results"; }
# Table: medians over rounds; the ratios are medians of per-round ratios (roundhouse ÷ this
# server, qps per server core), so drift between rounds cancels out.
med() { printf '%s\n' "$@" | median; }
printf '\n%-11s %9s %12s %9s %12s %14s %14s\n' peer ecs_qps ecs_per_core plain_qps plain_per_core rh_vs_ecs_core rh_vs_plain_core
for s in roundhouse $peers; do
  cols=(); ratios=()
  for m in ecs plain; do
    q=(); p=(); r=()
    for run in $(seq "$runs"); do
      q+=("$(get "$run" "$s" "$m" qps)"); p+=("$(get "$run" "$s" "$m" qps_per_core)")
      r+=("$(ratio "$(get "$run" roundhouse "$m" qps_per_core)" "$(get "$run" "$s" "$m" qps_per_core)")")
    done
    cols+=("$(med "${q[@]}")" "$(med "${p[@]}")"); ratios+=("$(med "${r[@]}")")
    echo "# $s $m: roundhouse ÷ $s per core, per round: ${r[*]}" >&2
  done
  printf '%-11s %9s %12s %9s %12s %14s %14s\n' "$s" "${cols[@]}" "${ratios[@]}"
done
