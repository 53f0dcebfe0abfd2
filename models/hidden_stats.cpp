#include "models/hidden_stats.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstdint>

#include "engine/row_math.h"

namespace sl::models {

namespace {

// f(sequence [T, D] row-major, T, D) for each sequence of x [B, T, D].
template <class F>
std::vector<double> per_sequence(const Tensor& x, F f) {
  const Tensor c = x.contiguous();
  const int64_t B = c.size(0), T = c.size(1), D = c.size(2);
  std::vector<double> out(B);
  for (int64_t b = 0; b < B; ++b) out[b] = f(c.data() + b * T * D, T, D);
  return out;
}

}  // namespace

std::vector<double> mean_pairwise_cosine(const Tensor& x) {
  return per_sequence(x, [](const float* X, int64_t T, int64_t D) {
    if (T < 2) return (double)NAN;
    std::vector<double> sum(D, 0);
    double self = 0;  // sum_i ||u_i||^2: T, less the zero vectors
    for (int64_t i = 0; i < T; ++i) {
      const float* xi = X + i * D;
      const double n2 = row_dot(xi, xi, D);
      if (n2 == 0) continue;
      const double inv = 1 / std::sqrt(n2);
      for (int64_t d = 0; d < D; ++d) sum[d] += xi[d] * inv;
      self += 1;
    }
    double total = 0;
    for (double s : sum) total += s * s;
    return (total - self) / ((double)T * (T - 1));
  });
}

std::vector<double> rank_residual(const Tensor& x) {
  return per_sequence(x, [](const float* X, int64_t T, int64_t D) {
    std::vector<double> mean(D, 0);
    for (int64_t i = 0; i < T; ++i)
      for (int64_t d = 0; d < D; ++d) mean[d] += X[i * D + d];
    for (double& m : mean) m /= T;
    const double* mu = mean.data();
    double residual = 0, all = 0;
    for (int64_t i = 0; i < T; ++i) {
      const float* xi = X + i * D;
      double r2 = 0;
#pragma omp simd reduction(+ : r2)
      for (int64_t d = 0; d < D; ++d) r2 += (xi[d] - mu[d]) * (xi[d] - mu[d]);
      residual += r2, all += row_dot(xi, xi, D);
    }
    return all > 0 ? std::sqrt(residual / all) : (double)NAN;
  });
}

std::vector<double> token_kurtosis(const Tensor& x) {
  return per_sequence(x, [](const float* X, int64_t T, int64_t D) {
    double total = 0;
    int64_t tokens = 0;
    for (int64_t i = 0; i < T; ++i) {
      const float* xi = X + i * D;
      const double mean = row_sum(xi, D) / D;
      double s2 = 0, s4 = 0;  // D m2 and D m4
#pragma omp simd reduction(+ : s2, s4)
      for (int64_t d = 0; d < D; ++d) {
        const double c2 = (xi[d] - mean) * (xi[d] - mean);
        s2 += c2, s4 += c2 * c2;
      }
      if (s2 == 0) continue;
      total += D * s4 / (s2 * s2);
      ++tokens;
    }
    return tokens ? total / tokens : (double)NAN;
  });
}

std::vector<double> inf_norm(const Tensor& x) {
  return per_sequence(x, [](const float* X, int64_t T, int64_t D) {
    return (double)row_max_abs(X, T * D);
  });
}

// The upper median and the three largest of |x|. Nonnegative floats' bit patterns are ordered as
// their values, so the median is found by bisecting its bit pattern: each step counts the |x|
// below a threshold, a compare and add a value that vectorises (a histogram's scattered
// increments do not), until few enough values are left in the range to select among. The three
// largest are looked for only in a block of 16 whose largest beats the third: nth_element over all
// of |x| is bound by mispredicted comparisons, and |x| is never copied whole.
Magnitudes magnitudes(const Tensor& x_in) {
  const Tensor x = x_in.contiguous();
  const float* p = x.data();
  const size_t n = (size_t)x.numel(), k = n / 2;
  Magnitudes out{{NAN, NAN, NAN}, NAN};
  if (n == 0) return out;
  constexpr size_t kBlock = 16;
  std::array<float, 3> top{-1.f, -1.f, -1.f};  // descending; below any |x|
  for (size_t first = 0; first < n; first += kBlock) {
    const size_t end = std::min(n, first + kBlock);
    if (row_max_abs(p + first, (int64_t)(end - first)) <= top[2]) continue;
    for (size_t i = first; i < end; ++i) {
      const float v = std::fabs(p[i]);
      if (v > top[2]) {
        top[2] = v;
        if (top[2] > top[1]) std::swap(top[1], top[2]);
        if (top[1] > top[0]) std::swap(top[0], top[1]);
      }
    }
  }
  for (size_t t = 0; t < std::min<size_t>(3, n); ++t) out.top[t] = top[t];

  auto bits = [](float v) { return (int32_t)(std::bit_cast<uint32_t>(v) & 0x7fffffffu); };  // of |v|
  auto in_range = [&](float v, int32_t lo, int32_t hi) { return bits(v) >= lo && bits(v) < hi; };
  auto count_below = [&](int32_t t) {
    size_t c = 0;
    for (size_t first = 0; first < n; first += 1 << 24) {  // int lanes: no wider counters in the loop
      const size_t end = std::min(n, first + (1 << 24));
      int32_t part = 0;
#pragma omp simd reduction(+ : part)
      for (size_t i = first; i < end; ++i) part += bits(p[i]) < t;
      c += (size_t)part;
    }
    return c;
  };
  // Invariant: `below` values lie under lo, and the median in [lo, hi), below `under_hi` values.
  int32_t lo = 0, hi = INT32_MAX;  // every |x| but the one NaN pattern 0x7fffffff
  size_t below = 0, under_hi = count_below(hi);
  if (k >= under_hi) return out;  // over half the values NaN
  constexpr size_t kSelect = 256;
  while (under_hi - below > kSelect && hi - lo > 1) {
    const int32_t mid = lo + (hi - lo) / 2;
    const size_t c = count_below(mid);
    if (c > k) hi = mid, under_hi = c;
    else lo = mid, below = c;
  }
  std::vector<float> left(under_hi - below + 1);  // the last slot takes the stores of values outside
  size_t m = 0;
  for (size_t first = 0; first < n; first += kBlock) {
    const size_t end = std::min(n, first + kBlock);
    int hits = 0;
#pragma omp simd reduction(+ : hits)
    for (size_t i = first; i < end; ++i) hits += in_range(p[i], lo, hi);
    if (hits == 0) continue;
    for (size_t i = first; i < end; ++i) {
      left[m] = std::fabs(p[i]);
      m += in_range(p[i], lo, hi);
    }
  }
  std::nth_element(left.begin(), left.begin() + (k - below), left.begin() + m);
  out.median = left[k - below];
  return out;
}

}  // namespace sl::models
