// cuda.h (emulator) - runs backends/gpu/*.cu on the CPU, for tests on machines without a GPU
// (tests/test_gpu_emu.sh). It stands in for backends/gpu/vendor/cuda.h in a copy of the sources
// whose kernel launches `k<<<grid, block, smem, stream>>>(args)` were rewritten to
// `emu::launch(grid, block, smem, stream, k)(args)`.
//
// A block's threads are coroutines on one OS thread, run until they wait:
// __syncthreads releases when every thread of the block waits, a warp shuffle when every lane
// of the warp does; a barrier that can never be released aborts with "emu: deadlock" (a
// divergent __syncthreads or shuffle is a bug on real hardware too). __shared__ arrays are
// function statics (blocks run one at a time), dynamic shared memory one 256 KiB buffer filled
// with garbage before each block. Launches are synchronous; memory is host memory.
// Environment: EMU_WARP (32; 64 = CDNA wavefronts), EMU_SMEM (opt-in shared memory per block,
// 227 KiB; 65536 = AMD LDS), EMU_SM (SM count, 2), EMU_PCI (the PCI bus id, 0000:17:00.0). No vendor BLAS (HB_HAVE_LT 0): every GEMM,
// fp8 included, runs on the GEMV and the built-in GEMM.
#pragma once
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <vector>
#include <math.h>
#include <ucontext.h>

#define HB_GPU_EMU 1 // the kernels call hb_emu_mma_16816 in place of the mma.sync instruction
#define HB_GPU_NAME "cuda"
#define HB_GPU_VENDOR "EMU"
#define HB_GPU_RUNTIME_NAME "EMU"
#define HB_GPU_API "cuda"
#define HB_GPU_NS hb_emu_impl
#define HB_GPU_SYM(x) hb_cuda_##x
#define HB_GPU_MODULE_SYM "hb_cuda_module"
#define HB_HAVE_LT 0
#define HB_GEMM_VENDOR "builtin"

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(x)
#define __shared__ static
#define __align__(n) __attribute__((aligned(n)))

struct dim3 {
    unsigned x, y, z;
    dim3(unsigned a = 1, unsigned b = 1, unsigned c = 1) : x(a), y(b), z(c) {}
};
struct emu_uint3 { unsigned x, y, z; };
struct float4 { float x, y, z, w; };
struct uint4 { unsigned x, y, z, w; };
struct uint2 { unsigned x, y; };
static inline float4 make_float4(float a, float b, float c, float d) { return float4{a, b, c, d}; }

