/* workload_impl.h - private to workloads/: the workload object and shared helpers. */
#ifndef HB_WORKLOAD_IMPL_H
#define HB_WORKLOAD_IMPL_H

#include "workload.h"

struct hb_workload {
    hb_backend *be;
    hb_case c;
    void *impl;
    hb_status (*step)(hb_workload *w);
    void (*free_impl)(hb_workload *w);
    const float *out;     /* current output on the device */
    int64_t out_n;
    int have_fp;
    double fp[HB_FP_LEN];
};

void hb_fingerprint_host(const float *x, int64_t n, int64_t row_len, double fp[HB_FP_LEN]);
hb_status hb_fingerprint_device(hb_backend *be, const float *dev, int64_t n, int64_t row_len,
                                double fp[HB_FP_LEN]);
hb_status hb_transformer_setup(hb_workload *w, hb_err *err);

#endif
