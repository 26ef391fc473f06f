#!/usr/bin/env bash
# The main job: set up, build (release), and run the demo: one process publishes invitations, two worker processes
# of one consumer group share them and print "offset # value".
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cmake --preset release >/dev/null
cmake --build --preset release --target mq-demo
exec build/release/libmq/mq-demo "$@"
