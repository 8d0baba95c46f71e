#!/usr/bin/env bash
# Runs the given command with the test environment: PostgreSQL and Redis on this machine when they
# answer (DATABASE_URL / REDIS_URL point at them), the embedded SQLite and no Redis otherwise.
set -euo pipefail
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
if [ -z "${DATABASE_URL:-}" ] && port_open 5432; then
  export DATABASE_URL="postgres://postgres@127.0.0.1:5432/contactcenter"
fi
if [ -z "${REDIS_URL:-}" ] && port_open 6379; then
  export REDIS_URL="redis://127.0.0.1:6379/9"
fi
echo "test services: database=${DATABASE_URL:-sqlite} redis=${REDIS_URL:-none}"
exec "$@"
