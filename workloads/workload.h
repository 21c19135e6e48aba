/* workload.h - cases, analytic costs and the setup/step/teardown interface.
 *
 * Workloads are written only against the ops table (backends/backend.h): no vendor header
 * is ever included below workloads/. One iteration ("step") is:
 *   gemm     one M x N x K GEMM (a: f32 activations, w: weights in dtype)
 *   stream   one copy (c = a) or triad (a = b + s * c) over n f32 elements
 *   prefill  B prompts of P tokens through the model, logits of each prompt's last token
 *   decode   one generated token for each of B sequences; positions cycle through
 *            P .. P+G-1 (a P-token prompt is prefilled into the KV cache at setup), so the
 *            iteration times are the per-token latencies. */
#ifndef HB_WORKLOAD_H
#define HB_WORKLOAD_H

#include <stdint.h>

#include "../backends/backend.h"
#include "model.h"

typedef enum hb_workload_kind {
    HB_WL_GEMM = 0,
    HB_WL_STREAM,
    HB_WL_PREFILL,
    HB_WL_DECODE,
    HB_WL_COUNT
} hb_workload_kind;

typedef enum hb_stream_op { HB_STREAM_COPY = 0, HB_STREAM_TRIAD = 1 } hb_stream_op;

const char *hb_workload_name(hb_workload_kind w);
int hb_workload_parse(const char *s, hb_workload_kind *out); /* 0 ok, -1 unknown */
const char *hb_stream_op_name(hb_stream_op op);

/* One fully resolved case: what runs and how it is measured. Fields a workload does not use
 * are 0. */
typedef struct hb_case {
    int32_t id;
    hb_workload_kind workload;
    hb_model model;          /* prefill/decode: resolved, `layers` override applied */
    hb_dtype dtype;          /* storage type of weight matrices (gemm: of the w operand) */
    int64_t batch;           /* B */
    int64_t prompt;          /* P: prompt length (decode: tokens already in the KV cache) */
    int64_t gen;             /* G: decode positions cycled through */
    int64_t seq;             /* T: training sequence length (later issues) */
    int64_t m, n, k;         /* gemm */
    int64_t stream_n;        /* stream: elements per array */
    hb_stream_op stream_op;
    uint64_t seed;
    float temperature;       /* decode sampling; 0 = argmax */
    /* measurement protocol */
    int64_t warmup_iters;
    int64_t min_iters;
    double min_seconds;
    int64_t max_iters;       /* hard cap on timed iterations (memory for the time series) */
} hb_case;

/* Short human label, e.g. "decode llama3-8b[2/32L] bf16 B=1 P=128 G=32". */
void hb_case_label(const hb_case *c, char *buf, int len);

/* Analytic cost of one iteration. FLOPs count multiply-adds as 2 in matmuls and attention
 * (QK^T and AV, causal: only the keys a query attends); element-wise ops are not counted.
 * bytes is the minimum traffic: every weight read once, KV cache read/written, GEMM/stream
 * operands once. mem_bytes is the device memory the case allocates. */
typedef struct hb_cost {
    double flops;
    double bytes;
    double tokens_in;
    double tokens_out;
    int64_t mem_bytes;
} hb_cost;

hb_status hb_case_cost(const hb_case *c, hb_cost *cost);

#define HB_FP_LEN 4 /* fingerprint: sum, sum |x|, sqrt(sum x^2), first row's argmax */

typedef struct hb_workload hb_workload;

hb_status hb_workload_setup(hb_backend *be, const hb_case *c, hb_workload **out, hb_err *err);
hb_status hb_workload_step(hb_workload *w);
/* Fingerprint of the first step's output (logits for prefill/decode, C for gemm, the output
 * array for stream); valid after one step. */
hb_status hb_workload_fingerprint(const hb_workload *w, double fp[HB_FP_LEN]);
/* A host copy of the current output (logits (B, V) for prefill/decode, C for gemm, the output
 * array for stream), malloc'ed into *host; for verification and tests. */
hb_status hb_workload_output(const hb_workload *w, float **host, int64_t *n);
void hb_workload_free(hb_workload *w); /* NULL is a no-op */

#endif
