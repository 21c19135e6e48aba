/* h5reader.c - reads a results file (schema "hetbench/1", results/SCHEMA.md) back into memory.
 *
 * Every problem with the file - missing, not HDF5, not hetbench, another schema version,
 * truncated or corrupt - is HB_ERR_INPUT with a message that names the path; HDF5's own error
 * stack is never printed. Attributes and /devices or /summary columns that a file lacks take
 * their defaults (0, "", NaN for doubles), so that files written before an optional field was
 * added still read; a field that is present but unreadable is an error. */
#include "results.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <time.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <float.h>
#include <stddef.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../backends/dtype.h"
#include "h5schema.h"

/* Guard against absurd sizes claimed by a corrupt file. */
#define HB_READ_MAX_ELEMS ((hsize_t)1 << 40)

typedef struct rd {
    const char *path;
    hb_err *err;
    hsize_t file_bytes; /* the file's size: no dataset or group can hold more than it stores */
} rd;

/* A dataset's declared size must be backed by storage in the file: unfiltered (how hetbench
 * writes), the allocated storage must hold every element and fit in the file; filtered
 * (compressed), at most ~1000x the file (deflate's limit is 1032:1). A 75 KB file declaring a
 * 2^27-element unwritten dataset used to make the reader allocate 1 GB before reading fill
 * values. */
static hb_status check_storage(const rd *c, hid_t d, const char *what, hsize_t n_bytes) {
    if (n_bytes == 0) return HB_OK;
    hid_t dcpl = H5Dget_create_plist(d);
    int nf = dcpl >= 0 ? H5Pget_nfilters(dcpl) : -1;
    hb_h5_close_id(dcpl);
    hsize_t stored = H5Dget_storage_size(d);
    int ok = nf == 0 ? stored >= n_bytes && stored <= c->file_bytes
                     : nf > 0 && n_bytes / 1100 <= c->file_bytes;
    if (!ok)
        return hb_errf(c->err, HB_ERR_INPUT, "%s: corrupt results file: %s declares %llu bytes but the file stores "
                       "%llu of them (file size %llu; accepted: datasets whose values are written)", c->path, what,
                       (unsigned long long)n_bytes, (unsigned long long)stored, (unsigned long long)c->file_bytes);
    return HB_OK;
}

/* A group's link count must be one the file can hold (a link takes more than 8 bytes). */
static hb_status check_links(const rd *c, const char *what, hsize_t n_links) {
    if (n_links <= (hsize_t)INT32_MAX && n_links <= c->file_bytes / 8) return HB_OK;
    return hb_errf(c->err, HB_ERR_INPUT, "%s: corrupt results file: %s declares %llu members, more than a %llu-byte "
                   "file can hold", c->path, what, (unsigned long long)n_links, (unsigned long long)c->file_bytes);
}

/* HB_ERR_INPUT "<path>: corrupt or truncated results file: cannot read <what>: <hdf5 msg>". */
static hb_status bad(const rd *c, const char *what) {
    char h5msg[256];
    hb_h5_last_error(h5msg, sizeof h5msg);
    return hb_errf(c->err, HB_ERR_INPUT,
                   "%s: corrupt or truncated results file: cannot read %s%s%s", c->path, what,
                   h5msg[0] ? ": " : "", h5msg);
}

static hb_status nomem(const rd *c) {
    return hb_errf(c->err, HB_ERR_NOMEM, "%s: out of memory", c->path);
}

/* ---- strings ---- */


/* Optional string attribute into a fixed buffer (truncated, "" when absent). */
static hb_status get_str(const rd *c, hid_t obj, const char *where, const char *name, char *buf,
                         size_t len) {
    buf[0] = '\0';
    htri_t e = H5Aexists(obj, name);
    char what[160], *s = NULL;
    snprintf(what, sizeof what, "attribute '%s' of %s", name, where);
    if (e < 0) return bad(c, what);
    if (e == 0) return HB_OK;
    if (hb_h5_attr_str_alloc(obj, name, &s) < 0) return bad(c, what);
    snprintf(buf, len, "%s", s);
    free(s);
    return HB_OK;
}

/* Optional numeric attribute of n elements (n == 1: scalar or [1]); absent leaves *v alone. */
static hb_status get_num(const rd *c, hid_t obj, const char *where, const char *name,
                         hid_t mem_type, hssize_t n, void *v) {
    char what[160];
    snprintf(what, sizeof what, "attribute '%s' of %s", name, where);
    htri_t e = H5Aexists(obj, name);
    if (e < 0) return bad(c, what);
    if (e == 0) return HB_OK;
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    hid_t sp = a >= 0 ? H5Aget_space(a) : H5I_INVALID_HID;
    hid_t ft = a >= 0 ? H5Aget_type(a) : H5I_INVALID_HID;
    H5T_class_t cls = ft >= 0 ? H5Tget_class(ft) : H5T_NO_CLASS;
    herr_t r = -1;
    if (sp >= 0 && H5Sget_simple_extent_npoints(sp) == n &&
        (cls == H5T_INTEGER || cls == H5T_FLOAT))
        r = H5Aread(a, mem_type, v);
    hb_h5_close_id(ft);
    hb_h5_close_id(sp);
    hb_h5_close_id(a);
    return r < 0 ? bad(c, what) : HB_OK;
}

