#!/usr/bin/env bash
# Installs what building and testing libmq needs on Debian 12 (run as root, or with sudo available).
# Idempotent: when every package is present it only checks and exits.
set -euo pipefail

packages=(
  cmake ninja-build g++ clang libclang-rt-14-dev pkg-config  # toolchains (clang: libFuzzer targets)
  libboost-dev libboost-program-options-dev                   # Boost.Interprocess, Program_options
  libgtest-dev libbenchmark-dev                               # GoogleTest, Google Benchmark
  libsystemd-dev                                              # sd_notify for mqd
  util-linux                                                  # unshare (the full-/dev/shm test)
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#packages[@]} packages present"
  exit 0
fi
echo "setup: installing ${missing[*]}"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
