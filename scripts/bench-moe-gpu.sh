#!/usr/bin/env bash
# bench-moe-gpu.sh - the GPU figures of issue 13 (figures, not assertions), for one 80 GB H100
# or larger:
#   deepseek-v2-lite (full depth, bf16, MLA + 64 experts top-6) and mixtral-8x7b (layers 8)
#     decode B = 1..256 against their dense twins (total and active parameters), and with
#     routing zipf:1.2 (workloads/plans/bench-moe-gpu.yaml);
#   the grouped GEMM (matmul_grouped: one GEMM per expert through the GEMM engine) against one
#     dense GEMM of the same FLOPs (tests/bench_grouped).
# Prints per model and batch the MoE's tokens/s, each twin's, and MoE / twin, next to the
# active-parameter ratio (what "a MoE activates only part of the compute" would predict); the
# published same-hardware figures land at 2.1-2.6x for MoE vs total twin (issue 13).
# Needs a GPU backend with a device: without one it says so and exits 2 (nothing to measure).
#   HB_BUILD_DIR (build), HB_BACKEND (cuda), OUT (bench-moe-gpu.h5); extra arguments go to
#   `hetbench run`.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${HB_BUILD_DIR:-build}
BACKEND=${HB_BACKEND:-cuda}
OUT=${OUT:-bench-moe-gpu.h5}
if [[ ! -x $BUILD/hetbench ]]; then
  echo "bench-moe-gpu: no $BUILD/hetbench (build first: scripts/setup.sh, or set HB_BUILD_DIR)" >&2
  exit 2
fi
if ! "$BUILD/hetbench" list backends | grep -qE "^  $BACKEND +available"; then
  "$BUILD/hetbench" list backends >&2 || true
  echo "bench-moe-gpu: no GPU device on backend '$BACKEND' here (see above): nothing to measure" >&2
  exit 2
fi
"$BUILD/hetbench" run --plan workloads/plans/bench-moe-gpu.yaml --backend "$BACKEND" --out "$OUT" \
  --force --json --no-progress "$@" > "$OUT.jsonl"
GROUPED=""
if [[ -x $BUILD/tests/bench_grouped ]]; then
  GROUPED=$("$BUILD/tests/bench_grouped" "$BACKEND" bf16 || true)
fi
python3 - "$OUT.jsonl" <<'PY'
import json, sys
from collections import defaultdict
rows = [json.loads(l) for l in open(sys.argv[1])]
print("# hetbench MoE benchmark on %s" % rows[0]["device"])
for r in rows:
    if r["status"] != "ok":
        print("  %-60s %s: %s" % (r["label"], r["status"], r["error"]))
ok = [r for r in rows if r["status"] == "ok" and "routing=" not in r["label"]]
# model names: <moe>, <moe>-dense (total twin), <moe>-dense-active
fam = defaultdict(dict)
for r in ok:
    m = r["model"]
    base, kind = (m[:-len("-dense-active")], "active") if m.endswith("-dense-active") else \
                 (m[:-len("-dense")], "total") if m.endswith("-dense") else (m, "moe")
    fam[(base, r["layers"])].setdefault(r["batch"], {})[kind] = r
print("# %-28s %6s %12s %12s %12s %10s %11s %8s %8s" % ("model", "batch", "moe_tok/s", "total_tok/s",
      "active_tok/s", "moe/total", "moe/active", "MFU_%", "BW_%"))
for (base, layers), by_b in sorted(fam.items()):
    for b in sorted(by_b):
        d = by_b[b]
        moe, tot, act = d.get("moe"), d.get("total"), d.get("active")
        f = lambda x: x["rate"] if x else float("nan")
        print("  %-28s %6d %12.1f %12.1f %12.1f %10.2f %11.2f %8.1f %8.1f" % (
            "%s[%dL]" % (base, layers), b, f(moe), f(tot), f(act), f(moe) / f(tot), f(moe) / f(act),
            100 * ((moe or {}).get("mfu") or float("nan")), 100 * ((moe or {}).get("bw_util") or float("nan"))))
print("# routing zipf:1.2 (skewed expert popularity) against the router's own choice")
for r in rows:
    if r["status"] == "ok" and "routing=" in r["label"]:
        same = [x for x in ok if x["model"] == r["model"] and x["batch"] == r["batch"] and x["layers"] == r["layers"]]
        base = same[0]["rate"] if same else float("nan")
        print("  %-60s %12.1f tokens/s  (router: %s)" % (r["label"], r["rate"], "%.1f" % base if same else "not run"))
PY
if [[ -n $GROUPED ]]; then
  echo "# grouped GEMM (one GEMM per expert) vs one dense GEMM of the same FLOPs (tests/bench_grouped)"
  echo "$GROUPED"
fi
echo "bench-moe-gpu: results in $OUT (and $OUT.jsonl)" >&2
