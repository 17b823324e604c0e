#!/usr/bin/env bash
# Runs the `roundhouse compare` scenarios across the running lab (lab/up.sh): the simulated
# client population in a container on the WAN with one address in each region's /24
# (10.90.N.101), asking the regions' resolvers, against dns-rr (rr.lab.test: six instance
# containers this script starts), lb (us-east's balancer) and gslb (www.lab.test); faults
# go to the lab's containers through the Docker API. Writes report.md, report.json and the
# SVG charts, the format of `roundhouse compare`, to --out (default lab/compare-report).
# Other arguments go to compare (e.g. --scenario region-outage --duration 30s --clients 12).
# Removes what it started when it ends. See docs/lab.md, "Comparing in the lab".
set -euo pipefail
source "$(dirname "$0")/lib.sh"
out=$lab_dir/compare-report
args=()
while [ $# -gt 0 ]; do
  case $1 in
    --out) [ $# -ge 2 ] || die "--out needs a folder"; out=$2; shift 2 ;;
    *) args+=("$1"); shift ;;
  esac
done
docker inspect lab-dns-a >/dev/null 2>&1 || die "the lab is not up (lab/up.sh)"
mkdir -p "$out"
out=$(cd "$out" && pwd)
IMAGE=roundhouse-lab/roundhouse:lab
LABEL=roundhouse-lab.compare=1
# Bounded: 12 clients per setup and 20 s per scenario unless told otherwise (seven
# scenarios, with the waits between them, take about three and a half minutes).
[[ " ${args[*]-} " == *" --clients "* ]] || args+=(--clients 12)
[[ " ${args[*]-} " == *" --duration "* ]] || args+=(--duration 20s)

cleanup() {
  local rc=$?
  # A fault left in place by an interrupted run: thaw the scaling groups' backends.
  for r in "${REGIONS[@]}"; do
    for c in $(docker ps -q --filter "label=roundhouse.group=lab-$r" --filter status=paused); do
      docker unpause "$c" >/dev/null 2>&1 || true
    done
  done
  left=$(docker ps -aq --filter "label=$LABEL")
  [ -z "$left" ] || docker rm -f $left >/dev/null 2>&1 || true
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM
left=$(docker ps -aq --filter "label=$LABEL")
[ -z "$left" ] || docker rm -f $left >/dev/null

# dns-rr's instances: `roundhouse backend` on the WAN, two per region (pool `rr` of
# lab/dns.toml, [dns_rr] of lab/compare.toml).
for r in "${REGIONS[@]}"; do
  n=$(region_number "$r")
  for i in 1 2; do
    docker run -d --name "lab-rr-$r-$i" --label "$LABEL" -e RUST_LOG=warn \
      --network lab-wan --ip "10.90.$n.2$i" "$IMAGE" \
      backend --listen "10.90.$n.2$i:80" --id "lab-rr-$r-$i" --region "$r" >/dev/null
  done
done
# The clients' network namespace: a tools container (it has `ip`) at 10.90.1.101 with the
# other regions' client addresses added (the bridge answers ARP for them), and a foot in
# every region's own network, where `slow-instance` reaches a backend's delay knob.
docker run -d --name lab-compare-net --label "$LABEL" --init --cap-add NET_ADMIN \
  -v "$lab_dir:/lab:ro" --network lab-wan --ip 10.90.1.101 roundhouse-lab/tools:lab \
  sleep infinity >/dev/null
for r in "${REGIONS[@]:1}"; do
  docker exec lab-compare-net ip addr add "10.90.$(region_number "$r").101/16" dev eth0
done
for r in "${REGIONS[@]}"; do docker network connect "lab-$r" lab-compare-net; done
# The lab's inter-region latency for the comparison's own traffic: in each dns-rr instance as
# in every container on the WAN (lab/latency.sh), and in the clients' namespace by source
# address, since it holds one client address of every region.
mode=$(latency_mode)
[ -n "$mode" ] || die "the lab's latency mode is unknown (is the lab up?)"
for r in "${REGIONS[@]}"; do
  for i in 1 2; do LAB_LATENCY=$mode latency_in "lab-rr-$r-$i" "$r" >/dev/null; done
done
docker exec lab-compare-net /lab/latency-clients.sh "$mode" >/dev/null ||
  die "could not add the inter-region latency to the comparison's clients"

say "comparing in the lab: dns-rr (rr.lab.test), lb (10.90.1.10), gslb (www.lab.test)"
# As the calling user (the report is theirs), in the docker socket's group. In the
# background, so that a TERM (a timeout) reaches the trap at once, which removes it.
docker run --rm --name lab-compare --label "$LABEL" --network container:lab-compare-net \
  --user "$(id -u):$(id -g)" --group-add "$(stat -c %g /var/run/docker.sock)" \
  -e RUST_LOG=warn -v "$lab_dir:/lab:ro" -v "$out:/out" \
  -v /var/run/docker.sock:/var/run/docker.sock \
  "$IMAGE" compare --lab /lab/compare.toml --out /out "${args[@]}" &
wait $!
say "report: $out/report.md, $out/report.json"
