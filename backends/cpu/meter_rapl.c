/* meter_rapl.c - RAPL energy through the powercap sysfs interface (Intel, and AMD Zen whose
 * driver registers the same "intel-rapl" control type).
 *
 * Layout read (root = $HETBENCH_POWERCAP_ROOT or /sys/class/powercap):
 *   <root>/intel-rapl:N/{name = "package-N", energy_uj, max_energy_range_uj,
 *                        constraint_0_power_limit_uw}                      one per socket
 *   <root>/intel-rapl:N:M/{name = "dram", energy_uj, max_energy_range_uj}  (or inside
 *                        intel-rapl:N/) the socket's DRAM domain
 * "core" and "uncore" sub-domains are inside the package figure and are skipped, as are
 * intel-rapl-mmio (the same package counter again) and psys (the platform, overlapping).
 *
 * energy_uj counts microjoules and wraps to 0 after max_energy_range_uj: each read adds the
 * delta since the previous read, corrected with that domain's real range (never UINT_MAX).
 * A decrease that a wrap cannot explain (the implied power is beyond any CPU) is kept as a
 * decrease, so the window sees the counter go backwards. Reads are taken often enough by the
 * sampler thread (the range is hundreds of kJ: minutes at full power) for wraps not to be
 * missed; state is under a mutex because the sampler and the measuring thread both read.
 *
 * energy_uj is root-only since Linux 5.10 (CVE-2020-8694): permission denied is reported with
 * the file and the ways to fix it. Files are opened per read (sysfs regenerates on open; a kept
 * descriptor would also miss a test tree's atomic renames). */
#include "../meter.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#define RAPL_MAX_DOMAINS 64
#define RAPL_PATH 512
/* A decrease implying more than this per domain is not a wrap: the counter went backwards. */
#define RAPL_IMPLAUSIBLE_W 20000.0

typedef struct rapl_domain {
    char dir[RAPL_PATH];      /* <root>/intel-rapl:N[:M] */
    char label[48];           /* "package-0", "dram-0" */
    int socket;
    int is_dram;
    double max_uj;            /* max_energy_range_uj + 1 is the wrap modulus; NaN unknown */
    uint64_t last_raw;        /* last energy_uj read */
    double last_t;            /* CLOCK_MONOTONIC s of that read */
    double accum_uj;          /* wrap-corrected microjoules since open */
} rapl_domain;

typedef struct rapl_ctx {
    pthread_mutex_t lock;
    int n;
    rapl_domain d[RAPL_MAX_DOMAINS];
    double power_accum_uj;    /* total accum at the previous power_w call */
    double power_t;           /* its time */
    double last_power_w;
} rapl_ctx;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static const char *powercap_root(void) {
    const char *r = getenv("HETBENCH_POWERCAP_ROOT");
    return r && *r ? r : "/sys/class/powercap";
}

/* Reads a small sysfs file into buf (NUL-terminated, trailing newline removed). Returns 0, or
 * the errno of the failure (EISDIR for a directory, EACCES for a root-only file ...). */
static int read_text(const char *path, char *buf, size_t len) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return errno;
    ssize_t n;
    do {
        n = read(fd, buf, len - 1);
    } while (n < 0 && errno == EINTR);
    int e = n < 0 ? errno : 0;
    close(fd);
    if (e) return e;
    buf[n] = '\0';
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' ')) buf[--n] = '\0';
    return n == 0 ? ENODATA : 0;
}

/* Reads an unsigned decimal file; 0 on success, else an errno (EINVAL: not a number). */
static int read_u64(const char *path, uint64_t *v) {
    char buf[64], *end = NULL;
    int e = read_text(path, buf, sizeof buf);
    if (e) return e;
    errno = 0;
    unsigned long long x = strtoull(buf, &end, 10);
    if (end == buf || *end || errno) return EINVAL;
    *v = (uint64_t)x;
    return 0;
}

