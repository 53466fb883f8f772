#!/usr/bin/env bash
# Runs web_test.js: exits 77 (CTest's skip) when Chromium is not installed,
# and installs the pinned playwright-core (package-lock.json) on first use.
# Usage: run.sh --cluster BROWSER_CLUSTER_BINARY --out SCREENSHOT_DIR
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
chromium=${DET_CHROMIUM:-/usr/bin/chromium}
if [[ ! -x "$chromium" ]]; then
  echo "SKIP: $chromium is missing (scripts/install-deps.sh installs Debian's chromium)"
  exit 77
fi
export DET_CHROMIUM=$chromium

# (Re)install when node_modules is missing or holds another version.
want=$(node -p "require('$here/package-lock.json').packages['node_modules/playwright-core'].version")
have=$(node -p "try { require('$here/node_modules/playwright-core/package.json').version } catch { '' }")
if [[ "$want" != "$have" ]]; then
  echo "run.sh: installing playwright-core $want (npm ci)"
  (cd "$here" && npm ci --no-audit --no-fund --loglevel=error)
fi
exec node "$here/web_test.js" "$@"
