// CUDA registrations of the tavaal ops: argument checks, buffers, then the kernels of
// csrc/cuda/*.cu (declared in kernels.h, free of torch headers).
#include <ATen/ATen.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include "../kcenter_common.h"
#include "../score_common.h"
#include "../topb_common.h"
#include "kernels.h"

namespace tavaal {
namespace {

void* stream_of(const at::Tensor& t) { return c10::cuda::getCurrentCUDAStream(t.device().index()).stream(); }

void check_kernel(const char* what) {
  const cudaError_t err = cudaGetLastError();
  TORCH_CHECK(err == cudaSuccess, "tavaal::", what, ": CUDA error: ", cudaGetErrorString(err));
}

// exact (value, index) order with torch ops: used for float64 scores on CUDA
std::tuple<at::Tensor, at::Tensor> topb_sorted_fallback(const at::Tensor& s, int64_t b, bool largest,
                                                        const at::Tensor& cand) {
  at::Tensor v = s.index_select(0, cand);
  at::Tensor nan = at::isnan(v);
  at::Tensor key = at::where(nan, at::zeros_like(v), largest ? -v : v);
  at::Tensor order = std::get<1>(at::sort(key, /*stable=*/true, 0, false));
  order = order.index_select(0, std::get<1>(at::sort(nan.index_select(0, order).to(at::kByte), true, 0, false)));
  at::Tensor sel = order.narrow(0, 0, b);
  return {v.index_select(0, sel), cand.index_select(0, sel)};
}

std::tuple<at::Tensor, at::Tensor> topb_cuda(const at::Tensor& scores, int64_t b, bool largest,
                                             const c10::optional<at::Tensor>& mask, bool nan_worst) {
  topb_check(scores, b, mask);
  const c10::cuda::CUDAGuard guard(scores.device());
  const int64_t n = scores.size(0);
  TORCH_CHECK_VALUE(n < (int64_t(1) << 32) - 1, "tavaal::topb: CUDA supports up to 2^32-2 scores");
  at::Tensor m;
  if (mask.has_value() && mask->defined()) {
    if (mask->scalar_type() == at::kBool) {
      m = *mask;
    } else {
      at::Tensor idx = mask->to(at::kLong);
      if (idx.numel()) {
        const int64_t lo = idx.min().item<int64_t>(), hi = idx.max().item<int64_t>();
        TORCH_CHECK_INDEX(lo >= 0 && hi < n, "tavaal::topb: mask index out of range [0, ", n, ")");
      }
      m = at::zeros({n}, scores.options().dtype(at::kBool)).index_fill_(0, idx, true);
    }
  }
  at::Tensor f = scores.scalar_type() == at::kFloat || scores.scalar_type() == at::kDouble ? scores
                                                                                          : scores.to(at::kFloat);
  const uint8_t* mp = m.defined() ? reinterpret_cast<const uint8_t*>(m.data_ptr<bool>()) : nullptr;
  // counts (a sync: needed to raise on NaN / too few candidates)
  at::Tensor counts = at::empty({2}, scores.options().dtype(at::kLong));
  int64_t nan_cnt, cand_cnt;
  if (f.scalar_type() == at::kFloat) {
    cuda::topb_count(f.data_ptr<float>(), mp, n, counts.data_ptr<int64_t>(), stream_of(f));
    check_kernel("topb");
    at::Tensor c = counts.cpu();
    nan_cnt = c.data_ptr<int64_t>()[0];
    cand_cnt = c.data_ptr<int64_t>()[1];
  } else {
    at::Tensor valid = m.defined() ? m : at::ones({n}, scores.options().dtype(at::kBool));
    cand_cnt = valid.sum().item<int64_t>();
    nan_cnt = (at::isnan(f) & valid).sum().item<int64_t>();
  }
  TORCH_CHECK_VALUE(nan_worst || nan_cnt == 0, "tavaal::topb: scores contain ", nan_cnt,
                    " NaN value(s) among the candidates; clean them or pass nan_policy='worst' "
                    "(nan_worst=True) to rank NaNs last");
  TORCH_CHECK_VALUE(b <= cand_cnt, "tavaal::topb: b=", b, " exceeds the number of candidates (", cand_cnt, ")");
  if (f.scalar_type() == at::kDouble) {
    at::Tensor cand = m.defined() ? m.nonzero().flatten() : at::arange(n, scores.options().dtype(at::kLong));
    return topb_sorted_fallback(f, b, largest, cand);
  }
  at::Tensor ws = at::empty({static_cast<int64_t>(cuda::topb_workspace_bytes(b))}, scores.options().dtype(at::kByte));
  at::Tensor values = at::empty({b}, f.options());
  at::Tensor indices = at::empty({b}, scores.options().dtype(at::kLong));
  cuda::topb_select(f.data_ptr<float>(), mp, n, b, largest, ws.data_ptr(), values.data_ptr<float>(),
                    indices.data_ptr<int64_t>(), stream_of(f));
  check_kernel("topb");
  if (scores.scalar_type() != at::kFloat) values = scores.index_select(0, indices);
  return {values, indices};
}

std::tuple<at::Tensor, at::Tensor> kcenter_greedy_cuda(const at::Tensor& features, int64_t b,
                                                       const c10::optional<at::Tensor>& centers, int64_t first,
                                                       c10::string_view metric_sv) {
  const std::string metric(metric_sv);
  const c10::cuda::CUDAGuard guard(features.device());
  at::Tensor cidx = kcenter_check(features, b, centers, first, metric);
  at::Tensor f = metric == "cosine" ? cosine_rows(features) : features;
  const int64_t n = f.size(0), d = f.size(1);
  // NaN/inf rows: max |x| per row is a reduction (no N x D temporary)
  const int64_t bad = at::isfinite(at::linalg_vector_norm(f.to(at::kFloat), INFINITY, {1}, false, c10::nullopt))
                          .logical_not()
                          .sum()
                          .item<int64_t>();
  TORCH_CHECK_VALUE(bad == 0, "tavaal::kcenter_greedy: features contain NaN or inf in ", bad,
                    " row(s); k-center needs finite features");
  const auto opt = f.options();
  at::Tensor min_d2 = at::empty({n}, opt.dtype(at::kFloat));
  at::Tensor is_center = at::zeros({n}, opt.dtype(at::kByte));
  const int64_t parts = cuda::kcenter_partial_count(n);
  at::Tensor pv = at::empty({parts}, opt.dtype(at::kFloat));
  at::Tensor pi = at::empty({parts}, opt.dtype(at::kLong));
  at::Tensor picks = at::empty({b}, opt.dtype(at::kLong));
  at::Tensor radii = at::empty({b}, opt.dtype(at::kFloat));
  const cuda::Elem elem = f.scalar_type() == at::kFloat  ? cuda::Elem::F32
                          : f.scalar_type() == at::kHalf ? cuda::Elem::F16
                                                         : cuda::Elem::BF16;
  cuda::kcenter_run(f.data_ptr(), elem, n, d, cidx.data_ptr<int64_t>(), cidx.numel(), first, b,
                    min_d2.data_ptr<float>(), is_center.data_ptr<uint8_t>(), pv.data_ptr<float>(),
                    pi.data_ptr<int64_t>(), picks.data_ptr<int64_t>(), radii.data_ptr<float>(), stream_of(f));
  check_kernel("kcenter_greedy");
  finish_radii(radii, metric);
  return {picks, radii};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> score_topb_cuda(const at::Tensor& mu, const at::Tensor& r,
                                                               at::TensorList weights, at::TensorList biases,
                                                               int64_t b, bool largest, c10::string_view precision_sv,
                                                               int64_t chunk_size, bool return_scores) {
  const std::string precision(precision_sv);
  const c10::cuda::CUDAGuard guard(mu.device());
  const int64_t maxw = score_check(mu, r, weights, biases, b, precision);
  const int64_t n = mu.size(0), d = mu.size(1);
  const int L = static_cast<int>(weights.size());
  const bool bf16 = precision == "bf16";
  at::Tensor scores = at::empty({n}, mu.options());
  if (L <= 16 && cuda::score_smem_bytes(maxw) > 0) {
    std::vector<at::Tensor> wt, bs;
    std::vector<const float*> wp, bp;
    std::vector<int64_t> widths{weights[0].size(1)};
    for (int l = 0; l < L; ++l) {
      wt.push_back(weights[l].detach().t().contiguous());
      bs.push_back(biases[l].detach().contiguous());
      wp.push_back(wt.back().data_ptr<float>());
      bp.push_back(bs.back().data_ptr<float>());
      widths.push_back(weights[l].size(0));
    }
    cuda::score_run(mu.data_ptr<float>(), r.numel() ? r.data_ptr<float>() : nullptr, n, d, L, wp.data(), bp.data(),
                    widths.data(), bf16, scores.data_ptr<float>(), stream_of(mu));
    check_kernel("score_topb");
  } else {  // very wide or deep MLPs: chunked ATen GEMMs on the GPU
    const auto dt = bf16 ? at::kBFloat16 : at::kFloat;
    const int64_t C = chunk_size > 0 ? chunk_size : 65536;
    for (int64_t s = 0; s < n; s += C) {
      const int64_t rows = std::min(C, n - s);
      at::Tensor h = mu.narrow(0, s, rows);
      if (r.numel()) h = at::cat({h, r.narrow(0, s, rows).unsqueeze(1)}, 1);
      h = h.to(dt);
      for (int l = 0; l < L; ++l) {
        h = at::linear(h, weights[l].to(dt), biases[l].to(dt));
        if (l + 1 < L) h = at::relu(h);
      }
      scores.narrow(0, s, rows).copy_(at::sigmoid(h.select(1, 0).to(at::kFloat)));
    }
  }
  auto sel = topb_cuda(scores, b, largest, c10::nullopt, /*nan_worst=*/false);
  return {std::get<0>(sel), std::get<1>(sel), return_scores ? scores : at::empty({0}, mu.options())};
}

}  // namespace
}  // namespace tavaal

TORCH_LIBRARY_IMPL(tavaal, CUDA, m) {
  m.impl("topb", &tavaal::topb_cuda);
  m.impl("kcenter_greedy", &tavaal::kcenter_greedy_cuda);
  m.impl("score_topb", &tavaal::score_topb_cuda);
}
