/* checkpoint.c - safetensors checkpoints with their config.json, and token files
 * (checkpoint.h). Every size read from a file is checked before it is used: these are
 * untrusted inputs (tests/fuzz has a target for the header parser). */
#include "checkpoint.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../backends/dtype.h" // defines: hb_bf16_to_f32, hb_f16_to_f32
#include "../backends/fp8.h"   // defines: hb_e4m3_to_f32, hb_e5m2_to_f32

#define MAX_HEADER ((uint64_t)100 << 20) /* safetensors' own limit */
#define MAX_SHARDS 4096

static const struct { const char *name; int size; } st_dtypes[HB_ST_COUNT] = {
    [HB_ST_F64] = {"F64", 8},        [HB_ST_F32] = {"F32", 4},   [HB_ST_F16] = {"F16", 2},
    [HB_ST_BF16] = {"BF16", 2},      [HB_ST_F8_E4M3] = {"F8_E4M3", 1}, [HB_ST_F8_E5M2] = {"F8_E5M2", 1},
    [HB_ST_I64] = {"I64", 8},        [HB_ST_I32] = {"I32", 4},   [HB_ST_I16] = {"I16", 2},
    [HB_ST_I8] = {"I8", 1},          [HB_ST_U8] = {"U8", 1},     [HB_ST_BOOL] = {"BOOL", 1},
};

typedef struct shard {
    char *file;
    const uint8_t *map;
    size_t size;
} shard;

struct hb_ckpt {
    char path[4096];
    char dir[4096];   /* where config.json is looked for */
    shard *files;
    int n_files;
    hb_st_tensor *t;
    int n, cap;
    int64_t bytes;
};

/* ---- files ---- */

static hb_status map_file(const char *file, shard *s, hb_err *err) {
    int fd = open(file, O_RDONLY);
    if (fd < 0) return hb_errf(err, HB_ERR_INPUT, "%s: cannot open: %s", file, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return hb_errf(err, HB_ERR_INPUT, "%s: not a regular file", file);
    }
    s->size = (size_t)sb.st_size;
    s->map = NULL;
    if (s->size > 0) {
        void *p = mmap(NULL, s->size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) {
            close(fd);
            return hb_errf(err, HB_ERR_INPUT, "%s: cannot map: %s", file, strerror(errno));
        }
        s->map = p;
    }
    close(fd);
    return HB_OK;
}

static char *xstrdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

static int cmp_begin(const void *a, const void *b) {
    const hb_st_tensor *x = a, *y = b;
    return (x->data > y->data) - (x->data < y->data);
}

