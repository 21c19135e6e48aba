/* main.c - the hetbench command line: subcommands, flags, exit codes.
 *
 * The only place that prints results and decides exit codes: 0 success; 1 a case failed or
 * a check/compare failed; 2 usage or input error (one line naming the file/flag and field); 3 compare
 * could not judge some cases (invalid timing) and found no regression. */
#include <errno.h>
#include <math.h>
#include <mpi.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "backends/backend.h"
#include "harness/commands.h"
#include "harness/plan.h"
#include "harness/run.h"
#include "results/results.h"

#include <cblas.h>   // defines: openblas_get_corename
#include <strings.h> // defines: strcasecmp
#include "hb_version.h"
#include "workloads/model.h"

static volatile sig_atomic_t g_stop = 0; /* the one global: written by the signal handler */

static void on_signal(int sig) {
    (void)sig;
    g_stop = 1;
}

static int usage_error(const char *sub, const char *fmt, const char *arg) {
    fprintf(stderr, "hetbench%s%s: ", sub ? " " : "", sub ? sub : "");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, " (see 'hetbench %s%s--help')\n", sub ? sub : "", sub ? " " : "");
    return 2;
}

/* The OpenMP wait policy of `run` (README "Busy machines", backends/WAIT_POLICY.md): when the
 * user set neither OMP_WAIT_POLICY nor GOMP_SPINCOUNT, hetbench runs with GOMP_SPINCOUNT=10000:
 * a thread waiting at a barrier spins about half a millisecond, then sleeps. libgomp's own
 * default spins 300000 times (a whole time slice): a thread waiting for a peer the OS preempted
 * holds its core, and decode on a shared machine fell from thousands to tens of tokens/s.
 * PASSIVE (sleep at once) avoids that but costs a futex wake-up at every barrier: on the quiet
 * VM it made llama-110m decode 1.3-2.3x slower than bounded spinning, i.e. it measured the
 * wake-ups, not the hardware. The OpenMP runtime reads the variables when it is loaded, before
 * main, so the process executes itself again once with them set (HETBENCH_WAIT_POLICY_BY
 * records who chose; /devices omp_wait_policy shows the policy). HETBENCH_WAIT_POLICY=passive
 * chooses PASSIVE, =runtime keeps the runtime's own default. Returns 2 (usage error) for
 * another value of HETBENCH_WAIT_POLICY, else 0. */
#define HB_SPINCOUNT "10000"

/* OpenBLAS's kernels (DYNAMIC_ARCH builds pick them from the CPU model when loaded): 0.3.21,
 * Debian 12's, does not know recent Xeon models (Sapphire/Emerald Rapids) and falls back to its
 * generic "Prescott" SSE3 kernels - a third of the speed of its SkylakeX (AVX-512) ones here,
 * which makes every CPU GEMM figure a measure of the fallback. When the user has not set
 * OPENBLAS_CORETYPE and OpenBLAS chose Prescott on a CPU with AVX-512 (F, BW, VL, DQ, CD) or
 * AVX2 + FMA, `run` sets SkylakeX or Haswell for the re-executed process;
 * HETBENCH_BLAS_CORETYPE_BY records it (/devices runtime names the kernels and who chose them);
 * HETBENCH_BLAS_CORETYPE=runtime keeps OpenBLAS's choice. Returns 1 when it set one. */
static int blas_coretype_default(void) {
    const char *hp = getenv("HETBENCH_BLAS_CORETYPE");
    if ((hp && !strcmp(hp, "runtime")) || getenv("OPENBLAS_CORETYPE") || getenv("HETBENCH_BLAS_CORETYPE_BY")) return 0;
    const char *core = openblas_get_corename();
    if (!core || strcasecmp(core, "prescott") != 0) return 0;
    const char *want = NULL;
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
        __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512cd"))
        want = "SkylakeX";
    else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        want = "Haswell";
#endif
    if (!want || setenv("OPENBLAS_CORETYPE", want, 1) != 0) return 0;
    setenv("HETBENCH_BLAS_CORETYPE_BY", "hetbench: OpenBLAS chose Prescott", 1);
    return 1;
}

static int wait_policy_default(char **argv) {
    const char *hp = getenv("HETBENCH_WAIT_POLICY");
    if (hp && strcmp(hp, "runtime") != 0 && strcmp(hp, "passive") != 0 && strcmp(hp, "bounded") != 0)
        return usage_error("run", "HETBENCH_WAIT_POLICY='%.40s' (accepted: bounded, passive, runtime)", hp);
    const int passive = hp && !strcmp(hp, "passive");
    const char *bp = getenv("HETBENCH_BLAS_CORETYPE");
    if (bp && strcmp(bp, "runtime") != 0 && strcmp(bp, "auto") != 0)
        return usage_error("run", "HETBENCH_BLAS_CORETYPE='%.40s' (accepted: auto, runtime)", bp);
    const int blas = blas_coretype_default();
    int omp = !(hp && !strcmp(hp, "runtime")) &&
              !(getenv("OMP_WAIT_POLICY") || getenv("GOMP_SPINCOUNT") || getenv("HETBENCH_WAIT_POLICY_BY"));
    if (omp && (setenv(passive ? "OMP_WAIT_POLICY" : "GOMP_SPINCOUNT", passive ? "PASSIVE" : HB_SPINCOUNT, 1) != 0 ||
                setenv("HETBENCH_WAIT_POLICY_BY", "hetbench", 1) != 0))
        omp = 0;
    if (!omp && !blas) return 0;
    /* the binary's own path, not /proc/self/exe: the process keeps its name (ps, pgrep) */
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n > 0) {
        self[n] = '\0';
        execv(self, argv);
    }
    /* no re-execution (no /proc): the runtimes' defaults stay, and the record says so */
    if (omp) {
        unsetenv(passive ? "OMP_WAIT_POLICY" : "GOMP_SPINCOUNT");
        setenv("HETBENCH_WAIT_POLICY_BY", "hetbench could not set its default", 1);
    }
    if (blas) unsetenv("OPENBLAS_CORETYPE"), unsetenv("HETBENCH_BLAS_CORETYPE_BY");
    return 0;
}

