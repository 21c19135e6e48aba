/* ops.h - the op catalogue, written once: one parameter struct per op, and HB_OP_LIST, from
 * which the ops table (backend.h), the CPU and GPU backends' declarations and the checked
 * wrappers hb_op_<name>() are generated.
 *
 * Every op is  hb_status name(hb_backend *be, const hb_<name>_args *a).
 * (Calls through HB_OP build the struct as a C compound literal: C callers only; C++ code - the
 * GPU sources implement ops, they do not call them - would call hb_op_<name> on a named struct.)
 * Operands are tensors (tensor.h) whose dtype, shape and quantisation say what they are; the
 * comments give the shapes the op expects and what it computes. The shape checks common to
 * every backend are done once, by the wrapper (hb_op_check_<name> in ops.c), before the
 * backend runs: a backend may assume its arguments are consistent.
 *
 * Adding an op: its struct here, one HB_OP_LIST line, its semantics in the comment, the CPU
 * implementation (the specification), a check in ops.c, a verify row; a GPU backend that does
 * not implement it leaves the member NULL and the op is reported unsupported. */
#ifndef HB_OPS_H
#define HB_OPS_H

#include <math.h>
#include <stdint.h>

#include "../harness/status.h"
#include "tensor.h"

typedef struct hb_backend hb_backend;

/* dst = cast(offset + scale * hb_rng_pm1(seed, i)), i the element's index in row-major order.
 * A quantised dst (fp8 with dst.q) holds the quantisation of those f32 values (as convert
 * would compute it, the scales written to dst.q.scale); the f32 values are never stored. */
typedef struct hb_fill_random_args {
    hb_tensor dst;
    uint64_t seed;
    float scale, offset;
} hb_fill_random_args;

/* dst[i] = hb_rng_u64(seed, i) % vocab */
typedef struct hb_fill_tokens_args {
    int32_t *dst;
    int64_t n;
    uint64_t seed;
    int64_t vocab;
} hb_fill_tokens_args;

/* dst = src element by element (same number of elements, both contiguous).
 * src quantised: dequantise (code * scale, one f32 multiplication). dst quantised: quantise
 * dynamically - each scale group g gets scale[g] = amax(g) / max(dst.dt) (an f32 division; 1 if
 * amax is 0 or not finite), and each code is the IEEE f32 quotient x / scale[g] rounded to
 * nearest even with saturation (so GPU kernels divide too: x * (1 / scale) would differ at
 * midpoints). Casts to bf16/f16/fp8 round to nearest even (fp8: saturating, NaN kept). */
typedef struct hb_convert_args {
    hb_tensor dst, src;
} hb_convert_args;

/* out (B*T, C) f32 = wte[tokens] (+ wpe[pos0 + t] if wpe.data); wte (V, C), wpe (max_seq, C) */
typedef struct hb_embedding_args {
    hb_tensor out, wte, wpe;
    const int32_t *tokens;
    int64_t B, T, pos0;
} hb_embedding_args;

/* out (N, C) = in / rms(in) * w; in, out f32 (N, C) with row strides; w f32 (C) */
typedef struct hb_rmsnorm_args {
    hb_tensor out, in, w;
    float eps;
} hb_rmsnorm_args;

/* out (N, C) = (in - mean) / std * w + b */
typedef struct hb_layernorm_args {
    hb_tensor out, in, w, b;
    float eps;
} hb_layernorm_args;

/* out (M, N) f32 = beta * out + a (M, K) @ w (N, K)^T (+ bias (N) f32 if bias.data).
 * w is stored in its dtype (f32, bf16, f16, fp8 e4m3 or e5m2), fp8 with w.q none (scale 1), tensor
 * or block (bm x bk). a is f32 or already in w's dtype (then, for fp8, with its own a.q).
 * An f32 a is used as is with bf16/f16 weights on the CPU (GPU GEMMs round it to w's dtype:
 * within verify's bounds); for an fp8 w it is quantised dynamically to w's fp8 type as convert
 * would: per tensor for a w with tensor (or no) scales, in 1 x bk tiles for a w with bm x bk
 * blocks (DeepSeek-V3's recipe). An fp8 a must have w's type.
 * The CPU computes the product of the dequantised operands (code * scale, rounded once to f32)
 * with f32 accumulation: that is the specification GPU paths are verified against. */
