/* gpu_train.cu - the training ops of the GPU backend (ops.h, HB_OP_LIST_TRAIN and
 * HB_OP_LIST_TRAIN_MOE): the backward of every forward op a dense or MoE model uses, the fused
 * softmax + cross-entropy and the AdamW update. The specification is the CPU's
 * (backends/cpu/cpu_train_ops.c, cpu_moe.c); kernel -> launcher -> op as gpu_ops.cu.
 *
 * Deterministic: no atomics. Every gradient element is summed by one thread in a fixed order
 * (row order, as the CPU), or by a block reduction whose tree does not depend on timing, so a
 * rerun gives the same bits:
 *   embedding_backward   thread (column, bucket of table rows) walks the token rows in order
 *   norm backward        one block per row (statistics in double, as the CPU), its mean/rstd
 *                        kept; then dw (db) as column sums in two passes: chunks of 64 rows in
 *                        row order, then the chunks in order
 *   matmul_backward      the module's GEMM (gpu_gemm.cu: cuBLASLt, or the built-in GEMM):
 *                        da = dout @ w (a bf16/f16 w widened to f32 first), dw += dout^T @ a;
 *                        dbias as the norms' column sums
 *   attention_train      one block per (query, head, sequence): scores in shared memory,
 *   attention_backward   softmax, p @ v; the backward recomputes the row (dq, and the row's
 *                        max, 1/sum and sum p dp kept), then one block per (key, kv head,
 *                        sequence) sums dk, dv over its group's heads and the queries >= key
 *   cross_entropy        one block per row, max-shifted, sum of exp in double
 *   adamw, swiglu/gelu_backward, rope_backward, moe_permute_backward: element-wise
 *   moe_route_backward   one block per token row, the CPU's double arithmetic and order
 *   matmul_grouped_backward  expert offsets read back, matmul_backward per expert
 *   moe_combine_backward one block per slot, the dot product in double
 * Straightforward kernels first (attention reads K and V once per query: O(T^2 D) loads),
 * checked on the emulator only (backends/GPU.md). */
#include "gpu.cuh"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

namespace HB_GPU_NS {

static const int TR_THREADS = 256; /* a multiple of 64: whole warps on every device */
static const int ROW_T = 128;      /* row-wise kernels (attention rows, norms, routers) */

#define TR_GRID_STRIDE(i, n)                                                          \
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < (n);         \
         i += (int64_t)gridDim.x * blockDim.x)

static unsigned rows_grid_tr(int64_t rows) {
    return (unsigned)(rows < 1 ? 1 : rows < 65535 * 16 ? rows : 65535 * 16);
}

/* Sum of one double per thread, every thread gets it; sh holds blockDim.x doubles. Thread 0
 * adds them in thread order: the same bits every run. */
static __device__ __forceinline__ double block_sum_d(double v, double *sh) {
    sh[threadIdx.x] = v;
    __syncthreads();
    if (threadIdx.x == 0) {
        double s = 0.0;
        for (unsigned i = 0; i < blockDim.x; i++) s += sh[i];
        sh[0] = s;
    }
    __syncthreads();
    const double r = sh[0];
    __syncthreads(); /* sh may be reused right away */
    return r;
}

/* Row placement of a 2-D view (n1 = rows, s0 = 0, s1 = ld) or of a 3-D one (N, H, D) with
 * strides (ld, D, 1): row r at (r / n1) s0 + (r % n1) s1, as hb_tensor_row_off. */
struct rowmap {
    int64_t n1, s0, s1;
};
static rowmap rowmap_of(const hb_tensor *t) {
    rowmap m;
    if (t->ndim == 3) {
        m.n1 = t->ne[1] > 0 ? t->ne[1] : 1;
        m.s0 = t->st[0];
        m.s1 = t->st[1];
    } else {
        m.n1 = hb_tensor_rows(t) > 0 ? hb_tensor_rows(t) : 1;
        m.s0 = 0;
        m.s1 = hb_tensor_ld(t);
    }
    return m;
}
static __device__ __forceinline__ int64_t row_at(const rowmap m, int64_t r) {
    return (r / m.n1) * m.s0 + (r % m.n1) * m.s1;
}

/* The scratch buffer of the training ops (norm statistics, attention row statistics, a
 * widened weight): one at a time, in stream order. */
static hb_status train_scratch(hb_backend *be, size_t nbytes, void **p) {
    gpu_ctx *c = ctx_of(be);
    TRY(ensure_buffer(be, &c->train_buf, &c->train_bytes, nbytes > 0 ? nbytes : 16));
    *p = c->train_buf;
    return HB_OK;
}

/* ==== embedding ==== */

/* dwte[tokens[i]] += dout row i, dwpe[pos0 + i % T] += row i. Thread (column c, bucket y of
 * nb) owns the table rows whose index is y mod nb: it walks the B T token ids (broadcast loads)
 * and adds the rows of its own, in row order - repeated tokens add up in the CPU's order,
 * without atomics, and nb times more threads than columns share the work. Tokens outside
 * [0, V) are skipped (the CPU refuses them; they cannot be checked on the host here). */
__global__ void embedding_backward_kernel(float *dwte, float *dwpe, const float *dout, int64_t ldd,
                                          const int32_t *tokens, int64_t N, int64_t T, int64_t pos0,
                                          int64_t C, int64_t V, int64_t nb) {
    const int64_t c = (int64_t)blockIdx.x * blockDim.x + threadIdx.x, y = blockIdx.y;
    if (c >= C) return; /* no barrier in this kernel */
    for (int64_t i = 0; i < N; i++) {
        const int64_t tok = tokens[i];
        if (tok >= 0 && tok < V && tok % nb == y) dwte[tok * C + c] += dout[i * ldd + c];
    }
    if (dwpe)
        for (int64_t i = 0; i < N; i++) {
            const int64_t p = pos0 + i % T;
            if (p % nb == y) dwpe[p * C + c] += dout[i * ldd + c];
        }
}

