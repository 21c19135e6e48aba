/* test_comm_nccl.c - hb_comm over NCCL (backends/comm_nccl.c), run under mpirun (2 or more ranks)
 * against tests/fake_nccl.c (HETBENCH_NCCL_LIBRARY) on the CPU backend, given a native stream
 * (a token pointer) as a GPU backend has:
 *  - loading: the version string (2.x codes of both eras), a missing library, a library that
 *    is not NCCL, a backend without a collective library;
 *  - bootstrapping over MPI: the unique id made once per group by group rank 0, every rank
 *    joining with its rank; the fake checks ranks and sizes;
 *  - every collective, in place and out of place, f32, bf16 and int32 (all_to_all with unequal
 *    counts, some 0), gives exactly the MPI implementation's result on the same inputs
 *    (integer-valued data: exact in any summation order);
 *  - the calls made: function, counts, dtype, op, root/peer, in-place form and the backend's
 *    stream, as the fake logged them;
 *  - errors: a failing collective returns HB_ERR_BACKEND with NCCL's message and the function
 *    in the comm's err; a failing ncclCommInitRank / ncclGetUniqueId fails the bootstrap on
 *    every rank naming the group; a backend without native_stream is refused. */
#include <mpi.h>
#include <stdint.h>
#include <unistd.h>

#include "../backends/backend.h"
#include "../backends/comm_nccl.h"
#include "../harness/comm_mpi.h"
#include "hbtest.h"

#define TOKEN ((void *)0x5eed)
static void *token_stream(hb_backend *be) {
    (void)be;
    return TOKEN;
}

static int world_rank, world_size;
static char log_prefix[256];

/* The fake's log lines of this rank since the last call (the file is then removed). */
static int read_log(char lines[][160], int max) {
    char path[300];
    snprintf(path, sizeof path, "%s.%d", log_prefix, world_rank);
    FILE *f = fopen(path, "r");
    int n = 0;
    if (!f) return 0;
    while (n < max && fgets(lines[n], 160, f)) {
        lines[n][strcspn(lines[n], "\n")] = 0;
        n++;
    }
    fclose(f);
    unlink(path);
    return n;
}

static int has_line(char lines[][160], int n, const char *want) {
    for (int i = 0; i < n; i++)
        if (strcmp(lines[i], want) == 0) return 1;
    return 0;
}

static void fill(void *p, hb_cdt dt, int64_t n, int seed) {
    for (int64_t i = 0; i < n; i++) {
        const int v = (int)((i * 7 + seed * 13) % 23) - 11; /* small integers: exact sums */
        if (dt == HB_CDT_F32) ((float *)p)[i] = (float)v;
        else if (dt == HB_CDT_BF16) ((uint16_t *)p)[i] = hb_f32_to_bf16((float)v);
        else ((int32_t *)p)[i] = v;
    }
}

static const char *dt_name(hb_cdt dt) { return dt == HB_CDT_F32 ? "f32" : dt == HB_CDT_BF16 ? "bf16" : "i32"; }
static int nccl_dt(hb_cdt dt) { return dt == HB_CDT_F32 ? 7 : dt == HB_CDT_BF16 ? 9 : 2; }

