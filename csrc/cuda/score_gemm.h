// The dense layers of the fused scoring (tavaal::score_topb on CUDA) as cuBLAS GEMMs with
// explicit fp32 accumulation. Plain C++ interface (no torch headers, like kernels.h).
//
// The precision is fixed by the call itself, never by process-global state: the GEMM runs on
// a cuBLAS handle owned by the calling host thread (one per device, created on first use),
// with compute type CUBLAS_COMPUTE_32F and math mode CUBLAS_DEFAULT_MATH plus
// CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION: fp32 inputs never use TF32, bf16 inputs
// multiply on tensor cores and accumulate (split-K reductions included) in fp32. torch's
// allow_tf32 / fp32_precision / allow_bf16_reduced_precision_reduction settings are neither
// read nor changed, so matmuls on other threads are unaffected.
#pragma once

#include <cstdint>

#include "kernels.h"

namespace tavaal {
namespace cuda {

enum class GemmElem : int { F32 = 0, BF16 = 2 };

// out (rows x n_out, row-major) = x (rows x n_in, row-major) . w^T (w: n_out x n_in, row-major)
// + out (the caller preloads the bias rows; beta = 1), rounded once to `elem`. All pointers
// device memory of `elem`; rows, n_in, n_out in [1, 2^31). `stream` is a cudaStream_t.
// Status.code: a cudaError_t, or 1000 + a cublasStatus_t (phase "cuBLAS GEMM").
Status linear_fp32_accumulate(GemmElem elem, const void* x, const void* w, void* out, int64_t rows, int64_t n_in,
                              int64_t n_out, int device, void* stream);

// Human-readable text of a Status code from linear_fp32_accumulate.
const char* gemm_status_text(int code);

}  // namespace cuda
}  // namespace tavaal
