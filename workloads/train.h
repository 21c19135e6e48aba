/* train.h - private to workloads/ and the tests: the train workload's parameter table and the
 * hooks its tests use to compare it with independent references (finite differences, a
 * double-precision training loop). The harness sees only the descriptor (workload.h). */
#ifndef HB_TRAIN_H
#define HB_TRAIN_H

#include "workload.h"

/* One parameter tensor: rows x cols f32 (cols 1 for a vector) at element `off` of the
 * parameter arena; gradients and AdamW moments use the same offsets in their arenas. */
typedef struct hb_train_tensor {
    const char *name;  /* "wte", "qkv_w", ... (static) */
    int layer;         /* -1: model-level */
    int64_t off, rows, cols;
    float init_std;    /* N(0, init_std); 0: constant init_const */
    float init_const;
    int matrix;        /* a GEMM operand: has a low-precision copy in bf16 training */
} hb_train_tensor;

/* The table of a set-up train workload; *n_floats: elements of the parameter arena (padding
 * between tensors included, always 0). Returns the number of tensors. */
int hb_train_tensors(const hb_workload *w, const hb_train_tensor **t, int64_t *n_floats);
/* Host copies of the parameter arena (which 0) or the gradient arena (which 1). */
hb_status hb_train_download(const hb_workload *w, int which, float *host);
/* Replaces the f32 parameters (and their low-precision copy) from host. */
hb_status hb_train_upload_params(hb_workload *w, const float *host);
/* The B*T + 1 token stream micro-batch 0 of the next step reads (inputs stream[0..N),
 * targets stream[1..N]) into host. */
hb_status hb_train_tokens(hb_workload *w, int32_t *host);
/* Forward and backward of micro-batch 0 of the next step with gradients zeroed first, no
 * update: *loss is its mean loss and the gradient arena holds d loss / d params / grad_accum. */
hb_status hb_train_grad(hb_workload *w, double *loss);

#endif
