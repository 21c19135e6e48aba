#!/usr/bin/env bash
# bench-cpu.sh - the CPU backend's benchmark (figures, not assertions): STREAM bandwidth, GEMM
# FLOP/s, then decode and prefill of a llama-shaped 110M model in f32, bf16, fp8 and fp8-block
# (workloads/plans/bench-cpu-110m.yaml), each compared with its target.
#
# The plan runs ROUNDS times (default 3) and every ratio is formed within one round - peers
# measured minutes apart on a shared machine are not comparable - then reported as the median
# of the rounds with their range. Extra arguments go to `hetbench run` (e.g. --min-seconds 1).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${HB_BUILD_DIR:-build}
ROUNDS=${ROUNDS:-3}
[[ -x $BUILD/hetbench ]] || bash scripts/setup.sh
OUT=${OUT:-bench-cpu.h5}
for ((r = 1; r <= ROUNDS; r++)); do
  "$BUILD/hetbench" run --plan workloads/plans/bench-cpu-110m.yaml --backend cpu --out "$OUT" --force \
    --json --no-progress "$@" > "$OUT.$r.jsonl"
done
python3 - "$OUT" "$ROUNDS" <<'PY'
import json, statistics, sys
base, rounds = sys.argv[1], int(sys.argv[2])
def load(path):
    rows = [json.loads(l) for l in open(path)]
    # Figures use the median iteration (rate x mean / median): on a shared machine a few
    # iterations stalled by other tenants move the mean, not the median.
    for r in rows:
        k = r["iter_s_mean"] / r["iter_s_median"]
        for key in ("rate", "bytes_per_s", "flops_per_s"):
            r[key + "_mean"] = r[key]
            if r[key] is not None:
                r[key] = r[key] * k
    return rows
runs = [load("%s.%d.jsonl" % (base, i + 1)) for i in range(rounds)]
def pick(rows, **kw):
    return [r for r in rows if all(r.get(k) == v for k, v in kw.items())]
def by_dtype(rows, wl):
    return {r["dtype"]: r for r in pick(rows, workload=wl)}
print("# hetbench CPU benchmark (%s), %d rounds; last round's cases:" % (runs[0][0]["device"], rounds))
print("# %-44s %14s %14s %10s %12s %8s" % ("case", "rate_median", "rate_mean", "unit", "median_ms", "cv_%"))
for r in runs[-1]:
    print("  %-44s %14.4g %14.4g %10s %12.3f %8.1f" % (r["label"], r["rate"], r["rate_mean"], r["rate_unit"],
          r["iter_s_median"] * 1e3, 100 * r["iter_cv"]))
# one value per round for each figure
figs = []  # (name, target or None, [values], fmt)
def fig(name, target, f, fmt="%.3f"):
    vals = []
    for rows in runs:
        bw = max(r["bytes_per_s"] for r in pick(rows, workload="stream"))
        gf = max(r["flops_per_s"] for r in pick(rows, workload="gemm"))
        vals.append(f(by_dtype(rows, "decode"), by_dtype(rows, "prefill"), bw, gf))
    figs.append((name, target, vals, fmt))
fig("STREAM bandwidth, best of copy/triad (GB/s)", None, lambda d, p, bw, gf: bw / 1e9, "%.2f")
fig("GEMM f32, best of 1024x2048x2048 / 2048^3 (GFLOP/s)", None, lambda d, p, bw, gf: gf / 1e9, "%.1f")
fig("decode f32: weight+KV bytes/token / time vs STREAM", 0.85, lambda d, p, bw, gf: d["f32"]["bytes_per_s"] / bw)
fig("decode bf16 vs f32 tokens/s", 1.8, lambda d, p, bw, gf: d["bf16"]["rate"] / d["f32"]["rate"])
# fp8: at least the weight bytes/s of bf16 decode (so ~2x bf16 tokens/s where bandwidth-bound)
for q in ("fp8", "fp8-block"):
    fig("decode %s bytes/s vs bf16 bytes/s" % q, 1.0, lambda d, p, bw, gf, q=q: d[q]["bytes_per_s"] / d["bf16"]["bytes_per_s"])
    fig("decode %s vs bf16 tokens/s" % q, None, lambda d, p, bw, gf, q=q: d[q]["rate"] / d["bf16"]["rate"])
fig("prefill f32 B=1 P=256 FLOP/s vs GEMM", 0.70, lambda d, p, bw, gf: p["f32"]["flops_per_s"] / gf)
for q in ("bf16", "fp8", "fp8-block"):
    fig("prefill %s B=1 P=256 FLOP/s vs GEMM f32" % q, None, lambda d, p, bw, gf, q=q: p[q]["flops_per_s"] / gf)
for q in ("f32", "bf16", "fp8", "fp8-block"):
    fig("decode %s tokens/s" % q, None, lambda d, p, bw, gf, q=q: d[q]["rate"], "%.1f")
for q in ("f32", "bf16", "fp8", "fp8-block"):
    fig("prefill %s tokens/s" % q, None, lambda d, p, bw, gf, q=q: p[q]["rate"], "%.1f")
print("#")
print("# %-58s %10s %19s %8s %s" % ("figure (median of rounds)", "value", "range", "target", "verdict"))
for name, target, vals, fmt in figs:
    med = statistics.median(vals)
    rng = "[%s, %s]" % (fmt % min(vals), fmt % max(vals))
    if target is None:
        print("  %-58s %10s %19s" % (name, fmt % med, rng))
    else:
        print("  %-58s %10s %19s %8s %s" % (name, fmt % med, rng, fmt % target, "met" if med >= target else "MISSED"))
PY
