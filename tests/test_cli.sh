#!/usr/bin/env bash
# test_cli.sh HETBENCH TESTS_DIR - the CLI's contract: exit 2 with one line naming the
# file/flag, line and field for every bad input, nothing written; a good run writes a
# complete file whose /summary loads in h5py.
set -u
HB=$1
TESTS=$2
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fails=0 checks=0
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
FAST=(--min-seconds 0 --min-iters 2 --warmup 0 --no-ceilings --no-progress --backend cpu)

fail() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }

# expect CODE PATTERN -- args...: exit code and a stderr line matching PATTERN (grep -E)
expect() {
  local code=$1 pat=$2; shift 3
  checks=$((checks + 1))
  "$HB" "$@" >"$T/out" 2>"$T/err"
  local rc=$?
  if [[ $rc -ne $code ]]; then fail "hetbench $* -> exit $rc, expected $code; stderr: $(head -c 400 "$T/err")"; return; fi
  if [[ -n $pat ]] && ! grep -Eq -- "$pat" "$T/err"; then fail "hetbench $* -> stderr '$(head -c 400 "$T/err")' does not match '$pat'"; fi
  if [[ $code -eq 2 ]] && [[ $(wc -l <"$T/err") -ne 1 ]]; then fail "hetbench $* -> expected one line on stderr, got: $(cat "$T/err")"; fi
}

plan() { cat >"$T/$1"; }

