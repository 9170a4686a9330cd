// Launchers of the tavaal CUDA kernels. Plain C++ interface (raw device pointers + a
// cudaStream_t passed as void*), no torch headers: the .cu files compile with plain `nvcc -c`
// (the test suite compile-checks them on machines without a GPU or CUDA torch).
// csrc/cuda/ops_cuda.cpp allocates the tensors, calls these and turns a failed Status into a
// Python exception naming the phase.
#pragma once

#include <cstddef>
#include <cstdint>

namespace tavaal {
namespace cuda {

enum class Elem : int { F32 = 0, F16 = 1, BF16 = 2 };

// Outcome of a launcher: `code` is a cudaError_t (0 = cudaSuccess), `phase` names the step
// that failed (a launch error, a cub error, or a fault surfaced by a stream synchronisation).
struct Status {
  int code = 0;
  const char* phase = "";
  bool ok() const { return code == 0; }
};

// ---- top-b over fp32 scores -------------------------------------------------------------
// Exact selection by radix select over 64-bit keys (order-preserving value bits << 32 | index),
// up to 8 histogram passes of 8 bits (per-warp aggregated shared-memory histograms, a
// block-wide scan picks each digit); the passes stop once a digit's bin holds exactly the keys
// still needed -- for distinct values after at most the 4 value-bit passes, the index bits are
// read only to break ties -- then a compaction of the b selected keys and a cub radix sort of
// those b keys. Ties -> lower
// index; NaN worst (after +-inf); -0.0 == +0.0. n < 2^32 - 1; b <= kTopbMaxB (cub sorts with
// int item counts; the caller takes an exact sort-based path above that).
constexpr int64_t kTopbMaxB = 2147483647;
// Bytes of device workspace needed (256-byte aligned parts, zero-initialisation not required).
size_t topb_workspace_bytes(int64_t b);
// counts[0] <- NaN candidates, counts[1] <- candidates (device int64[2]); the caller checks
// them (raise on NaN, b > candidates) after the stream syncs. When counts say the selection is
// invalid the outputs are unspecified.
Status topb_count(const float* scores, const uint8_t* mask, int64_t n, int64_t* counts, void* stream);
Status topb_select(const float* scores, const uint8_t* mask, int64_t n, int64_t b, bool largest, void* workspace,
                   float* out_values, int64_t* out_indices, void* stream);

// ---- exact greedy k-center --------------------------------------------------------------
// Plain greedy (no pruning: one fused min-distance update + block argmax pass per pick at
// memory bandwidth). Distances use exactly the CPU arithmetic (16 lanes, lane l sums dims
// l mod 16 in increasing order with fmaf, then the same pairwise lane reduction), so CPU and
// CUDA give bit-identical distances, radii and picks.
// Rows holding NaN or +-inf, counted on the stored values (no copy): *count (device int64,
// zeroed by the launcher).
Status kcenter_count_nonfinite(const void* features, Elem elem, int64_t n, int64_t d, int64_t* count, void* stream);
// Cosine metric: norms[i] = ||x_i|| with the CPU kernel's operations (squared norm by the 16
// lanes, correctly rounded sqrt; kcenter_run then divides each coordinate by its row's norm
// where it reads it, as the CPU's normalised copy holds: no N x D copy here);
// counts[0] <- rows with a zero squared norm, counts[1] <- rows whose squared norm overflows
// (device int64[2], zeroed here).
Status kcenter_row_norms(const void* features, Elem elem, int64_t n, int64_t d, float* norms, int64_t* counts,
                         void* stream);
// features: N x D of `elem`; norms: N floats from kcenter_row_norms (cosine metric) or nullptr
// (Euclidean); centers: L int64 (may be 0 -> `first` is picks[0]).
// Scratch: min_d2 float[N], is_center uint8[N] (zeroed by the caller), partial buffers of
// kcenter_partial_count(N) (float + int64 each; the per-pick kernel uses at most that many
// blocks, fewer when fewer fit on the GPU at once). Outputs picks int64[b], radii2 float[b]
// (squared covering radius after each pick). Synchronises the stream twice (after the
// initial centers and at the end) so a fault is reported by this op, with its phase.
int64_t kcenter_partial_count(int64_t n);
Status kcenter_run(const void* features, Elem elem, const float* norms, int64_t n, int64_t d, const int64_t* centers,
                   int64_t L, int64_t first, int64_t b, float* min_d2, uint8_t* is_center, float* part_val,
                   int64_t* part_idx, int64_t* picks, float* radii2, void* stream);

}  // namespace cuda
}  // namespace tavaal
