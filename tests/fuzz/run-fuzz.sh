#!/bin/sh
# run-fuzz.sh TARGET SEEDS WORKDIR SECONDS [libFuzzer flags...]
# Fuzzes TARGET for SECONDS starting from the seed folder; new corpus entries are written to
# WORKDIR (the seed folder stays untouched) and a crash leaves its input in WORKDIR/crashes.
set -eu
target=$1 seeds=$2 work=$3 secs=$4
shift 4
mkdir -p "$work/corpus" "$work/crashes"
# -error_exitcode=1: libFuzzer's default (77) would read as "skipped" to meson.
exec "$target" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
    -error_exitcode=1 \
    -print_final_stats=1 -artifact_prefix="$work/crashes/" "$@" "$work/corpus" "$seeds"
