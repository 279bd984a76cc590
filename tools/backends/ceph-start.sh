#!/usr/bin/env bash
# A throw-away single-node Ceph (Debian 12's Pacific packages) on 127.0.0.1:
#   1 mon + 1 memstore OSD, pools $CEPH_POOLS (default "images images2"; size 1, application rbd),
#   cephx user client.glance (profile rbd on those pools) like a real Glance deployment.
#   CEPH_WITH_RGW=1 adds radosgw on 127.0.0.1:$CEPH_RGW_PORT (7480): a real S3 and a second Swift.
# Idempotent: the recorded cluster alive and answering -> print env, exit 0. Otherwise stop the
# recorded PIDs, wipe $CEPH_TEST_DIR and build afresh (memstore keeps data in RAM: it is lost anyway).
# Output: $CEPH_TEST_DIR/env.sh. Stop with ceph-stop.sh (only the PIDs recorded in $CEPH_TEST_DIR/pids).
# Knobs: CEPH_TEST_DIR (/tmp/glancelite-ceph; keep it short: admin sockets are unix sockets),
#   CEPH_MON_PORT (6789) CEPH_MON_V2_PORT (3300) CEPH_RGW_PORT (7480) CEPH_MEMSTORE_BYTES (2 GiB).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
LOG_NAME=ceph-start; source "$HERE/common.sh"
D=${CEPH_TEST_DIR:-/tmp/glancelite-ceph}
MON_PORT=${CEPH_MON_PORT:-6789}
MON_V2_PORT=${CEPH_MON_V2_PORT:-3300}
RGW_PORT=${CEPH_RGW_PORT:-7480}
WITH_RGW=${CEPH_WITH_RGW:-0}
MEM_BYTES=${CEPH_MEMSTORE_BYTES:-2147483648}
read -r -a POOLS <<<"${CEPH_POOLS:-images images2}"
CONF=$D/ceph.conf
C() { timeout 60 ceph -c "$CONF" "$@"; }

for b in ceph-mon ceph-osd ceph ceph-authtool monmaptool rados uuidgen; do
  command -v "$b" >/dev/null || die "missing $b: run tools/backends/install-backends.sh" 2
done
[ "$WITH_RGW" != 1 ] || command -v radosgw >/dev/null || die "missing radosgw: run tools/backends/install-backends.sh" 2

if alive "$D/pids/mon.a" && alive "$D/pids/osd.0" && { [ "$WITH_RGW" != 1 ] || alive "$D/pids/rgw"; } \
   && [ -s "$D/env.sh" ] && timeout 10 rados -c "$CONF" lspools >/dev/null 2>&1; then
  log "cluster already running in $D"; cat "$D/env.sh"; exit 0
fi
[ -d "$D/pids" ] && "$HERE/ceph-stop.sh"
rm -rf "$D"; mkdir -p "$D"/{mon/a,osd/0,run,log,pids,crash}

FSID=$(uuidgen)
cat > "$CONF" <<EOT
[global]
fsid = $FSID
mon host = [v2:127.0.0.1:$MON_V2_PORT,v1:127.0.0.1:$MON_PORT]
public addr = 127.0.0.1
public network = 127.0.0.0/8
cluster network = 127.0.0.0/8
auth cluster required = cephx
auth service required = cephx
auth client required = cephx
auth allow insecure global id reclaim = false
keyring = $D/\$name.keyring
run dir = $D/run
admin socket = $D/run/\$name.asok
log file = $D/log/\$name.log
pid file = $D/run/\$name.pid
crash dir = $D/crash
mon data = $D/mon/\$id
osd data = $D/osd/\$id
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
mon data avail warn = 2
mon data avail crit = 1
osd objectstore = memstore
memstore device bytes = $MEM_BYTES
osd op num shards = 1
osd op num threads per shard = 2
osd memory target = 268435456
ms bind ipv4 = true
ms bind ipv6 = false
ms bind port min = 6800
ms bind port max = 7300
# Watches of a client that died (tests kill and freeze things) expire in 5 s, not 30.
osd client watch timeout = 5
[client]
rbd cache = false
EOT

ceph-authtool --create-keyring "$D/mon.keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
ceph-authtool --create-keyring "$D/client.admin.keyring" --gen-key -n client.admin \
  --cap mon 'allow *' --cap osd 'allow *' --cap mgr 'allow *' --cap mds 'allow *' >/dev/null
cp "$D/mon.keyring" "$D/mon.a.keyring"
ceph-authtool "$D/mon.a.keyring" --import-keyring "$D/client.admin.keyring" >/dev/null

