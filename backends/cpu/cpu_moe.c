/* cpu_moe.c - the Mixture-of-Experts ops of the CPU reference backend (ops.h): router,
 * token permutation, grouped GEMM (one OpenBLAS/GEMV matmul per expert) and weighted combine.
 * The specification the GPU versions are verified against. */
#include "cpu_backend.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Index of the largest v[i] over i < n with ok[i] (ties: the lowest index); -1 if none. */
static int64_t best_of(const float *v, const unsigned char *ok, int64_t n) {
    int64_t b = -1;
    for (int64_t i = 0; i < n; i++)
        if (ok[i] && (b < 0 || v[i] > v[b])) b = i;
    return b;
}

/* The router of one row: s (E) scores, c (E) choice values, ok (E) scratch. */
static void route_row(const hb_moe_route_args *a, const float *logits, int64_t E, int64_t r, float *s,
                      float *c, unsigned char *ok, int32_t *ids, float *w) {
    const int64_t k = a->top_k;
    if (a->kind == HB_ROUTER_SOFTMAX) {
        float mx = -INFINITY;
        for (int64_t e = 0; e < E; e++) mx = logits[e] > mx ? logits[e] : mx;
        double sum = 0.0;
        for (int64_t e = 0; e < E; e++) sum += (s[e] = expf(logits[e] - mx));
        const float inv = (float)(1.0 / sum);
        for (int64_t e = 0; e < E; e++) s[e] *= inv;
    } else {
        for (int64_t e = 0; e < E; e++) s[e] = 1.0f / (1.0f + expf(-logits[e]));
    }
    const float *bias = a->bias.data;
    for (int64_t e = 0; e < E; e++) {
        c[e] = bias ? s[e] + bias[e] : s[e];
        ok[e] = 1;
    }
    if (a->mode == HB_ROUTING_MODEL) {
        if (a->n_group > 1) {
            const int64_t G = a->n_group, per = E / G;
            float gs[256]; /* n_group <= 256 (checked) */
            unsigned char gok[256];
            for (int64_t g = 0; g < G; g++) {
                const float *cg = c + g * per;
                int64_t i1 = 0;
                for (int64_t i = 1; i < per; i++) if (cg[i] > cg[i1]) i1 = i;
                float second = -INFINITY;
                for (int64_t i = 0; i < per; i++) if (i != i1 && cg[i] > second) second = cg[i];
                gs[g] = per > 1 ? cg[i1] + second : cg[i1];
                gok[g] = 1;
            }
            unsigned char keep[256] = {0};
            for (int64_t t = 0; t < a->topk_group; t++) {
                const int64_t g = best_of(gs, gok, G);
                keep[g] = 1;
                gok[g] = 0;
            }
            for (int64_t e = 0; e < E; e++) ok[e] = keep[e / per];
        }
        for (int64_t j = 0; j < k; j++) {
            const int64_t e = best_of(c, ok, E);
            ids[j] = (int32_t)e;
            ok[e] = 0;
        }
    } else if (a->mode == HB_ROUTING_BALANCED) {
        for (int64_t j = 0; j < k; j++) ids[j] = (int32_t)((r * k + j) % E);
    } else { /* zipf: k distinct draws, popularity (e + 1)^-S over the experts not yet drawn */
        double total = 0.0;
        for (int64_t e = 0; e < E; e++) total += pow((double)(e + 1), -(double)a->zipf_s);
        for (int64_t j = 0; j < k; j++) {
            const double u = (double)hb_rng_unit(a->seed, (uint64_t)(r * k + j)) * total;
            double acc = 0.0;
            int64_t pick = -1, last = -1;
            for (int64_t e = 0; e < E; e++) {
                if (!ok[e]) continue;
                last = e;
                acc += pow((double)(e + 1), -(double)a->zipf_s);
                if (u < acc) { pick = e; break; }
            }
            if (pick < 0) pick = last; /* u at the top edge (rounding) */
            ids[j] = (int32_t)pick;
            ok[pick] = 0;
            total -= pow((double)(pick + 1), -(double)a->zipf_s);
        }
    }
    double sum = 0.0;
    for (int64_t j = 0; j < k; j++) sum += (w[j] = s[ids[j]]);
    const float inv = a->norm ? (float)(1.0 / (sum + 1e-20)) : 1.0f;
    for (int64_t j = 0; j < k; j++) w[j] = w[j] * inv * a->scale;
}

