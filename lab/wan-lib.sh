# Shared by lab/latency.sh and lab/latency-clients.sh (POSIX sh, sourced inside containers,
# where the lab folder is /lab).

# The RTT (ms) between WAN /24 numbers $1 and $2, from lab/rtt-matrix.txt.
rtt() {
  awk -v a="$1" -v b="$2" '!/^#/ && NF == 3 && (($1 == a && $2 == b) || ($1 == b && $2 == a)) {
    print $3; exit }' /lab/rtt-matrix.txt
}

# The interface with this container's WAN address (a balancer also has its region's network).
wan_dev() {
  dev=$(ip -o -4 addr show to 10.90.0.0/16 | awk '{ print $2; exit }')
  [ -n "$dev" ] || { echo "latency: no address in 10.90.0.0/16" >&2; exit 1; }
}
