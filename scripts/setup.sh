#!/usr/bin/env bash
# Installs what building and testing libmq needs on Debian 12 (run as root, or with sudo available), and the Node
# addon's npm dependencies (npm ci in bindings/node, which also builds the addon offline against /usr/include/node).
# Idempotent: when everything is present it only checks.
set -euo pipefail

packages=(
  cmake ninja-build g++ clang libclang-rt-14-dev pkg-config  # toolchains (clang: libFuzzer targets)
  libboost-dev libboost-program-options-dev                   # Boost.Interprocess, Program_options
  nlohmann-json3-dev                                          # mqctl --json (Boost.JSON needs Boost >= 1.75)
  libgtest-dev libbenchmark-dev                               # GoogleTest, Google Benchmark
  libsystemd-dev                                              # sd_notify for mqd
  librdkafka-dev                                              # mq-kafka-bridge: Kafka client and its mock cluster
  util-linux                                                  # unshare (the full-/dev/shm test), nsenter
  systemd-container debootstrap                               # the real-systemd test (tests/systemd)
  nodejs python3 make                                         # the Node addon (node-gyp)
  libzmq3-dev                                                 # bench: ZeroMQ ipc:// peer
  iceoryx libiceoryx-posh-dev libiceoryx-hoofs-dev            # bench: iceoryx 2.0 peer (iox-roudi)
  python3-matplotlib                                          # bench: the report's plots (/usr/bin/python3)
  valgrind                                                    # bench: instruction counts (callgrind)
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#packages[@]} packages present"
else
  echo "setup: installing ${missing[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# The Node addon: its locked dependencies and its build, again only when the lock file or the sources changed.
node_dir="$(dirname "$0")/../bindings/node"
stamp="$node_dir/node_modules/.libmq-setup-stamp"
sources=$(find "$node_dir/src" "$node_dir/binding.gyp" "$node_dir/package-lock.json" \
  "$(dirname "$0")/../libmq/src" "$(dirname "$0")/../libmq/include" -newer "$stamp" 2>/dev/null | head -1 || true)
if [ ! -f "$stamp" ] || [ -n "$sources" ]; then
  echo "setup: npm ci in bindings/node (builds the addon)"
  (cd "$node_dir" && npm ci --no-audit --no-fund --loglevel=error)
  touch "$stamp"
else
  echo "setup: Node addon up to date"
fi