/* ---- help texts ---- */
static const char *const help_main =
    "usage: hetbench <command> [options]\n"
    "\n"
    "Runs identical LLM inference workloads on CPU, CUDA and ROCm/HIP backends and records\n"
    "tokens/s, latency, MFU and bandwidth utilisation (and joules, where a meter exists) in HDF5.\n"
    "\n"
    "commands:\n"
    "  run       run a plan (or a sweep given by flags) and write an HDF5 results file\n"
    "  list      list models, workloads or backends\n"
    "  info      show the host, backends, devices and every rank's placement\n"
    "  verify    check every op of each GPU backend against the CPU reference\n"
    "  power     read every energy/power meter on this node for a few seconds\n"
    "  weights   write the generated weights of a model as a Hugging Face checkpoint\n"
    "  report    tables and charts (md, csv, json, html) from results files, with cost per token\n"
    "  check     verdicts on claims (results/claims/*.yaml) against results files\n"
    "  compare   regression gate: NEW vs BASE results files, exit 1 on a regression\n"
    "\n"
    "options:\n"
    "  --help     this text ('hetbench help <command>' or 'hetbench <command> --help' for a command)\n"
    "  --version  print the version\n"
    "\n"
    "exit codes: 0 success, 1 a case failed or a check/compare failed, 2 usage or input error,\n"
    "3 compare: cases not judged (invalid timing) and no regression\n";

