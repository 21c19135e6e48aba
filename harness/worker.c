/* worker.c - one rank's work on one case (see worker.h). */
#include "worker.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "stats.h"
#include "timing.h"

hb_status hb_fault_parse(const char *spec, hb_fault *faults, int *n, hb_err *err) {
    *n = 0;
    if (!spec || !*spec) return HB_OK;
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", spec);
    char *save1 = NULL;
    for (char *item = strtok_r(buf, ";", &save1); item; item = strtok_r(NULL, ";", &save1)) {
        if (*n >= HB_MAX_FAULTS)
            return hb_errf(err, HB_ERR_INPUT, "HETBENCH_FAULT: more than %d faults", HB_MAX_FAULTS);
        hb_fault f = {.rank = -1, .case_id = -1, .kind = HB_FAULT_NONE};
        char *save2 = NULL;
        for (char *kv = strtok_r(item, ",", &save2); kv; kv = strtok_r(NULL, ",", &save2)) {
            char *eq = strchr(kv, '=');
            if (!eq)
                return hb_errf(err, HB_ERR_INPUT, "HETBENCH_FAULT: '%s' is not key=value (keys: rank, case, kind)", kv);
            *eq = 0;
            const char *k = kv, *v = eq + 1;
            char *end = NULL;
            if (strcmp(k, "rank") == 0 || strcmp(k, "case") == 0) {
                long x = strcmp(v, "*") == 0 ? -1 : strtol(v, &end, 10);
                if (strcmp(v, "*") != 0 && (!*v || *end || x < 0))
                    return hb_errf(err, HB_ERR_INPUT, "HETBENCH_FAULT: %s=%s is not a non-negative integer or *", k, v);
                if (k[0] == 'r') f.rank = (int)x;
                else f.case_id = (int)x;
            } else if (strcmp(k, "kind") == 0) {
                if (strcmp(v, "error") == 0) f.kind = HB_FAULT_ERROR;
                else if (strcmp(v, "abort") == 0) f.kind = HB_FAULT_ABORT;
                else if (strcmp(v, "hang") == 0) f.kind = HB_FAULT_HANG;
                else if (strcmp(v, "exit") == 0) f.kind = HB_FAULT_EXIT;
                else if (strcmp(v, "disk-full") == 0) f.kind = HB_FAULT_DISK_FULL;
                else if (strcmp(v, "corrupt") == 0) f.kind = HB_FAULT_CORRUPT;
                else if (strcmp(v, "comm_error") == 0) f.kind = HB_FAULT_COMM_ERROR;
                else if (strcmp(v, "comm_abort") == 0) f.kind = HB_FAULT_COMM_ABORT;
                else if (strcmp(v, "comm_hang") == 0) f.kind = HB_FAULT_COMM_HANG;
                else return hb_errf(err, HB_ERR_INPUT, "HETBENCH_FAULT: kind=%s (accepted: error, abort, hang, exit, "
                                    "disk-full, corrupt, comm_error, comm_abort, comm_hang)", v);
            } else {
                return hb_errf(err, HB_ERR_INPUT, "HETBENCH_FAULT: unknown key '%s' (accepted: rank, case, kind)", k);
            }
        }
        if (f.kind == HB_FAULT_NONE) return hb_errf(err, HB_ERR_INPUT, "HETBENCH_FAULT: a fault needs kind=");
        faults[(*n)++] = f;
    }
    return HB_OK;
}

static hb_fault_kind fault_for(const hb_worker *w, int case_id) {
    for (int i = 0; i < w->n_faults; i++) {
        const hb_fault *f = &w->faults[i];
        if ((f->rank < 0 || f->rank == w->rank) && (f->case_id < 0 || f->case_id == case_id)) return f->kind;
    }
    return HB_FAULT_NONE;
}

static void fail_record(hb_record *rec, const char *status, const char *msg) {
    snprintf(rec->status, sizeof rec->status, "%s", status);
    snprintf(rec->error, sizeof rec->error, "%.255s", msg);
    for (int j = 0; j < HB_FP_LEN; j++) rec->fingerprint[j] = NAN;
    rec->energy_counter_j = rec->energy_integral_j = NAN;
    rec->energy_valid = 0;
    rec->energy_flags |= HB_ENERGY_NO_METER;
}

