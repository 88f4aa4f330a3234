"""finch - Python binding of libfinch (ctypes over libfinch.so, NumPy in and out).

    import finch
    m = finch.Model("model.gguf")
    ids = m.tokenize("Once upon a time")
    r = m.compress(context_ids, question_ids, budget=64, chunk=128)
    r.kept, r.keys, r.values, r.logits, r.scores, r.margins, r.meta
    r.save("dump-dir")          # docs/dump-format.md; compare with `finch compare`

The shared library is found, in this order, at $FINCH_LIB, next to this
file (`make python` copies it there), or in the repository's build/
directory.  No compiler is needed at install time.
"""

import ctypes
import json
import os

import numpy as np

__all__ = ["FinchError", "Model", "Result", "library_path"]

_c_size = ctypes.c_size_t
_p_i32 = ctypes.POINTER(ctypes.c_int32)
_p_f32 = ctypes.POINTER(ctypes.c_float)
_p_size = ctypes.POINTER(ctypes.c_size_t)


class FinchError(Exception):
    """A libfinch failure: the library's one-line message; .status is its code
    (1 io, 2 format, 3 unsupported, 4 argument, 5 memory, 6 internal)."""

    def __init__(self, message, status=4):
        super().__init__(message)
        self.status = status


def library_path():
    """Where libfinch.so is loaded from."""
    env = os.environ.get("FINCH_LIB")
    if env:
        return env
    here = os.path.dirname(os.path.abspath(__file__))
    for p in (os.path.join(here, "libfinch.so"),
              os.path.join(here, os.pardir, os.pardir, "build", "libfinch.so")):
        if os.path.exists(p):
            return os.path.normpath(p)
    raise FinchError("libfinch.so not found: set FINCH_LIB, run `make python`, or build the repository "
                     "(make) next to this package", 1)


_lib = None


def _sig(lib, name, res, *args):
    f = getattr(lib, name)
    f.restype = res
    f.argtypes = list(args)


def _load():
    global _lib
    if _lib is not None:
        return _lib
    lib = ctypes.CDLL(library_path())
    vp, cp, i = ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int
    _sig(lib, "finch_api_free", None, vp)
    _sig(lib, "finch_api_last_error", cp)
    _sig(lib, "finch_api_model_load", i, cp, _c_size, ctypes.POINTER(vp))
    _sig(lib, "finch_api_model_free", None, vp)
    _sig(lib, "finch_api_model_config", i, vp, ctypes.POINTER(vp))
    _sig(lib, "finch_api_tokenize", i, vp, cp, _c_size, i, ctypes.POINTER(_p_i32), _p_size)
    _sig(lib, "finch_api_detokenize", i, vp, _p_i32, _c_size, ctypes.POINTER(vp), _p_size)
    _sig(lib, "finch_api_logits", i, vp, _p_i32, _c_size, _p_f32)
    _sig(lib, "finch_api_compress", i, vp, cp, cp, cp, cp, cp, i, ctypes.c_double, _c_size, _c_size, i, _c_size,
         ctypes.c_uint64, i, cp,
         _p_i32, _c_size, _p_i32, _c_size, _p_i32, _c_size, ctypes.POINTER(vp))
    _sig(lib, "finch_api_result_free", None, vp)
    _sig(lib, "finch_api_result_dims", None, vp, _p_size)
    _sig(lib, "finch_api_result_kept", None, vp, _p_i32)
    _sig(lib, "finch_api_result_kv", None, vp, i, _p_f32, _p_f32)
    _sig(lib, "finch_api_result_logits", None, vp, _p_f32)
    _sig(lib, "finch_api_result_scores", None, vp, _p_f32)
    _sig(lib, "finch_api_result_margins", None, vp, _p_f32)
    _sig(lib, "finch_api_result_schedule", None, vp, _p_i32)
    _sig(lib, "finch_api_result_steps", i, vp, _p_i32, _p_f32)
    _sig(lib, "finch_api_result_meta", i, vp, i, ctypes.POINTER(vp))
    _sig(lib, "finch_api_result_save", i, vp, cp, i)
    _lib = lib
    return lib


def _check(status):
    if status != 0:
        raise FinchError(_lib.finch_api_last_error().decode("utf-8", "replace"), status)


def _take_string(p):
    """A malloc'ed C string returned by the library, as str (freed)."""
    try:
        return ctypes.string_at(p.value).decode("utf-8", "replace")
    finally:
        _lib.finch_api_free(p)