/* Parses and checks the header of files[k]; appends its tensors. */
static hb_status read_header(hb_ckpt *ck, int k, hb_err *err) {
    shard *s = &ck->files[k];
    if (s->size < 8) return hb_errf(err, HB_ERR_INPUT, "%s: %zu bytes: not a safetensors file (no header length)", s->file, s->size);
    uint64_t hl = 0;
    for (int i = 7; i >= 0; i--) hl = hl << 8 | s->map[i];
    if (hl > MAX_HEADER || hl > s->size - 8)
        return hb_errf(err, HB_ERR_INPUT, "%s: header length %llu exceeds the file (%zu bytes) or 100 MiB", s->file,
                       (unsigned long long)hl, s->size);
    const uint8_t *data = s->map + 8 + hl;
    const uint64_t data_size = s->size - 8 - hl;
    json_error_t je;
    json_t *root = json_loadb((const char *)s->map + 8, (size_t)hl, JSON_REJECT_DUPLICATES, &je);
    if (!root) return hb_errf(err, HB_ERR_INPUT, "%s: header: %s (byte %d)", s->file, je.text, je.position);
    hb_status rc = HB_OK;
    if (!json_is_object(root)) {
        rc = hb_errf(err, HB_ERR_INPUT, "%s: header is not a JSON object", s->file);
        goto out;
    }
    const int first = ck->n;
    const char *name;
    json_t *v;
    json_object_foreach(root, name, v) {
        if (!strcmp(name, "__metadata__")) continue;
        if (ck->n == ck->cap) {
            int cap = ck->cap ? 2 * ck->cap : 256;
            hb_st_tensor *t = realloc(ck->t, (size_t)cap * sizeof *t);
            if (!t) {
                rc = HB_ERR_NOMEM;
                goto out;
            }
            ck->t = t, ck->cap = cap;
        }
        hb_st_tensor *t = &ck->t[ck->n];
        memset(t, 0, sizeof *t);
        t->shard = k;
        json_t *dt = json_object_get(v, "dtype"), *shape = json_object_get(v, "shape");
        json_t *off = json_object_get(v, "data_offsets");
        if (!json_is_object(v) || !json_is_string(dt) || !json_is_array(shape) || !json_is_array(off) ||
            json_array_size(off) != 2) {
            rc = hb_errf(err, HB_ERR_INPUT, "%s: tensor '%s': needs dtype, shape and data_offsets [begin, end]", s->file, name);
            goto out;
        }
        t->dtype = HB_ST_COUNT;
        for (int d = 0; d < HB_ST_COUNT; d++)
            if (!strcmp(json_string_value(dt), st_dtypes[d].name)) t->dtype = (hb_st_dtype)d;
        if (t->dtype == HB_ST_COUNT) {
            rc = hb_errf(err, HB_ERR_INPUT, "%s: tensor '%s': unknown dtype '%.32s'", s->file, name, json_string_value(dt));
            goto out;
        }
        if (json_array_size(shape) > HB_CKPT_MAX_DIMS) {
            rc = hb_errf(err, HB_ERR_INPUT, "%s: tensor '%s': more than %d dimensions", s->file, name, HB_CKPT_MAX_DIMS);
            goto out;
        }
        int64_t numel = 1;
        t->ndim = (int)json_array_size(shape);
        for (int d = 0; d < t->ndim; d++) {
            json_t *e = json_array_get(shape, (size_t)d);
            if (!json_is_integer(e) || json_integer_value(e) < 0 ||
                hb_mul_ovf(numel, (int64_t)json_integer_value(e), &numel)) {
                rc = hb_errf(err, HB_ERR_INPUT, "%s: tensor '%s': shape is not a list of sizes that fit in 64 bits", s->file, name);
                goto out;
            }
            t->shape[d] = (int64_t)json_integer_value(e);
        }
        json_t *b = json_array_get(off, 0), *e = json_array_get(off, 1);
        int64_t nb;
        if (!json_is_integer(b) || !json_is_integer(e) || json_integer_value(b) < 0 ||
            json_integer_value(e) < json_integer_value(b) || (uint64_t)json_integer_value(e) > data_size) {
            rc = hb_errf(err, HB_ERR_INPUT, "%s: tensor '%s': data_offsets out of the file's %llu data bytes", s->file, name,
                         (unsigned long long)data_size);
            goto out;
        }
        if (hb_mul_ovf(numel, st_dtypes[t->dtype].size, &nb) || nb != json_integer_value(e) - json_integer_value(b)) {
            rc = hb_errf(err, HB_ERR_INPUT, "%s: tensor '%s': data_offsets span %lld bytes, its shape and dtype need %lld",
                         s->file, name, (long long)(json_integer_value(e) - json_integer_value(b)), (long long)nb);
            goto out;
        }
        t->data = data + json_integer_value(b);
        t->nbytes = nb;
        t->name = xstrdup(name);
        if (!t->name) {
            rc = HB_ERR_NOMEM;
            goto out;
        }
        ck->n++;
        ck->bytes += nb;
    }
    /* no two tensors of the file share a byte */
    qsort(ck->t + first, (size_t)(ck->n - first), sizeof *ck->t, cmp_begin);
    for (int i = first + 1; i < ck->n; i++)
        if (ck->t[i].data < ck->t[i - 1].data + ck->t[i - 1].nbytes) {
            rc = hb_errf(err, HB_ERR_INPUT, "%s: tensors '%s' and '%s' overlap", s->file, ck->t[i - 1].name, ck->t[i].name);
            goto out;
        }
out:
    json_decref(root);
    return rc;
}

static hb_status add_file(hb_ckpt *ck, const char *file, hb_err *err) {
    if (ck->n_files == MAX_SHARDS) return hb_errf(err, HB_ERR_INPUT, "%s: more than %d shards", ck->path, MAX_SHARDS);
    shard *f = realloc(ck->files, (size_t)(ck->n_files + 1) * sizeof *f);
    if (!f) return HB_ERR_NOMEM;
    ck->files = f;
    shard *s = &f[ck->n_files];
    memset(s, 0, sizeof *s);
    if (!(s->file = xstrdup(file))) return HB_ERR_NOMEM;
    ck->n_files++;
    HB_TRY(map_file(file, s, err));
    return read_header(ck, ck->n_files - 1, err);
}

static int cmp_name(const void *a, const void *b) {
    return strcmp(((const hb_st_tensor *)a)->name, ((const hb_st_tensor *)b)->name);
}

static int is_dir(const char *p) {
    struct stat sb;
    return stat(p, &sb) == 0 && S_ISDIR(sb.st_mode);
}
static int exists(const char *p) { return access(p, F_OK) == 0; }

