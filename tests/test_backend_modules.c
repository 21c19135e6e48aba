/* test_backend_modules.c - the registry's loadable-module path (HB_BACKEND_DL), without a GPU:
 * fake modules (fake_backend_module.c) stand in for libhetbench-cuda.so. Checks the search order
 * (HETBENCH_BACKEND_PATH first, a directory or the module file itself), the API-version check,
 * the reasons a backend is unavailable (runtime library missing, module not built / not found)
 * and opening a device by PCI bus id. argv[1]: the directory holding fakemod-*. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/backend.h"
#include "backends/registry.h"
#include "hbtest.h"

static char dir[1024];

static void use_path(const char *sub) {
    char p[2048];
    snprintf(p, sizeof p, "%s%s%s", sub[0] == '/' ? "" : dir, sub[0] == '/' ? "" : "/", sub);
    setenv("HETBENCH_BACKEND_PATH", p, 1);
}

static void test_ok_module(void) {
    use_path("fakemod-ok");
    const hb_backend_desc *d = hb_backend_find("cuda");
    hb_err err = {{0}};
    CHECK_MSG(d->count(&err) == 2, "%s", err.msg);

    const hb_backend_desc *md = NULL;
    char path[1024];
    CHECK(hb_backend_module_load("cuda", &md, path, sizeof path, &err) == HB_OK);
    CHECK_MSG(strstr(path, "fakemod-ok/libhetbench-cuda.so") != NULL, "%s", path);
    CHECK(md && strcmp(md->name, "cuda") == 0);

    hb_backend *be = NULL;
    CHECK(hb_backend_open("cuda", 1, &be, &err) == HB_OK);
    CHECK(be && strcmp(be->info.pci_bus_id, "0000:65:00.0") == 0);
    hb_backend_close(be);
    be = NULL;
    CHECK(hb_backend_open("cuda", 2, &be, &err) == HB_ERR_INPUT && be == NULL);

    /* by PCI bus id: the hint first, any spelling of the id */
    CHECK(hb_backend_open_pci("cuda", "0000:65:00.0", 0, &be, &err) == HB_OK);
    CHECK(be && strcmp(be->info.name, "Fake GPU 1") == 0);
    hb_backend_close(be);
    be = NULL;
    CHECK(hb_backend_open_pci("cuda", "17:00.0", 1, &be, &err) == HB_OK);
    CHECK(be && strcmp(be->info.name, "Fake GPU 0") == 0);
    hb_backend_close(be);
    be = NULL;
    CHECK(hb_backend_open_pci("cuda", "00000000:65:00.0", -1, &be, &err) == HB_OK);
    hb_backend_close(be);
    be = NULL;
    err.msg[0] = '\0';
    CHECK(hb_backend_open_pci("cuda", "0000:99:00.0", 0, &be, &err) == HB_ERR_INPUT && be == NULL);
    CHECK_MSG(strstr(err.msg, "0000:99:00.0") && strstr(err.msg, "0=0000:17:00.0") &&
                  strstr(err.msg, "1=0000:65:00.0"), "%s", err.msg);

    /* the module file itself in the path, after a directory that does not exist */
    char p[2048];
    snprintf(p, sizeof p, "/nonexistent-hetbench:%s/fakemod-ok/libhetbench-cuda.so", dir);
    setenv("HETBENCH_BACKEND_PATH", p, 1);
    CHECK(d->count(&err) == 2);
}

static void test_bad_version(void) {
    use_path("fakemod-badver");
    hb_err err = {{0}};
    CHECK(hb_backend_find("cuda")->count(&err) == HB_ERR_BACKEND);
    CHECK_MSG(strstr(err.msg, "API version 999") && strstr(err.msg, "rebuild"), "%s", err.msg);
    hb_backend *be = NULL;
    CHECK(hb_backend_open("cuda", 0, &be, &err) == HB_ERR_BACKEND && be == NULL);
}

static void test_runtime_missing(void) {
    use_path("fakemod-novendor");
    hb_err err = {{0}};
    CHECK(hb_backend_find("cuda")->count(&err) == HB_ERR_UNSUPPORTED);
    CHECK_MSG(strncmp(err.msg, "runtime library missing: ", 25) == 0 && strstr(err.msg, "libhb_fake_vendor"),
              "%s", err.msg);
}

static void test_not_built(void) {
    /* a path with no module: an unbuilt backend says so and lists where it looked */
    use_path("/nonexistent-hetbench");
    hb_err err = {{0}};
#ifndef HB_HAVE_HIP
    CHECK(hb_backend_find("hip")->count(&err) == HB_ERR_UNSUPPORTED);
    CHECK_MSG(strstr(err.msg, "module not built (configure with HB_HIP=ON)") &&
                  strstr(err.msg, "/nonexistent-hetbench/libhetbench-hip.so"), "%s", err.msg);
#endif
#ifndef HB_HAVE_CUDA
    CHECK(hb_backend_find("cuda")->count(&err) == HB_ERR_UNSUPPORTED);
    CHECK_MSG(strstr(err.msg, "module not built (configure with HB_CUDA=ON)"), "%s", err.msg);
#else
    /* built: found in the build tree (or installed), whatever the device situation */
    const hb_backend_desc *md = NULL;
    char path[1024];
    CHECK_MSG(hb_backend_module_load("cuda", &md, path, sizeof path, &err) == HB_OK, "%s", err.msg);
    CHECK_MSG(strstr(path, "libhetbench-cuda.so") != NULL, "%s", path);
    int n = hb_backend_find("cuda")->count(&err);
    CHECK_MSG(n > 0 || strncmp(err.msg, "no device", 9) == 0, "%d %s", n, err.msg);
#endif
    (void)err;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: test_backend_modules DIR\n");
        return 2;
    }
    snprintf(dir, sizeof dir, "%s", argv[1]);
    test_ok_module();
    test_bad_version();
    test_runtime_missing();
    test_not_built();
    unsetenv("HETBENCH_BACKEND_PATH");
    HB_TEST_END();
}