static hb_status get_i64(const rd *c, hid_t o, const char *w, const char *name, int64_t *v) {
    return get_num(c, o, w, name, H5T_NATIVE_INT64, 1, v);
}
static hb_status get_i32(const rd *c, hid_t o, const char *w, const char *name, int32_t *v) {
    return get_num(c, o, w, name, H5T_NATIVE_INT32, 1, v);
}
static hb_status get_f64(const rd *c, hid_t o, const char *w, const char *name, double *v) {
    return get_num(c, o, w, name, H5T_NATIVE_DOUBLE, 1, v);
}
static hb_status get_f32(const rd *c, hid_t o, const char *w, const char *name, float *v) {
    double d = (double)*v;
    HB_TRY(get_f64(c, o, w, name, &d));
    *v = isfinite(d) && fabs(d) > FLT_MAX ? (d > 0 ? INFINITY : -INFINITY) : (float)d;
    return HB_OK;
}

/* ---- datasets ---- */

/* A double dataset of `rank` dims (the last dim must be `last` when rank == 2) into a malloc'd
 * array (NULL when empty); *n_rows = first dim. */
static hb_status get_f64_dset(const rd *c, hid_t loc, const char *where, const char *name,
                              int rank, hsize_t last, double **out, int64_t *n_rows) {
    char what[160];
    snprintf(what, sizeof what, "%s/%s", where, name);
    *out = NULL;
    *n_rows = 0;
    hid_t d = H5Dopen2(loc, name, H5P_DEFAULT);
    hid_t sp = d >= 0 ? H5Dget_space(d) : H5I_INVALID_HID;
    hsize_t dims[2] = {0, 0};
    hb_status st = HB_OK;
    if (sp < 0 || H5Sget_simple_extent_ndims(sp) != rank ||
        H5Sget_simple_extent_dims(sp, dims, NULL) < 0 || (rank == 2 && dims[1] != last) ||
        dims[0] > HB_READ_MAX_ELEMS) {
        st = bad(c, what);
    } else if (dims[0] > 0) {
        size_t count = (size_t)dims[0] * (rank == 2 ? (size_t)last : 1);
        st = check_storage(c, d, what, (hsize_t)count * sizeof **out);
        if (st == HB_OK && !(*out = malloc(count * sizeof **out))) st = nomem(c);
        if (st == HB_OK && H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, *out) < 0)
            st = bad(c, what);
    }
    if (st == HB_OK) {
        *n_rows = (int64_t)dims[0];
    } else {
        free(*out);
        *out = NULL;
    }
    hb_h5_close_id(sp);
    hb_h5_close_id(d);
    return st;
}

/* A compound table (/devices or /summary) into a calloc'd array of structs; columns missing
 * from the file are 0 / "" / NaN. */
static hb_status get_table(const rd *c, hid_t file, const char *name, const hb_h5_field *f,
                           int nf, size_t row_size, void **out, int *n_out) {
    char what[64];
    snprintf(what, sizeof what, "/%s", name);
    *out = NULL;
    *n_out = 0;
    hid_t d = H5Dopen2(file, name, H5P_DEFAULT);
    hid_t ft = d >= 0 ? H5Dget_type(d) : H5I_INVALID_HID;
    hid_t sp = d >= 0 ? H5Dget_space(d) : H5I_INVALID_HID;
    hid_t mt = H5I_INVALID_HID;
    hsize_t n = 0;
    hb_status st = HB_OK;
    if (ft < 0 || sp < 0 || H5Tget_class(ft) != H5T_COMPOUND ||
        H5Sget_simple_extent_ndims(sp) != 1 || H5Sget_simple_extent_dims(sp, &n, NULL) < 0 ||
        n > (hsize_t)INT32_MAX || (mt = hb_h5_compound(f, nf, row_size, ft)) < 0) {
        st = bad(c, what);
        goto done;
    }
    if ((st = check_storage(c, d, what, n * (hsize_t)H5Tget_size(ft))) != HB_OK) goto done;
    void *rows = calloc(n ? (size_t)n : 1, row_size);
    if (!rows) {
        st = nomem(c);
        goto done;
    }
    for (int i = 0; i < nf; i++) /* NaN (or the field's I32 default): "not measured" for columns the file lacks */
        if ((f[i].kind == HB_H5_F64 || (f[i].kind == HB_H5_I32 && f[i].missing)) &&
            H5Tget_member_index(ft, f[i].name) < 0)
            for (hsize_t r = 0; r < n; r++) {
                double nan = NAN;
                if (f[i].kind == HB_H5_F64) memcpy((char *)rows + r * row_size + f[i].offset, &nan, sizeof nan);
                else memcpy((char *)rows + r * row_size + f[i].offset, &f[i].missing, sizeof f[i].missing);
            }
    if (n > 0 && H5Dread(d, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, rows) < 0) {
        free(rows);
        st = bad(c, what);
        goto done;
    }
    hb_h5_terminate(f, nf, rows, (size_t)n, row_size);
    *out = rows;
    *n_out = (int)n;
done:
    hb_h5_close_id(mt);
    hb_h5_close_id(sp);
    hb_h5_close_id(ft);
    hb_h5_close_id(d);
    return st;
}

/* ---- names ---- */

/* Parses a non-negative decimal (all of s) into *v; 0 on success. */
static int parse_index(const char *s, int32_t *v) {
    if (!*s) return -1;
    long x = 0;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9') return -1;
        x = x * 10 + (*p - '0');
        if (x > INT32_MAX) return -1;
    }
    *v = (int32_t)x;
    return 0;
}

/* Name of the link at position i of group g (by name), into buf; 0 on success. */
static int link_name(hid_t g, hsize_t i, char *buf, size_t len) {
    ssize_t n = H5Lget_name_by_idx(g, ".", H5_INDEX_NAME, H5_ITER_INC, i, buf, len, H5P_DEFAULT);
    return (n < 0 || (size_t)n >= len) ? -1 : 0;
}

