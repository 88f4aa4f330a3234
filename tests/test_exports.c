/* test_exports.c - libfinch.so exports the finch_* API and nothing else
 * (src/api/libfinch.map): a helper such as gguf_open or tok_new, exported,
 * would bind to ggml's function of the same name (or ggml's to ours) when
 * both libraries are loaded into one process.  Reads the dynamic symbol
 * table with binutils' nm; skips where nm or the library is missing. */
#include "testutil.h"

#include <stdbool.h>
#include <unistd.h>

static const char *library(void) {
    const char *lib = getenv("FINCH_LIB"); /* make test: the build's own */
    return lib && *lib ? lib : "build/libfinch.so";
}

static void test_only_finch_symbols_exported(void **state) {
    (void)state;
    const char *lib = library();
    if (access(lib, R_OK) != 0) SKIP_MSG("%s not built", lib);
    if (system("nm --version >/dev/null 2>&1") != 0) SKIP_MSG("nm (binutils) not installed");
    char cmd[1200], line[512];
    snprintf(cmd, sizeof cmd, "nm -D --defined-only '%s'", lib);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t n_finch = 0, n_other = 0;
    bool has_load = false, has_api = false;
    while (fgets(line, sizeof line, p)) {
        char addr[64], type[8], name[400];
        if (sscanf(line, "%63s %7s %399s", addr, type, name) != 3) continue;
        name[strcspn(name, "@")] = 0; /* a version suffix, if any */
        if (strncmp(name, "finch_", 6) != 0) {
            fprintf(stderr, "exported but not finch_*: %s\n", name);
            n_other++;
            continue;
        }
        n_finch++;
        has_load |= strcmp(name, "finch_model_load") == 0;
        has_api |= strcmp(name, "finch_api_compress") == 0;
    }
    assert_int_equal(pclose(p), 0);
    assert_int_equal(n_other, 0);
    assert_true(has_load); /* the C API and the flat API (the Python binding's) are there */
    assert_true(has_api);
    assert_true(n_finch > 100);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_only_finch_symbols_exported),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
