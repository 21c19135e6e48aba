/* ops.c - the op catalogue's names and the argument checks every backend shares (ops.h), and
 * the tensor helpers (tensor.h).
 *
 * A check rejects what no backend could compute correctly (shapes that disagree, a dtype an
 * operand cannot have, a quantisation without scales); what a backend does not support (an
 * fp8 GEMM on a GPU without fp8 tensor cores) is the backend's to report. */
#include "backend.h"

#include <stdarg.h>
#include <stdio.h>

static const char *const op_names[HB_OP_COUNT] = {
#define HB_OP_NAME_(name, req) #name,
    HB_OP_LIST(HB_OP_NAME_)
#undef HB_OP_NAME_
};
static const int op_required[HB_OP_COUNT] = {
#define HB_OP_REQ_(name, req) req,
    HB_OP_LIST(HB_OP_REQ_)
#undef HB_OP_REQ_
};

const char *hb_op_name(hb_op_id id) { return id >= 0 && id < HB_OP_COUNT ? op_names[id] : "?"; }
int hb_op_required(hb_op_id id) { return id >= 0 && id < HB_OP_COUNT ? op_required[id] : 0; }

/* A NULL member of the ops table is reported, never faked (HB_OP calls this). */
hb_status hb_op_unsupported(hb_backend *be, const char *op) {
    if (be)
        snprintf(be->err, sizeof be->err, "op '%s' is not supported by backend '%s'",
                 op ? op : "?", be->info.backend[0] ? be->info.backend : "?");
    return HB_ERR_UNSUPPORTED;
}

/* ---- tensors ---- */
static const char *const qkind_names[HB_QUANT_COUNT] = {"none", "tensor", "row", "block"};
const char *hb_qkind_name(hb_qkind k) { return k >= 0 && k < HB_QUANT_COUNT ? qkind_names[k] : "?"; }

hb_tensor hb_tq(hb_tensor t, hb_qkind kind, int64_t bm, int64_t bk, float *scale) {
    t.q.kind = kind;
    t.q.bm = bm;
    t.q.bk = bk;
    t.q.scale = scale;
    return t;
}

int hb_tensor_contiguous(const hb_tensor *t) {
    int64_t want = 1;
    for (int i = t->ndim - 1; i >= 0; i--) {
        if (t->ne[i] > 1 && t->st[i] != want) return 0;
        want *= t->ne[i];
    }
    return 1;
}

void hb_quant_block(const hb_tensor *t, int64_t *bm, int64_t *bk) {
    int64_t rows = hb_tensor_rows(t), cols = hb_tensor_cols(t);
    switch (t->q.kind) {
    case HB_QUANT_TENSOR: *bm = rows; *bk = cols; break;
    case HB_QUANT_ROW: *bm = 1; *bk = cols; break;
    case HB_QUANT_BLOCK: *bm = t->q.bm; *bk = t->q.bk; break;
    default: *bm = rows; *bk = cols; break;
    }
    if (*bm < 1) *bm = 1;
    if (*bk < 1) *bk = 1;
}

int64_t hb_quant_nscales(const hb_tensor *t, int64_t *srows, int64_t *scols) {
    int64_t r = 0, c = 0;
    if (t->q.kind != HB_QUANT_NONE) {
        int64_t bm, bk;
        hb_quant_block(t, &bm, &bk);
        r = (hb_tensor_rows(t) + bm - 1) / bm;
        c = (hb_tensor_cols(t) + bk - 1) / bk;
    }
    if (srows) *srows = r;
    if (scols) *scols = c;
    return r * c;
}

/* ---- checks ---- */
/* HB_TRY without its trace: a failed check is the caller's input error, not a fault. */
#define TRY(expr)                           \
    do {                                    \
        hb_status try_s_ = (expr);          \
        if (try_s_ != HB_OK) return try_s_; \
    } while (0)

__attribute__((format(printf, 3, 4))) static hb_status bad(hb_backend *be, const char *op,
                                                           const char *fmt, ...) {
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(be->err, sizeof be->err, "%s: %s", op, msg);
    return HB_ERR_INPUT;
}

static int is_fp8(hb_dtype dt) { return dt == HB_FP8_E4M3 || dt == HB_FP8_E5M2; }

/* A well-formed tensor: data, dimensions, positive shape, row stride >= cols, a known
 * quantisation with scales (fp8 only; block sizes positive). `name` for messages. */
static hb_status tensor_ok(hb_backend *be, const char *op, const char *name, const hb_tensor *t) {
    if (!t->data) return bad(be, op, "%s: no data", name);
    if (t->dt < 0 || t->dt >= HB_DTYPE_COUNT) return bad(be, op, "%s: unknown dtype %d", name, (int)t->dt);
    if (t->ndim < 1 || t->ndim > HB_MAX_DIMS) return bad(be, op, "%s: %d dimensions", name, t->ndim);
    for (int i = 0; i < t->ndim; i++)
        if (t->ne[i] < 0) return bad(be, op, "%s: negative dimension %d", name, i);
    if (t->ndim >= 2 && hb_tensor_ld(t) < hb_tensor_cols(t))
        return bad(be, op, "%s: row stride %lld < %lld columns", name, (long long)hb_tensor_ld(t),
                   (long long)hb_tensor_cols(t));
    if (t->q.kind < 0 || t->q.kind >= HB_QUANT_COUNT) return bad(be, op, "%s: unknown quantisation", name);
    if (t->q.kind != HB_QUANT_NONE) {
        if (!is_fp8(t->dt))
            return bad(be, op, "%s: %s quantisation of a %s tensor (scales are for fp8)", name,
                       hb_qkind_name(t->q.kind), hb_dtype_name(t->dt));
        if (!t->q.scale) return bad(be, op, "%s: %s quantisation without scales", name, hb_qkind_name(t->q.kind));
        if (t->q.kind == HB_QUANT_BLOCK && (t->q.bm < 1 || t->q.bk < 1))
            return bad(be, op, "%s: block %lldx%lld", name, (long long)t->q.bm, (long long)t->q.bk);
    }
    return HB_OK;
}
static hb_status f32_ok(hb_backend *be, const char *op, const char *name, const hb_tensor *t) {
    TRY(tensor_ok(be, op, name, t));
    if (t->dt != HB_F32) return bad(be, op, "%s must be f32, not %s", name, hb_dtype_name(t->dt));
    return HB_OK;
}
static hb_status contiguous_ok(hb_backend *be, const char *op, const char *name, const hb_tensor *t) {
    if (!hb_tensor_contiguous(t)) return bad(be, op, "%s must be contiguous", name);
    return HB_OK;
}
static hb_status rows_cols(hb_backend *be, const char *op, const char *name, const hb_tensor *t,
                           int64_t rows, int64_t cols) {
    if (hb_tensor_rows(t) != rows || hb_tensor_cols(t) != cols)
        return bad(be, op, "%s is %lldx%lld, expected %lldx%lld", name, (long long)hb_tensor_rows(t),
                   (long long)hb_tensor_cols(t), (long long)rows, (long long)cols);
    return HB_OK;
}

