/* serve.h - private to workloads/ and its tests: the serve workload's descriptor and the
 * hooks the equivalence tests (tests/test_serve.c) read a stream's tokens and logits through. */
#ifndef HB_SERVE_H
#define HB_SERVE_H

#include "workload.h"

/* Keeps the logits of every request's first output token from the next stream on: (requests,
 * V) host floats, read with hb_serve_first_logits. */
hb_status hb_serve_keep_first_logits(hb_workload *w);
const float *hb_serve_first_logits(const hb_workload *w); /* NULL until asked */
/* Every request's tokens (requests, isl + osl): its prompt, then the tokens it generated. */
const int32_t *hb_serve_tokens(const hb_workload *w, int64_t *stride);
/* MoE: the tokens each expert received over the first stream, (n_layers, n_experts) row-major;
 * NULL (and 0, 0) for a dense model or before a stream finished. hb_workload_expert_tokens
 * (transformer.c) answers through it for serve cases. */
/* The last stream's generated tokens, (requests, osl) int32, malloc'ed for the caller; NULL (and
 * 0, 0) before a stream finished. hb_workload_generated answers through it for serve cases. */
hb_status hb_serve_generated(const hb_workload *w, int32_t **ids, int64_t *rows, int64_t *cols);
hb_status hb_serve_expert_tokens(const hb_workload *w, const int64_t **counts, int64_t *n_layers, int64_t *n_experts);

#endif
