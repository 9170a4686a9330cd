// CUDA registrations of the tavaal ops: argument checks, buffers, then the kernels of
// csrc/cuda/*.cu (declared in kernels.h, free of torch headers). Every launcher reports its
// status; a failure raises here, naming the op and the phase.
#include <ATen/ATen.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include <algorithm>

#include "../kcenter_common.h"
#include "../score_common.h"
#include "../topb_common.h"
#include "kernels.h"
#include "score_gemm.h"

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
  at::Tensor norms;  // cosine: N row norms; the kernels divide on the fly (no N x D copy)
  if (metric == "cosine") {
    norms = at::empty({n}, opt.dtype(at::kFloat));
    at::Tensor counts = at::empty({2}, opt.dtype(at::kLong));
    check_status("kcenter_greedy", cuda::kcenter_row_norms(features.data_ptr(), elem_of(features), n, d,
                                                           norms.data_ptr<float>(), counts.data_ptr<int64_t>(), st));
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
  const float* np = norms.defined() ? norms.data_ptr<float>() : nullptr;
  check_status("kcenter_greedy",
               cuda::kcenter_run(features.data_ptr(), elem_of(features), np, n, d, cidx.data_ptr<int64_t>(),
                                 cidx.numel(), first, b, min_d2.data_ptr<float>(), is_center.data_ptr<uint8_t>(),
                                 pv.data_ptr<float>(), pi.data_ptr<int64_t>(), picks.data_ptr<int64_t>(),
                                 radii.data_ptr<float>(), st));
  finish_radii(radii, metric);
  return {picks, radii};
}

// Rows per scoring chunk: the chunk's input and output activations of the widest layer (in
// the compute dtype) take at most half the L2 cache, so each GEMM's operands stay in L2
// between the layers (a fixed row count would need 2 GiB per activation for a 4096-wide
// layer); at least kMinChunkRows (per-chunk overheads), at most kMaxChunkRows, a multiple of 256.
constexpr int64_t kMinChunkRows = 2048, kMaxChunkRows = int64_t(1) << 17;
int64_t score_chunk_rows(int64_t maxw, int64_t elem_bytes, int device) {
  int l2 = 0;
  if (cudaDeviceGetAttribute(&l2, cudaDevAttrL2CacheSize, device) != cudaSuccess || l2 <= 0) {
    (void)cudaGetLastError();  // clear it: an unknown L2 size falls back to 40 MB
    l2 = 40 << 20;
  }
  const int64_t rows = static_cast<int64_t>(l2) / 2 / (2 * maxw * elem_bytes);
  return std::clamp<int64_t>(rows / 256 * 256, kMinChunkRows, kMaxChunkRows);
}

