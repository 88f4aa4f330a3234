/* npy.h - the .npy reader on a buffer in memory (finch_npy_read in finch.h
 * maps a file and calls this; the fuzzer calls it directly). */
#ifndef FINCH_NPY_H
#define FINCH_NPY_H

#include "finch.h"

/* Parse a whole .npy file held in buf[0..size): a version 1, 2 or 3 header
 * whose dict has 'descr' ('<f4', '<i4' or '<i8'), 'fortran_order' (False)
 * and 'shape' (at most 8 dims), followed by exactly the data the shape
 * implies.  Integer data is converted to int32 (values must fit) and must
 * be asked for as FINCH_NPY_I32; float data as FINCH_NPY_F32.  *data is
 * malloc'ed (NULL on failure); shape has room for 8 dims. */
finch_status finch_npy_parse(const uint8_t *buf, size_t size, finch_npy_type want, void **data,
                             size_t *shape, size_t *ndim);

#endif
