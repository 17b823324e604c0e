# Shared by the lab scripts (sourced).
lab_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$lab_dir")
REGIONS=(us-east eu-west ap-northeast)
PROJECT=roundhouse-lab

say() { printf 'lab: %s\n' "$*"; }
die() { printf 'lab: FAIL: %s\n' "$*" >&2; exit 1; }

# `docker compose` when the plugin works, else the standalone `docker-compose`.
if docker compose version >/dev/null 2>&1; then COMPOSE="docker compose"
elif command -v docker-compose >/dev/null; then COMPOSE=docker-compose
else COMPOSE=; fi
compose() {
  [ -n "$COMPOSE" ] || die "neither 'docker compose' nor 'docker-compose' is installed"
  $COMPOSE -p "$PROJECT" -f "$lab_dir/compose.yml" "$@"
}

# How the running lab adds its inter-region latency: router or netem (lab/up.sh chose it and
# gave it to every container on the WAN; see lab/latency.sh).
latency_mode() {
  docker inspect -f '{{ range .Config.Env }}{{ println . }}{{ end }}' lab-client-us-east 2>/dev/null |
    sed -n 's/^LAB_LATENCY=//p'
}

# The RTT (ms) between regions $1 and $2 that the lab adds (lab/rtt-matrix.txt); 0 inside
# a region.
rtt_ms() {
  local a b
  a=$(region_number "$1") b=$(region_number "$2")
  awk -v a="$a" -v b="$b" 'BEGIN { r = 0 } !/^#/ && NF == 3 &&
    (($1 == a && $2 == b) || ($1 == b && $2 == a)) { r = $3 } END { print r }' "$lab_dir/rtt-matrix.txt"
}

# N for a region: its WAN is 10.90.N.0/24, its own network 10.91.N.0/24.
region_number() {
  case $1 in us-east) echo 1 ;; eu-west) echo 2 ;; ap-northeast) echo 3 ;; *) return 1 ;; esac
}

# Runs a command in a region's client container.
client() { local r=$1; shift; docker exec "lab-client-$r" "$@"; }

# The A answer the client of region $1 gets for www.lab.test from its resolver.
answer() { client "$1" dig +short +time=1 +tries=1 www.lab.test A 2>/dev/null | head -1; }

# Backend containers the scaler of region $1 launched.
backends() { docker ps -q --filter "label=roundhouse.group=lab-$1"; }

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# Runs lab/latency.sh in the network namespace of roundhouse container $1 (FROM scratch, no
# shell or ip): a short-lived tools container joins it (--network container:) with NET_ADMIN.
latency_in() {
  docker run --rm --name "lab-latency-${1#lab-}" --network "container:$1" --cap-add NET_ADMIN \
    -e LAB_LATENCY -v "$lab_dir:/lab:ro" roundhouse-lab/tools:lab /lab/latency.sh "$2"
}
