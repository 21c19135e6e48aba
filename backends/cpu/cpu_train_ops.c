/* cpu_train_ops.c - the training ops of the CPU reference backend (ops.h, "training"): the
 * backward of every forward op a dense model uses, the fused softmax + cross-entropy and the
 * AdamW update. llm.c's train_gpt2.c <layer>_backward functions are the model; the GEMMs of the
 * matmul backward go to OpenBLAS.
 *
 * Every reduction whose order could depend on the thread count is split so that it does not:
 * parameter gradients of norms, biases and embeddings are summed over rows by the thread that
 * owns a range of columns, so the same inputs give bit-identical gradients run to run. */
#include "cpu_backend.h"

#include <cblas.h>  // defines: cblas_sgemm
#include <math.h>
#include <omp.h>    // defines: omp_get_thread_num, omp_get_num_threads
#include <stdlib.h>
#include <string.h>

/* Below this many elements an OpenMP region costs more than it saves. */
#define PAR_MIN 32768

/* The column range [c0, c1) of thread `tid` of `nt` over C columns. */
static void col_range(int64_t C, int tid, int nt, int64_t *c0, int64_t *c1) {
    *c0 = C * tid / nt;
    *c1 = C * (tid + 1) / nt;
}

/* ---- embedding ---- */

hb_status hb_cpu_embedding_backward(hb_backend *be, const hb_embedding_backward_args *a) {
    const int64_t N = a->B * a->T, C = hb_tensor_cols(&a->dwte), V = hb_tensor_rows(&a->dwte);
    const int64_t ldd = hb_tensor_ld(&a->dout);
    const float *dout = a->dout.data;
    float *dwte = a->dwte.data, *dwpe = a->dwpe.data;
    for (int64_t i = 0; i < N; i++)
        if (a->tokens[i] < 0 || a->tokens[i] >= V)
            return hb_cpu_fail(be, HB_ERR_INPUT, "cpu: embedding_backward: token %d at %lld outside the vocabulary of %lld",
                               a->tokens[i], (long long)i, (long long)V);
    // dwte[token] += dout row, dwpe[pos0 + t] += dout row; each thread owns a column range,
    // so repeated tokens add up in row order whatever the thread count.
#pragma omp parallel if (N * C > PAR_MIN)
    {
        int64_t c0, c1;
        col_range(C, omp_get_thread_num(), omp_get_num_threads(), &c0, &c1);
        for (int64_t i = 0; i < N; i++) {
            const float *d = dout + i * ldd;
            float *w = dwte + (int64_t)a->tokens[i] * C;
            for (int64_t c = c0; c < c1; c++) w[c] += d[c];
            if (dwpe) {
                float *p = dwpe + (a->pos0 + i % a->T) * C;
                for (int64_t c = c0; c < c1; c++) p[c] += d[c];
            }
        }
    }
    return HB_OK;
}

/* ---- norms ---- */

/* Shared by both norms: per row r, xhat = (x - mean) * rstd (mean 0 for rmsnorm, rstd from the
 * mean square), then
 *   din = beta * din + rstd * (g - mean(g) - xhat * mean(g * xhat)),  g = dout * w
 * (rmsnorm: without the mean(g) term), and, per column, dw += sum_r dout * xhat,
 * db += sum_r dout. */
