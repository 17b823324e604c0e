#!/usr/bin/env bash
# Zone content equals knotd's: for every valid zone of the corpus, serve it with knotd and
# with roundhouse, transfer it from both with dig and compare the records (sorted, as text).
# usage: axfr-diff.sh TESTDATA_DIR      (needs knotd, dig)
set -uo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
data=$1
oracle=$data/oracle
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
kport=15471; rport=15472
fail=0; ok=0
axfr() { dig @127.0.0.1 -p "$1" "$2" AXFR +nocomments +nostats +nocmd +time=10 | grep -v '^;' | grep -v '^$' | sort -u; }
while IFS=$'\t' read -r file origin _; do
  case "$file" in '#'*|'') continue;; esac
  printf '%s\t%s\n' "$data/zones/valid/$file" "$origin" > "$work/list"
  kpid=$("$oracle/serve_knotd.sh" "$work/list" $kport "$work/knot" | tail -1)
  rpid=$("$here/tests/interop/launch.sh" "$work/list" $rport "$work/rh" | tail -1)
  axfr $kport "$origin" > "$work/knot.txt"
  axfr $rport "$origin" > "$work/rh.txt"
  kill "$kpid" "$rpid" 2>/dev/null
  for _ in $(seq 50); do kill -0 "$kpid" 2>/dev/null || kill -0 "$rpid" 2>/dev/null || break; sleep 0.1; done
  if [ ! -s "$work/knot.txt" ]; then
    echo "knotd did not transfer $file"; fail=$((fail+1))
  elif cmp -s "$work/knot.txt" "$work/rh.txt"; then
    ok=$((ok+1))
  else
    echo "DIFFERENT: $file ($origin)"; diff "$work/knot.txt" "$work/rh.txt" | head -10; fail=$((fail+1))
  fi
  rm -rf "$work/knot" "$work/rh"
done < "$data/zones/valid/zones.tsv"
echo "$ok passed, $fail failed"
[ "$fail" -eq 0 ]
