#!/usr/bin/env bash
# The services the test suite talks to for real: PostgreSQL on 127.0.0.1:5432 (trust auth) and
# Redis on 127.0.0.1:6379 (`make test` runs this first). Starts whichever is installed but down,
# and says clearly what is missing.
set -euo pipefail

postgres_up() { pg_isready -q -h 127.0.0.1 -p 5432; }
redis_up() { [ "$(redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null)" = "PONG" ]; }

if ! postgres_up && command -v pg_ctlcluster >/dev/null; then
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
    for _ in $(seq 20); do postgres_up && break; sleep 0.5; done
fi
if ! redis_up && command -v redis-server >/dev/null; then
    redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no
    for _ in $(seq 20); do redis_up && break; sleep 0.5; done
fi

missing=()
postgres_up || missing+=("PostgreSQL on 127.0.0.1:5432 with trust auth for user postgres")
redis_up || missing+=("Redis on 127.0.0.1:6379")
if [ ${#missing[@]} -gt 0 ]; then
    printf 'the tests need these services running: %s\n' "${missing[@]}" >&2
    exit 1
fi
echo "services: PostgreSQL and Redis answer"
