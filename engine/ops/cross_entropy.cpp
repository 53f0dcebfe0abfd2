// Fused softmax cross-entropy with PaLM's z-loss. Per counted row (target != ignore_index):
//   loss_r = lse_r - logits[r, t_r] + z * lse_r^2,   lse_r = logsumexp(logits[r, :])
// and the loss is their mean; d loss_r / d logits[r] = softmax - onehot(t_r) + 2 z lse_r softmax.
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "engine/ops.h"
#include "engine/ops/raw.h"
#include "engine/threads.h"

namespace sl {

Tensor cross_entropy(const Tensor& logits_in, const std::vector<int32_t>& targets, int32_t ignore_index,
                     float z_loss) {
  SL_CHECK(logits_in.dim() == 2, "cross_entropy: logits must be [N, V], got " + shape_str(logits_in.shape()));
  int64_t N = logits_in.size(0), V = logits_in.size(1);
  SL_CHECK((int64_t)targets.size() == N, "cross_entropy: " + std::to_string(targets.size()) +
                                             " targets for logits " + shape_str(logits_in.shape()));
  int64_t count = 0;
  for (int64_t r = 0; r < N; ++r) {
    int32_t t = targets[r];
    if (t == ignore_index) continue;
    SL_CHECK(t >= 0 && t < V, "cross_entropy: target " + std::to_string(t) + " at row " + std::to_string(r) +
                                  " is outside [0, " + std::to_string(V) + ") and is not ignore_index (" +
                                  std::to_string(ignore_index) + ")");
    ++count;
  }

  Tensor logits = logits_in.contiguous();
  const float* px = logits.data();
  std::vector<float> lse(N);  // per row, kept for the backward
  double total = 0;
#pragma omp parallel for reduction(+ : total) if (logits.numel() > kParallelMin)
  for (int64_t r = 0; r < N; ++r) {
    if (targets[r] == ignore_index) continue;
    const float* xr = px + r * V;
    float m = xr[0];
#pragma omp simd reduction(max : m)
    for (int64_t i = 1; i < V; ++i) m = std::max(m, xr[i]);
    double s = 0;
#pragma omp simd reduction(+ : s)
    for (int64_t i = 0; i < V; ++i) s += exp_approx(xr[i] - m);
    float l = m + (float)std::log(s);
    lse[r] = l;
    total += (double)l - xr[targets[r]] + (double)z_loss * l * l;
  }
  // With every row ignored there is nothing to average: the loss is 0 and so is its gradient.
  Tensor out = Tensor::scalar(count ? (float)(total / count) : 0.f);

  return record(out, "cross_entropy", {logits},
                [logits, targets, ignore_index, z_loss, count, lse = std::move(lse)](const Tensor&, const Tensor& g) {
    float* gx = grad_of(logits).data();  // exists (as zeros) even when no row counts
    if (count == 0) return;
    int64_t N = logits.size(0), V = logits.size(1);
    const float* px = logits.data();
    float scale = g.item() / (float)count;
#pragma omp parallel for if (logits.numel() > kParallelMin)
    for (int64_t r = 0; r < N; ++r) {
      if (targets[r] == ignore_index) continue;
      const float* xr = px + r * V;
      float* dx = gx + r * V;
      float p_coef = scale * (1.f + 2.f * z_loss * lse[r]);  // softmax weight incl. the z-loss term
#pragma omp simd
      for (int64_t i = 0; i < V; ++i) dx[i] += p_coef * exp_approx(xr[i] - lse[r]);
      dx[targets[r]] -= scale;
    }
  });
}

}  // namespace sl
