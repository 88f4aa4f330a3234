#!/usr/bin/python3
"""llama_ref.py - an independent PyTorch (float32, CPU) Llama-family forward pass.

This is finch's "twin": the C engine is tested against numbers produced here.
It is written to be read, not to be fast, and shares no code with the C side.

Model family covered
  * RMSNorm (eps from the config), weight multiplied after normalisation
  * RoPE on the first `rope_dim` dims of every q/k head, in one of two pairings
      'half'     - pairs (i, i + rope_dim/2): Hugging Face `rotate_half`,
                   GGUF `qwen2` (llama.cpp NEOX mode)
      'adjacent' - pairs (2i, 2i + 1): original Meta layout, GGUF `llama`
    theta_i = rope_base ** (-2i / rope_dim), angle = position * theta_i
  * grouped-query attention: H query heads, G kv heads, query head h reads
    kv head h // (H / G); causal softmax(q.k / sqrt(head_dim))
  * optional q/k/v biases (qwen2)
  * SwiGLU MLP: down(silu(gate(x)) * up(x))
  * tied (output = token embedding) or untied output matrix

Weights are keyed by GGUF-style names in Hugging Face orientation
(W [out, in], y = x @ W.T):
  token_embd.weight [vocab, dim]
  blk.{l}.attn_norm.weight [dim]
  blk.{l}.attn_q.weight [H*hd, dim]   (+ blk.{l}.attn_q.bias [H*hd] when bias)
  blk.{l}.attn_k.weight [G*hd, dim]   (+ .bias)
  blk.{l}.attn_v.weight [G*hd, dim]   (+ .bias)
  blk.{l}.attn_output.weight [dim, H*hd]
  blk.{l}.ffn_norm.weight [dim]
  blk.{l}.ffn_gate.weight [ffn, dim], blk.{l}.ffn_up.weight [ffn, dim]
  blk.{l}.ffn_down.weight [dim, ffn]
  output_norm.weight [dim]
  output.weight [vocab, dim]          (absent when tied)

Family switches (optional cfg keys; absent = plain Llama), as Hugging Face
computes them (see FAMILY_KEYS):
  rope_scaling     HF rope_scaling dict: linear / llama3 / yarn (others raise)
  rope_base_local  RoPE base of sliding-window layers (Gemma 3); those layers
                   use no scaling
  sliding_window   a query at p reads keys j with p - j < sliding_window, in
  layer_types      the layers listed 'sliding_attention' (default: all)
  qk_norm          RMSNorm of every q and k head before RoPE
                   (blk.{l}.attn_q_norm.weight / attn_k_norm.weight [hd])
  post_norms       RMSNorm of the attention and MLP outputs before the
                   residual add (blk.{l}.post_attention_norm / post_ffw_norm)
  act              'silu' (SwiGLU) or 'gelu_tanh' (GeGLU)
  embd_scale       the embedding multiplied by it (Gemma: sqrt(dim))
  attn_scale       score scale (default 1/sqrt(head_dim))
  attn_softcap     scores -> c tanh(scores / c) before the mask (Gemma 2)
  final_softcap    logits -> c tanh(logits / c) (Gemma 2)
Norm weights are the effective multipliers (Gemma's 1 + w already added).

Optional: LlamaRef(cfg, weights, quant={name: (d, q)}) computes the products
with those Q8_0 weights as ggml and finch's fast kernels do (activations
quantised to Q8_0 per 32-block, exact integer block dots); see matmul().

Also here: a tiny safetensors reader (numpy) and a Hugging Face directory
loader (config.json + model.safetensors, sharded index supported) that maps
HF tensor names to the names above with pairing 'half'.

Command line (a quick look at a model):
  /usr/bin/python3 tools/llama_ref.py HF_DIR [--ids 1,2,3] [-n 32]
"""

import json
import math
import os
import struct
import sys

import numpy as np
import torch

torch.set_num_threads(2)

CFG_KEYS = ("dim", "n_layer", "n_head", "n_kv_head", "head_dim", "ffn_dim", "vocab",
            "rms_eps", "rope_base", "rope_dim", "pairing", "tied", "bias")
