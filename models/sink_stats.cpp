#include "models/sink_stats.h"

#include <algorithm>
#include <cmath>

#include "engine/threads.h"

namespace sl::models {

std::vector<float> importance(const Tensor& probs, int64_t slots, int64_t k) {
  Tensor A = probs.contiguous();
  const int64_t B = A.size(0), H = A.size(1), T = A.size(2), S = A.size(3);
  k = std::min(k, T);
  std::vector<float> alpha(B * H * k, 0.f);
#pragma omp parallel for if (B * H * k * T > kParallelMin)
  for (int64_t bh = 0; bh < B * H; ++bh) {
    const float* a = A.data() + bh * T * S;
    for (int64_t p = 0; p < k; ++p) {
      double s = 0;
      for (int64_t i = p; i < T; ++i) s += a[i * S + slots + p];
      alpha[bh * k + p] = (float)(s / (T - p));
    }
  }
  return alpha;
}

std::vector<float> importance_all_queries(const Tensor& probs, int64_t slots) {
  Tensor A = probs.contiguous();
  const int64_t B = A.size(0), H = A.size(1), T = A.size(2), S = A.size(3), N = S - slots;
  std::vector<float> alpha(B * H * N, 0.f);
  for (int64_t bh = 0; bh < B * H; ++bh) {
    const float* a = A.data() + bh * T * S;
    for (int64_t i = 0; i < T; ++i)
      for (int64_t j = 0; j < N; ++j) alpha[bh * N + j] += a[i * S + slots + j] / T;
  }
  return alpha;
}

Tensor proxy_weights(const Tensor& probs) {
  Tensor A = probs.contiguous();
  const int64_t S = A.size(-1), rows = A.numel() / S;
  Tensor P = Tensor::empty(A.shape());
#pragma omp parallel for if (A.numel() > kParallelMin)
  for (int64_t r = 0; r < rows; ++r) {
    const float* w = A.data() + r * S;
    float* p = P.data() + r * S;
    double total = 0;
    for (int64_t j = 0; j < S; ++j) total += std::fabs(w[j]);
    for (int64_t j = 0; j < S; ++j) p[j] = total > 0 ? (float)(std::fabs(w[j]) / total) : 0.f;
  }
  return P;
}

std::vector<double> slot_importance(const Tensor& probs, int64_t n) {
  Tensor A = probs.contiguous();
  const int64_t B = A.size(0), H = A.size(1), T = A.size(2), S = A.size(3);
  std::vector<double> slot(B * H, 0);
  for (int64_t bh = 0; bh < B * H; ++bh) {
    for (int64_t i = 0; i < T; ++i)
      for (int64_t j = 0; j < n; ++j) slot[bh] += A.data()[(bh * T + i) * S + j];
    slot[bh] /= T;
  }
  return slot;
}

RowSums row_sums(const Tensor& probs, int64_t slots) {
  Tensor A = probs.contiguous();
  const int64_t B = A.size(0), H = A.size(1), T = A.size(2), S = A.size(3);
  RowSums r{std::vector<double>(B * H), std::vector<double>(B * H), std::vector<double>(B * H),
            std::vector<double>(B * H)};
#pragma omp parallel for if (B * H * T * S > kParallelMin)
  for (int64_t bh = 0; bh < B * H; ++bh) {
    double ent = 0, rsum = 0, slot = 0, top = 0;  // locals: no shared cache lines in the loop
    for (int64_t i = 0; i < T; ++i) {
      const float* row = A.data() + (bh * T + i) * S;
      double rs = 0, e = 0;
      for (int64_t j = 0; j < S; ++j) {
        rs += row[j];
        top = std::max(top, (double)row[j]);
      }
      for (int64_t j = 0; j < S && rs > 0; ++j) {
        double q = row[j] / rs;
        if (q > 0) e -= q * std::log(q);
      }
      for (int64_t j = 0; j < slots; ++j) slot += row[j];
      ent += e;
      rsum += rs;
    }
    r.entropy[bh] = ent, r.row_sum[bh] = rsum, r.slot[bh] = slot, r.max[bh] = top;
  }
  return r;
}

std::vector<float> row_norms(const Tensor& x) {
  Tensor c = x.contiguous();
  const int64_t D = c.size(-1), rows = D ? c.numel() / D : 0;
  std::vector<float> norms(rows);
#pragma omp parallel for if (c.numel() > kParallelMin)
  for (int64_t r = 0; r < rows; ++r) {
    double s = 0;
    for (int64_t d = 0; d < D; ++d) s += (double)c.data()[r * D + d] * c.data()[r * D + d];
    norms[r] = (float)std::sqrt(s);
  }
  return norms;
}

}  // namespace sl::models
