/* workload_impl.h - private to workloads/: the workload object and shared helpers. */
#ifndef HB_WORKLOAD_IMPL_H
#define HB_WORKLOAD_IMPL_H

#include "fingerprint.h" // defines: hb_fingerprint_device
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

hb_status hb_transformer_setup(hb_workload *w, hb_err *err);

#endif
