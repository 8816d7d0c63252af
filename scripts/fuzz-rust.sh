#!/bin/sh
# Runs every cargo-fuzz target of crates/fuzz for SECONDS seconds each (default 5), one at a time,
# starting from crates/fuzz/corpus/<target>/, and fails on the first crash, leak or timeout. New
# coverage inputs go to a scratch corpus; with FUZZ_MERGE=1 the ones (up to 4 KiB) that add
# coverage to the repository corpus are merged into it afterwards.
# Needs rustup with a nightly toolchain, or a stable one (built with RUSTC_BOOTSTRAP=1 then);
# installs cargo-fuzz when it is missing. Prints the toolchain it used and executions per target.
set -eu
SECONDS_PER_TARGET=${1:-5}
cd "$(dirname "$0")/../crates/fuzz"

if command -v rustup >/dev/null 2>&1 && rustup run nightly rustc --version >/dev/null 2>&1; then
  TOOLCHAIN="+nightly"
  echo "fuzz-rust: toolchain nightly ($(rustup run nightly rustc --version))"
else
  # libFuzzer needs -Z flags (sanitizer coverage); stable accepts them with RUSTC_BOOTSTRAP=1.
  TOOLCHAIN=""
  RUSTC_BOOTSTRAP=1
  export RUSTC_BOOTSTRAP
  echo "fuzz-rust: no nightly toolchain; using $(rustc --version) with RUSTC_BOOTSTRAP=1"
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz-rust: installing cargo-fuzz from crates.io"
  cargo install cargo-fuzz --locked --quiet
fi
echo "fuzz-rust: $(cargo fuzz --version)"

# No sanitizer: opensynaptic-core forbids unsafe code, so AddressSanitizer finds nothing there that
# a panic would not, and it costs about 3x the executions. Panics, debug assertions (overflow
# checks), the malloc limit and timeouts are what the targets catch.
FLAGS="-O -s none --debug-assertions"
# FUZZ_RUNS=N runs each target for N executions instead of SECONDS (e.g. 10000000 for a long run).
if [ -n "${FUZZ_RUNS:-}" ]; then LIMIT="-runs=$FUZZ_RUNS"; else LIMIT="-max_total_time=$SECONDS_PER_TARGET"; fi

SCRATCH=$(mktemp -d)
trap 'rm -rf "$SCRATCH"' EXIT
# shellcheck disable=SC2086 # TOOLCHAIN and FLAGS are split on purpose
cargo $TOOLCHAIN fuzz build $FLAGS >/dev/null 2>"$SCRATCH/build.log" || { cat "$SCRATCH/build.log" >&2; exit 1; }
failed=0
for target in $(cargo $TOOLCHAIN fuzz list); do
  mkdir -p "corpus/$target" "$SCRATCH/$target"
  # shellcheck disable=SC2086
  if cargo $TOOLCHAIN fuzz run $FLAGS "$target" "$SCRATCH/$target" "corpus/$target" -- \
    "$LIMIT" -timeout=10 -rss_limit_mb=1024 -malloc_limit_mb=256 \
    -max_len=70000 -print_final_stats=1 >"$SCRATCH/$target.log" 2>&1; then
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$SCRATCH/$target.log")
    echo "fuzz-rust: $target: ${runs:-?} executions, no finding"
    if [ "${FUZZ_MERGE:-0}" = 1 ]; then
      # shellcheck disable=SC2086
      cargo $TOOLCHAIN fuzz run $FLAGS "$target" "corpus/$target" "$SCRATCH/$target" -- \
        -merge=1 -max_len=4096 >"$SCRATCH/$target.merge.log" 2>&1 || true
    fi
  else
    failed=$((failed + 1))
    echo "fuzz-rust: $target: FINDING" >&2
    grep -E 'panicked|ERROR|SUMMARY|Test unit written|Base64' "$SCRATCH/$target.log" | head -20 >&2
  fi
done
[ "$failed" -eq 0 ]
