#!/usr/bin/env bash
# Static checks of the systemd integration (PID 1 here is not systemd, so the unit cannot be started for real):
#   1. `systemd-analyze verify` on systemd/mqd.service.in configured with ExecStart = the built mqd ($1). verify
#      exits 0 even on parse errors, so any output on stderr is a failure. The Documentation= man pages are
#      looked up in daemon/man through MANPATH.
#   2. `systemd-analyze security --offline=true`: prints the exposure score (and fails above 5.0, "MEDIUM").
#   3. `systemd-sysusers --dry-run` on systemd/mq.sysusers, then sysusers and tmpfiles for real in a scratch --root:
#      user and group mq exist there, /run/mq and /var/lib/mq are 0750 mq:mq.
# Usage: systemd_check.sh PATH/TO/mqd. Exit 0 pass, 1 fail, 77 skipped (no systemd-analyze).
set -euo pipefail

mqd=${1:?usage: systemd_check.sh PATH/TO/mqd}
command -v systemd-analyze >/dev/null || { echo "systemd_check: systemd-analyze missing: skipped"; exit 77; }
root_dir=$(cd "$(dirname "$0")/../.." && pwd)
[ -x "$mqd" ] || { echo "systemd_check: $mqd is not an executable"; exit 1; }
mqd=$(cd "$(dirname "$mqd")" && pwd)/$(basename "$mqd")

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "systemd_check: FAIL: $*"; exit 1; }

# The unit as CMake configures it, with the built binary.
sed -e "s|@CMAKE_INSTALL_FULL_SBINDIR@/mqd|$mqd|" -e "s|@CMAKE_INSTALL_FULL_SYSCONFDIR@|/etc|" \
  "$root_dir/systemd/mqd.service.in" >"$work/mqd.service"
grep -q '@CMAKE_' "$work/mqd.service" && fail "unconfigured @CMAKE_...@ left in the unit: $(grep '@CMAKE_' "$work/mqd.service")"

# 1. verify, with the man pages findable.
mkdir -p "$work/man/man1" "$work/man/man8"
ln -s "$root_dir/daemon/man/mqd.8" "$work/man/man8/mqd.8"
ln -s "$root_dir/daemon/man/mqctl.1" "$work/man/man1/mqctl.1"
man_flag=()
command -v man >/dev/null || man_flag=(--man=no)  # no man(1) here: nothing to look the pages up with
verify_rc=0
(cd "$work" && MANPATH="$work/man" timeout 60 systemd-analyze verify "${man_flag[@]}" ./mqd.service) \
  >"$work/verify.out" 2>"$work/verify.err" || verify_rc=$?
if [ -s "$work/verify.err" ] || [ "$verify_rc" -ne 0 ]; then
  cat "$work/verify.err"
  fail "systemd-analyze verify (exit $verify_rc) printed the above"
fi
echo "systemd_check: systemd-analyze verify: clean"

# 2. security exposure (lower is better: 0 = fully locked down, 10 = unprotected).
if timeout 60 systemd-analyze security --offline=true "$work/mqd.service" >"$work/security.out" 2>"$work/security.err"; then
  score_line=$(grep 'Overall exposure level' "$work/security.out" || true)
  [ -n "$score_line" ] || { cat "$work/security.out" "$work/security.err"; fail "no exposure score printed"; }
  echo "systemd_check: ${score_line#→ }"
  score=$(sed -n 's/.*: \([0-9][0-9.]*\) .*/\1/p' <<<"$score_line")
  awk -v s="$score" 'BEGIN { exit !(s <= 5.0) }' || fail "exposure $score is above 5.0"
else
  cat "$work/security.err"
  fail "systemd-analyze security --offline=true failed"
fi

# 3. sysusers and tmpfiles.
command -v systemd-sysusers >/dev/null || fail "systemd-sysusers missing"
timeout 60 systemd-sysusers --dry-run "$root_dir/systemd/mq.sysusers" >"$work/sysusers.out" 2>&1 ||
  { cat "$work/sysusers.out"; fail "systemd-sysusers --dry-run"; }
sed 's/^/systemd_check: sysusers --dry-run: /' "$work/sysusers.out"
mkdir -p "$work/root/etc"
timeout 60 systemd-sysusers --root="$work/root" "$root_dir/systemd/mq.sysusers" >"$work/sysusers-root.out" 2>&1 ||
  { cat "$work/sysusers-root.out"; fail "systemd-sysusers --root"; }
grep -q '^mq:' "$work/root/etc/passwd" || fail "no user mq in the scratch root's /etc/passwd"
grep -q '^mq:' "$work/root/etc/group" || fail "no group mq in the scratch root's /etc/group"
mq_uid=$(awk -F: '$1 == "mq" { print $3 }' "$work/root/etc/passwd")
mq_gid=$(awk -F: '$1 == "mq" { print $3 }' "$work/root/etc/group")
[ "$(awk -F: '$1 == "mq" { print $4 }' "$work/root/etc/passwd")" = "$mq_gid" ] || fail "user mq's primary group is not mq"
if command -v systemd-tmpfiles >/dev/null; then
  timeout 60 systemd-tmpfiles --root="$work/root" --create "$root_dir/systemd/mq.tmpfiles" >"$work/tmpfiles.out" 2>&1 ||
    { cat "$work/tmpfiles.out"; fail "systemd-tmpfiles --create in a scratch root"; }
  for d in run/mq var/lib/mq; do
    got=$(stat -c '%a %u:%g' "$work/root/$d") || fail "tmpfiles did not create /$d"
    [ "$got" = "750 $mq_uid:$mq_gid" ] || fail "/$d is '$got', expected '750 $mq_uid:$mq_gid' (mq:mq)"
  done
  echo "systemd_check: tmpfiles: /run/mq and /var/lib/mq are 0750 mq:mq"
fi
echo "systemd_check: PASS"
