#!/bin/sh
# The lab's inter-region latency in lab/compare.sh's client namespace, which holds a client
# address of every region (10.90.N.101): what leaves from region M's address for region N's
# /24 takes the RTT between M and N (lab/rtt-matrix.txt), half each way as lab/latency.sh
# gives every other container on the WAN, but chosen by source address as well.
# Usage: latency-clients.sh router|netem   (run in the namespace, with NET_ADMIN)
set -eu
mode=$1
router=10.90.0.2
. /lab/wan-lib.sh
wan_dev
case $mode in
  router)
    # One routing table per source address: the other regions' /24s via the router.
    for m in 1 2 3; do
      ip rule add from 10.90.$m.101 lookup $((100 + m))
      for n in 1 2 3; do
        [ "$n" != "$m" ] || continue
        ip route replace 10.90.$n.0/24 via $router dev "$dev" table $((100 + m))
        echo "latency: router: 10.90.$m.101 -> 10.90.$n.0/24 via $router (RTT $(rtt $m $n) ms)"
      done
    done
    ;;
  netem)
    # One band per pair of regions (six), matched on source address and destination /24.
    tc qdisc replace dev "$dev" root handle 1: prio bands 7 priomap 6 6 6 6 6 6 6 6 6 6 6 6 6 6 6 6
    band=0
    for m in 1 2 3; do
      for n in 1 2 3; do
        [ "$n" != "$m" ] || continue
        band=$((band + 1))
        half=$(awk -v ms="$(rtt $m $n)" 'BEGIN { printf "%g", ms / 2 }')
        tc qdisc add dev "$dev" parent 1:$band handle $((band + 10)): netem delay "${half}ms"
        tc filter add dev "$dev" parent 1: protocol ip prio 1 u32 \
          match ip src 10.90.$m.101/32 match ip dst 10.90.$n.0/24 flowid 1:$band
        echo "latency: netem: 10.90.$m.101 -> 10.90.$n.0/24 delayed ${half} ms each way"
      done
    done
    ;;
  *) echo "latency: mode is '$mode', want router or netem" >&2; exit 2 ;;
esac
