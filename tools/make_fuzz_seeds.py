#!/usr/bin/python3
"""make_fuzz_seeds.py - write the seed corpora of the libFuzzer targets
(tests/fuzz/corpus/<target>/): small, valid inputs of every format the
parsers read, so that the fuzzers start from files that get deep into the
code instead of spending their time rediscovering the magic numbers.

Only the standard library is used (no numpy), and every file is written
deterministically, so re-running the script changes nothing.

  /usr/bin/python3 tools/make_fuzz_seeds.py [--out tests/fuzz/corpus]
"""

import json
import os
import struct
import sys

# ------------------------------------------------------------------ GGUF

U8, I8, U16, I16, U32, I32, F32, BOOL, STR, ARR, U64, I64, F64 = range(13)
FMT = {U8: "<B", I8: "<b", U16: "<H", I16: "<h", U32: "<I", I32: "<i", F32: "<f",
       BOOL: "<?", U64: "<Q", I64: "<q", F64: "<d"}
GF32, GF16, GQ8_0, GBF16 = 0, 1, 8, 30


def gstr(s):
    b = s.encode("utf-8") if isinstance(s, str) else bytes(s)
    return struct.pack("<Q", len(b)) + b


def gval(t, v):
    if t == STR:
        return gstr(v)
    if t == ARR and isinstance(v, bytes):  # pre-encoded (arrays of arrays)
        return v
    if t == ARR:
        et, items = v
        body = struct.pack("<IQ", et, len(items))
        return body + b"".join(gval(et, x) for x in items)
    return struct.pack(FMT[t], v)


def f16_bits(x):
    return struct.unpack("<H", struct.pack("<e", x))[0]


def bf16_bits(x):
    u = struct.unpack("<I", struct.pack("<f", x))[0]
    return ((u + 0x7FFF + ((u >> 16) & 1)) >> 16) & 0xFFFF


def encode(values, gtype):
    if gtype == GF32:
        return struct.pack("<%df" % len(values), *values)
    if gtype == GF16:
        return struct.pack("<%dH" % len(values), *[f16_bits(x) for x in values])
    if gtype == GBF16:
        return struct.pack("<%dH" % len(values), *[bf16_bits(x) for x in values])
    if gtype == GQ8_0:
        out = b""
        for i in range(0, len(values), 32):
            blk = values[i:i + 32]
            amax = max(abs(x) for x in blk)
            d = amax / 127 if amax else 0.0
            q = [int(round(x / d)) if d else 0 for x in blk]
            out += struct.pack("<H", f16_bits(d)) + struct.pack("<32b", *q)
        return out
    raise ValueError(gtype)


def gguf(kvs, tensors=(), alignment=32, version=3):
    """kvs: [(key, type, value)]; tensors: [(name, ne, gtype, data bytes)]."""
    out = bytearray(b"GGUF")
    out += struct.pack("<IQQ", version, len(tensors), len(kvs))
    for k, t, v in kvs:
        out += gstr(k) + struct.pack("<I", t) + gval(t, v)
    off = 0
    offs = []
    for name, ne, gt, data in tensors:
        offs.append(off)
        out += gstr(name) + struct.pack("<I", len(ne)) + b"".join(struct.pack("<Q", n) for n in ne)
        out += struct.pack("<IQ", gt, off)
        off += (len(data) + alignment - 1) // alignment * alignment
    out += b"\0" * ((-len(out)) % alignment)
    for (name, ne, gt, data), o in zip(tensors, offs):
        out += data + b"\0" * ((-len(data)) % alignment)
    return bytes(out)


def pseudo(n, seed):
    """Deterministic small floats in [-1, 1)."""
    x = seed * 2654435761 % 2**32 or 1
    out = []
    for _ in range(n):
        x = (x * 1103515245 + 12345) % 2**31
        out.append((x / 2**30) - 1.0)
    return out


