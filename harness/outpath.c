/* outpath.c - checks of the results file's path and of its file system's room (outpath.h). */
#include "outpath.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

/* The folder of `path` ("." for a bare name) into buf. */
static const char *folder_of(const char *path, char *buf, size_t len) {
    const char *slash = strrchr(path, '/');
    if (!slash) snprintf(buf, len, ".");
    else if (slash == path) snprintf(buf, len, "/");
    else snprintf(buf, len, "%.*s", (int)(slash - path), path);
    return buf;
}

int64_t hb_out_free_bytes(const char *path) {
    char dir[PATH_MAX];
    struct statvfs v;
    int64_t free_b = -1;
    if (statvfs(folder_of(path, dir, sizeof dir), &v) == 0) free_b = (int64_t)v.f_bavail * (int64_t)v.f_frsize;
    const char *fake = getenv("HETBENCH_FREE_BYTES");
    if (fake && *fake) {
        char *end;
        long long n = strtoll(fake, &end, 10);
        if (!*end && n >= 0) {
            /* the results file and the writer's work file beside it (".NAME.partial") */
            struct stat st;
            int64_t used = stat(path, &st) == 0 ? (int64_t)st.st_size : 0;
            char work[PATH_MAX];
            const char *slash = strrchr(path, '/');
            snprintf(work, sizeof work, "%.*s.%s.partial", slash ? (int)(slash - path + 1) : 0, path, slash ? slash + 1 : path);
            if (stat(work, &st) == 0) used += (int64_t)st.st_size;
            int64_t room = (int64_t)n - used;
            if (room < 0) room = 0;
            if (free_b < 0 || room < free_b) free_b = room;
        }
    }
    return free_b;
}

static const char *size_text(char *b, size_t n, int64_t v) {
    if (v >= (1 << 30)) snprintf(b, n, "%.1f GiB", (double)v / (1 << 30));
    else if (v >= (1 << 20)) snprintf(b, n, "%.1f MiB", (double)v / (1 << 20));
    else snprintf(b, n, "%.0f KiB", (double)v / 1024);
    return b;
}

hb_status hb_out_check(const char *path, const char *flag, int force, int resume, hb_err *err) {
    char dir[PATH_MAX], a[32], b[32];
    struct stat st;
    int exists = stat(path, &st) == 0;
    if (exists && S_ISDIR(st.st_mode))
        return hb_errf(err, HB_ERR_INPUT, "%s %s: is a folder (name a file in it, e.g. %s/run.h5)", flag, path, path);
    folder_of(path, dir, sizeof dir);
    struct stat ds;
    if (stat(dir, &ds) != 0)
        return hb_errf(err, HB_ERR_INPUT, "%s %s: folder '%s' does not exist", flag, path, dir);
    if (!S_ISDIR(ds.st_mode)) return hb_errf(err, HB_ERR_INPUT, "%s %s: '%s' is not a folder", flag, path, dir);
    if (resume) {
        if (!exists) return hb_errf(err, HB_ERR_INPUT, "%s %s: no such file", flag, path);
        int fd = open(path, O_RDWR);
        if (fd < 0) return hb_errf(err, HB_ERR_INPUT, "%s %s: cannot open for writing: %s", flag, path, strerror(errno));
        close(fd);
    } else if (exists && !force) {
        return hb_errf(err, HB_ERR_INPUT, "%s: file exists (use --force to overwrite)", path);
    }
    /* a file can be created next to it (the writer works on a temporary file in that folder) */
    char probe[PATH_MAX];
    if (snprintf(probe, sizeof probe, "%s/.hetbench-probe-XXXXXX", dir) >= (int)sizeof probe)
        return hb_errf(err, HB_ERR_INPUT, "%s %s: path too long", flag, path);
    int fd = mkstemp(probe);
    if (fd < 0)
        return hb_errf(err, HB_ERR_INPUT, "%s %s: cannot create files in '%s': %s", flag, path, dir, strerror(errno));
    close(fd);
    unlink(probe);
    int64_t free_b = hb_out_free_bytes(path);
    if (free_b >= 0 && free_b < HB_OUT_MIN_FREE_BYTES)
        return hb_errf(err, HB_ERR_INPUT, "%s %s: only %s free on the file system of '%s' (at least %s needed)", flag,
                       path, size_text(a, sizeof a, free_b), dir, size_text(b, sizeof b, HB_OUT_MIN_FREE_BYTES));
    return HB_OK;
}

hb_status hb_out_room(const char *path, int64_t need_bytes, hb_err *err) {
    char a[32], b[32];
    int64_t free_b = hb_out_free_bytes(path);
    if (free_b >= 0 && free_b < need_bytes + HB_OUT_MIN_FREE_BYTES)
        return hb_errf(err, HB_ERR_IO, "disk full: %s free for %s, this case needs about %s plus a %s reserve", 
                       size_text(a, sizeof a, free_b), path, size_text(b, sizeof b, need_bytes), "1 MiB");
    return HB_OK;
}
