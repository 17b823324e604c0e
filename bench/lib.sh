# bench/lib.sh - sourced by bench/dns.sh, geo.sh, steering.sh, http.sh, tcp.sh and threads.sh
# (not run directly).
# Brings in ../shared/bench/lib.sh (start_bg, stop_pid, cleanup, median, ratio: it stops only
# the PIDs it started) and adds what these scripts share: CPU sets for a thread count, the
# three nginx web backends, roundhouse and HAProxy balancing over them, and one wrk run
# summarised as a "k=v" line. The caller sets root (the checkout) and WORK (a scratch dir).
bench=$root/../shared/bench
. "$bench/lib.sh"

# noerror_qps: dnsperf's output on stdin -> its queries per second, or 0 (with a note on
# stderr) unless every reply was NOERROR: a malformed query would measure error replies.
noerror_qps() {
  local out
  out=$(cat)
  if ! grep -q 'Response codes:  *NOERROR [0-9]* (100.00%)$' <<< "$out"; then
    echo "# not every reply was NOERROR: $(grep 'Response codes:' <<< "$out")" >&2
    echo 0
    return
  fi
  awk '/Queries per second:/ {printf "%.0f\n", $4}' <<< "$out"
}

# bench_start [ARGS...]: reads --runs N, --seconds N and --threads N into runs, secs and
# threads (the caller's defaults stand otherwise; anything else is an error), builds the
# release binary, makes the scratch dir WORK and stops everything started on exit.
bench_start() {
  while [ $# -gt 0 ]; do
    case $1 in
      --runs) runs=$2; shift 2;; --seconds) secs=$2; shift 2;; --threads) threads=$2; shift 2;;
      *) echo "unknown argument $1" >&2; exit 2;;
    esac
  done
  cargo build --release --manifest-path "$root/Cargo.toml" >/dev/null 2>&1
  WORK=$(mktemp -d)
  trap cleanup EXIT
  trap 'exit 130' INT TERM
}

# The web backends peers-http.sh also uses: each answers 200 with a ~14-byte body.
WEB=(127.0.0.21:15331 127.0.0.22:15332 127.0.0.23:15333)

# cpus N: the CPUs a server with N worker threads is pinned to (0, or 0-(N-1)); the load
# generator stays on CPU 1, so at two threads the server shares that core with it.
cpus() { if [ "$1" -le 1 ]; then echo 0; else echo "0-$(($1 - 1))"; fi; }

# start_web: one nginx worker pinned to CPU 0 listening on every address of WEB.
start_web() {
  local d=$WORK/web b t
  mkdir -p "$d"
  {
    echo "daemon off; master_process off; worker_processes 1; pid $d/pid; error_log $d/error.log warn;"
    echo "events { worker_connections 4096; }"
    echo "http { access_log off; default_type text/plain;"
    for t in client_body proxy fastcgi uwsgi scgi; do echo "  ${t}_temp_path $d;"; done
    for b in "${WEB[@]}"; do echo "  server { listen $b reuseport; location / { return 200 \"hello $b\\n\"; } }"; done
    echo "}"
  } > "$d/nginx.conf"
  start_bg web 0 nginx -p "$d" -c "$d/nginx.conf"
}

# rh_base [DNS_ADDR [ZONES_DIR]]: the head of a roundhouse configuration (DNS on DNS_ADDR,
# default a free port, zones from ZONES_DIR, default none; quiet log; the TCP health check
# every group of rh_listener uses).
rh_base() {
  printf '[dns]\nlisten = ["%s"]\nzones_dir = "%s"\n[log]\nlevel = "warn"\n' "${1:-127.0.0.1:0}" "${2:-}"
  printf '[health_check.tcp]\nprotocol = "tcp"\ninterval = "2s"\ntimeout = "1s"\nhealthy_threshold = 2\n'
}

# rh_listener NAME PROTOCOL PORT TARGET...: a target group NAME (round robin over the TARGETs,
# TCP health checks) and a listener on 127.0.0.1:PORT forwarding to it.
rh_listener() {
  local name=$1 protocol=$2 port=$3 t list=""
  shift 3
  for t in "$@"; do list+="${list:+, }{ address = \"$t\" }"; done
  printf '[target_group.%s]\nhealth_check = "tcp"\ntargets = [%s]\n' "$name" "$list"
  printf '[[listener]]\nname = "%s"\nprotocol = "%s"\nlisten = "127.0.0.1:%s"\ntarget_group = "%s"\n' \
    "$name" "$protocol" "$port" "$name"
}