inline int warpSize = 32; // the device builtin, a variable here (EMU_WARP sets it)
namespace emu {
inline int &warp_size = ::warpSize;
inline emu_uint3 tidx, bidx;
inline int tflat;
inline dim3 bdim, gdim;
alignas(64) inline unsigned char dyn_smem[256 * 1024];

// Threads of a block are coroutines on one OS thread (ucontext): __syncthreads and warp
// shuffles yield to a scheduler that releases a barrier when every live thread of the block (or
// lane of the warp) waits on it; a barrier that can never be released aborts ("deadlock").
//
// The switch between coroutines is a few instructions on x86-64 (callee-saved registers, the
// stack pointer, MXCSR and the x87 control word - the System V ABI's preserved state):
// glibc's swapcontext/getcontext make a sigprocmask system call each, which cost most of this
// emulator's time (two per barrier per thread). Elsewhere ucontext is used. A coroutine's
// thread runs kernel after kernel: it is created once per block size, not per block.
#if defined(__x86_64__)
#define EMU_FAST_SWITCH 1
// emu_switch(&from_sp, to_sp): saves the current state on its stack, stores that stack pointer
// in *from_sp, continues where to_sp was saved (or starts a new stack, see start_stack).
[[gnu::naked, gnu::noinline]] inline void emu_switch(void ** /*from*/, void * /*to*/) {
    asm volatile("pushq %rbp\n\tpushq %rbx\n\tpushq %r12\n\tpushq %r13\n\tpushq %r14\n\tpushq %r15\n\t"
                 "subq $8, %rsp\n\tstmxcsr (%rsp)\n\tfnstcw 4(%rsp)\n\t"
                 "movq %rsp, (%rdi)\n\tmovq %rsi, %rsp\n\t"
                 "ldmxcsr (%rsp)\n\tfldcw 4(%rsp)\n\taddq $8, %rsp\n\t"
                 "popq %r15\n\tpopq %r14\n\tpopq %r13\n\tpopq %r12\n\tpopq %rbx\n\tpopq %rbp\n\tret");
}
#endif
struct cthread {
#if EMU_FAST_SWITCH
    void *sp = nullptr;
#else
    ucontext_t ctx;
#endif
    std::vector<char> stack;
    int wait = 0; // 0 running, 1 block barrier, 2 warp barrier, 3 done (waits for the next block)
};
struct blockrun {
#if EMU_FAST_SWITCH
    void *sched = nullptr;
#else
    ucontext_t sched;
#endif
    std::vector<cthread> th;
    std::vector<uint64_t> slot;
    int n = 0;
};
inline blockrun *cur = nullptr;
inline std::function<void()> *cur_job = nullptr;
inline void to_sched(cthread &t) {
#if EMU_FAST_SWITCH
    emu_switch(&t.sp, cur->sched);
#else
    swapcontext(&t.ctx, &cur->sched);
#endif
}
inline void to_thread(blockrun *br, cthread &t) {
#if EMU_FAST_SWITCH
    emu_switch(&br->sched, t.sp);
#else
    swapcontext(&br->sched, &t.ctx);
#endif
}

inline void set_ids(int i) {
    tflat = i;
    tidx = {(unsigned)(i % bdim.x), (unsigned)((i / bdim.x) % bdim.y), (unsigned)(i / (bdim.x * bdim.y))};
}
inline void yield_wait(int kind) {
    const int i = tflat;
    cthread &t = cur->th[i];
    t.wait = kind;
    to_sched(t);
    set_ids(i);
}
inline void syncthreads() { yield_wait(1); }

template <class T> T shfl_xor(T v, int o) {
    const int lane = tflat % warp_size, base = tflat - lane;
    uint64_t b = 0;
    memcpy(&b, &v, sizeof v);
    cur->slot[tflat] = b;
    yield_wait(2);
    T r;
    uint64_t x = cur->slot[base + (lane ^ o)];
    memcpy(&r, &x, sizeof r);
    yield_wait(2); // everyone has read before the slots are reused
    return r;
}

// mma.sync.aligned.m16n8k16.row.col.f32.{bf16,f16}.{bf16,f16}.f32, d += a b, as the PTX ISA
// specifies the fragments ("Matrix fragments for mma.m16n8k16 with floating point type"):
// lane = 4 g + t; A (16 x 16) a[0] = A[g][2t..2t+1], a[1] = A[g+8][2t..], a[2] = A[g][2t+8..],
// a[3] = A[g+8][2t+8..]; B (16 x 8) b[0] = B[2t..2t+1][g], b[1] = B[2t+8..2t+9][g];
// D (16 x 8) d[0..1] = D[g][2t..2t+1], d[2..3] = D[g+8][2t..2t+1]; the lower index in the low
// 16 bits. The warp's registers are gathered, the tile multiplied in f32 (the products of two
// bf16/f16 values are exact in f32), each lane takes its part.
inline float half_bits(uint32_t h, bool f16) {
    if (!f16) { uint32_t u = h << 16; float f; memcpy(&f, &u, 4); return f; }
    const uint32_t sign = (h & 0x8000u) << 16, e = (h >> 10) & 0x1f, m = h & 0x3ff;
    float v = e == 0 ? std::ldexp((float)m, -24) : e == 31 ? (m ? NAN : INFINITY) : std::ldexp((float)(m | 0x400), (int)e - 25);
    uint32_t u; memcpy(&u, &v, 4); u |= sign; memcpy(&v, &u, 4);
    return v;
}
struct mma_regs { uint32_t a[4], b[2]; };
inline std::vector<mma_regs> mma_slot(1024);
inline void mma_16816(float d[4], const uint32_t a[4], const uint32_t b[2], bool f16) {
    if (warp_size != 32) { fprintf(stderr, "emu: mma.sync on a warp of %d\n", warp_size); abort(); }
    const int lane = tflat % 32, base = tflat - lane;
    mma_regs &mine = mma_slot[tflat];
    memcpy(mine.a, a, sizeof mine.a);
    memcpy(mine.b, b, sizeof mine.b);
    yield_wait(2); // every lane has published its fragments
    float A[16][16], B[16][8];
    for (int l = 0; l < 32; l++) {
        const int g = l / 4, t = l % 4;
        const mma_regs &r = mma_slot[base + l];
        for (int hi = 0; hi < 2; hi++) {
            A[g][2 * t + hi] = half_bits((r.a[0] >> (16 * hi)) & 0xffff, f16);
            A[g + 8][2 * t + hi] = half_bits((r.a[1] >> (16 * hi)) & 0xffff, f16);
            A[g][2 * t + 8 + hi] = half_bits((r.a[2] >> (16 * hi)) & 0xffff, f16);
            A[g + 8][2 * t + 8 + hi] = half_bits((r.a[3] >> (16 * hi)) & 0xffff, f16);
            B[2 * t + hi][g] = half_bits((r.b[0] >> (16 * hi)) & 0xffff, f16);
            B[2 * t + 8 + hi][g] = half_bits((r.b[1] >> (16 * hi)) & 0xffff, f16);
        }
    }
    yield_wait(2); // every lane has read before the slots are reused
    const int g = lane / 4, t = lane % 4;
    for (int e = 0; e < 4; e++) {
        const int row = g + 8 * (e / 2), col = 2 * t + (e & 1);
        float acc = d[e];
        for (int k = 0; k < 16; k++) acc += A[row][k] * B[k][col];
        d[e] = acc;
    }
}

// A coroutine: the thread of index i of every block of this size, one kernel after another.
inline void thread_main(int i) {
    for (;;) {
        set_ids(i);
        (*cur_job)();
        cur->th[i].wait = 3;
        to_sched(cur->th[i]); // resumed for the next block
    }
}
#if EMU_FAST_SWITCH
inline int starting = 0;
[[noreturn]] inline void thread_entry() {
    thread_main(starting);
    abort();
}
// A fresh stack whose first emu_switch "returns" into thread_entry: the 56 bytes emu_switch
// pops (control words and 6 registers, taken from the current ones), then thread_entry's
// address, at a 16-byte boundary so that thread_entry starts as a called function would.
inline void *start_stack(std::vector<char> &stack) {
    uintptr_t top = ((uintptr_t)(stack.data() + stack.size()) & ~(uintptr_t)15) - 16;
    uint64_t *p = (uint64_t *)top;
    p[0] = (uint64_t)(uintptr_t)&thread_entry; // the return address, 16-byte aligned
    p[1] = 0;                                  // above it: the end of the frame chain
    uint32_t cw[2];
    asm volatile("stmxcsr %0\n\tfnstcw %1" : "=m"(cw[0]), "=m"(cw[1]));
    uint64_t *q = p - 7;
    memcpy(q, cw, 8);
    for (int r = 1; r < 7; r++) q[r] = 0;
    return q;
}
#endif

inline void run_block(int n, std::function<void()> &job) {
    static blockrun *br = new blockrun;
    cur = br;
    cur_job = &job;
    if (br->n != n) { // new coroutines (the old ones wait, done, on stacks freed here)
        br->th.assign(n, cthread{});
        for (auto &t : br->th) t.stack.resize(256 * 1024);
        br->slot.assign(n, 0);
        br->n = n;
        for (int i = 0; i < n; i++) {
            cthread &t = br->th[i];
#if EMU_FAST_SWITCH
            t.sp = start_stack(t.stack);
#else
            getcontext(&t.ctx);
            t.ctx.uc_stack.ss_sp = t.stack.data();
            t.ctx.uc_stack.ss_size = t.stack.size();
            t.ctx.uc_link = nullptr;
            makecontext(&t.ctx, (void (*)())thread_main, 1, i);
#endif
        }
    }
    for (auto &t : br->th) t.wait = 0;
    for (;;) {
        bool ran = false;
        for (int i = 0; i < n; i++)
            if (br->th[i].wait == 0) {
#if EMU_FAST_SWITCH
                starting = i; // read by a coroutine's first entry only
#endif
                to_thread(br, br->th[i]);
                ran = true;
            }
        int done = 0, at_block = 0;
        for (auto &t : br->th) done += t.wait == 3, at_block += t.wait == 1;
        if (done == n) return;
        bool released = false;
        for (int w = 0; w < n; w += warp_size) { // a warp barrier: every lane of the warp there
            int at = 0;
            for (int l = 0; l < warp_size; l++) at += br->th[w + l].wait == 2;
            if (at == warp_size) {
                for (int l = 0; l < warp_size; l++) br->th[w + l].wait = 0;
                released = true;
            }
        }
        if (!released && at_block + done == n && at_block > 0) {
            if (done) { fprintf(stderr, "emu: __syncthreads with exited threads\n"); abort(); }
            for (auto &t : br->th) t.wait = 0;
            released = true;
        }
        if (!released && !ran) { fprintf(stderr, "emu: deadlock (divergent barrier or shuffle)\n"); abort(); }
    }
}

template <class K> struct launcher {
    dim3 g, b;
    size_t smem;
    K k;
    template <class... A> void operator()(A... args) {
        const int n = (int)(b.x * b.y * b.z);
        if (n % warp_size || n > 1024 || smem > sizeof dyn_smem) {
            fprintf(stderr, "emu: bad launch: %d threads, %zu smem\n", n, smem);
            abort();
        }
        bdim = b;
        gdim = g;
        for (unsigned z = 0; z < g.z; z++)
            for (unsigned y = 0; y < g.y; y++)
                for (unsigned x = 0; x < g.x; x++) {
                    memset(dyn_smem, 0xcd, smem);
                    bidx = {x, y, z};
                    std::function<void()> job = [&] { k(args...); };
                    run_block(n, job);
                }
    }
};
// k<<<grid, block, smem, stream>>>(args) -> emu::launch(grid, block, smem, stream, k)(args)
template <class S, class K> launcher<K> launch(dim3 g, dim3 b, size_t smem, S, K k) { return launcher<K>{g, b, smem, k}; }
} // namespace emu

