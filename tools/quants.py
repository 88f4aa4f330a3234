#!/usr/bin/python3
"""quants.py - the Python twin of src/quants.c: ggml's quantized block types,
written from the block layouts (ggml-common.h), numpy only.

  dequantize(t, raw, n)         raw uint8 [rows, row_bytes] -> float32 [rows, n]
  quantize(t, x)                float32 [rows, n] -> uint8 [rows, row_bytes]
  quantize_act(partner, x)      activations -> the partner's blocks (as C)
  matmul_q8(t, raw, x)          x [n, cols] @ W.T as finch's Q8 arithmetic
  check_against_gguf_py(log)    our (de)quantizers against the gguf package

Quantizers: Q4_0, Q4_1, Q5_0, Q5_1 and Q8_0 follow ggml's reference rules
(quantize_row_*_ref, so they match gguf-py bit for bit); the K-quants and the
IQ4 types use simple rules of our own (a scale per sub-block from its range,
nearest level), which is all a fixture needs: any valid block is a valid
weight.  Dequantization and the Q8 products follow ggml's float operations in
the order src/quants.c uses (docs/quantization.md).
"""

import os
import sys

import numpy as np

F32, F16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q8_1 = 0, 1, 2, 3, 6, 7, 8, 9
Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, Q8_K, IQ4_NL, IQ4_XS, BF16 = 10, 11, 12, 13, 14, 15, 20, 23, 30

# type -> (name, values per block, bytes per block, partner)
TRAITS = {
    Q4_0: ("q4_0", 32, 18, Q8_0), Q4_1: ("q4_1", 32, 20, Q8_1), Q5_0: ("q5_0", 32, 22, Q8_0),
    Q5_1: ("q5_1", 32, 24, Q8_1), Q8_0: ("q8_0", 32, 34, Q8_0), Q2_K: ("q2_K", 256, 84, Q8_K),
    Q3_K: ("q3_K", 256, 110, Q8_K), Q4_K: ("q4_K", 256, 144, Q8_K), Q5_K: ("q5_K", 256, 176, Q8_K),
    Q6_K: ("q6_K", 256, 210, Q8_K), IQ4_NL: ("iq4_nl", 32, 18, Q8_0), IQ4_XS: ("iq4_xs", 256, 136, Q8_K),
}
WEIGHT_TYPES = list(TRAITS)
KVALUES = np.array([-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113], np.int32)

f32 = np.float32


def row_bytes(t, n):
    _, blk, nb, _ = TRAITS[t]
    if n % blk:
        raise ValueError(f"{TRAITS[t][0]} rows must be a multiple of {blk}, got {n}")
    return n // blk * nb


def _f16(b, off):
    """The f16 at byte offset off of each block, as float32."""
    return b[:, off:off + 2].copy().view(np.float16)[:, 0].astype(f32)


def _put_f16(b, off, v):
    b[:, off:off + 2] = np.asarray(v, f32).astype(np.float16).reshape(-1, 1).view(np.uint8)


def _nibbles(qs):
    """16 bytes per block -> 32 values: low nibbles then high nibbles."""
    return np.concatenate([qs & 0xF, qs >> 4], axis=1).astype(np.int32)


# ------------------------------------------------------------ K-quant unpack

def _k4_scale_min(s):
    """Q4_K/Q5_K: 12 bytes -> 8 scales and 8 mins (6 bits each)."""
    s = s.astype(np.int32)
    sc, mn = np.zeros((len(s), 8), np.int32), np.zeros((len(s), 8), np.int32)
    sc[:, :4], mn[:, :4] = s[:, 0:4] & 63, s[:, 4:8] & 63
    sc[:, 4:] = (s[:, 8:12] & 0xF) | ((s[:, 0:4] >> 6) << 4)
    mn[:, 4:] = (s[:, 8:12] >> 4) | ((s[:, 4:8] >> 6) << 4)
    return sc, mn


def _q2_fields(qs):
    """Q2_K/Q3_K: 64 bytes -> 256 2-bit fields, e = 128h + 32j + l at qs[32h + l] >> 2j."""
    out = np.zeros((len(qs), 256), np.int32)
    for h in range(2):
        for j in range(4):
            out[:, 128 * h + 32 * j:128 * h + 32 * j + 32] = (qs[:, 32 * h:32 * h + 32] >> (2 * j)) & 3
    return out