hb_status hb_op_check_fill_random(hb_backend *be, const hb_fill_random_args *a) {
    TRY(tensor_ok(be, "fill_random", "dst", &a->dst));
    return contiguous_ok(be, "fill_random", "dst", &a->dst);
}

hb_status hb_op_check_fill_tokens(hb_backend *be, const hb_fill_tokens_args *a) {
    if (!a->dst || a->n < 0) return bad(be, "fill_tokens", "no destination or n < 0");
    if (a->vocab < 1 || a->vocab > INT32_MAX) return bad(be, "fill_tokens", "vocab %lld", (long long)a->vocab);
    return HB_OK;
}

hb_status hb_op_check_convert(hb_backend *be, const hb_convert_args *a) {
    TRY(tensor_ok(be, "convert", "dst", &a->dst));
    TRY(tensor_ok(be, "convert", "src", &a->src));
    TRY(contiguous_ok(be, "convert", "dst", &a->dst));
    TRY(contiguous_ok(be, "convert", "src", &a->src));
    if (hb_tensor_numel(&a->dst) != hb_tensor_numel(&a->src))
        return bad(be, "convert", "dst has %lld elements, src %lld", (long long)hb_tensor_numel(&a->dst),
                   (long long)hb_tensor_numel(&a->src));
    if (a->dst.q.kind != HB_QUANT_NONE && a->src.q.kind != HB_QUANT_NONE)
        return bad(be, "convert", "both operands quantised (dequantise first)");
    return HB_OK;
}

hb_status hb_op_check_embedding(hb_backend *be, const hb_embedding_args *a) {
    const char *op = "embedding";
    TRY(f32_ok(be, op, "out", &a->out));
    TRY(tensor_ok(be, op, "wte", &a->wte));
    if (!a->tokens) return bad(be, op, "no tokens");
    int64_t C = hb_tensor_cols(&a->wte);
    TRY(rows_cols(be, op, "out", &a->out, a->B * a->T, C));
    TRY(contiguous_ok(be, op, "wte", &a->wte));
    if (a->wte.q.kind != HB_QUANT_NONE) return bad(be, op, "quantised embedding tables are not supported");
    if (a->wpe.data) {
        TRY(tensor_ok(be, op, "wpe", &a->wpe));
        TRY(contiguous_ok(be, op, "wpe", &a->wpe));
        if (a->wpe.dt != a->wte.dt || hb_tensor_cols(&a->wpe) != C || a->wpe.q.kind != HB_QUANT_NONE)
            return bad(be, op, "wpe must be (max_seq, C) in wte's dtype");
        if (a->pos0 < 0 || a->pos0 + a->T > hb_tensor_rows(&a->wpe))
            return bad(be, op, "positions %lld..%lld outside the %lld learned positions",
                       (long long)a->pos0, (long long)(a->pos0 + a->T - 1), (long long)hb_tensor_rows(&a->wpe));
    }
    return HB_OK;
}

static hb_status norm_check(hb_backend *be, const char *op, const hb_tensor *out, const hb_tensor *in,
                            const hb_tensor *w, const hb_tensor *b) {
    TRY(f32_ok(be, op, "out", out));
    TRY(f32_ok(be, op, "in", in));
    TRY(f32_ok(be, op, "w", w));
    int64_t N = hb_tensor_rows(in), C = hb_tensor_cols(in);
    TRY(rows_cols(be, op, "out", out, N, C));
    if (hb_tensor_numel(w) != C) return bad(be, op, "w has %lld elements, expected %lld", (long long)hb_tensor_numel(w), (long long)C);
    if (b) {
        TRY(f32_ok(be, op, "b", b));
        if (hb_tensor_numel(b) != C) return bad(be, op, "b has %lld elements", (long long)hb_tensor_numel(b));
    }
    return HB_OK;
}
hb_status hb_op_check_rmsnorm(hb_backend *be, const hb_rmsnorm_args *a) {
    return norm_check(be, "rmsnorm", &a->out, &a->in, &a->w, NULL);
}
hb_status hb_op_check_layernorm(hb_backend *be, const hb_layernorm_args *a) {
    return norm_check(be, "layernorm", &a->out, &a->in, &a->w, &a->b);
}

