#!/usr/bin/env bash
# Every side-by-side benchmark in one run, summarised in one table: each measure, roundhouse,
# the peer, and the ratio (higher is better for throughput; for p99 and memory, lower is
# better, and the ratio is roundhouse ÷ peer as printed). Runs bench/dns.sh --static (knotd,
# NSD), bench/dns.sh (gdnsd DYNA, PowerDNS LUA), bench/geo.sh (gdnsd geoip, PowerDNS LUA with
# its geoip backend), bench/http.sh (HAProxy, nginx), bench/tcp.sh
# (HAProxy mode tcp) and bench/memory.sh (knotd), keeping each script's full output in the
# work directory it names.
# usage: bench/all.sh [--runs N] [--seconds N] [--records N]
# Needs what those scripts need (see each one) and ../shared/bench.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
[ -d "$root/../shared/bench" ] || { echo "skipped: ../shared/bench is absent"; exit 0; }
runs=3; secs=10; records=1000000
while [ $# -gt 0 ]; do
  case $1 in
    --runs) runs=$2; shift 2;; --seconds) secs=$2; shift 2;; --records) records=$2; shift 2;;
    *) echo "unknown argument $1" >&2; exit 2;;
  esac
done
out=$(mktemp -d)
echo "load before: $(cat /proc/loadavg); full outputs in $out"
"$root/bench/dns.sh" --static --runs "$runs" --seconds "$secs" --peers "knot nsd" > "$out/dns-static.txt" 2>&1
"$root/bench/dns.sh" --runs "$runs" --seconds "$secs" --peers "gdnsd pdns" > "$out/dns-pool.txt" 2>&1
"$root/bench/geo.sh" --runs "$runs" --seconds "$secs" > "$out/dns-geo.txt" 2>&1
"$root/bench/http.sh" --runs "$runs" --seconds "$secs" > "$out/http.txt" 2>&1
"$root/bench/tcp.sh" --runs "$runs" --seconds "$secs" > "$out/tcp.txt" 2>&1
"$root/bench/memory.sh" "$records" > "$out/memory.txt" 2>&1 || true

# col FILE ROW COLUMN: the value in the table row whose first field is ROW, under the header
# field COLUMN (the last table in FILE whose header starts with "peer").
col() {
  awk -v row="$2" -v name="$3" '
    $1 == "peer" { for (i = 1; i <= NF; i++) h[$i] = i; next }
    $1 == row && (name in h) { v = $(h[name]) }
    END { print (v == "" ? "NA" : v) }' "$1"
}
cand() { awk '$1 ~ /^cand:/ { print $1; exit }' "$1"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "NA" || b == "NA" || b == 0) print "NA"; else printf "%.2f", a / b }'; }
row() { printf '%-44s %12s %12s %-22s %7s\n' "$1" "$2" "$3" "$4" "$(ratio "$2" "$3")"; }

printf '\n%-44s %12s %12s %-22s %7s\n' measure roundhouse peer "(peer)" ratio
s=$out/dns-static.txt; c=$(cand "$s")
row "DNS static zone, qps per server core" "$(col "$s" "$c" qps_per_core)" "$(col "$s" knot qps_per_core)" knotd
row "DNS static zone, qps per server core" "$(col "$s" "$c" qps_per_core)" "$(col "$s" nsd qps_per_core)" NSD
row "DNS static zone, p99 ms" "$(col "$s" "$c" p99_ms)" "$(col "$s" knot p99_ms)" knotd
p=$out/dns-pool.txt; c=$(cand "$p")
row "DNS pool answers, qps per server core" "$(col "$p" "$c" qps_per_core)" "$(col "$p" gdnsd qps_per_core)" "gdnsd DYNA"
row "DNS pool answers, qps" "$(col "$p" "$c" qps)" "$(col "$p" pdns qps)" "PowerDNS LUA"
g=$out/dns-geo.txt
row "DNS geo pool + ECS, qps per server core" "$(col "$g" roundhouse ecs_per_core)" "$(col "$g" gdnsd ecs_per_core)" "gdnsd geoip"
row "DNS geo pool, no ECS, qps per server core" "$(col "$g" roundhouse plain_per_core)" "$(col "$g" gdnsd plain_per_core)" "gdnsd geoip"
row "DNS geo pool + ECS, qps" "$(col "$g" roundhouse ecs_qps)" "$(col "$g" pdns ecs_qps)" "PowerDNS LUA geoip"
h=$out/http.txt; c=$(cand "$h")
row "HTTP balancer, requests/s" "$(col "$h" "$c" req_per_s)" "$(col "$h" haproxy req_per_s)" HAProxy
row "HTTP balancer, p99 ms" "$(col "$h" "$c" p99_ms)" "$(col "$h" haproxy p99_ms)" HAProxy
row "HTTP balancer, requests/s" "$(col "$h" "$c" req_per_s)" "$(col "$h" nginx req_per_s)" nginx
t=$out/tcp.txt
row "L4 TCP bulk (iperf3), MB/s" "$(col "$t" roundhouse bulk_MBps)" "$(col "$t" haproxy bulk_MBps)" "HAProxy mode tcp"
row "L4 TCP keep-alive, requests/s" "$(col "$t" roundhouse ka_req_per_s)" "$(col "$t" haproxy ka_req_per_s)" "HAProxy mode tcp"
row "L4 TCP keep-alive, p99 ms" "$(col "$t" roundhouse ka_p99_ms)" "$(col "$t" haproxy ka_p99_ms)" "HAProxy mode tcp"
row "L4 TCP new connection each, requests/s" "$(col "$t" roundhouse new_req_per_s)" "$(col "$t" haproxy new_req_per_s)" "HAProxy mode tcp"
m=$out/memory.txt
mem() { awk -v who="$1" -v what="$2" '/^generated/ && $0 ~ who {
          for (i = 1; i <= NF; i++) { if (what == "load" && $i == "load") v = $(i+1); if (what == "rss" && $i == "RSS") v = $(i+1) } }
        END { print (v == "" ? "NA" : v) }' "$m"; }
row "zone of $records records, load s" "$(mem roundhouse load)" "$(mem knotd load)" knotd
row "zone of $records records, RSS KiB" "$(mem roundhouse rss)" "$(mem knotd rss)" knotd
echo "load after: $(cat /proc/loadavg)"
