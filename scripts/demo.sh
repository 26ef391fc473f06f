#!/usr/bin/env bash
# The main job, the blog's scenario: set up, build (release) and the Node addon, start a private mqd, create the
# topic with mqctl (the post's kafka-topics.sh --create step), then run the Node demo through the daemon: an api
# publishes invitation requests and returns at once, two e-mail worker processes of consumer group "email-service"
# share them ("offset # ..." lines). mqd is stopped cleanly (SIGTERM) at the end. Args go to the demo (--invites N).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh >/dev/null
cmake --preset release >/dev/null
cmake --build --preset release --target mqd mqctl mq-demo >/dev/null

run=$(mktemp -d /tmp/mq-demo.XXXXXX)
export MQ_SOCKET="$run/mqd.sock"
ns="demo-$$"
build/release/daemon/mqd/mqd --socket "$MQ_SOCKET" --namespace "$ns" --data-dir "$run/data" \
  --config /dev/null --log-level warn &
mqd_pid=$!
cleanup() {
  kill -TERM "$mqd_pid" 2>/dev/null && wait "$mqd_pid" 2>/dev/null || true
  rm -f /dev/shm/mq@"$ns"@* 2>/dev/null || true
  rm -rf "$run"
}
trap cleanup EXIT
for _ in $(seq 200); do  # until mqd answers (at most 10 s)
  build/release/daemon/mqctl/mqctl list >/dev/null 2>&1 && break
  kill -0 "$mqd_pid" 2>/dev/null || { echo "demo: mqd did not start" >&2; exit 1; }
  sleep 0.05
done
# The blog's `kafka-topics.sh --create`, with the e-mail service's group kept from the first record.
build/release/daemon/mqctl/mqctl create invitations --consumer-group email-service
node bindings/node/examples/demo.js "$@"
