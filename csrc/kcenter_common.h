// Device-independent parts of tavaal::kcenter_greedy: argument checks and the cosine metric.
#pragma once

#include <ATen/ATen.h>

#include <string>

namespace tavaal {

// Validates the op's arguments; returns the initial centers as sorted unique int64 indices.
inline at::Tensor kcenter_check(const at::Tensor& features, int64_t b, const c10::optional<at::Tensor>& centers,
                                int64_t first, const std::string& metric) {
  TORCH_CHECK_VALUE(features.dim() == 2, "tavaal::kcenter_greedy: features must be 2-D (N, D), got ",
                    features.dim(), "-D");
  const auto st = features.scalar_type();
  TORCH_CHECK_TYPE(st == at::kFloat || st == at::kHalf || st == at::kBFloat16,
                   "tavaal::kcenter_greedy: features must be float32, float16 or bfloat16, got ", st);
  TORCH_CHECK_VALUE(features.is_contiguous(), "tavaal::kcenter_greedy: features must be contiguous (call .contiguous())");
  TORCH_CHECK_VALUE(metric == "euclidean" || metric == "cosine",
                    "tavaal::kcenter_greedy: metric must be 'euclidean' or 'cosine', got '", metric, "'");
  const int64_t n = features.size(0);
  TORCH_CHECK_VALUE(n > 0 && features.size(1) > 0, "tavaal::kcenter_greedy: features must be non-empty");
  TORCH_CHECK_VALUE(n < (int64_t(1) << 31) - 1, "tavaal::kcenter_greedy: at most 2^31-2 rows are supported");
  at::Tensor c;
  if (centers.has_value() && centers->defined() && centers->numel() > 0) {
    c = *centers;
    TORCH_CHECK_VALUE(c.device() == features.device(), "tavaal::kcenter_greedy: centers on ", c.device(),
                      " but features on ", features.device());
    TORCH_CHECK_VALUE(c.dim() == 1, "tavaal::kcenter_greedy: centers must be 1-D");
    if (c.scalar_type() == at::kBool) {
      TORCH_CHECK_VALUE(c.size(0) == n, "tavaal::kcenter_greedy: a bool centers mask needs N entries");
      c = c.nonzero().flatten();
    } else {
      TORCH_CHECK_TYPE(at::isIntegralType(c.scalar_type(), false),
                       "tavaal::kcenter_greedy: centers must be bool or integer indices, got ", c.scalar_type());
      c = c.to(at::kLong);
      const int64_t lo = c.min().item<int64_t>(), hi = c.max().item<int64_t>();
      TORCH_CHECK_INDEX(lo >= 0 && hi < n, "tavaal::kcenter_greedy: centers indices must lie in [0, ", n,
                        "), got range [", lo, ", ", hi, "]");
      c = std::get<0>(at::_unique2(c, /*sorted=*/true, false, false));
    }
  } else {
    c = at::empty({0}, features.options().dtype(at::kLong));
    TORCH_CHECK_INDEX(first >= 0 && first < n, "tavaal::kcenter_greedy: first must lie in [0, ", n, "), got ", first);
  }
  const int64_t avail = n - c.numel();
  TORCH_CHECK_VALUE(b >= 1 && b <= avail, "tavaal::kcenter_greedy: b must be in [1, ", avail, "] (N=", n, " minus ",
                    c.numel(), " initial centers), got ", b);
  return c.contiguous();
}

// Cosine metric: both devices normalise rows with the lane-ordered squared norm of
// distance.h (CPU: csrc/cpu/kcenter_cpu.cpp, CUDA: csrc/cuda/kcenter_kernel.cu) and report
// rows that cannot be normalised here.
inline void cosine_check_norms(int64_t zero_rows, int64_t overflow_rows) {
  TORCH_CHECK_VALUE(zero_rows == 0, "tavaal::kcenter_greedy: cosine metric: ", zero_rows,
                    " all-zero row(s) (cosine undefined; the squared norm is 0 in fp32)");
  TORCH_CHECK_VALUE(overflow_rows == 0, "tavaal::kcenter_greedy: cosine metric: the squared norm of ", overflow_rows,
                    " row(s) overflows fp32 (|x| around 1e19 or more); rescale the features");
}

// Converts the squared covering radii to the metric's radii (in place). The square root goes
// through float64 so the fp32 result is the correctly rounded sqrt on every device (ATen's
// vectorised fp32 sqrt on CPU is not always correctly rounded, CUDA's is): CPU and CUDA radii
// stay bit-identical.
inline void finish_radii(at::Tensor& radii, const std::string& metric) {
  if (metric == "cosine")
    radii.mul_(0.5);
  else
    radii.copy_(radii.to(at::kDouble).sqrt_());
}

}  // namespace tavaal
