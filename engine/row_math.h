// Float math for loops over rows that the compiler vectorises: e^x and ln x in plain
// arithmetic, and a row's sum, dot product and largest magnitude under omp simd (a plain loop's
// sum stays scalar, since vectorising reorders it). Sums are kept in double: squares of large but
// finite activations overflow a float.
#pragma once
#include <bit>
#include <cstdint>
#include <limits>

namespace sl {

// e^x in plain arithmetic that the compiler vectorises (std::exp is a library call that GCC
// vectorises only under -ffast-math, and std::floor blocks it too): x = n ln2 + r with
// |r| <= ln2 / 2 (n rounded by adding and removing 1.5 * 2^23), e^r by its Taylor polynomial to
// r^6 (relative error under 3e-7), 2^n through the exponent bits. For finite x the result is
// clamped to [e^-87, e^88] (no denormals or infinities); e^-inf = 0 and e^inf = inf exactly, so
// that a key masked with -inf weighs 0 under softmax and sigmoid; NaN stays NaN.
inline float exp_approx(float x) {
  constexpr float inf = std::numeric_limits<float>::infinity();
  float c = x < -87.f ? -87.f : x;
  c = c > 88.f ? 88.f : c;
  const float n = (c * 1.44269504f + 12582912.f) - 12582912.f;
  const float r = (c - n * 0.693359375f) + n * 2.12194440e-4f;  // ln2 in two parts: r stays exact
  const float p = 1.f + r * (1.f + r * (1.f / 2 + r * (1.f / 6 + r * (1.f / 24 + r * (1.f / 120 + r * (1.f / 720))))));
  const float two_n = std::bit_cast<float>((int32_t(n) + 127) << 23);
  const float e = x == -inf ? 0.f : x == inf ? inf : p * two_n;
  return x != x ? x : e;
}

// ln x for a positive normal float: x = m 2^e with m in [sqrt(1/2), sqrt(2)), ln m = 2 atanh(t)
// with t = (m - 1) / (m + 1), |t| <= 0.172, by its series to t^9 (error under 2e-7 max(1, |ln x|)).
// Zero, denormals, infinities and NaN give finite nonsense: callers mask them out.
inline float log_approx(float x) {
  const int32_t bits = std::bit_cast<int32_t>(x);
  int32_t e = ((bits >> 23) & 0xff) - 127;
  float m = std::bit_cast<float>((bits & 0x7fffff) | 0x3f800000);  // [1, 2)
  const bool high = m > 1.41421356f;
  m = high ? m * 0.5f : m;
  e = high ? e + 1 : e;
  const float t = (m - 1.f) / (m + 1.f), t2 = t * t;
  const float atanh = t * (1.f + t2 * (1.f / 3 + t2 * (1.f / 5 + t2 * (1.f / 7 + t2 * (1.f / 9)))));
  return (float)e * 0.693147181f + 2.f * atanh;
}

inline double row_sum(const float* x, int64_t n) {
  double s = 0;
#pragma omp simd reduction(+ : s)
  for (int64_t i = 0; i < n; ++i) s += x[i];
  return s;
}

inline double row_dot(const float* a, const float* b, int64_t n) {
  double s = 0;
#pragma omp simd reduction(+ : s)
  for (int64_t i = 0; i < n; ++i) s += (double)a[i] * b[i];
  return s;
}

// max |x_i| (0 for an empty row); a ternary, since std::max under omp simd stays scalar in GCC 12
inline float row_max_abs(const float* x, int64_t n) {
  float m = 0;
#pragma omp simd reduction(max : m)
  for (int64_t i = 0; i < n; ++i) {
    const float v = x[i] < 0 ? -x[i] : x[i];
    m = v > m ? v : m;
  }
  return m;
}

}  // namespace sl
