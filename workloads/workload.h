/* workload.h - cases, analytic costs, the workload registry and the setup/step/teardown
 * interface.
 *
 * Workloads are written only against the ops table (backends/backend.h): no vendor header
 * is ever included below workloads/. One iteration ("step") is:
 *   gemm     one M x N x K GEMM (a: f32 activations, w: weights in dtype)
 *   stream   one copy (c = a) or triad (a = b + s * c) over n f32 elements
 *   prefill  B prompts of P tokens through the model, logits of each prompt's last token
 *   decode   one generated token for each of B sequences; positions cycle through
 *            P .. P+G-1 (a P-token prompt is prefilled into the KV cache at setup), so the
 *            iteration times are the per-token latencies.
 *   train    one optimizer step on B x T tokens (x grad_accum micro-batches): forward,
 *            cross-entropy, backward, AdamW (train.c).
 *   serve    one whole request stream (requests of isl/osl tokens, closed loop or Poisson
 *            arrivals) through the continuous-batching scheduler (serve.c, serve_sched.h);
 *            the per-request latencies of the last timed stream travel beside the iteration
 *            times (hb_workload_serve).
 *
 * Each workload is one descriptor (hb_workload_desc, below) filled by its own file, the way
 * nccl-tests has one `struct testColl` per collective: gemm.c, stream.c, transformer.c
 * (prefill, decode). The harness, the plan and the results writer ask the descriptor and
 * never switch on the kind. A new workload is a new file, a new HB_WL_* constant and one
 * line in the registry table (workload.c). */
#ifndef HB_WORKLOAD_H
#define HB_WORKLOAD_H

#include <stdint.h>

#include "../backends/backend.h"
#include "../backends/comm.h" // defines: hb_comm (rank groups' collectives)
#include "model.h"

typedef enum hb_workload_kind {
    HB_WL_GEMM = 0,
    HB_WL_STREAM,
    HB_WL_PREFILL,
    HB_WL_DECODE,
    HB_WL_TRAIN,
    HB_WL_COLLECTIVE,
    HB_WL_SERVE,
    HB_WL_COUNT
} hb_workload_kind;

typedef enum hb_stream_op { HB_STREAM_COPY = 0, HB_STREAM_TRIAD = 1 } hb_stream_op;

/* train: where the tokens come from. synthetic: a fresh batch of the counter generator every
 * step (the loss stays near ln V); repeat: the first batch every step (the loss must fall);
 * file: an llm.c token shard (hb_case.data_path), read in order. */
typedef enum hb_train_data { HB_DATA_SYNTHETIC = 0, HB_DATA_REPEAT = 1, HB_DATA_FILE = 2, HB_DATA_COUNT } hb_train_data;
const char *hb_train_data_name(hb_train_data d);       /* "synthetic", "repeat", "file" */
/* train: activations recomputed in backward instead of kept from forward (Megatron's selective
 * and full recomputation): none keeps every layer's; attention keeps each layer's input and
 * FFN activations and recomputes its attention half (norm, qkv, q/k norms, rope, attention);
 * full keeps each layer's input only and recomputes the whole layer before its backward. */
typedef enum hb_recompute { HB_RECOMPUTE_NONE = 0, HB_RECOMPUTE_ATTENTION = 1, HB_RECOMPUTE_FULL = 2, HB_RECOMPUTE_COUNT } hb_recompute;
const char *hb_recompute_name(hb_recompute r);          /* "none", "attention", "full" */
int hb_train_data_parse(const char *s, hb_train_data *out); /* synthetic, repeat: 0; else -1 */

const char *hb_stream_op_name(hb_stream_op op);

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