hb_status hb_cpu_moe_route(hb_backend *be, const hb_moe_route_args *a) {
    const int64_t N = hb_tensor_rows(&a->logits), E = hb_tensor_cols(&a->logits), ld = hb_tensor_ld(&a->logits);
    const float *logits = a->logits.data;
    int nomem = 0;
#pragma omp parallel reduction(| : nomem) if (N * E > 32768)
    {
        float *s = malloc((size_t)E * 2 * sizeof *s);
        unsigned char *ok = malloc((size_t)E);
        if (!s || !ok) nomem = 1;
        else {
#pragma omp for schedule(static)
            for (int64_t n = 0; n < N; n++)
                route_row(a, logits + n * ld, E, a->row0 + n, s, s + E, ok, a->ids + n * a->top_k,
                          a->weights + n * a->top_k);
        }
        free(s);
        free(ok);
    }
    if (nomem) return hb_cpu_fail(be, HB_ERR_NOMEM, "cpu: moe_route: cannot allocate scores");
    return HB_OK;
}

hb_status hb_cpu_moe_permute(hb_backend *be, const hb_moe_permute_args *a) {
    (void)be;
    const int64_t k = a->top_k, E = a->n_experts, N = hb_tensor_rows(&a->x), C = hb_tensor_cols(&a->x);
    const int64_t ldx = hb_tensor_ld(&a->x), S = N * k;
    int32_t *off = a->offsets;
    for (int64_t e = 0; e <= E; e++) off[e] = 0;
    for (int64_t s = 0; s < S; s++) off[a->ids[s] + 1]++;
    for (int64_t e = 0; e < E; e++) off[e + 1] += off[e];
    /* stable: slots in order, each to the next free row of its expert; counts via offsets */
    int32_t *next = malloc((size_t)(E > 0 ? E : 1) * sizeof *next);
    if (!next) return hb_cpu_fail(be, HB_ERR_NOMEM, "cpu: moe_permute: cannot allocate");
    memcpy(next, off, (size_t)E * sizeof *next);
    for (int64_t s = 0; s < S; s++) a->rows[s] = next[a->ids[s]]++;
    free(next);
    const float *x = a->x.data;
    float *xp = a->xp.data;
#pragma omp parallel for schedule(static) if (S * C > 32768)
    for (int64_t s = 0; s < S; s++) memcpy(xp + (int64_t)a->rows[s] * C, x + (s / k) * ldx, (size_t)C * sizeof *x);
    return HB_OK;
}

hb_status hb_cpu_matmul_grouped(hb_backend *be, const hb_matmul_grouped_args *a) {
    const int64_t E = a->w.ne[0], Nw = a->w.ne[1], K = a->w.ne[2];
    const int64_t esz = hb_dtype_size(a->w.dt);
    int64_t bm = 1, bk = 1, srows = 0, scols = 0;
    if (a->w.q.kind == HB_QUANT_BLOCK) {
        hb_quant_block(&a->w, &bm, &bk);
        hb_quant_nscales(&a->w, &srows, &scols);
    }
    for (int64_t e = 0; e < E; e++) {
        const int64_t r0 = a->offsets[e], n = a->offsets[e + 1] - r0;
        if (n <= 0) continue;
        hb_tensor w = hb_t2((const char *)a->w.data + e * Nw * K * esz, a->w.dt, Nw, K, K);
        if (a->w.q.kind == HB_QUANT_TENSOR) w = hb_tq(w, HB_QUANT_TENSOR, 0, 0, a->w.q.scale);
        else if (a->w.q.kind == HB_QUANT_BLOCK)
            w = hb_tq(w, HB_QUANT_BLOCK, bm, bk, a->w.q.scale + e * (Nw / bm) * scols);
        const hb_matmul_args m = {
            .out = hb_t2((float *)a->out.data + r0 * Nw, HB_F32, n, Nw, Nw),
            .a = hb_t2((const float *)a->a.data + r0 * K, HB_F32, n, K, K),
            .w = w,
        };
        HB_TRY(hb_cpu_matmul(be, &m));
    }
    return HB_OK;
}

