/* test_meter_nvml.c - the NVML meter (backends/cuda/meter_nvml.c) against the scripted fake
 * libnvidia-ml.so.1 (tests/fake_nvml.c, path in HETBENCH_NVML_LIBRARY; argv[1] is the variant
 * without nvmlDeviceGetTotalEnergyConsumption):
 * - missing library, failing nvmlInit_v2, missing symbols, missing capabilities: the meter
 *   degrades with a reason (or the device gets the none meter with it), no crash, NaN not 0;
 * - PCI bus id matching across formats, device counting, provenance (versions, functions,
 *   resolution, averaging window: instant field, else the 1 s average of Ampere+), state
 *   (power limit, SM/memory clocks, temperature at window start and end);
 * - real windows of a CPU GEMM (harness/measure.c) with the fake as the meter: counter and
 *   integral within 1% of the scripted P x t; a linear ramp: counter and trapezoid integral
 *   within 1% of each other; every flag from a scripted fault: stuck, backwards, skewed
 *   counter (ratio), slow power reads (gap), a short window, an unreadable counter at the
 *   window's end (read failed), no meter. */
#include "harness/energy.h"
#include "meter_window.h"

static const char *fake, *fake_noenergy;

static void script(const char *devices, const char *power, const char *mode) {
    setenv("HB_FAKE_NVML_DEVICES", devices ? devices : "00000000:17:00.0", 1);
    setenv("HB_FAKE_NVML_POWER", power ? power : "300", 1);
    setenv("HB_FAKE_NVML_MODE", mode ? mode : "ok", 1);
    unsetenv("HB_FAKE_NVML_CC");
    unsetenv("HB_FAKE_NVML_INIT_RC");
    unsetenv("HB_FAKE_NVML_FAIL_AFTER");
    setenv("HETBENCH_NVML_LIBRARY", fake, 1);
}

static hb_meter *open_pci(const char *pci) {
    hb_meter *m = NULL;
    hb_err err = {{0}};
    if (hb_meter_open_nvml(pci, -1, &m, &err) != HB_OK) fprintf(stderr, "open %s: %s\n", pci, err.msg);
    return m;
}

static void test_missing(void) {
    script(NULL, NULL, NULL);
    setenv("HETBENCH_NVML_LIBRARY", "/nonexistent/libnvidia-ml.so.1", 1);
    hb_err err = {{0}};
    hb_meter *m = NULL;
    CHECK(hb_meter_nvml_count(&err) == HB_ERR_UNSUPPORTED);
    CHECK_MSG(strstr(err.msg, "cannot load /nonexistent/libnvidia-ml.so.1") != NULL, "%s", err.msg);
    CHECK(hb_meter_open_nvml("0000:17:00.0", -1, &m, &err) == HB_ERR_UNSUPPORTED && !m);
    hb_device_info gpu = {.backend = "cuda", .pci_bus_id = "0000:17:00.0"};
    CHECK(hb_meter_open_for_device(&gpu, &m, &err) == HB_OK && m);
    if (m) {
        CHECK_STR(m->name, "none");
        CHECK_MSG(strstr(m->reason, "HETBENCH_NVML_LIBRARY") != NULL, "%s", m->reason);
        hb_record rec;
        CHECK(run_window(m, 50, 0.05, NAN, &rec) == HB_OK);
        CHECK(rec.energy_flags == HB_ENERGY_NO_METER && !rec.energy_valid);
        CHECK(isnan(rec.energy_j) && isnan(rec.energy_counter_j) && isnan(rec.energy_integral_j));
        CHECK(isnan(rec.avg_w) && rec.n_power == 0);
        CHECK_STR(rec.meter, "none");
        hb_record_free(&rec);
    }
    hb_meter_close(m);
    /* a device without a PCI bus id cannot be matched */
    hb_device_info nopci = {.backend = "cuda"};
    CHECK(hb_meter_open_for_device(&nopci, &m, &err) == HB_OK && m && strstr(m->reason, "PCI bus id"));
    hb_meter_close(m);

    script(NULL, NULL, NULL);
    setenv("HB_FAKE_NVML_INIT_RC", "9", 1);
    CHECK(hb_meter_open_nvml("0000:17:00.0", -1, &m, &err) == HB_ERR_UNSUPPORTED && !m);
    CHECK_MSG(strstr(err.msg, "nvmlInit_v2 failed: Driver Not Loaded") != NULL, "%s", err.msg);
    unsetenv("HB_FAKE_NVML_INIT_RC");

    /* a library without the energy counter symbol: power only, with the reason */
    setenv("HETBENCH_NVML_LIBRARY", fake_noenergy, 1);
    m = open_pci("0000:17:00.0");
    CHECK(m != NULL);
    if (m) {
        CHECK(!m->has_counter && m->has_power);
        CHECK_MSG(strstr(m->reason, "nvmlDeviceGetTotalEnergyConsumption missing from the library") != NULL,
                  "%s", m->reason);
        double j = 0;
        CHECK(hb_meter_energy_j(m, &j) == HB_ERR_UNSUPPORTED);
        hb_record rec;
        CHECK(run_window(m, 50, 0.3, NAN, &rec) == HB_OK);
        CHECK_STR(rec.energy_source, "integral");
        CHECK(isnan(rec.energy_counter_j) && isnan(rec.energy_ratio));
        CHECK_REL(rec.energy_j, 300 * rec.window_s, 0.01);
        CHECK_MSG(rec.energy_flags == 0, "flags %#x", rec.energy_flags);
        hb_record_free(&rec);
    }
    hb_meter_close(m);
}

