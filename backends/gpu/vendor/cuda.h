/* vendor/cuda.h - the CUDA side of the one kernel source: the vendor headers and the few
 * names that differ from HIP. The kernels are written with CUDA names; vendor/hip.h maps each
 * one used to HIP (scripts/ci/check-hip-aliases.sh checks that none is missing). */
#ifndef HB_GPU_VENDOR_CUDA_H
#define HB_GPU_VENDOR_CUDA_H

#include <cuda_runtime.h> // defines: cudaMalloc, cudaStream_t, cudaEvent_t, the runtime API
#include <cublasLt.h>     // defines: cublasLtMatmul, its descriptors and heuristics

#define HB_GPU_NAME "cuda"
#define HB_GPU_VENDOR "NVIDIA"
#define HB_GPU_RUNTIME_NAME "CUDA"
#define HB_GPU_API "cuda"              /* prefix of the runtime API, for messages */
#define HB_GPU_NS hb_cuda_impl         /* namespace of everything but the entry points */
#define HB_GPU_SYM(x) hb_cuda_##x      /* hb_cuda_open, hb_cuda_count, hb_cuda_module */
#define HB_GPU_MODULE_SYM "hb_cuda_module"

/* cuBLASLt (the same code serves hipBLASLt through vendor/hip.h) */
#define HB_HAVE_LT 1
#define HB_GEMM_VENDOR "cublaslt"

/* Shuffles over the whole warp. CUDA wants a lane mask; every kernel here shuffles with all
 * lanes of a warp active (block sizes are multiples of the warp size). */
#define hb_shfl_xor(v, o) __shfl_xor_sync(0xffffffffu, (v), (o))

#endif