#define HB_CASE_LABEL_LEN 256
/* KV cache dtype of a model case; 0 (auto) = f32 for f32, f16 for f16, bf16 otherwise. */
typedef enum hb_kvt {
    HB_KV_AUTO = 0,
    HB_KV_F32,
    HB_KV_BF16,
    HB_KV_F16,
    HB_KV_FP8,   /* e4m3 with a per-tensor scale */
    HB_KV_COUNT
} hb_kvt;
const char *hb_kvt_name(hb_kvt k);                  /* "auto", "f32", "bf16", "f16", "fp8" */
int hb_kvt_parse(const char *s, hb_kvt *out);       /* 0 ok, -1 unknown */

/* One fully resolved case: what runs and how it is measured. Fields a workload does not use
 * are 0. */
typedef struct hb_case {
    int32_t id;
    hb_workload_kind workload;
    hb_model model;          /* prefill/decode: resolved, `layers` override applied */
    hb_dtype dtype;          /* storage type of weight matrices (gemm: of the a and w operands) */
    hb_qkind quant;          /* fp8 scales: HB_QUANT_TENSOR ("fp8": one f32 scale per weight
                                tensor, activations per tensor), HB_QUANT_BLOCK ("fp8-block":
                                quant_block^2 weight blocks, 1 x quant_block activation tiles);
                                gemm "fp8" is HB_QUANT_NONE (scale 1) */
    int64_t quant_block;     /* block edge for HB_QUANT_BLOCK (DeepSeek-V3: 128) */
    hb_kvt kv_dtype;          /* KV cache dtype (prefill/decode) */
    int64_t batch;           /* B */
    int64_t prompt;          /* P: prompt length (decode: tokens already in the KV cache) */
    int64_t gen;             /* G: decode positions cycled through */
    int64_t seq;             /* T: training sequence length */
    /* train: AdamW (llm.c's defaults 1e-4, 0.9, 0.999, 1e-8, 0), micro-batches per step, data,
     * ranks training one model together (data parallel) */
    float lr, beta1, beta2, eps, weight_decay;
    int64_t grad_accum;
    hb_train_data data;
    int64_t dp;
    hb_recompute recompute;
    /* model parallelism (prefill/decode): ranks of a group splitting one model's heads and ffn
     * (tp) or its experts (ep); 0 reads as 1 */
    int64_t tp, ep;
    /* collective: the op, the nccl-tests "size" in bytes, in place (1) or out of place (0),
     * and the ranks of a group */
    hb_comm_op coll_op;
    int64_t coll_bytes;
    int64_t in_place;
    int64_t coll_ranks;
    int64_t m, n, k;         /* gemm */
    int64_t stream_n;        /* stream: elements per array */
    hb_stream_op stream_op;
    uint64_t seed;
    float temperature;       /* decode sampling; 0 = argmax */
    /* model workloads: weights from a checkpoint instead of the generator, prompts from a
     * token file (workloads/checkpoint.h); "" = generated. weights_model: the model is the
     * checkpoint's config.json (no `model:` given) */
#define HB_PATH_LEN 256
    char weights[HB_PATH_LEN];
    char prompt_tokens[HB_PATH_LEN];
    char data_path[HB_PATH_LEN]; /* train, data: PATH (HB_DATA_FILE) */
    char weights_stored[64];     /* with weights: the checkpoint's tensor dtypes, e.g. "F8_E4M3, BF16, F32" */
    int weights_model;
    hb_routing routing;      /* MoE models: which experts tokens go to (ops.h) */
    float zipf_s;            /* routing zipf: the exponent S > 0 */
    /* serve: the request stream and the scheduler (workloads/serve_sched.h) */
    int64_t isl, osl;        /* nominal input length, output length (tokens) */
    double range_ratio;      /* input lengths uniform in [ceil(ratio x isl), isl], (0, 1] */
    int64_t requests;        /* requests per stream; 0 = 10 x concurrency */
    int64_t concurrency;     /* closed loop: requests in flight */
    double arrival_rate;     /* Poisson arrivals (requests/s); 0 = closed loop; HB_SERVE_RATE_SEARCH
                                (arrival: search) = the highest rate whose p99s meet the SLOs */
    int64_t max_batch_tokens; /* tokens fed per scheduler iteration (decode + prefill chunks) */
    int64_t max_seqs;        /* running requests at most */
    int64_t kv_blocks;       /* paged KV cache blocks; 0 = auto (every request in flight, within memory) */
    int64_t kv_block_size;   /* tokens per KV block */
    double slo_ttft_s, slo_tpot_s; /* Poisson: p99 bounds of the VALID/INVALID verdict; 0 = none */
    /* measurement protocol */
    int64_t warmup_iters;
    int64_t min_iters;
    double min_seconds;
    int64_t max_iters;       /* hard cap on timed iterations (memory for the time series) */
    int64_t repeat;          /* timed windows per case (1..HB_MAX_REPEAT); 0 reads as 1 */
#define HB_MAX_REPEAT 64
    /* resolved once by hb_case_resolve (the plan does it for every case it expands) */
    hb_cost cost;
    char label[HB_CASE_LABEL_LEN];
} hb_case;

