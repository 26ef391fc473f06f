#!/usr/bin/env bash
# mq-kafka-bridge@.service under a real systemd, as boot_test.sh runs mqd.service (container.sh: the same cached
# image, install and boot), against librdkafka's mock cluster served inside the container by tests/bridge's mock_kafka
# (a transient unit of the container's systemd, so its records outlive every bridge). Instance `west` reads
# /usr/local/etc/mq/bridge-west.conf: an outbound route (local topic invitations -> Kafka invitations, 3 partitions)
# and an inbound one (Kafka results, 2 partitions -> local topic results). Checked for real:
#   - `systemctl enable --now mq-kafka-bridge@west` returns only after READY (the status READY came with is set, the
#     unit is running with no restart), as user mq (reading a config of mode 0640 root:mq), with no capabilities, no
#     new privileges, a seccomp filter, a read-only /usr and a writable /dev/shm (the unit's sandbox);
#   - records published before and after the start reach Kafka and are acked locally; records written to Kafka are
#     appended to the local topic once each; `mq-kafka-bridge --status` (run by a user of group mq) shows both routes
#     running with those counts;
#   - a hung bridge (SIGSTOP) is killed by the watchdog and restarted; every record published all along reaches Kafka
#     (at least once), and what Kafka got meanwhile reaches the local topic exactly once;
#   - `systemctl stop` exits 0 with everything carried acked; the journal holds the bridge's lines (at info);
#   - a bad config, or a missing local topic, fails the start without restarts (the unit's RestartPreventExitStatus=2).
# Usage: bridge_boot_test.sh BUILD_DIR MOCK_KAFKA (BUILD_DIR configured with the install prefix /usr/local, built with
# the bridge; MOCK_KAFKA the built tests/bridge/mock_kafka).
# Exit 0 pass, 1 fail, 77 skipped (not root, or this kernel refuses the namespaces a container needs).
# Env: MQ_NSPAWN_CACHE (default /var/cache/libmq-tests) keeps the root image; MQ_DEBIAN_MIRROR (default: apt's).
set -euo pipefail

me=bridge_boot_test
# shellcheck source=tests/systemd/container.sh
source "$(dirname "$0")/container.sh"
mock=${2:?usage: bridge_boot_test.sh BUILD_DIR MOCK_KAFKA}
[ -x "$mock" ] || fail "$mock is not an executable (build the target mock_kafka)"
container_prepare "$1"
[ -f "$stage/usr/local/lib/systemd/system/mq-kafka-bridge@.service" ] ||
  fail "cmake --install put no mq-kafka-bridge@.service in lib/systemd/system (configured with -DMQ_BUILD_BRIDGE=ON?)"
mkdir "$work/tools"
cp "$mock" "$work/tools/mock_kafka"
container_boot --bind-ro="$work/tools:/opt/libmq-tests"
in_ct 30 useradd --create-home --groups mq alice

unit=mq-kafka-bridge@west
show() { in_ct 20 systemctl show "${2:-$unit}" --value -p "$1"; }
journal() { in_ct 30 journalctl --no-pager -u "$unit" -o cat "$@"; }
# in_journal TEXT [journalctl options]: the unit's journal (as filtered) has a line with TEXT. (Read whole first:
# grep -q would close the pipe early, and pipefail would count journalctl's SIGPIPE as a failure.)
in_journal() {
  local text=$1 lines
  shift
  lines=$(journal "$@") && grep -qi -- "$text" <<<"$lines"
}
mqctl_() { as_user alice 60 mqctl "$@"; }  # (consume --timeout 30 inside)
latest() { mqctl_ describe "$1" | awk '$1 == "Offsets:" { print $NF }'; }  # the topic's next offset
committed() { mqctl_ groups "$1" | awk -v g="$2" '$1 == g { print $2 }'; }  # everything before it is acked
kafka() { in_ct 60 /opt/libmq-tests/mock_kafka "$@"; }
# kafka_holds TOPIC N: Kafka's TOPIC holds the values 1..N, each at least once, and nothing else.
kafka_holds() {
  local values
  values=$(kafka dump "$bootstrap" "$1") && [ "$(sort -nu <<<"$values")" = "$(seq 1 "$2")" ]
}
acked_up_to() { [ "$(committed "$1" "$2")" = "$3" ]; }
values_sorted() { sed 's/^[0-9]* # //' <<<"$1" | sort -n; }  # mqctl consume's 'offset # value' lines -> values

# ---- Kafka: the mock cluster, a service of the container's systemd ---------------------------------------------
in_ct 30 systemd-run --quiet --unit=mock-kafka --property=Type=exec \
  /opt/libmq-tests/mock_kafka serve invitations:3 results:2