typedef struct hb_matmul_args {
    hb_tensor out, a, w, bias;
    float beta;
} hb_matmul_args;

/* Strided batched f32 GEMM, row-major: C_i = alpha * op(A_i) @ op(B_i) + beta * C_i,
 * op(A_i) is (M, K), op(B_i) is (K, N), i in [0, batch). */
typedef struct hb_matmul_batched_args {
    int trans_a, trans_b;
    int64_t m, n, k, batch;
    float alpha, beta;
    const float *a; int64_t lda, stride_a;
    const float *b; int64_t ldb, stride_b;
    float *c; int64_t ldc, stride_c;
} hb_matmul_batched_args;
typedef hb_matmul_batched_args hb_gemm_batched; /* API v2 name */

/* Rope scaling: none (factor 0), Llama 3.1's ("rope_type": "llama3": factor, low_freq,
 * high_freq, orig_max) or YaRN ("yarn": factor, low_freq = beta_fast, high_freq = beta_slow,
 * orig_max, and mag, the attention factor every cos and sin is multiplied by). */
#define HB_ROPE_LLAMA3 0
#define HB_ROPE_YARN 1
typedef struct hb_rope_scaling {
    float factor, low_freq, high_freq; /* factor, low_freq_factor / beta_fast, high_freq_factor / beta_slow */
    int64_t orig_max;                  /* original_max_position_embeddings */
    int kind;                          /* HB_ROPE_LLAMA3 (0, with factor > 0) or HB_ROPE_YARN */
    float mag;                         /* YaRN's attention factor (0 is taken as 1) */
} hb_rope_scaling;

/* YaRN's correction dimension of num_rotations (Hugging Face's find_correction_dim). */
static inline HB_HOSTDEV double hb_yarn_dim(double rot, int64_t D, double theta, int64_t orig) {
    return ((double)D * log((double)orig / (rot * 6.283185307179586))) / (2.0 * log(theta));
}

/* The inverse frequency of pair i of a head of D: theta^(-2i/D), with Llama 3.1's scaling (as
 * Hugging Face's _compute_llama3_parameters: wavelengths above orig_max / low_freq divided by
 * factor, below orig_max / high_freq kept, blended between) or YaRN's (_compute_yarn_parameters:
 * theta^(-2i/D) / factor below the correction range [floor(dim(beta_fast)), ceil(dim(beta_slow))],
 * theta^(-2i/D) above it, a linear ramp between). In double, on host and device. */
static inline HB_HOSTDEV double hb_rope_freq(int64_t i, int64_t D, double theta, hb_rope_scaling s) {
    double f = 1.0 / pow(theta, 2.0 * (double)i / (double)D);
    if (!(s.factor > 0.0f)) return f;
    if (s.kind == HB_ROPE_YARN) {
        double lo = floor(hb_yarn_dim(s.low_freq, D, theta, s.orig_max));
        double hi = ceil(hb_yarn_dim(s.high_freq, D, theta, s.orig_max));
        lo = lo > 0 ? lo : 0;
        hi = hi < (double)(D - 1) ? hi : (double)(D - 1);
        if (lo == hi) hi += 0.001;
        double ramp = ((double)i - lo) / (hi - lo);
        ramp = ramp < 0 ? 0 : ramp > 1 ? 1 : ramp;
        const double extra = 1.0 - ramp; /* the extrapolation's weight */
        return f / s.factor * (1.0 - extra) + f * extra;
    }
    const double wavelen = 6.283185307179586 / f, lo = (double)s.orig_max / s.low_freq, hi = (double)s.orig_max / s.high_freq;
    if (wavelen > lo) return f / s.factor;
    if (wavelen < hi) return f;
    const double sm = ((double)s.orig_max / wavelen - s.low_freq) / (s.high_freq - s.low_freq);
    return (1.0 - sm) * f / s.factor + sm * f;
}

