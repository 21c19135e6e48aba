#!/usr/bin/env bash
# bench-sampler.sh - what the power sampler costs a CPU-bound case (figures, not assertions;
# target: at most 1% throughput loss at 20 Hz). An f32 GEMM (512^3 by default) is measured with
# the sampler off, at 20 Hz and at 100 Hz, interleaved round after round in one process
# (tests/bench_sampler.c: the same timed window as `hetbench run`); medians are printed, with the
# range, since a shared machine is noisy; and, free of that noise, the CPU time the sampler
# thread itself uses per second at each rate (its worst-case cost to a job using every core). The CPU
# meter is RAPL: where /sys/class/powercap is missing or unreadable, a live fake powercap tree
# (tests/fake_powercap, 2 sockets, package + DRAM rewritten every 5 ms by another process) is
# used, so that the sampler really reads files. When `hetbench run` accepts --power-hz, the
# same comparison is also made through whole `hetbench run` processes.
#
#   bash scripts/bench-sampler.sh [--rounds R] [--seconds S] [--size N] [--hz 0,20,100]
#   HB_BUILD_DIR=build-x (build dir), HB_BENCH_FAKE=1 (use the fake tree even with RAPL)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${HB_BUILD_DIR:-build}
if [[ ! -x $BUILD/tests/bench_sampler || ! -x $BUILD/tests/fake_powercap || ! -x $BUILD/hetbench ]]; then
  cmake -S . -B "$BUILD" >/dev/null
  make -C "$BUILD" -j2 bench_sampler fake_powercap hetbench >/dev/null
fi
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
ARGS=("$@")
[[ ${#ARGS[@]} -gt 0 ]] || ARGS=(--rounds 9 --seconds 1 --size 512 --hz 0,20,100)
run() { # run CMD... with RAPL, real or fake
  if [[ -z ${HB_BENCH_FAKE:-} ]] && cat /sys/class/powercap/intel-rapl:0/energy_uj >/dev/null 2>&1; then
    echo "# RAPL: /sys/class/powercap" >&2
    "$@"
  else
    echo "# RAPL: fake powercap tree (no readable /sys/class/powercap here)" >&2
    "$BUILD/tests/fake_powercap" "$T/pc" --sockets 2 --watts 40,8 --period-ms 10 -- "$@"
  fi
}
echo "# OMP_NUM_THREADS=${OMP_NUM_THREADS:-unset}, $(nproc) cores"
run "$BUILD/tests/bench_sampler" "${ARGS[@]}"

if "$BUILD/hetbench" run --help | grep -q -- '--power-hz'; then
  echo "#"
  echo "# the same through whole hetbench run processes (gemm 512^3 f32, 3 rounds x 2 s, interleaved)"
  for round in 1 2 3; do
    for hz in 0 20 100; do
      run "$BUILD/hetbench" run --workload gemm --m 512 --n 512 --k 512 --backend cpu --min-seconds 2 \
        --no-ceilings --no-progress --idle-seconds 0 --power-hz "$hz" --json --force \
        --out "$T/run-$hz.h5" | sed "s/^/$hz /" >>"$T/runs.txt"
    done
  done
  python3 - "$T/runs.txt" <<'PY'
import json, statistics, sys
by = {}
for line in open(sys.argv[1]):
    hz, js = line.split(" ", 1)
    by.setdefault(float(hz), []).append(json.loads(js)["rate"] / 1e9)
base = statistics.median(by[0.0])
print("# %8s %14s %10s" % ("rate_Hz", "GFLOP/s_med", "loss_%"))
for hz in sorted(by):
    m = statistics.median(by[hz])
    print("  %8g %14.2f %10.2f" % (hz, m, 100 * (base - m) / base))
PY
else
  echo "# (hetbench run has no --power-hz yet: the run-level comparison is skipped)"
fi
