#!/usr/bin/env bash
# mqd's own memory over time, for the target "mqd's resident memory, mappings aside, <= 16 MiB with 100 topics and
# flat over a 10-minute run". Starts a private mqd (own socket, namespace and data dir), creates the topics with
# mqctl (64 KiB each, one consumer group each), publishes a few records to each, then samples /proc/PID/status at an
# interval while it keeps the control plane busy (each interval: list, describe, produce and consume on one topic,
# create + delete of a scratch topic). "Mappings aside" is RssAnon: mqd's heap and stacks; the topics' shared memory
# it maps shows in RssShmem and its binary in RssFile, both inside VmRSS.
#
#   bench/mqd_memory.sh [--quick | --smoke] [--seconds S] [--interval S] [--topics N] [--json FILE]
#   env MQD, MQCTL: the binaries (default build/release/daemon/mqd/mqd, build/release/daemon/mqctl/mqctl)
#
# --json writes the schema of bench/report.hpp (tool "mqd_memory") with one case: transport "mqd", mode "daemon",
# kind "memory", pattern "N topics", api (what the control plane did), payload_bytes 0, load_before, and instead of
# ns / msgs_per_s these fields (KiB are /proc's kB):
#   seconds                     how long the sampling ran
#   interval_s                  time between samples
#   rss_anon_kib_before_topics  RssAnon once mqd listens, before any topic exists
#   rss_anon_kib_start          RssAnon at the first sample (topics created and written)
#   rss_anon_kib_end            RssAnon at the last sample
#   rss_anon_kib_max            the largest RssAnon sampled
#   vm_rss_kib_max              the largest VmRSS sampled (RssAnon + RssFile + RssShmem)
#   rss_shmem_kib_max           the largest RssShmem sampled (the topics mqd has mapped)
#   fds_start, fds_end          mqd's open file descriptors at the first and last sample
#   samples_kib                 RssAnon at each sample, in order
#   vm_rss_samples_kib          VmRSS at each sample, in order
#   target_kib                  16384: the target for rss_anon_kib_max
# or "error": reason when the run failed (with the fields gathered so far), and "note" when `mqctl stats` failed
# (reported, not fatal: it is not what this measures). Exit status: 0 done, 1 failed, 2 bad usage.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)  # paths given (MQD, MQCTL, --json) stay relative to the caller's folder

usage() {
  cat <<'EOF'
usage: bench/mqd_memory.sh [--quick | --smoke] [--seconds S] [--interval S] [--topics N] [--json FILE]
  mqd's resident memory with N topics (64 KiB, one consumer group each), sampled while the control plane works.
  (default)      600 s, a sample every 10 s, 100 topics
  --quick        20 s, a sample every 2 s
  --smoke        3 s, a sample every 1 s: checks the script works, measures nothing (CI)
  --seconds S    how long to sample (whole seconds)
  --interval S   seconds between samples
  --topics N     how many topics (default 100)
  --json FILE    also write the result as JSON (the schema of bench/report.hpp, merged by bench/report.py)
  env MQD, MQCTL the binaries (default build/release/daemon/mqd/mqd, build/release/daemon/mqctl/mqctl)
EOF
}

profile=full seconds=600 interval=10 topics=100 json=""
whole() {  # whole NAME VALUE MAX: a whole number in 1..MAX, else exit 2
  if [[ ! "$2" =~ ^[0-9]+$ ]] || (($2 < 1 || $2 > $3)); then
    echo "mqd_memory.sh: $1 wants a whole number from 1 to $3, got '$2'" >&2
    exit 2
  fi
}
while (($#)); do
  case "$1" in
    --quick) profile=quick seconds=20 interval=2 ;;
    --smoke) profile=smoke seconds=3 interval=1 ;;
    --seconds) whole "$1" "${2-}" 86400; seconds=$2; shift ;;
    --interval) whole "$1" "${2-}" 3600; interval=$2; shift ;;
    --topics) whole "$1" "${2-}" 10000; topics=$2; shift ;;
    --json) [[ -n "${2-}" ]] || { echo "mqd_memory.sh: --json wants a file" >&2; exit 2; }; json=$2; shift ;;
    -h | --help) usage; exit 0 ;;
    *) echo "mqd_memory.sh: unknown option: '$1'" >&2; usage >&2; exit 2 ;;
  esac
  shift
done

