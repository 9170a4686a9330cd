// Exact k-means++ D^2 seeding on CUDA (sampling contract: csrc/kmeanspp_common.h).
//
// Per pick two launches, all state on the device (no host sync per pick):
//  * update_kernel: one block per leaf of 256 rows, one warp per row (lanes stride over the
//    dimensions, float64 accumulation, butterfly reduction): m_i <- min(m_i, D^2(i, pick)),
//    picked rows 0; thread 0 then sums the leaf's 256 weights in index order (as the CPU does);
//  * select_kernel (one block): the total = leaf sums added in index order (potential[t]), then
//    the next pick by inverse CDF: the first leaf whose prefix exceeds u * total, then the first
//    row of that leaf -- the same float64 operations in the same order as the CPU kernel.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "kmeanspp_kernel.h"

namespace tavaal {
namespace cuda {
namespace {

constexpr int64_t kLeaf = 256;                         // csrc/kmeanspp_common.h: kKmppLeaf
constexpr double kOuterTol = 1.4210854715202004e-14;  // 2^-46, csrc/kmeanspp_common.h
constexpr int kUpdThreads = 256;                       // 8 warps, 32 rows each = one leaf
constexpr int kSelThreads = 1024;

__device__ __forceinline__ double to_d(float v) { return static_cast<double>(v); }
__device__ __forceinline__ double to_d(double v) { return v; }
__device__ __forceinline__ double to_d(__half v) { return static_cast<double>(__half2float(v)); }
__device__ __forceinline__ double to_d(__nv_bfloat16 v) { return static_cast<double>(__bfloat162float(v)); }

// butterfly sum: every lane ends with the same value (float64 addition is commutative)
__device__ __forceinline__ double warp_sum(double v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xFFFFFFFFu, v, o);
  return v;
}

template <typename T>
__device__ __forceinline__ double warp_dot(const T* u, const T* v, int64_t n, int lane) {
  double acc = 0.0;
  for (int64_t k = lane; k < n; k += 32) acc = fma(to_d(u[k]), to_d(v[k]), acc);
  return warp_sum(acc);
}

template <typename T>
__device__ __forceinline__ double warp_sqdiff(const T* u, const T* v, int64_t n, int lane) {
  double acc = 0.0;
  for (int64_t k = lane; k < n; k += 32) {
    const double diff = to_d(u[k]) - to_d(v[k]);
    acc = fma(diff, diff, acc);
  }
  return warp_sum(acc);
}

__global__ void init_kernel(int64_t n, double* m, uint8_t* picked) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    m[i] = __longlong_as_double(0x7ff0000000000000LL);  // +inf
    picked[i] = 0;
  }
}

// s_i = |x_i|^2 (times |y_i|^2 with y): one warp per row
template <typename T>
__global__ void norms_kernel(const T* X, const T* Y, int64_t n, int64_t d, int64_t f, int64_t ldx, int64_t ldy,
                             double* s) {
  const int lane = threadIdx.x & 31;
  const int64_t nwarps = (static_cast<int64_t>(gridDim.x) * blockDim.x) >> 5;
  for (int64_t i = (blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x) >> 5; i < n; i += nwarps) {
    double v = warp_dot(X + i * ldx, X + i * ldx, d, lane);
    if (Y != nullptr) v *= warp_dot(Y + i * ldy, Y + i * ldy, f, lane);
    if (lane == 0) s[i] = v;
  }
}

// picks[0]: floor(u_0 n) or the largest s (ties -> lower index); marks it picked
__global__ void first_kernel(const double* s, int64_t n, const double* u, bool init_norm, int64_t* picks,
                             uint8_t* picked) {
  __shared__ double sv[kSelThreads];
  __shared__ int64_t si[kSelThreads];
  int64_t p = 0;
  if (init_norm) {
    double bv = -1.0;
    int64_t bi = -1;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x)
      if (s[i] > bv) {  // increasing i: ties keep the lower index
        bv = s[i];
        bi = i;
      }
    sv[threadIdx.x] = bv;
    si[threadIdx.x] = bi;
    __syncthreads();
    for (int h = blockDim.x / 2; h > 0; h >>= 1) {
      if (threadIdx.x < h) {
        const double v = sv[threadIdx.x + h];
        const int64_t i = si[threadIdx.x + h];
        if (i >= 0 && (si[threadIdx.x] < 0 || v > sv[threadIdx.x] || (v == sv[threadIdx.x] && i < si[threadIdx.x]))) {
          sv[threadIdx.x] = v;
          si[threadIdx.x] = i;
        }
      }
      __syncthreads();
    }
    p = si[0];
  } else {
    p = static_cast<int64_t>(u[0] * static_cast<double>(n));
    p = p < n - 1 ? p : n - 1;
  }
  if (threadIdx.x == 0) {
    picks[0] = p;
    picked[p] = 1;
  }
}

