/* run.c - the coordinator: `hetbench run` across the ranks of MPI_COMM_WORLD (see run.h).
 *
 * Rank 0 is the coordinator and also a worker. Messages after dispatch are point to point:
 *   rank 0 -> r   TAG_CMD  int64[3] {CMD_RUN, case index, one window} | {CMD_STOP, 0, 0}
 *   r -> rank 0   TAG_REC  a packed hb_record (fixed part, iteration times, power trace)
 * Rank 0 polls for records with MPI_Iprobe until the case's deadline; a rank that misses it
 * is `lost` and gets no further cases. At the end, if a rank was lost, rank 0 closes the file
 * and calls MPI_Abort, since MPI_Finalize would wait for the lost rank forever. */
#include "run.h"

#include <math.h>
#include <stddef.h>
#include <mpi.h>
#include <omp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "dryrun.h"
#include "comm_mpi.h"
#include "energy.h"
#include "hb_version.h"
#include "outpath.h"
#include "output.h"
#include "progress.h"
#include "timing.h"
#include "topology.h"
#include "worker.h"

enum { TAG_CMD = 11, TAG_REC = 12 };
enum { CMD_RUN = 1, CMD_STOP = 2, CMD_EXIT = 3 };

double hb_case_timeout_default(const hb_case *c) { return 300.0 + 20.0 * c->min_seconds; }

static double case_timeout(const hb_run_opts *o, const hb_case *c) {
    return o->case_timeout_s > 0 ? o->case_timeout_s : hb_case_timeout_default(c);
}

/* The watchdog of a rank's own case: a rank still inside a case 10 s after the coordinator
 * gave up on it ends itself, so that a hung rank cannot keep the job alive (the coordinator
 * has recorded it as lost by then). */
static void on_watchdog(int sig) {
    (void)sig;
    static const char msg[] = "hetbench: this rank exceeded its case deadline (--case-timeout); exiting\n";
    ssize_t rc = write(STDERR_FILENO, msg, sizeof msg - 1);
    (void)rc;
    _exit(4);
}

static void watchdog_arm(double seconds) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_watchdog;
    sigaction(SIGALRM, &sa, NULL);
    alarm(seconds > 0 ? (unsigned)ceil(seconds + 10) : 0);
}

/* The collectives of this rank's groups wait at most until shortly before the coordinator's
 * deadline for the case (a tenth of the timeout, at most 10 s, earlier), so that the
 * survivors of a group with a dead or hung rank fail their collective and still send their
 * record in time (comm.h deadline_s); rank 0, the coordinator, is freed that way too. */
static void group_deadlines(hb_worker *w, double timeout) {
    const double d = timeout > 0 ? hb_now_s() + timeout - fmin(10.0, timeout / 10) : 0;
    for (int g = 0; g < w->n_groups; g++) w->groups[g].deadline_s = d;
}

/* /devices coll_lib: the collective library a group of this rank uses (CPU: MPI's version
 * string; GPU: NCCL or RCCL when the plan has groups, else "") */
static void coll_lib_fill(hb_device_row *d, const hb_nccl_lib *nccl) {
    if (nccl) {
        snprintf(d->coll_lib, sizeof d->coll_lib, "%s", hb_nccl_version(nccl));
    } else if (strcmp(d->backend, "cpu") == 0) {
        char v[MPI_MAX_LIBRARY_VERSION_STRING] = "";
        int n = 0;
        MPI_Get_library_version(v, &n);
        v[strcspn(v, ",\n")] = 0; /* "Open MPI v4.1.2" of "Open MPI v4.1.2, package: ..." */
        snprintf(d->coll_lib, sizeof d->coll_lib, "MPI (%.100s)", v);
    }
}

