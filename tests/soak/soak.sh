#!/usr/bin/env bash
# Soak test: DNS and HTTP load on loopback while instances are killed and restarted, a region
# goes down and up, zone files and the configuration are rewritten (valid and broken) and the
# malformed query corpus is sent; see tests/soak/soak.py for the pass criteria.
# usage: tests/soak/soak.sh [minutes]     (default 10; ROUNDHOUSE_BIN overrides the binary)
# The malformed corpus is taken from ../shared/testdata/malformed when present (or
# MALFORMED_DIR); it needs dnspython.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
minutes=${1:-10}
if [ -z "${ROUNDHOUSE_BIN:-}" ]; then
  (cd "$root" && cargo build --release --quiet)
  ROUNDHOUSE_BIN=$root/target/release/roundhouse
fi
malformed=${MALFORMED_DIR:-$root/../shared/testdata/malformed}
args=(--bin "$ROUNDHOUSE_BIN" --minutes "$minutes")
[ -d "$malformed" ] && args+=(--malformed "$malformed")
exec python3 "$root/tests/soak/soak.py" "${args[@]}"
