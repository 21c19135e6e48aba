#!/usr/bin/env python3
"""check_summary.py - the /summary table of a results file as h5py/numpy (and pandas, when
installed) see it. Usage: check_summary.py FILE, where FILE was written by test_results, whose
summary_row() generates the values this script recomputes. Exit 0 pass, 1 fail, 77 skip."""
import math
import sys

try:
    import h5py
    import numpy as np
except ImportError as e:  # configure found h5py, but be safe
    print(f"SKIP: {e}", file=sys.stderr)
    sys.exit(77)

STR = {"workload": 16, "model": 64, "dtype": 16, "kv_dtype": 8, "backend": 16, "device": 128, "host": 64,
       "gemm_impl": 16, "status": 16, "rate_unit": 16, "energy_source": 16, "meter": 32, "stream_op": 8}
ENERGY = ["avg_w", "energy_j", "j_per_token_out", "j_per_token_total", "tokens_per_j",
          "energy_counter_j", "energy_integral_j", "energy_ratio", "peak_w", "idle_w",
          "energy_net_j", "host_energy_j", "host_avg_w"]
INTS = ["batch", "prompt", "gen", "seq", "layers", "m", "n", "k", "stream_n", "quant_block", "mem_bytes", "n_iters",
        "ctx_vol", "ctx_invol", "thread_ctx_invol", "seed", "total_params", "active_params", "tp", "ep", "dp", "preemptions"]
DBLS = ["window_s", "iter_s_median", "iter_s_mean", "iter_s_p5", "iter_s_p95", "iter_cv",
        "tokens_per_s_in", "tokens_per_s_out", "tokens_per_s_total", "rate", "rate_ci_lo",
        "rate_ci_hi", "latency_p50_s", "latency_p95_s", "flops_per_s", "bytes_per_s", "mfu",
        "bw_util", "avg_w", "energy_j", "j_per_token_out", "j_per_token_total", "tokens_per_j",
        "energy_counter_j", "energy_integral_j", "energy_ratio", "peak_w", "idle_w",
        "energy_net_j", "host_energy_j", "host_avg_w", "cpu_util", "other_cpu_s", "steal_s",
        "loadavg_1m", "cpu_mhz", "temperature", "rep_rate_min", "rep_rate_max", "loss_first", "loss_last", "expert_imbalance",
        "comm_bytes_per_iter", "comm_s_per_iter", "comm_frac", "busbw", "group_rate", "group_rate_per_device",
        "group_energy_j",
        "ttft_p50_s", "ttft_p90_s", "ttft_p99_s", "tpot_p50_s", "tpot_p90_s", "tpot_p99_s", "itl_p50_s", "itl_p90_s", "itl_p99_s", "e2e_p50_s", "e2e_p90_s", "e2e_p99_s", "interactivity", "requests_per_s", "arrival_rate"]
COLUMNS = ("case_id", "rank", "workload", "model", "dtype", "kv_dtype", "batch", "prompt", "gen", "seq",
           "layers", "m", "n", "k", "stream_n", "quant_block", "mem_bytes", "backend", "device", "host", "gemm_impl",
           "status", "n_iters", "window_s", "iter_s_median", "iter_s_mean", "iter_s_p5",
           "iter_s_p95", "iter_cv", "tokens_per_s_in", "tokens_per_s_out", "tokens_per_s_total",
           "rate_unit", "rate", "rate_ci_lo", "rate_ci_hi", "latency_p50_s", "latency_p95_s",
           "flops_per_s", "bytes_per_s", "mfu", "bw_util", "avg_w", "energy_j",
           "j_per_token_out", "j_per_token_total", "tokens_per_j", "energy_valid",
           "energy_flags", "energy_counter_j", "energy_integral_j", "energy_ratio", "peak_w",
           "idle_w", "energy_net_j", "host_energy_j", "host_avg_w", "energy_source", "meter",
           "timing_valid", "timing_flags", "cpu_util", "other_cpu_s", "steal_s", "ctx_vol",
           "ctx_invol", "thread_ctx_invol", "loadavg_1m", "cpu_mhz", "stream_op", "seed", "temperature",
           "n_reps", "rep_rate_min", "rep_rate_max", "loss_first", "loss_last", "total_params", "active_params", "expert_imbalance",
           "group_id", "group_size", "group_rank", "tp", "ep", "dp", "comm_bytes_per_iter", "comm_s_per_iter", "comm_frac",
           "busbw", "group_rate", "group_rate_per_device", "group_energy_j",
           "ttft_p50_s", "ttft_p90_s", "ttft_p99_s", "tpot_p50_s", "tpot_p90_s", "tpot_p99_s", "itl_p50_s", "itl_p90_s", "itl_p99_s", "e2e_p50_s", "e2e_p90_s", "e2e_p99_s", "interactivity", "requests_per_s", "preemptions", "slo_valid", "arrival_rate")
