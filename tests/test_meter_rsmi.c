/* test_meter_rsmi.c - the ROCm SMI meter (backends/hip/meter_rsmi.c) against the scripted fake
 * ROCm SMI (tests/fake_rsmi.c): librocm_smi64.so.1 shaped like ROCm 6 (path in
 * HETBENCH_RSMI_LIBRARY) and argv[1], shaped like ROCm 5.2 (no rsmi_dev_power_get, no
 * rsmi_dev_current_socket_power_get, the 5.x frequency struct):
 * - missing library, failing rsmi_init (its stderr noise muted): a reason, no crash;
 * - PCI matching through the BDFID encoding; energy = count x resolution (uJ), within 1% of the
 *   scripted P x t, also through a real window (counter and integral);
 * - the power getter by generation: rsmi_dev_power_get (ROCm 6), current socket power (MI300
 *   style), rsmi_dev_power_ave_get (ROCm 5.2);
 * - the MI250 odd die (0 W): power and energy read on the partner die, said in the reason and
 *   the scope; without a partner reading more, power is left out with a reason;
 * - the counter checked against power x time at open: a skewed or stuck counter is turned off
 *   with the reason (energy then comes from the integral);
 * - clocks decoded from both frequency-struct layouts, temperature, power cap. */
#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#include "harness/energy.h"
#include "meter_window.h"

static char fake[4096], fake52[4096];

static void script(const char *lib, const char *devices, const char *power, const char *mode) {
    setenv("HETBENCH_RSMI_LIBRARY", lib, 1);
    setenv("HB_FAKE_RSMI_DEVICES", devices ? devices : "0000:c1:00.0", 1);
    setenv("HB_FAKE_RSMI_POWER", power ? power : "500", 1);
    setenv("HB_FAKE_RSMI_MODE", mode ? mode : "ok", 1);
    unsetenv("HB_FAKE_RSMI_INIT_RC");
    unsetenv("HB_FAKE_RSMI_NAME");
    unsetenv("HB_FAKE_RSMI_RES");
}

static hb_meter *open_pci(const char *pci, hb_err *err) {
    hb_meter *m = NULL;
    if (hb_meter_open_rsmi(pci, -1, &m, err) != HB_OK) fprintf(stderr, "open %s: %s\n", pci, err->msg);
    return m;
}

static void test_missing(void) {
    hb_err err = {{0}};
    hb_meter *m = NULL;
    script("/nonexistent/librocm_smi64.so.1", NULL, NULL, NULL);
    CHECK(hb_meter_rsmi_count(&err) == HB_ERR_UNSUPPORTED);
    CHECK_MSG(strstr(err.msg, "cannot load /nonexistent/librocm_smi64.so.1") != NULL, "%s", err.msg);
    hb_device_info gpu = {.backend = "hip", .pci_bus_id = "0000:c1:00.0"};
    CHECK(hb_meter_open_for_device(&gpu, &m, &err) == HB_OK && m);
    if (m) {
        CHECK_STR(m->name, "none");
        CHECK(strstr(m->reason, "HETBENCH_RSMI_LIBRARY") != NULL);
        double j = 0;
        CHECK(hb_meter_energy_j(m, &j) == HB_ERR_UNSUPPORTED);
    }
    hb_meter_close(m);

    /* rsmi_init fails (and prints): the reason, and nothing on our stderr */
    script(fake, NULL, NULL, NULL);
    setenv("HB_FAKE_RSMI_INIT_RC", "8", 1);
    char log[] = "/tmp/hb-rsmi-stderr-XXXXXX";
    int fd = mkstemp(log);
    int saved = dup(2);
    fflush(stderr);
    dup2(fd, 2);
    hb_status s = hb_meter_open_rsmi("0000:c1:00.0", -1, &m, &err);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    off_t noise = lseek(fd, 0, SEEK_END);
    close(fd);
    unlink(log);
    CHECK(s == HB_ERR_UNSUPPORTED && !m);
    CHECK_MSG(strstr(err.msg, "rsmi_init failed") != NULL, "%s", err.msg);
    CHECK_MSG(noise == 0, "rsmi_init's %lld bytes of noise reached stderr", (long long)noise);
}

