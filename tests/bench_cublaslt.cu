// bench_cublaslt.cu - a direct cuBLASLt GEMM, the yardstick for hetbench's `gemm` workload on
// NVIDIA (scripts/bench-gpu.sh prints the ratio). Standalone: CUDA runtime + cuBLASLt only.
//
//   bench_cublaslt [M N K [bf16|f16|f32|fp8]] [--json]        default 8192 8192 8192 bf16
//
// Same problem as hetbench's matmul: out (M, N) f32 = a (M, K) @ w (N, K)^T, i.e. column-major
// D (N, M) = W^T (TN) with f32 output and f32 accumulation, one cuBLASLt heuristic algorithm,
// a 32 MiB workspace. Reported (median of timed iterations, >= 50 and >= 2 s):
//   gemm        the GEMM alone, inputs already in the dtype (what cuBLASLt can do)
//   cast+gemm   f32 activations cast to the dtype first, then the GEMM: what hetbench's matmul
//               does for bf16/f16/fp8 weights (activations are f32 in hetbench)
// fp8: e4m3 both operands, per-tensor scales (1 here), sm_89+.
#include <cublasLt.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_fp8.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#define CK(x)                                                                                   \
    do {                                                                                        \
        cudaError_t e_ = (x);                                                                   \
        if (e_ != cudaSuccess) {                                                                \
            fprintf(stderr, "bench_cublaslt: %s: %s\n", #x, cudaGetErrorString(e_));            \
            exit(1);                                                                            \
        }                                                                                       \
    } while (0)
#define LK(x)                                                                                   \
    do {                                                                                        \
        cublasStatus_t s_ = (x);                                                                \
        if (s_ != CUBLAS_STATUS_SUCCESS) {                                                      \
            fprintf(stderr, "bench_cublaslt: %s: status %d\n", #x, (int)s_);                   \
            exit(1);                                                                            \
        }                                                                                       \
    } while (0)

enum dt { BF16, F16, F32, FP8 };

__global__ void fill(float *x, size_t n, unsigned seed) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        unsigned h = (unsigned)i * 2654435761u ^ seed;
        h ^= h >> 13;
        h *= 0x5bd1e995u;
        h ^= h >> 15;
        x[i] = ((h & 0xffffff) / 16777216.0f - 0.5f) * 2.0f;
    }
}

// f32 -> storage dtype, 4 elements per thread (the shape of hetbench's activation cast)
template <int D>
__global__ void cast4(void *dst, const float4 *src, size_t n4, float scale) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n4; i += (size_t)gridDim.x * blockDim.x) {
        float4 v = src[i];
        if (D == BF16) {
            __nv_bfloat162 a = __floats2bfloat162_rn(v.x, v.y), b = __floats2bfloat162_rn(v.z, v.w);
            ((__nv_bfloat162 *)dst)[2 * i] = a;
            ((__nv_bfloat162 *)dst)[2 * i + 1] = b;
        } else if (D == F16) {
            ((__half2 *)dst)[2 * i] = __floats2half2_rn(v.x, v.y);
            ((__half2 *)dst)[2 * i + 1] = __floats2half2_rn(v.z, v.w);
        } else if (D == FP8) {
            __nv_fp8x4_e4m3 q(make_float4(v.x * scale, v.y * scale, v.z * scale, v.w * scale));
            ((__nv_fp8x4_e4m3 *)dst)[i] = q;
        } else {
            ((float4 *)dst)[i] = v;
        }
    }
}

static double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

