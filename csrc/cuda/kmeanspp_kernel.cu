// Exact k-means++ D^2 seeding on CUDA (sampling contract: csrc/kmeanspp_common.h).
//
// Per pick three launches, all state on the device (no host sync per pick):
//  * update_kernel: one block per leaf of 256 rows, one half-warp per row with the CPU's lane
//    layout (16 float64 lanes, lane l sums dims l mod 16 with fma in increasing order, the
//    pairwise lane reduction of reduce16): m_i <- min(m_i, D^2(i, pick)), picked rows 0;
//    thread 0 then sums the leaf's 256 weights in index order (as the CPU does);
//  * level_kernel, once per level of the sampling tree above the leaves: one block per node
//    sums its (up to 256) children in index order;
//  * select_kernel (one block): the total is the root; the next pick descends the tree (the
//    first child whose running prefix exceeds u * total, level by level, then the first row
//    of the leaf) -- the same float64 operations in the same order as the CPU kernel.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "kmeanspp_kernel.h"

namespace tavaal {
namespace cuda {
namespace {

constexpr int64_t kLeaf = 256;                         // csrc/kmeanspp_common.h: kKmppLeaf
constexpr int64_t kFan = 256;                          // csrc/kmeanspp_common.h: kKmppFan
constexpr int kMaxLevels = 8;                          // 256^8 leaves: any int64 n
constexpr double kOuterTol = 1.4210854715202004e-14;  // 2^-46, csrc/kmeanspp_common.h
constexpr int kThreads = 256;                          // 16 half-warps; one leaf per update block
constexpr int kRowsPerPass = kThreads / 16;
static_assert(kLeaf <= kThreads && kFan <= kThreads, "one thread stages each child of a node");

__device__ __forceinline__ double to_d(float v) { return static_cast<double>(v); }
__device__ __forceinline__ double to_d(double v) { return v; }
__device__ __forceinline__ double to_d(__half v) { return static_cast<double>(__half2float(v)); }
__device__ __forceinline__ double to_d(__nv_bfloat16 v) { return static_cast<double>(__bfloat162float(v)); }

// The CPU's lane reduction (reduce16: l + 8, l + 4, l + 2, l + 1) as a butterfly within each
// half-warp (float64 addition is commutative, so lane l < 8 forms a[l] + a[l + 8], ...);
// every lane of the warp must call it; every lane of the half-warp ends with the sum.
__device__ __forceinline__ double reduce16(double v) {
  for (int o = 8; o > 0; o >>= 1) v += __shfl_xor_sync(0xFFFFFFFFu, v, o, 16);
  return v;
}

template <typename T>
__device__ __forceinline__ double half_warp_dot(const T* u, const T* v, int64_t n, int lane16) {
  double acc = 0.0;
  for (int64_t k = lane16; k < n; k += 16) acc = fma(to_d(u[k]), to_d(v[k]), acc);
  return reduce16(acc);
}

template <typename T>
__device__ __forceinline__ double half_warp_sqdiff(const T* u, const T* v, int64_t n, int lane16) {
  double acc = 0.0;
  for (int64_t k = lane16; k < n; k += 16) {
    const double diff = to_d(u[k]) - to_d(v[k]);
    acc = fma(diff, diff, acc);
  }
  return reduce16(acc);
}

// The sampling tree's levels: level 0 = the leaf sums, level h + 1 node j = the sum of level-h
// nodes kFan j .. kFan j + kFan - 1 in index order; the top level has one node (the total).
struct Levels {
  int count = 1;                 // levels, the leaves included
  int64_t size[kMaxLevels];      // nodes per level
  int64_t offset[kMaxLevels];    // start of each level in the node buffer
};

Levels make_levels(int64_t nleaf) {
  Levels lv;
  lv.size[0] = nleaf;
  lv.offset[0] = 0;
  while (lv.size[lv.count - 1] > 1 && lv.count < kMaxLevels) {
    lv.offset[lv.count] = lv.offset[lv.count - 1] + lv.size[lv.count - 1];
    lv.size[lv.count] = (lv.size[lv.count - 1] + kFan - 1) / kFan;
    ++lv.count;
  }
  return lv;
}

int64_t node_count(int64_t nleaf) {
  const Levels lv = make_levels(nleaf);
  return lv.offset[lv.count - 1] + lv.size[lv.count - 1];
}

__global__ void __launch_bounds__(kThreads) init_kernel(int64_t n, double* m, uint8_t* picked) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    m[i] = __longlong_as_double(0x7ff0000000000000LL);  // +inf
    picked[i] = 0;
  }
}

// s_i = |x_i|^2 (times |y_i|^2 with y): one half-warp per row
template <typename T>
__global__ void __launch_bounds__(kThreads) norms_kernel(const T* X, const T* Y, int64_t n, int64_t d, int64_t f,
                                                         int64_t ldx, int64_t ldy, double* s) {
  const int lane16 = threadIdx.x & 15;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * kRowsPerPass;
  // the bound on the warp's first row keeps both half-warps in the loop (for the shuffles)
  for (int64_t w = blockIdx.x * static_cast<int64_t>(kRowsPerPass) + ((threadIdx.x >> 5) << 1); w < n; w += stride) {
    const int64_t i0 = w + ((threadIdx.x >> 4) & 1), i = i0 < n ? i0 : n - 1;
    double v = half_warp_dot(X + i * ldx, X + i * ldx, d, lane16);
    if (Y != nullptr) v *= half_warp_dot(Y + i * ldy, Y + i * ldy, f, lane16);
    if (lane16 == 0 && i0 < n) s[i0] = v;
  }
}

// picks[0]: floor(u_0 n) or the largest s (ties -> lower index); marks it picked
__global__ void __launch_bounds__(kThreads) first_kernel(const double* s, int64_t n, const double* u, bool init_norm,
                                                         int64_t* picks, uint8_t* picked) {
  __shared__ double sv[kThreads];
  __shared__ int64_t si[kThreads];
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
__global__ void __launch_bounds__(kThreads) update_kernel(const T* X, const T* Y, int64_t n, int64_t d, int64_t f,
                                                          int64_t ldx, int64_t ldy, const double* s,
                                                          const int64_t* pick, double* m, const uint8_t* picked,
                                                          double* leaf) {
  __shared__ double w_sh[kLeaf];
  const int lane16 = threadIdx.x & 15, hw = threadIdx.x >> 4;
  const int64_t base = static_cast<int64_t>(blockIdx.x) * kLeaf;
  const int64_t p = *pick;
  const T* xp = X + p * ldx;
  const T* yp = Y != nullptr ? Y + p * ldy : nullptr;
  const double sp = Y != nullptr ? s[p] : 0.0;
  for (int j = 0; j < static_cast<int>(kLeaf / kRowsPerPass); ++j) {
    const int r = hw * static_cast<int>(kLeaf / kRowsPerPass) + j;
    const int64_t i0 = base + r, i = i0 < n ? i0 : n - 1;  // every half-warp computes (shuffles)
    double dd;
    if (Y != nullptr) {
      const double sum = s[i] + sp;
      const double prod =
          __dmul_rn(half_warp_dot(X + i * ldx, xp, d, lane16), half_warp_dot(Y + i * ldy, yp, f, lane16));
      dd = __dsub_rn(sum, __dmul_rn(2.0, prod));
      if (dd <= kOuterTol * sum) dd = 0.0;
    } else {
      dd = half_warp_sqdiff(X + i * ldx, xp, d, lane16);
    }
    if (lane16 == 0) {
      double w = 0.0;
      if (i0 < n && !picked[i0]) w = fmin(m[i0], dd);
      if (i0 < n) m[i0] = w;
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

// one block per parent node: parent[j] = the sum of children kFan j .. (up to nchild) in order
__global__ void __launch_bounds__(kThreads) level_kernel(const double* child, int64_t nchild, double* parent) {
  __shared__ double c_sh[kFan];
  const int64_t base = static_cast<int64_t>(blockIdx.x) * kFan;
  const int64_t cnt = nchild - base < kFan ? nchild - base : kFan;
  if (threadIdx.x < cnt) c_sh[threadIdx.x] = child[base + threadIdx.x];
  __syncthreads();
  if (threadIdx.x == 0) {
    double acc = 0.0;
    for (int64_t k = 0; k < cnt; ++k) acc += c_sh[k];
    parent[blockIdx.x] = acc;
  }
}

// The first of `cnt` values (staged in v_sh by the block) whose running sum r exceeds
// target - prefix in the contract's form prefix + r > target; -1 if none. On return (thread
// 0's view, broadcast through the shared slots) *prefix_out = prefix + the running sum
// before it. Thread 0 scans (the order of the float64 additions is the contract's).
__device__ __forceinline__ void scan_children(const double* v_sh, int64_t cnt, double prefix, double target,
                                              int64_t* found, double* prefix_out) {
  if (threadIdx.x == 0) {
    double r = 0.0;
    *found = -1;
    for (int64_t k = 0; k < cnt; ++k) {
      const double next = r + v_sh[k];
      if (prefix + next > target) {
        *found = k;
        *prefix_out = prefix + r;
        break;
      }
      r = next;
    }
  }
  __syncthreads();
}

// potential[t] = the root; then pick t + 1 (when t + 1 < b), marked picked
__global__ void __launch_bounds__(kThreads) select_kernel(const double* nodes, Levels lv, const double* m,
                                                          uint8_t* picked, int64_t n, const double* u, int64_t t,
                                                          int64_t b, int64_t* picks, double* potential) {
  __shared__ double v_sh[kFan];
  __shared__ int flag[kThreads];
  __shared__ int64_t sh_found, sh_p;
  __shared__ double sh_prefix;
  const int tid = threadIdx.x;
  const double total = nodes[lv.offset[lv.count - 1]];
  if (tid == 0) {
    potential[t] = total;
    sh_p = -1;
  }
  __syncthreads();
  if (t + 1 >= b) return;
  const double uu = u[t + 1];
  if (total > 0.0) {
    const double target = uu * total;
    double prefix = 0.0;
    int64_t node = 0;  // at the top level
    bool ok = true;
    for (int h = lv.count - 2; h >= -1 && ok; --h) {  // children at level h (-1: the rows of leaf `node`)
      const int64_t fan = h >= 0 ? kFan : kLeaf;  // children per node (rows per leaf)
      const int64_t first = node * fan;
      const int64_t size = h >= 0 ? lv.size[h] : n;
      const int64_t cnt = size - first < fan ? size - first : fan;
      if (tid < cnt) v_sh[tid] = h >= 0 ? nodes[lv.offset[h] + first + tid] : m[first + tid];
      __syncthreads();
      scan_children(v_sh, cnt, prefix, target, &sh_found, &sh_prefix);
      ok = sh_found >= 0;
      if (ok) {
        node = first + sh_found;
        prefix = sh_prefix;
      }
      __syncthreads();
    }
    if (ok) {
      if (tid == 0) sh_p = node;
    } else if (tid == 0) {  // u * total rounded up past a subtree: the last point of positive weight
      for (int64_t i = n - 1; i >= 0; --i)
        if (m[i] > 0.0) {
          sh_p = i;
          break;
        }
    }
    __syncthreads();
  }
  if (sh_p < 0) {  // every unpicked point coincides with a pick: the floor(u R)-th unpicked one
    const int64_t rest = n - (t + 1);
    int64_t k = static_cast<int64_t>(uu * static_cast<double>(rest));
    k = k < rest - 1 ? k : rest - 1;
    for (int64_t c0 = 0; c0 < n; c0 += kThreads) {
      const int64_t i = c0 + tid;
      const int un = (i < n && !picked[i]) ? 1 : 0;
      flag[tid] = un;
      const int cnt = __syncthreads_count(un);
      if (k < cnt) {
        if (tid == 0)
          for (int q = 0; q < kThreads; ++q)
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

Status launched(const char* phase) { return Status{static_cast<int>(cudaGetLastError()), phase}; }

Status synced(cudaStream_t st, const char* phase) {
  cudaError_t e = cudaGetLastError();
  if (e == cudaSuccess) e = cudaStreamSynchronize(st);
  return Status{static_cast<int>(e), phase};
}

template <typename T>
Status run(const T* X, const T* Y, int64_t n, int64_t d, int64_t f, int64_t ldx, int64_t ldy, const double* u,
           int64_t b, bool init_norm, void* ws, int64_t* picks, double* potential, cudaStream_t st) {
  const int64_t nleaf = (n + kLeaf - 1) / kLeaf;
  const Levels lv = make_levels(nleaf);
  char* w = static_cast<char*>(ws);
  double* m = reinterpret_cast<double*>(w);
  double* s = m + n;
  double* nodes = s + n;  // the levels, the leaf sums first
  uint8_t* picked = reinterpret_cast<uint8_t*>(nodes + node_count(nleaf));
  const int64_t gblocks = (n + 255) / 256 < 65535 ? (n + 255) / 256 : 65535;
  init_kernel<<<static_cast<unsigned>(gblocks), kThreads, 0, st>>>(n, m, picked);
  Status status = launched("initialisation");
  if (!status.ok()) return status;
  if (Y != nullptr || init_norm) {
    const int64_t nb = (n + kRowsPerPass - 1) / kRowsPerPass < 1048576 ? (n + kRowsPerPass - 1) / kRowsPerPass : 1048576;
    norms_kernel<T><<<static_cast<unsigned>(nb), kThreads, 0, st>>>(X, Y, n, d, f, ldx, ldy, s);
    status = launched("squared norms");
    if (!status.ok()) return status;
  }
  first_kernel<<<1, kThreads, 0, st>>>(s, n, u, init_norm, picks, picked);
  status = synced(st, "first pick");
  if (!status.ok()) return status;
  for (int64_t t = 0; t < b; ++t) {
    update_kernel<T><<<static_cast<unsigned>(nleaf), kThreads, 0, st>>>(X, Y, n, d, f, ldx, ldy, s, picks + t, m,
                                                                        picked, nodes);
    for (int h = 1; h < lv.count; ++h)
      level_kernel<<<static_cast<unsigned>(lv.size[h]), kThreads, 0, st>>>(nodes + lv.offset[h - 1], lv.size[h - 1],
                                                                            nodes + lv.offset[h]);
    select_kernel<<<1, kThreads, 0, st>>>(nodes, lv, m, picked, n, u, t, b, picks, potential);
    status = launched("per-pick update and sampling");
    if (!status.ok()) return status;
  }
  return synced(st, "picks");
}

}  // namespace

size_t kmeanspp_workspace_bytes(int64_t n) {
  const int64_t nleaf = (n + kLeaf - 1) / kLeaf;
  return align8(sizeof(double) * static_cast<size_t>(2 * n + node_count(nleaf)) + static_cast<size_t>(n));
}

Status kmeanspp_run(const void* x, const void* y, KmppElem elem, int64_t n, int64_t d, int64_t f, int64_t ldx,
                    int64_t ldy, const double* uniforms, int64_t b, bool init_norm, void* workspace, int64_t* picks,
                    double* potential, void* stream) {
  cudaStream_t st = static_cast<cudaStream_t>(stream);
  switch (elem) {
    case KmppElem::F32:
      return run(static_cast<const float*>(x), static_cast<const float*>(y), n, d, f, ldx, ldy, uniforms, b, init_norm,
                 workspace, picks, potential, st);
    case KmppElem::F64:
      return run(static_cast<const double*>(x), static_cast<const double*>(y), n, d, f, ldx, ldy, uniforms, b,
                 init_norm, workspace, picks, potential, st);
    case KmppElem::F16:
      return run(static_cast<const __half*>(x), static_cast<const __half*>(y), n, d, f, ldx, ldy, uniforms, b,
                 init_norm, workspace, picks, potential, st);
    default:
      return run(static_cast<const __nv_bfloat16*>(x), static_cast<const __nv_bfloat16*>(y), n, d, f, ldx, ldy,
                 uniforms, b, init_norm, workspace, picks, potential, st);
  }
}

}  // namespace cuda
}  // namespace tavaal
