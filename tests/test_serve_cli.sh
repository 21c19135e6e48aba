#!/usr/bin/env bash
# test_serve_cli.sh HETBENCH PYTHON - serve from the command line: every bad input of the issue
# exits 2 with one line naming the flag; a Poisson run with SLOs gives VALID for a loose bound
# and INVALID for an impossible one, and its /summary and request records load in h5py.
set -u
HB=$1
PY=${2:-}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fails=0 checks=0
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
FAST=(--warmup 0 --min-iters 1 --min-seconds 0 --no-ceilings --no-progress --backend cpu)
fail() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }
expect() {
  local code=$1 pat=$2; shift 3
  checks=$((checks + 1))
  "$HB" "$@" >"$T/out" 2>"$T/err"
  local rc=$?
  if [[ $rc -ne $code ]]; then fail "hetbench $* -> exit $rc, expected $code; stderr: $(head -c 400 "$T/err")"; return; fi
  if [[ -n $pat ]] && ! grep -Eq -- "$pat" "$T/err"; then fail "hetbench $* -> stderr '$(head -c 400 "$T/err")' does not match '$pat'"; fi
  if [[ $code -eq 2 ]] && [[ $(wc -l <"$T/err") -ne 1 ]]; then fail "hetbench $* -> expected one line on stderr, got: $(cat "$T/err")"; fi
}
S=(run --workload serve --model tiny --out "$T/x.h5")
expect 2 "^hetbench run: --osl: isl 200 \+ osl 60 exceeds max_seq 256" -- "${S[@]}" --isl 200 --osl 60
expect 2 "^hetbench run: --concurrency: '0' is not a positive integer" -- "${S[@]}" --concurrency 0
expect 2 "^hetbench run: --requests: requests 3 is less than concurrency 4" -- "${S[@]}" --concurrency 4 --requests 3
expect 2 "^hetbench run: --range-ratio: range_ratio 0 is outside \(0, 1\]" -- "${S[@]}" --range-ratio 0
expect 2 "^hetbench run: --range-ratio: range_ratio 1.25 is outside \(0, 1\]" -- "${S[@]}" --range-ratio 1.25
expect 2 "^hetbench run: --kv-blocks: kv_blocks 2 of 16 tokens cannot hold one request" -- "${S[@]}" --kv-blocks 2
expect 2 "^hetbench run: --slo-ttft-s: an SLO .* needs Poisson arrivals" -- "${S[@]}" --slo-ttft-s 2
expect 2 "^hetbench run: --arrival: 'poisson:-3': the rate must be" -- "${S[@]}" --arrival poisson:-3
expect 2 "^hetbench run: --model: model 'tiny-moe': serve runs dense" -- run --workload serve --model tiny-moe --out "$T/x.h5"
[[ -e $T/x.h5 ]] && fail "a refused run left $T/x.h5 behind"

# Poisson arrivals, a loose and an impossible SLO
expect 0 "" -- run --workload serve --model tiny --isl 24 --osl 6 --arrival poisson:200 --requests 12 \
  --slo-ttft-s 10,1e-9 --slo-tpot-s 10 --kv-block-size 8 --out "$T/p.h5" "${FAST[@]}"
if [[ -n $PY && -e $T/p.h5 ]]; then
  checks=$((checks + 1))
  "$PY" - "$T/p.h5" <<'P' || fail "h5py checks of the serve file"
import sys, h5py, numpy as np
f = h5py.File(sys.argv[1], "r")
s = f["summary"][:]
assert list(s["slo_valid"]) == [1, 0], s["slo_valid"]
assert all(s["workload"] == b"serve")
for i in range(2):
    r = f[f"cases/{i:04d}/rank0/requests"]
    assert r.shape == (12, 6), r.shape
    a = r[:]
    assert (a[:, 4] == 6).all() and (a[:, 3] >= 20).all() and (a[:, 3] <= 24).all()
    assert (np.diff(a[:, 0]) >= 0).all() and (a[:, 1] > a[:, 0]).all() and (a[:, 2] >= a[:, 1]).all()
    ttft = a[:, 1] - a[:, 0]
    assert abs(np.percentile(ttft, 99) - s["ttft_p99_s"][i]) < 1e-12
    tpot = (a[:, 2] - a[:, 1]) / 5
    assert abs(np.percentile(tpot, 50) - s["tpot_p50_s"][i]) < 1e-12
    assert abs(s["interactivity"][i] - 1 / s["tpot_p50_s"][i]) < 1e-9
    assert f[f"cases/{i:04d}"].attrs["arrival_rate"] == 200
P
fi
# the report: one Serving row per case (concurrency and SLOs are part of a case's signature)
if [[ -e $T/p.h5 ]]; then
  checks=$((checks + 1))
  "$HB" run --workload serve --model tiny --isl 16 --osl 4 --concurrency 1,2 --out "$T/c.h5" "${FAST[@]}" >/dev/null 2>&1 || fail "closed-loop run"
  "$HB" report "$T/p.h5" "$T/c.h5" >"$T/rep.md" 2>"$T/err" || fail "report: $(cat "$T/err")"
  n=$(sed -n '/^## Serving/,/^## Numerics/p' "$T/rep.md" | grep -c '^| serve tiny')
  [[ $n -eq 4 ]] || fail "Serving section: $n rows, expected 4: $(cat "$T/rep.md")"
  grep -q '| VALID |' "$T/rep.md" && grep -q '| \*\*INVALID\*\* |' "$T/rep.md" || fail "Serving section lacks the VALID and INVALID rows"
fi
echo "$checks checks, $fails failed"
[[ $fails -eq 0 ]]
