/* h5writer.c - writes a results file, schema "hetbench/1" (layout: results/SCHEMA.md).
 *
 * hb_h5_create writes the root attributes (status "incomplete"), /devices, /idle, the empty
 * /cases group and the empty, extendible /summary table, then flushes. Each hb_h5_write_case
 * writes one case group with its rank records, appends the summary rows and flushes again, so
 * that the file on disk is consistent between cases (HDF5 1.10 without SWMR gives no guarantee
 * for a process killed in the middle of a case's writes). hb_h5_write_idle adds /idle_info (how
 * each idle baseline was measured) and updates /idle. hb_h5_close sets the final status.
 *
 * Errors: user-facing problems (file exists, directory not writable) are HB_ERR_INPUT and are
 * detected with access() before HDF5 is called; HDF5 failures become HB_ERR_IO with the
 * innermost HDF5 message. HDF5's automatic error-stack printing is turned off. */
#include "results.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#include "h5schema.h"

/* Plans longer than this (bytes) are stored as the dataset /plan instead of the attribute. */
#define HB_PLAN_ATTR_MAX (64 * 1024)
#define HB_SUMMARY_CHUNK_ROWS 64

struct hb_h5 {
    char *path;        /* what the user named: always a complete snapshot */
    char *work;        /* ".<name>.partial" beside it: the file HDF5 writes */
    hid_t file;
    hid_t cases;       /* /cases */
    hid_t summary;     /* /summary */
    hid_t summary_mem; /* in-memory compound of hb_summary_row */
    hsize_t n_rows;    /* rows in /summary */
    int resumed;       /* opened by hb_h5_open_resume: rows and rank groups may be replaced */
    /* snapshots (below): when the last one ended and what it cost, cases not yet published */
    double snap_end, snap_cost;
    int64_t published, unpublished;
};

/* ---- crash safety ----
 * HDF5 1.10 writes metadata in place, in no particular order: a process killed during a
 * flush (or while the cache evicts) can leave a file h5dump cannot open. So HDF5 writes a
 * work file beside the results file, and after every flush the work file is copied to a
 * temporary name and renamed over the results file: rename() is atomic, so whenever the
 * process dies (kill -9 included) the results file is the last complete snapshot, holding
 * every case written before. (No fsync: this protects against a dead process, not a dead
 * machine.) */
static char *sibling(const char *path, const char *suffix) {
    const char *slash = strrchr(path, '/');
    size_t dir = slash ? (size_t)(slash - path + 1) : 0;
    char *out = NULL;
    if (asprintf(&out, "%.*s.%s.%s", (int)dir, path, path + dir, suffix) < 0) return NULL;
    return out;
}

/* Copies src to dst (created or truncated); 0 on success, -1 with errno. */
static int copy_file(const char *src, const char *dst) {
    int in = open(src, O_RDONLY | O_CLOEXEC), out = -1, rc = -1;
    struct stat st;
    if (in < 0 || fstat(in, &st) < 0) goto done;
    out = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, st.st_mode & 0777);
    if (out < 0) goto done;
    off_t left = st.st_size;
    while (left > 0) {
        ssize_t n = copy_file_range(in, NULL, out, NULL, (size_t)left, 0);
        if (n <= 0) break;
        left -= n;
    }
    if (left > 0) { /* copy_file_range unsupported here: plain copy */
        static const size_t chunk = 1 << 20;
        char *buf = malloc(chunk);
        if (!buf || lseek(in, 0, SEEK_SET) < 0 || ftruncate(out, 0) < 0 || lseek(out, 0, SEEK_SET) < 0) {
            free(buf);
            goto done;
        }
        ssize_t n;
        while ((n = read(in, buf, chunk)) > 0)
            if (write(out, buf, (size_t)n) != n) { n = -1; break; }
        free(buf);
        if (n < 0) goto done;
    }
    rc = 0;
done:
    if (in >= 0) close(in);
    if (out >= 0 && close(out) < 0) rc = -1;
    return rc;
}

static double mono_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* Publishes the flushed work file as the results file. */
static hb_status snapshot(hb_h5 *h, hb_err *err) {
    const double t0 = mono_s();
    char *tmp = sibling(h->path, "snapshot");
    hb_status st = HB_OK;
    if (!tmp || copy_file(h->work, tmp) < 0 || rename(tmp, h->path) < 0)
        st = hb_errf(err, HB_ERR_IO, "%s: cannot publish the results (copy of %s): %s", h->path, h->work,
                     strerror(errno));
    if (st != HB_OK && tmp) unlink(tmp);
    free(tmp);
    h->snap_end = mono_s();
    h->snap_cost = h->snap_end - t0;
    if (st == HB_OK) h->published += h->unpublished, h->unpublished = 0;
    return st;
}

/* After a case: a copy costs the whole file, so copying after every case made writing
 * quadratic in the number of cases (2000 cheap cases spent 14 s copying). A case is published
 * when at least SNAP_RATIO times the last copy's duration (at most SNAP_MAX_S) has passed since
 * it: copies then take at most ~1/SNAP_RATIO of a run and the total copied stays linear. The
 * first case is published at once; closing the file (the end of the run, an error, SIGINT or
 * SIGTERM) publishes the rest. */
#define SNAP_RATIO 20.0
#define SNAP_MAX_S 60.0
static hb_status case_written(hb_h5 *h, hb_err *err) {
    h->unpublished++;
    const double wait = SNAP_RATIO * h->snap_cost < SNAP_MAX_S ? SNAP_RATIO * h->snap_cost : SNAP_MAX_S;
    if (h->published > 0 && mono_s() - h->snap_end < wait) return HB_OK;
    return snapshot(h, err);
}

