// Exact k-means++ D^2 seeding on CPU (sampling contract: csrc/kmeanspp_common.h).
//
// State: m[i] = min D^2 to the picks so far (float64), s[i] = |g_i|^2, a picked flag, and one
// float64 sum per leaf of 256 rows. Each pick costs one pass over the points: the leaves are
// distributed over threads with at::parallel_for (each leaf is updated and summed by one
// thread, in index order), so the values -- and the picks -- do not depend on the number of
// threads. The upper levels of the sampling tree are then summed (each node its <= 256
// children in order) and the pick descends the tree (csrc/kmeanspp_common.h).
// Dot products: the 16-lane layout of the k-center distances, in float64 -- lane l sums the
// dims k = l (mod 16) in increasing k with one fma each, then reduce16's pairwise lane sums --
// as AVX-512 (2 x 8 lanes) or a scalar loop with the same operations, and as the CUDA kernel
// (one half-warp per row), so CPU and CUDA compute the same bits and give the same picks.
// Memory: 17 bytes per point + 8 per leaf; no N x b (or N x N) matrix.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#include "../kmeanspp_common.h"
#include "distance.h"  // reduce16

namespace tavaal {
namespace {

template <typename T>
inline double to_d(T v) {
  return static_cast<double>(static_cast<float>(v));
}
template <>
inline double to_d<double>(double v) {
  return v;
}
template <>
inline double to_d<float>(float v) {
  return static_cast<double>(v);
}

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__)
// 8 elements (the first `cnt` of them; the rest 0) upcast to float64 lanes
template <typename T>
inline __m512d load8d(const T* p, int cnt);
template <>
inline __m512d load8d<double>(const double* p, int cnt) {
  return cnt == 8 ? _mm512_loadu_pd(p) : _mm512_maskz_loadu_pd(static_cast<__mmask8>((1u << cnt) - 1u), p);
}
template <>
inline __m512d load8d<float>(const float* p, int cnt) {
  return _mm512_cvtps_pd(cnt == 8 ? _mm256_loadu_ps(p) : _mm256_maskz_loadu_ps(static_cast<__mmask8>((1u << cnt) - 1u), p));
}
template <>
inline __m512d load8d<c10::Half>(const c10::Half* p, int cnt) {
  const __m128i h = _mm_maskz_loadu_epi16(static_cast<__mmask8>((1u << cnt) - 1u), p);
  return _mm512_cvtps_pd(_mm256_cvtph_ps(h));
}
template <>
inline __m512d load8d<c10::BFloat16>(const c10::BFloat16* p, int cnt) {
  const __m128i h = _mm_maskz_loadu_epi16(static_cast<__mmask8>((1u << cnt) - 1u), p);
  return _mm512_cvtps_pd(_mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16)));
}

