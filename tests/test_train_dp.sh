#!/usr/bin/env bash
# test_train_dp.sh HETBENCH MPIRUN - data-parallel training on CPU ranks under mpirun:
#  - dp=2 with batch B gives the loss trajectory of dp=1 with batch 2B on the same tokens
#    (within reduction-order tolerance), and both ranks of the group report the same loss;
#    /summary: dp 2 and group_rate = 2 x the slower rank's rate;
#  - dp that does not divide the ranks, and dp with --schedule serial, exit 2 before anything runs.
source "$(dirname "$0")/mpi_preamble.sh" "$@"
FAST=(--min-seconds 0 --min-iters 4 --warmup 1 --no-ceilings --no-progress --power-hz 0 --backend cpu --share-devices)
TRAIN=(--workload train --model tiny --seq 16 --lr 1e-3)

checks=$((checks + 1))
if "${MPI[@]}" -np 2 "$HB" run "${TRAIN[@]}" --dp 2 --batch 2 --out "$T/dp2.h5" "${FAST[@]}" >"$T/o1" 2>"$T/e1" &&
   "${MPI[@]}" -np 2 "$HB" run "${TRAIN[@]}" --dp 1 --batch 4 --out "$T/dp1.h5" "${FAST[@]}" >"$T/o2" 2>"$T/e2"; then
  checks=$((checks + 1))
  "$PY" - "$T/dp2.h5" "$T/dp1.h5" <<'PYEOF' || fail "dp=2 B=2 vs dp=1 B=4 losses"
import sys, h5py, numpy as np
a, b = h5py.File(sys.argv[1], "r"), h5py.File(sys.argv[2], "r")
l2 = [a[f"cases/0000/rank{r}/loss"][:] for r in (0, 1)]
l1 = [b[f"cases/0000/rank{r}/loss"][:] for r in (0, 1)]
ok = True
if not np.array_equal(l2[0], l2[1]): print("dp=2: the ranks of the group differ", l2, file=sys.stderr); ok = False
if not np.array_equal(l1[0], l1[1]): print("dp=1: two replicas of one case differ", l1, file=sys.stderr); ok = False
if len(l2[0]) != 5 or not np.allclose(l2[0], l1[0], rtol=2e-5, atol=0):
    print("dp=2 B=2", l2[0], "dp=1 B=4", l1[0], file=sys.stderr); ok = False
if a["summary"]["tokens_per_s_in"][0] <= 0 or a["cases/0000"].attrs["tokens_in_per_iter"] != 32:
    print("per-rank tokens", a["cases/0000"].attrs["tokens_in_per_iter"], file=sys.stderr); ok = False
# the group's rate: each rank trains its own B x T tokens, so dp x the slower rank's
s, s1 = a["summary"][:], b["summary"][:]
for row in s:
    if row["dp"] != 2 or row["group_size"] != 2 or row["group_rate"] != 2 * min(s["rate"]) or \
       row["group_rate_per_device"] != min(s["rate"]):
        print("dp=2 group row", row["dp"], row["group_size"], row["group_rate"], row["group_rate_per_device"], s["rate"],
              file=sys.stderr); ok = False
for row in s1:
    if row["dp"] != 1 or row["group_rate"] != row["rate"]:
        print("dp=1 row", row["dp"], row["group_rate"], row["rate"], file=sys.stderr); ok = False
sys.exit(0 if ok else 1)
PYEOF
else
  fail "the runs failed: $(cat "$T/e1" "$T/e2" | head -c 600)"
fi

# bad input: exit 2, one line, before anything runs
expect2() {
  local np=$1 pat=$2; shift 2
  checks=$((checks + 1))
  "${MPI[@]}" -np "$np" "$HB" run "${TRAIN[@]}" "$@" --out "$T/bad.h5" "${FAST[@]}" >"$T/out" 2>"$T/err"
  local rc=$?
  [[ $rc -eq 2 ]] || { fail "np $np $* -> exit $rc, expected 2: $(head -c 400 "$T/err")"; return; }
  grep -Eq -- "$pat" "$T/err" || fail "np $np $* -> '$(head -c 400 "$T/err")' does not match '$pat'"
  [[ ! -e $T/bad.h5 ]] || fail "np $np $* -> wrote a results file"
}
expect2 2 "dp 3 does not divide the 2 ranks of the run" --dp 3
expect2 2 "dp 2 with --schedule serial" --dp 2 --schedule serial
echo "test_train_dp.sh: $checks checks, $fails failed" >&2
[[ $fails -eq 0 ]]
