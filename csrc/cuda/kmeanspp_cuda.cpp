// CUDA registration of tavaal::kmeanspp: argument checks (csrc/kmeanspp_common.h), the device
// workspace, then the kernels of kmeanspp_kernel.cu (free of torch headers).
#include <ATen/ATen.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include "../kmeanspp_common.h"
#include "kmeanspp_kernel.h"

namespace tavaal {
namespace {

std::tuple<at::Tensor, at::Tensor> kmeanspp_cuda(const at::Tensor& x, const c10::optional<at::Tensor>& y,
                                                 const at::Tensor& uniforms, c10::string_view init_sv) {
  const std::string init(init_sv);
  const c10::cuda::CUDAGuard guard(x.device());
  const bool init_norm = kmeanspp_check(x, y, uniforms, init);
  const bool outer = y.has_value() && y->defined();
  const int64_t n = x.size(0), b = uniforms.numel();
  const auto opt = x.options();
  at::Tensor ws = at::empty({static_cast<int64_t>(cuda::kmeanspp_workspace_bytes(n))}, opt.dtype(at::kByte));
  at::Tensor picks = at::empty({b}, opt.dtype(at::kLong));
  at::Tensor potential = at::empty({b}, opt.dtype(at::kDouble));
  const auto st = x.scalar_type();
  const cuda::KmppElem elem = st == at::kFloat    ? cuda::KmppElem::F32
                              : st == at::kDouble ? cuda::KmppElem::F64
                              : st == at::kHalf   ? cuda::KmppElem::F16
                                                  : cuda::KmppElem::BF16;
  const cuda::Status status = cuda::kmeanspp_run(
      x.data_ptr(), outer ? y->data_ptr() : nullptr, elem, n, x.size(1), outer ? y->size(1) : 0, x.stride(0),
      outer ? y->stride(0) : 0, uniforms.data_ptr<double>(), b, init_norm, ws.data_ptr(), picks.data_ptr<int64_t>(),
      potential.data_ptr<double>(), c10::cuda::getCurrentCUDAStream(x.device().index()).stream());
  TORCH_CHECK(status.ok(), "tavaal::kmeanspp: CUDA error in phase '", status.phase, "': ",
              cudaGetErrorString(static_cast<cudaError_t>(status.code)));
  return {picks, potential};
}

}  // namespace
}  // namespace tavaal

TORCH_LIBRARY_IMPL(tavaal, CUDA, m) { m.impl("kmeanspp", &tavaal::kmeanspp_cuda); }