hb_status op_embedding_backward(hb_backend *be, const hb_embedding_backward_args *a) {
    const int64_t N = a->B * a->T, C = hb_tensor_cols(&a->dwte), V = hb_tensor_rows(&a->dwte);
    if (N <= 0 || C <= 0) return HB_OK;
    GPU_ENTER(be);
    gpu_ctx *c = ctx_of(be);
    /* enough buckets for ~1024 threads per SM, at most 64 (each walks all token ids) */
    int64_t nb = ((int64_t)c->n_sm * 1024 + C - 1) / C;
    nb = nb < 1 ? 1 : nb > 64 ? 64 : nb;
    dim3 grid((unsigned)((C + TR_THREADS - 1) / TR_THREADS), (unsigned)nb);
    embedding_backward_kernel<<<grid, TR_THREADS, 0, c->stream>>>(
        (float *)a->dwte.data, (float *)a->dwpe.data, (const float *)a->dout.data, hb_tensor_ld(&a->dout),
        a->tokens, N, a->T, a->pos0, C, V, nb);
    LAUNCH_CHECK(be, "embedding_backward");
    return HB_OK;
}

/* ==== norms ==== */

/* Row r: the forward's statistics in double (layer: mean and centred sum of squares; else the
 * sum of squares), then din = beta din + rstd (g - mean(g) - xhat mean(g xhat)), g = dout w
 * (rmsnorm: no mean(g) term), the means in double; mean/rstd kept in stat (2 N). */
__global__ void __launch_bounds__(128)
norm_backward_row_kernel(float *din, rowmap md, const float *dout, rowmap mo, const float *in, rowmap mi,
                         const float *w, float *stat, int64_t N, int64_t C, float eps, float beta, int layer) {
    __shared__ double sh[ROW_T];
    for (int64_t r = blockIdx.x; r < N; r += gridDim.x) {
        const float *x = in + row_at(mi, r), *d = dout + row_at(mo, r);
        float *o = din + row_at(md, r);
        double sum = 0.0, ss = 0.0;
        float fmean = 0.0f;
        if (layer) {
            for (int64_t c = threadIdx.x; c < C; c += blockDim.x) sum += x[c];
            sum = block_sum_d(sum, sh);
            const double mu = sum / (double)C;
            for (int64_t c = threadIdx.x; c < C; c += blockDim.x) ss += ((double)x[c] - mu) * ((double)x[c] - mu);
            fmean = (float)mu;
        } else {
            for (int64_t c = threadIdx.x; c < C; c += blockDim.x) ss += (double)x[c] * x[c];
        }
        ss = block_sum_d(ss, sh);
        const float rs = (float)(1.0 / sqrt(ss / (double)C + (double)eps));
        double gm = 0.0, gxm = 0.0;
        for (int64_t c = threadIdx.x; c < C; c += blockDim.x) {
            const double g = (double)d[c] * w[c], xh = ((double)x[c] - fmean) * rs;
            gm += g;
            gxm += g * xh;
        }
        gm = block_sum_d(gm, sh);
        gxm = block_sum_d(gxm, sh);
        gm = layer ? gm / (double)C : 0.0;
        gxm /= (double)C;
        for (int64_t c = threadIdx.x; c < C; c += blockDim.x) {
            const double xh = ((double)x[c] - fmean) * rs;
            const float v = (float)(rs * ((double)d[c] * w[c] - gm - xh * gxm));
            o[c] = beta == 0.0f ? v : beta * o[c] + v;
        }
        if (threadIdx.x == 0) {
            stat[r] = fmean;
            stat[N + r] = rs;
        }
    }
}

/* Column sums over rows, in two deterministic passes (a thread per column walking all N rows
 * would leave most of the device idle for N >> C): chunk y of COL_ROWS rows,
 *   pw[y C + c] = sum_{r in y} dout[r, c] xhat[r, c]   (pw: norms' dw; xhat from stat)
 *   pb[y C + c] = sum_{r in y} dout[r, c]              (pb: db, dbias)
 * each in row order; then dst[c] += the chunks' partials in chunk order. */
static const int64_t COL_ROWS = 64;

__global__ void colsum_part_kernel(float *pw, float *pb, const float *dout, rowmap mo, const float *in, rowmap mi,
                                   const float *stat, int64_t N, int64_t C) {
    const int64_t c = (int64_t)blockIdx.x * blockDim.x + threadIdx.x, y = blockIdx.y;
    if (c >= C) return; /* no barrier in this kernel */
    const int64_t r0 = y * COL_ROWS, r1 = r0 + COL_ROWS < N ? r0 + COL_ROWS : N;
    float aw = 0.0f, ab = 0.0f;
    for (int64_t r = r0; r < r1; r++) {
        const float d = dout[row_at(mo, r) + c];
        if (pw) aw += d * ((in[row_at(mi, r) + c] - stat[r]) * stat[N + r]);
        ab += d;
    }
    if (pw) pw[y * C + c] = aw;
    if (pb) pb[y * C + c] = ab;
}

__global__ void colsum_fold_kernel(float *dst, const float *part, int64_t nch, int64_t C) {
    TR_GRID_STRIDE(c, C) {
        float acc = dst[c];
        for (int64_t y = 0; y < nch; y++) acc += part[y * C + c];
        dst[c] = acc;
    }
}

static int64_t col_chunks(int64_t N) { return (N + COL_ROWS - 1) / COL_ROWS; }

/* dw (if pw wanted) and db (if db) += column sums of dout (N, C) rows [times xhat]; part holds
 * 2 col_chunks(N) C floats. */
