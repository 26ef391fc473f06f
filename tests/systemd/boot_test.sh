#!/usr/bin/env bash
# mqd under a real systemd. PID 1 of this machine is not systemd, so the test boots one as PID 1 of a systemd-nspawn
# container (a Debian 12 minbase root made once with debootstrap and cached), installs the built tree under
# /usr/local in it (cmake --install), and checks the service for real:
#   - `systemctl start mqd` returns only after READY: mqctl answers at once, the unit is active with no restart;
#   - mqd runs as user mq with only CAP_CHOWN, no new privileges and a seccomp filter (the unit's sandbox);
#   - a user in group mq publishes and consumes; a user outside it is refused with a message naming the socket;
#   - a hung mqd (SIGSTOP) is killed by the watchdog and restarted, re-adopts its topics with their records, and a
#     client publishing all along loses nothing and never fails;
#   - `systemctl reload` re-reads the config (a new default capacity), and a broken config is refused with the old
#     one kept; `systemctl stop` keeps the topics, which the next start adopts;
#   - the journal holds mqd's lines at their priorities (info, error).
# Usage: boot_test.sh BUILD_DIR (configured with the install prefix /usr/local, built).
# Exit 0 pass, 1 fail, 77 skipped (not root, or this kernel refuses the namespaces a container needs).
# Env: MQ_NSPAWN_CACHE (default /var/cache/libmq-tests) keeps the root image; MQ_DEBIAN_MIRROR (default: apt's).
# The container (image, install, boot, in_ct, as_user, wait_for) is container.sh's, shared with bridge_boot_test.sh.
set -euo pipefail

me=boot_test
# shellcheck source=tests/systemd/container.sh
source "$(dirname "$0")/container.sh"
container_prepare "${1:-}"
[ -f "$stage/usr/local/lib/systemd/system/mqd.service" ] ||
  fail "cmake --install put no mqd.service in lib/systemd/system"
container_boot
in_ct 10 id mq >/dev/null || fail "systemd-sysusers made no user mq at boot (lib/sysusers.d/mq.conf)"
in_ct 30 useradd --create-home --groups mq alice
in_ct 30 useradd --create-home bob

show() { in_ct 20 systemctl show mqd --value -p "$1"; }
journal() { in_ct 30 journalctl --no-pager -u mqd -o cat "$@"; }
# in_journal TEXT [journalctl options]: the unit's journal (as filtered) has a line with TEXT. (Read whole first:
# grep -q would close the pipe early, and pipefail would count journalctl's SIGPIPE as a failure.)
in_journal() {
  local text=$1 lines
  shift
  lines=$(journal "$@") && grep -qi -- "$text" <<<"$lines"
}

# ---- start: READY before systemctl returns ---------------------------------------------------------------------
in_ct 60 systemctl start mqd || { journal; fail "systemctl start mqd"; }
as_user alice 10 mqctl list >/dev/null || { journal; fail "mqctl did not answer right after 'systemctl start' returned"; }
[ "$(show ActiveState)/$(show SubState)" = active/running ] || fail "mqd is $(show ActiveState)/$(show SubState)"
[ "$(show NRestarts)" = 0 ] || fail "mqd restarted while starting"
say "start: systemctl start returned after READY (mqctl answered at once)"

# ---- the process: user mq, CAP_CHOWN only, sandboxed ------------------------------------------------------------
pid=$(show MainPID)
expect_sandboxed mqd "$pid" 0000000000000001 "only CAP_CHOWN (bit 0)"
say "process: user mq, capabilities CAP_CHOWN only, NoNewPrivs, seccomp filter"

# ---- a user in group mq publishes and consumes; one outside is refused ------------------------------------------
as_user alice 20 mqctl produce orders --value invite-ann --value invite-bob || fail "alice (group mq) cannot publish"
got=$(as_user alice 20 mqctl consume orders --group mailer --from-beginning --max 2 --timeout 10) ||
  fail "alice (group mq) cannot consume: '$got'"
[ "$got" = "$(printf '0 # invite-ann\n1 # invite-bob')" ] || fail "alice consumed '$got'"
refusal=$(as_user bob 20 mqctl list 2>&1) && fail "bob (not in group mq) listed the topics: '$refusal'"
grep -qi "permission" <<<"$refusal" && grep -q "/run/mq/mqd.sock" <<<"$refusal" ||
  fail "bob's refusal does not say what is wrong: '$refusal'"
say "access: group mq publishes and consumes; bob is refused: '$refusal'"

# ---- the watchdog: a hung mqd is killed and restarted; a publishing client loses nothing ------------------------
as_user alice 20 mqctl create feed --capacity 16MiB >/dev/null
in_ct 10 rm -f /run/stop-feed
# alice publishes numbered records until /run/stop-feed appears (as_user's timeout bounds the whole feed).
as_user alice 120 bash -c 'i=0; until [ -e /run/stop-feed ]; do i=$((i + 1)); echo "$i"; sleep 0.002; done |
  mqctl produce feed' >"$work/feed.log" 2>&1 &
