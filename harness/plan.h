/* plan.h - what to run: a plan file (YAML, libyaml) or command-line flags, expanded into cases.
 *
 * Both sources go through the same keys. A value may be a list (YAML sequence, or a comma list
 * on the command line); lists expand into the cartesian product of cases, in the order the keys
 * are written. Every error names its source, line and field, and lists what is accepted:
 *   "plan.yaml:7: field 'dtype': unknown value 'fp64' (accepted: f32, bf16, f16, fp8)"
 *   "--batch: '0' is not a positive integer"
 * See README "Plans" for the format. */
#ifndef HB_PLAN_H
#define HB_PLAN_H

#include "../workloads/workload.h"

typedef struct hb_plan {
    int n_cases;
    hb_case *cases;          /* ids 0..n_cases-1 in expansion order, resolved (label, cost) */
    char *yaml;              /* the expanded plan as canonical YAML (stored in the HDF5 file) */
} hb_plan;

/* key -> value as given on the command line ("--batch 1,8" is {"batch", "1,8"}). */
typedef struct hb_kv {
    const char *key;
    const char *value;
} hb_kv;

/* Cases from command-line keys alone. `workload` is required among the keys. */
hb_status hb_plan_from_args(const hb_kv *kv, int n, hb_plan *out, hb_err *err);
/* Cases from a YAML file; `overrides` (may be empty) replace the same key in every case that
 * uses it (e.g. --min-seconds 0.1 --layers 2). */
hb_status hb_plan_from_file(const char *path, const hb_kv *overrides, int n_overrides, hb_plan *out,
                            hb_err *err);
/* Same, from YAML text held in memory; `source` names it in messages. */
hb_status hb_plan_from_string(const char *text, const char *source, const hb_kv *overrides,
                              int n_overrides, hb_plan *out, hb_err *err);
void hb_plan_free(hb_plan *p); /* NULL-safe; leaves *p zeroed */

/* The keys (for --help and messages). */
const char *const *hb_plan_keys(int *n);

#endif
