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
# Inter-region latency (docs/lab.md): netem where the kernel has it, else the WAN router.
# LAB_LATENCY=netem or =router asks for one of them.
netem_works() {
  docker run --rm --network none --cap-add NET_ADMIN roundhouse-lab/tools:lab \
    tc qdisc add dev lo root netem delay 1ms >/dev/null 2>&1
}
why="LAB_LATENCY=${LAB_LATENCY:-}"
case ${LAB_LATENCY:-auto} in
  auto)
    if netem_works; then LAB_LATENCY=netem why="the kernel has sch_netem"
    elif [ -c /dev/net/tun ]; then LAB_LATENCY=router why="the kernel has no sch_netem"
    else die "no way to add the inter-region latency: the kernel has no sch_netem and there is no /dev/net/tun"; fi ;;
  netem) netem_works || die "LAB_LATENCY=netem, but the kernel has no sch_netem" ;;
  router) [ -c /dev/net/tun ] || die "LAB_LATENCY=router, but there is no /dev/net/tun" ;;
  *) die "LAB_LATENCY is '$LAB_LATENCY': want netem or router (unset: netem where the kernel has it)" ;;
esac
export LAB_LATENCY
if [ "$LAB_LATENCY" = netem ]; then
  say "inter-region latency: netem, half the RTT on each side ($why)"
else
  say "inter-region latency: the WAN router lab-wan-router (10.90.0.2), a userspace delay line ($why)"
fi


say "starting the lab with $COMPOSE: 2 DNS servers, 3 regions"
if [ "$LAB_LATENCY" = router ]; then
  compose up -d --no-build wan 2>&1 | sed 's/^/  /'
  deadline=$(($(date +%s) + 20))
  until docker logs lab-wan-router 2>&1 | grep -q '^wan: ready'; do
    [ "$(date +%s)" -lt "$deadline" ] || { docker logs lab-wan-router >&2; die "the WAN router is not ready within 20 s"; }
    sleep 0.5
  done
fi
# The roundhouse containers start in two steps, each followed by lab/latency.sh in their
# network namespaces: first the balancers (and the clients, which run it themselves), then
# the DNS servers. The balancers measure the handshake RTT of every connection, the DNS
# servers' health checks included, and report it to dns-a: a check sent before its DNS
# server's routes are set crosses the WAN one way (half the RTT), never not at all.
latency_in_all() { # container:region...
  local out c p failed=
  out=$(mktemp -d)
  local pids=()
  for c in "$@"; do
    latency_in "lab-${c%%:*}" "${c#*:}" >"$out/${c%%:*}" 2>&1 &
    pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p" || failed=1; done
  [ -z "$failed" ] || { tail -n +1 "$out"/* >&2; rm -rf "$out"; die "lab/latency.sh failed in a roundhouse container"; }
  rm -rf "$out"
}
compose up -d --no-build balancer-us-east balancer-eu-west balancer-ap-northeast \
  client-us-east client-eu-west client-ap-northeast 2>&1 | sed 's/^/  /'
latency_in_all balancer-us-east:us-east balancer-eu-west:eu-west balancer-ap-northeast:ap-northeast
compose up -d --no-build dns-a dns-b 2>&1 | sed 's/^/  /'
latency_in_all dns-a:us-east dns-b:eu-west
# The resolvers start last, once both DNS servers answer: a resolver whose first EDNS
# queries time out (a server still starting) falls back to plain DNS for that server and
# keeps doing so for minutes (unbound's infra cache), so it would send no Client Subnet.
for dns in 10.90.1.5 10.90.2.5; do
  deadline=$(($(date +%s) + 30))
  until client us-east dig +short +time=1 +tries=1 +subnet=10.90.1.0/24 @"$dns" lab.test SOA | grep -q .; do
    [ "$(date +%s)" -lt "$deadline" ] || { compose logs --tail 20 >&2; die "DNS server $dns does not answer within 30 s"; }
    sleep 0.5
  done
done
compose up -d --no-build resolver-us-east resolver-eu-west resolver-ap-northeast 2>&1 | sed 's/^/  /'
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
# The tools containers ran lab/latency.sh in their command: one line per other region.
for c in client resolver; do
  for r in "${REGIONS[@]}"; do
    n=$(docker logs "lab-$c-$r" 2>&1 | grep -c "^latency: $LAB_LATENCY: " || true)
    [ "$n" -eq 2 ] || { docker logs "lab-$c-$r" >&2; die "lab-$c-$r: lab/latency.sh did not set up $LAB_LATENCY"; }
  done
done
"$lab_dir/rtt.sh" --check
for r in "${REGIONS[@]}"; do
  say "$r: client 10.90.$(region_number "$r").100 gets www.lab.test = $(answer "$r"), backends: $(backends "$r" | wc -l)"
done
say "up in $(since "$started") s"