static const char *const help_run =
    "usage: hetbench run [--plan FILE.yaml] [case flags] [options]\n"
    "\n"
    "Without --plan and --workload, runs the built-in default plan (a short tour of every\n"
    "workload). Comma lists expand into a sweep (cartesian product, first flag outermost).\n"
    "With --plan, case flags override that key in every case of the plan where it applies.\n"
    "\n"
    "case flags:\n"
    "  --workload W       gemm | stream | prefill | decode | train | serve (comma list allowed)\n"
    "  --model M          tiny, gpt2-124m, gpt2-1.5b, llama3-8b, llama3-70b, tiny-moe,\n"
    "                     mixtral-8x7b, tiny-mla, deepseek-v2-lite, deepseek-v3,\n"
    "                     qwen3-30b-a3b, or a plan's model\n"
    "  --dense-twin T     MoE model as a dense model: none | total (the experts' total\n"
    "                     width) | active (top_k + shared experts' width)    [none]\n"
    "  --routing R        MoE: model (the router) | balanced | zipf:S (S > 0)  [model]\n"
    "  --dtype D          weights: f32 | bf16 | f16 | fp8 (e4m3, a scale per tensor;\n"
    "                     gemm: scale 1) | fp8-block (quant-block^2 blocks) | e5m2 [f32]\n"
    "  --kv-dtype D       KV cache: auto (f32, f16, else bf16) | f32 | bf16 | f16 | fp8 [auto]\n"
    "  --quant-block N    fp8-block: block edge (weights N x N, activations 1 x N) [128]\n"
    "  --batch B          sequences per step                                    [1]\n"
    "  --prompt P         prompt tokens (decode: tokens already in the KV cache) [128]\n"
    "  --gen G            decode: positions cycled through after the prompt     [32]\n"
    "  --layers N         truncate the model to N layers (labelled as such)\n"
    "  --m M --n N --k K  gemm shape                                            [1024]\n"
    "  --stream-n N       stream: f32 elements per array                        [33554432]\n"
    "  --stream-op OP     stream: copy | triad                                  [triad]\n"
    "  --temperature T    decode sampling temperature, 0 = argmax               [0]\n"
    "  --seq T            train: tokens per sequence                            [64]\n"
    "  --lr X --beta1 X --beta2 X --eps X --weight-decay X\n"
    "                     train: AdamW                [1e-4, 0.9, 0.999, 1e-8, 0]\n"
    "  --grad-accum N     train: micro-batches of batch x seq per step          [1]\n"
    "  --data D           train: synthetic (fresh tokens each step) | repeat (the\n"
    "                     same batch every step: the loss must fall)            [synthetic]\n"
    "  --dp N             train: ranks that train one model together            [1]\n"
    "  --recompute R      train: none | attention | full (activations recomputed\n"
    "                     in backward instead of kept: less memory, more compute) [none]\n"
    "  --tp N             prefill/decode: ranks splitting heads, ffn and vocab  [1]\n"
    "  --ep N             prefill/decode of MoE models: ranks splitting experts [1]\n"
    "  --collective OP    collective: all_reduce | all_gather | reduce_scatter |\n"
    "                     all_to_all | broadcast                                [all_reduce]\n"
    "  --coll-bytes N     collective: size in bytes (nccl-tests' size column)   [1048576]\n"
    "  --in-place 0|1     collective: out of place (0) or in place (1)          [0]\n"
    "  --coll-ranks N     collective: ranks of a group                          [2]\n"
    "  --isl N --osl N    serve: input (nominal) and output tokens per request  [128, 32]\n"
    "  --range-ratio X    serve: input lengths uniform in [X isl, isl], (0, 1]  [0.8]\n"
    "  --concurrency C    serve: closed loop, C requests in flight              [1]\n"
    "  --arrival A        serve: closed | poisson:R (R requests/s, seeded) | search\n"
    "                     (the highest Poisson rate meeting the SLOs)           [closed]\n"
    "  --requests N       serve: requests per stream, 0 = 10 x concurrency      [0]\n"
    "  --max-batch-tokens N  serve: tokens per scheduler iteration (decode +\n"
    "                     chunked prefill)                                      [2048]\n"
    "  --max-seqs N       serve: running requests at most                       [256]\n"
    "  --kv-blocks N      serve: paged KV cache blocks, 0 = every request in flight [0]\n"
    "  --kv-block-size N  serve: tokens per KV block                            [16]\n"
    "  --slo-ttft-s X --slo-tpot-s X  serve (Poisson): p99 bounds of the VALID verdict\n"
    "  --seed S           weights/inputs seed (same seed = same values on every backend) [1234]\n"
    "measurement:\n"
    "  --warmup N         warm-up iterations                                    [2]\n"
    "  --min-iters N      at least N timed iterations                           [5]\n"
    "  --min-seconds S    and at least S seconds of timed iterations            [1]\n"
    "  --max-iters N      at most N timed iterations                            [100000]\n"
    "  --repeat N         timed windows per case (1-64); rate = their median    [1]\n"
    "  --interleave       run window 1 of every case, then window 2, ... (with --repeat:\n"
    "                     drift hits every case alike; each window sets its case up again)\n"
    "options:\n"
    "  --plan FILE        YAML plan (see README 'Plans')\n"
    "  --backend B        auto | cpu | cuda | hip                               [auto]\n"
    "  --out FILE.h5      results file                      [hetbench-YYYYmmdd-HHMMSS.h5]\n"
    "  --force            overwrite --out if it exists\n"
    "  --json             one JSON object per case on stdout instead of the table\n"
    "  --dry-run          print the expanded cases, each one's memory and whether it fits\n"
    "                     rank 0's device, and an estimated duration; run and write nothing\n"
    "  --no-progress      no progress line on stderr (drawn only when stderr is a terminal:\n"
    "                     case, iterations, elapsed time, ETA)\n"
    "  --no-ceilings      do not measure CPU gemm/stream ceilings (MFU and BW% become NaN)\n"
    "energy (backends/ENERGY.md):\n"
    "  --power-hz H       power sampler rate during each timed window, 0 = off  [20]\n"
    "  --idle-seconds S   idle power measured per device before the first case,\n"
    "                     0 = skip                                              [3]\n"
    "distributed (mpirun / srun; a plain run is a single rank):\n"
    "  --schedule S       concurrent (every rank runs each case at once) | serial [concurrent]\n"
    "  --case-timeout S   a rank whose record is later than S s after dispatch is 'lost'\n"
    "                     [300 + 20 x min_seconds]\n"
    "  --share-devices    allow more ranks on a node than devices (ranks share round-robin)\n"
    "  --resume FILE.h5   finish an incomplete file: run only its missing, failed and lost\n"
    "                     (case, rank) pairs; refused if the plan or devices differ. The first\n"
    "                     run's options (--no-ceilings, --power-hz, --idle-seconds, --backend,\n"
    "                     --schedule, --case-timeout, --share-devices, --interleave) are restored\n"
    "                     unless given again\n";

static const char *const help_list =
    "usage: hetbench list models|workloads|backends\n"
    "\n"
    "  models      presets with their shapes and parameter counts\n"
    "  workloads   what each workload runs and which keys it uses\n"
    "  backends    every backend, available or not and why\n";

static const char *const help_info =
    "usage: hetbench info [--json] [--backend auto|cpu|cuda|hip] [--share-devices] [--group N]\n"
    "\n"
    "Host, backends and devices, then every rank of this job (under mpirun/srun): host, device\n"
    "(vendor model, PCI bus id), backend, NUMA node, cpuset and the binding `run` would apply.\n"
    "--group N: the rank groups a case with tp x ep x dp (or coll_ranks) = N runs on - group,\n"
    "index in it, collective library - and the groups that span more than one host.\n"
    "HETBENCH_TOPOLOGY=FILE.xml shows the placement on an hwloc XML node instead of this machine.\n";

static int wants_help(int argc, char **argv) {
    for (int i = 0; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) return 1;
    return 0;
}

