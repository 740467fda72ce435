#!/usr/bin/env bash
# Opens psql on the PostgreSQL cluster `make demo` left behind (stopped) in PG_DIR: starts it on its
# Unix socket, runs psql with the rest of the arguments, and stops it again when psql exits.
#
#   scripts/demo-psql.sh PG_DIR [psql arguments, e.g. -c "SELECT count(*) FROM carehub.event"]
#
# docs/postgres-sink.md has the schema and example queries. As root the server runs as the
# `postgres` user (initdb and postgres refuse root). DEMO_PG_BIN: /usr/lib/postgresql/15/bin.
set -euo pipefail
PG_DIR=${1:?usage: scripts/demo-psql.sh PG_DIR [psql arguments]}
shift
PG_BIN=${DEMO_PG_BIN:-/usr/lib/postgresql/15/bin}
[[ -f "$PG_DIR/data/PG_VERSION" ]] || { echo "demo-psql: $PG_DIR/data is not a PostgreSQL data dir" >&2; exit 1; }
AS_PG=()
if [[ $(id -u) -eq 0 ]]; then
  owner=$(stat -c %u "$PG_DIR/data")
  AS_PG=(setpriv "--reuid=$owner" "--regid=$(stat -c %g "$PG_DIR/data")" --clear-groups --)
fi
PORT=5432  # only names the socket file in PG_DIR: no TCP port is opened
PG_CTL=("${AS_PG[@]}" "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/postgres.log")
"${PG_CTL[@]}" -w -o "-k $PG_DIR -p $PORT -c listen_addresses=''" start >/dev/null
trap '"${PG_CTL[@]}" -m fast -w stop >/dev/null' EXIT
"$PG_BIN/psql" -X -d "host=$PG_DIR port=$PORT dbname=carehub user=carehub" "$@"
