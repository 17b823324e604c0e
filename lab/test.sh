#!/usr/bin/env bash
# Checks the running lab (lab/up.sh) from its client containers, with dig and curl:
#   1. each region's client is answered with, and served by, its own region (also through
#      another region's resolver: ECS); the round-trip times between regions are the lab's
#      (lab/rtt.sh --check); dns-a ranks by the RTTs the balancers measure and report;
#   2. a region whose backends stop sends its clients to the next-best region within the
#      bound its health checks and TTL imply, and takes them back when they return;
#   3. the scaler adds backend containers under load from the client and removes them after;
#   4. an edit of lab/zones/lab.test.zone on the host changes the answers, no restart.
# Prints what it measured; exits non-zero at the first failed check. See docs/lab.md.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
docker inspect lab-client-us-east >/dev/null 2>&1 || die "the lab is not up (lab/up.sh)"
ok() { printf 'ok: %s\n' "$*"; }
wan() { echo "10.90.$(region_number "$1").10"; }

# Bounds, from lab/dns.toml and lab/region-*.toml: a check every 1 s (+10 % jitter), 2
# failures to go down and 2 passes to come up; the balancers' checks of their backends time
# out after 500 ms, the DNS servers' checks of the balancers (across the WAN: two round trips,
# up to 400 ms) after 800 ms; www.lab.test TTL 5 s.
INTERVAL=1.1 BACKEND_TIMEOUT=0.5 BALANCER_TIMEOUT=0.8 FALL=2 RISE=2 TTL=5
# Backends down -> the balancer's /health says 503 -> the DNS servers take the balancer out
# -> the resolver's cached answer expires (its next query crosses the WAN to dns-b at most,
# 80 ms: within the 1 s left for the polling). Each detection: (FALL + 1) intervals + the
# probe's time (at most its timeout).
DOWN_BOUND=$(awk -v i=$INTERVAL -v tb=$BACKEND_TIMEOUT -v tl=$BALANCER_TIMEOUT -v f=$FALL -v ttl=$TTL \
  'BEGIN { printf "%.1f", (f + 1) * i + tb + (f + 1) * i + tl + ttl + 1 }')
UP_BOUND=$(awk -v i=$INTERVAL -v tl=$BALANCER_TIMEOUT -v r=$RISE -v ttl=$TTL \
  'BEGIN { printf "%.1f", 2 * (r + 1) * i + tl + ttl + 1 }')

# Waits until `$2` (a shell command) prints something matching $3; at most $1 seconds.
# Prints the seconds it took; returns 1 on timeout.
wait_for() {
  local bound=$1 cmd=$2 want=$3 t0 got
  t0=$(now)
  while :; do
    got=$(eval "$cmd" 2>/dev/null || true)
    if [[ $got =~ $want ]]; then since "$t0"; return 0; fi
    if awk -v a="$(since "$t0")" -v b="$bound" 'BEGIN { exit !(a > b) }'; then
      echo "last: $got" >&2; return 1
    fi
    sleep 0.25
  done
}