/* ---- list ---- */
static int cmd_list(int argc, char **argv) {
    if (wants_help(argc, argv)) { fputs(help_list, stdout); return 0; }
    if (argc != 1) return usage_error("list", "expected one of models, workloads, backends%s", "");
    const char *what = argv[0];
    if (strcmp(what, "models") == 0) {
        const hb_model *m;
        int n = hb_model_presets(&m);
        printf("# %-14s %6s %6s %6s %8s %6s %7s %8s %-9s %-6s %-7s %5s %12s %8s %12s\n", "model", "dim", "layers",
               "heads", "kv_heads", "ffn", "vocab", "max_seq", "norm", "act", "pos", "tied", "params", "experts",
               "active");
        for (int i = 0; i < n; i++) {
            char ex[32] = "-";
            if (m[i].n_experts) snprintf(ex, sizeof ex, "%lld/%lld", (long long)m[i].top_k, (long long)m[i].n_experts);
            printf("  %-14s %6lld %6lld %6lld %8lld %6lld %7lld %8lld %-9s %-6s %-7s %5s %12lld %8s %12lld\n", m[i].name,
                   (long long)m[i].dim, (long long)m[i].n_layers, (long long)m[i].n_heads,
                   (long long)m[i].n_kv_heads, (long long)m[i].ffn_dim, (long long)m[i].vocab,
                   (long long)m[i].max_seq, hb_norm_name(m[i].norm), hb_act_name(m[i].act),
                   hb_pos_name(m[i].pos), m[i].tied ? "yes" : "no", (long long)hb_model_n_params(&m[i]), ex,
                   (long long)hb_model_n_active_params(&m[i]));
        }
        return 0;
    }
    if (strcmp(what, "workloads") == 0) {
        const hb_workload_desc *const *wl;
        int n = hb_workload_descs(&wl);
        printf("# %-8s %-40s %s\n", "workload", "one iteration", "headline rate");
        for (int i = 0; i < n; i++)
            printf("  %-8s %-40s %s\n", wl[i]->name, wl[i]->about, hb_headline_name(wl[i]->headline));
        return 0;
    }
    if (strcmp(what, "backends") == 0) {
        const hb_backend_desc *d;
        int n = hb_backend_registry(&d);
        printf("# %-8s %-12s %s\n", "backend", "status", "devices / reason");
        for (int i = 0; i < n; i++) {
            hb_err err = {{0}};
            int c = d[i].count(&err);
            if (c > 0) printf("  %-8s %-12s %d device%s\n", d[i].name, "available", c, c > 1 ? "s" : "");
            else printf("  %-8s %-12s %s\n", d[i].name, "unavailable", c == 0 ? "no device" : err.msg);
        }
        return 0;
    }
    return usage_error("list", "unknown list '%s' (accepted: models, workloads, backends)", what);
}

/* ---- info ---- */
/* The collective library a rank of this backend would use in a group (harness/run.c). */
static const char *comm_lib(const char *backend) {
    return strcmp(backend, "cpu") == 0 ? "mpi" : strcmp(backend, "cuda") == 0 ? "nccl" : strcmp(backend, "hip") == 0 ? "rccl" : "none";
}

static void print_ranks(int json, const hb_rank_info *r, int n, int group) {
    if (!json) {
        if (group > 1)
            printf("# %4s %5s %5s %-16s %-6s %-28s %-13s %4s %-20s %-8s %s\n", "rank", "group", "index", "host", "backend",
                   "device", "pci_bus_id", "numa", "cpuset", "comm", "binding / error");
        else
            printf("# %4s %-16s %-6s %-28s %-13s %4s %-20s %s\n", "rank", "host", "backend", "device", "pci_bus_id",
                   "numa", "cpuset", "binding / error");
        for (int i = 0; i < n; i++) {
            if (group > 1) printf("  %4d %5d %5d", r[i].rank, r[i].rank / group, r[i].rank % group);
            else printf("  %4d", r[i].rank);
            printf(" %-16s %-6s %-28.28s %-13s %4d %-20.20s ", r[i].host, r[i].backend, r[i].device,
                   r[i].pci_bus_id[0] ? r[i].pci_bus_id : "-", r[i].numa_node, r[i].cpuset);
            if (group > 1) printf("%-8s ", comm_lib(r[i].backend));
            printf("%s\n", r[i].error[0] ? r[i].error : r[i].binding);
        }
        for (int g0 = 0; group > 1 && g0 < n; g0 += group)
            for (int i = g0 + 1; i < g0 + group && i < n; i++)
                if (strcmp(r[i].host, r[g0].host) != 0) {
                    printf("# group %d spans hosts %s and %s: its collectives cross the network (place a group's "
                           "ranks on one node: block distribution)\n", g0 / group, r[g0].host, r[i].host);
                    break;
                }
        return;
    }
    printf(",\"ranks\":[");
    for (int i = 0; i < n; i++) {
        printf("%s{\"rank\":%d,\"local_rank\":%d", i ? "," : "", r[i].rank, r[i].local_rank);
        if (group > 1)
            printf(",\"group\":%d,\"group_rank\":%d,\"comm\":\"%s\"", r[i].rank / group, r[i].rank % group,
                   comm_lib(r[i].backend));
        const struct { const char *k, *v; } f[] = {
            {"host", r[i].host}, {"backend", r[i].backend}, {"device", r[i].device},
            {"pci_bus_id", r[i].pci_bus_id}, {"cpuset", r[i].cpuset}, {"binding", r[i].binding},
            {"error", r[i].error},
        };
        for (int j = 0; j < HB_ARRAY_LEN(f); j++) {
            printf(",\"%s\":\"", f[j].k);
            for (const char *p = f[j].v; *p; p++) {
                if (*p == '"' || *p == '\\') printf("\\%c", *p);
                else if ((unsigned char)*p >= 0x20) putchar(*p);
            }
            putchar('"');
        }
        printf(",\"numa_node\":%d}", r[i].numa_node);
    }
    printf("]");
}

