#!/bin/sh
# Long fuzzing run: every Rust target, then every TypeScript target, SECONDS each (default 120),
# one at a time, printing executions per target. FUZZ_MERGE=1 keeps inputs that add coverage
# (small ones only) in the repository corpora. Run after `pnpm build`.
set -eu
SECONDS_PER_TARGET=${1:-120}
cd "$(dirname "$0")/.."
status=0
sh scripts/fuzz-rust.sh "$SECONDS_PER_TARGET" || status=1
if [ "${FUZZ_MERGE:-0}" = 1 ]; then merge=--merge; else merge=; fi
# shellcheck disable=SC2086
node fuzz/run.mjs --seconds "$SECONDS_PER_TARGET" $merge || status=1
exit "$status"
