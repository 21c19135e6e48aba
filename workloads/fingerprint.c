/* fingerprint.c - the output fingerprint of a workload's first step (fingerprint.h). */
#include "fingerprint.h"

#include <math.h>
#include <stdlib.h>

/* ---- fingerprint of a host array: sum, sum |x|, L2 norm, argmax of the first row ---- */
void hb_fingerprint_host(const float *x, int64_t n, int64_t row_len, double fp[HB_FP_LEN]) {
    double s = 0, sa = 0, s2 = 0;
    for (int64_t i = 0; i < n; i++) {
        s += x[i];
        sa += fabs(x[i]);
        s2 += (double)x[i] * x[i];
    }
    int64_t best = 0;
    int64_t r = row_len < n ? row_len : n;
    for (int64_t i = 1; i < r; i++)
        if (x[i] > x[best]) best = i;
    fp[0] = s;
    fp[1] = sa;
    fp[2] = sqrt(s2);
    fp[3] = (double)best;
}

hb_status hb_fingerprint_device(hb_backend *be, const float *dev, int64_t n, int64_t row_len,
                                double fp[HB_FP_LEN]) {
    float *host = malloc((size_t)n * sizeof *host);
    if (!host) return HB_ERR_NOMEM;
    hb_status s = be->ops->download(be, host, dev, (size_t)n * sizeof *host);
    if (s == HB_OK) s = be->ops->sync(be);
    if (s == HB_OK) hb_fingerprint_host(host, n, row_len, fp);
    free(host);
    return s;
}
