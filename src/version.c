/* version.c - what this build is.  The Makefile compiles this file alone
 * with -DFINCH_GIT_COMMIT (and rebuilds it when HEAD moves), so a new commit
 * recompiles one small object, not the library. */
#include "finch.h"

#ifndef FINCH_GIT_COMMIT
#define FINCH_GIT_COMMIT "unknown"
#endif

const char *finch_version(void) { return FINCH_VERSION; }

const char *finch_build_commit(void) { return FINCH_GIT_COMMIT; }
