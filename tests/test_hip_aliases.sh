#!/usr/bin/env bash
# test_hip_aliases.sh - scripts/ci/check-hip-aliases.sh passes on backends/gpu/, and catches a
# CUDA name without a HIP alias in a copy of it (but not one inside a CUDA-only region, nor
# one in a comment or a string).
set -euo pipefail
src=$1/backends/gpu
check=$1/scripts/ci/check-hip-aliases.sh
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

bash "$check" "$src" || fail "the tree itself has a CUDA name without a HIP alias"

cp -r "$src" "$tmp/gpu"
printf '\nstatic void probe_(void) { cudaDeviceSynchronize(); }\n' >>"$tmp/gpu/gpu_ops.cu"
if bash "$check" "$tmp/gpu" 2>"$tmp/err"; then fail "a missing alias was not caught"; fi
grep -q cudaDeviceSynchronize "$tmp/err" || fail "the message does not name the missing alias: $(cat "$tmp/err")"

rm -rf "$tmp/gpu" && cp -r "$src" "$tmp/gpu"
cat >>"$tmp/gpu/gpu_ops.cu" <<'X'
#if defined(HB_GPU_CUDA)
static void probe_(void) { cudaDeviceSynchronize(); }
#else
static void probe_(void) {}
#endif
/* cudaDeviceReset in a comment */ static const char *probe_s_ = "cudaDeviceReset";
X
bash "$check" "$tmp/gpu" >/dev/null || fail "a CUDA-only region, a comment or a string was flagged"

rm -rf "$tmp/gpu" && cp -r "$src" "$tmp/gpu"
cat >>"$tmp/gpu/gpu_ops.cu" <<'X'
#if defined(HB_GPU_CUDA)
static void probe_(void) {}
#else
static void probe_(void) { cudaDeviceReset(); }
#endif
X
if bash "$check" "$tmp/gpu" 2>/dev/null; then fail "a name in the #else of a CUDA-only region was not caught"; fi
echo "test_hip_aliases: ok"
