/* tensor.h - what an op's operand is: a device pointer with its dtype, shape, strides and,
 * for quantised storage, the scales that travel with it (llama2.c runq.c's QuantizedTensor
 * {q, s}, DeepSeek-V3's weight + weight_scale_inv).
 *
 * Shapes are row-major, outermost dimension first; strides are in elements. Quantisation is
 * defined on the 2-D view (rows = product of all but the last dimension, cols = the last): a
 * stored code c at (r, k) has the real value c * scale[r / bm, k / bk], with
 *   HB_QUANT_NONE    no scale (scale 1)
 *   HB_QUANT_TENSOR  one scale (bm = rows, bk = cols)
 *   HB_QUANT_ROW     one scale per row (bm = 1, bk = cols)
 *   HB_QUANT_BLOCK   one scale per bm x bk block (DeepSeek-V3: 128 x 128 weights, 1 x 128
 *                    activation tiles); edge blocks may be partial
 * The scale tensor is f32 on the device, (ceil(rows / bm), ceil(cols / bk)) row-major. */
#ifndef HB_TENSOR_H
#define HB_TENSOR_H

#include <stddef.h>
#include <stdint.h>

#include "dtype.h"

#define HB_MAX_DIMS 4

typedef enum hb_qkind {
    HB_QUANT_NONE = 0,
    HB_QUANT_TENSOR = 1,
    HB_QUANT_ROW = 2,
    HB_QUANT_BLOCK = 3,
    HB_QUANT_COUNT
} hb_qkind;

typedef struct hb_quant {
    hb_qkind kind;
    int64_t bm, bk;  /* block rows, block cols (HB_QUANT_BLOCK; derived for the others) */
    float *scale;    /* device, f32 (see above); NULL for HB_QUANT_NONE */
} hb_quant;

typedef struct hb_tensor {
    void *data;                /* device pointer; NULL = absent (optional operands) */
    hb_dtype dt;
    int ndim;                  /* 1..HB_MAX_DIMS */
    int64_t ne[HB_MAX_DIMS];   /* shape, outermost first */
    int64_t st[HB_MAX_DIMS];   /* strides in elements; the last one is 1 */
    hb_quant q;
} hb_tensor;

const char *hb_qkind_name(hb_qkind k);    /* "none", "tensor", "row", "block" */

/* ---- constructors (contiguous unless a row stride is given) ---- */
static inline hb_tensor hb_t1(const void *p, hb_dtype dt, int64_t n) {
    hb_tensor t = {(void *)p, dt, 1, {n, 0, 0, 0}, {1, 0, 0, 0}, {HB_QUANT_NONE, 0, 0, NULL}};
    return t;
}
/* rows x cols, rows ld elements apart */
static inline hb_tensor hb_t2(const void *p, hb_dtype dt, int64_t rows, int64_t cols, int64_t ld) {
    hb_tensor t = {(void *)p, dt, 2, {rows, cols, 0, 0}, {ld, 1, 0, 0}, {HB_QUANT_NONE, 0, 0, NULL}};
    return t;
}
/* n0 x n1 x n2, contiguous (a stack of n0 matrices: MoE experts) */
static inline hb_tensor hb_t3(const void *p, hb_dtype dt, int64_t n0, int64_t n1, int64_t n2) {
    hb_tensor t = {(void *)p, dt, 3, {n0, n1, n2, 0}, {n1 * n2, n2, 1, 0}, {HB_QUANT_NONE, 0, 0, NULL}};
    return t;
}
static inline hb_tensor hb_t4(const void *p, hb_dtype dt, int64_t n0, int64_t n1, int64_t n2,
                              int64_t n3) {
    hb_tensor t = {(void *)p, dt, 4, {n0, n1, n2, n3}, {n1 * n2 * n3, n2 * n3, n3, 1},
                   {HB_QUANT_NONE, 0, 0, NULL}};
    return t;
}
/* The same tensor with a quantisation descriptor; bm/bk are used by HB_QUANT_BLOCK only. */
hb_tensor hb_tq(hb_tensor t, hb_qkind kind, int64_t bm, int64_t bk, float *scale);

/* ---- views ---- */
static inline int64_t hb_tensor_numel(const hb_tensor *t) {
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++) n *= t->ne[i];
    return n;
}
static inline int64_t hb_tensor_cols(const hb_tensor *t) { return t->ne[t->ndim - 1]; }
static inline int64_t hb_tensor_rows(const hb_tensor *t) {
    int64_t n = 1;
    for (int i = 0; i < t->ndim - 1; i++) n *= t->ne[i];
    return n;
}
/* Row stride of the 2-D view (elements). */
static inline int64_t hb_tensor_ld(const hb_tensor *t) {
    return t->ndim >= 2 ? t->st[t->ndim - 2] : t->ne[0];
}
/* Offset (elements) of row r of the rows x cols view: a 3-D tensor's rows need not be evenly
 * spaced (e.g. the heads of q inside qkv rows: (N, H, D) with strides (ld, D, 1)). */
static inline int64_t hb_tensor_row_off(const hb_tensor *t, int64_t r) {
    if (t->ndim == 3) return (r / t->ne[1]) * t->st[0] + (r % t->ne[1]) * t->st[1];
    return r * hb_tensor_ld(t);
}
/* Whether the elements are densely packed (the 2-D view's ld == cols, and so on outward). */
int hb_tensor_contiguous(const hb_tensor *t);
/* Block of one scale on the 2-D view (bm x bk, resolved for tensor/row/block). */
void hb_quant_block(const hb_tensor *t, int64_t *bm, int64_t *bk);
/* Number of scales (scale tensor rows x cols); 0 for HB_QUANT_NONE. */
int64_t hb_quant_nscales(const hb_tensor *t, int64_t *srows, int64_t *scols);

#endif