/* Enum from its name: the index i in [0, count) with name(i) == s; -1 if none. */
static int match_name(const char *s, int count, const char *(*name)(int)) {
    for (int i = 0; i < count; i++)
        if (strcmp(s, name(i)) == 0) return i;
    return -1;
}
static const char *norm_name(int i) { return hb_norm_name((hb_norm)i); }
static const char *act_name(int i) { return hb_act_name((hb_act)i); }
static const char *pos_name(int i) { return hb_pos_name((hb_pos)i); }
static const char *stream_op_name(int i) { return hb_stream_op_name((hb_stream_op)i); }
static const char *data_name(int i) { return hb_train_data_name((hb_train_data)i); }
static const char *recompute_name(int i) { return hb_recompute_name((hb_recompute)i); }

static hb_status enum_attr(const rd *c, hid_t g, const char *where, const char *name, int count,
                           const char *(*names)(int), int *v) {
    char s[64];
    HB_TRY(get_str(c, g, where, name, s, sizeof s));
    if (!s[0]) return HB_OK;
    int i = match_name(s, count, names);
    if (i < 0)
        return hb_errf(c->err, HB_ERR_INPUT, "%s: %s: unknown %s '%s'", c->path, where, name, s);
    *v = i;
    return HB_OK;
}

/* ---- cases ---- */

/* A file is untrusted input: every number of a case must be one a plan could have produced
 * (integers 0 .. 2^62, reals finite and >= 0, the temperature a float), else HB_ERR_INPUT
 * naming the attribute. The report computes with these values (groups by temperature, divides
 * by tokens per iteration), so a NaN or a negative size must stop here. */
static hb_status check_case(const rd *c, const char *where, const hb_case *k, const hb_cost *cost) {
    const hb_model *m = &k->model;
    const struct { const char *name; int64_t v; } ints[] = {
        {"quant_block", k->quant_block}, {"batch", k->batch}, {"prompt", k->prompt}, {"gen", k->gen},
        {"seq", k->seq}, {"layers", m->n_layers}, {"layers_full", m->n_layers_full}, {"m", k->m},
        {"n", k->n}, {"k", k->k}, {"stream_n", k->stream_n}, {"warmup_iters", k->warmup_iters},
        {"min_iters", k->min_iters}, {"max_iters", k->max_iters}, {"dim", m->dim}, {"heads", m->n_heads},
        {"kv_heads", m->n_kv_heads}, {"ffn_dim", m->ffn_dim}, {"vocab", m->vocab}, {"max_seq", m->max_seq},
        {"mem_bytes", cost->mem_bytes},
    };
    for (int i = 0; i < HB_ARRAY_LEN(ints); i++)
        if (ints[i].v < 0 || (ints[i].v > ((int64_t)1 << 62) && strcmp(ints[i].name, "mem_bytes")))
            return hb_errf(c->err, HB_ERR_INPUT, "%s: %s: attribute '%s' is %lld (accepted: integers 0 to "
                           "4611686018427387904)", c->path, where, ints[i].name, (long long)ints[i].v);
    const struct { const char *name; double v; } reals[] = {
        {"temperature", k->temperature}, {"min_seconds", k->min_seconds}, {"rope_theta", m->rope_theta},
        {"norm_eps", m->norm_eps}, {"flops_per_iter", cost->flops}, {"bytes_per_iter", cost->bytes},
        {"tokens_in_per_iter", cost->tokens_in}, {"tokens_out_per_iter", cost->tokens_out},
    };
    for (int i = 0; i < HB_ARRAY_LEN(reals); i++)
        if (!isfinite(reals[i].v) || reals[i].v < 0)
            return hb_errf(c->err, HB_ERR_INPUT, "%s: %s: attribute '%s' is %g (accepted: finite numbers >= 0)",
                           c->path, where, reals[i].name, reals[i].v);
    return HB_OK;
}

