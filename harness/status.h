/* status.h - the one error contract of hetbench.
 *
 * Every fallible function returns hb_status: HB_OK (0) on success, a negative code otherwise.
 * A human-readable message, when there is one, travels in an hb_err the caller passes down
 * (NULL is allowed everywhere: the message is then dropped). Only harness/main.c decides what
 * to print and which exit code to use; nothing below it calls exit().
 *
 * Exit-code mapping (harness/main.c): HB_ERR_INPUT -> 2 (usage or input error),
 * anything else at the top level -> 1. */
#ifndef HB_STATUS_H
#define HB_STATUS_H

#include <stdarg.h>
#include <stdint.h>

typedef enum hb_status {
    HB_OK = 0,
    HB_ERR_INPUT = -1,        /* bad user input: flag, plan, file; exit 2 */
    HB_ERR_NOMEM = -2,        /* host or device allocation failed */
    HB_ERR_UNSUPPORTED = -3,  /* op/dtype/feature not provided by this backend */
    HB_ERR_IO = -4,           /* file system or HDF5 failure */
    HB_ERR_BACKEND = -5,      /* vendor runtime/library failure */
    HB_ERR_INTERNAL = -6,     /* a bug: an invariant did not hold */
    HB_ERR_INTERRUPTED = -7,  /* stopped by a signal */
    HB_ERR_TOO_LARGE = -8,    /* a case does not fit in the device's memory; exit 2 */
} hb_status;

const char *hb_status_str(hb_status s);

/* A message buffer passed down explicitly (no global "last error"). */
typedef struct hb_err {
    char msg[1024];
} hb_err;

/* Formats msg into err (if err != NULL) and returns code, so that
 *   return hb_errf(err, HB_ERR_INPUT, "plan.yaml:3: field 'batch': expected a positive integer");
 * reads as one statement. */
hb_status hb_errf(hb_err *err, hb_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Trace of an error propagating up; printed only when HETBENCH_DEBUG is set. */
void hb_trace(const char *file, int line, const char *expr, hb_status s);

#define HB_TRY(expr)                                          \
    do {                                                      \
        hb_status hb_try_s_ = (expr);                         \
        if (hb_try_s_ != HB_OK) {                             \
            hb_trace(__FILE__, __LINE__, #expr, hb_try_s_);   \
            return hb_try_s_;                                 \
        }                                                     \
    } while (0)

/* Programmer errors only (never user input). */
#define HB_ASSERT(cond)                                                        \
    do {                                                                       \
        if (!(cond)) hb_assert_fail(__FILE__, __LINE__, #cond);                \
    } while (0)
void hb_assert_fail(const char *file, int line, const char *cond) __attribute__((noreturn));

/* Checked size arithmetic for every size derived from user numbers (plan keys, model fields,
 * file contents): 1 when the exact result does not fit in int64_t (*r is then unspecified),
 * 0 otherwise. Sizes stay int64_t, so a product that passes fits size_t too. */
static inline int hb_mul_ovf(int64_t a, int64_t b, int64_t *r) { return __builtin_mul_overflow(a, b, r); }
static inline int hb_add_ovf(int64_t a, int64_t b, int64_t *r) { return __builtin_add_overflow(a, b, r); }

#define HB_ARRAY_LEN(a) ((int)(sizeof(a) / sizeof((a)[0])))

#endif
