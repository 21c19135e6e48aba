/* workload_impl.h - private to workloads/: the workload object a descriptor's setup fills, and
 * the descriptors the registry (workload.c) lists, one per workload file. */
#ifndef HB_WORKLOAD_IMPL_H
#define HB_WORKLOAD_IMPL_H

#include "fingerprint.h" // defines: hb_fingerprint_device
#include "workload.h"

struct hb_workload {
    const hb_workload_desc *desc;
    hb_backend *be;
    hb_case c;
    void *impl;
    hb_status (*step)(hb_workload *w);
    void (*free_impl)(hb_workload *w);
    const float *out;     /* current output on the device */
    int64_t out_n;
    int have_fp;
    double fp[HB_FP_LEN];
    hb_comm *group;       /* a case on a rank group (dp, tp, ep, collective): its communicator
                             (owned by the harness); NULL alone */
    /* optional: untimed work after each step (collective: verify every element, restore the
     * inputs); the window's wall time includes it, the iteration times do not */
    hb_status (*after_step)(hb_workload *w);
    int have_loss;        /* train: the last step's mean loss */
    double loss;
};

extern const hb_workload_desc hb_wl_gemm;    /* gemm.c */
extern const hb_workload_desc hb_wl_stream;  /* stream.c */
extern const hb_workload_desc hb_wl_prefill; /* transformer.c */
extern const hb_workload_desc hb_wl_decode;  /* transformer.c */
extern const hb_workload_desc hb_wl_train;   /* train.c */
extern const hb_workload_desc hb_wl_collective; /* collective.c */
extern const hb_workload_desc hb_wl_serve;   /* serve.c */

#endif
