#!/usr/bin/env python3
"""make_checkpoint.py - tiny Hugging Face checkpoints for test_checkpoint.sh, and what an
independent numpy forward (float64) says hetbench must compute from them.

  make_checkpoint.py OUT_DIR ARCH DTYPE LAYOUT
  make_checkpoint.py --break FILE HOW   (a bad file for the error tests; HOW: overlap, unknown-dtype,
                                         drop-tensor, huge-header)
    ARCH   llama | llama31 (Llama 3.1's rope scaling) | qwen3y, deepseek_v3y (YaRN) | gpt2 | mixtral128 (mixtral of width 128) | qwen2 (biased q/k/v, tied head) | qwen3 (head_dim != hidden/heads, q/k
           norms) | mixtral (softmax top-2 of 4 experts) | qwen3_moe (q/k norms, top-2 of 8) |
           deepseek_v3 (MLA with q_lora, sigmoid router with correction bias, 4 groups / 2 kept,
           a shared expert, first layer dense) | deepseek_v2 (MLA without q_lora, softmax
           greedy top-3, unnormalised, 2 shared experts)
    DTYPE  F32 | BF16 | F16 | F8 | F8B   (F8: e4m3 weights with a per-tensor weight_scale, as FP8
           Llama checkpoints keep them; F8B: e4m3 with 128 x 128 block weight_scale_inv, as
           DeepSeek-V3 publishes them; norms, embeddings and routers in BF16)
    LAYOUT single (model.safetensors) | sharded (two shards and model.safetensors.index.json)

Writes OUT_DIR/config.json, the safetensors file(s), OUT_DIR/prompt.npy (B x P uint32 token ids)
and OUT_DIR/expect.json: the fingerprints (sum, sum |x|, L2 norm, argmax of the first row) of the
prefill logits (each prompt's last token) and of the first decode step's logits (its input: the
argmax of the prefill logits, at position P), as hetbench records them (results/SCHEMA.md), and
the G greedy tokens of each sequence (`generated`: the prompt's argmax, then G-1 decode steps).
safetensors is written by hand (an 8-byte length, a JSON header, the bytes): no extra package.
"""
import json
import os
import struct
import sys

import numpy as np

B, P, G = 2, 8, 4


def bf16_bits(x):
    u = np.asarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)
    return ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)


def bf16_round(x):
    return (bf16_bits(x).astype(np.uint32) << 16).view(np.float32).astype(np.float64)


def e4m3_values():
    v = np.zeros(256)
    for c in range(256):
        s, e, m = c >> 7, (c >> 3) & 15, c & 7
        if e == 15 and m == 7:
            v[c] = np.nan
        elif e == 0:
            v[c] = m / 8 * 2.0**-6
        else:
            v[c] = (1 + m / 8) * 2.0 ** (e - 7)
        if s:
            v[c] = -v[c]
    return v


E4M3 = e4m3_values()
FINITE = np.where(np.isfinite(E4M3))[0]


def e4m3_encode(x):
    """nearest e4m3 code of each value (the test's values are never halfway)"""
    d = np.abs(x.reshape(-1, 1) - E4M3[FINITE].reshape(1, -1))
    return FINITE[np.argmin(d, axis=1)].astype(np.uint8).reshape(x.shape)


