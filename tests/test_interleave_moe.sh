#!/usr/bin/env bash
# test_interleave_moe.sh HETBENCH PYTHON - --interleave on a MoE case: the record of the gathered
# windows owns its own copy of the expert counts (the window's copy is freed after each round:
# a shallow copy was a use after free and a double free). The counts are the first timed
# iteration's (SCHEMA.md), so the interleaved file's must equal the back-to-back file's (same seed,
# same routing) and each layer's row must sum to tokens x top_k (tiny-moe: top_k 2).
set -uo pipefail
HB=$1 PY=$2
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
cat >"$T/p.yaml" <<'PLAN'
cases:
  - {workload: decode, model: tiny-moe, batch: 2, prompt: 8, gen: 4, warmup: 1, min_iters: 2, max_iters: 3, min_seconds: 0}
PLAN
common=(--plan "$T/p.yaml" --repeat 2 --no-ceilings --no-progress --idle-seconds 0 --power-hz 0)
"$HB" run "${common[@]}" --interleave --out "$T/i.h5" >"$T/i.log" 2>&1 || { cat "$T/i.log"; echo "FAIL: --interleave run"; exit 1; }
"$HB" run "${common[@]}" --out "$T/b.h5" >"$T/b.log" 2>&1 || { cat "$T/b.log"; echo "FAIL: back-to-back run"; exit 1; }
"$PY" - "$T/i.h5" "$T/b.h5" <<'PY'
import sys, h5py, numpy as np
def counts(path):
    f = h5py.File(path, "r")
    g = f["cases"]["0000"]["rank0"]
    st = g.attrs["status"]
    st = st.decode() if isinstance(st, bytes) else str(st)
    if st != "ok" or int(g.attrs["n_reps"]) != 2: sys.exit("FAIL: %s: status %s, n_reps %s" % (path, st, g.attrs["n_reps"]))
    return np.asarray(g["expert_tokens"]), float(g.attrs["expert_imbalance"])
ci, ii = counts(sys.argv[1])
cb, ib = counts(sys.argv[2])
print("interleaved:", ci.tolist(), "imbalance", ii)
print("back-to-back:", cb.tolist(), "imbalance", ib)
ok = True
if ci.shape != (2, 8): print("FAIL: shape", ci.shape); ok = False
# tiny-moe: 3 layers, the first dense; decode of batch 2: one token per sequence per iteration, two experts each
if not (ci.sum(axis=1) == 2 * 2).all(): print("FAIL: a row does not sum to tokens x top_k = 4"); ok = False
if not np.array_equal(ci, cb): print("FAIL: interleaved counts differ from back-to-back"); ok = False
if ii != ib: print("FAIL: imbalance differs"); ok = False
sys.exit(0 if ok else 1)
PY
