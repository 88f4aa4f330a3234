#!/bin/sh
# Installs the build and test dependencies on Debian/Ubuntu when they are
# missing: apt-get as root, otherwise one clear message naming the packages.
need=""
# apt-get as root; false (with the reason on stderr) when it fails.
apt_install() {
    [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 || return 2
    echo "deps: installing $*" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null && apt-get install -y -qq "$@" >/dev/null && return 0
    echo "deps: apt-get install $* failed (no network or no such package?)" >&2
    return 1
}
if [ "${1:-}" = fuzz ]; then
    # libFuzzer (make fuzz, make fuzz-smoke): clang and its fuzzer and
    # sanitizer runtimes, which Debian ships apart (libclang-rt-N-dev).
    cc=${FUZZ_CC:-clang}
    links() { printf 'int LLVMFuzzerTestOneInput(const char *d, long n) { return 0; }\n' |
        $cc -x c -fsanitize=fuzzer,address,undefined -o /dev/null - >/dev/null 2>&1; }
    links && exit 0
    major() { $cc --version 2>/dev/null | sed -n 's/.*clang version \([0-9]*\).*/\1/p' | head -n 1; }
    command -v "$cc" >/dev/null 2>&1 || { apt_install clang; [ $? = 1 ] && exit 1; }
    v=$(major)
    pkgs="clang libclang-rt-${v:-14}-dev"
    apt_install "libclang-rt-${v:-14}-dev"
    case $? in
    1) exit 1 ;;
    2) echo "deps: '$cc -fsanitize=fuzzer' does not link: install $pkgs (sudo apt-get install $pkgs)" >&2; exit 1 ;;
    esac
    links && exit 0
    echo "deps: '$cc -fsanitize=fuzzer,address,undefined' still does not link after installing $pkgs" >&2
    exit 1
fi
if [ "${1:-}" = pytest ]; then
    # The Python binding's tests (make test): Debian's numpy and pytest.
    # Not root: nothing installed; tests/run_tests.sh then skips them, saying so.
    /usr/bin/python3 -c 'import numpy, pytest' 2>/dev/null && exit 0
    apt_install python3 python3-numpy python3-pytest
    exit $?
fi
if [ "${1:-}" = results ]; then
    # tools/make_results.sh: Debian's numpy for the task generators and
    # rsvg-convert (librsvg2-bin) for the PNGs beside the SVG figures.
    /usr/bin/python3 -c 'import numpy' 2>/dev/null && command -v rsvg-convert >/dev/null 2>&1 && exit 0
    apt_install python3-numpy librsvg2-bin
    case $? in
    0) exit 0 ;;
    2) echo "deps: missing packages: python3-numpy librsvg2-bin (sudo apt-get install python3-numpy librsvg2-bin)" >&2 ;;
    esac
    exit 1
fi
if [ "${1:-}" = jieba ]; then
    # LongBench's Chinese metrics (finch score/eval --jieba, tools/jieba_cut.py):
    # Debian's python3-jieba (0.42.1, the version LongBench's pip install gets).
    # Optional: without it those datasets are refused and their tests skip.
    /usr/bin/python3 -c 'import jieba' 2>/dev/null && exit 0
    apt_install python3-jieba
    exit $?
fi
if [ "${1:-}" = python ]; then
    # The PyTorch twin: Debian's interpreter with Debian's numpy and torch.
    /usr/bin/python3 -c 'import numpy, torch' 2>/dev/null && exit 0
    need="python3 python3-numpy python3-torch"
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "deps: installing $need" >&2
        DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null &&
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $need >/dev/null && exit 0
        echo "deps: apt-get install $need failed" >&2; exit 1
    fi
    echo "deps: missing packages: $need (install them: sudo apt-get install $need)" >&2
    exit 1
fi
# Each library is detected the way the build uses it: a tiny program is
# compiled AND linked with the same flags (a cblas.h from Debian's reference
# libblas-dev does not make -lopenblas link).
OPENBLAS_INC="-I/usr/include/x86_64-linux-gnu/openblas-pthread -I/usr/include/aarch64-linux-gnu/openblas-pthread -I/usr/include/openblas"
links() { # links PROGRAM_TEXT FLAGS...
    prog=$1; shift
    printf '%b' "$prog" | ${CC:-cc} -x c - -o /dev/null "$@" >/dev/null 2>&1
}
command -v ${CC:-cc} >/dev/null 2>&1 || need="$need build-essential"
links '#include <stdarg.h>\nint main(void){return 0;}\n' || need="$need build-essential"
links '#include <cjson/cJSON.h>\nint main(void){cJSON_Delete(cJSON_CreateNull());return 0;}\n' -lcjson ||
    need="$need libcjson-dev"
if [ "${BLAS:-1}" = 1 ]; then
    links '#include <cblas.h>\nint main(void){float a=1,b=1,c=0;cblas_sgemm(CblasRowMajor,CblasNoTrans,CblasNoTrans,1,1,1,1.f,&a,1,&b,1,0.f,&c,1);return (int)c-1;}\n' \
        $OPENBLAS_INC -lopenblas || need="$need libopenblas-dev"
fi
if [ "${MPI:-0}" = 1 ]; then
    # make MPI=1: Open MPI's headers and library (mpicc gives the flags) and
    # mpirun to launch the ranks.
    mpicc=${MPICC:-mpicc}
    links '#include <mpi.h>\nint main(int c, char **v){MPI_Init(&c,&v);return MPI_Finalize();}\n' \
        $($mpicc --showme:compile 2>/dev/null) $($mpicc --showme:link 2>/dev/null) || need="$need libopenmpi-dev"
    command -v mpirun >/dev/null 2>&1 || need="$need openmpi-bin"
fi
links '#include <stdarg.h>\n#include <stddef.h>\n#include <setjmp.h>\n#include <stdint.h>\n#include <cmocka.h>\nint main(void){return cmocka_run_group_tests((const struct CMUnitTest *)0, 0, 0) * 0;}\n' -lcmocka ||
    need="$need libcmocka-dev"
[ -z "$need" ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "deps: installing$need" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null && apt-get install -y -qq $need >/dev/null || {
        echo "deps: apt-get install$need failed" >&2; exit 1; }
else
    echo "deps: missing packages:$need (install them: sudo apt-get install$need)" >&2
    exit 1
fi