static hb_status norm_backward(hb_backend *be, const char *op, int layer, const hb_tensor *din_t,
                               const hb_tensor *dw_t, const hb_tensor *db_t, const hb_tensor *dout_t,
                               const hb_tensor *in_t, const hb_tensor *w_t, float eps, float beta) {
    // rows of 3-D views (the heads inside qkv rows: Qwen3's q/k norms) placed as the forward
    // places them (hb_tensor_row_off)
    const int64_t N = hb_tensor_rows(in_t), C = hb_tensor_cols(in_t);
    const float *in = in_t->data, *dout = dout_t->data, *w = w_t->data;
    float *din = din_t->data, *dw = dw_t->data, *db = db_t ? db_t->data : NULL;
    if (C <= 0 || N <= 0) return HB_OK;
    float *stat = malloc((size_t)(2 * N) * sizeof *stat); // (N) mean, (N) rstd
    if (!stat) return hb_cpu_fail(be, HB_ERR_NOMEM, "cpu: %s: cannot allocate row statistics", op);
    float *mean = stat, *rstd = stat + N;
#pragma omp parallel for schedule(static) if (N * C > PAR_MIN)
    for (int64_t r = 0; r < N; r++) {
        const float *x = in + hb_tensor_row_off(in_t, r), *d = dout + hb_tensor_row_off(dout_t, r);
        float *o = din + hb_tensor_row_off(din_t, r);
        // the statistics exactly as the forward computes them (cpu_ops.c)
        double sum = 0.0, ss = 0.0;
        float fmean = 0.0f, rs;
        if (layer) {
            for (int64_t c = 0; c < C; c++) sum += x[c];
            const double mu = sum / (double)C;
            for (int64_t c = 0; c < C; c++) ss += ((double)x[c] - mu) * ((double)x[c] - mu);
            fmean = (float)mu;
        } else {
            for (int64_t c = 0; c < C; c++) ss += (double)x[c] * x[c];
        }
        rs = (float)(1.0 / sqrt(ss / (double)C + (double)eps));
        mean[r] = fmean;
        rstd[r] = rs;
        double g_mean = 0.0, gx_mean = 0.0;
        for (int64_t c = 0; c < C; c++) {
            const double g = (double)d[c] * w[c], xh = ((double)x[c] - fmean) * rs;
            g_mean += g;
            gx_mean += g * xh;
        }
        g_mean = layer ? g_mean / (double)C : 0.0;
        gx_mean /= (double)C;
        for (int64_t c = 0; c < C; c++) {
            const double xh = ((double)x[c] - fmean) * rs;
            const float v = (float)(rs * ((double)d[c] * w[c] - g_mean - xh * gx_mean));
            o[c] = beta == 0.0f ? v : beta * o[c] + v;
        }
    }
    // parameter gradients: each thread sums its columns over the rows, in row order
#pragma omp parallel if (N * C > PAR_MIN)
    {
        int64_t c0, c1;
        col_range(C, omp_get_thread_num(), omp_get_num_threads(), &c0, &c1);
        for (int64_t r = 0; r < N; r++) {
            const float *x = in + hb_tensor_row_off(in_t, r), *d = dout + hb_tensor_row_off(dout_t, r);
            for (int64_t c = c0; c < c1; c++) {
                dw[c] += d[c] * ((x[c] - mean[r]) * rstd[r]);
                if (db) db[c] += d[c];
            }
        }
    }
    free(stat);
    return HB_OK;
}

hb_status hb_cpu_rmsnorm_backward(hb_backend *be, const hb_rmsnorm_backward_args *a) {
    return norm_backward(be, "rmsnorm_backward", 0, &a->din, &a->dw, NULL, &a->dout, &a->in, &a->w, a->eps, a->beta);
}

hb_status hb_cpu_layernorm_backward(hb_backend *be, const hb_layernorm_backward_args *a) {
    return norm_backward(be, "layernorm_backward", 1, &a->din, &a->dw, &a->db, &a->dout, &a->in, &a->w, a->eps,
                         a->beta);
}

/* ---- matmul ---- */

hb_status hb_cpu_matmul_backward(hb_backend *be, const hb_matmul_backward_args *x) {
    const int64_t M = hb_tensor_rows(&x->a), K = hb_tensor_cols(&x->a), N = hb_tensor_rows(&x->w);
    const int64_t ldd = hb_tensor_ld(&x->dout), lda = hb_tensor_ld(&x->a);
    const float *dout = x->dout.data, *a = x->a.data;
    if (M <= 0 || N <= 0 || K <= 0) return HB_OK;
    if (x->da.data) {
        // da (M, K) = beta * da + dout (M, N) @ w (N, K); a bf16/f16 w widened once
        const float *w = x->w.data;
        if (x->w.dt != HB_F32) {
            float *wf;
            HB_TRY(hb_cpu_scratch(be, 0, (size_t)(N * K) * sizeof(float), &wf));
            const void *src = x->w.data;
            const hb_dtype dt = x->w.dt;
#pragma omp parallel for schedule(static) if (N * K > PAR_MIN)
            for (int64_t i = 0; i < N * K; i++) wf[i] = hb_load_f32(src, dt, i);
            w = wf;
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)M, (int)K, (int)N, 1.0f, dout, (int)ldd, w,
                    (int)K, x->beta, x->da.data, (int)hb_tensor_ld(&x->da));
    }
    if (x->dw.data) // dw (N, K) += dout^T (N, M) @ a (M, K)
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)N, (int)K, (int)M, 1.0f, dout, (int)ldd, a,
                    (int)lda, 1.0f, x->dw.data, (int)K);
    if (x->dbias.data) {
        float *db = x->dbias.data;
#pragma omp parallel if (M * N > PAR_MIN)
        {
            int64_t c0, c1;
            col_range(N, omp_get_thread_num(), omp_get_num_threads(), &c0, &c1);
            for (int64_t r = 0; r < M; r++)
                for (int64_t c = c0; c < c1; c++) db[c] += dout[r * ldd + c];
        }
    }
    return HB_OK;
}

