#!/usr/bin/env bash
# Start or stop a PostgreSQL for the tests that claim multi-worker safety, on loopback only.
#   scripts/postgres.sh start   prints the URL for VPSCTL_TEST_POSTGRES_URL
#   scripts/postgres.sh stop
set -euo pipefail
action=${1:-start}
version=$(ls /etc/postgresql 2>/dev/null | sort -n | tail -n 1)
if [ -z "$version" ]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >/dev/null
    version=$(ls /etc/postgresql | sort -n | tail -n 1)
fi
case "$action" in
start)
    if ! pg_lsclusters -h | awk '{print $4}' | grep -q online; then
        pg_ctlcluster "$version" main start -- -o "-c listen_addresses=127.0.0.1" >/dev/null
    fi
    su postgres -c "psql -qtAc \"SELECT 1 FROM pg_roles WHERE rolname='vpsctl'\"" | grep -q 1 ||
        su postgres -c "psql -qc \"CREATE ROLE vpsctl LOGIN PASSWORD 'vpsctl-test'\"" >/dev/null
    su postgres -c "psql -qtAc \"SELECT 1 FROM pg_database WHERE datname='vpsctl_test'\"" | grep -q 1 ||
        su postgres -c "createdb -O vpsctl vpsctl_test" >/dev/null
    echo "postgresql+psycopg://vpsctl:vpsctl-test@127.0.0.1:5432/vpsctl_test"
    ;;
stop)
    pg_ctlcluster "$version" main stop >/dev/null 2>&1 || true
    ;;
*)
    echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
