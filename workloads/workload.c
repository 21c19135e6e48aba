/* workload.c - the workload registry (one line per workload), lookups by name and kind, and
 * the dispatch of labels, costs and setup/step/teardown to each workload's descriptor. The
 * workloads themselves live in gemm.c, stream.c, transformer.c and train.c. */
#include "workload.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "workload_impl.h"

/* The registry, indexed by kind. */
static const hb_workload_desc *const registry[HB_WL_COUNT] = {
    [HB_WL_GEMM] = &hb_wl_gemm,
    [HB_WL_STREAM] = &hb_wl_stream,
    [HB_WL_PREFILL] = &hb_wl_prefill,
    [HB_WL_DECODE] = &hb_wl_decode,
    [HB_WL_TRAIN] = &hb_wl_train,
    [HB_WL_COLLECTIVE] = &hb_wl_collective,
    [HB_WL_SERVE] = &hb_wl_serve,
};

int hb_workload_descs(const hb_workload_desc *const **list) {
    *list = registry;
    return HB_WL_COUNT;
}

const hb_workload_desc *hb_workload_desc_of(hb_workload_kind w) {
    return (w >= 0 && w < HB_WL_COUNT) ? registry[w] : NULL;
}

const hb_workload_desc *hb_workload_find(const char *name) {
    for (int i = 0; i < HB_WL_COUNT; i++)
        if (strcmp(name, registry[i]->name) == 0) return registry[i];
    return NULL;
}

static const char *const kv_names[HB_KV_COUNT] = {"auto", "f32", "bf16", "f16", "fp8"};
const char *hb_kvt_name(hb_kvt k) { return k >= 0 && k < HB_KV_COUNT ? kv_names[k] : "?"; }
int hb_kvt_parse(const char *s, hb_kvt *out) {
    for (int i = 0; i < HB_KV_COUNT; i++)
        if (strcmp(s, kv_names[i]) == 0) { *out = (hb_kvt)i; return 0; }
    return -1;
}

const char *hb_case_model_name(const hb_case *c, char *buf, int len) {
    char name[96];
    hb_model_display_name(&c->model, name, sizeof name);
    if (!c->weights[0] || c->weights_model) {
        snprintf(buf, (size_t)len, "%s", name);
        return buf;
    }
    /* the checkpoint folder's (or file's) last component */
    char path[sizeof c->weights];
    snprintf(path, sizeof path, "%s", c->weights);
    for (size_t n = strlen(path); n > 1 && path[n - 1] == '/'; n--) path[n - 1] = '\0';
    const char *base = strrchr(path, '/');
    snprintf(buf, (size_t)len, "%s@%.40s", name, base ? base + 1 : path);
    return buf;
}

const char *hb_case_dtype_name(const hb_case *c) {
    if (c->quant == HB_QUANT_BLOCK) return c->dtype == HB_FP8_E5M2 ? "e5m2-block" : "fp8-block";
    return hb_dtype_name(c->dtype);
}

int hb_workload_takes(const hb_workload_desc *d, const char *key) {
    for (const char *const *k = d->plan_keys; *k; k++)
        if (strcmp(*k, key) == 0) return 1;
    return 0;
}

const char *hb_workload_name(hb_workload_kind w) {
    const hb_workload_desc *d = hb_workload_desc_of(w);
    return d ? d->name : "?";
}

int hb_workload_parse(const char *s, hb_workload_kind *out) {
    const hb_workload_desc *d = hb_workload_find(s);
    if (!d) return -1;
    *out = d->kind;
    return 0;
}

/* ---- headline rates ---- */
static const char *const headline_units[] = {"FLOP/s", "B/s", "tokens/s", "tokens/s", "tokens/s"};
static const char *const headline_names[] = {"FLOP/s", "B/s", "input tokens/s", "output tokens/s",
                                             "trained tokens/s"};

const char *hb_headline_unit(hb_headline h) { return headline_units[h]; }
const char *hb_headline_name(hb_headline h) { return headline_names[h]; }

double hb_headline_per_iter(hb_headline h, const hb_cost *k) {
    switch (h) {
    case HB_HEADLINE_FLOPS: return k->flops;
    case HB_HEADLINE_BYTES: return k->bytes;
    case HB_HEADLINE_TOKENS_IN: return k->tokens_in;
    case HB_HEADLINE_TOKENS_TRAINED: return k->tokens_in;
    case HB_HEADLINE_TOKENS_OUT: return k->tokens_out;
    }
    return 0;
}

