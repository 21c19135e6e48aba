#!/usr/bin/env bash
# test_checkpoint.sh HETBENCH PYTHON SRC [FP8_PROBE] - weights from Hugging Face checkpoints and prompts from
# token files (workloads/checkpoint.c), against an independent numpy forward.
#
# tests/make_checkpoint.py writes tiny checkpoints of every model_type hetbench reads (llama,
# gpt2, qwen2, qwen3, mixtral, qwen3_moe, deepseek_v3, deepseek_v2; F32, BF16, F16 and fp8 e4m3
# with per-tensor or block scales; one file or two shards with an index) and the fingerprints of the
# logits its float64 forward computes from the values the checkpoint holds. hetbench loads the
# checkpoint into an f32 case, which then computes the same function: the fingerprints (sum,
# sum |x|, L2, argmax) of the prefill logits and of the first decode step's must agree to f32
# rounding, and the token ids hetbench records (`generated`: the prefill argmax, decode's greedy
# tokens) must equal numpy's. Cases in bf16 and fp8 load by conversion and must agree to their
# own precision.
# Then every kind of bad input must stop the run before anything runs: exit 2, a message naming
# the file and the tensor or field, no results file.
set -uo pipefail
HB=$1 PY=$2 SRC=$3 PROBE=${4:-}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail=0
ok() { echo "ok: $*"; }
bad() { echo "FAIL: $*"; fail=1; }

# run_fp DIR WORKLOAD TOKENS DTYPE -> prints the fingerprint of case 0 (or nothing)
run_fp() {
  local dir=$1 wl=$2 tok=$3 dt=$4 out="$T/run.h5"
  rm -f "$out"
  local extra=(--min-iters 1)
  # decode: 3 steps, so that the first pass records all G = 4 tokens (`generated`)
  [[ $wl == decode ]] && extra=(--gen 4 --min-iters 3 --max-iters 3)
  if ! "$HB" run --workload "$wl" --weights "$dir" --prompt-tokens "$tok" --batch 2 --prompt 8 --dtype "$dt" \
       "${extra[@]}" --min-seconds 0 --warmup 0 --no-ceilings --idle-seconds 0 --power-hz 0 --out "$out" --force --no-progress \
       >"$T/run.log" 2>&1; then
    cat "$T/run.log"
    return
  fi
  "$PY" -c "import h5py,json; print(json.dumps(list(h5py.File('$out')['/cases/0000/rank0'].attrs['fingerprint'])))"
}

# compare GOT EXPECT TOL: sum within TOL * sum|x|, sum|x| and L2 within TOL relative, argmax equal
# (only when TOL is f32-tight: a converted model may flip a near tie)
compare() {
  "$PY" - "$1" "$2" "$3" <<'PY'
import json, sys
got, want, tol = json.loads(sys.argv[1]), json.loads(sys.argv[2]), float(sys.argv[3])
err = [abs(got[0] - want[0]) / want[1], abs(got[1] - want[1]) / want[1], abs(got[2] - want[2]) / want[2]]
ok = max(err) <= tol and (tol > 1e-4 or int(got[3]) == want[3])
print("%s got %s want %s rel.err %s" % ("ok" if ok else "bad", got, want, ["%.2g" % e for e in err]))
sys.exit(0 if ok else 1)
PY
}

# generated_ok DIR WORKLOAD: the token ids of $T/run.h5 equal the numpy forward's greedy ones
# (prefill: each prompt's argmax; decode: the G tokens of the first pass), exactly
generated_ok() {
  "$PY" - "$T/run.h5" "$1/expect.json" "$2" <<'PY'
import json, sys, h5py
got = h5py.File(sys.argv[1])["/cases/0000/rank0/generated"][()].tolist()
want = json.load(open(sys.argv[2]))["generated"]
if sys.argv[3] == "prefill": want = [w[:1] for w in want]
print("generated %s, numpy %s" % (got, want))
sys.exit(0 if got == want else 1)
PY
}

