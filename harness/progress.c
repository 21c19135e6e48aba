/* progress.c - the progress line (progress.h). */
#include "progress.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "measure.h" // defines: hb_now_s

struct hb_progress {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int quit, active, n, index;
    double *est_s;
    double t_start, t_case;
    double done_s, done_est_s;  /* wall time and estimate of the finished cases */
    char prefix[48], label[160];
    _Atomic int64_t iters;
};

static void clock_text(char *b, size_t n, double s) {
    if (!isfinite(s) || s < 0) {
        snprintf(b, n, "?");
        return;
    }
    long v = lround(s);
    if (v >= 3600) snprintf(b, n, "%ld:%02ld:%02ld", v / 3600, v / 60 % 60, v % 60);
    else snprintf(b, n, "%ld:%02ld", v / 60, v % 60);
}

/* under p->mu */
static void draw(hb_progress *p) {
    double now = hb_now_s(), in_case = now - p->t_case;
    double ratio = p->done_est_s > 0 ? p->done_s / p->done_est_s : 1;
    double left = fmax(p->est_s[p->index] - in_case / ratio, 0);
    for (int i = p->index + 1; i < p->n; i++) left += p->est_s[i];
    char el[32], eta[32];
    clock_text(el, sizeof el, now - p->t_start);
    clock_text(eta, sizeof eta, left * ratio);
    fprintf(stderr, "\r\033[K%s %.80s · %lld iterations · %s elapsed · ETA %s", p->prefix, p->label,
            (long long)atomic_load_explicit(&p->iters, memory_order_relaxed), el, eta);
    fflush(stderr);
}

static void *loop(void *arg) {
    hb_progress *p = arg;
    pthread_mutex_lock(&p->mu);
    while (!p->quit) {
        if (p->active) draw(p);
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 500 * 1000 * 1000;
        if (ts.tv_nsec >= 1000000000L) ts.tv_sec++, ts.tv_nsec -= 1000000000L;
        pthread_cond_timedwait(&p->cv, &p->mu, &ts);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

hb_status hb_progress_start(int enabled, int n, const double *est_s, hb_progress **out) {
    *out = NULL;
    if (!enabled || n <= 0) return HB_OK;
    hb_progress *p = calloc(1, sizeof *p);
    if (!p || !(p->est_s = malloc((size_t)n * sizeof *p->est_s))) {
        free(p);
        return HB_ERR_NOMEM;
    }
    memcpy(p->est_s, est_s, (size_t)n * sizeof *p->est_s);
    p->n = n;
    p->t_start = p->t_case = hb_now_s();
    atomic_init(&p->iters, 0);
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    if (pthread_create(&p->thread, NULL, loop, p) != 0) {
        free(p->est_s);
        free(p);
        return HB_OK; /* no progress line is no failure */
    }
    *out = p;
    return HB_OK;
}

void hb_progress_begin(hb_progress *p, int index, const char *prefix, const char *label) {
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    p->index = index < p->n ? index : p->n - 1;
    p->t_case = hb_now_s();
    snprintf(p->prefix, sizeof p->prefix, "%s", prefix);
    snprintf(p->label, sizeof p->label, "%s", label);
    atomic_store_explicit(&p->iters, 0, memory_order_relaxed);
    p->active = 1;
    draw(p);
    pthread_mutex_unlock(&p->mu);
}

void hb_progress_end(hb_progress *p, int index) {
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    p->active = 0;
    p->done_s += hb_now_s() - p->t_case;
    if (index >= 0 && index < p->n) p->done_est_s += p->est_s[index];
    fputs("\r\033[K", stderr);
    fflush(stderr);
    pthread_mutex_unlock(&p->mu);
}

_Atomic int64_t *hb_progress_iters(hb_progress *p) { return p ? &p->iters : NULL; }

void hb_progress_stop(hb_progress *p) {
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    p->quit = 1;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
    pthread_join(p->thread, NULL);
    fputs("\r\033[K", stderr);
    fflush(stderr);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    free(p->est_s);
    free(p);
}
