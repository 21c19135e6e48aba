#!/usr/bin/env bash
# test_gpu_emu.sh SRC BUILD_DIR HETBENCH [CXX [TEST_SERVE]] - the GPU backend's kernels, executed on the CPU
# (label unit: no GPU needed). backends/gpu/*.cu are copied with their launches rewritten
# (`k<<<g, b, s, st>>>(args)` -> `emu::launch(g, b, s, st, k)(args)`), compiled as C++ against
# tests/gpu_emu/cuda.h in place of vendor/cuda.h, into a stand-in libhetbench-cuda.so; then
# `hetbench verify --backend cuda` checks every op against the CPU reference through it, as
#   warp 32, 227 KiB shared memory, 132 SMs   (an H100's shapes: split-K decode attention,
#                                              64x64 / 32x32 tiles, the tensor-core attention:
#                                              mma.sync emulated by tests/gpu_emu/cuda.h)
#   warp 64, 64 KiB LDS                       (CDNA wavefronts, 16x16 tiles)
# fp8 (e4m3, e5m2; per-tensor, per-row and block scales) runs on the kernels every GPU has: the
# quantising fill/convert, the fp8 GEMV and built-in GEMM, fp8 KV caches in the SIMT attention.
# MoE and MLA (gpu_moe.cu): router (ties, groups, routings), permutation, grouped GEMM per
# expert dtype, combine, MLA prefill and absorbed decode, and the tiny-moe / tiny-mla models.
# What it cannot check: cuBLASLt/hipBLASLt/rocBLAS (the built-in GEMM stands in; so the fp8
# tensor-core paths, per-tensor and block-scaled, need a GPU), timing, memory-model races
# between blocks (blocks run one after another).
# Then the serve workload end to end on the warp-32 device: TEST_SERVE (tests/test_serve.c
# --device cuda) runs the same request streams of tiny on the CPU and the emulated GPU (whole
# prompts, chunked prefill with preemption: the same greedy tokens; bf16 and fp8
# caches: first-token logits within bounds), and `hetbench run --workload serve --backend cuda`
# writes a case with status ok and its generated tokens.
# Training (gpu_train.cu): verify's rows of every training op are required, and `hetbench run
# --workload train` of tiny and tiny-moe on the warp-32 device takes the CPU's steps (losses
# within rtol 1e-4, falling), and a rerun of tiny gives the same losses bit for bit.
set -euo pipefail
src=$1 out=$2/gpu_emu hb=$3 cxx=${4:-c++} test_serve=${5:-}
rm -rf "$out"
mkdir -p "$out/tree/backends/gpu/vendor" "$out/tree/harness" "$out/lib"
cp "$src"/backends/*.h "$src"/backends/*.def "$out/tree/backends/" 2>/dev/null || cp "$src"/backends/*.h "$out/tree/backends/"
cp "$src/harness/status.h" "$out/tree/harness/"
cp "$src/backends/gpu/gpu.cuh" "$out/tree/backends/gpu/"
cp "$src/tests/gpu_emu/cuda.h" "$out/tree/backends/gpu/vendor/cuda.h"
for cu in "$src"/backends/gpu/*.cu; do
  f=$(basename "$cu" .cu)
  perl -0777 -pe 's/([A-Za-z_]\w*(?:<[^<>;()]*>)?)<<<(.*?)>>>\(/emu::launch($2, $1)(/gs;
                  s/extern __shared__ (\w+) (\w+)\[\];/$1 *$2 = ($1 *)emu::dyn_smem;/g' \
    "$src/backends/gpu/$f.cu" >"$out/tree/backends/gpu/$f.cc"
  if grep -q '<<<' "$out/tree/backends/gpu/$f.cc"; then
    echo "FAIL: a kernel launch in $f.cu was not rewritten" >&2
    exit 1
  fi
done
"$cxx" -std=c++17 -O1 -fPIC -shared -ffp-contract=off -fvisibility=hidden -w \
  -DHB_GPU_CUDA -DHB_GPU_MODULE "$out"/tree/backends/gpu/*.cc -o "$out/lib/libhetbench-cuda.so"

run() { # label, environment...
  local label=$1
  shift
  echo "# ---- emulated device: $label"
  if ! env "$@" HETBENCH_BACKEND_PATH="$out/lib" "$hb" verify --backend cuda >"$out/verify.txt" 2>&1; then
    grep -vE ' ok$' "$out/verify.txt" >&2
    echo "FAIL: hetbench verify on the emulated device ($label)" >&2
    exit 1
  fi
  grep -q "Emulated GPU" "$out/verify.txt" || { echo "FAIL: the emulated module was not the one loaded" >&2; exit 1; }
  # every op is implemented by the module: an 'unsupported' row (which verify does not fail)
  # would mean a kernel file or an op definition went missing
  grep -qE '^# cuda:0: [0-9]+ passed, 0 failed, 0 unsupported$' "$out/verify.txt" ||
    { echo "FAIL: unsupported rows on the emulated device: $(grep unsupported "$out/verify.txt" | head -3)" >&2; exit 1; }
  # the MoE/MLA ops (gpu_moe.cu): each op, each expert dtype, each MLA cache dtype, both models
  local want
  for want in 'moe_route\(ties v3 groups 8/4\) f32' 'moe_route\(zipf:1.2\) f32' 'moe_permute +f32 .*skewed' \
              'moe_combine +f32' 'matmul_grouped +(f32|bf16|f16) ' 'matmul_grouped +fp8 .*w:tensor' \
              'matmul_grouped +fp8 .*w:128x128' 'matmul_grouped +bf16 .*K=20[03] rows 0,1,2,0,3,2' \
              'mla_attention +(f32|bf16|f16|fp8) ' \
              'mla_attention\(absorbed\) +(f32|bf16|f16|fp8) ' 'model prefill +(f32|bf16) +tiny-moe' \
              'model decode +(f32|bf16) +tiny-moe' 'model prefill +(f32|bf16) +tiny-mla' 'model decode +(f32|bf16) +tiny-mla' \
              'rope\(pos\) +f32 .*per row' 'rope\(pos\) +f32 .*yarn' 'kv_store\(paged k\) +(f32|bf16|f16|fp8) ' \
              'kv_store\(paged v\) +(f32|bf16|f16|fp8) '; do
    grep -qE "^  $want.* ok\$" "$out/verify.txt" || { echo "FAIL: no passing row '$want' ($label)" >&2; exit 1; }
  done
  # the training ops (gpu_train.cu): every op and output, each weight dtype of the GEMM backwards
  for want in 'embedding_backward\(dwte\) +f32 .*\+wpe' 'embedding_backward\(dwpe\) +f32' \
              'rmsnorm_backward\(din\) +f32 .*beta=1' 'rmsnorm_backward\(din\) +f32 .*3-D' 'rmsnorm_backward\(dw\) +f32' \
              'layernorm_backward\(din\) +f32' 'layernorm_backward\(dw\) +f32' 'layernorm_backward\(db\) +f32' \
              'matmul_backward\(da\) +f32 .*beta=0' 'matmul_backward\(da\) +f32 .*beta=1' 'matmul_backward\(da\) +bf16 ' \
              'matmul_backward\(da\) +f16 ' 'matmul_backward\(dw\) +(f32|bf16|f16) ' 'matmul_backward\(dbias\) +f32' \
              'rope_backward\(x\) +f32 .*llama3.1' 'attention_train\(out\) +f32 .*Hq=4 Hkv=2' 'attention_train\(out\) +f32 .*T=150' \
              'attention_backward\(dq,dk,dv\) +f32 .*Hq=4 Hkv=2' 'attention_backward\(dq,dk,dv\) +f32 .*T=150' \
              'swiglu_backward\(din\) +f32' 'gelu_backward\(din\) +f32' 'cross_entropy\(losses\) +f32 .*V=50257' \
              'cross_entropy\(dlogits\) +f32 .*in place' 'cross_entropy\(dlogits\) +f32 .*ld=1004' 'adamw\(param\) +f32' \
              'adamw\(m\) +f32' 'adamw\(v\) +f32' 'adamw\(grad\) +f32 .*zero_grad' 'adamw\(param_lp\) +bf16' 'adamw\(param_lp\) +f16' \
              'moe_route_backward\(dlogits\) +f32 .*softmax norm' 'moe_route_backward\(dlogits\) +f32 .*sigmoid' \
              'moe_permute_backward\(dx\) +f32 .*beta=0' 'moe_permute_backward\(dx\) +f32 .*beta=1' \
              'matmul_grouped_backward\(da\) +f32' 'matmul_grouped_backward\(da\) +bf16' 'matmul_grouped_backward\(da\) +f16' \
              'matmul_grouped_backward\(dw\) +(f32|bf16|f16)' 'moe_combine_backward\(dy\) +f32' 'moe_combine_backward\(dweights\) +f32'; do
    grep -qE "^  $want.* ok\$" "$out/verify.txt" || { echo "FAIL: no passing training row '$want' ($label)" >&2; exit 1; }
  done
  tail -1 "$out/verify.txt"
}
run "warp 32, 227 KiB, 132 SMs" EMU_WARP=32 EMU_SMEM=232448 EMU_SM=132
run "warp 64, 64 KiB LDS" EMU_WARP=64 EMU_SMEM=65536 EMU_SM=4

emu32=(EMU_WARP=32 EMU_SMEM=232448 EMU_SM=132 HETBENCH_BACKEND_PATH="$out/lib")
if [ -n "$test_serve" ]; then
  echo "# ---- serve on the emulated device (warp 32) vs the CPU"
  if ! env "${emu32[@]}" "$test_serve" "$src" --device cuda >"$out/serve.txt" 2>&1; then
    cat "$out/serve.txt" >&2
    echo "FAIL: serve streams on the emulated device differ from the CPU's" >&2
    exit 1
  fi
  grep '^# cuda ' "$out/serve.txt"
fi
rm -f "$out/serve.h5"
# the run places its rank on a GPU of a synthetic node (the first H100, which the emulated
# device then claims to be)
if ! env "${emu32[@]}" EMU_PCI=0000:18:00.0 HETBENCH_TOPOLOGY="$src/tests/topologies/h100x8-2socket.xml" \
     "$hb" run --workload serve --model tiny --isl 12 --osl 5 --concurrency 3 --requests 4 \
     --max-batch-tokens 8 --backend cuda --min-iters 1 --min-seconds 0 --warmup 0 --idle-seconds 0 \
     --out "$out/serve.h5" >"$out/serve-run.txt" 2>&1; then
  cat "$out/serve-run.txt" >&2
  echo "FAIL: hetbench run --workload serve --backend cuda on the emulated device" >&2
  exit 1
fi
grep -Eq 'serve tiny .* ok *$' "$out/serve-run.txt" || { cat "$out/serve-run.txt" >&2; echo "FAIL: the serve case is not ok" >&2; exit 1; }
if command -v h5dump >/dev/null; then
  h5dump -H -d /cases/0000/rank0/generated "$out/serve.h5" | grep -q 'DATASPACE  SIMPLE { ( 4, 5 )' ||
    { echo "FAIL: the serve case has no (4, 5) generated tokens" >&2; exit 1; }
fi
echo "# serve tiny on the emulated cuda device: ok"
# training end to end (gpu_train.cu): `hetbench run --workload train` of tiny and tiny-moe on the
# emulated warp-32 device and on the CPU, same seed and data: every step's loss within rtol 1e-4
# of the CPU's, and the loss falls (data: repeat)
echo "# ---- train on the emulated device (warp 32) vs the CPU: tiny, tiny-moe"
command -v h5dump >/dev/null || { echo "FAIL: h5dump (hdf5-tools, scripts/setup.sh) is needed to read the losses" >&2; exit 1; }
TRAIN=(--workload train --batch 2 --seq 16 --data repeat --min-seconds 0 --min-iters 3 --max-iters 3 --warmup 0
       --no-ceilings --no-progress --power-hz 0 --idle-seconds 0 --force)
losses() { h5dump -d /cases/0000/rank0/loss -y -w 0 -m "${2:-%.9g}" "$1" | awk '/DATA \{/ { f = 1; next } f && /\}/ { exit } f' | tr -s ', \n' ' '; }
for m in tiny tiny-moe; do
  env "${emu32[@]}" EMU_PCI=0000:18:00.0 HETBENCH_TOPOLOGY="$src/tests/topologies/h100x8-2socket.xml" \
    "$hb" run "${TRAIN[@]}" --model "$m" --backend cuda --out "$out/train-emu-$m.h5" >"$out/train-emu-$m.txt" 2>&1 ||
    { cat "$out/train-emu-$m.txt" >&2; echo "FAIL: hetbench run --workload train --model $m --backend cuda on the emulated device" >&2; exit 1; }
  grep -Eq "train $m f32 .* ok *\$" "$out/train-emu-$m.txt" || { cat "$out/train-emu-$m.txt" >&2; echo "FAIL: the train $m case is not ok" >&2; exit 1; }
  "$hb" run "${TRAIN[@]}" --model "$m" --backend cpu --out "$out/train-cpu-$m.h5" >"$out/train-cpu-$m.txt" 2>&1 ||
    { cat "$out/train-cpu-$m.txt" >&2; echo "FAIL: hetbench run --workload train --model $m --backend cpu" >&2; exit 1; }
  a=$(losses "$out/train-emu-$m.h5") b=$(losses "$out/train-cpu-$m.h5")
  awk -v a="$a" -v b="$b" -v m="$m" 'BEGIN {
      n = split(a, x, " "); k = split(b, y, " ")
      if (n < 3 || n != k) { print "FAIL: train " m ": " n " emulated losses [" a "], " k " CPU [" b "]"; exit 1 }
      for (i = 1; i <= n; i++) {
        d = x[i] - y[i]; d = d < 0 ? -d : d; r = y[i] < 0 ? -y[i] : y[i]
        if (!(d <= 1e-4 * r)) { print "FAIL: train " m " step " i ": loss " x[i] " emulated, " y[i] " CPU (rtol 1e-4)"; exit 1 }
      }
      if (!(x[n] < x[1])) { print "FAIL: train " m ": the loss did not fall [" a "]"; exit 1 }
      print "# train " m ": losses [" a "] on the emulated device, the CPU'"'"'s within rtol 1e-4"
    }' >&2 || exit 1
done
# deterministic kernels (no atomics): a rerun of tiny on the emulated device gives the same
# losses bit for bit. (The emulator runs blocks one after another, so this guards the host-side
# and the kernels' own order, not races between blocks; those only a GPU can show.)
env "${emu32[@]}" EMU_PCI=0000:18:00.0 HETBENCH_TOPOLOGY="$src/tests/topologies/h100x8-2socket.xml" \
  "$hb" run "${TRAIN[@]}" --model tiny --backend cuda --out "$out/train-emu-tiny-2.h5" >"$out/train-emu-tiny-2.txt" 2>&1 ||
  { cat "$out/train-emu-tiny-2.txt" >&2; echo "FAIL: the second train run on the emulated device" >&2; exit 1; }
a=$(losses "$out/train-emu-tiny.h5" %.17g) b=$(losses "$out/train-emu-tiny-2.h5" %.17g)
[[ -n $a && $a == "$b" ]] || { echo "FAIL: train tiny on the emulated device is not deterministic: [$a] then [$b]" >&2; exit 1; }
echo "# train tiny rerun on the emulated device: the same losses bit for bit"
# whole MoE/MLA models through `hetbench run` on the emulated device (placed by a synthetic
# hwloc topology whose first H100 has the bus id the emulator reports) and on the CPU: the
# report's fingerprint check (sum |x| and ||x||_2 of the first step's logits within the dtype's
# tolerance of the CPU) and the tokens each expert received, identical
echo "# ---- hetbench run on the emulated device: tiny-moe / tiny-mla against the CPU"
command -v h5dump >/dev/null || { echo "FAIL: h5dump (hdf5-tools, scripts/setup.sh) is needed to compare expert_tokens" >&2; exit 1; }
cat >"$out/fp.yaml" <<'YAML'
defaults: {warmup: 0, min_iters: 1, max_iters: 1, min_seconds: 0, seed: 7}
cases:
  - {workload: prefill, model: [tiny-moe, tiny-mla], dtype: [f32, bf16], batch: 2, prompt: 9}
  - {workload: decode, model: [tiny-moe, tiny-mla], dtype: [f32, bf16], batch: 3, prompt: 7, gen: 2}
YAML
env EMU_WARP=32 EMU_SMEM=232448 EMU_SM=132 EMU_PCI=0000:18:00.0 HETBENCH_BACKEND_PATH="$out/lib" \
  HETBENCH_TOPOLOGY="$src/tests/topologies/h100x8-2socket.xml" \
  "$hb" run --plan "$out/fp.yaml" --backend cuda --no-ceilings --out "$out/emu.h5" --force --no-progress \
  >"$out/run-emu.txt" 2>&1 || { cat "$out/run-emu.txt" >&2; echo "FAIL: hetbench run on the emulated device" >&2; exit 1; }
grep -q "Emulated GPU" "$out/run-emu.txt" || { echo "FAIL: the run did not use the emulated device" >&2; exit 1; }
"$hb" run --plan "$out/fp.yaml" --backend cpu --no-ceilings --out "$out/cpu.h5" --force --no-progress \
  >"$out/run-cpu.txt" 2>&1 || { cat "$out/run-cpu.txt" >&2; echo "FAIL: hetbench run on the CPU" >&2; exit 1; }
"$hb" report "$out/cpu.h5" "$out/emu.h5" --format csv >"$out/report.csv" || { echo "FAIL: hetbench report" >&2; exit 1; }
# columns by name (the header row); the labels hold no commas
awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
         { n++; if ($col["fingerprint"] != "ok") { print "FAIL: fingerprint " $col["fingerprint"] ": " $0; bad = 1 } }
         END { if (n != 16) { print "FAIL: " n " report rows, expected 16 (8 cases x 2 devices)"; bad = 1 } exit bad }' \
  "$out/report.csv" >&2 || exit 1
for c in 0000 0001 0002 0003 0004 0005 0006 0007; do
  a=$(h5dump -d "/cases/$c/rank0/expert_tokens" -y -w 0 "$out/cpu.h5" | sed -n '/DATA {/,/}/p' | tr -s ' \n' ' ')
  b=$(h5dump -d "/cases/$c/rank0/expert_tokens" -y -w 0 "$out/emu.h5" | sed -n '/DATA {/,/}/p' | tr -s ' \n' ' ')
  [[ -n $a && $a == "$b" ]] || { echo "FAIL: case $c expert_tokens differ: cpu [$a] emulated [$b]" >&2; exit 1; }
done
echo "# 8 cases: fingerprints within tolerance, expert_tokens identical"
echo "test_gpu_emu: ok"
