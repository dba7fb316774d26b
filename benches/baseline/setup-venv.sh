#!/usr/bin/env bash
# Creates (idempotently) the Python venv for the CVAT manifest baseline and
# installs benches/baseline/requirements.txt into it.
# The venv path can be overridden with BASELINE_VENV; the default lives in the
# repository's target/ directory, which git ignores.
# The last line printed on stdout is the venv's python interpreter.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "$here/../.." && pwd)"
venv="${BASELINE_VENV:-$repo_root/target/baseline-venv}"
req="$here/requirements.txt"
py="${PYTHON:-python3}"

stamp="$venv/.requirements.sha256"
want="$(sha256sum "$req" | cut -d' ' -f1)"

if [[ ! -x "$venv/bin/python" ]]; then
    mkdir -p "$(dirname "$venv")"
    "$py" -m venv "$venv" >&2
fi

if [[ ! -f "$stamp" ]] || [[ "$(cat "$stamp")" != "$want" ]]; then
    "$venv/bin/python" -m pip install --disable-pip-version-check -q -r "$req" >&2
    echo "$want" > "$stamp"
fi

echo "$venv/bin/python"