static hb_status colsum(hb_backend *be, float *dw, float *db, const float *dout, rowmap mo, const float *in,
                        rowmap mi, const float *stat, int64_t N, int64_t C, float *part) {
    gpu_ctx *c = ctx_of(be);
    const int64_t nch = col_chunks(N);
    if (nch > 65535) return fail(be, HB_ERR_UNSUPPORTED, "%s: column sums over %lld rows", HB_GPU_NAME, (long long)N);
    float *pw = dw ? part : NULL, *pb = db ? part + nch * C : NULL;
    dim3 grid((unsigned)((C + TR_THREADS - 1) / TR_THREADS), (unsigned)nch);
    colsum_part_kernel<<<grid, TR_THREADS, 0, c->stream>>>(pw, pb, dout, mo, in, mi, stat, N, C);
    LAUNCH_CHECK(be, "column sums");
    if (dw) {
        colsum_fold_kernel<<<grid_for(c, C, TR_THREADS), TR_THREADS, 0, c->stream>>>(dw, pw, nch, C);
        LAUNCH_CHECK(be, "column sums");
    }
    if (db) {
        colsum_fold_kernel<<<grid_for(c, C, TR_THREADS), TR_THREADS, 0, c->stream>>>(db, pb, nch, C);
        LAUNCH_CHECK(be, "column sums");
    }
    return HB_OK;
}

static hb_status norm_backward(hb_backend *be, const char *op, int layer, const hb_tensor *din,
                               const hb_tensor *dw, const hb_tensor *db, const hb_tensor *dout,
                               const hb_tensor *in, const hb_tensor *w, float eps, float beta) {
    (void)op; /* LAUNCH_CHECK's name is for the reader */
    const int64_t N = hb_tensor_rows(in), C = hb_tensor_cols(in);
    if (N <= 0 || C <= 0) return HB_OK;
    GPU_ENTER(be);
    gpu_ctx *c = ctx_of(be);
    float *stat = NULL; /* (N) mean, (N) rstd, then the column sums' partials */
    TRY(train_scratch(be, (size_t)(2 * N + 2 * col_chunks(N) * C) * sizeof(float), (void **)&stat));
    norm_backward_row_kernel<<<rows_grid_tr(N), ROW_T, 0, c->stream>>>(
        (float *)din->data, rowmap_of(din), (const float *)dout->data, rowmap_of(dout), (const float *)in->data,
        rowmap_of(in), (const float *)w->data, stat, N, C, eps, beta, layer);
    LAUNCH_CHECK(be, op);
    return colsum(be, (float *)dw->data, db ? (float *)db->data : NULL, (const float *)dout->data, rowmap_of(dout),
                  (const float *)in->data, rowmap_of(in), stat, N, C, stat + 2 * N);
}

hb_status op_rmsnorm_backward(hb_backend *be, const hb_rmsnorm_backward_args *a) {
    return norm_backward(be, "rmsnorm_backward", 0, &a->din, &a->dw, NULL, &a->dout, &a->in, &a->w, a->eps, a->beta);
}

hb_status op_layernorm_backward(hb_backend *be, const hb_layernorm_backward_args *a) {
    return norm_backward(be, "layernorm_backward", 1, &a->din, &a->dw, &a->db, &a->dout, &a->in, &a->w, a->eps,
                         a->beta);
}

/* ==== matmul ==== */

__global__ void widen_kernel(float *dst, const void *src, hb_dtype dt, int64_t n) {
    TR_GRID_STRIDE(i, n) dst[i] = ld_any(src, dt, i);
}

/* The backward of out (M, N) = a (M, K) @ w (N, K)^T on raw pointers (matmul_grouped_backward
 * calls it per expert). */
static hb_status matmul_backward_raw(hb_backend *be, float *da, int64_t ldda, float *dw, float *dbias,
                                     const float *dout, int64_t ldd, const float *a, int64_t lda,
                                     const void *w, hb_dtype wdt, int64_t M, int64_t N, int64_t K, float beta) {
    gpu_ctx *c = ctx_of(be);
    if (M <= 0 || N <= 0 || K <= 0) return HB_OK;
    if (da) { /* da (M, K) = beta da + dout (M, N) @ w (N, K) */
        const float *wf = (const float *)w;
        if (wdt != HB_F32) { /* mixed precision: the bf16/f16 copy widened, as the CPU */
            float *t = NULL;
            TRY(train_scratch(be, (size_t)(N * K) * sizeof(float), (void **)&t));
            widen_kernel<<<grid_for(c, N * K, TR_THREADS), TR_THREADS, 0, c->stream>>>(t, w, wdt, N * K);
            LAUNCH_CHECK(be, "matmul_backward (widen w)");
            wf = t;
        }
        hb_matmul_batched_args g;
        memset(&g, 0, sizeof g);
        g.trans_a = 0, g.trans_b = 0;
        g.m = M, g.n = K, g.k = N, g.batch = 1;
        g.alpha = 1.0f, g.beta = beta;
        g.a = dout, g.lda = ldd;
        g.b = wf, g.ldb = K;
        g.c = da, g.ldc = ldda;
        TRY(op_matmul_batched(be, &g));
    }
    if (dw) { /* dw (N, K) += dout^T (N, M) @ a (M, K) */
        hb_matmul_batched_args g;
        memset(&g, 0, sizeof g);
        g.trans_a = 1, g.trans_b = 0;
        g.m = N, g.n = K, g.k = M, g.batch = 1;
        g.alpha = 1.0f, g.beta = 1.0f;
        g.a = dout, g.lda = ldd;
        g.b = a, g.ldb = lda;
        g.c = dw, g.ldc = K;
        TRY(op_matmul_batched(be, &g));
    }
    if (dbias) { /* column sums of dout (M, N), in two passes as the norms' */
        float *part = NULL;
        TRY(train_scratch(be, (size_t)(2 * col_chunks(M) * N) * sizeof(float), (void **)&part));
        rowmap mo;
        mo.n1 = M, mo.s0 = 0, mo.s1 = ldd;
        TRY(colsum(be, NULL, dbias, dout, mo, (const float *)NULL, mo, (const float *)NULL, M, N, part));
    }
    return HB_OK;
}

hb_status op_matmul_backward(hb_backend *be, const hb_matmul_backward_args *x) {
    const int64_t M = hb_tensor_rows(&x->a), K = hb_tensor_cols(&x->a), N = hb_tensor_rows(&x->w);
    if (M <= 0 || N <= 0 || K <= 0) return HB_OK;
    GPU_ENTER(be);
    return matmul_backward_raw(be, (float *)x->da.data, x->da.data ? hb_tensor_ld(&x->da) : 0, (float *)x->dw.data,
                               (float *)x->dbias.data, (const float *)x->dout.data, hb_tensor_ld(&x->dout),
                               (const float *)x->a.data, hb_tensor_ld(&x->a), x->w.data, x->w.dt, M, N, K, x->beta);
}