hb_status hb_worker_run_case(hb_worker *w, const hb_case *c, hb_record *rec) {
    hb_record_init(rec, c->id, w->rank);
    if (w->mo.stop && *w->mo.stop) {
        fail_record(rec, "interrupted", "stopped by a signal before the case started");
        return HB_ERR_INTERRUPTED;
    }
    const hb_fault_kind fault = fault_for(w, c->id);
    switch (fault) {
    case HB_FAULT_ERROR:
        fail_record(rec, "failed", "injected fault (HETBENCH_FAULT kind=error)");
        return HB_OK;
    case HB_FAULT_ABORT:
        abort();
    case HB_FAULT_EXIT:
        _exit(3);
    case HB_FAULT_HANG:
        for (;;) pause(); /* signals still set the stop flag; the coordinator's deadline ends us */
    default:
        break;
    }
    hb_err werr = {{0}};
    hb_workload *wl = NULL;
    w->be->err[0] = 0;
    hb_comm *g = NULL;
    const int64_t gsize = hb_case_group_size(c);
    for (int i = 0; i < w->n_groups && gsize > 1; i++)
        if (w->group_size[i] == gsize) g = &w->groups[i];
    if (g) {
        memset(&g->stats, 0, sizeof g->stats);
        g->err[0] = 0;
        g->fault = fault == HB_FAULT_CORRUPT ? HB_COMM_FAULT_CORRUPT : fault == HB_FAULT_COMM_ERROR ? HB_COMM_FAULT_ERROR
                 : fault == HB_FAULT_COMM_ABORT ? HB_COMM_FAULT_ABORT : fault == HB_FAULT_COMM_HANG ? HB_COMM_FAULT_HANG : 0;
    }
    hb_status s = hb_workload_setup_group(w->be, c, g, &wl, &werr);
    if (s == HB_OK) s = hb_measure_case(w->be, w->meter, wl, c, &w->mo, rec, &werr);
    if (s == HB_OK) { /* MoE: the tokens each expert received (into the record, which owns them) */
        const int64_t *cnt;
        int64_t nl, ne;
        hb_workload_expert_tokens(wl, &cnt, &nl, &ne);
        if (cnt && nl * ne > 0 && (rec->expert_tokens = malloc((size_t)(nl * ne) * sizeof *cnt))) {
            memcpy(rec->expert_tokens, cnt, (size_t)(nl * ne) * sizeof *cnt);
            rec->n_moe_layers = nl, rec->n_experts = ne;
            rec->expert_imbalance = hb_expert_imbalance(cnt, nl, ne);
        }
        /* prefill/decode: the token ids, for a token-by-token comparison with another
         * implementation (untimed: after the window) */
        int32_t *ids;
        int64_t gr, gc;
        s = hb_workload_generated(wl, &ids, &gr, &gc);
        if (s == HB_OK) rec->generated = ids, rec->gen_rows = gr, rec->gen_cols = gc;
        else if (!werr.msg[0]) snprintf(werr.msg, sizeof werr.msg, "reading the generated tokens: %.200s", w->be->err);
        /* serve: the last stream's statistics and request records */
        const double *rq;
        int64_t nr;
        if (hb_workload_serve(wl, rec->serve, &rq, &nr) && nr > 0 &&
            (rec->requests = malloc((size_t)nr * HB_SERVE_REQ_COLS * sizeof *rq))) {
            memcpy(rec->requests, rq, (size_t)nr * HB_SERVE_REQ_COLS * sizeof *rq);
            rec->n_requests = nr;
        }
    }
    hb_workload_free(wl);
    if (s == HB_ERR_INTERRUPTED) {
        hb_record_free(rec); /* iteration times and power trace */
        fail_record(rec, "interrupted", "stopped by a signal during the case");
        return HB_ERR_INTERRUPTED;
    }
    if (s != HB_OK && g && g->err[0]) { /* the collective's own message first */
        char m[sizeof werr.msg];
        snprintf(m, sizeof m, "%s (%.700s)", g->err, werr.msg[0] ? werr.msg : hb_status_str(s));
        memcpy(werr.msg, m, sizeof m);
    }
    /* a collective of the group missed the deadline (or the comm was lost before): the group
     * is lost, this rank with it */
    if (s != HB_OK) fail_record(rec, g && g->lost ? "lost" : "failed", werr.msg[0] ? werr.msg : hb_status_str(s));
    if (g) {
        rec->group_id = g->id;
        rec->group_size = g->size;
        rec->group_rank = g->rank;
    }
    /* the rank's reference speed again, after its last case (compared with /devices ref_loop_s) */
    if (c->id == w->last_case_id) rec->ref_loop_s_end = hb_timing_ref_loop_s(5);
    return HB_OK;
}

