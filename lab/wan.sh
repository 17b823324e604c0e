#!/bin/sh
# The lab's WAN router (the `wan` container, 10.90.0.2 on lab-wan), used where the kernel
# has no sch_netem (docs/lab.md, "Latency between regions"). Every container on the WAN
# routes the other regions' /24s via this address (lab/latency.sh), so each packet between
# two regions comes in here on the WAN interface. Policy routing sends every such packet
# that is not for this host into the TUN device wan0; lab/wan-delay.py reads it there,
# holds it for half the RTT between the two regions and writes it back; coming out of wan0
# it follows the main table, out the WAN interface to its destination (on-link).
# Needs NET_ADMIN, /dev/net/tun, ip_forward=1, rp_filter off (a packet from wan0 has a
# source that routes out the WAN interface) and no ICMP redirects (compose.yml sets them).
set -eu
dev=$(ip -o -4 addr show to 10.90.0.0/16 | awk '{ print $2; exit }')
[ -n "$dev" ] || { echo "wan: no address in 10.90.0.0/16" >&2; exit 1; }
[ "$(cat /proc/sys/net/ipv4/ip_forward)" = 1 ] || { echo "wan: ip_forward is off" >&2; exit 1; }
ip tuntap add dev wan0 mode tun
ip link set wan0 up
# Rule 0 (the local table) still delivers what is addressed to this host.
ip route add default dev wan0 table 100
ip rule add iif "$dev" lookup 100 pref 100
exec python3 /lab/wan-delay.py wan0 /lab/rtt-matrix.txt
