#!/usr/bin/env bash
# A private RabbitMQ (Debian's rabbitmq-server) for the notification tests: AMQP on
# 127.0.0.1:$RABBITMQ_PORT (default 5673), its own data directory, its own epmd on
# 127.0.0.1:$RABBITMQ_EPMD_PORT started and stopped by PID here (never the host's epmd on 4369),
# Erlang distribution on 127.0.0.1:$RABBITMQ_DIST_PORT only, its own Erlang cookie ($HOME is the data directory).
# Idempotent: the recorded PIDs alive and the port answering -> print env and exit 0; otherwise start fresh.
# Output: $RABBITMQ_TEST_DIR/env.sh (RABBITMQ_TRANSPORT_URL, RABBITMQ_PORT, RABBITMQ_PID).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
LOG_NAME=rabbitmq-start; source "$HERE/common.sh"
D=${RABBITMQ_TEST_DIR:-/tmp/glancelite-rabbitmq}
PORT=${RABBITMQ_PORT:-5673}
DIST_PORT=${RABBITMQ_DIST_PORT:-25673}
EPMD_PORT=${RABBITMQ_EPMD_PORT:-4370}
BIN=${RABBITMQ_BIN_DIR:-/usr/lib/rabbitmq/bin}
# The real start script, not /usr/sbin's wrapper (which switches to the rabbitmq user and its paths).
[ -x "$BIN/rabbitmq-server" ] || die "rabbitmq-server not found in $BIN: run tools/backends/install-backends.sh" 2
command -v epmd >/dev/null || die "epmd not found (Debian's erlang-base): run tools/backends/install-backends.sh" 2
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

if alive "$D/pids/vm" && alive "$D/pids/epmd" && port_open "$PORT"; then
  log "rabbitmq already running"; cat "$D/env.sh"; exit 0
fi
[ -d "$D/pids" ] && "$HERE/rabbitmq-stop.sh" keep
rm -rf "$D"; mkdir -p "$D"/{pids,log,mnesia}
cat > "$D/rabbitmq.conf" <<EOT
listeners.tcp.default = 127.0.0.1:$PORT
log.console = true
log.console.level = warning
log.file = false
EOT
echo "[]." > "$D/enabled_plugins"
: > "$D/rabbitmq-env.conf"

export HOME=$D
export RABBITMQ_NODENAME=glancelite$PORT@localhost
export RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 RABBITMQ_NODE_PORT=$PORT RABBITMQ_DIST_PORT=$DIST_PORT
# The VM writes its PID there (and removes the file as it stops); it is copied to pids/vm below.
export RABBITMQ_MNESIA_BASE=$D/mnesia RABBITMQ_LOG_BASE=$D/log RABBITMQ_PID_FILE=$D/beam.pid
export RABBITMQ_CONF_ENV_FILE=$D/rabbitmq-env.conf RABBITMQ_CONFIG_FILE=$D/rabbitmq.conf
export RABBITMQ_ENABLED_PLUGINS_FILE=$D/enabled_plugins RABBITMQ_LOGS=-
export ERL_EPMD_PORT=$EPMD_PORT ERL_EPMD_ADDRESS=127.0.0.1
# Never let erl start an epmd of its own (it would outlive us, unrecorded); distribution on loopback only.
export RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-start_epmd false -kernel inet_dist_use_interface {127,0,0,1}"

start_bg "$D/pids/epmd" "$D/log/epmd.log" epmd -port "$EPMD_PORT" -address 127.0.0.1
for _ in $(seq 1 50); do port_open "$EPMD_PORT" && break; sleep 0.1; done
port_open "$EPMD_PORT" || die "epmd did not listen on $EPMD_PORT; see $D/log/epmd.log"
start_bg "$D/pids/rabbit" "$D/log/rabbit.log" "$BIN/rabbitmq-server"
for _ in $(seq 1 600); do
  port_open "$PORT" && break
  alive "$D/pids/rabbit" || { tail -20 "$D/log/rabbit.log" >&2; die "rabbitmq-server exited; see $D/log/rabbit.log"; }
  sleep 0.1
done
port_open "$PORT" || { tail -20 "$D/log/rabbit.log" >&2; die "rabbitmq did not listen on $PORT in 60 s; see $D/log/rabbit.log"; }
for _ in $(seq 1 50); do [ -s "$D/beam.pid" ] && break; sleep 0.1; done
[ -s "$D/beam.pid" ] || die "rabbitmq wrote no PID file ($D/beam.pid)"
cp "$D/beam.pid" "$D/pids/vm"
cat > "$D/env.sh" <<EOT
export RABBITMQ_TEST_DIR=$D
export RABBITMQ_PORT=$PORT
export RABBITMQ_PID=$(cat "$D/pids/vm")
export RABBITMQ_TRANSPORT_URL=rabbit://guest:guest@127.0.0.1:$PORT/
EOT
log "ready; source $D/env.sh"
cat "$D/env.sh"
