#!/bin/sh
# Adds the lab's inter-region latency to this container's traffic (run inside a tools
# container with NET_ADMIN, at its start): packets to another region's WAN /24 leave
# eth0 delayed by the round-trip time between the two regions, so every exchange this
# container starts (DNS queries of a resolver, HTTP of a client) sees the full RTT.
#   us-east <-> eu-west 80 ms, us-east <-> ap-northeast 150 ms, eu-west <-> ap-northeast 200 ms
# Needs the kernel's sch_netem; without it this says "netem unavailable: no added latency"
# and the lab runs without added latency. Usage: netem.sh REGION
region=$1
dev=eth0
rtt() { # the RTT between region $region and the region of WAN /24 number $1
  case "$region:$1" in
    us-east:2 | eu-west:1) echo 80 ;;
    us-east:3 | ap-northeast:1) echo 150 ;;
    eu-west:3 | ap-northeast:2) echo 200 ;;
    *) echo 0 ;;
  esac
}
fail() {
  tc qdisc del dev $dev root 2>/dev/null
  echo "netem unavailable: no added latency ($1)"
  exit 0
}
# Probe: the kernel must have sch_netem (a module or built in).
tc qdisc add dev $dev root netem delay 1ms 2>/dev/null || fail "the kernel has no sch_netem"
tc qdisc del dev $dev root
# Band 4 (no delay) by default; bands 1-3 delay traffic to WAN /24 number 1-3.
tc qdisc replace dev $dev root handle 1: prio bands 4 priomap 3 3 3 3 3 3 3 3 3 3 3 3 3 3 3 3 \
  2>/dev/null || fail "no prio qdisc"
for n in 1 2 3; do
  ms=$(rtt $n)
  [ "$ms" -gt 0 ] || continue
  out=$(tc qdisc add dev $dev parent 1:$n handle $((n + 10)): netem delay ${ms}ms 2>&1) ||
    fail "$out"
  tc filter add dev $dev parent 1: protocol ip prio 1 u32 match ip dst 10.90.$n.0/24 \
    flowid 1:$n || fail "no u32 filter"
  echo "netem: $region -> 10.90.$n.0/24 delayed ${ms} ms"
done
