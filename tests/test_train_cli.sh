#!/usr/bin/env bash
# test_train_cli.sh HETBENCH PYTHON - the train workload end to end: bad training input exits 2
# with one line naming the flag before anything runs (no file written), and a short run with
# data: repeat writes /cases/<id>/rank0/loss (warm-up steps included and counted in its
# `warmup` attribute) whose values fall, with loss_first/loss_last in /summary.
set -u
HB=$1
PY=${2:-}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fails=0 checks=0
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
FAST=(--min-seconds 0 --min-iters 3 --warmup 2 --no-ceilings --no-progress --power-hz 0 --backend cpu)
fail() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }

# expect2 PATTERN args...: exit 2, one stderr line matching PATTERN, no results file
expect2() {
  local pat=$1; shift
  checks=$((checks + 1))
  "$HB" run --workload train "$@" --out "$T/bad.h5" "${FAST[@]}" >"$T/out" 2>"$T/err"
  local rc=$?
  if [[ $rc -ne 2 ]]; then fail "train $* -> exit $rc, expected 2; stderr: $(head -c 400 "$T/err")"; return; fi
  grep -Eq -- "$pat" "$T/err" || fail "train $* -> stderr '$(head -c 400 "$T/err")' does not match '$pat'"
  [[ $(wc -l <"$T/err") -eq 1 ]] || fail "train $* -> expected one line on stderr, got: $(cat "$T/err")"
  [[ ! -e $T/bad.h5 ]] || fail "train $* -> wrote a results file"
}

expect2 "--seq: seq 300 exceeds max_seq 256 of model 'tiny'" --model tiny --seq 300
expect2 "--lr: lr 0 \(accepted: a learning rate > 0\)" --lr 0
expect2 "--lr: '-1' is negative" --lr -1
expect2 "--beta1: beta1 1 \(accepted: 0 <= beta1 < 1\)" --beta1 1
expect2 "--beta2: beta2 2" --beta2 2
expect2 "dp 2 does not divide the 1 ranks of the run" --dp 2
expect2 "--data: tokens.bin: No such file or directory" --data tokens.bin
expect2 "--dtype: train: dtype fp8" --dtype fp8
expect2 "--grad-accum: '0' is not a positive integer" --grad-accum 0

checks=$((checks + 1))
if "$HB" run --workload train --model tiny --seq 16 --batch 2 --data repeat --lr 1e-3 --out "$T/ok.h5" "${FAST[@]}" \
    >"$T/out" 2>"$T/err"; then
  grep -q "train tiny f32 B=2 T=16 repeat" "$T/out" || fail "no train row in: $(cat "$T/out")"
  if [[ -n $PY ]]; then
    checks=$((checks + 1))
    "$PY" - "$T/ok.h5" <<'PYEOF' || fail "the loss records"
import sys, h5py, numpy as np
f = h5py.File(sys.argv[1], "r")
rank = f["cases/0000/rank0"]
loss = rank["loss"][:]
n_iters = int(rank.attrs["n_iters"])
warm = int(rank["loss"].attrs["warmup"])
s = f["summary"][:]
ok = (warm == 2 and len(loss) == warm + n_iters and np.all(np.diff(loss) < 0)
      and abs(loss[0] - np.log(256)) < 0.1 and s["loss_first"][0] == loss[0] and s["loss_last"][0] == loss[-1]
      and s["rate_unit"][0] == b"tokens/s" and s["seq"][0] == 16)
case = f["cases/0000"].attrs
ok = ok and case["data"] == "repeat" and case["lr"] == np.float32(1e-3) and case["dp"] == 1 and case["grad_accum"] == 1
if not ok:
    print("loss", loss, "warmup", warm, "n_iters", n_iters, "summary", s["loss_first"], s["loss_last"], file=sys.stderr)
sys.exit(0 if ok else 1)
PYEOF
  fi
  # the report reads the case back from the file: its label keeps the training keys
  checks=$((checks + 1))
  "$HB" report "$T/ok.h5" 2>&1 | grep -q "train tiny f32 B=2 T=16 repeat" || fail "report: no 'train tiny f32 B=2 T=16 repeat' row"
else
  fail "train run failed: $(cat "$T/err")"
fi
echo "test_train_cli.sh: $checks checks, $fails failed" >&2
[[ $fails -eq 0 ]]
