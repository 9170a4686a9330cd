// Exact greedy k-center on CPU with triangle-inequality pruning.
//
// State: every non-center point x belongs to the group of its nearest center c(x) and stores
// d2(x) = ||x - c(x)||^2 (squared, fp32, computed by distance.h). Each group keeps its
// maximum d2 (ties -> lower index), so the greedy argmax is a scan over groups.
// Adding a center q: a point x of group c can only get closer to q than to c if
//   ||c - q|| < 2 ||x - c||     (triangle inequality: ||x - q|| >= ||c - q|| - ||x - c||),
// so a whole group is skipped when delta2(c, q) >= 4 max_x d2(x) (1 + slack), and a point of a
// scanned group when delta2(c, q) >= 4 d2(x) (1 + slack). The slack covers the rounding of
// the computed distances (relative error ~ (D/16 + 8) ulp, see distance.h), so a skipped
// point provably keeps its d2: the picks are those of the plain greedy on the same values.
// Initial centers are added in blocks of up to 16 (one pass over the candidates computes 16
// distances per row, register-blocked by 8), in a fixed pseudo-random order (any order gives the
// same min-distances; a random one covers the clusters early so pruning starts soon).
// A single new center (each pick) is evaluated 4 candidate rows at a time (register tile of 4
// independent accumulators, same per-pair arithmetic).
// Memory: O(N + L) (8 bytes per point + per-group headers); no N x L matrix.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>
#include <vector>

#include "../kcenter_common.h"
#include "distance.h"

namespace tavaal {
namespace {

constexpr int KB = 16;         // centers per block in the initial phase
constexpr int64_t CHUNK = 2048;  // points per work item
constexpr int RT = 4;            // rows per register tile in the per-pick step

struct Entry {
  int32_t i;
  float d2;
};

struct Group {
  int64_t center = -1;  // -1: the "unassigned" group (no center yet, d2 = +inf)
  std::vector<Entry> pts;
  float maxd2 = -1.f;
  int32_t arg = -1;
};

inline bool better_max(float d, int32_t i, float bd, int32_t bi) { return d > bd || (d == bd && i < bi); }

template <int K, typename T>
inline void dist_k(const T* x, const T* const* c, int64_t D, float* out) {
  sqdist_block<K, T>(x, c, D, out);
}

template <typename T>
inline void dist_n(int n, const T* x, const T* const* c, int64_t D, float* out) {
  switch (n) {
    case 1: return dist_k<1, T>(x, c, D, out);
    case 2: return dist_k<2, T>(x, c, D, out);
    case 3: return dist_k<3, T>(x, c, D, out);
    case 4: return dist_k<4, T>(x, c, D, out);
    case 5: return dist_k<5, T>(x, c, D, out);
    case 6: return dist_k<6, T>(x, c, D, out);
    case 7: return dist_k<7, T>(x, c, D, out);
    case 8: return dist_k<8, T>(x, c, D, out);
    default: {  // 9..16: two blocks of 8 and the rest, same per-pair arithmetic
      dist_k<8, T>(x, c, D, out);
      return dist_n<T>(n - 8, x, c + 8, D, out + 8);
    }
  }
}

// Below this many multiply-adds a step runs on the calling thread: a parallel region costs
// more than the work (and idle OpenMP threads spinning after it steal the CPU from the serial
// parts, badly so on a busy machine).
constexpr int64_t kParallelWork = int64_t(1) << 22;

// Dynamic scheduling on top of at::parallel_for: workers pull item indices from a counter.
template <typename F>
void parallel_items(int64_t n_items, int64_t work, F&& f) {
  if (n_items <= 0) return;
  if (work < kParallelWork || at::get_num_threads() == 1) {
    for (int64_t it = 0; it < n_items; ++it) f(0, it);
    return;
  }
  const int64_t nt = std::min<int64_t>(at::get_num_threads(), n_items);
  std::atomic<int64_t> next{0};
  at::parallel_for(0, nt, 1, [&](int64_t wb, int64_t we) {
    for (int64_t w = wb; w < we; ++w)
      for (int64_t it; (it = next.fetch_add(1)) < n_items;) f(w, it);
  });
}

template <typename T>
class KCenter {
 public:
  KCenter(const T* X, int64_t N, int64_t D) : X_(X), N_(N), D_(D) {
    // conservative relative slack on squared distances (see the header comment)
    slack_ = 1e-4f + 64.f * static_cast<float>(D / 16 + 8) * 5.9604645e-8f;
  }

