#!/usr/bin/env bash
# Installs what `make test` / `make demo` need on a fresh Debian 12/13 machine:
#   - (as root, when missing) the PostgreSQL server and its matching postgresql-N-cron;
#   - a virtualenv in .venv with the package and its dev dependencies.
# Idempotent: a second run only checks.
set -euo pipefail
cd "$(dirname "$0")/.."

PG_MAJORS="17 16 15"   # supported majors, preferred first when several are installed

installed_major() {
    local m
    for m in $PG_MAJORS; do
        if [ -x "/usr/lib/postgresql/$m/bin/postgres" ]; then echo "$m"; return 0; fi
    done
    return 1
}

need_apt_update=1
apt_install() {
    if [ "$(id -u)" != "0" ]; then
        echo "bootstrap: missing Debian packages: $* (run as root or install them)" >&2
        return 1
    fi
    if [ "$need_apt_update" = 1 ]; then
        DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
        need_apt_update=0
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

if [ -z "${DATABASE_URL:-}${CRMINDEX_TEST_DSN:-}" ] || [ "${CRMINDEX_BOOTSTRAP_PG:-0}" = 1 ]; then
    if ! major=$(installed_major); then
        echo "bootstrap: installing the PostgreSQL server"
        apt_install postgresql postgresql-contrib
        major=$(installed_major)
    fi
    if [ ! -f "/usr/lib/postgresql/$major/lib/pg_cron.so" ]; then
        echo "bootstrap: installing postgresql-$major-cron"
        apt_install "postgresql-$major-cron"
    fi
    # keep Debian's own cluster from holding ports or memory we may want; we run our own clusters
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    if ! "$PY" -m venv .venv >/dev/null 2>&1; then
        rm -rf .venv
        echo "bootstrap: installing python3-venv"
        apt_install python3-venv
        "$PY" -m venv .venv
    fi
fi
stamp=.venv/.crmindex-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    echo "bootstrap: installing Python dependencies into .venv"
    .venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip >/dev/null
    .venv/bin/python -m pip install -q --disable-pip-version-check -e ".[dev]"
    touch "$stamp"
fi
