#!/usr/bin/env bash
# Formats troupe's C++ sources with the repository's .clang-format (clang-format 14).
#
#   bash scripts/format.sh          rewrite every tracked .hpp/.cpp in place
#   bash scripts/format.sh --check  list the files that differ, exit 1 if any
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
command -v clang-format >/dev/null || { echo "format.sh: clang-format not found (apt-get install -y clang-format)" >&2; exit 2; }
mapfile -t files < <(git ls-files '*.hpp' '*.cpp' | grep -v '^tests/compile_fail/')
if [ "${1:-}" = "--check" ]; then
  bad=0
  for f in "${files[@]}"; do
    if ! clang-format --dry-run -Werror "$f" >/dev/null 2>&1; then echo "$f"; bad=1; fi
  done
  exit "$bad"
fi
clang-format -i "${files[@]}"