/* YaRN's factor on cos and sin (1 otherwise). */
static inline HB_HOSTDEV float hb_rope_mag(hb_rope_scaling s) {
    return s.factor > 0.0f && s.kind == HB_ROPE_YARN && s.mag > 0.0f ? s.mag : 1.0f;
}

/* In place on x (B*T rows, f32; H heads of D at the start of each row, x.ne[1] = H * D):
 * rotate-half RoPE (GPT-NeoX / Hugging Face Llama convention) at positions pos0 + t, pair i
 * turned by (pos0 + t) hb_rope_freq(i, D, theta, scaling), cos and sin times hb_rope_mag.
 * pos (optional, B*T int32 >= 0 on the device): row r at position pos[r] instead (the serve
 * workload's rows of many requests in one launch); the same angles, so the same bits. */
typedef struct hb_rope_args {
    hb_tensor x;
    int64_t B, T, pos0, H;
    float theta;
    hb_rope_scaling scaling;
    const int32_t *pos;
} hb_rope_args;

/* Caches are (B, S, Hkv, D) in their dtype: f32, bf16, f16, or fp8 (e4m3, e5m2) with a per-tensor
 * scale (k_cache.q / v_cache.q, HB_QUANT_TENSOR, set by the caller: a static scale, as
 * inference engines keep an fp8 cache). k and v are f32 (B*T, Hkv*D) with row strides; they
 * are stored rounded to nearest even (fp8: the f32 quotient k / scale, saturating) at
 * positions pos0..pos0+T-1. */
/* Paged (block_table given): the caches are (n_blocks, block_size, Hkv, D) and row i of the
 * B*T rows goes to block block_table[seq[i] * max_blocks + pos[i] / block_size], slot
 * pos[i] % block_size (attention_paged's addressing; pos0 unused) - one launch for every
 * request of a continuous batch. */
typedef struct hb_kv_store_args {
    hb_tensor k_cache, v_cache, k, v;
    int64_t B, T, pos0;
    const int32_t *block_table, *seq, *pos;
    int64_t max_blocks;
} hb_kv_store_args;

/* Causal grouped-query attention over the cache: query t of batch b (position pos0 + t)
 * attends to cache positions 0..pos0+t; head h uses kv head h / (Hq / Hkv); scale 1/sqrt(D).
 * q, out f32 (B*T, Hq*D) with row strides; Hkv, D, S from the caches.
 * f32 cache: everything f32. bf16/f16 cache (FlashAttention's precision): both products take
 * operands in the cache dtype - q is rounded to it, and so are the softmax numerators
 * p = exp(s - max) before p @ v (the max may be a running one: GPU kernels round p relative to
 * the max seen so far, within the dtype's rounding of the reference); the sums, the softmax
 * normaliser (of the unrounded p) and the output are f32. fp8 cache: as a bf16 cache whose
 * values are the codes, with the scales applied to the f32 sums: s = scale_k * (q . k_code)
 * / sqrt(D), out = scale_v * (p . v_code) / sum(p). */
typedef struct hb_attention_args {
    hb_tensor out, q, k_cache, v_cache;
    int64_t B, T, pos0;
} hb_attention_args;

/* out (N, F) = silu(in[:, :F]) * in[:, F:], in (N, 2F) f32, contiguous */
typedef struct hb_swiglu_args {
    hb_tensor out, in;
} hb_swiglu_args;

/* out = gelu_tanh(in), f32, contiguous */
typedef struct hb_gelu_args {
    hb_tensor out, in;
} hb_gelu_args;

/* out = a + s * b, f32, contiguous (residual add with s = 1; STREAM triad) */
typedef struct hb_add_args {
    hb_tensor out, a, b;
    float s;
} hb_add_args;

/* row-wise softmax, (rows, cols) f32, contiguous */
typedef struct hb_softmax_args {
    hb_tensor out, in;
} hb_softmax_args;

/* out[r] = index of the max of row r of in (rows, cols) f32 (the lowest index on ties) */
typedef struct hb_argmax_args {
    int32_t *out;
    hb_tensor in;
} hb_argmax_args;

