#!/usr/bin/env bash
# Removes what the lab created: its containers (also the backends the scalers launched) and
# networks; with --images also its two images. See docs/lab.md.
set -uo pipefail
source "$(dirname "$0")/lib.sh"
images=
for a in "$@"; do
  case $a in --images) images=1 ;; *) echo "usage: lab/down.sh [--images]" >&2; exit 2 ;; esac
done
docker info >/dev/null 2>&1 || die "no docker daemon"
# What lab/compare.sh started (its containers carry this label), if it was interrupted.
left=$(docker ps -aq --filter label=roundhouse-lab.compare=1)
[ -z "$left" ] || docker rm -f $left >/dev/null 2>&1 || true
# lab/up.sh's short-lived containers that set up latency in the roundhouse containers (gone
# unless up.sh was stopped while they ran).
for c in dns-a dns-b balancer-us-east balancer-eu-west balancer-ap-northeast; do
  docker rm -f "lab-latency-$c" >/dev/null 2>&1 || true
done
# The balancers get SIGTERM and remove their backends themselves; whatever is left after
# that (a killed balancer) goes by label.
compose down --remove-orphans --timeout 20 2>&1 | sed 's/^/  /'
for r in "${REGIONS[@]}"; do
  left=$(docker ps -aq --filter "label=roundhouse.group=lab-$r")
  [ -z "$left" ] || { say "removing backends of $r left behind"; docker rm -f $left >/dev/null; }
done
for n in lab-wan lab-us-east lab-eu-west lab-ap-northeast; do
  docker network inspect "$n" >/dev/null 2>&1 && docker network rm "$n" >/dev/null
done
if [ -n "$images" ]; then
  docker rmi roundhouse-lab/roundhouse:lab roundhouse-lab/tools:lab 2>/dev/null | sed 's/^/  /'
fi
say "down"
