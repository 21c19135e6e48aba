/* record.c - ownership of hb_record's arrays. */
#include "results.h"

#include <stdlib.h>

void hb_record_free(hb_record *r) {
    if (!r) return;
    free(r->iter_seconds);
    free(r->power);
    r->iter_seconds = NULL;
    r->power = NULL;
    r->n_iters = 0;
    r->n_power = 0;
}
