/* cli_limits.c - the limits every running subcommand shares: --max-memory
 * and the memory check made before the KV cache is allocated, and the exit
 * code of an allocation that fails anyway (docs/errors.md). */
#include "cli.h"

int cli_parse_max_memory(const char *value, size_t *bytes) {
    *bytes = 0;
    if (!value) return 0;
    return finch_parse_size(value, bytes) ? cli_error("--max-memory: %s", finch_last_error()) : 0;
}

/* The limit: --max-memory when given (it may be above what is free: the
 * mapped weights can be paged), else what the system has now. */
static bool memory_limit(size_t max_memory, size_t *limit, const char **name) {
    *limit = max_memory;
    *name = "--max-memory";
    if (max_memory) return true;
    *name = "the memory available";
    return finch_memory_available(limit) == FINCH_OK; /* unknown: nothing to compare */
}

int cli_check_memory(const finch_model *m, size_t kv_positions, finch_cache_type cache_type, size_t max_batch,
                     size_t max_memory, const char *what) {
    finch_memory need = finch_memory_estimate_type(m, kv_positions, cache_type, max_batch);
    size_t limit;
    const char *name;
    if (!memory_limit(max_memory, &limit, &name) || need.total <= limit) return 0;
    char total[32], w[32], kv[32], s[32], lim[32];
    return cli_error("not enough memory: %s needs %s (weights %s, KV cache %s for %zu positions, scratch %s), "
                     "more than %s (%s)", what, finch_format_size(need.total, total, sizeof total),
                     finch_format_size(need.weights, w, sizeof w), finch_format_size(need.kv_cache, kv, sizeof kv),
                     kv_positions, finch_format_size(need.scratch, s, sizeof s), name,
                     finch_format_size(limit, lim, sizeof lim));
}

int cli_check_text_memory(const finch_model *m, size_t text_bytes, size_t max_memory, const char *what) {
    size_t base = m ? finch_memory_estimate(m, 0, 1).total : 0, text = finch_memory_text(text_bytes), limit;
    size_t need = base + text < base ? SIZE_MAX : base + text;
    const char *name;
    if (!memory_limit(max_memory, &limit, &name) || need <= limit) return 0;
    char total[32], t[32], lim[32];
    return cli_error("not enough memory: %s (%zu bytes) needs %s to read and tokenize (%s for the text), more than "
                     "%s (%s)", what, text_bytes, finch_format_size(need, total, sizeof total),
                     finch_format_size(text, t, sizeof t), name, finch_format_size(limit, lim, sizeof lim));
}

int cli_out_of_memory(void) {
    cli_error("out of memory");
    return EXIT_INTERNAL;
}