static hb_status read_case_attrs(const rd *c, hid_t g, const char *where, hb_case *k,
                                 hb_cost *cost) {
    char s[64];
    HB_TRY(get_str(c, g, where, "workload", s, sizeof s));
    if (s[0]) {
        hb_workload_kind w;
        if (hb_workload_parse(s, &w) != 0)
            return hb_errf(c->err, HB_ERR_INPUT, "%s: %s: unknown workload '%s'", c->path, where,
                           s);
        k->workload = w;
    }
    HB_TRY(get_str(c, g, where, "dtype", s, sizeof s));
    if (s[0]) {
        hb_dtype t;
        if (hb_dtype_parse(s, &t) != 0)
            return hb_errf(c->err, HB_ERR_INPUT, "%s: %s: unknown dtype '%s'", c->path, where, s);
        k->dtype = t;
        /* the recipe: fp8 models carry per-tensor scales (0.3.0), fp8-block its blocks */
        k->quant = !strcmp(s, "fp8-block") ? HB_QUANT_BLOCK : hb_dtype_is_fp8(t) ? HB_QUANT_TENSOR : HB_QUANT_NONE;
    }
    HB_TRY(get_i64(c, g, where, "quant_block", &k->quant_block));
    HB_TRY(get_str(c, g, where, "kv_dtype", s, sizeof s)); /* absent before 0.3.0: auto */
    if (s[0]) {
        hb_dtype t;
        if (hb_dtype_parse(s, &t) != 0)
            return hb_errf(c->err, HB_ERR_INPUT, "%s: %s: unknown kv_dtype '%s'", c->path, where, s);
        /* stored resolved; record it as auto when it is what auto gives (labels stay short) */
        hb_case probe = *k;
        probe.kv_dtype = HB_KV_AUTO;
        k->kv_dtype = hb_case_kv_dtype(&probe) == t ? HB_KV_AUTO
                      : t == HB_F32 ? HB_KV_F32 : t == HB_BF16 ? HB_KV_BF16 : t == HB_F16 ? HB_KV_F16 : HB_KV_FP8;
    }
    hb_model *m = &k->model;
    HB_TRY(get_str(c, g, where, "model", m->name, sizeof m->name));
    HB_TRY(get_i64(c, g, where, "batch", &k->batch));
    HB_TRY(get_i64(c, g, where, "prompt", &k->prompt));
    HB_TRY(get_i64(c, g, where, "gen", &k->gen));
    HB_TRY(get_i64(c, g, where, "seq", &k->seq));
    HB_TRY(get_i64(c, g, where, "layers", &m->n_layers));
    HB_TRY(get_i64(c, g, where, "layers_full", &m->n_layers_full));
    HB_TRY(get_i64(c, g, where, "m", &k->m));
    HB_TRY(get_i64(c, g, where, "n", &k->n));
    HB_TRY(get_i64(c, g, where, "k", &k->k));
    HB_TRY(get_i64(c, g, where, "stream_n", &k->stream_n));
    int e = 0;
    HB_TRY(enum_attr(c, g, where, "stream_op", 2, stream_op_name, &e));
    k->stream_op = (hb_stream_op)e;
    HB_TRY(get_num(c, g, where, "seed", H5T_NATIVE_UINT64, 1, &k->seed));
    HB_TRY(get_f32(c, g, where, "temperature", &k->temperature));
    /* train (0.5): absent for other workloads */
    HB_TRY(get_f32(c, g, where, "lr", &k->lr));
    HB_TRY(get_f32(c, g, where, "beta1", &k->beta1));
    HB_TRY(get_f32(c, g, where, "beta2", &k->beta2));
    HB_TRY(get_f32(c, g, where, "eps", &k->eps));
    HB_TRY(get_f32(c, g, where, "weight_decay", &k->weight_decay));
    HB_TRY(get_i64(c, g, where, "grad_accum", &k->grad_accum));
    HB_TRY(get_i64(c, g, where, "dp", &k->dp));
    /* serve (0.6): absent for other workloads */
    HB_TRY(get_i64(c, g, where, "isl", &k->isl));
    HB_TRY(get_i64(c, g, where, "osl", &k->osl));
    HB_TRY(get_f64(c, g, where, "range_ratio", &k->range_ratio));
    HB_TRY(get_i64(c, g, where, "requests", &k->requests));
    HB_TRY(get_i64(c, g, where, "concurrency", &k->concurrency));
    HB_TRY(get_f64(c, g, where, "arrival_rate", &k->arrival_rate));
    HB_TRY(get_i64(c, g, where, "max_batch_tokens", &k->max_batch_tokens));
    HB_TRY(get_i64(c, g, where, "max_seqs", &k->max_seqs));
    HB_TRY(get_i64(c, g, where, "kv_blocks", &k->kv_blocks));
    HB_TRY(get_i64(c, g, where, "kv_block_size", &k->kv_block_size));
    HB_TRY(get_f64(c, g, where, "slo_ttft_s", &k->slo_ttft_s));
    HB_TRY(get_f64(c, g, where, "slo_tpot_s", &k->slo_tpot_s));
    e = 0;
    HB_TRY(enum_attr(c, g, where, "data", HB_DATA_COUNT, data_name, &e));
    k->data = (hb_train_data)e;
    e = 0; /* train: none in files before recompute (0.7) */
    HB_TRY(enum_attr(c, g, where, "recompute", HB_RECOMPUTE_COUNT, recompute_name, &e));
    k->recompute = (hb_recompute)e;
    HB_TRY(get_i64(c, g, where, "warmup_iters", &k->warmup_iters));
    HB_TRY(get_i64(c, g, where, "min_iters", &k->min_iters));
    HB_TRY(get_f64(c, g, where, "min_seconds", &k->min_seconds));
    k->repeat = 1; /* files before 0.4: one window */
    HB_TRY(get_i64(c, g, where, "repeat", &k->repeat));
    HB_TRY(get_i64(c, g, where, "max_iters", &k->max_iters));
    HB_TRY(get_i64(c, g, where, "dim", &m->dim));
    HB_TRY(get_i64(c, g, where, "heads", &m->n_heads));
    HB_TRY(get_i64(c, g, where, "kv_heads", &m->n_kv_heads));
    HB_TRY(get_i64(c, g, where, "ffn_dim", &m->ffn_dim));
    HB_TRY(get_i64(c, g, where, "vocab", &m->vocab));
    HB_TRY(get_i64(c, g, where, "max_seq", &m->max_seq));
    e = 0;
    HB_TRY(enum_attr(c, g, where, "norm", 2, norm_name, &e));
    m->norm = (hb_norm)e;
    e = 0;
    HB_TRY(enum_attr(c, g, where, "activation", 2, act_name, &e));
    m->act = (hb_act)e;
    e = 0;
    HB_TRY(enum_attr(c, g, where, "positions", 2, pos_name, &e));
    m->pos = (hb_pos)e;
    int32_t flag = 0;
    HB_TRY(get_i32(c, g, where, "tied", &flag));
    m->tied = flag;
    flag = 0;
    HB_TRY(get_i32(c, g, where, "bias", &flag));
    m->bias = flag;
    HB_TRY(get_f32(c, g, where, "rope_theta", &m->rope_theta));
    HB_TRY(get_f32(c, g, where, "norm_eps", &m->norm_eps));
    /* MoE / MLA shape and the dense twin (optional: files before them, and dense models, lack
     * them); enough for labels and parameter counts */
    HB_TRY(get_i64(c, g, where, "head_dim", &m->head_dim));
    HB_TRY(get_i64(c, g, where, "experts", &m->n_experts));
    HB_TRY(get_i64(c, g, where, "top_k", &m->top_k));
    HB_TRY(get_i64(c, g, where, "shared_experts", &m->n_shared));
    HB_TRY(get_i64(c, g, where, "moe_ffn_dim", &m->moe_ffn_dim));
    HB_TRY(get_i64(c, g, where, "first_k_dense", &m->first_k_dense));
    HB_TRY(get_i64(c, g, where, "n_group", &m->n_group));
    HB_TRY(get_i64(c, g, where, "topk_group", &m->topk_group));
    HB_TRY(get_f32(c, g, where, "routed_scaling_factor", &m->routed_scale));
    HB_TRY(get_i64(c, g, where, "q_lora_rank", &m->q_lora_rank));
    HB_TRY(get_i64(c, g, where, "kv_lora_rank", &m->kv_lora_rank));
    HB_TRY(get_i64(c, g, where, "qk_nope_dim", &m->qk_nope_dim));
    HB_TRY(get_i64(c, g, where, "qk_rope_dim", &m->qk_rope_dim));
    HB_TRY(get_i64(c, g, where, "v_head_dim", &m->v_head_dim));
    char twin[16];
    HB_TRY(get_str(c, g, where, "dense_twin", twin, sizeof twin));
    m->dense_twin = !strcmp(twin, "total") ? HB_TWIN_TOTAL : !strcmp(twin, "active") ? HB_TWIN_ACTIVE : HB_TWIN_NONE;
    char rt[48];
    HB_TRY(get_str(c, g, where, "routing", rt, sizeof rt));
    if (!strcmp(rt, "balanced")) k->routing = HB_ROUTING_BALANCED;
    else if (!strncmp(rt, "zipf:", 5)) k->routing = HB_ROUTING_ZIPF, k->zipf_s = strtof(rt + 5, NULL);
    HB_TRY(get_f64(c, g, where, "flops_per_iter", &cost->flops));
    HB_TRY(get_f64(c, g, where, "bytes_per_iter", &cost->bytes));
    HB_TRY(get_f64(c, g, where, "tokens_in_per_iter", &cost->tokens_in));
    HB_TRY(get_f64(c, g, where, "tokens_out_per_iter", &cost->tokens_out));
    HB_TRY(get_i64(c, g, where, "mem_bytes", &cost->mem_bytes));
    return check_case(c, where, k, cost);
}

