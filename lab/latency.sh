#!/bin/sh
# Gives this container's WAN traffic the lab's inter-region latency (docs/lab.md, "Latency
# between regions"): whatever it exchanges with another region's /24 takes the RTT between
# the two regions (lab/rtt-matrix.txt), half on the way there and half on the way back.
# Runs in the network namespace of every container on the WAN, with NET_ADMIN: the tools
# containers (clients, resolvers) run it at start; lab/up.sh runs it for the roundhouse
# containers (FROM scratch: no shell) in a short-lived tools container that shares their
# network namespace. Traffic inside a region is left alone.
#
# Usage: latency.sh REGION, with LAB_LATENCY (lab/up.sh chooses it and passes it on):
#   router  routes to the other regions' /24s go via the WAN router 10.90.0.2 (lab/wan.sh),
#           which holds each packet for half the RTT
#   netem   packets to the other regions' /24s leave with a netem delay of half the RTT
#           (needs the kernel's sch_netem)
# Prints one line per other region; exits non-zero when it cannot do what it was asked.
set -eu
region=$1
mode=${LAB_LATENCY:-router}
router=10.90.0.2
case $region in us-east) me=1 ;; eu-west) me=2 ;; ap-northeast) me=3 ;; *)
  echo "latency: unknown region '$region'" >&2; exit 2 ;; esac
. /lab/wan-lib.sh
wan_dev

case $mode in
  router)
    for n in 1 2 3; do
      [ "$n" != "$me" ] || continue
      ip route replace 10.90.$n.0/24 via $router dev "$dev"
      echo "latency: router: $region -> 10.90.$n.0/24 via $router (RTT $(rtt $me $n) ms)"
    done
    ;;
  netem)
    # Band 4 (no delay) by default; bands 1-3 delay traffic to WAN /24 number 1-3.
    tc qdisc replace dev "$dev" root handle 1: prio bands 4 priomap 3 3 3 3 3 3 3 3 3 3 3 3 3 3 3 3
    for n in 1 2 3; do
      [ "$n" != "$me" ] || continue
      ms=$(rtt $me $n)
      half=$(awk -v ms="$ms" 'BEGIN { printf "%g", ms / 2 }')
      tc qdisc add dev "$dev" parent 1:$n handle $((n + 10)): netem delay "${half}ms"
      tc filter add dev "$dev" parent 1: protocol ip prio 1 u32 match ip dst 10.90.$n.0/24 flowid 1:$n
      echo "latency: netem: $region -> 10.90.$n.0/24 delayed ${half} ms each way (RTT $ms ms)"
    done
    ;;
  *) echo "latency: LAB_LATENCY is '$mode', want router or netem" >&2; exit 2 ;;
esac
