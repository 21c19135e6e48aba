/* fake_backend_module.c - a stand-in for libhetbench-cuda.so, to test the registry's module
 * loading without a GPU (tests/gpu.cmake builds it three ways):
 *   fakemod-ok/        API version right: two "devices" with PCI bus ids 0000:17:00.0, 0000:65:00.0
 *   fakemod-badver/    FAKE_API_VERSION=999: must be refused
 *   fakemod-novendor/  FAKE_NEEDS_VENDOR: links a library that is not found at run time, like a
 *                      CUDA module on a node without the CUDA libraries
 * Like a real module it uses nothing from hetbench but the headers. */
#include <stdio.h>
#include <stdlib.h>

#include "backends/backend.h"

#ifndef FAKE_API_VERSION
#define FAKE_API_VERSION HB_BACKEND_API_VERSION
#endif

#ifdef FAKE_NEEDS_VENDOR
void hb_fake_vendor_init(void); /* libhb_fake_vendor.so */
#endif

static void fake_destroy(hb_backend *be) { free(be); }

static const hb_backend_ops fake_ops = {.destroy = fake_destroy};

static int fake_count(hb_err *err) {
    (void)err;
    return 2;
}

static hb_status fake_open(int index, hb_backend **out, hb_err *err) {
    *out = NULL;
    if (index < 0 || index > 1) {
        if (err) snprintf(err->msg, sizeof err->msg, "fake: no device %d", index);
        return HB_ERR_INPUT;
    }
    hb_backend *be = calloc(1, sizeof *be);
    if (!be) return HB_ERR_NOMEM;
    be->api_version = FAKE_API_VERSION;
    be->ops = &fake_ops;
    snprintf(be->info.backend, sizeof be->info.backend, "cuda");
    snprintf(be->info.name, sizeof be->info.name, "Fake GPU %d", index);
    snprintf(be->info.pci_bus_id, sizeof be->info.pci_bus_id, "%s", index ? "0000:65:00.0" : "0000:17:00.0");
    *out = be;
    return HB_OK;
}

__attribute__((visibility("default"))) const hb_backend_desc *hb_cuda_module(int *api_version) {
#ifdef FAKE_NEEDS_VENDOR
    hb_fake_vendor_init();
#endif
    static const hb_backend_desc desc = {"cuda", fake_open, fake_count};
    *api_version = FAKE_API_VERSION;
    return &desc;
}
