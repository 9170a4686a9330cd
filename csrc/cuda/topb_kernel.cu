// top-b on CUDA: radix select over 64-bit keys, compaction, cub sort of the b survivors.
// Histogram passes aggregate per warp before touching shared memory: scores in (0, 1) share
// their top key byte, so without it the first pass sends all 32 lanes of a warp to one or two
// bins (32-way shared-memory atomic conflicts).
#include <cuda_runtime.h>
#include <cub/device/device_radix_sort.cuh>

#include <cstdint>

#include "kernels.h"

namespace tavaal {
namespace cuda {
namespace {

constexpr int kThreads = 256;
constexpr uint64_t kExcluded = ~uint64_t(0);

struct SelectState {
  uint64_t prefix;  // digits fixed so far
  uint64_t pmask;   // which bits of the prefix are fixed (the top bits)
  int64_t need;     // how many keys with this prefix still have to be taken
  int done;         // every key with this prefix is taken: the remaining passes are skipped
};

// order-preserving key: smaller key = better candidate; NaN after every number
__device__ __forceinline__ uint64_t make_key(float v, int64_t i, bool largest) {
  uint32_t ord;
  if (v != v) {
    ord = 0xFFFFFFFFu;
  } else {
    if (v == 0.f) v = 0.f;  // -0.0 == +0.0
    const uint32_t bits = __float_as_uint(v);
    ord = (bits & 0x80000000u) ? ~bits : (bits | 0x80000000u);  // ascending in v
    if (largest) ord = ~ord;
    // No number reaches 0xFFFFFFFF, which stays NaN's: ascending, +inf maps to 0xFF800000
    // (the largest), and with `largest` -inf maps to ~0x007FFFFF = 0xFF800000 too; 0xFFFFFFFF
    // would need the bit pattern 0xFFFFFFFF (ascending) or 0x7FFFFFFF (largest), both NaNs.
  }
  return (static_cast<uint64_t>(ord) << 32) | static_cast<uint64_t>(i);
}

__device__ __forceinline__ uint64_t key_at(const float* s, const uint8_t* mask, int64_t i, bool largest) {
  if (mask && !mask[i]) return kExcluded;
  return make_key(s[i], i, largest);
}

__global__ void count_kernel(const float* s, const uint8_t* mask, int64_t n, int64_t* counts) {
  __shared__ unsigned long long sh[2];
  if (threadIdx.x < 2) sh[threadIdx.x] = 0;
  __syncthreads();
  unsigned long long nan = 0, cand = 0;
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
    if (mask && !mask[i]) continue;
    ++cand;
    nan += (s[i] != s[i]);
  }
  atomicAdd(&sh[0], nan);
  atomicAdd(&sh[1], cand);
  __syncthreads();
  if (threadIdx.x == 0) {
    atomicAdd(reinterpret_cast<unsigned long long*>(&counts[0]), sh[0]);
    atomicAdd(reinterpret_cast<unsigned long long*>(&counts[1]), sh[1]);
  }
}

__global__ void init_state_kernel(SelectState* st, unsigned int* hist, int64_t b, unsigned int* counter) {
  st->prefix = 0;
  st->pmask = 0;
  st->need = b;
  st->done = 0;
  *counter = 0;
  for (int d = 0; d < 256; ++d) hist[d] = 0;
}

__global__ void hist_kernel(const float* s, const uint8_t* mask, int64_t n, bool largest, int shift,
                            const SelectState* st, unsigned int* hist) {
  __shared__ unsigned int sh[256];
  if (st->done) return;  // (uniform over the grid)
  for (int d = threadIdx.x; d < 256; d += blockDim.x) sh[d] = 0;
  __syncthreads();
  const uint64_t prefix = st->prefix, pmask = st->pmask;
  const int lane = threadIdx.x & 31;
  const int64_t stride = (int64_t)gridDim.x * blockDim.x;
  // warp-uniform loop: every lane of a warp runs the same iterations (for __match_any_sync)
  for (int64_t i0 = blockIdx.x * (int64_t)blockDim.x + (threadIdx.x & ~31); i0 < n; i0 += stride) {
    const int64_t i = i0 + lane;
    unsigned int digit = 256;  // 256: no key here
    if (i < n) {
      const uint64_t k = key_at(s, mask, i, largest);
      if (k != kExcluded && (k & pmask) == prefix) digit = static_cast<unsigned int>((k >> shift) & 0xFF);
    }
    const unsigned int peers = __match_any_sync(0xFFFFFFFFu, digit);
    if (digit < 256 && lane == __ffs(peers) - 1) atomicAdd(&sh[digit], static_cast<unsigned int>(__popc(peers)));
  }
  __syncthreads();
  for (int d = threadIdx.x; d < 256; d += blockDim.x)
    if (sh[d]) atomicAdd(&hist[d], sh[d]);
}

// One block of 256 threads (one per digit): an inclusive block-wide scan of the histogram
// (integer counts: exact), the digit d whose range (cum_{d-1}, cum_d] holds the need-th key is
// fixed; when its bin holds exactly the keys still needed, every key with the new prefix is
// taken and the remaining (value or index) passes are skipped. Clears the histogram.
constexpr int kDigitThreads = 256;
__global__ void __launch_bounds__(kDigitThreads) pick_digit_kernel(SelectState* st, unsigned int* hist, int shift) {
  __shared__ unsigned long long cum[kDigitThreads];
  __shared__ int chosen;
  const int d = threadIdx.x;
  if (st->done) return;  // (uniform over the block)
  const unsigned long long h = hist[d];
  cum[d] = h;
  if (d == 0) chosen = 255;  // (cannot stay so when b <= #candidates)
  __syncthreads();
  for (int o = 1; o < kDigitThreads; o <<= 1) {
    const unsigned long long add = d >= o ? cum[d - o] : 0ull;
    __syncthreads();
    cum[d] += add;
    __syncthreads();
  }
  const unsigned long long need = static_cast<unsigned long long>(st->need);
  const unsigned long long before = cum[d] - h;
  if (before < need && need <= cum[d]) chosen = d;  // exactly one digit
  __syncthreads();
  hist[d] = 0;
  if (d == chosen) {
    const unsigned long long left = need - before;
    st->prefix |= static_cast<uint64_t>(d) << shift;
    st->pmask |= uint64_t(0xFF) << shift;
    st->need = static_cast<int64_t>(left);
    st->done = left == h ? 1 : 0;
  }
}

__global__ void gather_kernel(const float* s, const uint8_t* mask, int64_t n, bool largest, const SelectState* st,
                              unsigned int* counter, uint64_t* out, int64_t b) {
  // exactly b keys have (k & pmask) <= prefix: the b-th smallest key's fixed top bits (all 64
  // after 8 passes; fewer when a pass took a whole bin)
  const uint64_t thr = st->prefix, pmask = st->pmask;
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
    const uint64_t k = key_at(s, mask, i, largest);
    if ((k & pmask) <= thr && k != kExcluded) {
      const unsigned int pos = atomicAdd(counter, 1u);
      if (pos < b) out[pos] = k;
    }
  }
}

__global__ void decode_kernel(const float* s, const uint64_t* keys, int64_t b, float* vals, int64_t* idx) {
  const int64_t t = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
  if (t < b) {
    const int64_t i = static_cast<int64_t>(keys[t] & 0xFFFFFFFFull);
    idx[t] = i;
    vals[t] = s[i];
  }
}

inline int grid_for(int64_t n) {
  int64_t g = (n + kThreads - 1) / kThreads;
  if (g > 4096) g = 4096;
  return static_cast<int>(g < 1 ? 1 : g);
}

inline size_t align8(size_t x) { return (x + 255) & ~size_t(255); }

size_t sort_temp_bytes(int64_t b) {
  size_t bytes = 0;
  const int items = static_cast<int>(b < kTopbMaxB ? b : kTopbMaxB);  // callers keep b <= kTopbMaxB
  cub::DeviceRadixSort::SortKeys(nullptr, bytes, static_cast<const uint64_t*>(nullptr), static_cast<uint64_t*>(nullptr),
                                 items);
  return bytes;
}

inline Status launched(const char* phase) { return Status{static_cast<int>(cudaGetLastError()), phase}; }

}  // namespace

