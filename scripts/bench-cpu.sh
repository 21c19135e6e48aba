#!/usr/bin/env bash
# bench-cpu.sh - the CPU backend's benchmark (figures, not assertions): STREAM bandwidth, GEMM
# FLOP/s, then decode and prefill of a llama-shaped 110M model (workloads/plans/bench-cpu-110m.yaml),
# each compared with its target. Extra arguments go to `hetbench run` (e.g. --min-seconds 1).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${HB_BUILD_DIR:-build}
[[ -x $BUILD/hetbench ]] || bash scripts/setup.sh
OUT=${OUT:-bench-cpu.h5}
"$BUILD/hetbench" run --plan workloads/plans/bench-cpu-110m.yaml --backend cpu --out "$OUT" --force \
  --json --no-progress "$@" > "$OUT.jsonl"
python3 - "$OUT.jsonl" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
# Figures use the median iteration (rate x mean / median): on a shared machine a few iterations
# stalled by other tenants move the mean, not the median. The mean-based rate is printed too.
for r in rows:
    k = r["iter_s_mean"] / r["iter_s_median"]
    for key in ("rate", "bytes_per_s", "flops_per_s"):
        r[key + "_mean"] = r[key]
        if r[key] is not None:
            r[key] = r[key] * k
def pick(**kw):
    return [r for r in rows if all(r.get(k) == v for k, v in kw.items())]
bw = max(r["bytes_per_s"] for r in pick(workload="stream"))
gf = max(r["flops_per_s"] for r in pick(workload="gemm"))
print("# hetbench CPU benchmark (%s)" % rows[0]["device"])
print("# %-40s %14s %14s %10s %12s %8s" % ("case", "rate_median", "rate_mean", "unit", "median_ms", "cv_%"))
for r in rows:
    print("  %-40s %14.4g %14.4g %10s %12.3f %8.1f" % (r["label"], r["rate"], r["rate_mean"], r["rate_unit"],
          r["iter_s_median"] * 1e3, 100 * r["iter_cv"]))
dec = {r["dtype"]: r for r in pick(workload="decode")}
pre = {r["dtype"]: r for r in pick(workload="prefill")}
print("#")
print("# %-58s %10s %8s %s" % ("figure", "value", "target", "verdict"))
def line(name, value, target, fmt="%.3f"):
    print("  %-58s %10s %8s %s" % (name, fmt % value, fmt % target, "met" if value >= target else "MISSED"))
print("  %-58s %10.2f" % ("STREAM bandwidth, best of copy/triad (GB/s)", bw / 1e9))
print("  %-58s %10.2f" % ("GEMM f32, best of 1024x2048x2048 / 2048^3 (GFLOP/s)", gf / 1e9))
line("decode f32: weight+KV bytes/token / time vs STREAM", dec["f32"]["bytes_per_s"] / bw, 0.85)
line("decode bf16 vs f32 tokens/s", dec["bf16"]["rate"] / dec["f32"]["rate"], 1.7)
line("prefill f32 B=1 P=256 FLOP/s vs GEMM", pre["f32"]["flops_per_s"] / gf, 0.70)
print("  %-58s %10.2f" % ("prefill bf16 B=1 P=256 FLOP/s vs GEMM f32", pre["bf16"]["flops_per_s"] / gf))
print("  %-58s %10.1f" % ("decode f32 tokens/s", dec["f32"]["rate"]))
print("  %-58s %10.1f" % ("decode bf16 tokens/s", dec["bf16"]["rate"]))
print("  %-58s %10.1f" % ("prefill f32 tokens/s", pre["f32"]["rate"]))
PY
