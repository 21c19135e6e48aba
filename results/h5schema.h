/* h5schema.h - private to results/: the compound layouts of /devices, /summary and
 * /idle_info, and small HDF5 helpers shared by the writer (h5writer.c) and the reader
 * (h5reader.c).
 *
 * The column names are the C field names exactly (the tables below stringify them), so the
 * writer, the reader and SCHEMA.md cannot drift apart silently: test_results compares every
 * field after a round trip and check_summary.py checks the column list. */
#ifndef HB_H5SCHEMA_H
#define HB_H5SCHEMA_H

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hdf5.h>

#include "results.h"

typedef enum hb_h5_kind { HB_H5_I32, HB_H5_U32, HB_H5_I64, HB_H5_F64, HB_H5_STR } hb_h5_kind;

typedef struct hb_h5_field {
    const char *name;
    size_t offset;
    size_t size;
    hb_h5_kind kind;
    int32_t missing;    /* I32 value the reader gives a column the file lacks (default 0) */
} hb_h5_field;

#define HB_H5_FIELD(T, f, kind) {#f, offsetof(T, f), sizeof(((T *)0)->f), kind, 0}
#define HB_H5_FIELD_MISSING(T, f, kind, m) {#f, offsetof(T, f), sizeof(((T *)0)->f), kind, m}
#define HB_H5_DEV(f, kind) HB_H5_FIELD(hb_device_row, f, kind)
#define HB_H5_SUM(f, kind) HB_H5_FIELD(hb_summary_row, f, kind)

/* /devices, in struct order. */
static const hb_h5_field hb_h5_device_fields[] = {
    HB_H5_DEV(rank, HB_H5_I32),
    HB_H5_DEV(host, HB_H5_STR),
    HB_H5_DEV(backend, HB_H5_STR),
    HB_H5_DEV(vendor, HB_H5_STR),
    HB_H5_DEV(name, HB_H5_STR),
    HB_H5_DEV(pci_bus_id, HB_H5_STR),
    HB_H5_DEV(driver, HB_H5_STR),
    HB_H5_DEV(runtime, HB_H5_STR),
    HB_H5_DEV(gemm_impl, HB_H5_STR),
    HB_H5_DEV(mem_bytes, HB_H5_I64),
    HB_H5_DEV(numa_node, HB_H5_I32),
    HB_H5_DEV(cpuset, HB_H5_STR),
    HB_H5_DEV(n_compute_units, HB_H5_I32),
    HB_H5_DEV(n_threads, HB_H5_I32),
    HB_H5_DEV(peak_tflops_f32, HB_H5_F64),
    HB_H5_DEV(peak_tflops_bf16, HB_H5_F64),
    HB_H5_DEV(peak_tflops_f16, HB_H5_F64),
    HB_H5_DEV(peak_tflops_fp8, HB_H5_F64),
    HB_H5_DEV(peak_gbps, HB_H5_F64),
    HB_H5_DEV(peak_source, HB_H5_STR),
    HB_H5_DEV(power_limit_w, HB_H5_F64),
    HB_H5_DEV(meter, HB_H5_STR),
    HB_H5_DEV(meter_api, HB_H5_STR),
    HB_H5_DEV(meter_library, HB_H5_STR),
    HB_H5_DEV(meter_version, HB_H5_STR),
    HB_H5_DEV(meter_energy_fn, HB_H5_STR),
    HB_H5_DEV(meter_power_fn, HB_H5_STR),
    HB_H5_DEV(meter_scope, HB_H5_STR),
    HB_H5_DEV(meter_resolution_j, HB_H5_F64),
    HB_H5_DEV(meter_counter_period_s, HB_H5_F64),
    HB_H5_DEV(meter_power_window_s, HB_H5_F64),
    HB_H5_DEV(meter_reason, HB_H5_STR),
    HB_H5_DEV(host_meter, HB_H5_STR),
    HB_H5_DEV(host_meter_scope, HB_H5_STR),
    HB_H5_DEV(host_meter_reason, HB_H5_STR),
    HB_H5_DEV(binding, HB_H5_STR),
    HB_H5_DEV(slurm_job_id, HB_H5_STR),
    HB_H5_DEV(slurm_step_id, HB_H5_STR),
    HB_H5_DEV(slurm_nodelist, HB_H5_STR),
    HB_H5_DEV(slurm_partition, HB_H5_STR),
    HB_H5_DEV(slurm_het_group, HB_H5_I32),
    HB_H5_DEV(llc_bytes, HB_H5_I64),
    HB_H5_DEV(stream_bytes, HB_H5_I64),
    HB_H5_DEV(ref_loop_s, HB_H5_F64),
    HB_H5_DEV(ref_loop_s_end, HB_H5_F64),
    HB_H5_DEV(ref_drift, HB_H5_F64),
    HB_H5_DEV(omp_wait_policy, HB_H5_STR),
    HB_H5_DEV(coll_lib, HB_H5_STR),
};