mock_bootstrap() { in_ct 20 journalctl --no-pager -u mock-kafka -o cat | sed -n 's/^bootstrap //p'; }
mock_up() { [ -n "$(mock_bootstrap)" ]; }
wait_for 30 "the mock cluster's bootstrap address in its journal" mock_up
bootstrap=$(mock_bootstrap)
say "kafka: librdkafka's mock cluster at $bootstrap (unit mock-kafka)"

# ---- the local side: mqd, two topics, records published before the bridge runs ---------------------------------
in_ct 60 systemctl start mqd || fail "systemctl start mqd: $(in_ct 30 journalctl --no-pager -u mqd -o cat | tail -5)"
mqctl_ create invitations --capacity 16MiB >/dev/null
mqctl_ create results --capacity 4MiB >/dev/null
seq 1 100 | mqctl_ produce invitations

# The config: readable by the bridge's group only (it may hold SASL secrets).
conf_dir=/usr/local/etc/mq
in_ct 10 sh -c "umask 027 && cat >$conf_dir/bridge-west.conf && chgrp mq $conf_dir/bridge-west.conf" <<EOF
# Written by tests/systemd/bridge_boot_test.sh.
kafka.bootstrap.servers = $bootstrap
metrics-listen = 127.0.0.1:9465

[route.invitations-out]
direction = out
local-topic = invitations
kafka-topic = invitations
group = kafka-bridge
kafka.linger.ms = 5

[route.results-in]
direction = in
local-topic = results
kafka-topic = results
group = kafka-bridge
EOF

# ---- start: READY before systemctl returns ---------------------------------------------------------------------
in_ct 60 systemctl enable --now --quiet "$unit" || { journal; fail "systemctl enable --now $unit"; }
[ "$(show ActiveState)/$(show SubState)" = active/running ] || fail "$unit is $(show ActiveState)/$(show SubState)"
[[ "$(show StatusText)" == *"2 routes"* ]] || fail "$unit's status is '$(show StatusText)', not the one READY=1 carries"
[ "$(show NRestarts)" = 0 ] || fail "$unit restarted while starting"
[ "$(in_ct 10 systemctl is-enabled "$unit")" = enabled ] || fail "$unit is not enabled"
say "start: systemctl enable --now returned after READY (status '$(show StatusText)'), enabled"

# ---- the process: user mq, no capabilities, sandboxed ----------------------------------------------------------
pid=$(show MainPID)
expect_sandboxed "the bridge" "$pid" 0000000000000000 "no capability"
# In its mount namespace (test -w asks access(2), which says EROFS even to root on a read-only mount):
in_ct 10 nsenter --target "$pid" --mount -- test -w /usr/local/etc/mq && fail "the bridge sees /usr writable"
in_ct 10 nsenter --target "$pid" --mount -- test -w /dev/shm || fail "the bridge sees /dev/shm read-only"
say "process: user mq, no capabilities, NoNewPrivs, seccomp filter, /usr read-only, /dev/shm writable"

# ---- records: libmq -> Kafka (at least once, acked locally), Kafka -> libmq (once each) ----------------------
seq 101 200 | mqctl_ produce invitations
wait_for 60 "invitations 1..200 (100 published before the start) in Kafka" kafka_holds invitations 200
wait_for 30 "the bridge's group acking invitations up to 200" acked_up_to invitations kafka-bridge 200
seq 1 50 | kafka produce "$bootstrap" results
got=$(mqctl_ consume results --group check --from-beginning --max 50 --timeout 30) ||
  fail "the local topic results did not get the 50 records written to Kafka: '$got'"
[ "$(values_sorted "$got")" = "$(seq 1 50)" ] || fail "results holds '$got', not 1..50 once each"
[ "$(latest results)" = 50 ] || fail "results holds $(latest results) records, not 50"
say "records: 200 local records in Kafka and acked; 50 Kafka records in the local topic, once each"

# ---- --status: the routes as the running bridge reports them (from its metrics-listen endpoint) ----------------
# route_is ROUTE DIR STATE RECORDS: --status (run by alice, who may read the config) shows the route so.
route_is() {
  local table line
  table=$(as_user alice 30 mq-kafka-bridge --config "$conf_dir/bridge-west.conf" --status) || return 1
  line=$(awk -v r="$1" '$1 == r { print $1, $2, $3, $6 }' <<<"$table")
  [ "$line" = "$*" ]
}
wait_for 10 "--status showing invitations-out running with 200 records carried" route_is invitations-out out running 200
wait_for 10 "--status showing results-in running with 50 records carried" route_is results-in in running 50
say "status: mq-kafka-bridge --status shows both routes running, 200 and 50 records carried"

# ---- the watchdog: a hung bridge is killed and restarted; nothing is lost -------------------------------------
in_ct 10 rm -f /run/stop-feed
# alice publishes 201, 202, ... until /run/stop-feed appears (as_user's timeout bounds the whole feed).
as_user alice 300 bash -c 'i=200; until [ -e /run/stop-feed ]; do i=$((i + 1)); echo "$i"; sleep 0.005; done |
  mqctl produce invitations' >"$work/feed.log" 2>&1 &
