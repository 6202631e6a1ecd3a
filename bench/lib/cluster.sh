# bench/lib/cluster.sh — a throwaway PostgreSQL cluster for benchmarks
# (sourced).  Builds and installs synchub first (test/lib/setup.sh), then
# starts a server that preloads it, as the unprivileged test user.
#
#   . bench/lib/cluster.sh
#   bench_start            # sets BENCH_PORT, BENCH_DIR; creates database "bench" with synchub
#   bench_psql -c "..."    # psql against it (extra args passed through)
#   bench_pgbench ...      # pgbench against it
#   bench_ratio A B        # prints A/B with two decimals
#   bench_bind SQL FILE    # SQL with FILE's contents as bind parameter $1 (bench/lib/bind.c)
#   (the cluster is stopped and removed on exit)

. "$(dirname "${BASH_SOURCE[0]}")/../../test/lib/setup.sh"

BENCH_PORT=${BENCH_PORT:-55432}

bench_start() {
    synchub_install_packages || exit 1
    if [ -z "${BENCH_NO_BUILD:-}" ]; then synchub_build_install || exit 1; fi
    BENCH_DIR=$(mktemp -d "${TMPDIR:-/tmp}/synchub-bench.XXXXXX")
    [ "$(id -u)" -eq 0 ] && chown "$SYNCHUB_USER" "$BENCH_DIR"
    trap bench_stop EXIT
    synchub_as_user initdb -D "$BENCH_DIR/data" -A trust -U postgres >/dev/null
    cat >>"$BENCH_DIR/data/postgresql.conf" <<CONF
shared_preload_libraries = 'synchub'
listen_addresses = ''
unix_socket_directories = '$BENCH_DIR'
port = $BENCH_PORT
shared_buffers = 512MB
max_wal_size = 4GB
checkpoint_timeout = 30min
max_worker_processes = 16
max_connections = 200
${BENCH_EXTRA_CONF:-}
CONF
    synchub_as_user pg_ctl -D "$BENCH_DIR/data" -l "$BENCH_DIR/server.log" -w start >/dev/null
    bench_psql -d postgres -c "CREATE DATABASE bench" >/dev/null
    bench_psql -c "CREATE EXTENSION synchub" >/dev/null
}

bench_psql() {
    synchub_as_user psql -X -q -v ON_ERROR_STOP=1 -h "$BENCH_DIR" -p "$BENCH_PORT" -U postgres -d bench "$@"
}

bench_pgbench() {
    synchub_as_user pgbench -h "$BENCH_DIR" -p "$BENCH_PORT" -U postgres "$@"
}

# A driver sends a large argument as a bind parameter, not as a SQL
# literal; bench_bind does the same through libpq.
bench_bind() {
    if [ ! -x "$BENCH_DIR/bind" ]; then
        cc -O2 -o "$BENCH_DIR/bind" "$(dirname "${BASH_SOURCE[0]}")/bind.c" \
            -I"$("$(synchub_pg_config)" --includedir)" -L"$("$(synchub_pg_config)" --libdir)" -lpq || return 1
        chmod 755 "$BENCH_DIR/bind"
    fi
    synchub_as_user "$BENCH_DIR/bind" "host=$BENCH_DIR port=$BENCH_PORT user=postgres dbname=bench" "$@"
}

bench_stop() {
    [ -n "${BENCH_DIR:-}" ] || return 0
    synchub_as_user pg_ctl -D "$BENCH_DIR/data" -m fast -w stop >/dev/null 2>&1
    rm -rf "$BENCH_DIR"
}

bench_ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0) print "n/a"; else printf "%.2f", a / b }'; }
