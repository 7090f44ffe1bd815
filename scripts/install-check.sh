#!/usr/bin/env bash
# npm run test:install — what an operator does: npm pack, npm install -g of the tarball into a
# clean prefix (no repository .npmrc, from another directory), then `edge-agent demo --seconds 10`
# from yet another directory. Prints "install: N passed, M failed" for .ci/run's closing line.
# ONNXRUNTIME_NODE_INSTALL=skip: docs/install-raspberry-pi.md, "Install the agent".
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d /tmp/edge-agent-install.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
passed=0
failed=0
check() {
  local name=$1
  shift
  if "$@"; then
    echo "install: ok   $name"
    passed=$((passed + 1))
  else
    echo "install: FAIL $name"
    failed=$((failed + 1))
  fi
}
t0=$(date +%s)
(cd "$ROOT" && npm run -s build && npm pack --silent --pack-destination "$WORK" >/dev/null) || { echo "install: FAIL npm pack"; echo "install: 0 passed, 1 failed"; exit 1; }
TGZ=$(ls "$WORK"/edge-agent-*.tgz)
check "the tarball carries no .npmrc" bash -c "! tar -tzf '$TGZ' | grep -q '\.npmrc'"
mkdir -p "$WORK/elsewhere"
check "npm install -g of the tarball into a clean prefix" bash -c "cd '$WORK/elsewhere' && ONNXRUNTIME_NODE_INSTALL=skip npm install -g --no-audit --no-fund --prefix '$WORK/prefix' '$TGZ' > '$WORK/install.log' 2>&1 || { tail -20 '$WORK/install.log'; exit 1; }"
t1=$(date +%s)
echo "install: npm install -g took $((t1 - t0)) s"
check "edge-agent demo --seconds 10 from another directory" bash -c "cd '$WORK/elsewhere' && '$WORK/prefix/bin/edge-agent' demo --seconds 10 --data-dir '$WORK/demo' > '$WORK/demo.log' 2>&1 && grep -q ' 0 problems' '$WORK/demo.log' || { tail -20 '$WORK/demo.log'; exit 1; }"
echo "install: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
