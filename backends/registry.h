/* registry.h - what the registry offers beyond backend.h: opening a device by its PCI bus id,
 * and the loadable-module machinery (HB_BACKEND_DL) made visible for `hetbench info` and tests.
 *
 * Module search (HB_BACKEND_DL=ON), first match wins, for libhetbench-<name>.so:
 *   1. HETBENCH_BACKEND_PATH: a ':'-separated list of directories (or of module files)
 *   2. <directory of the running binary>/<HB_MODULE_RELDIR>: the install layout,
 *      bin/hetbench -> lib/hetbench/ (and build/tests/test_x -> build/lib/hetbench/)
 *   3. HB_MODULE_BUILD_DIR: the build tree's lib/hetbench, so an uninstalled build works
 * A module exports hb_<name>_module(int *api_version) returning its hb_backend_desc; the
 * registry refuses a module whose API version differs from HB_BACKEND_API_VERSION. A loaded
 * module is never unloaded (a GPU runtime does not survive dlclose). */
#ifndef HB_REGISTRY_H
#define HB_REGISTRY_H

#include <stddef.h>

#include "backend.h"

/* Opens the device of backend `name` whose PCI bus id is pci_bus_id (any spelling hb_pci_same
 * accepts), trying device index_hint first (the device order usually is the PCI order); the
 * other devices opened on the way are closed again. HB_ERR_INPUT when no device matches, with
 * the devices' ids in err. */
hb_status hb_backend_open_pci(const char *name, const char *pci_bus_id, int index_hint,
                              hb_backend **out, hb_err *err);

/* Loads the module of GPU backend `name` ("cuda", "hip") and returns its descriptor; the file
 * loaded goes to path (may be NULL). HB_ERR_UNSUPPORTED with the reason in err: module not built
 * and not found, module not found (paths tried), runtime library missing (dlerror). Without
 * HB_BACKEND_DL: HB_ERR_UNSUPPORTED ("built without loadable modules"). */
hb_status hb_backend_module_load(const char *name, const hb_backend_desc **desc, char *path,
                                 size_t path_len, hb_err *err);

#endif