// one block per leaf: m_i <- min(m_i, D^2(i, pick)) (0 for picked rows), then the leaf sum
template <typename T>
__global__ void update_kernel(const T* X, const T* Y, int64_t n, int64_t d, int64_t f, int64_t ldx, int64_t ldy,
                              const double* s,
                              const int64_t* pick, double* m, const uint8_t* picked, double* leaf) {
  __shared__ double w_sh[kLeaf];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int64_t base = static_cast<int64_t>(blockIdx.x) * kLeaf;
  const int64_t p = *pick;
  const T* xp = X + p * ldx;
  const T* yp = Y != nullptr ? Y + p * ldy : nullptr;
  const double sp = Y != nullptr ? s[p] : 0.0;
  for (int j = 0; j < 32; ++j) {
    const int r = warp * 32 + j;
    const int64_t i = base + r;
    double w = 0.0;
    if (i < n && !picked[i]) {  // the same i for the whole warp
      double dd;
      if (Y != nullptr) {
        const double sum = s[i] + sp;
        const double prod = __dmul_rn(warp_dot(X + i * ldx, xp, d, lane), warp_dot(Y + i * ldy, yp, f, lane));
        dd = sum - 2.0 * prod;
        if (dd <= kOuterTol * sum) dd = 0.0;
      } else {
        dd = warp_sqdiff(X + i * ldx, xp, d, lane);
      }
      w = fmin(m[i], dd);
    }
    if (lane == 0) {
      if (i < n) m[i] = w;
      w_sh[r] = w;
    }
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    const int64_t cnt = n - base < kLeaf ? n - base : kLeaf;
    double acc = 0.0;
    for (int64_t r = 0; r < cnt; ++r) acc += w_sh[r];
    leaf[blockIdx.x] = acc;
  }
}

// potential[t] = sum of the leaf sums; then pick t + 1 (when t + 1 < b), marked picked
__global__ void select_kernel(const double* leaf, int64_t nleaf, const double* m, uint8_t* picked, int64_t n,
                              const double* u, int64_t t, int64_t b, int64_t* picks, double* potential) {
  __shared__ double buf[kSelThreads];
  __shared__ int flag[kSelThreads];
  __shared__ double sh_total, sh_prefix;
  __shared__ int64_t sh_leaf, sh_p;
  const int tid = threadIdx.x;
  double total = 0.0;
  for (int64_t c0 = 0; c0 < nleaf; c0 += kSelThreads) {
    const int64_t cnt = nleaf - c0 < kSelThreads ? nleaf - c0 : kSelThreads;
    if (tid < cnt) buf[tid] = leaf[c0 + tid];
    __syncthreads();
    if (tid == 0)
      for (int64_t k = 0; k < cnt; ++k) total += buf[k];
    __syncthreads();
  }
  if (tid == 0) {
    potential[t] = total;
    sh_total = total;
    sh_leaf = -1;
    sh_p = -1;
  }
  __syncthreads();
  if (t + 1 >= b) return;
  total = sh_total;
  const double uu = u[t + 1];
  if (total > 0.0) {
    const double target = uu * total;
    double prefix = 0.0;
    for (int64_t c0 = 0; c0 < nleaf; c0 += kSelThreads) {
      const int64_t cnt = nleaf - c0 < kSelThreads ? nleaf - c0 : kSelThreads;
      if (tid < cnt) buf[tid] = leaf[c0 + tid];
      __syncthreads();
      if (tid == 0)
        for (int64_t k = 0; k < cnt; ++k) {
          const double next = prefix + buf[k];
          if (next > target) {
            sh_leaf = c0 + k;
            sh_prefix = prefix;
            break;
          }
          prefix = next;
        }
      __syncthreads();
      if (sh_leaf >= 0) break;
    }
    if (sh_leaf >= 0) {
      const int64_t base = sh_leaf * kLeaf;
      const int64_t cnt = n - base < kLeaf ? n - base : kLeaf;
      if (tid < cnt) buf[tid] = m[base + tid];
      __syncthreads();
      if (tid == 0) {
        double r = 0.0;
        for (int64_t k = 0; k < cnt; ++k) {
          r += buf[k];
          if (sh_prefix + r > target) {
            sh_p = base + k;
            break;
          }
        }
      }
      __syncthreads();
    }
    if (sh_p < 0) {  // u * total rounded up to total: the last point of positive weight
      if (tid == 0)
        for (int64_t i = n - 1; i >= 0; --i)
          if (m[i] > 0.0) {
            sh_p = i;
            break;
          }
      __syncthreads();
    }
  }
  if (sh_p < 0) {  // every unpicked point coincides with a pick: the floor(u R)-th unpicked one
    const int64_t rest = n - (t + 1);
    int64_t k = static_cast<int64_t>(uu * static_cast<double>(rest));
    k = k < rest - 1 ? k : rest - 1;
    for (int64_t c0 = 0; c0 < n; c0 += kSelThreads) {
      const int64_t i = c0 + tid;
      const int un = (i < n && !picked[i]) ? 1 : 0;
      flag[tid] = un;
      const int cnt = __syncthreads_count(un);
      if (k < cnt) {
        if (tid == 0)
          for (int q = 0; q < kSelThreads; ++q)
            if (flag[q] && k-- == 0) {
              sh_p = c0 + q;
              break;
            }
        break;
      }
      k -= cnt;
    }
    __syncthreads();
  }
  if (tid == 0) {
    picks[t + 1] = sh_p;
    picked[sh_p] = 1;
  }
}