/* /summary, in struct order. */
static const hb_h5_field hb_h5_summary_fields[] = {
    HB_H5_SUM(case_id, HB_H5_I32),
    HB_H5_SUM(rank, HB_H5_I32),
    HB_H5_SUM(workload, HB_H5_STR),
    HB_H5_SUM(model, HB_H5_STR),
    HB_H5_SUM(dtype, HB_H5_STR),
    HB_H5_SUM(kv_dtype, HB_H5_STR),
    HB_H5_SUM(batch, HB_H5_I64),
    HB_H5_SUM(prompt, HB_H5_I64),
    HB_H5_SUM(gen, HB_H5_I64),
    HB_H5_SUM(seq, HB_H5_I64),
    HB_H5_SUM(layers, HB_H5_I64),
    HB_H5_SUM(m, HB_H5_I64),
    HB_H5_SUM(n, HB_H5_I64),
    HB_H5_SUM(k, HB_H5_I64),
    HB_H5_SUM(stream_n, HB_H5_I64),
    HB_H5_SUM(quant_block, HB_H5_I64),
    HB_H5_SUM(mem_bytes, HB_H5_I64),
    HB_H5_SUM(backend, HB_H5_STR),
    HB_H5_SUM(device, HB_H5_STR),
    HB_H5_SUM(host, HB_H5_STR),
    HB_H5_SUM(gemm_impl, HB_H5_STR),
    HB_H5_SUM(status, HB_H5_STR),
    HB_H5_SUM(n_iters, HB_H5_I64),
    HB_H5_SUM(window_s, HB_H5_F64),
    HB_H5_SUM(iter_s_median, HB_H5_F64),
    HB_H5_SUM(iter_s_mean, HB_H5_F64),
    HB_H5_SUM(iter_s_p5, HB_H5_F64),
    HB_H5_SUM(iter_s_p95, HB_H5_F64),
    HB_H5_SUM(iter_cv, HB_H5_F64),
    HB_H5_SUM(tokens_per_s_in, HB_H5_F64),
    HB_H5_SUM(tokens_per_s_out, HB_H5_F64),
    HB_H5_SUM(tokens_per_s_total, HB_H5_F64),
    HB_H5_SUM(rate_unit, HB_H5_STR),
    HB_H5_SUM(rate, HB_H5_F64),
    HB_H5_SUM(rate_ci_lo, HB_H5_F64),
    HB_H5_SUM(rate_ci_hi, HB_H5_F64),
    HB_H5_SUM(latency_p50_s, HB_H5_F64),
    HB_H5_SUM(latency_p95_s, HB_H5_F64),
    HB_H5_SUM(flops_per_s, HB_H5_F64),
    HB_H5_SUM(bytes_per_s, HB_H5_F64),
    HB_H5_SUM(mfu, HB_H5_F64),
    HB_H5_SUM(bw_util, HB_H5_F64),
    HB_H5_SUM(avg_w, HB_H5_F64),
    HB_H5_SUM(energy_j, HB_H5_F64),
    HB_H5_SUM(j_per_token_out, HB_H5_F64),
    HB_H5_SUM(j_per_token_total, HB_H5_F64),
    HB_H5_SUM(tokens_per_j, HB_H5_F64),
    HB_H5_SUM(energy_valid, HB_H5_I32),
    HB_H5_SUM(energy_flags, HB_H5_U32),
    HB_H5_SUM(energy_counter_j, HB_H5_F64),
    HB_H5_SUM(energy_integral_j, HB_H5_F64),
    HB_H5_SUM(energy_ratio, HB_H5_F64),
    HB_H5_SUM(peak_w, HB_H5_F64),
    HB_H5_SUM(idle_w, HB_H5_F64),
    HB_H5_SUM(energy_net_j, HB_H5_F64),
    HB_H5_SUM(host_energy_j, HB_H5_F64),
    HB_H5_SUM(host_avg_w, HB_H5_F64),
    HB_H5_SUM(energy_source, HB_H5_STR),
    HB_H5_SUM(meter, HB_H5_STR),
    HB_H5_FIELD_MISSING(hb_summary_row, timing_valid, HB_H5_I32, -1), /* -1: not recorded */
    HB_H5_SUM(timing_flags, HB_H5_U32),
    HB_H5_SUM(cpu_util, HB_H5_F64),
    HB_H5_SUM(other_cpu_s, HB_H5_F64),
    HB_H5_SUM(steal_s, HB_H5_F64),
    HB_H5_SUM(ctx_vol, HB_H5_I64),
    HB_H5_SUM(ctx_invol, HB_H5_I64),
    HB_H5_SUM(thread_ctx_invol, HB_H5_I64),
    HB_H5_SUM(loadavg_1m, HB_H5_F64),
    HB_H5_SUM(cpu_mhz, HB_H5_F64),
    HB_H5_SUM(stream_op, HB_H5_STR),
    HB_H5_SUM(seed, HB_H5_I64),
    HB_H5_SUM(temperature, HB_H5_F64),
    HB_H5_SUM(n_reps, HB_H5_I32),
    HB_H5_SUM(rep_rate_min, HB_H5_F64),
    HB_H5_SUM(rep_rate_max, HB_H5_F64),
    HB_H5_SUM(loss_first, HB_H5_F64),
    HB_H5_SUM(loss_last, HB_H5_F64),
    HB_H5_SUM(total_params, HB_H5_I64),
    HB_H5_SUM(active_params, HB_H5_I64),
    HB_H5_SUM(expert_imbalance, HB_H5_F64),
    HB_H5_FIELD_MISSING(hb_summary_row, group_id, HB_H5_I32, -1),
    HB_H5_FIELD_MISSING(hb_summary_row, group_size, HB_H5_I32, 1),
    HB_H5_SUM(group_rank, HB_H5_I32),
    HB_H5_SUM(tp, HB_H5_I64),
    HB_H5_SUM(ep, HB_H5_I64),
    HB_H5_FIELD_MISSING(hb_summary_row, dp, HB_H5_I64, 1),
    HB_H5_SUM(comm_bytes_per_iter, HB_H5_F64),
    HB_H5_SUM(comm_s_per_iter, HB_H5_F64),
    HB_H5_SUM(comm_frac, HB_H5_F64),
    HB_H5_SUM(busbw, HB_H5_F64),
    HB_H5_SUM(group_rate, HB_H5_F64),
    HB_H5_SUM(group_rate_per_device, HB_H5_F64),
    HB_H5_SUM(group_energy_j, HB_H5_F64),
    HB_H5_SUM(ttft_p50_s, HB_H5_F64),
    HB_H5_SUM(ttft_p90_s, HB_H5_F64),
    HB_H5_SUM(ttft_p99_s, HB_H5_F64),
    HB_H5_SUM(tpot_p50_s, HB_H5_F64),
    HB_H5_SUM(tpot_p90_s, HB_H5_F64),
    HB_H5_SUM(tpot_p99_s, HB_H5_F64),
    HB_H5_SUM(itl_p50_s, HB_H5_F64),
    HB_H5_SUM(itl_p90_s, HB_H5_F64),
    HB_H5_SUM(itl_p99_s, HB_H5_F64),
    HB_H5_SUM(e2e_p50_s, HB_H5_F64),
    HB_H5_SUM(e2e_p90_s, HB_H5_F64),
    HB_H5_SUM(e2e_p99_s, HB_H5_F64),
    HB_H5_SUM(interactivity, HB_H5_F64),
    HB_H5_SUM(requests_per_s, HB_H5_F64),
    HB_H5_SUM(preemptions, HB_H5_I64),
    HB_H5_FIELD_MISSING(hb_summary_row, slo_valid, HB_H5_I32, -1),
    HB_H5_SUM(arrival_rate, HB_H5_F64),
};