FAMILY_KEYS = {"rope_scaling": None, "rope_base_local": None, "sliding_window": None,
               "layer_types": None, "qk_norm": False, "post_norms": False, "act": "silu",
               "embd_scale": None, "attn_scale": None, "attn_softcap": None,
               "final_softcap": None, "ctx_len": 512}


def rope_inv_freq(cfg, local=False):
    """(inv_freq [rope_dim/2] float64, mscale) of the global layers, or of
    the sliding-window layers (local) when cfg has rope_base_local.  The
    formulas of transformers' modeling_rope_utils, written out here."""
    d = cfg["rope_dim"]
    if local and cfg.get("rope_base_local"):
        base = float(cfg["rope_base_local"])
        return 1.0 / base ** (torch.arange(0, d, 2, dtype=torch.float64) / d), 1.0
    base = float(cfg["rope_base"])
    inv = 1.0 / base ** (torch.arange(0, d, 2, dtype=torch.float64) / d)
    rs = cfg.get("rope_scaling")
    if not rs:
        return inv, 1.0
    kind = rs.get("rope_type", rs.get("type"))
    factor = float(rs["factor"])
    if kind == "linear":
        return inv / factor, 1.0
    if kind == "llama3":
        orig = float(rs.get("original_max_position_embeddings", 8192))
        lo, hi = float(rs.get("low_freq_factor", 1.0)), float(rs.get("high_freq_factor", 4.0))
        wavelen = 2 * math.pi / inv
        smooth = (orig / wavelen - lo) / (hi - lo)
        scaled = torch.where(wavelen > orig / lo, inv / factor, inv)
        medium = (wavelen >= orig / hi) & (wavelen <= orig / lo)
        return torch.where(medium, (1 - smooth) * inv / factor + smooth * inv, scaled), 1.0
    if kind == "yarn":
        orig = float(rs.get("original_max_position_embeddings") or cfg.get("ctx_len", 512))
        fast, slow = float(rs.get("beta_fast") or 32), float(rs.get("beta_slow") or 1)
        mscale = rs.get("attention_factor")
        if mscale is None:
            mscale = 0.1 * math.log(factor) + 1.0 if factor > 1 else 1.0

        def corr(n_rot):
            return d * math.log(orig / (n_rot * 2 * math.pi)) / (2 * math.log(base))
        low, high = max(math.floor(corr(fast)), 0), min(math.ceil(corr(slow)), d - 1)
        if low == high:
            high += 0.001
        ramp = torch.clamp((torch.arange(d // 2, dtype=torch.float64) - low) / (high - low), 0, 1)
        extrap = 1 - ramp
        return inv / factor * (1 - extrap) + inv * extrap, float(mscale)
    raise ValueError(f"rope_scaling type {kind!r} is not in the twin")


def layer_is_local(cfg, l):
    if not cfg.get("sliding_window"):
        return False
    types = cfg.get("layer_types")
    return True if types is None else types[l] == "sliding_attention"


# ---------------------------------------------------------------------- RoPE

def rope_cos_sin(positions, base, rope_dim, inv_freq=None, mscale=1.0):
    """cos, sin [n, rope_dim/2] (float32) for integer positions (may be < 0).

    Angles are computed in float64 and rounded once to float32, so the
    reference is at least as exact as any float32 implementation.  inv_freq
    (float64 [rope_dim/2]) replaces base^(-2i/rope_dim) for scaled RoPE;
    mscale multiplies cos and sin (YaRN)."""
    pos = torch.as_tensor(positions, dtype=torch.float64).reshape(-1, 1)
    if inv_freq is None:
        i = torch.arange(rope_dim // 2, dtype=torch.float64).reshape(1, -1)
        theta = torch.pow(torch.tensor(float(base), dtype=torch.float64), -2.0 * i / rope_dim)
    else:
        theta = torch.as_tensor(inv_freq, dtype=torch.float64).reshape(1, -1)
    ang = pos * theta
    return (torch.cos(ang) * mscale).float(), (torch.sin(ang) * mscale).float()


def rope(x, positions, pairing, base, rope_dim, inv_freq=None, mscale=1.0):
    """Rotate x [..., n, head_dim] (row r at position positions[r]).

    Only the first rope_dim dims of each head are rotated; the rest pass
    through.  Returns a new tensor."""
    x = torch.as_tensor(x, dtype=torch.float32)
    hd = x.shape[-1]
    if rope_dim % 2 or rope_dim > hd or rope_dim <= 0:
        raise ValueError(f"bad rope_dim {rope_dim} for head_dim {hd}")
    cos, sin = rope_cos_sin(positions, base, rope_dim, inv_freq, mscale)
    if cos.shape[0] != x.shape[-2]:
        raise ValueError("one position per row expected")
    out = x.clone()
    half = rope_dim // 2
    if pairing == "half":
        a, b = x[..., :half], x[..., half:rope_dim]
        out[..., :half] = a * cos - b * sin
        out[..., half:rope_dim] = b * cos + a * sin
    elif pairing == "adjacent":
        a, b = x[..., 0:rope_dim:2], x[..., 1:rope_dim:2]
        out[..., 0:rope_dim:2] = a * cos - b * sin
        out[..., 1:rope_dim:2] = b * cos + a * sin
    else:
        raise ValueError(f"unknown pairing {pairing!r}")
    return out


def rerotate(k, delta_positions, pairing, base, rope_dim, inv_freq=None):
    """Rotate already-rotated keys k [..., n, hd] by delta_positions[r] more
    positions (a key of position p becomes the key of position p + delta).
    A rotation by delta is the RoPE of "position" delta, with the layer's
    (scaled) frequencies and no YaRN magnitude (already in the key)."""
    return rope(k, delta_positions, pairing, base, rope_dim, inv_freq)


def permute_rows_half_to_adjacent(w, n_head, head_dim=None, rope_dim=None):
    """Reorder the rows of a q/k weight [n_head*hd, in] (or bias [n_head*hd])
    so that a model using 'adjacent' pairing computes what the original did
    with 'half' pairing.  For rope_dim == head_dim this is exactly llama.cpp's
    convert_hf_to_gguf permute:
        w.reshape(n_head, 2, hd//2, ...).swapaxes(1, 2).reshape(w.shape)
    For rope_dim < head_dim only the rotated rows of each head move."""
    w = np.asarray(w)
    hd = head_dim if head_dim is not None else w.shape[0] // n_head
    rd = rope_dim if rope_dim is not None else hd
    idx = np.arange(n_head * hd).reshape(n_head, hd)
    rot = idx[:, :rd].reshape(n_head, 2, rd // 2).swapaxes(1, 2).reshape(n_head, rd)
    order = np.concatenate([rot, idx[:, rd:]], axis=1).reshape(-1)
    return w[order].copy()


def permute_rows_adjacent_to_half(w, n_head, head_dim=None, rope_dim=None):
    """Inverse of permute_rows_half_to_adjacent."""
    w = np.asarray(w)
    hd = head_dim if head_dim is not None else w.shape[0] // n_head
    rd = rope_dim if rope_dim is not None else hd
    idx = np.arange(n_head * hd).reshape(n_head, hd)
    rot = idx[:, :rd].reshape(n_head, 2, rd // 2).swapaxes(1, 2).reshape(n_head, rd)
    order = np.concatenate([rot, idx[:, rd:]], axis=1).reshape(-1)
    inv = np.empty_like(order)
    inv[order] = np.arange(order.size)
    return w[inv].copy()


# -------------------------------------------------------------------- model

def rms_norm(x, w, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


class LlamaRef:
    """The reference model.  cfg: dict with CFG_KEYS; weights: name -> tensor
    (torch or numpy, any float dtype; kept as float32)."""

    def __init__(self, cfg, weights, quant=None, qmatmul=None):
        missing = [k for k in CFG_KEYS if k not in cfg]
        if missing:
            raise ValueError(f"cfg lacks {missing}")
        self.cfg = dict(FAMILY_KEYS)
        self.cfg.update(cfg)
        c = self.cfg
        if c["n_head"] % c["n_kv_head"]:
            raise ValueError("n_head must be a multiple of n_kv_head")
        if c["pairing"] not in ("half", "adjacent"):
            raise ValueError(f"unknown pairing {c['pairing']!r}")
        self.w = {k: torch.as_tensor(np.asarray(v, dtype=np.float32) if not torch.is_tensor(v)
                                     else v).float().contiguous()
                  for k, v in weights.items()}
        self._check_shapes()
        # optional ggml-style Q8_0 x Q8_0 products: name -> (d [rows, nb]
        # float32 holding the f16 block scales, q [rows, nb, 32] int8)
        self.quant = dict(quant or {})
        # optional products computed elsewhere: name -> f(x numpy [n, cols])
        # -> numpy [n, rows] (tools/quants.py's matmul_q8 for ggml's types)
        self.qmatmul = dict(qmatmul or {})
        for k, (d, q) in self.quant.items():
            if tuple(q.shape) != (self.w[k].shape[0], self.w[k].shape[1] // 32, 32):
                raise ValueError(f"{k}: Q8_0 blocks do not match the weight")

    kv_f16 = False  # finch --cache-type f16: K and V rounded to f16 when stored

    def store(self, t):
        """A K or V tensor as the cache holds it: itself, or (kv_f16) rounded
        to f16 (torch's round to nearest even) and read back as f32."""
        return t.half().float() if self.kv_f16 else t

    def matmul(self, x, name):
        """x [n, cols] @ W.T.  For a weight given in `quant`, emulate ggml's
        Q8_0 path instead: quantize each 32-block of x to Q8_0 (finch's and
        llama.cpp's x86 activation rule, tools/quants.py), take the exact
        integer dot per block and accumulate (d_w * d_x) * isum over the
        blocks in float32, in order."""
        if name in self.qmatmul:
            return torch.from_numpy(self.qmatmul[name](x.detach().cpu().numpy()))
        if name not in self.quant:
            return x @ self.w[name].T
        d_w, q_w = self.quant[name]
        from quants import Q8_0, quantize_act
        d_x, q_x, _ = quantize_act(Q8_0, x.detach().cpu().numpy())
        d_x = d_x.astype(np.float32)
        isum = np.einsum("nbi,rbi->nrb", q_x.astype(np.int64), np.asarray(q_w, np.int64))
        d_w = np.asarray(d_w, np.float32)
        acc = np.zeros((x.shape[0], d_w.shape[0]), np.float32)
        for b in range(d_w.shape[1]):
            scale = (d_x[:, None, b] * d_w[None, :, b]).astype(np.float32)
            acc = (acc + scale * isum[:, :, b].astype(np.float32)).astype(np.float32)
        return torch.from_numpy(acc)

    def _check_shapes(self):
        c, w = self.cfg, self.w
        dim, hd, H, G, F, V = (c["dim"], c["head_dim"], c["n_head"], c["n_kv_head"],
                               c["ffn_dim"], c["vocab"])
        want = {"token_embd.weight": (V, dim), "output_norm.weight": (dim,)}
        if not c["tied"]:
            want["output.weight"] = (V, dim)
        for l in range(c["n_layer"]):
            p = f"blk.{l}."
            want.update({p + "attn_norm.weight": (dim,), p + "attn_q.weight": (H * hd, dim),
                         p + "attn_k.weight": (G * hd, dim), p + "attn_v.weight": (G * hd, dim),
                         p + "attn_output.weight": (dim, H * hd), p + "ffn_norm.weight": (dim,),
                         p + "ffn_gate.weight": (F, dim), p + "ffn_up.weight": (F, dim),
                         p + "ffn_down.weight": (dim, F)})
            if c["bias"]:
                want.update({p + "attn_q.bias": (H * hd,), p + "attn_k.bias": (G * hd,),
                             p + "attn_v.bias": (G * hd,)})
            if c["qk_norm"]:
                want.update({p + "attn_q_norm.weight": (hd,), p + "attn_k_norm.weight": (hd,)})
            if c["post_norms"]:
                want.update({p + "post_attention_norm.weight": (dim,), p + "post_ffw_norm.weight": (dim,)})
        for k, shape in want.items():
            if k not in w:
                raise ValueError(f"missing weight {k}")
            if tuple(w[k].shape) != shape:
                raise ValueError(f"{k}: shape {tuple(w[k].shape)}, expected {shape}")

    def output_matrix(self):
        return self.w["token_embd.weight"] if self.cfg["tied"] else self.w["output.weight"]

    @torch.no_grad()
    def forward(self, ids, pos0=0, past=None, return_q=False, return_attn=False, pos_offset=0):
        """Feed ids at positions pos0 .. pos0+n-1 after `past` (list of L
        (K [G, pos0, hd], V [G, pos0, hd]) or None when pos0 == 0).
        pos_offset: RoPE positions are pos0 + pos_offset .. (rows of the
        cache stay pos0 ..): a cache whose keys sit at other positions than
        its rows (kvpress rerotate_keys=False).

        Returns dict: logits [n, vocab]; hidden: L x [n, dim] (residual
        stream after each layer, before the final norm); kv: L x (K, V) with
        K, V [G, pos0+n, hd] (keys after RoPE); q (return_q): L x [H, n, hd]
        after RoPE; attn (return_attn): L x [H, n, pos0+n] probabilities, and
        score_attn: the plain causal softmax(q.k/sqrt(hd)) Finch scores with."""
        c, w = self.cfg, self.w
        ids = torch.as_tensor(ids, dtype=torch.long).reshape(-1)
        n = ids.numel()
        H, G, hd = c["n_head"], c["n_kv_head"], c["head_dim"]
        rep = H // G
        L = c["n_layer"]
        if past is None:
            if pos0 != 0:
                raise ValueError("pos0 > 0 needs a past cache")
            past = [(torch.zeros(G, 0, hd), torch.zeros(G, 0, hd)) for _ in range(L)]
        if len(past) != L:
            raise ValueError("past must hold one (K, V) per layer")
        if int(ids.min()) < 0 or int(ids.max()) >= c["vocab"]:
            raise ValueError("token id out of range")
        rows = torch.arange(pos0, pos0 + n)
        positions = rows + pos_offset
        T = pos0 + n
        # causal mask of the new rows over all T rows
        allowed = torch.arange(T).reshape(1, T) <= rows.reshape(n, 1)
        if c["sliding_window"]:
            inside = rows.reshape(n, 1) - torch.arange(T).reshape(1, T) < c["sliding_window"]
        x = w["token_embd.weight"][ids]
        if c["embd_scale"]:
            x = x * torch.tensor(float(c["embd_scale"]), dtype=torch.float32)
        scale = c["attn_scale"] if c["attn_scale"] else 1.0 / math.sqrt(hd)
        out = {"hidden": [], "kv": []}
        if return_q:
            out["q"] = []
        if return_attn:
            out["attn"] = []
            out["score_attn"] = []
        for l in range(L):
            p = f"blk.{l}."
            h = rms_norm(x, w[p + "attn_norm.weight"], c["rms_eps"])
            q = self.matmul(h, p + "attn_q.weight")
            k = self.matmul(h, p + "attn_k.weight")
            v = self.matmul(h, p + "attn_v.weight")
            if c["bias"]:
                q = q + w[p + "attn_q.bias"]
                k = k + w[p + "attn_k.bias"]
                v = v + w[p + "attn_v.bias"]
            q = q.reshape(n, H, hd).transpose(0, 1)  # [H, n, hd]
            k = k.reshape(n, G, hd).transpose(0, 1)  # [G, n, hd]
            v = v.reshape(n, G, hd).transpose(0, 1)
            if c["qk_norm"]:
                q = rms_norm(q, w[p + "attn_q_norm.weight"], c["rms_eps"])
                k = rms_norm(k, w[p + "attn_k_norm.weight"], c["rms_eps"])
            local = layer_is_local(c, l)
            inv, msc = rope_inv_freq(c, local)
            q = rope(q, positions, c["pairing"], c["rope_base"], c["rope_dim"], inv, msc)
            k = rope(k, positions, c["pairing"], c["rope_base"], c["rope_dim"], inv, msc)
            k, v = self.store(k), self.store(v)
            pk, pv = past[l]
            pk = torch.as_tensor(pk, dtype=torch.float32)
            pv = torch.as_tensor(pv, dtype=torch.float32)
            if tuple(pk.shape) != (G, pos0, hd) or tuple(pv.shape) != (G, pos0, hd):
                raise ValueError(f"layer {l}: past K/V must be [{G}, {pos0}, {hd}]")
            K = torch.cat([pk, k], dim=1)  # [G, T, hd]
            Vv = torch.cat([pv, v], dim=1)
            out["kv"].append((K, Vv))
            if return_q:
                out["q"].append(q)
            Kh = K.repeat_interleave(rep, dim=0)  # [H, T, hd]
            Vh = Vv.repeat_interleave(rep, dim=0)
            s = (q @ Kh.transpose(1, 2)) * scale  # [H, n, T]
            if c["attn_softcap"]:
                s = c["attn_softcap"] * torch.tanh(s / c["attn_softcap"])
            mask = allowed & inside if local else allowed
            s = s.masked_fill(~mask, float("-inf"))
            a = torch.softmax(s, dim=-1)
            if return_attn:
                out["attn"].append(a)
                # what Finch (and kvpress) scores with: the plain causal
                # softmax(q.k / sqrt(hd)), whatever the layer's window,
                # soft-cap and query scale
                sp = ((q @ Kh.transpose(1, 2)) / math.sqrt(hd)).masked_fill(~allowed, float("-inf"))
                out["score_attn"].append(torch.softmax(sp, dim=-1))
            o = (a @ Vh).transpose(0, 1).reshape(n, H * hd)
            o = self.matmul(o, p + "attn_output.weight")
            if c["post_norms"]:
                o = rms_norm(o, w[p + "post_attention_norm.weight"], c["rms_eps"])
            x = x + o
            h = rms_norm(x, w[p + "ffn_norm.weight"], c["rms_eps"])
            g = self.matmul(h, p + "ffn_gate.weight")
            u = self.matmul(h, p + "ffn_up.weight")
            if c["act"] == "gelu_tanh":
                g = torch.nn.functional.gelu(g, approximate="tanh")
            else:
                g = torch.nn.functional.silu(g)
            o = self.matmul(g * u, p + "ffn_down.weight")
            if c["post_norms"]:
                o = rms_norm(o, w[p + "post_ffw_norm.weight"], c["rms_eps"])
            x = x + o
            out["hidden"].append(x.clone())
        hN = rms_norm(x, w["output_norm.weight"], c["rms_eps"])
        out["logits"] = self.matmul(hN, "token_embd.weight" if c["tied"] else "output.weight")
        if c["final_softcap"]:
            out["logits"] = c["final_softcap"] * torch.tanh(out["logits"] / c["final_softcap"])
        return out

    @torch.no_grad()
    def generate_greedy(self, ids, n_new, stop=None):
        """Greedy decoding (argmax, ties to the smaller id) through the cache:
        prefill ids, then one token at a time.  Returns the new ids."""
        ids = [int(i) for i in ids]
        r = self.forward(ids)
        past, pos = r["kv"], len(ids)
        gen = []
        nxt = argmax_first(r["logits"][-1])
        for _ in range(n_new):
            gen.append(nxt)
            if stop is not None and nxt in stop:
                break
            r = self.forward([nxt], pos0=pos, past=past)
            past, pos = r["kv"], pos + 1
            nxt = argmax_first(r["logits"][-1])
        return gen


def argmax_first(v):
    """Index of the maximum; ties go to the smallest index."""
    v = torch.as_tensor(v)
    m = v.max()
    return int(torch.nonzero(v == m)[0, 0])


# --------------------------------------------------------------- safetensors

_ST_DTYPES = {"F32": np.float32, "F16": np.float16, "F64": np.float64,
              "I32": np.int32, "I64": np.int64, "I16": np.int16, "I8": np.int8,
              "U8": np.uint8, "BOOL": np.bool_}


def bf16_bits_to_f32(u16):
    return (np.asarray(u16, dtype=np.uint16).astype(np.uint32) << 16).view(np.float32)


def read_safetensors(path):
    """Our own safetensors reader: u64 header length, JSON header, raw data.
    Returns (tensors: name -> np.ndarray (BF16 widened to float32),
    metadata dict)."""
    with open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 8:
        raise ValueError(f"{path}: too short")
    (hlen,) = struct.unpack_from("<Q", raw, 0)
    if 8 + hlen > len(raw):
        raise ValueError(f"{path}: header length out of range")
    header = json.loads(raw[8:8 + hlen].decode("utf-8"))
    base = 8 + hlen
    meta = header.pop("__metadata__", {}) or {}
    out = {}
    for name, info in header.items():
        dt = info["dtype"]
        shape = tuple(info["shape"])
        b, e = info["data_offsets"]
        if not (0 <= b <= e <= len(raw) - base):
            raise ValueError(f"{path}: {name}: offsets out of range")
        buf = raw[base + b: base + e]
        if dt == "BF16":
            arr = bf16_bits_to_f32(np.frombuffer(buf, dtype="<u2"))
        elif dt in _ST_DTYPES:
            arr = np.frombuffer(buf, dtype=np.dtype(_ST_DTYPES[dt]).newbyteorder("<")).copy()
        else:
            raise ValueError(f"{path}: {name}: unsupported dtype {dt}")
        if arr.size != int(np.prod(shape, dtype=np.int64)):
            raise ValueError(f"{path}: {name}: size does not match shape")
        out[name] = arr.reshape(shape)
    return out, meta


# ------------------------------------------------------------- HF directory

HF_LAYER_NAMES = {
    "input_layernorm.weight": "attn_norm.weight",
    "self_attn.q_proj.weight": "attn_q.weight",
    "self_attn.k_proj.weight": "attn_k.weight",
    "self_attn.v_proj.weight": "attn_v.weight",
    "self_attn.q_proj.bias": "attn_q.bias",
    "self_attn.k_proj.bias": "attn_k.bias",
    "self_attn.v_proj.bias": "attn_v.bias",
    "self_attn.o_proj.weight": "attn_output.weight",
    "post_attention_layernorm.weight": "ffn_norm.weight",
    "mlp.gate_proj.weight": "ffn_gate.weight",
    "mlp.up_proj.weight": "ffn_up.weight",
    "mlp.down_proj.weight": "ffn_down.weight",
}
HF_GLOBAL_NAMES = {
    "model.embed_tokens.weight": "token_embd.weight",
    "model.norm.weight": "output_norm.weight",
    "lm_head.weight": "output.weight",
}


def hf_name_to_gguf(name):
    if name in HF_GLOBAL_NAMES:
        return HF_GLOBAL_NAMES[name]
    parts = name.split(".")
    if len(parts) > 3 and parts[0] == "model" and parts[1] == "layers":
        rest = ".".join(parts[3:])
        if rest in HF_LAYER_NAMES:
            return f"blk.{int(parts[2])}.{HF_LAYER_NAMES[rest]}"
    return None


def gguf_name_to_hf(name):
    for k, v in HF_GLOBAL_NAMES.items():
        if v == name:
            return k
    parts = name.split(".")
    rest = ".".join(parts[2:])
    for k, v in HF_LAYER_NAMES.items():
        if v == rest:
            return f"model.layers.{int(parts[1])}.{k}"
    raise KeyError(name)


def hf_config_to_cfg(hc):
    dim = int(hc["hidden_size"])
    H = int(hc["num_attention_heads"])
    G = int(hc.get("num_key_value_heads") or H)
    hd = int(hc.get("head_dim") or dim // H)
    rope_dim = int(hd * float(hc.get("partial_rotary_factor", 1.0)))
    if hc.get("rope_scaling"):
        raise ValueError("rope_scaling is not supported by the reference")
    model_type = hc.get("model_type", "llama")
    return {
        "dim": dim, "n_layer": int(hc["num_hidden_layers"]), "n_head": H, "n_kv_head": G,
        "head_dim": hd, "ffn_dim": int(hc["intermediate_size"]), "vocab": int(hc["vocab_size"]),
        "rms_eps": float(hc.get("rms_norm_eps", 1e-6)),
        "rope_base": float(hc.get("rope_theta", 10000.0)), "rope_dim": rope_dim,
        "pairing": "half", "tied": bool(hc.get("tie_word_embeddings", False)),
        "bias": bool(hc.get("attention_bias", False)) or model_type == "qwen2",
    }


def load_hf_dir(path):
    """(cfg, weights) of a Hugging Face Llama/Qwen2 directory: config.json +
    model.safetensors (or model.safetensors.index.json shards)."""
    with open(os.path.join(path, "config.json")) as f:
        hc = json.load(f)
    cfg = hf_config_to_cfg(hc)
    files = []
    idx = os.path.join(path, "model.safetensors.index.json")
    if os.path.exists(os.path.join(path, "model.safetensors")):
        files = ["model.safetensors"]
    elif os.path.exists(idx):
        with open(idx) as f:
            files = sorted(set(json.load(f)["weight_map"].values()))
    else:
        raise FileNotFoundError(f"{path}: no model.safetensors")
    weights = {}
    for fn in files:
        t, _ = read_safetensors(os.path.join(path, fn))
        for name, arr in t.items():
            g = hf_name_to_gguf(name)
            if g is None:
                if name.endswith("rotary_emb.inv_freq"):
                    continue
                raise ValueError(f"unknown tensor {name}")
            weights[g] = torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32))
    if "token_embd.weight" not in weights and "output.weight" in weights:
        # tied models saved by transformers may keep only lm_head.weight (the
        # shared tensor is written once; __metadata__ names the alias)
        weights["token_embd.weight"] = weights.pop("output.weight")
        cfg["tied"] = True
    if "output.weight" not in weights:
        cfg["tied"] = True
    elif cfg["tied"]:
        del weights["output.weight"]  # tied: the embedding is the output
    if cfg["bias"] and "blk.0.attn_q.bias" not in weights:
        cfg["bias"] = False
    return cfg, weights


def load_hf_tokenizer_vocab(path):
    """id -> piece from tokenizer.json (model.vocab plus added tokens)."""
    with open(os.path.join(path, "tokenizer.json"), encoding="utf-8") as f:
        t = json.load(f)
    inv = {i: s for s, i in t["model"]["vocab"].items()}
    for a in t.get("added_tokens", []):
        inv[a["id"]] = a["content"]
    return inv


def decode_pieces(pieces):
    """SentencePiece-style detokenisation of a list of pieces: '▁' -> ' ',
    <0xXX> -> byte; the caller strips a leading space if wanted."""
    bs = bytearray()
    for p in pieces:
        if len(p) == 6 and p.startswith("<0x") and p.endswith(">"):
            bs.append(int(p[3:5], 16))
        else:
            bs += p.replace("\u2581", " ").encode("utf-8")
    return bs.decode("utf-8", errors="replace")


def main(argv):
    import argparse
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("hf_dir")
    ap.add_argument("--ids", default="1", help="comma-separated prompt ids (default: BOS=1)")
    ap.add_argument("-n", type=int, default=32)
    a = ap.parse_args(argv)
    cfg, w = load_hf_dir(a.hf_dir)
    m = LlamaRef(cfg, w)
    ids = [int(s) for s in a.ids.split(",")]
    gen = m.generate_greedy(ids, a.n)
    print("cfg:", cfg)
    print("generated ids:", gen)
    try:
        inv = load_hf_tokenizer_vocab(a.hf_dir)
        print("text:", repr(decode_pieces([inv[i] for i in ids + gen])))
    except FileNotFoundError:
        pass


if __name__ == "__main__":
    main(sys.argv[1:])