// sum_k u_k v_k (sqdiff: sum_k (u_k - v_k)^2) in float64, 16 lanes: a0 holds lanes 0..7
// (dims k = 0..7 mod 16), a1 lanes 8..15; masked-off tail elements add fma(0, 0, acc) = acc
template <bool kDiff, typename T>
inline double accumulate(const T* u, const T* v, int64_t n) {
  __m512d a0 = _mm512_setzero_pd(), a1 = _mm512_setzero_pd();
  auto term = [](__m512d x, __m512d y, __m512d acc) {
    if (kDiff) {
      const __m512d d = _mm512_sub_pd(x, y);
      return _mm512_fmadd_pd(d, d, acc);
    }
    return _mm512_fmadd_pd(x, y, acc);
  };
  int64_t k = 0;
  for (; k + 16 <= n; k += 16) {
    a0 = term(load8d<T>(u + k, 8), load8d<T>(v + k, 8), a0);
    a1 = term(load8d<T>(u + k + 8, 8), load8d<T>(v + k + 8, 8), a1);
  }
  if (k < n) {
    const int c0 = static_cast<int>(n - k < 8 ? n - k : 8), c1 = static_cast<int>(n - k - c0);
    a0 = term(load8d<T>(u + k, c0), load8d<T>(v + k, c0), a0);
    if (c1 > 0) a1 = term(load8d<T>(u + k + 8, c1), load8d<T>(v + k + 8, c1), a1);
  }
  alignas(64) double lanes[16];
  _mm512_store_pd(lanes, a0);
  _mm512_store_pd(lanes + 8, a1);
  return reduce16(lanes);
}
#else
template <bool kDiff, typename T>
inline double accumulate(const T* u, const T* v, int64_t n) {
  double acc[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
  for (int64_t k = 0; k < n; k += 16) {
    const int64_t cnt = n - k < 16 ? n - k : 16;
    for (int64_t l = 0; l < cnt; ++l) {
      const double x = to_d(u[k + l]), y = to_d(v[k + l]);
      if (kDiff) {
        const double d = x - y;
        acc[l] = std::fma(d, d, acc[l]);
      } else {
        acc[l] = std::fma(x, y, acc[l]);
      }
    }
  }
  return reduce16(acc);
}
#endif

// sum_k u_k v_k in float64
template <typename T>
inline double dot(const T* u, const T* v, int64_t n) {
  return accumulate<false, T>(u, v, n);
}

// sum_k (u_k - v_k)^2 in float64 (exactly 0 for equal rows)
template <typename T>
inline double sqdiff(const T* u, const T* v, int64_t n) {
  return accumulate<true, T>(u, v, n);
}

// Below this many multiply-adds a pass runs on the calling thread (a parallel region costs more).
constexpr int64_t kParallelWork = int64_t(1) << 20;

template <typename T>
std::tuple<at::Tensor, at::Tensor> kmeanspp_impl(const at::Tensor& xt, const T* Y, int64_t F, int64_t ldy,
                                                 const at::Tensor& ut, bool init_norm) {
  const int64_t N = xt.size(0), D = xt.size(1), b = ut.numel();
  const T* X = xt.data_ptr<T>();
  const double* U = ut.data_ptr<double>();
  const bool outer = Y != nullptr;
  const int64_t nleaf = (N + kKmppLeaf - 1) / kKmppLeaf;
  const int64_t work_per_leaf = kKmppLeaf * (D + (outer ? F : 0));
  const int64_t grain = std::max<int64_t>(1, kParallelWork / std::max<int64_t>(1, work_per_leaf));
  const int64_t ldx = xt.stride(0);
  auto rowx = [&](int64_t i) { return X + i * ldx; };
  auto rowy = [&](int64_t i) { return Y + i * ldy; };

  std::vector<double> m(N, std::numeric_limits<double>::infinity()), s;
  // the sampling tree: level[0] = the leaf sums, ..., level.back() = {the total}
  std::vector<std::vector<double>> level(1, std::vector<double>(nleaf, 0.0));
  while (level.back().size() > 1)
    level.emplace_back((level.back().size() + kKmppFan - 1) / kKmppFan, 0.0);
  std::vector<double>& leaf = level[0];
  std::vector<uint8_t> picked(N, 0);
  if (outer || init_norm) {
    s.assign(N, 0.0);
    at::parallel_for(0, nleaf, grain, [&](int64_t l0, int64_t l1) {
      for (int64_t i = l0 * kKmppLeaf; i < std::min(N, l1 * kKmppLeaf); ++i) {
        const double nx = dot<T>(rowx(i), rowx(i), D);
        s[i] = outer ? nx * dot<T>(rowy(i), rowy(i), F) : nx;
      }
    });
  }
  at::Tensor picks = at::empty({b}, xt.options().dtype(at::kLong));
  at::Tensor potential = at::empty({b}, xt.options().dtype(at::kDouble));
  int64_t* pp = picks.data_ptr<int64_t>();
  double* pot = potential.data_ptr<double>();

  // one pass: m <- min(m, D^2(., p)), picked rows 0, leaf sums in index order
  auto update = [&](int64_t p) {
    const double sp = outer ? s[p] : 0.0;
    at::parallel_for(0, nleaf, grain, [&](int64_t l0, int64_t l1) {
      for (int64_t l = l0; l < l1; ++l) {
        double r = 0.0;
        const int64_t e = std::min(N, (l + 1) * kKmppLeaf);
        for (int64_t i = l * kKmppLeaf; i < e; ++i) {
          double w = 0.0;
          if (!picked[i]) {
            double d;
            if (outer) {
              const double sum = s[i] + sp;
              d = sum - 2.0 * (dot<T>(rowx(i), rowx(p), D) * dot<T>(rowy(i), rowy(p), F));
              if (d <= kKmppOuterTol * sum) d = 0.0;
            } else {
              d = sqdiff<T>(rowx(i), rowx(p), D);
            }
            w = std::min(m[i], d);
          }
          m[i] = w;
          r += w;
        }
        leaf[l] = r;
      }
    });
    // the upper levels: node j of level h + 1 = its <= kKmppFan children of level h, in order
    for (size_t h = 1; h < level.size(); ++h) {
      const std::vector<double>& child = level[h - 1];
      std::vector<double>& parent = level[h];
      const int64_t nc = static_cast<int64_t>(child.size());
      for (int64_t j = 0; j < static_cast<int64_t>(parent.size()); ++j) {
        double acc = 0.0;
        for (int64_t k = j * kKmppFan; k < std::min(nc, (j + 1) * kKmppFan); ++k) acc += child[k];
        parent[j] = acc;
      }
    }
    return level.back()[0];
  };

  // the first pick
  int64_t p;
  if (init_norm) {
    p = 0;
    for (int64_t i = 1; i < N; ++i)
      if (s[i] > s[p]) p = i;
  } else {
    p = std::min<int64_t>(static_cast<int64_t>(U[0] * static_cast<double>(N)), N - 1);
  }
  for (int64_t t = 0;; ++t) {
    picked[p] = 1;
    pp[t] = p;
    const double total = update(p);
    pot[t] = total;
    if (t + 1 == b) break;
    const double u = U[t + 1];
    p = -1;
    if (total > 0.0) {
      const double target = u * total;
      // descend: at each level the first child whose running sum r (from 0, in order) has
      // prefix + r > target; the prefix grows by the running sum before it
      double prefix = 0.0;
      int64_t node = 0;
      bool ok = true;
      for (int64_t h = static_cast<int64_t>(level.size()) - 2; h >= -1 && ok; --h) {
        const int64_t fan = h >= 0 ? kKmppFan : kKmppLeaf;  // children per node (rows per leaf)
        const int64_t first = node * fan;
        const int64_t size = h >= 0 ? static_cast<int64_t>(level[h].size()) : N;
        const double* v = h >= 0 ? level[h].data() : m.data();
        ok = false;
        double r = 0.0;
        for (int64_t k = first; k < std::min(size, first + fan); ++k) {
          const double next = r + v[k];
          if (prefix + next > target) {
            node = k;
            prefix = prefix + r;
            ok = true;
            break;
          }
          r = next;
        }
      }
      if (ok) {
        p = node;
      } else {  // u * total rounded up past a subtree: the last point of positive weight
        for (int64_t i = N - 1; i >= 0 && p < 0; --i)
          if (m[i] > 0.0) p = i;
      }
    }
    if (p < 0) {  // every unpicked point coincides with a pick: uniform over the unpicked
      const int64_t rest = N - (t + 1);
      int64_t k = std::min<int64_t>(static_cast<int64_t>(u * static_cast<double>(rest)), rest - 1);
      for (int64_t i = 0; i < N; ++i)
        if (!picked[i] && k-- == 0) {
          p = i;
          break;
        }
    }
    TORCH_INTERNAL_ASSERT(p >= 0 && !picked[p], "tavaal::kmeanspp: no point left to pick");
  }
  return {picks, potential};
}

std::tuple<at::Tensor, at::Tensor> kmeanspp_cpu(const at::Tensor& x, const c10::optional<at::Tensor>& y,
                                                const at::Tensor& uniforms, c10::string_view init_sv) {
  const std::string init(init_sv);
  const bool init_norm = kmeanspp_check(x, y, uniforms, init);
  const bool outer = y.has_value() && y->defined();
  const int64_t F = outer ? y->size(1) : 0, ldy = outer ? y->stride(0) : 0;
  switch (x.scalar_type()) {
    case at::kFloat:
      return kmeanspp_impl<float>(x, outer ? y->data_ptr<float>() : nullptr, F, ldy, uniforms, init_norm);
    case at::kDouble:
      return kmeanspp_impl<double>(x, outer ? y->data_ptr<double>() : nullptr, F, ldy, uniforms, init_norm);
    case at::kHalf:
      return kmeanspp_impl<c10::Half>(x, outer ? y->data_ptr<c10::Half>() : nullptr, F, ldy, uniforms, init_norm);
    default:
      return kmeanspp_impl<c10::BFloat16>(x, outer ? y->data_ptr<c10::BFloat16>() : nullptr, F, ldy, uniforms,
                                          init_norm);
  }
}

}  // namespace
}  // namespace tavaal

TORCH_LIBRARY_IMPL(tavaal, CPU, m) { m.impl("kmeanspp", &tavaal::kmeanspp_cpu); }