/* The name of a case's weight recipe: "f32", "bf16", "f16", "fp8" (per-tensor scales or, for
 * gemm, none), "fp8-block"; "e5m2" likewise. */
const char *hb_case_dtype_name(const hb_case *c);
/* The model as case labels name it: hb_model_display_name, and "@<checkpoint folder>" where a
 * preset's weights come from a checkpoint (weights: with model:), so that the generated and the
 * loaded case of one preset are told apart. */
const char *hb_case_model_name(const hb_case *c, char *buf, int len);

/* The KV cache's storage type of a model case: its kv_dtype, or for auto f32 for f32, bf16 for
 * bf16 and fp8, f16 for f16 (as inference engines keep an fp8 model's cache in its bf16
 * compute type). Attention then computes in that type (backends/ops.h, attention). */
hb_dtype hb_case_kv_dtype(const hb_case *c);

/* Short human label, e.g. "decode llama3-8b[2/32L] bf16 B=1 P=128 G=32". */
void hb_case_label(const hb_case *c, char *buf, int len);
/* The case's analytic cost (see hb_cost), from its workload's descriptor. HB_ERR_INPUT when a
 * size of the case (a buffer, an arena, the memory total) does not fit in int64_t: err then
 * names the product that overflows. Every size setup allocates comes from the same checked
 * arithmetic, so a case whose cost resolved cannot wrap a buffer size. */
hb_status hb_case_cost(const hb_case *c, hb_cost *cost, hb_err *err);
/* Fills c->cost and c->label from the descriptor; HB_ERR_INTERNAL for an unknown kind,
 * HB_ERR_INPUT (with err) for a size overflow. */
hb_status hb_case_resolve(hb_case *c, hb_err *err);

/* ---- the registry ---- */

/* Which figure of hb_cost the /summary headline rate counts per iteration. */
typedef enum hb_headline {
    HB_HEADLINE_FLOPS = 0,   /* FLOP/s */
    HB_HEADLINE_BYTES,       /* B/s */
    HB_HEADLINE_TOKENS_IN,   /* tokens/s of input (prompt) tokens */
    HB_HEADLINE_TOKENS_OUT,  /* tokens/s of generated tokens */
    HB_HEADLINE_TOKENS_TRAINED, /* tokens/s trained (tokens_in of a train step) */
} hb_headline;

const char *hb_headline_unit(hb_headline h);            /* "FLOP/s", "B/s", "tokens/s" */
const char *hb_headline_name(hb_headline h);            /* "FLOP/s", ..., "input tokens/s" */
double hb_headline_per_iter(hb_headline h, const hb_cost *cost);

typedef struct hb_workload hb_workload;

/* One workload. Required members: name, kind, plan_keys, about, label, cost, setup; `check`
 * may be NULL. */