hb_status hb_cpu_moe_combine(hb_backend *be, const hb_moe_combine_args *a) {
    (void)be;
    const int64_t N = hb_tensor_rows(&a->out), C = hb_tensor_cols(&a->out), ldo = hb_tensor_ld(&a->out);
    const int64_t k = a->top_k;
    const float *y = a->y.data, beta = a->beta;
    float *out = a->out.data;
#pragma omp parallel for schedule(static) if (N * C * k > 32768)
    for (int64_t n = 0; n < N; n++) {
        float *o = out + n * ldo;
        for (int64_t c = 0; c < C; c++) {
            float acc = beta == 0.0f ? 0.0f : beta * o[c];
            for (int64_t j = 0; j < k; j++) acc += a->weights[n * k + j] * y[(int64_t)a->rows[n * k + j] * C + c];
            o[c] = acc;
        }
    }
    return HB_OK;
}

/* ---- multi-head latent attention (ops.h) ---- */

hb_status hb_cpu_mla_attention(hb_backend *be, const hb_mla_attention_args *a) {
    const int64_t B = a->B, T = a->T, pos0 = a->pos0, H = a->H, dn = a->dn, dr = a->dr, dv = a->dv;
    const int64_t S = a->cache.ne[1], Dl = a->cache.ne[2], dc = Dl - dr, ldq = hb_tensor_ld(&a->q);
    const int64_t ldl = hb_tensor_ld(&a->latent), ldo = hb_tensor_ld(&a->out), dkv = dn + dv;
    const hb_dtype ct = a->cache.dt;
    /* the new positions into the cache, rounded to its dtype */
    for (int64_t b = 0; b < B; b++)
        for (int64_t t = 0; t < T; t++)
            for (int64_t i = 0; i < Dl; i++)
                hb_store_f32(a->cache.data, ct, (b * S + pos0 + t) * Dl + i,
                             ((const float *)a->latent.data)[(b * T + t) * ldl + i]);
    /* wkv_b dequantised (convert's code x scale) */
    const int64_t nw = H * dkv * dc, L_all = pos0 + T;
    float *W = malloc((size_t)nw * sizeof *W), *lat = malloc((size_t)(L_all * Dl) * sizeof *lat);
    float *kv = a->absorb ? NULL : malloc((size_t)(L_all * H * dkv) * sizeof *kv);
    if (!W || !lat || (!a->absorb && !kv)) {
        free(W), free(lat), free(kv);
        return hb_cpu_fail(be, HB_ERR_NOMEM, "cpu: mla_attention: cannot allocate scratch");
    }
    const hb_convert_args cv = {.dst = hb_t2(W, HB_F32, H * dkv, dc, dc), .src = a->wkv_b};
    hb_status st = hb_cpu_convert(be, &cv);
    const float scale = 1.0f / sqrtf((float)(dn + dr));
    for (int64_t b = 0; st == HB_OK && b < B; b++) {
        for (int64_t i = 0; i < L_all * Dl; i++) lat[i] = hb_load_f32(a->cache.data, ct, b * S * Dl + i);
        if (!a->absorb) { /* K_nope and V of every cached position: (L_all, H (dn + dv)) */
            const hb_matmul_args mm = {.out = hb_t2(kv, HB_F32, L_all, H * dkv, H * dkv),
                                       .a = hb_t2(lat, HB_F32, L_all, dc, Dl), .w = hb_t2(W, HB_F32, H * dkv, dc, dc)};
            st = hb_cpu_matmul(be, &mm);
            if (st != HB_OK) break;
        }
        int nomem = 0;
#pragma omp parallel reduction(| : nomem)
        {
            float *p = malloc((size_t)(L_all + 2 * dc) * sizeof *p), *ql = p ? p + L_all : NULL, *ol = ql ? ql + dc : NULL;
            if (!p) nomem = 1;
#pragma omp for collapse(2) schedule(static)
            for (int64_t t = 0; t < T; t++)
                for (int64_t h = 0; h < H; h++) {
                    if (!p) continue;
                    const float *q = (const float *)a->q.data + (b * T + t) * ldq;
                    const float *qn = q + h * dn, *qr = q + H * dn + h * dr;
                    const float *Wk = W + h * dkv * dc, *Wv = Wk + dn * dc;
                    const int64_t L = pos0 + t + 1;
                    if (a->absorb) /* q_lat = W_UK_h^T q_nope */
                        for (int64_t c = 0; c < dc; c++) {
                            float s = 0.0f;
                            for (int64_t i = 0; i < dn; i++) s += qn[i] * Wk[i * dc + c];
                            ql[c] = s;
                        }
                    float mx = -INFINITY;
                    for (int64_t s = 0; s < L; s++) {
                        const float *ls = lat + s * Dl;
                        float d = 0.0f;
                        if (a->absorb)
                            for (int64_t c = 0; c < dc; c++) d += ql[c] * ls[c];
                        else
                            for (int64_t i = 0; i < dn; i++) d += qn[i] * kv[s * H * dkv + h * dkv + i];
                        for (int64_t i = 0; i < dr; i++) d += qr[i] * ls[dc + i];
                        p[s] = d * scale;
                        if (p[s] > mx) mx = p[s];
                    }
                    float sum = 0.0f;
                    for (int64_t s = 0; s < L; s++) sum += (p[s] = expf(p[s] - mx));
                    const float inv = 1.0f / sum;
                    float *o = (float *)a->out.data + (b * T + t) * ldo + h * dv;
                    if (a->absorb) { /* out = W_UV_h sum_s p_s c_s */
                        for (int64_t c = 0; c < dc; c++) ol[c] = 0.0f;
                        for (int64_t s = 0; s < L; s++)
                            for (int64_t c = 0; c < dc; c++) ol[c] += p[s] * lat[s * Dl + c];
                        for (int64_t j = 0; j < dv; j++) {
                            float v = 0.0f;
                            for (int64_t c = 0; c < dc; c++) v += Wv[j * dc + c] * ol[c];
                            o[j] = v * inv;
                        }
                    } else {
                        for (int64_t j = 0; j < dv; j++) o[j] = 0.0f;
                        for (int64_t s = 0; s < L; s++)
                            for (int64_t j = 0; j < dv; j++) o[j] += p[s] * kv[s * H * dkv + h * dkv + dn + j];
                        for (int64_t j = 0; j < dv; j++) o[j] *= inv;
                    }
                }
            free(p);
        }
        if (nomem) st = hb_cpu_fail(be, HB_ERR_NOMEM, "cpu: mla_attention: cannot allocate scores");
    }
    free(W), free(lat), free(kv);
    return st;
}

