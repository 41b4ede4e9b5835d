#!/bin/bash
# The streaming replica: on first start, a base backup of the primary with
# standby.signal and primary_conninfo written (-R) and a replication slot (-C) so
# the primary keeps the WAL it has not replayed; then a hot standby.
set -euo pipefail
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  export PGPASSWORD="${REPLICATION_PASSWORD:?set REPLICATION_PASSWORD}"
  until pg_basebackup -h db -U replicator -D "$PGDATA" -R -X stream -C -S replica1 -P; do
    echo "waiting for the primary..."; rm -rf "${PGDATA:?}"/*; sleep 2
  done
  chmod 700 "$PGDATA"
fi
exec postgres -c hot_standby=on -c hot_standby_feedback=on