hb_status hb_op_check_matmul(hb_backend *be, const hb_matmul_args *a) {
    const char *op = "matmul";
    TRY(f32_ok(be, op, "out", &a->out));
    TRY(tensor_ok(be, op, "a", &a->a));
    TRY(tensor_ok(be, op, "w", &a->w));
    TRY(contiguous_ok(be, op, "w", &a->w));
    const int64_t M = hb_tensor_rows(&a->a), K = hb_tensor_cols(&a->a), N = hb_tensor_rows(&a->w);
    if (hb_tensor_cols(&a->w) != K)
        return bad(be, op, "a is %lldx%lld but w is %lldx%lld", (long long)M, (long long)K, (long long)N,
                   (long long)hb_tensor_cols(&a->w));
    TRY(rows_cols(be, op, "out", &a->out, M, N));
    if (a->a.dt != HB_F32 && a->a.dt != a->w.dt)
        return bad(be, op, "a is %s: it must be f32 or w's dtype %s", hb_dtype_name(a->a.dt), hb_dtype_name(a->w.dt));
    if (a->a.dt == HB_F32 && a->a.q.kind != HB_QUANT_NONE) return bad(be, op, "a: f32 with scales");
    if (a->w.q.kind == HB_QUANT_ROW) return bad(be, op, "w: per-row scales are not a GEMM recipe here (tensor or block)");
    if (a->a.dt != HB_F32 && is_fp8(a->a.dt)) {
        /* both fp8: a's scales must pair with w's - per tensor with per tensor (or none), 1 x bk
         * tiles with bm x bk blocks */
        int ok = a->w.q.kind == HB_QUANT_BLOCK
                     ? (a->a.q.kind == HB_QUANT_BLOCK && a->a.q.bm == 1 && a->a.q.bk == a->w.q.bk)
                     : (a->a.q.kind == HB_QUANT_NONE || a->a.q.kind == HB_QUANT_TENSOR);
        if (!ok) return bad(be, op, "a's %s scales do not pair with w's %s scales", hb_qkind_name(a->a.q.kind),
                            hb_qkind_name(a->w.q.kind));
    }
    if (a->bias.data) {
        TRY(f32_ok(be, op, "bias", &a->bias));
        if (hb_tensor_numel(&a->bias) != N) return bad(be, op, "bias has %lld elements, expected %lld",
                                                       (long long)hb_tensor_numel(&a->bias), (long long)N);
    }
    return HB_OK;
}

hb_status hb_op_check_matmul_batched(hb_backend *be, const hb_matmul_batched_args *g) {
    if (g->m < 0 || g->n < 0 || g->k < 0 || g->batch < 0 || !g->a || !g->b || !g->c)
        return bad(be, "matmul_batched", "bad shape or operand");
    return HB_OK;
}

hb_status hb_op_check_rope(hb_backend *be, const hb_rope_args *a) {
    TRY(f32_ok(be, "rope", "x", &a->x));
    if (hb_tensor_rows(&a->x) != a->B * a->T) return bad(be, "rope", "x has %lld rows, expected B*T", (long long)hb_tensor_rows(&a->x));
    if (a->H < 1 || hb_tensor_cols(&a->x) % a->H || (hb_tensor_cols(&a->x) / a->H) % 2)
        return bad(be, "rope", "%lld columns are not %lld heads of an even width", (long long)hb_tensor_cols(&a->x), (long long)a->H);
    return HB_OK;
}

/* Caches (B, S, Hkv, D): contiguous, f32/bf16/f16 or fp8 with a per-tensor scale. */
static hb_status cache_ok(hb_backend *be, const char *op, const char *name, const hb_tensor *c) {
    TRY(tensor_ok(be, op, name, c));
    if (c->ndim != 4 || !hb_tensor_contiguous(c)) return bad(be, op, "%s must be a contiguous (B, S, Hkv, D) tensor", name);
    if (is_fp8(c->dt) ? c->q.kind != HB_QUANT_TENSOR : c->q.kind != HB_QUANT_NONE)
        return bad(be, op, "%s: a %s cache takes %s scales", name, hb_dtype_name(c->dt), is_fp8(c->dt) ? "per-tensor" : "no");
    return HB_OK;
}
static hb_status caches_ok(hb_backend *be, const char *op, const hb_tensor *k, const hb_tensor *v,
                           int64_t B, int64_t T, int64_t pos0) {
    TRY(cache_ok(be, op, "k_cache", k));
    TRY(cache_ok(be, op, "v_cache", v));
    for (int i = 0; i < 4; i++)
        if (k->ne[i] != v->ne[i]) return bad(be, op, "k and v caches differ in shape");
    if (k->dt != v->dt) return bad(be, op, "k and v caches differ in dtype");
    if (k->ne[0] != B) return bad(be, op, "caches hold %lld sequences, not B = %lld", (long long)k->ne[0], (long long)B);
    if (pos0 < 0 || T < 0 || pos0 + T > k->ne[1])
        return bad(be, op, "positions %lld..%lld outside a cache of %lld", (long long)pos0,
                   (long long)(pos0 + T - 1), (long long)k->ne[1]);
    return HB_OK;
}

hb_status hb_op_check_kv_store(hb_backend *be, const hb_kv_store_args *a) {
    const char *op = "kv_store";
    if (a->block_table) { /* paged: (n_blocks, block_size, Hkv, D), rows addressed by seq and pos */
        TRY(caches_ok(be, op, &a->k_cache, &a->v_cache, a->k_cache.ne[0], 0, 0));
        if (!a->seq || !a->pos || a->max_blocks < 1) return bad(be, op, "a paged store needs seq, pos and max_blocks >= 1");
    } else {
        TRY(caches_ok(be, op, &a->k_cache, &a->v_cache, a->B, a->T, a->pos0));
    }
    const int64_t w = a->k_cache.ne[2] * a->k_cache.ne[3];
    TRY(f32_ok(be, op, "k", &a->k));
    TRY(f32_ok(be, op, "v", &a->v));
    TRY(rows_cols(be, op, "k", &a->k, a->B * a->T, w));
    TRY(rows_cols(be, op, "v", &a->v, a->B * a->T, w));
    return HB_OK;
}