static void test_devices(void) {
    script("00000000:17:00.0,00000000:65:00.0", "300,150", "ok,ok");
    hb_err err = {{0}};
    CHECK_MSG(hb_meter_nvml_count(&err) == 2, "%s", err.msg);
    hb_meter *m = open_pci("0000:65:00.0"); /* the short form matches NVML's 8-digit domain */
    CHECK(m != NULL);
    if (m) {
        double w = 0;
        CHECK(hb_meter_power_w(m, &w) == HB_OK);
        CHECK_NEAR(w, 150, 1e-3);
        const hb_meter_info *in = &m->info;
        CHECK_STR(in->pci_bus_id, "00000000:65:00.0");
        CHECK_STR(in->api, "NVML");
        CHECK_STR(in->version, "12.550.90.07");
        CHECK_STR(in->driver, "550.90.07");
        CHECK_STR(in->library, fake);
        CHECK(strstr(in->device, "H100") != NULL);
        CHECK(strstr(in->power_fn, "NVML_FI_DEV_POWER_INSTANT") != NULL);
        CHECK(strstr(in->energy_fn, "nvmlDeviceGetTotalEnergyConsumption") != NULL);
        CHECK(in->power_window_s == 0);
        CHECK_NEAR(in->counter_resolution_j, 1e-3, 0);
        CHECK_NEAR(in->power_limit_w, 700, 1e-9);
        CHECK_NEAR(m->counter_period_s, 0.1, 0);
        CHECK(m->has_counter && m->has_power && !m->power_from_counter);
        CHECK_STR(m->reason, "");
        hb_meter_state st;
        hb_meter_read_state(m, &st);
        CHECK_NEAR(st.power_w, 150, 1e-3);
        CHECK_NEAR(st.power_instant_w, 150, 1e-3);
        CHECK_NEAR(st.power_limit_w, 700, 1e-9);
        CHECK_NEAR(st.sm_clock_mhz, 1980, 0);
        CHECK_NEAR(st.mem_clock_mhz, 2619, 0);
        CHECK_NEAR(st.temperature_c, 45, 0);
        hb_device_row d;
        memset(&d, 0, sizeof d);
        d.power_limit_w = NAN;
        hb_energy_device_fill(m, NULL, &d);
        CHECK_STR(d.meter, "nvml");
        CHECK_STR(d.meter_api, "NVML");
        CHECK_NEAR(d.power_limit_w, 700, 1e-9);
        CHECK_NEAR(d.meter_counter_period_s, 0.1, 0);
        CHECK(d.meter_power_window_s == 0);
    }
    hb_meter_close(m);
    m = NULL;
    CHECK(hb_meter_open_nvml("0000:99:00.0", -1, &m, &err) == HB_ERR_UNSUPPORTED && !m);
    CHECK_MSG(strstr(err.msg, "no device with PCI bus id 0000:99:00.0") != NULL, "%s", err.msg);
    CHECK(hb_meter_open_nvml(NULL, 0, &m, &err) == HB_OK && m);
    if (m) CHECK_STR(m->info.pci_bus_id, "00000000:17:00.0");
    hb_meter_close(m);

    /* no instant field: the usage reading, a 1 s average on Ampere+, "current draw" before */
    script(NULL, NULL, "noinstant");
    m = open_pci("0000:17:00.0");
    if (m) {
        CHECK(strstr(m->info.power_fn, "nvmlDeviceGetPowerUsage") && strstr(m->info.power_fn, "1 s average"));
        CHECK_NEAR(m->info.power_window_s, 1.0, 0);
    }
    hb_meter_close(m);
    setenv("HB_FAKE_NVML_CC", "7", 1);
    m = open_pci("0000:17:00.0");
    if (m) CHECK(m->info.power_window_s == 0 && strstr(m->info.power_fn, "current draw"));
    hb_meter_close(m);

    /* no power at all: the counter alone, with the reason */
    script(NULL, NULL, "nopower");
    m = open_pci("0000:17:00.0");
    CHECK(m && m->has_counter && !m->has_power);
    if (m) {
        CHECK(strstr(m->reason, "no power readings") != NULL);
        double w = 0;
        CHECK(hb_meter_power_w(m, &w) == HB_ERR_UNSUPPORTED);
        hb_record rec;
        CHECK(run_window(m, 50, 1.05, NAN, &rec) == HB_OK);
        CHECK_STR(rec.energy_source, "counter");
        CHECK(rec.n_power == 0 && isnan(rec.energy_integral_j) && isnan(rec.peak_w));
        CHECK_REL(rec.energy_j, 300 * rec.window_s, 0.01);
        CHECK_MSG(rec.energy_flags == 0 && rec.energy_valid, "flags %#x", rec.energy_flags);
        hb_record_free(&rec);
    }
    hb_meter_close(m);
    /* neither counter nor power: no meter, the none meter for the device */
    script(NULL, NULL, "nopower+noenergy");
    CHECK(hb_meter_open_nvml("0000:17:00.0", -1, &m, &err) == HB_ERR_UNSUPPORTED && !m);
    CHECK_MSG(strstr(err.msg, "no energy counter") && strstr(err.msg, "no power readings"), "%s", err.msg);
}

