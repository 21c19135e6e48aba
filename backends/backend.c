/* backend.c - the public side of the ops table: what a missing op returns. */
#include "backend.h"

#include <stdio.h>

/* A NULL member of the ops table is reported, never faked (HB_OP calls this). */
hb_status hb_op_unsupported(hb_backend *be, const char *op) {
    if (be)
        snprintf(be->err, sizeof be->err, "op '%s' is not supported by backend '%s'",
                 op ? op : "?", be->info.backend[0] ? be->info.backend : "?");
    return HB_ERR_UNSUPPORTED;
}
