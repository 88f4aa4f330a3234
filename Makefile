# finch - build, test, fixtures.
#   make            build/finch, build/libfinch.a, build/libfinch.so
#   make test       build and run the cmocka suites
#   make run        the README's main job on the shipped model
#   make valgrind   the same job under valgrind (leaks, invalid reads)
#   make fixtures   regenerate testdata/ with the PyTorch twin (tools/)
#   make bench      finch bench on real model shapes (docs/bench.md)
#   make peer       the llama.cpp comparison tools (docs/llamacpp-agreement.md)
#   make BLAS=0     build without OpenBLAS;  make SAN=1: ASan + UBSan
#   make MPI=1      build-mpi/finch: `finch eval` over MPI ranks (docs/mpi.md)
#   make test-mpi   the MPI eval against one process, and a killed rank resumed
CC      ?= cc
BLAS    ?= 1
SAN     ?= 0
MPI     ?= 0
MPICC   ?= mpicc
BUILD   ?= build
PYTHON  ?= /usr/bin/python3

# The library's folders, lowest layer first (README's file table; each
# folder's map is the header named after it).  Every folder is on the
# include path, so `#include "gguf.h"` works from anywhere.
LIB_DIRS = util kernels formats tokenizer engine press eval api
CFLAGS_BASE = -std=c11 -D_GNU_SOURCE -O2 -g -Wall -Wextra -Wshadow -Wno-unused-parameter \
              -fPIC -Iinclude -Isrc $(LIB_DIRS:%=-Isrc/%) -pthread
ifeq ($(SAN),1)
  CFLAGS_BASE += -O1 -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
  LDFLAGS += -fsanitize=address,undefined
  OUT := $(BUILD)-san
else
  OUT := $(BUILD)
endif
# MPI=1: Open MPI's flags from its compiler wrapper, objects in their own
# directory (build-mpi/); the plain build never sees eval_mpi*.c or mpi.h.
ifeq ($(MPI),1)
  CFLAGS_BASE += -DFINCH_MPI=1 $(shell $(MPICC) --showme:compile 2>/dev/null)
  LDLIBS_MPI := $(shell $(MPICC) --showme:link 2>/dev/null)
  OUT := $(subst $(BUILD),$(BUILD)-mpi,$(OUT))
endif
LDLIBS = -lcjson -lm -pthread
ifeq ($(BLAS),1)
  CFLAGS_BASE += -DFINCH_BLAS=1 -I/usr/include/x86_64-linux-gnu/openblas-pthread -I/usr/include/openblas
  LDLIBS += -lopenblas
endif
CFLAGS ?=
CFLAGS += $(CFLAGS_BASE)

ARCH := $(shell uname -m)
ISA_SRC := src/kernels/kernels_avx2.c src/kernels/kernels_avx512.c src/kernels/kernels_bf16_avx512.c \
           src/kernels/kernels_bf16_avx2.c src/kernels/kernels_neon.c