/* The reason a file could not be read, with the fix when it is a permission problem. */
static void read_error(hb_err *err, const char *path, int e) {
    if (e == EACCES || e == EPERM)
        hb_errf(err, HB_ERR_UNSUPPORTED,
                "RAPL: cannot read %s: %s (energy_uj is root-only since Linux 5.10, "
                "CVE-2020-8694); fix: run as root, or 'sudo chmod o+r %s/intel-rapl:*/energy_uj "
                "%s/intel-rapl:*:*/energy_uj' (until reboot), or a udev rule "
                "'SUBSYSTEM==\"powercap\", ACTION==\"add\", RUN+=\"/bin/chmod o+r /sys%%p/energy_uj\"'",
                path, strerror(e), powercap_root(), powercap_root());
    else
        hb_errf(err, HB_ERR_UNSUPPORTED, "RAPL: cannot read %s: %s", path,
                e == ENODATA ? "empty file" : e == EINVAL ? "not a number" : strerror(e));
}

/* Parses "intel-rapl:N" (sub = -1) or "intel-rapl:N:M"; 0 on success. */
static int parse_zone(const char *name, int *socket, int *sub) {
    const char *p = name;
    if (strncmp(p, "intel-rapl:", 11) != 0) return -1;
    p += 11;
    char *q = NULL;
    long s = strtol(p, &q, 10);
    if (q == p || s < 0 || s > 4096) return -1;
    *sub = -1;
    if (*q == ':') {
        p = q + 1;
        long m = strtol(p, &q, 10);
        if (q == p || m < 0) return -1;
        *sub = (int)m;
    }
    if (*q) return -1;
    *socket = (int)s;
    return 0;
}

static int cmp_domain(const void *a, const void *b) {
    const rapl_domain *x = a, *y = b;
    if (x->socket != y->socket) return x->socket - y->socket;
    return x->is_dram - y->is_dram;
}

/* Adds the domain at dir (named `zone`) to d[*n] when it is a package or a DRAM domain. */
static void consider(const char *dir, const char *zone, rapl_domain *d, int *n) {
    int socket, sub;
    if (*n >= RAPL_MAX_DOMAINS || parse_zone(zone, &socket, &sub) != 0) return;
    char path[RAPL_PATH + 32], name[64];
    snprintf(path, sizeof path, "%s/name", dir);
    if (read_text(path, name, sizeof name) != 0) return;
    int dram = sub >= 0 && strcmp(name, "dram") == 0;
    int pkg = sub < 0 && strncmp(name, "package", 7) == 0;
    if (!dram && !pkg) return; /* core, uncore, psys: overlapping figures */
    for (int i = 0; i < *n; i++) /* a sub-domain seen both at the top and inside its package */
        if (d[i].socket == socket && d[i].is_dram == dram) return;
    rapl_domain *x = &d[(*n)++];
    memset(x, 0, sizeof *x);
    snprintf(x->dir, sizeof x->dir, "%s", dir);
    x->socket = socket;
    x->is_dram = dram;
    snprintf(x->label, sizeof x->label, "%s-%d", dram ? "dram" : "package", socket);
    x->max_uj = NAN;
}

/* Every package and DRAM domain under the root, sorted by socket (package before DRAM). */
static hb_status scan(rapl_domain *d, int *n, hb_err *err) {
    const char *root = powercap_root();
    *n = 0;
    DIR *dir = opendir(root);
    if (!dir)
        return hb_errf(err, HB_ERR_UNSUPPORTED,
                       "RAPL: %s: %s (no powercap interface: not an Intel/AMD CPU, a virtual "
                       "machine, or the intel_rapl_common module is not loaded)",
                       root, strerror(errno));
    struct dirent *e;
    char path[RAPL_PATH];
    while ((e = readdir(dir)) != NULL) {
        int s, sub;
        if (parse_zone(e->d_name, &s, &sub) != 0) continue;
        snprintf(path, sizeof path, "%s/%s", root, e->d_name);
        consider(path, e->d_name, d, n);
        if (sub < 0) { /* sub-domains may live only inside the package directory */
            DIR *in = opendir(path);
            struct dirent *f;
            while (in && (f = readdir(in)) != NULL) {
                char sp[RAPL_PATH];
                if (strncmp(f->d_name, "intel-rapl:", 11) != 0) continue;
                if (snprintf(sp, sizeof sp, "%s/%s", path, f->d_name) >= (int)sizeof sp) continue;
                consider(sp, f->d_name, d, n);
            }
            if (in) closedir(in);
        }
    }
    closedir(dir);
    if (*n == 0)
        return hb_errf(err, HB_ERR_UNSUPPORTED,
                       "RAPL: %s has no intel-rapl package domain (RAPL not supported here)", root);
    qsort(d, (size_t)*n, sizeof *d, cmp_domain);
    return HB_OK;
}

