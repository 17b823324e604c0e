#!/usr/bin/env bash
# Every valid zone of the corpus must pass `roundhouse check --zone`; every invalid one must
# be rejected with a `file:line:` message. usage: zone-corpus.sh ZONES_DIR
set -uo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
bin=${ROUNDHOUSE_BIN:-$here/target/release/roundhouse}
dir=$1
fail=0; ok=0
while IFS=$'\t' read -r file origin _; do
  case "$file" in '#'*|'') continue;; esac
  if out=$("$bin" check --zone "$dir/valid/$file" --origin "$origin" 2>&1); then ok=$((ok+1))
  else echo "valid zone rejected: $file: $out"; fail=$((fail+1)); fi
done < "$dir/valid/zones.tsv"
while IFS=$'\t' read -r file origin _; do
  case "$file" in '#'*|'') continue;; esac
  if out=$("$bin" check --zone "$dir/invalid/$file" --origin "$origin" 2>&1); then
    echo "invalid zone accepted: $file"; fail=$((fail+1))
  elif ! grep -qE '^error: .+:[0-9]+: ' <<<"$out"; then
    echo "invalid zone rejected without file:line: $file: $out"; fail=$((fail+1))
  else ok=$((ok+1)); echo "rejected as expected: $(tail -n1 <<<"$out")"; fi
done < "$dir/invalid/zones.tsv"
echo "$ok passed, $fail failed"
[ "$fail" -eq 0 ]