def _ids(a, what):
    a = np.ascontiguousarray(np.asarray(a).reshape(-1))
    if a.size and not np.issubdtype(a.dtype, np.integer):
        raise FinchError(f"{what}: token ids must be integers, got {a.dtype}")
    if a.size and (a.min() < np.iinfo(np.int32).min or a.max() > np.iinfo(np.int32).max):
        raise FinchError(f"{what}: a token id does not fit in int32")
    return np.ascontiguousarray(a, dtype=np.int32)


def _ptr(a, kind):
    return a.ctypes.data_as(kind) if a is not None and a.size else None


def _layout(layout):
    if layout not in ("hf", "native"):
        raise FinchError(f"layout must be 'hf' or 'native', got {layout!r}")
    return 0 if layout == "hf" else 1


class Model:
    """A model: a .gguf file or a Hugging Face directory.  threads=None uses
    every online core."""

    def __init__(self, path, threads=None):
        lib = _load()
        self._h = None
        if threads is not None and (int(threads) < 1 or int(threads) > 256):
            raise FinchError(f"threads must be in 1..256, got {threads}")
        h = ctypes.c_void_p()
        _check(lib.finch_api_model_load(os.fsencode(path), 0 if threads is None else int(threads),
                                        ctypes.byref(h)))
        self._h = h
        self.path = str(path)
        p = ctypes.c_void_p()
        _check(lib.finch_api_model_config(self._h, ctypes.byref(p)))
        self.config = json.loads(_take_string(p))

    def close(self):
        if self._h is not None and _lib is not None:
            _lib.finch_api_model_free(self._h)
        self._h = None

    def __del__(self):
        self.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _handle(self):
        if self._h is None:
            raise FinchError("the model was closed")
        return self._h

    def tokenize(self, text, bos=True):
        """Token ids of text (str or UTF-8 bytes) as np.int32[n]; bos: prepend
        BOS when the tokenizer asks for it."""
        data = text.encode("utf-8") if isinstance(text, str) else bytes(text)
        p, n = _p_i32(), ctypes.c_size_t()
        _check(_lib.finch_api_tokenize(self._handle(), data, len(data), 1 if bos else 0,
                                       ctypes.byref(p), ctypes.byref(n)))
        try:
            return np.ctypeslib.as_array(p, shape=(n.value,)).copy() if n.value else np.zeros(0, np.int32)
        finally:
            _lib.finch_api_free(ctypes.cast(p, ctypes.c_void_p))

    def detokenize(self, ids):
        """The text ids decode to (invalid UTF-8 replaced)."""
        a = _ids(ids, "detokenize")
        p, n = ctypes.c_void_p(), ctypes.c_size_t()
        _check(_lib.finch_api_detokenize(self._handle(), _ptr(a, _p_i32), a.size, ctypes.byref(p),
                                         ctypes.byref(n)))
        try:
            return ctypes.string_at(p.value, n.value).decode("utf-8", "replace")
        finally:
            _lib.finch_api_free(p)

    def logits(self, ids):
        """Logits of every position, one prefill from position 0:
        np.float32[n, vocab]."""
        a = _ids(ids, "logits")
        out = np.empty((a.size, self.config["vocab"]), dtype=np.float32)
        _check(_lib.finch_api_logits(self._handle(), _ptr(a, _p_i32), a.size, _ptr(out, _p_f32)))
        return out

    def compress(self, context_ids, question_ids, *, mode="iterative", budget=None, ratio=None, cr=None,
                 chunk=None, select="head", normalize="on", press="finch", prompt_ids=None, steps=False,
                 seed=0, schedule="proportional", kv_chunk=None, rerotate=True, protect=0, cache_type="f32"):
        """Compress the context's KV cache guided by the question (exactly one
        of budget K, ratio X, cr F), then feed prompt_ids (None: the question
        again, iterative only).  The references' variants: normalize
        "authors", schedule "authors" (iterative), kv_chunk=L (oneshot, cr:
        kvpress chunk_length), rerotate=False (oneshot: kvpress
        rerotate_keys=False).  protect=P keeps the first P context tokens (a
        chat template's header) out of the selection.  steps=True keeps every
        step's selection.  cache_type="f16" stores the KV cache in f16 (K and
        V rounded when stored; the scores still fp32), as `--cache-type f16`.
        Returns a Result."""
        given = [(k, v) for k, v in (("budget", budget), ("ratio", ratio), ("cr", cr)) if v is not None]
        if len(given) != 1:
            raise FinchError("give exactly one budget: budget=K, ratio=X or cr=F")
        kind = ("budget", "ratio", "cr").index(given[0][0])
        if isinstance(normalize, bool):
            normalize = "on" if normalize else "off"
        if chunk is not None and int(chunk) < 1:
            raise FinchError(f"chunk must be >= 1, got {chunk}")
        c, q = _ids(context_ids, "context"), _ids(question_ids, "question")
        p = _ids(prompt_ids, "prompt") if prompt_ids is not None else None
        h = ctypes.c_void_p()
        _check(_lib.finch_api_compress(
            self._handle(), mode.encode(), select.encode(), str(normalize).encode(), schedule.encode(),
            press.encode(), kind,
            float(given[0][1]), 0 if chunk is None else int(chunk), 0 if kv_chunk is None else int(kv_chunk),
            0 if rerotate else 1, int(protect), int(seed), 1 if steps else 0, str(cache_type).encode(),
            _ptr(c, _p_i32), c.size, _ptr(q, _p_i32), q.size, _ptr(p, _p_i32), 0 if p is None else p.size,
            ctypes.byref(h)))
        return Result(self, h)


