/* status.c - status strings, error formatting, debug traces. */
#include "status.h"

#include <stdio.h>
#include <stdlib.h>

const char *hb_status_str(hb_status s) {
    switch (s) {
    case HB_OK: return "ok";
    case HB_ERR_INPUT: return "input error";
    case HB_ERR_NOMEM: return "out of memory";
    case HB_ERR_UNSUPPORTED: return "unsupported";
    case HB_ERR_IO: return "I/O error";
    case HB_ERR_BACKEND: return "backend error";
    case HB_ERR_INTERNAL: return "internal error";
    case HB_ERR_INTERRUPTED: return "interrupted";
    case HB_ERR_TOO_LARGE: return "does not fit in memory";
    }
    return "unknown status";
}

hb_status hb_errf(hb_err *err, hb_status code, const char *fmt, ...) {
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return code;
}

void hb_trace(const char *file, int line, const char *expr, hb_status s) {
    const char *dbg = getenv("HETBENCH_DEBUG");
    if (dbg && *dbg && *dbg != '0')
        fprintf(stderr, "hetbench: trace: %s:%d: %s -> %s\n", file, line, expr, hb_status_str(s));
}

void hb_assert_fail(const char *file, int line, const char *cond) {
    fprintf(stderr, "hetbench: internal error: %s:%d: assertion '%s' failed\n", file, line, cond);
    abort();
}