  void init(const std::vector<int64_t>& centers, int64_t first) {
    std::vector<uint8_t> is_c(N_, 0);
    for (auto c : centers) is_c[c] = 1;
    if (centers.empty()) is_c[first] = 1;
    Group g;
    g.pts.reserve(N_);
    for (int64_t i = 0; i < N_; ++i)
      if (!is_c[i]) g.pts.push_back({static_cast<int32_t>(i), std::numeric_limits<float>::infinity()});
    recompute_max(g);
    groups_.push_back(std::move(g));
  }

  // adds up to KB new centers (not contained in any group)
  void add_batch(const int64_t* q, int K) {
    const int64_t gid0 = static_cast<int64_t>(groups_.size());
    for (int j = 0; j < K; ++j) {
      Group g;
      g.center = q[j];
      groups_.push_back(std::move(g));
    }
    const T* qrow[KB];
    for (int j = 0; j < K; ++j) qrow[j] = row(q[j]);
    // 1. center-to-center distances of the non-empty groups; group-level skip test
    std::vector<int64_t> act;
    for (int64_t g = 0; g < gid0; ++g)
      if (!groups_[g].pts.empty()) act.push_back(g);
    std::vector<float> delta(act.size() * KB, 0.f);
    std::vector<uint8_t> scan(act.size(), 0);
    const int64_t n_act = static_cast<int64_t>(act.size());
    const int64_t delta_grain = std::max<int64_t>(64, kParallelWork / std::max<int64_t>(1, K * D_));
    at::parallel_for(0, n_act, delta_grain, [&](int64_t b0, int64_t b1) {
      for (int64_t a = b0; a < b1; ++a) {
        const Group& g = groups_[act[a]];
        float* dl = &delta[a * KB];
        if (g.center >= 0) dist_n<T>(K, row(g.center), qrow, D_, dl);
        const float lim = bound(g.maxd2);
        bool any = false;
        for (int j = 0; j < K; ++j) any |= !skips(dl[j], lim);
        scan[a] = any;
      }
    });
    // 2. work items: chunks of the scanned groups
    struct Item {
      int64_t a, begin, end;
      int64_t kept = 0;
      float maxd2 = -1.f;
      int32_t arg = -1;
    };
    std::vector<Item> items;
    int64_t scanned = 0;
    for (size_t a = 0; a < act.size(); ++a) {
      if (!scan[a]) continue;
      const int64_t n = static_cast<int64_t>(groups_[act[a]].pts.size());
      scanned += n;
      for (int64_t s = 0; s < n; s += CHUNK) items.push_back({static_cast<int64_t>(a), s, std::min(n, s + CHUNK)});
    }
    const int64_t nt = std::max<int64_t>(1, at::get_num_threads());
    std::vector<std::vector<std::pair<int, Entry>>> movers(nt);
    parallel_items(static_cast<int64_t>(items.size()), scanned * K * D_, [&](int64_t w, int64_t it) {
      Item& item = items[it];
      Group& g = groups_[act[item.a]];
      const float* dl = &delta[item.a * KB];
      Entry* e = g.pts.data();
      auto& mv = movers[w];
      int64_t wpos = item.begin;
      float mx = -1.f;
      int32_t arg = -1;
      const T* cs[KB];
      int cj[KB];
      float out[KB];
      // pass 1: which of the new centers can each point get closer to (bit j: center j)
      uint32_t cm[CHUNK];
      int32_t cpos[CHUNK];
      int64_t ncand = 0;
      for (int64_t p = item.begin; p < item.end; ++p) {
        const float lim = bound(e[p].d2);
        uint32_t m = 0;
        for (int j = 0; j < K; ++j) m |= static_cast<uint32_t>(!skips(dl[j], lim)) << j;
        cm[p - item.begin] = m;
        if (m) cpos[ncand++] = static_cast<int32_t>(p - item.begin);
      }
      // pass 2: exact distances for the candidates.
      // One new center (the per-pick step): the candidates' distances are computed first, RT rows
      // at a time (sqdist_rows: RT independent FMA chains instead of one latency-bound chain, the
      // center's vector loaded once for RT rows; same per-pair arithmetic, so bit-identical),
      // rows software-prefetched 2 RT candidates ahead. Other K: one row against the
      // candidate centers (register-blocked by 8), rows prefetched two candidates ahead.
      float dc[CHUNK];
      const bool one = K == 1;
      if (one) {
        const T* xr[RT];
        for (int64_t t = 0; t < std::min<int64_t>(2 * RT, ncand); ++t) prefetch_row(e[item.begin + cpos[t]].i);
        int64_t c0 = 0;
        for (; c0 + RT <= ncand; c0 += RT) {
          for (int64_t t = c0 + 2 * RT; t < std::min<int64_t>(c0 + 3 * RT, ncand); ++t)
            prefetch_row(e[item.begin + cpos[t]].i);
          for (int r = 0; r < RT; ++r) xr[r] = row(e[item.begin + cpos[c0 + r]].i);
          sqdist_rows<RT, T>(xr, qrow[0], D_, dc + c0);
        }
        for (; c0 < ncand; ++c0) {
          xr[0] = row(e[item.begin + cpos[c0]].i);
          sqdist_rows<1, T>(xr, qrow[0], D_, dc + c0);
        }
      }
      int64_t ci = 0;
      if (!one)
        for (int64_t t = 0; t < std::min<int64_t>(2, ncand); ++t) prefetch_row(e[item.begin + cpos[t]].i);
      for (int64_t p = item.begin; p < item.end; ++p) {
        const Entry en = e[p];
        const uint32_t m = cm[p - item.begin];
        float best = en.d2;
        int bj = -1;
        if (one) {
          if (m) {
            const float d = dc[ci++];
            if (d < best) {
              best = d;
              bj = 0;
            }
          }
        } else if (m) {
          if (ci + 2 < ncand) prefetch_row(e[item.begin + cpos[ci + 2]].i);
          ++ci;
          int nc = 0;
          for (int j = 0; j < K; ++j)
            if (m >> j & 1u) {
              cs[nc] = qrow[j];
              cj[nc++] = j;
            }
          dist_n<T>(nc, row(en.i), cs, D_, out);
          for (int t = 0; t < nc; ++t)
            if (out[t] < best) {
              best = out[t];
              bj = cj[t];
            }
        }
        if (bj >= 0) {
          mv.push_back({bj, {en.i, best}});
        } else {
          e[wpos++] = en;
          if (better_max(en.d2, en.i, mx, arg)) {
            mx = en.d2;
            arg = en.i;
          }
        }
      }
      item.kept = wpos - item.begin;
      item.maxd2 = mx;
      item.arg = arg;
    });
    // 3. compact the scanned groups (items of a group are consecutive and in order)
    for (size_t s = 0; s < items.size();) {
      Group& g = groups_[act[items[s].a]];
      int64_t pos = 0;
      float mx = -1.f;
      int32_t arg = -1;
      size_t t = s;
      for (; t < items.size() && items[t].a == items[s].a; ++t) {
        const Item& it = items[t];
        if (pos != it.begin && it.kept)
          std::memmove(g.pts.data() + pos, g.pts.data() + it.begin, sizeof(Entry) * it.kept);
        pos += it.kept;
        if (it.kept && better_max(it.maxd2, it.arg, mx, arg)) {
          mx = it.maxd2;
          arg = it.arg;
        }
      }
      g.pts.resize(pos);
      if (pos == 0) std::vector<Entry>().swap(g.pts);
      g.maxd2 = mx;
      g.arg = arg;
      s = t;
    }
    // 4. the new groups: movers, kept sorted by index (memory locality of later scans)
    for (auto& mv : movers)
      for (auto& m : mv) groups_[gid0 + m.first].pts.push_back(m.second);
    int64_t moved = 0;
    for (auto& mv : movers) moved += static_cast<int64_t>(mv.size());
    auto finish_new = [&](int64_t j0, int64_t j1) {
      for (int64_t j = j0; j < j1; ++j) {
        Group& g = groups_[gid0 + j];
        std::sort(g.pts.begin(), g.pts.end(), [](const Entry& a, const Entry& b) { return a.i < b.i; });
        recompute_max(g);
      }
    };
    if (K == 1 || moved * 64 < kParallelWork)
      finish_new(0, K);
    else
      at::parallel_for(0, K, 1, finish_new);
  }

