#!/usr/bin/python3
"""tok_ref.py - small reference tokenizers used to build finch's fixtures.

  * a tiny SentencePiece-style BPE vocabulary learned from a built-in corpus
    (build_tiny_spm_vocab), for the random-weight test models;
  * spm_encode: SentencePiece BPE encoding as SentencePiece and llama.cpp do
    it (add the dummy prefix, spaces -> U+2581, split into characters,
    repeatedly merge the adjacent pair whose concatenation is a piece with the
    highest score, leftmost first; characters that are not pieces fall back to
    <0xXX> byte pieces);
  * hf_bpe_encode: Hugging Face `tokenizers` BPE for tokenizer.json files of
    the SentencePiece kind (Prepend/Replace normalizer, no pre-tokenizer,
    merges applied by rank, byte fallback), e.g. TinyStories-656K;
  * spm_model_proto: a SentencePiece ModelProto serialised by hand (no
    protobuf module needed) so the real `sentencepiece` library can check
    spm_encode on our vocabulary.
"""

import struct

SPACE = "\u2581"

# GGUF / SentencePiece token types
T_NORMAL, T_UNKNOWN, T_CONTROL, T_USER_DEFINED, T_UNUSED, T_BYTE = 1, 2, 3, 4, 5, 6

TINY_CORPUS = """\
Once upon a time, there was a little girl named Lily. She liked to play in the park.
Once upon a time, there was a little boy named Tom. He had a red ball.
One day, the girl saw a big tree. The tree was tall and green.
Lily and Tom went to the park to play with the ball. They were very happy.
The little bird said, "I want to fly!" The sun was warm and the sky was blue.
Once upon a time, in a small house, there lived a cat. The cat liked to sleep.
She said, "Thank you, mom!" He was sad, but then he smiled.
They played all day and then went home. The end.
"""

N_TINY_MERGES = 56


def learn_bpe_merges(text, n_merges):
    """Plain BPE over words ('▁' + word, split on spaces/newlines): merge the
    most frequent adjacent pair, ties broken by the pair's strings (smaller
    first).  Returns the merges in order as (left, right)."""
    words = {}
    for line in text.splitlines():
        for w in line.split(" "):
            if w:
                key = tuple(SPACE + w)
                words[key] = words.get(key, 0) + 1
    merges = []
    for _ in range(n_merges):
        counts = {}
        for w, c in words.items():
            for a, b in zip(w, w[1:]):
                counts[(a, b)] = counts.get((a, b), 0) + c
        if not counts:
            break
        best = min(counts.items(), key=lambda kv: (-kv[1], kv[0]))[0]
        merges.append(best)
        new = {}
        for w, c in words.items():
            out, i = [], 0
            while i < len(w):
                if i + 1 < len(w) and (w[i], w[i + 1]) == best:
                    out.append(w[i] + w[i + 1])
                    i += 2
                else:
                    out.append(w[i])
                    i += 1
            new[tuple(out)] = new.get(tuple(out), 0) + c
        words = new
    return merges


def build_tiny_spm_vocab(corpus=TINY_CORPUS, n_merges=N_TINY_MERGES):
    """The test models' vocabulary, laid out as Llama 2's: <unk> <s> </s>,
    the 256 byte pieces <0x00>..<0xFF>, the merged pieces in merge order,
    then the single characters.  Normal pieces score -(id - 259), so a merge
    learned earlier has a higher score than anything built from it.
    Returns dict(tokens, scores, types, merges, bos, eos, unk)."""
    merges = learn_bpe_merges(corpus, n_merges)
    chars = sorted(set(SPACE + corpus.replace(" ", "").replace("\n", "")))
    tokens = ["<unk>", "<s>", "</s>"] + ["<0x%02X>" % b for b in range(256)]
    types = [T_UNKNOWN, T_CONTROL, T_CONTROL] + [T_BYTE] * 256
    scores = [0.0] * len(tokens)
    seen = set(tokens)
    for a, b in merges:
        p = a + b
        if p in seen:
            continue
        seen.add(p)
        tokens.append(p)
    for ch in chars:
        if ch not in seen:
            seen.add(ch)
            tokens.append(ch)
    for i in range(259, len(tokens)):
        types.append(T_NORMAL)
        scores.append(-float(i - 259))
    vocab = dict(tokens=tokens, scores=scores, types=types,
                 merges=[a + " " + b for a, b in merges], bos=1, eos=2, unk=0)
    check_spm_vocab(vocab)
    return vocab


