#!/usr/bin/env bash
# The benchmark suite in one command: set up, build (release), then run every bench binary side by side on this
# machine (ipc_libmq with the floors, ipc_peers, ipc_iceoryx, the Node bench, mqd's memory over time, the micro
# benchmarks and their instructions per record under callgrind), and write bench/results/latest.json, the tables
# in bench/RESULTS.md and the plots (bench/report.py).
#   scripts/bench.sh           full run (about 20 min: 200k round trips per case, 2 s windows, 10 min of mqd)
#   scripts/bench.sh --quick   quick run (under 3 min: 20k round trips, 0.5 s windows, 20 s of mqd)
# Speed is never asserted: every figure is read as a ratio to the floors of the same run.
set -euo pipefail
cd "$(dirname "$0")/.."

profile=full
case "${1:-}" in
  "") ;;
  --quick) profile=quick ;;
  -h|--help) sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  *) echo "bench.sh: unknown option '$1' (use --quick, or nothing for the full run)" >&2; exit 2 ;;
esac
flag=""
[ "$profile" = quick ] && flag="--quick"

scripts/setup.sh >/dev/null
cmake --preset release >/dev/null
cmake --build --preset release --target micro ipc_libmq ipc_peers ipc_iceoryx mqd mqctl >/dev/null
bin=build/release/bench
tmp=$(mktemp -d /tmp/mq-bench.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
start=$SECONDS
failed=()
step() {  # name command...: runs one part; a failed part is reported, the others still run
  local name=$1
  shift
  echo "=== $name ($profile) ==="
  "$@" || failed+=("$name")
}

step ipc_libmq "$bin/ipc_libmq" $flag --json "$tmp/ipc_libmq.json"
step ipc_peers "$bin/ipc_peers" $flag --json "$tmp/ipc_peers.json"
step ipc_iceoryx "$bin/ipc_iceoryx" $flag --json "$tmp/ipc_iceoryx.json"
step node node bindings/node/bench/bench.js $flag --json "$tmp/node.json"
step mqd_memory env MQD=build/release/daemon/mqd/mqd MQCTL=build/release/daemon/mqctl/mqctl \
  bench/mqd_memory.sh $flag --json "$tmp/mqd_memory.json"
if [ "$profile" = quick ]; then min_time=0.05; else min_time=0.5; fi
step micro "$bin/micro" --benchmark_min_time=$min_time --benchmark_out="$tmp/micro.json" --benchmark_out_format=json
if [ "$profile" = quick ]; then iterations=20000; else iterations=200000; fi
step instructions /usr/bin/python3 bench/instructions.py "$bin/micro" --iterations $iterations --json "$tmp/instructions.json"

inputs=()  # in the order of the tables: the floors and libmq, the peers, iceoryx, Node, mqd, micro
for part in ipc_libmq ipc_peers ipc_iceoryx node mqd_memory micro instructions; do
  [ -s "$tmp/$part.json" ] && inputs+=("$tmp/$part.json")
done
command="scripts/bench.sh${flag:+ $flag}"
/usr/bin/python3 bench/report.py --command "$command" bench/results "${inputs[@]}"
echo "=== benchmarks done in $((SECONDS - start)) s: bench/results/latest.json, bench/RESULTS.md ==="
if [ ${#failed[@]} -ne 0 ]; then
  echo "bench.sh: these parts failed (their rows say why): ${failed[*]}" >&2
  exit 1
fi
