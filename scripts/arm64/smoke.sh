#!/usr/bin/env bash
# npm run test:arm64 — installs edge-agent for linux/arm64 and runs it end to end under qemu
# user-mode emulation: receiver, init, run with a serial board and simulated sensors, status,
# verify, plus onnxruntime/SQLite/serialport/ed25519 checks (scripts/arm64/smoke.ts).
# Needs root for apt-get the first time; caches under .arm64/ (ARM64_WORK).
set -euo pipefail
# shellcheck source=scripts/arm64/lib.sh
. "$(dirname "$0")/lib.sh"
t0=$(date +%s)

ensure_host_tools
mkdir -p "$ARM64_WORK"
ensure_sysroot
ensure_arm64_node
say "arm64 node $ARM64_NODE_VERSION: $(arm_node -p 'process.platform + "/" + process.arch')"

cd "$ROOT"
[ -d node_modules ] || die "run npm ci first (the host build needs the dev dependencies)"
npm run -s build
make -s -C firmware-bridge
# what a Raspberry Pi gets from npm install -g: production dependencies only
stage_app prod
t1=$(date +%s)
say "install for arm64 took $((t1 - t0)) s"

RUN_DIR=$(mktemp -d "$ARM64_WORK/run.XXXXXX")
trap 'rm -rf "$RUN_DIR"' EXIT
ARM64_NODE_CMD=$(printf '["qemu-aarch64-static","-cpu","%s","-L","%s","%s"]' "${QEMU_CPU:-cortex-a72}" "$SYSROOT" "$ARM64_NODE_DIR/bin/node") \
ARM64_APP=$APP ARM64_RUN_DIR=$RUN_DIR node dist/scripts/arm64/smoke.js