static hb_status read_record(const rd *c, hid_t g, const char *where, hb_record *rec) {
    hb_record_init(rec, rec->case_id, rec->rank); /* absent attributes: not measured */
    HB_TRY(get_str(c, g, where, "status", rec->status, sizeof rec->status));
    HB_TRY(get_str(c, g, where, "error", rec->error, sizeof rec->error));
    HB_TRY(get_f64(c, g, where, "window_s", &rec->window_s));
    HB_TRY(get_f64(c, g, where, "energy_counter_j", &rec->energy_counter_j));
    HB_TRY(get_f64(c, g, where, "energy_integral_j", &rec->energy_integral_j));
    HB_TRY(get_i32(c, g, where, "energy_valid", &rec->energy_valid));
    HB_TRY(get_num(c, g, where, "energy_flags", H5T_NATIVE_UINT32, 1, &rec->energy_flags));
    HB_TRY(get_num(c, g, where, "fingerprint", H5T_NATIVE_DOUBLE, HB_FP_LEN, rec->fingerprint));
    static const struct { const char *name; size_t off; } f64[] = {
#define F(x) {#x, offsetof(hb_record, x)}
        F(energy_j), F(energy_ratio), F(avg_w), F(peak_w), F(idle_w), F(energy_net_j),
        F(host_energy_j), F(power_hz), F(max_gap_s), F(power_limit_w_start),
        F(power_limit_w_end), F(sm_clock_mhz_start), F(sm_clock_mhz_end),
        F(mem_clock_mhz_start), F(mem_clock_mhz_end), F(temperature_c_start),
        F(temperature_c_end),
#undef F
    };
    for (int i = 0; i < HB_ARRAY_LEN(f64); i++)
        HB_TRY(get_f64(c, g, where, f64[i].name, (double *)((char *)rec + f64[i].off)));
    HB_TRY(get_str(c, g, where, "meter", rec->meter, sizeof rec->meter));
    HB_TRY(get_str(c, g, where, "energy_source", rec->energy_source, sizeof rec->energy_source));
    for (int i = 0; i < HB_H5_N_RECORD_TIMING_FIELDS; i++) { /* timing evidence (0.4) */
        const hb_h5_field *f = &hb_h5_record_timing_fields[i];
        hid_t mt = f->kind == HB_H5_F64 ? H5T_NATIVE_DOUBLE : f->kind == HB_H5_I64 ? H5T_NATIVE_INT64
                   : f->kind == HB_H5_U32 ? H5T_NATIVE_UINT32 : H5T_NATIVE_INT32;
        HB_TRY(get_num(c, g, where, f->name, mt, 1, (char *)rec + f->offset));
    }
    if (rec->n_reps < 0 || rec->n_reps > HB_MAX_REPEAT)
        return hb_errf(c->err, HB_ERR_INPUT, "%s: %s: n_reps = %d (accepted: 0 to %d)", c->path, where,
                       (int)rec->n_reps, HB_MAX_REPEAT);
    if (rec->n_reps > 1) HB_TRY(get_num(c, g, where, "rep_iters", H5T_NATIVE_INT64, rec->n_reps, rec->rep_iters));
    HB_TRY(get_f64_dset(c, g, where, "iter_seconds", 1, 1, &rec->iter_seconds, &rec->n_iters));
    for (int64_t i = 0; i < rec->n_iters; i++)
        if (!isfinite(rec->iter_seconds[i]) || rec->iter_seconds[i] < 0)
            return hb_errf(c->err, HB_ERR_INPUT, "%s: %s/iter_seconds[%lld] is %g (accepted: finite seconds >= 0)",
                           c->path, where, (long long)i, rec->iter_seconds[i]);
    int64_t n_iters = rec->n_iters;
    HB_TRY(get_i64(c, g, where, "n_iters", &n_iters));
    if (n_iters != rec->n_iters)
        return hb_errf(c->err, HB_ERR_INPUT,
                       "%s: %s: n_iters = %lld but iter_seconds has %lld values", c->path, where,
                       (long long)n_iters, (long long)rec->n_iters);
    HB_TRY(get_f64_dset(c, g, where, "power", 2, 2, &rec->power, &rec->n_power));
    if (H5Lexists(g, "loss", H5P_DEFAULT) > 0) { /* train (0.5) */
        HB_TRY(get_f64_dset(c, g, where, "loss", 1, 1, &rec->loss, &rec->n_loss));
        hid_t d = H5Dopen2(g, "loss", H5P_DEFAULT);
        HB_TRY(get_i64(c, d, where, "warmup", &rec->n_loss_warmup));
        H5Dclose(d);
        if (rec->n_loss_warmup < 0 || rec->n_loss_warmup > rec->n_loss)
            return hb_errf(c->err, HB_ERR_INPUT, "%s: %s/loss: warmup = %lld of %lld steps", c->path, where,
                           (long long)rec->n_loss_warmup, (long long)rec->n_loss);
    }
    if (H5Lexists(g, "requests", H5P_DEFAULT) > 0) { /* serve (0.6) */
        HB_TRY(get_f64_dset(c, g, where, "requests", 2, HB_SERVE_REQ_COLS, &rec->requests, &rec->n_requests));
        for (int i = 0; i < HB_SERVE_N_STATS; i++) HB_TRY(get_f64(c, g, where, hb_h5_serve_stats[i], &rec->serve[i]));
    }
    for (int64_t i = 0; i < 2 * rec->n_power; i++)
        if (!isfinite(rec->power[i]))
            return hb_errf(c->err, HB_ERR_INPUT, "%s: %s/power[%lld][%lld] is %g (accepted: finite t_s and watts)",
                           c->path, where, (long long)(i / 2), (long long)(i % 2), rec->power[i]);
    return HB_OK;
}

