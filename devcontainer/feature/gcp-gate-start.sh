#!/bin/sh
# gcp-gate-start: the gcp-gate Feature's postStartCommand. Waits (bounded) for
# the gate's socket mounted from the host, starts gcp-metadata-proxy in the
# background under a small supervisor and returns once it listens, so
# container start is not blocked.
#
# The supervisor restarts the proxy whenever it exits: while it is down, any
# process in the container could listen on 127.0.0.1:<port> and answer every
# metadata client. Restarts are logged and slowed (0.2 s, then 1, 2, 5, 10 s
# while it keeps dying within a minute). TERM to the supervisor (its pid is in
# proxy.pid) stops both; the proxy's own pid is in proxy.child.pid.
#
#   GCP_GATE_CONFIG         config file (default /etc/gcp-gate/config.toml)
#   GCP_GATE_SOCKET_PATH    socket to wait for (default: socket_path in the config)
#   GCP_GATE_START_TIMEOUT  seconds to wait for the socket, then for the proxy (default 30)
#   GCP_GATE_STATE_DIR      pid file and proxy log (default ~/.local/state/gcp-gate)
set -eu

prog=gcp-gate-start
here=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd)
config=${GCP_GATE_CONFIG:-/etc/gcp-gate/config.toml}
timeout=${GCP_GATE_START_TIMEOUT:-30}
state=${GCP_GATE_STATE_DIR:-${XDG_STATE_HOME:-${HOME:-/tmp}/.local/state}/gcp-gate}
socket=${GCP_GATE_SOCKET_PATH:-}

case $timeout in
'' | *[!0-9]*)
  echo "$prog: GCP_GATE_START_TIMEOUT must be whole seconds, got '$timeout'" >&2
  exit 2
  ;;
esac
if [ -z "$socket" ] && [ -r "$config" ]; then
  socket=$(sed -n 's/^socket_path = "\(.*\)"$/\1/p' "$config" | head -n 1)
fi
if [ -z "$socket" ]; then
  echo "$prog: no socket path; set socket_path in $config or GCP_GATE_SOCKET_PATH" >&2
  exit 2
fi

# The proxy log may mention paths and errors, never tokens; keep it private anyway.
mkdir -p "$state"
chmod 700 "$state"
pidfile=$state/proxy.pid
childfile=$state/proxy.child.pid
log=$state/proxy.log

# The supervisor (this script again, in its own session; output goes to the log).
supervise() {
  child=
  stopping=
  trap 'stopping=1; [ -z "$child" ] || kill -TERM "$child" 2>/dev/null' TERM INT HUP
  n=0
  while [ -z "$stopping" ]; do
    started=$(date +%s)
    "$here/gcp-metadata-proxy" --config "$config" </dev/null &
    child=$!
    echo "$child" >"$childfile"
    code=0
    wait "$child" || code=$?
    # A trapped signal interrupts wait: wait again for the proxy's own status.
    while kill -0 "$child" 2>/dev/null; do wait "$child" || code=$?; done
    child=
    [ -z "$stopping" ] || break
    lived=$(($(date +%s) - started))
    [ "$lived" -lt 60 ] || n=0
    set -- 0.2 1 2 5 10
    shift "$n"
    delay=$1
    [ "$n" -ge 4 ] || n=$((n + 1))
    echo "$prog: gcp-metadata-proxy exited (status $code) after ${lived}s; restarting in ${delay}s"
    sleep "$delay" &
    wait $! || true
  done
  rm -f "$childfile"
  exit 0
}
if [ "${1:-}" = "--supervise" ]; then
  supervise
fi

# postStartCommand runs at every start: leave a live proxy alone.
if [ -f "$pidfile" ]; then
  pid=$(cat "$pidfile")
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    echo "$prog: gcp-metadata-proxy already running (pid $pid); log: $log"
    exit 0
  fi
fi

ticks=$((timeout * 5))
n=0
while [ ! -S "$socket" ]; do
  if [ "$n" -ge "$ticks" ]; then
    echo "$prog: no gate socket at $socket after ${timeout}s; start gcp-gate on the host, mount its socket directory into the container (see .devcontainer/devcontainer.json), then run $prog again" >&2
    exit 1
  fi
  sleep 0.2
  n=$((n + 1))
done

: >"$log"
chmod 600 "$log"
self=$here/${0##*/}
# A session of its own: the supervisor and the proxy outlive this postStartCommand.
if command -v setsid >/dev/null 2>&1; then
  setsid "$self" --supervise </dev/null >>"$log" 2>&1 &
else
  nohup "$self" --supervise </dev/null >>"$log" 2>&1 &
fi
pid=$!
echo "$pid" >"$pidfile"

n=0
while ! grep -q "listening on http://" "$log"; do
  if ! kill -0 "$pid" 2>/dev/null || grep -q "^$prog: gcp-metadata-proxy exited" "$log"; then
    # It cannot start (port taken, bad config): stop retrying and say why.
    kill -TERM "$pid" 2>/dev/null || true
    rm -f "$pidfile"
    echo "$prog: gcp-metadata-proxy exited: $(grep -v "^$prog:" "$log" | tail -n 1)" >&2
    exit 1
  fi
  if [ "$n" -ge "$ticks" ]; then
    echo "$prog: gcp-metadata-proxy (supervisor pid $pid) did not start listening within ${timeout}s; see $log" >&2
    exit 1
  fi
  sleep 0.2
  n=$((n + 1))
done
addr=$(sed -n 's/.*listening on \(http:\/\/[0-9.:]*\).*/\1/p' "$log" | head -n 1)
echo "$prog: gcp-metadata-proxy (supervisor pid $pid, restarts it if it exits) serving $addr for the gate at $socket; log: $log"