def unpack_k(t, b):
    """A super-block as (q [nb,256] int, sc [nb,S] int, mn [nb,S] int, sub, d, dmin)."""
    nb = len(b)
    if t == Q2_K:
        sc8 = b[:, 0:16].astype(np.int32)
        return _q2_fields(b[:, 16:80]), sc8 & 0xF, sc8 >> 4, 16, _f16(b, 80), _f16(b, 82)
    if t == Q3_K:
        hm, s = b[:, 0:32].astype(np.int32), b[:, 108 - 12:108].astype(np.int32)
        q = _q2_fields(b[:, 32:96])
        for e in range(256):
            bit = 4 * (e // 128) + (e % 128) // 32
            q[:, e] -= np.where((hm[:, e % 32] >> bit) & 1, 0, 4)
        sc = np.zeros((nb, 16), np.int32)
        for j in range(16):
            lo = s[:, j] & 0xF if j < 8 else s[:, j - 8] >> 4
            hi = (s[:, 8 + j % 4] >> (2 * (j // 4))) & 3
            sc[:, j] = (lo | (hi << 4)) - 32
        return q, sc, np.zeros_like(sc), 16, _f16(b, 108), np.zeros(nb, f32)
    if t in (Q4_K, Q5_K):
        sc, mn = _k4_scale_min(b[:, 4:16])
        qs = b[:, 16:144] if t == Q4_K else b[:, 48:176]
        q = np.zeros((nb, 256), np.int32)
        for c in range(4):
            for u in range(2):
                v = (qs[:, 32 * c:32 * c + 32] >> (4 * u)) & 0xF
                if t == Q5_K:
                    v = v + 16 * ((b[:, 16:48] >> (2 * c + u)) & 1)
                q[:, 64 * c + 32 * u:64 * c + 32 * u + 32] = v
        return q, sc, mn, 32, _f16(b, 0), _f16(b, 2)
    if t == Q6_K:
        ql, qh = b[:, 0:128].astype(np.int32), b[:, 128:192].astype(np.int32)
        q = np.zeros((nb, 256), np.int32)
        for h in range(2):
            for j in range(4):
                lo = (ql[:, 64 * h + 32 * (j & 1):64 * h + 32 * (j & 1) + 32] >> (4 * (j >> 1))) & 0xF
                hi = (qh[:, 32 * h:32 * h + 32] >> (2 * j)) & 3
                q[:, 128 * h + 32 * j:128 * h + 32 * j + 32] = (lo | (hi << 4)) - 32
        sc = b[:, 192:208].view(np.int8).astype(np.int32)
        return q, sc, np.zeros_like(sc), 16, _f16(b, 208), np.zeros(nb, f32)
    raise ValueError(t)


def _iq4_xs_scales(b):
    sl, sh = b[:, 4:8].astype(np.int32), b[:, 2].astype(np.int32) | (b[:, 3].astype(np.int32) << 8)
    return np.stack([((sl[:, ib // 2] >> (4 * (ib % 2))) & 0xF) | (((sh >> (2 * ib)) & 3) << 4)
                     for ib in range(8)], axis=1) - 32


# ----------------------------------------------------------- dequantization

def _dequant_blocks(t, b):
    """Blocks [nb, bytes] -> values [nb, block], ggml's float order."""
    if t == Q4_0:
        return (_nibbles(b[:, 2:18]) - 8).astype(f32) * _f16(b, 0)[:, None]
    if t == Q4_1:
        return _nibbles(b[:, 4:20]).astype(f32) * _f16(b, 0)[:, None] + _f16(b, 2)[:, None]
    if t in (Q5_0, Q5_1):
        o = 4 if t == Q5_1 else 2
        qh = b[:, o:o + 4].copy().view(np.uint32)[:, 0].astype(np.int64)
        v = _nibbles(b[:, o + 4:o + 20]) | (((qh[:, None] >> np.arange(32)) & 1) << 4).astype(np.int32)
        if t == Q5_0:
            return (v - 16).astype(f32) * _f16(b, 0)[:, None]
        return v.astype(f32) * _f16(b, 0)[:, None] + _f16(b, 2)[:, None]
    if t == Q8_0:
        return _f16(b, 0)[:, None] * b[:, 2:34].view(np.int8).astype(f32)
    if t == IQ4_NL:
        return _f16(b, 0)[:, None] * KVALUES[_nibbles(b[:, 2:18])].astype(f32)
    if t == IQ4_XS:
        dl = (_f16(b, 0)[:, None] * _iq4_xs_scales(b).astype(f32)).astype(f32)
        out = np.zeros((len(b), 256), f32)
        for ib in range(8):
            out[:, 32 * ib:32 * ib + 32] = dl[:, ib:ib + 1] * KVALUES[_nibbles(b[:, 8 + 16 * ib:24 + 16 * ib])].astype(f32)
        return out
    q, sc, mn, sub, d, dmin = unpack_k(t, b)
    s = np.arange(256) // sub
    dl = (d[:, None] * sc[:, s].astype(f32)).astype(f32)
    ml = (dmin[:, None] * mn[:, s].astype(f32)).astype(f32)
    return (dl * q.astype(f32) - ml).astype(f32)


def dequantize(t, raw, n):
    raw = np.ascontiguousarray(raw, np.uint8).reshape(-1, row_bytes(t, n))
    _, blk, nb, _ = TRAITS[t]
    return _dequant_blocks(t, raw.reshape(-1, nb)).reshape(raw.shape[0], n)


# ------------------------------------------------------------- quantizers

def _round_away(v):
    return np.where(v >= 0, np.floor(v + f32(0.5)), np.ceil(v - f32(0.5))).astype(f32)


def _signed_max(x):
    """The value of largest magnitude per row (the first one on ties)."""
    return x[np.arange(len(x)), np.argmax(np.abs(x), axis=1)]


def _pack_nibbles(v):
    v = v.astype(np.uint8)
    return (v[:, :16] | (v[:, 16:] << 4)).astype(np.uint8)


def _q_legacy(t, x):
    """ggml's quantize_row_{q4_0,q4_1,q5_0,q5_1,q8_0}_ref, float32 throughout."""
    nb = len(x)
    b = np.zeros((nb, TRAITS[t][2]), np.uint8)
    if t == Q8_0:
        amax = np.max(np.abs(x), axis=1)
        d = (amax / f32(127)).astype(f32)
        idv = np.where(d != 0, f32(1) / np.where(d != 0, d, f32(1)), f32(0)).astype(f32)
        _put_f16(b, 0, d)
        b[:, 2:34] = _round_away((x * idv[:, None]).astype(f32)).astype(np.int8).view(np.uint8)
        return b
    if t in (Q4_0, Q5_0):
        top = 8 if t == Q4_0 else 16
        d = (_signed_max(x) / f32(-top)).astype(f32)
        idv = np.where(d != 0, f32(1) / np.where(d != 0, d, f32(1)), f32(0)).astype(f32)
        q = np.minimum(top * 2 - 1, np.trunc((x * idv[:, None]).astype(f32) + f32(top + 0.5))).astype(np.int32)
        _put_f16(b, 0, d)
        o = 2
    else:
        top = 15 if t == Q4_1 else 31
        lo, hi = np.min(x, axis=1), np.max(x, axis=1)
        d = ((hi - lo) / f32(top)).astype(f32)
        idv = np.where(d != 0, f32(1) / np.where(d != 0, d, f32(1)), f32(0)).astype(f32)
        q = np.minimum(top, np.trunc(((x - lo[:, None]).astype(f32) * idv[:, None]).astype(f32) + f32(0.5))).astype(np.int32)
        _put_f16(b, 0, d)
        _put_f16(b, 2, lo)
        o = 4
    if t in (Q5_0, Q5_1):
        qh = np.zeros(nb, np.uint64)
        for j in range(32):
            qh |= ((q[:, j].astype(np.uint64) >> np.uint64(4)) & np.uint64(1)) << np.uint64(j)
        b[:, o:o + 4] = qh.astype(np.uint32).reshape(-1, 1).view(np.uint8)
        o += 4
    b[:, o:o + 16] = _pack_nibbles(q & 0xF)
    return b


def _levels(x, scale, lo, hi, offset=None):
    """round(x / scale) (+ offset) clipped to [lo, hi]; 0 where scale is 0."""
    s = np.where(scale != 0, scale, f32(1))
    v = np.rint((x if offset is None else x + offset) / s)
    return np.clip(np.where(scale != 0, v, 0), lo, hi).astype(np.int32)


def _q_k_minmax(t, x):
    """Q2_K, Q4_K, Q5_K: unsigned levels with a min per sub-block."""
    nb, sub, top, sbits = len(x), (16 if t == Q2_K else 32), {Q2_K: 3, Q4_K: 15, Q5_K: 31}[t], (15 if t == Q2_K else 63)
    xs = x.reshape(nb, -1, sub)
    mins = np.maximum(f32(0), -np.min(xs, axis=2))
    scales = ((np.max(xs, axis=2) + mins) / f32(top)).astype(f32)
    d = (np.max(scales, axis=1) / f32(sbits)).astype(np.float16).astype(f32)
    dmin = (np.max(mins, axis=1) / f32(sbits)).astype(np.float16).astype(f32)
    sc = _levels(scales, d[:, None], 0, sbits)
    mn = _levels(mins, dmin[:, None], 0, sbits)
    q = _levels(xs, (d[:, None] * sc)[:, :, None].astype(f32), 0, top, (dmin[:, None] * mn)[:, :, None]).reshape(nb, 256)
    b = np.zeros((nb, TRAITS[t][2]), np.uint8)
    if t == Q2_K:
        b[:, 0:16] = (sc | (mn << 4)).astype(np.uint8)
        for h in range(2):
            for j in range(4):
                b[:, 16 + 32 * h:48 + 32 * h] |= (q[:, 128 * h + 32 * j:128 * h + 32 * j + 32] << (2 * j)).astype(np.uint8)
        _put_f16(b, 80, d), _put_f16(b, 82, dmin)
        return b
    _put_f16(b, 0, d), _put_f16(b, 2, dmin)
    s = np.zeros((nb, 12), np.int32)
    s[:, 0:4] = sc[:, 0:4] | ((sc[:, 4:8] >> 4) << 6)
    s[:, 4:8] = mn[:, 0:4] | ((mn[:, 4:8] >> 4) << 6)
    s[:, 8:12] = (sc[:, 4:8] & 0xF) | ((mn[:, 4:8] & 0xF) << 4)
    b[:, 4:16] = s.astype(np.uint8)
    qs = 16 if t == Q4_K else 48
    for c in range(4):
        lo, hi = q[:, 64 * c:64 * c + 32], q[:, 64 * c + 32:64 * c + 64]
        b[:, qs + 32 * c:qs + 32 * c + 32] = ((lo & 0xF) | ((hi & 0xF) << 4)).astype(np.uint8)
        if t == Q5_K:
            b[:, 16:48] |= (((lo >> 4) << (2 * c)) | ((hi >> 4) << (2 * c + 1))).astype(np.uint8)
    return b


def _q_k_signed(t, x):
    """Q3_K (levels -4..3, 6-bit signed scales) and Q6_K (-32..31, int8 scales)."""
    nb = len(x)
    lo, hi, smax = (-4, 3, 31) if t == Q3_K else (-32, 31, 127)
    xs = x.reshape(nb, 16, 16)
    scales = (_signed_max(xs.reshape(-1, 16)).reshape(nb, 16) / f32(lo)).astype(f32)
    d = (np.max(np.abs(scales), axis=1) / f32(smax)).astype(np.float16).astype(f32)
    sc = _levels(scales, d[:, None], -smax - (1 if t == Q3_K else 0), smax)
    q = _levels(xs, (d[:, None] * sc)[:, :, None].astype(f32), lo, hi).reshape(nb, 256)
    b = np.zeros((nb, TRAITS[t][2]), np.uint8)
    if t == Q3_K:
        u = q + 4
        for h in range(2):
            for j in range(4):
                e = slice(128 * h + 32 * j, 128 * h + 32 * j + 32)
                b[:, 32 + 32 * h:64 + 32 * h] |= ((u[:, e] & 3) << (2 * j)).astype(np.uint8)
                b[:, 0:32] |= ((u[:, e] >> 2) << (4 * h + j)).astype(np.uint8)
        s6 = sc + 32
        s = np.zeros((nb, 12), np.int32)
        for j in range(16):
            s[:, j % 8] |= (s6[:, j] & 0xF) << (4 * (j // 8))
            s[:, 8 + j % 4] |= (s6[:, j] >> 4) << (2 * (j // 4))
        b[:, 96:108] = s.astype(np.uint8)
        _put_f16(b, 108, d)
        return b
    u = q + 32
    for h in range(2):
        for j in range(4):
            v = u[:, 128 * h + 32 * j:128 * h + 32 * j + 32]
            o = 64 * h + 32 * (j & 1)
            b[:, o:o + 32] |= ((v & 0xF) << (4 * (j >> 1))).astype(np.uint8)
            b[:, 128 + 32 * h:160 + 32 * h] |= ((v >> 4) << (2 * j)).astype(np.uint8)
    b[:, 192:208] = sc.astype(np.int8).view(np.uint8)
    _put_f16(b, 208, d)
    return b


def _nearest_kvalue(v):
    return np.argmin(np.abs(v[..., None] - KVALUES.astype(f32)), axis=-1).astype(np.int32)


def _q_iq4(t, x):
    nb = len(x)
    b = np.zeros((nb, TRAITS[t][2]), np.uint8)
    if t == IQ4_NL:
        d = (_signed_max(x) / f32(-127)).astype(np.float16).astype(f32)
        s = np.where(d != 0, d, f32(1))[:, None]
        b[:, 2:18] = _pack_nibbles(_nearest_kvalue(x / s))
        _put_f16(b, 0, d)
        return b
    xs = x.reshape(nb, 8, 32)
    dsub = (_signed_max(xs.reshape(-1, 32)).reshape(nb, 8) / f32(-127)).astype(f32)
    d = (np.max(np.abs(dsub), axis=1) / f32(31)).astype(np.float16).astype(f32)
    ls = _levels(dsub, d[:, None], -32, 31)
    dl = (d[:, None] * ls).astype(f32)
    idx = _nearest_kvalue(xs / np.where(dl != 0, dl, f32(1))[:, :, None])
    for ib in range(8):
        b[:, 8 + 16 * ib:24 + 16 * ib] = _pack_nibbles(idx[:, ib])
    u = ls + 32
    sh = np.zeros(nb, np.int32)
    for ib in range(8):
        b[:, 4 + ib // 2] |= ((u[:, ib] & 0xF) << (4 * (ib % 2))).astype(np.uint8)
        sh |= (u[:, ib] >> 4) << (2 * ib)
    b[:, 2], b[:, 3] = (sh & 0xFF).astype(np.uint8), (sh >> 8).astype(np.uint8)
    _put_f16(b, 0, d)
    return b


def quantize(t, x):
    x = np.ascontiguousarray(x, f32)
    rows, n = x.shape
    _, blk, nb, _ = TRAITS[t]
    blocks = x.reshape(-1, blk)
    if t in (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0):
        b = _q_legacy(t, blocks)
    elif t in (Q2_K, Q4_K, Q5_K):
        b = _q_k_minmax(t, blocks)
    elif t in (Q3_K, Q6_K):
        b = _q_k_signed(t, blocks)
    else:
        b = _q_iq4(t, blocks)
    return b.reshape(rows, row_bytes(t, n))


# ---------------------------------------------------- activations and products

def _nearest_even(v):
    """Round half to even in float32 (np.rint), as src/quants.c's nearest_int."""
    return np.rint(v.astype(f32)).astype(np.int32)


def quantize_act(partner, x):
    """x float32 [n, cols] -> (d float32 [n, nb], q int32 [n, nb, blk], extra):
    Q8_0/Q8_1 per 32 (llama.cpp's x86 rule: d = amax/127 stored f16, q =
    round-half-even(x * (127/amax))), extra = Q8_1's f16(d * sum q); Q8_K per
    256 (iscale = -127/max, q = min(127, round-half-even(iscale x)), d =
    1/iscale kept f32), extra = the 16-value sums."""
    x = np.ascontiguousarray(x, f32)
    n, cols = x.shape
    if partner in (Q8_0, Q8_1):
        xb = x.reshape(n, -1, 32)
        amax = np.max(np.abs(xb), axis=2)
        d = (amax / f32(127)).astype(f32)
        idv = np.where(amax != 0, f32(127) / np.where(amax != 0, amax, f32(1)), f32(0)).astype(f32)
        q = _nearest_even(xb * idv[:, :, None])
        s = (d * q.sum(axis=2).astype(f32)).astype(np.float16).astype(f32)
        return d.astype(np.float16).astype(f32), q, s
    xb = x.reshape(n, -1, 256)
    mx = np.take_along_axis(xb, np.argmax(np.abs(xb), axis=2)[:, :, None], axis=2)[:, :, 0]
    nz = mx != 0
    iscale = np.where(nz, f32(-127) / np.where(nz, mx, f32(1)), f32(0)).astype(f32)
    q = np.minimum(127, _nearest_even(xb * iscale[:, :, None]))
    q = np.where(nz[:, :, None], q, 0)
    d = np.where(nz, f32(1) / np.where(nz, iscale, f32(1)), f32(0)).astype(f32)
    return d, q, q.reshape(n, -1, 16, 16).sum(axis=3)


def matmul_q8(t, raw, x):
    """x [n, cols] @ W.T with W of type t (raw [rows, row_bytes]) as finch
    computes it in Q8 arithmetic: exact integer block sums, then src/quants.c's
    float32 steps, block by block in order."""
    x = np.ascontiguousarray(x, f32)
    n, cols = x.shape
    _, blk, nbytes, partner = TRAITS[t]
    b = np.ascontiguousarray(raw, np.uint8).reshape(-1, nbytes)
    rows = len(raw)
    nb = cols // blk
    dx, qx, ex = quantize_act(partner, x)
    acc = np.zeros((n, rows), f32)
    if blk == 32:
        w = _dequant_int32(t, b)                       # ints and per-block scales
        qw = w["q"].reshape(rows, nb, 32)
        dw = w["d"].reshape(rows, nb)
        isum = np.einsum("nbi,rbi->nrb", qx.astype(np.int64), qw.astype(np.int64)).astype(f32)
        for k in range(nb):
            if t == Q4_0:
                acc = (acc + isum[:, :, k] * dw[None, :, k] * dx[:, k, None]).astype(f32)
            elif t == IQ4_NL:
                acc = (acc + (dx[:, k, None] * dw[None, :, k]) * isum[:, :, k]).astype(f32)
            elif t in (Q4_1, Q5_1):
                m = w["m"].reshape(rows, nb)
                acc = (acc + ((dw[None, :, k] * dx[:, k, None]) * isum[:, :, k]
                              + m[None, :, k] * ex[:, k, None])).astype(f32)
            else:
                acc = (acc + (dw[None, :, k] * dx[:, k, None]) * isum[:, :, k]).astype(f32)
        return acc
    if t == IQ4_XS:
        q = KVALUES[np.concatenate([_nibbles(b[:, 8 + 16 * ib:24 + 16 * ib]) for ib in range(8)], axis=1)]
        q = q.reshape(rows, nb, 8, 32)
        ls = _iq4_xs_scales(b).reshape(rows, nb, 8).astype(f32)
        dw = _f16(b, 0).reshape(rows, nb)
        qxs = qx.reshape(n, nb, 8, 32)
        for k in range(nb):
            d4d8 = (dw[None, :, k] * dx[:, k, None]).astype(f32)
            for ib in range(8):
                s = np.einsum("ni,ri->nr", qxs[:, k, ib].astype(np.int64), q[:, k, ib].astype(np.int64)).astype(f32)
                acc = (acc + (d4d8 * ls[None, :, k, ib]).astype(f32) * s).astype(f32)
        return acc
    q, sc, mn, sub, d, dmin = unpack_k(t, b)
    S = 256 // sub
    q, sc, mn = q.reshape(rows, nb, S, sub), sc.reshape(rows, nb, S), mn.reshape(rows, nb, S)
    d, dmin = d.reshape(rows, nb), dmin.reshape(rows, nb)
    qxs = qx.reshape(n, nb, S, sub).astype(np.int64)
    for k in range(nb):
        part = np.einsum("nsi,rsi->nrs", qxs[:, k], q[:, k].astype(np.int64))
        isum = (part * sc[None, :, k]).sum(axis=2)
        bs = ex[:, k].reshape(n, S, sub // 16).sum(axis=2).astype(np.int64)   # per sub-block
        summ = np.einsum("ns,rs->nr", bs, mn[:, k].astype(np.int64))
        dd = (d[None, :, k] * dx[:, k, None]).astype(f32)
        dm = (dmin[None, :, k] * dx[:, k, None]).astype(f32)
        acc = (acc + ((dd * isum.astype(f32)).astype(f32) - (dm * summ.astype(f32)).astype(f32))).astype(f32)
    return acc


def _dequant_int32(t, b):
    """32-value types as integers: q [nb, 32], d [nb] (and m for Q4_1/Q5_1)."""
    if t in (Q4_0, IQ4_NL):
        v = _nibbles(b[:, 2:18])
        return {"q": v - 8 if t == Q4_0 else KVALUES[v], "d": _f16(b, 0)}
    if t == Q8_0:
        return {"q": b[:, 2:34].view(np.int8).astype(np.int32), "d": _f16(b, 0)}
    o = 4 if t in (Q4_1, Q5_1) else 2
    v = _nibbles(b[:, o:o + 16] if t == Q4_1 else b[:, o + 4:o + 20])
    if t in (Q5_0, Q5_1):
        qh = b[:, o:o + 4].copy().view(np.uint32)[:, 0].astype(np.int64)
        v = v | (((qh[:, None] >> np.arange(32)) & 1) << 4).astype(np.int32)
    r = {"q": v - 16 if t == Q5_0 else v, "d": _f16(b, 0)}
    if o == 4:
        r["m"] = _f16(b, 2)
    return r


# ---------------------------------------------------------- gguf-py check

GGUF_PY = os.environ.get("GGUF_PY", "/work/llamacpp/src/gguf-py")


def check_against_gguf_py(log=print, seed=7):
    """Our dequantizers against gguf-py's on random blocks and on our own
    quantizers' output (bit for bit), and our ggml-rule quantizers against
    gguf-py's quantizers.  Returns False (and says why) when gguf-py is not
    there; raises on a mismatch."""
    if not os.path.isdir(GGUF_PY):
        log(f"  gguf-py not found at {GGUF_PY}: layouts not cross-checked")
        return False
    sys.path.insert(0, GGUF_PY)
    try:
        from gguf import quants as gq
        from gguf.constants import GGMLQuantizationType as GT
    finally:
        sys.path.remove(GGUF_PY)
    rng = np.random.default_rng(seed)
    for t in WEIGHT_TYPES:
        name, blk, nbytes, _ = TRAITS[t]
        gt = GT(t)
        raw = rng.integers(0, 256, (64, nbytes), dtype=np.uint8)
        for off in {Q4_0: [0], Q4_1: [0, 2], Q5_0: [0], Q5_1: [0, 2], Q8_0: [0], Q2_K: [80, 82],
                    Q3_K: [108], Q4_K: [0, 2], Q5_K: [0, 2], Q6_K: [208], IQ4_NL: [0], IQ4_XS: [0]}[t]:
            _put_f16(raw, off, rng.uniform(-0.05, 0.05, 64).astype(f32))
        x = (rng.standard_normal((8, 512)) * 0.1).astype(f32)
        ours_q = quantize(t, x)
        for what, r, n in (("random blocks", raw, blk * 64), ("our quantizer", ours_q, 512)):
            a = dequantize(t, r.reshape(-1, row_bytes(t, n)), n)
            g = gq.dequantize(r.reshape(-1, row_bytes(t, n)), gt).astype(f32).reshape(a.shape)
            if not np.array_equal(a.view(np.uint32), g.view(np.uint32)):
                bad = np.argwhere(a != g)[0]
                raise AssertionError(f"{name} {what}: dequantized value {tuple(bad)} is {a[tuple(bad)]!r}, "
                                     f"gguf-py {g[tuple(bad)]!r}")
        err = float(np.sqrt(np.mean((dequantize(t, ours_q, 512) - x) ** 2) / np.mean(x ** 2)))
        note = f"round-trip rel. RMS error {err:.3f}"
        if t in (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0):
            g = gq.quantize(x, gt).reshape(ours_q.shape)
            if not np.array_equal(g, ours_q):
                raise AssertionError(f"{name}: our quantizer differs from gguf-py's")
            note += ", quantizer = gguf-py's"
        log(f"  {name}: dequantization = gguf-py's (random blocks, our blocks); {note}")
    return True


if __name__ == "__main__":
    check_against_gguf_py()
