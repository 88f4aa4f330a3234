#!/usr/bin/python3
"""finch_ref.py - the PyTorch twin of src/press/finch.c: Finch KV-cache compression
(Corallo & Papotti, TACL 2024) on top of llama_ref.LlamaRef.

Written independently of the C code, from docs/finch.md and the spec:

  iterative (the paper): for each chunk c of S context tokens, one forward of
    x = c ++ Q at positions past.. over the compacted cache; the attention
    probabilities of the question rows (LlamaRef's return_attn, fp32 causal
    softmax over every key the row sees) are summed over the question rows
    and the query heads of each KV group, for context columns j < past + |c|;
    normalize: row i (at absolute position p) weighted by p = keys seen - 1
    ("authors": by p + 1, the keys it sees, as the authors' Mistral code).
    k_t = min(past + |c|, max(1, floor(K * c_t / N))) (schedule_kind "authors":
    k_t = past + floor(|c| / ceil(N / K)), the authors' code); keep the k_t best
    (ties: smaller position), sort, re-rotate kept keys to 0..k_t-1, drop Q.

  oneshot (kvpress FinchPress): one forward of C ++ Q; the window rows' attention
    over the first N columns, row i weighted by N + i, mean over rows then over
    the query heads of the group (layer: all heads); n_kept from cr as kvpress;
    the question's positions always kept; re-rotate to 0..n_kept-1.

Scores are accumulated in float64 from float32 probabilities.  Selection is
a stable sort by (-score, position).

  finch_iterative(model, C, Q, K, chunk, select, normalize, prompt=None,
                  schedule_kind="proportional" | "authors")
  finch_oneshot(model, C, Q, n_kept, select, normalize, prompt)
    -> dict(kept [L, G, k] int32, keys/values [L, G, k, hd] float32,
            logits [vocab] float32 (last prompt position), answer [<= 6] int32
            (greedy continuation, cut before a step whose top two logits are
            closer than 1e-3), schedule [k_t...], margin float)

`margin` is the smallest gap, relative to the largest score of that head,
between the last kept and the first dropped score over every selection: the
fixture writer rejects cases where rounding could flip the choice.
"""

import math
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from llama_ref import rerotate  # noqa: E402


ANSWER_TOKENS = 6


