#!/usr/bin/env bash
# Every test: set up, then build and run the unit + multi-process + concurrency suites in release and under
# ASan+UBSan, the concurrency suite under TSan, bounded libFuzzer runs (clang), and the benchmark smoke runs.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
start=$SECONDS
run() {  # preset
  echo "=== $1 ==="
  cmake --preset "$1" >/dev/null
  cmake --build --preset "$1"
  ctest --preset "$1"
}
run release
run asan
run tsan
run fuzz
echo "=== all suites passed in $((SECONDS - start)) s ==="