hb_status hb_op_check_attention(hb_backend *be, const hb_attention_args *a) {
    const char *op = "attention";
    TRY(caches_ok(be, op, &a->k_cache, &a->v_cache, a->B, a->T, a->pos0));
    TRY(f32_ok(be, op, "q", &a->q));
    TRY(f32_ok(be, op, "out", &a->out));
    const int64_t Hkv = a->k_cache.ne[2], D = a->k_cache.ne[3], N = a->B * a->T;
    if (hb_tensor_rows(&a->q) != N || D < 1 || hb_tensor_cols(&a->q) % D)
        return bad(be, op, "q is %lldx%lld, expected B*T rows of heads of %lld", (long long)hb_tensor_rows(&a->q),
                   (long long)hb_tensor_cols(&a->q), (long long)D);
    const int64_t Hq = hb_tensor_cols(&a->q) / D;
    if (Hkv < 1 || Hq % Hkv) return bad(be, op, "%lld query heads are not a multiple of %lld kv heads", (long long)Hq, (long long)Hkv);
    TRY(rows_cols(be, op, "out", &a->out, N, Hq * D));
    return HB_OK;
}

/* The paged cache's blocks are (n_blocks, block_size, Hkv, D): the cache checks with B = n_blocks
 * and no positions; the contents of block_table, seq and pos are device data the backend checks. */
hb_status hb_op_check_attention_paged(hb_backend *be, const hb_attention_paged_args *a) {
    const char *op = "attention_paged";
    TRY(caches_ok(be, op, &a->k_cache, &a->v_cache, a->k_cache.ne[0], 0, 0));
    TRY(f32_ok(be, op, "q", &a->q));
    TRY(f32_ok(be, op, "out", &a->out));
    const int64_t Hkv = a->k_cache.ne[2], D = a->k_cache.ne[3], N = hb_tensor_rows(&a->q);
    if (D < 1 || hb_tensor_cols(&a->q) % D) return bad(be, op, "q's %lld columns are not heads of %lld", (long long)hb_tensor_cols(&a->q), (long long)D);
    const int64_t Hq = hb_tensor_cols(&a->q) / D;
    if (Hkv < 1 || Hq % Hkv) return bad(be, op, "%lld query heads are not a multiple of %lld kv heads", (long long)Hq, (long long)Hkv);
    TRY(rows_cols(be, op, "out", &a->out, N, Hq * D));
    if (N > 0 && (!a->block_table || !a->seq || !a->pos || a->max_blocks < 1 || a->n_seqs < 1))
        return bad(be, op, "block_table, seq and pos are required (max_blocks, n_seqs >= 1)");
    return HB_OK;
}

static hb_status ew_check(hb_backend *be, const char *op, const hb_tensor *out, const hb_tensor *in,
                          int64_t in_factor) {
    TRY(f32_ok(be, op, "out", out));
    TRY(f32_ok(be, op, "in", in));
    TRY(contiguous_ok(be, op, "out", out));
    TRY(contiguous_ok(be, op, "in", in));
    if (hb_tensor_numel(in) != in_factor * hb_tensor_numel(out))
        return bad(be, op, "in has %lld elements, out %lld", (long long)hb_tensor_numel(in), (long long)hb_tensor_numel(out));
    return HB_OK;
}
hb_status hb_op_check_swiglu(hb_backend *be, const hb_swiglu_args *a) {
    TRY(ew_check(be, "swiglu", &a->out, &a->in, 2));
    if (hb_tensor_cols(&a->in) != 2 * hb_tensor_cols(&a->out)) return bad(be, "swiglu", "in must be (N, 2F) for out (N, F)");
    return HB_OK;
}
hb_status hb_op_check_gelu(hb_backend *be, const hb_gelu_args *a) { return ew_check(be, "gelu", &a->out, &a->in, 1); }
hb_status hb_op_check_add(hb_backend *be, const hb_add_args *a) {
    TRY(ew_check(be, "add", &a->out, &a->a, 1));
    return ew_check(be, "add", &a->out, &a->b, 1);
}
hb_status hb_op_check_softmax(hb_backend *be, const hb_softmax_args *a) {
    TRY(ew_check(be, "softmax", &a->out, &a->in, 1));
    return rows_cols(be, "softmax", "out", &a->out, hb_tensor_rows(&a->in), hb_tensor_cols(&a->in));
}
hb_status hb_op_check_argmax(hb_backend *be, const hb_argmax_args *a) {
    if (!a->out) return bad(be, "argmax", "no output");
    TRY(f32_ok(be, "argmax", "in", &a->in));
    if (hb_tensor_cols(&a->in) < 1) return bad(be, "argmax", "rows of no columns");
    return HB_OK;
}
hb_status hb_op_check_sample(hb_backend *be, const hb_sample_args *a) {
    if (!a->out) return bad(be, "sample", "no output");
    TRY(f32_ok(be, "sample", "logits", &a->logits));
    if (hb_tensor_cols(&a->logits) < 1) return bad(be, "sample", "rows of no columns");
    return HB_OK;
}

/* ---- training ops ---- */

static hb_status same_shape(hb_backend *be, const char *op, const char *name, const hb_tensor *t,
                            const hb_tensor *like) {
    return rows_cols(be, op, name, t, hb_tensor_rows(like), hb_tensor_cols(like));
}