# ---- flags ----
expect 2 "unknown command 'frobnicate'" -- frobnicate
expect 2 "unknown option '--bogus'" -- run --bogus 1
expect 2 "^hetbench run: --workload: unknown value 'traing'.*accepted: gemm, stream, prefill, decode" -- run --workload traing
expect 2 "^hetbench run: --model: unknown model 'llama9'" -- run --workload decode --model llama9 --out "$T/x.h5"
expect 2 "^hetbench run: --dtype: unknown value 'fp64'.*f32, bf16, f16, fp8" -- run --workload gemm --dtype fp64 --out "$T/x.h5"
expect 2 "^hetbench run: --batch: .*'0'" -- run --workload decode --batch 0 --out "$T/x.h5"
expect 2 "^hetbench run: --batch: .*'-4'" -- run --workload decode --batch 1,-4 --out "$T/x.h5"
expect 2 "^hetbench run: --m: .*'12x'" -- run --workload gemm --m 12x --out "$T/x.h5"
expect 2 "--min-seconds: missing value" -- run --workload gemm --min-seconds
expect 2 "unknown list 'gpus'" -- list gpus
expect 2 "^hetbench run: --backend: unknown backend 'tpu'" -- run --workload gemm --backend tpu --out "$T/x.h5" "${FAST[@]:0:6}"
# a case too large for memory: named, nothing written
expect 2 "^hetbench run: case 0 \(decode llama3-70b f32 B=64 P=8000 G=32\): needs .* GiB" -- run --workload decode --model llama3-70b --batch 64 --prompt 8000 --out "$T/big.h5"
[[ -e $T/big.h5 ]] && fail "a refused run left $T/big.h5 behind"
# ---- plan files ----
plan syntax.yaml <<'Y'
cases:
  - workload: gemm
    m: [1, 2
Y
expect 2 "syntax.yaml:[0-9]+" -- run --plan "$T/syntax.yaml" --out "$T/x.h5"
plan unknown_key.yaml <<'Y'
cases:
  - workload: gemm
    mm: 4
Y
expect 2 "unknown_key.yaml:3: field 'mm'" -- run --plan "$T/unknown_key.yaml" --out "$T/x.h5"
plan wrong_type.yaml <<'Y'
cases:
  - workload: decode
    batch: {a: 1}
Y
expect 2 "wrong_type.yaml:3: field 'batch'" -- run --plan "$T/wrong_type.yaml" --out "$T/x.h5"
plan negative.yaml <<'Y'
defaults:
  min_seconds: 0
cases:
  - workload: prefill
    model: tiny
    prompt: -3
Y
expect 2 "negative.yaml:6: field 'prompt'" -- run --plan "$T/negative.yaml" --out "$T/x.h5"
plan bad_model.yaml <<'Y'
models:
  mine:
    dim: 100
    layers: 2
    heads: 3
    ffn_dim: 64
    vocab: 50
    max_seq: 64
    norm: rmsnorm
    activation: swiglu
    positions: rope
    tied_embeddings: no
cases:
  - workload: decode
    model: mine
Y
expect 2 "bad_model.yaml:[0-9]+: .*(dim|heads)" -- run --plan "$T/bad_model.yaml" --out "$T/x.h5"
expect 2 "nope.yaml: cannot read" -- run --plan "$T/nope.yaml" --out "$T/x.h5"
[[ -e $T/x.h5 ]] && fail "a refused run left $T/x.h5 behind"

# ---- output files ----
touch "$T/exists.h5"
expect 2 "exists.h5: file exists \(use --force to overwrite\)" -- run --workload gemm --m 8 --n 8 --k 8 --out "$T/exists.h5" "${FAST[@]}"
[[ -s $T/exists.h5 ]] && fail "existing file was modified"
expect 2 "folder .*no/such/dir. does not exist" -- run --workload gemm --m 8 --n 8 --k 8 --out "$T/no/such/dir/x.h5" "${FAST[@]}"

# ---- a real run: table on stdout, complete file, summary loads in h5py ----
expect 0 "" -- run --workload gemm,decode --model tiny --m 16 --n 24 --k 32 --batch 1,2 --prompt 8 --gen 4 --dtype f32,bf16 --out "$T/ok.h5" "${FAST[@]}"
grep -q "^# *id" "$T/out" || fail "no table header on stdout: $(cat "$T/out")"
[[ $(grep -c " ok$" "$T/out") -eq 6 ]] || fail "expected 6 ok rows: $(cat "$T/out")"
expect 0 "" -- run --workload gemm --m 16 --n 16 --k 16 --out "$T/ok.h5" --force --json "${FAST[@]}"
grep -q '^{"case":0,"rank":0,.*"rate_unit":"FLOP/s"' "$T/out" || fail "--json did not print a JSON line: $(cat "$T/out")"
# a case that fails (an injected error): recorded, the run goes on, exit 1
HETBENCH_FAULT=rank=0,case=0,kind=error expect 1 "1 \(case, rank\) pair failed" -- run --workload prefill --model tiny --prompt 4 --dtype fp8,f32 --out "$T/fp8.h5" "${FAST[@]}"
# fp8, fp8-block and an fp8 KV cache run on the CPU; a block that does not divide the model is refused
expect 0 "" -- run --workload prefill,decode --model tiny --prompt 4 --gen 2 --dtype fp8,fp8-block --quant-block 32 --kv-dtype auto,fp8 --out "$T/fp8ok.h5" "${FAST[@]}"
[[ $(grep -c " ok$" "$T/out") -eq 8 ]] || fail "expected 8 ok fp8 rows: $(cat "$T/out")"
grep -q "decode tiny fp8-block kv=fp8 B=1 P=4 G=2" "$T/out" || fail "no fp8-block kv=fp8 label: $(cat "$T/out")"
expect 2 "^hetbench run: --quant-block: 48 does not divide dim = 64 of model 'tiny'" -- run --workload decode --model tiny --dtype fp8-block --quant-block 48 --out "$T/x.h5"
expect 2 "^hetbench run: --kv-dtype: unknown value 'fp4' \(accepted: auto, f32, bf16, f16, fp8\)" -- run --workload decode --model tiny --kv-dtype fp4 --out "$T/x.h5"
# ---- sizes derived from user numbers (issue 19): checked at plan time, exit 2 naming the
# product; nothing is allocated and no file is written ----
BIG=4611686018427387904 # 2^62, the largest value a key accepts
expect 2 "^hetbench run: --stream-n: stream n=$BIG: the size of 3 arrays x n x 4 bytes .* overflows 64 bits" -- run --workload stream --stream-n $BIG --out "$T/ovf.h5"
expect 2 "^hetbench run: --m: gemm M=$BIG N=1 K=1: the size of A \(m x k x dtype bytes\) = $BIG x 1 x 4 overflows 64 bits" -- run --workload gemm --m $BIG --n 1 --k 1 --out "$T/ovf.h5"
expect 2 "^hetbench run: --batch: decode model 'tiny' batch $BIG .*batch x prompt \($BIG x 128\) overflows 64 bits" -- run --workload decode --model tiny --batch $BIG --out "$T/ovf.h5"
expect 2 "^hetbench run: --batch: decode .*tensor k_cache \($BIG x 2 x 2 x 16 x 4 bytes.* overflows 64 bits" -- run --workload decode --model tiny --batch $BIG --prompt 1 --gen 1 --out "$T/ovf.h5"
expect 2 "^hetbench run: --gen: prompt $BIG \+ gen $BIG = 9223372036854775808 exceeds max_seq" -- run --workload decode --model tiny --prompt $BIG --gen $BIG --out "$T/ovf.h5"
# 3037000500^2 is just above 2^63: m x k wraps in a plain int64 product
expect 2 "^hetbench run: --m: gemm M=3037000500 N=3037000500 K=3037000500: the size of A .* overflows 64 bits" -- run --workload gemm --m 3037000500 --n 3037000500 --k 3037000500 --out "$T/ovf.h5"
# in range but far too large: the fit check refuses it before anything is allocated
expect 2 "^hetbench run: case 0 \(gemm f32 M=2000000 N=2000000 K=2000000\): needs 44703.48 GiB of memory" -- run --workload gemm --m 2000000 --n 2000000 --k 2000000 --out "$T/ovf.h5"
plan ovf.yaml <<Y
cases:
  - workload: decode
    model: tiny
    batch: [1, $BIG]
  - workload: stream
    stream_n: $BIG
Y
expect 2 "ovf.yaml:4: field 'batch': decode model 'tiny' batch $BIG .* overflows 64 bits" -- run --plan "$T/ovf.yaml" --out "$T/ovf.h5"
plan ovf_model.yaml <<Y
models:
  wide:
    base: tiny
    vocab: $BIG
cases:
  - workload: prefill
    model: wide
    prompt: 1
Y
expect 2 "ovf_model.yaml:[0-9]+: .*tensor wte \($BIG x 64 x 4 bytes.* overflows 64 bits" -- run --plan "$T/ovf_model.yaml" --out "$T/ovf.h5"
plan deep_model.yaml <<Y
models:
  deep:
    base: tiny
    layers: $BIG
cases:
  - workload: prefill
    model: deep
Y
expect 2 "deep_model.yaml:[0-9]+: model 'deep': field 'layers' is $BIG \(accepted: 1 to 4096\)" -- run --plan "$T/deep_model.yaml" --out "$T/ovf.h5"
expect 2 "^hetbench run: --temperature: '1e300' is too large \(accepted: numbers 0 to 3.4e38\)" -- run --workload decode --model tiny --temperature 1e300 --out "$T/ovf.h5"
[[ -e $T/ovf.h5 ]] && fail "a refused run left $T/ovf.h5 behind"
# the python that has h5py (scripts/setup.sh installs Debian's python3-h5py)
PY=""
for p in python3 /usr/bin/python3; do "$p" -c "import h5py" 2>/dev/null && { PY=$p; break; }; done
if [[ -z $PY ]]; then
  fail "no python3 with h5py (install python3-h5py): the results file cannot be checked"
else
  checks=$((checks + 1))
  "$PY" - "$T/ok.h5" "$T/fp8.h5" <<'PY' || fail "h5py checks"
import sys, h5py, math
f = h5py.File(sys.argv[1], "r")
assert f.attrs["schema"] in (b"hetbench/1", "hetbench/1"), f.attrs["schema"]
st = f.attrs["status"]; st = st.decode() if isinstance(st, bytes) else st
assert st == "complete", st
s = f["summary"][:]
assert len(s) == 1 and s["status"][0] == b"ok", s
assert s["rate_unit"][0] == b"FLOP/s" and s["rate"][0] > 0
assert s["rate_ci_lo"][0] <= s["rate"][0] * 1.5
assert math.isnan(s["energy_j"][0]), "energy must be NaN (not measured), never 0"
assert s["energy_flags"][0] & 1, "no-meter flag"
g = h5py.File(sys.argv[2], "r")
s = g["summary"][:]
assert [x.decode() for x in s["status"]] == ["failed", "ok"], s["status"]
err = g["cases/0000/rank0"].attrs["error"]
err = err.decode() if isinstance(err, bytes) else err
assert "injected" in err, err
PY
fi

echo "test_cli.sh: $checks checks, $fails failed" >&2
[[ $fails -eq 0 ]]