static int cmd_info(int argc, char **argv, int rank) {
    if (wants_help(argc, argv)) {
        if (rank == 0) fputs(help_info, stdout);
        return 0;
    }
    int json = 0, share = 0, group = 1;
    const char *backend = "auto";
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0) json = 1;
        else if (strcmp(argv[i], "--group") == 0 && i + 1 < argc) {
            char *end = NULL;
            long g = strtol(argv[++i], &end, 10);
            if (!*argv[i] || *end || g < 1 || g > 1 << 20)
                return rank == 0 ? usage_error("info", "--group: '%s' is not a positive integer", argv[i]) : 2;
            group = (int)g;
        }
        else if (strcmp(argv[i], "--share-devices") == 0) share = 1;
        else if (strcmp(argv[i], "--backend") == 0 && i + 1 < argc) backend = argv[++i];
        else return rank == 0 ? usage_error("info", "unknown option '%s'", argv[i]) : 2;
    }
    hb_rank_info *ranks = NULL;
    int n_ranks = 0;
    hb_info_ranks(backend, share, &ranks, &n_ranks);
    if (rank != 0) {
        free(ranks);
        return 0;
    }
    if (ranks && n_ranks % group) {
        free(ranks);
        char msg[96];
        snprintf(msg, sizeof msg, "%d does not divide the %d ranks of this job", group, n_ranks);
        return usage_error("info", "--group: %s", msg);
    }
    char host[256] = "";
    gethostname(host, sizeof host - 1);
    struct utsname u;
    uname(&u);
    const hb_backend_desc *d;
    int n = hb_backend_registry(&d);
    if (json) printf("{\"host\":\"%s\",\"os\":\"%s %s\",\"version\":\"%s\",\"backends\":[", host, u.sysname, u.release, HB_VERSION);
    else printf("# hetbench %s (%s)\n  host      %s\n  os        %s %s %s\n", HB_VERSION, HB_GIT, host, u.sysname, u.release, u.machine);
    for (int i = 0; i < n; i++) {
        hb_err err = {{0}};
        int c = d[i].count(&err);
        if (json) printf("%s{\"name\":\"%s\",\"devices\":%d,\"reason\":\"%s\"}", i ? "," : "", d[i].name, c > 0 ? c : 0,
                         c > 0 ? "" : (c == 0 ? "no device" : err.msg));
        else printf("  backend   %-6s %s\n", d[i].name, c > 0 ? "available" : (c == 0 ? "no device" : err.msg));
    }
    if (json) printf("],\"devices\":[");
    int first = 1;
    for (int i = 0; i < n; i++) {
        hb_err err = {{0}};
        int c = d[i].count(&err);
        for (int j = 0; j < c; j++) {
            hb_backend *be = NULL;
            if (hb_backend_open(d[i].name, j, &be, &err) != HB_OK) continue;
            const hb_device_info *x = &be->info;
            if (json)
                printf("%s{\"backend\":\"%s\",\"index\":%d,\"vendor\":\"%s\",\"name\":\"%s\",\"pci_bus_id\":\"%s\","
                       "\"mem_bytes\":%lld,\"compute_units\":%d,\"threads\":%d,\"driver\":\"%s\",\"runtime\":\"%s\","
                       "\"gemm_impl\":\"%s\"}",
                       first ? "" : ",", x->backend, j, x->vendor, x->name, x->pci_bus_id, (long long)x->mem_bytes,
                       x->n_compute_units, x->n_threads, x->driver, x->runtime, x->gemm_impl);
            else
                printf("  device    %s:%d  %s %s  %.1f GiB  %d compute units, %d threads  pci %s\n"
                       "            driver %s  runtime %s  gemm %s\n",
                       x->backend, j, x->vendor, x->name, (double)x->mem_bytes / (1 << 30), x->n_compute_units,
                       x->n_threads, x->pci_bus_id[0] ? x->pci_bus_id : "-", x->driver, x->runtime, x->gemm_impl);
            first = 0;
            hb_backend_close(be);
        }
    }
    if (json) printf("]");
    else printf("# ranks of this job (where `hetbench run` places them; info binds nothing)\n");
    if (ranks) print_ranks(json, ranks, n_ranks, group);
    if (json) printf("}\n");
    free(ranks);
    return 0;
}

/* ---- run ---- */
typedef struct run_flag {
    const char *flag;   /* command-line spelling */
    const char *key;    /* plan key; NULL for options that are not case keys */
} run_flag;