hb_status hb_op_check_embedding_backward(hb_backend *be, const hb_embedding_backward_args *a) {
    const char *op = "embedding_backward";
    TRY(f32_ok(be, op, "dwte", &a->dwte));
    TRY(f32_ok(be, op, "dout", &a->dout));
    TRY(contiguous_ok(be, op, "dwte", &a->dwte));
    if (!a->tokens) return bad(be, op, "no tokens");
    if (a->B < 0 || a->T < 0) return bad(be, op, "B %lld, T %lld", (long long)a->B, (long long)a->T);
    const int64_t C = hb_tensor_cols(&a->dwte);
    TRY(rows_cols(be, op, "dout", &a->dout, a->B * a->T, C));
    if (a->dwpe.data) {
        TRY(f32_ok(be, op, "dwpe", &a->dwpe));
        TRY(contiguous_ok(be, op, "dwpe", &a->dwpe));
        if (hb_tensor_cols(&a->dwpe) != C) return bad(be, op, "dwpe must be (max_seq, C)");
        if (a->pos0 < 0 || a->pos0 + a->T > hb_tensor_rows(&a->dwpe))
            return bad(be, op, "positions %lld..%lld outside the %lld learned positions", (long long)a->pos0,
                       (long long)(a->pos0 + a->T - 1), (long long)hb_tensor_rows(&a->dwpe));
    }
    return HB_OK;
}

static hb_status norm_backward_check(hb_backend *be, const char *op, const hb_tensor *din, const hb_tensor *dw,
                                     const hb_tensor *db, const hb_tensor *dout, const hb_tensor *in,
                                     const hb_tensor *w) {
    TRY(norm_check(be, op, dout, in, w, NULL));
    TRY(f32_ok(be, op, "din", din));
    TRY(same_shape(be, op, "din", din, in));
    TRY(f32_ok(be, op, "dw", dw));
    if (hb_tensor_numel(dw) != hb_tensor_cols(in)) return bad(be, op, "dw must have C elements");
    if (db) {
        TRY(f32_ok(be, op, "db", db));
        if (hb_tensor_numel(db) != hb_tensor_cols(in)) return bad(be, op, "db must have C elements");
    }
    return HB_OK;
}
hb_status hb_op_check_rmsnorm_backward(hb_backend *be, const hb_rmsnorm_backward_args *a) {
    return norm_backward_check(be, "rmsnorm_backward", &a->din, &a->dw, NULL, &a->dout, &a->in, &a->w);
}
hb_status hb_op_check_layernorm_backward(hb_backend *be, const hb_layernorm_backward_args *a) {
    return norm_backward_check(be, "layernorm_backward", &a->din, &a->dw, &a->db, &a->dout, &a->in, &a->w);
}

hb_status hb_op_check_matmul_backward(hb_backend *be, const hb_matmul_backward_args *a) {
    const char *op = "matmul_backward";
    TRY(f32_ok(be, op, "dout", &a->dout));
    TRY(f32_ok(be, op, "a", &a->a));
    TRY(tensor_ok(be, op, "w", &a->w));
    TRY(contiguous_ok(be, op, "w", &a->w));
    if (a->w.dt != HB_F32 && a->w.dt != HB_BF16 && a->w.dt != HB_F16)
        return bad(be, op, "w is %s (accepted: f32, bf16, f16)", hb_dtype_name(a->w.dt));
    const int64_t M = hb_tensor_rows(&a->a), K = hb_tensor_cols(&a->a), N = hb_tensor_rows(&a->w);
    if (hb_tensor_cols(&a->w) != K)
        return bad(be, op, "a is %lldx%lld but w is %lldx%lld", (long long)M, (long long)K, (long long)N,
                   (long long)hb_tensor_cols(&a->w));
    TRY(rows_cols(be, op, "dout", &a->dout, M, N));
    if (a->da.data) {
        TRY(f32_ok(be, op, "da", &a->da));
        TRY(rows_cols(be, op, "da", &a->da, M, K));
    }
    if (a->dw.data) {
        TRY(f32_ok(be, op, "dw", &a->dw));
        TRY(contiguous_ok(be, op, "dw", &a->dw));
        TRY(rows_cols(be, op, "dw", &a->dw, N, K));
    }
    if (a->dbias.data) {
        TRY(f32_ok(be, op, "dbias", &a->dbias));
        if (hb_tensor_numel(&a->dbias) != N) return bad(be, op, "dbias must have %lld elements", (long long)N);
    }
    return HB_OK;
}

hb_status hb_op_check_rope_backward(hb_backend *be, const hb_rope_backward_args *a) {
    TRY(hb_op_check_rope(be, a));
    return HB_OK;
}

/* q (B*T, Hq*D), k and v (B*T, Hkv*D), D = q's columns / Hq, even split, Hq % Hkv == 0. */
static hb_status attn_train_shapes(hb_backend *be, const char *op, const hb_tensor *q, const hb_tensor *k,
                                   const hb_tensor *v, int64_t B, int64_t T, int64_t Hq, int64_t Hkv) {
    TRY(f32_ok(be, op, "q", q));
    TRY(f32_ok(be, op, "k", k));
    TRY(f32_ok(be, op, "v", v));
    if (B < 0 || T < 0 || Hq < 1 || Hkv < 1 || Hq % Hkv)
        return bad(be, op, "B %lld T %lld: %lld query heads are not a multiple of %lld kv heads", (long long)B,
                   (long long)T, (long long)Hq, (long long)Hkv);
    if (hb_tensor_cols(q) % Hq || hb_tensor_cols(q) / Hq < 1) return bad(be, op, "q's columns are not Hq heads");
    const int64_t D = hb_tensor_cols(q) / Hq;
    TRY(rows_cols(be, op, "q", q, B * T, Hq * D));
    TRY(rows_cols(be, op, "k", k, B * T, Hkv * D));
    TRY(rows_cols(be, op, "v", v, B * T, Hkv * D));
    return HB_OK;
}
hb_status hb_op_check_attention_train(hb_backend *be, const hb_attention_train_args *a) {
    const char *op = "attention_train";
    TRY(attn_train_shapes(be, op, &a->q, &a->k, &a->v, a->B, a->T, a->Hq, a->Hkv));
    TRY(f32_ok(be, op, "out", &a->out));
    return same_shape(be, op, "out", &a->out, &a->q);
}
hb_status hb_op_check_attention_backward(hb_backend *be, const hb_attention_backward_args *a) {
    const char *op = "attention_backward";
    TRY(attn_train_shapes(be, op, &a->q, &a->k, &a->v, a->B, a->T, a->Hq, a->Hkv));
    TRY(f32_ok(be, op, "dout", &a->dout));
    TRY(same_shape(be, op, "dout", &a->dout, &a->q));
    TRY(f32_ok(be, op, "dq", &a->dq));
    TRY(same_shape(be, op, "dq", &a->dq, &a->q));
    TRY(f32_ok(be, op, "dk", &a->dk));
    TRY(same_shape(be, op, "dk", &a->dk, &a->k));
    TRY(f32_ok(be, op, "dv", &a->dv));
    return same_shape(be, op, "dv", &a->dv, &a->v);
}

