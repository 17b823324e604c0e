#!/usr/bin/env bash
# Measures the round-trip times of the running lab from each region's client to each region:
# ping to the balancer (average of 3) and the query time of dig to the resolver (a name it
# answers itself: `localhost`). Prints the matrix, with the RTT the lab adds
# (lab/rtt-matrix.txt) beside each cell. With --check, exits non-zero when a balancer's ping
# does not fit that RTT: inside a region under 10 ms (the docker bridge, no detour); between
# regions at least 0.9 x the RTT and at most 1.6 x the RTT + 20 ms (a packet delayed twice,
# or not at all, does not fit). See docs/lab.md.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
check=
case ${1:-} in --check) check=1 ;; "") ;; *) echo "usage: lab/rtt.sh [--check]" >&2; exit 2 ;; esac
docker inspect lab-client-us-east >/dev/null 2>&1 || die "the lab is not up (lab/up.sh)"

dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
# One job per client, in parallel; in each, one region after the other:
# "N ping_avg_ms dig_ms" lines into $dir/FROM.
for from in "${REGIONS[@]}"; do
  client "$from" sh -c 'for n in 1 2 3; do
      p=$(ping -n -q -c 3 -i 0.2 -W 2 10.90.$n.10 2>/dev/null | awk -F/ "/^rtt/ { printf \"%.1f\", \$5 }")
      d=$(dig +tries=1 +time=2 @10.90.$n.53 localhost A 2>/dev/null | awk "/Query time:/ { print \$4 }")
      echo "$n ${p:-?} ${d:-?}"
    done' >"$dir/$from" 2>/dev/null &
done
wait

table=$dir/table
{
  say "round-trip times (ms) from each region's client: ping to the balancer / dig to the resolver [added RTT]"
  printf '  %-14s' 'from \ to'
  for to in "${REGIONS[@]}"; do printf '%-24s' "$to"; done
  printf '\n'
  bad=
  for from in "${REGIONS[@]}"; do
    printf '  %-14s' "$from"
    for to in "${REGIONS[@]}"; do
      read -r p d < <(awk -v n="$(region_number "$to")" '$1 == n { print $2, $3 }' "$dir/$from") || true
      p=${p:-?} d=${d:-?}
      want=$(rtt_ms "$from" "$to")
      printf '%-24s' "$(printf '%s / %s [%s]' "$p" "$d" "$want")"
      fit=$(awk -v p="$p" -v w="$want" 'BEGIN {
        if (p !~ /^[0-9.]+$/) { print "no answer"; exit }
        if (w == 0) { if (p >= 10) print "over 10 ms inside a region"; exit }
        if (p < 0.9 * w) print "under 0.9 x " w " ms"
        else if (p > 1.6 * w + 20) print "over 1.6 x " w " + 20 ms" }')
      [ -z "$fit" ] || bad="$bad $from -> $to balancer: $p ms ($fit);"
    done
    printf '\n'
  done
} >"$table"
sed 's/ *$//' "$table"
if [ -n "$check" ] && [ -n "$bad" ]; then
  die "the measured RTTs do not fit the lab's:${bad%;}"
fi
