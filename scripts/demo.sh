#!/usr/bin/env bash
# demo.sh - the newcomer's main job: set up, build, and run the default plan on the CPU
# (gemm, stream, prefill and decode of a small model, ~30 s), printing the table and writing
# hetbench-demo.h5 (overwritten on each demo run).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
BUILD=${HB_BUILD_DIR:-build}
exec "$BUILD/hetbench" run --backend cpu --out hetbench-demo.h5 --force "$@"
