#!/usr/bin/env bash
# bench-groups.sh - figures of rank groups on CPU ranks (issue 15), 2 ranks under mpirun:
#  1. decode of llama-110m (B=1, P=64, G=32), f32 and bf16: tp=1 (a replica per rank) against
#     tp=2 (one model split over both ranks), interleaved windows (workloads/plans/bench-tp.yaml);
#     prints tokens/s and per-token latency, and the tp=2 / tp=1 ratios;
#  2. the MPI all_reduce sweep (workloads/plans/bench-allreduce.yaml): size, time, algbw, busbw
#     (nccl-tests' table).
# The machine's load (uptime) is printed with the figures: on a shared machine compare the
# ratios, not the absolute numbers. BUILD (default build) holds hetbench; NP (2) ranks.
set -eu
BUILD=${BUILD:-build}
NP=${NP:-2}
OUT=${OUT:-$(mktemp -d)}
export OMPI_ALLOW_RUN_AS_ROOT=${OMPI_ALLOW_RUN_AS_ROOT:-1} OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=${OMPI_ALLOW_RUN_AS_ROOT_CONFIRM:-1}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
PY=python3
python3 -c "import h5py" 2>/dev/null || PY=/usr/bin/python3
echo "# load before: $(uptime)"
mpirun --bind-to none -np "$NP" "$BUILD/hetbench" run --plan workloads/plans/bench-tp.yaml --interleave --backend cpu \
  --no-ceilings --idle-seconds 0 --power-hz 0 --no-progress --out "$OUT/tp.h5" --force >"$OUT/tp.txt"
echo "# load after tp: $(uptime)"
mpirun --bind-to none -np "$NP" "$BUILD/hetbench" run --plan workloads/plans/bench-allreduce.yaml --backend cpu \
  --no-ceilings --idle-seconds 0 --power-hz 0 --no-progress --out "$OUT/ar.h5" --force >"$OUT/ar.txt"
echo "# load after all_reduce: $(uptime)"
"$PY" - "$OUT/tp.h5" "$OUT/ar.h5" <<'PYEOF'
import sys, h5py
tp, ar = h5py.File(sys.argv[1], "r"), h5py.File(sys.argv[2], "r")
s = tp["summary"][:]
print("# decode llama-110m B=1 P=64 G=32, 2 ranks (1 thread each). tokens/s: rank 0's rate (mean iteration time, median")
print("# of the windows); latency: its median iteration; p50 tok/s = 1 / latency (robust to preemption on a loaded machine)")
print("# %-5s %3s %12s %12s %12s %14s %14s %10s" % ("dtype", "tp", "tokens/s", "latency_ms", "p50 tok/s", "tok/s/device",
                                                  "2-rank tok/s", "comm_frac"))
res = {}
for cid in sorted(set(int(c) for c in s["case_id"])):
    rows = s[s["case_id"] == cid]
    r0 = rows[rows["rank"] == 0][0]
    t = int(r0["tp"])
    dt = r0["dtype"].decode()
    node = r0["rate"] * (1 if t > 1 else len(rows))   # tp=1: every rank runs its own replica
    res[(dt, t)] = (r0["rate"], r0["latency_p50_s"], node)
    print("  %-5s %3d %12.2f %12.3f %12.2f %14.2f %14.2f %10.3f  (%s)" % (dt, t, r0["rate"], 1e3 * r0["latency_p50_s"],
          1 / r0["latency_p50_s"], node / len(rows), node, r0["comm_frac"],
          "timing valid" if r0["timing_valid"] == 1 else "timing flagged"))
for dt in ("f32", "bf16"):
    if (dt, 1) in res and (dt, 2) in res:
        a, b = res[(dt, 2)], res[(dt, 1)]
        print("# %s: tp=2 / tp=1 per-token latency %.3f, tokens/s of one sequence %.3f, node tokens/s %.3f" %
              (dt, a[1] / b[1], a[0] / b[0], a[2] / b[2]))
s = ar["summary"][:]
print("# all_reduce f32 out of place, 2 ranks (MPI)")
print("# mean: hetbench's rate (algbw over the mean time) and busbw; p50: the same over the median time")
print("# %12s %12s %12s %12s %12s %12s %12s" % ("size_B", "mean_us", "algbw_GB/s", "busbw_GB/s", "p50_us", "algbw_p50",
                                             "busbw_p50"))
for cid in sorted(set(int(c) for c in s["case_id"])):
    r0 = s[(s["case_id"] == cid) & (s["rank"] == 0)][0]
    size = ar["cases/%04d" % cid].attrs["bytes_per_iter"]
    f = r0["busbw"] / r0["rate"]
    p50 = r0["latency_p50_s"]
    print("  %12d %12.2f %12.3f %12.3f %12.2f %12.3f %12.3f" % (size, 1e6 * r0["iter_s_mean"], r0["rate"] / 1e9,
          r0["busbw"] / 1e9, 1e6 * p50, size / p50 / 1e9, f * size / p50 / 1e9))
PYEOF
echo "# files: $OUT"
