#!/usr/bin/env bash
# The real peers the test suite runs against (README "Two commands"), checked before `npm test`
# (package.json pretest) and installed by .ci/run. Missing any: prints the ONE apt command that
# installs them all and exits 1. Complete: prints nothing, exits 0.
#   scripts/test-peers.sh           check (pretest)
#   scripts/test-peers.sh --missing print the missing Debian packages, one a line (.ci/run)
set -uo pipefail

# command on PATH -> Debian package that provides it (Debian 12), and why the tests need it.
peers=(
  "mosquitto mosquitto"                    # the MQTT broker of every MQTT test
  "mosquitto_pub mosquitto-clients"        # publishers and subscribers in the tests
  "coap-client-notls libcoap3-bin"         # libcoap's own tools are the CoAP interop peers
  "coap-server-notls libcoap3-bin"
  "socat socat"                            # pseudo-terminal pairs for the serial firmware simulator
  "openssl openssl"                        # throw-away CA and certificates of the TLS tests
  "faketime faketime"                      # moves an agent's wall clock in the clock-trouble tests
  "g++ g++"                                # builds the firmware simulator (and better-sqlite3 if needed)
  "make make"
  "chromium chromium"                      # renders the status page test, driven by playwright-core
  "systemd-analyze systemd"                # checks the shipped unit file
  "nats-server nats-server"                # the fleet backend's JetStream cluster
  "initdb postgresql"                      # the fleet backend's query store (initdb/pg_ctl, no service)
)

have() {
  command -v "$1" >/dev/null 2>&1 && return 0
  # Debian keeps PostgreSQL's server programs off the PATH; scripts/fleet/up.sh looks here too.
  if [ "$1" = initdb ] && [ -x "${PGBIN:-/usr/lib/postgresql/15/bin}/initdb" ]; then return 0; fi
  return 1
}

missing=()
for p in "${peers[@]}"; do
  read -r cmd pkg <<<"$p"
  if ! have "$cmd"; then
    case " ${missing[*]-} " in *" $pkg "*) ;; *) missing+=("$pkg") ;; esac
  fi
done

if [ "${1:-}" = --missing ]; then
  [ "${#missing[@]}" -gt 0 ] && printf '%s\n' "${missing[@]}"
  exit 0
fi
if [ "${#missing[@]}" -gt 0 ]; then
  echo "npm test needs the real peers it tests against; missing: ${missing[*]}" >&2
  sudo=""
  [ "$EUID" -ne 0 ] && sudo="sudo "
  echo "install them with:" >&2
  echo "  ${sudo}apt-get install --no-install-recommends ${missing[*]}" >&2
  exit 1
fi
