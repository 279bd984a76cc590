#!/usr/bin/env bash
# OpenStack Swift all-in-one on 127.0.0.1 (PyPI `swift` from .venv-tools, or $SWIFT_BIN_DIR):
#   memcached + account/container/object servers (1 replica, 1 device, 2^6 partitions)
#   + proxy :$SWIFT_PROXY_PORT (8080) with tempauth (test:tester / testing), dlo, slo, bulk
#   + a second proxy :$SWIFT_SHORT_PROXY_PORT (8081) on the same cluster whose tempauth tokens live
#     only $SWIFT_SHORT_TOKEN_LIFE seconds (3): tests of token expiry during an upload.
#   + keystone mode, only when SWIFT_KEYSTONE_URL (keystone's root, e.g. http://127.0.0.1:5000) is set:
#     a third proxy :$SWIFT_KEYSTONE_PROXY_PORT (8082) on the same cluster with keystonemiddleware
#     authtoken + swift keystoneauth (operator roles admin, member; accounts AUTH_<project id>).
#     authtoken validates tokens as SWIFT_KEYSTONE_USER / SWIFT_KEYSTONE_PASSWORD in project
#     SWIFT_KEYSTONE_PROJECT (default domain), a service user the caller provisions (role `service`,
#     which keystone's default policy lets validate tokens). The object-store endpoint in keystone's
#     catalog is the caller's too: http://127.0.0.1:$SWIFT_KEYSTONE_PROXY_PORT/v1/AUTH_$(project_id)s.
# tempauth keeps tokens in memcache: without memcached every request is 401.
# Idempotent: everything recorded alive and answering -> print env, exit 0; otherwise wipe and restart.
# Output: $SWIFT_TEST_DIR/env.sh (SWIFT_AUTH_URL, SWIFT_USER, SWIFT_KEY, SWIFT_ADMIN_USER/KEY (reseller admin), SWIFT_SHORT_AUTH_URL...;
#   in keystone mode also SWIFT_KEYSTONE_PROXY_URL and SWIFT_KEYSTONE_AUTH_URL).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd); ROOT=$(cd "$HERE/../.." && pwd)
LOG_NAME=swift-start; source "$HERE/common.sh"
D=${SWIFT_TEST_DIR:-/tmp/glancelite-swift}
PROXY_PORT=${SWIFT_PROXY_PORT:-8080}
SHORT_PORT=${SWIFT_SHORT_PROXY_PORT:-8081}
TOKEN_LIFE=${SWIFT_SHORT_TOKEN_LIFE:-3}
BASE=${SWIFT_BASE_PORT:-6210}
MC_PORT=${SWIFT_MEMCACHE_PORT:-11311}
OBJ_PORT=$BASE; CONT_PORT=$((BASE + 1)); ACC_PORT=$((BASE + 2))
B=${SWIFT_BIN_DIR:-$ROOT/.venv-tools/bin}
[ -x "$B/swift-proxy-server" ] || B=$(dirname "$(command -v swift-proxy-server || echo /nonexistent/x)")
[ -x "$B/swift-proxy-server" ] || die "swift-proxy-server not found: run tools/backends/install-backends.sh" 2
MEMCACHED=$(command -v memcached || echo /usr/bin/memcached)
[ -x "$MEMCACHED" ] || die "memcached not found (apt-get install memcached)" 2
AUTH_URL=http://127.0.0.1:$PROXY_PORT/auth/v1.0
DAEMONS=(memcached object container account proxy proxy-short)
KS_URL=${SWIFT_KEYSTONE_URL:-}
KS_PORT=${SWIFT_KEYSTONE_PROXY_PORT:-8082}
if [ -n "$KS_URL" ]; then
  KS_URL=${KS_URL%/}; KS_URL=${KS_URL%/v3}
  [ -n "${SWIFT_KEYSTONE_USER:-}" ] && [ -n "${SWIFT_KEYSTONE_PASSWORD:-}" ] \
    || die "SWIFT_KEYSTONE_URL is set: SWIFT_KEYSTONE_USER and SWIFT_KEYSTONE_PASSWORD are needed too" 2
  KS_PROJECT=${SWIFT_KEYSTONE_PROJECT:-service}
  PROXY_PY=$(head -1 "$B/swift-proxy-server" | sed 's/^#! *//')
  "$PROXY_PY" -c 'import keystonemiddleware.auth_token' 2>/dev/null \
    || die "keystonemiddleware not importable by $PROXY_PY: run tools/backends/install-backends.sh" 2
  DAEMONS+=(proxy-keystone)