/* serve: attributes of /cases/<id>/rank<r>, one per hb_serve_stat (workload.h), in its order;
 * with the dataset `requests` (HB_SERVE_REQ_COLS columns, named in its `columns` attribute). */
static const char *const hb_h5_serve_stats[HB_SERVE_N_STATS] = {
    "ttft_p50_s", "ttft_p90_s", "ttft_p99_s", "tpot_p50_s", "tpot_p90_s", "tpot_p99_s",
    "itl_p50_s", "itl_p90_s", "itl_p99_s", "e2e_p50_s", "e2e_p90_s", "e2e_p99_s",
    "stream_s", "out_tokens_per_s", "total_tokens_per_s", "requests_per_s", "interactivity",
    "preemptions", "slo_valid", "scheduler_iterations", "kv_blocks_used", "arrival_rate", "search_streams",
};
#define HB_H5_REQUEST_COLUMNS "arrival_s, first_token_s, finish_s, input_tokens, output_tokens, preemptions"

#define HB_H5_REC(f, kind) HB_H5_FIELD(hb_record, f, kind)

/* Attributes of /cases/<id>/rank<r> added with the timing evidence (0.4): written and read
 * from this table; an absent one is "not recorded" (hb_record_init's NaN / 0). */
static const hb_h5_field hb_h5_record_timing_fields[] = {
    HB_H5_REC(cpu_s, HB_H5_F64),
    HB_H5_REC(cpu_util, HB_H5_F64),
    HB_H5_REC(n_threads, HB_H5_I32),
    HB_H5_REC(n_cpus, HB_H5_I32),
    HB_H5_REC(n_online_cpus, HB_H5_I32),
    HB_H5_REC(ctx_vol, HB_H5_I64),
    HB_H5_REC(ctx_invol, HB_H5_I64),
    HB_H5_REC(thread_ctx_invol, HB_H5_I64),
    HB_H5_REC(other_cpu_s, HB_H5_F64),
    HB_H5_REC(steal_s, HB_H5_F64),
    HB_H5_REC(loadavg_1m_start, HB_H5_F64),
    HB_H5_REC(loadavg_1m_end, HB_H5_F64),
    HB_H5_REC(cpu_mhz_start, HB_H5_F64),
    HB_H5_REC(cpu_mhz_end, HB_H5_F64),
    HB_H5_REC(ref_loop_s_end, HB_H5_F64),
    HB_H5_REC(n_reps, HB_H5_I32),         /* and, when > 1, the int64 [n_reps] attr rep_iters */
};
#define HB_H5_N_RECORD_TIMING_FIELDS \
    ((int)(sizeof hb_h5_record_timing_fields / sizeof hb_h5_record_timing_fields[0]))

