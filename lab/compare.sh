#!/usr/bin/env bash
# Runs `roundhouse compare --lab lab/compare.toml` in a container on the lab's WAN (us-east,
# 10.90.1.101): the client population against the lab's dns-rr, lb and gslb setups, with the
# faults injected into the lab's containers. Writes report.md and report.json, the format of
# `roundhouse compare`, to OUT (default lab/compare-report). Extra arguments go to compare
# (e.g. --scenario region-outage --duration 30s). Needs a running lab (lab/up.sh).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
out=$lab_dir/compare-report
if [ "${1:-}" = "--out" ]; then out=$(realpath -m "$2"); shift 2; fi
docker inspect lab-client-us-east >/dev/null 2>&1 || die "the lab is not up (lab/up.sh)"
mkdir -p "$out"
docker rm -f lab-compare >/dev/null 2>&1 || true
# Bounded: 8 clients per setup, 20 s per scenario unless told otherwise.
defaults=()
[[ " $* " == *" --clients "* ]] || defaults+=(--clients 8)
[[ " $* " == *" --duration "* ]] || defaults+=(--duration 20s)
docker run --rm --name lab-compare --network lab-wan --ip 10.90.1.101 \
  -v "$lab_dir:/lab:ro" -v "$out:/out" -v /var/run/docker.sock:/var/run/docker.sock \
  roundhouse-lab/roundhouse:lab compare --lab /lab/compare.toml --out /out \
  "${defaults[@]}" "$@"
say "report: $out/report.md, $out/report.json"