#define threadIdx (emu::tidx)
#define blockIdx (emu::bidx)
#define blockDim (emu::bdim)
#define gridDim (emu::gdim)
#define __syncthreads() emu::syncthreads()
#define hb_shfl_xor(v, o) emu::shfl_xor((v), (o))
#define hb_emu_mma_16816(d, a, b, f16) emu::mma_16816((d), (a), (b), (f16))

static inline float __fmul_rn(float a, float b) { volatile float r = a * b; return r; }
static inline float __fadd_rn(float a, float b) { volatile float r = a + b; return r; }
static inline float __uint_as_float(unsigned u) { float f; memcpy(&f, &u, 4); return f; }
static inline unsigned __float_as_uint(float f) { unsigned u; memcpy(&u, &f, 4); return u; }
static inline unsigned atomicMax(unsigned *p, unsigned v) {
    unsigned o = *p;
    if (v > o) *p = v;
    return o;
}
using std::isnan;
using std::isinf;

// ---- runtime ----
typedef int cudaError_t;
enum { cudaSuccess = 0, cudaErrorMemoryAllocation = 2, cudaErrorInvalidValue = 1 };
typedef void *cudaStream_t;
typedef struct emu_event { double t; } *cudaEvent_t;
enum cudaMemcpyKind { cudaMemcpyHostToDevice, cudaMemcpyDeviceToHost, cudaMemcpyDeviceToDevice };
enum cudaDeviceAttr { cudaDevAttrClockRate, cudaDevAttrMemoryClockRate, cudaDevAttrGlobalMemoryBusWidth };
enum { cudaFuncAttributeMaxDynamicSharedMemorySize };
#define cudaStreamNonBlocking 1
struct cudaDeviceProp {
    char name[256];
    size_t totalGlobalMem, sharedMemPerBlock, sharedMemPerBlockOptin;
    int warpSize, multiProcessorCount, major, minor, pciDomainID, pciBusID, pciDeviceID;
};
inline cudaError_t emu_last = 0;
static inline const char *cudaGetErrorString(cudaError_t e) { return e ? "emu error" : "no error"; }
static inline const char *cudaGetErrorName(cudaError_t e) { return e ? "emuError" : "cudaSuccess"; }
static inline cudaError_t cudaGetLastError() { cudaError_t e = emu_last; emu_last = 0; return e; }
static inline cudaError_t cudaGetDeviceCount(int *n) { if (getenv("EMU_WARP")) emu::warp_size = atoi(getenv("EMU_WARP")); *n = 1; return 0; }
static inline cudaError_t cudaSetDevice(int) { return 0; }
static inline cudaError_t cudaGetDeviceProperties(cudaDeviceProp *p, int) {
    memset(p, 0, sizeof *p);
    if (getenv("EMU_WARP")) emu::warp_size = atoi(getenv("EMU_WARP"));
    snprintf(p->name, sizeof p->name, "Emulated GPU (warp %d)", emu::warp_size);
    p->totalGlobalMem = (size_t)8 << 30;
    const char *s = getenv("EMU_SMEM");
    p->sharedMemPerBlock = 48 * 1024;
    p->sharedMemPerBlockOptin = s ? (size_t)atol(s) : 227 * 1024;
    p->warpSize = emu::warp_size;
    p->multiProcessorCount = getenv("EMU_SM") ? atoi(getenv("EMU_SM")) : 2;
    p->major = 9;
    p->minor = 0;
    p->pciBusID = 0x17;
    return 0;
}
/* EMU_PCI: the bus id to report (a GPU of a synthetic hwloc topology, for `hetbench run`) */
static inline cudaError_t cudaDeviceGetPCIBusId(char *s, int n, int) {
    snprintf(s, n, "%s", getenv("EMU_PCI") ? getenv("EMU_PCI") : "0000:17:00.0");
    return 0;
}
static inline cudaError_t cudaDriverGetVersion(int *v) { *v = 13000; return 0; }
static inline cudaError_t cudaRuntimeGetVersion(int *v) { *v = 13000; return 0; }
static inline cudaError_t cudaDeviceGetAttribute(int *v, cudaDeviceAttr, int) { *v = 1000000; return 0; }
static inline cudaError_t cudaMalloc(void **p, size_t n) {
    if (n > ((size_t)8 << 30)) { *p = nullptr; return cudaErrorMemoryAllocation; }
    if (posix_memalign(p, 256, n ? n : 1) != 0) { *p = nullptr; return cudaErrorMemoryAllocation; }
    memset(*p, 0xa5, n); // garbage, as fresh device memory is (exact size: ASan sees overruns)
    return 0;
}
template <class T> static inline cudaError_t cudaMalloc(T **p, size_t n) { return cudaMalloc((void **)p, n); }
static inline cudaError_t cudaFree(void *p) { free(p); return 0; }
static inline cudaError_t cudaMemGetInfo(size_t *f, size_t *t) { *f = (size_t)6 << 30; *t = (size_t)8 << 30; return 0; }
static inline cudaError_t cudaMemcpyAsync(void *d, const void *s, size_t n, cudaMemcpyKind, cudaStream_t) { memmove(d, s, n); return 0; }
static inline cudaError_t cudaMemsetAsync(void *d, int v, size_t n, cudaStream_t) { memset(d, v, n); return 0; }
static inline cudaError_t cudaStreamCreateWithFlags(cudaStream_t *s, int) { *s = (void *)1; return 0; }
static inline cudaError_t cudaStreamDestroy(cudaStream_t) { return 0; }
static inline cudaError_t cudaStreamSynchronize(cudaStream_t) { return 0; }
static inline double emu_now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }
static inline cudaError_t cudaEventCreate(cudaEvent_t *e) { *e = new emu_event{0}; return 0; }
static inline cudaError_t cudaEventDestroy(cudaEvent_t e) { delete e; return 0; }
static inline cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t) { e->t = emu_now(); return 0; }
static inline cudaError_t cudaEventSynchronize(cudaEvent_t) { return 0; }
static inline cudaError_t cudaEventElapsedTime(float *ms, cudaEvent_t a, cudaEvent_t b) { *ms = (float)((b->t - a->t) * 1e3); return 0; }
template <class F> static inline cudaError_t cudaFuncSetAttribute(F, int, int v) { return v <= 227 * 1024 ? 0 : cudaErrorInvalidValue; }