check_model() { # ARCH DTYPE LAYOUT TOKENS
  local arch=$1 sdt=$2 layout=$3 tok=$4 d="$T/$1-$2-$3"
  "$PY" "$SRC/tests/make_checkpoint.py" "$d" "$arch" "$sdt" "$layout" || { bad "make_checkpoint $arch $sdt"; return; }
  for wl in prefill decode; do
    local want got
    want=$("$PY" -c "import json; print(json.dumps(json.load(open('$d/expect.json'))['$wl']))")
    got=$(run_fp "$d" "$wl" "$d/$tok" f32)
    if compare "$got" "$want" 2e-5 >"$T/cmp" 2>&1; then ok "$arch $sdt $layout $wl f32: $(cat "$T/cmp")"
    else bad "$arch $sdt $layout $wl f32: $(cat "$T/cmp") $got"; fi
    if generated_ok "$d" "$wl" >"$T/cmp" 2>&1; then ok "$arch $sdt $layout $wl tokens: $(cat "$T/cmp")"
    else bad "$arch $sdt $layout $wl tokens: $(cat "$T/cmp")"; fi
  done
}
check_model llama F32 single prompt.npy
check_model llama31 F32 single prompt.npy
check_model qwen3y F32 single prompt.npy
check_model deepseek_v3y BF16 sharded prompt.npy
check_model llama BF16 sharded prompt.u16
check_model llama F16 single prompt.npy
check_model llama F8 sharded prompt.npy
check_model gpt2 F32 sharded prompt.npy
check_model gpt2 BF16 single prompt.u16
# the other model_types (Hugging Face names, the numpy forward written from their modeling code):
# biased q/k/v with a tied head, q/k norms with head_dim != hidden/heads, softmax-routed
# experts, DeepSeek's MLA (interleaved rope, q_lora or not) with sigmoid group-limited or
# softmax routing and shared experts; fp8 with per-tensor and 128 x 128 block scales
check_model qwen2 F32 single prompt.npy
check_model qwen3 BF16 single prompt.npy
check_model mixtral F8 sharded prompt.npy
check_model qwen3_moe F32 single prompt.u16
check_model deepseek_v3 F8B sharded prompt.npy
check_model deepseek_v2 F32 single prompt.npy
# the case records what the checkpoint stored (beside its dtype: what was converted)
run_fp "$T/mixtral-F8-sharded" prefill "$T/mixtral-F8-sharded/prompt.npy" bf16 >/dev/null
if st=$("$PY" -c "import h5py; print(h5py.File('$T/run.h5')['/cases/0000'].attrs['weights_stored'])") &&
   [[ $st == "F8_E4M3, BF16, F32" ]]; then ok "weights_stored: $st"; else bad "weights_stored: '$st'"; fi

# converted on load: bf16 and fp8 cases of the same checkpoint, to their precision
d="$T/llama-F32-single"
want=$("$PY" -c "import json; print(json.dumps(json.load(open('$d/expect.json'))['prefill']))")
for dt in bf16 fp8; do
  tol=0.02; [[ $dt == bf16 ]] && tol=0.005
  got=$(run_fp "$d" prefill "$d/prompt.npy" "$dt")
  if compare "$got" "$want" "$tol" >"$T/cmp" 2>&1; then ok "llama F32 -> $dt: $(cat "$T/cmp")"
  else bad "llama F32 -> $dt: $(cat "$T/cmp") $got"; fi
done

