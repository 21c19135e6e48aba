/* peaks.h - datasheet peak dense FLOP/s per dtype and memory bandwidth per device model: the
 * ceilings of MFU and bandwidth utilisation for GPUs (the CPU's are measured, harness/worker.c).
 *
 * Figures are the vendor's own, dense (NVIDIA prints tensor figures "with sparsity": halved
 * here), per device as the runtime enumerates it (an MI250X package is two devices, one per
 * GCD: halved). f32 is the rate an f32 GEMM can reach: CUDA-core FP32 on NVIDIA (cuBLAS does not
 * use TF32 for f32 unless asked), matrix FP32 on CDNA. NaN: the part has no such tensor rate. */
#ifndef HB_PEAKS_H
#define HB_PEAKS_H

typedef struct hb_peaks {
    const char *model;       /* "H100 SXM5 80GB" */
    double tflops_f32;       /* TFLOP/s (1e12) */
    double tflops_tf32;
    double tflops_bf16;
    double tflops_f16;
    double tflops_fp8;       /* e4m3 */
    double gbps;             /* memory bandwidth, GB/s (1e9 B/s) */
    double mem_gb;           /* memory per device, GB */
    int compute_units;       /* SMs / CUs of the full device */
    const char *source;      /* vendor document and year */
} hb_peaks;

/* Entry for a device name as the runtime reports it ("NVIDIA H100 80GB HBM3", "AMD Instinct
 * MI300X"), matched case-insensitively, most specific rule first. n_compute_units (or <= 0 if
 * unknown) tells apart parts sold under one name (MI250X / MI250) and scales the compute figures
 * of a partition (MIG slice, MI300X CPX) by its share of the units; bandwidth is not scaled.
 * Returns 0 and fills *out, or -1 for a device not in the table. */
int hb_peaks_find(const char *device_name, int n_compute_units, hb_peaks *out);

/* The whole table (for documentation and tests). */
int hb_peaks_table(const hb_peaks **list);

#endif
