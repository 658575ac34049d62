#!/bin/sh
# The stand-in's start: initdb on first start (password auth for TCP, the
# official image's POSTGRES_* variables), then postgres as the postgres user.
set -eu
user=${POSTGRES_USER:-postgres}
mkdir -p "$PGDATA" /run/postgresql
chown postgres "$PGDATA" /run/postgresql
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    printf '%s\n' "${POSTGRES_PASSWORD:?POSTGRES_PASSWORD is required, as by the official image}" >/tmp/pwfile
    chown postgres /tmp/pwfile
    runuser -u postgres -- initdb -D "$PGDATA" -U "$user" --pwfile=/tmp/pwfile --auth-local=trust --auth-host=scram-sha-256 >/dev/null
    rm /tmp/pwfile
    echo "listen_addresses = '*'" >>"$PGDATA/postgresql.conf"
    echo "host all all all scram-sha-256" >>"$PGDATA/pg_hba.conf"
    if [ -n "${POSTGRES_DB:-}" ] && [ "$POSTGRES_DB" != postgres ]; then
        runuser -u postgres -- pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start >/dev/null
        runuser -u postgres -- psql -U "$user" -d postgres -qc "CREATE DATABASE \"$POSTGRES_DB\""
        runuser -u postgres -- pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
    fi
fi
if [ "${1:-}" = postgres ]; then shift; fi
exec runuser -u postgres -- postgres -D "$PGDATA" "$@"
