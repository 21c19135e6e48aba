#!/usr/bin/env bash
# bench-coordinator.sh - coordinator overhead per case (dispatch + collect + write) at 4, 16
# and 32 ranks (oversubscribed on this machine, CPU backend, a trivial 8x8x8 GEMM case with one
# timed iteration), and the time to write one case with the records of 1024 simulated ranks.
#
# Per-case cost = (wall(60 cases) - wall(10 cases)) / 50: start-up, placement and file
# creation cancel out. Targets: < 20 ms per case at 32 ranks, < 1 s for the 1024-rank write.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${HB_BUILD_DIR:-build}
[[ -x $BUILD/hetbench ]] || bash scripts/setup.sh
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
export OMP_NUM_THREADS=1
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
seq_k() { local n=$1 s=""; for ((i = 0; i < n; i++)); do s+="${s:+,}8"; done; echo "$s"; }
run() { # ranks cases -> seconds
  local np=$1 nc=$2 t0 t1
  t0=$(date +%s.%N)
  mpirun --oversubscribe --bind-to none -np "$np" "$BUILD/hetbench" run --workload gemm --m 8 --n 8 \
    --k "$(seq_k "$nc")" --min-iters 1 --min-seconds 0 --warmup 0 --no-ceilings --no-progress \
    --idle-seconds 0 --power-hz 0 --backend cpu --share-devices --json --out "$T/b.h5" --force >/dev/null
  t1=$(date +%s.%N)
  awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.4f", b - a }'
}
echo "# coordinator overhead per case (trivial case, oversubscribed on $(getconf _NPROCESSORS_ONLN) cores)"
printf "# %6s %14s %14s %14s %10s\n" ranks "wall_10_s" "wall_60_s" "ms_per_case" target
for np in 4 16 32; do
  a=$(run "$np" 10)
  b=$(run "$np" 60)
  ms=$(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.3f", (b - a) / 50 * 1000 }')
  printf "  %6d %14.3f %14.3f %14.2f %10s\n" "$np" "$a" "$b" "$ms" "< 20"
done
echo "#"
"$BUILD/tests/bench_h5write" "$T/w.h5" 1024
