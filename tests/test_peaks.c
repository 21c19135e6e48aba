/* test_peaks.c - backends/peaks.c: device names as the runtimes report them find the right
 * datasheet row; names shared by two parts are told apart by their compute units; partitions
 * are scaled; unknown devices (and CPUs) find nothing; every row is dense and sourced. */
#include <math.h>
#include <string.h>

#include "backends/peaks.h"
#include "harness/status.h" // defines: HB_ARRAY_LEN
#include "hbtest.h"

static const char *model_of(const char *name, int units) {
    static hb_peaks p;
    return hb_peaks_find(name, units, &p) == 0 ? p.model : "";
}

int main(void) {
    CHECK_STR(model_of("NVIDIA H100 80GB HBM3", 132), "H100 SXM5 80GB");
    CHECK_STR(model_of("NVIDIA H100 PCIe", 114), "H100 PCIe 80GB");
    CHECK_STR(model_of("NVIDIA H100 NVL", 132), "H100 NVL 94GB");
    CHECK_STR(model_of("NVIDIA H200", 132), "H200 SXM 141GB");
    CHECK_STR(model_of("NVIDIA H200 NVL", 132), "H200 NVL 141GB");
    CHECK_STR(model_of("NVIDIA A100-SXM4-80GB", 108), "A100 SXM4 80GB");
    CHECK_STR(model_of("NVIDIA A100-SXM4-40GB", 108), "A100 SXM4 40GB");
    CHECK_STR(model_of("NVIDIA A100 80GB PCIe", 108), "A100 PCIe 80GB");
    CHECK_STR(model_of("NVIDIA A100-PCIE-40GB", 108), "A100 PCIe 40GB");
    CHECK_STR(model_of("NVIDIA B200", 148), "B200 180GB");
    CHECK_STR(model_of("NVIDIA H800", 132), "H800 SXM5 80GB");
    CHECK_STR(model_of("AMD Instinct MI250X/MI250", 110), "MI250X (one GCD)");
    CHECK_STR(model_of("AMD Instinct MI250X/MI250", 104), "MI250 (one GCD)");
    CHECK_STR(model_of("AMD Instinct MI300X", 304), "MI300X 192GB");
    CHECK_STR(model_of("AMD Instinct MI325X", 304), "MI325X 256GB");
    CHECK_STR(model_of("AMD Instinct MI355X", 256), "MI355X 288GB");
    CHECK_STR(model_of("amd instinct mi300x", -1), "MI300X 192GB"); /* case, unknown units */
    /* not in the table */
    hb_peaks p;
    CHECK(hb_peaks_find("NVIDIA GH200 480GB", 132, &p) == -1);
    CHECK(hb_peaks_find("NVIDIA GeForce RTX 4090", 128, &p) == -1);
    CHECK(hb_peaks_find("AMD EPYC 7763 64-Core Processor", 128, &p) == -1);
    CHECK(hb_peaks_find("", 0, &p) == -1);
    CHECK(hb_peaks_find(NULL, 0, &p) == -1);

    /* dense figures: H100 SXM bf16 is half of the datasheet's 1,979 "with sparsity" */
    CHECK(hb_peaks_find("NVIDIA H100 80GB HBM3", 132, &p) == 0);
    CHECK_NEAR(p.tflops_bf16, 989.5, 1e-9);
    CHECK_NEAR(p.tflops_fp8, 1979.0, 1e-9);
    CHECK_NEAR(p.gbps, 3350.0, 1e-9);
    CHECK(strstr(p.source, "H100") != NULL);
    /* A100 has no fp8 */
    CHECK(hb_peaks_find("NVIDIA A100-SXM4-80GB", 108, &p) == 0 && isnan(p.tflops_fp8));
    /* a MIG slice / CPX partition: compute scaled by its share of the units, bandwidth not */
    CHECK(hb_peaks_find("AMD Instinct MI300X", 38, &p) == 0);
    CHECK_NEAR(p.tflops_bf16, 1307.4 * 38 / 304, 1e-9);
    CHECK_NEAR(p.gbps, 5300.0, 1e-9);

    const hb_peaks *t;
    int n = hb_peaks_table(&t);
    CHECK(n >= 12);
    for (int i = 0; i < n; i++) {
        CHECK_MSG(t[i].source && strlen(t[i].source) > 10 && strlen(t[i].source) < 100, "%s", t[i].model);
        CHECK_MSG(t[i].tflops_bf16 > 100 && t[i].tflops_f32 > 10 && t[i].gbps > 1000, "%s", t[i].model);
        CHECK_MSG(t[i].tflops_bf16 > t[i].tflops_f32, "%s", t[i].model);
        CHECK_MSG(isnan(t[i].tflops_fp8) || t[i].tflops_fp8 > t[i].tflops_bf16, "%s", t[i].model);
        CHECK_MSG(t[i].compute_units > 0, "%s", t[i].model);
        /* every row is reachable by some rule */
        int found = 0;
        static const char *const names[] = {
            "NVIDIA A100-SXM4-80GB", "NVIDIA A100-SXM4-40GB", "NVIDIA A100 80GB PCIe", "NVIDIA A100-PCIE-40GB",
            "NVIDIA H100 80GB HBM3", "NVIDIA H100 PCIe", "NVIDIA H100 NVL", "NVIDIA H800", "NVIDIA H200 NVL",
            "NVIDIA H200", "NVIDIA B200", "AMD Instinct MI250X/MI250", "AMD Instinct MI300X",
            "AMD Instinct MI325X", "AMD Instinct MI355X"};
        for (int k = 0; k < HB_ARRAY_LEN(names); k++) {
            hb_peaks q;
            if (hb_peaks_find(names[k], t[i].compute_units, &q) == 0 && strcmp(q.model, t[i].model) == 0) found = 1;
        }
        CHECK_MSG(found, "row %s unreachable", t[i].model);
    }
    HB_TEST_END();
}
