/* test_tp.c - tensor parallelism against the single-rank model, under mpirun (4 CPU ranks):
 * for tp = 2 (two groups of two ranks) and tp = 4 (one group: kv heads replicated, tiny has
 * 2), prefill and three decode steps of
 *   - tiny (llama-like: GQA 4/2, SwiGLU, rope; vocab 256: vocab-parallel head, all-gather),
 *   - a gpt2-like model (layernorm, GELU, biases, learned positions, tied embeddings; vocab
 *     257 that tp does not divide: the head is replicated),
 *   - tiny-mla (MLA with a q_lora bottleneck: heads split, the latents replicated; MoE layers),
 * in f32 and bf16, every logit of every step equals the tp = 1 model's (computed on the same
 * rank, alone) within the dtype's tolerance, all ranks of a group hold bitwise the same
 * logits, and a rank's weights take 1/tp of the split matrices (the layout is per rank).
 * Independent reference: the same workload run alone (tp = 1), itself checked against a
 * double-precision transformer in test_transformer. */
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/backend.h"
#include "harness/comm_mpi.h"
#include "hbtest.h"
#include "workloads/transformer.h"
#include "workloads/workload.h"

static hb_case make_case(const hb_model *m, hb_workload_kind w, hb_dtype dt, int64_t tp) {
    hb_case c = {0};
    c.workload = w;
    c.model = *m;
    c.model.n_layers_full = m->n_layers;
    c.dtype = dt;
    c.batch = 2, c.prompt = 7, c.gen = 4;
    c.seed = 99;
    c.tp = tp;
    c.warmup_iters = 0, c.min_iters = 1, c.min_seconds = 0, c.max_iters = 10;
    hb_err e;
    CHECK_MSG(hb_case_resolve(&c, &e) == HB_OK, "%s", e.msg);
    return c;
}

/* max |a - b| / max |b| */
static double rel_diff(const float *a, const float *b, int64_t n) {
    double d = 0, m = 0;
    for (int64_t i = 0; i < n; i++) {
        d = fmax(d, fabs((double)a[i] - (double)b[i]));
        m = fmax(m, fabs((double)b[i]));
    }
    return m > 0 ? d / m : d;
}

