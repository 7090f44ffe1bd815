#!/usr/bin/env bash
# Starts, stops or kills one component of a local fleet made by up.sh, by the PID it recorded.
#   ctl.sh DIR start|stop|kill nats-1|nats-2|nats-3|pg [more names...]
# stop = SIGTERM (pg: pg_ctl stop -m fast) and wait for the exit; kill = SIGKILL, no clean-up.
# Several names are handled at once, as up.sh starts the cluster: two NATS servers of three
# brought back one after the other would leave the first waiting for a quorum the second gives.
set -euo pipefail
DIR=${1:?usage: ctl.sh DIR start|stop|kill nats-N|pg [...]}
ACTION=${2:?usage: ctl.sh DIR start|stop|kill nats-N|pg [...]}
NAME=${3:?usage: ctl.sh DIR start|stop|kill nats-N|pg [...]}
if [ $# -gt 3 ]; then
  pids=()
  for name in "${@:3}"; do "$0" "$DIR" "$ACTION" "$name" & pids+=($!); done
  failed=0
  for pid in "${pids[@]}"; do wait "$pid" || failed=1; done
  exit $failed
fi
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
# shellcheck disable=SC1091
source "$DIR/ports.env"

# PostgreSQL refuses to run as root: run its tools as the postgres user then.
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

wait_gone() { # PID FILE
  for _ in $(seq 1 300); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done
  echo "ctl: $2 (pid $1) still running after 30 s" >&2; return 1
}

wait_http_ok() { # URL WHAT
  for _ in $(seq 1 300); do curl -fsS -o /dev/null "$1" 2>/dev/null && return 0; sleep 0.1; done
  echo "ctl: $2 not ready after 30 s ($1); see its log in $DIR" >&2; return 1
}

case "$NAME" in
  nats-[123])
    n=${NAME#nats-}
    pidfile="$DIR/$NAME.pid"
    case "$ACTION" in
      start)
        if alive "$pidfile"; then echo "ctl: $NAME already running (pid $(cat "$pidfile"))"; exit 0; fi
        setsid nats-server -c "$DIR/$NAME.conf" >>"$DIR/$NAME.log" 2>&1 </dev/null &
        echo $! >"$pidfile"
        mon_var="NATS_MON_$n"
        # /healthz answers 200 once the server and its JetStream are up.
        wait_http_ok "http://127.0.0.1:${!mon_var}/healthz" "$NAME"
        ;;
      stop|kill)
        alive "$pidfile" || { echo "ctl: $NAME not running"; exit 0; }
        pid=$(cat "$pidfile")
        kill "-$([ "$ACTION" = kill ] && echo KILL || echo TERM)" "$pid"
        wait_gone "$pid" "$NAME"
        rm -f "$pidfile"
        ;;
      *) echo "ctl: unknown action $ACTION" >&2; exit 2 ;;
    esac
    ;;
  pg)
    case "$ACTION" in
      start)
        as_pg "$PGBIN/pg_ctl" -D "$DIR/pg/data" -l "$DIR/pg/server.log" -w -t 60 \
          -o "-p $PG_PORT -c listen_addresses=127.0.0.1 -k $DIR/pg/sock" start >/dev/null
        head -1 "$DIR/pg/data/postmaster.pid" >"$DIR/pg.pid"
        ;;
      stop)
        as_pg "$PGBIN/pg_ctl" -D "$DIR/pg/data" -m fast -w stop >/dev/null || true
        rm -f "$DIR/pg.pid"
        ;;
      kill)
        alive "$DIR/pg.pid" || { echo "ctl: pg not running"; exit 0; }
        pid=$(cat "$DIR/pg.pid"); kill -KILL "$pid"; wait_gone "$pid" pg; rm -f "$DIR/pg.pid"
        ;;
      *) echo "ctl: unknown action $ACTION" >&2; exit 2 ;;
    esac
    ;;
  *) echo "ctl: unknown component $NAME (nats-1, nats-2, nats-3 or pg)" >&2; exit 2 ;;
esac