class Writer:
    """tensors for safetensors: stores each in the checkpoint dtype and keeps the value the
    checkpoint holds (float64) for the reference"""

    def __init__(self, dtype):
        self.dtype, self.t = dtype, {}

    def add(self, name, x, matrix=True):
        x = np.asarray(x, dtype=np.float64)
        dt = self.dtype if matrix else ("BF16" if self.dtype in ("F8", "F8B") else self.dtype)
        if dt == "F32":
            raw, val = x.astype("<f4").tobytes(), x.astype(np.float32).astype(np.float64)
        elif dt == "F16":
            raw, val = x.astype("<f2").tobytes(), x.astype(np.float16).astype(np.float64)
        elif dt == "BF16":
            raw, val = bf16_bits(x).astype("<u2").tobytes(), bf16_round(x)
        elif dt == "F8":  # one scale per tensor, a calibrated one (1.25 amax / 448: codes below 448)
            scale = np.float32(1.25 * np.abs(x).max() / 448.0)
            codes = e4m3_encode(x / np.float64(scale))
            raw, val = codes.tobytes(), E4M3[codes] * np.float64(scale)
            self.t[name + "_scale"] = ("F32", [], np.float32(scale).tobytes())
        else:  # F8B: 128 x 128 blocks, each 1.25 amax / 448 (weight_scale_inv multiplies)
            r, c = x.shape
            sr, sc = -(-r // 128), -(-c // 128)
            scale = np.zeros((sr, sc), dtype=np.float32)
            codes = np.zeros(x.shape, dtype=np.uint8)
            val = np.zeros(x.shape)
            for i in range(sr):
                for j in range(sc):
                    blk = x[i * 128:(i + 1) * 128, j * 128:(j + 1) * 128]
                    scale[i, j] = np.float32(1.25 * np.abs(blk).max() / 448.0)
                    cb = e4m3_encode(blk / np.float64(scale[i, j]))
                    codes[i * 128:(i + 1) * 128, j * 128:(j + 1) * 128] = cb
                    val[i * 128:(i + 1) * 128, j * 128:(j + 1) * 128] = E4M3[cb] * np.float64(scale[i, j])
            raw = codes.tobytes()
            self.t[name + "_scale_inv"] = ("F32", [sr, sc], scale.astype("<f4").tobytes())
        self.t[name] = ({"F8": "F8_E4M3", "F8B": "F8_E4M3"}.get(dt, dt), list(x.shape), raw)
        return val


def write_safetensors(path, tensors):
    header, blobs, off = {}, [], 0
    for name in sorted(tensors):
        dt, shape, raw = tensors[name]
        header[name] = {"dtype": dt, "shape": shape, "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def rmsnorm(x, w, eps):
    return x / np.sqrt((x * x).mean(-1, keepdims=True) + eps) * w


def layernorm(x, w, b, eps):
    mu = x.mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(((x - mu) ** 2).mean(-1, keepdims=True) + eps) * w + b


SCALING = None  # the rope_scaling of the model being written (llama31: Llama 3.1's; qwen3y, deepseek_v3y: YaRN)
SOFTMAX_MUL = 1.0  # DeepSeek's YaRN softmax factor mscale(factor, mscale_all_dim)^2


def llama3_inv_freq(inv, sc):  # Hugging Face's _compute_llama3_parameters
    factor, lo, hi, old = sc["factor"], sc["low_freq_factor"], sc["high_freq_factor"], sc["original_max_position_embeddings"]
    wavelen = 2 * np.pi / inv
    out = np.where(wavelen > old / lo, inv / factor, inv)
    smooth = (old / wavelen - lo) / (hi - lo)
    smoothed = (1 - smooth) * out / factor + smooth * out
    medium = ~(wavelen < old / hi) & ~(wavelen > old / lo)
    return np.where(medium, smoothed, out)


def get_mscale(scale, mscale=1.0):
    return 1.0 if scale <= 1 else 0.1 * mscale * np.log(scale) + 1.0


def yarn_inv_freq(D, theta, sc):  # Hugging Face's _compute_yarn_parameters (truncate: True)
    factor, old = sc["factor"], sc["original_max_position_embeddings"]
    dim_of = lambda rot: (D * np.log(old / (rot * 2 * np.pi))) / (2 * np.log(theta))
    lo, hi = max(np.floor(dim_of(sc.get("beta_fast", 32))), 0), min(np.ceil(dim_of(sc.get("beta_slow", 1))), D - 1)
    if lo == hi:
        hi += 0.001
    ramp = np.clip((np.arange(D // 2) - lo) / (hi - lo), 0, 1)
    extra = 1 - ramp
    pos_freqs = theta ** (np.arange(0, D, 2) / D)
    inv = (1 / (factor * pos_freqs)) * (1 - extra) + (1 / pos_freqs) * extra
    ms, mad = sc.get("mscale"), sc.get("mscale_all_dim")
    att = get_mscale(factor, ms) / get_mscale(factor, mad) if ms and mad else get_mscale(factor)
    return inv, att


def rope(x, pos, theta):  # x (T, H, D), rotate-half (Hugging Face Llama)
    D = x.shape[-1]
    inv = theta ** (-np.arange(0, D, 2) / D)
    att = 1.0
    if SCALING and SCALING["rope_type"] == "yarn":
        inv, att = yarn_inv_freq(D, theta, SCALING)
    elif SCALING:
        inv = llama3_inv_freq(inv, SCALING)
    ang = pos[:, None] * inv[None, :]
    cos, sin = att * np.cos(ang)[:, None, :], att * np.sin(ang)[:, None, :]
    x1, x2 = x[..., : D // 2], x[..., D // 2:]
    return np.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], -1)


def rope_interleaved(x, pos, theta):  # DeepSeek's modeling code: pairs (x0, x1), (x2, x3), ...
    T, H, D = x.shape
    x = x.reshape(T, H, D // 2, 2).transpose(0, 1, 3, 2).reshape(T, H, D)
    return rope(x, pos, theta)


def softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def silu(x):
    return x / (1 + np.exp(-x))


def route(logits, cfg, bias):
    """the experts and weights of one token: Mixtral / Qwen3-MoE / DeepSeek-V2 softmax top-k,
    DeepSeek-V3 sigmoid with the correction bias and group-limited top-k (noaux_tc)"""
    E, k = len(logits), cfg["num_experts_per_tok"]
    if cfg.get("scoring_func") == "sigmoid":
        s = 1 / (1 + np.exp(-logits))
        choice = s + bias
        g = cfg["n_group"]
        gs = np.array([np.sort(choice.reshape(g, -1)[i])[-2:].sum() for i in range(g)])
        keep = np.argsort(-gs, kind="stable")[:cfg["topk_group"]]
        mask = np.full(E, -np.inf)
        for i in keep:
            mask[i * (E // g):(i + 1) * (E // g)] = 0
        ids = np.argsort(-(choice + mask), kind="stable")[:k]
    else:
        s = softmax(logits)
        ids = np.argsort(-s, kind="stable")[:k]
    w = s[ids]
    norm = cfg.get("norm_topk_prob", cfg["model_type"] == "mixtral")
    if norm:
        w = w / w.sum()
    return ids, w * cfg.get("routed_scaling_factor", 1.0)


def attention(q, k, v):  # q (T, Hq, D), k (S, Hkv, D), v (S, Hkv, Dv); query t at position S - T + t
    T, Hq, D = q.shape
    S, Hkv = k.shape[0], k.shape[1]
    out = np.zeros((T, Hq, v.shape[-1]))
    for h in range(Hq):
        kh = h // (Hq // Hkv)
        s = q[:, h, :] @ k[:, kh, :].T / np.sqrt(D) * SOFTMAX_MUL
        for t in range(T):
            s[t, S - T + t + 1:] = -np.inf
        p = np.exp(s - s.max(-1, keepdims=True))
        out[:, h, :] = (p / p.sum(-1, keepdims=True)) @ v[:, kh, :]
    return out


def gelu(x):
    return 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x**3)))


def fingerprint(logits):
    return [float(logits.sum()), float(np.abs(logits).sum()), float(np.sqrt((logits**2).sum())),
            int(np.argmax(logits[0]))]


def family(arch, W, u, C, L, H, V, S):
    """Qwen2/3, Mixtral, Qwen3-MoE and DeepSeek-V2/V3-shaped tiny models in their Hugging Face
    names, and their forward (written from the Hugging Face modeling code, not from hetbench)"""
    global SCALING, SOFTMAX_MUL
    yarn = arch.endswith("y")
    arch = arch[:-1] if yarn else arch
    theta, eps, F = 10000.0, 1e-6, 96
    cfg = {"model_type": arch, "hidden_size": C, "num_hidden_layers": L, "num_attention_heads": H,
           "intermediate_size": F, "vocab_size": V, "max_position_embeddings": S, "rms_norm_eps": eps,
           "rope_theta": theta, "hidden_act": "silu", "tie_word_embeddings": arch == "qwen2", "rope_scaling": None}
    mla = arch.startswith("deepseek")
    Hkv, D = (H, None) if mla else (2, 32 if arch.startswith("qwen3") else C // H)
    if not mla:
        cfg["num_key_value_heads"] = Hkv
        if arch.startswith("qwen3"):
            cfg["head_dim"] = D
    if yarn and arch == "deepseek_v3":  # DeepSeek-V3's own rope_scaling, with a short original context
        SCALING = cfg["rope_scaling"] = {"type": "yarn", "rope_type": "yarn", "factor": 40.0, "beta_fast": 32, "beta_slow": 1,
                                         "mscale": 1.0, "mscale_all_dim": 1.0, "original_max_position_embeddings": 16}
        SOFTMAX_MUL = get_mscale(40.0, 1.0) ** 2
    elif yarn:  # Qwen's long-context recipe: no mscale fields, so cos and sin carry get_mscale(factor)
        SCALING = cfg["rope_scaling"] = {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 16}
    moe_first = 0
    if arch == "mixtral":
        Fe = 48 if C == 64 else 128
        cfg.update(num_local_experts=4, num_experts_per_tok=2, intermediate_size=Fe)
        E, n_shared = 4, 0
    elif arch == "qwen3_moe":
        cfg.update(num_experts=8, num_experts_per_tok=2, moe_intermediate_size=32, norm_topk_prob=True,
                   decoder_sparse_step=1, mlp_only_layers=[])
        E, Fe, n_shared = 8, 32, 0
    elif arch == "deepseek_v3":
        cfg.update(q_lora_rank=24, kv_lora_rank=32, qk_nope_head_dim=16, qk_rope_head_dim=8, v_head_dim=16,
                   n_routed_experts=8, num_experts_per_tok=2, n_shared_experts=1, moe_intermediate_size=32,
                   first_k_dense_replace=1, moe_layer_freq=1, n_group=4, topk_group=2, topk_method="noaux_tc",
                   scoring_func="sigmoid", norm_topk_prob=True, routed_scaling_factor=2.5)
        E, Fe, n_shared, moe_first = 8, 32, 1, 1
    elif arch == "deepseek_v2":
        cfg.update(q_lora_rank=None, kv_lora_rank=32, qk_nope_head_dim=16, qk_rope_head_dim=8, v_head_dim=16,
                   n_routed_experts=8, num_experts_per_tok=3, n_shared_experts=2, moe_intermediate_size=24,
                   first_k_dense_replace=1, moe_layer_freq=1, topk_method="greedy", scoring_func="softmax",
                   norm_topk_prob=False, routed_scaling_factor=1.0)
        E, Fe, n_shared, moe_first = 8, 24, 2, 1
    else:
        E = 0
    wte = W.add("model.embed_tokens.weight", u(V, C), matrix=False)
    lm = wte if cfg["tie_word_embeddings"] else W.add("lm_head.weight", u(V, C, s=C**-0.5))
    wf = W.add("model.norm.weight", 1 + u(C, s=0.1), matrix=False)
    layers = []
    for l in range(L):
        p = f"model.layers.{l}."
        w = dict(n1=W.add(p + "input_layernorm.weight", 1 + u(C, s=0.1), matrix=False),
                 n2=W.add(p + "post_attention_layernorm.weight", 1 + u(C, s=0.1), matrix=False))
        a = p + "self_attn."
        if mla:
            dn, dr, dv, dc, ql = 16, 8, 16, 32, cfg["q_lora_rank"]
            if ql:
                w["qa"] = W.add(a + "q_a_proj.weight", u(ql, C, s=C**-0.5))
                w["qan"] = W.add(a + "q_a_layernorm.weight", 1 + u(ql, s=0.1), matrix=False)
                w["qb"] = W.add(a + "q_b_proj.weight", u(H * (dn + dr), ql, s=ql**-0.5))
            else:
                w["q"] = W.add(a + "q_proj.weight", u(H * (dn + dr), C, s=C**-0.5))
            w["kva"] = W.add(a + "kv_a_proj_with_mqa.weight", u(dc + dr, C, s=C**-0.5))
            w["kvan"] = W.add(a + "kv_a_layernorm.weight", 1 + u(dc, s=0.1), matrix=False)
            w["kvb"] = W.add(a + "kv_b_proj.weight", u(H * (dn + dv), dc, s=dc**-0.5))
            w["o"] = W.add(a + "o_proj.weight", u(C, H * dv, s=(H * dv) ** -0.5))
        else:
            for n, rows in (("q", H * D), ("k", Hkv * D), ("v", Hkv * D)):
                w[n] = W.add(a + n + "_proj.weight", u(rows, C, s=C**-0.5))
                if arch == "qwen2":
                    w[n + "b"] = W.add(a + n + "_proj.bias", u(rows, s=0.5), matrix=False)
            if arch.startswith("qwen3"):
                w["qn"] = W.add(a + "q_norm.weight", 1 + u(D, s=0.3), matrix=False)
                w["kn"] = W.add(a + "k_norm.weight", 1 + u(D, s=0.3), matrix=False)
            w["o"] = W.add(a + "o_proj.weight", u(C, H * D, s=(H * D) ** -0.5))
        if E and l >= moe_first:
            m = p + ("block_sparse_moe." if arch == "mixtral" else "mlp.")
            w["gate"] = W.add(m + "gate.weight", u(E, C, s=C**-0.5), matrix=False)
            if arch == "deepseek_v3":
                w["bias"] = W.add(m + "gate.e_score_correction_bias", u(E, s=0.05), matrix=False)
            w["experts"] = []
            for e in range(E):
                x = m + f"experts.{e}."
                names = ("w1", "w3", "w2") if arch == "mixtral" else ("gate_proj", "up_proj", "down_proj")
                w["experts"].append((W.add(x + names[0] + ".weight", u(Fe, C, s=C**-0.5)),
                                     W.add(x + names[1] + ".weight", u(Fe, C, s=C**-0.5)),
                                     W.add(x + names[2] + ".weight", u(C, Fe, s=Fe**-0.5))))
            if n_shared:
                x, Fs = m + "shared_experts.", n_shared * Fe
                w["shared"] = (W.add(x + "gate_proj.weight", u(Fs, C, s=C**-0.5)),
                               W.add(x + "up_proj.weight", u(Fs, C, s=C**-0.5)),
                               W.add(x + "down_proj.weight", u(C, Fs, s=Fs**-0.5)))
        else:
            w["mlp"] = (W.add(p + "mlp.gate_proj.weight", u(F, C, s=C**-0.5)),
                        W.add(p + "mlp.up_proj.weight", u(F, C, s=C**-0.5)),
                        W.add(p + "mlp.down_proj.weight", u(C, F, s=F**-0.5)))
        layers.append(w)

    def mlp(h, g, up, d):
        return (silu(h @ g.T) * (h @ up.T)) @ d.T

    def forward(tok, pos, cache):
        x = wte[tok]
        T = len(tok)
        for l, w in enumerate(layers):
            h = rmsnorm(x, w["n1"], eps)
            if mla:
                cq = rmsnorm(h @ w["qa"].T, w["qan"], eps) @ w["qb"].T if "qa" in w else h @ w["q"].T
                q = cq.reshape(T, H, dn + dr)
                q_pe = rope_interleaved(q[..., dn:], pos, theta)
                ckv = h @ w["kva"].T
                c = rmsnorm(ckv[:, :dc], w["kvan"], eps)
                k_pe = rope_interleaved(ckv[:, None, dc:], pos, theta)  # one shared head
                kv = (c @ w["kvb"].T).reshape(T, H, dn + dv)
                k = np.concatenate([kv[..., :dn], np.repeat(k_pe, H, axis=1)], -1)
                v = kv[..., dn:]
                q = np.concatenate([q[..., :dn], q_pe], -1)
            else:
                q = h @ w["q"].T + w.get("qb", 0)
                k = h @ w["k"].T + w.get("kb", 0)
                v = (h @ w["v"].T + w.get("vb", 0)).reshape(T, Hkv, D)
                q, k = q.reshape(T, H, D), k.reshape(T, Hkv, D)
                if "qn" in w:
                    q, k = rmsnorm(q, w["qn"], eps), rmsnorm(k, w["kn"], eps)
                q, k = rope(q, pos, theta), rope(k, pos, theta)
            cache[l][0] = np.concatenate([cache[l][0], k]) if cache[l][0] is not None else k
            cache[l][1] = np.concatenate([cache[l][1], v]) if cache[l][1] is not None else v
            x = x + attention(q, cache[l][0], cache[l][1]).reshape(T, -1) @ w["o"].T
            h = rmsnorm(x, w["n2"], eps)
            if "mlp" in w:
                x = x + mlp(h, *w["mlp"])
                continue
            out = mlp(h, *w["shared"]) if "shared" in w else np.zeros_like(h)
            for t in range(T):
                ids, wt = route(h[t] @ w["gate"].T, cfg, w.get("bias", 0))
                for e, a in zip(ids, wt):
                    out[t] += a * mlp(h[t:t + 1], *w["experts"][e])[0]
            x = x + out
        return rmsnorm(x, wf, eps) @ lm.T

    return cfg, forward



def main():
    out, arch, dtype, layout = sys.argv[1:5]
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(20261203)
    W = Writer(dtype)
    C, L, H, V, S = 64, 2, 4, 128, 64
    if arch == "mixtral128":  # widths of 128 x 128 blocks: fp8-block cases keep its e4m3 as stored
        arch, C = "mixtral", 128
    u = lambda *shape, s=1.0: rng.uniform(-s, s, shape)
    if arch in ("llama", "llama31"):
        Hkv, F, D, theta, eps = 2, 96, C // 4, 10000.0, 1e-5
        cfg = {"model_type": "llama", "architectures": ["LlamaForCausalLM"], "hidden_size": C, "num_hidden_layers": L,
               "num_attention_heads": H, "num_key_value_heads": Hkv, "intermediate_size": F, "vocab_size": V,
               "max_position_embeddings": S, "rms_norm_eps": eps, "rope_theta": theta, "hidden_act": "silu",
               "tie_word_embeddings": False, "rope_scaling": None}
        if arch == "llama31":  # every branch of the scaling: wavelengths 6 .. 19000 around 8 and 32
            global SCALING
            SCALING = cfg["rope_scaling"] = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                             "high_freq_factor": 4.0, "original_max_position_embeddings": 32}
        wte = W.add("model.embed_tokens.weight", u(V, C), matrix=False)
        lm = W.add("lm_head.weight", u(V, C, s=C**-0.5))
        wf = W.add("model.norm.weight", 1 + u(C, s=0.1), matrix=False)
        layers = []
        for l in range(L):
            p = f"model.layers.{l}."
            layers.append(dict(
                n1=W.add(p + "input_layernorm.weight", 1 + u(C, s=0.1), matrix=False),
                q=W.add(p + "self_attn.q_proj.weight", u(H * D, C, s=C**-0.5)),
                k=W.add(p + "self_attn.k_proj.weight", u(Hkv * D, C, s=C**-0.5)),
                v=W.add(p + "self_attn.v_proj.weight", u(Hkv * D, C, s=C**-0.5)),
                o=W.add(p + "self_attn.o_proj.weight", u(C, H * D, s=(H * D) ** -0.5)),
                n2=W.add(p + "post_attention_layernorm.weight", 1 + u(C, s=0.1), matrix=False),
                g=W.add(p + "mlp.gate_proj.weight", u(F, C, s=C**-0.5)),
                up=W.add(p + "mlp.up_proj.weight", u(F, C, s=C**-0.5)),
                d=W.add(p + "mlp.down_proj.weight", u(C, F, s=F**-0.5))))

        def forward(tok, pos, cache):  # one sequence's tokens at positions pos; cache: per layer [k, v]
            x = wte[tok]
            for l, w in enumerate(layers):
                h = rmsnorm(x, w["n1"], eps)
                q = rope((h @ w["q"].T).reshape(-1, H, D), pos, theta)
                k = rope((h @ w["k"].T).reshape(-1, Hkv, D), pos, theta)
                v = (h @ w["v"].T).reshape(-1, Hkv, D)
                cache[l][0] = np.concatenate([cache[l][0], k]) if cache[l][0] is not None else k
                cache[l][1] = np.concatenate([cache[l][1], v]) if cache[l][1] is not None else v
                x = x + attention(q, cache[l][0], cache[l][1]).reshape(len(tok), -1) @ w["o"].T
                h = rmsnorm(x, w["n2"], eps)
                a, b = h @ w["g"].T, h @ w["up"].T
                x = x + (a / (1 + np.exp(-a)) * b) @ w["d"].T
            return rmsnorm(x, wf, eps) @ lm.T
    elif arch != "gpt2":
        cfg, forward = family(arch, W, u, C, L, H, V, S)
    else:
        eps, F, D = 1e-5, 4 * C, C // 4
        cfg = {"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"], "n_embd": C, "n_layer": L, "n_head": H,
               "vocab_size": V, "n_positions": S, "n_inner": None, "layer_norm_epsilon": eps,
               "activation_function": "gelu_new"}
        wte = W.add("transformer.wte.weight", u(V, C), matrix=False)
        wpe = W.add("transformer.wpe.weight", u(S, C, s=0.1), matrix=False)
        wf = W.add("transformer.ln_f.weight", 1 + u(C, s=0.1), matrix=False)
        bf = W.add("transformer.ln_f.bias", u(C, s=0.02), matrix=False)
        layers = []
        for l in range(L):
            p = f"transformer.h.{l}."
            layers.append(dict(  # Conv1D: weights stored (in, out)
                n1w=W.add(p + "ln_1.weight", 1 + u(C, s=0.1), matrix=False), n1b=W.add(p + "ln_1.bias", u(C, s=0.02), matrix=False),
                qkv=W.add(p + "attn.c_attn.weight", u(C, 3 * C, s=C**-0.5)), qkvb=W.add(p + "attn.c_attn.bias", u(3 * C, s=0.02), matrix=False),
                o=W.add(p + "attn.c_proj.weight", u(C, C, s=C**-0.5)), ob=W.add(p + "attn.c_proj.bias", u(C, s=0.02), matrix=False),
                n2w=W.add(p + "ln_2.weight", 1 + u(C, s=0.1), matrix=False), n2b=W.add(p + "ln_2.bias", u(C, s=0.02), matrix=False),
                fc=W.add(p + "mlp.c_fc.weight", u(C, F, s=C**-0.5)), fcb=W.add(p + "mlp.c_fc.bias", u(F, s=0.02), matrix=False),
                pr=W.add(p + "mlp.c_proj.weight", u(F, C, s=F**-0.5)), prb=W.add(p + "mlp.c_proj.bias", u(C, s=0.02), matrix=False)))

        def forward(tok, pos, cache):
            x = wte[tok] + wpe[pos]
            for l, w in enumerate(layers):
                h = layernorm(x, w["n1w"], w["n1b"], eps)
                qkv = h @ w["qkv"] + w["qkvb"]
                q, k, v = (qkv[:, i * C:(i + 1) * C].reshape(-1, H, D) for i in range(3))
                cache[l][0] = np.concatenate([cache[l][0], k]) if cache[l][0] is not None else k
                cache[l][1] = np.concatenate([cache[l][1], v]) if cache[l][1] is not None else v
                x = x + attention(q, cache[l][0], cache[l][1]).reshape(len(tok), -1) @ w["o"] + w["ob"]
                h = layernorm(x, w["n2w"], w["n2b"], eps)
                x = x + gelu(h @ w["fc"] + w["fcb"]) @ w["pr"] + w["prb"]
            return layernorm(x, wf, bf, eps) @ wte.T

    tokens = rng.integers(0, V, size=(B, P)).astype("<u4")
    np.save(os.path.join(out, "prompt.npy"), tokens)
    tokens.astype("<u2").tofile(os.path.join(out, "prompt.u16"))
    pre, dec, gen = [], [], []
    for b in range(B):
        cache = [[None, None] for _ in range(L)]
        logits = forward(tokens[b], np.arange(P), cache)[-1]
        pre.append(logits)
        # greedy: the prompt's argmax, then G-1 decode steps at positions P .. P+G-2
        g = [int(np.argmax(logits))]
        for s in range(G - 1):
            step = forward(np.array([g[-1]]), np.array([P + s]), cache)[-1]
            if s == 0:
                dec.append(step)
            g.append(int(np.argmax(step)))
        gen.append(g)
    # training data: an llm.c token shard (version 1, uint16) and the cross-entropy the first
    # step of `train --batch B --seq P` computes on it (rows b: tokens b P .. b P + P - 1,
    # targets one further), before the optimizer moves anything
    stream = rng.integers(0, V, size=5 * B * P + 1).astype("<u2")
    hdr = np.zeros(256, dtype="<i4")
    hdr[:3] = [20240520, 1, len(stream)]
    with open(os.path.join(out, "train.bin"), "wb") as f:
        f.write(hdr.tobytes() + stream.tobytes())
    losses = []
    for b in range(B):
        cache = [[None, None] for _ in range(L)]
        lg = forward(stream[b * P:(b + 1) * P].astype(np.int64), np.arange(P), cache)
        lg = lg - lg.max(-1, keepdims=True)
        lp = lg - np.log(np.exp(lg).sum(-1, keepdims=True))
        losses += list(-lp[np.arange(P), stream[b * P + 1:(b + 1) * P + 1].astype(np.int64)])
    train_loss = float(np.mean(losses))
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(cfg, f)
    names = sorted(W.t)
    if layout == "single":
        write_safetensors(os.path.join(out, "model.safetensors"), W.t)
    else:
        half = len(names) // 2
        shards = {"model-00001-of-00002.safetensors": names[:half], "model-00002-of-00002.safetensors": names[half:]}
        for file, ns in shards.items():
            write_safetensors(os.path.join(out, file), {n: W.t[n] for n in ns})
        with open(os.path.join(out, "model.safetensors.index.json"), "w") as f:
            json.dump({"metadata": {}, "weight_map": {n: file for file, ns in shards.items() for n in ns}}, f)
    with open(os.path.join(out, "expect.json"), "w") as f:
        json.dump({"prefill": fingerprint(np.array(pre)), "decode": fingerprint(np.array(dec)), "B": B, "P": P,
                   "generated": gen, "train_loss": train_loss}, f)


def break_file(path, how):
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header, data = json.loads(raw[8:8 + n]), raw[8 + n:]
    names = sorted(k for k in header if k != "__metadata__")
    if how == "huge-header":
        open(path, "wb").write(struct.pack("<Q", len(raw) * 2) + raw[8:])
        return
    if how == "overlap":  # the second tensor starts inside the first
        a, b = sorted(names, key=lambda k: header[k]["data_offsets"][0])[:2]
        lo, hi = header[b]["data_offsets"]
        header[b]["data_offsets"] = [lo - 4, hi - 4]
    elif how == "unknown-dtype":
        header[names[0]]["dtype"] = "Q4_K"
    elif how == "drop-tensor":
        del header[next(k for k in names if "layers.1." in k or ".h.1." in k)]
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    open(path, "wb").write(struct.pack("<Q", len(h)) + h + data)


if __name__ == "__main__":
    if sys.argv[1] == "--break":
        break_file(sys.argv[2], sys.argv[3])
    else:
        main()