/* ==== rope ==== */

/* The transposed rotation: rope at the angles' negatives, angles in double per element; the
 * CPU's table values (cos * mag, -(sin * mag)) rounded to f32 the same way. */
__global__ void rope_backward_kernel(float *x, int64_t ldx, int64_t N, int64_t T, int64_t H, int64_t D,
                                     int64_t pos0, float theta, hb_rope_scaling sc) {
    const int64_t half = D / 2;
    TR_GRID_STRIDE(idx, N * H * half) {
        const int64_t i = idx % half, rh = idx / half, h = rh % H, row = rh / H, t = row % T;
        const double freq = hb_rope_freq(i, D, (double)theta, sc);
        const double ang = (double)(pos0 + t) * freq;
        const float cs = (float)cos(ang) * hb_rope_mag(sc), sn = -((float)sin(ang) * hb_rope_mag(sc));
        float *v = x + row * ldx + h * D;
        const float x0 = v[i], x1 = v[i + half];
        v[i] = x0 * cs - x1 * sn;
        v[i + half] = x0 * sn + x1 * cs;
    }
}

hb_status op_rope_backward(hb_backend *be, const hb_rope_backward_args *a) {
    const int64_t ldx = hb_tensor_ld(&a->x), B = a->B, T = a->T, pos0 = a->pos0, H = a->H;
    const int64_t D = hb_tensor_cols(&a->x) / (H > 0 ? H : 1);
    if (D <= 0 || D % 2 != 0 || ldx < H * D || !(a->theta > 0.0f) || pos0 < 0)
        return fail(be, HB_ERR_INPUT,
                    "%s: rope_backward: need even D > 0, ldx >= H*D, theta > 0, pos0 >= 0 "
                    "(D=%lld H=%lld ldx=%lld theta=%g pos0=%lld)",
                    HB_GPU_NAME, (long long)D, (long long)H, (long long)ldx, (double)a->theta, (long long)pos0);
    if (B <= 0 || T <= 0 || H <= 0) return HB_OK;
    GPU_ENTER(be);
    gpu_ctx *c = ctx_of(be);
    rope_backward_kernel<<<grid_for(c, B * T * H * (D / 2), TR_THREADS), TR_THREADS, 0, c->stream>>>(
        (float *)a->x.data, ldx, B * T, T, H, D, pos0, a->theta, a->scaling);
    LAUNCH_CHECK(be, "rope_backward");
    return HB_OK;
}

/* ==== attention ==== */

