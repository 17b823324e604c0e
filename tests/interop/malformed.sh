#!/usr/bin/env bash
# Send the malformed query corpus to a running roundhouse and require every packet to be
# handled as the manifest allows, with the server alive afterwards.
# usage: malformed.sh MALFORMED_DIR
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
bin=${ROUNDHOUSE_BIN:-$here/target/release/roundhouse}
dir=$1
work=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p "$work/zones"
# the corpus asks about example.com.
printf '$TTL 300\n@ SOA ns1 hostmaster 1 3600 600 86400 60\n@ NS ns1\n@ A 192.0.2.1\n@ TXT "corpus"\nns1 A 192.0.2.53\n' > "$work/zones/example.com.zone"
printf '[dns]\nlisten = ["127.0.0.1:%s"]\nzones_dir = "zones"\n' "$port" > "$work/roundhouse.toml"
"$bin" serve --config "$work/roundhouse.toml" 2> "$work/log" &
pid=$!
trap 'kill $pid 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 1 50); do dig +short +time=1 +tries=1 @127.0.0.1 -p "$port" example.com SOA >/dev/null 2>&1 && break; sleep 0.1; done
python3 "$dir/send.py" "127.0.0.1:$port" --live-name example.com. | tail -n 30
kill -0 $pid
