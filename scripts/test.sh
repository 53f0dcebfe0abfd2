#!/usr/bin/env bash
# Sets up a fresh machine (idempotent), builds, and runs the whole test suite through CTest.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
"$root/scripts/setup.sh"
"$root/scripts/build.sh"
cd "$root/build"
# Tests share 2 cores: idle OpenMP threads must sleep, not spin, or they starve each other.
export OMP_WAIT_POLICY=PASSIVE
OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}" ctest --output-on-failure -j 2 "$@"