/* Reads every domain's counter and adds the wrap-corrected deltas; caller holds the lock. */
static hb_status update(rapl_ctx *c) {
    double t = now_s();
    hb_status st = HB_OK;
    for (int i = 0; i < c->n; i++) {
        rapl_domain *d = &c->d[i];
        char path[RAPL_PATH + 16];
        uint64_t raw;
        snprintf(path, sizeof path, "%s/energy_uj", d->dir);
        if (read_u64(path, &raw) != 0) {
            st = HB_ERR_BACKEND;
            continue;
        }
        double delta = (double)raw - (double)d->last_raw;
        if (raw < d->last_raw) {
            double wrapped = isfinite(d->max_uj) ? delta + d->max_uj + 1.0 : NAN;
            double dt = t - d->last_t;
            /* a wrap leaves a small positive delta; anything else is the counter going back */
            if (isfinite(wrapped) && wrapped >= 0 &&
                wrapped <= RAPL_IMPLAUSIBLE_W * 1e6 * (dt > 1e-3 ? dt : 1e-3))
                delta = wrapped;
        }
        d->accum_uj += delta;
        d->last_raw = raw;
        d->last_t = t;
    }
    return st;
}

static double total_uj(const rapl_ctx *c) {
    double s = 0;
    for (int i = 0; i < c->n; i++) s += c->d[i].accum_uj;
    return s;
}

static hb_status rapl_energy(hb_meter *m, double *joules) {
    rapl_ctx *c = m->ctx;
    pthread_mutex_lock(&c->lock);
    hb_status st = update(c);
    double uj = total_uj(c);
    pthread_mutex_unlock(&c->lock);
    if (st != HB_OK) return st;
    *joules = uj * 1e-6;
    return HB_OK;
}

/* Average power since the previous call (or since open). */
static hb_status rapl_power(hb_meter *m, double *watts) {
    rapl_ctx *c = m->ctx;
    pthread_mutex_lock(&c->lock);
    hb_status st = update(c);
    double t = now_s(), uj = total_uj(c);
    if (st == HB_OK) {
        if (t - c->power_t >= 1e-3) {
            c->last_power_w = (uj - c->power_accum_uj) * 1e-6 / (t - c->power_t);
            c->power_accum_uj = uj;
            c->power_t = t;
        }
        *watts = c->last_power_w;
    }
    pthread_mutex_unlock(&c->lock);
    return st;
}

/* Sum of the packages' long-term limits (constraint 0), W; NaN when any is unreadable. */
static double power_limit(const rapl_ctx *c) {
    double w = 0;
    int any = 0;
    for (int i = 0; i < c->n; i++) {
        if (c->d[i].is_dram) continue;
        char path[RAPL_PATH + 40];
        uint64_t uw;
        snprintf(path, sizeof path, "%s/constraint_0_power_limit_uw", c->d[i].dir);
        if (read_u64(path, &uw) != 0) return NAN;
        w += (double)uw * 1e-6;
        any = 1;
    }
    return any ? w : NAN;
}

static void rapl_state(hb_meter *m, hb_meter_state *st) {
    double w;
    if (rapl_power(m, &w) == HB_OK) st->power_w = st->power_avg_w = w;
    st->power_limit_w = power_limit(m->ctx);
}

static void rapl_destroy(hb_meter *m) {
    rapl_ctx *c = m->ctx;
    if (c) {
        pthread_mutex_destroy(&c->lock);
        free(c);
    }
    free(m);
}

static const hb_meter_ops rapl_ops = {
    .destroy = rapl_destroy,
    .energy_j = rapl_energy,
    .power_w = rapl_power,
    .state = rapl_state,
};

int hb_meter_rapl_count(hb_err *err) {
    rapl_domain *d = calloc(RAPL_MAX_DOMAINS, sizeof *d);
    int n = 0;
    if (!d) return (int)hb_errf(err, HB_ERR_NOMEM, "RAPL: out of memory");
    hb_status st = scan(d, &n, err);
    free(d);
    return st == HB_OK ? n : (int)st;
}