hb_status hb_op_check_swiglu_backward(hb_backend *be, const hb_swiglu_backward_args *a) {
    TRY(ew_check(be, "swiglu_backward", &a->dout, &a->in, 2));
    TRY(ew_check(be, "swiglu_backward", &a->din, &a->in, 1));
    if (hb_tensor_cols(&a->in) != 2 * hb_tensor_cols(&a->dout))
        return bad(be, "swiglu_backward", "in must be (N, 2F) for dout (N, F)");
    return HB_OK;
}
hb_status hb_op_check_gelu_backward(hb_backend *be, const hb_gelu_backward_args *a) {
    TRY(ew_check(be, "gelu_backward", &a->din, &a->in, 1));
    return ew_check(be, "gelu_backward", &a->dout, &a->in, 1);
}

hb_status hb_op_check_cross_entropy(hb_backend *be, const hb_cross_entropy_args *a) {
    const char *op = "cross_entropy";
    TRY(f32_ok(be, op, "logits", &a->logits));
    TRY(f32_ok(be, op, "losses", &a->losses));
    if (!a->targets) return bad(be, op, "no targets");
    const int64_t N = hb_tensor_rows(&a->logits);
    if (hb_tensor_cols(&a->logits) < 1) return bad(be, op, "rows of no columns");
    if (hb_tensor_numel(&a->losses) != N) return bad(be, op, "losses must have %lld elements", (long long)N);
    if (a->dlogits.data) {
        TRY(f32_ok(be, op, "dlogits", &a->dlogits));
        TRY(same_shape(be, op, "dlogits", &a->dlogits, &a->logits));
        if (a->dlogits.data == a->logits.data && hb_tensor_ld(&a->dlogits) != hb_tensor_ld(&a->logits))
            return bad(be, op, "in place with another row stride");
    }
    return HB_OK;
}

hb_status hb_op_check_adamw(hb_backend *be, const hb_adamw_args *a) {
    const char *op = "adamw";
    const hb_tensor *t[] = {&a->param, &a->grad, &a->m, &a->v};
    const char *names[] = {"param", "grad", "m", "v"};
    for (int i = 0; i < 4; i++) {
        TRY(f32_ok(be, op, names[i], t[i]));
        TRY(contiguous_ok(be, op, names[i], t[i]));
        if (hb_tensor_numel(t[i]) != hb_tensor_numel(&a->param))
            return bad(be, op, "%s has %lld elements, param %lld", names[i], (long long)hb_tensor_numel(t[i]),
                       (long long)hb_tensor_numel(&a->param));
    }
    if (a->param_lp.data) {
        TRY(tensor_ok(be, op, "param_lp", &a->param_lp));
        TRY(contiguous_ok(be, op, "param_lp", &a->param_lp));
        if (a->param_lp.dt != HB_BF16 && a->param_lp.dt != HB_F16 && a->param_lp.dt != HB_F32)
            return bad(be, op, "param_lp is %s (accepted: f32, bf16, f16)", hb_dtype_name(a->param_lp.dt));
        if (hb_tensor_numel(&a->param_lp) != hb_tensor_numel(&a->param))
            return bad(be, op, "param_lp must have param's elements");
    }
    if (a->t < 1) return bad(be, op, "step %lld (accepted: t >= 1)", (long long)a->t);
    if (!(a->lr > 0) || !(a->beta1 >= 0 && a->beta1 < 1) || !(a->beta2 >= 0 && a->beta2 < 1) || !(a->eps >= 0))
        return bad(be, op, "lr %g beta1 %g beta2 %g eps %g (accepted: lr > 0, betas in [0, 1), eps >= 0)",
                   (double)a->lr, (double)a->beta1, (double)a->beta2, (double)a->eps);
    return HB_OK;
}

/* ---- Mixture-of-Experts ---- */