LIB_SRC := $(filter-out $(ISA_SRC), $(wildcard $(LIB_DIRS:%=src/%/*.c)))
ifeq ($(ARCH),x86_64)
  LIB_SRC += src/kernels/kernels_avx2.c src/kernels/kernels_avx512.c src/kernels/kernels_bf16_avx512.c \
             src/kernels/kernels_bf16_avx2.c
endif
ifeq ($(ARCH),aarch64)
  LIB_SRC += src/kernels/kernels_neon.c
endif
CLI_SRC  := $(wildcard src/cli/*.c)
ifneq ($(MPI),1)
  CLI_SRC := $(filter-out src/cli/eval_mpi%.c, $(CLI_SRC))
endif
TEST_SRC := $(wildcard tests/test_*.c)

LIB_OBJ  := $(LIB_SRC:src/%.c=$(OUT)/obj/%.o)
CLI_OBJ  := $(CLI_SRC:src/%.c=$(OUT)/obj/%.o)
TEST_BIN := $(TEST_SRC:tests/%.c=$(OUT)/tests/%)
# The CLI's pieces without main(), for the tests of CLI-only code (svg.c).
CLI_LIB_OBJ := $(filter-out $(OUT)/obj/cli/main.o, $(CLI_OBJ))

.PHONY: all test test-mpi run deps fixtures clean bench bench-7b bench-kernels model valgrind python peer
all: $(OUT)/finch $(OUT)/libfinch.a $(OUT)/libfinch.so

deps:
	@BLAS=$(BLAS) MPI=$(MPI) MPICC="$(MPICC)" CC="$(CC)" sh tools/deps.sh

HEADERS := $(wildcard include/*.h src/*/*.h)
$(OUT)/obj/%.o: src/%.c $(HEADERS) | deps
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -c $< -o $@

# The commit the binary is built from (finch --version): written to a stamp
# file only when it changes, so a new commit recompiles version.o alone.
GIT_COMMIT := $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
COMMIT_STAMP := $(OUT)/git-commit
$(shell mkdir -p $(OUT); [ "$$(cat $(COMMIT_STAMP) 2>/dev/null)" = "$(GIT_COMMIT)" ] || echo "$(GIT_COMMIT)" > $(COMMIT_STAMP))
$(OUT)/obj/util/version.o: $(COMMIT_STAMP)
$(OUT)/obj/util/version.o: CFLAGS += -DFINCH_GIT_COMMIT='"$(GIT_COMMIT)"'

# Each x86 ISA file's instruction-set flags (the fuzz build, fuzz.mk,
# compiles the same files with the same flags).
ISA_AVX2        := -mavx2 -mfma -mf16c
ISA_AVX512      := -mavx512f -mavx512bw -mavx512vl -mavx512dq -mfma -mf16c -mavx2
ISA_BF16_AVX2   := -mavx2 -mfma
ISA_BF16_AVX512 := -mavx512f -mavx512bw -mavx512vl -mavx512dq -mavx512bf16 -mavx2
$(OUT)/obj/kernels/kernels_avx2.o: CFLAGS += $(ISA_AVX2)
$(OUT)/obj/kernels/kernels_avx512.o: CFLAGS += $(ISA_AVX512)
$(OUT)/obj/kernels/kernels_bf16_avx2.o: CFLAGS += $(ISA_BF16_AVX2)
$(OUT)/obj/kernels/kernels_bf16_avx512.o: CFLAGS += $(ISA_BF16_AVX512)

$(OUT)/libfinch.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

# Only finch_* is exported (src/api/libfinch.map; tests/test_exports.c).
$(OUT)/libfinch.so: $(LIB_OBJ) src/api/libfinch.map
	$(CC) -shared $(LDFLAGS) -Wl,--version-script=src/api/libfinch.map -o $@ $(LIB_OBJ) $(LDLIBS)

$(OUT)/finch: $(CLI_OBJ) $(OUT)/libfinch.a
	$(CC) $(LDFLAGS) -o $@ $(CLI_OBJ) $(OUT)/libfinch.a $(LDLIBS) $(LDLIBS_MPI)

$(OUT)/libfinch-cli.a: $(CLI_LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(OUT)/tests/%: tests/%.c $(wildcard tests/*.h) $(OUT)/libfinch.a $(OUT)/libfinch-cli.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Isrc/cli -Itests -o $@ $< $(OUT)/libfinch-cli.a $(OUT)/libfinch.a -lcmocka $(LDLIBS) $(LDFLAGS)

# Every suite runs even when one fails; the summary line counts them all.
# The Python binding's pytest suite runs last (python/tests), its counts in
# the closing line; numpy and pytest come from Debian (tools/deps.sh pytest).
# Under SAN=1 it is skipped: an ASan library cannot be loaded by python3.
# bench_kernels and bench_wpack_k are built, not run: they keep compiling (make bench-kernels).
PYTEST_SKIP = $(if $(filter 1,$(SAN)),SAN=1: the sanitized libfinch.so cannot be loaded by python3)
test: all $(TEST_BIN) $(OUT)/tests/bench_kernels $(OUT)/tests/bench_wpack_k
	@sh tools/deps.sh pytest || true
	@FINCH_BIN=$(OUT)/finch FINCH_LIB=$(abspath $(OUT))/libfinch.so PYTEST_DIR=python/tests \
	    PYTEST_SKIP="$(PYTEST_SKIP)" PYTHON=$(PYTHON) sh tests/run_tests.sh $(TEST_BIN)

# `finch eval` under mpirun (tests/mpi_test.sh, docs/mpi.md): 2 ranks give
# the one-process results row for row, and a killed rank is resumed.
test-mpi:
	@$(MAKE) --no-print-directory all
	@$(MAKE) --no-print-directory MPI=1 all
	sh tests/mpi_test.sh $(BUILD)-mpi/finch $(BUILD)/finch

# `finch bench` on random-weight files in real model shapes (written once
# into the ignored bench-models/ by tools/make_bench_models.py): the table,
# and the JSON in bench-models/bench.json (docs/bench.md).  Numbers only, no
# pass/fail; under 5 minutes on 2 cores once the files exist.  The 4k-vs-64k
# RSS comparison runs on tinystories-656k when present (seconds; the
# strictest, as its own footprint is smallest), else on small-f32 (a minute).
BENCH_DIR   ?= bench-models
TINYSTORIES ?= ../shared/assets/models/tinystories-656k
HAVE_TINYSTORIES := $(wildcard $(TINYSTORIES)/config.json)
BENCH_RSS   ?= $(if $(HAVE_TINYSTORIES),$(TINYSTORIES),$(BENCH_DIR)/small-f32.gguf)
BENCH_FLAGS ?= --prefill 512 --decode 16 --finch-text 1024 --question 32 --chunk 512 \
               --rss $(BENCH_RSS)
# Then, when llama.cpp is built in LLAMACPP (tools/build_llamacpp.sh), the
# TinyLlama F16 file converted by its llama-quantize to BF16, Q4_K_M, Q4_0,
# Q5_K_M and Q6_K (tools/peer_quant_models.sh; a line says why when not), and
# two rounds of finch and llama-bench alternately on every TinyLlama-shape
# file (tools/peer_bench.sh; PEER_PAIRS = 3 pairs of one run each, side by
# side): about 20 more minutes.
LLAMACPP    ?= ../llamacpp
bench: $(OUT)/finch
	@sh tools/deps.sh python
	$(PYTHON) tools/make_bench_models.py --out $(BENCH_DIR)
	./$(OUT)/finch bench --models-dir $(BENCH_DIR) $(if $(HAVE_TINYSTORIES),-m $(TINYSTORIES)) \
	    $(BENCH_FLAGS) --json-file $(BENCH_DIR)/bench.json
	sh tools/peer_quant_models.sh $(LLAMACPP) $(BENCH_DIR)/tinyllama-1.1b-f16.gguf
	@if [ -x $(LLAMA_BIN)/llama-bench ]; then \
	    echo "beside llama.cpp ($(LLAMA_BIN)), alternately, two rounds:"; \
	    FINCH_BIN=$(OUT)/finch sh tools/peer_bench.sh $(LLAMA_BIN)/llama-bench 2; \
	else echo "llama.cpp not built at LLAMA_BIN=$(LLAMA_BIN): no peer figures"; fi

# The peer tools against that llama.cpp build (docs/llamacpp-agreement.md):
# build/peer/llamacpp_logits and build/peer/finch_logits.
peer: $(OUT)/libfinch.so
	FINCH_LIB=$(OUT) sh tools/build_peer_logits.sh $(LLAMACPP) $(OUT)/peer

# One Finch item at the paper's scale: a Llama-2-7B-shape file (Q4_K_M
# through llama.cpp's llama-quantize when LLAMA_BIN holds it, else Q8_0),
# finch beside llama.cpp (tools/bench_7b.sh, docs/reproduce.md).  Tens of
# minutes and ~20 GB of disk; never part of `make bench`.
LLAMA_BIN ?= ../llamacpp/src/build/bin
bench-7b: $(OUT)/finch
	@sh tools/deps.sh python
	BENCH_DIR=$(BENCH_DIR) FINCH_BIN=$(OUT)/finch PYTHON=$(PYTHON) sh tools/bench_7b.sh $(LLAMA_BIN)

# Kernel throughput (prefill GFLOP/s, decode GB/s); numbers only, no pass/fail.
bench-kernels: $(OUT)/tests/bench_kernels $(OUT)/tests/bench_wpack_k
	$(OUT)/tests/bench_kernels
	$(OUT)/tests/bench_wpack_k

# The main job: a 3,000-token haystack with four needles, compressed 32x by
# Finch (iterative, chunks of 256), then the question answered from the
# compressed cache.  The model is our own (make model).
NEEDLE_Q = What is the special magic number for battery? The special magic number for battery is
run: all
	./$(OUT)/finch run -m testdata/models/needle.gguf -f testdata/needle-context.txt \
	    -q "$(NEEDLE_Q)" --ratio 32 --chunk 256 -n 2

# The same job under valgrind (a minute or two): fails on any invalid read
# or write, use of uninitialised memory, or leak (docs/fuzzing.md).
valgrind: all
	@command -v valgrind >/dev/null 2>&1 || { echo "valgrind: not installed (Debian: apt-get install valgrind)"; exit 1; }
	valgrind --leak-check=full --error-exitcode=9 ./$(OUT)/finch run -m testdata/models/needle.gguf \
	    -f testdata/needle-context.txt -q "$(NEEDLE_Q)" --ratio 32 --chunk 256 -n 2

# The Python binding (python/finch, docs/python.md): libfinch.so copied into
# the package, then installed for $(PYTHON) without network or compiler
# (pip's --no-build-isolation uses Debian's setuptools).
python: $(OUT)/libfinch.so
	cp $(OUT)/libfinch.so python/finch/libfinch.so
	$(PYTHON) -m pip install --no-build-isolation --no-index --user ./python || \
	    $(PYTHON) -m pip install --no-build-isolation --no-index --break-system-packages --user ./python

# Rebuild the needle model from its construction (seconds; fixed seed).
model:
	@sh tools/deps.sh python
	$(PYTHON) tools/make_needle_model.py --out testdata/models/needle.gguf

fixtures:
	@sh tools/deps.sh python
	$(PYTHON) tools/make_fixtures.py --out testdata
	$(PYTHON) tools/make_finch_fixtures.py --out testdata
	$(PYTHON) tools/make_family_models.py --out testdata

clean:
	rm -rf build build-san build-mpi build-mpi-san

include fuzz.mk

-include $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d)