typedef struct hb_workload_desc {
    const char *name;              /* `workload:` value in plans, /summary and HDF5 */
    hb_workload_kind kind;         /* its index in the registry */
    /* Plan keys the workload takes besides the ones every workload takes (workload, seed,
     * warmup, min_iters, min_seconds, max_iters, repeat), NULL-terminated, in the order of the
     * canonical YAML. They also say which case fields are meaningful: /summary fills its
     * model, dtype, batch, prompt, gen and layers columns, and the HDF5 case group its
     * stream_op and model attributes, only for the workloads that take that key (a workload
     * without `dtype` computes in f32). Every name must be a key of harness/plan.c. */
    const char *const *plan_keys;
    const char *about;             /* one iteration, for `hetbench list workloads` */
    hb_headline headline;          /* /summary rate, rate_unit and rate CI */
    /* An iteration time is a latency a user waits for (prefill: to the first token; decode:
     * per generated token): /summary fills latency_p50_s and latency_p95_s. */
    int latency;
    void (*label)(const hb_case *c, char *buf, int len);
    /* cost arrives zeroed; HB_ERR_INPUT with err when a size overflows int64_t (checked with
     * hb_mul_ovf / hb_add_ovf, harness/status.h) */
    hb_status (*cost)(const hb_case *c, hb_cost *cost, hb_err *err);
    /* Plan-time check of a case with its keys and defaults applied (NULL: none). On error,
     * err->msg says what is wrong and *blame lists the keys (NULL-terminated) the message may
     * point at: the plan's message names the first of them it wrote (none: no location). */
    hb_status (*check)(const hb_case *c, const char *const **blame, hb_err *err);
    /* Allocates and fills the workload's state into w (w->c is the case); sets w->step,
     * w->free_impl, w->out, w->out_n (workload_impl.h). */
    hb_status (*setup)(hb_workload *w, hb_err *err);
    /* optional (NULL: /summary busbw is NaN): nccl-tests' bus bandwidth factor, busbw = rate x
     * factor (collective) */
    double (*bus_factor)(const hb_case *c);
} hb_workload_desc;

/* All descriptors, indexed by kind: list[k]->kind == k. Returns HB_WL_COUNT. */
int hb_workload_descs(const hb_workload_desc *const **list);
const hb_workload_desc *hb_workload_desc_of(hb_workload_kind w);  /* NULL if out of range */
const hb_workload_desc *hb_workload_find(const char *name);      /* NULL if unknown */
/* Whether the workload takes plan key `key` (one of its plan_keys). */
int hb_workload_takes(const hb_workload_desc *d, const char *key);

const char *hb_workload_name(hb_workload_kind w);             /* "?" if out of range */
int hb_workload_parse(const char *s, hb_workload_kind *out);  /* 0 ok, -1 unknown */

/* ---- serve ---- */
/* The statistics of a serve stream (hb_workload_serve; /summary columns, SCHEMA.md). */
typedef enum hb_serve_stat {
    HB_SV_TTFT_P50 = 0, HB_SV_TTFT_P90, HB_SV_TTFT_P99,
    HB_SV_TPOT_P50, HB_SV_TPOT_P90, HB_SV_TPOT_P99,
    HB_SV_ITL_P50, HB_SV_ITL_P90, HB_SV_ITL_P99,
    HB_SV_E2E_P50, HB_SV_E2E_P90, HB_SV_E2E_P99,
    HB_SV_DURATION,          /* first arrival to last finish, s */
    HB_SV_OUT_TPS, HB_SV_TOTAL_TPS, HB_SV_REQ_PS, HB_SV_INTERACTIVITY,
    HB_SV_PREEMPTIONS,
    HB_SV_SLO,               /* 1 VALID, 0 INVALID, NaN no SLO */
    HB_SV_ITERATIONS,        /* scheduler iterations */
    HB_SV_KV_BLOCKS,         /* blocks of the paged KV cache as run (auto: sized to memory) */
    HB_SV_RATE,              /* the stream's Poisson rate (requests/s); rate search: the highest
                                valid one found (NaN: none valid); NaN for a closed loop */
    HB_SV_SEARCH_STREAMS,    /* rate search: streams run (1 otherwise) */
    HB_SERVE_N_STATS
} hb_serve_stat;
#define HB_SERVE_RATE_SEARCH (-1.0)
/* Columns of a request record: times in s from the stream's start. */
#define HB_SERVE_REQ_COLS 6 /* arrival_s, first_token_s, finish_s, input_tokens, output_tokens, preemptions */
/* The requests a case's stream holds (requests, or 10 x concurrency). */
int64_t hb_case_serve_requests(const hb_case *c);

