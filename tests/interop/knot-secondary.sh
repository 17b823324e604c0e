#!/usr/bin/env bash
# Zone transfer interop: roundhouse as primary, knotd as a secondary that follows edits.
#  1. roundhouse serves example.test, allows transfers to 127.0.0.1 and notifies knotd;
#  2. knotd (secondary) transfers the zone and answers for it;
#  3. an edit to the zone file (serial bumped) reaches knotd through NOTIFY + transfer.
# Needs knotd and dig (Debian: knot, bind9-dnsutils). Uses loopback only.
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
bin=${ROUNDHOUSE_BIN:-$here/target/release/roundhouse}
command -v knotd >/dev/null || { echo "skipped: knotd not installed"; exit 0; }
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
pport=$(free_port); kport=$(free_port)

mkdir -p "$work/zones" "$work/knot"
zone() { # serial, www address
  printf '$TTL 60\n@ SOA ns1 hostmaster %s 3600 600 86400 60\n@ NS ns1\nns1 A 127.0.0.1\nwww A %s\n' "$1" "$2"
}
zone 1 192.0.2.1 > "$work/zones/example.test.zone"
cat > "$work/roundhouse.toml" <<TOML
[dns]
listen = ["127.0.0.1:$pport"]
zones_dir = "zones"
[dns.transfer]
allow = ["127.0.0.1"]
notify = ["127.0.0.1:$kport"]
TOML
cat > "$work/knot/knot.conf" <<KNOT
server:
    rundir: "$work/knot"
    listen: 127.0.0.1@$kport
database:
    storage: "$work/knot"
log:
  - target: stderr
    any: info
remote:
  - id: primary
    address: 127.0.0.1@$pport
acl:
  - id: notify_from_primary
    address: 127.0.0.1
    action: notify
template:
  - id: default
    storage: "$work/knot"
    zonefile-load: none
    journal-content: none
zone:
  - domain: example.test
    master: primary
    acl: notify_from_primary
KNOT

"$bin" serve --config "$work/roundhouse.toml" 2> "$work/roundhouse.log" &
pids+=($!)
knotd -c "$work/knot/knot.conf" 2> "$work/knot.log" &
pids+=($!)

wait_for() { # what, expected, command...
  local what=$1 want=$2; shift 2
  local start=$EPOCHREALTIME
  for _ in $(seq 1 150); do
    got=$("$@" 2>/dev/null || true)
    if [ "$got" = "$want" ]; then
      awk -v a="$start" -v b="$EPOCHREALTIME" -v w="$what" 'BEGIN { printf "ok: %s (%.1f s)\n", w, b - a }'
      return 0
    fi
    sleep 0.2
  done
  echo "FAILED: $what: wanted '$want', got '$got'"
  echo "--- roundhouse log"; cat "$work/roundhouse.log"; echo "--- knot log"; cat "$work/knot.log"
  exit 1
}
q() { dig +short +norec +time=1 +tries=1 @127.0.0.1 -p "$1" www.example.test A; }
wait_for "roundhouse serves the zone" 192.0.2.1 q "$pport"
wait_for "knotd transferred the zone" 192.0.2.1 q "$kport"
zone 2 192.0.2.2 > "$work/zones/example.test.zone.tmp"
mv "$work/zones/example.test.zone.tmp" "$work/zones/example.test.zone"
wait_for "roundhouse serves the edit" 192.0.2.2 q "$pport"
wait_for "knotd followed the edit (NOTIFY + transfer)" 192.0.2.2 q "$kport"
grep -q "notify acknowledged" "$work/roundhouse.log" || { echo "FAILED: no NOTIFY acknowledgement logged"; cat "$work/roundhouse.log"; exit 1; }
echo "knot secondary interop: passed"