# ---- serving a checkpoint: 2 requests of the prompt file's 2 x 8 ids, 4 output tokens each,
# one at a time: the greedy tokens are numpy's ----
for d in "$T/qwen3-BF16-single" "$T/mixtral-F8-sharded" "$T/llama31-F32-single"; do
  rm -f "$T/serve.h5"
  "$HB" run --workload serve --weights "$d" --prompt-tokens "$d/prompt.npy" --isl 8 --osl 4 --requests 2 --concurrency 1 \
    --range-ratio 1 --warmup 0 --min-iters 1 --min-seconds 0 --no-ceilings --idle-seconds 0 --power-hz 0 --out "$T/serve.h5" \
    --force --no-progress >"$T/serve.log" 2>&1 || cat "$T/serve.log"
  if "$PY" - "$T/serve.h5" "$d/expect.json" >"$T/cmp" 2>&1 <<'PY'
import json, sys, h5py
got = h5py.File(sys.argv[1])["/cases/0000/rank0/generated"][()].tolist()
want = json.load(open(sys.argv[2]))["generated"]
print("serve %s, numpy %s" % (got, want))
sys.exit(0 if got == want else 1)
PY
  then ok "serve --weights $(basename "$d"): $(cat "$T/cmp")"; else bad "serve --weights $(basename "$d"): $(cat "$T/cmp")"; fi
done
expect_refusal "serve: too few prompt ids" "prompt.npy: holds 16 token ids, the case needs 24" --workload serve --weights "$T/qwen3-BF16-single" \
  --prompt-tokens "$T/qwen3-BF16-single/prompt.npy" --isl 8 --osl 4 --requests 3 --concurrency 1

# ---- e4m3 as stored: an fp8 case keeps a checkpoint's codes and (calibrated, not amax/448)
# scales where its scale layout is the case's, byte for byte (tests/ckpt_fp8_probe.c reads the
# device's copy and the file); the rest is re-quantised from f32, and the run says how many ----
if [[ -n $PROBE ]]; then
  for x in "F8B fp8-block stored stored stored differs 6 2" "F8 fp8 stored differs differs differs 2 6"; do
    set -- $x
    d="$T/m128-$1"
    "$PY" "$SRC/tests/make_checkpoint.py" "$d" mixtral128 "$1" single || bad "make_checkpoint mixtral128 $1"
    "$PROBE" "$d" "$2" >"$T/probe" 2>"$T/probe.err"
    grep -q "e4m3 tensors as stored: $7, re-quantised from f32: $8 " "$T/probe.err" ||
      bad "the load of $1 into $2 does not say $7 stored, $8 re-quantised: $(cat "$T/probe.err")"
    want=$(printf 'proj_w %%s: %s\nexp_up %%s: %s\nexp_down %%s: %s\nqkv_w %%s: %s\n' "$3" "$4" "$5" "$6")
    want=$(printf "$want" 0 0 0 0; echo; printf "$want" 1 1 1 1)
    if [[ "$(cat "$T/probe")" == "$want" ]]; then ok "e4m3 $1 checkpoint in a $2 case: $(tr '\n' ';' <"$T/probe")"
    else bad "e4m3 $1 checkpoint in a $2 case: got $(tr '\n' ';' <"$T/probe") want $(echo "$want" | tr '\n' ';')"; fi
    # ... and the fp8 case computes the function of the stored values (numpy) to fp8 activation precision
    want=$("$PY" -c "import json; print(json.dumps(json.load(open('$d/expect.json'))['prefill']))")
    got=$(run_fp "$d" prefill "$d/prompt.npy" "$2")
    if compare "$got" "$want" 0.02 >"$T/cmp" 2>&1; then ok "mixtral128 $1 -> $2: $(cat "$T/cmp")"
    else bad "mixtral128 $1 -> $2: $(cat "$T/cmp") $got"; fi
  done
fi