/* ---- --interleave: one case's windows gathered across rounds ---- */

static double *dup_doubles(const double *x, int64_t n) {
    if (n <= 0 || !x) return NULL;
    double *p = malloc((size_t)n * sizeof *p);
    if (p) memcpy(p, x, (size_t)n * sizeof *p);
    return p;
}

hb_status hb_record_add_window(hb_record *acc, const hb_record *win) {
    if (!acc->status[0]) { /* the first window: a deep copy */
        hb_record c = *win;
        c.iter_seconds = dup_doubles(win->iter_seconds, win->n_iters);
        c.power = dup_doubles(win->power, 2 * win->n_power);
        /* train: the loss of the first window's steps (each window sets the model up afresh) */
        c.loss = dup_doubles(win->loss, win->n_loss);
        /* MoE: the first timed iteration's counts (SCHEMA.md), as without --interleave; serve: the
         * window's request records; the record owns its copies (win's are freed by the caller) */
        c.requests = dup_doubles(win->requests, win->n_requests * HB_SERVE_REQ_COLS);
        const int64_t n_cnt = win->expert_tokens ? win->n_moe_layers * win->n_experts : 0;
        c.expert_tokens = n_cnt > 0 ? malloc((size_t)n_cnt * sizeof *c.expert_tokens) : NULL;
        if (c.expert_tokens) memcpy(c.expert_tokens, win->expert_tokens, (size_t)n_cnt * sizeof *c.expert_tokens);
        const int64_t n_gen = win->generated ? win->gen_rows * win->gen_cols : 0;
        c.generated = n_gen > 0 ? malloc((size_t)n_gen * sizeof *c.generated) : NULL;
        if (c.generated) memcpy(c.generated, win->generated, (size_t)n_gen * sizeof *c.generated);
        if ((win->n_iters > 0 && win->iter_seconds && !c.iter_seconds) || (win->n_power > 0 && win->power && !c.power) ||
            (win->n_loss > 0 && win->loss && !c.loss) || (n_cnt > 0 && !c.expert_tokens) || (n_gen > 0 && !c.generated) ||
            (win->n_requests > 0 && win->requests && !c.requests)) {
            free(c.iter_seconds);
            free(c.power);
            free(c.loss);
            free(c.expert_tokens);
            free(c.generated);
            free(c.requests);
            return HB_ERR_NOMEM;
        }
        if (!c.expert_tokens) c.n_moe_layers = c.n_experts = 0;
        if (!c.generated) c.gen_rows = c.gen_cols = 0;
        if (!c.requests) c.n_requests = 0;
        if (!c.loss) c.n_loss = 0;
        if (!c.power) c.n_power = 0;
        c.n_reps = 1;
        c.rep_iters[0] = win->n_iters;
        *acc = c;
        return HB_OK;
    }
    if (strcmp(acc->status, "ok") != 0) return HB_OK; /* already failed: the first failure stands */
    if (strcmp(win->status, "ok") != 0) {
        snprintf(acc->status, sizeof acc->status, "%s", win->status);
        snprintf(acc->error, sizeof acc->error, "window %d: %.230s", acc->n_reps + 1, win->error);
        return HB_OK;
    }
    if (acc->n_reps >= HB_MAX_REPEAT) return HB_OK;
    double *t = realloc(acc->iter_seconds, (size_t)(acc->n_iters + win->n_iters + 1) * sizeof *t);
    if (!t) return HB_ERR_NOMEM;
    if (win->n_iters > 0) memcpy(t + acc->n_iters, win->iter_seconds, (size_t)win->n_iters * sizeof *t);
    acc->iter_seconds = t;
    acc->n_iters += win->n_iters;
    if (win->requests && win->n_requests > 0) { /* serve: the last window's stream */
        double *q = dup_doubles(win->requests, win->n_requests * HB_SERVE_REQ_COLS);
        if (!q) return HB_ERR_NOMEM;
        free(acc->requests);
        acc->requests = q;
        acc->n_requests = win->n_requests;
        memcpy(acc->serve, win->serve, sizeof acc->serve);
    }
    acc->rep_iters[acc->n_reps++] = win->n_iters;
    acc->window_s += win->window_s;
    /* energy: sums (NaN stays NaN: not measured), the window's flags and validity too */
    acc->energy_counter_j += win->energy_counter_j;
    acc->energy_integral_j += win->energy_integral_j;
    acc->energy_j += win->energy_j;
    acc->energy_net_j += win->energy_net_j;
    acc->host_energy_j += win->host_energy_j;
    acc->energy_ratio = acc->energy_counter_j / acc->energy_integral_j;
    acc->avg_w = acc->energy_j / acc->window_s;
    acc->peak_w = fmax(acc->peak_w, win->peak_w);
    acc->max_gap_s = fmax(acc->max_gap_s, win->max_gap_s);
    acc->energy_valid = acc->energy_valid && win->energy_valid;
    acc->energy_flags |= win->energy_flags;
    acc->power_limit_w_end = win->power_limit_w_end;
    acc->sm_clock_mhz_end = win->sm_clock_mhz_end;
    acc->mem_clock_mhz_end = win->mem_clock_mhz_end;
    acc->temperature_c_end = win->temperature_c_end;
    /* interference evidence: what the windows lost together */
    acc->cpu_s += win->cpu_s;
    acc->cpu_util = acc->n_threads > 0 ? acc->cpu_s / (acc->window_s * acc->n_threads) : NAN;
    acc->ctx_vol += win->ctx_vol;
    acc->ctx_invol += win->ctx_invol;
    acc->thread_ctx_invol += win->thread_ctx_invol;
    acc->other_cpu_s += win->other_cpu_s;
    acc->steal_s += win->steal_s;
    acc->loadavg_1m_end = win->loadavg_1m_end;
    acc->cpu_mhz_end = win->cpu_mhz_end;
    if (isfinite(win->ref_loop_s_end)) acc->ref_loop_s_end = win->ref_loop_s_end;
    return HB_OK;
}