// Streaming fused scoring: chunks of rows go through the MLP as cuBLAS GEMMs with explicit
// fp32 accumulation (csrc/cuda/score_gemm.h: tensor cores for bf16, never TF32 for fp32,
// whatever torch's global matmul settings; nothing global is changed), bias preloaded into the
// output, ReLU in place. The sigmoid probabilities of a chunk land in a candidate buffer
// behind the running top-b, and the radix select keeps the b best of (running, chunk);
// once the running top-b is full, a chunk whose best probability cannot beat the running b-th
// (ties lose: the chunk's indices are higher) skips the select. Positions in the buffer are
// ordered like the global indices (the running entries, kept in (value, index) order, all
// precede the chunk and have lower indices), so the select's (value, position) order is the
// (value, index) order. Memory: O(chunk x width + b); no N-sized buffer unless return_scores.
std::tuple<at::Tensor, at::Tensor, at::Tensor> score_topb_cuda(const at::Tensor& mu, const at::Tensor& r,
                                                               at::TensorList weights, at::TensorList biases,
                                                               int64_t b, bool largest, c10::string_view precision_sv,
                                                               int64_t chunk_size, bool return_scores) {
  const std::string precision(precision_sv);
  const c10::cuda::CUDAGuard guard(mu.device());
  const int64_t maxw = score_check(mu, r, weights, biases, b, precision);
  TORCH_CHECK_VALUE(b <= cuda::kTopbMaxB, "tavaal::score_topb: CUDA supports b <= 2^31-1, got ", b);
  const int64_t n = mu.size(0), d = mu.size(1);
  const bool with_r = r.numel() > 0;
  const int L = static_cast<int>(weights.size());
  const bool bf16 = precision == "bf16";
  const auto dt = bf16 ? at::kBFloat16 : at::kFloat;
  const cuda::GemmElem gemm_elem = bf16 ? cuda::GemmElem::BF16 : cuda::GemmElem::F32;
  const int device = mu.device().index();
  std::vector<at::Tensor> ws, bs;
  for (int l = 0; l < L; ++l) {
    ws.push_back(weights[l].detach().to(dt).contiguous());
    bs.push_back(biases[l].detach().to(dt).contiguous());
  }
  // (b + C < 2^32: the select's positions are 32-bit)
  const int64_t C = std::min<int64_t>(
      n, chunk_size > 0 ? std::min<int64_t>(chunk_size, int64_t(1) << 30) : score_chunk_rows(maxw, bf16 ? 2 : 4, device));
  const auto opt = mu.options();
  const int64_t in0 = d + (with_r ? 1 : 0);
  const bool stage_input = with_r || bf16;  // else the GEMM reads mu's rows in place
  at::Tensor inbuf = stage_input ? at::empty({C * in0}, opt.dtype(dt)) : at::Tensor();
  at::Tensor act[2] = {at::empty({C * maxw}, opt.dtype(dt)), at::empty({C * maxw}, opt.dtype(dt))};
  at::Tensor cand_v = at::empty({b + C}, opt.dtype(at::kFloat));
  at::Tensor cand_i = at::empty({b + C}, opt.dtype(at::kLong));
  at::Tensor nan_total = at::zeros({}, opt.dtype(at::kLong));
  at::Tensor scores = return_scores ? at::empty({n}, opt.dtype(at::kFloat)) : at::empty({0}, opt.dtype(at::kFloat));
  void* st = stream_of(mu);
  at::Tensor out_v, out_pos;
  int64_t kept = 0;  // running entries at the front of the buffer
  for (int64_t s = 0; s < n; s += C) {
    const int64_t rows = std::min(C, n - s);
    at::Tensor h = mu.narrow(0, s, rows);
    if (stage_input) {
      at::Tensor x = inbuf.narrow(0, 0, rows * in0).view({rows, in0});
      x.narrow(1, 0, d).copy_(h);
      if (with_r) x.select(1, d).copy_(r.narrow(0, s, rows));  // any stride of r
      h = x;
    }
    for (int l = 0; l < L; ++l) {
      const int64_t out_w = ws[l].size(0);
      at::Tensor out = act[l & 1].narrow(0, 0, rows * out_w).view({rows, out_w});
      out.copy_(bs[l].expand({rows, out_w}));
      const cuda::Status gs = cuda::linear_fp32_accumulate(gemm_elem, h.data_ptr(), ws[l].data_ptr(), out.data_ptr(),
                                                           rows, h.size(1), out_w, device, st);
      TORCH_CHECK(gs.ok(), "tavaal::score_topb: CUDA error in phase '", gs.phase, "' (layer ", l, "): ",
                  cuda::gemm_status_text(gs.code));
      if (l + 1 < L) out.relu_();
      h = out;
    }
    at::Tensor p = cand_v.narrow(0, kept, rows);
    p.copy_(h.select(1, 0));  // logits, upcast to fp32
    p.sigmoid_();
    nan_total.add_(at::isnan(p).sum());
    if (return_scores) scores.narrow(0, s, rows).copy_(p);
    if (kept == b) {  // a full running top-b: skip the select unless the chunk can enter it
      const at::Tensor worst = cand_v.select(0, b - 1);
      const bool enters = largest ? at::gt(p.max(), worst).item<bool>() : at::lt(p.min(), worst).item<bool>();
      if (!enters) continue;  // (a NaN chunk is counted above and raises below)
    }
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