/* ---- label and cost of a case ---- */
void hb_case_label(const hb_case *c, char *buf, int len) {
    const hb_workload_desc *d = hb_workload_desc_of(c->workload);
    if (d) d->label(c, buf, len);
    else snprintf(buf, len, "?");
}

hb_status hb_case_cost(const hb_case *c, hb_cost *k, hb_err *err) {
    k->flops = k->bytes = k->tokens_in = k->tokens_out = 0;
    k->mem_bytes = 0;
    const hb_workload_desc *d = hb_workload_desc_of(c->workload);
    return d ? d->cost(c, k, err) : hb_errf(err, HB_ERR_INTERNAL, "unknown workload %d", (int)c->workload);
}

hb_status hb_case_resolve(hb_case *c, hb_err *err) {
    HB_TRY(hb_case_cost(c, &c->cost, err));
    hb_case_label(c, c->label, sizeof c->label);
    return HB_OK;
}

/* ---- running a case: dispatch to the descriptor ---- */
hb_status hb_workload_setup(hb_backend *be, const hb_case *c, hb_workload **out, hb_err *err) {
    return hb_workload_setup_group(be, c, NULL, out, err);
}

int64_t hb_case_group_size(const hb_case *c) {
    const hb_workload_desc *d = hb_workload_desc_of(c->workload);
    if (!d) return 1;
    int64_t n = 1;
    if (hb_workload_takes(d, "dp") && c->dp > 1) n *= c->dp;
    if (hb_workload_takes(d, "tp") && c->tp > 1) n *= c->tp;
    if (hb_workload_takes(d, "ep") && c->ep > 1) n *= c->ep;
    if (hb_workload_takes(d, "coll_ranks") && c->coll_ranks > 1) n *= c->coll_ranks;
    return n;
}

hb_comm *hb_workload_comm(const hb_workload *w) { return w->group; }
int hb_workload_has_after_step(const hb_workload *w) { return w->after_step != NULL; }
hb_status hb_workload_after_step(hb_workload *w) { return w->after_step ? w->after_step(w) : HB_OK; }

hb_status hb_workload_setup_group(hb_backend *be, const hb_case *c, hb_comm *g, hb_workload **out,
                                  hb_err *err) {
    *out = NULL;
    hb_workload *w = calloc(1, sizeof *w);
    if (!w) return hb_errf(err, HB_ERR_NOMEM, "out of host memory");
    w->be = be;
    w->c = *c;
    w->group = g;
    w->desc = hb_workload_desc_of(c->workload);
    hb_status s = w->desc ? w->desc->setup(w, err)
                          : hb_errf(err, HB_ERR_INTERNAL, "unknown workload %d", (int)c->workload);
    if (s == HB_OK) s = be->ops->sync(be);
    if (s != HB_OK) {
        if (err && !err->msg[0]) hb_errf(err, s, "%s: setup failed: %s", hb_workload_name(c->workload),
                                         be->err[0] ? be->err : hb_status_str(s));
        hb_workload_free(w);
        return s;
    }
    *out = w;
    return HB_OK;
}

hb_status hb_workload_step(hb_workload *w) { return w->step(w); }

hb_status hb_workload_output(const hb_workload *w, float **host, int64_t *n) {
    *host = malloc((size_t)w->out_n * sizeof **host);
    if (!*host) return HB_ERR_NOMEM;
    *n = w->out_n;
    hb_status s = w->be->ops->download(w->be, *host, w->out, (size_t)w->out_n * sizeof **host);
    if (s == HB_OK) s = w->be->ops->sync(w->be);
    if (s != HB_OK) {
        free(*host);
        *host = NULL;
        *n = 0;
    }
    return s;
}

hb_status hb_workload_fingerprint(const hb_workload *w, double fp[HB_FP_LEN]) {
    if (!w->have_fp) return HB_ERR_INTERNAL;
    memcpy(fp, w->fp, sizeof w->fp);
    return HB_OK;
}

int hb_workload_loss(const hb_workload *w, double *loss) {
    if (!w->have_loss) return 0;
    *loss = w->loss;
    return 1;
}

void hb_workload_free(hb_workload *w) {
    if (!w) return;
    if (w->free_impl) w->free_impl(w);
    free(w);
}