/* ---- agreement before dispatch: the first failing rank's status and message, on all ranks ---- */
static hb_status agree(hb_status s, hb_err *err, int rank, int size) {
    int mine = s != HB_OK ? rank : size, first = size;
    MPI_Allreduce(&mine, &first, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    if (first == size) return HB_OK;
    struct {
        int status;
        char msg[sizeof err->msg];
    } m = {0};
    if (rank == first) {
        m.status = s;
        char host[64] = "";
        gethostname(host, sizeof host - 1);
        if (size > 1) snprintf(m.msg, sizeof m.msg, "rank %d (%s): %.900s", rank, host, err->msg);
        else snprintf(m.msg, sizeof m.msg, "%s", err->msg);
    }
    MPI_Bcast(&m, (int)sizeof m, MPI_BYTE, first, MPI_COMM_WORLD);
    return hb_errf(err, (hb_status)m.status, "%s", m.msg);
}

/* ---- rank groups (dp, tp, ep, collective) ---- */

/* The key a case's group size comes from, for messages. */
static const char *group_keys(const hb_case *c, char *buf, size_t n) {
    const hb_workload_desc *d = hb_workload_desc_of(c->workload);
    buf[0] = 0;
    const struct { const char *k; int64_t v; } ks[] = {{"dp", c->dp}, {"tp", c->tp}, {"ep", c->ep}, {"coll_ranks", c->coll_ranks}};
    for (size_t i = 0; i < sizeof ks / sizeof ks[0]; i++)
        if (hb_workload_takes(d, ks[i].k) && ks[i].v > 1)
            snprintf(buf + strlen(buf), n - strlen(buf), "%s%s %lld", buf[0] ? " x " : "", ks[i].k, (long long)ks[i].v);
    return buf;
}

/* The distinct group sizes > 1 of the plan's cases (hb_case_group_size): each must divide the
 * ranks (every rank runs every case, in groups of consecutive ranks), have a collective library
 * (CPU ranks: MPI on host memory; CUDA ranks: NCCL, HIP ranks: RCCL, loaded here into *lib:
 * a GPU rank without it is refused before anything runs, naming the device and the library)
 * and not run under --schedule serial (a group's ranks must run together). */
static hb_status check_groups(const hb_worker *w, const hb_plan *plan, const hb_run_opts *o, int size,
                              int64_t *sizes, int *n_sizes, hb_nccl_lib **lib, hb_err *err) {
    *n_sizes = 0;
    for (int i = 0; i < plan->n_cases; i++) {
        const hb_case *c = &plan->cases[i];
        const int64_t g = hb_case_group_size(c);
        if (g <= 1) continue;
        char keys[128];
        group_keys(c, keys, sizeof keys);
        if (g > size || size % g) {
            char prod[48] = "";
            if (strstr(keys, " x ")) snprintf(prod, sizeof prod, " (= %lld ranks per group)", (long long)g);
            return hb_errf(err, HB_ERR_INPUT, "case %d (%.159s): %s%s does not divide the %d ranks of the run "
                           "(accepted: a group size that divides the number of ranks; each group of consecutive "
                           "ranks runs one instance of the case)", c->id, c->label, keys, prod, size);
        }
        if (strcmp(w->dev.backend, "cpu") != 0 && !*lib) {
            hb_err why = {{0}};
            if (hb_nccl_load(w->dev.backend, lib, &why) != HB_OK)
                return hb_errf(err, HB_ERR_INPUT, "case %d (%.159s): %s on %s device %s (%s) needs its collective "
                               "library: %.400s", c->id, c->label, keys, w->dev.backend, w->dev.pci_bus_id,
                               w->dev.name, why.msg);
        }
        if (o->serial)
            return hb_errf(err, HB_ERR_INPUT, "case %d (%.159s): %s with --schedule serial (the ranks of a group run "
                           "together; accepted: --schedule concurrent)", c->id, c->label, keys);
        int known = 0;
        for (int j = 0; j < *n_sizes; j++) known |= sizes[j] == g;
        if (known) continue;
        if (*n_sizes == HB_MAX_GROUPS)
            return hb_errf(err, HB_ERR_INPUT, "more than %d different group sizes in one plan (accepted: at most %d)",
                           HB_MAX_GROUPS, HB_MAX_GROUPS);
        sizes[(*n_sizes)++] = g;
    }
    return HB_OK;
}

/* ---- records on the wire ---- */
static void *pack_record(const hb_record *r, int *nbytes) {
    hb_record h = *r;
    /* header, iteration times, power trace, train losses, MoE expert counts, generated tokens */
    h.iter_seconds = h.power = h.loss = NULL;
    h.expert_tokens = NULL;
    h.generated = NULL;
    h.requests = NULL;
    const size_t nq = r->requests ? (size_t)r->n_requests * HB_SERVE_REQ_COLS : 0;
    if (!nq) h.n_requests = 0;
    const size_t ne = r->expert_tokens ? (size_t)(r->n_moe_layers * r->n_experts) : 0;
    if (!ne) h.n_moe_layers = h.n_experts = 0;
    const size_t nl = r->loss ? (size_t)r->n_loss : 0;
    if (!nl) h.n_loss = 0;
    const size_t ng = r->generated ? (size_t)(r->gen_rows * r->gen_cols) : 0;
    if (!ng) h.gen_rows = h.gen_cols = 0;
    const size_t o_it = sizeof h, o_pw = o_it + (size_t)r->n_iters * sizeof(double);
    const size_t o_l = o_pw + (size_t)r->n_power * 2 * sizeof(double), o_e = o_l + nl * sizeof(double);
    const size_t o_g = o_e + ne * sizeof(int64_t), o_q = o_g + ng * sizeof(int32_t);
    const size_t n = o_q + nq * sizeof(double);
    char *buf = malloc(n);
    if (!buf) return NULL;
    memcpy(buf, &h, sizeof h);
    if (r->n_iters) memcpy(buf + o_it, r->iter_seconds, (size_t)r->n_iters * sizeof(double));
    if (r->n_power) memcpy(buf + o_pw, r->power, (size_t)r->n_power * 2 * sizeof(double));
    if (nl) memcpy(buf + o_l, r->loss, nl * sizeof(double));
    if (ne) memcpy(buf + o_e, r->expert_tokens, ne * sizeof(int64_t));
    if (ng) memcpy(buf + o_g, r->generated, ng * sizeof(int32_t));
    if (nq) memcpy(buf + o_q, r->requests, nq * sizeof(double));
    *nbytes = (int)n;
    return buf;
}

static hb_status unpack_record(const char *buf, int nbytes, hb_record *r) {
    memset(r, 0, sizeof *r);
    if (nbytes < (int)sizeof *r) return HB_ERR_INTERNAL;
    memcpy(r, buf, sizeof *r);
    r->iter_seconds = r->power = r->loss = NULL;
    r->expert_tokens = NULL;
    r->generated = NULL;
    r->requests = NULL;
    if (r->n_requests < 0 || r->n_requests > ((int64_t)1 << 40)) return HB_ERR_INTERNAL;
    if (r->n_iters < 0 || r->n_power < 0 || r->n_loss < 0 || r->n_moe_layers < 0 || r->n_experts < 0 ||
        r->n_moe_layers > HB_MODEL_MAX_LAYERS || r->n_experts > 65536 || r->gen_rows < 0 || r->gen_cols < 0 ||
        r->gen_rows > nbytes || r->gen_cols > nbytes)
        return HB_ERR_INTERNAL;
    const size_t ne = (size_t)(r->n_moe_layers * r->n_experts), nl = (size_t)r->n_loss;
    const size_t ng = (size_t)(r->gen_rows * r->gen_cols);
    const size_t o_it = sizeof *r, o_pw = o_it + (size_t)r->n_iters * sizeof(double);
    const size_t o_l = o_pw + (size_t)r->n_power * 2 * sizeof(double), o_e = o_l + nl * sizeof(double);
    const size_t o_g = o_e + ne * sizeof(int64_t);
    const size_t nq = (size_t)r->n_requests * HB_SERVE_REQ_COLS, o_q = o_g + ng * sizeof(int32_t);
    if ((size_t)nbytes != o_q + nq * sizeof(double)) return HB_ERR_INTERNAL;
    r->requests = nq ? malloc(nq * sizeof(double)) : NULL;
    if (nq && !r->requests) return HB_ERR_NOMEM;
    if (nq) memcpy(r->requests, buf + o_q, nq * sizeof(double));
    r->iter_seconds = r->n_iters ? malloc((size_t)r->n_iters * sizeof(double)) : NULL;
    r->power = r->n_power ? malloc((size_t)r->n_power * 2 * sizeof(double)) : NULL;
    r->loss = nl ? malloc(nl * sizeof(double)) : NULL;
    r->expert_tokens = ne ? malloc(ne * sizeof(int64_t)) : NULL;
    r->generated = ng ? malloc(ng * sizeof(int32_t)) : NULL;
    if ((r->n_iters && !r->iter_seconds) || (r->n_power && !r->power) || (nl && !r->loss) || (ne && !r->expert_tokens) ||
        (ng && !r->generated))
        return HB_ERR_NOMEM;
    if (r->n_iters) memcpy(r->iter_seconds, buf + o_it, (size_t)r->n_iters * sizeof(double));
    if (r->n_power) memcpy(r->power, buf + o_pw, (size_t)r->n_power * 2 * sizeof(double));
    if (nl) memcpy(r->loss, buf + o_l, nl * sizeof(double));
    if (ne) memcpy(r->expert_tokens, buf + o_e, ne * sizeof(int64_t));
    if (ng) memcpy(r->generated, buf + o_g, ng * sizeof(int32_t));
    return HB_OK;
}

static void lost_record(hb_record *r, int case_id, int rank, const char *msg) {
    hb_record_init(r, case_id, rank);
    snprintf(r->status, sizeof r->status, "lost");
    snprintf(r->error, sizeof r->error, "%.255s", msg);
    r->energy_counter_j = r->energy_integral_j = NAN;
    r->energy_flags = HB_ENERGY_NO_METER;
    for (int j = 0; j < HB_FP_LEN; j++) r->fingerprint[j] = NAN;
}

/* Does Slurm hostlist expression LIST ("n0", "gpu[01-04,07],login2") name HOST? Handles one
 * bracket per name, ranges and zero padding - what Slurm prints for a component's nodes. */
static int hostlist_has(const char *list, const char *host) {
    size_t hl = strlen(host);
    const char *p = list;
    while (*p) {
        const char *e = p; /* end of this top-level item: a comma outside brackets */
        int depth = 0;
        while (*e && (depth || *e != ',')) depth += (*e == '[') - (*e == ']'), e++;
        const char *lb = memchr(p, '[', (size_t)(e - p));
        if (!lb) {
            if ((size_t)(e - p) == hl && strncmp(p, host, hl) == 0) return 1;
        } else {
            const char *rb = memchr(lb, ']', (size_t)(e - lb));
            size_t pre = (size_t)(lb - p), suf = rb ? (size_t)(e - rb - 1) : 0;
            if (rb && hl > pre + suf && strncmp(host, p, pre) == 0 &&
                strncmp(host + hl - suf, rb + 1, suf) == 0) {
                const char *num = host + pre;
                size_t nl = hl - pre - suf;
                char *end;
                long v = strtol(num, &end, 10);
                if (end == num + nl) /* the host's middle is a number: is it in a range? */
                    for (const char *r = lb + 1; r < rb;) {
                        const char *re = r;
                        while (re < rb && *re != ',') re++;
                        long lo = strtol(r, &end, 10), hi = lo;
                        size_t width = (size_t)(end - r);
                        if (end < re && *end == '-') hi = strtol(end + 1, NULL, 10);
                        if (v >= lo && v <= hi && (width == nl || (num[0] != '0' && width <= nl))) return 1;
                        r = re + (re < rb);
                    }
            }
        }
        p = *e ? e + 1 : e;
    }
    return 0;
}

/* Where Slurm ran this rank (empty, het group -1 outside Slurm or a heterogeneous job).
 * In a step spanning the components of a heterogeneous job, Slurm (22.05 .. current) gives a
 * task no variable naming its component, and SLURM_JOB_PARTITION / SLURM_JOB_NODELIST hold the
 * LAST component's partition and the whole job's nodes in every task. The component is
 * HETBENCH_HET_GROUP (exported per component by scripts/slurm/hetjob.sbatch) or else the one
 * whose node list holds this node; its partition and nodes are SLURM_JOB_*_HET_GROUP_<k>. */
static void slurm_fill(hb_device_row *d) {
    const char *v;
    int k = -1, n = (v = getenv("SLURM_HET_SIZE")) && *v ? atoi(v) : 0;
    char name[64];
    if (n > 0) {
        if ((v = getenv("HETBENCH_HET_GROUP")) && *v) k = atoi(v);
        const char *node = getenv("SLURMD_NODENAME");
        for (int g = 0; k < 0 && node && g < n; g++) {
            snprintf(name, sizeof name, "SLURM_JOB_NODELIST_HET_GROUP_%d", g);
            if ((v = getenv(name)) && hostlist_has(v, node)) k = g;
        }
    }
    d->slurm_het_group = k;
    const char *part = NULL, *nodes = NULL;
    if (k >= 0) {
        snprintf(name, sizeof name, "SLURM_JOB_PARTITION_HET_GROUP_%d", k);
        part = getenv(name);
        snprintf(name, sizeof name, "SLURM_JOB_NODELIST_HET_GROUP_%d", k);
        nodes = getenv(name);
    }
    if (!part) part = getenv("SLURM_JOB_PARTITION");
    if (!nodes) nodes = getenv("SLURM_JOB_NODELIST");
    v = getenv("SLURM_JOB_ID");
    snprintf(d->slurm_job_id, sizeof d->slurm_job_id, "%s", v ? v : "");
    v = getenv("SLURM_STEP_ID");
    snprintf(d->slurm_step_id, sizeof d->slurm_step_id, "%s", v ? v : "");
    snprintf(d->slurm_partition, sizeof d->slurm_partition, "%s", part ? part : "");
    snprintf(d->slurm_nodelist, sizeof d->slurm_nodelist, "%s", nodes ? nodes : "");
}

/* The OpenMP wait policy this process runs with, and who chose it (harness/main.c), for
 * /devices omp_wait_policy: "PASSIVE (hetbench default)", "ACTIVE (user)", "runtime default". */
static void note_wait_policy(hb_device_row *d) {
    const char *p = getenv("OMP_WAIT_POLICY"), *sc = getenv("GOMP_SPINCOUNT"), *by = getenv("HETBENCH_WAIT_POLICY_BY");
    const char *who = by && !strcmp(by, "hetbench") ? "hetbench default" : by ? by : "user";
    char *o = d->omp_wait_policy;
    const size_t n = sizeof d->omp_wait_policy;
    if (p && *p && sc) snprintf(o, n, "%.10s, GOMP_SPINCOUNT=%.12s (%s)", p, sc, who);
    else if (p && *p) snprintf(o, n, "%.10s (%.40s)", p, who);
    else if (sc) snprintf(o, n, "GOMP_SPINCOUNT=%.12s (%s)", sc, who);
    else snprintf(o, n, "runtime default");
}

/* ---- this rank's device ---- */
static hb_status open_device(hb_worker *w, const hb_run_opts *o, int local_rank, int local_size, hb_err *err) {
    hb_topology *topo = NULL;
    hb_placement p;
    hb_status s = hb_topology_load(&topo, err);
    if (s == HB_OK) s = hb_topology_place(topo, local_rank, local_size, o->backend, o->share_devices, &p, err);
    if (s == HB_OK) s = hb_topology_bind(topo, &p, err);
    int synthetic = topo ? hb_topology_is_synthetic(topo) : 0;
    hb_topology_free(topo);
    if (s != HB_OK) return s;
    /* a CPU rank uses the cores it is bound to, unless the user said otherwise */
    if (!p.has_device && !synthetic && !getenv("OMP_NUM_THREADS") && p.n_cpus > 0) omp_set_num_threads(p.n_cpus);
    HB_TRY(hb_backend_open(p.backend, p.has_device ? p.device_index : 0, &w->be, err));
    if (p.has_device && strcmp(w->be->info.pci_bus_id, p.accel.pci_bus_id) != 0 && w->be->info.pci_bus_id[0])
        return hb_errf(err, HB_ERR_INTERNAL,
                       "%s device %d has PCI bus id %s but topology placed this rank on %s (device order "
                       "differs: set CUDA_DEVICE_ORDER=PCI_BUS_ID)",
                       p.backend, p.device_index, w->be->info.pci_bus_id, p.accel.pci_bus_id);
    hb_device_row_fill(w->be, w->rank, &w->dev);
    note_wait_policy(&w->dev);
    w->dev.numa_node = p.numa_node;
    w->dev.llc_bytes = p.llc_bytes;
    snprintf(w->dev.cpuset, sizeof w->dev.cpuset, "%s", p.cpuset);
    snprintf(w->dev.binding, sizeof w->dev.binding, "%s", p.binding);
    slurm_fill(&w->dev);
    /* the device's meter (NVML / ROCm SMI / RAPL, else none with the reason) and, for a GPU
     * rank, the host's RAPL */
    HB_TRY(hb_meter_open_for_device(&w->be->info, &w->meter, err));
    HB_TRY(hb_meter_open_host(&w->be->info, &w->mo.host, err));
    hb_energy_device_fill(w->meter, w->mo.host, &w->dev);
    return HB_OK;
}

static void meta_fill(const hb_plan *plan, const hb_run_opts *o, const hb_device_row *devs, int size,
                      hb_run_meta *m) {
    memset(m, 0, sizeof *m);
    snprintf(m->version, sizeof m->version, "%s", HB_VERSION);
    snprintf(m->git, sizeof m->git, "%s", HB_GIT);
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(m->created_utc, sizeof m->created_utc, "%Y-%m-%dT%H:%M:%SZ", &tm);
    snprintf(m->command_line, sizeof m->command_line, "%s", o->command_line ? o->command_line : "");
    m->plan = plan->yaml;
    m->mpi_size = size;
    const char *job = getenv("SLURM_JOB_ID");
    snprintf(m->slurm_job_id, sizeof m->slurm_job_id, "%s", job ? job : "");
    snprintf(m->status, sizeof m->status, "incomplete");
    /* distinct hosts in rank order */
    for (int r = 0; r < size; r++) {
        int seen = 0;
        for (int q = 0; q < r && !seen; q++) seen = strcmp(devs[q].host, devs[r].host) == 0;
        if (seen) continue;
        size_t len = strlen(m->hosts);
        if (len + strlen(devs[r].host) + 2 >= sizeof m->hosts) break;
        snprintf(m->hosts + len, sizeof m->hosts - len, "%s%s", len ? "," : "", devs[r].host);
    }
}

/* --resume: the file's plan and devices must be this run's; need[case][rank] marks the pairs
 * with no `ok` record in the file. */
static hb_status resume_plan(const char *path, const hb_plan *plan, const hb_device_row *devs, int size,
                             unsigned char **need_out, hb_err *err) {
    hb_results *res = NULL;
    HB_TRY(hb_results_read(path, &res, err));
    hb_status s = HB_OK;
    if (!res->meta.plan || strcmp(res->meta.plan, plan->yaml) != 0)
        s = hb_errf(err, HB_ERR_INPUT, "--resume %s: the plan differs from the file's (give the same --plan and "
                    "case flags as the first run, or none to reuse the file's plan)", path);
    else if (res->n_devices != size)
        s = hb_errf(err, HB_ERR_INPUT, "--resume %s: the file has %d ranks, this job has %d", path, res->n_devices,
                    size);
    for (int r = 0; s == HB_OK && r < size; r++) {
        const hb_device_row *a = &res->devices[r], *b = &devs[r];
        if (strcmp(a->backend, b->backend) || strcmp(a->name, b->name))
            s = hb_errf(err, HB_ERR_INPUT, "--resume %s: rank %d ran on %s '%s', this job gives it %s '%s' (the set "
                        "of devices must be the same)", path, r, a->backend, a->name, b->backend, b->name);
    }
    unsigned char *need = s == HB_OK ? malloc((size_t)plan->n_cases * (size_t)size) : NULL;
    if (s == HB_OK && !need) s = hb_errf(err, HB_ERR_NOMEM, "out of host memory");
    if (s == HB_OK) {
        memset(need, 1, (size_t)plan->n_cases * (size_t)size);
        for (int i = 0; i < res->n_rows; i++) {
            const hb_summary_row *row = &res->rows[i];
            if (row->case_id >= 0 && row->case_id < plan->n_cases && row->rank >= 0 && row->rank < size &&
                strcmp(row->status, "ok") == 0)
                need[(size_t)row->case_id * (size_t)size + (size_t)row->rank] = 0;
        }
    }
    hb_results_free(res);
    *need_out = need;
    return s;
}

/* ---- rank 0: collect the records of `ranks` for case c until the deadline ---- */
static void collect(hb_record *recs, int *want, int size, int case_id, double deadline, int *alive) {
    int pending = 0;
    for (int r = 1; r < size; r++) pending += want[r];
    char *buf = NULL;
    while (pending > 0) {
        int flag = 0;
        MPI_Status st;
        MPI_Iprobe(MPI_ANY_SOURCE, TAG_REC, MPI_COMM_WORLD, &flag, &st);
        if (flag) {
            int n = 0, r = st.MPI_SOURCE;
            MPI_Get_count(&st, MPI_BYTE, &n);
            char *nb = realloc(buf, (size_t)n);
            if (!nb) break;
            buf = nb;
            MPI_Recv(buf, n, MPI_BYTE, r, TAG_REC, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
            hb_record rec;
            hb_status us = unpack_record(buf, n, &rec);
            if (!want[r] || us != HB_OK || rec.case_id != case_id) {
                hb_record_free(&rec);
                continue; /* a stale or malformed record: not this case's */
            }
            hb_record_free(&recs[r]);
            recs[r] = rec;
            recs[r].rank = r;
            want[r] = 0;
            pending--;
            continue;
        }
        if (hb_now_s() > deadline) break;
        usleep(200);
    }
    free(buf);
    for (int r = 1; r < size; r++)
        if (want[r]) alive[r] = 0; /* recs[r] already says lost */
}

enum { CMD_LEN = 3 };

static void send_cmd(int r, int cmd, int64_t arg, int64_t one_window, MPI_Request *req, int64_t *slot) {
    slot[0] = cmd;
    slot[1] = arg;
    slot[2] = one_window;
    MPI_Isend(slot, CMD_LEN, MPI_INT64_T, r, TAG_CMD, MPI_COMM_WORLD, req);
}

/* --interleave: one timed window of the case (its repeat key read as 1) */
static hb_case one_window_of(const hb_case *c) {
    hb_case w = *c;
    w.repeat = 1;
    return w;
}

/* ---- the worker loop of ranks > 0 ---- */
static void worker_loop(hb_worker *w, const hb_plan *plan, const hb_run_opts *o) {
    for (;;) {
        int64_t cmd[CMD_LEN];
        if (MPI_Recv(cmd, CMD_LEN, MPI_INT64_T, 0, TAG_CMD, MPI_COMM_WORLD, MPI_STATUS_IGNORE) != MPI_SUCCESS) return;
        if (cmd[0] == CMD_EXIT) _exit(1); /* a rank was lost: MPI_Finalize would wait for it */
        if (cmd[0] != CMD_RUN || cmd[1] < 0 || cmd[1] >= plan->n_cases) return;
        hb_record rec;
        const hb_case one = one_window_of(&plan->cases[cmd[1]]);
        watchdog_arm(case_timeout(o, &plan->cases[cmd[1]]));
        group_deadlines(w, case_timeout(o, &plan->cases[cmd[1]]));
        hb_worker_run_case(w, cmd[2] ? &one : &plan->cases[cmd[1]], &rec);
        watchdog_arm(0);
        int n = 0;
        void *buf = pack_record(&rec, &n);
        if (buf) MPI_Send(buf, n, MPI_BYTE, 0, TAG_REC, MPI_COMM_WORLD);
        free(buf);
        hb_record_free(&rec);
    }
}

/* ---- rank 0: one case on every alive rank; returns 1 if a stop was requested ---- */
static int run_case_everywhere(hb_worker *w, const hb_plan *plan, int i, int one_window, const hb_run_opts *o,
                               int size, int *alive, const unsigned char *need, hb_record *recs) {
    const hb_case one = one_window_of(&plan->cases[i]);
    const hb_case *c = one_window ? &one : &plan->cases[i];
    double timeout = case_timeout(o, c);
    int *want = calloc((size_t)size, sizeof *want);
    MPI_Request *req = calloc((size_t)size, sizeof *req);
    int64_t *slots = calloc((size_t)size * CMD_LEN, sizeof *slots);
    char msg[256];
    for (int r = 0; r < size; r++) {
        req[r] = MPI_REQUEST_NULL;
        if (alive[r]) snprintf(msg, sizeof msg, "rank %d sent no record within the %.0f s deadline (dead or hung; "
                                                "--case-timeout)", r, timeout);
        else snprintf(msg, sizeof msg, "rank %d was lost earlier in this run", r);
        lost_record(&recs[r], c->id, r, msg);
        if (!need[r]) snprintf(recs[r].status, sizeof recs[r].status, "skip"); /* --resume: already ok */
    }
    int stop = 0;
    if (!o->serial) {
        double deadline = hb_now_s() + timeout;
        for (int r = 1; r < size; r++)
            if (alive[r] && need[r]) {
                send_cmd(r, CMD_RUN, i, one_window, &req[r], &slots[CMD_LEN * r]);
                want[r] = 1;
            }
        if (need[0]) {
            hb_record_free(&recs[0]);
            watchdog_arm(timeout);
            group_deadlines(w, timeout);
            stop |= hb_worker_run_case(w, c, &recs[0]) == HB_ERR_INTERRUPTED;
            watchdog_arm(0);
        }
        collect(recs, want, size, c->id, deadline, alive);
    } else {
        if (need[0]) {
            hb_record_free(&recs[0]);
            watchdog_arm(timeout);
            group_deadlines(w, timeout);
            stop |= hb_worker_run_case(w, c, &recs[0]) == HB_ERR_INTERRUPTED;
            watchdog_arm(0);
        }
        for (int r = 1; r < size && !stop; r++) {
            if (!alive[r] || !need[r]) continue;
            double deadline = hb_now_s() + timeout;
            send_cmd(r, CMD_RUN, i, one_window, &req[r], &slots[CMD_LEN * r]);
            want[r] = 1;
            collect(recs, want, size, c->id, deadline, alive);
            stop |= o->stop && *o->stop;
        }
    }
    /* commands to ranks that answered have been received; the others are abandoned */
    for (int r = 1; r < size; r++)
        if (req[r] != MPI_REQUEST_NULL) {
            if (alive[r]) MPI_Wait(&req[r], MPI_STATUS_IGNORE);
            else MPI_Request_free(&req[r]);
        }
    for (int r = 0; r < size; r++) stop |= strcmp(recs[r].status, "interrupted") == 0;
    free(want);
    free(req);
    free(slots);
    return stop || (o->stop && *o->stop);
}

/* ---- rank 0: the rows of case i from its records (every rank's), into the file and the
 * table; frees the records. Interrupted and skipped (--resume) records are not results. ---- */
/* The group columns of a case's rows: each group's rate is its slowest rank's (times ep and
 * dp: under expert and data parallelism each rank has its own batch) (NaN when one
 * of its ranks has no ok row), per device that over the group's size, and its energy the sum
 * of its ranks'. A rank alone is its own group. */
static void group_figures(hb_summary_row *rows, int n) {
    for (int j = 0; j < n; j++) {
        hb_summary_row *a = &rows[j];
        double rate = INFINITY, energy = 0;
        int members = 0, ok = 1;
        for (int k = 0; k < n; k++) {
            const hb_summary_row *b = &rows[k];
            if (a->group_size > 1 ? (b->group_size != a->group_size || b->group_id != a->group_id) : k != j) continue;
            members++;
            ok &= strcmp(b->status, "ok") == 0;
            rate = fmin(rate, b->rate);
            energy += b->energy_j;
        }
        ok &= members == (a->group_size > 1 ? a->group_size : 1);
        /* ep: attention is data parallel, each rank of the group serves its own batch; dp:
         * each rank trains on its own slice of the group's tokens */
        a->group_rate = ok ? rate * (double)(a->ep > 1 ? a->ep : 1) * (double)(a->dp > 1 ? a->dp : 1) : NAN;
        a->group_rate_per_device = a->group_rate / (a->group_size > 1 ? a->group_size : 1);
        a->group_energy_j = ok ? energy : NAN;
    }
}

static hb_status write_case_results(const hb_worker *w, const hb_plan *plan, int i, const hb_run_opts *o, int size,
                                    hb_device_row *devs, hb_record *recs, hb_h5 *h5, int *n_failed, FILE *out,
                                    hb_err *err) {
    const hb_case *c = &plan->cases[i];
    char label[160]; /* the table, JSON lines and progress line show at most 159 characters */
    snprintf(label, sizeof label, "%.159s", c->label);
    hb_status s = HB_OK;
    int n = 0;
    hb_summary_row *rows = calloc((size_t)size, sizeof *rows);
    hb_record *keep = calloc((size_t)size, sizeof *keep);
    if (!rows || !keep) s = hb_errf(err, HB_ERR_NOMEM, "out of host memory");
    for (int r = 0; r < size && s == HB_OK; r++) {
        if (strcmp(recs[r].status, "interrupted") == 0 || strcmp(recs[r].status, "skip") == 0) continue;
        hb_summary_fill(c, &c->cost, &recs[r], &devs[r], &rows[n]);
        keep[n++] = recs[r];
        if (strcmp(recs[r].status, "ok") != 0) (*n_failed)++;
    }
    group_figures(rows, n);
    if (n > 0) s = hb_h5_write_case(h5, c, &c->cost, keep, rows, n, err);
    int drifted = 0;
    if (c->id == w->last_case_id && !o->resume) { /* the reference re-check lands in /devices */
        for (int j = 0; j < n; j++) {
            hb_device_row *d = &devs[keep[j].rank];
            d->ref_loop_s_end = keep[j].ref_loop_s_end;
            d->ref_drift = d->ref_loop_s_end / d->ref_loop_s - 1;
            drifted |= fabs(d->ref_drift) > 0.10;
        }
        if (s == HB_OK) s = hb_h5_write_devices(h5, devs, size, err);
    }
    for (int j = 0; j < n; j++) {
        if (o->json) {
            hb_print_json(out, label, &rows[j], &keep[j]);
        } else {
            hb_print_row(out, label, &rows[j]);
            if (strcmp(keep[j].status, "ok") != 0) fprintf(out, "             ^ %s\n", keep[j].error);
            /* a group's line after its last rank's row */
            if (rows[j].group_size > 1 && rows[j].group_rank == rows[j].group_size - 1)
                fprintf(out, "             # group %d (%d ranks, tp %lld, ep %lld): %.5g %s, %.5g per device, %.4g J\n",
                        rows[j].group_id, rows[j].group_size, (long long)rows[j].tp, (long long)rows[j].ep,
                        rows[j].group_rate, rows[j].rate_unit, rows[j].group_rate_per_device, rows[j].group_energy_j);
        }
    }
    if (drifted && !o->json)
        fprintf(out, "# warning: a rank's reference loop ran >10%% %s after the last case than before the "
                     "first (/devices ref_drift): the machine changed during the run\n",
                devs[0].ref_drift > 0 ? "slower" : "faster");
    fflush(out);
    free(rows);
    free(keep);
    for (int r = 0; r < size; r++) hb_record_free(&recs[r]), memset(&recs[r], 0, sizeof recs[r]);
    return s;
}

hb_status hb_info_ranks(const char *backend, int share, hb_rank_info **rows, int *n_rows) {
    int rank = 0, size = 1, local_rank = 0, local_size = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    MPI_Comm node;
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL, &node);
    MPI_Comm_rank(node, &local_rank);
    MPI_Comm_size(node, &local_size);
    MPI_Comm_free(&node);
    hb_rank_info me;
    memset(&me, 0, sizeof me);
    me.rank = rank;
    me.local_rank = local_rank;
    me.numa_node = -1;
    gethostname(me.host, sizeof me.host - 1);
    hb_topology *topo = NULL;
    hb_placement p;
    hb_err err = {{0}};
    hb_status s = hb_topology_load(&topo, &err);
    if (s == HB_OK) s = hb_topology_place(topo, local_rank, local_size, backend, share, &p, &err);
    if (s == HB_OK) {
        me.has_device = p.has_device;
        me.numa_node = p.numa_node;
        snprintf(me.backend, sizeof me.backend, "%s", p.backend);
        snprintf(me.cpuset, sizeof me.cpuset, "%s", p.cpuset);
        snprintf(me.pci_bus_id, sizeof me.pci_bus_id, "%s", p.has_device ? p.accel.pci_bus_id : "");
        if (hb_topology_is_synthetic(topo))
            snprintf(me.binding, sizeof me.binding, "none (synthetic topology)");
        else
            snprintf(me.binding, sizeof me.binding, "cpus %.40s, memory of NUMA node %d", p.cpuset, p.numa_node);
        hb_backend *be = NULL;
        if (hb_backend_open(p.backend, p.has_device ? p.device_index : 0, &be, &err) == HB_OK) {
            snprintf(me.device, sizeof me.device, "%s", be->info.name);
        } else {
            snprintf(me.device, sizeof me.device, "%s", p.has_device ? p.accel.name : "");
            snprintf(me.error, sizeof me.error, "%.255s", err.msg);
        }
        hb_backend_close(be);
    } else {
        snprintf(me.error, sizeof me.error, "%.255s", err.msg);
    }
    hb_topology_free(topo);
    hb_rank_info *all = rank == 0 ? calloc((size_t)size, sizeof *all) : NULL;
    MPI_Gather(&me, (int)sizeof me, MPI_BYTE, all, (int)sizeof me, MPI_BYTE, 0, MPI_COMM_WORLD);
    *rows = all;
    *n_rows = size;
    return rank == 0 && !all ? HB_ERR_NOMEM : HB_OK;
}

/* Before a case is written: room for it on the results file's file system (the writer's work
 * file grows by the case and each flush publishes a copy of it), checked again for every case.
 * Without room the case is not written, its row says so and the run stops with the file valid
 * and incomplete (finish it with --resume once there is space). */
static hb_status room_for(const hb_worker *w, const hb_plan *plan, int i, const hb_run_opts *o, int size,
                          hb_record *recs, FILE *out, hb_err *err) {
    int64_t case_b = 64 * 1024;
    for (int r = 0; r < size; r++) case_b += 4 * 8 * recs[r].n_iters + 16 * recs[r].n_power + 8 * 1024;
    struct stat st;
    int64_t file_b = stat(o->out_path, &st) == 0 ? (int64_t)st.st_size : 0;
    const hb_case *c = &plan->cases[i];
    hb_status s = hb_out_room(o->out_path, file_b + 2 * case_b, err);
    for (int f = 0; f < w->n_faults && s == HB_OK; f++)
        if (w->faults[f].kind == HB_FAULT_DISK_FULL && (w->faults[f].case_id < 0 || w->faults[f].case_id == c->id))
            s = hb_errf(err, HB_ERR_IO, "disk full (HETBENCH_FAULT)");
    if (s != HB_OK) {
        if (o->json) fprintf(out, "{\"case\": %d, \"status\": \"not written\", \"error\": \"disk full\"}\n", c->id);
        else fprintf(out, "# case %d (%.159s): NOT WRITTEN: %s\n", c->id, c->label, err->msg);
        fflush(out);
        for (int r = 0; r < size; r++) hb_record_free(&recs[r]), memset(&recs[r], 0, sizeof recs[r]);
        hb_errf(err, HB_ERR_IO, "%s: disk full before case %d of %d was written: the file holds the cases before it "
                "(status incomplete); free some space and finish with --resume %s", o->out_path, i + 1, plan->n_cases,
                o->out_path);
    }
    return s;
}

hb_status hb_run(const hb_plan *plan, const hb_run_opts *o, int *n_failed, hb_err *err) {
    int rank = 0, size = 1, local_rank = 0, local_size = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm node;
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL, &node);
    MPI_Comm_rank(node, &local_rank);
    MPI_Comm_size(node, &local_size);
    MPI_Comm_free(&node);
    FILE *out = o->out ? o->out : stdout;
    *n_failed = 0;

    hb_worker w = {.rank = rank, .mo = {.power_hz = o->power_hz, .stop = o->stop},
                   .last_case_id = plan->n_cases > 0 ? plan->cases[plan->n_cases - 1].id : -1};
    hb_device_row *devs = NULL;
    hb_record *recs = NULL;
    int *alive = NULL;
    hb_h5 *h5 = NULL;
    unsigned char *need = NULL; /* [case][rank]: run this pair (rank 0) */
    hb_progress *prog = NULL;   /* rank 0, on a terminal */
    MPI_Comm group_comm[HB_MAX_GROUPS]; /* under w.groups[g] (hb_comm over MPI; NCCL/RCCL's bootstrap) */
    int n_comms = 0;
    hb_nccl_lib *nccl = NULL; /* GPU ranks with groups: NCCL or RCCL */
    hb_status s = hb_fault_parse(getenv("HETBENCH_FAULT"), w.faults, &w.n_faults, err);
    if ((s = agree(s, err, rank, size)) != HB_OK) goto out;
    /* the output is checked before anything slow happens (a dry run writes nothing: an existing
     * file is no error there) */
    if (rank == 0)
        s = hb_out_check(o->out_path, o->resume ? "--resume" : "--out", o->force || o->dry_run, o->resume, err);
    if ((s = agree(s, err, rank, size)) != HB_OK) goto out;
    s = open_device(&w, o, local_rank, local_size, err);
    if ((s = agree(s, err, rank, size)) != HB_OK) goto out;
    if (o->dry_run) {
        if (rank == 0)
            s = hb_run_dry(w.be, &w.dev, plan, size, o->serial,
                           w.meter && (w.meter->has_counter || w.meter->has_power) ? o->idle_seconds : 0, o->calibrate,
                           out, err);
        s = agree(s, err, rank, size);
        goto out;
    }
    s = hb_worker_check_fit(&w, plan->cases, plan->n_cases, err);
    if ((s = agree(s, err, rank, size)) != HB_OK) goto out;
    s = hb_worker_check_support(&w, plan->cases, plan->n_cases, err);
    if ((s = agree(s, err, rank, size)) != HB_OK) goto out;
    /* rank groups: ranks k*n .. k*n+n-1 form group k of size n; communicators made here, by
     * every rank in the same order, before dispatch */
    s = check_groups(&w, plan, o, size, w.group_size, &w.n_groups, &nccl, err);
    if ((s = agree(s, err, rank, size)) != HB_OK) goto out;
    for (int g = 0; g < w.n_groups && s == HB_OK; g++) {
        const int n = (int)w.group_size[g];
        MPI_Comm_split(MPI_COMM_WORLD, rank / n, rank, &group_comm[g]);
        n_comms = g + 1;
        s = nccl ? hb_comm_nccl_bootstrap(&w.groups[g], nccl, w.be, group_comm[g], rank / n, err)
                 : hb_comm_mpi_init(&w.groups[g], group_comm[g], rank / n, err);
    }
    if ((s = agree(s, err, rank, size)) != HB_OK) goto out;
    coll_lib_fill(&w.dev, nccl);
    /* idle baseline: every rank at once, before anything heats the devices */
    hb_idle_row idle_row = {.rank = rank};
    s = hb_idle_baseline(w.meter, o->idle_seconds, o->power_hz, o->stop, &idle_row, err);
    if ((s = agree(s, err, rank, size)) != HB_OK) goto out;
    w.mo.idle_w = idle_row.idle_w;
    if (o->calibrate) s = hb_worker_calibrate(&w, plan->cases, plan->n_cases, rank == 0 && o->progress, err);
    if ((s = agree(s, err, rank, size)) != HB_OK) goto out;
    /* each rank's reference speed before the first case; re-run after the last one */
    w.dev.ref_loop_s = hb_timing_ref_loop_s(5);

    devs = calloc((size_t)size, sizeof *devs);
    int ok = devs != NULL, all_ok = 0;
    MPI_Allreduce(&ok, &all_ok, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    if (!all_ok) {
        s = hb_errf(err, HB_ERR_NOMEM, "out of host memory");
        goto out;
    }
    MPI_Gather(&w.dev, (int)sizeof w.dev, MPI_BYTE, devs, (int)sizeof w.dev, MPI_BYTE, 0, MPI_COMM_WORLD);
    hb_idle_row *idles = rank == 0 ? calloc((size_t)size, sizeof *idles) : NULL;
    MPI_Gather(&idle_row, (int)sizeof idle_row, MPI_BYTE, idles, (int)sizeof idle_row, MPI_BYTE, 0,
               MPI_COMM_WORLD);
    if (rank == 0 && o->resume) {
        /* the same devices, then only the pairs that are missing, failed or lost; the file's
         * /devices and idle baseline stay as the first run wrote them */
        s = resume_plan(o->out_path, plan, devs, size, &need, err);
        if (s == HB_OK) s = hb_h5_open_resume(o->out_path, o->command_line, &h5, err);
    } else if (rank == 0) {
        hb_run_meta meta;
        meta_fill(plan, o, devs, size, &meta);
        double *idle = malloc((size_t)size * sizeof *idle);
        for (int r = 0; idle && idles && r < size; r++) idle[r] = idles[r].idle_w;
        s = idle && idles ? hb_h5_create(o->out_path, o->force, &meta, devs, size, idle, &h5, err) : HB_ERR_NOMEM;
        if (s == HB_OK) s = hb_h5_write_idle(h5, idles, size, err);
        free(idle);
        need = malloc((size_t)plan->n_cases * (size_t)size);
        if (need) memset(need, 1, (size_t)plan->n_cases * (size_t)size);
        else if (s == HB_OK) s = hb_errf(err, HB_ERR_NOMEM, "out of host memory");
    }
    free(idles);
    if ((s = agree(s, err, rank, size)) != HB_OK) goto out;

    /* ---- dispatch: from here on, no collective ---- */
    if (rank != 0) {
        worker_loop(&w, plan, o);
        goto out;
    }
    recs = calloc((size_t)size, sizeof *recs);
    alive = malloc((size_t)size * sizeof *alive);
    for (int r = 0; r < size; r++) alive[r] = 1;
    if (!o->json) hb_print_header(out, &devs[0], size);
    int stopped = 0, done = 0;
    if (o->progress) { /* the estimates now that the ceilings are known */
        double *est = malloc((size_t)(plan->n_cases > 0 ? plan->n_cases : 1) * sizeof *est);
        for (int i = 0; est && i < plan->n_cases; i++) {
            int lower = 0;
            est[i] = hb_case_estimate_s(&plan->cases[i], &w.dev, &lower) * (o->serial ? size : 1);
        }
        if (est) hb_progress_start(1, plan->n_cases, est, &prog);
        free(est);
        w.mo.iters = hb_progress_iters(prog);
    }
    /* --resume: the ranks of a group run a case together or not at all */
    for (int i = 0; i < plan->n_cases; i++) {
        const int64_t g = hb_case_group_size(&plan->cases[i]);
        if (g <= 1) continue;
        unsigned char *ng = need + (size_t)i * (size_t)size;
        for (int r0 = 0; r0 < size; r0 += (int)g) {
            int any_g = 0;
            for (int r = r0; r < r0 + g; r++) any_g |= ng[r];
            for (int r = r0; r < r0 + g; r++) ng[r] = (unsigned char)any_g;
        }
    }
    if (!o->interleave) {
        for (int i = 0; i < plan->n_cases && !stopped; i++) {
            const unsigned char *need_i = need + (size_t)i * (size_t)size;
            int any = 0;
            for (int r = 0; r < size; r++) any |= need_i[r];
            if (!any) { /* --resume: every rank has this case already */
                done = i + 1;
                continue;
            }
            char prefix[48];
            snprintf(prefix, sizeof prefix, "[%d/%d]", i + 1, plan->n_cases);
            hb_progress_begin(prog, i, prefix, plan->cases[i].label);
            stopped = run_case_everywhere(&w, plan, i, 0, o, size, alive, need_i, recs);
            hb_progress_end(prog, i);
            s = room_for(&w, plan, i, o, size, recs, out, err);
            if (s == HB_OK) s = write_case_results(&w, plan, i, o, size, devs, recs, h5, n_failed, out, err);
            if (s != HB_OK) break;
            if (!stopped) done = i + 1;
        }
    } else {
        /* --interleave: round k runs window k of every case that has one, so that a drift of
         * the machine hits every case alike; a case is written after its last window */
        int64_t rounds = 1;
        for (int i = 0; i < plan->n_cases; i++) rounds = plan->cases[i].repeat > rounds ? plan->cases[i].repeat : rounds;
        if (rounds > HB_MAX_REPEAT) rounds = HB_MAX_REPEAT;
        hb_record *acc = calloc((size_t)plan->n_cases * (size_t)size, sizeof *acc);
        if (!acc) s = hb_errf(err, HB_ERR_NOMEM, "out of host memory");
        for (int64_t k = 0; k < rounds && !stopped && s == HB_OK; k++) {
            for (int i = 0; i < plan->n_cases && !stopped && s == HB_OK; i++) {
                const hb_case *c = &plan->cases[i];
                const int64_t reps = c->repeat > 1 ? (c->repeat < HB_MAX_REPEAT ? c->repeat : HB_MAX_REPEAT) : 1;
                const unsigned char *need_i = need + (size_t)i * (size_t)size;
                hb_record *acc_i = acc + (size_t)i * (size_t)size;
                int any = 0;
                for (int r = 0; r < size; r++) any |= need_i[r];
                if (k >= reps || !any) continue;
                char prefix[48];
                snprintf(prefix, sizeof prefix, "[round %lld/%lld, %d/%d]", (long long)k + 1, (long long)rounds, i + 1,
                         plan->n_cases);
                hb_progress_begin(prog, i, prefix, c->label);
                stopped = run_case_everywhere(&w, plan, i, 1, o, size, alive, need_i, recs);
                hb_progress_end(prog, -1);
                for (int r = 0; r < size && s == HB_OK; r++) {
                    if (!strcmp(recs[r].status, "skip") || !strcmp(recs[r].status, "interrupted"))
                        snprintf(acc_i[r].status, sizeof acc_i[r].status, "%s", recs[r].status);
                    else if (hb_record_add_window(&acc_i[r], &recs[r]) != HB_OK)
                        s = hb_errf(err, HB_ERR_NOMEM, "out of host memory");
                    hb_record_free(&recs[r]);
                    memset(&recs[r], 0, sizeof recs[r]);
                }
                if (s == HB_OK && !stopped && k == reps - 1) {
                    s = room_for(&w, plan, i, o, size, acc_i, out, err);
                    if (s == HB_OK) s = write_case_results(&w, plan, i, o, size, devs, acc_i, h5, n_failed, out, err);
                    done++;
                }
            }
        }
        for (size_t j = 0; acc && j < (size_t)plan->n_cases * (size_t)size; j++) hb_record_free(&acc[j]);
        free(acc);
    }
    hb_progress_stop(prog);
    prog = NULL;
    int lost = 0;
    for (int r = 1; r < size; r++) lost += !alive[r];
    const char *status = (s == HB_OK && !stopped) ? "complete" : "incomplete";
    hb_status cs = hb_h5_close(h5, status, s == HB_OK ? err : NULL);
    h5 = NULL;
    if (s == HB_OK) s = cs;
    if (s == HB_OK && stopped)
        s = hb_errf(err, HB_ERR_INTERRUPTED, "stopped by a signal: %d of %d cases complete in %s (status "
                    "incomplete; finish with --resume %s)", done, plan->n_cases, o->out_path, o->out_path);
    if (s == HB_OK && !o->json) fprintf(out, "# results: %s\n", o->out_path);
    fflush(out);
    /* only now that the file is closed: workers leave their loop, to MPI_Finalize, or, when a
     * rank was lost (MPI_Finalize would wait for it), straight out */
    for (int r = 1; r < size; r++)
        if (alive[r]) {
            int64_t cmd[CMD_LEN] = {lost ? CMD_EXIT : CMD_STOP, 0, 0};
            MPI_Send(cmd, CMD_LEN, MPI_INT64_T, r, TAG_CMD, MPI_COMM_WORLD);
        }
    if (lost) {
        fflush(out);
        fprintf(stderr, "hetbench run: %d rank%s lost (dead or hung); results are in %s; aborting the job so "
                        "that it does not wait for them\n", lost, lost > 1 ? "s" : "", o->out_path);
        fflush(stderr);
        MPI_Abort(MPI_COMM_WORLD, 1);
        _exit(1); /* MPI_Abort may only end this process (mpirun --enable-recovery) */
    }

out:
    hb_progress_stop(prog);
    for (int g = 0; g < n_comms; g++) {
        if (nccl) hb_comm_nccl_free(&w.groups[g]);
        else hb_comm_mpi_free(&w.groups[g]);
        MPI_Comm_free(&group_comm[g]);
    }
    hb_nccl_unload(nccl);
    if (h5) hb_h5_close(h5, "incomplete", NULL);
    free(need);
    free(recs);
    free(alive);
    free(devs);
    hb_meter_close(w.meter);
    hb_meter_close(w.mo.host);
    hb_backend_close(w.be);
    return s;
}
