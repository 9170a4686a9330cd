// cuBLAS GEMMs with explicit fp32 accumulation for the fused scoring (see score_gemm.h).
#include "score_gemm.h"

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <vector>

namespace tavaal {
namespace cuda {
namespace {

constexpr int kCublasBase = 1000;  // Status.code = kCublasBase + cublasStatus_t

// This host thread's cuBLAS handles, one per device, destroyed when the thread exits.
struct ThreadHandles {
  std::vector<cublasHandle_t> by_device;
  ~ThreadHandles() {
    for (cublasHandle_t h : by_device)
      if (h != nullptr) cublasDestroy(h);  // (a failure at process exit is harmless)
  }
};

cublasStatus_t thread_handle(int device, cublasHandle_t* out) {
  thread_local ThreadHandles handles;
  if (device < 0) return CUBLAS_STATUS_INVALID_VALUE;
  if (static_cast<size_t>(device) >= handles.by_device.size()) handles.by_device.resize(device + 1, nullptr);
  if (handles.by_device[device] == nullptr) {
    const cublasStatus_t s = cublasCreate(&handles.by_device[device]);  // on the current device
    if (s != CUBLAS_STATUS_SUCCESS) {
      handles.by_device[device] = nullptr;
      return s;
    }
  }
  *out = handles.by_device[device];
  return CUBLAS_STATUS_SUCCESS;
}

Status cublas_status(cublasStatus_t s) {
  return Status{s == CUBLAS_STATUS_SUCCESS ? 0 : kCublasBase + static_cast<int>(s), "cuBLAS GEMM"};
}

}  // namespace

Status linear_fp32_accumulate(GemmElem elem, const void* x, const void* w, void* out, int64_t rows, int64_t n_in,
                              int64_t n_out, int device, void* stream) {
  constexpr int64_t kMaxDim = 2147483647;
  if (rows < 1 || n_in < 1 || n_out < 1 || rows > kMaxDim || n_in > kMaxDim || n_out > kMaxDim)
    return cublas_status(CUBLAS_STATUS_INVALID_VALUE);
  cublasHandle_t h = nullptr;
  cublasStatus_t s = thread_handle(device, &h);
  if (s != CUBLAS_STATUS_SUCCESS) return cublas_status(s);
  if ((s = cublasSetStream(h, static_cast<cudaStream_t>(stream))) != CUBLAS_STATUS_SUCCESS) return cublas_status(s);
  const cublasMath_t mode =
      static_cast<cublasMath_t>(CUBLAS_DEFAULT_MATH | CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION);
  if ((s = cublasSetMathMode(h, mode)) != CUBLAS_STATUS_SUCCESS) return cublas_status(s);
  // Column-major view: out^T (n_out x rows, ld n_out) = w (op T of the n_in x n_out
  // column-major w^T) . x^T (n_in x rows, ld n_in) + out^T.
  const cudaDataType t = elem == GemmElem::BF16 ? CUDA_R_16BF : CUDA_R_32F;
  const float alpha = 1.f, beta = 1.f;
  s = cublasGemmEx(h, CUBLAS_OP_T, CUBLAS_OP_N, static_cast<int>(n_out), static_cast<int>(rows),
                   static_cast<int>(n_in), &alpha, w, t, static_cast<int>(n_in), x, t, static_cast<int>(n_in), &beta,
                   out, t, static_cast<int>(n_out), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
  if (s != CUBLAS_STATUS_SUCCESS) return cublas_status(s);
  return Status{static_cast<int>(cudaGetLastError()), "cuBLAS GEMM"};
}

const char* gemm_status_text(int code) {
  if (code >= kCublasBase) return cublasGetStatusString(static_cast<cublasStatus_t>(code - kCublasBase));
  return cudaGetErrorString(static_cast<cudaError_t>(code));
}

}  // namespace cuda
}  // namespace tavaal
