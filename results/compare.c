/* compare.c - `hetbench compare BASE.h5 NEW.h5`: the regression gate.
 *
 * Rows are matched on (case signature, device model, backend, rank). For each match: the ratio
 * new/base of the headline rate with the interval [new_lo / base_hi, new_hi / base_lo] from the
 * two bootstrap CIs, and the ratio of J per total token where both have valid energy. A match
 * is a regression when NEW is slower than BASE by more than PCT percent AND outside the noise:
 * with repetitions on both sides (--repeat), every window of NEW slower than every window of
 * BASE (new rep_rate_max < base rep_rate_min); otherwise the two 95% CIs do not overlap
 * (new_hi < base_lo). Without a CI on either side (fewer than 2 iterations) the ratio alone
 * decides. A match whose timing is invalid on either side (timing_valid 0: interference,
 * contention, ...) is never judged: it is listed as such and counted apart (its own exit
 * code). A case that ran in BASE but failed in NEW fails the gate too. */
#include "report.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int same_key(const hb_report *ra, const hb_rentry *a, const hb_report *rb, const hb_rentry *b) {
    const hb_rgroup *ga = &ra->groups[a->group], *gb = &rb->groups[b->group];
    return hb_sig_cmp(&ga->sig, &gb->sig) == 0 && !strcmp(ga->device, gb->device) &&
           !strcmp(ga->backend, gb->backend) && a->row->rank == b->row->rank;
}

static void fmt_ci(char *buf, size_t len, double v, double lo, double hi) {
    if (!isfinite(v)) snprintf(buf, len, "n/a");
    else if (isfinite(lo) && isfinite(hi)) snprintf(buf, len, "%.4f [%.4f, %.4f]", v, lo, hi);
    else snprintf(buf, len, "%.4f [no CI]", v);
}