/* The shards of an index: weight_map's distinct file names, in first-seen order. */
static hb_status read_index(hb_ckpt *ck, const char *index, hb_err *err) {
    json_error_t je;
    json_t *root = json_load_file(index, JSON_REJECT_DUPLICATES, &je);
    if (!root) return hb_errf(err, HB_ERR_INPUT, "%s: %s (line %d)", index, je.text, je.line);
    json_t *wm = json_object_get(root, "weight_map");
    hb_status rc = HB_OK;
    if (!json_is_object(wm)) {
        rc = hb_errf(err, HB_ERR_INPUT, "%s: no 'weight_map' object", index);
        goto out;
    }
    const char *name;
    json_t *v;
    json_object_foreach(wm, name, v) {
        if (!json_is_string(v) || strchr(json_string_value(v), '/') || !strcmp(json_string_value(v), "..")) {
            rc = hb_errf(err, HB_ERR_INPUT, "%s: weight_map['%s']: not a file name of the folder", index, name);
            goto out;
        }
        char file[8192];
        snprintf(file, sizeof file, "%s/%s", ck->dir, json_string_value(v));
        int seen = 0;
        for (int i = 0; i < ck->n_files && !seen; i++) seen = !strcmp(ck->files[i].file, file);
        if (seen) continue;
        if (!exists(file)) {
            rc = hb_errf(err, HB_ERR_INPUT, "%s: shard '%s' (of tensor '%s') is absent", index, json_string_value(v), name);
            goto out;
        }
        if ((rc = add_file(ck, file, err)) != HB_OK) goto out;
    }
out:
    json_decref(root);
    return rc;
}

hb_status hb_ckpt_open(const char *path, hb_ckpt **out, hb_err *err) {
    *out = NULL;
    if (strlen(path) >= sizeof ((hb_ckpt *)0)->path)
        return hb_errf(err, HB_ERR_INPUT, "weights: path longer than 4095 bytes");
    hb_ckpt *ck = calloc(1, sizeof *ck);
    if (!ck) return HB_ERR_NOMEM;
    snprintf(ck->path, sizeof ck->path, "%s", path);
    hb_status rc;
    if (is_dir(path)) {
        snprintf(ck->dir, sizeof ck->dir, "%s", path);
        char f[8192];
        snprintf(f, sizeof f, "%s/model.safetensors.index.json", path);
        if (exists(f)) {
            rc = read_index(ck, f, err);
        } else {
            snprintf(f, sizeof f, "%s/model.safetensors", path);
            rc = exists(f) ? add_file(ck, f, err)
                           : hb_errf(err, HB_ERR_INPUT, "%s: neither model.safetensors nor model.safetensors.index.json", path);
        }
    } else {
        snprintf(ck->dir, sizeof ck->dir, "%s", path);
        char *slash = strrchr(ck->dir, '/');
        if (slash) *slash = 0;
        else snprintf(ck->dir, sizeof ck->dir, ".");
        rc = exists(path) ? add_file(ck, path, err) : hb_errf(err, HB_ERR_INPUT, "%s: no such file or folder", path);
    }
    if (rc == HB_OK) {
        qsort(ck->t, (size_t)ck->n, sizeof *ck->t, cmp_name);
        for (int i = 1; i < ck->n; i++)
            if (!strcmp(ck->t[i].name, ck->t[i - 1].name)) {
                rc = hb_errf(err, HB_ERR_INPUT, "%s: tensor '%s' is in %s and %s", path, ck->t[i].name,
                             ck->files[ck->t[i - 1].shard].file, ck->files[ck->t[i].shard].file);
                break;
            }
    }
    if (rc != HB_OK) {
        hb_ckpt_close(ck);
        return rc;
    }
    *out = ck;
    return HB_OK;
}

void hb_ckpt_close(hb_ckpt *ck) {
    if (!ck) return;
    for (int i = 0; i < ck->n; i++) free((void *)ck->t[i].name);
    for (int i = 0; i < ck->n_files; i++) {
        if (ck->files[i].map) munmap((void *)ck->files[i].map, ck->files[i].size);
        free(ck->files[i].file);
    }
    free(ck->files);
    free(ck->t);
    free(ck);
}

const hb_st_tensor *hb_ckpt_find(const hb_ckpt *ck, const char *name) {
    const hb_st_tensor key = {.name = name};
    return bsearch(&key, ck->t, (size_t)ck->n, sizeof *ck->t, cmp_name);
}
const char *hb_ckpt_file(const hb_ckpt *ck, int shard) { return ck->files[shard].file; }
const char *hb_ckpt_path(const hb_ckpt *ck) { return ck->path; }
int64_t hb_ckpt_bytes(const hb_ckpt *ck) { return ck->bytes; }

/* ---- config.json ---- */

typedef enum arch { ARCH_LLAMA, ARCH_GPT2 } arch;

