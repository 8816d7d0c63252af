# Sourced (`. scripts/bootstrap.sh`) by the project's one-command entry points (.ci/all.sh for
# `npm test`, scripts/demo.sh for `npm run demo`), from the repository root: turns telemetry off,
# checks for cargo (the native addon is built from source), puts the pnpm the repository names
# (package.json `packageManager`) on PATH, installed into .cache/tools when missing, and points
# node-gyp at the running Node's headers for better-sqlite3.
TURBO_TELEMETRY_DISABLED=1
DO_NOT_TRACK=1
export TURBO_TELEMETRY_DISABLED DO_NOT_TRACK
if ! command -v cargo >/dev/null 2>&1; then
  echo "error: cargo not found; install a Rust toolchain (https://rustup.rs) to build the native addon" >&2
  exit 1
fi
PNPM_VERSION=$(node -p "require('./package.json').packageManager.split('@')[1]")
TOOLS="$PWD/.cache/tools"
if [ "$(pnpm --version 2>/dev/null || true)" != "$PNPM_VERSION" ]; then
  if [ ! -x "$TOOLS/node_modules/.bin/pnpm" ] || [ "$("$TOOLS/node_modules/.bin/pnpm" --version)" != "$PNPM_VERSION" ]; then
    echo "installing pnpm $PNPM_VERSION into .cache/tools"
    npm install --silent --no-audit --no-fund --prefix "$TOOLS" "pnpm@$PNPM_VERSION"
  fi
  PATH="$TOOLS/node_modules/.bin:$PATH"
  export PATH
fi

# better-sqlite3 compiles from source where no prebuilt binary can be downloaded: point node-gyp
# at the headers of the Node that runs, when they are installed beside it, instead of downloading them.
if [ -z "${npm_config_nodedir:-}" ]; then
  NODE_PREFIX=$(node -p "require('node:path').dirname(require('node:path').dirname(process.execPath))")
  if [ -f "$NODE_PREFIX/include/node/node.h" ]; then
    npm_config_nodedir="$NODE_PREFIX"
    export npm_config_nodedir
  fi
fi