/* temperature sampling of each row of logits (rows, cols) f32 with
 * u = hb_rng_unit(seed, step * rows + r); temperature <= 0 is argmax */
typedef struct hb_sample_args {
    int32_t *out;
    hb_tensor logits;
    float temperature;
    uint64_t seed, step;
} hb_sample_args;


/* ---- training (optional ops: a backend without them reports unsupported) ----
 * The backward of each forward op above, llm.c's <layer>_backward shapes. Gradients of
 * parameters accumulate (dw += ...: micro-batches and a tied embedding add up; adamw zeroes
 * them); gradients of activations are written as beta * d + ... where a `beta` is given (0
 * overwrites, whatever d held, as matmul's out), else overwritten. Everything is f32. */

/* dwte (V, C) += dout (B*T, C) row i at row tokens[i]; dwpe (max_seq, C) += row i at row
 * pos0 + i % T (if dwpe.data). */
typedef struct hb_embedding_backward_args {
    hb_tensor dwte, dwpe, dout;
    const int32_t *tokens;
    int64_t B, T, pos0;
} hb_embedding_backward_args;

/* For out = rmsnorm(in) * w (rms recomputed from in, its mean in double as the forward):
 * din (N, C) = beta * din + d out / d in ^T dout; dw (C) += sum over rows of dout * in / rms.
 * din, dout and in may be 3-D views (N, H, D) with strides (ld, D, 1), whose N H rows of D are
 * normalised (the heads inside qkv rows, as rmsnorm's Qwen3 q/k norms). */
typedef struct hb_rmsnorm_backward_args {
    hb_tensor din, dw, dout, in, w;
    float eps, beta;
} hb_rmsnorm_backward_args;

/* For out = (in - mean) / std * w + b: din as rmsnorm_backward's; dw += sum dout * xhat,
 * db += sum dout. */
typedef struct hb_layernorm_backward_args {
    hb_tensor din, dw, db, dout, in, w;
    float eps, beta;
} hb_layernorm_backward_args;

/* For out = a (M, K) @ w (N, K)^T + bias: da (M, K) = beta * da + dout (M, N) @ w (if da.data);
 * dw (N, K) f32 += dout^T @ a (if dw.data); dbias (N) += column sums of dout (if dbias.data).
 * a f32; w f32, bf16 or f16 (the product of its values widened to f32: mixed precision keeps
 * f32 master weights and gradients and a low-precision copy for the GEMMs). */
typedef struct hb_matmul_backward_args {
    hb_tensor da, dw, dbias, dout, a, w;
    float beta;
} hb_matmul_backward_args;

/* In place on x (rope's operand, holding dL/d(rotated x)): the transposed rotation, i.e. rope
 * at the angles' negatives; gives dL/dx. Same fields as rope. */
typedef hb_rope_args hb_rope_backward_args;

/* Causal GQA self-attention of B sequences of T tokens at positions 0..T-1 (training: no cache,
 * no offset), scale 1/sqrt(D), head h reading kv head h / (Hq / Hkv), all f32:
 *   out = softmax(q k^T / sqrt(D), causal) v
 * attention_train writes out (B*T, Hq*D) from q (B*T, Hq*D), k, v (B*T, Hkv*D) (row strides;
 * views into a fused qkv row work). attention_backward writes dq, dk, dv (q's, k's and v's
 * shapes; overwritten) from dout (out's shape) and q, k, v, the softmax recomputed. */
typedef struct hb_attention_train_args {
    hb_tensor out, q, k, v;
    int64_t B, T, Hq, Hkv;
} hb_attention_train_args;
typedef struct hb_attention_backward_args {
    hb_tensor dq, dk, dv, dout, q, k, v;
    int64_t B, T, Hq, Hkv;
} hb_attention_backward_args;

/* din (N, 2F) = d swiglu(in) / d in ^T dout (N, F); overwritten, contiguous. */
typedef struct hb_swiglu_backward_args {
    hb_tensor din, dout, in;
} hb_swiglu_backward_args;

