/* fake_powercap.c - a live fake RAPL powercap tree for end-to-end tests and the sampler
 * benchmark on machines without RAPL:
 *
 *   fake_powercap ROOT [--sockets N] [--watts PKG,DRAM] [--max-uj N] [--start-uj N]
 *                      [--period-ms P] [-- COMMAND ARGS...]
 *
 * Creates ROOT/intel-rapl:S (package-S, 125 W limit) and ROOT/intel-rapl:S:0 (dram) for every
 * socket, then rewrites each energy_uj every P ms (default 5) as start + W x elapsed, modulo
 * max_energy_range_uj + 1 (default: the real 262143328850 uJ; give a small --max-uj to see
 * wraparound). With a COMMAND, runs it with HETBENCH_POWERCAP_ROOT=ROOT and exits with its
 * status once it ends; without one, updates until SIGINT/SIGTERM. Test code. */
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "powercap_tree.h"

static volatile sig_atomic_t done_flag;
static void on_signal(int sig) {
    (void)sig;
    done_flag = 1;
}

static double mono(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int usage(void) {
    fprintf(stderr, "usage: fake_powercap ROOT [--sockets N] [--watts PKG,DRAM] [--max-uj N] "
                    "[--start-uj N] [--period-ms P] [-- COMMAND ARGS...]\n");
    return 2;
}

int main(int argc, char **argv) {
    if (argc < 2) return usage();
    const char *root = argv[1];
    int sockets = 1, period_ms = 5, cmd = -1;
    double w_pkg = 40, w_dram = 8, max_uj = 262143328850.0, start_uj = 1e6;
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0) {
            cmd = i + 1;
            break;
        }
        if (i + 1 >= argc) return usage();
        if (strcmp(argv[i], "--sockets") == 0) sockets = atoi(argv[++i]);
        else if (strcmp(argv[i], "--watts") == 0) {
            const char *v = argv[++i];
            w_pkg = atof(v);
            const char *c = strchr(v, ',');
            if (c) w_dram = atof(c + 1);
        } else if (strcmp(argv[i], "--max-uj") == 0) max_uj = atof(argv[++i]);
        else if (strcmp(argv[i], "--start-uj") == 0) start_uj = atof(argv[++i]);
        else if (strcmp(argv[i], "--period-ms") == 0) period_ms = atoi(argv[++i]);
        else return usage();
    }
    if (sockets < 1 || sockets > 16 || period_ms < 1 || !(max_uj > 0)) return usage();
    if (mkdir(root, 0755) != 0 && errno != EEXIST) {
        perror(root);
        return 1;
    }
    char pkg[16][4096], dram[16][4096];
    for (int s = 0; s < sockets; s++) {
        char zone[64], name[32], pdir[4096];
        snprintf(zone, sizeof zone, "intel-rapl:%d", s);
        snprintf(name, sizeof name, "package-%d", s);
        if (pc_zone(root, zone, name, (uint64_t)start_uj, (uint64_t)max_uj, 125000000ull, pkg[s],
                    sizeof pkg[s]) != 0) {
            perror("fake_powercap: creating the tree");
            return 1;
        }
        snprintf(pdir, sizeof pdir, "%s", root);
        snprintf(zone, sizeof zone, "intel-rapl:%d:0", s);
        if (pc_zone(pdir, zone, "dram", (uint64_t)start_uj, (uint64_t)max_uj, 0, dram[s],
                    sizeof dram[s]) != 0) {
            perror("fake_powercap: creating the tree");
            return 1;
        }
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    pid_t child = -1;
    if (cmd > 0 && cmd < argc) {
        setenv("HETBENCH_POWERCAP_ROOT", root, 1);
        child = fork();
        if (child == 0) {
            execvp(argv[cmd], argv + cmd);
            perror(argv[cmd]);
            _exit(127);
        }
        if (child < 0) {
            perror("fork");
            return 1;
        }
    }
    double t0 = mono(), mod = max_uj + 1.0;
    int status = 0;
    while (!done_flag) {
        double t = mono() - t0;
        for (int s = 0; s < sockets; s++) {
            pc_write_u64(pkg[s], "energy_uj", (uint64_t)fmod(start_uj + w_pkg * 1e6 * t, mod));
            pc_write_u64(dram[s], "energy_uj", (uint64_t)fmod(start_uj + w_dram * 1e6 * t, mod));
        }
        if (child > 0) {
            pid_t r = waitpid(child, &status, WNOHANG);
            if (r == child) break;
        }
        struct timespec d = {period_ms / 1000, (long)(period_ms % 1000) * 1000000L};
        nanosleep(&d, NULL);
    }
    if (child > 0 && done_flag) { /* interrupted: pass it on and wait */
        kill(child, SIGTERM);
        waitpid(child, &status, 0);
    }
    if (child <= 0) return 0;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}