#define HB_H5_IDLE(f, kind) HB_H5_FIELD(hb_idle_row, f, kind)

/* /idle_info, in struct order. */
static const hb_h5_field hb_h5_idle_fields[] = {
    HB_H5_IDLE(rank, HB_H5_I32),
    HB_H5_IDLE(idle_w, HB_H5_F64),
    HB_H5_IDLE(seconds, HB_H5_F64),
    HB_H5_IDLE(method, HB_H5_STR),
    HB_H5_IDLE(flags, HB_H5_U32),
    HB_H5_IDLE(n_samples, HB_H5_I64),
    HB_H5_IDLE(meter, HB_H5_STR),
};

#define HB_H5_N_DEVICE_FIELDS ((int)(sizeof hb_h5_device_fields / sizeof hb_h5_device_fields[0]))
#define HB_H5_N_SUMMARY_FIELDS \
    ((int)(sizeof hb_h5_summary_fields / sizeof hb_h5_summary_fields[0]))
#define HB_H5_N_IDLE_FIELDS ((int)(sizeof hb_h5_idle_fields / sizeof hb_h5_idle_fields[0]))

/* Fixed-length, NUL-terminated C string type of `size` bytes (caller closes). */
static inline hid_t hb_h5_fixed_str(size_t size) {
    hid_t t = H5Tcopy(H5T_C_S1);
    if (t < 0) return H5I_INVALID_HID;
    if (H5Tset_size(t, size) < 0 || H5Tset_strpad(t, H5T_STR_NULLTERM) < 0) {
        H5Tclose(t);
        return H5I_INVALID_HID;
    }
    return t;
}

/* In-memory compound type of a struct of `struct_size` bytes with the members in `f`. When
 * `only_in` is a compound type (the type found in a file), members it lacks are left out, so
 * that a reader tolerates files written before an optional column existed. Caller closes. */
static inline hid_t hb_h5_compound(const hb_h5_field *f, int nf, size_t struct_size,
                                   hid_t only_in) {
    hid_t t = H5Tcreate(H5T_COMPOUND, struct_size);
    if (t < 0) return H5I_INVALID_HID;
    for (int i = 0; i < nf; i++) {
        if (only_in >= 0 && H5Tget_member_index(only_in, f[i].name) < 0) continue;
        hid_t mt = H5I_INVALID_HID;
        int own = 0;
        switch (f[i].kind) {
        case HB_H5_I32: mt = H5T_NATIVE_INT32; break;
        case HB_H5_U32: mt = H5T_NATIVE_UINT32; break;
        case HB_H5_I64: mt = H5T_NATIVE_INT64; break;
        case HB_H5_F64: mt = H5T_NATIVE_DOUBLE; break;
        case HB_H5_STR: mt = hb_h5_fixed_str(f[i].size); own = 1; break;
        }
        if (own && mt >= 0 && only_in >= 0) { /* HDF5 won't convert ASCII <-> UTF-8 */
            int idx = H5Tget_member_index(only_in, f[i].name);
            hid_t ft = H5Tget_member_type(only_in, (unsigned)idx);
            H5T_cset_t cset = ft >= 0 && H5Tget_class(ft) == H5T_STRING ? H5Tget_cset(ft)
                                                                         : H5T_CSET_ASCII;
            if (ft >= 0) H5Tclose(ft);
            if (cset >= 0) H5Tset_cset(mt, cset);
        }
        herr_t r = mt < 0 ? -1 : H5Tinsert(t, f[i].name, f[i].offset, mt);
        if (own && mt >= 0) H5Tclose(mt);
        if (r < 0) {
            H5Tclose(t);
            return H5I_INVALID_HID;
        }
    }
    return t;
}

