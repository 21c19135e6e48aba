/* checkpoint.h - Hugging Face checkpoints (safetensors + config.json) and token files, read
 * for the model workloads (`weights:`, `prompt_tokens:`).
 *
 * A checkpoint is a .safetensors file (its config.json, when one lies beside it, gives the
 * architecture) or a folder with config.json and model.safetensors or the shards named by
 * model.safetensors.index.json. Every file is memory-mapped read-only and every header is
 * checked before anything is used (safetensors: an 8-byte little-endian header length, a JSON
 * object name -> {dtype, shape, data_offsets}, then the data): a bad file is HB_ERR_INPUT with a
 * message naming the file and the tensor. JSON is parsed with jansson. */
#ifndef HB_CHECKPOINT_H
#define HB_CHECKPOINT_H

#include <stdint.h>

#include "model.h"

#define HB_CKPT_MAX_DIMS 8

typedef enum hb_st_dtype {
    HB_ST_F64 = 0, HB_ST_F32, HB_ST_F16, HB_ST_BF16, HB_ST_F8_E4M3, HB_ST_F8_E5M2,
    HB_ST_I64, HB_ST_I32, HB_ST_I16, HB_ST_I8, HB_ST_U8, HB_ST_BOOL, HB_ST_COUNT
} hb_st_dtype;

typedef struct hb_st_tensor {
    const char *name;       /* owned by the checkpoint */
    hb_st_dtype dtype;
    int ndim;
    int64_t shape[HB_CKPT_MAX_DIMS];
    const uint8_t *data;    /* in the mapped file */
    int64_t nbytes;
    int shard;              /* index into the checkpoint's files */
} hb_st_tensor;

typedef struct hb_ckpt hb_ckpt;

/* Opens path (a .safetensors file or a checkpoint folder) and checks every header. */
hb_status hb_ckpt_open(const char *path, hb_ckpt **out, hb_err *err);
void hb_ckpt_close(hb_ckpt *ck);
const hb_st_tensor *hb_ckpt_find(const hb_ckpt *ck, const char *name);
const char *hb_ckpt_file(const hb_ckpt *ck, int shard); /* the file a tensor is in */
const char *hb_ckpt_path(const hb_ckpt *ck);
/* The distinct dtypes of the checkpoint's tensors, most bytes first ("F8_E4M3, BF16, F32"). */
void hb_ckpt_dtypes(const hb_ckpt *ck, char *buf, size_t len);
int64_t hb_ckpt_bytes(const hb_ckpt *ck);               /* tensor data bytes of all files */

/* The architecture in the checkpoint's config.json (HB_ERR_INPUT naming the file and field
 * when it is absent, malformed or of an architecture hetbench does not implement: model_type
 * llama and mistral (rmsnorm, rope, swiglu, no biases, no rope_scaling) and gpt2). name is
 * the folder's or file's base name. has_config = 0 when there is no config.json. */
hb_status hb_ckpt_model(const hb_ckpt *ck, hb_model *m, int *has_config, hb_err *err);

/* Whether the checkpoint holds every weight of model m (its first m->n_layers layers) with the
 * shape m gives and a dtype that loads (F32, F16, BF16; F8_E4M3 with its weight_scale or
 * weight_scale_inv): HB_ERR_INPUT naming the file and the tensor otherwise. */
hb_status hb_ckpt_check(const hb_ckpt *ck, const hb_model *m, hb_err *err);

/* One weight of the model as f32, row-major (rows, cols) (vectors: cols = 1): the workloads'
 * tensor names ("wte", "qkv_w", ...; layer -1 for model-level ones) mapped onto the Hugging Face
 * names (fused q/k/v and gate/up rows concatenated, GPT-2's Conv1D weights transposed, fp8
 * weights times their scales). dst holds rows * cols floats. */
hb_status hb_ckpt_read_f32(const hb_ckpt *ck, const hb_model *m, const char *name, int layer, float *dst,
                           int64_t rows, int64_t cols, hb_err *err);

/* One weight's e4m3 codes and scales exactly as the checkpoint stores them, for a case that
 * keeps weights in e4m3 with the same scale layout: per tensor (block 0: every piece of a fused
 * weight holds the same weight_scale) or bm x bm blocks (block bm: weight_scale_inv grids,
 * pieces starting on block rows, no row permutation). codes: rows x cols bytes; scales: the
 * case's grid, row-major (1 value, or ceil(rows / bm) x ceil(cols / bm)). HB_ERR_UNSUPPORTED
 * (err says why) when the stored form does not fit: the caller converts from f32 instead. */
hb_status hb_ckpt_read_fp8(const hb_ckpt *ck, const hb_model *m, const char *name, int layer, uint8_t *codes,
                           float *scales, int64_t rows, int64_t cols, int64_t block, hb_err *err);

/* Token ids for a prompt: a .npy file (little-endian integer dtype, any shape, C order), or raw
 * little-endian uint16 (.u16) or uint32 (.u32, .bin, anything else) values. Reads the first n
 * ids into dst; HB_ERR_INPUT naming the file when it holds fewer than n, when one is >= vocab
 * (or negative), or when the file is malformed. n_in_file: how many it holds (may be NULL). */
hb_status hb_tokens_read(const char *path, int64_t n, int64_t vocab, int32_t *dst, int64_t *n_in_file,
                         hb_err *err);

/* Writes model m as a Hugging Face checkpoint in folder dir (created if absent): config.json
 * (model_type llama, qwen2, qwen3, mixtral, qwen3_moe, deepseek_v3 or gpt2, whichever has m's
 * architecture; HB_ERR_INPUT naming the field when none has) and model.safetensors, every
 * weight F32 in the Hugging Face names, the exact inverse of hb_ckpt_read_f32. get(ctx, name,
 * layer, dst, rows, cols) fills one weight of the tensor table as f32 (expert stacks as
 * (E rows, cols)). Loading the result gives the same weights, bit for bit. */
typedef hb_status (*hb_ckpt_get_fn)(void *ctx, const char *name, int layer, float *dst, int64_t rows, int64_t cols,
                                    hb_err *err);
hb_status hb_ckpt_write(const char *dir, const hb_model *m, hb_ckpt_get_fn get, void *ctx, hb_err *err);

/* An llm.c token shard (its dev/data/data_common.py): 256 little-endian int32 header words
 * (magic 20240520, version 1 = uint16 tokens / 2 = uint32, the token count), then the tokens.
 * Opening maps the file and checks the header, the size and every token against vocab, and
 * that it holds at least `need` tokens: HB_ERR_INPUT naming the file otherwise. */
typedef struct hb_token_shard {
    const uint8_t *map;
    size_t size;
    int64_t n;   /* tokens */
    int width;   /* bytes per token: 2 or 4 */
} hb_token_shard;
hb_status hb_token_shard_open(const char *path, int64_t vocab, int64_t need, hb_token_shard *s, hb_err *err);
void hb_token_shard_close(hb_token_shard *s);
/* dst[i] = token (off + i) of the shard, i < n (off + n <= s->n). */
void hb_token_shard_read(const hb_token_shard *s, int64_t off, int64_t n, int32_t *dst);

#endif
