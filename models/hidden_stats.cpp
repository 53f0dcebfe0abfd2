#include "models/hidden_stats.h"

#include <algorithm>
#include <cmath>

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
      double n2 = 0;
      for (int64_t d = 0; d < D; ++d) n2 += (double)xi[d] * xi[d];
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
    double residual = 0, all = 0;
    for (int64_t i = 0; i < T; ++i)
      for (int64_t d = 0; d < D; ++d) {
        const double v = X[i * D + d], r = v - mean[d];
        residual += r * r, all += v * v;
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
      double sum = 0;
      for (int64_t d = 0; d < D; ++d) sum += xi[d];
      const double mean = sum / D;
      double s2 = 0, s4 = 0;  // D m2 and D m4
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
    float top = 0;
    for (int64_t i = 0; i < T * D; ++i) top = std::max(top, std::fabs(X[i]));
    return (double)top;
  });
}

Magnitudes magnitudes(const Tensor& x) {
  std::vector<float> m = x.to_vector();
  for (float& v : m) v = std::fabs(v);
  Magnitudes out{{NAN, NAN, NAN}, NAN};
  if (m.empty()) return out;
  const size_t k = std::min<size_t>(3, m.size());
  std::partial_sort(m.begin(), m.begin() + k, m.end(), std::greater<float>());
  std::copy_n(m.begin(), k, out.top.begin());
  // The upper median of |x| is the (n - 1 - n/2)-th largest.
  const size_t mid = m.size() - 1 - m.size() / 2;
  std::nth_element(m.begin(), m.begin() + mid, m.end(), std::greater<float>());
  out.median = m[mid];
  return out;
}

}  // namespace sl::models