static __device__ __forceinline__ float dot_f(const float *a, const float *b, int64_t n) {
    float s = 0.0f;
    for (int64_t i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

/* Block (t, h, b): query t of head h of sequence b over keys 0..t. p (shared, T floats) = the
 * causal softmax of the scaled scores (f32, max-shifted, as the CPU). Forward (dout NULL):
 * out = p @ v. Backward: dp_j = dout . v_j, pdp = sum p dp, ds_j = p_j (dp_j - pdp) scale,
 * dq = ds @ k; the row's max, 1/sum and pdp go to stat (3 per row) for the key pass. */
__global__ void __launch_bounds__(128)
attn_train_row_kernel(float *out, int64_t ldo, const float *q, int64_t ldq, const float *k, int64_t ldk,
                      const float *v, int64_t ldv, int64_t T, int64_t Hq, int64_t group, int64_t D, float scale,
                      const float *dout, int64_t lddo, float *stat) {
    extern __shared__ float att_tr_sm[];
    __shared__ float red[32];
    float *p = att_tr_sm, *dp = att_tr_sm + T;
    const int64_t t = blockIdx.x, h = blockIdx.y, b = blockIdx.z;
    const int tid = threadIdx.x, nt = blockDim.x;
    const float *qv = q + (b * T + t) * ldq + h * D;
    const float *kb = k + b * T * ldk + (h / group) * D, *vb = v + b * T * ldv + (h / group) * D;
    float mx = -INFINITY;
    for (int64_t j = tid; j <= t; j += nt) {
        const float s = dot_f(qv, kb + j * ldk, D) * scale;
        p[j] = s;
        mx = fmaxf(mx, s);
    }
    mx = block_max(mx, red);
    float sum = 0.0f;
    for (int64_t j = tid; j <= t; j += nt) {
        const float e = expf(p[j] - mx);
        p[j] = e;
        sum += e;
    }
    sum = block_sum(sum, red);
    const float inv = 1.0f / sum;
    for (int64_t j = tid; j <= t; j += nt) p[j] *= inv;
    __syncthreads();
    if (!dout) {
        float *o = out + (b * T + t) * ldo + h * D;
        for (int64_t d = tid; d < D; d += nt) {
            float acc = 0.0f;
            for (int64_t j = 0; j <= t; j++) acc += p[j] * vb[j * ldv + d];
            o[d] = acc;
        }
        return;
    }
    const float *dov = dout + (b * T + t) * lddo + h * D;
    float pdp = 0.0f;
    for (int64_t j = tid; j <= t; j += nt) {
        dp[j] = dot_f(dov, vb + j * ldv, D);
        pdp += p[j] * dp[j];
    }
    pdp = block_sum(pdp, red);
    for (int64_t j = tid; j <= t; j += nt) dp[j] = p[j] * (dp[j] - pdp) * scale; /* ds */
    __syncthreads();
    float *dqv = out + (b * T + t) * ldo + h * D;
    for (int64_t d = tid; d < D; d += nt) {
        float acc = 0.0f;
        for (int64_t j = 0; j <= t; j++) acc += dp[j] * kb[j * ldk + d];
        dqv[d] = acc;
    }
    if (tid == 0) {
        float *st = stat + ((b * Hq + h) * T + t) * 3;
        st[0] = mx, st[1] = inv, st[2] = pdp;
    }
}

/* Block (j, g, b): key j of kv head g of sequence b. For each query head h of the group and
 * each query t >= j, p_tj and ds_tj recomputed from the row statistics; then dv_j = sum p dout_t,
 * dk_j = sum ds q_t, in the order (h, t) of the CPU. Shared: p, ds (T floats each). */
__global__ void __launch_bounds__(128)
attn_train_kv_kernel(float *dk, int64_t lddk, float *dv, int64_t lddv, const float *q, int64_t ldq,
                     const float *k, int64_t ldk, const float *v, int64_t ldv, const float *dout, int64_t lddo,
                     const float *stat, int64_t T, int64_t Hq, int64_t group, int64_t D, float scale) {
    extern __shared__ float att_kv_sm[];
    float *p = att_kv_sm, *ds = att_kv_sm + T;
    const int64_t j = blockIdx.x, g = blockIdx.y, b = blockIdx.z;
    const int tid = threadIdx.x, nt = blockDim.x;
    const float *kj = k + (b * T + j) * ldk + g * D, *vj = v + (b * T + j) * ldv + g * D;
    float *dkj = dk + (b * T + j) * lddk + g * D, *dvj = dv + (b * T + j) * lddv + g * D;
    for (int64_t d = tid; d < D; d += nt) dkj[d] = dvj[d] = 0.0f;
    for (int64_t h = g * group; h < (g + 1) * group; h++) {
        for (int64_t t = j + tid; t < T; t += nt) {
            const float *qt = q + (b * T + t) * ldq + h * D, *dot_ = dout + (b * T + t) * lddo + h * D;
            const float *st = stat + ((b * Hq + h) * T + t) * 3;
            const float pj = expf(dot_f(qt, kj, D) * scale - st[0]) * st[1];
            const float dpj = dot_f(dot_, vj, D);
            p[t] = pj;
            ds[t] = pj * (dpj - st[2]) * scale;
        }
        __syncthreads();
        for (int64_t d = tid; d < D; d += nt) {
            float av = dvj[d], ak = dkj[d];
            for (int64_t t = j; t < T; t++) {
                av += p[t] * dout[(b * T + t) * lddo + h * D + d];
                ak += ds[t] * q[(b * T + t) * ldq + h * D + d];
            }
            dvj[d] = av;
            dkj[d] = ak;
        }
        __syncthreads();
    }
}

static hb_status attn_shapes(hb_backend *be, const char *op, int64_t B, int64_t T, int64_t Hq, int64_t Hkv,
                             size_t *smem) {
    gpu_ctx *c = ctx_of(be);
    *smem = (size_t)(2 * T) * sizeof(float);
    if (T > INT_MAX || Hq > 65535 || B > 65535)
        return fail(be, HB_ERR_UNSUPPORTED, "%s: %s: T=%lld Hq=%lld B=%lld beyond the grid", HB_GPU_NAME, op,
                    (long long)T, (long long)Hq, (long long)B);
    if (*smem > 48 * 1024 || *smem > c->smem_optin)
        return fail(be, HB_ERR_UNSUPPORTED,
                    "%s: %s: T=%lld needs %zu bytes of shared memory for a row of scores (at most 48 KiB: "
                    "T <= 6144)",
                    HB_GPU_NAME, op, (long long)T, *smem);
    (void)Hkv;
    return HB_OK;
}

hb_status op_attention_train(hb_backend *be, const hb_attention_train_args *a) {
    const int64_t B = a->B, T = a->T, Hq = a->Hq, Hkv = a->Hkv, D = hb_tensor_cols(&a->q) / Hq;
    if (B <= 0 || T <= 0) return HB_OK;
    size_t smem = 0;
    TRY(attn_shapes(be, "attention_train", B, T, Hq, Hkv, &smem));
    GPU_ENTER(be);
    gpu_ctx *c = ctx_of(be);
    dim3 grid((unsigned)T, (unsigned)Hq, (unsigned)B);
    attn_train_row_kernel<<<grid, ROW_T, smem, c->stream>>>(
        (float *)a->out.data, hb_tensor_ld(&a->out), (const float *)a->q.data, hb_tensor_ld(&a->q),
        (const float *)a->k.data, hb_tensor_ld(&a->k), (const float *)a->v.data, hb_tensor_ld(&a->v), T, Hq,
        Hq / Hkv, D, (float)(1.0 / sqrt((double)D)), (const float *)NULL, (int64_t)0, (float *)NULL);
    LAUNCH_CHECK(be, "attention_train");
    return HB_OK;
}

hb_status op_attention_backward(hb_backend *be, const hb_attention_backward_args *a) {
    const int64_t B = a->B, T = a->T, Hq = a->Hq, Hkv = a->Hkv, D = hb_tensor_cols(&a->q) / Hq;
    if (B <= 0 || T <= 0) return HB_OK;
    size_t smem = 0;
    TRY(attn_shapes(be, "attention_backward", B, T, Hq, Hkv, &smem));
    GPU_ENTER(be);
    gpu_ctx *c = ctx_of(be);
    float *stat = NULL;
    TRY(train_scratch(be, (size_t)(B * Hq * T * 3) * sizeof(float), (void **)&stat));
    const float scale = (float)(1.0 / sqrt((double)D));
    const float *q = (const float *)a->q.data, *k = (const float *)a->k.data, *v = (const float *)a->v.data;
    const float *dout = (const float *)a->dout.data;
    const int64_t ldq = hb_tensor_ld(&a->q), ldk = hb_tensor_ld(&a->k), ldv = hb_tensor_ld(&a->v);
    const int64_t lddo = hb_tensor_ld(&a->dout);
    dim3 grid((unsigned)T, (unsigned)Hq, (unsigned)B);
    attn_train_row_kernel<<<grid, ROW_T, smem, c->stream>>>((float *)a->dq.data, hb_tensor_ld(&a->dq), q, ldq, k,
                                                            ldk, v, ldv, T, Hq, Hq / Hkv, D, scale, dout, lddo, stat);
    LAUNCH_CHECK(be, "attention_backward (dq)");
    dim3 gkv((unsigned)T, (unsigned)Hkv, (unsigned)B);
    attn_train_kv_kernel<<<gkv, ROW_T, smem, c->stream>>>(
        (float *)a->dk.data, hb_tensor_ld(&a->dk), (float *)a->dv.data, hb_tensor_ld(&a->dv), q, ldq, k, ldk, v, ldv,
        dout, lddo, stat, T, Hq, Hq / Hkv, D, scale);
    LAUNCH_CHECK(be, "attention_backward (dk, dv)");
    return HB_OK;
}

/* ==== element-wise ==== */

/* out = silu(x) g: dx = dout g sig(x) (1 + x (1 - sig(x))), dg = dout silu(x) */
__global__ void swiglu_backward_kernel(float *din, const float *dout, const float *in, int64_t N, int64_t F) {
    TR_GRID_STRIDE(idx, N * F) {
        const int64_t r = idx / F, f = idx % F;
        const float x = in[r * 2 * F + f], g = in[r * 2 * F + F + f], d = dout[idx];
        const float s = 1.0f / (1.0f + expf(-x));
        din[r * 2 * F + f] = d * g * s * (1.0f + x * (1.0f - s));
        din[r * 2 * F + F + f] = d * x * s;
    }
}

hb_status op_swiglu_backward(hb_backend *be, const hb_swiglu_backward_args *a) {
    const int64_t N = hb_tensor_rows(&a->dout), F = hb_tensor_cols(&a->dout);
    if (N <= 0 || F <= 0) return HB_OK;
    GPU_ENTER(be);
    gpu_ctx *c = ctx_of(be);
    swiglu_backward_kernel<<<grid_for(c, N * F, TR_THREADS), TR_THREADS, 0, c->stream>>>(
        (float *)a->din.data, (const float *)a->dout.data, (const float *)a->in.data, N, F);
    LAUNCH_CHECK(be, "swiglu_backward");
    return HB_OK;
}

__global__ void gelu_backward_kernel(float *din, const float *dout, const float *in, int64_t n) {
    const float c = 0.7978845608028654f; /* sqrt(2 / pi) */
    TR_GRID_STRIDE(i, n) {
        const float x = in[i], u = c * (x + 0.044715f * x * x * x), th = tanhf(u);
        const float sech2 = 1.0f - th * th;
        din[i] = dout[i] * (0.5f * (1.0f + th) + 0.5f * x * sech2 * c * (1.0f + 3.0f * 0.044715f * x * x));
    }
}

hb_status op_gelu_backward(hb_backend *be, const hb_gelu_backward_args *a) {
    const int64_t n = hb_tensor_numel(&a->in);
    if (n <= 0) return HB_OK;
    GPU_ENTER(be);
    gpu_ctx *c = ctx_of(be);
    gelu_backward_kernel<<<grid_for(c, n, TR_THREADS), TR_THREADS, 0, c->stream>>>(
        (float *)a->din.data, (const float *)a->dout.data, (const float *)a->in.data, n);
    LAUNCH_CHECK(be, "gelu_backward");
    return HB_OK;
}

/* ==== loss ==== */

/* Row r: max, sum of exp(l - max) in double; loss = log(sum) + max - l[target]; then (in place
 * allowed: every thread reads its elements before writing them, the target's before any
 * write) dlogits = dscale (p - onehot). A target outside [0, V) gives a NaN loss (the CPU
 * refuses it; it cannot be checked on the host here). */
__global__ void __launch_bounds__(256)
cross_entropy_kernel(float *losses, float *dl, int64_t ldd, const float *logits, int64_t ldl,
                     const int32_t *targets, int64_t N, int64_t V, float dscale) {
    __shared__ float red[32];
    __shared__ double shd[256];
    for (int64_t r = blockIdx.x; r < N; r += gridDim.x) {
        const float *l = logits + r * ldl;
        float mx = -INFINITY;
        for (int64_t j = threadIdx.x; j < V; j += blockDim.x) mx = fmaxf(mx, l[j]);
        mx = block_max(mx, red);
        double part = 0.0;
        for (int64_t j = threadIdx.x; j < V; j += blockDim.x) part += exp((double)l[j] - mx);
        const double sum = block_sum_d(part, shd);
        const int64_t tgt = targets[r];
        if (threadIdx.x == 0)
            losses[r] = tgt >= 0 && tgt < V ? (float)(log(sum) + mx - l[tgt]) : NAN;
        __syncthreads(); /* l[tgt] read before dlogits (maybe logits itself) is written */
        if (dl) {
            float *o = dl + r * ldd;
            const double inv = 1.0 / sum;
            for (int64_t j = threadIdx.x; j < V; j += blockDim.x) {
                const float p = (float)(exp((double)l[j] - mx) * inv);
                o[j] = dscale * (p - (j == tgt ? 1.0f : 0.0f));
            }
        }
        __syncthreads();
    }
}

hb_status op_cross_entropy(hb_backend *be, const hb_cross_entropy_args *a) {
    const int64_t N = hb_tensor_rows(&a->logits), V = hb_tensor_cols(&a->logits);
    if (N <= 0 || V <= 0) return HB_OK;
    GPU_ENTER(be);
    gpu_ctx *c = ctx_of(be);
    cross_entropy_kernel<<<rows_grid_tr(N), 256, 0, c->stream>>>(
        (float *)a->losses.data, (float *)a->dlogits.data, a->dlogits.data ? hb_tensor_ld(&a->dlogits) : 0,
        (const float *)a->logits.data, hb_tensor_ld(&a->logits), a->targets, N, V, a->dscale);
    LAUNCH_CHECK(be, "cross_entropy");
    return HB_OK;
}

/* ==== optimizer ==== */

__global__ void adamw_kernel(float *p, float *g, float *m, float *v, void *lp, hb_dtype lpt, int64_t n, float lr,
                             float b1, float b2, float eps, float wd, float gs, float bc1, float bc2, int zero_grad) {
    TR_GRID_STRIDE(i, n) {
        const float gi = gs * g[i];
        const float mi = b1 * m[i] + (1.0f - b1) * gi, vi = b2 * v[i] + (1.0f - b2) * gi * gi;
        m[i] = mi;
        v[i] = vi;
        const float mhat = mi / bc1, vhat = vi / bc2;
        const float pi = p[i] - lr * (mhat / (sqrtf(vhat) + eps) + wd * p[i]);
        p[i] = pi;
        if (zero_grad) g[i] = 0.0f;
        if (lp) st_any(lp, lpt, i, pi); /* the GEMMs' copy, rounded to nearest even */
    }
}

hb_status op_adamw(hb_backend *be, const hb_adamw_args *a) {
    const int64_t n = hb_tensor_numel(&a->param);
    if (n <= 0) return HB_OK;
    GPU_ENTER(be);
    gpu_ctx *c = ctx_of(be);
    /* the bias corrections as the CPU computes them: in double, rounded to f32 */
    const float bc1 = (float)(1.0 - pow((double)a->beta1, (double)a->t));
    const float bc2 = (float)(1.0 - pow((double)a->beta2, (double)a->t));
    adamw_kernel<<<grid_for(c, n, TR_THREADS), TR_THREADS, 0, c->stream>>>(
        (float *)a->param.data, (float *)a->grad.data, (float *)a->m.data, (float *)a->v.data, a->param_lp.data,
        a->param_lp.dt, n, a->lr, a->beta1, a->beta2, a->eps, a->weight_decay, a->grad_scale, bc1, bc2,
        a->zero_grad);
    LAUNCH_CHECK(be, "adamw");
    return HB_OK;
}

/* ==== Mixture-of-Experts training ==== */

/* Row n: the router's scores s (double: softmax of the row or sigmoid), ds = d weights / d s^T
 * dweights over the chosen experts, then dlogits. Shared: s, ds (E doubles each); the sums are
 * the CPU's, in expert / slot order (thread 0), the exps and the outputs in parallel. */
__global__ void __launch_bounds__(128)
moe_route_backward_kernel(float *dlogits, int64_t ldd, const float *logits, int64_t ld, const int32_t *ids,
                          const float *dweights, int64_t N, int64_t E, int64_t k, int kind, int norm, float scale) {
    extern __shared__ double route_bw_sm[];
    __shared__ double acc;
    double *s = route_bw_sm, *ds = route_bw_sm + E;
    const int tid = threadIdx.x, nt = blockDim.x;
    for (int64_t n = blockIdx.x; n < N; n += gridDim.x) {
        const float *lg = logits + n * ld;
        const int32_t *id = ids + n * k;
        const float *dw = dweights + n * k;
        if (kind == HB_ROUTER_SOFTMAX) {
            if (tid == 0) {
                double mx = -INFINITY;
                for (int64_t e = 0; e < E; e++) mx = lg[e] > mx ? lg[e] : mx;
                acc = mx;
            }
            __syncthreads();
            for (int64_t e = tid; e < E; e += nt) s[e] = exp((double)lg[e] - acc);
            __syncthreads();
            if (tid == 0) {
                double sum = 0.0;
                for (int64_t e = 0; e < E; e++) sum += s[e];
                acc = sum;
            }
            __syncthreads();
            for (int64_t e = tid; e < E; e += nt) s[e] /= acc;
        } else {
            for (int64_t e = tid; e < E; e += nt) s[e] = 1.0 / (1.0 + exp(-(double)lg[e]));
        }
        for (int64_t e = tid; e < E; e += nt) ds[e] = 0.0;
        __syncthreads();
        if (tid == 0) {
            /* w_j = scale s_{i_j} / Z, Z = sum_l s_{i_l} + 1e-20 (norm) or 1 */
            double Z = 1.0, wsum = 0.0;
            if (norm) {
                Z = 1e-20;
                for (int64_t j = 0; j < k; j++) Z += s[id[j] >= 0 && id[j] < E ? id[j] : 0];
                for (int64_t j = 0; j < k; j++) wsum += (double)dw[j] * s[id[j] >= 0 && id[j] < E ? id[j] : 0];
            }
            for (int64_t j = 0; j < k; j++) {
                if (id[j] < 0 || id[j] >= E) continue;
                double gj = (double)dw[j] / Z;
                if (norm) gj -= wsum / (Z * Z);
                ds[id[j]] += (double)scale * gj;
            }
            double dot = 0.0;
            if (kind == HB_ROUTER_SOFTMAX)
                for (int64_t e = 0; e < E; e++) dot += s[e] * ds[e];
            acc = dot;
        }
        __syncthreads();
        float *o = dlogits + n * ldd;
        if (kind == HB_ROUTER_SOFTMAX) /* d logits_e = s_e (ds_e - sum_f s_f ds_f) */
            for (int64_t e = tid; e < E; e += nt) o[e] = (float)(s[e] * (ds[e] - acc));
        else /* sigmoid' = s (1 - s) */
            for (int64_t e = tid; e < E; e += nt) o[e] = (float)(ds[e] * s[e] * (1.0 - s[e]));
        __syncthreads();
    }
}

hb_status op_moe_route_backward(hb_backend *be, const hb_moe_route_backward_args *a) {
    const int64_t N = hb_tensor_rows(&a->logits), E = hb_tensor_cols(&a->logits), k = a->top_k;
    if (N <= 0 || E <= 0) return HB_OK;
    const size_t smem = (size_t)(2 * E) * sizeof(double);
    if (smem > 48 * 1024)
        return fail(be, HB_ERR_UNSUPPORTED, "%s: moe_route_backward: %lld experts (at most 3072)", HB_GPU_NAME,
                    (long long)E);
    GPU_ENTER(be);
    gpu_ctx *c = ctx_of(be);
    moe_route_backward_kernel<<<rows_grid_tr(N), ROW_T, smem, c->stream>>>(
        (float *)a->dlogits.data, hb_tensor_ld(&a->dlogits), (const float *)a->logits.data, hb_tensor_ld(&a->logits),
        a->ids, a->dweights, N, E, k, (int)a->kind, a->norm, a->scale);
    LAUNCH_CHECK(be, "moe_route_backward");
    return HB_OK;
}

/* dx[n] = beta dx[n] + sum_j dxp[rows[n k + j]], j in order: the scatter-add as a gather. */
__global__ void moe_permute_backward_kernel(float *dx, int64_t ld, const float *dxp, const int32_t *rows, int64_t N,
                                            int64_t C, int64_t k, float beta) {
    TR_GRID_STRIDE(idx, N * C) {
        const int64_t n = idx / C, c = idx % C;
        float *o = dx + n * ld + c;
        float acc = beta == 0.0f ? 0.0f : beta * *o;
        for (int64_t j = 0; j < k; j++) {
            const int64_t r = rows[n * k + j];
            if (r >= 0 && r < N * k) acc += dxp[r * C + c];
        }
        *o = acc;
    }
}

hb_status op_moe_permute_backward(hb_backend *be, const hb_moe_permute_backward_args *a) {
    const int64_t N = hb_tensor_rows(&a->dx), C = hb_tensor_cols(&a->dx);
    if (N <= 0 || C <= 0) return HB_OK;
    GPU_ENTER(be);
    gpu_ctx *c = ctx_of(be);
    moe_permute_backward_kernel<<<grid_for(c, N * C, TR_THREADS), TR_THREADS, 0, c->stream>>>(
        (float *)a->dx.data, hb_tensor_ld(&a->dx), (const float *)a->dxp.data, a->rows, N, C, a->top_k, a->beta);
    LAUNCH_CHECK(be, "moe_permute_backward");
    return HB_OK;
}

hb_status op_matmul_grouped_backward(hb_backend *be, const hb_matmul_grouped_backward_args *a) {
    const int64_t E = a->w.ne[0], Nw = a->w.ne[1], K = a->w.ne[2], R = hb_tensor_rows(&a->a);
    const int64_t esz = hb_dtype_size(a->w.dt);
    if (E <= 0 || R <= 0) return HB_OK;
    GPU_ENTER(be);
    gpu_ctx *c = ctx_of(be);
    /* the per-expert row counts decide the GEMMs: read them back (E + 1 int32), as matmul_grouped */
    int32_t *off = (int32_t *)malloc((size_t)(E + 1) * sizeof *off);
    if (!off)
        return fail(be, HB_ERR_NOMEM, "%s: matmul_grouped_backward: cannot allocate %lld offsets", HB_GPU_NAME,
                    (long long)(E + 1));
    cudaError_t ce = cudaMemcpyAsync(off, a->offsets, (size_t)(E + 1) * sizeof *off, cudaMemcpyDeviceToHost, c->stream);
    if (ce == cudaSuccess) ce = cudaStreamSynchronize(c->stream);
    if (ce != cudaSuccess) {
        free(off);
        return fail_rt(be, ce, "matmul_grouped_backward: reading the expert offsets", __FILE__, __LINE__);
    }
    hb_status st = HB_OK;
    if (off[0] < 0 || off[E] > R)
        st = fail(be, HB_ERR_INPUT, "%s: matmul_grouped_backward: offsets 0 .. %lld outside %lld rows", HB_GPU_NAME,
                  (long long)off[E], (long long)R);
    for (int64_t e = 0; e < E && st == HB_OK; e++) {
        const int64_t r0 = off[e], n = (int64_t)off[e + 1] - r0;
        if (n <= 0) continue; /* an expert without tokens: dw[e] += 0 */
        st = matmul_backward_raw(be, a->da.data ? (float *)a->da.data + r0 * K : NULL, K,
                                 a->dw.data ? (float *)a->dw.data + e * Nw * K : NULL, NULL,
                                 (const float *)a->dout.data + r0 * Nw, Nw, (const float *)a->a.data + r0 * K, K,
                                 (const char *)a->w.data + e * Nw * K * esz, a->w.dt, n, Nw, K, a->beta);
    }
    free(off);
    return st;
}

/* Block per slot s = n k + j: dy[rows[s]] = weights[s] dout[n], dweights[s] = dout[n] .
 * y[rows[s]] in double. */
__global__ void __launch_bounds__(128)
moe_combine_backward_kernel(float *dy, float *dweights, const float *dout, int64_t ldo, const float *y,
                            const int32_t *rows, const float *weights, int64_t S, int64_t C, int64_t k) {
    __shared__ double sh[ROW_T];
    for (int64_t s = blockIdx.x; s < S; s += gridDim.x) {
        const int64_t n = s / k, r = rows[s];
        const int ok = r >= 0 && r < S;
        const float w = weights[s], *g = dout + n * ldo, *yr = y + (ok ? r : 0) * C;
        float *dr = dy + (ok ? r : 0) * C;
        double part = 0.0;
        for (int64_t c = threadIdx.x; c < C; c += blockDim.x) {
            if (ok) dr[c] = w * g[c];
            part += (double)g[c] * yr[c];
        }
        const double dot = block_sum_d(part, sh);
        if (threadIdx.x == 0) dweights[s] = ok ? (float)dot : NAN;
    }
}

hb_status op_moe_combine_backward(hb_backend *be, const hb_moe_combine_backward_args *a) {
    const int64_t N = hb_tensor_rows(&a->dout), C = hb_tensor_cols(&a->dout), k = a->top_k;
    if (N <= 0 || C <= 0 || k <= 0) return HB_OK;
    GPU_ENTER(be);
    gpu_ctx *c = ctx_of(be);
    moe_combine_backward_kernel<<<rows_grid_tr(N * k), ROW_T, 0, c->stream>>>(
        (float *)a->dy.data, a->dweights, (const float *)a->dout.data, hb_tensor_ld(&a->dout),
        (const float *)a->y.data, a->rows, a->weights, N * k, C, k);
    LAUNCH_CHECK(be, "moe_combine_backward");
    return HB_OK;
}

} // namespace HB_GPU_NS