  // (max d2, argmax index, group) over all non-center points; arg = -1 when none is left
  std::tuple<float, int64_t, int64_t> global_max() const {
    float mx = -1.f;
    int32_t arg = -1;
    int64_t gid = -1;
    for (size_t g = 0; g < groups_.size(); ++g) {
      const Group& gr = groups_[g];
      if (gr.pts.empty()) continue;
      if (better_max(gr.maxd2, gr.arg, mx, arg)) {
        mx = gr.maxd2;
        arg = gr.arg;
        gid = static_cast<int64_t>(g);
      }
    }
    return {mx, arg, gid};
  }

  void remove(int64_t gid, int64_t p) {
    Group& g = groups_[gid];
    auto it = std::lower_bound(g.pts.begin(), g.pts.end(), p, [](const Entry& e, int64_t v) { return e.i < v; });
    TORCH_INTERNAL_ASSERT(it != g.pts.end() && it->i == p);
    g.pts.erase(it);
    recompute_max(g);
  }

  int64_t num_groups() const { return static_cast<int64_t>(groups_.size()); }

 private:
  inline const T* row(int64_t i) const { return X_ + i * D_; }
  inline void prefetch_row(int64_t i) const {
    const char* p = reinterpret_cast<const char*>(row(i));
    const int64_t bytes = D_ * static_cast<int64_t>(sizeof(T));
    for (int64_t o = 0; o < bytes; o += 64) __builtin_prefetch(p + o);
  }
  // delta2 >= bound(d2)  =>  the point (or group) cannot get closer to the new center. When
  // 4 d2 (1 + s) overflows fp32 (|x| around 1e19) the bound is +inf, and so is an overflowed
  // delta2: `inf >= inf` would skip a point that may well get closer, so a non-finite bound
  // never skips (see skips()).
  inline float bound(float d2) const { return 4.f * d2 * (1.f + slack_) + 1e-30f; }
  static inline bool skips(float delta2, float lim) { return std::isfinite(lim) && delta2 >= lim; }
  static void recompute_max(Group& g) {
    float mx = -1.f;
    int32_t arg = -1;
    for (const Entry& e : g.pts)
      if (better_max(e.d2, e.i, mx, arg)) {
        mx = e.d2;
        arg = e.i;
      }
    g.maxd2 = mx;
    g.arg = arg;
  }

