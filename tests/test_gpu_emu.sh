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
# What it cannot check: cuBLASLt/hipBLASLt/rocBLAS (the built-in GEMM stands in; so the fp8
# tensor-core paths, per-tensor and block-scaled, need a GPU), timing, memory-model races
# between blocks (blocks run one after another).
# Then the serve workload end to end on the warp-32 device: TEST_SERVE (tests/test_serve.c
# --device cuda) runs the same request streams of tiny on the CPU and the emulated GPU (whole
# prompts, chunked prefill with preemption: the same greedy tokens; bf16 and fp8
# caches: first-token logits within bounds), and `hetbench run --workload serve --backend cuda`
# writes a case with status ok and its generated tokens.
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
echo "test_gpu_emu: ok"
