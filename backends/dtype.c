/* dtype.c - dtype names. */
#include "dtype.h"

static const char *const names[HB_DTYPE_COUNT] = {"f32", "bf16", "f16", "fp8", "e5m2"};

const char *hb_dtype_name(hb_dtype t) {
    return (t >= 0 && t < HB_DTYPE_COUNT) ? names[t] : "?";
}

int hb_dtype_parse(const char *s, hb_dtype *out) {
    for (int i = 0; i < HB_DTYPE_COUNT; i++)
        if (strcmp(s, names[i]) == 0) { *out = (hb_dtype)i; return 0; }
    if (strcmp(s, "fp32") == 0 || strcmp(s, "float32") == 0) { *out = HB_F32; return 0; }
    if (strcmp(s, "fp16") == 0 || strcmp(s, "float16") == 0) { *out = HB_F16; return 0; }
    if (strcmp(s, "fp8-e4m3") == 0 || strcmp(s, "e4m3") == 0) { *out = HB_FP8_E4M3; return 0; }
    if (strcmp(s, "fp8-e5m2") == 0) { *out = HB_FP8_E5M2; return 0; }
    /* the weight recipe "fp8-block" (results files, claims) stores e4m3 */
    if (strcmp(s, "fp8-block") == 0) { *out = HB_FP8_E4M3; return 0; }
    return -1;
}