def spm_vocab(extra=()):
    """A tiny SentencePiece-style vocabulary: <unk> <s> </s>, 256 byte
    pieces, then a few words with scores."""
    toks, scores, types = ["<unk>", "<s>", "</s>"], [0.0, 0.0, 0.0], [2, 3, 3]
    for b in range(256):
        toks.append("<0x%02X>" % b)
        scores.append(0.0)
        types.append(6)
    words = ["\u2581", "\u2581t", "he", "\u2581the", "\u2581a", "o", "n", "ce", "\u2581on",
             "\u2581once", "up", "\u2581upon", "\u2581time", "i", "m", "e", "t", "a"] + list(extra)
    for i, w in enumerate(words):
        toks.append(w)
        scores.append(-float(i))
        types.append(1)
    return toks, scores, types


def tok_kvs_llama(merges=None, add_prefix=True):
    toks, scores, types = spm_vocab()
    kv = [("tokenizer.ggml.model", STR, "llama"),
          ("tokenizer.ggml.tokens", ARR, (STR, toks)),
          ("tokenizer.ggml.scores", ARR, (F32, scores)),
          ("tokenizer.ggml.token_type", ARR, (I32, types)),
          ("tokenizer.ggml.bos_token_id", U32, 1),
          ("tokenizer.ggml.eos_token_id", U32, 2),
          ("tokenizer.ggml.unknown_token_id", U32, 0),
          ("tokenizer.ggml.add_bos_token", BOOL, True),
          ("tokenizer.ggml.add_space_prefix", BOOL, add_prefix)]
    if merges is not None:
        kv.append(("tokenizer.ggml.merges", ARR, (STR, merges)))
    return kv, len(toks)