static void check_model(hb_backend *be, const hb_model *m, int64_t tp, hb_comm *g, int world_rank) {
    static const hb_workload_kind kinds[2] = {HB_WL_PREFILL, HB_WL_DECODE};
    static const hb_dtype dts[2] = {HB_F32, HB_BF16};
    for (int k = 0; k < 2; k++)
        for (int d = 0; d < 2; d++) {
            const double tol = dts[d] == HB_F32 ? 2e-5 : 2e-3; /* measured: ~3e-7 both (same weights; sums reordered) */
            hb_case c1 = make_case(m, kinds[k], dts[d], 1), ct = make_case(m, kinds[k], dts[d], tp);
            /* the rank's share: every split matrix 1/tp (the embedding and norms stay whole) */
            hb_tf_layout y1, yt;
            CHECK(hb_tf_layout_init(&c1, kinds[k] == HB_WL_DECODE, &y1, NULL) == HB_OK);
            CHECK(hb_tf_layout_init(&ct, kinds[k] == HB_WL_DECODE, &yt, NULL) == HB_OK);
            /* GQA: each rank its kv heads' cache; MLA: the latent cache replicated on every rank */
            CHECK(yt.Hq * tp == y1.Hq && yt.blocks[0].F * tp == y1.blocks[0].F &&
                  (hb_model_is_mla(m) ? yt.kv_bytes == y1.kv_bytes : yt.kv_bytes < y1.kv_bytes));
            CHECK(ct.cost.flops < c1.cost.flops && ct.cost.mem_bytes < c1.cost.mem_bytes);
            hb_tf_layout_free(&y1);
            hb_tf_layout_free(&yt);

            hb_workload *w1 = NULL, *wt = NULL;
            hb_err e = {{0}};
            CHECK_MSG(hb_workload_setup(be, &c1, &w1, &e) == HB_OK, "%s", e.msg);
            CHECK_MSG(hb_workload_setup_group(be, &ct, g, &wt, &e) == HB_OK, "%s", e.msg);
            if (!w1 || !wt) {
                hb_workload_free(w1), hb_workload_free(wt);
                continue;
            }
            const int steps = kinds[k] == HB_WL_DECODE ? 3 : 1;
            for (int s = 0; s < steps; s++) {
                CHECK(hb_workload_step(w1) == HB_OK);
                CHECK_MSG(hb_workload_step(wt) == HB_OK, "%s", g->err);
                float *o1 = NULL, *ot = NULL;
                int64_t n1 = 0, nt = 0;
                CHECK(hb_workload_output(w1, &o1, &n1) == HB_OK);
                CHECK(hb_workload_output(wt, &ot, &nt) == HB_OK);
                CHECK(n1 == nt && n1 == c1.batch * m->vocab);
                if (o1 && ot && n1 == nt) {
                    const double r = rel_diff(ot, o1, n1);
                    CHECK_MSG(r < tol, "rank %d %s %s %s tp=%lld step %d: logits differ from tp=1 by %.3g (tol %g)",
                              world_rank, m->name, hb_workload_name(kinds[k]), hb_dtype_name(dts[d]), (long long)tp, s,
                              r, tol);
                    /* the group's ranks hold the same logits, bit for bit */
                    float *o0 = malloc((size_t)nt * sizeof *o0);
                    memcpy(o0, ot, (size_t)nt * sizeof *o0);
                    CHECK(hb_comm_broadcast(g, o0, nt, HB_CDT_F32, 0) == HB_OK);
                    CHECK_MSG(memcmp(o0, ot, (size_t)nt * sizeof *o0) == 0, "rank %d %s tp=%lld: group ranks differ",
                              world_rank, m->name, (long long)tp);
                    free(o0);
                }
                free(o1), free(ot);
            }
            double f1[HB_FP_LEN], ft[HB_FP_LEN];
            CHECK(hb_workload_fingerprint(w1, f1) == HB_OK && hb_workload_fingerprint(wt, ft) == HB_OK);
            CHECK_MSG(fabs(f1[1] - ft[1]) <= tol * fabs(f1[1]), "%s fingerprint %g vs %g", m->name, ft[1], f1[1]);
            /* the collectives ran: 2 all-reduces per layer, plus the head's all-gathers */
            int64_t calls;
            double bytes, sec;
            hb_comm_stats_total(&g->stats, &calls, &bytes, &sec);
            CHECK(calls >= 2 * m->n_layers);
            hb_workload_free(w1);
            hb_workload_free(wt);
        }
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    if (size != 4) {
        if (rank == 0) fprintf(stderr, "SKIP: test_tp needs 4 ranks (mpirun -np 4), has %d\n", size);
        MPI_Finalize();
        return 77;
    }
    hb_backend *be = NULL;
    hb_err err;
    if (hb_backend_open("cpu", 0, &be, &err) != HB_OK) {
        fprintf(stderr, "cpu backend: %s\n", err.msg);
        MPI_Finalize();
        return 1;
    }
    hb_model tiny, gpt, mla;
    CHECK(hb_model_find("tiny", &tiny, NULL) == HB_OK);
    CHECK(hb_model_find("tiny-mla", &mla, NULL) == HB_OK); /* MLA heads split, latents replicated */
    CHECK(hb_model_find("gpt2-124m", &gpt, NULL) == HB_OK);
    snprintf(gpt.name, sizeof gpt.name, "gpt2-small-test");
    gpt.dim = 64, gpt.n_layers = 2, gpt.n_heads = 4, gpt.n_kv_heads = 4, gpt.ffn_dim = 256, gpt.vocab = 257;
    gpt.max_seq = 64;
    CHECK(hb_model_validate(&gpt, NULL) == HB_OK);
    for (int64_t tp = 2; tp <= 4; tp += 2) {
        MPI_Comm sub;
        MPI_Comm_split(MPI_COMM_WORLD, rank / (int)tp, rank, &sub);
        hb_comm g;
        CHECK(hb_comm_mpi_init(&g, sub, rank / (int)tp, &err) == HB_OK);
        CHECK(g.size == tp && g.rank == rank % tp);
        check_model(be, &tiny, tp, &g, rank);
        check_model(be, &gpt, tp, &g, rank);
        check_model(be, &mla, tp, &g, rank);
        hb_comm_mpi_free(&g);
        MPI_Comm_free(&sub);
    }
    hb_backend_close(be);
    int mine = hbt_failures, all = 0;
    MPI_Allreduce(&mine, &all, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    MPI_Finalize();
    if (rank == 0) fprintf(stderr, "test_tp: %d failed checks over 4 ranks\n", all);
    return all ? 1 : 0;
}
