#!/bin/sh
# Launcher for ../shared/testdata/oracle/run_oracle.sh: serve the zones listed in ZONELIST
# (lines "absolute_zone_file<TAB>origin") on 127.0.0.1:PORT with the release binary, wait
# until it answers, print its PID last.
# usage: launch.sh ZONELIST PORT RUNDIR
set -eu
list=$1; port=$2; dir=$3
here=$(cd "$(dirname "$0")/../.." && pwd)
bin=${ROUNDHOUSE_BIN:-$here/target/release/roundhouse}
mkdir -p "$dir"
conf=$dir/roundhouse.toml
{
  printf '[dns]\nlisten = ["127.0.0.1:%s"]\nzones_dir = ""\n' "$port"
  printf '[dns.transfer]\nallow = ["127.0.0.1"]\n'
  while IFS="$(printf '\t')" read -r file origin; do
    [ -n "$file" ] || continue
    printf '[[dns.zone]]\norigin = "%s"\nfile = "%s"\n' "$origin" "$file"
  done < "$list"
} > "$conf"
"$bin" serve --config "$conf" > "$dir/stdout.log" 2> "$dir/stderr.log" &
pid=$!
origin=$(head -n1 "$list" | cut -f2)
i=0
while [ $i -lt 100 ]; do
  if python3 - "$port" "$origin" <<'PY' 2>/dev/null
import socket, sys
import dns.message, dns.query
q = dns.message.make_query(sys.argv[2], "SOA")
dns.query.udp(q, "127.0.0.1", port=int(sys.argv[1]), timeout=0.2)
PY
  then echo "$pid"; exit 0; fi
  kill -0 "$pid" 2>/dev/null || { cat "$dir/stderr.log" >&2; exit 1; }
  i=$((i+1)); sleep 0.1
done
cat "$dir/stderr.log" >&2
kill "$pid"; exit 1
