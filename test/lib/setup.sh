# test/lib/setup.sh — shared by test/run and demo/run (sourced, not run).
#
# Installs what a fresh Debian bookworm machine lacks, builds synchub with
# warnings as errors and installs it.  PostgreSQL refuses to run as root, so
# servers and tests run as an unprivileged user (SYNCHUB_USER, default
# postgres) in a directory that user owns.

SYNCHUB_ROOT=${SYNCHUB_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
SYNCHUB_USER=${SYNCHUB_USER:-postgres}
SYNCHUB_PACKAGES="postgresql-15 postgresql-server-dev-15 libcurl4-openssl-dev libssl-dev libipc-run-perl
                  make gcc python3 ca-certificates"

synchub_log() { printf '==> %s\n' "$*" >&2; }

# Install the Debian packages that are missing (root only).
synchub_install_packages() {
    local missing=() p
    for p in $SYNCHUB_PACKAGES "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$(id -u)" -ne 0 ]; then
        synchub_log "missing packages: ${missing[*]} (run as root to install them)"
        return 1
    fi
    synchub_log "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

synchub_pg_config() {
    if [ -n "${PG_CONFIG:-}" ]; then
        echo "$PG_CONFIG"
    elif [ -x /usr/lib/postgresql/15/bin/pg_config ]; then
        echo /usr/lib/postgresql/15/bin/pg_config
    else
        command -v pg_config
    fi
}

# Build with warnings as errors and install.
synchub_build_install() {
    local pgc
    pgc=$(synchub_pg_config)
    synchub_log "building synchub against $("$pgc" --version)"
    make -C "$SYNCHUB_ROOT" -s clean PG_CONFIG="$pgc" >/dev/null
    make -C "$SYNCHUB_ROOT" -s PG_CONFIG="$pgc" COPT="-Werror" >/dev/null
    make -C "$SYNCHUB_ROOT" -s install PG_CONFIG="$pgc" >/dev/null
}

# Copy the source tree to a fresh directory the test user owns; prints it.
synchub_stage() {
    local dir
    dir=$(mktemp -d "${TMPDIR:-/tmp}/synchub.XXXXXX")
    tar -C "$SYNCHUB_ROOT" --exclude=.git --exclude='tmp_check*' --exclude=results \
        --exclude=output_iso -cf - . | tar -C "$dir" -xf -
    if [ "$(id -u)" -eq 0 ]; then
        id "$SYNCHUB_USER" >/dev/null 2>&1 || useradd --system --create-home "$SYNCHUB_USER"
        chown -R "$SYNCHUB_USER" "$dir"
        chmod 755 "$dir"
    fi
    echo "$dir"
}

# Run a command as the test user (or as is when not root).
synchub_as_user() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u "$SYNCHUB_USER" -- env HOME="$(getent passwd "$SYNCHUB_USER" | cut -d: -f6)" \
            PATH="$(dirname "$(synchub_pg_config)"):/usr/local/bin:/usr/bin:/bin" "$@"
    else
        env PATH="$(dirname "$(synchub_pg_config)"):$PATH" "$@"
    fi
}
