#include "models/hidden_stats.h"

#include <algorithm>
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

namespace {

// The k-th smallest (from 0) of nonnegative floats, whose bit patterns are ordered as they are:
// a histogram of the top 12 bits (8 bins an octave) finds the bin that holds it, and only that
// bin is selected in (nth_element over all of them is bound by mispredicted comparisons).
float kth_smallest(const std::vector<float>& m, size_t k) {
  auto bin = [](float v) { return std::bit_cast<uint32_t>(v) >> 20; };
  std::vector<uint32_t> count(1 << 12, 0);
  for (float v : m) ++count[bin(v)];
  uint32_t b = 0;
  size_t below = 0;
  while (below + count[b] <= k) below += count[b++];
  std::vector<float> in_bin;
  in_bin.reserve(count[b]);
  for (float v : m)
    if (bin(v) == b) in_bin.push_back(v);
  std::nth_element(in_bin.begin(), in_bin.begin() + (k - below), in_bin.end());
  return in_bin[k - below];
}

}  // namespace

Magnitudes magnitudes(const Tensor& x) {
  std::vector<float> m = x.to_vector();
  for (float& v : m) v = std::fabs(v);
  Magnitudes out{{NAN, NAN, NAN}, NAN};
  if (m.empty()) return out;
  out.median = kth_smallest(m, m.size() / 2);  // the upper median
  const size_t k = std::min<size_t>(3, m.size());
  std::partial_sort(m.begin(), m.begin() + k, m.end(), std::greater<float>());
  std::copy_n(m.begin(), k, out.top.begin());
  return out;
}

}  // namespace sl::models