feeder=$!
# Conditions polled by wait_for (functions: wait_for runs its command in this shell).
latest() { as_user alice 10 mqctl describe feed | awk '$1 == "Offsets:" { print $NF }'; }
feed_past() { [ "$(latest)" -gt "$1" ]; }  # the feed's next offset is beyond $1
restarted() { [ "$(show NRestarts)" != "$before" ] && [ "$(show SubState)" = running ]; }
wait_for 20 "the feed publishing before the stop" feed_past 0
before=$(show NRestarts)
in_ct 10 sh -c "kill -STOP $pid"  # a shell builtin: minbase has no kill(1)
wait_for 60 "the watchdog killing and restarting the stopped mqd" restarted
new_pid=$(show MainPID)
[ "$new_pid" != "$pid" ] || fail "MainPID is still the stopped mqd's"
in_journal "watchdog timeout" || fail "no watchdog line in mqd's journal: $(journal | tail -5)"
adopted=$(as_user alice 20 mqctl list) || fail "mqctl list after the restart"
grep -qw orders <<<"$adopted" && grep -qw feed <<<"$adopted" || fail "the restarted mqd lists '$adopted'"
got=$(as_user alice 20 mqctl consume orders --group after-restart --from-beginning --max 2 --timeout 10) ||
  fail "the adopted topic orders: '$got'"
[ "$got" = "$(printf '0 # invite-ann\n1 # invite-bob')" ] || fail "orders after the restart holds '$got'"
# The feed goes on through the new mqd; then it stops, and every number it published is there once, in order.
mark=$(latest)
wait_for 30 "the feed publishing after the restart (beyond offset $mark)" feed_past "$mark"
in_ct 10 touch /run/stop-feed
wait "$feeder" || { cat "$work/feed.log"; fail "the client publishing through the restart failed"; }
count=$(latest)
all=$(as_user alice 60 mqctl consume feed --group audit --from-beginning --max "$count" --timeout 5 | sed 's/^[0-9]* # //') ||
  fail "the feed holds fewer than the $count records published"
[ "$all" = "$(seq 1 "$count")" ] || fail "the feed's records are not 1..$count in order: $(diff <(seq 1 "$count") <(echo "$all") | head -5)"
say "watchdog: SIGSTOP -> killed and restarted (NRestarts $(show NRestarts)); topics re-adopted; $count records published through it ($mark before the restart was done), none lost"

# ---- reload: the config is re-read; a broken one is refused, the old one kept -----------------------------------
conf=/usr/local/etc/mq/mqd.conf
in_ct 10 sh -c "echo 'default-capacity = 2MiB' >>$conf"
in_ct 30 systemctl reload mqd
wait_for 30 "'configuration re-read' in the journal" in_journal "configuration re-read"
as_user alice 20 mqctl produce after-reload --value x >/dev/null
described=$(as_user alice 20 mqctl describe after-reload)
grep -q "^Capacity: *2MiB" <<<"$described" || fail "a topic made after the reload has not the new default capacity: $described"
in_ct 10 sh -c "echo 'no-such-option = 1' >>$conf"
in_ct 30 systemctl reload mqd
wait_for 30 "'keeping the old configuration' in the journal" in_journal "keeping the old configuration"
[ "$(show SubState)" = running ] || fail "mqd is $(show SubState) after a reload with a broken config"
in_ct 10 sed -i '/no-such-option/d' "$conf"
say "reload: the new default capacity applies; a broken config is refused and mqd runs on"

# ---- the journal: priorities -----------------------------------------------------------------------------------
in_journal "listening on" -p info..info || fail "mqd's 'listening on' line is not in the journal at priority info"
in_journal "keeping the old configuration" -p err ||
  fail "mqd's refused reload is not in the journal at priority err: $(journal -p err | tail -3)"
in_journal "listening on" -p notice && fail "mqd's info lines are in the journal at a priority above info"
say "journal: info lines at info, errors at err"

# ---- stop keeps the topics; the next start adopts them ---------------------------------------------------------
in_ct 60 systemctl stop mqd
[ "$(show ActiveState)" = inactive ] || fail "mqd is $(show ActiveState) after systemctl stop"
segments=$(in_ct 10 ls /dev/shm)
grep -q orders <<<"$segments" || fail "systemctl stop removed the topics from /dev/shm: '$segments'"
in_ct 60 systemctl start mqd
got=$(as_user alice 20 mqctl consume orders --group after-stop --from-beginning --max 2 --timeout 10) ||
  fail "orders after stop and start: '$got'"
[ "$got" = "$(printf '0 # invite-ann\n1 # invite-bob')" ] || fail "orders after stop and start holds '$got'"
say "stop: the topics stay in /dev/shm and the next start adopts them with their records"
say "PASS"
