#!/bin/sh
# The main job, from a fresh checkout: build, start qlabd, run the default experiment
# (experiments/fashion-mlp.yaml) with a live progress bar, and print its frontier.
# The database is demo/qlab.db; the daemon keeps running afterwards (stop it with
# `kill $(cat demo/qlab.db.lock)`), so `qlab list`, `qlab frontier` and qlab-gui can use it.
set -eu
cd "$(dirname "$0")/.."
if [ -d build ]; then meson setup --reconfigure build >/dev/null; else meson setup build >/dev/null; fi
ninja -C build
mkdir -p demo
export QLAB_DB="$PWD/demo/qlab.db"
if ! ./build/daemon/cli/qlab ping >/dev/null 2>&1; then
    ./build/daemon/cli/qlabd --db "$QLAB_DB" --daemon
fi
./build/daemon/cli/qlab submit experiments/fashion-mlp.yaml --wait
