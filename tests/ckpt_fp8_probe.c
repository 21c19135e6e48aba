/* ckpt_fp8_probe DIR DTYPE - for test_checkpoint.sh: loads the mixtral-shaped e4m3 checkpoint
 * DIR (tests/make_checkpoint.py mixtral128) into a CPU prefill case of DTYPE (fp8: per-tensor
 * scales; fp8-block: 128 x 128 blocks) and compares, byte for byte, each layer's o_proj, expert
 * stacks and fused q/k/v as the device holds them with the codes and scales in the file (read
 * here through the safetensors index, not through the loader under test). Prints one line per
 * weight: "<name> <layer>: stored" (codes and scales identical to the file's) or "differs". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../backends/backend.h"
#include "../harness/plan.h"
#include "../workloads/checkpoint.h"
#include "../workloads/transformer.h"

static float f32_of(const hb_st_tensor *t, int64_t i) {
    float v;
    memcpy(&v, t->data + 4 * i, 4);
    return v;
}

/* the pieces (HF names) of one weight, in our row order, and their scales into the case grid */
static int same(const hb_ckpt *ck, const uint8_t *codes, const float *sc, int64_t nsc, int block, char names[][128], int n,
                int64_t cols) {
    int64_t r0 = 0;
    for (int k = 0; k < n; k++) {
        const hb_st_tensor *t = hb_ckpt_find(ck, names[k]);
        char sn[200];
        snprintf(sn, sizeof sn, "%.127s_scale%s", names[k], block ? "_inv" : "");
        const hb_st_tensor *s = hb_ckpt_find(ck, sn);
        if (!t || !s || t->dtype != HB_ST_F8_E4M3) return 0;
        if (memcmp(codes + r0 * cols, t->data, (size_t)(t->shape[0] * cols))) return 0;
        if (block) { /* one 128 x 128 block row per piece here (rows and cols of 128) */
            if (f32_of(s, 0) != sc[r0 / 128]) return 0;
        } else if (nsc != 1 || f32_of(s, 0) != sc[0]) {
            return 0;
        }
        r0 += t->shape[0];
    }
    return 1;
}

int main(int argc, char **argv) {
    if (argc != 3) return 2;
    const int block = !strcmp(argv[2], "fp8-block");
    hb_kv kv[] = {{"workload", "prefill"}, {"weights", argv[1]}, {"dtype", argv[2]}, {"batch", "1"}, {"prompt", "4"},
                  {"quant_block", "128"}};
    hb_plan plan = {0};
    hb_err err = {{0}};
    hb_backend *be = NULL;
    hb_workload *w = NULL;
    hb_ckpt *ck = NULL;
    if (hb_plan_from_args(kv, block ? 6 : 5, &plan, &err) || hb_backend_open("cpu", 0, &be, &err) ||
        hb_workload_setup(be, &plan.cases[0], &w, &err) || hb_ckpt_open(argv[1], &ck, &err)) {
        fprintf(stderr, "ckpt_fp8_probe: %s\n", err.msg);
        return 1;
    }
    const hb_model *m = &plan.cases[0].model;
    const int64_t C = m->dim, E = m->n_experts, Fe = m->moe_ffn_dim, D = hb_model_head_dim(m);
    const int64_t dqkv = (m->n_heads + 2 * m->n_kv_heads) * D;
    int rc = 0;
    for (int l = 0; l < (int)m->n_layers; l++) {
        struct { const char *name; int64_t rows, cols; } wt[] = {
            {"proj_w", C, m->n_heads * D}, {"exp_up", E * 2 * Fe, C}, {"exp_down", E * C, Fe}, {"qkv_w", dqkv, C}};
        for (int i = 0; i < 4; i++) {
            char names[64][128];
            int n = 0;
            if (!strcmp(wt[i].name, "proj_w")) snprintf(names[n++], 128, "model.layers.%d.self_attn.o_proj.weight", l);
            else if (!strcmp(wt[i].name, "qkv_w"))
                for (const char *p = "qkv"; *p; p++) snprintf(names[n++], 128, "model.layers.%d.self_attn.%c_proj.weight", l, *p);
            else
                for (int64_t e = 0; e < E; e++) {
                    if (wt[i].name[4] == 'u') {
                        snprintf(names[n++], 128, "model.layers.%d.block_sparse_moe.experts.%lld.w1.weight", l, (long long)e);
                        snprintf(names[n++], 128, "model.layers.%d.block_sparse_moe.experts.%lld.w3.weight", l, (long long)e);
                    } else {
                        snprintf(names[n++], 128, "model.layers.%d.block_sparse_moe.experts.%lld.w2.weight", l, (long long)e);
                    }
                }
            const int64_t nsc = block ? ((wt[i].rows + 127) / 128) * ((wt[i].cols + 127) / 128) : 1;
            uint8_t *codes = malloc((size_t)(wt[i].rows * wt[i].cols));
            float *sc = malloc((size_t)nsc * sizeof *sc);
            if (!codes || !sc || hb_tf_weight(w, wt[i].name, l, codes, (size_t)(wt[i].rows * wt[i].cols), sc, nsc, &err)) {
                fprintf(stderr, "ckpt_fp8_probe: %s\n", err.msg);
                rc = 1;
            } else {
                printf("%s %d: %s\n", wt[i].name, l, same(ck, codes, sc, nsc, block, names, n, wt[i].cols) ? "stored" : "differs");
            }
            free(codes), free(sc);
        }
    }
    hb_ckpt_close(ck);
    hb_workload_free(w);
    be->ops->destroy(be);
    hb_plan_free(&plan);
    return rc;
}
