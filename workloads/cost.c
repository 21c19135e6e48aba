/* cost.c - analytic FLOPs, minimum bytes, tokens and memory of one prefill or decode
 * iteration (the gemm and stream costs are in gemm.c and stream.c).
 *
 * Conventions (README "Metrics"): a multiply-add is 2 FLOPs; matmuls and attention
 * (QK^T and AV over the keys a causal query actually attends) are counted, element-wise
 * ops (norms, activations, rope, softmax) are not. Minimum bytes: every weight the step
 * touches read once, KV cache read and written, GEMM/stream operands once; activations that
 * can stay on chip are not counted. */
#include <math.h>

#include "transformer.h"

/* FLOPs of one forward of B sequences of T tokens at positions pos0.., logits of last tokens.
 * A MoE block counts its router, shared experts and top_k routed experts per token (the
 * active parameters), not the experts a token skips. */
static double forward_flops(const hb_tf_layout *y, double B, double T, double pos0) {
    double per_token = 0.0;
    for (int64_t l = 0; l < y->L; l++) {
        const hb_tf_block *b = &y->blocks[l];
        const double dff = y->d_ff == 2 * y->F ? 2.0 * b->F : (double)b->F; /* swiglu: gate and up */
        if (b->attn == HB_ATTN_MLA) { /* q (down, up or one matrix), kv down, output */
            const double dq = (double)y->Hq * (y->dn + y->dr);
            per_token += (y->dql ? (double)y->C * y->dql + (double)y->dql * dq : (double)y->C * dq) +
                         (double)y->C * (y->dc + y->dr) + (double)y->Hq * y->dv * y->C;
        } else {
            per_token += (double)y->C * y->d_qkv + (double)y->Hq * y->D * y->C;
        }
        per_token += (double)y->C * dff + (double)b->F * y->C;
        if (b->ffn == HB_FFN_MOE) per_token += (double)y->C * y->E + (double)y->K * 3.0 * y->C * y->Fe;
    }
    per_token *= 2.0;
    /* sum over t of keys attended: T * pos0 + T (T + 1) / 2; QK^T and AV: 2 * 2 * D per key */
    double keys = T * pos0 + T * (T + 1) / 2;
    double attn = 4.0 * (double)y->L * y->Hq * y->D * keys;
    if (y->dc > 0) { /* MLA (every layer) */
        const double H = (double)y->Hq, dn = (double)y->dn, dr = (double)y->dr, dv = (double)y->dv, dc = (double)y->dc;
        if (T > 1) /* materialised: K_nope, V of the pos0 + T cached positions, then plain attention */
            attn = (double)y->L * (2.0 * (pos0 + T) * dc * H * (dn + dv) + 2.0 * H * (dn + dr + dv) * keys);
        else /* absorbed: q into the latent space, scores and sums over latents, out of it */
            attn = (double)y->L * T * H * (2.0 * dn * dc + 2.0 * dc * dv) + (double)y->L * H * 2.0 * (2.0 * dc + dr) * keys;
    }
    double head = 2.0 * (double)y->C * y->Vl; /* one row per sequence (tp: the rank's rows) */
    return B * (T * per_token + attn + head);
}

/* Expected number of distinct experts of one MoE layer that n tokens, top_k each, touch:
 * balanced routing min(E, n k); zipf routing sum_e 1 - (1 - min(1, k p_e))^n with p_e the
 * popularity (a draw's probability, ignoring that a token's k draws are distinct); the
 * router's own choice is taken as uniform (synthetic weights route almost uniformly):
 * E (1 - (1 - k / E)^n). */
double hb_tf_expected_experts(const hb_case *c, double n) {
    const double E = (double)c->model.n_experts, k = (double)c->model.top_k;
    if (E <= 0 || n <= 0) return 0.0;
    if (c->routing == HB_ROUTING_BALANCED) return n * k < E ? n * k : E;
    if (c->routing == HB_ROUTING_ZIPF) {
        double z = 0.0, d = 0.0;
        for (int64_t e = 0; e < c->model.n_experts; e++) z += pow((double)(e + 1), -(double)c->zipf_s);
        for (int64_t e = 0; e < c->model.n_experts; e++) {
            double q = k * pow((double)(e + 1), -(double)c->zipf_s) / z;
            d += 1.0 - pow(1.0 - (q < 1.0 ? q : 1.0), n);
        }
        return d;
    }
    return E * (1.0 - pow(1.0 - k / E, n));
}

/* The common part, then what one prefill (B x P tokens) or decode (B tokens) step adds. */
static hb_status tf_cost(const hb_case *c, int decode, hb_cost *k, hb_err *err) {
    hb_tf_layout y;
    HB_TRY(hb_tf_layout_init(c, decode, &y, err)); /* sizes checked there, the total too */
    double ws = (double)hb_dtype_size(y.edt); /* embedding rows */
    double kv_token = 2.0 * y.L * y.Hkv * y.D * (double)hb_dtype_size(y.kvt); /* K and V of one position, all layers */
    if (y.dc > 0) kv_token = (double)y.L * (y.dc + y.dr) * (double)hb_dtype_size(y.kvt); /* MLA: the latent */
    double emb_row = y.C * ws * (c->model.pos == HB_POS_LEARNED ? 2 : 1);
    double B = (double)c->batch;
    /* routed experts: only those the step's tokens touch are read; ep: the rank's share of
     * those the group's ep x tokens touch (a rank computes, on average, as many expert rows
     * as its own tokens need: its FLOPs are ep = 1's for its batch) */
    const double tokens = decode ? B : B * (double)c->prompt;
    const double experts = y.n_moe * hb_tf_expected_experts(c, tokens * (double)y.ep) / (double)y.ep *
                           (double)y.expert_bytes;
    k->mem_bytes = y.weight_bytes + y.act_bytes + y.kv_bytes;
    if (!decode) {
        double T = (double)c->prompt;
        k->flops = forward_flops(&y, B, T, 0);
        k->bytes = y.matrix_bytes + experts + B * T * (emb_row + kv_token);
        k->tokens_in = B * T;
    } else {
        /* positions cycle through P .. P+G-1: the mean position is P + (G-1)/2 */
        double pos = (double)c->prompt + ((double)c->gen - 1) / 2;
        k->flops = forward_flops(&y, B, 1, pos);
        k->bytes = y.matrix_bytes + experts + B * (emb_row + kv_token * (pos + 1) + kv_token);
        k->tokens_out = B;
    }
    hb_tf_layout_free(&y);
    return HB_OK;
}

hb_status hb_tf_prefill_cost(const hb_case *c, hb_cost *k, hb_err *err) { return tf_cost(c, 0, k, err); }
hb_status hb_tf_decode_cost(const hb_case *c, hb_cost *k, hb_err *err) { return tf_cost(c, 1, k, err); }
