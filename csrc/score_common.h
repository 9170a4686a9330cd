// Device-independent argument checks of tavaal::score_topb (shared by the CPU and CUDA kernels).
#pragma once

#include <ATen/ATen.h>

#include <algorithm>
#include <string>

namespace tavaal {

// Returns the largest layer width (input included).
inline int64_t score_check(const at::Tensor& mu, const at::Tensor& r, at::TensorList weights, at::TensorList biases,
                           int64_t b, const std::string& precision) {
  TORCH_CHECK_VALUE(mu.dim() == 2, "tavaal::score_topb: mu must be 2-D (N, d)");
  TORCH_CHECK_TYPE(mu.scalar_type() == at::kFloat, "tavaal::score_topb: mu must be float32, got ", mu.scalar_type());
  TORCH_CHECK_VALUE(mu.is_contiguous(), "tavaal::score_topb: mu must be contiguous");
  TORCH_CHECK_VALUE(precision == "fp32" || precision == "bf16",
                    "tavaal::score_topb: precision must be 'fp32' or 'bf16', got '", precision, "'");
  const int64_t n = mu.size(0), d = mu.size(1);
  const bool with_r = r.numel() > 0;
  if (with_r) {  // r may have any stride: both kernels read it through ATen views
    TORCH_CHECK_VALUE(r.dim() == 1 && r.size(0) == n, "tavaal::score_topb: r must be (N,) with N=", n);
    TORCH_CHECK_TYPE(r.scalar_type() == at::kFloat, "tavaal::score_topb: r must be float32");
    TORCH_CHECK_VALUE(r.device() == mu.device(), "tavaal::score_topb: r and mu on different devices");
  }
  const int64_t L = static_cast<int64_t>(weights.size());
  TORCH_CHECK_VALUE(L >= 1 && static_cast<int64_t>(biases.size()) == L,
                    "tavaal::score_topb: need as many biases as weights (>= 1)");
  int64_t in = d + (with_r ? 1 : 0), maxw = 1;
  for (int64_t l = 0; l < L; ++l) {
    const auto& w = weights[l];
    TORCH_CHECK_VALUE(w.dim() == 2 && w.size(1) == in, "tavaal::score_topb: weights[", l, "] must be (out, ", in,
                      "), got ", w.sizes());
    TORCH_CHECK_VALUE(biases[l].dim() == 1 && biases[l].size(0) == w.size(0), "tavaal::score_topb: biases[", l,
                      "] must be (", w.size(0), ",)");
    TORCH_CHECK_TYPE(w.scalar_type() == at::kFloat && biases[l].scalar_type() == at::kFloat,
                     "tavaal::score_topb: weights and biases must be float32");
    TORCH_CHECK_VALUE(w.device() == mu.device() && biases[l].device() == mu.device(),
                      "tavaal::score_topb: weights and mu on different devices");
    in = w.size(0);
    maxw = std::max(maxw, in);
  }
  TORCH_CHECK_VALUE(in == 1, "tavaal::score_topb: the last layer must have 1 output, got ", in);
  TORCH_CHECK_VALUE(b >= 1 && b <= n, "tavaal::score_topb: b must be in [1, ", n, "], got ", b);

  return std::max(maxw, d + (with_r ? 1 : 0));
}

}  // namespace tavaal