size_t align8(size_t v) { return (v + 7) / 8 * 8; }

template <typename T>
void run(const T* X, const T* Y, int64_t n, int64_t d, int64_t f, int64_t ldx, int64_t ldy, const double* u,
         int64_t b, bool init_norm,
         void* ws, int64_t* picks, double* potential, cudaStream_t st) {
  const int64_t nleaf = (n + kLeaf - 1) / kLeaf;
  char* w = static_cast<char*>(ws);
  double* m = reinterpret_cast<double*>(w);
  double* s = m + n;
  double* leaf = s + n;
  uint8_t* picked = reinterpret_cast<uint8_t*>(leaf + nleaf);
  const int64_t gblocks = (n + 255) / 256 < 65535 ? (n + 255) / 256 : 65535;
  init_kernel<<<static_cast<unsigned>(gblocks), 256, 0, st>>>(n, m, picked);
  if (Y != nullptr || init_norm) {
    const int64_t nb = (n + 7) / 8 < 1048576 ? (n + 7) / 8 : 1048576;  // 8 warps per block, one row each
    norms_kernel<T><<<static_cast<unsigned>(nb), 256, 0, st>>>(X, Y, n, d, f, ldx, ldy, s);
  }
  first_kernel<<<1, kSelThreads, 0, st>>>(s, n, u, init_norm, picks, picked);
  for (int64_t t = 0; t < b; ++t) {
    update_kernel<T><<<static_cast<unsigned>(nleaf), kUpdThreads, 0, st>>>(X, Y, n, d, f, ldx, ldy, s, picks + t, m, picked,
                                                                          leaf);
    select_kernel<<<1, kSelThreads, 0, st>>>(leaf, nleaf, m, picked, n, u, t, b, picks, potential);
  }
}

}  // namespace

size_t kmeanspp_workspace_bytes(int64_t n) {
  const int64_t nleaf = (n + kLeaf - 1) / kLeaf;
  return align8(sizeof(double) * static_cast<size_t>(2 * n + nleaf) + static_cast<size_t>(n));
}

void kmeanspp_run(const void* x, const void* y, KmppElem elem, int64_t n, int64_t d, int64_t f, int64_t ldx, int64_t ldy,
                  const double* uniforms, int64_t b, bool init_norm, void* workspace, int64_t* picks,
                  double* potential, void* stream) {
  cudaStream_t st = static_cast<cudaStream_t>(stream);
  switch (elem) {
    case KmppElem::F32:
      run(static_cast<const float*>(x), static_cast<const float*>(y), n, d, f, ldx, ldy, uniforms, b, init_norm, workspace,
          picks, potential, st);
      break;
    case KmppElem::F64:
      run(static_cast<const double*>(x), static_cast<const double*>(y), n, d, f, ldx, ldy, uniforms, b, init_norm, workspace,
          picks, potential, st);
      break;
    case KmppElem::F16:
      run(static_cast<const __half*>(x), static_cast<const __half*>(y), n, d, f, ldx, ldy, uniforms, b, init_norm, workspace,
          picks, potential, st);
      break;
    case KmppElem::BF16:
      run(static_cast<const __nv_bfloat16*>(x), static_cast<const __nv_bfloat16*>(y), n, d, f, ldx, ldy, uniforms, b,
          init_norm, workspace, picks, potential, st);
      break;
  }
}

}  // namespace cuda
}  // namespace tavaal
