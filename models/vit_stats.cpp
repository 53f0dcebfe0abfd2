#include "models/vit_stats.h"

#include <algorithm>
#include <cmath>

namespace sl::models {

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

ViTStats compute_vit_stats(const Capture& cap, int64_t first_patch, int64_t grid, const SinkStatsOptions& opt) {
  ViTStats st;
  st.base = compute_sink_stats(cap.attn, cap.hidden, opt);
  const Tensor& p0 = cap.attn.at(0).probs;
  const int64_t L = (int64_t)cap.attn.size(), B = p0.size(0), H = p0.size(1), T = p0.size(2);
  const int64_t E = (int64_t)opt.eps.size(), K = st.base.k;
  st.layers = L, st.heads = H, st.tokens = T, st.first_patch = first_patch, st.grid = grid;
  st.alpha.assign(L * H * T, 0.f);
  st.sink_rate.assign(E * T, 0.f);
  st.cls_attention.assign(L * H * T, 0.f);
  for (int64_t l = 0; l < L; ++l) {
    const int64_t slots = cap.attn[l].slot_offset;
    std::vector<float> alpha = importance_all_queries(cap.attn[l].probs, slots);
    Tensor A = cap.attn[l].probs.contiguous();
    const int64_t S = A.size(3);
    for (int64_t b = 0; b < B; ++b)
      for (int64_t h = 0; h < H; ++h)
        for (int64_t j = 0; j < T; ++j) {
          const float a = alpha[(b * H + h) * T + j];
          st.alpha[(l * H + h) * T + j] += a / B;
          st.cls_attention[(l * H + h) * T + j] += A.data()[(b * H + h) * T * S + slots + j] / B;  // query 0 = CLS
          for (int64_t e = 0; e < E; ++e) st.sink_rate[e * T + j] += a > opt.eps[e] ? 100.f / (L * H * B) : 0.f;
        }
  }
  // The generic rows read the same all-query importance.
  for (int64_t l = 0; l < L; ++l)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t p = 0; p < K; ++p) st.base.alpha[(l * H + h) * K + p] = st.alpha[(l * H + h) * T + p];
  for (int64_t e = 0; e < E; ++e) {
    for (int64_t p = 0; p < K; ++p) st.base.sink_rate_k[e * K + p] = st.sink_rate[e * T + p];
    st.base.sink_rate[e] = st.sink_rate[e * T];
  }

  st.token_norm.assign(L * T, 0.f);
  st.high_norm_rate.assign(L, 0.f);
  for (int64_t l = 0; l < L; ++l) {
    Tensor h = cap.hidden.at(l).contiguous();
    const int64_t D = h.size(2);
    for (int64_t b = 0; b < B; ++b) {
      std::vector<float> norms(T);
      for (int64_t j = 0; j < T; ++j) {
        double s = 0;
        const float* x = h.data() + (b * T + j) * D;
        for (int64_t d = 0; d < D; ++d) s += (double)x[d] * x[d];
        norms[j] = (float)std::sqrt(s);
        st.token_norm[l * T + j] += norms[j] / B;
      }
      std::vector<float> patch(norms.begin() + first_patch, norms.end());
      std::nth_element(patch.begin(), patch.begin() + patch.size() / 2, patch.end());
      const float median = patch[patch.size() / 2];
      for (int64_t j = first_patch; j < T; ++j)
        st.high_norm_rate[l] += norms[j] > 2 * median ? 100.f / (B * (T - first_patch)) : 0.f;
    }
  }
  return st;
}

}  // namespace sl::models