int main(int argc, char **argv) {
    long long M = 8192, N = 8192, K = 8192;
    dt d = BF16;
    bool json = false;
    int pos = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json")) { json = true; continue; }
        if (pos < 3) { long long v = atoll(argv[i]); (pos == 0 ? M : pos == 1 ? N : K) = v; pos++; continue; }
        if (!strcmp(argv[i], "bf16")) d = BF16;
        else if (!strcmp(argv[i], "f16")) d = F16;
        else if (!strcmp(argv[i], "f32")) d = F32;
        else if (!strcmp(argv[i], "fp8")) d = FP8;
        else { fprintf(stderr, "usage: bench_cublaslt [M N K [bf16|f16|f32|fp8]] [--json]\n"); return 2; }
    }
    int n_dev = 0;
    if (cudaGetDeviceCount(&n_dev) != cudaSuccess || n_dev == 0) {
        fprintf(stderr, "bench_cublaslt: no CUDA device\n");
        return 77;
    }
    cudaDeviceProp prop;
    CK(cudaGetDeviceProperties(&prop, 0));
    if (d == FP8 && prop.major * 10 + prop.minor < 89) {
        fprintf(stderr, "bench_cublaslt: fp8 needs sm_89+ (this is sm_%d%d)\n", prop.major, prop.minor);
        return 77;
    }
    const size_t esz = d == F32 ? 4 : d == FP8 ? 1 : 2;
    const cudaDataType_t ct = d == BF16 ? CUDA_R_16BF : d == F16 ? CUDA_R_16F : d == FP8 ? CUDA_R_8F_E4M3 : CUDA_R_32F;
    float *a32, *w32, *out;
    void *a, *w, *ws;
    const size_t ws_bytes = 32u << 20;
    CK(cudaMalloc(&a32, (size_t)M * K * 4));
    CK(cudaMalloc(&w32, (size_t)N * K * 4));
    CK(cudaMalloc(&out, (size_t)M * N * 4));
    CK(cudaMalloc(&a, (size_t)M * K * esz));
    CK(cudaMalloc(&w, (size_t)N * K * esz));
    CK(cudaMalloc(&ws, ws_bytes));
    fill<<<1024, 256>>>(a32, (size_t)M * K, 1);
    fill<<<1024, 256>>>(w32, (size_t)N * K, 2);
    float *one;
    CK(cudaMalloc(&one, sizeof(float)));
    const float h_one = 1.0f;
    CK(cudaMemcpy(one, &h_one, sizeof h_one, cudaMemcpyHostToDevice));
    auto cast = [&](void *dst, const float *src, size_t n) {
        const size_t n4 = n / 4;
        switch (d) {
        case BF16: cast4<BF16><<<1024, 256>>>(dst, (const float4 *)src, n4, 1.0f); break;
        case F16: cast4<F16><<<1024, 256>>>(dst, (const float4 *)src, n4, 1.0f); break;
        case FP8: cast4<FP8><<<1024, 256>>>(dst, (const float4 *)src, n4, 1.0f); break;
        default: cast4<F32><<<1024, 256>>>(dst, (const float4 *)src, n4, 1.0f); break;
        }
    };
    cast(w, w32, (size_t)N * K);
    cast(a, a32, (size_t)M * K);
    CK(cudaDeviceSynchronize());

    cublasLtHandle_t lt;
    LK(cublasLtCreate(&lt));
    cublasLtMatmulDesc_t op;
    LK(cublasLtMatmulDescCreate(&op, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    cublasOperation_t T = CUBLAS_OP_T, Nn = CUBLAS_OP_N;
    LK(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSA, &T, sizeof T));
    LK(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSB, &Nn, sizeof Nn));
    if (d == FP8) {
        LK(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_A_SCALE_POINTER, &one, sizeof one));
        LK(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_B_SCALE_POINTER, &one, sizeof one));
    }
    cublasLtMatrixLayout_t la, lb, lc;
    LK(cublasLtMatrixLayoutCreate(&la, ct, K, N, K)); // W (N, K) row-major = (K, N) col-major, op T
    LK(cublasLtMatrixLayoutCreate(&lb, ct, K, M, K)); // a (M, K) row-major = (K, M) col-major
    LK(cublasLtMatrixLayoutCreate(&lc, CUDA_R_32F, N, M, N));
    cublasLtMatmulPreference_t pref;
    LK(cublasLtMatmulPreferenceCreate(&pref));
    uint64_t wsb = ws_bytes;
    LK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &wsb, sizeof wsb));
    cublasLtMatmulHeuristicResult_t res;
    int found = 0;
    LK(cublasLtMatmulAlgoGetHeuristic(lt, op, la, lb, lc, lc, pref, 1, &res, &found));
    if (!found) {
        fprintf(stderr, "bench_cublaslt: no cuBLASLt algorithm for this problem\n");
        return 1;
    }
    const float alpha = 1.0f, beta = 0.0f;
    cudaStream_t st;
    CK(cudaStreamCreate(&st));
    auto gemm = [&]() {
        LK(cublasLtMatmul(lt, op, &alpha, w, la, a, lb, &beta, out, lc, out, lc, &res.algo, ws, ws_bytes, st));
    };
    cudaEvent_t e0, e1;
    CK(cudaEventCreate(&e0));
    CK(cudaEventCreate(&e1));
    auto timeit = [&](bool with_cast) {
        for (int i = 0; i < 5; i++) {
            if (with_cast) cast(a, a32, (size_t)M * K);
            gemm();
        }
        CK(cudaStreamSynchronize(st));
        std::vector<double> t;
        double total = 0;
        while (t.size() < 50 || total < 2.0) {
            CK(cudaEventRecord(e0, st));
            if (with_cast) {
                const size_t n4 = (size_t)M * K / 4;
                switch (d) {
                case BF16: cast4<BF16><<<1024, 256, 0, st>>>(a, (const float4 *)a32, n4, 1.0f); break;
                case F16: cast4<F16><<<1024, 256, 0, st>>>(a, (const float4 *)a32, n4, 1.0f); break;
                case FP8: cast4<FP8><<<1024, 256, 0, st>>>(a, (const float4 *)a32, n4, 1.0f); break;
                default: break;
                }
            }
            gemm();
            CK(cudaEventRecord(e1, st));
            CK(cudaEventSynchronize(e1));
            float ms = 0;
            CK(cudaEventElapsedTime(&ms, e0, e1));
            t.push_back(ms * 1e-3);
            total += ms * 1e-3;
            if (t.size() > 100000) break;
        }
        return median(t);
    };
    const double flop = 2.0 * M * N * K;
    const double t_gemm = timeit(false), t_cast = d == F32 ? t_gemm : timeit(true);
    const char *names[] = {"bf16", "f16", "f32", "fp8"};
    if (json)
        printf("{\"device\":\"%s\",\"m\":%lld,\"n\":%lld,\"k\":%lld,\"dtype\":\"%s\",\"gemm_s\":%.9g,"
               "\"gemm_flops_per_s\":%.6g,\"cast_gemm_s\":%.9g,\"cast_gemm_flops_per_s\":%.6g}\n",
               prop.name, M, N, K, names[d], t_gemm, flop / t_gemm, t_cast, flop / t_cast);
    else
        printf("# cuBLASLt %s %lldx%lldx%lld on %s\n  gemm       %.3f ms  %.1f TFLOP/s\n"
               "  cast+gemm  %.3f ms  %.1f TFLOP/s\n",
               names[d], M, N, K, prop.name, t_gemm * 1e3, flop / t_gemm / 1e12, t_cast * 1e3,
               flop / t_cast / 1e12);
    return 0;
}
