# shellcheck shell=bash
# Sourced by the tests that run libmq's units under a real systemd (boot_test.sh: mqd; bridge_boot_test.sh:
# mq-kafka-bridge@). PID 1 of this machine is not systemd, so they boot one as PID 1 of a systemd-nspawn container: a
# Debian 12 minbase root made once with debootstrap and cached, with the built tree installed under /usr/local.
# Before sourcing, set `me` (the name messages start with). Then:
#   container_prepare BUILD_DIR   exits 77 (skipped) when not root or no container can boot here; makes the root image
#                                 once (under a lock held until the test exits); installs BUILD_DIR into $stage (in
#                                 $work, removed at exit)
#   container_boot [NSPAWN-OPTION...]   boots it (private network) and waits until systemd is running; sets $init
#   in_ct SECONDS CMD...          CMD in the container as root; as_user USER SECONDS CMD...: as USER
#   wait_for SECONDS WHAT CMD...  polls CMD until it succeeds; fails the test after SECONDS
# Env: MQ_NSPAWN_CACHE (default /var/cache/libmq-tests) keeps the root image; MQ_DEBIAN_MIRROR (default: apt's).

say() { echo "${me:?set me before sourcing container.sh}: $*"; }
fail() { say "FAIL: $*"; exit 1; }

# wait_for SECONDS WHAT CMD...: polls CMD (every 0.1 s) until it succeeds; fails the test after SECONDS.
wait_for() {
  local limit=$1 what=$2 end
  shift 2
  end=$((SECONDS + limit))
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $end ] || fail "$what: not after $limit s"
    sleep 0.1
  done
}