def byte_alphabet():
    """GPT-2's bytes_to_unicode."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


def tok_kvs_gpt2(pre="gpt-2"):
    alpha = byte_alphabet()
    toks = [alpha[b] for b in range(256)]
    sp = alpha[ord(" ")]
    merges = [("h", "e"), (sp, "t"), (sp + "t", "he"), ("o", "n"), (sp, "a"), ("i", "n"),
              (sp, "w"), ("e", "r"), (sp + "w", "or"), ("o", "r"), ("l", "d")]
    for a, b in merges:
        if a + b not in toks:
            toks.append(a + b)
    for special in ("<|endoftext|>", "<|im_start|>"):
        toks.append(special)
    types = [1] * (len(toks) - 2) + [3, 3]
    kv = [("tokenizer.ggml.model", STR, "gpt2"),
          ("tokenizer.ggml.pre", STR, pre),
          ("tokenizer.ggml.tokens", ARR, (STR, toks)),
          ("tokenizer.ggml.token_type", ARR, (I32, types)),
          ("tokenizer.ggml.merges", ARR, (STR, ["%s %s" % m for m in merges])),
          ("tokenizer.ggml.bos_token_id", U32, len(toks) - 2),
          ("tokenizer.ggml.eos_token_id", U32, len(toks) - 2),
          ("tokenizer.ggml.add_bos_token", BOOL, False)]
    return kv, len(toks)


def model_gguf(arch="llama", wtype=GF32, dim=8, n_head=2, n_kv=1, ffn=16, n_layer=1,
               vocab=None, tok=None, tied=True, alignment=32, meta=None, extra=(), tensor_layers=None):
    """A complete tiny model that finch_model_load accepts.  For the cases it
    must refuse: meta replaces metadata values ({key suffix: (type, value)}),
    extra adds tensors by name (vectors of dim floats), tensor_layers writes
    that many blocks of tensors whatever block_count says."""
    kv = [("general.architecture", STR, arch), ("general.name", STR, "fuzz-seed")]
    if alignment != 32:
        kv.append(("general.alignment", U32, alignment))
    hd = dim // n_head
    kv += [("%s.context_length" % arch, U32, 64), ("%s.embedding_length" % arch, U32, dim),
           ("%s.block_count" % arch, U32, n_layer), ("%s.feed_forward_length" % arch, U32, ffn),
           ("%s.attention.head_count" % arch, U32, n_head),
           ("%s.attention.head_count_kv" % arch, U32, n_kv),
           ("%s.attention.layer_norm_rms_epsilon" % arch, F32, 1e-5),
           ("%s.rope.freq_base" % arch, F32, 10000.0),
           ("%s.rope.dimension_count" % arch, U32, hd)]
    for suffix, (t, v) in (meta or {}).items():
        kv = [(k, t, v) if k == "%s.%s" % (arch, suffix) else (k, kt, kv_) for k, kt, kv_ in kv]
    if tok is not None:
        tkv, vocab = tok
        kv += tkv
    vocab = vocab or 16
    ts = []
    seed = [1]

    def add(name, rows, cols, gt):
        n = rows * cols
        vals = pseudo(n, seed[0])
        seed[0] += 1
        ne = [cols] if rows == 1 else [cols, rows]
        ts.append((name, ne, gt if rows > 1 else GF32, encode(vals, gt if rows > 1 else GF32)))

    add("token_embd.weight", vocab, dim, wtype)
    for l in range(n_layer if tensor_layers is None else tensor_layers):
        p = "blk.%d." % l
        add(p + "attn_norm.weight", 1, dim, wtype)
        add(p + "attn_q.weight", n_head * hd, dim, wtype)
        add(p + "attn_k.weight", n_kv * hd, dim, wtype)
        add(p + "attn_v.weight", n_kv * hd, dim, wtype)
        if arch == "qwen2":
            add(p + "attn_q.bias", 1, n_head * hd, wtype)
            add(p + "attn_k.bias", 1, n_kv * hd, wtype)
            add(p + "attn_v.bias", 1, n_kv * hd, wtype)
        add(p + "attn_output.weight", dim, n_head * hd, wtype)
        add(p + "ffn_norm.weight", 1, dim, wtype)
        add(p + "ffn_gate.weight", ffn, dim, wtype)
        add(p + "ffn_up.weight", ffn, dim, wtype)
        add(p + "ffn_down.weight", dim, ffn, wtype)
    add("output_norm.weight", 1, dim, wtype)
    if not tied:
        add("output.weight", vocab, dim, wtype)
    for name in extra:
        add(name, 1, dim, wtype)
    return gguf(kv, ts, alignment)


def inconsistent_model_seeds():
    """Models whose metadata disagrees with their tensors, or is stored with
    the wrong type: finch must refuse each, naming the tensor or the key
    (issue 11).  Also saved as regressions (tests/fuzz/regressions/)."""
    return {
        "gguf-block-count-short.gguf": model_gguf(n_layer=1, tensor_layers=2),
        "gguf-extra-blk2.gguf": model_gguf(n_layer=2, extra=["blk.2.attn_norm.weight"]),
        "gguf-extra-foo.gguf": model_gguf(extra=["foo.weight"]),
        "gguf-ctx-len-string.gguf": model_gguf(meta={"context_length": (STR, "4096")}),
        "gguf-ctx-len-negative.gguf": model_gguf(meta={"context_length": (I32, -1)}),
        "gguf-rope-base-string.gguf": model_gguf(meta={"rope.freq_base": (STR, "10000")}),
    }


def all_types_gguf():
    """Metadata of every value type, an array of arrays, a vocab-free file."""
    kv = [("t.u8", U8, 200), ("t.i8", I8, -5), ("t.u16", U16, 60000), ("t.i16", I16, -30000),
          ("t.u32", U32, 4000000000), ("t.i32", I32, -2000000000), ("t.f32", F32, 1.5),
          ("t.bool", BOOL, True), ("t.str", STR, "h\u00e9llo"), ("t.u64", U64, 2**63 + 5),
          ("t.i64", I64, -2**62), ("t.f64", F64, -2.25),
          ("t.arr.u8", ARR, (U8, [1, 2, 3])), ("t.arr.i64", ARR, (I64, [-1, 2**40])),
          ("t.arr.f64", ARR, (F64, [0.5, -0.25])), ("t.arr.bool", ARR, (BOOL, [True, False])),
          ("t.arr.str", ARR, (STR, ["a", "", "ccc"])), ("t.arr.empty", ARR, (F32, []))]
    nested = struct.pack("<IQ", ARR, 2) + struct.pack("<IQ", U8, 2) + b"\x01\x02" + struct.pack("<IQ", STR, 1) + gstr("x")
    kv.append(("t.arr.nested", ARR, nested))
    return gguf(kv)


def gguf_seeds():
    out = {}
    out["llama-f32-tok.gguf"] = model_gguf(tok=tok_kvs_llama())
    out["llama-f16-untied.gguf"] = model_gguf(wtype=GF16, tied=False, vocab=12)
    out["llama-bf16-align64.gguf"] = model_gguf(wtype=GBF16, alignment=64, vocab=10)
    out["llama-q8_0.gguf"] = model_gguf(wtype=GQ8_0, dim=32, n_head=4, n_kv=2, ffn=32, vocab=8)
    out["qwen2-f32-gpt2tok.gguf"] = model_gguf(arch="qwen2", tok=tok_kvs_gpt2("qwen2"), n_kv=2)
    out["llama-2layer.gguf"] = model_gguf(n_layer=2, vocab=6)
    out["all-types.gguf"] = all_types_gguf()
    out["v2-empty.gguf"] = gguf([], version=2)
    out.update(inconsistent_model_seeds())
    return out


def tokenizer_seeds():
    out = {}
    kv, _ = tok_kvs_llama()
    out["spm.gguf"] = gguf(kv)
    kv, _ = tok_kvs_llama(add_prefix=False)
    out["spm-noprefix.gguf"] = gguf(kv)
    kv, _ = tok_kvs_llama(merges=["\u2581 t", "h e", "\u2581t he", "o n", "c e", "\u2581 on", "\u2581on ce",
                                  "u p", "\u2581 up", "\u2581up on", "t i", "m e"])
    out["spm-merges.gguf"] = gguf(kv)
    for pre in ("gpt-2", "llama-bpe", "qwen2"):
        kv, _ = tok_kvs_gpt2(pre)
        out["gpt2-%s.gguf" % pre] = gguf(kv)
    return out


# ----------------------------------------------------------- safetensors

def safetensors(tensors, metadata=None, pad=True):
    """tensors: [(name, dtype, shape, values)]."""
    header, blobs, off = {}, [], 0
    for name, dt, shape, vals in tensors:
        raw = encode(vals, {"F32": GF32, "F16": GF16, "BF16": GBF16}[dt])
        header[name] = {"dtype": dt, "shape": shape, "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    if metadata is not None:
        header["__metadata__"] = metadata
    h = json.dumps(header, separators=(",", ":")).encode()
    if pad:
        h += b" " * ((-len(h)) % 8)
    return struct.pack("<Q", len(h)) + h + b"".join(blobs)


def safetensors_seeds():
    return {
        "f32.safetensors": safetensors([("model.embed_tokens.weight", "F32", [4, 2], pseudo(8, 1)),
                                        ("model.norm.weight", "F32", [2], [1.0, 1.0])],
                                       {"format": "pt", "lm_head.weight": "model.embed_tokens.weight"}),
        "f16-bf16.safetensors": safetensors([("a", "F16", [2, 2], pseudo(4, 2)),
                                             ("b", "BF16", [1, 2, 2], pseudo(4, 3)),
                                             ("scalar", "F32", [], [3.0]),
                                             ("empty", "F32", [0, 3], [])]),
        "no-metadata.safetensors": safetensors([("x", "F32", [3], [1.0, 2.0, 3.0])], pad=False),
        "header-only.safetensors": safetensors([], {"format": "pt"}),
    }


# ---------------------------------------------------------- config.json

def config_seeds():
    base = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 32,
            "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
            "num_key_value_heads": 2, "head_dim": 8, "vocab_size": 348,
            "max_position_embeddings": 512, "rms_norm_eps": 1e-5, "rope_theta": 500000.0,
            "rope_scaling": None, "hidden_act": "silu", "tie_word_embeddings": False,
            "attention_bias": False, "mlp_bias": False}
    qwen = dict(base, architectures=["Qwen2ForCausalLM"], model_type="qwen2",
                use_sliding_window=True, sliding_window=128, tie_word_embeddings=True)
    del qwen["head_dim"]
    mistral = dict(base, architectures=["MistralForCausalLM"], sliding_window=256)
    minimal = {k: base[k] for k in ("architectures", "hidden_size", "intermediate_size",
                                    "num_hidden_layers", "num_attention_heads", "vocab_size",
                                    "max_position_embeddings")}
    return {"llama.json": json.dumps(base, indent=2).encode(),
            "qwen2.json": json.dumps(qwen).encode(),
            "mistral.json": json.dumps(mistral).encode(),
            "minimal.json": json.dumps(minimal).encode()}


# -------------------------------------------------------------- llama2.c

def llama2c(dim=8, hidden=16, n_layers=1, n_heads=2, n_kv=1, vocab=8, seq=4, shared=True):
    hd = dim // n_heads
    kv = n_kv * hd
    sizes = [vocab * dim, n_layers * dim, n_layers * dim * dim, n_layers * kv * dim,
             n_layers * kv * dim, n_layers * dim * dim, n_layers * dim,
             n_layers * hidden * dim, n_layers * dim * hidden, n_layers * hidden * dim,
             dim, seq * hd // 2, seq * hd // 2]
    if not shared:
        sizes.append(vocab * dim)
    n = sum(sizes)
    head = struct.pack("<7i", dim, hidden, n_layers, n_heads, n_kv, vocab if shared else -vocab, seq)
    return head + struct.pack("<%df" % n, *pseudo(n, dim + vocab))


def llama2c_seeds():
    return {"shared.bin": llama2c(), "unshared.bin": llama2c(shared=False, n_kv=2),
            "2layer.bin": llama2c(n_layers=2, dim=4, hidden=4, n_heads=1, n_kv=1, vocab=3, seq=2)}


# ------------------------------------------------------------------- npy

def npy(descr, shape, payload, version=1, quote="'"):
    dims = ", ".join(str(s) for s in shape) + ("," if len(shape) == 1 else "")
    d = "{%sdescr%s: %s%s%s, %sfortran_order%s: False, %sshape%s: (%s), }" % (
        quote, quote, quote, descr, quote, quote, quote, quote, quote, dims)
    pre = 10 if version == 1 else 12
    total = pre + len(d) + 1
    d = d + " " * ((-total) % 64) + "\n"
    if version == 1:
        head = b"\x93NUMPY\x01\x00" + struct.pack("<H", len(d))
    else:
        head = b"\x93NUMPY" + bytes([version, 0]) + struct.pack("<I", len(d))
    return head + d.encode("latin-1") + payload


def npy_seeds():
    return {"f4-2d.npy": npy("<f4", (2, 3), struct.pack("<6f", *pseudo(6, 9))),
            "i4-1d.npy": npy("<i4", (4,), struct.pack("<4i", 1, -2, 3, 2**31 - 1)),
            "i8-1d.npy": npy("<i8", (3,), struct.pack("<3q", 0, -(2**31), 5)),
            "f4-scalar.npy": npy("<f4", (), struct.pack("<f", 2.5)),
            "i4-empty.npy": npy("<i4", (0, 5), b""),
            "f4-v2-dq.npy": npy("<f4", (1, 1, 2), struct.pack("<2f", 1, 2), version=2, quote='"')}


# ----------------------------------------------------------- tokenize

def tokenize_seeds():
    texts = ["Once upon a time, there was a little girl.", " leading space and  two",
             "h\u00e9llo w\u00f6rld \u65e5\u672c\u8a9e \U0001F642 \u0905\u0928\u0941",
             "<s>Hello</s> <|endoftext|><|im_start|>user\n", "def f(x):\n\treturn x**2  # 123456",
             "I'm, you're; they'll -- 3.14159 !!! ???", "\u2581already\u2581escaped", "\n\n\r\n \t "]
    out = {}
    for i, t in enumerate(texts):
        for sel in range(8):  # the first byte picks the tokenizer (mod the number loaded)
            out["text%d-tok%d" % (i, sel)] = bytes([sel | (0x80 if i % 2 else 0)]) + t.encode("utf-8")
    out["invalid-utf8"] = b"\x01" + b"\xff\xfe\xc3\x28 \xe2\x82 \xf0\x9f\x99"
    return out


# ------------------------------------------------------- tokenizer files

def hf_byte_level(split_regex=None):
    alpha = byte_alphabet()
    vocab = {alpha[b]: b for b in range(256)}
    sp = alpha[ord(" ")]
    merges = [["h", "e"], [sp, "t"], [sp + "t", "he"], ["o", "n"], ["i", "n"], [sp, "a"]]
    for a, b in merges:
        vocab.setdefault(a + b, len(vocab))
    added = [{"id": len(vocab), "content": "<|endoftext|>", "special": True, "normalized": False}]
    if split_regex:
        pre = {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": split_regex}, "behavior": "Isolated", "invert": False},
            {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}]}
    else:
        pre = {"type": "ByteLevel", "add_prefix_space": False, "use_regex": True}
    return {"version": "1.0", "added_tokens": added, "normalizer": None, "pre_tokenizer": pre,
            "post_processor": None, "decoder": {"type": "ByteLevel"},
            "model": {"type": "BPE", "vocab": vocab, "merges": [" ".join(m) for m in merges],
                      "ignore_merges": bool(split_regex), "byte_fallback": False}}


def hf_metaspace():
    toks, _, _ = spm_vocab()
    vocab = {t: i for i, t in enumerate(toks)}
    added = [{"id": i, "content": toks[i], "special": True, "normalized": False} for i in range(3)]
    return {"version": "1.0", "added_tokens": added, "normalizer": None,
            "pre_tokenizer": {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "first", "split": False},
            "post_processor": {"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}},
                                                                        {"Sequence": {"id": "A", "type_id": 0}}],
                               "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}}},
            "model": {"type": "BPE", "vocab": vocab, "merges": [["\u2581", "t"], ["h", "e"], ["\u2581t", "he"]],
                      "unk_token": "<unk>", "byte_fallback": True, "fuse_unk": True}}


def llama2c_tokenizer():
    toks, scores, _ = spm_vocab()
    toks = [t.replace("\u2581", " ") for t in toks]
    toks[1], toks[2] = "\n<s>\n", "\n</s>\n"
    out = struct.pack("<i", max(len(t.encode()) for t in toks))
    for t, sc in zip(toks, scores):
        b = t.encode("utf-8")
        out += struct.pack("<fi", sc, len(b)) + b
    return len(toks), out


def tiktoken_file():
    import base64
    pieces = [bytes([b]) for b in range(256)] + [b"he", b" t", b" the", b"on", b"in", b" a"]
    return b"".join(base64.b64encode(p) + b" %d\n" % i for i, p in enumerate(pieces))


LLAMA3_REGEX = ("(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*"
                "|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+")


def tokenizer_file_seeds(repo="."):
    out = {}
    d = os.path.join(repo, "testdata/models/tiny-hf-llama")
    tj = open(os.path.join(d, "tokenizer.json"), "rb").read()
    tc = open(os.path.join(d, "tokenizer_config.json"), "rb").read()
    out["hf-tiny-llama.json"] = b"\x00" + tj
    out["hf-tiny-llama-cfg.json"] = b"\x01" + tj + b"\x00" + tc
    out["hf-byte-level.json"] = b"\x00" + json.dumps(hf_byte_level(), ensure_ascii=False).encode()
    out["hf-split-llama3.json"] = b"\x00" + json.dumps(hf_byte_level(LLAMA3_REGEX), ensure_ascii=False).encode()
    out["hf-metaspace-cfg.json"] = (b"\x01" + json.dumps(hf_metaspace(), ensure_ascii=False).encode() + b"\x00" +
                                    json.dumps({"bos_token": {"content": "<s>"}, "eos_token": "</s>",
                                                "add_bos_token": False}).encode())
    n, body = llama2c_tokenizer()
    out["llama2c-tokenizer.bin"] = b"\x02" + struct.pack("<H", n - 1) + body
    out["tiktoken.model"] = b"\x03" + tiktoken_file()
    return out


# ------------------------------------------------------ HF directory

HF_SEP = b"\n##file "


def hf_model_tensors(dim=8, n_head=2, n_kv=1, ffn=16, vocab=16, n_layer=1, dtype="F32", bias=False):
    """The tensors of a tiny Llama/Qwen2 checkpoint in HF names:
    [(name, dtype, shape, values)]."""
    hd = dim // n_head
    out = [("model.embed_tokens.weight", dtype, [vocab, dim], pseudo(vocab * dim, 11))]
    for l in range(n_layer):
        p = "model.layers.%d." % l
        mats = [("input_layernorm.weight", [dim]), ("self_attn.q_proj.weight", [n_head * hd, dim]),
                ("self_attn.k_proj.weight", [n_kv * hd, dim]), ("self_attn.v_proj.weight", [n_kv * hd, dim]),
                ("self_attn.o_proj.weight", [dim, n_head * hd]), ("post_attention_layernorm.weight", [dim]),
                ("mlp.gate_proj.weight", [ffn, dim]), ("mlp.up_proj.weight", [ffn, dim]),
                ("mlp.down_proj.weight", [dim, ffn])]
        if bias:
            mats += [("self_attn.q_proj.bias", [n_head * hd]), ("self_attn.k_proj.bias", [n_kv * hd]),
                     ("self_attn.v_proj.bias", [n_kv * hd])]
        for i, (name, shape) in enumerate(mats):
            n = shape[0] * (shape[1] if len(shape) > 1 else 1)
            out.append((p + name, dtype, shape, pseudo(n, 100 * l + i)))
    out.append(("model.norm.weight", dtype, [dim], [1.0] * dim))
    return out


def hf_config(arch="LlamaForCausalLM", dim=8, n_head=2, n_kv=1, ffn=16, vocab=16, n_layer=1, tied=False):
    return json.dumps({"architectures": [arch], "hidden_size": dim, "num_hidden_layers": n_layer,
                       "num_attention_heads": n_head, "num_key_value_heads": n_kv, "intermediate_size": ffn,
                       "vocab_size": vocab, "max_position_embeddings": 64, "rms_norm_eps": 1e-5,
                       "rope_theta": 10000.0, "rope_scaling": None, "tie_word_embeddings": tied,
                       "hidden_act": "silu"}).encode()


def hf_dir(config, files):
    """An input of fuzz_hf_dir: config.json, then "\n##file NAME\n" + bytes per file."""
    return config + b"".join(HF_SEP + name.encode() + b"\n" + data for name, data in files)


def hf_dir_seeds():
    tensors = hf_model_tensors()
    lm_head = [("lm_head.weight", "F32", [16, 8], pseudo(128, 99))]
    shard1, shard2 = tensors[:6], tensors[6:] + lm_head
    names = ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]
    index = {"metadata": {"total_size": 0},
             "weight_map": dict([(t[0], names[0]) for t in shard1] + [(t[0], names[1]) for t in shard2])}
    qwen = hf_model_tensors(dtype="BF16", bias=True)
    return {
        "sharded.hfdir": hf_dir(hf_config(), [("model.safetensors.index.json", json.dumps(index).encode()),
                                              (names[0], safetensors(shard1)), (names[1], safetensors(shard2))]),
        "single-tied.hfdir": hf_dir(hf_config(tied=True), [("model.safetensors", safetensors(tensors))]),
        "qwen2-bf16.hfdir": hf_dir(hf_config("Qwen2ForCausalLM", tied=True),
                                   [("model.safetensors", safetensors(qwen, {"format": "pt"}))]),
        "f16-untied.hfdir": hf_dir(hf_config(), [("model.safetensors",
                                                  safetensors([(n, "F16", s, v) for n, _, s, v in tensors + lm_head]))]),
    }


# ----------------------------------------------------- eval task files

def eval_task_seeds():
    def line(**kw):
        return json.dumps(kw, ensure_ascii=False).encode()
    squad = [line(id="5733be284776f41900661182", context="Architecturally, the school has a Catholic character. "
                  "Atop the Main Building's gold dome is a golden statue of the Virgin Mary.",
                  question="What sits on top of the Main Building?", answers=["a golden statue of the Virgin Mary"]),
             line(id="u1", context="The cat sat.", question="Who stood?", answers=[])]
    return {
        "squad.jsonl": b"\n".join(squad) + b"\n",
        "unicode-crlf.jsonl": line(id="\u00e9", context="h\u00e9llo \u65e5\u672c \U0001F642",
                                   question="\u00bfqu\u00e9?", answers=["h\u00e9llo", "the  a  an"]) +
        b"\r\n\r\n" + line(id="2", context="x", question="y", answers=["z", ""], extra={"k": [1, 2]}),
        "escapes.jsonl": b'{"id": "e", "context": "tab\\tnew\\nline \\"q\\" \\u00e9\\ud83d\\ude42", '
                         b'"question": "\\/", "answers": ["The, Answer!"]}\n',
        "needle.jsonl": line(id="needle-0", context="The special magic number for battery is 1659. " * 4,
                             question="What is the special magic number for battery?", answers=["1659"]) + b"\n",
    }


# ------------------------------------------------------------------ cli

def cli_seeds():
    def args(which, *a):
        return bytes([which]) + b"\0".join(x.encode() for x in a)
    return {
        "run-budget": args(0, "-m", "m.gguf", "-f", "ctx.txt", "-q", "why?", "--budget", "64",
                           "--chunk", "16", "--mode", "iterative", "--select", "head", "--json"),
        "run-ratio": args(0, "-m", "m", "--context", "text", "--question-ids", "q.npy", "--ratio", "4",
                          "--normalize", "off", "-n", "8", "--temp", "0.7", "--seed", "3", "-t", "2"),
        "run-cr": args(0, "-m", "m", "--context-ids", "c.npy", "-q", "x", "--cr", "0.5",
                       "--prompt-ids", "p.npy", "--dump", "out", "--progress"),
        "generate": args(1, "-m", "m.gguf", "-p", "Hello", "-n", "16", "--temp", "0", "--top-p", "0.9",
                         "--seed", "7", "-t", "1", "--dump", "d"),
        "generate-ids": args(1, "--model", "m.gguf", "--prompt-ids", "p.npy", "--n-predict", "0"),
        "tokenize": args(2, "-m", "m.gguf", "--no-bos", "some text"),
        "info": args(3, "-m", "m.gguf"),
        "convert": args(4, "in.bin", "out.gguf", "--type", "q8_0", "--tokenizer", "tok.bin"),
        "repeat": args(1, "-m", "a", "-m", "b", "-p", "x"),
        "eval": args(5, "-m", "m.gguf", "--task", "t.jsonl", "--press", "finch,snapkv,full", "--ratio", "2,8,4",
                     "--mode", "oneshot", "--select", "layer", "--normalize", "on", "--limit", "3", "--resume"),
        "run-max-memory": args(0, "-m", "m", "--context", "c", "-q", "x", "--budget", "4", "--max-memory", "1.5G"),
        "generate-max-memory": args(1, "-m", "m", "-p", "x", "--max-memory", "512MiB"),
        "eval-max-memory": args(5, "-m", "m", "--task", "t", "--max-memory", "4096"),
    }


def bench_seeds():
    """The benchmark files of testdata/bench/ (SQuAD v2, LongBench, RULER)."""
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "testdata", "bench")
    seeds = {}
    for name, file in (("squad2", "squad2_dev.json"), ("longbench", "longbench.jsonl"), ("ruler", "ruler.jsonl")):
        with open(os.path.join(root, file), "rb") as f:
            seeds[name] = f.read()
    with open(os.path.join(root, "squad2_pred.json"), "rb") as f:
        seeds["pair"] = f.read()[:300]
    return seeds


def main(argv):
    out = "tests/fuzz/corpus"
    if len(argv) > 2 and argv[1] == "--out":
        out = argv[2]
    corpora = {"gguf": gguf_seeds(), "tokenizer_gguf": tokenizer_seeds(),
               "safetensors": safetensors_seeds(), "config": config_seeds(),
               "llama2c": llama2c_seeds(), "npy": npy_seeds(), "tokenize": tokenize_seeds(),
               "tokenizer_files": tokenizer_file_seeds(), "cli": cli_seeds(),
               "hf_dir": hf_dir_seeds(), "eval_tasks": eval_task_seeds(), "bench": bench_seeds()}
    for target, files in corpora.items():
        d = os.path.join(out, target)
        os.makedirs(d, exist_ok=True)
        for name, data in files.items():
            with open(os.path.join(d, name), "wb") as f:
                f.write(data)
        print("%-15s %3d seeds, %7d bytes" % (target, len(files), sum(len(v) for v in files.values())))
    reg = os.path.join(os.path.dirname(os.path.abspath(out.rstrip("/"))), "regressions")
    if os.path.isdir(reg):  # the refusals are checked by name there (test_fuzz_regressions.c)
        for name, data in inconsistent_model_seeds().items():
            with open(os.path.join(reg, name), "wb") as f:
                f.write(data)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