# ---- the generator's weights written as a checkpoint (hetbench weights) and loaded back: the
# same decode, bit for bit (fingerprint and tokens), as the generated run ----
for m in tiny tiny-mla; do
  rm -rf "$T/ex-$m"
  if ! "$HB" weights --model "$m" --out "$T/ex-$m" >"$T/ex.log" 2>&1; then bad "weights --model $m: $(cat "$T/ex.log")"; continue; fi
  for src in gen ck; do
    if [[ $src == gen ]]; then a=(--model "$m"); else a=(--weights "$T/ex-$m"); fi
    "$HB" run --workload decode "${a[@]}" --batch 2 --prompt 8 --gen 4 --min-iters 3 --max-iters 3 --min-seconds 0 --warmup 0 \
      --no-ceilings --idle-seconds 0 --power-hz 0 --out "$T/id-$src.h5" --force --no-progress >"$T/id.log" 2>&1 || cat "$T/id.log"
  done
  if "$PY" - "$T/id-gen.h5" "$T/id-ck.h5" >"$T/cmp" 2>&1 <<'PY'
import sys, h5py
a, b = (h5py.File(f)["/cases/0000/rank0"] for f in sys.argv[1:3])
fa, fb = list(a.attrs["fingerprint"]), list(b.attrs["fingerprint"])
print("fingerprints %s / %s, tokens %s / %s" % (fa, fb, a["generated"][()].tolist(), b["generated"][()].tolist()))
sys.exit(0 if fa == fb and (a["generated"][()] == b["generated"][()]).all() else 1)
PY
  then ok "generated $m == its exported checkpoint: $(cat "$T/cmp")"; else bad "generated $m vs exported: $(cat "$T/cmp")"; fi
done
# a truncated export (weights --layers 1) is the preset with layers: 1 - named as the preset too
rm -rf "$T/ex-tiny1"
if "$HB" weights --model tiny --layers 1 --out "$T/ex-tiny1" >"$T/ex.log" 2>&1; then
  for src in gen ck; do
    if [[ $src == gen ]]; then a=(--model tiny --layers 1); else a=(--model tiny --layers 1 --weights "$T/ex-tiny1"); fi
    "$HB" run --workload decode "${a[@]}" --batch 2 --prompt 8 --gen 4 --min-iters 3 --max-iters 3 --min-seconds 0 --warmup 0 \
      --no-ceilings --idle-seconds 0 --power-hz 0 --out "$T/id1-$src.h5" --force --no-progress >"$T/id.log" 2>&1 || cat "$T/id.log"
  done
  if "$PY" - "$T/id1-gen.h5" "$T/id1-ck.h5" >"$T/cmp" 2>&1 <<'PY'
import sys, h5py
a, b = (h5py.File(f)["/cases/0000/rank0"] for f in sys.argv[1:3])
fa, fb = list(a.attrs["fingerprint"]), list(b.attrs["fingerprint"])
la, lb = (str(h5py.File(f)["/cases/0000"].attrs["label"]) for f in sys.argv[1:3])
print("fingerprints %s / %s, labels %s / %s" % (fa, fb, la, lb))
# the labels tell the generated case from the loaded one
sys.exit(0 if fa == fb and (a["generated"][()] == b["generated"][()]).all() and "tiny[1/2L]" in la
         and "tiny@ex-tiny1[1/2L]" in lb else 1)
PY
  then ok "tiny layers 1 == --model tiny --layers 1 --weights of its 1-layer export: $(cat "$T/cmp")"
  else bad "tiny layers 1 vs its 1-layer export: $(cat "$T/cmp")"; fi
else bad "weights --model tiny --layers 1: $(cat "$T/ex.log")"; fi
expect_weights_refusal() { # NAME PATTERN ARGS...
  local name=$1 pat=$2
  shift 2
  "$HB" weights "$@" >"$T/w.log" 2>&1
  local rc=$?
  if [[ $rc -eq 2 ]] && grep -qE -- "$pat" "$T/w.log"; then ok "weights refused: $name"; else bad "weights $name: exit $rc $(cat "$T/w.log")"; fi
}
expect_weights_refusal "no Hugging Face type" "tiny-moe.*no Hugging Face model_type" --model tiny-moe --out "$T/ex-moe"
expect_weights_refusal "existing checkpoint" "holds a checkpoint already" --model tiny --out "$T/ex-tiny"
expect_weights_refusal "no --out" "--out DIR is required" --model tiny