/* ---- running a case ---- */

#define HB_FP_LEN 4 /* fingerprint: sum, sum |x|, sqrt(sum x^2), first row's argmax */

/* Sets up c's workload (its descriptor's setup) on be. */
hb_status hb_workload_setup(hb_backend *be, const hb_case *c, hb_workload **out, hb_err *err);

/* The ranks a case runs on together (one group): dp x tp x ep for the workloads that take
 * those keys, coll_ranks for collective; 1 for a case every rank runs alone. */
int64_t hb_case_group_size(const hb_case *c);
/* hb_workload_setup with this rank's group communicator (NULL: alone; owned by the harness,
 * which made it before dispatch; the workload's collectives count into its stats). */
hb_status hb_workload_setup_group(hb_backend *be, const hb_case *c, hb_comm *g, hb_workload **out,
                                  hb_err *err);
/* The workload's group communicator (NULL alone): the harness aligns window starts and the
 * end of the window over it. */
hb_comm *hb_workload_comm(const hb_workload *w);
/* Untimed work after each step, where the workload has some (collective: every element
 * checked, inputs restored); HB_OK when it has none. The measurement calls it after every
 * step and starts the next iteration's time after it. */
int hb_workload_has_after_step(const hb_workload *w);
hb_status hb_workload_after_step(hb_workload *w);
hb_status hb_workload_step(hb_workload *w);
/* Fingerprint of the first step's output (logits for prefill/decode, C for gemm, the output
 * array for stream); valid after one step. */
hb_status hb_workload_fingerprint(const hb_workload *w, double fp[HB_FP_LEN]);
/* A host copy of the current output (logits (B, V) for prefill/decode, C for gemm, the output
 * array for stream), malloc'ed into *host; for verification and tests. */
hb_status hb_workload_output(const hb_workload *w, float **host, int64_t *n);
/* train: the mean training loss of the last step (1), or 0 when the workload has none (every
 * other workload) or has not stepped yet. */
int hb_workload_loss(const hb_workload *w, double *loss);
void hb_workload_free(hb_workload *w); /* NULL is a no-op */
/* serve: the statistics and the request records (n x HB_SERVE_REQ_COLS, owned by w) of the
 * last stream; 0 for other workloads or before a step. */
int hb_workload_serve(const hb_workload *w, double stats[HB_SERVE_N_STATS], const double **requests,
                      int64_t *n_requests);
/* MoE prefill/decode: the tokens each expert received in the first step (serve: over the first
 * stream), (n_layers MoE layers, n_experts) row-major, owned by w; NULL and 0 x 0 for a dense
 * case or before a step. */
hb_status hb_workload_expert_tokens(const hb_workload *w, const int64_t **counts, int64_t *n_layers,
                                    int64_t *n_experts);
/* The token ids a prefill/decode case produced, malloc'ed into *ids as (rows, cols) int32
 * row-major: decode, the B sequences' tokens at positions P .. P+cols-1 of the first pass (the
 * prompt's argmax first; cols = G once G-1 steps ran, fewer before); prefill, each sequence's
 * last-token argmax (cols 1, computed here from the last step's logits, untimed); serve, the
 * last stream's requests' output tokens (requests, osl). NULL and 0 x 0 for other workloads or
 * before a step. */
hb_status hb_workload_generated(hb_workload *w, int32_t **ids, int64_t *rows, int64_t *cols);

#endif
