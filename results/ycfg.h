/* ycfg.h - the YAML configuration files of results/ (prices, claims): one document read into a
 * small tree, plus the checks every field goes through, with errors in the project's one-line
 * form  "<file>:<line>: field '<key>': <problem> (accepted: ...)"  (HB_ERR_INPUT, exit 2).
 *
 * Only ycfg.c includes yaml.h; everything else in results/ walks hb_ynode. The whole tree lives
 * in one arena freed by hb_ycfg_free. */
#ifndef HB_YCFG_H
#define HB_YCFG_H

#include <stddef.h>
#include <stdint.h>

#include "../harness/status.h"

typedef enum hb_ykind { HB_Y_SCALAR = 0, HB_Y_LIST, HB_Y_MAP } hb_ykind;

typedef struct hb_ynode {
    hb_ykind kind;
    int line;                  /* 1-based line where the node starts */
    const char *text;          /* scalar: its text ("" for an empty value) */
    int is_null;               /* scalar: plain "", "~" or "null" */
    int n;                     /* list items / mapping pairs */
    struct hb_ynode **items;   /* list items, or mapping values */
    const char **keys;         /* mapping keys (scalars), NULL for lists */
    int *key_lines;            /* line of each mapping key */
    int64_t n_nodes;           /* nodes in this subtree, aliases expanded (an alias shares the
                                  anchored node: the tree is a DAG, walk it read-only) */
} hb_ynode;

typedef struct hb_ycfg {
    const char *path;          /* as given; used in every message */
    hb_ynode *root;            /* NULL for an empty document */
    void *arena;               /* private */
    hb_err *err;
} hb_ycfg;

/* Reads and parses `path` (one YAML document; a second one is an error). */
hb_status hb_ycfg_load(hb_ycfg *y, const char *path, hb_err *err);
void hb_ycfg_free(hb_ycfg *y); /* safe on a zeroed or failed hb_ycfg */

/* "<path>:<line>: field '<field>': <fmt...>" as HB_ERR_INPUT (field NULL: no "field" part). */
hb_status hb_ycfg_errf(const hb_ycfg *y, int line, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Every key of `map` must be one of names[0..n-1]; a key given twice is an error too. */
hb_status hb_ycfg_check_keys(const hb_ycfg *y, const hb_ynode *map, const char *const *names,
                             int n_names);
/* Value of `key` in a mapping, or NULL. */
const hb_ynode *hb_ycfg_get(const hb_ynode *map, const char *key);
/* Line of `key` in a mapping (the mapping's line when absent). */
int hb_ycfg_key_line(const hb_ynode *map, const char *key);

/* Requires `node` (the value of `field`, starting at `line` when node is NULL) to be of
 * `kind`; a missing node is an error too. */
hb_status hb_ycfg_expect(const hb_ycfg *y, const hb_ynode *node, int line, const char *field,
                         hb_ykind kind);

/* Scalar conversions of node (named `field` in messages). */
hb_status hb_ycfg_string(const hb_ycfg *y, const hb_ynode *node, const char *field, char *buf,
                         size_t len);
hb_status hb_ycfg_number(const hb_ycfg *y, const hb_ynode *node, const char *field, double min,
                         int min_exclusive, double *out);
hb_status hb_ycfg_bool(const hb_ycfg *y, const hb_ynode *node, const char *field, int *out);
hb_status hb_ycfg_int(const hb_ycfg *y, const hb_ynode *node, const char *field, int64_t *out);

/* User text as it may appear in a one-line message: at most 60 characters, controls as '?'. */
const char *hb_ycfg_shown(const char *s, char buf[72]);

#endif