static hb_status cfg_int(json_t *c, const char *file, const char *key, int64_t def, int64_t *v, hb_err *err) {
    json_t *e = json_object_get(c, key);
    if (!e || json_is_null(e)) {
        if (def < 0) return hb_errf(err, HB_ERR_INPUT, "%s: field '%s' is missing", file, key);
        *v = def;
        return HB_OK;
    }
    if (!json_is_integer(e) || json_integer_value(e) <= 0 || json_integer_value(e) > ((int64_t)1 << 40))
        return hb_errf(err, HB_ERR_INPUT, "%s: field '%s' must be a positive integer", file, key);
    *v = (int64_t)json_integer_value(e);
    return HB_OK;
}

static hb_status cfg_real(json_t *c, const char *file, const char *key, double def, float *v, hb_err *err) {
    json_t *e = json_object_get(c, key);
    if (!e || json_is_null(e)) {
        *v = (float)def;
        return HB_OK;
    }
    if (!json_is_number(e) || !(json_number_value(e) > 0))
        return hb_errf(err, HB_ERR_INPUT, "%s: field '%s' must be a positive number", file, key);
    *v = (float)json_number_value(e);
    return HB_OK;
}

static int cfg_true(json_t *c, const char *key) { return json_is_true(json_object_get(c, key)); }

hb_status hb_ckpt_model(const hb_ckpt *ck, hb_model *m, int *has_config, hb_err *err) {
    char file[8192];
    snprintf(file, sizeof file, "%s/config.json", ck->dir);
    *has_config = exists(file);
    memset(m, 0, sizeof *m);
    if (!*has_config) return HB_OK;
    json_error_t je;
    json_t *c = json_load_file(file, JSON_REJECT_DUPLICATES, &je);
    if (!c) return hb_errf(err, HB_ERR_INPUT, "%s: %s (line %d)", file, je.text, je.line);
    hb_status rc = HB_OK;
    const char *mt = json_string_value(json_object_get(c, "model_type"));
    const char *base = strrchr(ck->path, '/');
    base = base && base[1] ? base + 1 : ck->path;
    snprintf(m->name, sizeof m->name, "%.63s", base);
    if (!json_is_object(c) || !mt) {
        rc = hb_errf(err, HB_ERR_INPUT, "%s: no 'model_type'", file);
    } else if (!strcmp(mt, "llama") || !strcmp(mt, "mistral")) {
        int64_t kv;
        if ((rc = cfg_int(c, file, "hidden_size", -1, &m->dim, err)) || (rc = cfg_int(c, file, "num_hidden_layers", -1, &m->n_layers, err)) ||
            (rc = cfg_int(c, file, "num_attention_heads", -1, &m->n_heads, err)) ||
            (rc = cfg_int(c, file, "intermediate_size", -1, &m->ffn_dim, err)) ||
            (rc = cfg_int(c, file, "vocab_size", -1, &m->vocab, err)) ||
            (rc = cfg_int(c, file, "max_position_embeddings", 2048, &m->max_seq, err)) ||
            (rc = cfg_real(c, file, "rope_theta", 10000.0, &m->rope_theta, err)) ||
            (rc = cfg_real(c, file, "rms_norm_eps", 1e-6, &m->norm_eps, err)))
            goto out;
        if ((rc = cfg_int(c, file, "num_key_value_heads", m->n_heads, &kv, err))) goto out;
        m->n_kv_heads = kv;
        int64_t hd;
        if ((rc = cfg_int(c, file, "head_dim", m->dim / m->n_heads, &hd, err))) goto out;
        const char *act = json_string_value(json_object_get(c, "hidden_act"));
        json_t *rs = json_object_get(c, "rope_scaling");
        if (hd * m->n_heads != m->dim)
            rc = hb_errf(err, HB_ERR_INPUT, "%s: head_dim %lld x heads is not hidden_size (not supported)", file, (long long)hd);
        else if (rs && !json_is_null(rs))
            rc = hb_errf(err, HB_ERR_INPUT, "%s: field 'rope_scaling' is set: scaled RoPE (Llama 3.1, YaRN) is not supported", file);
        else if (cfg_true(c, "attention_bias") || cfg_true(c, "mlp_bias"))
            rc = hb_errf(err, HB_ERR_INPUT, "%s: attention_bias / mlp_bias: biased llama layers are not supported", file);
        else if (act && strcmp(act, "silu"))
            rc = hb_errf(err, HB_ERR_INPUT, "%s: field 'hidden_act' is '%s' (supported: silu)", file, act);
        m->norm = HB_NORM_RMSNORM, m->act = HB_ACT_SWIGLU, m->pos = HB_POS_ROPE;
        m->tied = cfg_true(c, "tie_word_embeddings");
    } else if (!strcmp(mt, "gpt2")) {
        if ((rc = cfg_int(c, file, "n_embd", -1, &m->dim, err)) || (rc = cfg_int(c, file, "n_layer", -1, &m->n_layers, err)) ||
            (rc = cfg_int(c, file, "n_head", -1, &m->n_heads, err)) || (rc = cfg_int(c, file, "vocab_size", -1, &m->vocab, err)) ||
            (rc = cfg_int(c, file, "n_positions", 1024, &m->max_seq, err)) ||
            (rc = cfg_real(c, file, "layer_norm_epsilon", 1e-5, &m->norm_eps, err)))
            goto out;
        if ((rc = cfg_int(c, file, "n_inner", 4 * m->dim, &m->ffn_dim, err))) goto out;
        const char *act = json_string_value(json_object_get(c, "activation_function"));
        if (act && strcmp(act, "gelu_new") && strcmp(act, "gelu_pytorch_tanh"))
            rc = hb_errf(err, HB_ERR_INPUT, "%s: field 'activation_function' is '%s' (supported: gelu_new)", file, act);
        m->n_kv_heads = m->n_heads;
        m->norm = HB_NORM_LAYERNORM, m->act = HB_ACT_GELU, m->pos = HB_POS_LEARNED;
        m->tied = 1, m->bias = 1;
    } else {
        rc = hb_errf(err, HB_ERR_INPUT, "%s: model_type '%s' is not supported (supported: llama, mistral, gpt2; "
                     "MoE and MLA checkpoints come with those models)", file, mt);
    }
    m->n_layers_full = m->n_layers;
out:
    json_decref(c);
    return rc;
}

