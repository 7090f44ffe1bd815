#!/usr/bin/env bash
# prune-for-arm64.sh APP_DIR — removes from APP_DIR/node_modules the prebuilt binaries of other
# platforms (onnxruntime-node ships darwin, win32 and linux x64 builds too; serialport ships 9
# platforms), which a linux/arm64 install never loads. Used by the smoke test, so it runs the
# same tree that Dockerfile.arm64 ships.
set -euo pipefail
NM="${1:?app dir}/node_modules"
ORT="$NM/onnxruntime-node/bin/napi-v6"
if [ -d "$ORT" ]; then
  find "$ORT" -mindepth 1 -maxdepth 1 ! -name linux -exec rm -rf {} +
  find "$ORT/linux" -mindepth 1 -maxdepth 1 ! -name arm64 -exec rm -rf {} +
  ls "$ORT"/linux/arm64/*.node >/dev/null || { echo "onnxruntime-node has no linux/arm64 binding" >&2; exit 1; }
fi
find "$NM" -type d -path '*/prebuilds/*' -prune ! -name 'linux-arm64' -exec rm -rf {} +