/* din = dout * gelu_tanh'(in), contiguous; overwritten. */
typedef struct hb_gelu_backward_args {
    hb_tensor din, dout, in;
} hb_gelu_backward_args;

/* Fused softmax + cross-entropy + its gradient (llm.c's crossentropy_softmax_backward):
 * for each row r of logits (N, V) (row stride), p = softmax(row),
 * losses[r] = -log p[targets[r]] (f32, N); if dlogits.data, dlogits (N, V) = dscale * (p -
 * onehot(targets[r])) - it may be logits itself (in place). Sums in double. */
typedef struct hb_cross_entropy_args {
    hb_tensor losses, dlogits, logits;
    const int32_t *targets;
    float dscale;
} hb_cross_entropy_args;

/* One AdamW step (llm.c's formula) on n parameters, all f32 (n), contiguous:
 *   g = grad_scale * grad; m = beta1 m + (1 - beta1) g; v = beta2 v + (1 - beta2) g^2
 *   param -= lr * ((m / (1 - beta1^t)) / (sqrt(v / (1 - beta2^t)) + eps) + weight_decay * param)
 * t >= 1 is the step. zero_grad: grad = 0 afterwards (the next step accumulates from 0).
 * param_lp (if data): the updated param rounded to its dtype (bf16/f16), the GEMMs' copy. */
typedef struct hb_adamw_args {
    hb_tensor param, grad, m, v, param_lp;
    float lr, beta1, beta2, eps, weight_decay, grad_scale;
    int64_t t;
    int zero_grad;
} hb_adamw_args;
/* ---- Mixture-of-Experts (ggml's MUL_MAT_ID split into its steps) ----
 * A MoE FFN of N token rows, E experts, k active per token:
 *   logits = matmul(h, router_w)                     (N, E)
 *   moe_route(logits) -> ids, weights                (N, k) each
 *   moe_permute(h, ids) -> xp, rows, offsets         xp (N*k, C) grouped by expert
 *   matmul_grouped(xp, w_up[E]) -> swiglu -> matmul_grouped(., w_down[E]) -> y (N*k, C)
 *   moe_combine(out += sum_j weights[n, j] * y[rows[n*k + j]])
 * Integer operands (ids, rows, offsets) are int32 device arrays. */

typedef enum hb_router_kind {
    HB_ROUTER_SOFTMAX = 0, /* Mixtral, Qwen3-MoE, DeepSeek-V2: scores = softmax(logits) */
    HB_ROUTER_SIGMOID = 1, /* DeepSeek-V3: scores = sigmoid(logits) */
} hb_router_kind;

/* Which experts a token goes to: the router's choice, or a synthetic assignment (the weights
 * of the chosen experts still come from the router's scores). */
typedef enum hb_routing {
    HB_ROUTING_MODEL = 0,    /* top-k of the router */
    HB_ROUTING_BALANCED = 1, /* row r takes experts (r k + j) mod E, j < k: every expert equally */
    HB_ROUTING_ZIPF = 2,     /* k distinct experts drawn without replacement with popularity
                                p_e ~ (e + 1)^-zipf_s, u_j = hb_rng_unit(seed, r k + j) */
} hb_routing;

/* Router of logits (N, E) f32 (contiguous rows of ld >= E): for each row n,
 *   s_e = softmax(logits_n)_e (HB_ROUTER_SOFTMAX) or sigmoid(logits_ne) (HB_ROUTER_SIGMOID);
 *   choice_e = s_e + bias_e (bias (E) f32, DeepSeek-V3's score-correction bias; absent: 0);
 *   n_group > 1 (group-limited, DeepSeek-V3 noaux_tc): the E experts form n_group consecutive
 *     groups, a group's score is the sum of its two largest choice values (its largest when a
 *     group has one expert), the topk_group best groups are kept and the other experts masked;
 *   ids_n = the top_k unmasked experts by choice, in decreasing order (ties: the lowest expert
 *     index first) - or the routing mode's assignment (row r = row0 + n), groups ignored;
 *   weights_nj = s_{ids_nj}; norm: divided by their sum (+ 1e-20); times scale.
 * ids and weights are (N, top_k) int32 / f32. */
