// Device-independent parts of tavaal::kmeanspp (k-means++ D^2 seeding): argument checks and the
// sampling contract shared by the CPU and CUDA kernels.
//
// Points: rows x_i of `x` (N x D), or with `y` (N x F) the outer products g_i = x_i (x) y_i
// (never materialised): ||x_i (x) y_i - x_j (x) y_j||^2 = s_i + s_j - 2 (x_i . x_j)(y_i . y_j) with
// s_i = |x_i|^2 |y_i|^2. All arithmetic in float64 (inputs fp32/fp16/bf16/fp64 upcast).
//
// Sampling (the contract the pure-torch reference and the float64 brute force of the tests
// reproduce): m_i = min over the picks so far of D^2(i, pick) (0 for picked points), D^2 from
// 16-lane float64 dot products (lane l sums the dims k = l mod 16 with fma, in increasing k,
// then distance.h's pairwise lane reduction; the reference uses torch's sums, so it matches to
// rounding). The weights form a sampling tree, every sum in float64 and in index order:
//   leaf sum   L_k = (...((0 + m_{256k}) + m_{256k+1}) + ...)   (kLeaf = 256 rows per leaf)
//   level h+1  node j = (...((0 + v_{256j}) + v_{256j+1}) + ...) over the level-h nodes v
//              (kKmppFan = 256 children), up to a level of one node: the total T
//   (N <= 65536: one root over the leaves, so T is the leaves' plain running sum)
//   pick t     = the descent from the root with target u_t * T and prefix P = 0: at each level
//              the first child c whose running sum r_c (from 0, over the node's children in
//              order) has P + r_c > target; then P <- P + r_{c-1} (r_{-1} = 0) and descend
//              into c; below a leaf its rows. (For N <= 65536 this is the smallest i with
//              S_i > u_t T, S the cumulative sum in index order: P_{k-1} + r_i.)
// A zero weight never changes a sum, so picked points (weight 0) are never picked again. If
// rounding leaves the descent without a child (u * T reached past a subtree's sum), the pick
// is the last point of positive weight. When T == 0 (every unpicked point coincides with a
// pick), pick t is the floor(u_t * R)-th unpicked point in index order (R = N - t). First
// pick: floor(u_0 * N) ("uniform", classic k-means++) or the point of largest |g_i|^2, ties
// to the lower index ("norm", BADGE; u_0 unused).
// In the outer-product mode D^2 <= 2^-46 (s_i + s_j) counts as 0 (the expansion's rounding
// noise; exact duplicates then have weight exactly 0 as in plain mode).
#pragma once

#include <ATen/ATen.h>

#include <string>

namespace tavaal {

constexpr int64_t kKmppLeaf = 256;  // rows per leaf of the sampling tree
constexpr int64_t kKmppFan = 256;   // children per node above the leaves
constexpr double kKmppOuterTol = 1.4210854715202004e-14;  // 2^-46

// Row-major with unit column stride; the row stride (stride(0)) may exceed the row length.
inline bool rows_contiguous(const at::Tensor& t) { return (t.size(1) <= 1 || t.stride(1) == 1) && t.stride(0) >= 0; }

// Validates the arguments; returns true for init == "norm".
inline bool kmeanspp_check(const at::Tensor& x, const c10::optional<at::Tensor>& y, const at::Tensor& uniforms,
                           const std::string& init) {
  TORCH_CHECK_VALUE(x.dim() == 2, "tavaal::kmeanspp: x must be 2-D (N, D), got ", x.dim(), "-D");
  const auto st = x.scalar_type();
  TORCH_CHECK_TYPE(st == at::kFloat || st == at::kHalf || st == at::kBFloat16 || st == at::kDouble,
                   "tavaal::kmeanspp: x must be float32, float16, bfloat16 or float64, got ", st);
  TORCH_CHECK_VALUE(rows_contiguous(x), "tavaal::kmeanspp: the rows of x must be contiguous (stride(1) == 1; a "
                    "larger row stride, e.g. a column slice, is fine): call .contiguous()");
  const int64_t n = x.size(0);
  TORCH_CHECK_VALUE(n > 0 && x.size(1) > 0, "tavaal::kmeanspp: x must be non-empty, got shape ", x.sizes());
  if (y.has_value() && y->defined()) {
    const at::Tensor& f = *y;
    TORCH_CHECK_VALUE(f.device() == x.device(), "tavaal::kmeanspp: y is on ", f.device(), " but x on ", x.device());
    TORCH_CHECK_VALUE(f.dim() == 2, "tavaal::kmeanspp: y must be 2-D (N, F), got ", f.dim(), "-D");
    TORCH_CHECK_TYPE(f.scalar_type() == st, "tavaal::kmeanspp: y must have the dtype of x (", st, "), got ",
                     f.scalar_type());
    TORCH_CHECK_VALUE(f.size(0) == n, "tavaal::kmeanspp: y has ", f.size(0), " rows but x has ", n);
    TORCH_CHECK_VALUE(f.size(1) > 0, "tavaal::kmeanspp: y must have at least one column");
    TORCH_CHECK_VALUE(rows_contiguous(f), "tavaal::kmeanspp: the rows of y must be contiguous (stride(1) == 1; a "
                      "larger row stride, e.g. a column slice, is fine): call .contiguous()");
  }
  TORCH_CHECK_VALUE(uniforms.device() == x.device(), "tavaal::kmeanspp: uniforms are on ", uniforms.device(),
                    " but x on ", x.device());
  TORCH_CHECK_VALUE(uniforms.dim() == 1, "tavaal::kmeanspp: uniforms must be 1-D (b,)");
  TORCH_CHECK_TYPE(uniforms.scalar_type() == at::kDouble, "tavaal::kmeanspp: uniforms must be float64, got ",
                   uniforms.scalar_type());
  TORCH_CHECK_VALUE(uniforms.is_contiguous(), "tavaal::kmeanspp: uniforms must be contiguous");
  const int64_t b = uniforms.numel();
  TORCH_CHECK_VALUE(b >= 1 && b <= n, "tavaal::kmeanspp: b (the number of uniforms) must be in [1, ", n,
                    "] (N), got ", b);
  const int64_t bad_u = (uniforms.lt(0) | uniforms.ge(1) | uniforms.isnan()).sum().item<int64_t>();
  TORCH_CHECK_VALUE(bad_u == 0, "tavaal::kmeanspp: uniforms must lie in [0, 1), ", bad_u, " do not");
  TORCH_CHECK_VALUE(init == "uniform" || init == "norm", "tavaal::kmeanspp: init must be 'uniform' or 'norm', got '",
                    init, "'");
  // NaN/inf rows: max |v| per row is a reduction (no N x D temporary)
  auto bad_rows = [](const at::Tensor& t) {
    return at::isfinite(at::linalg_vector_norm(t, INFINITY, {1}, false, c10::nullopt)).logical_not();
  };
  at::Tensor bad = bad_rows(x);
  if (y.has_value() && y->defined()) bad = bad | bad_rows(*y);
  const int64_t nbad = bad.sum().item<int64_t>();
  TORCH_CHECK_VALUE(nbad == 0, "tavaal::kmeanspp: inputs contain NaN or inf in ", nbad,
                    " row(s); k-means++ needs finite points");
  return init == "norm";
}

}  // namespace tavaal