def check_spm_vocab(v):
    """Every multi-character normal piece is the concatenation of two
    pieces that both score higher (so BPE can build it)."""
    idx = {t: i for i, t in enumerate(v["tokens"])}
    for i, t in enumerate(v["tokens"]):
        if v["types"][i] != T_NORMAL or len(t) < 2:
            continue
        ok = False
        for k in range(1, len(t)):
            a, b = t[:k], t[k:]
            if a in idx and b in idx:
                sa = v["scores"][idx[a]] if len(a) > 1 else float("inf")
                sb = v["scores"][idx[b]] if len(b) > 1 else float("inf")
                if sa > v["scores"][i] and sb > v["scores"][i]:
                    ok = True
                    break
        if not ok:
            raise ValueError(f"piece {t!r} cannot be reached by merging two pieces")


def spm_encode(vocab, text, add_bos=True, add_dummy_prefix=True):
    """SentencePiece BPE (the algorithm of sentencepiece's bpe_model.cc and
    llama.cpp's llm_tokenizer_spm)."""
    tokens, scores, types = vocab["tokens"], vocab["scores"], vocab["types"]
    idx = {}
    for i, t in enumerate(tokens):
        if types[i] in (T_NORMAL, T_USER_DEFINED, T_UNUSED) and t not in idx:
            idx[t] = i
    ids = [vocab["bos"]] if add_bos else []
    if not text:
        return ids
    s = text.replace(" ", SPACE)
    if add_dummy_prefix:
        s = SPACE + s
    sym = list(s)
    while len(sym) > 1:
        best = None
        for j in range(len(sym) - 1):
            p = sym[j] + sym[j + 1]
            if p in idx and types[idx[p]] != T_UNUSED:
                sc = scores[idx[p]]
                if best is None or sc > best[0]:
                    best = (sc, j)
        if best is None:
            break
        j = best[1]
        sym[j:j + 2] = [sym[j] + sym[j + 1]]
    for p in sym:
        if p in idx:
            ids.append(idx[p])
        else:
            for b in p.encode("utf-8"):
                ids.append(tokens.index("<0x%02X>" % b))
    return ids


def spm_decode(vocab, ids):
    """Concatenate pieces, bytes from <0xXX>, '▁' -> ' ', drop control
    tokens and the leading space (SentencePiece's DecodeIds)."""
    bs = bytearray()
    for i in ids:
        t, ty = vocab["tokens"][i], vocab["types"][i]
        if ty == T_CONTROL:
            continue
        if ty == T_BYTE:
            bs.append(int(t[3:5], 16))
        else:
            bs += t.replace(SPACE, " ").encode("utf-8")
    s = bs.decode("utf-8", errors="replace")
    return s[1:] if s.startswith(" ") else s


# ------------------------------------------------------- Hugging Face BPE

def hf_bpe_encode(tj, text, add_bos=True):
    """Encode with a tokenizer.json (dict) of the SentencePiece-BPE kind."""
    model = tj["model"]
    if model.get("type") != "BPE":
        raise ValueError("only BPE tokenizer.json files")
    vocab = model["vocab"]
    merges = model["merges"]
    rank = {}
    for r, m in enumerate(merges):
        a, b = m.split(" ", 1) if isinstance(m, str) else m
        rank.setdefault((a, b), r)
    # normalizer: the Prepend / Replace sequence SentencePiece conversions use
    norm = tj.get("normalizer") or {}
    steps = norm.get("normalizers", [norm]) if norm.get("type") == "Sequence" else [norm]
    s = text
    for st in steps:
        if st.get("type") == "Prepend":
            s = st["prepend"] + s
        elif st.get("type") == "Replace":
            s = s.replace(st["pattern"]["String"], st["content"])
        elif st:
            raise ValueError(f"normalizer {st.get('type')} not supported here")
    if tj.get("pre_tokenizer"):
        raise ValueError("pre_tokenizer not supported here")
    ids = []
    if add_bos:
        bos = None
        pp = tj.get("post_processor") or {}
        for item in pp.get("single", []):
            if "SpecialToken" in item:
                bos = pp["special_tokens"][item["SpecialToken"]["id"]]["ids"][0]
                break
        if bos is not None:
            ids.append(bos)
    if not text:
        return ids
    sym = list(s)
    while len(sym) > 1:
        best = None
        for j in range(len(sym) - 1):
            r = rank.get((sym[j], sym[j + 1]))
            if r is not None and (best is None or r < best[0]):
                best = (r, j)
        if best is None:
            break
        j = best[1]
        sym[j:j + 2] = [sym[j] + sym[j + 1]]
    unk = vocab.get(model.get("unk_token") or "", None)
    for p in sym:
        if p in vocab:
            ids.append(vocab[p])
        elif model.get("byte_fallback") and all(("<0x%02X>" % b) in vocab for b in p.encode()):
            ids.extend(vocab["<0x%02X>" % b] for b in p.encode("utf-8"))
        elif unk is not None:
            if not (model.get("fuse_unk") and ids and ids[-1] == unk):
                ids.append(unk)
        else:
            raise ValueError(f"cannot encode {p!r}")
    return ids


