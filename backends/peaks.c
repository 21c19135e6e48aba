/* peaks.c - the datasheet table of peaks.h, and how a device name finds its row.
 *
 * Every number comes from the vendor document named in its row (dense figures: NVIDIA's
 * "with sparsity" tensor rates halved; system figures divided by the GPUs in the system; an
 * MI250X/MI250 package's figures halved per GCD). Check a row against the datasheet revision you
 * cite before publishing a comparison; backends/GPU.md lists the table with its sources. */
#include "peaks.h"

#include <ctype.h>
#include <math.h>
#include <string.h>

#define NA NAN

static const hb_peaks table[] = {
    /* model              f32     tf32    bf16    f16     fp8     GB/s    GB   units source */
    {"A100 SXM4 80GB", 19.5, 156.0, 312.0, 312.0, NA, 2039.0, 80, 108,
     "NVIDIA A100 Tensor Core GPU datasheet (2021)"},
    {"A100 SXM4 40GB", 19.5, 156.0, 312.0, 312.0, NA, 1555.0, 40, 108,
     "NVIDIA A100 Tensor Core GPU datasheet (2021)"},
    {"A100 PCIe 80GB", 19.5, 156.0, 312.0, 312.0, NA, 1935.0, 80, 108,
     "NVIDIA A100 Tensor Core GPU datasheet (2021)"},
    {"A100 PCIe 40GB", 19.5, 156.0, 312.0, 312.0, NA, 1555.0, 40, 108,
     "NVIDIA A100 Tensor Core GPU datasheet (2021)"},
    {"H100 SXM5 80GB", 67.0, 494.5, 989.5, 989.5, 1979.0, 3350.0, 80, 132,
     "NVIDIA H100 Tensor Core GPU datasheet (2023), sparse/2"},
    {"H100 PCIe 80GB", 51.0, 378.0, 756.5, 756.5, 1513.0, 2000.0, 80, 114,
     "NVIDIA H100 Tensor Core GPU datasheet (2023), sparse/2"},
    {"H100 NVL 94GB", 60.0, 417.5, 835.5, 835.5, 1670.5, 3900.0, 94, 132,
     "NVIDIA H100 Tensor Core GPU datasheet (2023), sparse/2"},
    {"H800 SXM5 80GB", 67.0, 494.5, 989.5, 989.5, 1979.0, 3350.0, 80, 132,
     "NVIDIA H800 Tensor Core GPU datasheet (2023), sparse/2"},
    {"H200 NVL 141GB", 60.0, 417.5, 835.5, 835.5, 1670.5, 4800.0, 141, 132,
     "NVIDIA H200 Tensor Core GPU datasheet (2024), sparse/2"},
    {"H200 SXM 141GB", 67.0, 494.5, 989.5, 989.5, 1979.0, 4800.0, 141, 132,
     "NVIDIA H200 Tensor Core GPU datasheet (2024), sparse/2"},
    {"B200 180GB", 75.0, 1125.0, 2250.0, 2250.0, 4500.0, 8000.0, 180, 148,
     "NVIDIA DGX B200 datasheet (2024), system/8, sparse/2"},
    {"MI250X (one GCD)", 47.85, NA, 191.5, 191.5, NA, 1638.4, 64, 110,
     "AMD Instinct MI250X data sheet (2021), package/2"},
    {"MI250 (one GCD)", 45.25, NA, 181.05, 181.05, NA, 1638.4, 64, 104,
     "AMD Instinct MI250 data sheet (2021), package/2"},
    {"MI300X 192GB", 163.4, 653.7, 1307.4, 1307.4, 2614.9, 5300.0, 192, 304,
     "AMD Instinct MI300X data sheet (2023)"},
    {"MI325X 256GB", 163.4, 653.7, 1307.4, 1307.4, 2614.9, 6000.0, 256, 304,
     "AMD Instinct MI325X data sheet (2024)"},
    {"MI355X 288GB", 157.3, NA, 2516.6, 2516.6, 5033.2, 8000.0, 288, 256,
     "AMD Instinct MI355X data sheet (2025)"},
};

/* Name rules, most specific first: every word in `all` must occur in the device name (case
 * ignored); units > 0 also requires that many compute units (MI250X: 110 CUs per GCD, MI250:
 * 104, both reported as "AMD Instinct MI250X/MI250"). */
typedef struct rule {
    const char *all[3];
    int units;
    const char *model;
} rule;

static const rule rules[] = {
    {{"A100", "PCIE", "80GB"}, 0, "A100 PCIe 80GB"},
    {{"A100", "PCIE", NULL}, 0, "A100 PCIe 40GB"},
    {{"A100", "40GB", NULL}, 0, "A100 SXM4 40GB"},
    {{"A100", NULL, NULL}, 0, "A100 SXM4 80GB"},
    {{"H100", "PCIE", NULL}, 0, "H100 PCIe 80GB"},
    {{"H100", "NVL", NULL}, 0, "H100 NVL 94GB"},
    {{"H100", NULL, NULL}, 0, "H100 SXM5 80GB"},
    {{"H800", NULL, NULL}, 0, "H800 SXM5 80GB"},
    {{"GH200", NULL, NULL}, 0, NULL}, /* Grace Hopper: not in the table (and not an H200) */
    {{"H200", "NVL", NULL}, 0, "H200 NVL 141GB"},
    {{"H200", NULL, NULL}, 0, "H200 SXM 141GB"},
    {{"B200", NULL, NULL}, 0, "B200 180GB"},
    {{"MI250", NULL, NULL}, 104, "MI250 (one GCD)"},
    {{"MI250", NULL, NULL}, 0, "MI250X (one GCD)"},
    {{"MI300X", NULL, NULL}, 0, "MI300X 192GB"},
    {{"MI325X", NULL, NULL}, 0, "MI325X 256GB"},
    {{"MI355X", NULL, NULL}, 0, "MI355X 288GB"},
};

static int contains_nocase(const char *hay, const char *needle) {
    const size_t n = strlen(needle);
    for (; *hay; hay++) {
        size_t i = 0;
        while (i < n && hay[i] && toupper((unsigned char)hay[i]) == toupper((unsigned char)needle[i]))
            i++;
        if (i == n) return 1;
    }
    return 0;
}

int hb_peaks_table(const hb_peaks **list) {
    if (list) *list = table;
    return (int)(sizeof table / sizeof table[0]);
}

int hb_peaks_find(const char *device_name, int n_compute_units, hb_peaks *out) {
    if (!device_name || !*device_name) return -1;
    for (size_t r = 0; r < sizeof rules / sizeof rules[0]; r++) {
        const rule *ru = &rules[r];
        int ok = 1;
        for (int w = 0; w < 3 && ru->all[w]; w++) ok &= contains_nocase(device_name, ru->all[w]);
        if (ru->units > 0) ok &= n_compute_units == ru->units;
        if (!ok) continue;
        if (!ru->model) return -1;
        for (size_t t = 0; t < sizeof table / sizeof table[0]; t++) {
            if (strcmp(table[t].model, ru->model) != 0) continue;
            *out = table[t];
            /* a partition (MIG slice, MI300X CPX) has a share of the units: scale compute */
            if (n_compute_units > 0 && n_compute_units < table[t].compute_units) {
                const double f = (double)n_compute_units / table[t].compute_units;
                out->tflops_f32 *= f;
                out->tflops_tf32 *= f;
                out->tflops_bf16 *= f;
                out->tflops_f16 *= f;
                out->tflops_fp8 *= f;
            }
            return 0;
        }
    }
    return -1;
}
