/* vendor/hip.h - the HIP side of the one kernel source: maps each CUDA name used in
 * backends/gpu/ to HIP, and nothing else (ggml's vendors/hip.h pattern). A name used outside a
 * CUDA-only `#if defined(HB_GPU_CUDA)` region must have its #define here;
 * scripts/ci/check-hip-aliases.sh (ctest `check_hip_aliases`) fails when one is missing.
 *
 * Vendor GEMM, chosen at configure time (backends/hip/CMakeLists.txt):
 *   HB_HAVE_HIPBLASLT  hipBLASLt (ROCm >= 6.1: hipblasComputeType_t, hipDataType), through the
 *                      same code as cuBLASLt with the aliases below
 *   HB_HAVE_ROCBLAS    rocBLAS gemm_ex (own code path in gpu_gemm.cu)
 *   neither            the built-in tiled GEMM (Debian's ROCm 5.2 ships no BLAS) */
#ifndef HB_GPU_VENDOR_HIP_H
#define HB_GPU_VENDOR_HIP_H

#include <hip/hip_runtime.h> // defines: hipMalloc, hipStream_t, hipEvent_t, the runtime API

#define HB_GPU_NAME "hip"
#define HB_GPU_VENDOR "AMD"
#define HB_GPU_RUNTIME_NAME "HIP"
#define HB_GPU_API "hip"               /* prefix of the runtime API, for messages */
#define HB_GPU_NS hb_hip_impl
#define HB_GPU_SYM(x) hb_hip_##x       /* hb_hip_open, hb_hip_count, hb_hip_module */
#define HB_GPU_MODULE_SYM "hb_hip_module"

/* HIP < 6.2 has no *_sync shuffles; wavefronts execute in lock-step, so no mask is needed. */
#define hb_shfl_xor(v, o) __shfl_xor((v), (o))

/* ---- runtime ---- */
#define cudaError_t hipError_t
#define cudaSuccess hipSuccess
#define cudaErrorMemoryAllocation hipErrorOutOfMemory
#define cudaGetErrorString hipGetErrorString
#define cudaGetErrorName hipGetErrorName
#define cudaGetLastError hipGetLastError
#define cudaSetDevice hipSetDevice
#define cudaGetDeviceCount hipGetDeviceCount
#define cudaGetDeviceProperties hipGetDeviceProperties
#define cudaDeviceProp hipDeviceProp_t
#define cudaDeviceGetPCIBusId hipDeviceGetPCIBusId
#define cudaDriverGetVersion hipDriverGetVersion
#define cudaRuntimeGetVersion hipRuntimeGetVersion
#define cudaDeviceGetAttribute hipDeviceGetAttribute
#define cudaDevAttrClockRate hipDeviceAttributeClockRate
#define cudaDevAttrMemoryClockRate hipDeviceAttributeMemoryClockRate
#define cudaDevAttrGlobalMemoryBusWidth hipDeviceAttributeMemoryBusWidth
#define cudaMalloc hipMalloc
#define cudaFree hipFree
#define cudaMemGetInfo hipMemGetInfo
#define cudaMemcpyAsync hipMemcpyAsync
#define cudaMemcpyHostToDevice hipMemcpyHostToDevice
#define cudaMemcpyDeviceToHost hipMemcpyDeviceToHost
#define cudaMemcpyDeviceToDevice hipMemcpyDeviceToDevice
#define cudaMemsetAsync hipMemsetAsync
#define cudaStream_t hipStream_t
#define cudaStreamCreateWithFlags hipStreamCreateWithFlags
#define cudaStreamNonBlocking hipStreamNonBlocking
#define cudaStreamDestroy hipStreamDestroy
#define cudaStreamSynchronize hipStreamSynchronize
#define cudaEvent_t hipEvent_t
#define cudaEventCreate hipEventCreate
#define cudaEventDestroy hipEventDestroy
#define cudaEventRecord hipEventRecord
#define cudaEventSynchronize hipEventSynchronize
#define cudaEventElapsedTime hipEventElapsedTime

