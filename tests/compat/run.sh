#!/usr/bin/env bash
# Compatibility suite: drives a real `frameserver serve` with the unmodified public clients
# cvat-sdk / cvat-cli 2.80.0. Runnable from any directory:
#
#   tests/compat/run.sh                  # whole suite, stops at the first failure (-x)
#   tests/compat/run.sh -k login         # extra arguments go to pytest
#   tests/compat/run.sh --maxfail=1000   # run everything (overrides -x)
#
# Environment:
#   COMPAT_VENV      venv to create/reuse (default: <repo>/target/compat-venv)
#   FRAMESERVER_BIN  server binary (default: <repo>/target/release/frameserver; built if missing)
#   COMPAT_TIMEOUT   per-test watchdog in seconds (default 120)
#   COMPAT_SERVER_LOG  FRAMESERVER_LOG for the server (default info,tower_http=debug)
# The server data dir and log stay under pytest's basetemp (/tmp/pytest-of-$USER/, last 3 runs).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
cd "$repo"

venv="${COMPAT_VENV:-$repo/target/compat-venv}"
case "$venv" in /*) ;; *) venv="$repo/$venv" ;; esac

# Pinned: the SDK/CLI surface changes between versions (spec client-api.md §1).
requirements=(
    "cvat-sdk==2.80.0"
    "cvat-cli==2.80.0"
    "openapi-spec-validator==0.9.0"
    "pytest==9.2.0"
    "Pillow==12.3.0"
    "requests==2.34.2"
    "PyYAML==6.0.3"
)
stamp="$venv/.compat-requirements"
want="$(printf '%s\n' "${requirements[@]}")"

if [ ! -x "$venv/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    if ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
        # Debian ships venv support separately.
        sudo=""
        [ "$(id -u)" -eq 0 ] || sudo="sudo"
        echo "compat: installing python3-venv" >&2
        $sudo apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
    fi
    echo "compat: creating $venv" >&2
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/python" -m pip install -q --disable-pip-version-check "${requirements[@]}"
    printf '%s\n' "${requirements[@]}" >"$stamp"
fi

if [ -n "${FRAMESERVER_BIN:-}" ]; then
    bin="$FRAMESERVER_BIN"
    case "$bin" in /*) ;; *) bin="$repo/$bin" ;; esac
    [ -x "$bin" ] || { echo "compat: FRAMESERVER_BIN=$bin is not an executable" >&2; exit 2; }
else
    bin="$repo/target/release/frameserver"
    if [ ! -x "$bin" ]; then
        echo "compat: $bin not found; building it" >&2
        cargo build --release --bin frameserver
    fi
fi
export FRAMESERVER_BIN="$bin"
export COMPAT_VENV="$venv"

# No stray user configuration, profiles or proxies may leak into the clients.
unset CVAT_ACCESS_TOKEN PASS http_proxy https_proxy HTTP_PROXY HTTPS_PROXY || true
export NO_PROXY="127.0.0.1,localhost" no_proxy="127.0.0.1,localhost"
export PYTHONDONTWRITEBYTECODE=1

set +e
"$venv/bin/python" -m pytest "$here" -q -x "$@"
rc=$?
set -e
exit $rc