static int cmp_rec(const void *a, const void *b) {
    const hb_record *x = a, *y = b;
    return (x->rank > y->rank) - (x->rank < y->rank);
}

static int cmp_case(const void *a, const void *b) {
    const hb_result_case *x = a, *y = b;
    return (x->id > y->id) - (x->id < y->id);
}

/* Reads /cases/<name> (g open) into rc; rc->recs/n_ranks stay consistent for freeing. */
static hb_status read_case(const rd *c, hid_t g, const char *name, hb_result_case *rc) {
    char where[96];
    snprintf(where, sizeof where, "/cases/%s", name);
    rc->c.id = rc->id;
    HB_TRY(read_case_attrs(c, g, where, &rc->c, &rc->cost));
    H5G_info_t info;
    if (H5Gget_info(g, &info) < 0) return bad(c, where);
    HB_TRY(check_links(c, where, info.nlinks));
    rc->recs = calloc(info.nlinks ? (size_t)info.nlinks : 1, sizeof *rc->recs);
    if (!rc->recs) return nomem(c);
    for (hsize_t i = 0; i < info.nlinks; i++) {
        char lname[64], rwhere[160];
        int32_t rank;
        if (link_name(g, i, lname, sizeof lname) != 0) return bad(c, where);
        if (strncmp(lname, "rank", 4) != 0 || parse_index(lname + 4, &rank) != 0)
            continue; /* not a record: tolerated (optional additions) */
        snprintf(rwhere, sizeof rwhere, "%s/%s", where, lname);
        hid_t rg = H5Gopen2(g, lname, H5P_DEFAULT);
        if (rg < 0) return bad(c, rwhere);
        hb_record *rec = &rc->recs[rc->n_ranks++];
        rec->case_id = rc->id;
        rec->rank = rank;
        hb_status st = read_record(c, rg, rwhere, rec);
        H5Gclose(rg);
        HB_TRY(st);
    }
    qsort(rc->recs, (size_t)rc->n_ranks, sizeof *rc->recs, cmp_rec);
    return HB_OK;
}

static hb_status read_cases(const rd *c, hid_t file, hb_results *r) {
    hid_t cg = H5Gopen2(file, "cases", H5P_DEFAULT);
    if (cg < 0) return bad(c, "/cases");
    H5G_info_t info;
    hb_status st = HB_OK;
    if (H5Gget_info(cg, &info) < 0) {
        st = bad(c, "/cases");
    } else if ((st = check_links(c, "/cases", info.nlinks)) != HB_OK) {
    } else if (!(r->cases = calloc(info.nlinks ? (size_t)info.nlinks : 1, sizeof *r->cases))) {
        st = nomem(c);
    }
    for (hsize_t i = 0; st == HB_OK && i < info.nlinks; i++) {
        char name[64];
        int32_t id;
        if (link_name(cg, i, name, sizeof name) != 0) {
            st = bad(c, "/cases");
            break;
        }
        if (parse_index(name, &id) != 0) continue; /* not a case: tolerated */
        hid_t g = H5Gopen2(cg, name, H5P_DEFAULT);
        if (g < 0) {
            char what[96];
            snprintf(what, sizeof what, "/cases/%s", name);
            st = bad(c, what);
            break;
        }
        hb_result_case *rc = &r->cases[r->n_cases++];
        rc->id = id;
        st = read_case(c, g, name, rc);
        H5Gclose(g);
    }
    H5Gclose(cg);
    if (st == HB_OK) qsort(r->cases, (size_t)r->n_cases, sizeof *r->cases, cmp_case);
    return st;
}