hb_status hb_op_check_moe_route(hb_backend *be, const hb_moe_route_args *a) {
    const char *op = "moe_route";
    TRY(f32_ok(be, op, "logits", &a->logits));
    if (!a->ids || !a->weights) return bad(be, op, "no ids or weights");
    const int64_t E = hb_tensor_cols(&a->logits);
    if (a->kind != HB_ROUTER_SOFTMAX && a->kind != HB_ROUTER_SIGMOID) return bad(be, op, "unknown router kind %d", (int)a->kind);
    if (a->top_k < 1 || a->top_k > E) return bad(be, op, "top_k %lld of %lld experts", (long long)a->top_k, (long long)E);
    if (a->n_group < 0 || a->n_group > 256 || (a->n_group > 1 && (E % a->n_group || a->topk_group < 1 ||
                                                                  a->topk_group > a->n_group ||
                                                                  a->top_k > a->topk_group * (E / a->n_group))))
        return bad(be, op, "%lld groups, %lld kept, of %lld experts for top_k %lld", (long long)a->n_group,
                   (long long)a->topk_group, (long long)E, (long long)a->top_k);
    if (a->bias.data) {
        TRY(f32_ok(be, op, "bias", &a->bias));
        if (hb_tensor_numel(&a->bias) != E) return bad(be, op, "bias has %lld elements, expected %lld", (long long)hb_tensor_numel(&a->bias), (long long)E);
    }
    if (a->mode < HB_ROUTING_MODEL || a->mode > HB_ROUTING_ZIPF) return bad(be, op, "unknown routing mode %d", (int)a->mode);
    if (a->mode == HB_ROUTING_ZIPF && !(a->zipf_s > 0.0f)) return bad(be, op, "zipf exponent must be > 0");
    if (a->row0 < 0) return bad(be, op, "row0 < 0");
    return HB_OK;
}

hb_status hb_op_check_moe_permute(hb_backend *be, const hb_moe_permute_args *a) {
    const char *op = "moe_permute";
    TRY(f32_ok(be, op, "x", &a->x));
    TRY(f32_ok(be, op, "xp", &a->xp));
    TRY(contiguous_ok(be, op, "xp", &a->xp));
    if (!a->ids || !a->rows || !a->offsets) return bad(be, op, "no ids, rows or offsets");
    if (a->top_k < 1 || a->n_experts < a->top_k || a->n_experts > INT32_MAX)
        return bad(be, op, "top_k %lld of %lld experts", (long long)a->top_k, (long long)a->n_experts);
    int64_t S;
    if (hb_mul_ovf(hb_tensor_rows(&a->x), a->top_k, &S) || S > INT32_MAX) return bad(be, op, "too many slots for int32 rows");
    return rows_cols(be, op, "xp", &a->xp, S, hb_tensor_cols(&a->x));
}

hb_status hb_op_check_matmul_grouped(hb_backend *be, const hb_matmul_grouped_args *a) {
    const char *op = "matmul_grouped";
    TRY(f32_ok(be, op, "a", &a->a));
    TRY(f32_ok(be, op, "out", &a->out));
    TRY(tensor_ok(be, op, "w", &a->w));
    TRY(contiguous_ok(be, op, "a", &a->a));
    TRY(contiguous_ok(be, op, "out", &a->out));
    TRY(contiguous_ok(be, op, "w", &a->w));
    if (!a->offsets) return bad(be, op, "no offsets");
    if (a->w.ndim != 3) return bad(be, op, "w must be (E, N, K), got %d dimensions", a->w.ndim);
    const int64_t N = a->w.ne[1], K = a->w.ne[2];
    TRY(rows_cols(be, op, "a", &a->a, hb_tensor_rows(&a->a), K));
    TRY(rows_cols(be, op, "out", &a->out, hb_tensor_rows(&a->a), N));
    if (a->w.q.kind == HB_QUANT_ROW) return bad(be, op, "row-quantised expert stacks are not supported");
    if (a->w.q.kind == HB_QUANT_BLOCK && N % a->w.q.bm)
        return bad(be, op, "block rows %lld do not divide the %lld rows of an expert", (long long)a->w.q.bm, (long long)N);
    return HB_OK;
}

hb_status hb_op_check_moe_combine(hb_backend *be, const hb_moe_combine_args *a) {
    const char *op = "moe_combine";
    TRY(f32_ok(be, op, "out", &a->out));
    TRY(f32_ok(be, op, "y", &a->y));
    TRY(contiguous_ok(be, op, "y", &a->y));
    if (!a->rows || !a->weights) return bad(be, op, "no rows or weights");
    if (a->top_k < 1) return bad(be, op, "top_k %lld", (long long)a->top_k);
    int64_t S;
    if (hb_mul_ovf(hb_tensor_rows(&a->out), a->top_k, &S)) return bad(be, op, "too many slots");
    return rows_cols(be, op, "y", &a->y, S, hb_tensor_cols(&a->out));
}

/* ---- Mixture-of-Experts training ---- */

hb_status hb_op_check_moe_route_backward(hb_backend *be, const hb_moe_route_backward_args *a) {
    const char *op = "moe_route_backward";
    TRY(f32_ok(be, op, "logits", &a->logits));
    TRY(f32_ok(be, op, "dlogits", &a->dlogits));
    TRY(same_shape(be, op, "dlogits", &a->dlogits, &a->logits));
    if (!a->ids || !a->dweights) return bad(be, op, "no ids or dweights");
    const int64_t E = hb_tensor_cols(&a->logits);
    if (a->kind != HB_ROUTER_SOFTMAX && a->kind != HB_ROUTER_SIGMOID) return bad(be, op, "unknown router kind %d", (int)a->kind);
    if (a->top_k < 1 || a->top_k > E) return bad(be, op, "top_k %lld of %lld experts", (long long)a->top_k, (long long)E);
    return HB_OK;
}

hb_status hb_op_check_moe_permute_backward(hb_backend *be, const hb_moe_permute_backward_args *a) {
    const char *op = "moe_permute_backward";
    TRY(f32_ok(be, op, "dx", &a->dx));
    TRY(f32_ok(be, op, "dxp", &a->dxp));
    TRY(contiguous_ok(be, op, "dxp", &a->dxp));
    if (!a->rows) return bad(be, op, "no rows");
    if (a->top_k < 1) return bad(be, op, "top_k %lld", (long long)a->top_k);
    int64_t S;
    if (hb_mul_ovf(hb_tensor_rows(&a->dx), a->top_k, &S) || S > INT32_MAX) return bad(be, op, "too many slots for int32 rows");
    return rows_cols(be, op, "dxp", &a->dxp, S, hb_tensor_cols(&a->dx));
}

