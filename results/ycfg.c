/* ycfg.c - YAML configuration files (prices, claims) read into an hb_ynode tree (see ycfg.h).
 * libyaml's document API parses; the tree is copied into an arena so that yaml.h stays in
 * this one file and every error path frees in one place. */
#include "ycfg.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

#define MAX_FILE_BYTES ((size_t)16 << 20) /* a prices or claims file is a few KiB */
#define MAX_DEPTH 64

/* ---- arena: a list of blocks, freed together ---- */
typedef struct arena {
    void **blocks;
    int n, cap;
} arena;

static void *arena_alloc(arena *a, size_t n) {
    if (a->n == a->cap) {
        int cap = a->cap ? 2 * a->cap : 64;
        void **p = realloc(a->blocks, (size_t)cap * sizeof *p);
        if (!p) return NULL;
        a->blocks = p;
        a->cap = cap;
    }
    void *p = calloc(1, n ? n : 1);
    if (p) a->blocks[a->n++] = p;
    return p;
}

static char *arena_strdup(arena *a, const char *s, size_t len) {
    char *p = arena_alloc(a, len + 1);
    if (p) memcpy(p, s, len);
    return p;
}

static void arena_free(arena *a) {
    if (!a) return;
    for (int i = 0; i < a->n; i++) free(a->blocks[i]);
    free(a->blocks);
    free(a);
}

/* ---- messages ---- */

