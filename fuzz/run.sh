#!/usr/bin/env bash
# Runs every fuzz target for SECONDS each (default 60) with cargo-fuzz on the nightly
# toolchain, installing cargo-fuzz when it is missing.
# usage: fuzz/run.sh [seconds] [target...]
#
# New inputs libFuzzer finds go to fuzz/.work/TARGET (not committed); the committed corpus
# (fuzz/corpus/TARGET), the crash reproducers (fuzz/regressions/TARGET) and, when present,
# the zone corpus in ../shared/testdata/zones are read-only seeds. A crash stops the run with
# the input in fuzz/artifacts/TARGET/: fix the bug, then add the file to
# fuzz/regressions/TARGET/ so that `cargo test --test fuzz_corpus` keeps it fixed on stable.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(dns_query zone_file config http_heads)
shared=../shared/testdata

if ! rustup toolchain list | grep -q '^nightly'; then
  echo "fuzz/run.sh: the nightly toolchain is not installed (rustup toolchain install nightly)" >&2
  exit 1
fi
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
# Coverage instrumentation without AddressSanitizer (safe Rust; twice the executions per
# second); debug assertions on, so integer overflow panics.
flags=(--sanitizer none --debug-assertions)
status=0
cargo +nightly fuzz build "${flags[@]}"

for t in "${targets[@]}"; do
  seeds=("fuzz/corpus/$t")
  if [ -d "fuzz/regressions/$t" ]; then seeds+=("fuzz/regressions/$t"); fi
  max_len=16384
  case $t in
    dns_query) max_len=4096 ;;
    zone_file)
      for d in valid invalid edge parser-conformance; do
        if [ -d "$shared/zones/$d" ]; then seeds+=("$shared/zones/$d"); fi
      done ;;
  esac
  mkdir -p "fuzz/.work/$t"
  log=fuzz/.work/$t.log
  echo "=== fuzz $t for ${secs}s (log: $log)"
  if cargo +nightly fuzz run "${flags[@]}" "$t" "fuzz/.work/$t" "${seeds[@]}" -- \
      -max_total_time="$secs" -max_len="$max_len" -timeout=10 -rss_limit_mb=2048 \
      -print_final_stats=1 > "$log" 2>&1; then
    grep -E '^#[0-9]+[[:space:]]+(INITED|DONE)|^stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)' "$log"
  else
    tail -n 40 "$log"
    echo "fuzz $t FAILED: reproducer in fuzz/artifacts/$t/" >&2
    status=1
  fi
done
exit "$status"
