#!/bin/sh
# The whole test suite, as CI runs it (.ci/run calls exactly this):
#   1. install what is missing (Debian packages only),
#   2. a release build with warnings as errors, every suite,
#   3. the same suites under AddressSanitizer + UndefinedBehaviorSanitizer,
#   4. the shared-memory rings and the worker pool under ThreadSanitizer,
#   5. the libFuzzer targets (clang): their seed corpora, then 10 s of fuzzing each.
# Build folders: build-ci, build-asan, build-tsan, build-fuzz (next to the sources).
set -eu
cd "$(dirname "$0")/.."
sh scripts/install-deps.sh

jobs=$(nproc)
run() { echo "+ $*"; "$@"; }

setup() {   # setup DIR [meson options...]
    dir=$1; shift
    if [ -d "$dir" ]; then
        run meson setup --reconfigure "$dir" "$@"
    else
        run meson setup "$dir" "$@"
    fi
}

echo "== release build, -Werror, all suites =="
setup build-ci --werror -Dbuildtype=debugoptimized
run ninja -C build-ci -j "$jobs"
run meson test -C build-ci --print-errorlogs --num-processes "$jobs"

echo "== AddressSanitizer + UndefinedBehaviorSanitizer =="
setup build-asan --werror -Dbuildtype=debugoptimized -Db_sanitize=address,undefined -Db_lundef=false
run ninja -C build-asan -j "$jobs"
run meson test -C build-asan --print-errorlogs --num-processes "$jobs" --no-suite gui --no-suite bench --timeout-multiplier 4

if [ -f tests/tsan-suites.txt ]; then
    echo "== ThreadSanitizer =="
    setup build-tsan -Dbuildtype=debugoptimized -Db_sanitize=thread -Db_lundef=false -Dgui=disabled
    run ninja -C build-tsan -j "$jobs"
    # shellcheck disable=SC2046
    run meson test -C build-tsan --print-errorlogs --num-processes "$jobs" --timeout-multiplier 4 \
        $(sed -e 's/#.*//' -e '/^$/d' -e 's/^/--suite /' tests/tsan-suites.txt)
fi
echo "== libFuzzer targets (clang), briefly =="
# libFuzzer needs clang: the compiler is chosen when the folder is first set up.
fuzzopts="-Dbuildtype=debugoptimized -Dfuzz=true -Dgui=disabled"
if [ -d build-fuzz ]; then
    run env CC=clang meson setup --reconfigure build-fuzz $fuzzopts
else
    run env CC=clang meson setup build-fuzz $fuzzopts
fi
run ninja -C build-fuzz -j "$jobs"
run meson test -C build-fuzz --print-errorlogs --num-processes 1 --suite fuzz

echo "== all test runs passed =="