hb_status hb_compare_files(const char *base, const char *new_path, double max_regression_pct,
                           FILE *out, hb_compare_summary *sum, hb_err *err) {
    memset(sum, 0, sizeof *sum);
    hb_report *rb = NULL, *rn = NULL;
    const char *pb[1] = {base}, *pn[1] = {new_path};
    HB_TRY(hb_report_load(pb, 1, &rb, err));
    hb_status st = hb_report_load(pn, 1, &rn, err);
    if (st != HB_OK) {
        hb_report_free(rb);
        return st;
    }
    char *seen = calloc((size_t)rn->n_entries + 1, 1);
    if (!seen) {
        hb_report_free(rb);
        hb_report_free(rn);
        return hb_errf(err, HB_ERR_NOMEM, "compare: out of memory");
    }
    double limit = 1.0 - max_regression_pct / 100.0;
    fprintf(out, "# hetbench compare: NEW / BASE per (case, device, rank); regression: slower by more than %g%% "
                 "beyond the noise (the repetitions' ranges where both sides have --repeat, else the 95%% CIs, do "
                 "not overlap); rows with invalid timing are not judged\n", max_regression_pct);
    fprintf(out, "# base: %s (hetbench %s)\n# new:  %s (hetbench %s)\n", base, rb->files[0].r->meta.version,
            new_path, rn->files[0].r->meta.version);
    /* workload definitions that changed between versions (README "Workloads") */
    const char *vb = rb->files[0].r->meta.version, *vn = rn->files[0].r->meta.version;
    if ((strncmp(vb, "0.1.", 4) == 0) != (strncmp(vn, "0.1.", 4) == 0))
        fprintf(out, "# note: hetbench 0.2.0 changed two workloads: gemm stores A in the case's dtype "
                     "(0.1.x cast an f32 A every iteration) and bf16/f16/fp8 models keep a bf16/f16 KV "
                     "cache (0.1.x: f32); those rates are not comparable across the two versions\n");
    fprintf(out, "%-44s %-28s %4s %12s %12s %-9s %-30s %-10s %s\n", "# case", "device (backend)", "rank",
            "base rate", "new rate", "unit", "ratio [95% CI]", "J/tok", "verdict");
    for (int i = 0; i < rb->n_entries; i++) {
        const hb_rentry *a = &rb->entries[i];
        const hb_rentry *b = NULL;
        for (int j = 0; j < rn->n_entries && !b; j++)
            if (!seen[j] && same_key(rb, a, rn, &rn->entries[j])) {
                b = &rn->entries[j];
                seen[j] = 1;
            }
        const hb_rgroup *g = &rb->groups[a->group];
        char dev[64];
        snprintf(dev, sizeof dev, "%.40s (%s)", g->device, g->backend);
        if (!b) {
            sum->n_only_base++;
            fprintf(out, "%-44.44s %-28.28s %4d %12s %12s %-9s %-30s %-10s %s\n", g->label, dev, a->row->rank, "", "",
                    "", "", "", "only in base");
            continue;
        }
        sum->n_matched++;
        const hb_summary_row *x = a->row, *y = b->row;
        const char *verdict;
        char ratio[64] = "", jr[32] = "n/a", why[200], fb[96];
        if (strcmp(x->status, "ok") != 0) {
            verdict = "base not ok (not compared)";
        } else if (strcmp(y->status, "ok") != 0) {
            verdict = "FAILED in new";
            sum->n_failed_new++;
        } else {
            double r = y->rate / x->rate;
            double lo = y->rate_ci_lo / x->rate_ci_hi, hi = y->rate_ci_hi / x->rate_ci_lo;
            int have_ci = isfinite(x->rate_ci_lo) && isfinite(x->rate_ci_hi) && isfinite(y->rate_ci_lo) &&
                          isfinite(y->rate_ci_hi);
            int have_reps = x->n_reps > 1 && y->n_reps > 1 && isfinite(x->rep_rate_min) && isfinite(x->rep_rate_max) &&
                            isfinite(y->rep_rate_min) && isfinite(y->rep_rate_max);
            int slower_out = have_reps ? y->rep_rate_max < x->rep_rate_min : have_ci ? y->rate_ci_hi < x->rate_ci_lo : r < 1.0;
            int faster_out = have_reps ? y->rep_rate_min > x->rep_rate_max : have_ci ? y->rate_ci_lo > x->rate_ci_hi : r > 1.0;
            fmt_ci(ratio, sizeof ratio, r, have_ci ? lo : NAN, have_ci ? hi : NAN);
            if (x->timing_valid == 0 || y->timing_valid == 0) {
                char fn[96] = "";
                hb_timing_flag_names(x->timing_flags & HB_TIMING_INVALID, fb, (int)sizeof fb);
                hb_timing_flag_names(y->timing_flags & HB_TIMING_INVALID, fn, (int)sizeof fn);
                if (x->timing_valid == 0 && y->timing_valid == 0)
                    snprintf(why, sizeof why, "NOT JUDGED: invalid timing (base %s; new %s)", fb, fn);
                else snprintf(why, sizeof why, "NOT JUDGED: invalid timing (%s %s)", x->timing_valid == 0 ? "base" : "new",
                              x->timing_valid == 0 ? fb : fn);
                verdict = why;
                sum->n_invalid_timing++;
            } else if (!isfinite(r)) {
                verdict = "no rate (not compared)";
            } else if (r < limit && slower_out) {
                verdict = "REGRESSION";
                sum->n_regressions++;
            } else if (r < 1.0 && slower_out) {
                verdict = "slower, within the limit";
                sum->n_slower_noise++;
            } else if (r < 1.0) {
                verdict = "slower, within noise";
                sum->n_slower_noise++;
            } else if (faster_out) {
                verdict = "faster";
                sum->n_faster++;
                if (r > 1.0 + max_regression_pct / 100.0) sum->n_improvements++;
            } else {
                verdict = "same (within noise)";
            }
            if (x->energy_valid && y->energy_valid && isfinite(x->j_per_token_total) && isfinite(y->j_per_token_total))
                snprintf(jr, sizeof jr, "%.4f", y->j_per_token_total / x->j_per_token_total);
        }
        fprintf(out, "%-44.44s %-28.28s %4d %12.5g %12.5g %-9s %-30s %-10s %s\n", g->label, dev, x->rank, x->rate,
                y->rate, x->rate_unit, ratio, jr, verdict);
    }
    for (int j = 0; j < rn->n_entries; j++) {
        if (seen[j]) continue;
        const hb_rentry *b = &rn->entries[j];
        const hb_rgroup *g = &rn->groups[b->group];
        char dev[64];
        snprintf(dev, sizeof dev, "%.40s (%s)", g->device, g->backend);
        sum->n_only_new++;
        fprintf(out, "%-44.44s %-28.28s %4d %12s %12s %-9s %-30s %-10s %s\n", g->label, dev, b->row->rank, "", "", "",
                "", "", "only in new");
    }
    free(seen);
    hb_report_free(rb);
    hb_report_free(rn);
    if (sum->n_matched == 0)
        return hb_errf(err, HB_ERR_INPUT, "%s and %s have no case in common (matched on case, device, backend and rank)",
                       base, new_path);
    fprintf(out, "# %d matched: %d regression%s, %d failed in new, %d slower within noise or limit, %d faster "
                 "(%d by more than %g%%), %d not judged (invalid timing); %d only in base, %d only in new\n",
            sum->n_matched, sum->n_regressions, sum->n_regressions == 1 ? "" : "s", sum->n_failed_new,
            sum->n_slower_noise, sum->n_faster, sum->n_improvements, max_regression_pct, sum->n_invalid_timing,
            sum->n_only_base, sum->n_only_new);
    return HB_OK;
}