static const run_flag case_flags[] = {
    {"--workload", "workload"}, {"--model", "model"}, {"--dtype", "dtype"}, {"--batch", "batch"},
    {"--prompt", "prompt"}, {"--gen", "gen"}, {"--seq", "seq"}, {"--layers", "layers"}, {"--m", "m"},
    {"--n", "n"}, {"--k", "k"}, {"--stream-n", "stream_n"}, {"--stream-op", "stream_op"},
    {"--seed", "seed"}, {"--temperature", "temperature"}, {"--warmup", "warmup"},
    {"--min-iters", "min_iters"}, {"--min-seconds", "min_seconds"}, {"--max-iters", "max_iters"}, {"--repeat", "repeat"},
    {"--kv-dtype", "kv_dtype"}, {"--quant-block", "quant_block"},
    {"--weights", "weights"}, {"--prompt-tokens", "prompt_tokens"},
    {"--lr", "lr"}, {"--beta1", "beta1"}, {"--beta2", "beta2"}, {"--eps", "eps"},
    {"--weight-decay", "weight_decay"}, {"--grad-accum", "grad_accum"}, {"--data", "data"}, {"--dp", "dp"},
    {"--dense-twin", "dense_twin"}, {"--routing", "routing"}, {"--recompute", "recompute"},
    {"--tp", "tp"}, {"--ep", "ep"}, {"--collective", "collective"}, {"--coll-bytes", "coll_bytes"},
    {"--in-place", "in_place"}, {"--coll-ranks", "coll_ranks"},
    {"--isl", "isl"}, {"--osl", "osl"}, {"--range-ratio", "range_ratio"}, {"--requests", "requests"},
    {"--concurrency", "concurrency"}, {"--arrival", "arrival"}, {"--max-batch-tokens", "max_batch_tokens"},
    {"--max-seqs", "max_seqs"}, {"--kv-blocks", "kv_blocks"}, {"--kv-block-size", "kv_block_size"},
    {"--slo-ttft-s", "slo_ttft_s"}, {"--slo-tpot-s", "slo_tpot_s"},
};

/* Rank 0 reads the plan; the others get its canonical YAML (the plan file may exist on rank
 * 0's node only). Every rank ends with the same cases. */
static hb_status load_plan(int rank, const char *plan_path, int have_workload, const char *resume,
                           const hb_kv *kv, int n_kv, hb_plan *plan, hb_err *err) {
    hb_status s = HB_OK;
    if (rank == 0) {
        if (plan_path) s = hb_plan_from_file(plan_path, kv, n_kv, plan, err);
        else if (have_workload) s = hb_plan_from_args(kv, n_kv, plan, err);
        else if (resume) { /* the plan the file was written with */
            hb_results *res = NULL;
            s = hb_results_read(resume, &res, err);
            if (s == HB_OK && (!res->meta.plan || !*res->meta.plan))
                s = hb_errf(err, HB_ERR_INPUT, "--resume %s: the file holds no plan", resume);
            if (s == HB_OK) {
                char source[512];
                snprintf(source, sizeof source, "%s (plan attribute)", resume);
                s = hb_plan_from_string(res->meta.plan, source, kv, n_kv, plan, err);
            }
            hb_results_free(res);
        } else s = hb_plan_from_string(HB_DEFAULT_PLAN, "default plan", kv, n_kv, plan, err);
    }
    int st = s;
    MPI_Bcast(&st, 1, MPI_INT, 0, MPI_COMM_WORLD);
    if (st != HB_OK) return (hb_status)st;
    long long len = rank == 0 ? (long long)strlen(plan->yaml) + 1 : 0;
    MPI_Bcast(&len, 1, MPI_LONG_LONG, 0, MPI_COMM_WORLD);
    char *text = rank == 0 ? plan->yaml : malloc((size_t)len);
    if (!text) return hb_errf(err, HB_ERR_NOMEM, "out of host memory");
    MPI_Bcast(text, (int)len, MPI_CHAR, 0, MPI_COMM_WORLD);
    if (rank != 0) {
        s = hb_plan_from_string(text, "plan from rank 0", NULL, 0, plan, err);
        free(text);
    }
    return s;
}

/* --resume: the options of the first run, from the file's command_line (rank 0 reads it, every
 * rank parses it), for each one not given on this command line. */
typedef struct run_options {
    int *calibrate;
    double *power_hz, *idle_seconds;
    const char **backend, **schedule;
    double *case_timeout;
    int *share, *interleave;
} run_options;

static int given(int argc, char **argv, const char *flag) {
    size_t n = strlen(flag);
    for (int i = 0; i < argc; i++)
        if (!strncmp(argv[i], flag, n) && (argv[i][n] == 0 || argv[i][n] == '=')) return 1;
    return 0;
}

/* stored (1024 bytes, the caller's) holds the strings the restored backend and schedule point into */
static hb_status restore_options(int rank, const char *path, int argc, char **argv, const run_options *ro, char *stored,
                                 hb_err *err) {
    int st = HB_OK;
    if (rank == 0) {
        hb_results *res = NULL;
        st = hb_results_read(path, &res, err);
        if (st == HB_OK) snprintf(stored, 1024, "%s", res->meta.command_line);
        hb_results_free(res);
    }
    MPI_Bcast(&st, 1, MPI_INT, 0, MPI_COMM_WORLD);
    if (st != HB_OK) return (hb_status)st;
    MPI_Bcast(stored, 1024, MPI_CHAR, 0, MPI_COMM_WORLD);
    char *tok[128];
    int n = 0;
    for (char *save = NULL, *t = strtok_r(stored, " ", &save); t && n < 128; t = strtok_r(NULL, " ", &save)) tok[n++] = t;
    for (int i = 0; i < n; i++) {
        char *a = tok[i], *val = strchr(a, '=');
        if (val) *val++ = 0;
        if (!strcmp(a, "--no-ceilings") && !given(argc, argv, a)) *ro->calibrate = 0;
        else if (!strcmp(a, "--share-devices") && !given(argc, argv, a)) *ro->share = 1;
        else if (!strcmp(a, "--interleave") && !given(argc, argv, a)) *ro->interleave = 1;
        else if (!strcmp(a, "--power-hz") || !strcmp(a, "--idle-seconds") || !strcmp(a, "--backend") ||
                 !strcmp(a, "--schedule") || !strcmp(a, "--case-timeout")) {
            if (!val && i + 1 < n) val = tok[++i];
            if (!val || given(argc, argv, a)) continue;
            char *end = NULL;
            double v = strtod(val, &end);
            int num = *val && !*end;
            if (!strcmp(a, "--backend")) *ro->backend = val;
            else if (!strcmp(a, "--schedule")) *ro->schedule = val;
            else if (!num) return hb_errf(err, HB_ERR_INPUT, "--resume %s: the stored option %s '%s' is not a number", path, a, val);
            else if (!strcmp(a, "--power-hz")) *ro->power_hz = v;
            else if (!strcmp(a, "--idle-seconds")) *ro->idle_seconds = v;
            else *ro->case_timeout = v;
        }
    }
    return HB_OK;
}