/* One window of the fake in `mode`; returns the record (caller frees). */
static hb_record window(const char *power, const char *mode, double hz, double seconds, double idle_w) {
    script(NULL, power, mode);
    hb_record rec;
    hb_record_init(&rec, 0, 0);
    hb_meter *m = open_pci("0000:17:00.0");
    CHECK(m != NULL);
    if (m) CHECK(run_window(m, hz, seconds, idle_w, &rec) == HB_OK);
    hb_meter_close(m);
    return rec;
}

static void test_windows(void) {
    /* clean: counter and integral within 1% of 300 W x window; valid */
    hb_record r = window("300", "ok", 50, 1.05, 100);
    CHECK_MSG(r.energy_flags == 0 && r.energy_valid == 1, "flags %#x", r.energy_flags);
    CHECK_STR(r.energy_source, "counter");
    CHECK_STR(r.meter, "nvml");
    CHECK_REL(r.energy_counter_j, 300 * r.window_s, 0.01);
    CHECK_REL(r.energy_integral_j, 300 * r.window_s, 0.01);
    CHECK_NEAR(r.energy_j, r.energy_counter_j, 0);
    CHECK_REL(r.avg_w, 300, 0.01);
    CHECK_NEAR(r.peak_w, 300, 1e-3);
    CHECK_NEAR(r.idle_w, 100, 0);
    CHECK_REL(r.energy_net_j, 200 * r.window_s, 0.015);
    CHECK(r.power_hz == 50 && r.max_gap_s < 0.06);
    CHECK(r.n_power >= 40 && r.power[0] < 0 && r.power[2 * (r.n_power - 1)] > r.window_s);
    CHECK_NEAR(r.sm_clock_mhz_start, 1980, 0);
    CHECK_NEAR(r.mem_clock_mhz_end, 2619, 0);
    CHECK_NEAR(r.temperature_c_end, 45, 0);
    CHECK_NEAR(r.power_limit_w_start, 700, 1e-9);
    CHECK(isnan(r.host_energy_j));
    hb_record_free(&r);

    /* a ramp (200 W + 100 W/s): the trapezoid with interpolated edges matches the counter */
    r = window("200+100", "ok", 20, 1.05, NAN);
    CHECK_MSG(fabs(r.energy_ratio - 1) < 0.01, "ratio %.5f", r.energy_ratio);
    CHECK(r.peak_w > 200 && r.energy_flags == 0);
    CHECK(isnan(r.idle_w) && isnan(r.energy_net_j));
    hb_record_free(&r);

    r = window("300", "stuck", 50, 0.3, NAN);
    CHECK_MSG(r.energy_flags & HB_ENERGY_COUNTER_STUCK, "flags %#x", r.energy_flags);
    CHECK_STR(r.energy_source, "integral");
    CHECK_REL(r.energy_j, 300 * r.window_s, 0.01);
    CHECK(r.energy_counter_j == 0 && !r.energy_valid);
    hb_record_free(&r);

    r = window("300", "backwards", 50, 0.3, NAN);
    CHECK_MSG(r.energy_flags & HB_ENERGY_COUNTER_BACKWARDS, "flags %#x", r.energy_flags);
    CHECK(r.energy_counter_j < 0 && !r.energy_valid);
    CHECK_STR(r.energy_source, "integral");
    hb_record_free(&r);

    r = window("300", "skew", 50, 0.3, NAN);
    CHECK_MSG(r.energy_flags & HB_ENERGY_RATIO_BOUNDS, "flags %#x", r.energy_flags);
    CHECK_NEAR(r.energy_ratio, 1.5, 0.02);
    CHECK_STR(r.energy_source, "counter");
    hb_record_free(&r);

    r = window("300", "slow", 20, 0.8, NAN); /* power reads take 250 ms at 20 Hz */
    CHECK_MSG(r.energy_flags & HB_ENERGY_SAMPLE_GAP, "flags %#x", r.energy_flags);
    CHECK(r.max_gap_s > 0.15);
    hb_record_free(&r);

    r = window("300", "ok", 50, 0.05, NAN); /* 0.05 s < 10 x 0.1 s */
    CHECK_MSG(r.energy_flags == HB_ENERGY_SHORT_WINDOW, "flags %#x", r.energy_flags);
    CHECK(!r.energy_valid && isfinite(r.energy_j));
    hb_record_free(&r);

    /* the counter fails at the window's end (read 1: open, 2: start, 3: end); sampler off */
    script(NULL, "300", "ok");
    setenv("HB_FAKE_NVML_FAIL_AFTER", "2", 1);
    hb_meter *m = open_pci("0000:17:00.0");
    if (m) {
        CHECK(run_window(m, 0, 0.05, NAN, &r) == HB_OK);
        CHECK_MSG(r.energy_flags == HB_ENERGY_READ_FAILED, "flags %#x", r.energy_flags);
        CHECK(isnan(r.energy_j) && isnan(r.energy_counter_j) && !r.energy_valid);
        hb_record_free(&r);
    }
    hb_meter_close(m);
    unsetenv("HB_FAKE_NVML_FAIL_AFTER");
}

int main(int argc, char **argv) {
    fake = getenv("HETBENCH_NVML_LIBRARY");
    fake_noenergy = argc > 1 ? argv[1] : NULL;
    if (!fake || !*fake || !fake_noenergy) HB_TEST_SKIP("HETBENCH_NVML_LIBRARY and argv[1] must name the fakes");
    static char fake_copy[4096];
    snprintf(fake_copy, sizeof fake_copy, "%s", fake);
    fake = fake_copy;
    test_missing();
    test_devices();
    test_windows();
    HB_TEST_END();
}
