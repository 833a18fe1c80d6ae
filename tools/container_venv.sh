#!/usr/bin/env bash
# Builds .venv-container: Python 3.9 with exactly the Python packages of the SageMaker scikit-learn image
# (core/sklearn_image.py), so that tests run container_scripts/ and entry_point.py as the image would.
# Cached: .venv-container/.digest holds the digest of the pins it was built from; while it matches and the venv's
# interpreter runs, nothing is done. Otherwise the venv is rebuilt from scratch. Needs PyPI (or the configured
# index) and, for the few sdists (psutil, sagemaker-containers, ...), a C compiler.
set -Eeuo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv-container"
cd "$root"
start=$(date +%s.%N)
elapsed() { awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f s", e - s }'; }

# One build at a time in this work tree (the lock is on this script, so no lock file is left behind).
exec 9<"$root/tools/container_venv.sh"
command -v flock >/dev/null && flock 9

if [[ -f "$venv/.digest" ]] && wanted=$("$venv/bin/python" -m core.sklearn_image digest 2>/dev/null) &&
    [[ "$wanted" == "$(cat "$venv/.digest")" ]]; then
    echo "container venv: cached ($(elapsed))"
    exit 0
fi

# python3.9 on PATH (a pyenv shim only counts if it runs), else the newest of pyenv's 3.9 versions.
python=""
pyenv_root="$(pyenv root 2>/dev/null || echo "${PYENV_ROOT:-$HOME/.pyenv}")"
candidates="$(command -v python3.9 || true) $(ls -d "$pyenv_root"/versions/3.9*/bin/python3.9 2>/dev/null | sort -rV || true)"
for candidate in $candidates; do
    if "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 9))' 2>/dev/null; then
        python="$candidate"
        break
    fi
done
if [[ -z "$python" ]]; then
    echo "container venv: no Python 3.9 found (python3.9 on PATH, or under $pyenv_root/versions);" \
        "install one, e.g. with 'pyenv install 3.9'." >&2
    exit 1
fi

rm -rf "$venv"
"$python" -m venv "$venv"
log="$venv/build.log"
trap 'echo "container venv: build failed; the last lines of $log:" >&2; tail -n 25 "$log" >&2' ERR
requirements="$venv/requirements.txt"
"$python" -m core.sklearn_image requirements >"$requirements"
pip() { "$venv/bin/python" -m pip --disable-pip-version-check --no-input "$@" >>"$log" 2>&1; }
# The pinned build tools first, so that the sdists are built with them rather than whatever is newest.
pip install --no-deps $(grep -E '^(pip|setuptools|wheel)==' "$requirements")
pip install --no-deps --no-build-isolation --use-pep517 -r "$requirements"
pip check
# Importing sagemaker_containers' framework makes directories under SAGEMAKER_BASE_DIR (default: ~/sagemaker_local).
SAGEMAKER_BASE_DIR="$venv/.smoke" "$venv/bin/python" -c 'import numpy, scipy, pandas, sklearn, joblib, flask
from sagemaker_containers.beta.framework import encoders, transformer, worker' >>"$log" 2>&1
rm -rf "$venv/.smoke"
"$python" -m core.sklearn_image digest >"$venv/.digest"
packages=$(wc -l <"$requirements")
echo "container venv: built in $(elapsed) ($("$venv/bin/python" -V), $packages packages, .venv-container)"