DEVICE_COLUMNS = ("rank", "host", "backend", "vendor", "name", "pci_bus_id", "driver",
                  "runtime", "gemm_impl", "mem_bytes", "numa_node", "cpuset",
                  "n_compute_units", "n_threads", "peak_tflops_f32", "peak_tflops_bf16",
                  "peak_tflops_f16", "peak_tflops_fp8", "peak_gbps", "peak_source",
                  "power_limit_w", "meter", "meter_api", "meter_library", "meter_version",
                  "meter_energy_fn", "meter_power_fn", "meter_scope", "meter_resolution_j",
                  "meter_counter_period_s", "meter_power_window_s", "meter_reason",
                  "host_meter", "host_meter_scope", "host_meter_reason",
                  "binding", "slurm_job_id", "slurm_step_id", "slurm_nodelist", "slurm_partition",
                  "slurm_het_group", "llc_bytes", "stream_bytes", "ref_loop_s", "ref_loop_s_end",
                  "ref_drift", "omp_wait_policy", "coll_lib")
IDLE_COLUMNS = ("rank", "idle_w", "seconds", "method", "flags", "n_samples", "meter")

failures = 0


def check(cond, what):
    global failures
    if not cond:
        failures += 1
        print(f"FAIL: {what}", file=sys.stderr)


def expected_row(i):
    """Mirror of summary_row() in test_results.c."""
    dec = i < 2
    case_id, rank = (0 if dec else 7), i % 2
    row = {"case_id": case_id, "rank": rank,
           "workload": "decode" if dec else "stream", "model": "tiny-test" if dec else "",
           "dtype": "fp8-block" if dec else "f32", "kv_dtype": "fp8" if dec else "", "backend": "cpu",
           "device": f"device-{case_id}-{rank}", "host": f"node0{rank + 1}",
           "gemm_impl": "openblas", "status": "failed" if i == 2 else "ok",
           "rate_unit": "tokens/s" if dec else "B/s"}
    for j, c in enumerate(INTS):
        row[c] = 1000 * i + j + 1
    row["stream_n"] += 1 << 40
    for j, c in enumerate(DBLS):
        row[c] = 100.0 * i + j + 0.125
    if i == 1:
        for c in ENERGY:
            row[c] = math.nan
    if i >= 2:
        row["latency_p50_s"] = row["latency_p95_s"] = math.nan
    if i == 2:
        for c in DBLS:
            row[c] = math.nan
    row["energy_valid"] = 1 if i == 0 else 0
    row["energy_flags"] = [0, 1, 1 | 2, 8 | 32][i]
    row["energy_source"] = ["counter", "none", "none", "integral"][i]
    row["meter"] = ["nvml", "none", "none", "rapl"][i]
    row["timing_valid"] = 1 if i == 0 else 0
    row["timing_flags"] = [0, 1 | 4, 512, 8 | 32][i]
    row["stream_op"] = "" if dec else "triad"
    row["n_reps"] = i + 1
    row["group_id"], row["group_size"], row["group_rank"] = i - 1, 2 * i + 1, i % 2
    row["slo_valid"] = (i % 3) - 1
    return row


def same(a, b):
    if isinstance(b, float) and math.isnan(b):
        return isinstance(a, float) and math.isnan(a)
    return a == b