/* Forces a NUL into the last byte of every string member of n rows (no unterminated field
 * ever reaches the file or a caller). */
static inline void hb_h5_terminate(const hb_h5_field *f, int nf, void *rows, size_t n,
                                   size_t struct_size) {
    for (size_t r = 0; r < n; r++)
        for (int i = 0; i < nf; i++)
            if (f[i].kind == HB_H5_STR)
                ((char *)rows)[r * struct_size + f[i].offset + f[i].size - 1] = '\0';
}

/* Closes any HDF5 identifier we opened; negative ids are ignored. */
static inline void hb_h5_close_id(hid_t id) {
    if (id < 0) return;
    switch (H5Iget_type(id)) {
    case H5I_FILE: H5Fclose(id); break;
    case H5I_GROUP: H5Gclose(id); break;
    case H5I_DATATYPE: H5Tclose(id); break;
    case H5I_DATASPACE: H5Sclose(id); break;
    case H5I_DATASET: H5Dclose(id); break;
    case H5I_ATTR: H5Aclose(id); break;
    case H5I_GENPROP_LST: H5Pclose(id); break;
    default: H5Idec_ref(id); break;
    }
}

typedef struct hb_h5_errbuf {
    char msg[256];
} hb_h5_errbuf;

static inline herr_t hb_h5_walk_cb(unsigned n, const H5E_error2_t *e, void *data) {
    hb_h5_errbuf *b = data;
    if (n == 0 && e && e->desc) snprintf(b->msg, sizeof b->msg, "%s", e->desc);
    return 0;
}

/* The innermost message of HDF5's current error stack ("" when empty), for our own messages:
 * automatic stack printing is turned off, users never see HDF5's dumps. */
static inline void hb_h5_last_error(char *buf, size_t len) {
    hb_h5_errbuf b = {{0}};
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, hb_h5_walk_cb, &b);
    snprintf(buf, len, "%s", b.msg);
}

/* Reads a scalar string attribute (variable or fixed length) into a malloc'd string. */
static inline herr_t hb_h5_attr_str_alloc(hid_t obj, const char *name, char **out) {
    *out = NULL;
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    hid_t ft = a >= 0 ? H5Aget_type(a) : H5I_INVALID_HID;
    hid_t sp = a >= 0 ? H5Aget_space(a) : H5I_INVALID_HID;
    hid_t mt = H5I_INVALID_HID;
    herr_t r = -1;
    if (ft < 0 || sp < 0 || H5Tget_class(ft) != H5T_STRING ||
        H5Sget_simple_extent_npoints(sp) != 1)
        goto done;
    htri_t vlen = H5Tis_variable_str(ft);
    H5T_cset_t cset = H5Tget_cset(ft); /* HDF5 does not convert between ASCII and UTF-8 */
    if (vlen < 0 || cset < 0 || (mt = H5Tcopy(H5T_C_S1)) < 0 || H5Tset_cset(mt, cset) < 0)
        goto done;
    if (vlen) {
        char *s = NULL;
        if (H5Tset_size(mt, H5T_VARIABLE) < 0 || H5Aread(a, mt, &s) < 0) goto done;
        *out = strdup(s ? s : "");
        if (s) H5free_memory(s);
    } else {
        size_t size = H5Tget_size(ft);
        if (size == 0 || size > ((size_t)1 << 30)) goto done;
        char *buf = calloc(1, size + 1);
        if (!buf) goto done;
        if (H5Tset_size(mt, size + 1) < 0 || H5Tset_strpad(mt, H5T_STR_NULLTERM) < 0 ||
            H5Aread(a, mt, buf) < 0) {
            free(buf);
            goto done;
        }
        *out = buf;
    }
    r = *out ? 0 : -1;
done:
    hb_h5_close_id(mt);
    hb_h5_close_id(sp);
    hb_h5_close_id(ft);
    hb_h5_close_id(a);
    return r;
}

#endif