/* ---- ceilings: what MFU and bandwidth utilisation divide by ---- */
static hb_status measure_rate(hb_worker *w, hb_case *c, double *rate, hb_err *err) {
    hb_workload *wl = NULL;
    hb_record rec = {0};
    HB_TRY(hb_case_resolve(c, err));
    hb_status s = hb_workload_setup(w->be, c, &wl, err);
    if (s == HB_OK) s = hb_measure_case(w->be, NULL, wl, c, NULL, &rec, err);
    if (s == HB_OK) {
        hb_stats st;
        hb_stats_compute(rec.iter_seconds, rec.n_iters, &st);
        /* the best iteration: a ceiling is what the device can do, not its average */
        *rate = hb_headline_per_iter(hb_workload_desc_of(c->workload)->headline, &c->cost) / st.min;
    }
    hb_record_free(&rec);
    hb_workload_free(wl);
    return s;
}

hb_status hb_worker_calibrate(hb_worker *w, const hb_case *cases, int n_cases, int verbose, hb_err *err) {
    hb_device_row *d = &w->dev;
    if (d->peak_gbps > 0) return HB_OK; /* datasheet figures */
    int used[HB_DTYPE_COUNT] = {0};
    used[HB_F32] = 1;
    for (int i = 0; i < n_cases; i++)
        if (hb_workload_takes(hb_workload_desc_of(cases[i].workload), "dtype")) used[cases[i].dtype] = 1;
    hb_case c = {.seed = 42, .warmup_iters = 1, .min_iters = 3, .min_seconds = 0.3, .max_iters = 1000};
    if (verbose) fprintf(stderr, "hetbench: measuring the %s ceilings (gemm, stream)...\n", w->be->info.backend);
    char src[128] = "measured:";
    for (int dt = 0; dt < HB_DTYPE_COUNT; dt++) {
        if (!used[dt]) continue;
        c.workload = HB_WL_GEMM;
        c.dtype = (hb_dtype)dt;
        c.m = c.n = c.k = 1024;
        double r = NAN;
        hb_status s = measure_rate(w, &c, &r, err);
        if (s == HB_ERR_UNSUPPORTED) continue;
        HB_TRY(s);
        double tf = r / 1e12;
        if (dt == HB_F32) d->peak_tflops_f32 = tf;
        if (dt == HB_BF16) d->peak_tflops_bf16 = tf;
        if (dt == HB_F16) d->peak_tflops_f16 = tf;
        if (dt == HB_FP8_E4M3) d->peak_tflops_fp8 = tf;
        strncat(src, dt == HB_F32 ? " gemm 1024^3 " : ",", sizeof src - strlen(src) - 1);
        strncat(src, hb_dtype_name((hb_dtype)dt), sizeof src - strlen(src) - 1);
    }
    c.workload = HB_WL_STREAM;
    c.stream_op = HB_STREAM_TRIAD;
    /* STREAM's rule: the three arrays together at least 4x the last-level cache, else the
     * "bandwidth" is the cache's (3 x 128 MiB in a 260 MiB L3 gave 163%) */
    int64_t n = 1 << 25;
    while (d->llc_bytes > 0 && 3 * 4 * n < 4 * d->llc_bytes) n *= 2;
    c.stream_n = n;
    d->stream_bytes = 3 * 4 * n;
    double bw = NAN;
    HB_TRY(measure_rate(w, &c, &bw, err));
    d->peak_gbps = bw / 1e9;
    char what[96];
    snprintf(what, sizeof what, "; stream triad 3x%lldMiB (best iteration)", (long long)(4 * n >> 20));
    strncat(src, what, sizeof src - strlen(src) - 1);
    snprintf(d->peak_source, sizeof d->peak_source, "%s", src);
    return HB_OK;
}