fi

up=1
for n in "${DAEMONS[@]}"; do alive "$D/pids/$n" || up=0; done
if [ $up = 1 ] && curl -fs -o /dev/null "http://127.0.0.1:$PROXY_PORT/healthcheck" \
   && curl -fs -o /dev/null "http://127.0.0.1:$SHORT_PORT/healthcheck" \
   && { [ -z "$KS_URL" ] || curl -fs -o /dev/null "http://127.0.0.1:$KS_PORT/healthcheck"; }; then
  log "swift already running in $D"; cat "$D/env.sh"; exit 0
fi
[ -d "$D/pids" ] && "$HERE/swift-stop.sh"
rm -rf "$D"; mkdir -p "$D"/{etc,node/d1,log,pids,cache}
# Swift keeps object metadata in user xattrs.
python3 -c "import os,sys; p=sys.argv[1]+'/node/d1/.x'; open(p,'w').close(); os.setxattr(p,'user.t',b'1'); os.remove(p)" "$D" \
  || die "the filesystem under $D has no user xattrs (Swift needs them); set SWIFT_TEST_DIR elsewhere"

E=$D/etc
cat > "$E/swift.conf" <<EOT
[swift-hash]
swift_hash_path_prefix = glancelite
swift_hash_path_suffix = glancelite
[storage-policy:0]
name = gold
default = yes
EOT
server_conf() {  # $1 type $2 port
  cat <<EOT
[DEFAULT]
devices = $D/node
mount_check = false
disable_fallocate = true
bind_ip = 127.0.0.1
bind_port = $2
workers = 0
swift_dir = $E
user = $(id -un)
log_name = $1-server
log_address = /nonexistent
[pipeline:main]
pipeline = healthcheck $1-server
[app:$1-server]
use = egg:swift#$1
[filter:healthcheck]
use = egg:swift#healthcheck
EOT
}
server_conf object "$OBJ_PORT" > "$E/object-server.conf"
server_conf container "$CONT_PORT" > "$E/container-server.conf"
server_conf account "$ACC_PORT" > "$E/account-server.conf"
proxy_conf() {  # $1 port $2 token_life $3 reseller_prefix [$4 auth filters in the pipeline]
  cat <<EOT
[DEFAULT]
bind_ip = 127.0.0.1
bind_port = $1
workers = 0
swift_dir = $E
user = $(id -un)
log_name = proxy-server-$1
log_address = /nonexistent
[pipeline:main]
pipeline = catch_errors gatekeeper healthcheck proxy-logging cache listing_formats bulk ${4:-tempauth} copy slo dlo proxy-logging proxy-server
[app:proxy-server]
use = egg:swift#proxy
account_autocreate = true
allow_account_management = true
[filter:tempauth]
use = egg:swift#tempauth
token_life = $2
# tempauth hands out the user's cached token while it lives: a prefix of its own keeps the
# short-lived proxy from reusing the other proxy's day-long tokens.
reseller_prefix = $3
user_admin_admin = admin .admin .reseller_admin
user_test_tester = testing .admin
user_test2_tester2 = testing2 .admin
[filter:cache]
use = egg:swift#memcache
memcache_servers = 127.0.0.1:$MC_PORT
[filter:catch_errors]
use = egg:swift#catch_errors
[filter:gatekeeper]
use = egg:swift#gatekeeper
[filter:healthcheck]
use = egg:swift#healthcheck
[filter:proxy-logging]
use = egg:swift#proxy_logging
[filter:listing_formats]
use = egg:swift#listing_formats
[filter:bulk]
use = egg:swift#bulk
[filter:copy]
use = egg:swift#copy
[filter:dlo]
use = egg:swift#dlo
# Swift throttles a DLO read to 1 segment/s after 10 segments by default; test images use small segments.
rate_limit_segments_per_sec = 0
[filter:slo]
use = egg:swift#slo
rate_limit_segments_per_sec = 0
EOT
}
proxy_conf "$PROXY_PORT" 86400 AUTH > "$E/proxy-server.conf"
proxy_conf "$SHORT_PORT" "$TOKEN_LIFE" SHORT > "$E/proxy-short.conf"
if [ -n "$KS_URL" ]; then
  # The same proxy with keystone in place of tempauth (its [filter:tempauth] stays, unused).
  # authtoken keeps validated tokens in swift's memcache (cache = swift.cache, set by the cache filter);
  # delay_auth_decision lets keystoneauth answer: 401 without a valid token, 403 without an operator role.
  ( umask 077
    proxy_conf "$KS_PORT" 86400 AUTH "authtoken keystoneauth"
    cat <<EOT
[filter:authtoken]
paste.filter_factory = keystonemiddleware.auth_token:filter_factory
www_authenticate_uri = $KS_URL
auth_url = $KS_URL
auth_type = password
interface = public
username = $SWIFT_KEYSTONE_USER
password = $SWIFT_KEYSTONE_PASSWORD
project_name = $KS_PROJECT
user_domain_id = default
project_domain_id = default
delay_auth_decision = True
cache = swift.cache
include_service_catalog = False
[filter:keystoneauth]
use = egg:swift#keystoneauth
operator_roles = admin, member
reseller_prefix = AUTH_
EOT
  ) > "$E/proxy-keystone.conf"
