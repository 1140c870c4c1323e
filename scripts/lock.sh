#!/usr/bin/env bash
# Refresh constraints-cpu.txt: install today's versions into a scratch venv,
# without the lock, and write down every version that resolved.
#
#   scripts/lock.sh        then run scripts/test.sh and commit the new lock if it passes
set -euo pipefail
cd "$(dirname "$0")/.."
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
python3 -m venv "$scratch/venv"
"$scratch/venv/bin/python" -m pip install --quiet --upgrade pip
"$scratch/venv/bin/python" -m pip install --quiet ".[cpu,dev]"
{
  echo "# Versions the test suite was run with (CPU engine). setup.sh installs with these."
  echo "# Refresh with scripts/lock.sh, then run scripts/test.sh before committing."
  "$scratch/venv/bin/python" -m pip freeze --all --exclude-editable \
    | grep -v -i -E '^(enhanced-vllm|pip|setuptools|wheel)=='
} > constraints-cpu.txt
echo "constraints-cpu.txt: $(grep -vc '^#' constraints-cpu.txt) packages"
