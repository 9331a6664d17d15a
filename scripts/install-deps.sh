#!/bin/sh
# Installs everything qlab needs to build, test and run, from Debian 12's packages only.
set -eu
export DEBIAN_FRONTEND=noninteractive
PKGS="build-essential pkg-config meson ninja-build
      libcmocka-dev libcyaml-dev libyaml-dev libsqlite3-dev sqlite3 zlib1g-dev
      libopenblas-dev libjson-c-dev libssl-dev libgtk-4-dev libdnnl-dev
      dataset-fashion-mnist python3 python3-numpy python3-torch
      xvfb xauth clang libclang-rt-14-dev"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends $missing
fi
