#!/usr/bin/env bash
# mqctl's command line against a real mqd: every command, its text and --json output, its exit status (0 ok,
# 1 failed request, 2 bad usage) and its one-line errors for bad input (sizes, names, options, values, missing
# topics and groups, no daemon). mqd runs with a private socket in a mktemp dir and a private namespace; every
# command is bounded by `timeout`, and mqd is stopped and its segments removed at exit, pass or fail.
# Usage: mqctl_cli_test.sh PATH/TO/mqd PATH/TO/mqctl. Exit 0 when every check passes, 1 otherwise.
set -uo pipefail

mqd=${1:?usage: mqctl_cli_test.sh PATH/TO/mqd PATH/TO/mqctl}
mqctl=${2:?usage: mqctl_cli_test.sh PATH/TO/mqd PATH/TO/mqctl}
root_dir=$(cd "$(dirname "$0")/../.." && pwd)
for b in "$mqd" "$mqctl"; do
  [ -x "$b" ] || { echo "mqctl_cli_test: $b is not an executable"; exit 1; }
done

work=$(mktemp -d)
ns="mqctl-cli-$$"
sock="$work/mqd.sock"
pids=()
cleanup() {
  for p in "${pids[@]}"; do
    kill "$p" 2>/dev/null
    timeout 10 tail --pid="$p" -f /dev/null 2>/dev/null || kill -9 "$p" 2>/dev/null
  done
  rm -f /dev/shm/mq@"$ns"@* /dev/shm/mq@"$ns"-ex@* 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

checks=0
failures=0
out="$work/out"
err="$work/err"
rc=0

# Starts an mqd in the background with a private socket, namespace and data dir; waits (bounded) for its socket.
start_mqd() {  # SOCKET NAMESPACE DATA_DIR [more mqd options...]
  local socket=$1 namespace=$2 data=$3
  shift 3
  "$mqd" --socket "$socket" --namespace "$namespace" --data-dir "$data" "$@" >>"$work/mqd.log" 2>&1 &
  pids+=($!)
  if ! timeout 10 bash -c "until [ -S '$socket' ]; do sleep 0.05; done"; then
    echo "mqctl_cli_test: mqd did not create $socket within 10 s; its log:"
    cat "$work/mqd.log"
    exit 1
  fi
}

# Runs mqctl (bounded) against the test daemon; its stdout and stderr land in $out and $err, its status in $rc.
mq() {
  timeout 10 "$mqctl" --socket "$sock" "$@" >"$out" 2>"$err"
  rc=$?
}
# The same with stdin from a string.
mq_in() {
  local input=$1
  shift
  printf '%b' "$input" | timeout 10 "$mqctl" --socket "$sock" "$@" >"$out" 2>"$err"
  rc=$?
}

fail() {
  failures=$((failures + 1))
  echo "FAIL: $*"
  echo "  exit status: $rc"
  sed 's/^/  stdout: /' "$out" | head -20
  sed 's/^/  stderr: /' "$err" | head -20
}
ok() { checks=$((checks + 1)); }

# expect STATUS DESCRIPTION: the last command's exit status, and for failures exactly one line on stderr.
expect() {
  local want=$1 what=$2
  if [ "$rc" -ne "$want" ]; then
    fail "$what: exit status $rc, expected $want"
    return 1
  fi
  if [ "$want" -ne 0 ] && [ "$(wc -l <"$err")" -ne 1 ]; then
    fail "$what: expected exactly one line on stderr"
    return 1
  fi
  ok
}
# stdout / stderr of the last command match an extended regex.
expect_out() {
  if grep -qE -- "$1" "$out"; then ok; else fail "${2:-stdout}: no line matches /$1/"; fi
}
expect_no_out() {
  if grep -qE -- "$1" "$out"; then fail "${2:-stdout}: a line matches /$1/"; else ok; fi
}
expect_err() {
  if grep -qE -- "$1" "$err"; then ok; else fail "${2:-stderr}: no line matches /$1/"; fi
}
# stdout is exactly the given text (printf format).
expect_exact() {
  local want
  # shellcheck disable=SC2059  # the expected text is a printf format on purpose ('0\n1\n')
  want=$(printf "$1")
  if [ "$(cat "$out")" = "$want" ]; then ok; else fail "${2:-stdout}: expected exactly: $want"; fi
}
# stdout is one valid JSON document (python3: installed by scripts/setup.sh; without it this check fails).
expect_json() {
  python3 -c 'import json,sys; json.load(sys.stdin)' <"$out" 2>/dev/null || { fail "${1:-json}: not valid JSON"; return; }
  ok
}
# holds DESCRIPTION COMMAND...: the command succeeds.
holds() {
  local what=$1
  shift
  if "$@"; then ok; else fail "$what"; fi
}
not() { ! "$@"; }
# Polls (bounded) until `mqctl groups TOPIC --json` shows GROUP with `"members":N`.
wait_members() {  # TOPIC GROUP N
  local deadline=$((SECONDS + 10))
  while [ $SECONDS -lt $deadline ]; do
    mq groups "$1" --json
    grep -qE "\"name\":\"$2\",[^}]*\"members\":$3[,}]" "$out" && return 0
    sleep 0.05
  done
  return 1
}

mkdir -p "$work/data"
start_mqd "$sock" "$ns" "$work/data" --config /dev/null

# --- help and version -------------------------------------------------------------------------------------------
mq --help; expect 0 "mqctl --help"; expect_out '^Commands:' "mqctl --help"; expect_out 'reset-offsets'
mq --version; expect 0 "mqctl --version"; expect_out '^mqctl \(libmq\) [0-9]+\.[0-9]+\.[0-9]+$' "mqctl --version"
for c in create delete list describe groups create-group set-retry dlq reset-offsets delete-group delete-records produce consume stats top; do
  mq "$c" --help; expect 0 "mqctl $c --help"; expect_out "^usage: mqctl $c" "mqctl $c --help"
  expect_out '--socket PATH' "mqctl $c --help"
done
mq create --help; expect_out '--capacity SIZE' "create --help"; expect_out '--consumer-group G'
mq create-group --help; expect_out '--ordering HOW' "create-group --help"
for o in none key exclusive; do expect_out "^ +$o( \\(default\\))?: " "create-group --help explains --ordering $o"; done
mq help consume; expect 0 "mqctl help consume"; expect_out '^usage: mqctl consume' "mqctl help consume"

# --- bad usage: exit 2, one line naming the problem ---------------------------------------------------------------
timeout 10 "$mqctl" >"$out" 2>"$err"; rc=$?
expect 2 "no command"; expect_err 'no command'
mq frobnicate; expect 2 "unknown command"; expect_err "unknown command 'frobnicate'"
mq --bogus list; expect 2 "unknown global option"; expect_err "'--bogus'"
mq list --bogus; expect 2 "unknown command option"; expect_err "'--bogus'"
# Boost's own placeholders in a token (its message formatting looped forever on them; mq's timeout would say 124).
mq '--x%original_token%' list; expect 2 "a global option holding %original_token%"; expect_err "unrecognised option '--x"
mq list '--x%option%'; expect 2 "a command option holding %option%"; expect_err "unrecognised option '--x"
mq create; expect 2 "create without NAME"; expect_err 'missing NAME'
mq create a b; expect 2 "create with two names"; expect_err 'too many arguments'
for size in 12XB 1.5MiB -1 '' 64KiBx ' 64' 0x100 99999999999999999999 20000000TiB; do
  mq create sized --capacity "$size"; expect 2 "create --capacity '$size'"; expect_err "^mqctl create: --capacity: '"
done
mq create sized --max-message 12XB; expect 2 "create --max-message 12XB"; expect_err '--max-message'
mq create sized --max-message 0; expect 2 "create --max-message 0"; expect_err '--max-message: 0 bytes holds no record'
mq create t --policy maybe; expect 2 "create --policy maybe"; expect_err "--policy: 'maybe'"
mq create t --storage disk; expect 2 "create --storage disk"; expect_err "--storage: 'disk'"
mq create t --mode 0666; expect 2 "create --mode 0666"; expect_err 'world-writable'
mq create t --mode 0869; expect 2 "create --mode 0869"; expect_err '--mode'
mq create t --block-timeout soon; expect 2 "create --block-timeout soon"; expect_err '--block-timeout'
mq create t --consumer-group ''; expect 2 "create --consumer-group ''"; expect_err '--consumer-group'
mq create t --capacity; expect 2 "create --capacity without a value"; expect_err 'capacity'
long_name=$(printf 'a%.0s' $(seq 250))
for name in 'bad/name' '..' '.' 'spa ce' "$long_name" 'ünï'; do
  mq create "$name"; expect 2 "create '${name:0:20}'"; expect_err 'topic name'
done
for c in delete describe groups produce consume; do
  mq "$c" 'a/b'; expect 2 "$c with a bad topic name"; expect_err 'topic name'
done
mq reset-offsets orders --group g; expect 2 "reset-offsets without --to"; expect_err '--to'
mq reset-offsets orders --to earliest; expect 2 "reset-offsets without --group"; expect_err '--group'
mq reset-offsets orders --group g --to somewhere; expect 2 "reset-offsets --to somewhere"; expect_err "'somewhere'"
mq reset-offsets orders --group g --to -1; expect 2 "reset-offsets --to -1"; expect_err "'-1'"
mq delete-group orders; expect 2 "delete-group without --group"; expect_err '--group'
mq create-group orders; expect 2 "create-group without --group"; expect_err '--group'
mq create-group orders --group g --start soon; expect 2 "create-group --start soon"; expect_err "'soon'"
mq create-group orders --group ''; expect 2 "create-group with an empty group name"; expect_err 'group'
mq create-group orders --group g --max-attempts 0; expect 2 "create-group --max-attempts 0"; expect_err 'max-attempts'
mq create-group orders --group g --factor fast; expect 2 "create-group --factor fast"; expect_err "'fast'"
for o in fifo Exclusive ''; do
  mq create-group orders --group g --ordering "$o"; expect 2 "create-group --ordering '$o'"
  expect_err "^mqctl create-group: --ordering: '$o' is not none, key or exclusive"
done
mq create-group orders --group g --backoff 5000 --max-backoff 10; expect 2 "backoff over max-backoff"
expect_err 'backoff'
mq set-retry orders; expect 2 "set-retry without --group"; expect_err '--group'
mq set-retry orders --group g --jitter 2; expect 2 "set-retry --jitter 2"; expect_err 'jitter'
mq dlq orders; expect 2 "dlq without an action"; expect_err "'orders' is not list, show or replay"
mq dlq purge orders; expect 2 "dlq purge"; expect_err "'purge' is not list, show or replay"
mq consume orders --max 0; expect 2 "consume --max 0"; expect_err '--max'
mq consume orders --max many; expect 2 "consume --max many"; expect_err '--max'
mq consume orders --timeout 1.5; expect 2 "consume --timeout 1.5"; expect_err '--timeout'
mq consume orders --group "$(printf 'a\tb')"; expect 2 "consume --group with a tab"; expect_err '--group'
mq top --interval 0; expect 2 "top --interval 0"; expect_err '--interval'
mq top --iterations x; expect 2 "top --iterations x"; expect_err '--iterations'
mq list extra; expect 2 "list with an argument"; expect_err 'too many arguments'

# --- no daemon, missing topics: exit 1, one line -----------------------------------------------------------------
timeout 10 "$mqctl" --socket "$work/nobody-here.sock" list >"$out" 2>"$err"; rc=$?
expect 1 "list with no daemon"; expect_err 'cannot reach mqd'; expect_err 'nobody-here.sock'
mq describe nope; expect 1 "describe a missing topic"; expect_err 'nope'
mq groups nope; expect 1 "groups of a missing topic"; expect_err 'nope'
mq delete nope; expect 1 "delete a missing topic"; expect_err 'nope'
mq reset-offsets nope --group g --to earliest; expect 1 "reset-offsets of a missing topic"; expect_err 'nope'
mq delete-group nope --group g; expect 1 "delete-group of a missing topic"; expect_err 'nope'
mq create-group nope --group g; expect 1 "create-group of a missing topic"; expect_err 'nope'

# --- create, list, describe ---------------------------------------------------------------------------------------
mq create orders --capacity 64KiB --max-message 1KiB --consumer-group email --block-timeout 100
expect 0 "create orders"; expect_exact 'Created topic orders.' "create orders"
mq create orders; expect 1 "create orders again"; expect_err 'orders'
mq create odd --capacity 100000; expect 1 "create with a capacity that is not a power of two"; expect_err 'capacity'
mq create odd --capacity 64KiB --max-message 32KiB; expect 1 "create with max message > capacity/4"
expect_err 'max_message|max-message|max message'
mq list; expect 0 "list"; expect_out '^orders$' "list"
mq list --json; expect 0 "list --json"; expect_json "list --json"; expect_out '^\[.*"orders".*\]$' "list --json"
MQ_SOCKET="$sock" timeout 10 "$mqctl" list >"$out" 2>"$err"; rc=$?
expect 0 "list through \$MQ_SOCKET"; expect_out '^orders$' "list through \$MQ_SOCKET"
timeout 10 "$mqctl" list --socket "$sock" >"$out" 2>"$err"; rc=$?
expect 0 "list --socket after the command"; expect_out '^orders$'
mq describe orders; expect 0 "describe orders"
expect_out '^Topic: +orders$' "describe"; expect_out '^Capacity: +64KiB \(65536 bytes\)$' "describe"
expect_out '^Max message: +1KiB \(1024 bytes\)$' "describe"; expect_out '^Policy: +block' "describe"
expect_out '100 ms' "describe"; expect_out '^Storage: +shm$' "describe"; expect_out 'mode 0660' "describe"
expect_out '^Offsets: +earliest 0, latest 0$' "describe"; expect_out '^email +0 +0 +0 +0 +0 +0 +0 +none$' "describe"
mq describe orders --json; expect 0 "describe --json"; expect_json "describe --json"
for field in '"name":"orders"' '"capacity":65536' '"max_message":1024' '"policy":"block"' '"storage":"shm"' \
  '"mode":"0660"' '"block_timeout_ms":100' '"latest":0' '"groups":\[\{"name":"email"'; do
  expect_out "$field" "describe --json"
done
# The whole document, key by key in this order: scripts may rely on it.
expect_exact '{"name":"orders","capacity":65536,"max_message":1024,"policy":"block","storage":"shm","mode":"0660",'\
'"access_group":"'"$(id -gn)"'","block_timeout_ms":100,"earliest":0,"latest":0,"bytes":0,"producers":0,'\
'"stalled_producers":0,"exclusive_pid":null,"exclusive_plain":null,"msgs_per_s":0,"bytes_per_s":0,"orphans_repaired":0,"stuck":[],'\
'"groups":[{"name":"email","committed":0,"next":0,"lag":0,"members":0,"unacked":0,"retrying":0,"parked":0,'\
'"retry":{"max_attempts":5,"backoff_ms":100,"factor":2.0,"max_backoff_ms":30000,"jitter":0.1},'\
'"ordering":"none","active_pid":null}]}' "describe --json, exactly"

# --- produce ------------------------------------------------------------------------------------------------------
mq_in 'hello 1\nhello 2\n\nhello 4' produce orders --verbose
expect 0 "produce from stdin"; expect_exact '0\n1\n2\n3' "produce --verbose prints one offset per record"
mq produce orders --value a --value 'b c'; expect 0 "produce --value"; expect_exact '' "produce is quiet"
mq produce orders --value "$(head -c 2048 /dev/zero | tr '\0' x)"; expect 1 "produce a record over max-message"
expect_err 'orders'
mq groups orders; expect 0 "groups"
expect_out '^GROUP +COMMITTED +NEXT +LAG +MEMBERS +UNACKED +RETRYING +PARKED +ORDERING$' "groups"
expect_out '^email +0 +0 +6 +0 +0 +0 +0 +none$' "groups: email lags 6"
mq groups orders --json; expect 0 "groups --json"; expect_json "groups --json"
expect_out '^\[\{"name":"email","committed":0,"next":0,"lag":6,"members":0,"unacked":0,"retrying":0,"parked":0,"retry":\{"max_attempts":5,' "groups --json"

# --- consume ------------------------------------------------------------------------------------------------------
mq consume orders --group email --from-beginning --max 3
expect 0 "consume --max 3"; expect_exact '0 # hello 1\n1 # hello 2\n2 # ' "consume prints offset # value"
mq consume orders --group email --max 3 --timeout 5
expect 0 "consume continues from the group's position"; expect_exact '3 # hello 4\n4 # a\n5 # b c'
mq consume orders --group email --timeout 1; expect 0 "consume --timeout on a drained group"; expect_exact ''
mq consume orders --group email --timeout 1 --max 1; expect 1 "consume --timeout before --max"
expect_err 'got 0 of 1'
mq groups orders; expect_out '^email +6 +6 +0 +0 +0 +0 +0 +none$' "groups after consuming"
mq consume orders --group fresh --timeout 1; expect 0 "a new group starts at latest"; expect_exact ''
mq produce orders --value late
mq consume orders --group fresh --max 1 --timeout 5; expect 0 "the new group sees what came after"
expect_exact '6 # late'
mq consume orders --from-beginning --max 1 --timeout 5; expect 0 "consume with the default group"
expect_exact '0 # hello 1'
mq groups orders; expect_out '^mqctl ' "the default group is mqctl"

# Closed stdout: the reader goes away, mqctl exits 0 without a word.
timeout 10 "$mqctl" --socket "$sock" consume orders --group pipe --from-beginning --timeout 1 2>"$err" | head -n 1 >"$out"
rc=${PIPESTATUS[0]}
expect 0 "consume | head -n 1"; expect_exact '0 # hello 1' "consume | head -n 1"
holds "consume | head -n 1 writes nothing to stderr" test ! -s "$err"
# ... also with no --timeout on a topic that goes idle: no write comes to fail, mqctl sees the pipe's reader gone.
timeout 10 "$mqctl" --socket "$sock" consume orders --group pipe-idle --from-beginning 2>"$err" | head -n 1 >"$out"
rc=${PIPESTATUS[0]}
expect 0 "consume | head -n 1 on an idle topic, no --timeout (124: it waited for the next record)"
expect_exact '0 # hello 1' "consume | head -n 1, idle"

# Ctrl-C: a consumer waiting for records leaves its group in order and exits 0.
timeout 20 "$mqctl" --socket "$sock" consume orders --group sig >"$work/sig.out" 2>"$work/sig.err" &
consumer=$!
if wait_members orders sig 1; then
  ok
  kill -INT "$consumer"
  wait "$consumer"; rc=$?
  cp "$work/sig.err" "$err"; : >"$out"
  expect 0 "consume stopped by SIGINT"
  holds "the SIGINT'd consumer left its group" wait_members orders sig 0
else
  fail "the background consumer never joined group sig"
  kill "$consumer" 2>/dev/null
fi

# --- reset-offsets, delete-group ----------------------------------------------------------------------------------
mq reset-offsets orders --group email --to earliest; expect 0 "reset-offsets --to earliest"
expect_exact 'Reset group email of topic orders to earliest.'
mq consume orders --group email --max 1 --timeout 5; expect_exact '0 # hello 1' "consume after reset to earliest"
mq reset-offsets orders --group email --to 5; expect 0 "reset-offsets --to 5"
mq consume orders --group email --max 1 --timeout 5; expect_exact '5 # b c' "consume after reset to 5"
mq reset-offsets orders --group email --to latest; expect 0 "reset-offsets --to latest"
mq consume orders --group email --timeout 1; expect_exact '' "consume after reset to latest"
mq reset-offsets orders --group email --to 999; expect 1 "reset-offsets past latest"; expect_err 'orders'
mq reset-offsets orders --group nope --to earliest; expect 1 "reset-offsets of a missing group"; expect_err 'nope'
# --to-time: before every record held -> the oldest; after every record -> the end; between -> the first record
# written at or after it (records carry the time of their publish).
mq reset-offsets orders --group email --to-time 2000-01-01T00:00:00Z; expect 0 "reset-offsets --to-time 2000"
expect_exact 'Reset group email of topic orders to offset 0 (the first record at or after 2000-01-01T00:00:00Z).'
mq consume orders --group email --max 1 --timeout 5; expect_exact '0 # hello 1' "consume after reset to 2000"
mq reset-offsets orders --group email --to-time 2200-01-01T00:00:00.250Z; expect 0 "reset-offsets --to-time 2200"
expect_out "^Reset group email of topic orders to offset [0-9]+ \\(the topic's end: no record at or after 2200-01-01T00:00:00.250Z\\)\\.$"
mq consume orders --group email --timeout 1; expect_exact '' "consume after reset to a time after every record"
mark_ms=$(date +%s%3N)
mq produce orders --value 'after the mark' --verbose; expect 0 "produce after the mark"
marked=$(cat "$out")
mq reset-offsets orders --group email --to-time "$mark_ms"; expect 0 "reset-offsets --to-time MS"
expect_exact "Reset group email of topic orders to offset $marked (the first record at or after $mark_ms)."
mq consume orders --group email --max 1 --timeout 5; expect_exact "$marked # after the mark" "consume since the mark"
mq reset-offsets orders --group email --to-time yesterday; expect 2 "reset-offsets --to-time yesterday"
expect_err "'yesterday'"
mq reset-offsets orders --group email --to-time 2026-12-04T09:00:00; expect 2 "reset-offsets --to-time without Z"
expect_err 'UTC'
mq reset-offsets orders --group email --to-time 2999-01-01T00:00:00Z; expect 2 "reset-offsets --to-time 2999"
expect_err '2262'
mq reset-offsets orders --group email --to latest --to-time 0; expect 2 "reset-offsets --to and --to-time"
expect_err 'give one'
# create-group: earliest keeps every record held for the new group, latest only those written after it.
mq create-group orders --group backfill; expect 0 "create-group"
expect_exact 'Created group backfill of topic orders, starting at earliest, ordering none; retries: 5 attempts, backoff 100 ms x 2 up to 30000 ms, jitter 0.1.'
mq create-group orders --group backfill; expect 1 "create-group again"; expect_err 'backfill'
mq consume orders --group backfill --max 1 --timeout 5; expect_exact '0 # hello 1' "a created group reads from the oldest"
mq create-group orders --group tail --start latest; expect 0 "create-group --start latest"
mq consume orders --group tail --timeout 1; expect_exact '' "a group created at latest has nothing yet"
mq produce orders --value 'for the tail' --verbose; expect 0 "produce for the tail group"
tail_offset=$(cat "$out")
mq consume orders --group tail --max 1 --timeout 5; expect_exact "$tail_offset # for the tail" "the latest group reads what came after"
# --ordering: each group keeps the one it was created with, shown in `groups` and its JSON.
for o in none key exclusive; do
  mq create-group orders --group "by-$o" --ordering "$o"; expect 0 "create-group --ordering $o"
  expect_out "^Created group by-$o of topic orders, starting at earliest, ordering $o; " "create-group --ordering $o"
done
mq groups orders; expect_out '^by-none( +[0-9]+){7} +none$' "groups: by-none"
expect_out '^by-key( +[0-9]+){7} +key$' "groups: by-key"; expect_out '^by-exclusive( +[0-9]+){7} +exclusive$'
mq groups orders --json; expect_json "groups --json with orderings"
expect_out '\{"name":"by-none",[^{}]*"retry":\{[^{}]*\},"ordering":"none","active_pid":null\}' "by-none --json"
expect_out '\{"name":"by-key",[^{}]*"retry":\{[^{}]*\},"ordering":"key","active_pid":null\}' "by-key --json"
expect_out '\{"name":"by-exclusive",[^{}]*"members":0,[^{}]*"retry":\{[^{}]*\},"ordering":"exclusive","active_pid":0\}' \
  "by-exclusive --json: no member takes yet"
for o in none key exclusive; do mq delete-group orders --group "by-$o"; expect 0 "delete-group by-$o"; done
mq delete-group orders --group backfill; expect 0 "delete-group backfill"
mq delete-group orders --group tail; expect 0 "delete-group tail"
mq delete-group orders --group fresh; expect 0 "delete-group"; expect_exact 'Deleted group fresh of topic orders.'
mq groups orders; expect_no_out '^fresh ' "groups after delete-group"
mq delete-group orders --group fresh; expect 1 "delete-group again"; expect_err 'fresh'

# --- delete-records ---------------------------------------------------------------------------------------------
mq create trim; expect 0 "create trim"
printf 'r0\nr1\nr2\nr3\nr4\n' | mq produce trim; expect 0 "produce 5 records to trim"
mq consume trim --group slow --from-beginning --max 1 --timeout 5; expect_exact '0 # r0' "consume trim before delete"
mq delete-records trim --before 3; expect 0 "delete-records --before 3"
expect_exact 'Topic trim now starts at offset 3.'
mq describe trim --json; expect 0 "describe trim after delete-records"; expect_out '"earliest":3,'
mq consume trim --group slow --max 1 --timeout 5; expect_exact '3 # r3' "a group behind the start moved up to it"
mq consume trim --group new --from-beginning --max 1 --timeout 5; expect_exact '3 # r3' "a new group starts there"
mq delete-records trim --before 9; expect 1 "delete-records past the end"; expect_err 'latest offset 5'
mq delete-records trim --before soon; expect 2 "delete-records --before soon"; expect_err "'soon'"
mq delete-records trim; expect 2 "delete-records without --before"; expect_err '--before'
mq delete-records nope --before 0; expect 1 "delete-records of a missing topic"; expect_err 'nope'
mq delete-records trim --before latest; expect 0 "delete-records --before latest"
expect_exact 'Topic trim now starts at offset 5.'
mq consume trim --group new --timeout 1; expect_exact '' "nothing left after deleting every record"

# --- every create option ------------------------------------------------------------------------------------------
group_name=$(id -gn)
mq create full --capacity 128KiB --max-message 4KiB --policy overwrite --storage file --mode 0640 \
  --access-group "$group_name" --consumer-group a --consumer-group b --block-timeout 250
expect 0 "create with every option"
mq describe full --json; expect_json "describe full --json"
for field in '"capacity":131072' '"max_message":4096' '"policy":"overwrite"' '"storage":"file"' '"mode":"0640"' \
  "\"access_group\":\"$group_name\"" '"block_timeout_ms":250' '"groups":\[\{"name":"a".*\{"name":"b"'; do
  expect_out "$field" "describe full --json"
done
mq delete full; expect 0 "delete"; expect_exact 'Deleted topic full.'
mq list; expect_no_out '^full$' "list after delete"
mq describe full; expect 1 "describe a deleted topic"

# An overwrite topic: a lapped group is told on stderr how many records it lost, and reads on.
mq create ow --capacity 64KiB --policy overwrite --consumer-group g; expect 0 "create an overwrite topic"
mq_in "$(for i in $(seq 0 2999); do printf 'record %04d %0100d\\n' "$i" 0; done)" produce ow
expect 0 "produce 3000 records into a 64KiB overwrite topic"
mq consume ow --group g --timeout 1; expect 0 "consume a lapped group"
expect_err '^mqctl consume: .*lost=[1-9][0-9]*' "consume a lapped group"; expect_out '^2999 # record 2999 ' "consume a lapped group"
holds "consume a lapped group: one 'lost' line on stderr" test "$(wc -l <"$err")" -eq 1

# Auto-create (mqd's default): produce to a topic nobody created.
mq produce auto1 --value x; expect 0 "produce auto-creates"
mq list; expect_out '^auto1$' "list shows the auto-created topic"

# --- stats and top ------------------------------------------------------------------------------------------------
mq stats; expect 0 "stats"; expect_out '^uptime .*topics?, [0-9]+ clients?$' "stats"
expect_out '^TOPIC +EARLIEST +LATEST' "stats"; expect_out '^orders ' "stats"; expect_out '^orders +email ' "stats"
expect_out '^TOPIC +GROUP +COMMITTED +NEXT +LAG +MEMBERS +UNACKED +ORDERING$' "stats"
expect_out '^orders +email( +[0-9]+){5} +none$' "stats: a group's ordering"
mq stats --json; expect 0 "stats --json"; expect_json "stats --json"
expect_out '^\{.*"uptime_s":[0-9]+.*"topics":\[.*"name":"orders".*\]\}$' "stats --json"
mq top --iterations 2 --interval 1; expect 0 "top --iterations 2"
holds "top --iterations 2 prints 2 frames" test "$(grep -c '^mqctl top - ' "$out")" -eq 2
expect_out '^orders ' "top"; expect_out 'ACKED/S' "top"
holds "top writes no escapes to a pipe" not grep -q $'\x1b' "$out"
if command -v script >/dev/null; then  # on a terminal, top redraws in place
  timeout 10 script -qec "'$mqctl' --socket '$sock' top --iterations 1" /dev/null >"$out" 2>"$err"; rc=$?
  expect 0 "top on a terminal"
  holds "top on a terminal homes the cursor" grep -q $'\x1b\[H' "$out"
  holds "top on a terminal shows the cursor again at exit" grep -q $'\x1b\[?25h' "$out"
fi

# --- a peer without rights gets mqd's refusal, naming the topic --------------------------------------------------
if [ "$(id -u)" -eq 0 ] && command -v setpriv >/dev/null && id nobody >/dev/null 2>&1; then
  mq create secret --mode 0600; expect 0 "create secret --mode 0600"
  chmod 0711 "$work"  # nobody may reach the socket (its group is ours, and nobody gets our group below)
  timeout 10 setpriv --reuid nobody --regid "$(id -g nobody)" --groups "$(id -g)" -- \
    "$mqctl" --socket "$sock" describe secret >"$out" 2>"$err"; rc=$?
  expect 1 "describe secret as nobody"; expect_err 'permission denied'; expect_err 'topic=secret'
fi

# --- the example config ------------------------------------------------------------------------------------------
ex_sock="$work/ex.sock"
mkdir -p "$work/exdata"
start_mqd "$ex_sock" "$ns-ex" "$work/exdata" --config "$root_dir/systemd/mqd.conf.example" --access-group "$(id -gn)"
timeout 10 "$mqctl" --socket "$ex_sock" describe kafka-node --json >"$out" 2>"$err"; rc=$?
expect 0 "the example config's topic exists"
expect_out '"capacity":4194304' "example kafka-node"; expect_out '"groups":\[\{"name":"email-service"' "example kafka-node"

echo "mqctl_cli_test: $checks checks passed, $failures failed"
[ "$failures" -eq 0 ]
