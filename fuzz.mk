# fuzz.mk - the libFuzzer targets of tests/fuzz/ (included by the Makefile,
# after LIB_SRC and CLI_SRC are set).
#
#   make fuzz FUZZ_SECONDS=N   build every target with clang
#                              -fsanitize=fuzzer,address,undefined into
#                              build/fuzz/, run each for N seconds on a copy
#                              of its seed corpus; fails on any crash, leak,
#                              hang or sanitizer report
#   make fuzz-smoke            run each target once over its seeds and the
#                              saved regression inputs (quick; CI runs it,
#                              then `make fuzz FUZZ_SECONDS=2`, see .ci/run)
#   make fuzz-build            only build
#   make fuzz FUZZ_TARGETS=gguf FUZZ_SECONDS=600   one target
#
# Crashing inputs land in build/fuzz/artifacts-<target>/; save the ones that
# matter in tests/fuzz/regressions/ (see tests/test_fuzz_regressions.c).
# Seed corpora are written by tools/make_fuzz_seeds.py; the repository's
# copies are never modified (each run works on build/fuzz/corpus-<target>).

FUZZ_CC      ?= clang
FUZZ_DIR     ?= build/fuzz
FUZZ_SECONDS ?= 60
FUZZ_FLAGS   ?=
FUZZ_TARGETS ?= $(patsubst tests/fuzz/fuzz_%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_ASSETS  ?= $(if $(FINCH_ASSETS),$(FINCH_ASSETS),../shared/assets)

FUZZ_SAN    := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
FUZZ_CFLAGS := -std=c11 -D_GNU_SOURCE -O1 -g -Wall -Wextra -Wshadow -Wno-unused-parameter \
               -Iinclude -Isrc $(LIB_DIRS:%=-Isrc/%) -Isrc/cli -Itests/fuzz -pthread $(FUZZ_SAN)
FUZZ_LDLIBS := -lcjson -lm -pthread

# The library and the CLI's parsers (not main.c: libFuzzer brings main),
# instrumented for coverage; no BLAS, which the parsers never reach.
FUZZ_LIB_OBJ := $(LIB_SRC:src/%.c=$(FUZZ_DIR)/obj/%.o)
FUZZ_CLI_OBJ := $(patsubst src/%.c,$(FUZZ_DIR)/obj/%.o,$(filter-out src/cli/main.c,$(CLI_SRC)))
FUZZ_BINS    := $(FUZZ_TARGETS:%=$(FUZZ_DIR)/fuzz_%)

.PHONY: fuzz fuzz-smoke fuzz-build fuzz-cc-check

fuzz-build: $(FUZZ_BINS)

# One clear line instead of a page of compiler errors when clang or its
# libFuzzer / sanitizer runtimes are missing.
fuzz-cc-check:
	@printf 'int LLVMFuzzerTestOneInput(const char *d, long n) { return 0; }\n' | \
	  $(FUZZ_CC) -x c -fsanitize=fuzzer,address,undefined -o /dev/null - 2>/dev/null || \
	  { echo "fuzz: '$(FUZZ_CC) -fsanitize=fuzzer,address,undefined' does not link: install clang and its runtimes (sh tools/deps.sh fuzz; Debian: clang libclang-rt-14-dev for clang 14)"; exit 1; }

$(FUZZ_DIR)/obj/%.o: src/%.c $(HEADERS) | fuzz-cc-check
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(FUZZ_ISA) -fsanitize=fuzzer-no-link -c $< -o $@

$(FUZZ_DIR)/obj/kernels/kernels_avx2.o: FUZZ_ISA = $(ISA_AVX2)
$(FUZZ_DIR)/obj/kernels/kernels_avx512.o: FUZZ_ISA = $(ISA_AVX512)
$(FUZZ_DIR)/obj/kernels/kernels_bf16_avx2.o: FUZZ_ISA = $(ISA_BF16_AVX2)
$(FUZZ_DIR)/obj/kernels/kernels_bf16_avx512.o: FUZZ_ISA = $(ISA_BF16_AVX512)

$(FUZZ_DIR)/libfinch_fuzz.a: $(FUZZ_LIB_OBJ) $(FUZZ_CLI_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(FUZZ_DIR)/fuzz_%: tests/fuzz/fuzz_%.c $(wildcard tests/fuzz/*.h) $(FUZZ_DIR)/libfinch_fuzz.a
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< $(FUZZ_DIR)/libfinch_fuzz.a $(FUZZ_LDLIBS)

fuzz: $(FUZZ_BINS)
	@FUZZ_DIR=$(FUZZ_DIR) FUZZ_ASSETS=$(FUZZ_ASSETS) sh tests/fuzz/run.sh fuzz $(FUZZ_SECONDS) "$(FUZZ_FLAGS)" $(FUZZ_TARGETS)

fuzz-smoke: $(FUZZ_BINS)
	@FUZZ_DIR=$(FUZZ_DIR) FUZZ_ASSETS=$(FUZZ_ASSETS) sh tests/fuzz/run.sh smoke 0 "$(FUZZ_FLAGS)" $(FUZZ_TARGETS)