hb_status hb_worker_check_fit(hb_worker *w, const hb_case *cases, int n_cases, hb_err *err) {
    int64_t free_b = 0, total_b = 0;
    HB_TRY(w->be->ops->mem_info(w->be, &free_b, &total_b));
    for (int i = 0; i < n_cases; i++) {
        const hb_case *c = &cases[i];
        if (c->cost.mem_bytes > free_b) {
            return hb_errf(err, HB_ERR_TOO_LARGE,
                           "case %d (%.159s): needs %.2f GiB of memory, the %s device has %.2f GiB available "
                           "(of %.2f GiB); use fewer layers, a smaller batch or shorter sequences",
                           c->id, c->label, (double)c->cost.mem_bytes / (1 << 30), w->be->info.backend,
                           (double)free_b / (1 << 30), (double)total_b / (1 << 30));
        }
    }
    return HB_OK;
}

/* ---- fp8 support, probed before dispatch ---- */

/* A 2 x n x n matmul in the case's recipe (gemm: A in fp8 too), and for an fp8 KV cache one
 * kv_store + attention; the backend's status and message (be->err) say what it cannot do. */
static hb_status probe(hb_backend *be, const hb_case *c, int gemm, int kv8) {
    const int64_t qb = c->quant == HB_QUANT_BLOCK ? c->quant_block : 32, M = 2, N = qb, K = qb;
    const hb_dtype dt = c->dtype;
    void *p[8] = {0};
    const size_t sz[8] = {(size_t)(N * K), 4 * (size_t)((N / qb) * (K / qb) + 1), (size_t)(M * K * 4),
                          (size_t)(M * K), 4 * (size_t)(M * (K / qb) + 1), (size_t)(M * N * 4),
                          4 * 16 * 4, 16 * 4 * 2};
    hb_status s = HB_OK;
    for (int i = 0; i < 8 && s == HB_OK; i++) s = be->ops->alloc(be, sz[i], &p[i]);
    if (s == HB_OK && hb_dtype_is_fp8(dt)) {
        hb_tensor w = hb_t2(p[0], dt, N, K, K), a = hb_t2(p[2], HB_F32, M, K, K);
        if (c->quant == HB_QUANT_BLOCK) w = hb_tq(w, HB_QUANT_BLOCK, qb, qb, p[1]);
        else if (!gemm) w = hb_tq(w, HB_QUANT_TENSOR, 0, 0, p[1]);
        if (gemm) { /* both operands fp8, as the gemm workload stores them */
            a = hb_t2(p[3], dt, M, K, K);
            if (c->quant == HB_QUANT_BLOCK) a = hb_tq(a, HB_QUANT_BLOCK, 1, qb, p[4]);
        }
        s = HB_OP(be, fill_random, .dst = w, .seed = 1, .scale = 1.0f);
        if (s == HB_OK) s = HB_OP(be, fill_random, .dst = a, .seed = 2, .scale = 1.0f);
        if (s == HB_OK) s = HB_OP(be, matmul, .out = hb_t2(p[5], HB_F32, M, N, N), .a = a, .w = w);
    }
    if (s == HB_OK && kv8) { /* caches (1, 4, 1, 16), one position stored, then attended */
        const float one[2] = {1.0f, 1.0f};
        float *kv = p[7];
        s = be->ops->upload(be, kv, one, sizeof one);
        hb_tensor kc = hb_tq(hb_t4(p[6], HB_FP8_E4M3, 1, 4, 1, 16), HB_QUANT_TENSOR, 0, 0, kv);
        hb_tensor vc = hb_tq(hb_t4((char *)p[6] + 64, HB_FP8_E4M3, 1, 4, 1, 16), HB_QUANT_TENSOR, 0, 0, kv + 1);
        hb_tensor x = hb_t2(p[2], HB_F32, 1, 16, 16);
        if (s == HB_OK) s = HB_OP(be, fill_random, .dst = hb_t1(p[2], HB_F32, 32), .seed = 3, .scale = 1.0f);
        if (s == HB_OK) s = HB_OP(be, kv_store, .k_cache = kc, .v_cache = vc, .k = x, .v = x, .B = 1, .T = 1);
        if (s == HB_OK)
            s = HB_OP(be, attention, .out = hb_t2(p[5], HB_F32, 1, 16, 16), .q = x, .k_cache = kc,
                      .v_cache = vc, .B = 1, .T = 1);
    }
    if (s == HB_OK) s = be->ops->sync(be);
    for (int i = 0; i < 8; i++) be->ops->free(be, p[i]);
    return s;
}