def chunk_budget(K, N, past, chunk_len, c_t):
    """The paper's per-chunk budget (integer arithmetic)."""
    return min(past + chunk_len, max(1, (min(K, N) * c_t) // N))


def chunk_budget_authors(K, N, past, chunk_len):
    """The authors' code (giulio98/context-compression): an integer factor
    cf = ceil(N / K) and an additive budget k_t = k_{t-1} + floor(|c_t| / cf)."""
    K = max(1, min(K, N))
    cf = -(-N // K)
    return past + chunk_len // cf


def oneshot_n_kept(N, m, cr):
    """kvpress: max(1, int(k_len * (1 - compression_ratio))), k_len = N + m."""
    return max(1, int((N + m) * (1 - cr)))


def select_top(scores, k):
    """Positions of the k largest scores (float64 numpy), ties to the smaller
    position, returned ascending; and the relative gap at the cut."""
    s = np.asarray(scores, dtype=np.float64)
    order = np.lexsort((np.arange(s.size), -s))  # primary -s, then position
    keep = np.sort(order[:k])
    margin = math.inf
    if 0 < k < s.size:
        top = max(abs(s[order[0]]), 1e-30)
        margin = (s[order[k - 1]] - s[order[k]]) / top
    return keep, margin


def question_attention(attn, n_q, n_cols, qstart, normalize):
    """attn [H, n, T] of one forward; the last n_q rows are the question rows
    (absolute positions qstart..).  Returns float64 [H, n_q, n_cols] with the
    row weights applied: normalize True (kvpress) weights a row by the keys it
    sees minus one, "authors" (the authors' Mistral code) by the keys it sees."""
    a = attn[:, -n_q:, :n_cols].double()
    if normalize:
        w = torch.arange(qstart, qstart + n_q, dtype=torch.float64)
        if normalize == "authors":
            w = w + 1
        a = a * w.reshape(1, n_q, 1)
    return a


def _rotate_to_ranks(keys, kept, cfg, layer=0):
    """keys [k, hd] stored at positions kept[r]; rotate each to position r
    with the layer's (scaled) RoPE frequencies."""
    from llama_ref import layer_is_local, rope_inv_freq
    delta = np.arange(len(kept)) - np.asarray(kept)
    inv, _ = rope_inv_freq(cfg, layer_is_local(cfg, layer))
    return rerotate(keys, torch.as_tensor(delta), cfg["pairing"], cfg["rope_base"], cfg["rope_dim"], inv)


def _with_prefix(scores, P, k):
    """select_top over the candidates after the protected prefix (columns
    P..), as column indices, with the prefix 0..P-1 in front."""
    keep, margin = select_top(scores[P:], k)
    return np.concatenate([np.arange(P), keep + P]), margin


def finch_iterative(model, C, Q, K, chunk, select="head", normalize=True, prompt=None, protect=0,
                    schedule_kind="proportional"):
    """protect = P: the first P context tokens are fed first and always kept
    at positions 0..P-1; the chunks, K and the schedule cover the other
    N - P tokens, whose top-k never includes a prefix column."""
    cfg = model.cfg
    L, H, G, hd = cfg["n_layer"], cfg["n_head"], cfg["n_kv_head"], cfg["head_dim"]
    rep = H // G
    C, Q = [int(t) for t in C], [int(t) for t in Q]
    P = int(protect)
    N, m = len(C) - P, len(Q)
    K = min(K, N)
    S = chunk if chunk and chunk < N else N
    past = [(torch.zeros(G, 0, hd), torch.zeros(G, 0, hd)) for _ in range(L)]
    orig = [[np.zeros(0, dtype=np.int64) for _ in range(G)] for _ in range(L)]
    if P:
        r = model.forward(C[:P], pos0=0, past=past)
        past = r["kv"]
        orig = [[np.arange(P) for _ in range(G)] for _ in range(L)]
    n_past, schedule, margin = P, [], math.inf
    for c0 in range(P, P + N, S):
        c = C[c0:c0 + S]
        r = model.forward(c + Q, pos0=n_past, past=past, return_attn=True)
        qstart = n_past + len(c)
        if schedule_kind == "authors":
            k_t = chunk_budget_authors(K, N, n_past - P, len(c))
        else:
            k_t = chunk_budget(K, N, n_past - P, len(c), c0 - P + len(c))
        schedule.append(k_t)
        new_past = []
        for l in range(L):
            Kl, Vl = r["kv"][l]
            a = question_attention(r["score_attn"][l], m, qstart, qstart, normalize)
            per_head = a.sum(dim=1)                              # [H, qstart]
            per_group = per_head.reshape(G, rep, qstart).sum(dim=1)  # [G, qstart]
            rows = [np.concatenate([orig[l][g], np.arange(c0, c0 + len(c))]) for g in range(G)]
            if select == "layer":
                keep, mg = _with_prefix(per_group.sum(dim=0).numpy(), P, k_t)
                keeps = [keep] * G
                margin = min(margin, mg)
            else:
                keeps = []
                for g in range(G):
                    keep, mg = _with_prefix(per_group[g].numpy(), P, k_t)
                    keeps.append(keep)
                    margin = min(margin, mg)
            nk, nv = [], []
            for g in range(G):
                keep = keeps[g]
                nk.append(model.store(_rotate_to_ranks(Kl[g, keep], keep, cfg, l)))
                nv.append(Vl[g, keep])
                orig[l][g] = rows[g][keep]
            new_past.append((torch.stack(nk), torch.stack(nv)))
        past, n_past = new_past, P + k_t
    return _finish(model, past, n_past, orig, Q if prompt is None else prompt, schedule, margin)


def kv_chunk_select(vec, chunk, cr):
    """kvpress chunk_length: top-k per chunk of the score vector over C ++ Q,
    each chunk keeping max(1, int(len * (1 - cr))); ascending positions and
    the smallest relative gap over the chunks.  Where a chunk's share cuts
    into the padded question (equal scores), the earlier positions stay (ties
    to the smaller position; torch.topk leaves that order undefined)."""
    keep, margin = [], math.inf
    pad = vec.max()
    for i in range(0, vec.size, chunk):
        ch = vec[i:i + chunk]
        k = max(1, int(ch.size * (1 - cr)))
        kp, mg = select_top(ch, k)
        keep.append(kp + i)
        if not (k < ch.size and np.sort(ch)[::-1][k] == pad):
            margin = min(margin, mg)  # a cut inside the padded question is a tie by construction
    return np.concatenate(keep), margin


def finch_oneshot(model, C, Q, n_kept, select="head", normalize=True, prompt=None, protect=0, kv_chunk=None,
                  cr=None, rerotate=True):
    """n_kept counts the protected prefix (protect = P), the k best other
    context positions and the question."""
    cfg = model.cfg
    L, H, G = cfg["n_layer"], cfg["n_head"], cfg["n_kv_head"]
    rep = H // G
    C, Q = [int(t) for t in C], [int(t) for t in Q]
    N, m, P = len(C), len(Q), int(protect)
    if not prompt:
        raise ValueError("oneshot needs a non-empty answer prefix")
    if n_kept < m + P:
        raise ValueError("n_kept smaller than the question and the prefix")
    k = n_kept - m - P
    r = model.forward(C + Q, return_attn=True)
    past, orig, margin = [], [], math.inf
    for l in range(L):
        Kl, Vl = r["kv"][l]
        a = question_attention(r["score_attn"][l], m, N, N, normalize)  # row i weighted by N + i
        per_head = a.mean(dim=1)                                     # mean over the window
        window = np.arange(N, N + m)
        if kv_chunk and select != "head":
            raise ValueError("kvpress chunk_length: per-head selection only")
        if kv_chunk:  # the question's scores padded with max + 1, as kvpress does
            per_group = per_head.reshape(G, rep, N).mean(dim=1).numpy()
            pad = np.full(m, per_group.max() + 1)
            keeps = []
            for g in range(G):
                keep, mg = kv_chunk_select(np.concatenate([per_group[g], pad]), kv_chunk, cr)
                keeps.append(keep)
                margin = min(margin, mg)
            n_kept = keeps[0].size
        elif select == "layer":
            keep, mg = _with_prefix(per_head.mean(dim=0).numpy(), P, k)
            keeps = [keep] * G
            margin = min(margin, mg)
        else:
            per_group = per_head.reshape(G, rep, N).mean(dim=1)
            keeps = []
            for g in range(G):
                keep, mg = _with_prefix(per_group[g].numpy(), P, k)
                keeps.append(keep)
                margin = min(margin, mg)
        if not kv_chunk:
            keeps = [np.concatenate([kp, window]) for kp in keeps]
        if rerotate:
            nk = [model.store(_rotate_to_ranks(Kl[g, keeps[g]], keeps[g], cfg, l)) for g in range(G)]
        else:  # kvpress rerotate_keys=False: the keys of the original positions
            nk = [Kl[g, keeps[g]] for g in range(G)]
        nv = [Vl[g, keeps[g]] for g in range(G)]
        past.append((torch.stack(nk), torch.stack(nv)))
        orig.append(keeps)
    # without re-rotation kvpress continues at the original length, which
    # counts its removed delimiter: the prompt starts at N + m + 1
    offset = 0 if rerotate else N + m + 1 - n_kept
    return _finish(model, past, n_kept, orig, prompt, [n_kept], margin, pos_offset=offset)


def _finish(model, past, n_past, orig, prompt, schedule, margin, n_answer=ANSWER_TOKENS, pos_offset=0):
    kept = np.array([[np.asarray(o) for o in layer] for layer in orig], dtype=np.int32)
    keys = torch.stack([kv[0] for kv in past]).numpy().astype(np.float32)
    values = torch.stack([kv[1] for kv in past]).numpy().astype(np.float32)
    prompt = [int(t) for t in prompt]
    r = model.forward(prompt, pos0=n_past, past=past, pos_offset=pos_offset)
    logits = r["logits"][-1].numpy().astype(np.float32)
    # greedy answer; cut where the top two logits are too close to call
    answer, pos, lg = [], n_past + len(prompt), r["logits"][-1]
    for _ in range(n_answer):
        top2 = torch.topk(lg, 2).values
        if float(top2[0] - top2[1]) < 1e-3:
            break
        nxt = int(torch.argmax(lg))
        answer.append(nxt)
        r = model.forward([nxt], pos0=pos, past=r["kv"], pos_offset=pos_offset)
        pos, lg = pos + 1, r["logits"][-1]
    return {"kept": kept, "keys": keys, "values": values, "logits": logits,
            "answer": np.array(answer, dtype=np.int32), "schedule": schedule, "margin": margin}


def main(argv):
    """Quick look: finch_ref.py MODEL(.gguf | HF dir) N m K [chunk]."""
    from llama_ref import LlamaRef, load_hf_dir
    path, N, m, K = argv[0], int(argv[1]), int(argv[2]), int(argv[3])
    chunk = int(argv[4]) if len(argv) > 4 else 0
    if path.endswith(".gguf"):
        from gguf_reader import load_gguf_model
        cfg, w, _ = load_gguf_model(path)
    else:
        cfg, w = load_hf_dir(path)
    model = LlamaRef(cfg, w)
    rng = np.random.default_rng(0)
    ids = rng.integers(0, cfg["vocab"], N + m)
    out = finch_iterative(model, ids[:N], ids[N:], K, chunk)
    print("schedule", out["schedule"], "margin", out["margin"])
    print("kept[0,0]", out["kept"][0, 0].tolist())


if __name__ == "__main__":
    main(sys.argv[1:])
