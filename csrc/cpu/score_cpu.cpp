// Fused discriminator scoring + top-b on CPU.
//
// Workers take chunks of `chunk_size` rows; for each chunk the MLP (Linear -> ReLU ... ->
// Linear) runs through ATen's GEMM (MKL / oneDNN, single-threaded inside the worker) in two
// ping-pong (chunk x hidden) buffers per worker, the sigmoid is applied in fp32, and the
// probabilities are fed to the worker's bounded top-b. Nothing of size N is allocated unless
// return_scores. precision="bf16": inputs, weights and activations in bf16 (oneDNN bf16 GEMM
// with fp32 accumulation; avx512_bf16 instructions on this CPU -- it has no AMX), logits upcast
// to fp32 before the sigmoid.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <c10/core/InferenceMode.h>
#include <torch/library.h>

#include <atomic>
#include <mutex>

#include "../score_common.h"
#include "../select.h"

namespace tavaal {
namespace {

std::tuple<at::Tensor, at::Tensor, at::Tensor> score_topb_cpu(const at::Tensor& mu, const at::Tensor& r,
                                                              at::TensorList weights, at::TensorList biases,
                                                              int64_t b, bool largest, c10::string_view precision_sv,
                                                              int64_t chunk_size, bool return_scores) {
  const std::string precision(precision_sv);
  const int64_t n = mu.size(0), d = mu.size(1);
  const bool with_r = r.numel() > 0;
  const int64_t L = static_cast<int64_t>(weights.size());
  const int64_t maxw = score_check(mu, r, weights, biases, b, precision);
  const auto dt = precision == "bf16" ? at::kBFloat16 : at::kFloat;
  std::vector<at::Tensor> wt, bs;  // transposed views (in, out) in the compute dtype
  for (int64_t l = 0; l < L; ++l) {
    wt.push_back(weights[l].detach().to(dt).t());
    bs.push_back(biases[l].detach().to(dt));
  }
  const int64_t C = chunk_size > 0 ? chunk_size : (dt == at::kFloat ? 512 : 1024);
  const int64_t n_chunks = (n + C - 1) / C;
  const int64_t nt = std::max<int64_t>(1, std::min<int64_t>(at::get_num_threads(), n_chunks));
  at::Tensor scores = return_scores ? at::empty({n}, mu.options()) : at::empty({0}, mu.options());
  float* sp = return_scores ? scores.data_ptr<float>() : nullptr;

  std::mutex mtx;
  TopB<float> global(b, largest);
  std::atomic<int64_t> next{0}, nan_total{0};
  at::parallel_for(0, nt, 1, [&](int64_t w0, int64_t w1) {
    for (int64_t w = w0; w < w1; ++w) {
      c10::InferenceMode guard;
      const auto opt = mu.options().dtype(dt);
      at::Tensor inbuf = at::empty({C, d + (with_r ? 1 : 0)}, opt);
      at::Tensor h[2] = {at::empty({C, maxw}, opt), at::empty({C, maxw}, opt)};
      at::Tensor logit32 = at::empty({C}, mu.options());
      TopB<float> local(b, largest);
      int64_t nan_cnt = 0;
      for (int64_t c; (c = next.fetch_add(1)) < n_chunks;) {
        const int64_t s = c * C, rows = std::min(C, n - s);
        at::Tensor x = inbuf.narrow(0, 0, rows);
        x.narrow(1, 0, d).copy_(mu.narrow(0, s, rows));
        if (with_r) x.select(1, d).copy_(r.narrow(0, s, rows));
        for (int64_t l = 0; l < L; ++l) {
          at::Tensor out = h[l & 1].narrow(0, 0, rows).narrow(1, 0, wt[l].size(1));
          at::addmm_out(out, bs[l], x, wt[l]);
          if (l + 1 < L) out.relu_();
          x = out;
        }
        at::Tensor lg = logit32.narrow(0, 0, rows);
        lg.copy_(x.select(1, 0));
        lg.sigmoid_();
        const float* p = lg.data_ptr<float>();
        if (sp) std::memcpy(sp + s, p, sizeof(float) * rows);
        for (int64_t k = 0; k < rows; ++k) {
          const float v = p[k];
          if (std::isnan(v)) {
            ++nan_cnt;
            continue;
          }
          if (local.admits(v, s + k)) local.push(v, s + k);
        }
      }
      local.prune();
      nan_total += nan_cnt;
      std::lock_guard<std::mutex> g(mtx);
      global.merge(local);
    }
  });
  TORCH_CHECK_VALUE(nan_total.load() == 0, "tavaal::score_topb: the discriminator produced ", nan_total.load(),
                    " NaN score(s); check mu / r / the weights for NaN or inf");
  auto best = global.sorted();
  at::Tensor values = at::empty({b}, mu.options());
  at::Tensor indices = at::empty({b}, mu.options().dtype(at::kLong));
  for (int64_t k = 0; k < b; ++k) {
    values.data_ptr<float>()[k] = best[k].v;
    indices.data_ptr<int64_t>()[k] = best[k].i;
  }
  return {values, indices, scores};
}

}  // namespace
}  // namespace tavaal

TORCH_LIBRARY_IMPL(tavaal, CPU, m) { m.impl("score_topb", &tavaal::score_topb_cpu); }