container_prepare() {
  build=$(cd "${1:?usage: $me BUILD_DIR}" && pwd)
  [ "$(id -u)" -eq 0 ] || { say "needs root (systemd-nspawn): skipped"; exit 77; }
  unshare --pid --mount --uts --ipc --net --fork true 2>/dev/null ||
    { say "this kernel or sandbox refuses new namespaces, so no container can boot: skipped"; exit 77; }
  local tool
  for tool in systemd-nspawn debootstrap nsenter flock; do
    command -v "$tool" >/dev/null || fail "$tool is missing (scripts/setup.sh installs it)"
  done
  local prefix
  prefix=$(sed -n 's/^CMAKE_INSTALL_PREFIX:PATH=//p' "$build/CMakeCache.txt")
  [ "$prefix" = /usr/local ] ||
    fail "$build is configured for the prefix '$prefix'; the units under test expect /usr/local"

  # The root image, made once. procps: /bin/kill, for mqd's ExecReload; librdkafka1: mq-kafka-bridge's.
  local cache=${MQ_NSPAWN_CACHE:-/var/cache/libmq-tests}
  local packages=systemd,systemd-sysv,dbus,passwd,procps,libboost-program-options1.74.0,librdkafka1
  image=$cache/bookworm-systemd
  mkdir -p "$cache"
  exec 9>"$cache/.lock"  # held until the test exits: no run rebuilds the image under another's container
  flock -w 900 9 || fail "another run has held $cache/.lock for 15 minutes"
  if [ "$(cat "$image/.libmq-image" 2>/dev/null)" != "$packages" ]; then
    local mirror=${MQ_DEBIAN_MIRROR:-}
    if [ -z "$mirror" ]; then  # apt's own Debian mirror (deb822 .sources or a one-line sources.list)
      mirror=$(cat /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null |
        sed -n 's/^URIs: *\([^ ]*debian\)$/\1/p; s/^deb \(http[^ ]*debian\) bookworm .*/\1/p' | head -1 || true)
    fi
    mirror=${mirror:-http://deb.debian.org/debian}
    say "making the root image in $image (debootstrap minbase from $mirror, once)"
    rm -rf "$image" "$image.new"
    timeout 900 debootstrap --variant=minbase --include="$packages" bookworm "$image.new" "$mirror" \
      >"$cache/debootstrap.log" 2>&1 || { tail -20 "$cache/debootstrap.log"; fail "debootstrap failed (log above)"; }
    echo "$packages" >"$image.new/.libmq-image"
    mv "$image.new" "$image"
  fi

  # The built tree, installed into a stage that becomes the container's /usr/local (in the build tree, not /tmp: the
  # units' PrivateTmp= and nspawn hide /tmp).
  work=$(mktemp -d "$build/systemd-boot.XXXXXX")
  stage=$work/stage
  DESTDIR=$stage cmake --install "$build" >"$work/install.log" 2>&1 ||
    { cat "$work/install.log"; fail "cmake --install"; }
  nspawn=""
  init=""
  trap container_cleanup EXIT
}

container_cleanup() {
  if [ -n "$nspawn" ] && kill -0 "$nspawn" 2>/dev/null; then
    kill -TERM "$nspawn" 2>/dev/null || true  # nspawn asks the container's systemd to power off
    for _ in $(seq 1 100); do kill -0 "$nspawn" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$nspawn" 2>/dev/null || true
    wait "$nspawn" 2>/dev/null || true
  fi
  rm -rf "$work"
}

PATH_IN=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
# in_ct SECONDS CMD...: runs CMD inside the container as root, failing the test when it outlasts SECONDS.
in_ct() {
  local limit=$1
  shift
  timeout "$limit" nsenter --all --target "$init" -- env -i PATH="$PATH_IN" "$@"
}
as_user() {  # as_user USER SECONDS CMD...
  local user=$1 limit=$2
  shift 2
  in_ct "$limit" runuser -u "$user" -- "$@"
}

container_boot() {
  say "booting systemd in a container"
  systemd-nspawn --quiet -D "$image" --ephemeral --boot --register=no --keep-unit --private-network \
    --machine="libmq-test-$$" --bind="$stage/usr/local:/usr/local" "$@" >"$work/console.log" 2>&1 &
  nspawn=$!
  # The container's PID 1 is nspawn's child (nspawn reaps as a subreaper) once the container is set up.
  for _ in $(seq 1 300); do
    init=$(pgrep -P "$nspawn" -x systemd || true)
    [ -n "$init" ] && break
    kill -0 "$nspawn" 2>/dev/null || { cat "$work/console.log"; fail "systemd-nspawn exited before the container's systemd started"; }
    sleep 0.1
  done
  [ -n "$init" ] || { cat "$work/console.log"; fail "no systemd in the container after 30 s"; }
  for _ in $(seq 1 600); do  # systemctl talks to PID 1 through this socket, made early in the boot
    in_ct 10 test -S /run/systemd/private && break
    kill -0 "$nspawn" 2>/dev/null || { cat "$work/console.log"; fail "the container stopped while booting"; }
    sleep 0.1
  done
  local state
  state=$(in_ct 120 systemctl is-system-running --wait || true)
  case "$state" in
    running) ;;
    degraded) say "the container booted degraded: $(in_ct 20 systemctl --failed --no-legend --plain | awk '{print $1}' | xargs)" ;;
    *) cat "$work/console.log"; fail "the container's systemd did not finish booting: '$state'" ;;
  esac
  say "booted: systemd $(in_ct 20 systemctl --version | head -1 | awk '{print $2}') is PID 1 of the container"
  in_ct 30 ldconfig
}

# expect_sandboxed WHO PID CAPS CAPS_TEXT: the container's process PID runs as user and group mq, with each of its
# capability sets (effective, permitted, bounding, ambient) CAPS as /proc/PID/status shows it (CAPS_TEXT says which
# that is), no new privileges and a seccomp filter.
expect_sandboxed() {
  local who=$1 pid=$2 caps=$3 caps_text=$4 status uid gid set
  status=$(in_ct 10 cat "/proc/$pid/status")
  field() { awk -v k="$1:" '$1 == k { $1 = ""; sub(/^ /, ""); print }' <<<"$status"; }
  uid=$(in_ct 10 id -u mq)
  gid=$(in_ct 10 id -g mq)
  [ "$(field Uid)" = "$uid $uid $uid $uid" ] || fail "$who's uids are '$(field Uid)', not mq's ($uid)"
  [ "$(field Gid)" = "$gid $gid $gid $gid" ] || fail "$who's gids are '$(field Gid)', not mq's ($gid)"
  for set in CapEff CapPrm CapBnd CapAmb; do
    [ "$(field $set)" = "$caps" ] || fail "$who's $set is $(field $set): $caps_text was expected"
  done
  [ "$(field NoNewPrivs)" = 1 ] || fail "$who runs without NoNewPrivs"
  [ "$(field Seccomp)" = 2 ] || fail "$who runs without a seccomp filter (Seccomp: $(field Seccomp))"
}