def main():
    path = sys.argv[1]
    with h5py.File(path, "r") as f:
        s = f["summary"][:]
        check(s.dtype.names == COLUMNS, f"summary columns {s.dtype.names}")
        check(s.shape == (4,), f"summary shape {s.shape}")
        for c in COLUMNS:
            k = s.dtype[c].kind
            if c in STR:
                check(s.dtype[c] == np.dtype(f"S{STR[c]}"), f"{c}: dtype {s.dtype[c]}")
            elif c in DBLS:
                check(s.dtype[c] == np.float64, f"{c}: dtype {s.dtype[c]}")
            elif c in ("energy_flags", "timing_flags"):
                check(s.dtype[c] == np.uint32, f"{c}: dtype {s.dtype[c]}")
            elif c in INTS:
                check(s.dtype[c] == np.int64, f"{c}: dtype {s.dtype[c]}")
            else:
                check(s.dtype[c] == np.int32, f"{c}: dtype {s.dtype[c]} ({k})")
        for i in range(min(4, len(s))):
            want = expected_row(i)
            for c in COLUMNS:
                v = s[i][c]
                v = v.decode() if isinstance(v, bytes) else v.item()
                check(same(v, want[c]), f"row {i} {c}: {v!r}, expected {want[c]!r}")

        # root attributes and a few objects around the table
        check(f.attrs["schema"] == "hetbench/1", f"schema {f.attrs['schema']!r}")
        check(f.attrs["status"] == "complete", f"status {f.attrs['status']!r}")
        check(int(f.attrs["mpi_size"]) == 2, "mpi_size")
        d = f["devices"][:]
        check(d.dtype.names == DEVICE_COLUMNS, f"devices columns {d.dtype.names}")
        check(d.shape == (2,) and d["host"][1] == b"node02", "devices rows")
        idle = f["idle"][:]
        check(idle.shape == (2,) and idle[0] == 42.5 and math.isnan(idle[1]), f"idle {idle}")
        check(f["idle"].attrs["units"] == "W", "idle units")
        info = f["idle_info"][:]
        check(info.dtype.names == IDLE_COLUMNS, f"idle_info columns {info.dtype.names}")
        check(info["method"].tolist() == [b"counter", b"none"], f"idle_info method {info['method']}")
        check(info["flags"].tolist() == [0, 1] and info["n_samples"][0] == 61, "idle_info flags")
        check(d["meter_api"][0] == b"powercap/RAPL" and d["meter_resolution_j"][0] == 1e-6,
              "devices meter provenance")
        check(math.isnan(d["meter_resolution_j"][1]) and d["host_meter"][1] == b"rapl",
              "devices host meter")
        a = f["cases/0000/rank0"].attrs
        check(a["energy_source"] == "counter" and a["meter"] == "nvml", "record provenance attrs")
        check(a["sm_clock_mhz_start"] == 1980 and a["temperature_c_end"] == 67.5, "record state attrs")
        check(math.isnan(f["cases/0000/rank1"].attrs["energy_j"]), "unmeasured energy_j is NaN")
        check(f["cases/0000"].attrs["workload"] == "decode", "case 0 workload")
        label = f["cases/0000"].attrs["label"]
        check(isinstance(label, str) and label.startswith("decode"), f"label {label!r}")
        check(f["cases/0007"].attrs["stream_op"] == "triad", "case 7 stream_op")
        it = f["cases/0000/rank0/iter_seconds"]
        check(it.shape == (5,) and it.attrs["units"] == "s", "iter_seconds")
        check(f["cases/0000/rank0/power"].shape == (3, 2), "power shape")
        check(f["cases/0000/rank1/power"].shape == (0, 2), "empty power shape")
        check(f["cases/0007/rank0"].attrs["status"] == "failed", "failed status")
        check(f["cases/0007/rank0/iter_seconds"].shape == (0,), "empty iter_seconds")
        check(f["cases/0000/rank0"].attrs["fingerprint"].shape == (4,), "fingerprint")

    try:
        import pandas as pd
    except ImportError:
        print("note: pandas not installed, DataFrame check skipped", file=sys.stderr)
    else:
        with h5py.File(path, "r") as f:
            df = pd.DataFrame(f["summary"][:])
        check(list(df.columns) == list(COLUMNS), "pandas columns")
        check(len(df) == 4 and df["rank"].tolist() == [0, 1, 0, 1], "pandas rows")

    print(f"check_summary.py: {failures} failed", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