/* ---- names ---- */

static arch model_arch(const hb_model *m) { return m->pos == HB_POS_LEARNED ? ARCH_GPT2 : ARCH_LLAMA; }

/* One source piece of a destination tensor: rows [row0, row0 + rows) of it come from the
 * checkpoint tensor `name` (shape (rows, cols), or (cols, rows) stored transposed). */
typedef struct piece {
    char name[160];
    int64_t rows, cols;
    int transposed;
} piece;

/* The pieces of weight `what` of layer `l`; 0 pieces when the model has no such tensor. */
static int pieces_of(const hb_ckpt *ck, const hb_model *m, const char *what, int l, piece *p) {
    const int64_t C = m->dim, D = hb_model_head_dim(m), Hq = m->n_heads, Hkv = m->n_kv_heads, F = m->ffn_dim;
    int n = 0;
#define PIECE(r, c, t, ...) (snprintf(p[n].name, sizeof p[n].name, __VA_ARGS__), p[n].rows = (r), p[n].cols = (c), \
                             p[n].transposed = (t), n++)
    if (model_arch(m) == ARCH_LLAMA) {
        if (!strcmp(what, "wte")) PIECE(m->vocab, C, 0, "model.embed_tokens.weight");
        else if (!strcmp(what, "lm_w")) PIECE(m->vocab, C, 0, "lm_head.weight");
        else if (!strcmp(what, "lnf_w")) PIECE(C, 1, 0, "model.norm.weight");
        else if (!strcmp(what, "ln1_w")) PIECE(C, 1, 0, "model.layers.%d.input_layernorm.weight", l);
        else if (!strcmp(what, "ln2_w")) PIECE(C, 1, 0, "model.layers.%d.post_attention_layernorm.weight", l);
        else if (!strcmp(what, "qkv_w")) {
            PIECE(Hq * D, C, 0, "model.layers.%d.self_attn.q_proj.weight", l);
            PIECE(Hkv * D, C, 0, "model.layers.%d.self_attn.k_proj.weight", l);
            PIECE(Hkv * D, C, 0, "model.layers.%d.self_attn.v_proj.weight", l);
        } else if (!strcmp(what, "proj_w")) PIECE(C, Hq * D, 0, "model.layers.%d.self_attn.o_proj.weight", l);
        else if (!strcmp(what, "fc_w")) { /* gate rows first: swiglu is silu(in[:, :F]) * in[:, F:] */
            PIECE(F, C, 0, "model.layers.%d.mlp.gate_proj.weight", l);
            PIECE(F, C, 0, "model.layers.%d.mlp.up_proj.weight", l);
        } else if (!strcmp(what, "fc2_w")) PIECE(C, F, 0, "model.layers.%d.mlp.down_proj.weight", l);
    } else {
        /* GPT-2's Conv1D weights are stored (in, out): transposed to our (out, in). Hugging
         * Face's GPT2LMHeadModel names them with a "transformer." prefix, GPT2Model without */
        const char *pre = hb_ckpt_find(ck, "transformer.wte.weight") ? "transformer." : "";
        if (!strcmp(what, "wte")) PIECE(m->vocab, C, 0, "%swte.weight", pre);
        else if (!strcmp(what, "wpe")) PIECE(m->max_seq, C, 0, "%swpe.weight", pre);
        else if (!strcmp(what, "lnf_w")) PIECE(C, 1, 0, "%sln_f.weight", pre);
        else if (!strcmp(what, "lnf_b")) PIECE(C, 1, 0, "%sln_f.bias", pre);
        else if (!strcmp(what, "ln1_w")) PIECE(C, 1, 0, "%sh.%d.ln_1.weight", pre, l);
        else if (!strcmp(what, "ln1_b")) PIECE(C, 1, 0, "%sh.%d.ln_1.bias", pre, l);
        else if (!strcmp(what, "ln2_w")) PIECE(C, 1, 0, "%sh.%d.ln_2.weight", pre, l);
        else if (!strcmp(what, "ln2_b")) PIECE(C, 1, 0, "%sh.%d.ln_2.bias", pre, l);
        else if (!strcmp(what, "qkv_w")) PIECE(3 * C, C, 1, "%sh.%d.attn.c_attn.weight", pre, l);
        else if (!strcmp(what, "qkv_b")) PIECE(3 * C, 1, 0, "%sh.%d.attn.c_attn.bias", pre, l);
        else if (!strcmp(what, "proj_w")) PIECE(C, C, 1, "%sh.%d.attn.c_proj.weight", pre, l);
        else if (!strcmp(what, "proj_b")) PIECE(C, 1, 0, "%sh.%d.attn.c_proj.bias", pre, l);
        else if (!strcmp(what, "fc_w")) PIECE(F, C, 1, "%sh.%d.mlp.c_fc.weight", pre, l);
        else if (!strcmp(what, "fc_b")) PIECE(F, 1, 0, "%sh.%d.mlp.c_fc.bias", pre, l);
        else if (!strcmp(what, "fc2_w")) PIECE(C, F, 1, "%sh.%d.mlp.c_proj.weight", pre, l);
        else if (!strcmp(what, "fc2_b")) PIECE(C, 1, 0, "%sh.%d.mlp.c_proj.bias", pre, l);
    }