monmaptool --create --fsid "$FSID" --addv a "[v2:127.0.0.1:$MON_V2_PORT,v1:127.0.0.1:$MON_PORT]" "$D/monmap" >/dev/null
ceph-mon -c "$CONF" -i a --mkfs --monmap "$D/monmap" --keyring "$D/mon.a.keyring"
# -f keeps each daemon in the foreground so $! is the daemon's own PID.
start_bg "$D/pids/mon.a" "$D/log/mon.a.stdout" ceph-mon -c "$CONF" -i a -f
for i in $(seq 1 100); do C mon stat >/dev/null 2>&1 && break; sleep 0.2; done
C mon stat >/dev/null || die "mon did not come up; see $D/log/mon.a.log"
log "mon up"

OSD_UUID=$(uuidgen); OSD_KEY=$(ceph-authtool --gen-print-key)
printf '{"cephx_secret": "%s"}' "$OSD_KEY" > "$D/osd-new.json"
OSD_ID=$(C osd new "$OSD_UUID" -i "$D/osd-new.json")
[ "$OSD_ID" = 0 ] || die "unexpected osd id $OSD_ID"
ceph-authtool --create-keyring "$D/osd.0.keyring" -n osd.0 --add-key "$OSD_KEY" >/dev/null
ceph-osd -c "$CONF" -i 0 --mkfs --osd-uuid "$OSD_UUID" >"$D/log/osd.0.mkfs" 2>&1
start_bg "$D/pids/osd.0" "$D/log/osd.0.stdout" ceph-osd -c "$CONF" -i 0 -f

caps="" ; for p in "${POOLS[@]}"; do caps="${caps:+$caps, }profile rbd pool=$p"; done
for p in "${POOLS[@]}"; do
  C osd pool create "$p" 8 8 >/dev/null 2>&1
  C osd pool application enable "$p" rbd >/dev/null 2>&1
done
C auth get-or-create client.glance mon 'profile rbd' osd "$caps" -o "$D/client.glance.keyring" >/dev/null 2>&1
# No mgr: PG stats stay unknown, so readiness is proven with real I/O in every pool.
for p in "${POOLS[@]}"; do
  for i in $(seq 1 150); do timeout 5 rados -c "$CONF" -p "$p" put _probe "$CONF" 2>/dev/null && break; sleep 0.2; done
  timeout 10 rados -c "$CONF" -p "$p" rm _probe || die "pool $p not writable; see $D/log/osd.0.log"
done
log "osd.0 up, pools ready: ${POOLS[*]}"

cat > "$D/env.sh" <<EOT
export CEPH_TEST_DIR=$D
export CEPH_CONF=$CONF
export CEPH_FSID=$FSID
export CEPH_ADMIN_KEYRING=$D/client.admin.keyring
export CEPH_GLANCE_USER=glance
export CEPH_GLANCE_KEYRING=$D/client.glance.keyring
export CEPH_RBD_POOL=${POOLS[0]}
export CEPH_RBD_POOLS="${POOLS[*]}"
export CEPH_OSD_PID=$(cat "$D/pids/osd.0")
EOT

if [ "$WITH_RGW" = 1 ]; then
  mkdir -p "$D/rgw"
  C auth get-or-create client.rgw.a mon 'allow rw' osd 'allow rwx' -o "$D/client.rgw.a.keyring" >/dev/null 2>&1
  cat >> "$CONF" <<EOT
[client.rgw.a]
rgw frontends = beast endpoint=127.0.0.1:$RGW_PORT
rgw data = $D/rgw
rgw dns name = localhost
rgw enable apis = s3, swift, swift_auth, admin
rgw swift url prefix = swift
rgw swift account in url = false
rgw thread pool size = 32
EOT
  start_bg "$D/pids/rgw" "$D/log/rgw.stdout" radosgw -c "$CONF" -n client.rgw.a -f
  wait_http "http://127.0.0.1:$RGW_PORT/" 600 || die "radosgw did not come up; see $D/log/client.rgw.a.log"
  log "radosgw up on 127.0.0.1:$RGW_PORT"
  RA() { timeout 60 radosgw-admin -c "$CONF" "$@"; }
  RA user create --uid=glance --display-name=glance --access-key=GLANCEACCESSKEY --secret-key=glancesecretkey >/dev/null
  RA subuser create --uid=glance --subuser=glance:swift --access=full --key-type=swift --secret-key=swiftsecret >/dev/null
  cat >> "$D/env.sh" <<EOT
export RGW_ENDPOINT=http://127.0.0.1:$RGW_PORT
export RGW_ACCESS_KEY=GLANCEACCESSKEY
export RGW_SECRET_KEY=glancesecretkey
export RGW_SWIFT_AUTH_URL=http://127.0.0.1:$RGW_PORT/auth/1.0
export RGW_SWIFT_USER=glance:swift
export RGW_SWIFT_KEY=swiftsecret
EOT
  log "radosgw users created"
fi
log "ready; source $D/env.sh"
cat "$D/env.sh"