hb_status hb_worker_check_support(hb_worker *w, const hb_case *cases, int n_cases, hb_err *err) {
    int seen[64][4], n_seen = 0; /* (dtype, quant, block, gemm | kv8 << 1) already probed */
    for (int i = 0; i < n_cases; i++) {
        const hb_case *c = &cases[i];
        const hb_workload_desc *d = hb_workload_desc_of(c->workload);
        if (!hb_workload_takes(d, "dtype")) continue;
        const int gemm = !hb_workload_takes(d, "model");
        const int kv8 = hb_workload_takes(d, "kv_dtype") && hb_case_kv_dtype(c) == HB_FP8_E4M3;
        if (!hb_dtype_is_fp8(c->dtype) && !kv8) continue;
        const int key[4] = {(int)c->dtype, (int)c->quant, c->quant == HB_QUANT_BLOCK ? (int)c->quant_block : 0,
                            gemm | kv8 << 1};
        int j = 0;
        while (j < n_seen && memcmp(seen[j], key, sizeof key)) j++;
        if (j < n_seen) continue;
        if (n_seen < 64) memcpy(seen[n_seen++], key, sizeof key);
        w->be->err[0] = '\0';
        hb_status s = probe(w->be, c, gemm, kv8);
        if (s == HB_ERR_UNSUPPORTED || s == HB_ERR_INPUT)
            return hb_errf(err, HB_ERR_INPUT, "case %d (%.159s): the %s device '%s' does not support it: %s",
                           c->id, c->label, w->be->info.backend, w->be->info.name,
                           w->be->err[0] ? w->be->err : hb_status_str(s));
        if (s != HB_OK)
            return hb_errf(err, s, "case %d (%.159s): probing %s on the %s device failed: %s", c->id, c->label,
                           hb_case_dtype_name(c), w->be->info.backend, w->be->err[0] ? w->be->err : hb_status_str(s));
    }
    return HB_OK;
}