/* One collective through both comms on identical buffers; the outputs compared byte for byte. */
static void both(hb_comm *nc, hb_comm *mc, hb_comm_op op, hb_cdt dt, int inplace) {
    const int R = world_size, r = world_rank;
    const int64_t n = 37, es = hb_cdt_size(dt), tot = n * R;
    char *in[2], *out[2];
    for (int k = 0; k < 2; k++) {
        in[k] = calloc((size_t)(tot * es), 1);
        out[k] = calloc((size_t)(tot * es), 1);
        fill(in[k], dt, tot, r + 1);
        memset(out[k], 0x7f, (size_t)(tot * es));
    }
    int64_t sc[64], sd[64], rc[64], rd[64];
    /* all_to_all: rank r sends (r + p) % 3 * 5 elements to p (0 for some pairs) */
    int64_t so = 0, ro = 0;
    for (int p = 0; p < R; p++) {
        sc[p] = (r + p) % 3 * 5, sd[p] = so, so += sc[p];
        rc[p] = (p + r) % 3 * 5, rd[p] = ro, ro += rc[p];
    }
    if (op == HB_COMM_ALL_TO_ALL && inplace) /* in place: equal send and recv counts */
        for (int p = 0; p < R; p++) sc[p] = rc[p] = 4, sd[p] = rd[p] = 4 * p;
    hb_status st[2];
    for (int k = 0; k < 2; k++) {
        hb_comm *c = k ? mc : nc;
        char *a = in[k], *b = out[k];
        switch (op) {
        case HB_COMM_ALL_REDUCE:
            if (inplace) memcpy(b, a, (size_t)(n * es));
            st[k] = hb_comm_all_reduce(c, inplace ? b : a, b, n, dt, HB_REDOP_SUM);
            break;
        case HB_COMM_ALL_GATHER:
            if (inplace) memcpy(b + r * n * es, a, (size_t)(n * es));
            st[k] = hb_comm_all_gather(c, inplace ? b + r * n * es : a, b, n, dt);
            break;
        case HB_COMM_REDUCE_SCATTER:
            if (inplace) memcpy(b, a, (size_t)(tot * es));
            st[k] = hb_comm_reduce_scatter(c, inplace ? b : a, inplace ? b + r * n * es : b, n, dt, HB_REDOP_SUM);
            break;
        case HB_COMM_ALL_TO_ALL:
            if (inplace) memcpy(b, a, (size_t)(tot * es));
            st[k] = hb_comm_all_to_all(c, inplace ? b : a, sc, sd, b, rc, rd, dt);
            break;
        default:
            if (inplace || r == 1) memcpy(b, a, (size_t)(n * es));
            st[k] = hb_comm_broadcast(c, b, n, dt, 1);
            break;
        }
    }
    CHECK_MSG(st[0] == HB_OK && st[1] == HB_OK, "%s %s inplace %d: nccl %d (%s), mpi %d", hb_comm_op_name(op),
              dt_name(dt), inplace, st[0], nc->err, st[1]);
    const int64_t m = op == HB_COMM_REDUCE_SCATTER ? (inplace ? 0 : n) : op == HB_COMM_ALL_TO_ALL ? ro : op == HB_COMM_ALL_GATHER ? tot : n;
    const int64_t off = op == HB_COMM_REDUCE_SCATTER && inplace ? r * n : 0;
    const int64_t len = op == HB_COMM_REDUCE_SCATTER && inplace ? n : op == HB_COMM_ALL_TO_ALL && inplace ? 4 * R : m;
    CHECK_MSG(memcmp(out[0] + off * es, out[1] + off * es, (size_t)(len * es)) == 0, "%s %s inplace %d: NCCL and MPI differ",
              hb_comm_op_name(op), dt_name(dt), inplace);
    /* what the library was asked */
    char lines[64][160], want[160];
    int nl = read_log(lines, 64);
    switch (op) {
    case HB_COMM_ALL_REDUCE:
        snprintf(want, sizeof want, "ncclAllReduce count=%lld dt=%d op=0 inplace=%d stream=%p", (long long)n, nccl_dt(dt), inplace, TOKEN);
        break;
    case HB_COMM_ALL_GATHER:
        snprintf(want, sizeof want, "ncclAllGather sendcount=%lld dt=%d inplace=%d stream=%p", (long long)n, nccl_dt(dt), inplace, TOKEN);
        break;
    case HB_COMM_REDUCE_SCATTER:
        snprintf(want, sizeof want, "ncclReduceScatter recvcount=%lld dt=%d op=0 inplace=%d stream=%p", (long long)n, nccl_dt(dt), inplace, TOKEN);
        break;
    case HB_COMM_ALL_TO_ALL: {
        int n_send = 0, n_recv = 0;
        for (int p = 0; p < R; p++) {
            char w[160];
            snprintf(w, sizeof w, "ncclSend count=%lld dt=%d peer=%d stream=%p", (long long)sc[p], nccl_dt(dt), p, TOKEN);
            if (sc[p] > 0) {
                CHECK_MSG(has_line(lines, nl, w), "all_to_all: no '%s'", w);
                n_send++;
            }
            snprintf(w, sizeof w, "ncclRecv count=%lld dt=%d peer=%d stream=%p", (long long)rc[p], nccl_dt(dt), p, TOKEN);
            if (rc[p] > 0) {
                CHECK_MSG(has_line(lines, nl, w), "all_to_all: no '%s'", w);
                n_recv++;
            }
        }
        snprintf(want, sizeof want, "ncclGroupEnd ops=%d", n_send + n_recv);
        break;
    }
    default:
        snprintf(want, sizeof want, "ncclBroadcast count=%lld dt=%d root=1 inplace=1 stream=%p", (long long)n, nccl_dt(dt), TOKEN);
    }
    CHECK_MSG(has_line(lines, nl, want), "%s %s inplace %d: the fake logged no '%s' (first: '%s')", hb_comm_op_name(op),
              dt_name(dt), inplace, want, nl ? lines[0] : "");
    for (int k = 0; k < 2; k++) free(in[k]), free(out[k]);
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &world_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &world_size);
    const char *lib_path = getenv("HETBENCH_NCCL_LIBRARY"), *logp = getenv("FAKE_NCCL_LOG");
    if (!lib_path || !logp || world_size < 2 || world_size > 64) {
        if (world_rank == 0) fprintf(stderr, "SKIP: needs mpirun -np 2+, HETBENCH_NCCL_LIBRARY and FAKE_NCCL_LOG\n");
        MPI_Finalize();
        return 77;
    }
    snprintf(log_prefix, sizeof log_prefix, "%s", logp);
    hb_err err = {{0}};
    char junk[64][160];
    read_log(junk, 64);

    /* ---- loading ---- */
    hb_nccl_lib *lib = NULL;
    CHECK(hb_nccl_load("cpu", &lib, &err) == HB_ERR_UNSUPPORTED && strstr(err.msg, "no collective library"));
    setenv("FAKE_NCCL_VERSION", "2804", 1); /* before 2.9: X 1000 + Y 100 + Z */
    CHECK(hb_nccl_load("cuda", &lib, &err) == HB_OK && lib);
    if (lib) CHECK_MSG(strncmp(hb_nccl_version(lib), "NCCL 2.8.4 (", 12) == 0, "%s", hb_nccl_version(lib));
    hb_nccl_unload(lib);
    unsetenv("FAKE_NCCL_VERSION");
    setenv("HETBENCH_NCCL_LIBRARY", "/nonexistent/libnccl.so.2", 1);
    CHECK_MSG(hb_nccl_load("cuda", &lib, &err) == HB_ERR_UNSUPPORTED && strstr(err.msg, "cannot load NCCL /nonexistent") &&
                  strstr(err.msg, "HETBENCH_NCCL_LIBRARY"), "%s", err.msg);
    setenv("HETBENCH_NCCL_LIBRARY", "libm.so.6", 1);
    CHECK_MSG(hb_nccl_load("cuda", &lib, &err) == HB_ERR_UNSUPPORTED && strstr(err.msg, "has no ncclGetVersion"), "%s", err.msg);
    setenv("HETBENCH_RCCL_LIBRARY", lib_path, 1); /* RCCL: its own variable, the same API */
    CHECK(hb_nccl_load("hip", &lib, &err) == HB_OK && lib && !strcmp(hb_nccl_impl(lib), "rccl") &&
          !strncmp(hb_nccl_version(lib), "RCCL 2.21.5 (", 13));
    hb_nccl_unload(lib);
    setenv("HETBENCH_NCCL_LIBRARY", lib_path, 1);
    lib = NULL;
    CHECK(hb_nccl_load("cuda", &lib, &err) == HB_OK && lib);
    if (!lib) {
        fprintf(stderr, "FAIL: %s\n", err.msg);
        MPI_Finalize();
        return 1;
    }
    CHECK_MSG(strncmp(hb_nccl_version(lib), "NCCL 2.21.5 (", 13) == 0, "%s", hb_nccl_version(lib));

    hb_backend *be = NULL;
    CHECK(hb_backend_open("cpu", 0, &be, &err) == HB_OK);
    hb_comm nc, mc;
    /* the CPU backend has no native stream: refused */
    CHECK(hb_comm_nccl_init(&nc, lib, be, "x", world_size, world_rank, 0, &err) == HB_ERR_UNSUPPORTED &&
          strstr(err.msg, "no native stream"));
    const hb_backend_ops *orig = be->ops;
    hb_backend_ops ops = *be->ops;
    ops.native_stream = token_stream;
    be->ops = &ops;

    /* ---- bootstrapping: one group of all ranks ---- */
    MPI_Comm g;
    MPI_Comm_dup(MPI_COMM_WORLD, &g);
    CHECK(hb_comm_mpi_init(&mc, g, 0, &err) == HB_OK);
    hb_status s = hb_comm_nccl_bootstrap(&nc, lib, be, g, 0, &err);
    CHECK_MSG(s == HB_OK, "%s", err.msg);
    {
        char lines[16][160], want[160];
        int nl = read_log(lines, 16);
        snprintf(want, sizeof want, "ncclCommInitRank nranks=%d rank=%d", world_size, world_rank);
        CHECK_MSG(has_line(lines, nl, want), "no '%s'", want);
        CHECK(has_line(lines, nl, "ncclGetUniqueId") == (world_rank == 0)); /* made once, by group rank 0 */
    }
    CHECK(!strcmp(nc.impl, "nccl") && nc.rank == world_rank && nc.size == world_size);

    /* ---- every collective: NCCL == MPI, and the calls made ---- */
    const hb_cdt dts[3] = {HB_CDT_F32, HB_CDT_BF16, HB_CDT_I32};
    for (int op = HB_COMM_ALL_REDUCE; s == HB_OK && op <= HB_COMM_BROADCAST; op++)
        for (int d = 0; d < 3; d++)
            for (int ip = 0; ip < 2; ip++) both(&nc, &mc, (hb_comm_op)op, dts[d], ip);
    CHECK(hb_comm_barrier(&nc) == HB_OK);
    {
        char lines[16][160], want[160];
        int nl = read_log(lines, 16);
        snprintf(want, sizeof want, "ncclAllReduce count=1 dt=2 op=0 inplace=1 stream=%p", TOKEN);
        CHECK_MSG(has_line(lines, nl, want), "barrier: no '%s'", want);
    }
    CHECK(nc.stats.calls[HB_COMM_ALL_REDUCE] == 6 && nc.stats.calls[HB_COMM_BARRIER] == 1);

    /* ---- errors ---- */
    float x[4] = {1, 2, 3, 4};
    setenv("FAKE_NCCL_FAIL", "ncclAllReduce", 1);
    CHECK(hb_comm_all_reduce(&nc, x, x, 4, HB_CDT_F32, HB_REDOP_SUM) == HB_ERR_BACKEND);
    CHECK_MSG(strstr(nc.err, "nccl ncclAllReduce: unhandled system error (fake NCCL)") != NULL, "%s", nc.err);
    setenv("FAKE_NCCL_FAIL", "ncclSend", 1);
    nc.err[0] = 0;
    int64_t c1[64], d1[64];
    for (int p = 0; p < world_size; p++) c1[p] = 1, d1[p] = p;
    float y[64];
    CHECK(hb_comm_all_to_all(&nc, x, c1, d1, y, c1, d1, HB_CDT_F32) == HB_ERR_BACKEND && strstr(nc.err, "ncclSend/ncclRecv"));
    unsetenv("FAKE_NCCL_FAIL");
    read_log(junk, 64);
    hb_comm_nccl_free(&nc);
    hb_comm bad;
    setenv("FAKE_NCCL_FAIL", "ncclCommInitRank", 1);
    s = hb_comm_nccl_bootstrap(&bad, lib, be, g, 3, &err);
    CHECK_MSG(s == HB_ERR_BACKEND && strstr(err.msg, "ncclCommInitRank") && strstr(err.msg, "group 3") &&
                  strstr(err.msg, "unhandled system error"), "%s", err.msg);
    setenv("FAKE_NCCL_FAIL", "ncclGetUniqueId", 1);
    s = hb_comm_nccl_bootstrap(&bad, lib, be, g, 4, &err); /* rank 0 fails: every rank hears it */
    CHECK_MSG(s == HB_ERR_BACKEND && strstr(err.msg, "group 4: nccl ncclGetUniqueId"), "%s", err.msg);
    unsetenv("FAKE_NCCL_FAIL");
    read_log(junk, 64);

    hb_comm_mpi_free(&mc);
    MPI_Comm_free(&g);
    be->ops = orig;
    hb_backend_close(be);
    hb_nccl_unload(lib);
    int failed = hbt_failures, any = 0;
    MPI_Allreduce(&failed, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    if (world_rank == 0) fprintf(stderr, "test_comm_nccl: %d checks on rank 0, %s\n", hbt_checks, any ? "FAILED" : "ok");
    MPI_Finalize();
    return any ? 1 : 0;
}
