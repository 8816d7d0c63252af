#!/bin/sh
# The project's one test command (`npm test`): installs pnpm and the workspace, builds the Rust
# addon and every package, then runs lint, type checks, unit tests, package checks and the
# golden vectors on both backends, and the consumer check of the packed packages. Needs Node 20.16+,
# npm and a Rust toolchain (cargo); Debian's chromium, mosquitto and socat, which it installs with apt-get
# when missing (the transport tests start a real broker and a pseudo-terminal pair).
set -eu
cd "$(dirname "$0")/.."

. scripts/bootstrap.sh

pnpm install --frozen-lockfile
pnpm turbo run build lint typecheck package-check --output-logs=errors-only
# Full logs for the tests, so every package's counts show.
pnpm turbo run test --concurrency=1 --output-logs=new-only
(cd crates && cargo test --release --quiet)
# The packed packages as a user installs them, outside the workspace: typechecked, run as ESM
# and CJS, and bundled into headless Chromium (apt-get installs Debian's chromium when missing).
node scripts/consumer-check.mjs
# Fuzzing, a few seconds per target from the corpora in the repository; fails on a finding that
# fuzz/known.json does not list. Long runs: scripts/fuzz-long.sh SECONDS.
node fuzz/run.mjs --seconds 3
sh scripts/fuzz-rust.sh 3
# The golden vectors last: their 'N passed, N failed' closes the run.
OPENSYNAPTIC_CORE=ts pnpm --silent vectors --backend ts
OPENSYNAPTIC_CORE=native pnpm --silent vectors --backend native
