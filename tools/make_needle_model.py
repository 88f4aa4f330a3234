#!/usr/bin/python3
"""make_needle_model.py - finch's own retrieval model, built by hand.

No training: every weight of testdata/models/needle.gguf is set analytically
so that a 2-layer Llama (RMSNorm, RoPE, attention, SwiGLU MLP - the MLPs are
zero) answers needle-in-a-haystack questions:

    ... The special magic number for pizza is 4821. ...
    What is the special magic number for pizza? The special magic number for pizza is
    -> " 4821" "." "</s>"

The construction (docs/needle-model.md has the derivation and the margins):

  residual stream (dim 192; 152 dims used)
    c       a large constant component (every token), source of the
            positional queries/keys and of the layer-1 query constants
    pad     makes every token embedding the same norm sqrt(192), so RMSNorm
            is the identity at layer 0 (and within 1% of it later)
    is, for, val, dot   own-token flags ("▁is", "▁for", any value, ".")
    kcode   own key code, 48 dims: key number k -> sign * e_(k%48)
            (sign + for k < 48, - otherwise): 96 keys
    vcode   own value code, 48 dims, the same scheme: 96 values
    p1_is   layer 0 writes: "the previous token is ▁is"
    p3_for  layer 0 writes: "the token 3 back is ▁for"
    prev    layer 0 writes: kcode of token j-1 + kcode of token j-2

  layer 0: three previous-token heads (offsets -1, -2, -3) over one shared
    K/V head.  k is a constant vector, q the same vector rotated: per rotary
    pair q = s R(o theta) e1, k = s e1, so the score is
    sum_i s_i^2 cos((j - p - o) theta_i) / 8, largest exactly at j = p + o and
    at least 40 nats lower everywhere else within the 4096-position window
    (weights s_i chosen over the 7 fastest rotary frequencies).
  layer 1: three identical induction heads over one shared K/V head.  Content
    lives in the 25 rotary pairs whose frequency is at most 1.6e-5
    rad/position (rope base 1e22), so it turns by at most 0.063 rad over the
    window.  score(T, j) = A <prev_T, prev_j> + B p1_is_j + C p3_for_j with
    (A, B, C) = (60, 40, 30) nats.  At the question's last token ("is" after
    <key>) prev_T = kcode(key); only the needle's value position
    (for <key> is [V]) has all three terms: 130 nats, against at most 90
    anywhere else.  OV copies vcode(V) into the vcode subspace of the last
    position; the output matrix reads it back (value rows = 5 vcode(V)).
  extras: own "val" flag -> "." (50), own "dot" flag -> "</s>" (50), so greedy
    decoding writes " V." and stops.

Tokenizer: SentencePiece-style ("llama") with a word-level vocabulary made
prefix-closed (every prefix of a word piece is a piece, so SentencePiece's BPE
merges build each word), single characters, byte fallback <0x00>..<0xFF>.

    /usr/bin/python3 tools/make_needle_model.py --out testdata/models/needle.gguf
    [--check N]  also run N small generated needle tasks through the twin

Deterministic: no randomness beyond a fixed-seed choice of the value numbers;
the same bytes every run.
"""

import argparse
import heapq
import math
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

SPACE = "\u2581"
T_NORMAL, T_UNKNOWN, T_CONTROL, T_BYTE = 1, 2, 3, 6
SEED = 4821

# ------------------------------------------------------------------ words

# Needle/question template words.
TEMPLATE_WORDS = "The special magic number for is What".split()

# Our own filler sentences (haystack "filler"); every word is in the vocabulary.
# Many contain "is" and "for" (the induction head must ignore them), and
# "for it is late" has the full "for X is" shape with a non-key X.
FILLER_SENTENCES = [
    "The grass is green.",
    "The sky is blue.",
    "The sun is yellow.",
    "Here we go.",
    "There and back again.",
    "The river is calm and the road is long.",
    "It is time for a walk in the park.",
    "A bird is singing in the old tree.",
    "We went to the city for the day.",
    "The house is on the hill.",
    "She said that the water is cold.",
    "They came home after the rain.",
    "This is a good day for a long walk.",
    "The night is dark and the moon is bright.",
    "He made a cup of tea for his father.",
    "Rest now, for it is late.",
]

