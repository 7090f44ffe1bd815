#!/usr/bin/env bash
# Starts a local fleet back end for development, tests and benchmarks: a 3-node NATS cluster
# with JetStream and one PostgreSQL 15 instance, all in DIR (default: a new temporary directory)
# on free loopback ports, then prints the settings to use (also written to DIR/fleet.env):
#   FLEET_DIR, FLEET_NATS_URLS, FLEET_POSTGRES_URL
# Stop everything with down.sh DIR; one component with ctl.sh DIR stop|kill|start NAME.
# Needs the Debian packages nats-server and postgresql (15). No system service is used.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
command -v nats-server >/dev/null || { echo "up: nats-server not found (apt-get install -y nats-server)" >&2; exit 2; }
[ -x "$PGBIN/initdb" ] || { echo "up: $PGBIN/initdb not found (apt-get install -y postgresql)" >&2; exit 2; }

DIR=${1:-$(mktemp -d "${TMPDIR:-/tmp}/edge-fleet.XXXXXX")}
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
chmod 755 "$DIR"

# Ten free loopback ports: client, cluster and monitoring per NATS node, then PostgreSQL.
read -r -a P <<<"$(node -e '
const net = require("node:net");
const servers = Array.from({ length: 10 }, () => net.createServer());
Promise.all(servers.map((s) => new Promise((r) => s.listen(0, "127.0.0.1", () => r(s.address().port)))))
  .then((ports) => { console.log(ports.join(" ")); servers.forEach((s) => s.close()); });')"
cat >"$DIR/ports.env" <<ENV
NATS_PORT_1=${P[0]}
NATS_PORT_2=${P[1]}
NATS_PORT_3=${P[2]}
NATS_ROUTE_1=${P[3]}
NATS_ROUTE_2=${P[4]}
NATS_ROUTE_3=${P[5]}
NATS_MON_1=${P[6]}
NATS_MON_2=${P[7]}
NATS_MON_3=${P[8]}
PG_PORT=${P[9]}
ENV

for n in 1 2 3; do
  mkdir -p "$DIR/nats-$n/js"
  routes=()
  for m in 1 2 3; do [ "$m" != "$n" ] && routes+=("nats-route://127.0.0.1:${P[$((m + 2))]}"); done
  cat >"$DIR/nats-$n.conf" <<CONF
server_name: nats-$n
listen: 127.0.0.1:${P[$((n - 1))]}
# Batches up to the receiver's 8 MiB body limit (the NATS default is 1 MB).
max_payload: 8MB
http: 127.0.0.1:${P[$((n + 5))]}
jetstream {
  store_dir: "$DIR/nats-$n/js"
  max_memory_store: 64MB
  max_file_store: 4GB
}
cluster {
  name: edge-fleet
  listen: 127.0.0.1:${P[$((n + 2))]}
  routes: [ ${routes[0]}, ${routes[1]} ]
}
CONF
done

# PostgreSQL: trust on loopback for this local instance only (docs/fleet.md: scram in production).
mkdir -p "$DIR/pg/data" "$DIR/pg/sock"
if [ "$(id -u)" = 0 ]; then chown -R postgres:postgres "$DIR/pg"; fi
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
as_pg "$PGBIN/initdb" -D "$DIR/pg/data" -U edge --auth=trust -E UTF8 --locale=C >"$DIR/pg/initdb.log" 2>&1 \
  || { echo "up: initdb failed; see $DIR/pg/initdb.log" >&2; exit 1; }

# The three NATS nodes start together: each waits for a JetStream meta leader, which needs two.
for n in 1 2 3; do "$HERE/ctl.sh" "$DIR" start "nats-$n" & done
wait
"$HERE/ctl.sh" "$DIR" start pg
as_pg "$PGBIN/createdb" -h 127.0.0.1 -p "${P[9]}" -U edge edge

cat >"$DIR/fleet.env" <<ENV
FLEET_DIR=$DIR
FLEET_NATS_URLS=nats://127.0.0.1:${P[0]},nats://127.0.0.1:${P[1]},nats://127.0.0.1:${P[2]}
FLEET_POSTGRES_URL=postgres://edge@127.0.0.1:${P[9]}/edge
ENV
cat "$DIR/fleet.env"
echo "# edge-agent receive --backend fleet --nats-url \"\$FLEET_NATS_URLS\" --postgres-url \"\$FLEET_POSTGRES_URL\" --listen 127.0.0.1:0 -d RECEIVER_DIR"
