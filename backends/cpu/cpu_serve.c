/* cpu_serve.c - the serving ops of the CPU reference backend (ops.h): varlen causal attention
 * over a paged KV cache (attention_paged), the continuous batch of the serve workload. The
 * arithmetic is hb_cpu_attention's, operation for operation, so a sequence whose cache sits in
 * blocks gives the bits the contiguous cache gives (tests/test_serve.c checks it). */
#include "cpu_backend.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cpu_kv.h" // round_to, kv_dot, kv_axpy (shared with cpu_ops.c attention)

hb_status hb_cpu_attention_paged(hb_backend *be, const hb_attention_paged_args *a) {
    const hb_dtype kvt = a->k_cache.dt;
    const int64_t n_blocks = a->k_cache.ne[0], bs = a->k_cache.ne[1], Hkv = a->k_cache.ne[2], D = a->k_cache.ne[3];
    const int64_t N = hb_tensor_rows(&a->q), Hq = hb_tensor_cols(&a->q) / D, mb = a->max_blocks;
    const int64_t ldq = hb_tensor_ld(&a->q), ldo = hb_tensor_ld(&a->out);
    if (kvt != HB_F32 && kvt != HB_BF16 && kvt != HB_F16 && !hb_dtype_is_fp8(kvt))
        return hb_cpu_fail(be, HB_ERR_UNSUPPORTED, "cpu: attention_paged: %s cache (f32, bf16, f16, fp8)", hb_dtype_name(kvt));
    /* fp8: the static per-tensor scales, applied to the f32 sums as attention does (1: exact) */
    const float sk = hb_dtype_is_fp8(kvt) ? a->k_cache.q.scale[0] : 1.0f;
    const float sv = hb_dtype_is_fp8(kvt) ? a->v_cache.q.scale[0] : 1.0f;
    /* the integer operands are host memory here: every index checked before any is used */
    int64_t max_pos = 0;
    for (int64_t i = 0; i < N; i++) {
        const int64_t s = a->seq[i], p = a->pos[i];
        if (s < 0 || s >= a->n_seqs || p < 0 || p / bs >= mb)
            return hb_cpu_fail(be, HB_ERR_INPUT, "cpu: attention_paged: row %lld: sequence %lld position %lld outside "
                               "%lld sequences of %lld blocks of %lld", (long long)i, (long long)s, (long long)p,
                               (long long)a->n_seqs, (long long)mb, (long long)bs);
        for (int64_t j = 0; j <= p / bs; j++) {
            const int64_t b = a->block_table[s * mb + j];
            if (b < 0 || b >= n_blocks)
                return hb_cpu_fail(be, HB_ERR_INPUT, "cpu: attention_paged: sequence %lld block %lld is %lld, outside "
                                   "0..%lld", (long long)s, (long long)j, (long long)b, (long long)(n_blocks - 1));
        }
        if (p > max_pos) max_pos = p;
    }
    if (N <= 0) return HB_OK;
    const int64_t group = Hq / Hkv, kvw = Hkv * D, bw = bs * kvw; /* elements per block */
    const float scale = (float)(1.0 / sqrt((double)D));
    const float *q = a->q.data;
    float *out = a->out.data;
    const void *k_cache = a->k_cache.data, *v_cache = a->v_cache.data;
    int nomem = 0;
#pragma omp parallel
    {
        float *p = malloc((size_t)(max_pos + 1 + D) * sizeof(float)); /* scores (L), then q in kvt (D) */
        if (!p) {
#pragma omp atomic write
            nomem = 1;
        }
#pragma omp for collapse(2) schedule(static)
        for (int64_t i = 0; i < N; i++)
            for (int64_t h = 0; h < Hq; h++) {
                if (!p) continue;
                const int64_t L = (int64_t)a->pos[i] + 1;
                const int32_t *tab = a->block_table + (int64_t)a->seq[i] * mb;
                const float *qv = q + i * ldq + h * D;
                if (kvt != HB_F32) {
                    float *qr = p + max_pos + 1;
                    for (int64_t d = 0; d < D; d++) qr[d] = round_to(kvt, qv[d]);
                    qv = qr;
                }
                const int64_t hoff = (h / group) * D;
                float mx = -INFINITY;
                for (int64_t j = 0; j < L; j++) {
                    const int64_t off = (int64_t)tab[j / bs] * bw + (j % bs) * kvw + hoff;
                    const float s = kv_dot(qv, k_cache, kvt, off, D) * sk * scale;
                    p[j] = s;
                    if (s > mx) mx = s;
                }
                float sum = 0.0f;
                for (int64_t j = 0; j < L; j++) {
                    p[j] = expf(p[j] - mx);
                    sum += p[j];
                }
                const float inv = 1.0f / sum;
                float *o = out + i * ldo + h * D;
                for (int64_t d = 0; d < D; d++) o[d] = 0.0f;
                for (int64_t j = 0; j < L; j++) {
                    const int64_t off = (int64_t)tab[j / bs] * bw + (j % bs) * kvw + hoff;
                    if (kvt == HB_F32) kv_axpy(o, p[j] * inv, v_cache, kvt, off, D);
                    else kv_axpy(o, round_to(kvt, p[j]), v_cache, kvt, off, D);
                }
                if (kvt != HB_F32)
                    for (int64_t d = 0; d < D; d++) o[d] *= sv * inv; /* as attention */
            }
        free(p);
    }
    if (nomem) return hb_cpu_fail(be, HB_ERR_NOMEM, "cpu: attention_paged: cannot allocate scores");
    return HB_OK;
}