hb_status hb_op_check_matmul_grouped_backward(hb_backend *be, const hb_matmul_grouped_backward_args *a) {
    const char *op = "matmul_grouped_backward";
    TRY(f32_ok(be, op, "a", &a->a));
    TRY(f32_ok(be, op, "dout", &a->dout));
    TRY(tensor_ok(be, op, "w", &a->w));
    TRY(contiguous_ok(be, op, "a", &a->a));
    TRY(contiguous_ok(be, op, "dout", &a->dout));
    TRY(contiguous_ok(be, op, "w", &a->w));
    if (!a->offsets) return bad(be, op, "no offsets");
    if (a->w.ndim != 3) return bad(be, op, "w must be (E, N, K), got %d dimensions", a->w.ndim);
    if (a->w.dt != HB_F32 && a->w.dt != HB_BF16 && a->w.dt != HB_F16)
        return bad(be, op, "w is %s (accepted: f32, bf16, f16)", hb_dtype_name(a->w.dt));
    if (a->w.q.kind != HB_QUANT_NONE) return bad(be, op, "quantised expert stacks are not supported");
    const int64_t N = a->w.ne[1], K = a->w.ne[2], R = hb_tensor_rows(&a->a);
    TRY(rows_cols(be, op, "a", &a->a, R, K));
    TRY(rows_cols(be, op, "dout", &a->dout, R, N));
    if (a->da.data) {
        TRY(f32_ok(be, op, "da", &a->da));
        TRY(contiguous_ok(be, op, "da", &a->da));
        TRY(rows_cols(be, op, "da", &a->da, R, K));
    }
    if (a->dw.data) {
        TRY(f32_ok(be, op, "dw", &a->dw));
        TRY(contiguous_ok(be, op, "dw", &a->dw));
        if (a->dw.ndim != 3 || a->dw.ne[0] != a->w.ne[0] || a->dw.ne[1] != N || a->dw.ne[2] != K)
            return bad(be, op, "dw must be w's (E, N, K) = (%lld, %lld, %lld)", (long long)a->w.ne[0], (long long)N,
                       (long long)K);
    }
    return HB_OK;
}

hb_status hb_op_check_moe_combine_backward(hb_backend *be, const hb_moe_combine_backward_args *a) {
    const char *op = "moe_combine_backward";
    TRY(f32_ok(be, op, "dout", &a->dout));
    TRY(f32_ok(be, op, "y", &a->y));
    TRY(f32_ok(be, op, "dy", &a->dy));
    TRY(contiguous_ok(be, op, "y", &a->y));
    TRY(contiguous_ok(be, op, "dy", &a->dy));
    if (!a->rows || !a->weights || !a->dweights) return bad(be, op, "no rows, weights or dweights");
    if (a->top_k < 1) return bad(be, op, "top_k %lld", (long long)a->top_k);
    int64_t S;
    if (hb_mul_ovf(hb_tensor_rows(&a->dout), a->top_k, &S)) return bad(be, op, "too many slots");
    TRY(rows_cols(be, op, "y", &a->y, S, hb_tensor_cols(&a->dout)));
    return rows_cols(be, op, "dy", &a->dy, S, hb_tensor_cols(&a->dout));
}

hb_status hb_op_check_mla_attention(hb_backend *be, const hb_mla_attention_args *a) {
    const char *op = "mla_attention";
    TRY(f32_ok(be, op, "out", &a->out));
    TRY(f32_ok(be, op, "q", &a->q));
    TRY(f32_ok(be, op, "latent", &a->latent));
    TRY(tensor_ok(be, op, "cache", &a->cache));
    TRY(tensor_ok(be, op, "wkv_b", &a->wkv_b));
    TRY(contiguous_ok(be, op, "cache", &a->cache));
    TRY(contiguous_ok(be, op, "wkv_b", &a->wkv_b));
    TRY(contiguous_ok(be, op, "out", &a->out));
    if (a->H < 1 || a->dn < 1 || a->dr < 1 || a->dv < 1 || a->B < 1 || a->T < 1)
        return bad(be, op, "H %lld, dn %lld, dr %lld, dv %lld, B %lld, T %lld", (long long)a->H, (long long)a->dn,
                   (long long)a->dr, (long long)a->dv, (long long)a->B, (long long)a->T);
    if (a->cache.ndim != 3 || a->cache.ne[0] != a->B || a->cache.ne[2] <= a->dr)
        return bad(be, op, "cache must be (B, S, dc + dr)");
    if (a->cache.q.kind != HB_QUANT_NONE) return bad(be, op, "cache: scales are not supported (fp8 codes, scale 1)");
    if (a->pos0 < 0 || a->pos0 + a->T > a->cache.ne[1])
        return bad(be, op, "positions %lld..%lld outside a cache of %lld", (long long)a->pos0,
                   (long long)(a->pos0 + a->T - 1), (long long)a->cache.ne[1]);
    const int64_t dc = a->cache.ne[2] - a->dr, N = a->B * a->T;
    TRY(rows_cols(be, op, "latent", &a->latent, N, dc + a->dr));
    TRY(rows_cols(be, op, "q", &a->q, N, a->H * (a->dn + a->dr)));
    TRY(rows_cols(be, op, "out", &a->out, N, a->H * a->dv));
    TRY(rows_cols(be, op, "wkv_b", &a->wkv_b, a->H * (a->dn + a->dv), dc));
    if (a->wkv_b.q.kind == HB_QUANT_ROW) return bad(be, op, "wkv_b: per-row scales are not supported");
    return HB_OK;
}