/* ---- vendor GEMM ---- */
#if defined(HB_HAVE_HIPBLASLT)
#include <hipblaslt/hipblaslt.h> // defines: hipblasLtMatmul and its descriptors
#define HB_HAVE_LT 1
#define HB_GEMM_VENDOR "hipblaslt"
#define cudaDataType_t hipDataType
#define CUDA_R_32F HIP_R_32F
#define CUDA_R_16BF HIP_R_16BF
#define CUDA_R_16F HIP_R_16F
#define cublasStatus_t hipblasStatus_t
#define CUBLAS_STATUS_SUCCESS HIPBLAS_STATUS_SUCCESS
#define CUBLAS_STATUS_NOT_SUPPORTED HIPBLAS_STATUS_NOT_SUPPORTED
#define CUBLAS_STATUS_INVALID_VALUE HIPBLAS_STATUS_INVALID_VALUE
#define cublasOperation_t hipblasOperation_t
#define CUBLAS_OP_N HIPBLAS_OP_N
#define CUBLAS_OP_T HIPBLAS_OP_T
#define CUBLAS_COMPUTE_32F HIPBLAS_COMPUTE_32F
#define cublasLtHandle_t hipblasLtHandle_t
#define cublasLtCreate hipblasLtCreate
#define cublasLtDestroy hipblasLtDestroy
#define cublasLtEpilogue_t hipblasLtEpilogue_t
#define CUBLASLT_EPILOGUE_BIAS HIPBLASLT_EPILOGUE_BIAS
#define cublasLtMatmulDesc_t hipblasLtMatmulDesc_t
#define cublasLtMatmulDescCreate hipblasLtMatmulDescCreate
#define cublasLtMatmulDescSetAttribute hipblasLtMatmulDescSetAttribute
#define cublasLtMatmulDescDestroy hipblasLtMatmulDescDestroy
#define CUBLASLT_MATMUL_DESC_TRANSA HIPBLASLT_MATMUL_DESC_TRANSA
#define CUBLASLT_MATMUL_DESC_TRANSB HIPBLASLT_MATMUL_DESC_TRANSB
#define CUBLASLT_MATMUL_DESC_EPILOGUE HIPBLASLT_MATMUL_DESC_EPILOGUE
#define CUBLASLT_MATMUL_DESC_BIAS_POINTER HIPBLASLT_MATMUL_DESC_BIAS_POINTER
#define cublasLtMatrixLayout_t hipblasLtMatrixLayout_t
#define cublasLtMatrixLayoutCreate hipblasLtMatrixLayoutCreate
#define cublasLtMatrixLayoutSetAttribute hipblasLtMatrixLayoutSetAttribute
#define cublasLtMatrixLayoutDestroy hipblasLtMatrixLayoutDestroy
#define CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT HIPBLASLT_MATRIX_LAYOUT_BATCH_COUNT
#define CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET HIPBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET
#define cublasLtMatmulPreference_t hipblasLtMatmulPreference_t
#define cublasLtMatmulPreferenceCreate hipblasLtMatmulPreferenceCreate
#define cublasLtMatmulPreferenceSetAttribute hipblasLtMatmulPreferenceSetAttribute
#define cublasLtMatmulPreferenceDestroy hipblasLtMatmulPreferenceDestroy
#define CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES HIPBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES
#define cublasLtMatmulAlgo_t hipblasLtMatmulAlgo_t
#define cublasLtMatmulHeuristicResult_t hipblasLtMatmulHeuristicResult_t
#define cublasLtMatmulAlgoGetHeuristic hipblasLtMatmulAlgoGetHeuristic
#define cublasLtMatmul hipblasLtMatmul
#elif defined(HB_HAVE_ROCBLAS)
#include <rocblas/rocblas.h> // defines: rocblas_gemm_ex, rocblas_gemm_strided_batched_ex
#define HB_HAVE_LT 0
#define HB_GEMM_VENDOR "rocblas"
#else
#define HB_HAVE_LT 0
#define HB_GEMM_VENDOR "builtin"
#endif

#endif