# Frequent words of the King James Bible (the other haystack) so that it
# reads as words rather than letters; case matters ("And", "LORD").
COMMON_WORDS = """the and of to that in shall he unto his a for they be is him not them
with it all thou was thy which my me said their have thee will ye from as are
were out upon man you by when king this but up hath people son came there had
house into her on come one children before your day land an also against men
we shalt at hand us made went saying no do even saith go every things our down
if after sons let so or may say make because over these earth did name great
she thine any away among forth put city days brought am father heart two pass
then give neither should according took nor whom behold know place take God
LORD Lord Israel And The For But Then He I O It A There Here We She They This
What Rest grass green sky blue sun yellow back again river calm road long time
walk park bird singing old tree water cold home rain good night dark moon
bright cup tea now late special magic number""".split()

# Keys: everyday nouns that start no word of the King James Bible (checked
# once against ../shared/assets/haystack/kjv_bible.txt.gz: no word of it, after
# a space or at a line start, begins with any of these strings) and no
# filler/common word; so a key token never occurs in either haystack.
KEYS = """laptop pizza guitar rocket tennis robot camera piano violin tomato potato
banana coffee jacket pencil bicycle tractor penguin dolphin giraffe kangaroo
zebra panda koala tiger parrot hamster squirrel raccoon walrus octopus jellyfish
lobster cactus tulip orchid sunflower bamboo mango papaya kiwi lemon avocado
pepper carrot broccoli cabbage pumpkin cookie muffin waffle pancake sandwich
burger noodle yogurt chocolate candy popcorn pretzel bagel donut truck subway
scooter airplane helicopter submarine canoe kayak yacht saxophone clarinet
banjo ukulele drum cello tuba accordion radio television telephone computer
keyboard monitor printer scanner battery magnet umbrella sweater scarf mitten
sneaker backpack wallet""".split()

SINGLE_CHARS = ([SPACE] + [chr(c) for c in range(ord("a"), ord("z") + 1)]
                + [chr(c) for c in range(ord("A"), ord("Z") + 1)]
                + [str(d) for d in range(10)] + list(".,;:?!'\"()-"))

# ------------------------------------------------------------- dimensions

DIM, N_LAYER, N_HEAD, N_KV_HEAD, HEAD_DIM, FFN = 192, 2, 3, 1, 64, 32
CTX = 4096                      # context window (positions)
ROPE_BASE = float(np.float32(1e22))  # as stored in the file (float32)
RMS_EPS = float(np.float32(1e-5))
N_CODE = 48                     # code dimensions; 2 * N_CODE keys and values
N_POS_PAIRS = 7                 # rotary pairs 0..6: positional (layer 0)
# residual layout
R_C, R_PAD, R_IS, R_FOR, R_VAL, R_DOT, R_P1IS, R_P3FOR = range(8)
R_KCODE = 8                     # own key code     [8, 56)
R_VCODE = R_KCODE + N_CODE      # own value code   [56, 104)
R_PREV = R_VCODE + N_CODE       # key codes of tokens j-1 and j-2   [104, 152)
C0 = math.sqrt(DIM - 4)         # constant component; pad^2 = 4 - |features|^2
# layer-0 heads: attended offsets
OFFSETS = (-1, -2, -3)
POS_MARGIN = 40.0               # nats: wrong offset vs the right one, at least
# layer-1 score terms (nats)
A_KEY, B_IS, C_FOR = 60.0, 40.0, 30.0
GAMMA = 4.0                     # layer-1 OV gain (split over the 3 heads)
KAPPA, KAPPA_DOT, KAPPA_EOS = 5.0, 50.0, 50.0


