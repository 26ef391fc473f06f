#!/usr/bin/env bash
# Every test: set up, then build and run the unit + multi-process + concurrency + daemon suites, mq-kafka-bridge's
# suite (against librdkafka's mock cluster), mqd and mq-kafka-bridge under a real systemd, the chaos campaign and the benchmark smoke runs in release, the Node addon's tests (node:test, against
# the release mqd), a 60 s soak and the Node chaos campaign, the suites again under ASan+UBSan, the concurrency suite under TSan, and bounded
# libFuzzer runs (clang).
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
echo "=== soak (60 s; node tests/soak/soak.js --seconds 600 is the long mode) ==="
MQD="$PWD/build/release/daemon/mqd/mqd" timeout 300 node tests/soak/soak.js --seconds 60
echo "=== node chaos campaign (40 rounds, seeds 1 and 2) ==="
for seed in 1 2; do MQD="$PWD/build/release/daemon/mqd/mqd" timeout 300 node tests/chaos/node_chaos.js --rounds 40 --seed $seed; done
run asan
run tsan
run fuzz
echo "=== all suites passed in $((SECONDS - start)) s ==="
