#!/usr/bin/env bash
# Every test: set up, then build and run the unit + multi-process + concurrency + daemon suites in release and
# under ASan+UBSan, the Node addon's tests (node:test, against the release mqd), the concurrency suite under TSan,
# bounded libFuzzer runs (clang), and the benchmark smoke runs.
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
echo "=== node ==="
MQD="$PWD/build/release/daemon/mqd/mqd" node --test --test-timeout=180000 tests/node/
run asan
run tsan
run fuzz
echo "=== all suites passed in $((SECONDS - start)) s ==="