hb_status hb_meter_open_rapl(int domain, hb_meter **out, hb_err *err) {
    *out = NULL;
    rapl_ctx *c = calloc(1, sizeof *c);
    rapl_domain *all = calloc(RAPL_MAX_DOMAINS, sizeof *all);
    hb_meter *m = hb_meter_alloc("rapl");
    hb_status st = HB_OK;
    int n_all = 0;
    if (!c || !all || !m) {
        st = hb_errf(err, HB_ERR_NOMEM, "RAPL: out of memory");
        goto fail;
    }
    if ((st = scan(all, &n_all, err)) != HB_OK) goto fail;
    if (domain >= n_all) {
        st = hb_errf(err, HB_ERR_INPUT, "RAPL: no domain %d (%d found)", domain, n_all);
        goto fail;
    }
    /* keep the readable domains; a package that cannot be read fails the whole meter (its
     * figure would be missing), an unreadable DRAM domain is dropped with a reason */
    char skipped[256] = "";
    hb_err first = {{0}};
    for (int i = domain < 0 ? 0 : domain; i < (domain < 0 ? n_all : domain + 1); i++) {
        rapl_domain d = all[i];
        char path[RAPL_PATH + 32];
        uint64_t v;
        snprintf(path, sizeof path, "%s/energy_uj", d.dir);
        int e = read_u64(path, &v);
        if (e) {
            hb_err why = {{0}};
            read_error(&why, path, e);
            if (!first.msg[0]) first = why;
            if (!d.is_dram) {
                st = hb_errf(err, HB_ERR_UNSUPPORTED, "%s", why.msg);
                goto fail;
            }
            size_t l = strlen(skipped);
            snprintf(skipped + l, sizeof skipped - l, "%s%s", l ? ", " : "", d.label);
            continue;
        }
        d.last_raw = v;
        d.last_t = now_s();
        snprintf(path, sizeof path, "%s/max_energy_range_uj", d.dir);
        uint64_t max;
        if (read_u64(path, &max) == 0 && max > 0) d.max_uj = (double)max;
        c->d[c->n++] = d;
    }
    if (c->n == 0) {
        st = hb_errf(err, HB_ERR_UNSUPPORTED, "%s", first.msg);
        goto fail;
    }
    if (pthread_mutex_init(&c->lock, NULL) != 0) {
        st = hb_errf(err, HB_ERR_INTERNAL, "RAPL: pthread_mutex_init failed");
        goto fail;
    }
    c->power_t = now_s();
    m->ops = &rapl_ops;
    m->ctx = c;
    m->has_counter = m->has_power = 1;
    m->power_from_counter = 1;
    m->counter_period_s = 1e-3; /* RAPL updates about every millisecond */
    hb_meter_info *in = &m->info;
    snprintf(in->api, sizeof in->api, "powercap/RAPL");
    snprintf(in->library, sizeof in->library, "%s", powercap_root());
    struct utsname u;
    if (uname(&u) == 0) snprintf(in->version, sizeof in->version, "Linux %.56s", u.release);
    snprintf(in->energy_fn, sizeof in->energy_fn, "energy_uj (uJ, wraps at max_energy_range_uj)");
    snprintf(in->power_fn, sizeof in->power_fn, "delta energy_uj / delta t");
    char scope[128] = "", dev[128] = "";
    for (int i = 0; i < c->n; i++) {
        size_t l = strlen(scope), k = strlen(dev);
        snprintf(scope + l, sizeof scope - l, "%sCPU %s %d", i ? " + " : "",
                 c->d[i].is_dram ? "DRAM" : "package", c->d[i].socket);
        snprintf(dev + k, sizeof dev - k, "%s%s", i ? "+" : "", c->d[i].label);
    }
    snprintf(in->scope, sizeof in->scope, "%s", scope);
    snprintf(in->device, sizeof in->device, "%s", dev);
    in->counter_resolution_j = 1e-6; /* powercap's unit; the hardware unit (15.3-61 uJ) is hidden */
    in->power_window_s = NAN;        /* derived: the interval between two readings */
    in->power_limit_w = power_limit(c);
    if (skipped[0])
        snprintf(m->reason, sizeof m->reason, "RAPL: %s left out (unreadable: %.180s)", skipped,
                 first.msg);
    free(all);
    *out = m;
    return HB_OK;

fail:
    free(all);
    free(c);
    free(m);
    return st;
}
