#!/usr/bin/env bash
# Install the real assistants the end-to-end tests drive, at pinned versions, from the npm
# registry, into a cache folder outside the clone (reused between runs).
# Prints the cache folder; never fails the build: a program that cannot be installed leaves a
# reason in $CACHE/<name>.skip, and the tests that need it are skipped with that reason.
set -uo pipefail

CLAUDE_CODE_VERSION=2.1.332
OPENCLAW_VERSION=2026.9.6
NODE_VERSION=24.21.0

CACHE="${ATOCORE_E2E_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/atocore-e2e}"
mkdir -p "$CACHE"
log() { echo "e2e-install: $*" >&2; }

skip() {  # name, reason
  echo "$2" > "$CACHE/$1.skip"
  log "$1 NOT installed: $2"
}

npm_ok() { command -v npm >/dev/null 2>&1; }

# Node 24 (OpenClaw needs >=24.16): the npm `node` package, unless the machine's node is new enough.
install_node() {
  local dir="$CACHE/node-$NODE_VERSION"
  if [ -x "$dir/node_modules/node/bin/node" ]; then return 0; fi
  rm -rf "$dir"; mkdir -p "$dir"
  (cd "$dir" && npm install --no-audit --no-fund --loglevel=error "node@$NODE_VERSION" >"$dir/install.log" 2>&1)
}

install_pkg() {  # name, npm spec, bin name
  local name=$1 spec=$2 bin=$3 dir="$CACHE/$1"
  if [ -x "$dir/node_modules/.bin/$bin" ] && [ -f "$dir/.version" ] && [ "$(cat "$dir/.version")" = "$spec" ]; then
    rm -f "$CACHE/$name.skip"; return 0
  fi
  rm -rf "$dir"; mkdir -p "$dir"
  if (cd "$dir" && PATH="$NODE_BIN:$PATH" npm install --no-audit --no-fund --loglevel=error "$spec" >"$dir/install.log" 2>&1) \
     && [ -x "$dir/node_modules/.bin/$bin" ]; then
    echo "$spec" > "$dir/.version"; rm -f "$CACHE/$name.skip"
  else
    skip "$name" "npm install $spec failed: $(tail -n 3 "$dir/install.log" | tr '\n' ' ')"
  fi
}

if ! npm_ok; then
  skip claude-code "npm is not on PATH"; skip openclaw "npm is not on PATH"; echo "$CACHE"; exit 0
fi

NODE_BIN=""
major=$(node --version 2>/dev/null | sed 's/^v\([0-9]*\).*/\1/')
if [ -n "$major" ] && [ "$major" -ge 24 ]; then
  NODE_BIN=$(dirname "$(command -v node)")
elif install_node; then
  NODE_BIN="$CACHE/node-$NODE_VERSION/node_modules/node/bin"
else
  log "node@$NODE_VERSION from npm failed: $(tail -n 3 "$CACHE/node-$NODE_VERSION/install.log" | tr '\n' ' ')"
fi
if [ -n "$NODE_BIN" ]; then echo "$NODE_BIN" > "$CACHE/node-bin"; else rm -f "$CACHE/node-bin"; fi

install_pkg claude-code "@anthropic-ai/claude-code@$CLAUDE_CODE_VERSION" claude
if [ -n "$NODE_BIN" ]; then
  install_pkg openclaw "openclaw@$OPENCLAW_VERSION" openclaw
else
  skip openclaw "no Node >= 24 (OpenClaw $OPENCLAW_VERSION needs it) and node@$NODE_VERSION could not be installed"
fi
echo "$CACHE"
