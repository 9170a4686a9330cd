// Device-independent argument checks of tavaal::topb (shared by the CPU and CUDA kernels).
#pragma once

#include <ATen/ATen.h>

namespace tavaal {

inline void topb_check(const at::Tensor& scores, int64_t b, const c10::optional<at::Tensor>& mask) {
  TORCH_CHECK_VALUE(scores.dim() == 1, "tavaal::topb: scores must be 1-D, got ", scores.dim(), "-D");
  TORCH_CHECK_VALUE(scores.is_contiguous(), "tavaal::topb: scores must be contiguous (call .contiguous())");
  TORCH_CHECK_VALUE(b >= 1 && b <= scores.size(0), "tavaal::topb: b must be in [1, ", scores.size(0), "], got ", b);
  if (mask.has_value() && mask->defined()) {
    const auto& m = *mask;
    TORCH_CHECK_VALUE(m.device() == scores.device(), "tavaal::topb: mask is on ", m.device(), " but scores on ",
                      scores.device());
    TORCH_CHECK_VALUE(m.dim() == 1, "tavaal::topb: mask must be 1-D");
    TORCH_CHECK_TYPE(m.scalar_type() == at::kBool || at::isIntegralType(m.scalar_type(), false),
                     "tavaal::topb: mask must be bool or integer indices, got ", m.scalar_type());
    TORCH_CHECK_VALUE(m.scalar_type() != at::kBool || m.size(0) == scores.size(0),
                      "tavaal::topb: a bool mask must have the length of scores");
    TORCH_CHECK_VALUE(m.is_contiguous(), "tavaal::topb: mask must be contiguous");
  }
  TORCH_CHECK_TYPE(at::isFloatingType(scores.scalar_type()),
                   "tavaal::topb: scores must be floating (float16/bfloat16/float32/float64), got ", scores.scalar_type());
}

}  // namespace tavaal
