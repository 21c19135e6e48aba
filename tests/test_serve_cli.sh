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
expect 2 "^hetbench run: --dtype: serve: fp8-block weights are not supported yet" -- "${S[@]}" --dtype fp8-block
expect 2 "^hetbench run: --arrival: arrival: search needs an SLO" -- "${S[@]}" --arrival search
[[ -e $T/x.h5 ]] && fail "a refused run left $T/x.h5 behind"

# rate search: the highest Poisson rate whose TTFT p99 stays within 30 ms; one prompt per
# iteration (max_batch_tokens 24), so 32 requests at once queue far beyond it and the search
# has to come down. Either outcome must be consistent (a loaded machine may find no valid rate).
expect 0 "" -- run --workload serve --model tiny --isl 24 --osl 4 --range-ratio 1 --arrival search --requests 32 \
  --max-batch-tokens 24 --slo-ttft-s 0.03 --kv-block-size 8 --out "$T/s.h5" "${FAST[@]}"
if [[ -n $PY && -e $T/s.h5 ]]; then
  checks=$((checks + 1))
  "$PY" - "$T/s.h5" <<'P' || fail "h5py checks of the rate search"
import sys, math, h5py, numpy as np
f = h5py.File(sys.argv[1], "r")
s = f["summary"][0]
g = f["cases/0000/rank0"]
n = g.attrs["search_streams"]
a = g["requests"][:]
p99 = np.percentile(a[:, 1] - a[:, 0], 99)
assert abs(p99 - s["ttft_p99_s"]) < 1e-12
if s["slo_valid"] == 1:   # the kept stream is the highest valid rate's, and meets the SLO
    assert s["arrival_rate"] > 0 and g.attrs["arrival_rate"] == s["arrival_rate"] and p99 <= 0.03
else:                     # nothing valid: no rate
    assert s["slo_valid"] == 0 and math.isnan(s["arrival_rate"]) and n >= 2
if n > 1:                 # several streams per iteration: the kept stream's own rates, no J/token
    assert abs(s["tokens_per_s_out"] - g.attrs["out_tokens_per_s"]) < 1e-9 * s["tokens_per_s_out"]
    assert math.isnan(s["j_per_token_out"])
print(f"rate search: {n:.0f} streams, rate {s['arrival_rate']:.4g} req/s, TTFT p99 {1e3 * p99:.1f} ms", file=sys.stderr)
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
  # the HTML throughput-vs-interactivity chart: one curve for the ISL/OSL, one point per
  # concurrency, placed in the order of /summary's interactivity and tokens_per_s_out
  checks=$((checks + 1))
  "$HB" report "$T/c.h5" -o "$T/c.html" 2>"$T/err" || fail "report -o html: $(cat "$T/err")"
  "$PY" - "$T/c.h5" "$T/c.html" <<'P' || fail "throughput-interactivity chart"
import re, sys, h5py
s = h5py.File(sys.argv[1])["summary"][:]
html = open(sys.argv[2]).read()
sec = html[html.index('id="throughput-interactivity"'):]
sec = sec[:sec.index("</svg>")]
assert re.search(r"<title>[^<]*: tiny f32 serve 16/4</title>", sec), "no serve 16/4 curve"
pts = {m.group(3): (float(m.group(1)), float(m.group(2)))
       for m in re.finditer(r'<circle cx="([0-9.]+)" cy="([0-9.]+)"[^>]*/><text[^>]*>(C=[0-9]+)</text>', sec)}
assert set(pts) == {"C=1", "C=2"}, pts
row = {int(r["case_id"]): r for r in s}
c1, c2 = row[0], row[1]  # --concurrency 1,2: cases 0 and 1
# x grows with interactivity, y (SVG, downwards) shrinks with throughput
assert (pts["C=1"][0] > pts["C=2"][0]) == (c1["interactivity"] > c2["interactivity"]), (pts, c1["interactivity"], c2["interactivity"])
assert (pts["C=1"][1] < pts["C=2"][1]) == (c1["tokens_per_s_out"] > c2["tokens_per_s_out"]), (pts, c1["tokens_per_s_out"], c2["tokens_per_s_out"])
print("chart points", pts, "interactivity", c1["interactivity"], c2["interactivity"], file=sys.stderr)
P
fi
echo "$checks checks, $fails failed"
[[ $fails -eq 0 ]]
