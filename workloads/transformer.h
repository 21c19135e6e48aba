/* transformer.h - private to workloads/: the memory layout of a dense decoder model, shared by
 * the cost model (cost.c) and the forward pass (transformer.c) so that the memory estimate is
 * exactly what setup allocates; and the costs the prefill/decode descriptors point at. */
#ifndef HB_TRANSFORMER_H
#define HB_TRANSFORMER_H

#include "workload.h"

/* Byte offsets of one layer's tensors inside the weight block (each 256-byte aligned). */
typedef struct hb_layer_offsets {
    int64_t ln1_w, ln1_b, qkv_w, qkv_b, proj_w, proj_b, ln2_w, ln2_b, fc_w, fc_b, fc2_w, fc2_b;
} hb_layer_offsets;

typedef struct hb_tf_layout {
    /* shapes */
    int64_t C, D, Hq, Hkv, F, V, L;
    int64_t d_qkv;       /* (Hq + 2 Hkv) D */
    int64_t d_ff;        /* 2F for swiglu (gate and up fused), F for gelu */
    int64_t B, T_max, S; /* batch, longest forward (prompt), KV cache length */
    /* weight block */
    int64_t wte, wpe, lm_w, lnf_w, lnf_b; /* offsets (-1 if absent) */
    hb_layer_offsets layer0;              /* layer l = layer0 + l * layer_stride */
    int64_t layer_stride;
    int64_t weight_bytes;
    int64_t matrix_bytes; /* bytes of weight matrices + norms + biases a forward step reads */
    /* activations (f32 unless noted), bytes */
    int64_t act_bytes;
    int64_t kv_bytes;     /* both caches, all layers */
    hb_dtype kvt;         /* KV cache dtype: hb_tf_kv_dtype(weight dtype) */
} hb_tf_layout;

/* The KV cache's storage type for a model whose weight matrices are in wdt: f32 for f32, bf16
 * for bf16 and fp8 (as inference engines keep an fp8 model's cache in its bf16 compute type),
 * f16 for f16. Attention then computes in that type (backend.h, attention). */
hb_dtype hb_tf_kv_dtype(hb_dtype wdt);

/* decode: the KV cache holds P + G positions (else P). */
void hb_tf_layout_init(const hb_case *c, int decode, hb_tf_layout *lay);

/* Analytic cost of one prefill / decode iteration (cost.c), for the descriptors. */
hb_status hb_tf_prefill_cost(const hb_case *c, hb_cost *cost);
hb_status hb_tf_decode_cost(const hb_case *c, hb_cost *cost);

#endif