typedef struct hb_moe_route_args {
    int32_t *ids;
    float *weights;
    hb_tensor logits, bias;
    hb_router_kind kind;
    int64_t top_k, n_group, topk_group;
    int norm;
    float scale;
    hb_routing mode;
    float zipf_s;
    uint64_t seed;
    int64_t row0;
} hb_moe_route_args;

/* Token permutation by expert: slot s = n * top_k + j (token n's j-th expert, ids[s]) goes to
 * row rows[s] of xp; rows are grouped by expert in increasing order, within an expert in slot
 * order (a stable counting sort). offsets (E + 1): expert e owns rows offsets[e] ..
 * offsets[e+1] - 1 (offsets[0] = 0, offsets[E] = N top_k). xp[rows[s]] = x[n]. x (N, C) f32
 * with row stride, xp (N top_k, C) f32 contiguous. */
typedef struct hb_moe_permute_args {
    hb_tensor xp, x;
    const int32_t *ids;
    int64_t top_k, n_experts;
    int32_t *rows, *offsets;
} hb_moe_permute_args;

/* Grouped GEMM: for each expert e, out rows offsets[e] .. offsets[e+1]-1 = a's same rows @
 * w[e]^T, with w (E, N, K) the experts' matrices stacked (one tensor: its dtype and
 * quantisation as matmul's w, a block-quantised stack with N a multiple of the block rows),
 * a (R, K) f32 and out (R, N) f32 contiguous, offsets (E + 1) int32 as moe_permute writes
 * them. Each expert's product is exactly matmul's with that expert's matrix. */
typedef struct hb_matmul_grouped_args {
    hb_tensor out, a, w;
    const int32_t *offsets;
} hb_matmul_grouped_args;

/* Weighted combine: out[n] = beta * out[n] + sum_{j < top_k} weights[n top_k + j] *
 * y[rows[n top_k + j]], the sum taken in order j = 0, 1, ... out (N, C) f32 with row stride,
 * y (N top_k, C) f32 contiguous. */
typedef struct hb_moe_combine_args {
    hb_tensor out, y;
    const int32_t *rows;
    const float *weights;
    int64_t top_k;
    float beta;
} hb_moe_combine_args;

/* Multi-head latent attention (DeepSeek-V2/V3) over a latent cache, H heads, causal.
 * cache (B, S, dc + dr) in its dtype (f32, bf16, f16; fp8 as codes with scale 1) holds per
 * position the normalised KV latent c (dc) and the roped shared key part k_pe (dr); latent
 * (B*T, dc + dr) f32 (row stride allowed) are the new positions' rows, stored (rounded to the
 * cache dtype) at pos0..pos0+T-1 first. q (B*T, H (dn + dr)) f32: all heads' no-position parts
 * (H x dn), then all heads' rope parts (H x dr, rope applied). wkv_b (H (dn + dv), dc) in a
 * weight dtype (as matmul's w): for head h, rows h (dn + dv) .. + dn are W_UK_h, the next dv
 * rows W_UV_h; it is used dequantised (code x scale), with f32 latents.
 * Query t of sequence b attends positions 0..pos0+t with
 *   score_s = (q_nope_h . W_UK_h c_s + q_pe_h . k_pe_s) / sqrt(dn + dr),
 *   out_h = sum_s softmax(score)_s W_UV_h c_s                      (out (B*T, H dv) f32).
 * absorb = 0 materialises K_nope and V for every cached position (prefill); absorb = 1
 * computes the same from the latents alone: q_lat = W_UK_h^T q_nope_h, score = q_lat . c_s +
 * q_pe . k_pe_s, out_h = W_UV_h sum_s p_s c_s (decode). Both agree to f32 rounding. */
typedef struct hb_mla_attention_args {
    hb_tensor out, q, latent, cache, wkv_b;
    int64_t B, T, pos0, H, dn, dr, dv;
    int absorb;
} hb_mla_attention_args;