# ---- training from a checkpoint on an llm.c token file: the first step's loss (before the
# optimizer moves anything) is numpy's cross-entropy of the same weights on the same tokens ----
train_ok() { # DIR
  local d=$1 out="$T/train.h5"
  rm -f "$out"
  if ! "$HB" run --workload train --weights "$d" --data "$d/train.bin" --batch 2 --seq 8 --min-iters 2 --max-iters 2 \
       --min-seconds 0 --warmup 0 --no-ceilings --idle-seconds 0 --power-hz 0 --out "$out" --force --no-progress \
       >"$T/train.log" 2>&1; then
    echo "run failed: $(tail -c 400 "$T/train.log")"
    return 1
  fi
  "$PY" - "$out" "$d/expect.json" <<'PY'
import json, sys, h5py
f = h5py.File(sys.argv[1])
got = float(f["/cases/0000/rank0/loss"][0])
want = json.load(open(sys.argv[2]))["train_loss"]
ok = abs(got - want) <= 2e-6 * abs(want) and f["/cases/0000"].attrs["data"] == "file"
print("first-step loss %.9g, numpy %.9g" % (got, want))
sys.exit(0 if ok else 1)
PY
}
for d in "$T/llama-F32-single" "$T/gpt2-BF16-single" "$T/qwen2-F32-single" "$T/mixtral-F8-sharded" \
         "$T/qwen3-BF16-single" "$T/qwen3_moe-F32-single"; do
  if train_ok "$d" >"$T/cmp" 2>&1; then ok "train --weights $(basename "$d"): $(cat "$T/cmp")"
  else bad "train --weights $(basename "$d"): $(cat "$T/cmp")"; fi
done

# ---- bad input: exit 2 before anything runs, naming the file and the tensor or field ----
expect_refusal() { # NAME PATTERN ARGS...
  local name=$1 pat=$2 shape=(--batch 2 --prompt 8)
  shift 2
  [[ " $* " == *" --workload train "* ]] && shape=(--batch 2)
  [[ " $* " == *" --workload serve "* ]] && shape=()
  rm -f "$T/bad.h5"
  "$HB" run "${shape[@]}" --min-seconds 0 --min-iters 1 --warmup 0 --no-ceilings --idle-seconds 0 --power-hz 0 --out "$T/bad.h5" --no-progress "$@" \
    >"$T/bad.log" 2>&1
  local rc=$?
  if [[ $rc -eq 2 ]] && grep -qE -- "$pat" "$T/bad.log" && [[ ! -e $T/bad.h5 ]]; then ok "refused: $name: $(head -c 300 "$T/bad.log")"
  else bad "$name: exit $rc, output: $(head -c 600 "$T/bad.log")"; fi
}
base="$T/llama-F32-single"
mk() { rm -rf "$T/$1"; cp -r "$base" "$T/$1"; echo "$T/$1"; }