fi

# One interpreter builds all three rings (swift-ring-builder x9 would cost seconds of start-up).
PY=$(head -1 "$B/swift-ring-builder" | sed 's/^#! *//')
"$PY" - "$E" "$OBJ_PORT" "$CONT_PORT" "$ACC_PORT" <<'PYEOF'
import sys
from swift.common.ring import RingBuilder
etc = sys.argv[1]
for name, port in zip(("object", "container", "account"), map(int, sys.argv[2:5])):
    builder = RingBuilder(6, 1, 1)
    builder.add_dev({"id": 0, "region": 1, "zone": 1, "ip": "127.0.0.1", "port": port, "device": "d1", "weight": 1})
    builder.rebalance()
    builder.save(f"{etc}/{name}.builder")
    builder.get_ring().save(f"{etc}/{name}.ring.gz")
PYEOF
log "rings built"

start_bg "$D/pids/memcached" "$D/log/memcached.log" "$MEMCACHED" -l 127.0.0.1 -p "$MC_PORT" -U 0 -m 64 -u "$(id -un)"
for n in object container account; do
  start_bg "$D/pids/$n" "$D/log/$n.log" "$B/swift-$n-server" "$E/$n-server.conf"
done
start_bg "$D/pids/proxy" "$D/log/proxy.log" "$B/swift-proxy-server" "$E/proxy-server.conf"
start_bg "$D/pids/proxy-short" "$D/log/proxy-short.log" "$B/swift-proxy-server" "$E/proxy-short.conf"
PORTS=("$OBJ_PORT" "$CONT_PORT" "$ACC_PORT" "$PROXY_PORT" "$SHORT_PORT")
if [ -n "$KS_URL" ]; then
  start_bg "$D/pids/proxy-keystone" "$D/log/proxy-keystone.log" "$B/swift-proxy-server" "$E/proxy-keystone.conf"
  PORTS+=("$KS_PORT")
fi
for port in "${PORTS[@]}"; do
  wait_http "http://127.0.0.1:$port/healthcheck" 200 || die "swift server on port $port did not come up; see $D/log"
