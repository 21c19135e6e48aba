/* outpath.h - the results file's path, checked before anything runs and its room checked again
 * before each case is written, so that a wrong --out costs one line instead of a sweep and a
 * full disk never leaves a half-written case in the file.
 *
 * HETBENCH_FREE_BYTES=N (a testing aid, README "Environment"): the file system is taken to have
 * room for N bytes of results file in all (free space = min(real, N - the file's size)). */
#ifndef HB_OUTPATH_H
#define HB_OUTPATH_H

#include <stdint.h>

#include "status.h"

/* Below this much free space a run does not start (and a case is not written). */
#define HB_OUT_MIN_FREE_BYTES (1 << 20)

/* HB_ERR_INPUT with one line naming `flag` ("--out" or "--resume") and the path when: the path is
 * a directory; its folder does not exist, is not a folder or does not let a file be created
 * there; it exists and neither force nor resume is given; resume and it does not exist or cannot
 * be opened for writing; its file system has less than HB_OUT_MIN_FREE_BYTES free. */
hb_status hb_out_check(const char *path, const char *flag, int force, int resume, hb_err *err);

/* Free bytes for the results file at `path` (statvfs of its folder, capped by
 * HETBENCH_FREE_BYTES); -1 when unknown. */
int64_t hb_out_free_bytes(const char *path);

/* HB_ERR_IO "disk full: ..." when fewer than need_bytes + HB_OUT_MIN_FREE_BYTES are free. */
hb_status hb_out_room(const char *path, int64_t need_bytes, hb_err *err);

#endif