def values_list(seed=SEED):
    """96 four-digit numbers: 16 3-digit stems (482 and 15 random ones) x 6
    last digits (1 and 5 random ones for 482, 6 random ones otherwise);
    stems are shared so that the prefix pieces stay few."""
    rng = np.random.default_rng(seed)
    pool = np.array([s for s in range(100, 1000) if s != 482])
    stems = sorted(rng.choice(pool, size=15, replace=False).tolist() + [482])
    out = []
    for s in stems:
        if s == 482:
            last = [1] + rng.choice(np.arange(2, 10), size=5, replace=False).tolist()
        else:
            last = rng.choice(10, size=6, replace=False).tolist()
        out += [str(s * 10 + d) for d in sorted(last)]
    return out


def code_of(k):
    """(index, sign) of key / value number k in 0..95."""
    return k % N_CODE, (1.0 if k < N_CODE else -1.0)


# -------------------------------------------------------------- tokenizer

def build_vocab():
    """The vocabulary: <unk> <s> </s>, <0x00>..<0xFF>, single characters,
    then the word pieces closed under prefixes, sorted by (length, text) so
    that a piece's prefixes score higher than it.  Normal pieces score
    -(id - 259)."""
    values = values_list()
    words = set()
    for w in TEMPLATE_WORDS + COMMON_WORDS + KEYS + values:
        words.add(SPACE + w)
    for s in FILLER_SENTENCES:
        for w in s.replace(".", " ").replace(",", " ").split():
            words.add(SPACE + w)
    for c in SINGLE_CHARS[1:]:
        words.add(SPACE + c)
    pieces = set()
    for w in words:
        for k in range(2, len(w) + 1):
            pieces.add(w[:k])
    tokens = ["<unk>", "<s>", "</s>"] + ["<0x%02X>" % b for b in range(256)]
    types = [T_UNKNOWN, T_CONTROL, T_CONTROL] + [T_BYTE] * 256
    singles = list(SINGLE_CHARS)
    multi = sorted(p for p in pieces if p not in singles)
    multi.sort(key=lambda p: (len(p), p))
    tokens += singles + multi
    types += [T_NORMAL] * (len(singles) + len(multi))
    scores = [0.0] * 259 + [-float(i - 259) for i in range(259, len(tokens))]
    idx = {t: i for i, t in enumerate(tokens)}
    assert len(idx) == len(tokens)
    v = dict(tokens=tokens, scores=scores, types=types, bos=1, eos=2, unk=0,
             keys=list(KEYS), values=values,
             key_ids=[idx[SPACE + k] for k in KEYS],
             value_ids=[idx[SPACE + x] for x in values],
             id={"is": idx[SPACE + "is"], "for": idx[SPACE + "for"], ".": idx["."],
                 "?": idx["?"]})
    assert len(KEYS) == 2 * N_CODE and len(values) == 2 * N_CODE
    return v


