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

/* ---- loading: libyaml's event API, the tree built as events arrive ----
 *
 * Why events and not yaml_parser_load: the document API builds the whole document before we
 * see it, so a depth limit applied afterwards came after libyaml's scanner had spent time
 * quadratic in the nesting (38 s for a 200 KB file); here parsing stops at the first event
 * deeper than MAX_DEPTH. An alias is the anchored node itself, shared (the tree is read-only),
 * and the expanded size (every alias counted as the nodes it stands for) is capped at
 * MAX_NODES, so a 511-byte "billion laughs" (9 levels x 10 aliases) is refused at once
 * instead of expanding to 10^9 nodes. */
#define MAX_NODES 200000 /* a prices or claims file has a few hundred */

typedef struct frame {
    hb_ynode *node;              /* list or map being filled */
    hb_ynode **items;            /* malloc'd while open, moved into the arena at its end */
    const char **keys;
    int *key_lines;
    int n, cap;
    const char *key;             /* map: key waiting for its value (NULL: none) */
    int key_line;
} frame;

typedef struct anchor {
    char *name;
    hb_ynode *node;
} anchor;

typedef struct builder {
    hb_ycfg *y;
    arena *a;
    frame stack[MAX_DEPTH + 2];
    int depth;                   /* frames in use */
    anchor *anchors;
    int n_anchors, cap_anchors;
    int64_t n_nodes;             /* expanded size so far */
    hb_ynode *root;
    int have_root;
} builder;

static hb_status oom(const hb_ycfg *y) { return hb_errf(y->err, HB_ERR_NOMEM, "%s: out of memory", y->path); }

static hb_status count_nodes(builder *b, int line, int64_t n) {
    b->n_nodes += n;
    if (b->n_nodes > MAX_NODES)
        return hb_ycfg_errf(b->y, line, NULL, "more than %d YAML nodes with aliases expanded (accepted: at most %d; "
                            "a prices or claims file has a few hundred)", MAX_NODES, MAX_NODES);
    return HB_OK;
}

static hb_status add_anchor(builder *b, const yaml_char_t *name, hb_ynode *node) {
    if (!name) return HB_OK;
    if (b->n_anchors == b->cap_anchors) {
        int cap = b->cap_anchors ? 2 * b->cap_anchors : 16;
        anchor *p = realloc(b->anchors, (size_t)cap * sizeof *p);
        if (!p) return oom(b->y);
        b->anchors = p;
        b->cap_anchors = cap;
    }
    char *copy = strdup((const char *)name);
    if (!copy) return oom(b->y);
    b->anchors[b->n_anchors++] = (anchor){copy, node}; /* a redefined anchor: the latest wins */
    return HB_OK;
}

static hb_ynode *find_anchor(const builder *b, const yaml_char_t *name) {
    for (int i = b->n_anchors - 1; i >= 0; i--)
        if (!strcmp(b->anchors[i].name, (const char *)name)) return b->anchors[i].node;
    return NULL;
}

/* Puts a finished node into the open list or map (or makes it the root). */
static hb_status attach(builder *b, hb_ynode *t) {
    if (b->depth == 0) {
        b->root = t;
        b->have_root = 1;
        return HB_OK;
    }
    frame *f = &b->stack[b->depth - 1];
    if (f->node->kind == HB_Y_MAP && !f->key) {
        if (t->kind != HB_Y_SCALAR)
            return hb_ycfg_errf(b->y, t->line, NULL, "a key must be a plain name, not %s",
                                t->kind == HB_Y_MAP ? "a mapping" : "a list");
        f->key = t->text;
        f->key_line = t->line;
        return HB_OK;
    }
    if (f->n == f->cap) {
        int cap = f->cap ? 2 * f->cap : 8;
        hb_ynode **it = realloc(f->items, (size_t)cap * sizeof *it);
        if (it) f->items = it;
        if (!it) return oom(b->y);
        if (f->node->kind == HB_Y_MAP) {
            const char **k = realloc(f->keys, (size_t)cap * sizeof *k);
            if (k) f->keys = k;
            int *kl = k ? realloc(f->key_lines, (size_t)cap * sizeof *kl) : NULL;
            if (kl) f->key_lines = kl;
            if (!k || !kl) return oom(b->y);
        }
        f->cap = cap;
    }
    f->items[f->n] = t;
    if (f->node->kind == HB_Y_MAP) {
        f->keys[f->n] = f->key;
        f->key_lines[f->n] = f->key_line;
        f->key = NULL;
    }
    f->n++;
    return HB_OK;
}

static void free_frames(builder *b) {
    for (int i = 0; i < b->depth; i++) {
        free(b->stack[i].items);
        free(b->stack[i].keys);
        free(b->stack[i].key_lines);
    }
    b->depth = 0;
}