def hf_tokenizer_json(vocab):
    """A tokenizer.json (dict) for the tiny vocabulary, in the form
    transformers' LlamaConverter writes for byte-fallback SentencePiece BPE."""
    tokens = vocab["tokens"]
    added = [{"id": i, "content": tokens[i], "single_word": False, "lstrip": False,
              "rstrip": False, "normalized": False, "special": True} for i in range(3)]
    return {
        "version": "1.0", "truncation": None, "padding": None, "added_tokens": added,
        "normalizer": {"type": "Sequence", "normalizers": [
            {"type": "Prepend", "prepend": SPACE},
            {"type": "Replace", "pattern": {"String": " "}, "content": SPACE}]},
        "pre_tokenizer": None,
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}},
                       {"Sequence": {"id": "A", "type_id": 0}}],
            "pair": [{"SpecialToken": {"id": "<s>", "type_id": 0}},
                     {"Sequence": {"id": "A", "type_id": 0}},
                     {"SpecialToken": {"id": "<s>", "type_id": 1}},
                     {"Sequence": {"id": "B", "type_id": 1}}],
            "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}}},
        "decoder": {"type": "Sequence", "decoders": [
            {"type": "Replace", "pattern": {"String": SPACE}, "content": " "},
            {"type": "ByteFallback"}, {"type": "Fuse"},
            {"type": "Strip", "content": " ", "start": 1, "stop": 0}]},
        "model": {"type": "BPE", "dropout": None, "unk_token": "<unk>",
                  "continuing_subword_prefix": None, "end_of_word_suffix": None,
                  "fuse_unk": True, "byte_fallback": True, "ignore_merges": False,
                  "vocab": {t: i for i, t in enumerate(tokens)},
                  "merges": list(vocab["merges"])},
    }


def hf_tokenizer_config():
    return {"add_bos_token": True, "add_eos_token": False, "bos_token": "<s>",
            "eos_token": "</s>", "unk_token": "<unk>", "pad_token": None,
            "clean_up_tokenization_spaces": False, "legacy": False,
            "tokenizer_class": "LlamaTokenizer", "model_max_length": 2048}


# ----------------------------------------- SentencePiece ModelProto by hand

def _varint(n):
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _fld(num, wire, payload):
    key = _varint((num << 3) | wire)
    if wire == 0:
        return key + _varint(payload)
    if wire == 2:
        return key + _varint(len(payload)) + payload
    if wire == 5:
        return key + payload
    raise ValueError(wire)


def spm_model_proto(vocab):
    """Serialised sentencepiece.ModelProto (BPE, byte_fallback, identity
    normaliser, dummy prefix, no whitespace folding) for `vocab`."""
    out = bytearray()
    for t, s, ty in zip(vocab["tokens"], vocab["scores"], vocab["types"]):
        piece = _fld(1, 2, t.encode("utf-8")) + _fld(2, 5, struct.pack("<f", s)) + _fld(3, 0, ty)
        out += _fld(1, 2, piece)
    trainer = (_fld(3, 0, 2) + _fld(4, 0, len(vocab["tokens"])) + _fld(35, 0, 1)
               + _fld(40, 0, vocab["unk"]) + _fld(41, 0, vocab["bos"]) + _fld(42, 0, vocab["eos"])
               + _fld(43, 0, -1))
    out += _fld(2, 2, trainer)
    normalizer = (_fld(1, 2, b"identity") + _fld(3, 0, 1) + _fld(4, 0, 0) + _fld(5, 0, 1))
    out += _fld(3, 2, normalizer)
    return bytes(out)


def sentencepiece_encode(vocab, texts):
    """Ids from the real sentencepiece library (None when not installed)."""
    try:
        import sentencepiece as spm
    except ImportError:
        return None
    sp = spm.SentencePieceProcessor()
    sp.LoadFromSerializedProto(spm_model_proto(vocab))
    return [[vocab["bos"]] + list(sp.EncodeAsIds(t)) for t in texts]


if __name__ == "__main__":
    v = build_tiny_spm_vocab()
    print(len(v["tokens"]), "pieces;", "merged:", v["tokens"][259:259 + N_TINY_MERGES])
    tests = ["Once upon a time", "Hello world", "The cat sat on the mat.", "  two  spaces",
             "caf\u00e9 \u00fcber", "Lily and Tom"]
    ref = sentencepiece_encode(v, tests)
    for i, t in enumerate(tests):
        ids = spm_encode(v, t)
        print(repr(t), ids, "sentencepiece agrees" if ref and ref[i] == ids else ref and ref[i])