class Encoder:
    """SentencePiece BPE as sentencepiece and llama.cpp do it (dummy prefix,
    spaces -> U+2581, repeatedly merge the adjacent pair whose concatenation
    is a normal piece with the highest score, leftmost on ties; leftover
    symbols that are no piece become <0xXX> bytes), with a heap: O(n log n),
    for long haystacks.  Same result as tok_ref.spm_encode."""

    def __init__(self, vocab):
        self.v = vocab
        self.idx = {}
        for i, (t, ty) in enumerate(zip(vocab["tokens"], vocab["types"])):
            if ty == T_NORMAL and t not in self.idx:
                self.idx[t] = i
        self.byte = {int(t[3:5], 16): i for i, t in enumerate(vocab["tokens"])
                     if vocab["types"][i] == T_BYTE}
        self.sc = vocab["scores"]

    def encode(self, text, add_bos=True):
        ids = [self.v["bos"]] if add_bos else []
        if not text:
            return ids
        sym = list(SPACE + text.replace(" ", SPACE))
        n = len(sym)
        nxt = list(range(1, n + 1))
        nxt[-1] = -1
        prv = list(range(-1, n - 1))
        alive = [True] * n
        heap = []

        def push(l, r):
            p = sym[l] + sym[r]
            i = self.idx.get(p)
            if i is not None:
                heapq.heappush(heap, (-self.sc[i], l, r, len(p)))

        for i in range(n - 1):
            push(i, i + 1)
        while heap:
            _, l, r, ln = heapq.heappop(heap)
            if not (alive[l] and alive[r]) or nxt[l] != r or len(sym[l]) + len(sym[r]) != ln:
                continue
            sym[l] += sym[r]
            alive[r] = False
            nxt[l] = nxt[r]
            if nxt[r] != -1:
                prv[nxt[r]] = l
            if prv[l] != -1:
                push(prv[l], l)
            if nxt[l] != -1:
                push(l, nxt[l])
        i = 0
        while i != -1:
            p = sym[i]
            t = self.idx.get(p)
            if t is not None:
                ids.append(t)
            else:
                ids.extend(self.byte[b] for b in p.encode("utf-8"))
            i = nxt[i]
        return ids

    def decode(self, ids):
        bs = bytearray()
        for i in ids:
            t, ty = self.v["tokens"][i], self.v["types"][i]
            if ty == T_CONTROL:
                continue
            if ty == T_BYTE:
                bs.append(int(t[3:5], 16))
            else:
                bs += t.replace(SPACE, " ").encode("utf-8")
        return bs.decode("utf-8", errors="replace")


# ---------------------------------------------------------------- weights