/* ---- Mixture-of-Experts training (ops.h, HB_OP_LIST_TRAIN_MOE) ---- */

/* One row: the scores s (E, double) of logits, dweights -> ds (E, double) -> dlogits. */
static void route_backward_row(const hb_moe_route_backward_args *a, const float *logits, int64_t E,
                               const int32_t *ids, const float *dw, double *s, double *ds, float *dlogits) {
    const int64_t k = a->top_k;
    if (a->kind == HB_ROUTER_SOFTMAX) {
        double mx = -INFINITY, sum = 0.0;
        for (int64_t e = 0; e < E; e++) mx = logits[e] > mx ? logits[e] : mx;
        for (int64_t e = 0; e < E; e++) sum += (s[e] = exp((double)logits[e] - mx));
        for (int64_t e = 0; e < E; e++) s[e] /= sum;
    } else {
        for (int64_t e = 0; e < E; e++) s[e] = 1.0 / (1.0 + exp(-(double)logits[e]));
    }
    for (int64_t e = 0; e < E; e++) ds[e] = 0.0;
    /* w_j = scale s_{i_j} / Z, Z = sum_l s_{i_l} + 1e-20 (norm) or 1:
     * d w_j / d s_{i_m} = scale ([j = m] / Z - s_{i_j} / Z^2) with norm */
    double Z = 1.0, wsum = 0.0;
    if (a->norm) {
        Z = 1e-20;
        for (int64_t j = 0; j < k; j++) Z += s[ids[j]];
        for (int64_t j = 0; j < k; j++) wsum += (double)dw[j] * s[ids[j]];
    }
    for (int64_t j = 0; j < k; j++) {
        double g = (double)dw[j] / Z;
        if (a->norm) g -= wsum / (Z * Z);
        ds[ids[j]] += (double)a->scale * g;
    }
    if (a->kind == HB_ROUTER_SOFTMAX) { /* d logits_e = s_e (ds_e - sum_f s_f ds_f) */
        double dot = 0.0;
        for (int64_t e = 0; e < E; e++) dot += s[e] * ds[e];
        for (int64_t e = 0; e < E; e++) dlogits[e] = (float)(s[e] * (ds[e] - dot));
    } else { /* sigmoid' = s (1 - s) */
        for (int64_t e = 0; e < E; e++) dlogits[e] = (float)(ds[e] * s[e] * (1.0 - s[e]));
    }
}

