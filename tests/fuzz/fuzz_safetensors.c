/* fuzz_safetensors.c - libFuzzer target: one input as a .safetensors checkpoint through the
 * reader `weights:` uses (hb_ckpt_open: header length, JSON header, offsets, overlaps), then
 * the check of a model's tensors against it (names, shapes, dtypes, fp8 scales) and, when that
 * passes, the read of every weight. A finding is a crash, a sanitizer report or a leak; a bad
 * file must come back as HB_ERR_INPUT with a one-line message. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "workloads/checkpoint.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static char path[64];
    if (!path[0]) snprintf(path, sizeof path, "/tmp/hb-fuzz-st-%d.safetensors", (int)getpid());
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    fwrite(data, 1, size, f);
    fclose(f);
    hb_err e = {{0}};
    hb_ckpt *ck = NULL;
    hb_status s = hb_ckpt_open(path, &ck, &e);
    if (s != HB_OK) {
        if (s != HB_ERR_INPUT && s != HB_ERR_NOMEM) abort();
        if (strchr(e.msg, '\n')) abort();
        return 0;
    }
    /* a 2-layer model of width 8 (llama names) and its gpt2 twin */
    hb_model m;
    if (hb_model_find("tiny", &m, NULL) == HB_OK) {
        m.dim = 8, m.n_heads = 2, m.n_kv_heads = 1, m.ffn_dim = 8, m.vocab = 4, m.max_seq = 4;
        for (int arch = 0; arch < 2; arch++) {
            if (arch) m.pos = HB_POS_LEARNED, m.norm = HB_NORM_LAYERNORM, m.bias = 1, m.tied = 1, m.n_kv_heads = 2;
            if (hb_ckpt_check(ck, &m, &e) == HB_OK) {
                float buf[64];
                hb_ckpt_read_f32(ck, &m, "wte", -1, buf, 4, 8, &e);
                hb_ckpt_read_f32(ck, &m, "qkv_w", 0, buf, arch ? 24 : 16, 8, &e);
            } else if (strchr(e.msg, '\n')) {
                abort();
            }
        }
    }
    hb_ckpt_close(ck);
    return 0;
}