def rope_thetas():
    i = np.arange(HEAD_DIM // 2, dtype=np.float64)
    return ROPE_BASE ** (-2.0 * i / HEAD_DIM)


def positional_weights(window=CTX, iters=4000):
    """Weights w_i >= 0 (sum 1) over the positional rotary pairs that make the
    smallest deficit D(n) = sum_i w_i (1 - cos(n theta_i)), n = 1..window, as
    large as possible (multiplicative weights on the worst offsets; plain
    float64 numpy, deterministic).  Returns (w, min deficit)."""
    th = rope_thetas()[:N_POS_PAIRS]
    n = np.arange(1, window + 1, dtype=np.float64)[:, None]
    M = 1.0 - np.cos(n * th[None, :])
    w = np.full(N_POS_PAIRS, 1.0 / N_POS_PAIRS)
    best_w, best = w.copy(), (M @ w).min()
    for _ in range(iters):
        D = M @ w
        if D.min() > best:
            best, best_w = D.min(), w.copy()
        soft = np.exp(-(D - D.min()) * 50.0)
        soft /= soft.sum()
        g = soft @ M
        w = w * np.exp(0.5 * g / g.max())
        w /= w.sum()
    return best_w, best


def head_content_dims():
    """Head dims (HF half pairing: pair i = dims (i, i+32)) of layer 1:
    code dim m -> head dim, and the two flag dims (the slowest pair)."""
    half = HEAD_DIM // 2
    code = []
    for i in range(N_POS_PAIRS, half - 1):
        code += [i, i + half]
    assert len(code) == N_CODE
    return code, half - 1, HEAD_DIM - 1


def build_weights(vocab):
    """Weights in HF orientation (W [out, in]), GGUF names; cfg for llama_ref."""
    V = len(vocab["tokens"])
    hd, H, G, d = HEAD_DIM, N_HEAD, N_KV_HEAD, DIM
    f32 = np.float32
    # ---- token embedding: c, flags, own code, pad to norm sqrt(dim)
    feat = np.zeros((V, d), np.float64)
    feat[vocab["id"]["is"], R_IS] = 1
    feat[vocab["id"]["for"], R_FOR] = 1
    feat[vocab["id"]["."], R_DOT] = 1
    for k, t in enumerate(vocab["key_ids"]):
        m, s = code_of(k)
        feat[t, R_KCODE + m] = s
    for k, t in enumerate(vocab["value_ids"]):
        m, s = code_of(k)
        feat[t, R_VCODE + m] = s
        feat[t, R_VAL] = 1
    feat[:, R_C] = C0
    pad2 = d - (feat ** 2).sum(1)
    assert pad2.min() >= 0
    feat[:, R_PAD] = np.sqrt(pad2)
    w = {"token_embd.weight": feat.astype(f32)}
    ones = np.ones(d, f32)
    th = rope_thetas()
    half = hd // 2
    rt = math.sqrt(hd)

    def mats():
        return (np.zeros((H * hd, d)), np.zeros((G * hd, d)), np.zeros((G * hd, d)),
                np.zeros((d, H * hd)))

    # ---- layer 0: previous-token heads (one shared K/V head)
    pw, dmin = positional_weights()
    peak = POS_MARGIN / dmin             # nats at the right offset
    s = np.sqrt(rt * pw * peak)          # q.k / sqrt(hd) = sum_i s_i^2 cos(...)
    Wq, Wk, Wv, Wo = mats()
    for i in range(N_POS_PAIRS):
        Wk[i, R_C] = s[i] / C0           # k = s e1 in every positional pair
    for h, o in enumerate(OFFSETS):      # q = s R(o theta) e1
        for i in range(N_POS_PAIRS):
            Wq[h * hd + i, R_C] = s[i] * math.cos(o * th[i]) / C0
            Wq[h * hd + i + half, R_C] = s[i] * math.sin(o * th[i]) / C0
    for m in range(N_CODE):              # v = [key code, is, for]
        Wv[m, R_KCODE + m] = 1
    Wv[N_CODE, R_IS] = 1
    Wv[N_CODE + 1, R_FOR] = 1
    for m in range(N_CODE):              # offsets -1 and -2: key code -> prev
        Wo[R_PREV + m, 0 * hd + m] = 1
        Wo[R_PREV + m, 1 * hd + m] = 1
    Wo[R_P1IS, 0 * hd + N_CODE] = 1      # offset -1: is -> p1_is
    Wo[R_P3FOR, 2 * hd + N_CODE + 1] = 1  # offset -3: for -> p3_for
    lay = {0: (Wq, Wk, Wv, Wo)}

    # ---- layer 1: induction heads (three identical query heads)
    code_dims, d_is, d_for = head_content_dims()
    Wq, Wk, Wv, Wo = mats()
    for m in range(N_CODE):
        Wk[code_dims[m], R_PREV + m] = 1
        Wv[m, R_VCODE + m] = 1
    Wk[d_is, R_P1IS] = 1
    Wk[d_for, R_P3FOR] = 1
    for h in range(H):
        b = h * hd
        for m in range(N_CODE):
            Wq[b + code_dims[m], R_PREV + m] = rt * A_KEY
            Wo[R_VCODE + m, b + m] = GAMMA / H
        Wq[b + d_is, R_C] = rt * B_IS / C0
        Wq[b + d_for, R_C] = rt * C_FOR / C0
    lay[1] = (Wq, Wk, Wv, Wo)

    for l in range(N_LAYER):
        p = f"blk.{l}."
        q, k, v, o = lay[l]
        w[p + "attn_norm.weight"] = ones
        w[p + "attn_q.weight"] = q.astype(f32)
        w[p + "attn_k.weight"] = k.astype(f32)
        w[p + "attn_v.weight"] = v.astype(f32)
        w[p + "attn_output.weight"] = o.astype(f32)
        w[p + "ffn_norm.weight"] = ones
        w[p + "ffn_gate.weight"] = np.zeros((FFN, d), f32)
        w[p + "ffn_up.weight"] = np.zeros((FFN, d), f32)
        w[p + "ffn_down.weight"] = np.zeros((d, FFN), f32)
    w["output_norm.weight"] = ones
    out = np.zeros((V, d), f32)
    for k, t in enumerate(vocab["value_ids"]):
        m, sg = code_of(k)
        out[t, R_VCODE + m] = KAPPA * sg
    out[vocab["id"]["."], R_VAL] = KAPPA_DOT
    out[vocab["eos"], R_DOT] = KAPPA_EOS
    w["output.weight"] = out
    cfg = dict(dim=d, n_layer=N_LAYER, n_head=H, n_kv_head=G, head_dim=hd, ffn_dim=FFN,
               vocab=V, rms_eps=RMS_EPS, rope_base=ROPE_BASE, rope_dim=hd,
               pairing="half", tied=False, bias=False)
    info = dict(pos_weights=pw.tolist(), pos_min_deficit=float(dmin), pos_peak_nats=float(peak),
                content_theta_max=float(th[N_POS_PAIRS]))
    return cfg, w, info


# --------------------------------------------------------------- checks

def check_tokenizer(vocab, enc):
    from tok_ref import check_spm_vocab, spm_encode
    check_spm_vocab(vocab)
    texts = ["The special magic number for pizza is 4821.",
             "What is the special magic number for zebra? The special magic number for zebra is",
             "In the beginning God created the heaven and the earth.",
             "tab\there, caf\u00e9 \u00fcber  two  spaces\nnewline", "",
             "pizzas pizza? lemonade 48211 4821. Rest now, for it is late."]
    for t in texts:
        a, b = enc.encode(t), spm_encode(vocab, t)
        if a != b:
            raise AssertionError(f"encoder mismatch on {t!r}: {a} vs {b}")
    for kind in ("key_ids", "value_ids"):
        for word, tid in zip(vocab["keys" if kind == "key_ids" else "values"], vocab[kind]):
            ids = enc.encode(f"for {word} is", add_bos=False)
            assert ids[1] == tid and len(ids) == 3, (word, ids)


def self_check(path, vocab, stored, cfg, n_tasks, log):
    import torch
    from llama_ref import LlamaRef
    import needle_tasks
    enc = Encoder(vocab)
    m = LlamaRef(cfg, stored)
    tasks = needle_tasks.make_tasks(n=n_tasks, lengths=[256, 512], depths=None,
                                    needles=[1, 2, 4], haystack="filler", seed=7, vocab=vocab)
    ok = 0
    for t in tasks:
        ids = enc.encode(t["context"]) + enc.encode(t["question"], add_bos=False)
        with torch.no_grad():
            lg = m.forward(ids)["logits"][-1]
        got = enc.decode([int(lg.argmax())]).strip()
        ok += got == t["answers"][0]
    log(f"self-check: {ok}/{len(tasks)} needle tasks answered exactly by the twin")
    if ok != len(tasks):
        raise SystemExit("self-check failed")


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="testdata/models/needle.gguf")
    ap.add_argument("--check", type=int, default=6,
                    help="needle tasks to run through the PyTorch twin afterwards (0: none)")
    a = ap.parse_args(argv)
    from gguf_writer import GGML_F32, write_model_gguf
    vocab = build_vocab()
    enc = Encoder(vocab)
    check_tokenizer(vocab, enc)
    cfg, w, info = build_weights(vocab)
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    tmp = a.out + ".tmp"
    stored = write_model_gguf(tmp, "llama", cfg, w, wtype=GGML_F32, name="finch-needle",
                              ctx_len=CTX, vocab=vocab)
    os.replace(tmp, a.out)
    print(f"wrote {a.out}: {os.path.getsize(a.out)} bytes; vocab {cfg['vocab']}, dim {DIM}, "
          f"{N_LAYER} layers, {N_HEAD} heads x {HEAD_DIM}, ctx {CTX}, rope base {ROPE_BASE:g}; "
          f"{len(KEYS)} keys, {len(vocab['values'])} values")
    print(f"positional heads: min deficit {POS_MARGIN:.0f} nats (peak {info['pos_peak_nats']:.1f}); "
          f"content pairs rotate <= {info['content_theta_max'] * CTX:.3f} rad over the window")
    if a.check:
        self_check(a.out, vocab, stored, cfg, a.check, print)


if __name__ == "__main__":
    main(sys.argv[1:])
