/* powercap_tree.h - builds fake powercap (RAPL) trees for the meter tests and for
 * fake_powercap: <root>/intel-rapl:N/{name, energy_uj, max_energy_range_uj,
 * constraint_0_power_limit_uw} and sub-zones. Files are replaced atomically (write a temporary
 * file, rename it over), so a reader never sees half a number; the RAPL meter opens the file
 * for every read, as it does on sysfs. Test code only. */
#ifndef HB_POWERCAP_TREE_H
#define HB_POWERCAP_TREE_H

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Writes text to dir/file atomically; 0 on success. */
static int pc_write(const char *dir, const char *file, const char *text) {
    char tmp[4096], path[4096];
    snprintf(tmp, sizeof tmp, "%s/.%s.tmp", dir, file);
    snprintf(path, sizeof path, "%s/%s", dir, file);
    FILE *f = fopen(tmp, "w");
    if (!f) return -1;
    int ok = fputs(text, f) >= 0;
    ok &= fclose(f) == 0;
    return ok && rename(tmp, path) == 0 ? 0 : -1;
}

static int pc_write_u64(const char *dir, const char *file, uint64_t v) {
    char buf[32];
    snprintf(buf, sizeof buf, "%llu\n", (unsigned long long)v);
    return pc_write(dir, file, buf);
}

/* Creates parent/zone with its name, energy and range (and a power limit when limit_uw > 0);
 * the zone's directory goes to dir (PATH_MAX-ish buffer). 0 on success. */
static int pc_zone(const char *parent, const char *zone, const char *name, uint64_t energy_uj,
                   uint64_t max_uj, uint64_t limit_uw, char *dir, size_t len) {
    snprintf(dir, len, "%s/%s", parent, zone);
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) return -1;
    char nm[64];
    snprintf(nm, sizeof nm, "%s\n", name);
    if (pc_write(dir, "name", nm) != 0) return -1;
    if (pc_write_u64(dir, "energy_uj", energy_uj) != 0) return -1;
    if (pc_write_u64(dir, "max_energy_range_uj", max_uj) != 0) return -1;
    if (limit_uw && pc_write_u64(dir, "constraint_0_power_limit_uw", limit_uw) != 0) return -1;
    return 0;
}

#endif
