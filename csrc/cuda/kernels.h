// Launchers of the tavaal CUDA kernels. Plain C++ interface (raw device pointers + a
// cudaStream_t passed as void*), no torch headers: the .cu files compile with plain `nvcc -c`
// (the test suite compile-checks them on machines without a GPU or CUDA torch).
// csrc/cuda/ops_cuda.cpp allocates the tensors and calls these.
#pragma once

#include <cstddef>
#include <cstdint>

namespace tavaal {
namespace cuda {

enum class Elem : int { F32 = 0, F16 = 1, BF16 = 2 };

// ---- top-b over fp32 scores -------------------------------------------------------------
// Exact selection by radix select over 64-bit keys (order-preserving value bits << 32 | index),
// 8 histogram passes of 8 bits, then a compaction of the b keys <= the b-th key and a cub
// radix sort of those b keys. Ties -> lower index; NaN worst (after +-inf); -0.0 == +0.0.
// Bytes of device workspace needed (8-byte aligned, zero-initialisation not required).
size_t topb_workspace_bytes(int64_t b);
// counts[0] <- NaN candidates, counts[1] <- candidates (device int64[2]); the caller checks
// them (raise on NaN, b > candidates) after the stream syncs. When counts say the selection is
// invalid the outputs are unspecified.
void topb_count(const float* scores, const uint8_t* mask, int64_t n, int64_t* counts, void* stream);
void topb_select(const float* scores, const uint8_t* mask, int64_t n, int64_t b, bool largest, void* workspace,
                 float* out_values, int64_t* out_indices, void* stream);

// ---- exact greedy k-center --------------------------------------------------------------
// Plain greedy (no pruning: one min-distance update pass per pick at memory bandwidth).
// Distances use exactly the CPU arithmetic (16 lanes, lane l sums dims l mod 16 with fmaf,
// then the same pairwise lane reduction), so CPU and CUDA give bit-identical picks.
// features: N x D of `elem`; centers: L int64 (may be 0 -> `first` is picks[0]).
// Scratch: min_d2 float[N], is_center uint8[N] (zeroed by the caller), partial buffers of
// kcenter_partial_count(N) (float + int64 each). Outputs picks int64[b], radii2 float[b]
// (squared covering radius after each pick).
int64_t kcenter_partial_count(int64_t n);
void kcenter_run(const void* features, Elem elem, int64_t n, int64_t d, const int64_t* centers, int64_t L,
                 int64_t first, int64_t b, float* min_d2, uint8_t* is_center, float* part_val, int64_t* part_idx,
                 int64_t* picks, float* radii2, void* stream);

// ---- fused discriminator scoring --------------------------------------------------------
// Row tiles of the MLP (weights transposed: wt[l] is in_l x out_l, row-major) in shared
// memory, ReLU between layers, sigmoid at the end; writes the N probabilities to `scores`
// (the top-b is then topb_select). bf16: weights and activations rounded to bf16, fp32 math.
// Returns the dynamic shared memory it needs (0 if the widths exceed the device limit).
size_t score_smem_bytes(int64_t max_width);
void score_run(const float* mu, const float* r, int64_t n, int64_t d, int num_layers, const float* const* wt,
               const float* const* bias, const int64_t* widths /* num_layers+1 */, bool bf16, float* scores,
               void* stream);

}  // namespace cuda
}  // namespace tavaal
