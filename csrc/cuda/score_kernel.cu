// Fused discriminator MLP on CUDA: each block scores kRows rows; their activations live in
// shared memory (two ping-pong kRows x max_width buffers), weights are read transposed
// (in x out, coalesced across the threads computing consecutive outputs).
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "kernels.h"

namespace tavaal {
namespace cuda {
namespace {

constexpr int kRows = 16;
constexpr int kThreads = 256;
constexpr int kMaxLayers = 16;

struct MLP {
  const float* wt[kMaxLayers];
  const float* bias[kMaxLayers];
  int64_t width[kMaxLayers + 1];
  int layers;
};

template <bool BF16>
__device__ __forceinline__ float rnd(float v) {
  if (BF16) return __bfloat162float(__float2bfloat16(v));
  return v;
}

template <bool BF16>
__global__ void mlp_kernel(const float* mu, const float* r, int64_t n, int64_t d, MLP mlp, int64_t maxw,
                           float* scores) {
  extern __shared__ float sm[];
  float* h_in = sm;
  float* h_out = sm + kRows * maxw;
  const int64_t row0 = blockIdx.x * (int64_t)kRows;
  const int rows = static_cast<int>(n - row0 < kRows ? n - row0 : kRows);
  const int64_t in0 = mlp.width[0];
  for (int64_t t = threadIdx.x; t < kRows * in0; t += blockDim.x) {
    const int rr = static_cast<int>(t / in0);
    const int64_t k = t % in0;
    float v = 0.f;
    if (rr < rows) v = k < d ? mu[(row0 + rr) * d + k] : r[row0 + rr];
    h_in[rr * maxw + k] = rnd<BF16>(v);
  }
  __syncthreads();
  for (int l = 0; l < mlp.layers; ++l) {
    const int64_t I = mlp.width[l], O = mlp.width[l + 1];
    const float* wt = mlp.wt[l];
    const bool last = l + 1 == mlp.layers;
    for (int64_t j = threadIdx.x; j < O; j += blockDim.x) {
      const float bj = rnd<BF16>(mlp.bias[l][j]);
      float acc[kRows];
#pragma unroll
      for (int rr = 0; rr < kRows; ++rr) acc[rr] = 0.f;
      for (int64_t k = 0; k < I; ++k) {
        const float w = rnd<BF16>(wt[k * O + j]);
#pragma unroll
        for (int rr = 0; rr < kRows; ++rr) acc[rr] = fmaf(h_in[rr * maxw + k], w, acc[rr]);
      }
#pragma unroll
      for (int rr = 0; rr < kRows; ++rr) {
        float v = acc[rr] + bj;
        if (!last) v = fmaxf(v, 0.f);
        h_out[rr * maxw + j] = rnd<BF16>(v);
      }
    }
    __syncthreads();
    float* tmp = h_in;
    h_in = h_out;
    h_out = tmp;
  }
  if (threadIdx.x < rows) {
    const float z = h_in[threadIdx.x * maxw];
    scores[row0 + threadIdx.x] = 1.f / (1.f + expf(-z));
  }
}

}  // namespace

size_t score_smem_bytes(int64_t max_width) {
  const size_t bytes = 2 * kRows * static_cast<size_t>(max_width) * sizeof(float);
  int dev = 0, limit = 0;
  if (cudaGetDevice(&dev) != cudaSuccess ||
      cudaDeviceGetAttribute(&limit, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev) != cudaSuccess)
    return 0;
  return bytes <= static_cast<size_t>(limit) ? bytes : 0;
}

void score_run(const float* mu, const float* r, int64_t n, int64_t d, int num_layers, const float* const* wt,
               const float* const* bias, const int64_t* widths, bool bf16, float* scores, void* stream) {
  cudaStream_t st = static_cast<cudaStream_t>(stream);
  MLP mlp{};
  mlp.layers = num_layers < kMaxLayers ? num_layers : kMaxLayers;
  int64_t maxw = 1;
  for (int l = 0; l <= mlp.layers; ++l) {
    mlp.width[l] = widths[l];
    maxw = widths[l] > maxw ? widths[l] : maxw;
  }
  for (int l = 0; l < mlp.layers; ++l) {
    mlp.wt[l] = wt[l];
    mlp.bias[l] = bias[l];
  }
  const size_t smem = 2 * kRows * static_cast<size_t>(maxw) * sizeof(float);
  const int grid = static_cast<int>((n + kRows - 1) / kRows);
  if (bf16) {
    cudaFuncSetAttribute(mlp_kernel<true>, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem));
    mlp_kernel<true><<<grid, kThreads, smem, st>>>(mu, r, n, d, mlp, maxw, scores);
  } else {
    cudaFuncSetAttribute(mlp_kernel<false>, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem));
    mlp_kernel<false><<<grid, kThreads, smem, st>>>(mu, r, n, d, mlp, maxw, scores);
  }
}

}  // namespace cuda
}  // namespace tavaal