#undef PIECE
    return n;
}

/* The weights a model has: (name, per layer) in the order of the tensor table. */
static const struct { const char *name; int per_layer; } weight_names[] = {
    {"wte", 0},   {"wpe", 0},    {"lm_w", 0},   {"lnf_w", 0},  {"lnf_b", 0},  {"ln1_w", 1},
    {"ln1_b", 1}, {"qkv_w", 1},  {"qkv_b", 1},  {"proj_w", 1}, {"proj_b", 1}, {"ln2_w", 1},
    {"ln2_b", 1}, {"fc_w", 1},   {"fc_b", 1},   {"fc2_w", 1},  {"fc2_b", 1},
};

/* The scale of an fp8 tensor: `<name minus ".weight">.weight_scale` (one per tensor, FP8 Llama)
 * or `.weight_scale_inv` (128 x 128 blocks, DeepSeek-V3; despite the name, it multiplies). */
static const hb_st_tensor *fp8_scale(const hb_ckpt *ck, const char *name, int *blocks) {
    char s[200];
    const size_t n = strlen(name);
    if (n < 7 || strcmp(name + n - 7, ".weight")) return NULL;
    snprintf(s, sizeof s, "%s_scale", name);
    const hb_st_tensor *t = hb_ckpt_find(ck, s);
    *blocks = 0;
    if (t) return t;
    snprintf(s, sizeof s, "%s_scale_inv", name);
    *blocks = 1;
    return hb_ckpt_find(ck, s);
}

static hb_status check_piece(const hb_ckpt *ck, const piece *p, hb_err *err) {
    const hb_st_tensor *t = hb_ckpt_find(ck, p->name);
    if (!t) return hb_errf(err, HB_ERR_INPUT, "%s: tensor '%s' is missing", ck->path, p->name);
    const char *file = ck->files[t->shard].file;
    const int64_t want0 = p->transposed ? p->cols : p->rows, want1 = p->transposed ? p->rows : p->cols;
    const int ok = p->cols == 1 ? (t->ndim == 1 && t->shape[0] == p->rows)
                                : (t->ndim == 2 && t->shape[0] == want0 && t->shape[1] == want1);
    if (!ok) {
        char got[96] = "";
        for (int d = 0; d < t->ndim && strlen(got) < 80; d++)
            snprintf(got + strlen(got), sizeof got - strlen(got), "%s%lld", d ? ", " : "", (long long)t->shape[d]);
        if (p->cols == 1)
            return hb_errf(err, HB_ERR_INPUT, "%s: tensor '%s' has shape [%s], the model needs [%lld]", file, p->name, got,
                           (long long)p->rows);
        return hb_errf(err, HB_ERR_INPUT, "%s: tensor '%s' has shape [%s], the model needs [%lld, %lld]", file, p->name, got,
                       (long long)want0, (long long)want1);
    }
    switch (t->dtype) {
    case HB_ST_F32:
    case HB_ST_F16:
    case HB_ST_BF16: return HB_OK;
    case HB_ST_F8_E4M3: {
        int blocks;
        const hb_st_tensor *s = fp8_scale(ck, p->name, &blocks);
        if (!s) return hb_errf(err, HB_ERR_INPUT, "%s: fp8 tensor '%s' has no weight_scale or weight_scale_inv", file, p->name);
        int64_t n = 1;
        for (int d = 0; d < s->ndim; d++) n *= s->shape[d];
        const int64_t want = blocks ? ((t->shape[0] + 127) / 128) * (((t->ndim > 1 ? t->shape[1] : 1) + 127) / 128) : 1;
        if ((s->dtype != HB_ST_F32 && s->dtype != HB_ST_BF16) || n != want)
            return hb_errf(err, HB_ERR_INPUT, "%s: scale '%s' of '%s' must be %lld F32 or BF16 values", hb_ckpt_file(ck, s->shard),
                           s->name, p->name, (long long)want);
        return HB_OK;
    }
    default:
        return hb_errf(err, HB_ERR_INPUT, "%s: tensor '%s' is %s (weights load from F32, F16, BF16 and F8_E4M3)", file,
                       p->name, st_dtypes[t->dtype].name);
    }
}