d=$(mk trunc); truncate -s -100 "$d/model.safetensors"
expect_refusal "truncated data" "model.safetensors: tensor '.*': data_offsets out of" --workload prefill --weights "$d"
d=$(mk huge); "$PY" "$SRC/tests/make_checkpoint.py" --break "$d/model.safetensors" huge-header
expect_refusal "header longer than the file" "model.safetensors: header length [0-9]+ exceeds the file" --workload prefill --weights "$d"
d=$(mk overlap); "$PY" "$SRC/tests/make_checkpoint.py" --break "$d/model.safetensors" overlap
expect_refusal "overlapping offsets" "model.safetensors: tensors '.*' and '.*' overlap" --workload prefill --weights "$d"
d=$(mk dtype); "$PY" "$SRC/tests/make_checkpoint.py" --break "$d/model.safetensors" unknown-dtype
expect_refusal "unknown dtype" "model.safetensors: tensor '.*': unknown dtype 'Q4_K'" --workload prefill --weights "$d"
d=$(mk missing); "$PY" "$SRC/tests/make_checkpoint.py" --break "$d/model.safetensors" drop-tensor
expect_refusal "missing tensor" "tensor 'model.layers.1.[a-z_.]+' is missing" --workload decode --weights "$d"
# ... unless only the first layer is loaded
if "$HB" run --workload prefill --weights "$d" --layers 1 --batch 2 --prompt 8 --min-seconds 0 --min-iters 1 \
     --warmup 0 --no-ceilings --idle-seconds 0 --power-hz 0 --out "$T/l1.h5" --no-progress >"$T/l1.log" 2>&1; then ok "layers 1 loads without layer 1's tensors"
else bad "layers 1: $(head -c 400 "$T/l1.log")"; fi
d=$(mk shape); sed -i 's/"intermediate_size": 96/"intermediate_size": 80/' "$d/config.json"
expect_refusal "wrong shape" "model.safetensors: tensor 'model.layers.0.mlp.gate_proj.weight' has shape \[96, 64\], the model needs \[80, 64\]" \
  --workload prefill --weights "$d"
