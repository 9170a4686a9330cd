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
// Cosine metric: no normalised copy of the features. The row norms (N floats, the CPU's
// operations) are computed once and every coordinate is divided by its row's norm where it is
// read (one correctly rounded division, as the CPU's normalised copy holds), so the bits --
// and the picks -- are those of the CPU kernel at N x D x 4 bytes less memory.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <type_traits>

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

// Coordinate k of a row as the distance sees it: the stored value in fp32, divided by the
// row's norm `nrm` (one correctly rounded division) when kNorm (cosine metric).
template <bool kNorm, typename T>
__device__ __forceinline__ float coord(const T* row, int64_t k, float nrm) {
  return kNorm ? __fdiv_rn(to_f(row[k]), nrm) : to_f(row[k]);
}

// 16 cooperating lanes (a half-warp): lane l sums dims l, l+16, ... with fmaf, then reduce16.
// kNx / kNc: divide x's / c's coordinates by xn / cn (cosine metric, see coord()).
template <bool kNx, bool kNc, typename T, typename C>
__device__ __forceinline__ float half_warp_sqdist(const T* x, float xn, const C* c, float cn, int64_t d, int lane16) {
  float acc = 0.f;
  for (int64_t k = lane16; k < d; k += 16) {
    const float diff = coord<kNx>(x, k, xn) - coord<kNc>(c, k, cn);
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
__global__ void __launch_bounds__(kThreads) count_nonfinite_kernel(const T* X, int64_t n, int64_t d, unsigned long long* count) {
  const int lane16 = threadIdx.x & 15;
  for (int64_t w = warp_row0(); w < n; w += row_stride()) {
    const int64_t i = w + half_warp();
    const T* x = X + (i < n ? i : n - 1) * d;
    // (x - x)^2 is NaN exactly when x is NaN or +-inf (the CPU kernel's test)
    const float v = half_warp_sqdist<false, false>(x, 1.f, x, 1.f, d, lane16);
    if (lane16 == 0 && i < n && v != v) atomicAdd(count, 1ull);
  }
}

// norms[i] = ||x_i||: the squared norm by the 16 lanes (x - 0, as the CPU's sqdist(x, 0)),
// its correctly rounded sqrt; counts[0] += zero squared norms, counts[1] += overflowed ones.
template <typename T>
__global__ void __launch_bounds__(kThreads) norms_kernel(const T* X, int64_t n, int64_t d, float* norms,
                                                         unsigned long long* counts) {
  const int lane16 = threadIdx.x & 15;
  for (int64_t w = warp_row0(); w < n; w += row_stride()) {
    const int64_t i = w + half_warp();
    const T* x = X + (i < n ? i : n - 1) * d;
    float acc = 0.f;
    for (int64_t k = lane16; k < d; k += 16) {
      const float v = to_f(x[k]);
      acc = fmaf(v, v, acc);
    }
    const float n2 = reduce16(acc);
    if (i < n && lane16 == 0) {
      norms[i] = __fsqrt_rn(n2);
      if (n2 == 0.f) atomicAdd(&counts[0], 1ull);
      if (isinf(n2)) atomicAdd(&counts[1], 1ull);
    }
  }
}

// Initial min-distances to the L centers. ctile > 0: centers staged `ctile` at a time in
// shared memory (fp32); ctile == 0 (very wide rows): read from global memory (L2), kGroup at a
// time. Each row element is read once per group of kGroup centers.
template <typename T, bool kNorm>
__global__ void __launch_bounds__(kThreads) init_kernel(const T* X, const float* norms, int64_t n, int64_t d,
                                                        const int64_t* centers, int64_t L, int ctile, float* min_d2,
                                                        uint8_t* is_center) {
  extern __shared__ float tile[];  // ctile * d
  const int lane16 = threadIdx.x & 15;
  const int64_t i = blockIdx.x * (int64_t)kPointsPerBlock + (threadIdx.x >> 4);
  const bool valid = i < n;
  const T* x = X + (valid ? i : n - 1) * d;
  const float xn = kNorm ? norms[valid ? i : n - 1] : 1.f;
  float best = __int_as_float(0x7f800000);  // +inf
  const int64_t step = ctile > 0 ? ctile : kGroup;
  for (int64_t c0 = 0; c0 < L; c0 += step) {
    const int cnt = static_cast<int>(L - c0 < step ? L - c0 : step);
    if (ctile > 0) {
      __syncthreads();
      for (int64_t t = threadIdx.x; t < cnt * d; t += blockDim.x) {
        const int64_t j = t / d, k = t - j * d, c = centers[c0 + j];
        tile[t] = coord<kNorm>(X + c * d, k, kNorm ? norms[c] : 1.f);
      }
      __syncthreads();
    }
    for (int j0 = 0; j0 < cnt; j0 += kGroup) {
      float acc[kGroup];
#pragma unroll
      for (int g = 0; g < kGroup; ++g) acc[g] = 0.f;
      if (ctile > 0) {
        for (int64_t k = lane16; k < d; k += 16) {
          const float xv = coord<kNorm>(x, k, xn);
#pragma unroll
          for (int g = 0; g < kGroup; ++g)
            if (j0 + g < cnt) {
              const float diff = xv - tile[(j0 + g) * d + k];
              acc[g] = fmaf(diff, diff, acc[g]);
            }
        }
      } else {
        const T* crow[kGroup];
        float cn[kGroup];
#pragma unroll
        for (int g = 0; g < kGroup; ++g) {
          const int64_t c = centers[c0 + (j0 + g < cnt ? j0 + g : j0)];
          crow[g] = X + c * d;
          cn[g] = kNorm ? norms[c] : 1.f;
        }
        for (int64_t k = lane16; k < d; k += 16) {
          const float xv = coord<kNorm>(x, k, xn);
#pragma unroll
          for (int g = 0; g < kGroup; ++g)
            if (j0 + g < cnt) {
              const float diff = xv - coord<kNorm>(crow[g], k, cn[g]);
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

template <typename T, bool kNorm>
__global__ void __launch_bounds__(kThreads) first_kernel(const T* X, const float* norms, int64_t n, int64_t d,
                                                         int64_t first, float* min_d2, uint8_t* is_center,
                                                         int64_t* picks) {
  const int lane16 = threadIdx.x & 15;
  const int64_t i = blockIdx.x * (int64_t)kPointsPerBlock + (threadIdx.x >> 4);
  const int64_t ic = i < n ? i : n - 1;
  const float v = half_warp_sqdist<kNorm, kNorm>(X + ic * d, kNorm ? norms[ic] : 1.f, X + first * d,
                                                 kNorm ? norms[first] : 1.f, d, lane16);
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

// Row i at distance v from the new center: lower its min_d2 and, when it is not a center,
// offer it as this thread's (bv, bi) candidate.
__device__ __forceinline__ void relax_row(float v, int64_t i, float* min_d2, const uint8_t* is_center, float& bv,
                                          int64_t& bi) {
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

// block_argmax, then thread 0 writes the block's (max, argmax) to pv / pi at blockIdx.x.
__device__ __forceinline__ void store_block_argmax(float* sv, int64_t* si, float bv, int64_t bi, float* pv,
                                                   int64_t* pi) {
  block_argmax(sv, si, bv, bi);
  if (threadIdx.x == 0) {
    pv[blockIdx.x] = sv[0];
    pi[blockIdx.x] = si[0];
  }
}

// per-block (max, argmax) over non-centers after the initial pass; -1 marks "none"
__global__ void __launch_bounds__(kReduceThreads) argmax_partial(const float* min_d2, const uint8_t* is_center, int64_t n, float* pv, int64_t* pi) {
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
  store_block_argmax(sv, si, bv, bi, pv, pi);
}

// Per pick t: min_d2 <- min(min_d2, d2(x, picks[t])) and the block's (max, argmax) of the
// updated values over the non-centers (the pick itself was marked by argmax_final), fused in
// one pass. q_staged: the pick's row is copied to shared memory (fp32, exact) once per block.
template <typename T, bool kNorm>
__global__ void __launch_bounds__(kThreads) update_argmax_kernel(const T* X, const float* norms, int64_t n, int64_t d,
                                                                 const int64_t* picks, int64_t t, bool q_staged,
                                                                 const uint8_t* is_center, float* min_d2, float* pv,
                                                                 int64_t* pi) {
  extern __shared__ float q_s[];  // d floats when q_staged
  __shared__ float sv[kThreads];
  __shared__ int64_t si[kThreads];
  const int lane16 = threadIdx.x & 15;
  const int64_t pk = picks[t];
  const T* q = X + pk * d;
  const float qn = kNorm ? norms[pk] : 1.f;
  if (q_staged) {
    for (int64_t k = threadIdx.x; k < d; k += blockDim.x) q_s[k] = coord<kNorm>(q, k, qn);
    __syncthreads();
  }
  float bv = -1.f;
  int64_t bi = -1;
  for (int64_t w = warp_row0(); w < n; w += row_stride()) {
    const int64_t i = w + half_warp();
    const int64_t ic = i < n ? i : n - 1;
    const T* x = X + ic * d;
    const float xn = kNorm ? norms[ic] : 1.f;
    const float v = q_staged ? half_warp_sqdist<kNorm, false>(x, xn, q_s, 1.f, d, lane16)
                             : half_warp_sqdist<kNorm, kNorm>(x, xn, q, qn, d, lane16);
    if (lane16 == 0 && i < n) {
      relax_row(v, i, min_d2, is_center, bv, bi);
    }
  }
  store_block_argmax(sv, si, bv, bi, pv, pi);
}

// ---- the per-pick update with 16-byte loads ---------------------------------------------
// The same distances bit for bit, fewer and wider loads: a group of G = 16 / V threads per row
// (V elements of T per 16-byte load: 4 fp32, 8 fp16/bf16), thread t of a group owning whole
// lanes V t .. V t + V - 1 of the 16-lane accumulator -- lane l still sums dims k = l (mod 16)
// in increasing k with fmaf -- then reduce16's pairwise steps (l + 8, l + 4, l + 2, l + 1),
// across the group's threads by shuffles and inside a thread by adds. Needs rows starting on
// 16 bytes (d a multiple of V, an aligned base) and the query staged in shared memory.
template <typename T>
struct Vec16 {
  static constexpr int V = 16 / static_cast<int>(sizeof(T));  // elements per 16-byte load
};

__device__ __forceinline__ void load16(const float* p, float* out) {
  const float4 v = *reinterpret_cast<const float4*>(p);
  out[0] = v.x;
  out[1] = v.y;
  out[2] = v.z;
  out[3] = v.w;
}
// 16-bit elements from the 4 words of a 16-byte load (little endian: element 2j is word j's
// low half); exact conversions, no local-memory reinterpretation
__device__ __forceinline__ void load16(const __half* p, float* out) {
  const uint4 raw = *reinterpret_cast<const uint4*>(p);
  const unsigned int w[4] = {raw.x, raw.y, raw.z, raw.w};
#pragma unroll
  for (int j = 0; j < 4; ++j) {
    out[2 * j] = __half2float(__ushort_as_half(static_cast<unsigned short>(w[j] & 0xFFFFu)));
    out[2 * j + 1] = __half2float(__ushort_as_half(static_cast<unsigned short>(w[j] >> 16)));
  }
}
__device__ __forceinline__ void load16(const __nv_bfloat16* p, float* out) {
  const uint4 raw = *reinterpret_cast<const uint4*>(p);
  const unsigned int w[4] = {raw.x, raw.y, raw.z, raw.w};
#pragma unroll
  for (int j = 0; j < 4; ++j) {
    out[2 * j] = __uint_as_float(w[j] << 16);  // bf16 = the top half of an fp32
    out[2 * j + 1] = __uint_as_float(w[j] & 0xFFFF0000u);
  }
}

// ||x - q||^2 (x's coordinates divided by xn when kNorm; q_s staged, normalised already) by the
// group of thread t; the sum lands in the group's thread 0. Every lane of the warp must call it.
template <bool kNorm, typename T>
__device__ __forceinline__ float group_sqdist(const T* x, float xn, const float* q_s, int64_t d, int t) {
  constexpr int V = Vec16<T>::V, G = 16 / V;
  float acc[V];
#pragma unroll
  for (int j = 0; j < V; ++j) acc[j] = 0.f;
  for (int64_t k = static_cast<int64_t>(V) * t; k < d; k += 16) {
    float xv[V];
    load16(x + k, xv);
#pragma unroll
    for (int j = 0; j < V; ++j) {
      const float xj = kNorm ? __fdiv_rn(xv[j], xn) : xv[j];
      const float diff = xj - q_s[k + j];
      acc[j] = fmaf(diff, diff, acc[j]);
    }
  }
#pragma unroll
  for (int h = 8; h >= 1; h >>= 1) {
    if (h >= V) {  // lane l + h sits in thread t + h / V, same slot
#pragma unroll
      for (int j = 0; j < V; ++j) acc[j] += __shfl_down_sync(0xFFFFFFFFu, acc[j], h / V, G);
    } else {  // lane l + h sits in this thread, slot j + h
#pragma unroll
      for (int j = 0; j < h; ++j) acc[j] += acc[j + h];
    }
  }
  return acc[0];
}

// update_argmax_kernel with group_sqdist: the same results, 16-byte loads.
template <typename T, bool kNorm>
__global__ void __launch_bounds__(kThreads) update_argmax_vec_kernel(const T* X, const float* norms, int64_t n,
                                                                     int64_t d, const int64_t* picks, int64_t t,
                                                                     const uint8_t* is_center, float* min_d2,
                                                                     float* pv, int64_t* pi) {
  constexpr int G = 16 / Vec16<T>::V;     // threads per row
  constexpr int kRowsPerWarp = 32 / G;
  extern __shared__ float q_s[];  // d floats
  __shared__ float sv[kThreads];
  __shared__ int64_t si[kThreads];
  const int64_t pk = picks[t];
  const T* q = X + pk * d;
  const float qn = kNorm ? norms[pk] : 1.f;
  for (int64_t k = threadIdx.x; k < d; k += blockDim.x) q_s[k] = coord<kNorm>(q, k, qn);
  __syncthreads();
  const int gt = threadIdx.x % G;  // thread within the row's group
  const int64_t rows_per_block = kThreads / G;
  const int64_t first = blockIdx.x * rows_per_block + (threadIdx.x >> 5) * kRowsPerWarp;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * rows_per_block;
  float bv = -1.f;
  int64_t bi = -1;
  for (int64_t w = first; w < n; w += stride) {  // warp-uniform (the bound is on the warp's first row)
    const int64_t i = w + (threadIdx.x & 31) / G;
    const int64_t ic = i < n ? i : n - 1;
    const float v = group_sqdist<kNorm>(X + ic * d, kNorm ? norms[ic] : 1.f, q_s, d, gt);
    if (gt == 0 && i < n) {
      relax_row(v, i, min_d2, is_center, bv, bi);
    }
  }
  store_block_argmax(sv, si, bv, bi, pv, pi);
}

// One block: the global argmax of the partials. It is the radius of the previous pick
// (radii2[t-1], when t > 0) and, when t < b, pick t (marked as a center).
__global__ void __launch_bounds__(kReduceThreads) argmax_final(const float* pv, const int64_t* pi, int64_t parts, int64_t t, int64_t b,
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

// Blocks of the per-pick kernel: as many as fit on the GPU at once (occupancy x SMs: one
// wave, each block grid-striding over its rows), at most the partial buffers' `parts`.
template <typename K>
int64_t resident_blocks(K kernel, size_t smem, int64_t parts) {
  int dev = 0, sms = 0, per_sm = 0;
  if (cudaGetDevice(&dev) != cudaSuccess || cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev) != cudaSuccess ||
      cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, kThreads, smem) != cudaSuccess || sms <= 0 ||
      per_sm <= 0) {
    (void)cudaGetLastError();  // clear it: fall back to one block per partial
    return parts;
  }
  const int64_t g = static_cast<int64_t>(sms) * per_sm;
  return g < parts ? g : parts;
}

template <typename T, bool kNorm>
Status run(const T* X, const float* norms, int64_t n, int64_t d, const int64_t* centers, int64_t L, int64_t first,
           int64_t b, float* min_d2, uint8_t* is_center, float* pv, int64_t* pi, int64_t* picks, float* radii2,
           cudaStream_t st) {
  // one block per 16 points for the initial pass (at most 2^31 - 1 blocks: n < 2^31 here)
  const int64_t init_blocks = (n + kPointsPerBlock - 1) / kPointsPerBlock;
  int64_t t0;
  if (L > 0) {
    int64_t ctile = kSmemBytes / (static_cast<int64_t>(sizeof(float)) * d);
    ctile = ctile > kMaxTile ? kMaxTile : ctile;
    if (ctile > kGroup) ctile -= ctile % kGroup;
    const size_t smem = sizeof(float) * static_cast<size_t>(ctile * d);
    init_kernel<T, kNorm><<<static_cast<unsigned>(init_blocks), kThreads, smem, st>>>(
        X, norms, n, d, centers, L, static_cast<int>(ctile), min_d2, is_center);
    t0 = 0;
  } else {
    first_kernel<T, kNorm><<<static_cast<unsigned>(init_blocks), kThreads, 0, st>>>(X, norms, n, d, first, min_d2,
                                                                                   is_center, picks);
    t0 = 1;
  }
  const bool q_staged = d * static_cast<int64_t>(sizeof(float)) <= kSmemBytes;
  const size_t q_smem = q_staged ? sizeof(float) * static_cast<size_t>(d) : 0;
  // 16-byte loads: rows on 16-byte boundaries (d a multiple of V, an aligned base), query
  // staged; not for cosine on 16-bit rows (8 live divisions per thread: the division's slow-path
  // call would spill registers)
  constexpr bool kVecOk = !(kNorm && sizeof(T) == 2);
  const bool vec = kVecOk && q_staged && d % Vec16<T>::V == 0 && reinterpret_cast<uintptr_t>(X) % 16 == 0;
  int64_t parts = resident_blocks(update_argmax_kernel<T, kNorm>, q_smem, partial_count(n));
  if constexpr (kVecOk)
    if (vec) parts = resident_blocks(update_argmax_vec_kernel<T, kNorm>, q_smem, partial_count(n));
  argmax_partial<<<static_cast<int>(parts), kReduceThreads, 0, st>>>(min_d2, is_center, n, pv, pi);
  Status s = synced(st, "initial min-distances");
  if (!s.ok()) return s;
  for (int64_t t = t0; t <= b; ++t) {
    argmax_final<<<1, kReduceThreads, 0, st>>>(pv, pi, parts, t, b, is_center, picks, radii2);
    if (t < b) {
      bool launched_vec = false;
      if constexpr (kVecOk)
        if (vec) {
          update_argmax_vec_kernel<T, kNorm><<<static_cast<int>(parts), kThreads, q_smem, st>>>(
              X, norms, n, d, picks, t, is_center, min_d2, pv, pi);
          launched_vec = true;
        }
      if (!launched_vec)
        update_argmax_kernel<T, kNorm><<<static_cast<int>(parts), kThreads, q_smem, st>>>(
            X, norms, n, d, picks, t, q_staged, is_center, min_d2, pv, pi);
    }
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
  const cudaError_t z = cudaMemsetAsync(count, 0, sizeof(int64_t), st);
  if (z != cudaSuccess) return Status{static_cast<int>(z), "zeroing the non-finite count"};
  return by_elem(elem, features, [&](auto X) {
    count_nonfinite_kernel<<<grid_rows(n), kThreads, 0, st>>>(X, n, d, reinterpret_cast<unsigned long long*>(count));
    return launched("finiteness check");
  });
}

Status kcenter_row_norms(const void* features, Elem elem, int64_t n, int64_t d, float* norms, int64_t* counts,
                         void* stream) {
  cudaStream_t st = static_cast<cudaStream_t>(stream);
  const cudaError_t z = cudaMemsetAsync(counts, 0, 2 * sizeof(int64_t), st);
  if (z != cudaSuccess) return Status{static_cast<int>(z), "zeroing the norm counts"};
  return by_elem(elem, features, [&](auto X) {
    norms_kernel<<<grid_rows(n), kThreads, 0, st>>>(X, n, d, norms, reinterpret_cast<unsigned long long*>(counts));
    return launched("cosine row norms");
  });
}

Status kcenter_run(const void* features, Elem elem, const float* norms, int64_t n, int64_t d, const int64_t* centers,
                   int64_t L, int64_t first, int64_t b, float* min_d2, uint8_t* is_center, float* part_val,
                   int64_t* part_idx, int64_t* picks, float* radii2, void* stream) {
  cudaStream_t st = static_cast<cudaStream_t>(stream);
  return by_elem(elem, features, [&](auto X) {
    if (norms != nullptr)
      return run<std::remove_const_t<std::remove_pointer_t<decltype(X)>>, true>(
          X, norms, n, d, centers, L, first, b, min_d2, is_center, part_val, part_idx, picks, radii2, st);
    return run<std::remove_const_t<std::remove_pointer_t<decltype(X)>>, false>(
        X, nullptr, n, d, centers, L, first, b, min_d2, is_center, part_val, part_idx, picks, radii2, st);
  });
}

}  // namespace cuda
}  // namespace tavaal