hb_status hb_cpu_moe_route_backward(hb_backend *be, const hb_moe_route_backward_args *a) {
    const int64_t N = hb_tensor_rows(&a->logits), E = hb_tensor_cols(&a->logits), k = a->top_k;
    const int64_t ld = hb_tensor_ld(&a->logits), ldd = hb_tensor_ld(&a->dlogits);
    for (int64_t i = 0; i < N * k; i++)
        if (a->ids[i] < 0 || a->ids[i] >= E)
            return hb_cpu_fail(be, HB_ERR_INPUT, "cpu: moe_route_backward: id %d of slot %lld outside %lld experts",
                               (int)a->ids[i], (long long)i, (long long)E);
    int nomem = 0;
#pragma omp parallel reduction(| : nomem) if (N * E > 32768)
    {
        double *s = malloc((size_t)E * 2 * sizeof *s);
        if (!s) nomem = 1;
        else {
#pragma omp for schedule(static)
            for (int64_t n = 0; n < N; n++)
                route_backward_row(a, (const float *)a->logits.data + n * ld, E, a->ids + n * k, a->dweights + n * k, s,
                                   s + E, (float *)a->dlogits.data + n * ldd);
        }
        free(s);
    }
    if (nomem) return hb_cpu_fail(be, HB_ERR_NOMEM, "cpu: moe_route_backward: cannot allocate scores");
    return HB_OK;
}

