#!/usr/bin/env bash
# Installs everything troupe needs to build, test and run (Debian/Ubuntu, apt).
# Idempotent and fast when already done: apt runs only if a package is missing.
# Works as root; otherwise uses sudo when available.
#   bash scripts/setup.sh          what build, tests and apps need
#   bash scripts/setup.sh --fuzz   also clang 14 and its libFuzzer run-time (scripts/fuzz.sh)
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build g++ pkg-config
  libopenmpi-dev openmpi-bin
  libboost-mpi-dev libboost-serialization-dev
  libgtest-dev googletest libbenchmark-dev libtbb-dev
  python3-mpi4py
)
# scripts/fuzz.sh: clang++-14 and libclang_rt.fuzzer (in libclang-rt-14-dev on Debian 12).
if [ "${1:-}" = "--fuzz" ]; then
  PACKAGES+=(clang-14 libclang-rt-14-dev)
fi

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ "${#missing[@]}" -eq 0 ]; then
  echo "setup: all ${#PACKAGES[@]} packages are installed"
  exit 0
fi

echo "setup: missing: ${missing[*]}"
if ! command -v apt-get >/dev/null 2>&1; then
  echo "setup: apt-get not found; install these packages with your package manager: ${missing[*]}" >&2
  exit 1
fi
SUDO=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    SUDO=(sudo)
  else
    echo "setup: not root and no sudo; run as root: apt-get install -y ${PACKAGES[*]}" >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update
"${SUDO[@]}" apt-get install -y "${PACKAGES[@]}"
echo "setup: done"
