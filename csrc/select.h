// Bounded top-b selection by the total order (key, index), shared by the CPU ops.
//
// "Better" means smaller (largest=false) or larger (largest=true); NaN is worse than every
// number (nan_worst policy; callers that raise on NaN never insert one); equal keys are
// ordered by the lower index. -0.0 and +0.0 are equal keys.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

namespace tavaal {

template <typename T>
struct Cand {
  T v;
  int64_t i;
};

template <typename T>
struct Better {
  bool largest;
  // strict weak order: a before b
  inline bool operator()(const Cand<T>& a, const Cand<T>& b) const {
    const bool an = std::isnan(a.v), bn = std::isnan(b.v);
    if (an || bn) {
      if (an && bn) return a.i < b.i;
      return bn;  // the number comes first
    }
    if (a.v != b.v) return largest ? a.v > b.v : a.v < b.v;
    return a.i < b.i;
  }
};

// Keeps the b best candidates seen so far. Candidates are pushed in any index order.
// After `prune`, `worst()` is the b-th best; a new candidate can only enter if it is better.
template <typename T>
class TopB {
 public:
  TopB(int64_t b, bool largest) : b_(b), cmp_{largest} {
    buf_.reserve(static_cast<size_t>(std::min<int64_t>(2 * b + 64, 1 << 26)));
  }
  inline void push(T v, int64_t i) {
    buf_.push_back({v, i});
    if (static_cast<int64_t>(buf_.size()) >= 2 * b_ + 64) prune();
  }
  void prune() {
    if (static_cast<int64_t>(buf_.size()) > b_) {
      std::nth_element(buf_.begin(), buf_.begin() + (b_ - 1), buf_.end(), cmp_);
      buf_.resize(static_cast<size_t>(b_));
      full_ = true;
      worst_ = buf_[static_cast<size_t>(b_ - 1)];
    } else if (static_cast<int64_t>(buf_.size()) == b_) {
      full_ = true;
      worst_ = *std::max_element(buf_.begin(), buf_.end(), cmp_);
    }
  }
  // true when a candidate (v, i) could still enter
  inline bool admits(T v, int64_t i) const { return !full_ || cmp_({v, i}, worst_); }
  bool full() const { return full_; }
  const Cand<T>& worst() const { return worst_; }
  std::vector<Cand<T>>& buffer() { return buf_; }
  void merge(TopB& other) {
    for (auto& c : other.buf_)
      if (admits(c.v, c.i)) push(c.v, c.i);
  }
  // the final b (or fewer) candidates, sorted best first
  std::vector<Cand<T>> sorted() {
    prune();
    std::sort(buf_.begin(), buf_.end(), cmp_);
    if (static_cast<int64_t>(buf_.size()) > b_) buf_.resize(static_cast<size_t>(b_));
    return buf_;
  }

 private:
  int64_t b_;
  Better<T> cmp_;
  std::vector<Cand<T>> buf_;
  bool full_ = false;
  Cand<T> worst_{T(0), 0};
};

}  // namespace tavaal