static void test_rocm6(void) {
    hb_err err = {{0}};
    script(fake, "0000:c1:00.0,0000:c9:00.0", "500,420", "ok,ok");
    CHECK_MSG(hb_meter_rsmi_count(&err) == 2, "%s", err.msg);
    hb_meter *m = open_pci("0000:C9:00.0", &err);
    CHECK(m != NULL);
    if (m) {
        const hb_meter_info *in = &m->info;
        CHECK_STR(in->pci_bus_id, "0000:c9:00.0");
        CHECK_STR(in->api, "ROCm SMI");
        CHECK_STR(in->version, "6.1.2");
        CHECK_STR(in->driver, "6.7.0-fake");
        CHECK_STR(in->device, "AMD Instinct MI250X");
        CHECK(strstr(in->power_fn, "rsmi_dev_power_get") && strstr(in->power_fn, "average"));
        CHECK(isnan(in->power_window_s));
        CHECK(strstr(in->energy_fn, "rsmi_dev_energy_count_get") != NULL);
        CHECK_NEAR(in->counter_resolution_j, 15.259e-6, 1e-12);
        CHECK_NEAR(in->power_limit_w, 560, 1e-9);
        CHECK_STR(in->scope, "GPU socket (package)");
        CHECK_STR(m->reason, "");
        /* count x resolution against the scripted 420 W */
        double e0 = 0, e1 = 0, t0 = hb_now_s();
        CHECK(hb_meter_energy_j(m, &e0) == HB_OK);
        struct timespec d = {0, 300000000};
        nanosleep(&d, NULL);
        CHECK(hb_meter_energy_j(m, &e1) == HB_OK);
        double t1 = hb_now_s();
        CHECK_REL(e1 - e0, 420 * (t1 - t0), 0.01);
        hb_meter_state st;
        hb_meter_read_state(m, &st);
        CHECK_NEAR(st.power_avg_w, 420, 1e-3);
        CHECK(isnan(st.power_instant_w));
        CHECK_NEAR(st.sm_clock_mhz, 1700, 1e-9);   /* 6.x struct layout */
        CHECK_NEAR(st.mem_clock_mhz, 1600, 1e-9);
        CHECK_NEAR(st.temperature_c, 55, 1e-9);
        CHECK_NEAR(st.power_limit_w, 560, 1e-9);
        /* a real window: counter and integral within 1% of the script */
        hb_record r;
        CHECK(run_window(m, 50, 0.4, NAN, &r) == HB_OK);
        CHECK_STR(r.energy_source, "counter");
        CHECK_STR(r.meter, "rocm-smi");
        CHECK_REL(r.energy_counter_j, 420 * r.window_s, 0.01);
        CHECK_REL(r.energy_integral_j, 420 * r.window_s, 0.01);
        CHECK_MSG(r.energy_flags == 0 && r.energy_valid, "flags %#x", r.energy_flags);
        CHECK_NEAR(r.sm_clock_mhz_start, 1700, 1e-9);
        hb_record_free(&r);
    }
    hb_meter_close(m);
    m = NULL;
    CHECK(hb_meter_open_rsmi("0000:d1:00.0", -1, &m, &err) == HB_ERR_UNSUPPORTED && !m);
    CHECK(strstr(err.msg, "no device with PCI bus id 0000:d1:00.0") != NULL);

    /* MI300 style: current socket power only */
    script(fake, NULL, "750", "socket");
    m = open_pci("0000:c1:00.0", &err);
    if (m) {
        CHECK(strstr(m->info.power_fn, "current socket power") != NULL);
        CHECK(m->info.power_window_s == 0);
        double w = 0;
        CHECK(hb_meter_power_w(m, &w) == HB_OK);
        CHECK_NEAR(w, 750, 1e-3);
        hb_meter_state st;
        hb_meter_read_state(m, &st);
        CHECK_NEAR(st.power_instant_w, 750, 1e-3);
    }
    hb_meter_close(m);
}