/* ---- root ---- */

static hb_status check_schema(const rd *c, hid_t file, hb_results *r) {
    htri_t e = H5Aexists(file, "schema");
    char *s = NULL;
    if (e <= 0 || hb_h5_attr_str_alloc(file, "schema", &s) < 0)
        return hb_errf(c->err, HB_ERR_INPUT, "%s: not a hetbench results file", c->path);
    hb_status st = HB_OK;
    if (strcmp(s, HB_SCHEMA) != 0)
        st = hb_errf(c->err, HB_ERR_INPUT,
                     "%s: schema '%.64s' is not supported (this build reads " HB_SCHEMA ")",
                     c->path, s);
    snprintf(r->schema, sizeof r->schema, "%s", s);
    free(s);
    return st;
}

static hb_status read_meta(const rd *c, hid_t file, hb_run_meta *m) {
    const char *w = "/";
    HB_TRY(get_str(c, file, w, "version", m->version, sizeof m->version));
    HB_TRY(get_str(c, file, w, "git", m->git, sizeof m->git));
    HB_TRY(get_str(c, file, w, "created_utc", m->created_utc, sizeof m->created_utc));
    HB_TRY(get_str(c, file, w, "command_line", m->command_line, sizeof m->command_line));
    HB_TRY(get_i32(c, file, w, "mpi_size", &m->mpi_size));
    HB_TRY(get_str(c, file, w, "slurm_job_id", m->slurm_job_id, sizeof m->slurm_job_id));
    HB_TRY(get_str(c, file, w, "hosts", m->hosts, sizeof m->hosts));
    HB_TRY(get_str(c, file, w, "status", m->status, sizeof m->status));
    /* The plan: attribute, or the dataset /plan when it was too long for one. */
    htri_t e = H5Aexists(file, "plan");
    if (e < 0) return bad(c, "attribute 'plan' of /");
    if (e > 0) {
        if (hb_h5_attr_str_alloc(file, "plan", &m->plan) < 0) return bad(c, "attribute 'plan' of /");
        return HB_OK;
    }
    if (H5Lexists(file, "plan", H5P_DEFAULT) <= 0) {
        m->plan = strdup("");
        return m->plan ? HB_OK : nomem(c);
    }
    hid_t d = H5Dopen2(file, "plan", H5P_DEFAULT);
    hid_t ft = d >= 0 ? H5Dget_type(d) : H5I_INVALID_HID;
    hid_t mt = H5Tcopy(H5T_C_S1);
    char *s = NULL;
    hb_status st = HB_OK;
    if (ft < 0 || mt < 0 || H5Tget_class(ft) != H5T_STRING || H5Tis_variable_str(ft) <= 0 ||
        H5Tset_size(mt, H5T_VARIABLE) < 0 || H5Tset_cset(mt, H5Tget_cset(ft)) < 0 ||
        H5Dread(d, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, &s) < 0) {
        st = bad(c, "/plan");
    } else {
        m->plan = strdup(s ? s : "");
        if (!m->plan) st = nomem(c);
    }
    if (s) H5free_memory(s);
    hb_h5_close_id(mt);
    hb_h5_close_id(ft);
    hb_h5_close_id(d);
    return st;
}

static hb_status read_all(const rd *c, hid_t file, hb_results *r) {
    HB_TRY(check_schema(c, file, r));
    HB_TRY(read_meta(c, file, &r->meta));
    void *rows = NULL;
    HB_TRY(get_table(c, file, "devices", hb_h5_device_fields, HB_H5_N_DEVICE_FIELDS,
                     sizeof(hb_device_row), &rows, &r->n_devices));
    r->devices = rows;
    /* /idle: one value per device; NaN where the file has none. */
    r->idle_w = malloc((size_t)(r->n_devices ? r->n_devices : 1) * sizeof *r->idle_w);
    if (!r->idle_w) return nomem(c);
    for (int i = 0; i < r->n_devices; i++) r->idle_w[i] = NAN;
    double *idle = NULL;
    int64_t n_idle = 0;
    HB_TRY(get_f64_dset(c, file, "", "idle", 1, 1, &idle, &n_idle));
    for (int64_t i = 0; i < n_idle && i < r->n_devices; i++) r->idle_w[i] = idle[i];
    free(idle);
    /* /idle_info (optional): row of each rank; ranks without one keep method "" */
    r->idle = calloc((size_t)(r->n_devices ? r->n_devices : 1), sizeof *r->idle);
    if (!r->idle) return nomem(c);
    for (int i = 0; i < r->n_devices; i++) {
        r->idle[i].rank = i;
        r->idle[i].idle_w = r->idle_w[i];
        r->idle[i].seconds = NAN;
    }
    htri_t has_info = H5Lexists(file, "idle_info", H5P_DEFAULT);
    if (has_info < 0) return bad(c, "/idle_info");
    if (has_info > 0) {
        int n_info = 0;
        HB_TRY(get_table(c, file, "idle_info", hb_h5_idle_fields, HB_H5_N_IDLE_FIELDS,
                         sizeof(hb_idle_row), &rows, &n_info));
        const hb_idle_row *info = rows;
        for (int i = 0; i < n_info; i++)
            if (info[i].rank >= 0 && info[i].rank < r->n_devices) r->idle[info[i].rank] = info[i];
        free(rows);
    }
    HB_TRY(read_cases(c, file, r));
    rows = NULL;
    HB_TRY(get_table(c, file, "summary", hb_h5_summary_fields, HB_H5_N_SUMMARY_FIELDS,
                     sizeof(hb_summary_row), &rows, &r->n_rows));
    r->rows = rows;
    return HB_OK;
}

