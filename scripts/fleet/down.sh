#!/usr/bin/env bash
# Stops everything up.sh DIR started, by the PIDs it recorded; KEEP=1 keeps DIR (logs, data).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
DIR=${1:?usage: down.sh DIR}
[ -f "$DIR/ports.env" ] || { echo "down: $DIR is not a fleet directory made by up.sh" >&2; exit 2; }
"$HERE/ctl.sh" "$DIR" stop pg || true
for n in 1 2 3; do "$HERE/ctl.sh" "$DIR" stop "nats-$n" || true; done
if [ "${KEEP:-0}" != 1 ]; then rm -rf "$DIR"; fi