hb_status hb_cpu_moe_permute_backward(hb_backend *be, const hb_moe_permute_backward_args *a) {
    const int64_t N = hb_tensor_rows(&a->dx), C = hb_tensor_cols(&a->dx), ld = hb_tensor_ld(&a->dx), k = a->top_k;
    for (int64_t i = 0; i < N * k; i++)
        if (a->rows[i] < 0 || a->rows[i] >= N * k)
            return hb_cpu_fail(be, HB_ERR_INPUT, "cpu: moe_permute_backward: row %d of slot %lld outside %lld rows",
                               (int)a->rows[i], (long long)i, (long long)(N * k));
    const float *dxp = a->dxp.data, beta = a->beta;
    float *dx = a->dx.data;
#pragma omp parallel for schedule(static) if (N * C * k > 32768)
    for (int64_t n = 0; n < N; n++) {
        float *o = dx + n * ld;
        for (int64_t c = 0; c < C; c++) {
            float acc = beta == 0.0f ? 0.0f : beta * o[c];
            for (int64_t j = 0; j < k; j++) acc += dxp[(int64_t)a->rows[n * k + j] * C + c];
            o[c] = acc;
        }
    }
    return HB_OK;
}

hb_status hb_cpu_matmul_grouped_backward(hb_backend *be, const hb_matmul_grouped_backward_args *a) {
    const int64_t E = a->w.ne[0], Nw = a->w.ne[1], K = a->w.ne[2], R = hb_tensor_rows(&a->a);
    const int64_t esz = hb_dtype_size(a->w.dt);
    if (a->offsets[0] < 0 || a->offsets[E] > R)
        return hb_cpu_fail(be, HB_ERR_INPUT, "cpu: matmul_grouped_backward: offsets 0 .. %lld outside %lld rows",
                           (long long)a->offsets[E], (long long)R);
    for (int64_t e = 0; e < E; e++) {
        const int64_t r0 = a->offsets[e], n = a->offsets[e + 1] - r0;
        if (n <= 0) continue; /* an expert without tokens: dw[e] += 0 */
        /* each expert is matmul_backward of its matrix on its rows (OpenBLAS) */
        const hb_matmul_backward_args m = {
            .da = a->da.data ? hb_t2((float *)a->da.data + r0 * K, HB_F32, n, K, K) : (hb_tensor){0},
            .dw = a->dw.data ? hb_t2((float *)a->dw.data + e * Nw * K, HB_F32, Nw, K, K) : (hb_tensor){0},
            .dout = hb_t2((const float *)a->dout.data + r0 * Nw, HB_F32, n, Nw, Nw),
            .a = hb_t2((const float *)a->a.data + r0 * K, HB_F32, n, K, K),
            .w = hb_t2((const char *)a->w.data + e * Nw * K * esz, a->w.dt, Nw, K, K),
            .beta = a->beta,
        };
        HB_TRY(hb_cpu_matmul_backward(be, &m));
    }
    return HB_OK;
}

hb_status hb_cpu_moe_combine_backward(hb_backend *be, const hb_moe_combine_backward_args *a) {
    const int64_t N = hb_tensor_rows(&a->dout), C = hb_tensor_cols(&a->dout), ldo = hb_tensor_ld(&a->dout);
    const int64_t k = a->top_k;
    for (int64_t i = 0; i < N * k; i++)
        if (a->rows[i] < 0 || a->rows[i] >= N * k)
            return hb_cpu_fail(be, HB_ERR_INPUT, "cpu: moe_combine_backward: row %d of slot %lld outside %lld rows",
                               (int)a->rows[i], (long long)i, (long long)(N * k));
    const float *dout = a->dout.data, *y = a->y.data;
    float *dy = a->dy.data;
#pragma omp parallel for schedule(static) if (N * C * k > 32768)
    for (int64_t n = 0; n < N; n++) {
        const float *g = dout + n * ldo;
        for (int64_t j = 0; j < k; j++) {
            const int64_t s = n * k + j, r = a->rows[s];
            const float w = a->weights[s];
            const float *yr = y + r * C;
            float *dr = dy + r * C;
            double dot = 0.0;
            for (int64_t c = 0; c < C; c++) {
                dr[c] = w * g[c];
                dot += (double)g[c] * yr[c];
            }
            a->dweights[s] = (float)dot;
        }
    }
    return HB_OK;
}