static int model_has(const hb_model *m, const char *what) {
    if (!strcmp(what, "wpe")) return m->pos == HB_POS_LEARNED;
    if (!strcmp(what, "lm_w")) return !m->tied;
    if (strstr(what, "_b")) return (m->norm == HB_NORM_LAYERNORM && strstr(what, "ln")) || (m->bias && !strstr(what, "ln"));
    return 1;
}

hb_status hb_ckpt_check(const hb_ckpt *ck, const hb_model *m, hb_err *err) {
    piece p[4];
    for (size_t i = 0; i < sizeof weight_names / sizeof weight_names[0]; i++) {
        if (!model_has(m, weight_names[i].name)) continue;
        for (int l = 0; l < (weight_names[i].per_layer ? (int)m->n_layers : 1); l++) {
            const int n = pieces_of(ck, m, weight_names[i].name, weight_names[i].per_layer ? l : -1, p);
            for (int k = 0; k < n; k++) HB_TRY(check_piece(ck, &p[k], err));
        }
    }
    return HB_OK;
}

static float elem(const hb_st_tensor *t, int64_t i) {
    const uint8_t *q = t->data;
    switch (t->dtype) {
    case HB_ST_F32: {
        float v;
        memcpy(&v, q + 4 * i, 4);
        return v;
    }
    case HB_ST_BF16: return hb_bf16_to_f32((uint16_t)(q[2 * i] | q[2 * i + 1] << 8));
    case HB_ST_F16: return hb_f16_to_f32((uint16_t)(q[2 * i] | q[2 * i + 1] << 8));
    case HB_ST_F8_E4M3: return hb_e4m3_to_f32(q[i]);
    default: return 0.0f;
    }
}

hb_status hb_ckpt_read_f32(const hb_ckpt *ck, const hb_model *m, const char *name, int layer, float *dst,
                           int64_t rows, int64_t cols, hb_err *err) {
    piece p[4];
    const int n = pieces_of(ck, m, name, layer, p);
    if (n == 0) return hb_errf(err, HB_ERR_INTERNAL, "%s: no checkpoint name for weight '%s'", ck->path, name);
    int64_t r0 = 0;
    for (int k = 0; k < n; k++) {
        HB_TRY(check_piece(ck, &p[k], err));
        const hb_st_tensor *t = hb_ckpt_find(ck, p[k].name);
        if (r0 + p[k].rows > rows || (p[k].cols != cols && !(p[k].cols == 1 && cols == 1)))
            return hb_errf(err, HB_ERR_INTERNAL, "%s: '%s' does not fit weight '%s' (%lld x %lld)", ck->path, p[k].name, name,
                           (long long)rows, (long long)cols);
        int blocks = 0;
        const hb_st_tensor *s = t->dtype == HB_ST_F8_E4M3 ? fp8_scale(ck, p[k].name, &blocks) : NULL;
        const int64_t sc = t->ndim > 1 ? (t->shape[1] + 127) / 128 : 1;
        if (!s && !p[k].transposed && t->dtype != HB_ST_F8_E4M3) { /* rows as stored */
            const int64_t ne = p[k].rows * p[k].cols;
            float *d = dst + r0 * cols;
            if (t->dtype == HB_ST_F32) {
                memcpy(d, t->data, (size_t)ne * 4);
            } else {
                const uint8_t *q = t->data;
                if (t->dtype == HB_ST_BF16)
                    for (int64_t i = 0; i < ne; i++) {
                        const uint32_t u = (uint32_t)(q[2 * i] | q[2 * i + 1] << 8) << 16;
                        memcpy(d + i, &u, 4);
                    }
                else
                    for (int64_t i = 0; i < ne; i++) d[i] = hb_f16_to_f32((uint16_t)(q[2 * i] | q[2 * i + 1] << 8));
            }
            r0 += p[k].rows;
            continue;
        }
        for (int64_t r = 0; r < p[k].rows; r++)
            for (int64_t c = 0; c < p[k].cols; c++) {
                /* element (r, c) of the piece; stored at (c, r) when transposed */
                const int64_t sr = p[k].transposed ? c : r, scol = p[k].transposed ? r : c;
                const int64_t src_cols = p[k].transposed ? p[k].rows : p[k].cols;
                float v = elem(t, sr * src_cols + scol);
                if (s) v *= elem(s, blocks ? (sr / 128) * sc + scol / 128 : 0);
                dst[(r0 + r) * cols + c] = v;
            }
        r0 += p[k].rows;
    }
    if (r0 != rows) return hb_errf(err, HB_ERR_INTERNAL, "%s: weight '%s' has %lld of %lld rows", ck->path, name, (long long)r0, (long long)rows);
    return HB_OK;
}