class Result:
    """A press run: the compressed cache and what the selection saw.

    kept     int32 [L, G, n_kept]     original positions kept, ascending
    keys     float32 [L, G, n_kept, d] Hugging Face (rotate-half) layout
    values   float32 [L, G, n_kept, d]
    logits   float32 [vocab]          after the prompt
    scores   float32 [L, G, N]        the last selection's scores (NaN: not a candidate)
    margins  float32 [L, G]           smallest relative gap at the cut
    schedule int32 [T]                k_t of every step
    steps_kept, steps_scores          with steps=True (else None)
    meta     dict                     meta.json of the dump
    """

    def __init__(self, model, handle):
        self._model = model  # keeps the model alive while the result is
        self._h = handle
        d = (ctypes.c_size_t * 8)()
        _lib.finch_api_result_dims(handle, d)
        L, G, nk, hd, V, N, T, kmax = list(d)
        self.kept = np.empty((L, G, nk), np.int32)
        _lib.finch_api_result_kept(handle, _ptr(self.kept, _p_i32))
        self.keys = np.empty((L, G, nk, hd), np.float32)
        self.values = np.empty((L, G, nk, hd), np.float32)
        _lib.finch_api_result_kv(handle, 0, _ptr(self.keys, _p_f32), _ptr(self.values, _p_f32))
        self.logits = np.empty(V, np.float32)
        _lib.finch_api_result_logits(handle, _ptr(self.logits, _p_f32))
        self.scores = np.empty((L, G, N), np.float32)
        _lib.finch_api_result_scores(handle, _ptr(self.scores, _p_f32))
        self.margins = np.empty((L, G), np.float32)
        _lib.finch_api_result_margins(handle, _ptr(self.margins, _p_f32))
        self.schedule = np.empty(T, np.int32)
        _lib.finch_api_result_schedule(handle, _ptr(self.schedule, _p_i32))
        self.steps_kept = self.steps_scores = None
        if self.meta_for("hf")["params"]["steps"]:
            self.steps_kept = np.empty((T, L, G, kmax), np.int32)
            self.steps_scores = np.empty((T, L, G, N), np.float32)
            _check(_lib.finch_api_result_steps(handle, _ptr(self.steps_kept, _p_i32),
                                               _ptr(self.steps_scores, _p_f32)))
        self.meta = self.meta_for("hf")

    def meta_for(self, layout="hf"):
        p = ctypes.c_void_p()
        _check(_lib.finch_api_result_meta(self._handle(), _layout(layout), ctypes.byref(p)))
        return json.loads(_take_string(p))

    def native_keys(self):
        """The keys as the cache holds them (GGUF llama: adjacent pairs)."""
        L, G, nk, hd = self.keys.shape
        k = np.empty((L, G, nk, hd), np.float32)
        _lib.finch_api_result_kv(self._handle(), 1, _ptr(k, _p_f32), None)
        return k

    def save(self, directory, layout="hf"):
        """Write the dump (docs/dump-format.md) into directory (created when
        missing)."""
        _check(_lib.finch_api_result_save(self._handle(), os.fsencode(directory), _layout(layout)))

    def _handle(self):
        if self._h is None:
            raise FinchError("the result was closed")
        if self._model._h is None:  # the C result reads the model's weights and tokenizer
            raise FinchError("the model of this result was closed")
        return self._h

    def close(self):
        if self._h is not None and _lib is not None:
            _lib.finch_api_result_free(self._h)
        self._h = None

    def __del__(self):
        self.close()
