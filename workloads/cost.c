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

/* FLOPs of one forward of B sequences of T tokens at positions pos0.., logits of last tokens. */
static double forward_flops(const hb_tf_layout *y, double B, double T, double pos0) {
    double per_token = 2.0 * (double)y->L *
                       ((double)y->C * y->d_qkv + (double)y->Hq * y->D * y->C +
                        (double)y->C * y->d_ff + (double)y->F * y->C);
    /* sum over t of keys attended: T * pos0 + T (T + 1) / 2; QK^T and AV: 2 * 2 * D per key */
    double keys = T * pos0 + T * (T + 1) / 2;
    double attn = 4.0 * (double)y->L * y->Hq * y->D * keys;
    double head = 2.0 * (double)y->C * y->V; /* one row per sequence */
    return B * (T * per_token + attn + head);
}

/* The common part, then what one prefill (B x P tokens) or decode (B tokens) step adds. */
static hb_status tf_cost(const hb_case *c, int decode, hb_cost *k, hb_err *err) {
    hb_tf_layout y;
    HB_TRY(hb_tf_layout_init(c, decode, &y, err)); /* sizes checked there, the total too */
    double ws = (double)hb_dtype_size(y.edt); /* embedding rows */
    double kv_token = 2.0 * y.L * y.Hkv * y.D * (double)hb_dtype_size(y.kvt); /* K and V of one position, all layers */
    double emb_row = y.C * ws * (c->model.pos == HB_POS_LEARNED ? 2 : 1);
    double B = (double)c->batch;
    k->mem_bytes = y.weight_bytes + y.act_bytes + y.kv_bytes;
    if (!decode) {
        double T = (double)c->prompt;
        k->flops = forward_flops(&y, B, T, 0);
        k->bytes = y.matrix_bytes + B * T * (emb_row + kv_token);
        k->tokens_in = B * T;
    } else {
        /* positions cycle through P .. P+G-1: the mean position is P + (G-1)/2 */
        double pos = (double)c->prompt + ((double)c->gen - 1) / 2;
        k->flops = forward_flops(&y, B, 1, pos);
        k->bytes = y.matrix_bytes + B * (emb_row + kv_token * (pos + 1) + kv_token);
        k->tokens_out = B;
    }
    hb_tf_layout_free(&y);
    return HB_OK;
}

hb_status hb_tf_prefill_cost(const hb_case *c, hb_cost *k, hb_err *err) { return tf_cost(c, 0, k, err); }
hb_status hb_tf_decode_cost(const hb_case *c, hb_cost *k, hb_err *err) { return tf_cost(c, 1, k, err); }