/* ---- token files ---- */

hb_status hb_tokens_read(const char *path, int64_t n, int64_t vocab, int32_t *dst, int64_t *n_in_file, hb_err *err) {
    shard f = {0};
    HB_TRY(map_file(path, &f, err));
    const uint8_t *p = f.map;
    size_t size = f.size;
    int esz = 4, is_signed = 0;
    hb_status rc = HB_OK;
    const size_t len = strlen(path);
    if (len > 4 && !strcmp(path + len - 4, ".npy")) {
        /* NPY v1/v2/v3: magic, version, header length, a Python dict literal */
        if (size < 10 || memcmp(p, "\x93NUMPY", 6)) {
            rc = hb_errf(err, HB_ERR_INPUT, "%s: not an .npy file", path);
            goto out;
        }
        const int major = p[6];
        const size_t hl = major == 1 ? (size_t)(p[8] | p[9] << 8) : size >= 12 ? (size_t)(p[8] | p[9] << 8 | p[10] << 16 | (uint32_t)p[11] << 24) : SIZE_MAX;
        const size_t start = major == 1 ? 10 : 12;
        if (major < 1 || major > 3 || hl > size - start) {
            rc = hb_errf(err, HB_ERR_INPUT, "%s: .npy header length out of the file", path);
            goto out;
        }
        char hdr[1024];
        snprintf(hdr, sizeof hdr, "%.*s", (int)(hl < sizeof hdr - 1 ? hl : sizeof hdr - 1), (const char *)p + start);
        const char *d = strstr(hdr, "'descr':");
        if (strstr(hdr, "'fortran_order': True")) {
            rc = hb_errf(err, HB_ERR_INPUT, "%s: Fortran-ordered .npy files are not read", path);
            goto out;
        }
        static const struct { const char *descr; int size, sgn; } types[] = {
            {"'<u2'", 2, 0}, {"'<u4'", 4, 0}, {"'<i2'", 2, 1}, {"'<i4'", 4, 1}, {"'<i8'", 8, 1}, {"'<u8'", 8, 0},
            {"'|u1'", 1, 0}, {"'|i1'", 1, 1}};
        int found = 0;
        for (size_t i = 0; d && i < sizeof types / sizeof types[0] && !found; i++)
            if (!strncmp(d + 8 + strspn(d + 8, " "), types[i].descr, strlen(types[i].descr)))
                esz = types[i].size, is_signed = types[i].sgn, found = 1;
        if (!found) {
            rc = hb_errf(err, HB_ERR_INPUT, "%s: .npy dtype is not a little-endian integer type", path);
            goto out;
        }
        p += start + hl;
        size -= start + hl;
    } else if (len > 4 && !strcmp(path + len - 4, ".u16")) {
        esz = 2;
    }
    const int64_t have = (int64_t)(size / (size_t)esz);
    if (n_in_file) *n_in_file = have;
    if (have < n) {
        rc = hb_errf(err, HB_ERR_INPUT, "%s: holds %lld token ids, the case needs %lld (batch x prompt)", path, (long long)have,
                     (long long)n);
        goto out;
    }
    for (int64_t i = 0; i < n; i++) {
        uint64_t u = 0;
        for (int b = esz - 1; b >= 0; b--) u = u << 8 | p[i * esz + b];
        int64_t v = (int64_t)u;
        if (is_signed && esz < 8 && (u >> (8 * esz - 1))) v = (int64_t)(u | ~(((uint64_t)1 << (8 * esz)) - 1));
        if (v < 0 || v >= vocab) {
            rc = hb_errf(err, HB_ERR_INPUT, "%s: token %lld is %lld (accepted: 0 to vocab - 1 = %lld)", path, (long long)i,
                         (long long)v, (long long)(vocab - 1));
            goto out;
        }
        if (dst) dst[i] = (int32_t)v;
    }
out:
    if (f.map) munmap((void *)f.map, f.size);
    return rc;
}