static int cmd_run(int argc, char **argv, const char *command_line, int rank) {
    if (wants_help(argc, argv)) {
        if (rank == 0) fputs(help_run, stdout);
        return 0;
    }
    if (rank != 0) { /* usage errors are printed once */
        if (!freopen("/dev/null", "w", stderr)) return 2;
    }
    hb_kv kv[HB_ARRAY_LEN(case_flags)];
    int n_kv = 0, have_workload = 0;
    const char *plan_path = NULL, *out_path = NULL, *backend = "auto", *schedule = "concurrent", *resume = NULL;
    int force = 0, json = 0, progress = rank == 0 && isatty(STDERR_FILENO), calibrate = 1, share = 0, interleave = 0;
    int dry_run = 0;
    double case_timeout = 0, power_hz = 20, idle_seconds = 3;
    for (int i = 0; i < argc; i++) {
        char *a = argv[i], *val = NULL;
        char name[64];
        snprintf(name, sizeof name, "%s", a);
        char *eq = strchr(name, '=');
        if (eq) { *eq = 0; val = strchr(a, '=') + 1; }
        if (strcmp(name, "--force") == 0) { force = 1; continue; }
        if (strcmp(name, "--json") == 0) { json = 1; progress = 0; continue; }
        if (strcmp(name, "--dry-run") == 0) { dry_run = 1; continue; }
        if (strcmp(name, "--no-progress") == 0) { progress = 0; continue; }
        if (strcmp(name, "--no-ceilings") == 0) { calibrate = 0; continue; }
        if (strcmp(name, "--share-devices") == 0) { share = 1; continue; }
        if (strcmp(name, "--interleave") == 0) { interleave = 1; continue; }
        const char *key = NULL;
        int known = 0;
        for (int f = 0; f < HB_ARRAY_LEN(case_flags); f++)
            if (strcmp(name, case_flags[f].flag) == 0) { key = case_flags[f].key; known = 1; }
        static const char *const options[] = {"--plan", "--out", "--backend", "--schedule", "--case-timeout",
                                              "--power-hz", "--idle-seconds", "--resume"};
        for (int f = 0; f < HB_ARRAY_LEN(options); f++) known |= strcmp(name, options[f]) == 0;
        if (!known) return usage_error("run", "unknown option '%s'", a);
        if (!val) {
            if (i + 1 >= argc) return usage_error("run", "%s: missing value", name);
            val = argv[++i];
        }
        if (strcmp(name, "--plan") == 0) plan_path = val;
        else if (strcmp(name, "--out") == 0) out_path = val;
        else if (strcmp(name, "--backend") == 0) backend = val;
        else if (strcmp(name, "--schedule") == 0) schedule = val;
        else if (strcmp(name, "--resume") == 0) resume = val;
        else if (strcmp(name, "--power-hz") == 0 || strcmp(name, "--idle-seconds") == 0) {
            int hz = strcmp(name, "--power-hz") == 0;
            char *end = NULL;
            double v = strtod(val, &end);
            if (!*val || *end || !(v >= 0) || v > (hz ? 1000 : 3600))
                return usage_error("run", hz ? "--power-hz: '%s' is not a rate from 0 (off) to 1000 Hz"
                                             : "--idle-seconds: '%s' is not a number of seconds from 0 to 3600",
                                   val);
            if (hz) power_hz = v;
            else idle_seconds = v;
        } else if (strcmp(name, "--case-timeout") == 0) {
            char *end = NULL;
            case_timeout = strtod(val, &end);
            if (!*val || *end || !(case_timeout > 0))
                return usage_error("run", "--case-timeout: '%s' is not a positive number of seconds", val);
        } else {
            for (int j = 0; j < n_kv; j++)
                if (strcmp(kv[j].key, key) == 0) return usage_error("run", "%s given twice", name);
            kv[n_kv++] = (hb_kv){key, val};
            if (strcmp(key, "workload") == 0) have_workload = 1;
        }
    }
    if (out_path && !*out_path) return usage_error("run", "--out: empty file name%s", "");
    if (plan_path && have_workload)
        return usage_error("run", "--workload cannot be combined with --plan%s (put the workloads in the plan)", "");
    if (strcmp(schedule, "concurrent") != 0 && strcmp(schedule, "serial") != 0)
        return usage_error("run", "--schedule: unknown value '%s' (accepted: concurrent, serial)", schedule);
    static const char *const backends[] = {"auto", "cpu", "cuda", "hip"};
    int bk = 0;
    for (int i = 0; i < HB_ARRAY_LEN(backends); i++) bk |= strcmp(backend, backends[i]) == 0;
    if (!bk) return usage_error("run", "--backend: unknown backend '%s' (accepted: auto, cpu, cuda, hip)", backend);

    hb_plan plan = {0};
    hb_err err = {{0}};
    if (resume) {
        if (out_path && strcmp(out_path, resume) != 0)
            return usage_error("run", "--out cannot differ from --resume%s (the resumed file is the output)", "");
        if (force) return usage_error("run", "--force cannot be combined with --resume%s", "");
        out_path = resume;
    }
    hb_status s = HB_OK;
    char stored_cmd[1024] = "";
    if (resume) {
        run_options ro = {&calibrate, &power_hz, &idle_seconds, &backend, &schedule, &case_timeout, &share, &interleave};
        s = restore_options(rank, resume, argc, argv, &ro, stored_cmd, &err);
        if (s != HB_OK) {
            fprintf(stderr, "hetbench run: %s\n", err.msg);
            return s == HB_ERR_INPUT ? 2 : 1;
        }
    }
    s = load_plan(rank, plan_path, have_workload, resume, kv, n_kv, &plan, &err);
    if (s != HB_OK) {
        fprintf(stderr, "hetbench run: %s\n", err.msg);
        hb_plan_free(&plan);
        return s == HB_ERR_INPUT ? 2 : 1;
    }
    char default_out[64];
    if (!out_path) {
        time_t now = time(NULL);
        struct tm tm;
        localtime_r(&now, &tm);
        strftime(default_out, sizeof default_out, "hetbench-%Y%m%d-%H%M%S.h5", &tm);
        out_path = default_out;
    }

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);

    hb_run_opts o = {.out_path = out_path, .force = force, .backend = backend, .json = json,
                     .progress = progress, .calibrate = calibrate, .command_line = command_line,
                     .stop = &g_stop, .out = stdout, .case_timeout_s = case_timeout,
                     .serial = strcmp(schedule, "serial") == 0, .share_devices = share, .resume = resume != NULL,
                     .power_hz = power_hz, .idle_seconds = idle_seconds, .interleave = interleave,
                     .dry_run = dry_run};
    int n_failed = 0;
    s = hb_run(&plan, &o, &n_failed, &err);
    hb_plan_free(&plan);
    if (s != HB_OK) {
        fprintf(stderr, "hetbench run: %s\n", err.msg[0] ? err.msg : hb_status_str(s));
        return (s == HB_ERR_INPUT || s == HB_ERR_TOO_LARGE) ? 2 : 1;
    }
    if (n_failed) {
        fprintf(stderr, "hetbench run: %d (case, rank) pair%s failed (see the table and %s)\n", n_failed,
                n_failed > 1 ? "s" : "", out_path);
        return 1;
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 2) { fputs(help_main, stderr); return 2; }
    const char *cmd = argv[1];
    if (strcmp(cmd, "help") == 0 && argc >= 3) { /* help COMMAND = COMMAND --help */
        static const char *const commands[] = {"run", "list", "info", "verify", "power", "weights", "report", "check", "compare"};
        int known = 0;
        for (int i = 0; i < HB_ARRAY_LEN(commands); i++) known |= strcmp(argv[2], commands[i]) == 0;
        if (!known) return usage_error(NULL, "help: unknown command '%s' (accepted: run, list, info, verify, power, "
                                             "weights, report, check, compare)", argv[2]);
        char *args[] = {argv[0], argv[2], "--help", NULL};
        return main(3, args);
    }
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        fputs(help_main, stdout);
        return 0;
    }
    if (strcmp(cmd, "--version") == 0) {
        printf("hetbench %s (%s)\n", HB_VERSION, HB_GIT);
        return 0;
    }
    if (strcmp(cmd, "list") == 0) return cmd_list(argc - 2, argv + 2);
    /* commands that need no MPI */
    static const struct { const char *name; int (*fn)(int, char **); } simple[] = {
        {"report", hb_cmd_report}, {"check", hb_cmd_check}, {"compare", hb_cmd_compare},
        {"power", hb_cmd_power}, {"verify", hb_cmd_verify}, {"weights", hb_cmd_weights},
    };
    for (int i = 0; i < HB_ARRAY_LEN(simple); i++)
        if (strcmp(cmd, simple[i].name) == 0) return simple[i].fn(argc - 2, argv + 2);
    if (strcmp(cmd, "run") != 0 && strcmp(cmd, "info") != 0)
        return usage_error(NULL, "unknown command '%s'", cmd);

    /* the command line as typed, for the results file */
    char command_line[1024] = "";
    for (int i = 0; i < argc; i++) {
        strncat(command_line, i ? " " : "", sizeof command_line - strlen(command_line) - 1);
        strncat(command_line, argv[i], sizeof command_line - strlen(command_line) - 1);
    }
    if (wants_help(argc - 2, argv + 2))
        return strcmp(cmd, "run") == 0 ? cmd_run(argc - 2, argv + 2, command_line, 0) : cmd_info(argc - 2, argv + 2, 0);
    int rc;

    if (strcmp(cmd, "run") == 0 && (rc = wait_policy_default(argv)) != 0) return rc;
    int provided = 0;
    MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
    int rank = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    if (strcmp(cmd, "run") == 0) rc = cmd_run(argc - 2, argv + 2, command_line, rank);
    else rc = cmd_info(argc - 2, argv + 2, rank);
    MPI_Finalize();
    return rc;
}
