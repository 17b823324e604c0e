#!/usr/bin/env bash
# Builds the lab's images (cached) and starts the lab: see docs/lab.md.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
docker info >/dev/null 2>&1 || die "no docker daemon"
started=$(now)
"$lab_dir/images.sh" all
bin=$root/target/release/roundhouse
for f in dns region-us-east region-eu-west region-ap-northeast; do
  "$bin" check --config "$lab_dir/$f.toml" >/dev/null || die "lab/$f.toml does not validate"
done
say "starting the lab with $COMPOSE: 2 DNS servers, 3 regions"
# The resolvers start last, once both DNS servers answer: a resolver whose first EDNS
# queries time out (a server still starting) falls back to plain DNS for that server and
# keeps doing so for minutes (unbound's infra cache), so it would send no Client Subnet.
compose up -d --no-build dns-a dns-b client-us-east 2>&1 | sed 's/^/  /'
for dns in 10.90.1.5 10.90.2.5; do
  deadline=$(($(date +%s) + 30))
  until client us-east dig +short +time=1 +tries=1 +subnet=10.90.1.0/24 @"$dns" lab.test SOA | grep -q .; do
    [ "$(date +%s)" -lt "$deadline" ] || { compose logs --tail 20 >&2; die "DNS server $dns does not answer within 30 s"; }
    sleep 0.5
  done
done
compose up -d --no-build 2>&1 | sed 's/^/  /'
# Every client asks its resolver until www.lab.test answers with its own region's balancer
# (the first backend launches and health checks take a few seconds; until then the DNS
# servers answer with another region, and the resolvers cache that for the 5 s TTL).
for r in "${REGIONS[@]}"; do
  deadline=$(($(date +%s) + 90))
  until [ "$(answer "$r")" = "10.90.$(region_number "$r").10" ]; do
    [ "$(date +%s)" -lt "$deadline" ] || { compose logs --tail 20 >&2; die "$r: www.lab.test is not $r's balancer within 90 s"; }
    sleep 1
  done
done
if netem_active; then
  say "netem: inter-region latency added (us-east<->eu-west 80 ms, us-east<->ap-northeast 150 ms, eu-west<->ap-northeast 200 ms)"
else
  say "$(docker logs lab-client-us-east 2>&1 | grep -m1 '^netem unavailable')"
fi
for r in "${REGIONS[@]}"; do
  say "$r: client 10.90.$(region_number "$r").100 gets www.lab.test = $(answer "$r"), backends: $(backends "$r" | wc -l)"
done
say "up in $(since "$started") s"