size_t topb_workspace_bytes(int64_t b) {
  return align8(sizeof(SelectState)) + align8(256 * sizeof(unsigned int)) + align8(sizeof(unsigned int)) +
         2 * align8(b * sizeof(uint64_t)) + align8(sort_temp_bytes(b));
}

Status topb_count(const float* scores, const uint8_t* mask, int64_t n, int64_t* counts, void* stream) {
  cudaStream_t st = static_cast<cudaStream_t>(stream);
  const cudaError_t z = cudaMemsetAsync(counts, 0, 2 * sizeof(int64_t), st);
  if (z != cudaSuccess) return Status{static_cast<int>(z), "zeroing the top-b counts"};
  count_kernel<<<grid_for(n), kThreads, 0, st>>>(scores, mask, n, counts);
  return launched("top-b count");
}

Status topb_select(const float* scores, const uint8_t* mask, int64_t n, int64_t b, bool largest, void* workspace,
                   float* out_values, int64_t* out_indices, void* stream) {
  if (b < 1 || b > kTopbMaxB) return Status{static_cast<int>(cudaErrorInvalidValue), "top-b (b out of range)"};
  cudaStream_t st = static_cast<cudaStream_t>(stream);
  char* w = static_cast<char*>(workspace);
  SelectState* state = reinterpret_cast<SelectState*>(w);
  w += align8(sizeof(SelectState));
  unsigned int* hist = reinterpret_cast<unsigned int*>(w);
  w += align8(256 * sizeof(unsigned int));
  unsigned int* counter = reinterpret_cast<unsigned int*>(w);
  w += align8(sizeof(unsigned int));
  uint64_t* keys = reinterpret_cast<uint64_t*>(w);
  w += align8(b * sizeof(uint64_t));
  uint64_t* sorted = reinterpret_cast<uint64_t*>(w);
  w += align8(b * sizeof(uint64_t));
  size_t temp_bytes = sort_temp_bytes(b);

  init_state_kernel<<<1, 1, 0, st>>>(state, hist, b, counter);
  const int grid = grid_for(n);
  for (int shift = 56; shift >= 0; shift -= 8) {
    hist_kernel<<<grid, kThreads, 0, st>>>(scores, mask, n, largest, shift, state, hist);
    pick_digit_kernel<<<1, kDigitThreads, 0, st>>>(state, hist, shift);
  }
  gather_kernel<<<grid, kThreads, 0, st>>>(scores, mask, n, largest, state, counter, keys, b);
  Status s = launched("top-b radix select");
  if (!s.ok()) return s;
  const cudaError_t sort_err =
      cub::DeviceRadixSort::SortKeys(w, temp_bytes, keys, sorted, static_cast<int>(b), 0, 64, st);
  if (sort_err != cudaSuccess) return Status{static_cast<int>(sort_err), "top-b sort (cub)"};
  const int64_t blocks = (b + kThreads - 1) / kThreads;
  decode_kernel<<<static_cast<unsigned>(blocks), kThreads, 0, st>>>(scores, sorted, b, out_values, out_indices);
  return launched("top-b decode");
}

}  // namespace cuda
}  // namespace tavaal
