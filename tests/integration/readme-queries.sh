#!/bin/sh
# The README's sqlite3 examples, checked verbatim: run the default experiment into a fresh
# database, then run every `$ sqlite3 ... demo/qlab.db "..."` line of a ```console block in
# README.md against it and compare the output with the lines the README shows under it.
# usage: readme-queries.sh QLAB README.md EXPERIMENT.yaml
set -eu
qlab=$1 readme=$2 yaml=$3
tmp=$(mktemp -d /tmp/qlab-readme-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
"$qlab" run "$yaml" --db "$tmp/qlab.db" --quiet > /dev/null

awk -v dir="$tmp" '
    /^```console/ { inblk = 1; next }
    /^```/        { if (inblk && cmd != "") flush(); inblk = 0; next }
    inblk && /^\$ sqlite3/ {
        if (cmd != "") flush()
        cmd = substr($0, 3); n++; out = ""; next
    }
    inblk && cmd != "" { out = out $0 "\n" }
    function flush() {
        f = dir "/q" n
        printf "%s", cmd > (f ".cmd"); close(f ".cmd")
        printf "%s", out > (f ".want"); close(f ".want")
        cmd = ""
    }
' "$readme"

count=0 failed=0
for c in "$tmp"/q*.cmd; do
    [ -e "$c" ] || break
    count=$((count + 1))
    want=${c%.cmd}.want
    cmd=$(sed "s#demo/qlab.db#$tmp/qlab.db#" "$c")
    sh -c "$cmd" > "${c%.cmd}.got" 2>&1 || true
    if ! diff -u "$want" "${c%.cmd}.got" > "${c%.cmd}.diff"; then
        failed=$((failed + 1))
        echo "README query differs: $(cat "$c")"
        cat "${c%.cmd}.diff"
    fi
done
if [ "$count" -lt 4 ]; then
    echo "only $count sqlite3 examples found in $readme"
    exit 1
fi
echo "$((count - failed)) passed, $failed failed"
[ "$failed" -eq 0 ]
