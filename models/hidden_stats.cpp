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

// The upper median and the three largest of |x|. The median is selected in one bin of a
// histogram of |x|'s top 12 bits (8 bins an octave; nonnegative floats' bit patterns are ordered
// as they are), filled in the pass that keeps the three largest: nth_element over all of them is
// bound by mispredicted comparisons, and |x| is never copied whole. Both passes branch on blocks
// of 16, not on each value: the three largest are looked for only in a block whose largest beats
// the third, and the median's bin is collected, with unconditional stores, only from a block that
// holds one of its values.
Magnitudes magnitudes(const Tensor& x_in) {
  const Tensor x = x_in.contiguous();
  const float* p = x.data();
  const size_t n = (size_t)x.numel(), k = n / 2;
  Magnitudes out{{NAN, NAN, NAN}, NAN};
  if (n == 0) return out;
  auto bin = [](float v) { return std::bit_cast<uint32_t>(v) >> 20; };
  std::vector<uint32_t> count(1 << 12, 0);
  std::array<float, 3> top{-1.f, -1.f, -1.f};  // descending; below any |x|
  constexpr size_t kBlock = 16;
  for (size_t first = 0; first < n; first += kBlock) {
    const size_t end = std::min(n, first + kBlock);
    float block_top = -1.f;
    for (size_t i = first; i < end; ++i) {
      const float v = std::fabs(p[i]);
      ++count[bin(v)];
      block_top = std::max(block_top, v);
    }
    if (block_top <= top[2]) continue;
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
  uint32_t b = 0;
  size_t below = 0;
  while (below + count[b] <= k) below += count[b++];
  std::vector<float> in_bin(count[b] + 1);  // the last slot takes the stores of values outside it
  size_t m = 0;
  for (size_t first = 0; first < n; first += kBlock) {
    const size_t end = std::min(n, first + kBlock);
    int hits = 0;
#pragma omp simd reduction(+ : hits)
    for (size_t i = first; i < end; ++i) hits += bin(std::fabs(p[i])) == b;
    if (hits == 0) continue;
    for (size_t i = first; i < end; ++i) {
      const float v = std::fabs(p[i]);
      in_bin[m] = v;
      m += bin(v) == b;
    }
  }
  std::nth_element(in_bin.begin(), in_bin.begin() + (k - below), in_bin.begin() + m);
  out.median = in_bin[k - below];
  return out;
}

}  // namespace sl::models
