// CUDA registrations of the tavaal ops: argument checks, buffers, then the kernels of
// csrc/cuda/*.cu (declared in kernels.h, free of torch headers). Every launcher reports its
// status; a failure raises here, naming the op and the phase.
#include <ATen/ATen.h>
#include <ATen/Context.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include <algorithm>

#include "../kcenter_common.h"
#include "../score_common.h"
#include "../topb_common.h"
#include "kernels.h"

namespace tavaal {
namespace {

void* stream_of(const at::Tensor& t) { return c10::cuda::getCurrentCUDAStream(t.device().index()).stream(); }

void check_status(const char* op, const cuda::Status& s) {
  TORCH_CHECK(s.ok(), "tavaal::", op, ": CUDA error in phase '", s.phase, "': ",
              cudaGetErrorString(static_cast<cudaError_t>(s.code)));
}

cuda::Elem elem_of(const at::Tensor& f) {
  return f.scalar_type() == at::kFloat ? cuda::Elem::F32
         : f.scalar_type() == at::kHalf ? cuda::Elem::F16
                                        : cuda::Elem::BF16;
}

// exact (value, index) order with torch ops: float64 scores, and b above the radix path's limit
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

// The radix select on fp32 scores (no mask): values and indices into `scores`, (value, index)
// order, NaN ranked worst. 1 <= b <= min(n, kTopbMaxB).
std::tuple<at::Tensor, at::Tensor> radix_topb(const at::Tensor& scores, const uint8_t* mask, int64_t b, bool largest) {
  at::Tensor ws =
      at::empty({static_cast<int64_t>(cuda::topb_workspace_bytes(b))}, scores.options().dtype(at::kByte));
  at::Tensor values = at::empty({b}, scores.options());
  at::Tensor indices = at::empty({b}, scores.options().dtype(at::kLong));
  check_status("topb", cuda::topb_select(scores.data_ptr<float>(), mask, scores.size(0), b, largest, ws.data_ptr(),
                                         values.data_ptr<float>(), indices.data_ptr<int64_t>(), stream_of(scores)));
  return {values, indices};
}

std::tuple<at::Tensor, at::Tensor> topb_cuda(const at::Tensor& scores, int64_t b, bool largest,
                                             const c10::optional<at::Tensor>& mask, bool nan_worst) {
  topb_check(scores, b, mask);
  const c10::cuda::CUDAGuard guard(scores.device());
  const int64_t n = scores.size(0);
  TORCH_CHECK_VALUE(n < (int64_t(1) << 32) - 1, "tavaal::topb: CUDA supports up to 2^32-2 scores, got ", n);
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
  int64_t nan_cnt, cand_cnt;
  if (f.scalar_type() == at::kFloat) {
    at::Tensor counts = at::empty({2}, scores.options().dtype(at::kLong));
    check_status("topb", cuda::topb_count(f.data_ptr<float>(), mp, n, counts.data_ptr<int64_t>(), stream_of(f)));
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
  if (f.scalar_type() == at::kDouble || b > cuda::kTopbMaxB) {
    at::Tensor cand = m.defined() ? m.nonzero().flatten() : at::arange(n, scores.options().dtype(at::kLong));
    auto res = topb_sorted_fallback(f, b, largest, cand);
    if (scores.scalar_type() != f.scalar_type()) std::get<0>(res) = scores.index_select(0, std::get<1>(res));
    return res;
  }
  auto res = radix_topb(f, mp, b, largest);
  if (scores.scalar_type() != at::kFloat) std::get<0>(res) = scores.index_select(0, std::get<1>(res));
  return res;
}

std::tuple<at::Tensor, at::Tensor> kcenter_greedy_cuda(const at::Tensor& features, int64_t b,
                                                       const c10::optional<at::Tensor>& centers, int64_t first,
                                                       c10::string_view metric_sv) {
  const std::string metric(metric_sv);
  const c10::cuda::CUDAGuard guard(features.device());
  at::Tensor cidx = kcenter_check(features, b, centers, first, metric);
  const int64_t n = features.size(0), d = features.size(1);
  const auto opt = features.options();
  void* st = stream_of(features);
  // NaN/inf rows, counted on the stored values (no N x D temporary in any dtype)
  at::Tensor bad = at::empty({1}, opt.dtype(at::kLong));
  check_status("kcenter_greedy",
               cuda::kcenter_count_nonfinite(features.data_ptr(), elem_of(features), n, d, bad.data_ptr<int64_t>(), st));
  const int64_t n_bad = bad.item<int64_t>();
  TORCH_CHECK_VALUE(n_bad == 0, "tavaal::kcenter_greedy: features contain NaN or inf in ", n_bad,
                    " row(s); k-center needs finite features");
  at::Tensor f = features;
  if (metric == "cosine") {  // the CPU kernel's operations: same normalised bits
    f = at::empty({n, d}, opt.dtype(at::kFloat));
    at::Tensor counts = at::empty({2}, opt.dtype(at::kLong));
    check_status("kcenter_greedy", cuda::kcenter_normalize(features.data_ptr(), elem_of(features), n, d,
                                                           f.data_ptr<float>(), counts.data_ptr<int64_t>(), st));
    at::Tensor c = counts.cpu();
    cosine_check_norms(c.data_ptr<int64_t>()[0], c.data_ptr<int64_t>()[1]);
  }
  at::Tensor min_d2 = at::empty({n}, opt.dtype(at::kFloat));
  at::Tensor is_center = at::zeros({n}, opt.dtype(at::kByte));
  const int64_t parts = cuda::kcenter_partial_count(n);
  at::Tensor pv = at::empty({parts}, opt.dtype(at::kFloat));
  at::Tensor pi = at::empty({parts}, opt.dtype(at::kLong));
  at::Tensor picks = at::empty({b}, opt.dtype(at::kLong));
  at::Tensor radii = at::empty({b}, opt.dtype(at::kFloat));
  check_status("kcenter_greedy",
               cuda::kcenter_run(f.data_ptr(), elem_of(f), n, d, cidx.data_ptr<int64_t>(), cidx.numel(), first, b,
                                 min_d2.data_ptr<float>(), is_center.data_ptr<uint8_t>(), pv.data_ptr<float>(),
                                 pi.data_ptr<int64_t>(), picks.data_ptr<int64_t>(), radii.data_ptr<float>(), st));
  finish_radii(radii, metric);
  return {picks, radii};
}

// Full fp32 (no TF32) and fp32 accumulation of bf16 GEMMs (no reduced-precision cuBLAS
// reductions) for the duration of the op, restored afterwards. The flags are process-global:
// a matmul running concurrently on another host thread sees them too.
class CublasFullPrecision {
 public:
  CublasFullPrecision()
      : tf32_(at::globalContext().allowTF32CuBLAS()), bf16_(at::globalContext().allowBF16ReductionCuBLAS()) {
    at::globalContext().setAllowTF32CuBLAS(false);
    at::globalContext().setAllowBF16ReductionCuBLAS(false, false);
  }
  ~CublasFullPrecision() {
    at::globalContext().setAllowTF32CuBLAS(tf32_);
    at::globalContext().setAllowBF16ReductionCuBLAS(
        bf16_ == at::CuBLASReductionOption::AllowReducedPrecisionWithSplitK,
        bf16_ != at::CuBLASReductionOption::DisallowReducedPrecisionDisallowSplitK);
  }
  CublasFullPrecision(const CublasFullPrecision&) = delete;
  CublasFullPrecision& operator=(const CublasFullPrecision&) = delete;

 private:
  bool tf32_;
  at::CuBLASReductionOption bf16_;
};

// Streaming fused scoring: chunks of rows go through the MLP as cuBLAS GEMMs (tensor cores
// for bf16), the sigmoid probabilities of a chunk land in a candidate buffer behind the
// running top-b, and the radix select keeps the b best of (running, chunk). Positions in the
// buffer are ordered like the global indices (the running entries, kept in (value, index)
// order, all precede the chunk and have lower indices), so the select's (value, position)
// order is the (value, index) order. Memory: O(chunk x width + b); no N-sized buffer unless
// return_scores.
std::tuple<at::Tensor, at::Tensor, at::Tensor> score_topb_cuda(const at::Tensor& mu, const at::Tensor& r,
                                                               at::TensorList weights, at::TensorList biases,
                                                               int64_t b, bool largest, c10::string_view precision_sv,
                                                               int64_t chunk_size, bool return_scores) {
  const std::string precision(precision_sv);
  const c10::cuda::CUDAGuard guard(mu.device());
  score_check(mu, r, weights, biases, b, precision);
  TORCH_CHECK_VALUE(b <= cuda::kTopbMaxB, "tavaal::score_topb: CUDA supports b <= 2^31-1, got ", b);
  const int64_t n = mu.size(0);
  const int L = static_cast<int>(weights.size());
  const auto dt = precision == "bf16" ? at::kBFloat16 : at::kFloat;
  const CublasFullPrecision full_precision;
  std::vector<at::Tensor> ws, bs;
  for (int l = 0; l < L; ++l) {
    ws.push_back(weights[l].detach().to(dt).contiguous());
    bs.push_back(biases[l].detach().to(dt).contiguous());
  }
  // (b + C < 2^32: the select's positions are 32-bit)
  const int64_t C = std::min<int64_t>({n, chunk_size > 0 ? chunk_size : (int64_t(1) << 17), int64_t(1) << 30});
  const auto opt = mu.options();
  at::Tensor cand_v = at::empty({b + C}, opt.dtype(at::kFloat));
  at::Tensor cand_i = at::empty({b + C}, opt.dtype(at::kLong));
  at::Tensor nan_total = at::zeros({}, opt.dtype(at::kLong));
  at::Tensor scores = return_scores ? at::empty({n}, opt.dtype(at::kFloat)) : at::empty({0}, opt.dtype(at::kFloat));
  at::Tensor out_v, out_pos;
  int64_t kept = 0;  // running entries at the front of the buffer
  for (int64_t s = 0; s < n; s += C) {
    const int64_t rows = std::min(C, n - s);
    at::Tensor h = mu.narrow(0, s, rows);
    if (r.numel()) h = at::cat({h, r.narrow(0, s, rows).unsqueeze(1)}, 1);  // any stride of r
    h = h.to(dt);
    for (int l = 0; l < L; ++l) {
      h = at::linear(h, ws[l], bs[l]);
      if (l + 1 < L) h.relu_();
    }
    at::Tensor p = cand_v.narrow(0, kept, rows);
    p.copy_(h.select(1, 0));  // logits, upcast to fp32
    p.sigmoid_();
    nan_total.add_(at::isnan(p).sum());
    if (return_scores) scores.narrow(0, s, rows).copy_(p);
    cand_i.narrow(0, kept, rows).copy_(at::arange(s, s + rows, opt.dtype(at::kLong)));
    const int64_t m = kept + rows, keep = std::min(b, m);
    std::tie(out_v, out_pos) = radix_topb(cand_v.narrow(0, 0, m), nullptr, keep, largest);
    at::Tensor idx = cand_i.index_select(0, out_pos);
    cand_v.narrow(0, 0, keep).copy_(out_v);
    cand_i.narrow(0, 0, keep).copy_(idx);
    kept = keep;
  }
  const int64_t nans = nan_total.item<int64_t>();
  TORCH_CHECK_VALUE(nans == 0, "tavaal::score_topb: the discriminator produced ", nans,
                    " NaN score(s); check mu / r / the weights for NaN or inf");
  return {cand_v.narrow(0, 0, b).clone(), cand_i.narrow(0, 0, b).clone(), scores};
}

}  // namespace
}  // namespace tavaal

TORCH_LIBRARY_IMPL(tavaal, CUDA, m) {
  m.impl("topb", &tavaal::topb_cuda);
  m.impl("kcenter_greedy", &tavaal::kcenter_greedy_cuda);
  m.impl("score_topb", &tavaal::score_topb_cuda);
}
