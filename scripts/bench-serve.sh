#!/usr/bin/env bash
# bench-serve.sh - the serving benchmark on the CPU backend (figures, not assertions):
# workloads/plans/serve-cpu.yaml, i.e. a llama-shaped 110M model, isl/osl 256/64, closed loop at
# concurrency 1 .. 16, beside B=1 prefill (P=256) and B=1 decode (context 256..319) of the same
# model in the same run. With --repeat 2 --interleave every case runs twice, in rounds, so that
# drift of a shared machine hits every case alike; rates are the median of the two windows.
#
# Prints per concurrency: output tokens/s, interactivity (1/TPOT p50), TTFT and TPOT p99, and
# the gain of continuous batching over B=1 decode (serve output tokens/s / decode tokens/s),
# then the C=1 stream against prefill + decode: TTFT/prefill latency and TPOT/decode latency
# (the same work through the same ops, up to the scheduler and the paged attention).
# Extra arguments go to `hetbench run` (e.g. --concurrency 1,4 --layers 2 for a quick look).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${HB_BUILD_DIR:-build}
[[ -x $BUILD/hetbench ]] || bash scripts/setup.sh
OUT=${OUT:-bench-serve.h5}
echo "# load before: $(cut -d' ' -f1-3 /proc/loadavg) ($(nproc) CPUs)"
"$BUILD/hetbench" run --plan workloads/plans/serve-cpu.yaml --backend cpu --out "$OUT" --force \
  --warmup 0 --repeat 2 --interleave --case-timeout 3000 --json --no-progress "$@" > "$OUT.jsonl"
echo "# load after: $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$OUT.jsonl" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
pre = [r for r in rows if r["workload"] == "prefill"]
dec = [r for r in rows if r["workload"] == "decode"]
srv = [r for r in rows if r["workload"] == "serve"]
d = dec[0] if dec else None
p = pre[0] if pre else None
if d:
    print("# B=1 decode: %.1f tokens/s, %.2f ms/token (median)" % (d["tokens_per_s_out"], 1e3 * d["iter_s_median"]))
if p:
    print("# B=1 prefill P=256: %.1f ms (median), %.0f tokens/s" % (1e3 * p["iter_s_median"], p["tokens_per_s_in"]))
print("# %-44s %12s %14s %12s %12s %12s %12s %10s" % ("case", "out_tok/s", "tok/s/user", "TTFT_p99_ms",
      "TPOT_p99_ms", "TPOT_p50_ms", "total_tok/s", "vs_B1_dec"))
for r in srv:
    gain = r["tokens_per_s_out"] / d["tokens_per_s_out"] if d else float("nan")
    print("  %-44s %12.1f %14.1f %12.1f %12.2f %12.2f %12.1f %9.2fx" % (r["label"], r["tokens_per_s_out"],
          r["interactivity"], 1e3 * r["ttft_p99_s"], 1e3 * r["tpot_p99_s"], 1e3 * r["tpot_p50_s"],
          r["tokens_per_s_total"], gain))
c1 = [r for r in srv if " C=1 " in r["label"]]
if c1 and d and p:
    r = c1[0]
    print("# C=1 vs the fixed-batch workloads: TTFT p50 / prefill median = %.2f (inputs 205..256 vs 256 tokens), "
          "TPOT p50 / decode median = %.2f" % (r["ttft_p50_s"] / p["iter_s_median"], r["tpot_p50_s"] / d["iter_s_median"]))
PY
