/* fuzz_ckptjson.c - libFuzzer target for the other untrusted checkpoint inputs: the first byte
 * picks what the rest is -
 *   0: model.safetensors.index.json of a folder whose one shard (a.safetensors) is valid
 *      (hb_ckpt_open: weight_map, shard names, absent shards)
 *   1: config.json beside a valid model.safetensors (hb_ckpt_model: every model_type's fields,
 *      then the check of the model's tensors)
 *   2: an llm.c token shard (hb_token_shard_open: header, size, token ids)
 * A finding is a crash, a sanitizer report or a leak; bad input must come back as HB_ERR_INPUT
 * with a one-line message. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "workloads/checkpoint.h"

static void put(const char *path, const void *p, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return;
    fwrite(p, 1, n, f);
    fclose(f);
}

/* a valid one-tensor safetensors file */
static void shard(const char *path) {
    static const char h[] = "{\"model.norm.weight\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}      ";
    uint8_t buf[8 + sizeof h - 1 + 8];
    const uint64_t n = sizeof h - 1;
    for (int i = 0; i < 8; i++) buf[i] = (uint8_t)(n >> (8 * i));
    memcpy(buf + 8, h, n);
    memset(buf + 8 + n, 0, 8);
    put(path, buf, sizeof buf);
}

static void one_line(const hb_err *e) {
    if (strchr(e->msg, '\n')) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static char dir[64];
    char p[128];
    if (!dir[0]) {
        snprintf(dir, sizeof dir, "/tmp/hb-fuzz-cj-%d", (int)getpid());
        mkdir(dir, 0700);
    }
    if (size < 1) return 0;
    const int mode = data[0] % 3;
    data++, size--;
    hb_err e = {{0}};
    snprintf(p, sizeof p, "%s/model.safetensors.index.json", dir), unlink(p);
    snprintf(p, sizeof p, "%s/config.json", dir), unlink(p);
    snprintf(p, sizeof p, "%s/model.safetensors", dir), unlink(p);
    if (mode == 2) {
        snprintf(p, sizeof p, "%s/tokens.bin", dir);
        put(p, data, size);
        hb_token_shard ts;
        hb_status s = hb_token_shard_open(p, 100, 2, &ts, &e);
        if (s == HB_OK) {
            int32_t t[2];
            hb_token_shard_read(&ts, ts.n - 2, 2, t);
            if (t[0] < 0 || t[0] >= 100 || t[1] < 0 || t[1] >= 100) abort();
            hb_token_shard_close(&ts);
        } else if (s != HB_ERR_INPUT) {
            abort();
        } else {
            one_line(&e);
        }
        return 0;
    }
    if (mode == 0) {
        snprintf(p, sizeof p, "%s/a.safetensors", dir), shard(p);
        snprintf(p, sizeof p, "%s/model.safetensors.index.json", dir), put(p, data, size);
    } else {
        snprintf(p, sizeof p, "%s/model.safetensors", dir), shard(p);
        snprintf(p, sizeof p, "%s/config.json", dir), put(p, data, size);
    }
    hb_ckpt *ck = NULL;
    hb_status s = hb_ckpt_open(dir, &ck, &e);
    if (s != HB_OK) {
        if (s != HB_ERR_INPUT && s != HB_ERR_NOMEM) abort();
        one_line(&e);
        return 0;
    }
    hb_model m;
    int has = 0;
    s = hb_ckpt_model(ck, &m, &has, &e);
    if (s == HB_OK && has && m.n_layers <= 8 && m.dim <= 4096 && m.n_experts <= 64) {
        if (hb_ckpt_check(ck, &m, &e) != HB_OK) one_line(&e); /* the shard holds one norm: mostly missing tensors */
    } else if (s != HB_OK) {
        if (s != HB_ERR_INPUT) abort();
        one_line(&e);
    }
    hb_ckpt_close(ck);
    return 0;
}