static void test_rocm52(void) {
    hb_err err = {{0}};
    script(fake52, NULL, "480", "ok");
    hb_meter *m = open_pci("0000:c1:00.0", &err);
    CHECK(m != NULL);
    if (m) {
        CHECK(strstr(m->info.power_fn, "rsmi_dev_power_ave_get") != NULL);
        CHECK_STR(m->info.version, "5.2.3");
        hb_meter_state st;
        hb_meter_read_state(m, &st);
        CHECK_NEAR(st.sm_clock_mhz, 1700, 1e-9); /* 5.x struct layout */
        CHECK_NEAR(st.mem_clock_mhz, 1600, 1e-9);
        CHECK_NEAR(st.power_w, 480, 1e-3);
    }
    hb_meter_close(m);
    /* MI300-style device on a library with neither newer getter: no power, counter only */
    script(fake52, NULL, "480", "socket");
    m = open_pci("0000:c1:00.0", &err);
    CHECK(m && m->has_counter && !m->has_power);
    if (m) CHECK_MSG(strstr(m->reason, "no power getter") != NULL, "%s", m->reason);
    hb_meter_close(m);
}

static void test_odd_die_and_sanity(void) {
    hb_err err = {{0}};
    /* dies 0/1 of one MI250X: die 1 reads 0 W, its partner the package */
    script(fake, "0000:c1:00.0,0000:c6:00.0", "520,0", "ok,zero");
    hb_meter *m = open_pci("0000:c6:00.0", &err);
    CHECK(m != NULL);
    if (m) {
        CHECK(m->has_power && m->has_counter);
        CHECK_MSG(strstr(m->reason, "MI250 odd die") && strstr(m->reason, "partner die 0 (0000:c1:00.0)"),
                  "%s", m->reason);
        CHECK(strstr(m->info.scope, "both GCDs") != NULL);
        CHECK_STR(m->info.pci_bus_id, "0000:c6:00.0");
        double w = 0;
        CHECK(hb_meter_power_w(m, &w) == HB_OK);
        CHECK_NEAR(w, 520, 1e-3);
    }
    hb_meter_close(m);
    /* both dies read 0 W: nothing to take from the partner, no power and no counter */
    script(fake, "0000:c1:00.0,0000:c6:00.0", "0,0", "zero,zero");
    CHECK(hb_meter_open_rsmi("0000:c6:00.0", -1, &m, &err) == HB_ERR_UNSUPPORTED && !m);
    CHECK_MSG(strstr(err.msg, "power reads 0 W") != NULL, "%s", err.msg);

    /* the counter disagrees with power x time at open: off, with the reason */
    script(fake, NULL, "500", "skew");
    m = open_pci("0000:c1:00.0", &err);
    CHECK(m && !m->has_counter && m->has_power);
    if (m) {
        CHECK_MSG(strstr(m->reason, "disagrees with power x time") && strstr(m->reason, "counter disabled"),
                  "%s", m->reason);
        double j = 0;
        CHECK(hb_meter_energy_j(m, &j) == HB_ERR_UNSUPPORTED);
        hb_record r;
        CHECK(run_window(m, 50, 0.3, NAN, &r) == HB_OK);
        CHECK_STR(r.energy_source, "integral");
        CHECK(isnan(r.energy_counter_j));
        CHECK_REL(r.energy_j, 500 * r.window_s, 0.01);
        hb_record_free(&r);
    }
    hb_meter_close(m);
    script(fake, NULL, "500", "stuck");
    m = open_pci("0000:c1:00.0", &err);
    CHECK(m && !m->has_counter);
    if (m) CHECK_MSG(strstr(m->reason, "stuck") != NULL, "%s", m->reason);
    hb_meter_close(m);
    /* no counter at all */
    script(fake, NULL, "500", "nocounter");
    m = open_pci("0000:c1:00.0", &err);
    CHECK(m && !m->has_counter && m->has_power && strstr(m->reason, "no energy counter"));
    hb_meter_close(m);
}

int main(int argc, char **argv) {
    const char *f = getenv("HETBENCH_RSMI_LIBRARY");
    if (!f || !*f || argc < 2) HB_TEST_SKIP("HETBENCH_RSMI_LIBRARY and argv[1] must name the fakes");
    snprintf(fake, sizeof fake, "%s", f);
    snprintf(fake52, sizeof fake52, "%s", argv[1]);
    test_missing();
    test_rocm6();
    test_rocm52();
    test_odd_die_and_sanity();
    HB_TEST_END();
}