d=$(mk mtype); sed -i 's/"model_type": "llama"/"model_type": "mamba"/' "$d/config.json"
expect_refusal "unknown model_type" "config.json: model_type 'mamba' is not supported" --workload prefill --weights "$d"
d=$(mk scaling); sed -i 's/"rope_scaling": null/"rope_scaling": {"rope_type": "longrope", "factor": 40.0}/' "$d/config.json"
expect_refusal "rope_scaling longrope" "config.json: field 'rope_scaling' has rope_type 'longrope'" --workload prefill --weights "$d"
d=$(mk scaling2); sed -i 's/"rope_scaling": null/"rope_scaling": {"rope_type": "llama3", "factor": 8.0}/' "$d/config.json"
expect_refusal "rope_scaling llama3 without its fields" "config.json: field .original_max_position_embeddings. is missing" --workload prefill --weights "$d"
ds="$T/deepseek_v2-F32-single"; d=$(mktemp -d -p "$T"); cp "$ds"/* "$d"/
sed -i 's/"topk_method": "greedy"/"topk_method": "group_limited_greedy"/' "$d/config.json"
expect_refusal "DeepSeek-V2's group_limited_greedy" "config.json: field 'topk_method' is 'group_limited_greedy'" --workload prefill --weights "$d"
expect_refusal "dense twin of a checkpoint" "a dense twin has no checkpoint" --workload prefill --weights "$ds" --dense-twin total
d=$(mktemp -d -p "$T"); cp "$ds"/* "$d"/; sed -i 's/"moe_layer_freq": 1/"moe_layer_freq": 2/' "$d/config.json"
expect_refusal "moe_layer_freq" "config.json: field 'moe_layer_freq' is 2" --workload prefill --weights "$d"
d="$T/llama-BF16-sharded"; d2=$(mktemp -d -p "$T"); cp "$d"/* "$d2"/; rm "$d2/model-00002-of-00002.safetensors"
expect_refusal "absent shard" "model.safetensors.index.json: shard 'model-00002-of-00002.safetensors' \(of tensor '.*'\) is absent" \
  --workload prefill --weights "$d2"
# a shard name with a newline (a JSON "\n": fuzz_ckptjson's finding) is shown on one line
d3=$(mktemp -d -p "$T"); cp "$d"/* "$d3"/
sed -i 's/"model-00002-of-00002.safetensors"/"model-2\\nof-2.safetensors"/' "$d3/model.safetensors.index.json"
expect_refusal "a shard name with a newline" "^hetbench run: --weights: .*index.json: shard 'model-2\?of-2.safetensors' \(of tensor '.*'\) is absent$" \
  --workload prefill --weights "$d3"
[[ $(wc -l <"$T/bad.log") -eq 1 ]] && ok "one line for a shard name with a newline" || bad "shard name with a newline: $(cat "$T/bad.log")"
expect_refusal "model other than the checkpoint's" "model 'tiny' is not the architecture of .*config.json: ffn_dim 160 vs 96" \
  --workload prefill --weights "$base" --model tiny
expect_refusal "all of a preset's layers from a 1-layer checkpoint" "ex-tiny1/config.json holds only the first 1 layers of model 'tiny' \\(2\\): add layers: 1 or fewer" \
  --workload prefill --weights "$T/ex-tiny1" --model tiny
expect_refusal "layers beyond a truncated checkpoint's" "^hetbench run: --layers: .*holds only the first 1 layers of model 'tiny' \\(2\\): accepted: layers 1 or fewer" \
  --workload prefill --weights "$T/ex-tiny1" --model tiny --layers 2
expect_refusal "no such checkpoint" "nowhere: no such file or folder" --workload prefill --weights "$T/nowhere"
printf '\001\000\002\000' >"$T/short.u16"
expect_refusal "too few prompt tokens" "short.u16: holds 2 token ids, the case needs 16" --workload prefill --weights "$base" \
  --prompt-tokens "$T/short.u16"
"$PY" -c "import numpy as np; np.save('$T/big.npy', np.full(16, 500, dtype='<u4'))"
expect_refusal "token id >= vocab" "big.npy: token 0 is 500 \(accepted: 0 to vocab - 1 = 127\)" --workload prefill --weights "$base" \
  --prompt-tokens "$T/big.npy"
expect_refusal "prompt tokens beyond the generated model's vocabulary" "big.npy: token 0 is 500 \(accepted: 0 to vocab - 1 = 255\)" \
  --workload decode --model tiny --prompt-tokens "$T/big.npy"
expect_refusal "fp8-block that does not divide the model" "quant_block" --workload prefill --weights "$base" --dtype fp8-block
# llm.c token files
"$PY" - "$T" <<'PY'
import numpy as np, sys
t = sys.argv[1]
def shard(name, magic=20240520, version=1, count=None, toks=np.arange(40), dtype="<u2"):
    h = np.zeros(256, dtype="<i4")
    h[:3] = [magic, version, len(toks) if count is None else count]
    open(f"{t}/{name}", "wb").write(h.tobytes() + np.asarray(toks).astype(dtype).tobytes())
shard("magic.bin", magic=1234)
shard("version.bin", version=7)
shard("count.bin", count=41)
shard("vocab.bin", toks=np.full(40, 300))
shard("few.bin", toks=np.arange(10))
PY
expect_refusal "token file: magic" "magic.bin: magic 1234 is not llm.c's token shard" --workload train --weights "$base" --data "$T/magic.bin" --seq 8
expect_refusal "token file: version" "version.bin: version 7" --workload train --weights "$base" --data "$T/version.bin" --seq 8
expect_refusal "token file: count vs size" "count.bin: the header says 41 tokens" --workload train --weights "$base" --data "$T/count.bin" --seq 8
expect_refusal "token file: id >= vocab" "vocab.bin: token 0 is 300 \(accepted: 0 to vocab - 1 = 127\)" --workload train --weights "$base" --data "$T/vocab.bin" --seq 8
expect_refusal "token file: too few tokens" "few.bin: holds 10 tokens, one step needs 17" --workload train --weights "$base" --data "$T/few.bin" --seq 8
expect_refusal "token file: absent" "nothing.bin: No such file" --workload train --model tiny --data "$T/nothing.bin" --seq 8
expect_refusal "train from an MLA checkpoint" "has MLA attention: training it is not implemented yet" --workload train --weights "$T/deepseek_v2-F32-single" --seq 8

exit $fail