/* ---- rope ---- */

hb_status hb_cpu_rope_backward(hb_backend *be, const hb_rope_backward_args *a) {
    float *x = a->x.data;
    const int64_t ldx = hb_tensor_ld(&a->x), B = a->B, T = a->T, pos0 = a->pos0, H = a->H;
    const int64_t D = hb_tensor_cols(&a->x) / H;
    if (!(a->theta > 0.0f) || pos0 < 0)
        return hb_cpu_fail(be, HB_ERR_INPUT, "cpu: rope_backward: theta %g pos0 %lld", (double)a->theta, (long long)pos0);
    if (B <= 0 || T <= 0) return HB_OK;
    // forward (x0, x1) -> (x0 c - x1 s, x0 s + x1 c); its transpose maps (d0, d1) to
    // (d0 c + d1 s, -d0 s + d1 c): the rotation by the opposite angle (cpu_ops.c)
    return hb_cpu_rope_rotate(x, ldx, B, T, H, D, pos0, a->theta, a->scaling, -1.0f)
               ? HB_OK
               : hb_cpu_fail(be, HB_ERR_NOMEM, "cpu: rope_backward: cannot allocate the table");
}

/* ---- attention ---- */

static float dot(const float *a, const float *b, int64_t n) {
    float s = 0.0f;
    for (int64_t i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

/* p[0..t] = softmax over keys 0..t of query qv's scores (scaled); f32 as the forward op. */
static void causal_softmax(float *p, const float *qv, const float *k, int64_t ldk, int64_t t, int64_t D,
                           float scale) {
    float mx = -INFINITY;
    for (int64_t j = 0; j <= t; j++) {
        p[j] = dot(qv, k + j * ldk, D) * scale;
        if (p[j] > mx) mx = p[j];
    }
    float sum = 0.0f;
    for (int64_t j = 0; j <= t; j++) {
        p[j] = expf(p[j] - mx);
        sum += p[j];
    }
    const float inv = 1.0f / sum;
    for (int64_t j = 0; j <= t; j++) p[j] *= inv;
}

hb_status hb_cpu_attention_train(hb_backend *be, const hb_attention_train_args *a) {
    const int64_t B = a->B, T = a->T, Hq = a->Hq, Hkv = a->Hkv, D = hb_tensor_cols(&a->q) / Hq;
    const int64_t ldq = hb_tensor_ld(&a->q), ldk = hb_tensor_ld(&a->k), ldv = hb_tensor_ld(&a->v);
    const int64_t ldo = hb_tensor_ld(&a->out), group = Hq / Hkv;
    const float *q = a->q.data, *k = a->k.data, *v = a->v.data, scale = (float)(1.0 / sqrt((double)D));
    float *out = a->out.data;
    if (B <= 0 || T <= 0) return HB_OK;
    int nomem = 0;
#pragma omp parallel
    {
        float *p = malloc((size_t)T * sizeof *p);
        if (!p) {
#pragma omp atomic write
            nomem = 1;
        }
#pragma omp for collapse(3) schedule(static)
        for (int64_t b = 0; b < B; b++)
            for (int64_t t = 0; t < T; t++)
                for (int64_t h = 0; h < Hq; h++) {
                    if (!p) continue;
                    const int64_t kh = (h / group) * D;
                    const float *kb = k + b * T * ldk + kh, *vb = v + b * T * ldv + kh; // key 0 of (b, kv head)
                    causal_softmax(p, q + (b * T + t) * ldq + h * D, kb, ldk, t, D, scale);
                    float *o = out + (b * T + t) * ldo + h * D; // (D)
                    for (int64_t d = 0; d < D; d++) o[d] = 0.0f;
                    for (int64_t j = 0; j <= t; j++)
                        for (int64_t d = 0; d < D; d++) o[d] += p[j] * vb[j * ldv + d];
                }
        free(p);
    }
    if (nomem) return hb_cpu_fail(be, HB_ERR_NOMEM, "cpu: attention_train: cannot allocate scores");
    return HB_OK;
}

/* One task per (sequence, kv head): it owns that slice of dk and dv and the dq rows of the
 * query heads of its group, so nothing is shared between threads. For query t of head h,
 * with p its softmax row:
 *   dv_j += p_j dout_t;  dp_j = dout_t . v_j;  ds_j = p_j (dp_j - sum_i p_i dp_i)
 *   dq_t = scale sum_j ds_j k_j;  dk_j += scale ds_j q_t */
hb_status hb_cpu_attention_backward(hb_backend *be, const hb_attention_backward_args *a) {
    const int64_t B = a->B, T = a->T, Hq = a->Hq, Hkv = a->Hkv, D = hb_tensor_cols(&a->q) / Hq;
    const int64_t ldq = hb_tensor_ld(&a->q), ldk = hb_tensor_ld(&a->k), ldv = hb_tensor_ld(&a->v);
    const int64_t ldo = hb_tensor_ld(&a->dout), lddq = hb_tensor_ld(&a->dq), lddk = hb_tensor_ld(&a->dk);
    const int64_t lddv = hb_tensor_ld(&a->dv), group = Hq / Hkv;
    const float *q = a->q.data, *k = a->k.data, *v = a->v.data, *dout = a->dout.data;
    float *dq = a->dq.data, *dk = a->dk.data, *dv = a->dv.data;
    const float scale = (float)(1.0 / sqrt((double)D));
    if (B <= 0 || T <= 0) return HB_OK;
    int nomem = 0;
#pragma omp parallel
    {
        float *p = malloc((size_t)(2 * T) * sizeof *p), *dp = p ? p + T : NULL;
        if (!p) {
#pragma omp atomic write
            nomem = 1;
        }
#pragma omp for collapse(2) schedule(dynamic)
        for (int64_t b = 0; b < B; b++)
            for (int64_t g = 0; g < Hkv; g++) {
                if (!p) continue;
                const float *kb = k + b * T * ldk + g * D, *vb = v + b * T * ldv + g * D;
                float *dkb = dk + b * T * lddk + g * D, *dvb = dv + b * T * lddv + g * D;
                for (int64_t j = 0; j < T; j++)
                    for (int64_t d = 0; d < D; d++) dkb[j * lddk + d] = dvb[j * lddv + d] = 0.0f;
                for (int64_t h = g * group; h < (g + 1) * group; h++)
                    for (int64_t t = 0; t < T; t++) {
                        const float *qv = q + (b * T + t) * ldq + h * D, *dov = dout + (b * T + t) * ldo + h * D;
                        float *dqv = dq + (b * T + t) * lddq + h * D;
                        causal_softmax(p, qv, kb, ldk, t, D, scale);
                        float pdp = 0.0f;
                        for (int64_t j = 0; j <= t; j++) {
                            dp[j] = dot(dov, vb + j * ldv, D);
                            pdp += p[j] * dp[j];
                            for (int64_t d = 0; d < D; d++) dvb[j * lddv + d] += p[j] * dov[d];
                        }
                        for (int64_t d = 0; d < D; d++) dqv[d] = 0.0f;
                        for (int64_t j = 0; j <= t; j++) {
                            const float ds = p[j] * (dp[j] - pdp) * scale;
                            for (int64_t d = 0; d < D; d++) {
                                dqv[d] += ds * kb[j * ldk + d];
                                dkb[j * lddk + d] += ds * qv[d];
                            }
                        }
                    }
            }
        free(p);
    }
    if (nomem) return hb_cpu_fail(be, HB_ERR_NOMEM, "cpu: attention_backward: cannot allocate scores");
    return HB_OK;
}

/* ---- element-wise ---- */

hb_status hb_cpu_swiglu_backward(hb_backend *be, const hb_swiglu_backward_args *a) {
    (void)be;
    const float *dout = a->dout.data, *in = a->in.data;
    float *din = a->din.data;
    const int64_t N = hb_tensor_rows(&a->dout), F = hb_tensor_cols(&a->dout);
    // out = silu(x) * g: dx = dout g sig(x) (1 + x (1 - sig(x))), dg = dout silu(x)
#pragma omp parallel for schedule(static) if (N * F > PAR_MIN)
    for (int64_t r = 0; r < N; r++) {
        const float *x = in + r * 2 * F, *g = x + F, *d = dout + r * F;
        float *dx = din + r * 2 * F, *dg = dx + F;
        for (int64_t f = 0; f < F; f++) {
            const float s = 1.0f / (1.0f + expf(-x[f]));
            dx[f] = d[f] * g[f] * s * (1.0f + x[f] * (1.0f - s));
            dg[f] = d[f] * x[f] * s;
        }
    }
    return HB_OK;
}

hb_status hb_cpu_gelu_backward(hb_backend *be, const hb_gelu_backward_args *a) {
    (void)be;
    const float *dout = a->dout.data, *in = a->in.data;
    float *din = a->din.data;
    const int64_t n = hb_tensor_numel(&a->in);
    const float c = 0.7978845608028654f; // sqrt(2 / pi)
#pragma omp parallel for schedule(static) if (n > PAR_MIN)
    for (int64_t i = 0; i < n; i++) {
        const float x = in[i], u = c * (x + 0.044715f * x * x * x), th = tanhf(u);
        const float sech2 = 1.0f - th * th;
        din[i] = dout[i] * (0.5f * (1.0f + th) + 0.5f * x * sech2 * c * (1.0f + 3.0f * 0.044715f * x * x));
    }
    return HB_OK;
}

/* ---- loss ---- */

hb_status hb_cpu_cross_entropy(hb_backend *be, const hb_cross_entropy_args *a) {
    const int64_t N = hb_tensor_rows(&a->logits), V = hb_tensor_cols(&a->logits);
    const int64_t ldl = hb_tensor_ld(&a->logits), ldd = a->dlogits.data ? hb_tensor_ld(&a->dlogits) : 0;
    const float *logits = a->logits.data;
    float *losses = a->losses.data, *dl = a->dlogits.data;
    for (int64_t r = 0; r < N; r++)
        if (a->targets[r] < 0 || a->targets[r] >= V)
            return hb_cpu_fail(be, HB_ERR_INPUT, "cpu: cross_entropy: target %d at %lld outside the vocabulary of %lld",
                               a->targets[r], (long long)r, (long long)V);
    // per row: max, sum of exp in double; loss = log(sum) + max - logit[target];
    // dlogits = dscale (p - onehot), written after the row is read (in place allowed)
#pragma omp parallel for schedule(static) if (N * V > PAR_MIN)
    for (int64_t r = 0; r < N; r++) {
        const float *l = logits + r * ldl;
        float mx = -INFINITY;
        for (int64_t j = 0; j < V; j++) mx = l[j] > mx ? l[j] : mx;
        double sum = 0.0;
        for (int64_t j = 0; j < V; j++) sum += exp((double)l[j] - mx);
        const int64_t tgt = a->targets[r];
        losses[r] = (float)(log(sum) + mx - l[tgt]);
        if (dl) {
            float *o = dl + r * ldd;
            const double inv = 1.0 / sum;
            for (int64_t j = 0; j < V; j++) {
                const float p = (float)(exp((double)l[j] - mx) * inv);
                o[j] = a->dscale * (p - (j == tgt ? 1.0f : 0.0f));
            }
        }
    }
    return HB_OK;
}

/* ---- optimizer ---- */

hb_status hb_cpu_adamw(hb_backend *be, const hb_adamw_args *a) {
    (void)be;
    const int64_t n = hb_tensor_numel(&a->param);
    float *restrict p = a->param.data, *restrict g = a->grad.data, *restrict m = a->m.data, *restrict v = a->v.data;
    void *lp = a->param_lp.data;
    const hb_dtype lpt = a->param_lp.dt;
    const float b1 = a->beta1, b2 = a->beta2, lr = a->lr, eps = a->eps, wd = a->weight_decay, gs = a->grad_scale;
    const float bc1 = (float)(1.0 - pow((double)b1, (double)a->t)), bc2 = (float)(1.0 - pow((double)b2, (double)a->t));
    const int zero_grad = a->zero_grad;
    // one pass over the four arrays (memory bound: 32 bytes read and written per parameter)
#pragma omp parallel for simd schedule(static) if (n > PAR_MIN)
    for (int64_t i = 0; i < n; i++) {
        const float gi = gs * g[i];
        const float mi = b1 * m[i] + (1.0f - b1) * gi, vi = b2 * v[i] + (1.0f - b2) * gi * gi;
        m[i] = mi;
        v[i] = vi;
        const float mhat = mi / bc1, vhat = vi / bc2;
        p[i] -= lr * (mhat / (sqrtf(vhat) + eps) + wd * p[i]);
        g[i] = zero_grad ? 0.0f : g[i];
    }
    if (lp) {
#pragma omp parallel for schedule(static) if (n > PAR_MIN)
        for (int64_t i = 0; i < n; i++) hb_store_f32(lp, lpt, i, p[i]);
    }
    return HB_OK;
}
