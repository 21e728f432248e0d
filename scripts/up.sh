#!/usr/bin/env bash
# The main job on one machine: installs what is needed, starts the storage server
# (SQLite and a blob directory under $NETVOL_SERVER_DATA_DIR, default /var/lib/netvol)
# in the background, makes sure volume `data` exists, and mounts it at
# $NETVOL_MOUNTPOINT (default /mnt/data).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
bin=$PWD/.venv/bin

data_dir=${NETVOL_SERVER_DATA_DIR:-/var/lib/netvol}
listen=${NETVOL_SERVER_LISTEN:-127.0.0.1:7450}
size=${NETVOL_DATA_SIZE:-5Gi}
mountpoint=${NETVOL_MOUNTPOINT:-/mnt/data}
export NETVOL_SERVER=$listen NETVOL_TOKEN_FILE=$data_dir/token
mkdir -p "$data_dir"

if "$bin/volctl" df >/dev/null 2>&1; then
    echo "storage server already running on $listen"
else
    echo "starting storage server on $listen (data in $data_dir, log in $data_dir/server.log)"
    setsid "$bin/netvol-server" --data-dir "$data_dir" --listen "$listen" \
        >>"$data_dir/server.log" 2>&1 </dev/null &
    echo $! >"$data_dir/server.pid"
    for _ in $(seq 100); do
        "$bin/volctl" df >/dev/null 2>&1 && break
        sleep 0.2
    done
    "$bin/volctl" df >/dev/null || { tail -n 20 "$data_dir/server.log"; exit 1; }
fi

"$bin/volctl" info data >/dev/null 2>&1 || "$bin/volctl" create data --size "$size" >/dev/null
mkdir -p "$mountpoint"
if grep -q " $mountpoint fuse.netvol " /proc/mounts; then
    echo "volume data already mounted at $mountpoint"
else
    "$bin/volctl" mount data "$mountpoint"
fi
"$bin/volctl" ls
df -h "$mountpoint"
echo
echo "token: $NETVOL_TOKEN_FILE; use: export NETVOL_SERVER=$listen NETVOL_TOKEN_FILE=$NETVOL_TOKEN_FILE"
echo "stop:  $bin/volctl umount $mountpoint; kill \$(cat $data_dir/server.pid)"