/* Varlen causal GQA attention over a paged KV cache (the serve workload's continuous batch):
 * caches (n_blocks, block_size, Hkv, D) in their dtype (f32, bf16, f16, or fp8 with a per-tensor
 * scale, as attention's); row i of q belongs to
 * sequence seq[i] and is the query at its position pos[i]; position p of sequence s lives in
 * block block_table[s * max_blocks + p / block_size], slot p % block_size. Row i attends to
 * positions 0..pos[i] of its sequence (which must be stored already: kv_store into the blocks
 * first); head h uses kv head h / (Hq / Hkv); scale 1/sqrt(D). Precision exactly attention's
 * (same order of operations: a sequence laid out in blocks gives attention's bits).
 * q, out f32 (N, Hq*D) with row strides; block_table, seq, pos int32 device arrays. */
typedef struct hb_attention_paged_args {
    hb_tensor out, q, k_cache, v_cache;
    const int32_t *block_table;
    int64_t max_blocks, n_seqs;
    const int32_t *seq, *pos;
} hb_attention_paged_args;

/* ---- Mixture-of-Experts training (optional ops, HB_OP_LIST_TRAIN_MOE) ----
 * The backward of the MoE forward above, step by step in reverse:
 *   moe_combine_backward   dy, dweights  from d out
 *   matmul_grouped_backward (down, then up; swiglu_backward between)  da, dw per expert
 *   moe_permute_backward   dx            from d xp (the scatter-add of each token's k rows)
 *   moe_route_backward     dlogits       from dweights (then matmul_backward for the router)
 * The top-k choice itself is not differentiated (as every framework): the ids of the forward
 * are given, the weights' dependence on the logits is. All f32; conventions as the training
 * ops': parameter gradients accumulate, activation gradients are overwritten (or beta * d + ...
 * where a beta is given). */

/* For weights_nj = scale * s_{ids_nj} (/ (sum_j s_{ids_nj} + 1e-20) if norm), s the router's
 * scores of logits (N, E) (softmax of the row, or elementwise sigmoid: moe_route's kinds; the
 * score-correction bias and the group limit only choose, so they get no gradient):
 *   dlogits (N, E) = d weights / d logits ^T dweights (N, top_k); overwritten, rows of
 * dlogits and logits with their strides; ids (N, top_k) int32 as moe_route wrote them.
 * The scores are recomputed from logits in double. */
typedef struct hb_moe_route_backward_args {
    hb_tensor dlogits, logits;
    const int32_t *ids;
    const float *dweights;
    hb_router_kind kind;
    int64_t top_k;
    int norm;
    float scale;
} hb_moe_route_backward_args;

/* For xp[rows[n top_k + j]] = x[n] (moe_permute): dx (N, C) = beta * dx + sum_{j < top_k}
 * dxp[rows[n top_k + j]], the sum in order j = 0, 1, ... (the scatter-add of rows, written as a
 * gather per token: deterministic, no atomics). dx with row stride, dxp (N top_k, C) contiguous. */
typedef struct hb_moe_permute_backward_args {
    hb_tensor dx, dxp;
    const int32_t *rows;
    int64_t top_k;
    float beta;
} hb_moe_permute_backward_args;

/* For matmul_grouped out = a @ w[e]^T on expert e's rows offsets[e] .. offsets[e+1]-1: per expert,
 *   da rows (if da.data) = beta * da + dout rows @ w[e];  dw[e] (if dw.data) += dout rows^T @ a rows;
 * matmul_backward's contract for each expert's matrix. w (E, N, K) f32, bf16 or f16 (its values
 * widened: mixed precision), dw (E, N, K) f32, a and da (R, K), dout (R, N), f32 contiguous;
 * offsets (E + 1) int32 as moe_permute wrote them. Rows of no expert are not touched. */
typedef struct hb_matmul_grouped_backward_args {
    hb_tensor da, dw, dout, a, w;
    const int32_t *offsets;
    float beta;
} hb_matmul_grouped_backward_args;

