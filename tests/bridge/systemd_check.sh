#!/usr/bin/env bash
# Static checks of mq-kafka-bridge@.service (PID 1 here is not systemd, so the unit cannot be started for real):
#   1. `systemd-analyze verify` on bridge/mq-kafka-bridge@.service.in, configured with ExecStart = the built bridge
#      ($1), as instance "check". verify exits 0 even on parse errors, so any output on stderr is a failure. The
#      Documentation= man page is looked up in bridge/ through MANPATH.
#   2. `systemd-analyze security --offline=true`: the exposure score, a failure above 5.0 ("MEDIUM"), as mqd's.
# Usage: systemd_check.sh PATH/TO/mq-kafka-bridge. Exit 0 pass, 1 fail, 77 skipped (no systemd-analyze).
set -euo pipefail

bridge=${1:?usage: systemd_check.sh PATH/TO/mq-kafka-bridge}
command -v systemd-analyze >/dev/null || { echo "bridge systemd_check: systemd-analyze missing: skipped"; exit 77; }
root_dir=$(cd "$(dirname "$0")/../.." && pwd)
[ -x "$bridge" ] || { echo "bridge systemd_check: $bridge is not an executable"; exit 1; }
bridge=$(cd "$(dirname "$bridge")" && pwd)/$(basename "$bridge")

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "bridge systemd_check: FAIL: $*"; exit 1; }

unit="$work/mq-kafka-bridge@check.service"
sed -e "s|@CMAKE_INSTALL_FULL_BINDIR@/mq-kafka-bridge|$bridge|g" -e "s|@CMAKE_INSTALL_FULL_SYSCONFDIR@|/etc|g" \
  "$root_dir/bridge/mq-kafka-bridge@.service.in" >"$unit"
grep -q '@CMAKE_' "$unit" && fail "unconfigured @CMAKE_...@ left in the unit: $(grep '@CMAKE_' "$unit")"
cp "$unit" "$work/mq-kafka-bridge@.service"

mkdir -p "$work/man/man8"
ln -s "$root_dir/bridge/mq-kafka-bridge.8" "$work/man/man8/mq-kafka-bridge.8"
man_flag=()
command -v man >/dev/null || man_flag=(--man=no)
verify_rc=0
(cd "$work" && MANPATH="$work/man" timeout 60 systemd-analyze verify "${man_flag[@]}" ./mq-kafka-bridge@check.service) \
  >"$work/verify.out" 2>"$work/verify.err" || verify_rc=$?
# mqd.service (After=) is not installed here: verify may say so; that line alone is not the unit's fault.
grep -v "mqd.service" "$work/verify.err" >"$work/verify.err.own" || true
if [ -s "$work/verify.err.own" ] || [ "$verify_rc" -ne 0 ]; then
  cat "$work/verify.err"
  fail "systemd-analyze verify (exit $verify_rc) printed the above"
fi
echo "bridge systemd_check: systemd-analyze verify: clean"

if timeout 60 systemd-analyze security --offline=true "$unit" >"$work/security.out" 2>"$work/security.err"; then
  score_line=$(grep 'Overall exposure level' "$work/security.out" || true)
  [ -n "$score_line" ] || { cat "$work/security.out" "$work/security.err"; fail "no exposure score printed"; }
  echo "bridge systemd_check: ${score_line#→ }"
  score=$(sed -n 's/.*: \([0-9][0-9.]*\) .*/\1/p' <<<"$score_line")
  awk -v s="$score" 'BEGIN { exit !(s <= 5.0) }' || fail "exposure $score is above 5.0"
else
  cat "$work/security.err"
  fail "systemd-analyze security --offline=true failed"
fi
echo "bridge systemd_check: pass"
