/* fingerprint.h - private to workloads/: the output fingerprint (HB_FP_LEN numbers) every
 * workload computes from its first step's output. Below every workload file and the registry,
 * so that none of them needs another. */
#ifndef HB_FINGERPRINT_H
#define HB_FINGERPRINT_H

#include "workload.h" // defines: HB_FP_LEN, hb_backend

/* sum, sum |x|, sqrt(sum x^2) over x[0..n), argmax over the first row (x[0..row_len)). */
void hb_fingerprint_host(const float *x, int64_t n, int64_t row_len, double fp[HB_FP_LEN]);
/* The same of a device array (downloaded, then synced). */
hb_status hb_fingerprint_device(hb_backend *be, const float *dev, int64_t n, int64_t row_len,
                                double fp[HB_FP_LEN]);

#endif