/* HB_ERR_IO "<path>: HDF5 error while <what>: <innermost HDF5 message>". */
static hb_status io_error(hb_err *err, const char *path, const char *what) {
    char h5msg[256];
    hb_h5_last_error(h5msg, sizeof h5msg);
    return hb_errf(err, HB_ERR_IO, "%s: HDF5 error while %s%s%s", path, what, h5msg[0] ? ": " : "",
                   h5msg);
}

/* ---- attributes: created, or replaced when they exist ---- */

static herr_t attr_write(hid_t obj, const char *name, hid_t type, hid_t space, const void *buf) {
    htri_t exists = H5Aexists(obj, name);
    if (exists < 0) return -1;
    if (exists > 0 && H5Adelete(obj, name) < 0) return -1;
    hid_t a = H5Acreate2(obj, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
    if (a < 0) return -1;
    herr_t r = H5Awrite(a, type, buf);
    if (H5Aclose(a) < 0) r = -1;
    return r;
}

/* Variable-length UTF-8 string (h5py reads it as str); NULL writes "". */
static herr_t attr_str(hid_t obj, const char *name, const char *s) {
    const char *v = s ? s : "";
    hid_t t = H5Tcopy(H5T_C_S1), sp = H5Screate(H5S_SCALAR);
    herr_t r = -1;
    if (t >= 0 && sp >= 0 && H5Tset_size(t, H5T_VARIABLE) >= 0 &&
        H5Tset_cset(t, H5T_CSET_UTF8) >= 0)
        r = attr_write(obj, name, t, sp, &v);
    hb_h5_close_id(t);
    hb_h5_close_id(sp);
    return r;
}

/* A scalar (n == 0) or 1-D array (n > 0) of a native type. */
static herr_t attr_num(hid_t obj, const char *name, hid_t type, hsize_t n, const void *v) {
    hid_t sp = n ? H5Screate_simple(1, &n, NULL) : H5Screate(H5S_SCALAR);
    if (sp < 0) return -1;
    herr_t r = attr_write(obj, name, type, sp, v);
    H5Sclose(sp);
    return r;
}

static herr_t attr_i32(hid_t obj, const char *name, int32_t v) {
    return attr_num(obj, name, H5T_NATIVE_INT32, 0, &v);
}
static herr_t attr_u32(hid_t obj, const char *name, uint32_t v) {
    return attr_num(obj, name, H5T_NATIVE_UINT32, 0, &v);
}
static herr_t attr_i64(hid_t obj, const char *name, int64_t v) {
    return attr_num(obj, name, H5T_NATIVE_INT64, 0, &v);
}
static herr_t attr_u64(hid_t obj, const char *name, uint64_t v) {
    return attr_num(obj, name, H5T_NATIVE_UINT64, 0, &v);
}
static herr_t attr_f64(hid_t obj, const char *name, double v) {
    return attr_num(obj, name, H5T_NATIVE_DOUBLE, 0, &v);
}

/* ---- datasets ---- */

/* A contiguous double dataset of `rank` dims (zero-sized dims allowed), with a units attr. */
static herr_t dset_f64(hid_t loc, const char *name, int rank, const hsize_t *dims,
                       const double *data, const char *units) {
    hid_t sp = H5Screate_simple(rank, dims, NULL);
    if (sp < 0) return -1;
    hid_t d = H5Dcreate2(loc, name, H5T_IEEE_F64LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    herr_t r = d < 0 ? -1 : 0;
    if (r >= 0 && H5Sget_simple_extent_npoints(sp) > 0)
        r = data ? H5Dwrite(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) : -1;
    if (r >= 0 && units) r = attr_str(d, "units", units);
    hb_h5_close_id(d);
    H5Sclose(sp);
    return r;
}

/* A scalar variable-length string dataset (the plan, when too long for an attribute). */
static herr_t dset_str(hid_t loc, const char *name, const char *s) {
    hid_t t = H5Tcopy(H5T_C_S1), sp = H5Screate(H5S_SCALAR), d = H5I_INVALID_HID;
    herr_t r = -1;
    if (t >= 0 && sp >= 0 && H5Tset_size(t, H5T_VARIABLE) >= 0 &&
        H5Tset_cset(t, H5T_CSET_UTF8) >= 0) {
        d = H5Dcreate2(loc, name, t, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        if (d >= 0) r = H5Dwrite(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, &s);
    }
    hb_h5_close_id(d);
    hb_h5_close_id(t);
    hb_h5_close_id(sp);
    return r;
}

/* A 1-D compound table of n rows from the field list (file type packed, no padding bytes). */
static herr_t dset_table(hid_t loc, const char *name, const hb_h5_field *f, int nf,
                         size_t row_size, const void *rows, size_t n) {
    herr_t r = -1;
    hsize_t dims = n;
    void *copy = NULL;
    hid_t mt = hb_h5_compound(f, nf, row_size, H5I_INVALID_HID);
    hid_t ft = mt >= 0 ? H5Tcopy(mt) : H5I_INVALID_HID;
    hid_t sp = H5Screate_simple(1, &dims, NULL), d = H5I_INVALID_HID;
    if (ft < 0 || sp < 0 || H5Tpack(ft) < 0) goto done;
    d = H5Dcreate2(loc, name, ft, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (d < 0) goto done;
    r = 0;
    if (n > 0) {
        copy = malloc(n * row_size);
        if (!copy) { r = -1; goto done; }
        memcpy(copy, rows, n * row_size);
        hb_h5_terminate(f, nf, copy, n, row_size);
        r = H5Dwrite(d, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, copy);
    }
done:
    free(copy);
    hb_h5_close_id(d);
    hb_h5_close_id(sp);
    hb_h5_close_id(ft);
    hb_h5_close_id(mt);
    return r;
}

/* The empty, chunked, extendible /summary table; returns the open dataset. */
static hid_t create_summary(hid_t file, hid_t mem_type) {
    hsize_t dims = 0, maxdims = H5S_UNLIMITED, chunk = HB_SUMMARY_CHUNK_ROWS;
    hid_t ft = H5Tcopy(mem_type), sp = H5Screate_simple(1, &dims, &maxdims);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE), d = H5I_INVALID_HID;
    if (ft >= 0 && sp >= 0 && dcpl >= 0 && H5Tpack(ft) >= 0 && H5Pset_chunk(dcpl, 1, &chunk) >= 0)
        d = H5Dcreate2(file, "summary", ft, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    hb_h5_close_id(dcpl);
    hb_h5_close_id(sp);
    hb_h5_close_id(ft);
    return d;
}

/* Directory part of path ("." when there is none), into buf. */
static void parent_dir(const char *path, char *buf, size_t len) {
    const char *slash = strrchr(path, '/');
    if (!slash) {
        snprintf(buf, len, ".");
    } else if (slash == path) {
        snprintf(buf, len, "/");
    } else {
        snprintf(buf, len, "%.*s", (int)(slash - path), path);
    }
}

/* HB_ERR_INPUT for a path we must not or cannot create, before HDF5 is involved. */
static hb_status check_creatable(const char *path, int force, hb_err *err) {
    if (access(path, F_OK) == 0) {
        if (!force)
            return hb_errf(err, HB_ERR_INPUT, "%s: file exists (use --force to overwrite)", path);
        if (access(path, W_OK) != 0)
            return hb_errf(err, HB_ERR_INPUT, "%s: cannot create: %s", path, strerror(errno));
    } else if (errno != ENOENT) {
        return hb_errf(err, HB_ERR_INPUT, "%s: cannot create: %s", path, strerror(errno));
    }
    char dir[4096];
    parent_dir(path, dir, sizeof dir);
    if (access(dir, W_OK | X_OK) != 0)
        return hb_errf(err, HB_ERR_INPUT, "%s: cannot create: %s", path, strerror(errno));
    return HB_OK;
}

static herr_t write_root_attrs(hid_t file, const hb_run_meta *meta) {
    const char *plan = meta->plan ? meta->plan : "";
    herr_t r = 0;
    r |= attr_str(file, "schema", HB_SCHEMA);
    r |= attr_str(file, "version", meta->version);
    r |= attr_str(file, "git", meta->git);
    r |= attr_str(file, "created_utc", meta->created_utc);
    r |= attr_str(file, "command_line", meta->command_line);
    if (strlen(plan) > HB_PLAN_ATTR_MAX)
        r |= dset_str(file, "plan", plan);
    else
        r |= attr_str(file, "plan", plan);
    r |= attr_i32(file, "mpi_size", meta->mpi_size);
    r |= attr_str(file, "slurm_job_id", meta->slurm_job_id);
    r |= attr_str(file, "hosts", meta->hosts);
    r |= attr_str(file, "status", "incomplete");
    return r;
}

static void h5_free(hb_h5 *h) {
    if (!h) return;
    hb_h5_close_id(h->summary_mem);
    hb_h5_close_id(h->summary);
    hb_h5_close_id(h->cases);
    hb_h5_close_id(h->file);
    free(h->path);
    free(h->work);
    free(h);
}

hb_status hb_h5_create(const char *path, int force, const hb_run_meta *meta,
                       const hb_device_row *devices, int n_devices, const double *idle_w,
                       hb_h5 **out, hb_err *err) {
    if (out) *out = NULL;
    if (!path || !*path || !meta || !out || n_devices < 0 || (n_devices > 0 && !devices))
        return hb_errf(err, HB_ERR_INTERNAL, "hb_h5_create: invalid arguments");
    HB_TRY(check_creatable(path, force, err));

    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    hb_h5 *h = calloc(1, sizeof *h);
    double *idle = malloc((size_t)(n_devices ? n_devices : 1) * sizeof *idle);
    if (!h || !idle || !(h->path = strdup(path)) || !(h->work = sibling(path, "partial"))) {
        free(idle);
        if (h) free(h->path);
        free(h);
        return hb_errf(err, HB_ERR_NOMEM, "%s: out of memory", path);
    }
    h->file = h->cases = h->summary = h->summary_mem = H5I_INVALID_HID;
    for (int i = 0; i < n_devices; i++) idle[i] = idle_w ? idle_w[i] : NAN;

    hb_status st = HB_OK;
    /* the work file of a killed earlier run is debris: start afresh */
    h->file = H5Fcreate(h->work, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (h->file < 0) { /* nothing of ours on disk: leave whatever is there alone */
        st = io_error(err, path, "creating the file");
        free(idle);
        h5_free(h);
        return st;
    }
    /* From here on the file is ours: a failure removes it. */
    hsize_t nd = (hsize_t)n_devices;
    if (write_root_attrs(h->file, meta) < 0) {
        st = io_error(err, path, "writing the root attributes");
    } else if (dset_table(h->file, "devices", hb_h5_device_fields, HB_H5_N_DEVICE_FIELDS,
                          sizeof(hb_device_row), devices, (size_t)n_devices) < 0) {
        st = io_error(err, path, "writing /devices");
    } else if (dset_f64(h->file, "idle", 1, &nd, idle, "W") < 0) {
        st = io_error(err, path, "writing /idle");
    } else if ((h->cases = H5Gcreate2(h->file, "cases", H5P_DEFAULT, H5P_DEFAULT,
                                      H5P_DEFAULT)) < 0) {
        st = io_error(err, path, "creating /cases");
    } else if ((h->summary_mem = hb_h5_compound(hb_h5_summary_fields, HB_H5_N_SUMMARY_FIELDS,
                                                sizeof(hb_summary_row), H5I_INVALID_HID)) < 0 ||
               (h->summary = create_summary(h->file, h->summary_mem)) < 0) {
        st = io_error(err, path, "creating /summary");
    } else if (H5Fflush(h->file, H5F_SCOPE_GLOBAL) < 0) {
        st = io_error(err, path, "flushing");
    } else {
        st = snapshot(h, err);
    }
    free(idle);
    if (st != HB_OK) {
        unlink(h->work);
        h5_free(h);
        return st;
    }
    *out = h;
    return HB_OK;
}

/* Attributes of /cases/<id>: the resolved case, its label and its cost. stream_op and the
 * model's shape only for the workloads that take those plan keys. */
static herr_t write_case_attrs(hid_t g, const hb_case *c, const hb_cost *cost) {
    const hb_workload_desc *wd = hb_workload_desc_of(c->workload);
    herr_t r = 0;
    r |= attr_i32(g, "id", c->id);
    r |= attr_str(g, "label", c->label);
    r |= attr_str(g, "workload", wd->name);
    r |= attr_str(g, "model", c->model.name);
    r |= attr_str(g, "dtype", hb_case_dtype_name(c));
    if (hb_workload_takes(wd, "kv_dtype")) r |= attr_str(g, "kv_dtype", hb_dtype_name(hb_case_kv_dtype(c)));
    if (c->quant == HB_QUANT_BLOCK) r |= attr_i64(g, "quant_block", c->quant_block);
    if (c->weights[0]) r |= attr_str(g, "weights", c->weights);
    if (c->weights[0]) r |= attr_str(g, "weights_stored", c->weights_stored);
    if (c->prompt_tokens[0]) r |= attr_str(g, "prompt_tokens", c->prompt_tokens);
    if (c->data_path[0]) r |= attr_str(g, "data_path", c->data_path);
    r |= attr_i64(g, "batch", c->batch);
    r |= attr_i64(g, "prompt", c->prompt);
    r |= attr_i64(g, "gen", c->gen);
    r |= attr_i64(g, "seq", c->seq);
    r |= attr_i64(g, "layers", c->model.n_layers);
    r |= attr_i64(g, "layers_full", c->model.n_layers_full);
    r |= attr_i64(g, "m", c->m);
    r |= attr_i64(g, "n", c->n);
    r |= attr_i64(g, "k", c->k);
    r |= attr_i64(g, "stream_n", c->stream_n);
    if (hb_workload_takes(wd, "stream_op")) r |= attr_str(g, "stream_op", hb_stream_op_name(c->stream_op));
    r |= attr_u64(g, "seed", c->seed);
    r |= attr_f64(g, "temperature", (double)c->temperature);
    if (hb_workload_takes(wd, "lr")) { /* train (0.5) */
        r |= attr_f64(g, "lr", (double)c->lr);
        r |= attr_f64(g, "beta1", (double)c->beta1);
        r |= attr_f64(g, "beta2", (double)c->beta2);
        r |= attr_f64(g, "eps", (double)c->eps);
        r |= attr_f64(g, "weight_decay", (double)c->weight_decay);
        r |= attr_i64(g, "grad_accum", c->grad_accum);
        r |= attr_str(g, "data", hb_train_data_name(c->data));
        r |= attr_i64(g, "dp", c->dp);
        r |= attr_str(g, "recompute", hb_recompute_name(c->recompute));
    }
    if (hb_workload_takes(wd, "tp")) r |= attr_i64(g, "tp", c->tp > 1 ? c->tp : 1);
    if (hb_workload_takes(wd, "ep")) r |= attr_i64(g, "ep", c->ep > 1 ? c->ep : 1);
    if (hb_workload_takes(wd, "collective")) { /* collective (issue 15) */
        r |= attr_str(g, "collective", hb_comm_op_name(c->coll_op));
        r |= attr_i64(g, "coll_bytes", c->coll_bytes);
        r |= attr_i64(g, "in_place", c->in_place);
        r |= attr_i64(g, "coll_ranks", c->coll_ranks);
    }
    if (hb_workload_takes(wd, "isl")) { /* serve (0.6) */
        r |= attr_i64(g, "isl", c->isl);
        r |= attr_i64(g, "osl", c->osl);
        r |= attr_f64(g, "range_ratio", c->range_ratio);
        r |= attr_i64(g, "requests", hb_case_serve_requests(c));
        r |= attr_i64(g, "concurrency", c->concurrency);
        r |= attr_f64(g, "arrival_rate", c->arrival_rate);
        r |= attr_i64(g, "max_batch_tokens", c->max_batch_tokens);
        r |= attr_i64(g, "max_seqs", c->max_seqs);
        r |= attr_i64(g, "kv_blocks", c->kv_blocks);
        r |= attr_i64(g, "kv_block_size", c->kv_block_size);
        r |= attr_f64(g, "slo_ttft_s", c->slo_ttft_s);
        r |= attr_f64(g, "slo_tpot_s", c->slo_tpot_s);
    }
    r |= attr_i64(g, "warmup_iters", c->warmup_iters);
    r |= attr_i64(g, "min_iters", c->min_iters);
    r |= attr_f64(g, "min_seconds", c->min_seconds);
    r |= attr_i64(g, "repeat", c->repeat > 1 ? c->repeat : 1);
    r |= attr_i64(g, "max_iters", c->max_iters);
    if (hb_workload_takes(wd, "model")) {
        const hb_model *m = &c->model;
        r |= attr_i64(g, "dim", m->dim);
        r |= attr_i64(g, "heads", m->n_heads);
        r |= attr_i64(g, "kv_heads", m->n_kv_heads);
        r |= attr_i64(g, "ffn_dim", m->ffn_dim);
        r |= attr_i64(g, "vocab", m->vocab);
        r |= attr_i64(g, "max_seq", m->max_seq);
        r |= attr_str(g, "norm", hb_norm_name(m->norm));
        r |= attr_str(g, "activation", hb_act_name(m->act));
        r |= attr_str(g, "positions", hb_pos_name(m->pos));
        r |= attr_i32(g, "tied", m->tied);
        r |= attr_i32(g, "bias", m->bias);
        r |= attr_f64(g, "rope_theta", (double)m->rope_theta);
        r |= attr_f64(g, "norm_eps", (double)m->norm_eps);
        if (m->head_dim) r |= attr_i64(g, "head_dim", m->head_dim);
        r |= attr_i64(g, "total_params", hb_model_n_params(m));
        r |= attr_i64(g, "active_params", hb_model_n_active_params(m));
        if (m->kv_lora_rank) { /* MLA models only */
            r |= attr_i64(g, "q_lora_rank", m->q_lora_rank);
            r |= attr_i64(g, "kv_lora_rank", m->kv_lora_rank);
            r |= attr_i64(g, "qk_nope_dim", m->qk_nope_dim);
            r |= attr_i64(g, "qk_rope_dim", m->qk_rope_dim);
            r |= attr_i64(g, "v_head_dim", m->v_head_dim);
        }
        if (m->n_experts) { /* MoE models only (SCHEMA.md) */
            r |= attr_i64(g, "experts", m->n_experts);
            r |= attr_i64(g, "top_k", m->top_k);
            r |= attr_i64(g, "shared_experts", m->n_shared);
            r |= attr_i64(g, "moe_ffn_dim", m->moe_ffn_dim);
            r |= attr_i64(g, "first_k_dense", m->first_k_dense);
            r |= attr_str(g, "router", hb_router_name(m->router));
            r |= attr_i64(g, "n_group", m->n_group > 1 ? m->n_group : 1);
            r |= attr_i64(g, "topk_group", m->n_group > 1 ? m->topk_group : 1);
            r |= attr_f64(g, "routed_scaling_factor", (double)m->routed_scale);
            r |= attr_str(g, "dense_twin", hb_twin_name(m->dense_twin));
            char rt[48] = "model";
            if (c->routing == HB_ROUTING_BALANCED) snprintf(rt, sizeof rt, "balanced");
            if (c->routing == HB_ROUTING_ZIPF) snprintf(rt, sizeof rt, "zipf:%g", (double)c->zipf_s);
            r |= attr_str(g, "routing", rt);
        }
    }
    r |= attr_f64(g, "flops_per_iter", cost->flops);
    r |= attr_f64(g, "bytes_per_iter", cost->bytes);
    r |= attr_f64(g, "tokens_in_per_iter", cost->tokens_in);
    r |= attr_f64(g, "tokens_out_per_iter", cost->tokens_out);
    r |= attr_i64(g, "mem_bytes", cost->mem_bytes);
    return r;
}

/* /cases/<id>/rank<r>: iter_seconds, power and the record's attributes. */
static herr_t write_record(hid_t cg, const hb_record *rec, int replace) {
    char name[32];
    snprintf(name, sizeof name, "rank%d", (int)rec->rank);
    if (replace && H5Lexists(cg, name, H5P_DEFAULT) > 0 && H5Ldelete(cg, name, H5P_DEFAULT) < 0) return -1;
    hid_t g = H5Gcreate2(cg, name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (g < 0) return -1;
    hsize_t it = (hsize_t)rec->n_iters, pw[2] = {(hsize_t)rec->n_power, 2};
    char status[sizeof rec->status + 1], error[sizeof rec->error + 1];
    snprintf(status, sizeof status, "%.*s", (int)sizeof rec->status, rec->status);
    snprintf(error, sizeof error, "%.*s", (int)sizeof rec->error, rec->error);
    herr_t r = 0;
    r |= dset_f64(g, "iter_seconds", 1, &it, rec->iter_seconds, "s");
    r |= dset_f64(g, "power", 2, pw, rec->power, "s, W");
    if (rec->n_loss > 0) { /* train: the loss of every step, the first `warmup` untimed */
        hsize_t nl = (hsize_t)rec->n_loss;
        r |= dset_f64(g, "loss", 1, &nl, rec->loss, "nats");
        hid_t d = r >= 0 ? H5Dopen2(g, "loss", H5P_DEFAULT) : H5I_INVALID_HID;
        r |= d < 0 ? -1 : attr_i64(d, "warmup", rec->n_loss_warmup);
        if (d >= 0) H5Dclose(d);
    }
    if (rec->expert_tokens && rec->n_moe_layers > 0 && rec->n_experts > 0) { /* MoE cases only */
        hsize_t et[2] = {(hsize_t)rec->n_moe_layers, (hsize_t)rec->n_experts};
        hid_t sp = H5Screate_simple(2, et, NULL);
        hid_t d = sp < 0 ? H5I_INVALID_HID
                         : H5Dcreate2(g, "expert_tokens", H5T_STD_I64LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        r |= d < 0 ? -1 : H5Dwrite(d, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, rec->expert_tokens);
        if (d >= 0) r |= attr_str(d, "units", "tokens");
        hb_h5_close_id(d);
        hb_h5_close_id(sp);
        r |= attr_f64(g, "expert_imbalance", rec->expert_imbalance);
    }
    if (rec->generated && rec->gen_rows > 0 && rec->gen_cols > 0) { /* prefill/decode */
        hsize_t gd[2] = {(hsize_t)rec->gen_rows, (hsize_t)rec->gen_cols};
        hid_t sp = H5Screate_simple(2, gd, NULL);
        hid_t d = sp < 0 ? H5I_INVALID_HID
                         : H5Dcreate2(g, "generated", H5T_STD_I32LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        r |= d < 0 ? -1 : H5Dwrite(d, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, rec->generated);
        if (d >= 0) r |= attr_str(d, "units", "token ids");
        hb_h5_close_id(d);
        hb_h5_close_id(sp);
    }
    if (rec->requests && rec->n_requests > 0) { /* serve: the last timed stream */
        hsize_t rq[2] = {(hsize_t)rec->n_requests, HB_SERVE_REQ_COLS};
        r |= dset_f64(g, "requests", 2, rq, rec->requests, "s, s, s, tokens, tokens, count");
        hid_t d = r >= 0 ? H5Dopen2(g, "requests", H5P_DEFAULT) : H5I_INVALID_HID;
        r |= d < 0 ? -1 : attr_str(d, "columns", HB_H5_REQUEST_COLUMNS);
        if (d >= 0) H5Dclose(d);
        for (int i = 0; i < HB_SERVE_N_STATS; i++) r |= attr_f64(g, hb_h5_serve_stats[i], rec->serve[i]);
    }
    r |= attr_str(g, "status", status);
    r |= attr_str(g, "error", error);
    r |= attr_i64(g, "n_iters", rec->n_iters);
    r |= attr_f64(g, "window_s", rec->window_s);
    r |= attr_f64(g, "energy_counter_j", rec->energy_counter_j);
    r |= attr_f64(g, "energy_integral_j", rec->energy_integral_j);
    r |= attr_i32(g, "energy_valid", rec->energy_valid);
    r |= attr_u32(g, "energy_flags", rec->energy_flags);
    r |= attr_num(g, "fingerprint", H5T_NATIVE_DOUBLE, HB_FP_LEN, rec->fingerprint);
    /* energy detail and device state (SCHEMA.md, "energy detail") */
    char meter[sizeof rec->meter + 1], source[sizeof rec->energy_source + 1];
    snprintf(meter, sizeof meter, "%.*s", (int)sizeof rec->meter, rec->meter);
    snprintf(source, sizeof source, "%.*s", (int)sizeof rec->energy_source, rec->energy_source);
    r |= attr_f64(g, "energy_j", rec->energy_j);
    r |= attr_f64(g, "energy_ratio", rec->energy_ratio);
    r |= attr_f64(g, "avg_w", rec->avg_w);
    r |= attr_f64(g, "peak_w", rec->peak_w);
    r |= attr_f64(g, "idle_w", rec->idle_w);
    r |= attr_f64(g, "energy_net_j", rec->energy_net_j);
    r |= attr_f64(g, "host_energy_j", rec->host_energy_j);
    r |= attr_f64(g, "power_hz", rec->power_hz);
    r |= attr_f64(g, "max_gap_s", rec->max_gap_s);
    r |= attr_str(g, "meter", meter);
    r |= attr_str(g, "energy_source", source);
    r |= attr_f64(g, "power_limit_w_start", rec->power_limit_w_start);
    r |= attr_f64(g, "power_limit_w_end", rec->power_limit_w_end);
    r |= attr_f64(g, "sm_clock_mhz_start", rec->sm_clock_mhz_start);
    r |= attr_f64(g, "sm_clock_mhz_end", rec->sm_clock_mhz_end);
    r |= attr_f64(g, "mem_clock_mhz_start", rec->mem_clock_mhz_start);
    r |= attr_f64(g, "mem_clock_mhz_end", rec->mem_clock_mhz_end);
    r |= attr_f64(g, "temperature_c_start", rec->temperature_c_start);
    r |= attr_f64(g, "temperature_c_end", rec->temperature_c_end);
    for (int i = 0; i < HB_H5_N_RECORD_TIMING_FIELDS; i++) { /* timing evidence (SCHEMA.md) */
        const hb_h5_field *f = &hb_h5_record_timing_fields[i];
        const void *v = (const char *)rec + f->offset;
        hid_t mt = f->kind == HB_H5_F64 ? H5T_NATIVE_DOUBLE : f->kind == HB_H5_I64 ? H5T_NATIVE_INT64
                   : f->kind == HB_H5_U32 ? H5T_NATIVE_UINT32 : H5T_NATIVE_INT32;
        r |= attr_num(g, f->name, mt, 0, v);
    }
    if (rec->n_reps > 1 && rec->n_reps <= HB_MAX_REPEAT)
        r |= attr_num(g, "rep_iters", H5T_NATIVE_INT64, (hsize_t)rec->n_reps, rec->rep_iters);
    if (H5Gclose(g) < 0) r = -1;
    return r;
}

/* Overwrites row `index` of /summary (resume: a failed or lost pair run again). */
static herr_t overwrite_summary_row(hb_h5 *h, hsize_t index, const hb_summary_row *row) {
    hb_summary_row copy = *row;
    hb_h5_terminate(hb_h5_summary_fields, HB_H5_N_SUMMARY_FIELDS, &copy, 1, sizeof copy);
    hsize_t count = 1;
    herr_t r = -1;
    hid_t fs = H5Dget_space(h->summary), ms = H5Screate_simple(1, &count, NULL);
    if (fs >= 0 && ms >= 0 && H5Sselect_hyperslab(fs, H5S_SELECT_SET, &index, NULL, &count, NULL) >= 0)
        r = H5Dwrite(h->summary, h->summary_mem, ms, fs, H5P_DEFAULT, &copy);
    hb_h5_close_id(fs);
    hb_h5_close_id(ms);
    return r;
}

/* Index of the /summary row of (case_id, rank), or -1. */
static int64_t find_summary_row(hb_h5 *h, int32_t case_id, int32_t rank) {
    if (h->n_rows == 0) return -1;
    hid_t t = H5Tcreate(H5T_COMPOUND, 2 * sizeof(int32_t));
    int32_t *ids = malloc((size_t)h->n_rows * 2 * sizeof *ids);
    int64_t found = -1;
    if (t >= 0 && ids && H5Tinsert(t, "case_id", 0, H5T_NATIVE_INT32) >= 0 &&
        H5Tinsert(t, "rank", sizeof(int32_t), H5T_NATIVE_INT32) >= 0 &&
        H5Dread(h->summary, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, ids) >= 0)
        for (hsize_t i = 0; i < h->n_rows && found < 0; i++)
            if (ids[2 * i] == case_id && ids[2 * i + 1] == rank) found = (int64_t)i;
    free(ids);
    hb_h5_close_id(t);
    return found;
}

/* Appends n rows to /summary; when resuming, a row of an existing (case, rank) replaces it. */
static herr_t append_summary(hb_h5 *h, const hb_summary_row *rows, int n) {
    if (n == 0) return 0;
    if (h->resumed) {
        for (int i = 0; i < n; i++) {
            int64_t at = find_summary_row(h, rows[i].case_id, rows[i].rank);
            herr_t r = at >= 0 ? overwrite_summary_row(h, (hsize_t)at, &rows[i]) : 0;
            if (r < 0) return r;
            if (at >= 0) continue;
            hb_h5 tmp = *h;
            tmp.resumed = 0;
            if (append_summary(&tmp, &rows[i], 1) < 0) return -1;
            h->n_rows = tmp.n_rows;
        }
        return 0;
    }
    hsize_t start = h->n_rows, count = (hsize_t)n, size = h->n_rows + (hsize_t)n;
    hb_summary_row *copy = malloc((size_t)n * sizeof *copy);
    if (!copy) return -1;
    memcpy(copy, rows, (size_t)n * sizeof *copy);
    hb_h5_terminate(hb_h5_summary_fields, HB_H5_N_SUMMARY_FIELDS, copy, (size_t)n, sizeof *copy);
    herr_t r = -1;
    hid_t fs = H5I_INVALID_HID, ms = H5Screate_simple(1, &count, NULL);
    if (ms >= 0 && H5Dset_extent(h->summary, &size) >= 0 &&
        (fs = H5Dget_space(h->summary)) >= 0 &&
        H5Sselect_hyperslab(fs, H5S_SELECT_SET, &start, NULL, &count, NULL) >= 0)
        r = H5Dwrite(h->summary, h->summary_mem, ms, fs, H5P_DEFAULT, copy);
    if (r >= 0) h->n_rows = size;
    hb_h5_close_id(fs);
    hb_h5_close_id(ms);
    free(copy);
    return r;
}

hb_status hb_h5_write_case(hb_h5 *h, const hb_case *c, const hb_cost *cost, const hb_record *recs,
                           const hb_summary_row *rows, int n, hb_err *err) {
    if (!h || !c || !cost || n < 0 || (n > 0 && (!recs || !rows)))
        return hb_errf(err, HB_ERR_INTERNAL, "hb_h5_write_case: invalid arguments");
    for (int i = 0; i < n; i++)
        if (recs[i].n_iters < 0 || recs[i].n_power < 0 ||
            (recs[i].n_iters > 0 && !recs[i].iter_seconds) ||
            (recs[i].n_power > 0 && !recs[i].power))
            return hb_errf(err, HB_ERR_INTERNAL,
                           "hb_h5_write_case: case %d rank %d: inconsistent record arrays",
                           (int)c->id, (int)recs[i].rank);

    char name[32], what[96];
    snprintf(name, sizeof name, "%04d", (int)c->id);
    htri_t exists = H5Lexists(h->cases, name, H5P_DEFAULT);
    hid_t g = exists > 0 ? H5Gopen2(h->cases, name, H5P_DEFAULT)
                         : exists == 0 ? H5Gcreate2(h->cases, name, H5P_DEFAULT, H5P_DEFAULT,
                                                    H5P_DEFAULT)
                                       : H5I_INVALID_HID;
    if (g < 0) {
        snprintf(what, sizeof what, "creating /cases/%s", name);
        return io_error(err, h->path, what);
    }
    hb_status st = HB_OK;
    if (write_case_attrs(g, c, cost) < 0) {
        snprintf(what, sizeof what, "writing the attributes of /cases/%s", name);
        st = io_error(err, h->path, what);
    }
    for (int i = 0; st == HB_OK && i < n; i++) {
        if (write_record(g, &recs[i], h->resumed) < 0) {
            snprintf(what, sizeof what, "writing /cases/%s/rank%d", name, (int)recs[i].rank);
            st = io_error(err, h->path, what);
        }
    }
    if (H5Gclose(g) < 0 && st == HB_OK) st = io_error(err, h->path, "closing a case group");
    if (st == HB_OK && append_summary(h, rows, n) < 0)
        st = io_error(err, h->path, "appending to /summary");
    if (st == HB_OK && H5Fflush(h->file, H5F_SCOPE_GLOBAL) < 0)
        st = io_error(err, h->path, "flushing");
    if (st == HB_OK) st = case_written(h, err);
    return st;
}

hb_status hb_h5_write_idle(hb_h5 *h, const hb_idle_row *rows, int n, hb_err *err) {
    if (!h || n < 0 || (n > 0 && !rows))
        return hb_errf(err, HB_ERR_INTERNAL, "hb_h5_write_idle: invalid arguments");
    htri_t e = H5Lexists(h->file, "idle_info", H5P_DEFAULT);
    if (e < 0 || (e > 0 && H5Ldelete(h->file, "idle_info", H5P_DEFAULT) < 0))
        return io_error(err, h->path, "replacing /idle_info");
    if (dset_table(h->file, "idle_info", hb_h5_idle_fields, HB_H5_N_IDLE_FIELDS,
                   sizeof(hb_idle_row), rows, (size_t)n) < 0)
        return io_error(err, h->path, "writing /idle_info");
    /* /idle[rank] = idle_w, for the rows whose rank is inside /idle */
    hid_t d = H5Dopen2(h->file, "idle", H5P_DEFAULT);
    hid_t fs = d >= 0 ? H5Dget_space(d) : H5I_INVALID_HID;
    hsize_t len = 0;
    herr_t r = fs >= 0 && H5Sget_simple_extent_dims(fs, &len, NULL) >= 0 ? 0 : -1;
    double *v = r >= 0 ? malloc((len ? len : 1) * sizeof *v) : NULL;
    if (r >= 0 && !v) r = -1;
    if (r >= 0 && len > 0) r = H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v);
    for (int i = 0; r >= 0 && i < n; i++)
        if (rows[i].rank >= 0 && (hsize_t)rows[i].rank < len) v[rows[i].rank] = rows[i].idle_w;
    if (r >= 0 && len > 0) r = H5Dwrite(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v);
    free(v);
    hb_h5_close_id(fs);
    hb_h5_close_id(d);
    if (r < 0) return io_error(err, h->path, "writing /idle");
    if (H5Fflush(h->file, H5F_SCOPE_GLOBAL) < 0) return io_error(err, h->path, "flushing");
    return snapshot(h, err);
}

hb_status hb_h5_write_devices(hb_h5 *h, const hb_device_row *devices, int n, hb_err *err) {
    if (!h || n < 0 || (n > 0 && !devices))
        return hb_errf(err, HB_ERR_INTERNAL, "hb_h5_write_devices: invalid arguments");
    htri_t e = H5Lexists(h->file, "devices", H5P_DEFAULT);
    if (e < 0 || (e > 0 && H5Ldelete(h->file, "devices", H5P_DEFAULT) < 0))
        return io_error(err, h->path, "replacing /devices");
    if (dset_table(h->file, "devices", hb_h5_device_fields, HB_H5_N_DEVICE_FIELDS, sizeof(hb_device_row),
                   devices, (size_t)n) < 0)
        return io_error(err, h->path, "writing /devices");
    if (H5Fflush(h->file, H5F_SCOPE_GLOBAL) < 0) return io_error(err, h->path, "flushing");
    return snapshot(h, err);
}

hb_status hb_h5_open_resume(const char *path, const char *command_line, hb_h5 **out, hb_err *err) {
    *out = NULL;
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    hb_h5 *h = calloc(1, sizeof *h);
    if (!h || !(h->path = strdup(path)) || !(h->work = sibling(path, "partial"))) {
        if (h) free(h->path);
        free(h);
        return hb_errf(err, HB_ERR_NOMEM, "%s: out of memory", path);
    }
    h->file = h->cases = h->summary = h->summary_mem = H5I_INVALID_HID;
    h->resumed = 1;
    if (copy_file(path, h->work) < 0) {
        hb_status e = hb_errf(err, HB_ERR_IO, "%s: cannot copy to %s for --resume: %s", path, h->work,
                              strerror(errno));
        h5_free(h);
        return e;
    }
    hb_status st = HB_OK;
    hid_t sp = H5I_INVALID_HID;
    hsize_t n = 0;
    if ((h->file = H5Fopen(h->work, H5F_ACC_RDWR, H5P_DEFAULT)) < 0) st = io_error(err, path, "opening for --resume");
    else if ((h->cases = H5Gopen2(h->file, "cases", H5P_DEFAULT)) < 0) st = io_error(err, path, "opening /cases");
    else if ((h->summary = H5Dopen2(h->file, "summary", H5P_DEFAULT)) < 0 ||
             (h->summary_mem = hb_h5_compound(hb_h5_summary_fields, HB_H5_N_SUMMARY_FIELDS,
                                              sizeof(hb_summary_row), H5I_INVALID_HID)) < 0 ||
             (sp = H5Dget_space(h->summary)) < 0 || H5Sget_simple_extent_dims(sp, &n, NULL) < 0)
        st = io_error(err, path, "opening /summary");
    hb_h5_close_id(sp);
    h->n_rows = n;
    if (st == HB_OK) {
        /* the run stays incomplete until this resume closes it; each resume is recorded */
        char when[32], *prev = NULL, *all = NULL;
        time_t now = time(NULL);
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
        if (H5Aexists(h->file, "resumed") > 0 && hb_h5_attr_str_alloc(h->file, "resumed", &prev) < 0) prev = NULL;
        if (asprintf(&all, "%s%s%s %s", prev ? prev : "", prev ? "\n" : "", when,
                     command_line ? command_line : "") < 0)
            all = NULL;
        if (!all || attr_str(h->file, "resumed", all) < 0 || attr_str(h->file, "status", "incomplete") < 0 ||
            H5Fflush(h->file, H5F_SCOPE_GLOBAL) < 0)
            st = io_error(err, path, "recording the resume");
        if (st == HB_OK) st = snapshot(h, err);
        free(prev);
        free(all);
    }
    if (st != HB_OK) {
        hb_h5_close_id(h->summary_mem);
        hb_h5_close_id(h->summary);
        hb_h5_close_id(h->cases);
        hb_h5_close_id(h->file);
        h->summary_mem = h->summary = h->cases = h->file = H5I_INVALID_HID;
        unlink(h->work);
        h5_free(h);
        return st;
    }
    *out = h;
    return HB_OK;
}

hb_status hb_h5_close(hb_h5 *h, const char *status, hb_err *err) {
    if (!h) return HB_OK;
    hb_status st = HB_OK;
    if (attr_str(h->file, "status", status ? status : "incomplete") < 0)
        st = io_error(err, h->path, "writing the root status");
    hb_h5_close_id(h->summary_mem);
    hb_h5_close_id(h->summary);
    hb_h5_close_id(h->cases);
    h->summary_mem = h->summary = h->cases = H5I_INVALID_HID;
    if (H5Fclose(h->file) < 0 && st == HB_OK) st = io_error(err, h->path, "closing the file");
    h->file = H5I_INVALID_HID;
    /* the closed work file becomes the results file (atomically); on a failure the last
     * complete snapshot stays the results file and the work file is dropped */
    if (st == HB_OK && rename(h->work, h->path) < 0)
        st = hb_errf(err, HB_ERR_IO, "%s: cannot rename %s over it: %s", h->path, h->work, strerror(errno));
    if (st != HB_OK) unlink(h->work);
    h5_free(h);
    return st;
}
