#!/bin/sh
# The main job, from a fresh checkout: build, start qlabd, run the default experiment
# (experiments/fashion-mlp.yaml) with live progress, and print its frontier.
# Everything lives in demo/: the database demo/qlab.db, the daemon's log demo/qlab.db.log
# and its socket demo/qlabd.sock. The daemon keeps running afterwards, so
# `QLAB_DB=demo/qlab.db QLAB_SOCKET=demo/qlabd.sock build/daemon/cli/qlab list`, `qlab
# frontier 1` and `build/gui/qlab-gui demo/qlab.db` work; stop it with
# `kill $(cat demo/qlab.db.lock)`.
set -eu
cd "$(dirname "$0")/.."
if [ -d build ]; then meson setup --reconfigure build >/dev/null; else meson setup build >/dev/null; fi
ninja -C build
mkdir -p demo
export QLAB_DB="$PWD/demo/qlab.db" QLAB_SOCKET="$PWD/demo/qlabd.sock"
if ! ./build/daemon/cli/qlab ping >/dev/null 2>&1; then
    ./build/daemon/cli/qlabd --db "$QLAB_DB" --socket "$QLAB_SOCKET" --daemon
    echo "qlabd started (log: demo/qlab.db.log)"
fi
./build/daemon/cli/qlab submit experiments/fashion-mlp.yaml --wait
