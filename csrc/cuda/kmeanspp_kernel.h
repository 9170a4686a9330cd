// Launcher of the CUDA k-means++ seeding (tavaal::kmeanspp). Plain C++ interface, no torch
// headers, so kmeanspp_kernel.cu compiles with plain `nvcc -c`; kmeanspp_cuda.cpp calls it.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels.h"  // Status

namespace tavaal {
namespace cuda {

enum class KmppElem : int { F32 = 0, F16 = 1, BF16 = 2, F64 = 3 };

// Bytes of device workspace for n points (no initialisation needed).
size_t kmeanspp_workspace_bytes(int64_t n);

// Exact k-means++ with the sampling contract of csrc/kmeanspp_common.h. x: n x d, y: n x f (or
// nullptr: plain mode) of `elem`; uniforms: b float64 on the device. Writes picks int64[b] and
// potential float64[b]. No host sync per pick: the launches of every phase are checked, and the
// stream is synchronised after the first pick and at the end, so a fault is reported by this
// op with the phase that raised it.
// ldx, ldy: row strides in elements (>= d, f; rows themselves contiguous).
Status kmeanspp_run(const void* x, const void* y, KmppElem elem, int64_t n, int64_t d, int64_t f, int64_t ldx,
                    int64_t ldy, const double* uniforms, int64_t b, bool init_norm, void* workspace, int64_t* picks,
                    double* potential, void* stream);

}  // namespace cuda
}  // namespace tavaal
