/* output.h - /summary rows and rank 0's table / JSON lines. */
#ifndef HB_OUTPUT_H
#define HB_OUTPUT_H

#include <stdio.h>

#include "../results/results.h"

/* Builds the /summary row of one record from its case, cost and device row. */
void hb_summary_fill(const hb_case *c, const hb_cost *cost, const hb_record *rec,
                     const hb_device_row *dev, hb_summary_row *row);
/* Device row of an open backend (ceilings unset: NaN). */
void hb_device_row_fill(const hb_backend *be, int rank, hb_device_row *row);

void hb_print_header(FILE *f, const hb_device_row *rank0, int n_ranks);
void hb_print_row(FILE *f, const char *label, const hb_summary_row *s);
void hb_print_json(FILE *f, const char *label, const hb_summary_row *s, const hb_record *r);

#endif
