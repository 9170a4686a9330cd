// Exact greedy k-center on CUDA.
//
// 1. initial min-distances: one pass over the points; the centers are staged in shared
//    memory in tiles (fp32, an exact conversion) and each point's row is read once per group
//    of kGroup centers, which accumulate side by side (kGroup independent accumulators per
//    lane; each pair keeps the per-pair order of the CPU kernel, so the bits are the same);
// 2. per pick: one kernel updates the min-distances against the new center (its row staged
//    once per block in shared memory) and reduces each block's (max, argmax) on the way; a
//    one-block kernel reduces the block results to the next pick.
// All picks stay on the device: the host only launches kernels (no sync per pick).
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "kernels.h"

namespace tavaal {
namespace cuda {
namespace {

constexpr int kThreads = 256;              // 16 half-warps: 16 points per block and sweep
constexpr int kPointsPerBlock = kThreads / 16;
constexpr int kGroup = 8;                  // centers evaluated side by side per row read
constexpr int kMaxTile = 32;               // centers per shared-memory tile (initial pass)
constexpr int64_t kSmemBytes = 40 * 1024;  // stay under the 48 KB default
constexpr int kReduceThreads = 256;
constexpr int64_t kMaxPartials = 2048;     // blocks of the per-pick kernel (= partial results)

__device__ __forceinline__ float to_f(float v) { return v; }
__device__ __forceinline__ float to_f(__half v) { return __half2float(v); }
__device__ __forceinline__ float to_f(__nv_bfloat16 v) { return __bfloat162float(v); }

// The CPU's lane reduction (distance.h reduce16): l + 8, l + 4, l + 2, l + 1 within each
// half-warp; every lane of the warp must call it. The sum is broadcast to the 16 lanes.
__device__ __forceinline__ float reduce16(float acc) {
  acc = acc + __shfl_down_sync(0xFFFFFFFFu, acc, 8, 16);
  acc = acc + __shfl_down_sync(0xFFFFFFFFu, acc, 4, 16);
  acc = acc + __shfl_down_sync(0xFFFFFFFFu, acc, 2, 16);
  acc = acc + __shfl_down_sync(0xFFFFFFFFu, acc, 1, 16);
  return __shfl_sync(0xFFFFFFFFu, acc, 0, 16);
}

// 16 cooperating lanes (a half-warp): lane l sums dims l, l+16, ... with fmaf, then reduce16.
template <typename T, typename C>
__device__ __forceinline__ float half_warp_sqdist(const T* x, const C* c, int64_t d, int lane16) {
  float acc = 0.f;
  for (int64_t k = lane16; k < d; k += 16) {
    const float diff = to_f(x[k]) - to_f(c[k]);
    acc = fmaf(diff, diff, acc);
  }
  return reduce16(acc);
}

// Grid-stride loops over rows, one row per half-warp: `for (w = warp_row0(); w < n; w +=
// row_stride())` with row `w + half_warp()`. The bound is tested on the warp's first row so
// both half-warps run the same iterations (the shuffles need the whole warp); the second
// half-warp's row may be n: callers clamp reads and discard results.
__device__ __forceinline__ int64_t warp_row0() {
  return blockIdx.x * (int64_t)kPointsPerBlock + ((threadIdx.x >> 5) << 1);
}
__device__ __forceinline__ int64_t row_stride() { return (int64_t)gridDim.x * kPointsPerBlock; }
__device__ __forceinline__ int half_warp() { return (threadIdx.x >> 4) & 1; }

template <typename T>
__global__ void count_nonfinite_kernel(const T* X, int64_t n, int64_t d, unsigned long long* count) {
  const int lane16 = threadIdx.x & 15;
  for (int64_t w = warp_row0(); w < n; w += row_stride()) {
    const int64_t i = w + half_warp();
    const T* x = X + (i < n ? i : n - 1) * d;
    // (x - x)^2 is NaN exactly when x is NaN or +-inf (the CPU kernel's test)
    const float v = half_warp_sqdist(x, x, d, lane16);
    if (lane16 == 0 && i < n && v != v) atomicAdd(count, 1ull);
  }
}

template <typename T>
__global__ void normalize_kernel(const T* X, int64_t n, int64_t d, float* out, unsigned long long* counts) {
  const int lane16 = threadIdx.x & 15;
  for (int64_t w = warp_row0(); w < n; w += row_stride()) {
    const int64_t i = w + half_warp();
    const T* x = X + (i < n ? i : n - 1) * d;
    float acc = 0.f;
    for (int64_t k = lane16; k < d; k += 16) {
      const float v = to_f(x[k]);  // = x - 0, as the CPU's sqdist(x, 0)
      acc = fmaf(v, v, acc);
    }
    const float n2 = reduce16(acc);
    if (i < n) {
      const float nrm = __fsqrt_rn(n2);
      for (int64_t k = lane16; k < d; k += 16) out[i * d + k] = __fdiv_rn(to_f(x[k]), nrm);
      if (lane16 == 0 && n2 == 0.f) atomicAdd(&counts[0], 1ull);
      if (lane16 == 0 && isinf(n2)) atomicAdd(&counts[1], 1ull);
    }
  }
}

// Initial min-distances to the L centers. ctile > 0: centers staged `ctile` at a time in
// shared memory (fp32); ctile == 0 (very wide rows): read from global memory (L2), kGroup at a
// time. Each row element is read once per group of kGroup centers.
template <typename T>
__global__ void init_kernel(const T* X, int64_t n, int64_t d, const int64_t* centers, int64_t L, int ctile,
                            float* min_d2, uint8_t* is_center) {
  extern __shared__ float tile[];  // ctile * d
  const int lane16 = threadIdx.x & 15;
  const int64_t i = blockIdx.x * (int64_t)kPointsPerBlock + (threadIdx.x >> 4);
  const bool valid = i < n;
  const T* x = X + (valid ? i : n - 1) * d;
  float best = __int_as_float(0x7f800000);  // +inf
  const int64_t step = ctile > 0 ? ctile : kGroup;
  for (int64_t c0 = 0; c0 < L; c0 += step) {
    const int cnt = static_cast<int>(L - c0 < step ? L - c0 : step);
    if (ctile > 0) {
      __syncthreads();
      for (int64_t t = threadIdx.x; t < cnt * d; t += blockDim.x) {
        const int64_t j = t / d, k = t - j * d;
        tile[t] = to_f(X[centers[c0 + j] * d + k]);
      }
      __syncthreads();
    }
    for (int j0 = 0; j0 < cnt; j0 += kGroup) {
      float acc[kGroup];
#pragma unroll
      for (int g = 0; g < kGroup; ++g) acc[g] = 0.f;
      if (ctile > 0) {
        for (int64_t k = lane16; k < d; k += 16) {
          const float xv = to_f(x[k]);
#pragma unroll
          for (int g = 0; g < kGroup; ++g)
            if (j0 + g < cnt) {
              const float diff = xv - tile[(j0 + g) * d + k];
              acc[g] = fmaf(diff, diff, acc[g]);
            }
        }
      } else {
        const T* crow[kGroup];
#pragma unroll
        for (int g = 0; g < kGroup; ++g) crow[g] = X + centers[c0 + (j0 + g < cnt ? j0 + g : j0)] * d;
        for (int64_t k = lane16; k < d; k += 16) {
          const float xv = to_f(x[k]);
#pragma unroll
          for (int g = 0; g < kGroup; ++g)
            if (j0 + g < cnt) {
              const float diff = xv - to_f(crow[g][k]);
              acc[g] = fmaf(diff, diff, acc[g]);
            }
        }
      }
#pragma unroll
      for (int g = 0; g < kGroup; ++g) {
        const float v = reduce16(acc[g]);
        if (j0 + g < cnt) best = fminf(best, v);
      }
    }
  }
  if (valid && lane16 == 0) min_d2[i] = best;
  if (blockIdx.x == 0)
    for (int64_t t = threadIdx.x; t < L; t += blockDim.x) is_center[centers[t]] = 1;
}

template <typename T>
__global__ void first_kernel(const T* X, int64_t n, int64_t d, int64_t first, float* min_d2, uint8_t* is_center,
                             int64_t* picks) {
  const int lane16 = threadIdx.x & 15;
  const int64_t i = blockIdx.x * (int64_t)kPointsPerBlock + (threadIdx.x >> 4);
  const float v = half_warp_sqdist(X + (i < n ? i : n - 1) * d, X + first * d, d, lane16);
  if (i < n && lane16 == 0) min_d2[i] = v;
  if (blockIdx.x == 0 && threadIdx.x == 0) {
    is_center[first] = 1;
    picks[0] = first;
  }
}

__device__ __forceinline__ bool better(float v, int64_t i, float bv, int64_t bi) {
  return bi < 0 || v > bv || (v == bv && i < bi);
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
      if (i >= 0 && better(v, i, sv[threadIdx.x], si[threadIdx.x])) {
        sv[threadIdx.x] = v;
        si[threadIdx.x] = i;
      }
    }
    __syncthreads();
  }
}

// per-block (max, argmax) over non-centers after the initial pass; -1 marks "none"
__global__ void argmax_partial(const float* min_d2, const uint8_t* is_center, int64_t n, float* pv, int64_t* pi) {
  __shared__ float sv[kReduceThreads];
  __shared__ int64_t si[kReduceThreads];
  float bv = -1.f;
  int64_t bi = -1;
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
    if (is_center[i]) continue;
    const float v = min_d2[i];
    if (better(v, i, bv, bi)) {
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

// Per pick t: min_d2 <- min(min_d2, d2(x, picks[t])) and the block's (max, argmax) of the
// updated values over the non-centers (the pick itself was marked by argmax_final), fused in
// one pass. q_staged: the pick's row is copied to shared memory (fp32, exact) once per block.
template <typename T>
__global__ void update_argmax_kernel(const T* X, int64_t n, int64_t d, const int64_t* picks, int64_t t,
                                     bool q_staged, const uint8_t* is_center, float* min_d2, float* pv,
                                     int64_t* pi) {
  extern __shared__ float q_s[];  // d floats when q_staged
  __shared__ float sv[kThreads];
  __shared__ int64_t si[kThreads];
  const int lane16 = threadIdx.x & 15;
  const T* q = X + picks[t] * d;
  if (q_staged) {
    for (int64_t k = threadIdx.x; k < d; k += blockDim.x) q_s[k] = to_f(q[k]);
    __syncthreads();
  }
  float bv = -1.f;
  int64_t bi = -1;
  for (int64_t w = warp_row0(); w < n; w += row_stride()) {
    const int64_t i = w + half_warp();
    const T* x = X + (i < n ? i : n - 1) * d;
    const float v = q_staged ? half_warp_sqdist(x, q_s, d, lane16) : half_warp_sqdist(x, q, d, lane16);
    if (lane16 == 0 && i < n) {
      float m = min_d2[i];
      if (v < m) {
        m = v;
        min_d2[i] = v;
      }
      if (!is_center[i] && better(m, i, bv, bi)) {
        bv = m;
        bi = i;
      }
    }
  }
  block_argmax(sv, si, bv, bi);
  if (threadIdx.x == 0) {
    pv[blockIdx.x] = sv[0];
    pi[blockIdx.x] = si[0];
  }
}

// One block: the global argmax of the partials. It is the radius of the previous pick
// (radii2[t-1], when t > 0) and, when t < b, pick t (marked as a center).
__global__ void argmax_final(const float* pv, const int64_t* pi, int64_t parts, int64_t t, int64_t b,
                             uint8_t* is_center, int64_t* picks, float* radii2) {
  __shared__ float sv[kReduceThreads];
  __shared__ int64_t si[kReduceThreads];
  float bv = -1.f;
  int64_t bi = -1;
  for (int64_t k = threadIdx.x; k < parts; k += blockDim.x)
    if (pi[k] >= 0 && better(pv[k], pi[k], bv, bi)) {
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

inline int64_t partial_count(int64_t n) {
  const int64_t g = (n + kPointsPerBlock - 1) / kPointsPerBlock;
  return g > kMaxPartials ? kMaxPartials : (g < 1 ? 1 : g);
}

inline int grid_rows(int64_t n) {  // blocks of the grid-stride row kernels
  const int64_t g = (n + kPointsPerBlock - 1) / kPointsPerBlock;
  return static_cast<int>(g > (1 << 20) ? (1 << 20) : (g < 1 ? 1 : g));
}

inline Status launched(const char* phase) {
  const cudaError_t e = cudaGetLastError();
  return Status{static_cast<int>(e), phase};
}

inline Status synced(cudaStream_t st, const char* phase) {
  cudaError_t e = cudaGetLastError();
  if (e == cudaSuccess) e = cudaStreamSynchronize(st);
  return Status{static_cast<int>(e), phase};
}

template <typename T>
Status run(const T* X, int64_t n, int64_t d, const int64_t* centers, int64_t L, int64_t first, int64_t b,
           float* min_d2, uint8_t* is_center, float* pv, int64_t* pi, int64_t* picks, float* radii2,
           cudaStream_t st) {
  // one block per 16 points for the initial pass (at most 2^31 - 1 blocks: n < 2^31 here)
  const int64_t init_blocks = (n + kPointsPerBlock - 1) / kPointsPerBlock;
  int64_t t0;
  if (L > 0) {
    int64_t ctile = kSmemBytes / (static_cast<int64_t>(sizeof(float)) * d);
    ctile = ctile > kMaxTile ? kMaxTile : ctile;
    if (ctile > kGroup) ctile -= ctile % kGroup;
    const size_t smem = sizeof(float) * static_cast<size_t>(ctile * d);
    init_kernel<T><<<static_cast<unsigned>(init_blocks), kThreads, smem, st>>>(X, n, d, centers, L,
                                                                               static_cast<int>(ctile), min_d2,
                                                                               is_center);
    t0 = 0;
  } else {
    first_kernel<T><<<static_cast<unsigned>(init_blocks), kThreads, 0, st>>>(X, n, d, first, min_d2, is_center,
                                                                            picks);
    t0 = 1;
  }
  const int64_t parts = partial_count(n);
  argmax_partial<<<static_cast<int>(parts), kReduceThreads, 0, st>>>(min_d2, is_center, n, pv, pi);
  Status s = synced(st, "initial min-distances");
  if (!s.ok()) return s;
  const bool q_staged = d * static_cast<int64_t>(sizeof(float)) <= kSmemBytes;
  const size_t q_smem = q_staged ? sizeof(float) * static_cast<size_t>(d) : 0;
  for (int64_t t = t0; t <= b; ++t) {
    argmax_final<<<1, kReduceThreads, 0, st>>>(pv, pi, parts, t, b, is_center, picks, radii2);
    if (t < b)
      update_argmax_kernel<T><<<static_cast<int>(parts), kThreads, q_smem, st>>>(X, n, d, picks, t, q_staged,
                                                                                  is_center, min_d2, pv, pi);
    s = launched("per-pick update");
    if (!s.ok()) return s;
  }
  return synced(st, "picks");
}

template <typename F>
Status by_elem(Elem elem, const void* p, F&& f) {
  switch (elem) {
    case Elem::F32: return f(static_cast<const float*>(p));
    case Elem::F16: return f(static_cast<const __half*>(p));
    default: return f(static_cast<const __nv_bfloat16*>(p));
  }
}

}  // namespace

int64_t kcenter_partial_count(int64_t n) { return partial_count(n); }

Status kcenter_count_nonfinite(const void* features, Elem elem, int64_t n, int64_t d, int64_t* count,
                               void* stream) {
  cudaStream_t st = static_cast<cudaStream_t>(stream);
  cudaMemsetAsync(count, 0, sizeof(int64_t), st);
  return by_elem(elem, features, [&](auto X) {
    count_nonfinite_kernel<<<grid_rows(n), kThreads, 0, st>>>(X, n, d, reinterpret_cast<unsigned long long*>(count));
    return launched("finiteness check");
  });
}

Status kcenter_normalize(const void* features, Elem elem, int64_t n, int64_t d, float* out, int64_t* counts,
                         void* stream) {
  cudaStream_t st = static_cast<cudaStream_t>(stream);
  cudaMemsetAsync(counts, 0, 2 * sizeof(int64_t), st);
  return by_elem(elem, features, [&](auto X) {
    normalize_kernel<<<grid_rows(n), kThreads, 0, st>>>(X, n, d, out, reinterpret_cast<unsigned long long*>(counts));
    return launched("cosine normalisation");
  });
}

Status kcenter_run(const void* features, Elem elem, int64_t n, int64_t d, const int64_t* centers, int64_t L,
                   int64_t first, int64_t b, float* min_d2, uint8_t* is_center, float* part_val, int64_t* part_idx,
                   int64_t* picks, float* radii2, void* stream) {
  cudaStream_t st = static_cast<cudaStream_t>(stream);
  return by_elem(elem, features, [&](auto X) {
    return run(X, n, d, centers, L, first, b, min_d2, is_center, part_val, part_idx, picks, radii2, st);
  });
}

}  // namespace cuda
}  // namespace tavaal
