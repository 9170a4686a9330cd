// Squared Euclidean distances between rows, fp32 accumulation, for fp32 / fp16 / bf16 rows.
//
// Every distance is computed as sum_k (x_k - c_k)^2 (differences, no norm expansion, so no
// cancellation: the result has a small *relative* error) with 16 fp32 lanes (lane l sums the
// coordinates k = l (mod 16) in increasing k, one fused multiply-add each) followed by a fixed
// pairwise reduction of the 16 lanes. `sqdist_block<K>` evaluates K centers against one row
// with exactly the same per-pair arithmetic as `sqdist`, so a pair's distance is bit-identical
// whichever routine computes it -- the pruned k-center relies on that to be exact.
#pragma once

#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>

#include <cmath>
#include <cstdint>
#include <cstring>

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__)
#include <immintrin.h>
#define TAVAAL_DIST_AVX512 1
#endif

namespace tavaal {

// The fixed pairwise reduction of 16 lanes (l + 8, then l + 4, l + 2, l + 1): float for the
// distances here, double for the float64 dot products of k-means++ (kmeanspp_cpu.cpp).
template <typename T>
inline T reduce16(const T* a) {
  T s8[8], s4[4], s2[2];
  for (int l = 0; l < 8; ++l) s8[l] = a[l] + a[l + 8];
  for (int l = 0; l < 4; ++l) s4[l] = s8[l] + s8[l + 4];
  for (int l = 0; l < 2; ++l) s2[l] = s4[l] + s4[l + 2];
  return s2[0] + s2[1];
}

#ifdef TAVAAL_DIST_AVX512
template <typename T>
inline __m512 load16(const T* p, __mmask16 m);
template <>
inline __m512 load16<float>(const float* p, __mmask16 m) {
  return _mm512_maskz_loadu_ps(m, p);
}
template <>
inline __m512 load16<c10::BFloat16>(const c10::BFloat16* p, __mmask16 m) {
  const __m256i h = _mm256_maskz_loadu_epi16(m, p);
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}
template <>
inline __m512 load16<c10::Half>(const c10::Half* p, __mmask16 m) {
  return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, p));
}
template <typename T>
inline __m512 load16(const T* p) {
  return load16<T>(p, static_cast<__mmask16>(0xFFFF));
}
template <>
inline __m512 load16<float>(const float* p) {
  return _mm512_loadu_ps(p);
}

// K centers against one row: out[j] = ||x - c_j||^2
template <int K, typename T>
inline void sqdist_block(const T* x, const T* const* c, int64_t D, float* out) {
  __m512 acc[K];
  for (int j = 0; j < K; ++j) acc[j] = _mm512_setzero_ps();
  int64_t k = 0;
  for (; k + 16 <= D; k += 16) {
    const __m512 xv = load16<T>(x + k);
    for (int j = 0; j < K; ++j) {
      const __m512 d = _mm512_sub_ps(xv, load16<T>(c[j] + k));
      acc[j] = _mm512_fmadd_ps(d, d, acc[j]);
    }
  }
  if (k < D) {
    const __mmask16 m = static_cast<__mmask16>((1u << (D - k)) - 1u);
    const __m512 xv = load16<T>(x + k, m);
    for (int j = 0; j < K; ++j) {
      const __m512 d = _mm512_sub_ps(xv, load16<T>(c[j] + k, m));
      acc[j] = _mm512_fmadd_ps(d, d, acc[j]);
    }
  }
  alignas(64) float lanes[16];
  for (int j = 0; j < K; ++j) {
    _mm512_store_ps(lanes, acc[j]);
    out[j] = reduce16(lanes);
  }
}

// R rows against one center: out[r] = ||x_r - c||^2, with exactly the per-pair arithmetic of
// sqdist_block (lane l sums k = l mod 16 in increasing k, one FMA each; same tail mask; same
// lane reduction), so the values are bit-identical. R independent FMA chains hide the FMA
// latency that bounds a single row against a single center.
template <int R, typename T>
inline void sqdist_rows(const T* const* x, const T* c, int64_t D, float* out) {
  __m512 acc[R];
  for (int r = 0; r < R; ++r) acc[r] = _mm512_setzero_ps();
  int64_t k = 0;
  for (; k + 16 <= D; k += 16) {
    const __m512 cv = load16<T>(c + k);
    for (int r = 0; r < R; ++r) {
      const __m512 d = _mm512_sub_ps(load16<T>(x[r] + k), cv);
      acc[r] = _mm512_fmadd_ps(d, d, acc[r]);
    }
  }
  if (k < D) {
    const __mmask16 m = static_cast<__mmask16>((1u << (D - k)) - 1u);
    const __m512 cv = load16<T>(c + k, m);
    for (int r = 0; r < R; ++r) {
      const __m512 d = _mm512_sub_ps(load16<T>(x[r] + k, m), cv);
      acc[r] = _mm512_fmadd_ps(d, d, acc[r]);
    }
  }
  alignas(64) float lanes[16];
  for (int r = 0; r < R; ++r) {
    _mm512_store_ps(lanes, acc[r]);
    out[r] = reduce16(lanes);
  }
}
#else
template <typename T>
inline float to_f(T v) {
  return static_cast<float>(v);
}
template <int K, typename T>
inline void sqdist_block(const T* x, const T* const* c, int64_t D, float* out) {
  float acc[K][16];
  std::memset(acc, 0, sizeof(acc));
  for (int64_t k = 0; k < D; k += 16) {
    const int64_t w = (D - k) < 16 ? (D - k) : 16;
    for (int j = 0; j < K; ++j)
      for (int64_t l = 0; l < w; ++l) {
        const float d = to_f(x[k + l]) - to_f(c[j][k + l]);
        acc[j][l] = std::fma(d, d, acc[j][l]);
      }
  }
  for (int j = 0; j < K; ++j) out[j] = reduce16(acc[j]);
}
template <int R, typename T>
inline void sqdist_rows(const T* const* x, const T* c, int64_t D, float* out) {
  for (int r = 0; r < R; ++r) {
    const T* cs[1] = {c};
    sqdist_block<1, T>(x[r], cs, D, out + r);
  }
}
#endif

template <typename T>
inline float sqdist(const T* x, const T* c, int64_t D) {
  float out;
  const T* cs[1] = {c};
  sqdist_block<1, T>(x, cs, D, &out);
  return out;
}

}  // namespace tavaal