done
log "servers answering"
# Prove auth and an account write work end to end.
TOKEN=$(curl -fsi -H 'X-Auth-User: test:tester' -H 'X-Auth-Key: testing' "$AUTH_URL" | tr -d '\r' \
  | awk -F': ' 'tolower($1)=="x-auth-token"{print $2}')
[ -n "$TOKEN" ] || die "tempauth did not issue a token; see $D/log/proxy.log"
curl -fs -o /dev/null -X PUT -H "X-Auth-Token: $TOKEN" "http://127.0.0.1:$PROXY_PORT/v1/AUTH_test/_probe"
curl -fs -o /dev/null -X DELETE -H "X-Auth-Token: $TOKEN" "http://127.0.0.1:$PROXY_PORT/v1/AUTH_test/_probe"
if [ -n "$KS_URL" ]; then
  # Keystone mode end to end: no token -> 401 naming keystone; the service user's own token is
  # validated by authtoken with the service user's credentials (any answer but 401: 2xx with an
  # operator role on its project, 403 without).
  SWIFT_KEYSTONE_PROJECT=$KS_PROJECT "$PY" - "$KS_URL" "http://127.0.0.1:$KS_PORT" <<'PYEOF' \
    || die "the keystone proxy on port $KS_PORT does not authenticate with $KS_URL; see $D/log/proxy-keystone.log"
import json, os, sys, urllib.error, urllib.request
keystone, proxy = sys.argv[1:3]
def call(req):
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, exc.read()
status, headers, _ = call(urllib.request.Request(f"{proxy}/v1/AUTH_probe", method="HEAD"))
challenges = headers.get_all("WWW-Authenticate") or []
if status != 401 or not any("keystone" in c.lower() for c in challenges):
    sys.exit(f"tokenless request: {status} {challenges}, expected 401 naming keystone")
scope = {"project": {"name": os.environ["SWIFT_KEYSTONE_PROJECT"], "domain": {"id": "default"}}}
user = {"name": os.environ["SWIFT_KEYSTONE_USER"], "domain": {"id": "default"},
        "password": os.environ["SWIFT_KEYSTONE_PASSWORD"]}
body = {"auth": {"identity": {"methods": ["password"], "password": {"user": user}}, "scope": scope}}
status, headers, raw = call(urllib.request.Request(
    f"{keystone}/v3/auth/tokens", data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}))
if status != 201:
    sys.exit(f"keystone refused the service user {user['name']}: {status} {raw[:300]!r}")
project_id = json.loads(raw)["token"]["project"]["id"]
req = urllib.request.Request(f"{proxy}/v1/AUTH_{project_id}", method="HEAD",
                             headers={"X-Auth-Token": headers["X-Subject-Token"]})
status, _, _ = call(req)
if status == 401 or status >= 500:
    sys.exit(f"the service user's own token: {status} from the keystone proxy (authtoken could not validate it)")
PYEOF
  log "keystone proxy authenticates against $KS_URL"
fi

cat > "$D/env.sh" <<EOT
export SWIFT_TEST_DIR=$D
export SWIFT_AUTH_URL=$AUTH_URL
export SWIFT_USER=test:tester
export SWIFT_KEY=testing
export SWIFT_ADMIN_USER=admin:admin
export SWIFT_ADMIN_KEY=admin
export SWIFT_STORAGE_URL=http://127.0.0.1:$PROXY_PORT/v1/AUTH_test
export SWIFT_PROXY_PID=$(cat "$D/pids/proxy")
export SWIFT_SHORT_AUTH_URL=http://127.0.0.1:$SHORT_PORT/auth/v1.0
export SWIFT_SHORT_TOKEN_LIFE=$TOKEN_LIFE
EOT
if [ -n "$KS_URL" ]; then
  cat >> "$D/env.sh" <<EOT
export SWIFT_KEYSTONE_PROXY_URL=http://127.0.0.1:$KS_PORT
export SWIFT_KEYSTONE_AUTH_URL=$KS_URL/v3
export SWIFT_KEYSTONE_PROXY_PID=$(cat "$D/pids/proxy-keystone")
EOT
fi
log "ready; source $D/env.sh"
cat "$D/env.sh"
