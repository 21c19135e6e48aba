/* cmd_weights.c - `hetbench weights --out DIR [--model M] [--layers N] [--seed S] [--force]`:
 * writes the weights hetbench generates for a model as a Hugging Face checkpoint (config.json
 * + model.safetensors, F32, Hugging Face names; workloads/checkpoint.c), so that another
 * implementation can be fed exactly the weights a hetbench run computes with, and `--weights
 * DIR` reproduces the generated run bit for bit. Generated on the CPU backend (every backend
 * generates the same values). Needs no MPI. Exit 0 written, 1 failure, 2 usage/input error. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../backends/registry.h"
#include "../workloads/transformer.h"
#include "commands.h"
#include "plan.h"

static const char *const help_weights =
    "usage: hetbench weights --out DIR [--model M] [--layers N] [--seed S] [--force]\n"
    "\n"
    "Writes the weights hetbench generates for model M (a preset; default tiny) as a Hugging\n"
    "Face checkpoint: DIR/config.json (model_type llama, qwen2, qwen3, mixtral, qwen3_moe,\n"
    "deepseek_v3 or gpt2 - the one with M's architecture) and DIR/model.safetensors (F32, the\n"
    "Hugging Face tensor names). `hetbench run --weights DIR` then computes exactly what the\n"
    "generated run does, and another implementation can load the same weights to compare\n"
    "logits or greedy tokens (/cases/<id>/rank<r>/generated) with hetbench's.\n"
    "\n"
    "options:\n"
    "  --out DIR     the checkpoint folder (created; an existing checkpoint needs --force)\n"
    "  --model M     the model                                          [tiny]\n"
    "  --layers N    only the first N layers\n"
    "  --seed S      the case seed the weights are generated from        [the run default]\n"
    "  --force       overwrite DIR/config.json and DIR/model.safetensors\n"
    "exit codes: 0 written, 1 failure, 2 usage or input error\n";

static int usage(const char *msg, const char *arg) {
    fprintf(stderr, "hetbench weights: ");
    fprintf(stderr, msg, arg);
    fprintf(stderr, " (see 'hetbench weights --help')\n");
    return 2;
}

int hb_cmd_weights(int argc, char **argv) {
    const char *out = NULL, *model = "tiny", *layers = NULL, *seed = NULL;
    int force = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(help_weights, stdout);
            return 0;
        }
        if (!strcmp(a, "--force")) {
            force = 1;
            continue;
        }
        const char **dst = !strcmp(a, "--out") ? &out : !strcmp(a, "--model") ? &model : !strcmp(a, "--layers") ? &layers
                           : !strcmp(a, "--seed") ? &seed : NULL;
        if (!dst) return usage("unknown option '%s'", a);
        if (i + 1 >= argc) return usage("%s needs a value", a);
        *dst = argv[++i];
    }
    if (!out || !*out) return usage("%s", "--out DIR is required");
    char file[8192];
    struct stat sb;
    if (stat(out, &sb) == 0 && !S_ISDIR(sb.st_mode)) return usage("--out: '%s' exists and is not a folder", out);
    snprintf(file, sizeof file, "%s/model.safetensors", out);
    const int have = access(file, F_OK) == 0;
    snprintf(file, sizeof file, "%s/config.json", out);
    if (!force && (have || access(file, F_OK) == 0))
        return usage("--out: '%s' holds a checkpoint already (--force overwrites it)", out);
    hb_kv kv[5];
    int n = 0;
    kv[n++] = (hb_kv){"workload", "prefill"};
    kv[n++] = (hb_kv){"model", model};
    kv[n++] = (hb_kv){"dtype", "f32"};
    if (layers) kv[n++] = (hb_kv){"layers", layers};
    if (seed) kv[n++] = (hb_kv){"seed", seed};
    hb_plan plan = {0};
    hb_err err = {{0}};
    if (hb_plan_from_args(kv, n, &plan, &err) != HB_OK) {
        fprintf(stderr, "hetbench weights: %s\n", err.msg);
        return 2;
    }
    hb_backend *be = NULL;
    int rc = 0;
    if (hb_backend_open("cpu", 0, &be, &err) != HB_OK) {
        fprintf(stderr, "hetbench weights: cpu backend: %s\n", err.msg);
        rc = 1;
    } else {
        hb_status s = hb_tf_export(be, &plan.cases[0], out, &err);
        if (s != HB_OK) {
            fprintf(stderr, "hetbench weights: %s\n", err.msg);
            rc = s == HB_ERR_INPUT ? 2 : 1;
        } else {
            char name[96];
            printf("hetbench weights: %s (%s, %lld parameters as f32) written to %s\n",
                   hb_model_display_name(&plan.cases[0].model, name, sizeof name), plan.cases[0].label,
                   (long long)hb_model_n_params(&plan.cases[0].model), out);
        }
        be->ops->destroy(be);
    }
    hb_plan_free(&plan);
    return rc;
}
