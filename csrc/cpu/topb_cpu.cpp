// top-b selection on CPU: threads scan contiguous ranges with a threshold filter (AVX-512
// compare + mask: only candidates better than the current b-th best are buffered), then the
// per-thread buffers are merged. Result ordered by (value, index); ties -> lower index.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <atomic>
#include <mutex>

#include "../select.h"
#include "../topb_common.h"

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__)
#include <immintrin.h>
#define TAVAAL_AVX512 1
#endif

namespace tavaal {
namespace {

// Scan positions [begin, end) of x (optionally through a byte mask, or through sorted
// candidate indices `idx`), pushing every candidate that can still enter the top-b.
template <typename T>
void scan_range(const T* x, const uint8_t* mask, const int64_t* idx, int64_t begin, int64_t end, bool largest,
                bool nan_worst, TopB<T>& tb, int64_t& nan_cnt, int64_t& cand_cnt) {
  if (idx) {  // sparse candidate subset (sorted, unique)
    for (int64_t p = begin; p < end; ++p) {
      const int64_t i = idx[p];
      ++cand_cnt;
      const T v = x[i];
      if (std::isnan(v)) {
        ++nan_cnt;
        if (!nan_worst) continue;
      }
      if (tb.admits(v, i)) tb.push(v, i);
    }
    return;
  }
  auto scalar = [&](int64_t i) {
    if (mask && !mask[i]) return;
    ++cand_cnt;
    const T v = x[i];
    if (std::isnan(v)) {
      ++nan_cnt;
      if (!nan_worst) return;
    }
    if (tb.admits(v, i)) tb.push(v, i);
  };
  int64_t i = begin;
#ifdef TAVAAL_AVX512
  if constexpr (std::is_same<T, float>::value) {
    for (; i < end && !tb.full(); ++i) scalar(i);
    const __m128i zero = _mm_setzero_si128();
    for (; i + 16 <= end; i += 16) {
      const __m512 v = _mm512_loadu_ps(x + i);
      __mmask16 mm = 0xFFFF;
      if (mask) {
        mm = _mm_cmpneq_epi8_mask(_mm_loadu_si128(reinterpret_cast<const __m128i*>(mask + i)), zero);
        if (!mm) continue;
      }
      const __mmask16 nanm = _mm512_mask_cmp_ps_mask(mm, v, v, _CMP_UNORD_Q);
      cand_cnt += __builtin_popcount(mm);
      nan_cnt += __builtin_popcount(nanm);
      const float thr = tb.worst().v;
      __mmask16 hit;
      if (std::isnan(thr)) {
        hit = nan_worst ? static_cast<__mmask16>(mm & ~nanm) : 0;  // any number beats a NaN
      } else {
        // strict compare: an equal value has a larger index than the kept one -> cannot enter
        const __m512 t = _mm512_set1_ps(thr);
        hit = largest ? _mm512_mask_cmp_ps_mask(mm, v, t, _CMP_GT_OQ) : _mm512_mask_cmp_ps_mask(mm, v, t, _CMP_LT_OQ);
      }
      while (hit) {
        const int j = __builtin_ctz(hit);
        hit = static_cast<__mmask16>(hit & (hit - 1));
        if (tb.admits(x[i + j], i + j)) tb.push(x[i + j], i + j);
      }
    }
  }
#endif
  for (; i < end; ++i) scalar(i);
}

template <typename T>
std::tuple<at::Tensor, at::Tensor> topb_impl(const at::Tensor& scores, int64_t b, bool largest,
                                             const c10::optional<at::Tensor>& mask_opt, bool nan_worst) {
  const int64_t n = scores.size(0);
  const T* x = scores.data_ptr<T>();
  const uint8_t* mask = nullptr;
  const int64_t* idx = nullptr;
  at::Tensor mask_buf, idx_buf;
  int64_t range = n;
  if (mask_opt.has_value() && mask_opt->defined()) {
    const at::Tensor& m = *mask_opt;
    if (m.scalar_type() == at::kBool) {
      mask = reinterpret_cast<const uint8_t*>(m.data_ptr<bool>());
    } else {
      idx_buf = m.to(at::kLong).contiguous();
      const int64_t cnt = idx_buf.numel();
      const int64_t* ip = idx_buf.data_ptr<int64_t>();
      for (int64_t k = 0; k < cnt; ++k)
        TORCH_CHECK_INDEX(ip[k] >= 0 && ip[k] < n, "tavaal::topb: mask index ", ip[k], " out of range [0, ", n, ")");
      if (cnt * 16 < n) {  // sparse subset: sorted unique indices, gathered
        idx_buf = std::get<0>(at::_unique2(idx_buf, /*sorted=*/true, false, false));
        idx = idx_buf.data_ptr<int64_t>();
        range = idx_buf.numel();
      } else {  // dense subset: a byte mask (duplicates merge)
        mask_buf = at::zeros({n}, scores.options().dtype(at::kBool));
        mask_buf.index_fill_(0, idx_buf, true);
        mask = reinterpret_cast<const uint8_t*>(mask_buf.data_ptr<bool>());
      }
    }
  }
  std::mutex mu;
  TopB<T> global(b, largest);
  std::atomic<int64_t> nan_total{0}, cand_total{0};
  const int64_t grain = std::max<int64_t>(1 << 15, 4 * b);
  at::parallel_for(0, range, grain, [&](int64_t begin, int64_t end) {
    TopB<T> local(b, largest);
    int64_t nan_cnt = 0, cand_cnt = 0;
    scan_range<T>(x, mask, idx, begin, end, largest, nan_worst, local, nan_cnt, cand_cnt);
    local.prune();
    nan_total += nan_cnt;
    cand_total += cand_cnt;
    std::lock_guard<std::mutex> g(mu);
    global.merge(local);
  });
  const int64_t nans = nan_total.load();
  TORCH_CHECK_VALUE(nan_worst || nans == 0, "tavaal::topb: scores contain ", nans,
                    " NaN value(s) among the candidates; clean them or pass nan_policy='worst' "
                    "(nan_worst=True) to rank NaNs last");
  TORCH_CHECK_VALUE(b <= cand_total.load(), "tavaal::topb: b=", b, " exceeds the number of candidates (",
                    cand_total.load(), ")");
  auto best = global.sorted();
  at::Tensor values = at::empty({b}, scores.options());
  at::Tensor indices = at::empty({b}, scores.options().dtype(at::kLong));
  T* vp = values.data_ptr<T>();
  int64_t* ip = indices.data_ptr<int64_t>();
  for (int64_t k = 0; k < b; ++k) {
    vp[k] = best[k].v;
    ip[k] = best[k].i;
  }
  return {values, indices};
}

std::tuple<at::Tensor, at::Tensor> topb_cpu(const at::Tensor& scores, int64_t b, bool largest,
                                            const c10::optional<at::Tensor>& mask, bool nan_worst) {
  topb_check(scores, b, mask);
  switch (scores.scalar_type()) {
    case at::kFloat:
      return topb_impl<float>(scores, b, largest, mask, nan_worst);
    case at::kDouble:
      return topb_impl<double>(scores, b, largest, mask, nan_worst);
    case at::kHalf:
    case at::kBFloat16: {  // exact upcast; values gathered back from the original tensor
      auto res = topb_impl<float>(scores.to(at::kFloat), b, largest, mask, nan_worst);
      return {scores.index_select(0, std::get<1>(res)), std::get<1>(res)};
    }
    default:
      TORCH_CHECK_TYPE(false, "tavaal::topb: scores must be floating (float16/bfloat16/float32/float64), got ",
                       scores.scalar_type());
  }
}

}  // namespace
}  // namespace tavaal

TORCH_LIBRARY_IMPL(tavaal, CPU, m) { m.impl("topb", &tavaal::topb_cpu); }
