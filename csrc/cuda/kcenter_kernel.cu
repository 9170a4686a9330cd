// Exact greedy k-center on CUDA: initial min-distances (centers staged in shared memory),
// then per pick an argmax reduction ((value, -index) order) and a min-distance update pass.
// All picks stay on the device: the host only launches kernels (no sync per pick).
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "kernels.h"

namespace tavaal {
namespace cuda {
namespace {

constexpr int kThreads = 256;        // 16 points per block (16 lanes each)
constexpr int kCenterTile = 8;       // centers per shared-memory tile in the initial pass
constexpr int kReduceThreads = 256;

__device__ __forceinline__ float to_f(float v) { return v; }
__device__ __forceinline__ float to_f(__half v) { return __half2float(v); }
__device__ __forceinline__ float to_f(__nv_bfloat16 v) { return __bfloat162float(v); }

// 16 cooperating lanes (a half-warp): lane l sums dims l, l+16, ... with fmaf, then the same
// pairwise reduction as the CPU (l + 8, l + 4, l + 2, l + 1). Result valid in lane 0 of the
// half-warp (and broadcast).
template <typename T, typename C>
__device__ __forceinline__ float half_warp_sqdist(const T* x, const C* c, int64_t d, int lane16) {
  float acc = 0.f;
  for (int64_t k = lane16; k < d; k += 16) {
    const float diff = to_f(x[k]) - to_f(c[k]);
    acc = fmaf(diff, diff, acc);
  }
  acc = acc + __shfl_down_sync(0xFFFFFFFFu, acc, 8, 16);
  acc = acc + __shfl_down_sync(0xFFFFFFFFu, acc, 4, 16);
  acc = acc + __shfl_down_sync(0xFFFFFFFFu, acc, 2, 16);
  acc = acc + __shfl_down_sync(0xFFFFFFFFu, acc, 1, 16);
  return __shfl_sync(0xFFFFFFFFu, acc, 0, 16);
}

// min over all L centers. Centers are staged `ctile` at a time in shared memory as fp32 (the
// conversion is exact, the arithmetic unchanged); ctile == 0: read them from global memory
// (very wide rows). Every lane of a warp runs the shuffles: out-of-range half-warps compute
// on a clamped row and discard the result.
template <typename T>
__global__ void init_kernel(const T* X, int64_t n, int64_t d, const int64_t* centers, int64_t L, int ctile,
                            float* min_d2, uint8_t* is_center) {
  extern __shared__ float tile[];  // ctile * d
  const int lane16 = threadIdx.x & 15;
  const int64_t i = blockIdx.x * (int64_t)(kThreads / 16) + (threadIdx.x >> 4);
  const bool valid = i < n;
  const T* x = X + (valid ? i : n - 1) * d;
  float best = __int_as_float(0x7f800000);  // +inf
  if (ctile == 0) {
    for (int64_t c = 0; c < L; ++c) best = fminf(best, half_warp_sqdist(x, X + centers[c] * d, d, lane16));
  } else {
    for (int64_t c0 = 0; c0 < L; c0 += ctile) {
      const int cnt = static_cast<int>(L - c0 < ctile ? L - c0 : ctile);
      __syncthreads();
      for (int64_t t = threadIdx.x; t < cnt * d; t += blockDim.x) {
        const int64_t j = t / d, k = t % d;
        tile[t] = to_f(X[centers[c0 + j] * d + k]);
      }
      __syncthreads();
      for (int j = 0; j < cnt; ++j) best = fminf(best, half_warp_sqdist(x, tile + j * d, d, lane16));
    }
  }
  if (valid && lane16 == 0) min_d2[i] = best;
  if (blockIdx.x == 0)
    for (int64_t t = threadIdx.x; t < L; t += blockDim.x) is_center[centers[t]] = 1;
}

template <typename T>
__global__ void update_kernel(const T* X, int64_t n, int64_t d, const int64_t* pick, float* min_d2) {
  const int lane16 = threadIdx.x & 15;
  const int half = (threadIdx.x >> 4) & 1;
  const T* q = X + (*pick) * d;
  const int64_t stride = (int64_t)gridDim.x * (blockDim.x / 16);
  // the loop bound uses the warp's first point so both half-warps run the same iterations
  for (int64_t p0 = blockIdx.x * (int64_t)(blockDim.x / 16) + (threadIdx.x >> 5) * 2; p0 < n; p0 += stride) {
    const int64_t i = p0 + half;
    const float v = half_warp_sqdist(X + (i < n ? i : n - 1) * d, q, d, lane16);
    if (lane16 == 0 && i < n && v < min_d2[i]) min_d2[i] = v;
  }
}

template <typename T>
__global__ void first_kernel(const T* X, int64_t n, int64_t d, int64_t first, float* min_d2, uint8_t* is_center,
                             int64_t* picks) {
  const int lane16 = threadIdx.x & 15;
  const int64_t i = blockIdx.x * (int64_t)(kThreads / 16) + (threadIdx.x >> 4);
  const float v = half_warp_sqdist(X + (i < n ? i : n - 1) * d, X + first * d, d, lane16);
  if (i < n && lane16 == 0) min_d2[i] = v;
  if (blockIdx.x == 0 && threadIdx.x == 0) {
    is_center[first] = 1;
    picks[0] = first;
  }
}

__device__ __forceinline__ bool better(float v, int64_t i, float bv, int64_t bi) {
  return v > bv || (v == bv && i < bi);
}

// Tree reduction of each thread's (bv, bi) over the block into sv[0], si[0] (index -1 = none),
// with better()'s (value, lower index) order. blockDim.x must be a power of two <= kReduceThreads.
__device__ __forceinline__ void block_argmax(float* sv, int64_t* si, float bv, int64_t bi) {
  sv[threadIdx.x] = bv;
  si[threadIdx.x] = bi;
  __syncthreads();
  for (int s = blockDim.x / 2; s > 0; s >>= 1) {
    if (threadIdx.x < s) {
      const float v = sv[threadIdx.x + s];
      const int64_t i = si[threadIdx.x + s];
      if (i >= 0 && (si[threadIdx.x] < 0 || better(v, i, sv[threadIdx.x], si[threadIdx.x]))) {
        sv[threadIdx.x] = v;
        si[threadIdx.x] = i;
      }
    }
    __syncthreads();
  }
}

// stage 1: per-block (max, argmax) over non-centers; -1 marks "none"
__global__ void argmax_partial(const float* min_d2, const uint8_t* is_center, int64_t n, float* pv, int64_t* pi) {
  __shared__ float sv[kReduceThreads];
  __shared__ int64_t si[kReduceThreads];
  float bv = -1.f;
  int64_t bi = -1;
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
    if (is_center[i]) continue;
    const float v = min_d2[i];
    if (bi < 0 || better(v, i, bv, bi)) {
      bv = v;
      bi = i;
    }
  }
  block_argmax(sv, si, bv, bi);
  if (threadIdx.x == 0) {
    pv[blockIdx.x] = sv[0];
    pi[blockIdx.x] = si[0];
  }
}

// stage 2 (one block): the global argmax. It is the radius of the previous pick (radii2[t-1],
// when t > 0) and, when t < b, pick t (marked as a center).
__global__ void argmax_final(const float* pv, const int64_t* pi, int64_t parts, int64_t t, int64_t b,
                             uint8_t* is_center, int64_t* picks, float* radii2) {
  __shared__ float sv[kReduceThreads];
  __shared__ int64_t si[kReduceThreads];
  float bv = -1.f;
  int64_t bi = -1;
  for (int64_t k = threadIdx.x; k < parts; k += blockDim.x)
    if (pi[k] >= 0 && (bi < 0 || better(pv[k], pi[k], bv, bi))) {
      bv = pv[k];
      bi = pi[k];
    }
  block_argmax(sv, si, bv, bi);
  if (threadIdx.x == 0) {
    if (t > 0) radii2[t - 1] = si[0] >= 0 ? sv[0] : 0.f;
    if (t < b) {
      picks[t] = si[0];
      if (si[0] >= 0) is_center[si[0]] = 1;
    }
  }
}

int64_t reduce_blocks(int64_t n) {
  int64_t g = (n + kReduceThreads - 1) / kReduceThreads;
  return g > 1024 ? 1024 : (g < 1 ? 1 : g);
}

template <typename T>
void run(const T* X, int64_t n, int64_t d, const int64_t* centers, int64_t L, int64_t first, int64_t b, float* min_d2,
         uint8_t* is_center, float* pv, int64_t* pi, int64_t* picks, float* radii2, cudaStream_t st) {
  const int64_t pts_per_block = kThreads / 16;
  const int grid_pts = static_cast<int>((n + pts_per_block - 1) / pts_per_block);
  int64_t t0;
  if (L > 0) {
    int64_t ctile = (40 * 1024) / (static_cast<int64_t>(sizeof(float)) * d);  // stay under the 48 KB default
    ctile = ctile > kCenterTile ? kCenterTile : ctile;
    const size_t smem = sizeof(float) * ctile * d;
    init_kernel<T><<<grid_pts, kThreads, smem, st>>>(X, n, d, centers, L, static_cast<int>(ctile), min_d2, is_center);
    t0 = 0;
  } else {
    first_kernel<T><<<grid_pts, kThreads, 0, st>>>(X, n, d, first, min_d2, is_center, picks);
    t0 = 1;
  }
  const int64_t parts = reduce_blocks(n);
  int upd_grid = grid_pts > 65535 ? 65535 : grid_pts;
  for (int64_t t = t0; t <= b; ++t) {
    argmax_partial<<<static_cast<int>(parts), kReduceThreads, 0, st>>>(min_d2, is_center, n, pv, pi);
    argmax_final<<<1, kReduceThreads, 0, st>>>(pv, pi, parts, t, b, is_center, picks, radii2);
    if (t < b) update_kernel<T><<<upd_grid, kThreads, 0, st>>>(X, n, d, picks + t, min_d2);
  }
}

}  // namespace

int64_t kcenter_partial_count(int64_t n) { return reduce_blocks(n); }

void kcenter_run(const void* features, Elem elem, int64_t n, int64_t d, const int64_t* centers, int64_t L,
                 int64_t first, int64_t b, float* min_d2, uint8_t* is_center, float* part_val, int64_t* part_idx,
                 int64_t* picks, float* radii2, void* stream) {
  cudaStream_t st = static_cast<cudaStream_t>(stream);
  switch (elem) {
    case Elem::F32:
      run(static_cast<const float*>(features), n, d, centers, L, first, b, min_d2, is_center, part_val, part_idx,
          picks, radii2, st);
      break;
    case Elem::F16:
      run(static_cast<const __half*>(features), n, d, centers, L, first, b, min_d2, is_center, part_val, part_idx,
          picks, radii2, st);
      break;
    case Elem::BF16:
      run(static_cast<const __nv_bfloat16*>(features), n, d, centers, L, first, b, min_d2, is_center, part_val,
          part_idx, picks, radii2, st);
      break;
  }
}

}  // namespace cuda
}  // namespace tavaal
