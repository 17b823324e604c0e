#!/usr/bin/env bash
# Load time and memory (RSS) for big zones, roundhouse next to knotd:
#  - the largest zone of ../shared/testdata/zones/valid (if present),
#  - a generated zone with N records (default 1,000,000: A, AAAA, MX, TXT, CNAME mix).
# Load time = from process start until the zone answers a query for its last name.
# usage: bench/memory.sh [N]        Needs: knot, bind9-dnsutils.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
n=${1:-1000000}
cargo build --release --manifest-path "$root/Cargo.toml" >/dev/null 2>&1
work=$(mktemp -d)
pids=()
# At exit, stop the servers still running (a stopped one must not fail the script).
trap 'for p in "${pids[@]}"; do if kill -0 "$p" 2>/dev/null; then kill "$p" || true; fi; done; rm -rf "$work"' EXIT

gen() { # N FILE: generated zone big.test. with N records
  python3 - "$1" "$2" <<'PY'
import sys
n, path = int(sys.argv[1]), sys.argv[2]
with open(path, "w") as f:
    f.write("$ORIGIN big.test.\n$TTL 300\n@ SOA ns1 hostmaster 1 3600 600 86400 60\n@ NS ns1\nns1 A 10.0.0.1\n")
    kinds = ["A 10.{a}.{b}.{c}", "AAAA 2001:db8::{h:x}:{l:x}", "MX 10 mail{i}", "TXT \"record {i}\"", "CNAME host{j}"]
    for i in range(n - 3):
        k = kinds[i % 5].format(a=(i >> 16) & 255, b=(i >> 8) & 255, c=i & 255, h=i >> 16, l=i & 0xFFFF, i=i, j=max(i - 5, 0))
        f.write(f"host{i} {k}\n")
PY
}

now() { date +%s.%N; }
wait_name() { # PORT NAME TYPE
  for _ in $(seq 6000); do
    dig +short +time=1 +tries=1 @127.0.0.1 -p "$1" "$2" "$3" 2>/dev/null | grep -q . && return 0
    sleep 0.05
  done
  return 1
}
rss() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }

measure() { # LABEL FILE ORIGIN LASTNAME LASTTYPE
  local label=$1 file=$2 origin=$3 last=$4 type=$5
  printf '%s\t%s\n' "$file" "$origin" > "$work/list"
  local t0 pid t1
  t0=$(now)
  # Started directly and polled with dig like knotd below (tests/interop/launch.sh, which
  # starts it for the oracle, polls with a Python process per try: too coarse a clock here).
  mkdir -p "$work/rh-$label"
  printf '[dns]\nlisten = ["127.0.0.1:15481"]\nzones_dir = ""\n[[dns.zone]]\norigin = "%s"\nfile = "%s"\n' \
    "$origin" "$file" > "$work/rh-$label/roundhouse.toml"
  "$root/target/release/roundhouse" serve --config "$work/rh-$label/roundhouse.toml" \
    > "$work/rh-$label/log" 2>&1 & pid=$!
  pids+=("$pid")
  wait_name 15481 "$last" "$type"; t1=$(now)
  printf '%-28s roundhouse  load %6.2f s  RSS %8d KiB\n' "$label" "$(echo "$t1 - $t0" | awk '{print $1 - $3}')" "$(rss "$pid")"
  kill "$pid"; wait "$pid" 2>/dev/null || true
  if command -v knotd >/dev/null; then
    t0=$(now)
    pid=$("$root/../shared/testdata/oracle/serve_knotd.sh" "$work/list" 15482 "$work/knot-$label" 2>/dev/null | tail -1) || true
    if [ -z "$pid" ]; then
      cat > "$work/knot.conf" <<KNOT
server:
    listen: 127.0.0.1@15482
    rundir: "$work"
database:
    storage: "$work/knotdb-$label"
template:
  - id: default
    semantic-checks: off
    zonefile-sync: -1
    journal-content: none
zone:
  - domain: "$origin"
    file: "$file"
KNOT
      knotd -c "$work/knot.conf" 2> "$work/knotd.log" & pid=$!
    fi
    pids+=("$pid")
    wait_name 15482 "$last" "$type"; t1=$(now)
    printf '%-28s knotd       load %6.2f s  RSS %8d KiB\n' "$label" "$(echo "$t1 - $t0" | awk '{print $1 - $3}')" "$(rss "$pid")"
    kill "$pid"; wait "$pid" 2>/dev/null || true
  fi
}

corpus=$root/../shared/testdata/zones/valid
if [ -d "$corpus" ]; then
  measure "corpus pdns-example.com" "$corpus/pdns-example.com-derived.zone" example.com. ns1.example.com. A
fi
gen "$n" "$work/big.test.zone"
i=$((n - 4)); kinds=(A AAAA MX TXT CNAME); lt=${kinds[$((i % 5))]}
measure "generated $n records" "$work/big.test.zone" big.test. "host$i.big.test." "$lt"
