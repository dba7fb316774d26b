#!/usr/bin/env bash
# Creates (once, cached) the venv with PyPI datumaro 1.13.12 + cvat-sdk 2.80.0
# (tests/formats/requirements.txt) used by tests/formats/datumaro-check.sh and
# benches/compare-formats.sh. Rebuilt when requirements.txt changes.
#
# Environment: DATUMARO_VENV (default <repo>/target/datumaro-venv), PYTHON (default python3).
# Prints the venv's python interpreter as the last line on stdout; progress and the install time
# on stderr. About 560 MB installed; the install took ~15 s on the project VM (PyPI reachable).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "$here/../.." && pwd)"
venv="${DATUMARO_VENV:-$repo_root/target/datumaro-venv}"
case "$venv" in /*) ;; *) venv="$repo_root/$venv" ;; esac
req="$here/requirements.txt"
py="${PYTHON:-python3}"
stamp="$venv/.requirements.sha256"
want="$(sha256sum "$req" | cut -d' ' -f1)"

if [[ ! -x "$venv/bin/python" ]] || [[ "$(cat "$stamp" 2>/dev/null)" != "$want" ]]; then
    if ! "$py" -c 'import ensurepip, venv' 2>/dev/null; then
        sudo=""
        [[ "$(id -u)" -eq 0 ]] || sudo="sudo"
        echo "datumaro-venv: installing python3-venv" >&2
        $sudo apt-get update -qq >&2
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends python3-venv >&2
    fi
    echo "datumaro-venv: creating $venv (datumaro 1.13.12, cvat-sdk 2.80.0; ~560 MB)" >&2
    start=$(date +%s.%N)
    rm -rf "$venv"
    mkdir -p "$(dirname "$venv")"
    "$py" -m venv "$venv" >&2
    "$venv/bin/python" -m pip install -q --disable-pip-version-check -r "$req" >&2
    echo "$want" >"$stamp"
    end=$(date +%s.%N)
    secs=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }')
    echo "$secs" >"$venv/.install-seconds"
    echo "datumaro-venv: installed in ${secs} s" >&2
fi
echo "$venv/bin/python"