const char *hb_ycfg_shown(const char *s, char buf[72]) {
    int i = 0;
    if (!s) s = "";
    for (; s[i] && i < 60; i++) buf[i] = (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? '?' : s[i];
    if (s[i]) {
        memcpy(buf + i, "...", 3);
        i += 3;
    }
    buf[i] = '\0';
    return buf;
}

hb_status hb_ycfg_errf(const hb_ycfg *y, int line, const char *field, const char *fmt, ...) {
    char what[800], fb[72];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    if (field)
        return hb_errf(y->err, HB_ERR_INPUT, "%s:%d: field '%s': %s", y->path, line,
                       hb_ycfg_shown(field, fb), what);
    return hb_errf(y->err, HB_ERR_INPUT, "%s:%d: %s", y->path, line, what);
}

/* ---- loading ---- */

static hb_status convert(hb_ycfg *y, arena *a, yaml_document_t *doc, yaml_node_t *n, int depth,
                         hb_ynode **out) {
    int line = (int)n->start_mark.line + 1;
    if (depth > MAX_DEPTH) return hb_ycfg_errf(y, line, NULL, "nested too deeply (accepted: %d levels)", MAX_DEPTH);
    hb_ynode *t = arena_alloc(a, sizeof *t);
    if (!t) return hb_errf(y->err, HB_ERR_NOMEM, "%s: out of memory", y->path);
    t->line = line;
    switch (n->type) {
    case YAML_SCALAR_NODE:
        t->kind = HB_Y_SCALAR;
        t->text = arena_strdup(a, (const char *)n->data.scalar.value, n->data.scalar.length);
        if (!t->text) return hb_errf(y->err, HB_ERR_NOMEM, "%s: out of memory", y->path);
        if (strlen(t->text) != n->data.scalar.length)
            return hb_ycfg_errf(y, line, NULL, "a NUL character in a value (accepted: text)");
        t->is_null = n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
                     (!t->text[0] || !strcmp(t->text, "~") || !strcmp(t->text, "null"));
        break;
    case YAML_SEQUENCE_NODE: {
        t->kind = HB_Y_LIST;
        t->n = (int)(n->data.sequence.items.top - n->data.sequence.items.start);
        t->items = arena_alloc(a, (size_t)t->n * sizeof *t->items);
        if (!t->items) return hb_errf(y->err, HB_ERR_NOMEM, "%s: out of memory", y->path);
        for (int i = 0; i < t->n; i++)
            HB_TRY(convert(y, a, doc, yaml_document_get_node(doc, n->data.sequence.items.start[i]),
                           depth + 1, &t->items[i]));
        break;
    }
    case YAML_MAPPING_NODE: {
        t->kind = HB_Y_MAP;
        t->n = (int)(n->data.mapping.pairs.top - n->data.mapping.pairs.start);
        t->items = arena_alloc(a, (size_t)t->n * sizeof *t->items);
        t->keys = arena_alloc(a, (size_t)t->n * sizeof *t->keys);
        t->key_lines = arena_alloc(a, (size_t)t->n * sizeof *t->key_lines);
        if (!t->items || !t->keys || !t->key_lines)
            return hb_errf(y->err, HB_ERR_NOMEM, "%s: out of memory", y->path);
        for (int i = 0; i < t->n; i++) {
            yaml_node_pair_t *p = &n->data.mapping.pairs.start[i];
            yaml_node_t *k = yaml_document_get_node(doc, p->key);
            int kline = k ? (int)k->start_mark.line + 1 : line;
            if (!k || k->type != YAML_SCALAR_NODE)
                return hb_ycfg_errf(y, kline, NULL, "a key must be a plain name, not %s",
                                    k && k->type == YAML_MAPPING_NODE ? "a mapping" : "a list");
            t->keys[i] = arena_strdup(a, (const char *)k->data.scalar.value, k->data.scalar.length);
            if (!t->keys[i]) return hb_errf(y->err, HB_ERR_NOMEM, "%s: out of memory", y->path);
            t->key_lines[i] = kline;
            HB_TRY(convert(y, a, doc, yaml_document_get_node(doc, p->value), depth + 1, &t->items[i]));
        }
        break;
    }
    default: return hb_ycfg_errf(y, line, NULL, "empty YAML node");
    }
    *out = t;
    return HB_OK;
}

static hb_status syntax_error(const hb_ycfg *y, const yaml_parser_t *p) {
    if (p->error == YAML_MEMORY_ERROR) return hb_errf(y->err, HB_ERR_NOMEM, "%s: out of memory", y->path);
    char ctxt[160] = "";
    if (p->context)
        snprintf(ctxt, sizeof ctxt, " %s (line %d)", p->context, (int)p->context_mark.line + 1);
    return hb_ycfg_errf(y, (int)p->problem_mark.line + 1, NULL, "YAML syntax error: %s%s",
                        p->problem ? p->problem : "invalid YAML", ctxt);
}

static hb_status read_text(const hb_ycfg *y, char **text, size_t *len) {
    FILE *f = fopen(y->path, "rb");
    if (!f) return hb_errf(y->err, HB_ERR_INPUT, "%s: cannot read: %s", y->path, strerror(errno));
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    hb_status st = HB_OK;
    while (buf) {
        if (n == cap) {
            if (cap >= MAX_FILE_BYTES) {
                st = hb_errf(y->err, HB_ERR_INPUT, "%s: larger than %zu MiB (accepted: a YAML text file)",
                             y->path, MAX_FILE_BYTES >> 20);
                break;
            }
            char *p = realloc(buf, 2 * cap);
            if (!p) break;
            buf = p;
            cap *= 2;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0) {
            if (ferror(f)) st = hb_errf(y->err, HB_ERR_INPUT, "%s: cannot read: %s", y->path, strerror(errno));
            break;
        }
    }
    fclose(f);
    if (!buf) return hb_errf(y->err, HB_ERR_NOMEM, "%s: out of memory", y->path);
    if (st != HB_OK) {
        free(buf);
        return st;
    }
    *text = buf;
    *len = n;
    return HB_OK;
}

hb_status hb_ycfg_load(hb_ycfg *y, const char *path, hb_err *err) {
    memset(y, 0, sizeof *y);
    y->path = path ? path : "";
    y->err = err;
    char *text = NULL;
    size_t len = 0;
    HB_TRY(read_text(y, &text, &len));
    arena *a = calloc(1, sizeof *a);
    if (!a) {
        free(text);
        return hb_errf(err, HB_ERR_NOMEM, "%s: out of memory", y->path);
    }
    y->arena = a;
    yaml_parser_t parser;
    yaml_document_t doc, next;
    hb_status st = HB_OK;
    if (!yaml_parser_initialize(&parser)) {
        free(text);
        return hb_errf(err, HB_ERR_NOMEM, "%s: out of memory", y->path);
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    if (!yaml_parser_load(&parser, &doc)) {
        st = syntax_error(y, &parser);
    } else {
        yaml_node_t *root = yaml_document_get_root_node(&doc);
        if (root) st = convert(y, a, &doc, root, 0, &y->root);
        yaml_document_delete(&doc);
        if (st == HB_OK) {
            if (!yaml_parser_load(&parser, &next)) {
                st = syntax_error(y, &parser);
            } else {
                yaml_node_t *r2 = yaml_document_get_root_node(&next);
                if (r2)
                    st = hb_ycfg_errf(y, (int)r2->start_mark.line + 1, NULL,
                                      "a second YAML document (accepted: one per file)");
                yaml_document_delete(&next);
            }
        }
    }
    yaml_parser_delete(&parser);
    free(text);
    if (st != HB_OK) hb_ycfg_free(y);
    return st;
}

void hb_ycfg_free(hb_ycfg *y) {
    if (!y) return;
    arena_free(y->arena);
    y->arena = NULL;
    y->root = NULL;
}

/* ---- walking ---- */

const hb_ynode *hb_ycfg_get(const hb_ynode *map, const char *key) {
    if (!map || map->kind != HB_Y_MAP) return NULL;
    for (int i = 0; i < map->n; i++)
        if (!strcmp(map->keys[i], key)) return map->items[i];
    return NULL;
}

int hb_ycfg_key_line(const hb_ynode *map, const char *key) {
    if (!map) return 0;
    if (map->kind == HB_Y_MAP)
        for (int i = 0; i < map->n; i++)
            if (!strcmp(map->keys[i], key)) return map->key_lines[i];
    return map->line;
}

hb_status hb_ycfg_check_keys(const hb_ycfg *y, const hb_ynode *map, const char *const *names,
                             int n_names) {
    char acc[1024] = "";
    for (int j = 0; j < n_names; j++) {
        size_t l = strlen(acc);
        snprintf(acc + l, sizeof acc - l, "%s%s", j ? ", " : "", names[j]);
    }
    for (int i = 0; i < map->n; i++) {
        int known = 0;
        for (int j = 0; j < n_names && !known; j++) known = !strcmp(map->keys[i], names[j]);
        if (!known)
            return hb_ycfg_errf(y, map->key_lines[i], map->keys[i], "unknown field (accepted: %s)", acc);
        for (int k = 0; k < i; k++)
            if (!strcmp(map->keys[i], map->keys[k]))
                return hb_ycfg_errf(y, map->key_lines[i], map->keys[i],
                                    "given twice (first on line %d; accepted: once)", map->key_lines[k]);
    }
    return HB_OK;
}

static const char *kind_name(const hb_ynode *n) {
    if (!n) return "nothing";
    if (n->kind == HB_Y_MAP) return "a mapping";
    if (n->kind == HB_Y_LIST) return "a list";
    return n->is_null ? "an empty value" : "a value";
}

hb_status hb_ycfg_expect(const hb_ycfg *y, const hb_ynode *node, int line, const char *field,
                         hb_ykind kind) {
    if (node && node->kind == kind && !(kind == HB_Y_SCALAR && node->is_null)) return HB_OK;
    const char *want = kind == HB_Y_MAP ? "a mapping" : kind == HB_Y_LIST ? "a list" : "a value";
    return hb_ycfg_errf(y, node ? node->line : line, field, "expected %s, got %s (accepted: %s)", want,
                        kind_name(node), want);
}

hb_status hb_ycfg_string(const hb_ycfg *y, const hb_ynode *node, const char *field, char *buf,
                         size_t len) {
    if (!node || node->kind != HB_Y_SCALAR || node->is_null || !node->text[0])
        return hb_ycfg_errf(y, node ? node->line : 0, field, "expected text, got %s (accepted: a non-empty value)",
                            kind_name(node));
    if (strlen(node->text) >= len)
        return hb_ycfg_errf(y, node->line, field, "longer than %zu characters (accepted: shorter text)", len - 1);
    memcpy(buf, node->text, strlen(node->text) + 1);
    return HB_OK;
}

hb_status hb_ycfg_number(const hb_ycfg *y, const hb_ynode *node, const char *field, double min,
                         int min_exclusive, double *out) {
    char sb[72], acc[64];
    snprintf(acc, sizeof acc, "numbers %s %g", min_exclusive ? ">" : ">=", min);
    if (!node || node->kind != HB_Y_SCALAR || node->is_null)
        return hb_ycfg_errf(y, node ? node->line : 0, field, "expected a number, got %s (accepted: %s)",
                            kind_name(node), acc);
    const char *s = node->text;
    char *end;
    errno = 0;
    double v = isspace((unsigned char)*s) ? NAN : strtod(s, &end);
    if (isspace((unsigned char)*s) || end == s || *end || !isfinite(v))
        return hb_ycfg_errf(y, node->line, field, "'%s' is not a number (accepted: %s)",
                            hb_ycfg_shown(s, sb), acc);
    if (v < min || (min_exclusive && v == min))
        return hb_ycfg_errf(y, node->line, field, "'%s' is out of range (accepted: %s)",
                            hb_ycfg_shown(s, sb), acc);
    *out = v;
    return HB_OK;
}

hb_status hb_ycfg_int(const hb_ycfg *y, const hb_ynode *node, const char *field, int64_t *out) {
    char sb[72];
    if (!node || node->kind != HB_Y_SCALAR || node->is_null)
        return hb_ycfg_errf(y, node ? node->line : 0, field, "expected an integer, got %s (accepted: integers)",
                            kind_name(node));
    const char *s = node->text, *p = s;
    if (*p == '+' || *p == '-') p++;
    int ok = *p != '\0';
    for (; *p; p++) ok = ok && *p >= '0' && *p <= '9';
    errno = 0;
    long long v = ok ? strtoll(s, NULL, 10) : 0;
    if (!ok || errno == ERANGE)
        return hb_ycfg_errf(y, node->line, field, "'%s' is not an integer (accepted: integers)",
                            hb_ycfg_shown(s, sb));
    *out = v;
    return HB_OK;
}

hb_status hb_ycfg_bool(const hb_ycfg *y, const hb_ynode *node, const char *field, int *out) {
    char sb[72];
    if (node && node->kind == HB_Y_SCALAR && !node->is_null) {
        const char *s = node->text;
        if (!strcasecmp(s, "true") || !strcasecmp(s, "yes")) {
            *out = 1;
            return HB_OK;
        }
        if (!strcasecmp(s, "false") || !strcasecmp(s, "no")) {
            *out = 0;
            return HB_OK;
        }
        return hb_ycfg_errf(y, node->line, field, "'%s' is not a boolean (accepted: true, false, yes, no)",
                            hb_ycfg_shown(s, sb));
    }
    return hb_ycfg_errf(y, node ? node->line : 0, field,
                        "expected a boolean, got %s (accepted: true, false, yes, no)", kind_name(node));
}