  const T* X_;
  int64_t N_, D_;
  float slack_;
  std::vector<Group> groups_;
};

template <typename T>
void check_finite(const T* X, int64_t N, int64_t D) {
  std::atomic<int64_t> bad{0};
  at::parallel_for(0, N, 1024, [&](int64_t b0, int64_t b1) {
    int64_t cnt = 0;
    for (int64_t i = b0; i < b1; ++i) {
      const T* r = X + i * D;
      // (x - x)^2 is NaN exactly when x is NaN or +-inf
      cnt += std::isnan(sqdist<T>(r, r, D)) ? 1 : 0;
    }
    bad += cnt;
  });
  TORCH_CHECK_VALUE(bad.load() == 0, "tavaal::kcenter_greedy: features contain NaN or inf in ", bad.load(),
                    " row(s); k-center needs finite features");
}

template <typename T>
std::tuple<at::Tensor, at::Tensor> kcenter_impl(const at::Tensor& features, int64_t b, const at::Tensor& centers,
                                                int64_t first) {
  const int64_t N = features.size(0), D = features.size(1);
  const T* X = features.data_ptr<T>();
  std::vector<int64_t> cidx(centers.data_ptr<int64_t>(), centers.data_ptr<int64_t>() + centers.numel());
  KCenter<T> kc(X, N, D);
  kc.init(cidx, first);
  at::Tensor picks = at::empty({b}, features.options().dtype(at::kLong));
  at::Tensor radii = at::empty({b}, features.options().dtype(at::kFloat));
  int64_t* pp = picks.data_ptr<int64_t>();
  float* rp = radii.data_ptr<float>();
  int64_t t = 0;
  auto record = [&](int64_t p) {
    const auto mx = kc.global_max();
    pp[t] = p;
    rp[t] = std::get<1>(mx) >= 0 ? std::get<0>(mx) : 0.f;  // squared; converted by finish_radii
    ++t;
  };
  if (!cidx.empty()) {
    std::vector<int64_t> order(cidx);
    std::mt19937_64 rng(0x7a7aa1);
    std::shuffle(order.begin(), order.end(), rng);
    for (size_t s = 0; s < order.size(); s += KB)
      kc.add_batch(order.data() + s, static_cast<int>(std::min<size_t>(KB, order.size() - s)));
  } else {
    kc.add_batch(&first, 1);
    record(first);
  }
  while (t < b) {
    const auto mx = kc.global_max();
    const int64_t p = std::get<1>(mx);
    TORCH_INTERNAL_ASSERT(p >= 0, "no point left to pick");
    kc.remove(std::get<2>(mx), p);
    kc.add_batch(&p, 1);
    record(p);
  }
  return {picks, radii};
}

// Cosine metric: every row divided by its L2 norm, in fp32. The squared norm is sqdist(x, 0)
// (distance.h's 16 lanes and lane reduction; x - 0 is exact), the norm its correctly rounded
// sqrt, each coordinate one correctly rounded division: the CUDA kernel does exactly the same
// operations, so both devices normalise to the same bits and pick the same points.
template <typename T>
at::Tensor normalize_rows(const at::Tensor& features) {
  const int64_t N = features.size(0), D = features.size(1);
  const T* X = features.data_ptr<T>();
  at::Tensor out = at::empty({N, D}, features.options().dtype(at::kFloat));
  float* O = out.data_ptr<float>();
  const std::vector<T> zero(static_cast<size_t>(D), T(0));
  std::atomic<int64_t> zero_rows{0}, overflow_rows{0};
  at::parallel_for(0, N, 1024, [&](int64_t b0, int64_t b1) {
    int64_t z = 0, o = 0;
    for (int64_t i = b0; i < b1; ++i) {
      const T* x = X + i * D;
      const float n2 = sqdist<T>(x, zero.data(), D);
      z += n2 == 0.f;
      o += std::isinf(n2);
      const float nrm = std::sqrt(n2);
      float* y = O + i * D;
      for (int64_t k = 0; k < D; ++k) y[k] = static_cast<float>(x[k]) / nrm;
    }
    zero_rows += z;
    overflow_rows += o;
  });
  cosine_check_norms(zero_rows.load(), overflow_rows.load());
  return out;
}

std::tuple<at::Tensor, at::Tensor> kcenter_greedy_cpu(const at::Tensor& features, int64_t b,
                                                      const c10::optional<at::Tensor>& centers, int64_t first,
                                                      c10::string_view metric_sv) {
  const std::string metric(metric_sv);
  at::Tensor cidx = kcenter_check(features, b, centers, first, metric);
  const int64_t N = features.size(0), D = features.size(1);
  switch (features.scalar_type()) {  // on the stored values, before any normalisation
    case at::kFloat: check_finite<float>(features.data_ptr<float>(), N, D); break;
    case at::kHalf: check_finite<c10::Half>(features.data_ptr<c10::Half>(), N, D); break;
    default: check_finite<c10::BFloat16>(features.data_ptr<c10::BFloat16>(), N, D); break;
  }
  at::Tensor f = features;
  if (metric == "cosine") {
    switch (features.scalar_type()) {
      case at::kFloat: f = normalize_rows<float>(features); break;
      case at::kHalf: f = normalize_rows<c10::Half>(features); break;
      default: f = normalize_rows<c10::BFloat16>(features); break;
    }
  }
  std::tuple<at::Tensor, at::Tensor> res;
  switch (f.scalar_type()) {
    case at::kFloat: res = kcenter_impl<float>(f, b, cidx, first); break;
    case at::kHalf: res = kcenter_impl<c10::Half>(f, b, cidx, first); break;
    default: res = kcenter_impl<c10::BFloat16>(f, b, cidx, first); break;
  }
  finish_radii(std::get<1>(res), metric);
  return res;
}

}  // namespace
}  // namespace tavaal

TORCH_LIBRARY_IMPL(tavaal, CPU, m) { m.impl("kcenter_greedy", &tavaal::kcenter_greedy_cpu); }