/* One event into the tree; *done at the end of the stream. */
static hb_status on_event(builder *b, const yaml_event_t *ev, int *done) {
    hb_ycfg *y = b->y;
    int line = (int)ev->start_mark.line + 1;
    switch (ev->type) {
    case YAML_STREAM_START_EVENT:
    case YAML_DOCUMENT_END_EVENT:
        return HB_OK;
    case YAML_STREAM_END_EVENT:
        *done = 1;
        return HB_OK;
    case YAML_DOCUMENT_START_EVENT:
        if (b->have_root) return hb_ycfg_errf(y, line, NULL, "a second YAML document (accepted: one per file)");
        return HB_OK;
    case YAML_ALIAS_EVENT: {
        hb_ynode *t = find_anchor(b, ev->data.alias.anchor);
        char sb[72];
        if (!t)
            return hb_ycfg_errf(y, line, NULL, "unknown alias '*%s' (accepted: an anchor defined above)",
                                hb_ycfg_shown((const char *)ev->data.alias.anchor, sb));
        HB_TRY(count_nodes(b, line, t->n_nodes));
        return attach(b, t);
    }
    case YAML_SCALAR_EVENT: {
        HB_TRY(count_nodes(b, line, 1));
        hb_ynode *t = arena_alloc(b->a, sizeof *t);
        if (!t) return oom(y);
        t->line = line;
        t->kind = HB_Y_SCALAR;
        t->n_nodes = 1;
        t->text = arena_strdup(b->a, (const char *)ev->data.scalar.value, ev->data.scalar.length);
        if (!t->text) return oom(y);
        if (strlen(t->text) != ev->data.scalar.length)
            return hb_ycfg_errf(y, line, NULL, "a NUL character in a value (accepted: text)");
        t->is_null = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
                     (!t->text[0] || !strcmp(t->text, "~") || !strcmp(t->text, "null"));
        HB_TRY(add_anchor(b, ev->data.scalar.anchor, t));
        return attach(b, t);
    }
    case YAML_SEQUENCE_START_EVENT:
    case YAML_MAPPING_START_EVENT: {
        if (b->depth > MAX_DEPTH) return hb_ycfg_errf(y, line, NULL, "nested too deeply (accepted: %d levels)", MAX_DEPTH);
        HB_TRY(count_nodes(b, line, 1));
        hb_ynode *t = arena_alloc(b->a, sizeof *t);
        if (!t) return oom(y);
        t->line = line;
        t->kind = ev->type == YAML_SEQUENCE_START_EVENT ? HB_Y_LIST : HB_Y_MAP;
        HB_TRY(add_anchor(b, ev->type == YAML_SEQUENCE_START_EVENT ? ev->data.sequence_start.anchor
                                                                   : ev->data.mapping_start.anchor, t));
        b->stack[b->depth++] = (frame){.node = t};
        return HB_OK;
    }
    case YAML_SEQUENCE_END_EVENT:
    case YAML_MAPPING_END_EVENT: {
        frame *f = &b->stack[b->depth - 1];
        hb_ynode *t = f->node;
        t->n = f->n;
        t->n_nodes = 1;
        for (int i = 0; i < f->n; i++) t->n_nodes += f->items[i]->n_nodes + (t->kind == HB_Y_MAP);
        t->items = arena_alloc(b->a, (size_t)f->n * sizeof *t->items);
        if (!t->items) return oom(y);
        if (f->n) memcpy(t->items, f->items, (size_t)f->n * sizeof *t->items);
        if (t->kind == HB_Y_MAP) {
            t->keys = arena_alloc(b->a, (size_t)f->n * sizeof *t->keys);
            t->key_lines = arena_alloc(b->a, (size_t)f->n * sizeof *t->key_lines);
            if (!t->keys || !t->key_lines) return oom(y);
            if (f->n) {
                memcpy(t->keys, f->keys, (size_t)f->n * sizeof *t->keys);
                memcpy(t->key_lines, f->key_lines, (size_t)f->n * sizeof *t->key_lines);
            }
        }
        free(f->items);
        free(f->keys);
        free(f->key_lines);
        b->depth--;
        return attach(b, t);
    }
    default: return hb_ycfg_errf(y, line, NULL, "empty YAML node");
    }
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
    if (!yaml_parser_initialize(&parser)) {
        free(text);
        hb_ycfg_free(y);
        return hb_errf(err, HB_ERR_NOMEM, "%s: out of memory", y->path);
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    builder b = {.y = y, .a = a};
    hb_status st = HB_OK;
    for (int done = 0; st == HB_OK && !done;) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&parser, &ev)) {
            st = syntax_error(y, &parser);
            break;
        }
        st = on_event(&b, &ev, &done);
        yaml_event_delete(&ev);
    }
    y->root = b.root;
    free_frames(&b);
    for (int i = 0; i < b.n_anchors; i++) free(b.anchors[i].name);
    free(b.anchors);
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