hb_status hb_results_read(const char *path, hb_results **out, hb_err *err) {
    if (!out) return hb_errf(err, HB_ERR_INTERNAL, "hb_results_read: out is NULL");
    *out = NULL;
    if (!path || !*path) return hb_errf(err, HB_ERR_INPUT, "no results file given");
    if (access(path, R_OK) != 0)
        return hb_errf(err, HB_ERR_INPUT, "%s: cannot open: %s", path, strerror(errno));
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    if (H5Fis_hdf5(path) <= 0) return hb_errf(err, HB_ERR_INPUT, "%s: not an HDF5 file", path);
    struct stat sb;
    if (stat(path, &sb) != 0 || !S_ISREG(sb.st_mode))
        return hb_errf(err, HB_ERR_INPUT, "%s: not a regular file", path);
    rd c = {path, err, (hsize_t)sb.st_size};
    hid_t file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (file < 0) {
        char h5msg[256];
        hb_h5_last_error(h5msg, sizeof h5msg);
        return hb_errf(err, HB_ERR_INPUT,
                       "%s: cannot open the HDF5 file (truncated or corrupt?)%s%s", path,
                       h5msg[0] ? ": " : "", h5msg);
    }
    hb_results *r = calloc(1, sizeof *r);
    hb_status st = r ? read_all(&c, file, r) : nomem(&c);
    H5Fclose(file);
    if (st != HB_OK) {
        hb_results_free(r);
        return st;
    }
    *out = r;
    return HB_OK;
}

/* ---- containment: the first read in a child, with a deadline ---- */

hb_status hb_results_read_contained(const char *path, double timeout_s, hb_results **out, hb_err *err) {
    if (!(timeout_s > 0)) return hb_results_read(path, out, err);
    *out = NULL;
    int fd[2];
    if (pipe(fd) != 0) return hb_errf(err, HB_ERR_IO, "%s: pipe: %s", path ? path : "", strerror(errno));
    fflush(NULL); /* nothing buffered is written twice */
    pid_t pid = fork();
    if (pid < 0) {
        close(fd[0]);
        close(fd[1]);
        return hb_errf(err, HB_ERR_IO, "%s: fork: %s", path ? path : "", strerror(errno));
    }
    if (pid == 0) { /* child: read, send the status and message, leave without cleanup */
        close(fd[0]);
        struct rlimit nocore = {0, 0}; /* a crash of libhdf5 here is expected, not a core file */
        setrlimit(RLIMIT_CORE, &nocore);
        const char *fault = getenv("HETBENCH_READ_FAULT");
        if (fault && !strcmp(fault, "hang"))
            for (;;) pause();
        if (fault && !strcmp(fault, "crash")) raise(SIGSEGV);
        hb_err e = {{0}};
        hb_results *r = NULL;
        int32_t st = hb_results_read(path, &r, &e);
        if (write(fd[1], &st, sizeof st) == (ssize_t)sizeof st) {
            ssize_t w = write(fd[1], e.msg, strlen(e.msg) + 1);
            (void)w;
        }
        _exit(0);
    }
    close(fd[1]);
    /* parent: wait for the child's answer (or EOF) until the deadline */
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    char buf[sizeof(int32_t) + sizeof err->msg];
    size_t got = 0;
    int timed_out = 0;
    for (;;) {
        clock_gettime(CLOCK_MONOTONIC, &t);
        double left = timeout_s - ((double)(t.tv_sec - t0.tv_sec) + 1e-9 * (double)(t.tv_nsec - t0.tv_nsec));
        if (left <= 0) {
            timed_out = 1;
            break;
        }
        struct pollfd pf = {.fd = fd[0], .events = POLLIN};
        int pr = poll(&pf, 1, (int)(left * 1000) + 1);
        if (pr < 0 && errno == EINTR) continue;
        if (pr <= 0) continue; /* re-check the clock */
        ssize_t n = read(fd[0], buf + got, sizeof buf - got);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break; /* EOF: the child is done (or died) */
        got += (size_t)n;
        if (got == sizeof buf) break;
    }
    close(fd[0]);
    if (timed_out) kill(pid, SIGKILL);
    int ws = 0;
    while (waitpid(pid, &ws, 0) < 0 && errno == EINTR) {}
    if (timed_out)
        return hb_errf(err, HB_ERR_INPUT, "%s: reading did not finish within %g s (a corrupt file can make libhdf5 "
                       "loop; accepted: a readable results file; HETBENCH_READ_TIMEOUT sets the limit)", path, timeout_s);
    if (WIFSIGNALED(ws) || got < sizeof(int32_t))
        return hb_errf(err, HB_ERR_INPUT, "%s: corrupt results file: libhdf5 crashed reading it (%s, contained in a "
                       "child process)", path, WIFSIGNALED(ws) ? strsignal(WTERMSIG(ws)) : "no answer");
    int32_t st;
    memcpy(&st, buf, sizeof st);
    if (st != HB_OK) {
        buf[sizeof buf - 1] = '\0';
        return hb_errf(err, (hb_status)st, "%s", got > sizeof st ? buf + sizeof st : hb_status_str((hb_status)st));
    }
    return hb_results_read(path, out, err);
}

void hb_results_free(hb_results *r) {
    if (!r) return;
    free(r->meta.plan);
    free(r->devices);
    free(r->idle_w);
    free(r->idle);
    for (int i = 0; i < r->n_cases; i++) {
        for (int j = 0; j < r->cases[i].n_ranks; j++) hb_record_free(&r->cases[i].recs[j]);
        free(r->cases[i].recs);
    }
    free(r->cases);
    free(r->rows);
    free(r);
}