MQD=${MQD:-$root/build/release/daemon/mqd/mqd}
MQCTL=${MQCTL:-$root/build/release/daemon/mqctl/mqctl}
for bin in "$MQD" "$MQCTL"; do
  [[ -x "$bin" ]] || { echo "mqd_memory.sh: $bin is not an executable: build it (cmake --preset release && cmake --build --preset release) or set MQD/MQCTL" >&2; exit 1; }
done

run=$(mktemp -d /tmp/mqd-memory.XXXXXX)
sock="$run/mqd.sock"
ns="memory-$$"
mqd_pid=""
cleanup() {
  if [[ -n "$mqd_pid" ]] && kill -TERM "$mqd_pid" 2>/dev/null; then
    for _ in $(seq 100); do kill -0 "$mqd_pid" 2>/dev/null || break; sleep 0.05; done  # at most 5 s, then KILL
    kill -KILL "$mqd_pid" 2>/dev/null || true
    wait "$mqd_pid" 2>/dev/null || true
  fi
  rm -f /dev/shm/mq@"$ns"@* 2>/dev/null || true
  rm -rf "$run"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

error=""   # the first failure; the run stops there and reports it
note=""
mqctl() {  # mqctl ARGS...: bounded (10 s); on failure sets $error and returns 1
  local out
  if ! out=$(timeout 10 "$MQCTL" --socket "$sock" "$@" 2>&1 </dev/null); then
    error="mqctl $* failed: ${out//$'\n'/ }"
    return 1
  fi
  printf '%s' "$out"
}

status_kib() {  # status_kib FIELD: a field of /proc/PID/status, in kB
  awk -v f="$1:" '$1 == f { print $2; found = 1 } END { if (!found) print 0 }' "/proc/$mqd_pid/status"
}

load() { awk '{ printf "%s %s %s", $1, $2, $3 }' /proc/loadavg; }
load_before=$(load)

"$MQD" --socket "$sock" --namespace "$ns" --data-dir "$run/data" --config /dev/null --log-level warn &
mqd_pid=$!
for i in $(seq 201); do  # until mqd answers (at most 10 s)
  timeout 10 "$MQCTL" --socket "$sock" list >/dev/null 2>&1 && break
  kill -0 "$mqd_pid" 2>/dev/null || { echo "mqd_memory.sh: mqd exited before it listened on $sock" >&2; exit 1; }
  ((i < 201)) || { echo "mqd_memory.sh: mqd did not listen on $sock within 10 s" >&2; exit 1; }
  sleep 0.05
done
before_topics=$(status_kib RssAnon)

names=()
for i in $(seq -f '%03g' 1 "$topics"); do names+=("mem-$i"); done
for t in "${names[@]}"; do
  mqctl create "$t" --capacity 64KiB --consumer-group readers >/dev/null || break
  mqctl produce "$t" --value "first $t" --value "second $t" --value "third $t" >/dev/null || break
done
if [[ -z "$error" ]] && ! out=$(timeout 10 "$MQCTL" --socket "$sock" stats 2>&1 </dev/null); then
  note="mqctl stats failed with $topics topics: ${out//$'\n'/ }"
  echo "mqd_memory.sh: warning: $note" >&2
fi

# One interval's control-plane work, on topic number $1.
exercise() {
  local t=${names[$(($1 % topics))]}
  mqctl list >/dev/null &&
    mqctl describe "$t" >/dev/null &&
    mqctl produce "$t" --value "sample $1" >/dev/null &&
    mqctl consume "$t" --group readers --max 1 >/dev/null &&
    mqctl create scratch --capacity 64KiB --consumer-group scratch-readers >/dev/null &&
    mqctl delete scratch >/dev/null
}

anon=() rss=() shmem_max=0 fds_start=0 fds_end=0
printf '%8s %14s %12s %14s %6s\n' "t (s)" "RssAnon (KiB)" "VmRSS (KiB)" "RssShmem (KiB)" "fds"
start=$EPOCHREALTIME
samples=$((seconds / interval + 1))
for ((k = 0; k < samples && ${#error} == 0; k++)); do
  if ((k > 0)); then  # the next sample is due at start + k * interval: sampling at an interval is the measurement
    wait_s=$(awk -v s="$start" -v now="$EPOCHREALTIME" -v k="$k" -v i="$interval" 'BEGIN { w = s + k * i - now; printf "%.3f", (w > 0 ? w : 0) }')
    sleep "$wait_s" & wait $!
  fi
  kill -0 "$mqd_pid" 2>/dev/null || { error="mqd exited during the run"; break; }
  a=$(status_kib RssAnon) v=$(status_kib VmRSS) s=$(status_kib RssShmem)
  f=$(find "/proc/$mqd_pid/fd" -mindepth 1 -maxdepth 1 | wc -l)
  anon+=("$a") rss+=("$v")
  if ((s > shmem_max)); then shmem_max=$s; fi
  if ((k == 0)); then fds_start=$f; fi
  fds_end=$f
  t=$(awk -v s="$start" -v now="$EPOCHREALTIME" 'BEGIN { printf "%.1f", now - s }')
  printf '%8s %14s %12s %14s %6s\n' "$t" "$a" "$v" "$s" "$f"
  if ((k + 1 < samples)) && ! exercise "$k"; then break; fi
done
elapsed=$(awk -v s="$start" -v now="$EPOCHREALTIME" 'BEGIN { printf "%.3f", now - s }')

anon_max=0 rss_max=0
for x in "${anon[@]}"; do if ((x > anon_max)); then anon_max=$x; fi; done
for x in "${rss[@]}"; do if ((x > rss_max)); then rss_max=$x; fi; done
anon_start=${anon[0]:-0}
anon_end=${anon[-1]:-0}
target=16384
echo
echo "mqd with $topics topics, ${elapsed} s, ${#anon[@]} samples: RssAnon before topics $before_topics KiB, start $anon_start, end $anon_end, max $anon_max KiB (target <= $target: $( ((anon_max <= target)) && echo met || echo MISSED)); growth $((anon_end - anon_start)) KiB; VmRSS max $rss_max KiB; RssShmem max $shmem_max KiB; fds $fds_start -> $fds_end"
if [[ -n "$error" ]]; then echo "mqd_memory.sh: FAILED: $error" >&2; fi

json_string() {  # a JSON string literal of $1 (quotes, backslashes; control characters dropped)
  local s=${1//\\/\\\\}
  s=${s//\"/\\\"}
  printf '"%s"' "$(printf '%s' "$s" | tr -d '\000-\037')"
}
join() { local IFS=,; printf '%s' "$*"; }

if [[ -n "$json" ]]; then
  cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
  clock=$(cat /sys/devices/system/clocksource/clocksource0/current_clocksource 2>/dev/null || echo unknown)
  compiler=$(readelf -p .comment "$MQD" 2>/dev/null | sed -n 's/^ *\[ *[0-9a-f]*\] *//p' | head -1)
  {
    printf '{\n  "tool": "mqd_memory", "profile": "%s",\n' "$profile"
    printf '  "machine": {"cpu": %s, "online_cores": %s, "usable_cores": %s, "kernel": %s, "clocksource": %s, "compiler": %s},\n' \
      "$(json_string "${cpu:-unknown}")" "$(nproc --all)" "$(nproc)" "$(json_string "$(uname -srvm)")" \
      "$(json_string "$clock")" "$(json_string "${compiler:-unknown}")"
    printf '  "cases": [\n    {"transport": "mqd", "mode": "daemon", "kind": "memory", "pattern": "%s topics", ' "$topics"
    printf '"api": "mqctl list, describe, produce, consume, create + delete each interval", "payload_bytes": 0, '
    printf '"load_before": %s, ' "$(json_string "$load_before")"
    printf '"seconds": %s, "interval_s": %s, "rss_anon_kib_before_topics": %s, ' "$elapsed" "$interval" "$before_topics"
    printf '"rss_anon_kib_start": %s, "rss_anon_kib_end": %s, "rss_anon_kib_max": %s, ' "$anon_start" "$anon_end" "$anon_max"
    printf '"vm_rss_kib_max": %s, "rss_shmem_kib_max": %s, "fds_start": %s, "fds_end": %s, ' "$rss_max" "$shmem_max" "$fds_start" "$fds_end"
    printf '"samples_kib": [%s], "vm_rss_samples_kib": [%s], "target_kib": %s' "$(join "${anon[@]}")" "$(join "${rss[@]}")" "$target"
    if [[ -n "$error" ]]; then printf ', "error": %s' "$(json_string "$error")"; fi
    if [[ -n "$note" ]]; then printf ', "note": %s' "$(json_string "$note")"; fi
    printf '}\n  ]\n}\n'
  } >"$json" || { echo "mqd_memory.sh: cannot write $json" >&2; exit 1; }
fi
[[ -z "$error" ]]
