/* hbtest.h - minimal assertions for ctest programs: exit 0 pass, 1 fail, 77 skip.
 * A failed CHECK prints file:line and the values, counts the failure, and the test goes on;
 * HB_TEST_END returns 1 if anything failed. */
#ifndef HB_TEST_H
#define HB_TEST_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int hbt_failures = 0;
static int hbt_checks = 0;

#define CHECK(cond)                                                             \
    do {                                                                        \
        hbt_checks++;                                                           \
        if (!(cond)) {                                                          \
            hbt_failures++;                                                     \
            fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond);     \
        }                                                                       \
    } while (0)

#define CHECK_MSG(cond, ...)                                                    \
    do {                                                                        \
        hbt_checks++;                                                           \
        if (!(cond)) {                                                          \
            hbt_failures++;                                                     \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);     \
            fprintf(stderr, __VA_ARGS__);                                       \
            fputc('\n', stderr);                                                \
        }                                                                       \
    } while (0)

#define CHECK_NEAR(a, b, tol)                                                   \
    do {                                                                        \
        double hbt_a_ = (double)(a), hbt_b_ = (double)(b);                      \
        hbt_checks++;                                                           \
        if (!(fabs(hbt_a_ - hbt_b_) <= (tol))) {                                \
            hbt_failures++;                                                     \
            fprintf(stderr, "FAIL %s:%d: %s = %.9g, %s = %.9g, tol %.3g\n",     \
                    __FILE__, __LINE__, #a, hbt_a_, #b, hbt_b_, (double)(tol)); \
        }                                                                       \
    } while (0)

#define CHECK_STR(a, b)                                                         \
    do {                                                                        \
        const char *hbt_a_ = (a), *hbt_b_ = (b);                                \
        hbt_checks++;                                                           \
        if (!hbt_a_ || !hbt_b_ || strcmp(hbt_a_, hbt_b_) != 0) {                \
            hbt_failures++;                                                     \
            fprintf(stderr, "FAIL %s:%d: %s = \"%s\", expected \"%s\"\n",       \
                    __FILE__, __LINE__, #a, hbt_a_ ? hbt_a_ : "(null)",         \
                    hbt_b_ ? hbt_b_ : "(null)");                                \
        }                                                                       \
    } while (0)

#define HB_TEST_SKIP(...)                                                       \
    do {                                                                        \
        fprintf(stderr, "SKIP: ");                                              \
        fprintf(stderr, __VA_ARGS__);                                           \
        fputc('\n', stderr);                                                    \
        exit(77);                                                               \
    } while (0)

#define HB_TEST_END()                                                           \
    do {                                                                        \
        fprintf(stderr, "%s: %d checks, %d failed\n", __FILE__, hbt_checks,     \
                hbt_failures);                                                  \
        return hbt_failures ? 1 : 0;                                            \
    } while (0)

#endif