feeder=$!
feed_past() { [ "$(latest invitations)" -gt "$1" ]; }
restarted() { [ "$(show NRestarts)" != "$before" ] && [ "$(show SubState)" = running ]; }
wait_for 20 "the feed publishing before the stop" feed_past 200
before=$(show NRestarts)
in_ct 10 sh -c "kill -STOP $pid"  # a shell builtin: minbase has no kill(1)
seq 51 100 | kafka produce "$bootstrap" results  # while the bridge is stopped
wait_for 90 "the watchdog (WatchdogSec=30s) killing and restarting the stopped bridge" restarted
new_pid=$(show MainPID)
[ "$new_pid" != "$pid" ] || fail "MainPID is still the stopped bridge's"
in_journal "watchdog timeout" || fail "no watchdog line in the bridge's journal: $(journal | tail -5)"
mark=$(latest invitations)
wait_for 30 "the feed publishing after the restart (beyond offset $mark)" feed_past "$mark"
in_ct 10 touch /run/stop-feed
wait "$feeder" || { cat "$work/feed.log"; fail "the client publishing through the restart failed"; }
count=$(latest invitations)
wait_for 60 "every invitation published (1..$count) in Kafka" kafka_holds invitations "$count"
wait_for 30 "the bridge's group acking invitations up to $count" acked_up_to invitations kafka-bridge "$count"
sent=$(kafka dump "$bootstrap" invitations | wc -l)
got=$(mqctl_ consume results --group check --max 50 --timeout 30) ||
  fail "the local topic results did not get the 50 records written to Kafka during the stop: '$got'"
[ "$(values_sorted "$got")" = "$(seq 51 100)" ] || fail "results then holds '$got', not 51..100 once each"
[ "$(latest results)" = 100 ] || fail "results holds $(latest results) records after the restart, not 100"
say "watchdog: SIGSTOP -> killed and restarted (NRestarts $(show NRestarts)); the $count records published through it" \
  "all in Kafka ($((sent - count)) sent again, as at-least-once allows) and acked; the 50 Kafka got meanwhile" \
  "appended once each"

# ---- stop: clean, everything acked; the journal ----------------------------------------------------------------
in_ct 60 systemctl stop "$unit"
[ "$(show ActiveState)" = inactive ] || fail "$unit is $(show ActiveState) after systemctl stop (result $(show Result))"
[ "$(show ExecMainStatus)" = 0 ] || fail "the bridge exited $(show ExecMainStatus) on SIGTERM: $(journal | tail -5)"
acked=$(committed invitations kafka-bridge)
[ "$acked" = "$count" ] || fail "invitations is acked up to $acked after the stop, not $count"
wait_for 30 "the bridge's 'stopped' line in the journal" in_journal "mq-kafka-bridge: info: stopped"
in_journal "starting 2 routes" -p info..info || fail "the bridge's start line is not in the journal at priority info"
in_journal "route invitations-out: stopped" || fail "no stop line of the outbound route: $(journal | tail -5)"
in_journal "route results-in: stopped" || fail "no stop line of the inbound route: $(journal | tail -5)"
say "stop: exit 0, everything acked; the journal holds the bridge's lines at info"

# ---- a bad config or a missing local topic: the start fails, and systemd does not retry it ---------------------
# start_refused INSTANCE TEXT: starting it fails, it settles in failed with no restart, and its journal has TEXT.
start_refused() {
  local u=mq-kafka-bridge@$1 text=$2 lines
  in_ct 60 systemctl start "$u" 2>/dev/null && fail "$u started"
  settled() { [ "$(show ActiveState "$u")" = failed ] || [ "$(show NRestarts "$u")" != 0 ]; }
  wait_for 30 "$u settling after the failed start" settled
  [ "$(show NRestarts "$u")" = 0 ] ||
    fail "$u restarts although it exited 2: NRestarts $(show NRestarts "$u"), $(show SubState "$u")"
  lines=$(in_ct 30 journalctl --no-pager -u "$u" -o cat)
  grep -q -- "$text" <<<"$lines" || fail "$u's journal does not say '$text': $(tail -5 <<<"$lines")"
}
in_ct 10 sh -c "cat >$conf_dir/bridge-typo.conf" <<EOF
kafka.bootstrap.servers = $bootstrap
[route.a]
direction = out
local-topic = invitations
kafka-topic = invitations
colour = blue
EOF
start_refused typo "colour"
in_ct 10 sh -c "cat >$conf_dir/bridge-gone.conf" <<EOF
kafka.bootstrap.servers = $bootstrap
[route.a]
direction = out
local-topic = no-such-topic
kafka-topic = invitations
EOF
start_refused gone "no-such-topic"
say "refused: a bad config and a missing local topic fail the start once, with no restart"

in_ct 30 systemctl stop mock-kafka
say "PASS"
