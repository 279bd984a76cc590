#!/usr/bin/env bash
# Install glancelite into .venv and serve it on embedded defaults:
# SQLite and file stores under ./data, on 127.0.0.1:9292 (override with GLANCELITE_DATA, GLANCELITE_PORT).
set -euo pipefail
source "$(dirname "$0")/venv.sh"
DATA=${GLANCELITE_DATA:-$ROOT/data}
PORT=${GLANCELITE_PORT:-9292}
mkdir -p "$DATA"
CONF="$DATA/glance-api.conf"
if [ ! -e "$CONF" ]; then
  cat > "$CONF" <<CONF
[DEFAULT]
bind_host = 127.0.0.1
bind_port = $PORT
workers = 2
enabled_backends = local:file
enabled_import_methods = [glance-direct,web-download,copy-image]

[database]
connection = sqlite:///$DATA/glance.sqlite

[glance_store]
default_backend = local

[local]
filesystem_store_datadir = $DATA/images
store_description = Local disk

[os_glance_staging_store]
filesystem_store_datadir = $DATA/staging

[os_glance_tasks_store]
filesystem_store_datadir = $DATA/tasks

[healthcheck]
disable_by_file_path = $DATA/healthcheck_disable
CONF
  echo "wrote $CONF"
fi
"$VENV/bin/glancelite-manage" --config-file "$CONF" db sync
echo "glancelite on http://127.0.0.1:$PORT (config $CONF); Ctrl-C stops it"
exec "$VENV/bin/glancelite-api" --config-file "$CONF"
