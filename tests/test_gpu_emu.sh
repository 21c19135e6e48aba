#!/usr/bin/env bash
# test_gpu_emu.sh SRC BUILD_DIR HETBENCH [CXX] - the GPU backend's kernels, executed on the CPU
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
set -euo pipefail
src=$1 out=$2/gpu_emu hb=$3 cxx=${4:-c++}
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
              'matmul_grouped +fp8 .*w:128x128' 'mla_attention +(f32|bf16|f16|fp8) ' \
              'mla_attention\(absorbed\) +(f32|bf16|f16|fp8) ' 'model prefill +(f32|bf16) +tiny-moe' \
              'model decode +(f32|bf16) +tiny-moe' 'model prefill +(f32|bf16) +tiny-mla' 'model decode +(f32|bf16) +tiny-mla'; do
    grep -qE "^  $want.* ok\$" "$out/verify.txt" || { echo "FAIL: no passing row '$want' ($label)" >&2; exit 1; }
  done
  tail -1 "$out/verify.txt"
}
run "warp 32, 227 KiB, 132 SMs" EMU_WARP=32 EMU_SMEM=232448 EMU_SM=132
run "warp 64, 64 KiB LDS" EMU_WARP=64 EMU_SMEM=65536 EMU_SM=4
echo "test_gpu_emu: ok"
