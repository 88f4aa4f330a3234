/*
 * finch_bench.h - what `finch bench` measures against.
 *
 * Two kinds of yardstick, so that every speed can also be read as a
 * fraction of what the machine allows (docs/bench.md):
 *
 *   the work:   the exact FLOP count of a forward pass, and the bytes of
 *               weights one decoded token streams from memory;
 *   the limits: the machine's own, measured in the same run by two probes,
 *               an FMA throughput probe and a streaming-read bandwidth probe.
 *
 * Like the rest of libfinch, nothing here prints or exits; failures return
 * finch_status with the reason in finch_last_error().
 */
#ifndef FINCH_BENCH_H
#define FINCH_BENCH_H

#include "finch.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- the work */

/* FLOPs of finch_forward over n tokens at positions past .. past+n-1 that
 * computes logits for the last n_logits of them.  One multiply-add counts 2.
 * With qdim = n_head*head_dim and kvdim = n_kv_head*head_dim:
 *
 *   layer matmuls  2 * n_layer * n * (dim*qdim + 2*dim*kvdim + qdim*dim
 *                                     + 3*dim*ffn_dim)
 *   attention      4 * n_layer * n_head * head_dim * sum_{t<n} (past + t + 1)
 *                  (token t sees past + t + 1 keys: q.k and the weighted
 *                  sum of values cost 2*head_dim FLOPs per key each)
 *   output head    2 * vocab * dim * n_logits
 *
 * Norms, RoPE, softmax, SiLU, biases and residual adds are O(dim) per token
 * and not counted (under 0.1% for the shapes benchmarked). */
uint64_t finch_forward_flops(const finch_config *cfg, size_t n, size_t past, size_t n_logits);

/* Bytes of weights one decoded token reads: every weight of every layer
 * (norms, the q/k/v/o and feed-forward matrices, biases when present) and
 * the final norm and the output matrix, each at its stored type, plus one
 * row of the token embedding.  A tied output matrix is counted once, as the
 * output.  The KV cache is not counted (it is not a weight). */
size_t finch_decode_weight_bytes(const finch_model *m);

/* -------------------------------------------------------------- the limits */

/* The vector unit the probes use: the widest this CPU has and this build
 * compiled ("avx512", "avx2", "neon" or "scalar"). */
const char *finch_probe_isa(void);

/* FMA throughput: each of n_threads threads (0: every core) runs
 * independent chains of fused multiply-adds on the widest vector registers,
 * enough chains to keep every FMA pipe busy despite its latency, for about
 * `seconds`; *gflops is the best of three runs, counting 2 FLOPs per lane
 * per FMA, over the wall time from a common start to the last thread's end. */
finch_status finch_probe_fma(size_t n_threads, double seconds, double *gflops);

/* Streaming-read bandwidth: n_threads threads (0: every core) each sum
 * their own slice of a buffer of `bytes` (make it much larger than the last
 * level cache: 1 GiB); *gbs is the best of `passes` passes, in 1e9 bytes per
 * second of wall time.  The buffer is allocated, written once (so that its
 * pages exist) and freed inside the call. */
finch_status finch_probe_read_bw(size_t n_threads, size_t bytes, size_t passes, double *gbs);

#ifdef __cplusplus
}
#endif
#endif /* FINCH_BENCH_H */
