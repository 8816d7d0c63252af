#!/bin/sh
# `npm run demo [-- options]`: from a fresh clone, installs and builds what `os-node demo` needs
# (as `npm test` does: pnpm, the workspace, the native addon and the packages the CLI depends
# on), then runs it. Options go to `os-node demo` (`npm run demo -- --seconds 60`).
set -eu
cd "$(dirname "$0")/.."
. scripts/bootstrap.sh

pnpm install --frozen-lockfile --reporter=silent
# The CLI and every package it depends on (the native addon among them), nothing else.
pnpm turbo run build --filter=@opensynaptic/cli... --output-logs=errors-only
# The demo prints the commands that query its data; from the repository they run this way.
OS_NODE_COMMAND="node packages/cli/dist/bin.js"
export OS_NODE_COMMAND
exec node packages/cli/dist/bin.js demo "$@"