# start_roundhouse THREADS CONFIG: the release binary serving CONFIG, pinned to cpus THREADS.
start_roundhouse() {
  start_bg roundhouse "$(cpus "$1")" "$root/target/release/roundhouse" serve --threads "$1" --config "$2"
}

# haproxy_head THREADS MODE: global and defaults of an HAProxy configuration.
haproxy_head() {
  printf 'global\n    nbthread %s\n    maxconn 4000\n' "$1"
  printf 'defaults\n    mode %s\n    timeout connect 2s\n    timeout client 30s\n    timeout server 30s\n' "$2"
}

# haproxy_proxy NAME PORT TARGET...: a frontend on 127.0.0.1:PORT and a round-robin backend
# over the TARGETs, each checked every 2 s (a TCP connect in mode tcp).
haproxy_proxy() {
  local name=$1 port=$2 t i=0
  shift 2
  printf 'frontend %s\n    bind 127.0.0.1:%s\n    default_backend %s\nbackend %s\n    balance roundrobin\n' \
    "$name" "$port" "$name" "$name"
  for t in "$@"; do i=$((i + 1)); echo "    server s$i $t check inter 2s"; done
}

# wait_http URL: until it answers 200 (at most 20 s).
wait_http() {
  local _
  for _ in $(seq 100); do
    [ "$(curl -s -o /dev/null -m 1 -w '%{http_code}' "$1")" = 200 ] && return 0
    sleep 0.2
  done
  echo "$1 did not answer 200" >&2
  return 1
}

# wrk_run SECONDS URL [WRK ARGS...]: wrk on CPU 1 (1 thread, 50 connections unless WRK_CONNS)
# for SECONDS; prints "rps=N p50_ms=X p99_ms=Y errors=N" (errors: socket errors + non-2xx).
wrk_run() {
  local secs=$1 url=$2 out=$WORK/wrk.out
  shift 2
  taskset -c 1 timeout $((secs + 30)) wrk -t 1 -c "${WRK_CONNS:-50}" -d "${secs}s" --latency "$@" "$url" > "$out" 2>&1 || true
  awk '
    function ms(v) { n = v + 0; if (v ~ /us$/) return n / 1000; if (v ~ /ms$/) return n; if (v ~ /s$/) return n * 1000; return "NA" }
    /^Requests\/sec:/ { rps = sprintf("%.0f", $2) }
    $1 == "50%" { p50 = ms($2) }
    $1 == "99%" { p99 = ms($2) }
    /Socket errors:/ { gsub(",", ""); err += $4 + $6 + $8 + $10 }
    /Non-2xx or 3xx responses:/ { err += $NF }
    END { printf "rps=%s p50_ms=%s p99_ms=%s errors=%d\n", (rps == "" ? "NA" : rps), (p50 == "" ? "NA" : p50), (p99 == "" ? "NA" : p99), err }
  ' "$out"
}

# cpu_ticks PID: user+system clock ticks PID has used so far (0 when it is gone).
cpu_ticks() { sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | awk '{ print $12 + $13 }' || echo 0; }

# cores T0 T1 S0 S1: cores used between two cpu_ticks samples T0, T1 taken at times S0, S1.
cores() { awk -v a="$1" -v b="$2" -v s="$3" -v e="$4" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.2f", (b - a) / hz / (e - s) }'; }

# pick FILE KEY K=V...: the KEY value of every "k=v k=v" line of FILE that has all the K=V.
pick() {
  local file=$1 key=$2
  shift 2
  awk -v key="$key" -v want="$*" '
    BEGIN { n = split(want, w, " ") }
    { split("", f); for (i = 1; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
      ok = 1; for (j = 1; j <= n; j++) { split(w[j], kv, "="); if (f[kv[1]] != kv[2]) ok = 0 }
      if (ok) print f[key] }' "$file"
}
