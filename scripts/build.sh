#!/usr/bin/env bash
# Configures and builds sinklab into build/ (Release). Extra arguments go to cmake.
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cmake -S "$root" -B "$root/build" -DCMAKE_BUILD_TYPE=Release "$@" >/dev/null || exit 1
# Progress lines are noise; warnings and errors are not.
cmake --build "$root/build" -j "$(nproc)" 2>&1 | grep -vE "^\[ *[0-9]+%\]|^Consolidate|^Scanning|^Built target"
exit "${PIPESTATUS[0]}"
