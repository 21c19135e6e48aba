#!/usr/bin/env bash
# test.sh - set up, build, and run every ctest (tests needing a GPU skip with a message).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --tests
BUILD=${HB_BUILD_DIR:-build}
cd "$BUILD"
ctest --output-on-failure -j2 "$@"