echo "== 1. each region's client is answered with its own region"
for r in "${REGIONS[@]}"; do
  got=$(answer "$r")
  [ "$got" = "$(wan "$r")" ] || die "$r: www.lab.test = '$got', want $(wan "$r")"
  body=$(client "$r" curl -s --max-time 5 http://www.lab.test/)
  [[ $body == *"region=$r "* ]] || die "$r: served by '$body'"
  ok "$r client: www.lab.test = $got; served by: $body"
done
# ECS: the us-east client asks eu-west's resolver; the DNS servers see the client's /24 in
# the EDNS Client Subnet option, not the resolver's address, and still answer us-east.
got=$(client us-east dig +short +time=2 www.lab.test A @10.90.2.53 | head -1)
if [ "$got" != "$(wan us-east)" ]; then
  direct=$(client us-east dig +short +time=2 +subnet=10.90.1.0/24 www.lab.test A @10.90.2.5 | head -1)
  docker logs --tail 20 lab-resolver-eu-west >&2 || true
  die "via eu-west's resolver the us-east client got '$got' (asked directly with ECS 10.90.1.0/24, dns-b answers '$direct')"
fi
ok "ECS: the us-east client asking eu-west's resolver (10.90.2.53) gets $got"
# The round-trip times the lab adds (lab/up.sh printed the matrix too).
mode=$(latency_mode)
"$lab_dir/rtt.sh" --check | sed 's/^lab: /  /'
# TCP connect time from the us-east client to each balancer: one round trip.
times=
for r in "${REGIONS[@]}"; do
  ms=$(client us-east curl -s -o /dev/null --max-time 5 -w '%{time_connect}' "http://$(wan "$r")/health" |
    awk '{ printf "%.1f", $1 * 1000 }')
  times="$times $r $ms ms,"
  want=$(rtt_ms us-east "$r")
  awk -v ms="$ms" -v w="$want" 'BEGIN { exit !(ms >= 0.9 * w) }' ||
    die "us-east -> $r connect took $ms ms, the lab adds $want ms ($mode)"
done
ok "us-east client connect times ($mode):${times%,}"
# The balancers report the handshake RTTs they measure to dns-a (every 5 s), which ranks by
# them: every region's reports are taken and name at least one client network.
metrics=$(client us-east curl -s --max-time 5 http://10.90.1.5:9090/metrics)
measured=
for r in "${REGIONS[@]}"; do
  took=$(awk -v r="$r" '$1 == "roundhouse_latency_reports_total{region=\"" r "\",result=\"accepted\"}" { print $2 }' <<<"$metrics")
  nets=$(awk -v r="$r" '$1 == "roundhouse_latency_measured_networks{region=\"" r "\"}" { print $2 }' <<<"$metrics")
  [ "${took:-0}" -ge 1 ] && [ "${nets:-0}" -ge 1 ] ||
    die "dns-a has no measured latency from $r's balancer (reports accepted: ${took:-0}, networks: ${nets:-0})"
  measured="$measured $r ${nets} (${took} reports),"
  # Asked directly for the region's /24 (ECS), dns-a answers with that region's balancer.
  got=$(client us-east dig +short +time=2 +tries=1 +subnet=10.90.$(region_number "$r").0/24 @10.90.1.5 www.lab.test A | head -1)
  [ "$got" = "$(wan "$r")" ] || die "dns-a answers $r's /24 with '$got', want $(wan "$r")"
done
ok "dns-a ranks by the balancers' measured RTTs (client networks per region:${measured%,}); each region's /24 gets its own balancer"

echo "== 2. failover: us-east's backends stop, its clients go to the next-best region (eu-west)"
paused=$(backends us-east)
[ -n "$paused" ] || die "us-east has no backend container"
# `docker pause` freezes them: the health checks time out, the scaler still counts them as
# running (health_check_type = process), so it does not replace them meanwhile.
docker pause $paused >/dev/null
t=$(wait_for "$DOWN_BOUND" 'answer us-east' "^$(wan eu-west)\$") || {
  docker unpause $paused >/dev/null; die "us-east clients not moved to eu-west within $DOWN_BOUND s"; }
body=$(client us-east curl -s --max-time 5 http://www.lab.test/)
[[ $body == *"region=eu-west "* ]] || { docker unpause $paused >/dev/null; die "after failover served by '$body'"; }
ok "us-east clients moved to eu-west in $t s (bound $DOWN_BOUND s: 3 checks x 1.1 s + 0.5 s timeout + 3 checks x 1.1 s + 0.8 s timeout + TTL 5 s + 1 s); served by: $body"
docker unpause $paused >/dev/null
t=$(wait_for "$UP_BOUND" 'answer us-east' "^$(wan us-east)\$") || die "us-east clients not back within $UP_BOUND s"
ok "us-east backends back: clients back in us-east in $t s (bound $UP_BOUND s: 2 x 3 checks x 1.1 s + 0.8 s + TTL 5 s + 1 s)"

echo "== 3. the scaler adds backends under load and removes them afterwards"
before=$(backends us-east | wc -l)
[ "$before" -eq 1 ] || die "us-east has $before backends before the load, want 1"
# Bounded load: two curl loops on /work?ms=10 (10 ms of CPU each) for at most 40 s.
client us-east rm -f /tmp/stop-load
docker exec -d lab-client-us-east sh -c '
  end=$(($(date +%s) + 40))
  for w in 1 2; do
    (while [ "$(date +%s)" -lt $end ] && [ ! -e /tmp/stop-load ]; do
       curl -s -o /dev/null --max-time 5 "http://www.lab.test/work?ms=10"; done) &
  done; wait'
t=$(wait_for 40 'backends us-east | wc -l' '^[23]$') || {
  client us-east touch /tmp/stop-load; die "no scale-out within 40 s of load"; }
ok "scale-out under load: $(backends us-east | wc -l) backends after $t s (target 20 requests/s per backend)"
sleep 5
peak=$(backends us-east | wc -l)
client us-east touch /tmp/stop-load
# Scale-in: 20 s window + a 5 s period + draining (5 s) + stop.
t=$(wait_for 60 'backends us-east | wc -l' '^1$') || die "backends not removed within 60 s after the load"
ok "scale-in after the load: $peak -> 1 backend in $t s"
curl_status=$(client us-east curl -s --max-time 5 http://10.90.1.10:9090/v1/scaling-groups |
  grep -o '"description":"[^"]*"' | head -4 | sed 's/^/    /')
printf '  latest activities of lab-us-east:\n%s\n' "$curl_status"

echo "== 4. editing the zone file on the host changes the answers without a restart"
zone=$lab_dir/zones/lab.test.zone
cp "$zone" "$zone.orig"
restore() { if [ -f "$zone.orig" ]; then mv "$zone.orig" "$zone"; fi; }
trap restore EXIT
# The resolver caches the old text first (TTL 5 s).
client us-east dig +short motd.lab.test TXT | grep -q v1 || die "motd is not v1 before the edit"
sed -i -e 's/"lab zone v1"/"lab zone v2"/' -e 's/2026112701 ; serial/2026112702 ; serial/' "$zone"
for dns in 10.90.1.5 10.90.2.5; do
  t=$(wait_for 10 "client us-east dig +short motd.lab.test TXT @$dns" 'v2') ||
    die "$dns still answers the old motd after 10 s"
  ok "authoritative $dns answers the edited motd after $t s"
done
t=$(wait_for 10 'client us-east dig +short motd.lab.test TXT' 'v2') || die "resolver still has the old motd"
ok "the us-east resolver, which had cached v1, answers the edited motd after $t s (TTL 5 s)"
restore
t=$(wait_for 10 'client us-east dig +short motd.lab.test TXT @10.90.1.5' 'v1') || die "the restored zone is not served"
ok "zone file restored (served again after $t s)"
echo "lab: all checks passed"