/* For out[n] (+)= sum_j weights[n top_k + j] y[rows[n top_k + j]] (moe_combine):
 *   dy[rows[n top_k + j]] = weights[n top_k + j] * dout[n]   (dy (N top_k, C) contiguous,
 *                                                              every row overwritten);
 *   dweights[n top_k + j] = dout[n] . y[rows[n top_k + j]]   (overwritten; the sum in double).
 * dout (N, C) with row stride. (d out / d out_old = beta is the caller's.) */
typedef struct hb_moe_combine_backward_args {
    hb_tensor dy, dout, y;
    float *dweights;
    const int32_t *rows;
    const float *weights;
    int64_t top_k;
} hb_moe_combine_backward_args;

/* The catalogue: X(name, required). Required ops must be filled by every backend (checked when
 * a module is loaded); optional ones may be NULL and are then reported unsupported. */
#define HB_OP_LIST_INFER(X) \
    X(fill_random, 1)       \
    X(fill_tokens, 1)       \
    X(convert, 1)           \
    X(embedding, 1)         \
    X(rmsnorm, 1)           \
    X(layernorm, 1)         \
    X(matmul, 1)            \
    X(matmul_batched, 0)    \
    X(rope, 1)              \
    X(kv_store, 1)          \
    X(attention, 1)         \
    X(swiglu, 1)            \
    X(gelu, 1)              \
    X(add, 1)               \
    X(softmax, 0)           \
    X(argmax, 1)            \
    X(sample, 1)            \
    X(moe_route, 0)         \
    X(moe_permute, 0)       \
    X(matmul_grouped, 0)    \
    X(moe_combine, 0)       \
    X(mla_attention, 0)     \
    X(attention_paged, 0)

/* Training ops (all optional), after the inference ones: a GPU module that does not implement
 * them fills its table from HB_OP_LIST_INFER and leaves these NULL. */
#define HB_OP_LIST_TRAIN(X)      \
    X(embedding_backward, 0)     \
    X(rmsnorm_backward, 0)       \
    X(layernorm_backward, 0)     \
    X(matmul_backward, 0)        \
    X(rope_backward, 0)          \
    X(attention_train, 0)        \
    X(attention_backward, 0)     \
    X(swiglu_backward, 0)        \
    X(gelu_backward, 0)          \
    X(cross_entropy, 0)          \
    X(adamw, 0)

/* Training ops of Mixture-of-Experts FFNs (all optional), after HB_OP_LIST_TRAIN. */
#define HB_OP_LIST_TRAIN_MOE(X)      \
    X(moe_route_backward, 0)         \
    X(moe_permute_backward, 0)       \
    X(matmul_grouped_backward, 0)    \
    X(moe_combine_backward, 0)

#define HB_OP_LIST(X) HB_OP_LIST_INFER(X) HB_OP_LIST_TRAIN(X) HB_OP_LIST_TRAIN_MOE(X)

/* Member type of the ops table for op `name`. */
#define HB_OP_FN(name) hb_status (*name)(hb_backend * be, const hb_##name##_args *a);
/* Declaration of a backend's implementation: HB_OP_DECLARE(hb_cpu_, matmul) declares
 * hb_status hb_cpu_matmul(hb_backend *, const hb_matmul_args *). */
#define HB_OP_DECLARE(prefix, name) hb_status prefix##name(hb_backend *be, const hb_##name##_args *a);

/* Op index, for tables of names (list, verify). */
typedef enum hb_op_id {
#define HB_OP_ENUM_(name, req) HB_OPID_##name,
    HB_OP_LIST(HB_OP_ENUM_)
#undef HB_OP_ENUM_
    HB_OP_COUNT
} hb_op_id;
const char *hb_op_name(hb_op_id id);
int hb_op_required(hb_op_id id);

/* Shape/dtype checks shared by every backend (ops.c): HB_OK, or HB_ERR_INPUT with a message
 * in be->err naming the op and the operand. */
#define HB_OP_CHECK_DECL_(name, req) hb_status hb_op_check_##name(hb_backend *be, const hb_##name##_args *a);
HB_OP_LIST(HB_OP_CHECK_DECL_)
#undef HB_OP_CHECK_DECL_

#endif
